package wire

// Cluster is the answer of GET /account/v1.0/cluster: the nodes of a
// cluster (DESIGN §11) as each last said how it is, the leader first, then
// by name. A node that stopped saying drops out after the lease's time. A
// single node answers itself alone, with the role "single".
type Cluster struct {
	// Node is the name of the node that answered; Leader, of the node that
	// holds the lease as that node last saw it ("" when none does).
	Node   string        `json:"node"`
	Leader string        `json:"leader"`
	Nodes  []ClusterNode `json:"nodes"`
}

// ClusterNode is one node of a Cluster.
type ClusterNode struct {
	Name string `json:"name"`
	// Role is leader, follower, or single (a node that is no cluster's).
	Role string `json:"role"`
	// HTTPURL is where the node's API answers (the URL its followers
	// forward writes to).
	HTTPURL string `json:"http_url"`
	// Applied is the last journal record (log sequence) the node applied;
	// Lag, how many records it is behind the leader.
	Applied uint64 `json:"applied"`
	Lag     uint64 `json:"lag"`
	// LastContact is when the node last said how it is.
	LastContact Time `json:"last_contact"`
	// Digest is a digest of the node's state (holdings, pending
	// commissions, counters) as of DigestSeq: nodes at the same sequence
	// have the same digest.
	Digest    string `json:"digest"`
	DigestSeq uint64 `json:"digest_seq"`
}

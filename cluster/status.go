package cluster

import (
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"sort"
	"strings"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// NodeStatus is one node as the cluster's status shows it.
type NodeStatus struct {
	Name    string `json:"name"`
	Role    string `json:"role"` // leader, follower
	HTTPURL string `json:"http_url"`
	// Applied is the last journal record the node applied; Lag, how many
	// records it is behind the leader.
	Applied uint64 `json:"applied"`
	Lag     uint64 `json:"lag"`
	// LastContact is when the node last said how it is.
	LastContact time.Time `json:"last_contact"`
	// Digest is a digest of the node's state as of DigestSeq: nodes at the
	// same sequence have the same digest.
	Digest    string `json:"digest"`
	DigestSeq uint64 `json:"digest_seq"`
}

// status is what a node publishes under "node.<name>".
type status struct {
	leaseValue
	DigestSeq uint64 `json:"digest_seq"`
}

// publishStatus says how this node is, for Status; the key expires with
// the lease bucket's TTL, so a node that stopped drops out.
//
// The digest is made again every digestEvery under load, and at once when the node
// applied nothing since its last report and the digest is of an earlier
// record: a node idle (the writes stopped, a node that rejoined and caught
// up) shows the digest of its state within a report, and one under load
// does not scan its holdings every report.
func (n *Node) publishStatus(ctx context.Context, role string) {
	applied := n.l.Applied()
	idleStale := applied == n.reportedSeq && n.digestSeq != applied
	if time.Since(n.digestAt) >= n.opts.digestEvery || n.digest == "" || idleStale {
		n.digestSeq, n.digest = n.l.Digest()
		n.digestAt = time.Now()
	}
	n.reportedSeq = applied
	st := status{leaseValue: n.me(), DigestSeq: n.digestSeq}
	st.Role, st.Digest = role, n.digest
	ctx, cancel := context.WithTimeout(ctx, n.opts.LeaseTTL/2)
	defer cancel()
	if _, err := n.lease.Put(ctx, "node."+n.opts.Name, marshal(st)); err != nil && ctx.Err() == nil {
		n.log.Debug().Err(err).Msg("publishing the node's status")
	}
}

// digestEvery is how often a node computes the digest of its state for
// the status (a scan of every holding).
const digestEvery = 5 * time.Second

// Status lists the nodes that said how they are within the lease's TTL,
// leader first, then by name. The keys are the subjects the lease bucket's
// stream holds, which its Raft leader tells: listing them through a
// consumer (KeyValue.ListKeys) needs JetStream's meta leader, which may be
// gone for a minute with the server that led it, and then lists none.
func (n *Node) Status(ctx context.Context) ([]NodeStatus, error) {
	st, err := n.js.Stream(ctx, "KV_"+LeaseBucket)
	if err != nil {
		return nil, err
	}
	prefix := "$KV." + LeaseBucket + "."
	info, err := st.Info(ctx, jetstream.WithSubjectFilter(prefix+"node.>"))
	if err != nil {
		return nil, err
	}
	var out []NodeStatus
	for subject := range info.State.Subjects {
		k := strings.TrimPrefix(subject, prefix)
		e, err := getKey(ctx, n.lease, k)
		if err != nil {
			continue // expired meanwhile
		}
		var st status
		if json.Unmarshal(e.Value(), &st) != nil {
			continue
		}
		out = append(out, NodeStatus{Name: st.Name, Role: st.Role, HTTPURL: st.HTTPURL, Applied: st.Applied,
			LastContact: st.Time, Digest: st.Digest, DigestSeq: st.DigestSeq})
	}
	var lead uint64
	for _, s := range out {
		if s.Role == "leader" && s.Applied > lead {
			lead = s.Applied
		}
	}
	for i := range out {
		if out[i].Applied < lead {
			out[i].Lag = lead - out[i].Applied
		}
	}
	sort.Slice(out, func(i, j int) bool {
		if (out[i].Role == "leader") != (out[j].Role == "leader") {
			return out[i].Role == "leader"
		}
		return out[i].Name < out[j].Name
	})
	return out, nil
}

// noteLast records the last journal record the leader appended, for a node
// that finds the log empty (every record past its max age) to know whether
// it is current.
func (n *Node) noteLast(ctx context.Context) {
	info, err := n.js.KeyValue(ctx, InfoBucket)
	if err != nil {
		return
	}
	_, _ = info.Put(ctx, "log.last", binary.BigEndian.AppendUint64(nil, n.l.Applied()))
}

// lastRecord is the last record noted (0 if none).
func (n *Node) lastRecord(ctx context.Context) uint64 {
	info, err := n.js.KeyValue(ctx, InfoBucket)
	if err != nil {
		return 0
	}
	e, err := info.Get(ctx, "log.last")
	if err != nil || len(e.Value()) != 8 {
		if !errors.Is(err, jetstream.ErrKeyNotFound) {
			return 0
		}
		return 0
	}
	return binary.BigEndian.Uint64(e.Value())
}

// The cluster's last leader is noted in the info bucket as each leader
// starts leading ("leader.last"). A cluster whose log's servers all lost
// power lost the log's last records, answered ones among them, which the
// last leader's journal holds; it gives them back as it starts
// (Reappend), unless another node wrote in their places first. So a node
// that starts waits for the last leader to lead, for Options.StartGrace at most
// (the last leader's machine may be gone), before it takes a lease nobody
// holds. A node that was running when the leader went takes over as
// quickly as ever.

// noteLeader notes this node as the cluster's last leader.
func (n *Node) noteLeader(ctx context.Context) {
	info, err := n.js.KeyValue(ctx, InfoBucket)
	if err == nil {
		_, err = info.Put(ctx, "leader.last", []byte(n.opts.Name))
	}
	if err != nil && !errors.Is(err, context.Canceled) {
		n.log.Warn().Err(err).Msg("noting this node as the cluster's last leader")
	}
}

// lastLeaderName is the cluster's last leader ("" if none, or unknown).
func (n *Node) lastLeaderName(ctx context.Context) string {
	ctx, cancel := context.WithTimeout(ctx, n.opts.LeaseTTL)
	defer cancel()
	info, err := n.js.KeyValue(ctx, InfoBucket)
	if err != nil {
		return ""
	}
	e, err := getKey(ctx, info, "leader.last")
	if err != nil {
		return ""
	}
	return string(e.Value())
}

// sawLeaseRev notes the revision of the lease seen held.
func (n *Node) sawLeaseRev(rev uint64) {
	switch {
	case n.firstLease == 0:
		n.firstLease = rev
	case rev != n.firstLease:
		n.leaseWritten = true
	}
}

// leaveToLast reports whether this node, just started, leaves a lease
// nobody holds to the cluster's last leader a while longer.
func (n *Node) leaveToLast() bool {
	if n.lastLeader == "" || n.lastLeader == n.opts.Name || n.leaseWritten {
		return false
	}
	left := n.opts.StartGrace - time.Since(n.startedAt)
	if left > 0 && !n.waitedLast {
		n.waitedLast = true
		n.log.Info().Str("last_leader", n.lastLeader).Dur("up_to", left.Round(time.Millisecond)).
			Msg("leaving the lease to the cluster's last leader a while: after a power loss of the log's servers, it holds answered records the log lost")
	}
	return left > 0
}

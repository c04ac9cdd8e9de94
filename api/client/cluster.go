package client

import (
	"context"
	"net/http"

	"github.com/quotaledger/quotaledger/api/wire"
)

// Cluster is the answer of ClusterStatus: the nodes of the server's
// cluster, the leader first (a single node: itself alone, role "single").
type Cluster = wire.Cluster

// ClusterNode is one node of a Cluster.
type ClusterNode = wire.ClusterNode

// ClusterStatus returns every node of the server's cluster with its role,
// applied log sequence, lag, last contact and digest, as the node called
// sees them (GET /account/v1.0/cluster; admins and readers).
func (c *Client) ClusterStatus(ctx context.Context) (*Cluster, error) {
	var out Cluster
	if _, err := c.do(ctx, &request{method: http.MethodGet, path: accountPrefix + "/cluster", idempotent: true}, &out); err != nil {
		return nil, err
	}
	return &out, nil
}

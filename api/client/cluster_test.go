package client_test

import (
	"context"
	"testing"

	"github.com/quotaledger/quotaledger/api/client"
)

func TestClusterStatus(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	cl, err := e.admin.ClusterStatus(ctx)
	check(t, "GET /account/v1.0/cluster", err)
	if len(cl.Nodes) != 1 || cl.Nodes[0].Role != "single" || cl.Nodes[0].Digest == "" || cl.Nodes[0].Applied == 0 {
		t.Fatalf("the status of a single node: %+v", cl)
	}
	_, err = e.user.ClusterStatus(ctx)
	wantErr[*client.Forbidden](t, "a user's cluster status", err, 403)
}

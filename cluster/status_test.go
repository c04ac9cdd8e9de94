package cluster

import (
	"context"
	"fmt"
	"strconv"
	"testing"
	"time"

	"github.com/quotaledger/quotaledger/holdings"
	"github.com/quotaledger/quotaledger/internal/testkit"
	"github.com/quotaledger/quotaledger/ledger"
)

// TestStatusDigestWhenIdle: once the writes stop, every node's status
// shows the digest of the state it holds (at its applied record), without
// waiting for the digest's periodic refresh (an hour here): a node that
// caught up is seen to agree with the others within a report.
func TestStatusDigestWhenIdle(t *testing.T) {
	nc, _, _ := oneServerLog(t)
	ctx := context.Background()
	srv := &testServer{t: t, url: nc.ConnectedUrl()}
	opts := Options{Replicas: 1, digestEvery: time.Hour}
	nodes := []*testNode{startNode(t, srv, "n1", opts), startNode(t, srv, "n2", opts)}
	leader := leaderOf(t, nodes)
	for i := range 10 {
		k := holdings.Key{Holder: "user:" + strconv.Itoa(i), Source: holdings.NullSource, Resource: "vm"}
		if err := leader.l.SetHoldings(ctx, []ledger.HoldingSetting{{Key: k, Limit: 10}}); err != nil {
			t.Fatal(err)
		}
	}
	converged(t, nodes)
	want, digest := leader.l.Digest()
	testkit.CheckFor(t, testkit.Patience, 50*time.Millisecond, func() error {
		st, err := leader.n.Status(ctx)
		if err != nil {
			return err
		}
		if len(st) != 2 {
			return fmt.Errorf("status lists %d nodes: %+v", len(st), st)
		}
		for _, s := range st {
			if s.DigestSeq != want || s.Digest != digest {
				return fmt.Errorf("%s's status: digest %s at %d, want %s at %d (applied %d)", s.Name, s.Digest, s.DigestSeq, digest, want, s.Applied)
			}
		}
		return nil
	})
}

package cluster

import (
	"context"
	"errors"
	"syscall"
	"testing"
	"time"

	"github.com/quotaledger/quotaledger/holdings"
	"github.com/quotaledger/quotaledger/internal/testkit"
	"github.com/quotaledger/quotaledger/ledger"
)

// TestLeaseRenewalRetried: a renewal of the lease that fails (here: two of
// the three NATS servers stopped, so the lease's Raft group has no quorum
// and the renewal goes unacknowledged, as one that meets its group between
// two Raft leaders does) is tried again within the lease's TTL: once the
// servers are back the leader renews, and leads on, the lease never having
// changed hands.
func TestLeaseRenewalRetried(t *testing.T) {
	srvs := startServers(t, 3)
	// A long lease, so that the lease's Raft group is led again well
	// within it: a renewal is due every 15 s and fails at most 30 s after
	// the stop (its attempt's timeout, 15 s), the lease lasts 45 s, and
	// after a stop longer than nats-server's election timeout (4-9 s) the
	// group may need an election once the servers are back.
	tn := startNode(t, srvs[0], "n1", Options{LeaseTTL: 45 * time.Second})
	leaderOf(t, []*testNode{tn})
	ctx := context.Background()
	k := holdings.Key{Holder: "user:a", Source: holdings.NullSource, Resource: "vm"}
	if err := tn.l.SetHoldings(ctx, []ledger.HoldingSetting{{Key: k, Limit: 1}}); err != nil {
		t.Fatal(err)
	}

	fails := tn.n.renewFails.Load()
	for _, s := range srvs[1:] {
		s.signal(t, syscall.SIGSTOP)
	}
	testkit.CheckFor(t, testkit.Patience, 20*time.Millisecond, func() error {
		if tn.n.renewFails.Load() == fails {
			return errors.New("no renewal failed yet")
		}
		return nil
	})
	for _, s := range srvs[1:] {
		s.signal(t, syscall.SIGCONT)
	}
	// Renewed since: it fails no more.
	testkit.CheckFor(t, testkit.Patience, 20*time.Millisecond, func() error {
		e, err := tn.n.lease.Get(ctx, "leader")
		if err != nil {
			return err
		}
		if time.Since(e.Created()) > time.Second {
			return errors.New("not renewed since the servers came back")
		}
		return nil
	})
	if !tn.l.Leading() || tn.n.LeaseChanges() != 1 {
		t.Fatalf("n1 leading %v, the lease changed hands %d times; want it leading still, once", tn.l.Leading(), tn.n.LeaseChanges())
	}
	if err := tn.l.SetHoldings(ctx, []ledger.HoldingSetting{{Key: k, Limit: 2}}); err != nil {
		t.Fatal(err)
	}
}

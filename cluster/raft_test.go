package cluster

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/quotaledger/quotaledger/holdings"
	"github.com/quotaledger/quotaledger/internal/testkit"
	"github.com/quotaledger/quotaledger/ledger"
)

// streamLeader is the server that leads stream's Raft group, as nc's
// server knows it.
func streamLeader(nc *nats.Conn, stream string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	js, err := jetstream.New(nc)
	if err != nil {
		return "", err
	}
	s, err := js.Stream(ctx, stream)
	if err != nil {
		return "", err
	}
	info, err := s.Info(ctx)
	if err != nil {
		return "", err
	}
	if info.Cluster == nil {
		return "", errors.New("not clustered")
	}
	return info.Cluster.Leader, nil
}

// moveStreamLeader makes server lead stream's Raft group (a stepdown with
// a preferred placement) and waits until it does.
func moveStreamLeader(t *testing.T, nc *nats.Conn, stream, server string) {
	t.Helper()
	req, _ := json.Marshal(map[string]any{"placement": map[string]string{"preferred": server}})
	testkit.CheckFor(t, testkit.Patience, 50*time.Millisecond, func() error {
		leader, err := streamLeader(nc, stream)
		if err != nil {
			return err
		}
		if leader == server {
			return nil
		}
		m, err := nc.Request("$JS.API.STREAM.LEADER.STEPDOWN."+stream, req, 5*time.Second)
		if err != nil {
			return err
		}
		var resp stepdownResponse
		if err := json.Unmarshal(m.Data, &resp); err != nil {
			return err
		}
		return fmt.Errorf("%s led by %s; asked it to move to %s: %s", stream, leader, server, m.Data)
	})
}

// offServer waits until neither Raft group of the write path is led by
// server (nor leaderless).
func offServer(t *testing.T, nc *nats.Conn, server string) {
	t.Helper()
	testkit.CheckFor(t, testkit.Patience, 20*time.Millisecond, func() error {
		for _, stream := range writePath {
			leader, err := streamLeader(nc, stream)
			if err != nil {
				return err
			}
			if leader == "" || leader == server {
				return fmt.Errorf("%s's Raft group is led by %q", stream, leader)
			}
		}
		return nil
	})
}

// TestRaftLeadersMoved: a node that leads moves the Raft leaders of the
// log and of the lease off its own NATS server, so that losing its machine
// loses no Raft leader on the write path (docs/cluster.md, Figures); when
// one comes back to its server while it leads, it moves it off again, and
// leads on, its writes answered.
func TestRaftLeadersMoved(t *testing.T) {
	srvs := startServers(t, 3)
	nc, err := nats.Connect(srvs[0].ClientURL())
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	testkit.CheckFor(t, testkit.Patience, 100*time.Millisecond, func() error {
		_, err := Setup(context.Background(), Options{Name: "setup", Conn: nc, LeaseTTL: time.Second}, "cluster-test")
		return err
	})
	// The Raft leaders on n1's server, where the only node runs: it leads.
	for _, stream := range writePath {
		moveStreamLeader(t, nc, stream, "n1")
	}
	tn := startNode(t, srvs[0], "n1", Options{})
	leaderOf(t, []*testNode{tn})
	offServer(t, nc, "n1")
	moves := tn.n.raftMoves.Load()
	if moves != uint64(len(writePath)) {
		t.Fatalf("%d Raft leaders moved, want %d", moves, len(writePath))
	}

	// Both come back to n1's server while it leads (a stepdown asked of
	// NATS, as an election would): it moves them off again.
	ctx := context.Background()
	k := holdings.Key{Holder: "user:a", Source: holdings.NullSource, Resource: "vm"}
	if err := tn.l.SetHoldings(ctx, []ledger.HoldingSetting{{Key: k, Limit: 1}}); err != nil {
		t.Fatal(err)
	}
	for _, stream := range writePath {
		moveStreamLeader(t, nc, stream, "n1")
	}
	testkit.CheckFor(t, testkit.Patience, 20*time.Millisecond, func() error {
		if m := tn.n.raftMoves.Load(); m < moves+uint64(len(writePath)) {
			return fmt.Errorf("%d Raft leaders moved, want %d", m, moves+uint64(len(writePath)))
		}
		return nil
	})
	offServer(t, nc, "n1")
	if !tn.l.Leading() || tn.n.LeaseChanges() != 1 {
		t.Fatalf("n1 leading %v, the lease changed hands %d times; want it leading still, once", tn.l.Leading(), tn.n.LeaseChanges())
	}
	if err := tn.l.SetHoldings(ctx, []ledger.HoldingSetting{{Key: k, Limit: 2}}); err != nil {
		t.Fatal(err)
	}
}

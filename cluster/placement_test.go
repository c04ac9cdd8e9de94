package cluster

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/quotaledger/quotaledger/holdings"
	"github.com/quotaledger/quotaledger/internal/testkit"
	"github.com/quotaledger/quotaledger/ledger"
)

// streamCluster is what stream's Raft leader says of its group, as nc's
// server reaches it.
func streamCluster(nc *nats.Conn, stream string) (*jetstream.ClusterInfo, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	js, err := jetstream.New(nc)
	if err != nil {
		return nil, err
	}
	s, err := js.Stream(ctx, stream)
	if err != nil {
		return nil, err
	}
	info, err := s.Info(ctx)
	if err != nil {
		return nil, err
	}
	if info.Cluster == nil {
		return nil, errors.New("not clustered")
	}
	return info.Cluster, nil
}

// streamLeader is the server that leads stream's Raft group, as nc's
// server knows it.
func streamLeader(nc *nats.Conn, stream string) (string, error) {
	ci, err := streamCluster(nc, stream)
	if err != nil {
		return "", err
	}
	return ci.Leader, nil
}

// moveStreamLeader makes server lead stream's Raft group (a stepdown with
// a preferred placement) and waits until it does. Like the node's moves
// (placement.go) it asks only when server is current with the group's
// leader, and at most once per election timeout: a stepdown to a peer
// that is behind leaves the group leaderless until an election, and the
// node's lease would lapse meanwhile, which is not what the test is about.
func moveStreamLeader(t *testing.T, nc *nats.Conn, stream, server string) {
	t.Helper()
	req, _ := json.Marshal(map[string]any{"placement": map[string]string{"preferred": server}})
	var asked time.Time
	testkit.CheckFor(t, testkit.Patience, 50*time.Millisecond, func() error {
		ci, err := streamCluster(nc, stream)
		if err != nil {
			return err
		}
		if ci.Leader == server {
			return nil
		}
		if time.Since(asked) < electionTimeout {
			return fmt.Errorf("%s led by %s; asked it to move to %s %v ago", stream, ci.Leader, server, time.Since(asked))
		}
		if successorOf(&jetstream.ClusterInfo{Replicas: slices.DeleteFunc(slices.Clone(ci.Replicas),
			func(p *jetstream.PeerInfo) bool { return p.Name != server })}) == "" {
			return fmt.Errorf("%s led by %s; %s is not current with it: %+v", stream, ci.Leader, server, ci.Replicas)
		}
		asked = time.Now()
		m, err := nc.Request("$JS.API.STREAM.LEADER.STEPDOWN."+stream, req, 5*time.Second)
		if err != nil {
			return err
		}
		return fmt.Errorf("%s led by %s; asked it to move to %s: %s", stream, ci.Leader, server, m.Data)
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
	// The lease as in production (its default TTL): the moves happen
	// between its renewals, and the test checks the lease never lapses.
	ttl := Options{}.withDefaults().LeaseTTL
	testkit.CheckFor(t, testkit.Patience, 100*time.Millisecond, func() error {
		_, err := Setup(context.Background(), Options{Name: "setup", Conn: nc, LeaseTTL: ttl}, "cluster-test")
		return err
	})
	// The Raft leaders on n1's server, where the only node runs: it leads.
	for _, stream := range writePath {
		moveStreamLeader(t, nc, stream, "n1")
	}
	tn := startNode(t, srvs[0], "n1", Options{LeaseTTL: ttl})
	leaderOf(t, []*testNode{tn})
	raftMoves := func(want uint64) {
		t.Helper()
		testkit.CheckFor(t, testkit.Patience, 20*time.Millisecond, func() error {
			if m := tn.n.raftMoves.Load(); m < want {
				return fmt.Errorf("%d Raft leaders moved, want %d", m, want)
			}
			return nil
		})
	}
	raftMoves(uint64(len(writePath)))
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
	raftMoves(moves + uint64(len(writePath)))
	offServer(t, nc, "n1")
	if !tn.l.Leading() || tn.n.LeaseChanges() != 1 {
		t.Fatalf("n1 leading %v, the lease changed hands %d times; want it leading still, once", tn.l.Leading(), tn.n.LeaseChanges())
	}
	if err := tn.l.SetHoldings(ctx, []ledger.HoldingSetting{{Key: k, Limit: 2}}); err != nil {
		t.Fatal(err)
	}
}

// TestSuccessorOf: a Raft group is handed only to a peer that can act on
// the transfer at once: current with the leader's log, no lag, a member,
// online and heard from within two heartbeats; the one heard from last
// when several can; none when none can.
func TestSuccessorOf(t *testing.T) {
	good := func(name string, active time.Duration) *jetstream.PeerInfo {
		return &jetstream.PeerInfo{Name: name, Current: true, Active: active}
	}
	with := func(p *jetstream.PeerInfo, f func(*jetstream.PeerInfo)) *jetstream.PeerInfo {
		f(p)
		return p
	}
	for _, c := range []struct {
		name     string
		replicas []*jetstream.PeerInfo
		want     string
	}{
		{"none", nil, ""},
		{"one current", []*jetstream.PeerInfo{good("n2", 300*time.Millisecond)}, "n2"},
		{"the one heard from last", []*jetstream.PeerInfo{good("n2", 900*time.Millisecond), good("n3", 100*time.Millisecond)}, "n3"},
		{"not current (catching up)", []*jetstream.PeerInfo{with(good("n2", 0), func(p *jetstream.PeerInfo) { p.Current = false })}, ""},
		{"lagging", []*jetstream.PeerInfo{with(good("n2", 0), func(p *jetstream.PeerInfo) { p.Lag = 1 })}, ""},
		{"offline", []*jetstream.PeerInfo{with(good("n2", 0), func(p *jetstream.PeerInfo) { p.Offline = true })}, ""},
		{"not yet a member", []*jetstream.PeerInfo{with(good("n2", 0), func(p *jetstream.PeerInfo) { p.Pending = true })}, ""},
		{"not heard from lately", []*jetstream.PeerInfo{good("n2", 2*raftHeartbeat+time.Millisecond)}, ""},
		{"the good one of two", []*jetstream.PeerInfo{with(good("n2", 0), func(p *jetstream.PeerInfo) { p.Lag = 3 }), good("n3", time.Second)}, "n3"},
	} {
		t.Run(c.name, func(t *testing.T) {
			if got := successorOf(&jetstream.ClusterInfo{Replicas: c.replicas}); got != c.want {
				t.Fatalf("successorOf = %q, want %q", got, c.want)
			}
		})
	}
}

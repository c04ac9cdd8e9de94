package cluster

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/rs/zerolog"

	"github.com/quotaledger/quotaledger/holdings"
	"github.com/quotaledger/quotaledger/internal/testkit"
	"github.com/quotaledger/quotaledger/ledger"
)

// metaOf is what server name (a natsd of the test cluster) says of
// JetStream's meta group: its leader ("" when it has none) and size.
func metaOf(nc *nats.Conn, name string) (*server.MetaClusterInfo, error) {
	m, err := nc.Request("natsd.meta."+name, nil, 5*time.Second)
	if err != nil {
		return nil, err
	}
	var meta *server.MetaClusterInfo
	if err := json.Unmarshal(m.Data, &meta); err != nil {
		return nil, err
	}
	if meta == nil {
		return nil, fmt.Errorf("%s: no meta group", name)
	}
	return meta, nil
}

// addServers starts k more NATS servers into the cluster of srvs, named
// after them (n4, n5, ...).
func addServers(t *testing.T, srvs []*testServer, k int) []*testServer {
	t.Helper()
	var routes []string
	for _, s := range srvs {
		routes = append(routes, s.args[slices.Index(s.args, "-route")+1])
	}
	var added []*testServer
	for i := range k {
		// Ports the server picks itself (it dials the others; none dials
		// it): a port found free and then bound by the server was taken by
		// another test's process in between once ("address already in
		// use" in make test).
		added = append(added, &testServer{t: t, args: []string{"-dir", t.TempDir(), "-listen", "127.0.0.1:-1",
			"-name", fmt.Sprintf("n%d", len(srvs)+i+1), "-route", "127.0.0.1:-1", "-peers", strings.Join(routes, ",")}})
	}
	var wg sync.WaitGroup
	for _, s := range added {
		wg.Add(1)
		go func() {
			defer wg.Done()
			s.start()
		}()
	}
	wg.Wait()
	for _, s := range added {
		t.Cleanup(s.Shutdown)
	}
	return added
}

// kill ends the server's process at once (SIGKILL: its machine lost).
func (s *testServer) kill() {
	s.t.Helper()
	s.signal(s.t, syscall.SIGKILL)
	_ = s.cmd.Wait()
	s.cmd = nil
}

// TestFailoverWithoutMetaLeader: a node takes over, and answers writes,
// while JetStream's meta group has no leader. The meta group (every NATS
// server of the cluster) creates consumers, and loses its leader with the
// leader's machine when its server led it: until it elects another (4-9 s)
// no consumer of the log can be made, and a node that waited for one
// would neither campaign nor lead (docs/cluster.md, Figures). The log and
// the lease live on three servers (R3) of five: the meta group's leader
// and the quotaledger leader on one of those three, the other two servers
// of the five stopped with it, the meta group has no quorum and elects
// nobody, while the log's and the lease's groups (their Raft leaders moved
// off the leader's server) keep theirs. The two nodes left start again
// (as a node does whose consumer failed): one of them must lead and write,
// the other follow, with the meta group leaderless throughout; once the
// two servers come back, the meta group leads again and they go on.
func TestFailoverWithoutMetaLeader(t *testing.T) {
	srvs := startServers(t, 3)
	nc, err := nats.Connect(srvs[0].ClientURL())
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	// The streams on the three servers there are.
	testkit.CheckFor(t, testkit.Patience, 100*time.Millisecond, func() error {
		_, err := Setup(context.Background(), Options{Name: "setup", Conn: nc, LeaseTTL: time.Second}, "cluster-test")
		return err
	})
	var metaLeader string
	testkit.CheckFor(t, testkit.Patience, 50*time.Millisecond, func() error {
		meta, err := metaOf(nc, "n1")
		if err != nil {
			return err
		}
		if meta.Leader == "" {
			return errors.New("the meta group has no leader")
		}
		metaLeader = meta.Leader
		return nil
	})
	// The node on the meta leader's server starts first, and leads.
	byName := map[string]*testServer{}
	for i, s := range srvs {
		byName[fmt.Sprintf("n%d", i+1)] = s
	}
	old := startNode(t, byName[metaLeader], metaLeader, Options{})
	if leaderOf(t, []*testNode{old}) != old {
		t.Fatal("not the leader")
	}
	nodes := []*testNode{old}
	var rest []*testNode
	for i, s := range srvs {
		if name := fmt.Sprintf("n%d", i+1); name != metaLeader {
			tn := startNode(t, s, name, Options{})
			nodes, rest = append(nodes, tn), append(rest, tn)
		}
	}
	ctx := context.Background()
	k := holdings.Key{Holder: "user:a", Source: holdings.NullSource, Resource: "vm"}
	if err := old.l.SetHoldings(ctx, []ledger.HoldingSetting{{Key: k, Limit: 1000}}); err != nil {
		t.Fatal(err)
	}
	for range 20 {
		res, err := old.l.Issue(ctx, ledger.IssueRequest{Client: "c", Provisions: []holdings.Provision{{Key: k, Quantity: 1}}})
		if err != nil {
			t.Fatal(err)
		}
		if err := old.l.Resolve(ctx, "c", res.Serial, true, ""); err != nil {
			t.Fatal(err)
		}
	}
	converged(t, nodes)

	// Two more servers: the meta group is five, the streams stay on three.
	extra := addServers(t, srvs, 2)
	testkit.CheckFor(t, testkit.Patience, 50*time.Millisecond, func() error {
		meta, err := metaOf(rest[0].nc, metaLeader) // as its leader sees it
		if err != nil {
			return err
		}
		if meta.Leader != metaLeader || meta.Size != 5 || len(meta.Replicas) != 4 {
			return fmt.Errorf("meta group led by %q, size %d, %d replicas; want %s, 5, 4", meta.Leader, meta.Size, len(meta.Replicas), metaLeader)
		}
		for _, p := range meta.Replicas {
			if !p.Current || p.Offline {
				return fmt.Errorf("meta group member %s current %v offline %v", p.Name, p.Current, p.Offline)
			}
		}
		return nil
	})
	// The write path's Raft leaders off the leader's server, as it leads.
	offServer(t, rest[0].nc, metaLeader)

	// The leader's machine goes, and the two other servers: the meta
	// group has two of five, no leader; the log and the lease two of
	// three, and their leaders.
	byName[metaLeader].kill()
	for _, s := range extra {
		s.kill()
	}
	old.nc.Close()
	_ = old.n.Close()
	old.n = nil
	testkit.CheckFor(t, testkit.Patience, 50*time.Millisecond, func() error {
		meta, err := metaOf(rest[0].nc, rest[0].name)
		if err != nil {
			return err
		}
		if meta.Leader != "" {
			return fmt.Errorf("the meta group is led by %s", meta.Leader)
		}
		return nil
	})
	// The nodes left start again: each needs a new consumer of the log.
	for _, tn := range rest {
		_ = tn.n.Close()
		if tn.n, err = Start(ctx, tn.l, Options{Name: tn.name, Conn: tn.nc, LeaseTTL: time.Second,
			Logger: zerolog.New(zerolog.NewTestWriter(t)).Level(zerolog.InfoLevel)}); err != nil {
			t.Fatal(err)
		}
	}
	leader := leaderOf(t, rest)
	if v, _ := leader.l.FindHoldingByKey(k); v.UsageMin != 20 {
		t.Fatalf("the new leader shows %+v, want usage 20", v)
	}
	if err := leader.l.SetHoldings(ctx, []ledger.HoldingSetting{{Key: k, Limit: 2000}}); err != nil {
		t.Fatal(err)
	}
	converged(t, rest)
	for _, tn := range rest {
		if v, _ := tn.l.FindHoldingByKey(k); v.Limit != 2000 {
			t.Fatalf("%s shows %+v, want limit 2000", tn.name, v)
		}
	}
	// The cluster's status lists both nodes, the leader first.
	testkit.CheckFor(t, testkit.Patience, 50*time.Millisecond, func() error {
		st, err := leader.n.Status(ctx)
		if err != nil {
			return err
		}
		if len(st) != 2 || st[0].Name != leader.name || st[0].Role != "leader" || st[1].Role != "follower" {
			return fmt.Errorf("the cluster's status without a meta leader: %+v", st)
		}
		return nil
	})
	// All that while, no meta leader (two servers of five).
	for _, tn := range rest {
		meta, err := metaOf(tn.nc, tn.name)
		if err != nil {
			t.Fatal(err)
		}
		if meta.Leader != "" {
			t.Fatalf("the meta group is led by %s: the test did not keep it leaderless", meta.Leader)
		}
	}

	// The two servers back: the meta group leads again, and the nodes go
	// on (their consumers made again).
	for _, s := range extra {
		s.start()
	}
	testkit.CheckFor(t, testkit.Patience, 50*time.Millisecond, func() error {
		meta, err := metaOf(rest[0].nc, rest[0].name)
		if err != nil {
			return err
		}
		if meta.Leader == "" {
			return errors.New("the meta group has no leader")
		}
		return nil
	})
	if err := leader.l.SetHoldings(ctx, []ledger.HoldingSetting{{Key: k, Limit: 3000}}); err != nil {
		t.Fatal(err)
	}
	converged(t, rest)
}

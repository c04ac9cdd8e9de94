package cluster

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/rs/zerolog"

	"github.com/quotaledger/quotaledger/events"
	"github.com/quotaledger/quotaledger/holdings"
	"github.com/quotaledger/quotaledger/internal/testkit"
	"github.com/quotaledger/quotaledger/internal/testkit/ledgertest"
	"github.com/quotaledger/quotaledger/ledger"
)

// testNode is one node of a cluster in this process: a ledger on an
// in-memory filesystem (or on disk) and a Node, connected to a NATS server
// of the cluster.
type testNode struct {
	name string
	srv  *testServer
	nc   *nats.Conn
	l    *ledger.Ledger
	n    *Node
}

func (tn *testNode) stop() {
	if tn.n != nil {
		_ = tn.n.Close()
	}
	if tn.l != nil {
		_ = tn.l.Close()
	}
	if tn.nc != nil {
		tn.nc.Close()
	}
}

// testServer is a NATS server of the test cluster, in a process of its own
// (internal/testkit/natsd), built without the race detector: a clustered
// JetStream server's own data races are not what these tests look for.
type testServer struct {
	t    *testing.T
	url  string
	args []string
	cmd  *exec.Cmd
}

var natsdOnce sync.Once
var natsdPath, natsdErr = "", error(nil)

func natsd(t *testing.T) string {
	t.Helper()
	natsdOnce.Do(func() {
		dir, err := os.MkdirTemp("", "natsd")
		if err != nil {
			natsdErr = err
			return
		}
		natsdPath = filepath.Join(dir, "natsd")
		out, err := exec.Command("go", "build", "-o", natsdPath, "../internal/testkit/natsd").CombinedOutput()
		if err != nil {
			natsdErr = fmt.Errorf("building natsd: %v\n%s", err, out)
		}
	})
	if natsdErr != nil {
		t.Fatal(natsdErr)
	}
	return natsdPath
}

// start runs the server's process; it is ready once it printed its URL.
func (s *testServer) start() {
	s.t.Helper()
	cmd := exec.Command(natsd(s.t), s.args...)
	cmd.Stderr = os.Stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		s.t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		s.t.Fatal(err)
	}
	s.cmd = cmd
	line := make(chan string, 1)
	go func() {
		b := make([]byte, 256)
		n, _ := out.Read(b)
		line <- strings.TrimSpace(string(b[:n]))
		_, _ = io.Copy(io.Discard, out)
	}()
	select {
	case l := <-line:
		if !strings.HasPrefix(l, "nats://") {
			s.t.Fatalf("natsd printed %q", l)
		}
		s.url = l // its client URL, the port it took when given -1
	case <-time.After(testkit.Patience):
		s.t.Fatal("natsd did not start")
	}
}

func (s *testServer) ClientURL() string { return s.url }

// signal sends sig to the server's process (SIGSTOP, SIGCONT: a server
// that answers nothing for a while).
func (s *testServer) signal(t *testing.T, sig syscall.Signal) {
	t.Helper()
	if err := s.cmd.Process.Signal(sig); err != nil {
		t.Fatalf("%v to %s: %v", sig, s.url, err)
	}
}

// Shutdown stops the server (SIGTERM) and waits for it.
func (s *testServer) Shutdown() {
	if s.cmd == nil {
		return
	}
	_ = s.cmd.Process.Signal(syscall.SIGTERM)
	_ = s.cmd.Wait()
	s.cmd = nil
}

// startServers starts n NATS servers as one cluster on loopback, all at
// once (a server of a JetStream cluster is ready once a quorum is).
func startServers(t *testing.T, n int) []*testServer {
	t.Helper()
	routes, clients := make([]string, n), make([]string, n)
	for i := range routes {
		routes[i], clients[i] = testkit.FreeAddr(t), testkit.FreeAddr(t)
	}
	srvs := make([]*testServer, n)
	for i := range n {
		var others []string
		for j, r := range routes {
			if j != i {
				others = append(others, r)
			}
		}
		srvs[i] = &testServer{t: t, url: "nats://" + clients[i], args: []string{"-dir", t.TempDir(), "-listen", clients[i],
			"-name", fmt.Sprintf("n%d", i+1), "-route", routes[i], "-peers", strings.Join(others, ",")}}
	}
	var wg sync.WaitGroup
	for _, s := range srvs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			s.start()
		}()
	}
	wg.Wait()
	for _, s := range srvs {
		t.Cleanup(s.Shutdown)
	}
	testkit.CheckFor(t, testkit.Patience, 50*time.Millisecond, func() error {
		for _, s := range srvs {
			nc, err := nats.Connect(s.url)
			if err != nil {
				return err
			}
			js, _ := jetstream.New(nc)
			_, err = js.AccountInfo(context.Background())
			nc.Close()
			if err != nil {
				return err
			}
		}
		return nil
	})
	return srvs
}

func startNode(t *testing.T, srv *testServer, name string, opts Options) *testNode {
	return startNodeIn(t, srv, name, "", opts)
}

// startNodeIn starts a node whose ledger is in dataDir/ledger on disk ("":
// in memory).
func startNodeIn(t *testing.T, srv *testServer, name, dataDir string, opts Options) *testNode {
	t.Helper()
	tn := &testNode{name: name, srv: srv}
	nc, err := nats.Connect(srv.ClientURL())
	if err != nil {
		t.Fatal(err)
	}
	tn.nc = nc
	opts.Name, opts.Conn, opts.Logger = name, nc, zerolog.New(zerolog.NewTestWriter(t)).Level(zerolog.InfoLevel)
	if opts.LeaseTTL == 0 {
		opts.LeaseTTL = time.Second
	}
	ctx := context.Background()
	var id string
	testkit.CheckFor(t, testkit.Patience, 100*time.Millisecond, func() error {
		var err error
		id, err = Setup(ctx, opts, "cluster-"+name)
		return err
	})
	lopts := ledger.Options{Follower: true, ID: id}
	if dataDir != "" {
		lopts.Dir = filepath.Join(dataDir, "ledger")
		end, err := LogEnd(ctx, nc)
		if err != nil {
			t.Fatal(err)
		}
		lopts.KeepJournalTo = end
		if lopts.InLog, err = InLog(ctx, nc); err != nil {
			t.Fatal(err)
		}
		if lopts.Reappend, err = Reappend(ctx, nc, opts.PartSize); err != nil {
			t.Fatal(err)
		}
	}
	if dataDir == "" {
		tn.l = ledgertest.Open(t, lopts)
	} else {
		// As serve does: a ledger ahead of the log, on places another
		// node took, starts again from the cluster's checkpoint.
		tn.l, err = ledgertest.TryOpen(t, lopts)
		if errors.Is(err, ledger.ErrPastLog) {
			t.Logf("%s: %v: restoring the cluster's checkpoint", name, err)
			if err := RestoreCheckpoint(ctx, nc, dataDir); err != nil {
				t.Fatal(err)
			}
			tn.l, err = ledgertest.TryOpen(t, lopts)
		}
		if err != nil {
			t.Fatal(err)
		}
	}
	if tn.n, err = Start(ctx, tn.l, opts); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(tn.stop)
	return tn
}

// leaderOf waits for one of nodes to lead and returns it.
func leaderOf(t *testing.T, nodes []*testNode) *testNode {
	t.Helper()
	var leader *testNode
	testkit.CheckFor(t, testkit.Patience, 20*time.Millisecond, func() error {
		leader = nil
		for _, tn := range nodes {
			if tn.n != nil && tn.l.Leading() {
				if leader != nil {
					return fmt.Errorf("%s and %s both lead", leader.name, tn.name)
				}
				leader = tn
			}
		}
		if leader == nil {
			return errors.New("no leader")
		}
		return nil
	})
	return leader
}

// converged waits until every node applied as far as the leader and shows
// the same digest.
func converged(t *testing.T, nodes []*testNode) {
	t.Helper()
	testkit.CheckFor(t, testkit.Patience, 20*time.Millisecond, func() error {
		var seq uint64
		var digest string
		for i, tn := range nodes {
			s, d := tn.l.Digest()
			if i == 0 {
				seq, digest = s, d
				continue
			}
			if s != seq || d != digest {
				return fmt.Errorf("%s is at %d %s, %s at %d %s", nodes[0].name, seq, digest, tn.name, s, d)
			}
		}
		return nil
	})
}

// oneServerLog starts a NATS server of its own with the cluster's stream
// and buckets (R1, Setup, as node n1) and returns a connection to it, its
// JetStream and the cluster's id.
func oneServerLog(t *testing.T) (*nats.Conn, jetstream.JetStream, string) {
	t.Helper()
	ns, err := events.StartServer(events.ServerOptions{Dir: t.TempDir(), Listen: "127.0.0.1:-1", Logger: zerolog.Nop()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(ns.Shutdown)
	nc, err := nats.Connect(ns.ClientURL())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	id, err := Setup(context.Background(), Options{Name: "n1", Conn: nc, Replicas: 1}, "cluster-1")
	if err != nil {
		t.Fatal(err)
	}
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	return nc, js, id
}

// TestFailover runs a cluster of three nodes in this process: one leads,
// the others follow its writes to the same state; the leader stops, another
// takes over and writes on; the old one comes back as a follower.
func TestFailover(t *testing.T) {
	srvs := startServers(t, 3)
	var nodes []*testNode
	for i, s := range srvs {
		nodes = append(nodes, startNode(t, s, fmt.Sprintf("n%d", i+1), Options{}))
	}
	ctx := context.Background()
	k := holdings.Key{Holder: "user:a", Source: holdings.NullSource, Resource: "vm"}
	leader := leaderOf(t, nodes)
	if err := leader.l.SetHoldings(ctx, []ledger.HoldingSetting{{Key: k, Limit: 1000}}); err != nil {
		t.Fatal(err)
	}
	for range 50 {
		res, err := leader.l.Issue(ctx, ledger.IssueRequest{Client: "c", Provisions: []holdings.Provision{{Key: k, Quantity: 1}}})
		if err != nil {
			t.Fatal(err)
		}
		if err := leader.l.Resolve(ctx, "c", res.Serial, true, ""); err != nil {
			t.Fatal(err)
		}
	}
	for _, tn := range nodes {
		if tn != leader {
			if err := tn.l.SetHoldings(ctx, []ledger.HoldingSetting{{Key: k, Limit: 1}}); !errors.Is(err, ledger.ErrNotLeader) {
				t.Fatalf("a write on follower %s: %v", tn.name, err)
			}
		}
	}
	converged(t, nodes)

	// The leader goes; another leads and writes on.
	old := leader
	_ = old.n.Close()
	old.n = nil
	var rest []*testNode
	for _, tn := range nodes {
		if tn != old {
			rest = append(rest, tn)
		}
	}
	start := time.Now()
	leader = leaderOf(t, rest)
	t.Logf("%s took over from %s in %v", leader.name, old.name, time.Since(start))
	if v, _ := leader.l.FindHoldingByKey(k); v.UsageMin != 50 {
		t.Fatalf("the new leader shows %+v, want usage 50", v)
	}
	if err := leader.l.SetHoldings(ctx, []ledger.HoldingSetting{{Key: k, Limit: 2000}}); err != nil {
		t.Fatal(err)
	}
	converged(t, rest)

	// The old leader comes back, as a follower.
	old.n, _ = Start(ctx, old.l, Options{Name: old.name, Conn: old.nc, Logger: zerolog.Nop(), LeaseTTL: time.Second})
	converged(t, nodes)
	if v, _ := old.l.FindHoldingByKey(k); v.Limit != 2000 {
		t.Fatalf("the old leader shows %+v, want limit 2000", v)
	}
	testkit.CheckFor(t, testkit.Patience, 50*time.Millisecond, func() error {
		st, err := leader.n.Status(ctx)
		if err != nil {
			return err
		}
		if len(st) != 3 || st[0].Role != "leader" || st[0].Name != leader.name || st[1].Role != "follower" {
			return fmt.Errorf("status %+v", st)
		}
		for _, s := range st[1:] {
			if s.DigestSeq == st[0].DigestSeq && s.Digest != st[0].Digest {
				return fmt.Errorf("%s and %s differ at %d", s.Name, st[0].Name, s.DigestSeq)
			}
		}
		return nil
	})
}

// TestPartition cuts the leader off (its NATS server stops) while writers
// keep issuing: another node leads within a few lease periods; every
// answered issue is on every node afterwards, once; the old leader, its
// server back, follows again and converges.
func TestPartition(t *testing.T) {
	srvs := startServers(t, 3)
	var nodes []*testNode
	for i, s := range srvs {
		nodes = append(nodes, startNode(t, s, fmt.Sprintf("n%d", i+1), Options{}))
	}
	ctx := context.Background()
	k := holdings.Key{Holder: "user:a", Source: holdings.NullSource, Resource: "vm"}
	leader := leaderOf(t, nodes)
	if err := leader.l.SetHoldings(ctx, []ledger.HoldingSetting{{Key: k, Limit: 1 << 40}}); err != nil {
		t.Fatal(err)
	}

	// Writers issue on whichever node leads, and note what was answered.
	var mu sync.Mutex
	answered := map[uint64]bool{}
	unknown := 0
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for w := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				var l *ledger.Ledger
				for _, tn := range nodes {
					if tn.l.Leading() {
						l = tn.l
					}
				}
				if l == nil {
					time.Sleep(10 * time.Millisecond)
					continue
				}
				res, err := l.Issue(ctx, ledger.IssueRequest{Client: "c", Name: fmt.Sprintf("w%d-%d", w, i),
					Provisions: []holdings.Provision{{Key: k, Quantity: 1}}})
				mu.Lock()
				switch {
				case err == nil:
					answered[res.Serial] = true
				case errors.Is(err, ledger.ErrDeposed):
					unknown++
				}
				mu.Unlock()
			}
		}()
	}
	time.Sleep(300 * time.Millisecond)
	old := leader
	old.srv.Shutdown()
	old.nc.Close() // a partition: its connection does not fail over to another server
	start := time.Now()
	var rest []*testNode
	for _, tn := range nodes {
		if tn != old {
			rest = append(rest, tn)
		}
	}
	leader = leaderOf(t, rest)
	t.Logf("%s took over from %s in %v", leader.name, old.name, time.Since(start))
	testkit.CheckFor(t, testkit.Patience, 20*time.Millisecond, func() error {
		if old.l.Leading() {
			return errors.New("the old leader still leads")
		}
		return nil
	})
	time.Sleep(300 * time.Millisecond)
	close(stop)
	wg.Wait()
	converged(t, rest)
	mu.Lock()
	defer mu.Unlock()
	for _, tn := range rest {
		pending := map[uint64]bool{}
		for _, s := range tn.l.Pending("c") {
			pending[s] = true
		}
		for s := range answered {
			if !pending[s] {
				t.Fatalf("issue %d was answered but is not pending on %s", s, tn.name)
			}
		}
		v, _ := tn.l.FindHoldingByKey(k)
		if int(v.UsageMax) != len(pending) {
			t.Fatalf("%s: usage %d, %d commissions pending", tn.name, v.UsageMax, len(pending))
		}
	}
	t.Logf("%d issues answered, %d with an unknown outcome", len(answered), unknown)
	if len(answered) == 0 {
		t.Fatal("no issue was answered")
	}
}

// TestJoin starts a node with an empty data directory in a cluster whose
// log has records: it restores the leader's checkpoint, follows the log
// from there and converges; wiped again, it does it again.
func TestJoin(t *testing.T) {
	srvs := startServers(t, 3)
	nodes := []*testNode{startNode(t, srvs[0], "n1", Options{}), startNode(t, srvs[1], "n2", Options{})}
	ctx := context.Background()
	k := holdings.Key{Holder: "user:a", Source: holdings.NullSource, Resource: "vm"}
	// set sets k's limit through whichever node leads: a leader whose
	// lease renewal times out on a loaded machine steps down, and the
	// write, refused (ErrNotLeader) or of unknown outcome (ErrDeposed), is
	// safe to make again on the next leader (a limit set twice is set).
	set := func(limit int64) {
		t.Helper()
		testkit.CheckFor(t, testkit.Patience, 20*time.Millisecond, func() error {
			err := leaderOf(t, nodes).l.SetHoldings(ctx, []ledger.HoldingSetting{{Key: k, Limit: limit}})
			if errors.Is(err, ledger.ErrNotLeader) || errors.Is(err, ledger.ErrDeposed) {
				return err
			}
			if err != nil {
				t.Fatal(err)
			}
			return nil
		})
	}
	for i := range 20 {
		set(int64(i))
	}
	// The checkpoint the leader published when it started leading.
	testkit.CheckFor(t, testkit.Patience, 50*time.Millisecond, func() error {
		nc, _ := nats.Connect(srvs[2].ClientURL())
		defer nc.Close()
		need, err := NeedsCheckpoint(ctx, nc, 0)
		if err == nil && !need {
			err = errors.New("a new node needs no checkpoint")
		}
		return err
	})
	dir := t.TempDir()
	for round := range 2 {
		nc, err := nats.Connect(srvs[2].ClientURL())
		if err != nil {
			t.Fatal(err)
		}
		if err := RestoreCheckpoint(ctx, nc, dir); err != nil {
			t.Fatal(err)
		}
		nc.Close()
		n3 := startNodeIn(t, srvs[2], "n3", dir, Options{})
		if leader := leaderOf(t, nodes); n3.l.Applied() == 0 || n3.l.Applied() > leader.l.Applied() {
			t.Fatalf("the checkpoint is at %d, the leader at %d", n3.l.Applied(), leader.l.Applied())
		}
		converged(t, append(nodes, n3))
		set(100 + int64(round))
		converged(t, append(nodes, n3))
		n3.stop()
		if err := os.RemoveAll(filepath.Join(dir, "ledger")); err != nil {
			t.Fatal(err)
		}
	}
}

// TestJoinAsksAgain asks whether a new node needs the checkpoint while the
// NATS server that leads the checkpoint store's Raft group answers nothing
// (stopped with SIGSTOP): a request it would have answered is not answered
// by anyone, and the question is asked again (Patiently) until the group's
// new leader answers it, well within the start's patience. A node that
// asked once waited its whole --join-timeout and gave up.
func TestJoinAsksAgain(t *testing.T) {
	srvs := startServers(t, 3)
	nodes := []*testNode{startNode(t, srvs[0], "n1", Options{}), startNode(t, srvs[1], "n2", Options{})}
	ctx := context.Background()
	k := holdings.Key{Holder: "user:a", Source: holdings.NullSource, Resource: "vm"}
	testkit.CheckFor(t, testkit.Patience, 20*time.Millisecond, func() error {
		// Made again on the next leader if the first steps down (TestJoin).
		err := leaderOf(t, nodes).l.SetHoldings(ctx, []ledger.HoldingSetting{{Key: k, Limit: 1}})
		if err != nil && !errors.Is(err, ledger.ErrNotLeader) && !errors.Is(err, ledger.ErrDeposed) {
			t.Fatal(err)
		}
		return err
	})
	// The checkpoint the leader published when it started leading.
	var asker *nats.Conn
	var stopped *testServer
	testkit.CheckFor(t, testkit.Patience, 50*time.Millisecond, func() error {
		nc, err := nats.Connect(srvs[2].ClientURL())
		if err != nil {
			return err
		}
		defer nc.Close()
		if need, err := NeedsCheckpoint(ctx, nc, 0); err != nil || !need {
			return fmt.Errorf("a new node needs a checkpoint: %v, %v", need, err)
		}
		leader, err := streamLeader(nc, "OBJ_"+CheckpointBucket)
		if err != nil {
			return err
		}
		for i, s := range srvs {
			if leader == fmt.Sprintf("n%d", i+1) {
				stopped = s
			}
		}
		if stopped == nil {
			return fmt.Errorf("the checkpoint store is led by %q", leader)
		}
		return nil
	})
	for _, s := range srvs {
		if s != stopped {
			var err error
			if asker, err = nats.Connect(s.ClientURL()); err != nil {
				t.Fatal(err)
			}
			defer asker.Close()
			break
		}
	}
	stopped.signal(t, syscall.SIGSTOP)
	t.Cleanup(func() { stopped.signal(t, syscall.SIGCONT) })
	qctx, cancel := context.WithTimeout(ctx, testkit.Patience)
	defer cancel()
	start := time.Now()
	if need, err := NeedsCheckpoint(qctx, asker, 0); err != nil || !need {
		t.Fatalf("with the checkpoint store's Raft leader stopped: need %v, %v", need, err)
	}
	t.Logf("answered after %v with the checkpoint store's Raft leader stopped", time.Since(start).Round(time.Millisecond))
	dir := t.TempDir()
	if err := RestoreCheckpoint(qctx, asker, dir); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(dir, "ledger")); err != nil {
		t.Fatalf("the checkpoint restored: %v", err)
	}
}

// TestInLog writes a log by hand (a record in one message, one in two, a
// deposed leader's parts of a record followed by the next leader's whole
// record of that sequence) and asks InLog about records with their bytes
// and with others: only the log's record of a sequence is in the log.
func TestInLog(t *testing.T) {
	nc, js, _ := oneServerLog(t)
	ctx := context.Background()
	for _, m := range []struct {
		seq, part, parts int
		data             string
	}{
		{1, 1, 1, "a"},
		{2, 1, 2, "bb"}, {2, 2, 2, "cc"},
		{3, 1, 3, "X1"}, {3, 2, 3, "X2"}, // a deposed leader's, refused after its second part
		{3, 1, 1, "ddd"},
		{4, 1, 1, "e"},
	} {
		msg := nats.NewMsg(LogSubject)
		msg.Data = []byte(m.data)
		msg.Header.Set(hdrSeq, fmt.Sprint(m.seq))
		msg.Header.Set(hdrPart, fmt.Sprint(m.part))
		msg.Header.Set(hdrParts, fmt.Sprint(m.parts))
		if _, err := js.PublishMsg(ctx, msg); err != nil {
			t.Fatal(err)
		}
	}
	inLog, err := InLog(ctx, nc)
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		seq  uint64
		rec  string
		want bool
	}{
		{1, "a", true}, {1, "b", false},
		{2, "bbcc", true}, {2, "bb", false}, {2, "bbccx", false},
		{3, "ddd", true}, {3, "X1X2", false}, {3, "X1X2ddd", false},
		{4, "e", true}, {4, "a", false},
		{5, "f", false},
	} {
		got, err := inLog(c.seq, []byte(c.rec))
		if err != nil || got != c.want {
			t.Errorf("InLog(%d, %q) = %v, %v; want %v", c.seq, c.rec, got, err, c.want)
		}
	}
}

// TestDirectGetsGoAround: a NATS server that stops answering (SIGSTOP: its
// routes stay up, so it stays a member of every queue group for minutes)
// gets its share of the direct gets, which its replicas never answer. The
// reads that any replica answers (the lease, the nodes' status keys, log
// messages) are asked again after a short wait, so the cluster's status
// still lists every node each time, and log messages are read. Without the asking
// again, a read sent to the stopped server held the whole status call
// (one read in three: most calls listed a node short).
func TestDirectGetsGoAround(t *testing.T) {
	srvs := startServers(t, 3)
	var nodes []*testNode
	for i, s := range srvs[:2] {
		nodes = append(nodes, startNode(t, s, fmt.Sprintf("n%d", i+1), Options{}))
	}
	ctx := context.Background()
	k := holdings.Key{Holder: "user:a", Source: holdings.NullSource, Resource: "vm"}
	if err := leaderOf(t, nodes).l.SetHoldings(ctx, []ledger.HoldingSetting{{Key: k, Limit: 1}}); err != nil {
		t.Fatal(err)
	}
	n := nodes[0] // any node answers the status and reads the log
	listed := func() error {
		sctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		defer cancel()
		st, err := n.n.Status(sctx)
		if err != nil {
			return err
		}
		if len(st) != 2 {
			return fmt.Errorf("the status lists %d nodes: %+v", len(st), st)
		}
		return nil
	}
	testkit.CheckFor(t, testkit.Patience, 100*time.Millisecond, listed)

	srvs[2].signal(t, syscall.SIGSTOP)
	t.Cleanup(func() { srvs[2].signal(t, syscall.SIGCONT) })
	// Its Raft groups elect leaders among the two others if it led them,
	// and a node leads (the lease may have moved meanwhile).
	testkit.CheckFor(t, testkit.Patience, 100*time.Millisecond, func() error {
		if err := listed(); err != nil {
			return err
		}
		for _, tn := range nodes {
			if tn.l.Leading() {
				return tn.l.SetHoldings(ctx, []ledger.HoldingSetting{{Key: k, Limit: 2}})
			}
		}
		return errors.New("no node leads")
	})
	for i := range 10 {
		if err := listed(); err != nil {
			t.Fatalf("status call %d with a server stopped: %v", i+1, err)
		}
	}
	// The log's messages, as a follower reads them when it has no
	// consumer (readOn, catchUp) or a node checks its journal (InLog).
	testkit.CheckFor(t, testkit.Patience, 20*time.Millisecond, func() error {
		if v, _ := n.l.FindHoldingByKey(k); v.Limit != 2 {
			return fmt.Errorf("%s shows the limit %d, want 2", n.name, v.Limit)
		}
		return nil
	})
	end := n.n.streamSeq.Load()
	for i := range 20 {
		s := 1 + uint64(i)%end
		gctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		_, err := getMsg(gctx, n.n.stream, s)
		cancel()
		if err != nil {
			t.Fatalf("log message %d of %d with a server stopped: %v", s, end, err)
		}
	}
}

// TestLeaseTakenBackFirst: the NATS server that leads the lease's Raft
// group stops (SIGSTOP) for longer than two lease periods, so that the
// leader's renewals go unanswered to the end and it steps down, while the
// follower cannot read the lease either; once the group elects another
// Raft leader, the lease has expired and is free. The node that held it
// takes it back, not the follower (lead, stillHeld; holdOff): it led all along
// as far as anyone could tell. Three rounds; before the holder had the
// priority, each was a race between the two nodes.
func TestLeaseTakenBackFirst(t *testing.T) {
	srvs := startServers(t, 3)
	var nodes []*testNode
	for i, s := range srvs[:2] {
		// A lease of 2 s, not the tests' 1 s: the holder that took the
		// lease back renews it next after applying the log to its end,
		// which a loaded machine, under the race detector, stretched past
		// a second.
		nodes = append(nodes, startNode(t, s, fmt.Sprintf("n%d", i+1), Options{LeaseTTL: 2 * time.Second}))
	}
	stopped := srvs[2]
	t.Cleanup(func() { _ = stopped.cmd.Process.Signal(syscall.SIGCONT) })
	stepped := 0
	for round := 1; round <= 3; round++ {
		leader := leaderOf(t, nodes)
		// The lease's Raft group led by the server to stop, the log's by
		// another (its group electing too would hold up the log's reads).
		lead := func(stream, server string) func() error {
			return func() error {
				ctx, cancel := context.WithTimeout(context.Background(), time.Second)
				defer cancel()
				at, _, err := leader.n.raftGroup(ctx, stream)
				if err != nil || at == server {
					return err
				}
				req := marshal(map[string]any{"placement": map[string]string{"preferred": server}})
				_, _ = leader.nc.RequestWithContext(ctx, "$JS.API.STREAM.LEADER.STEPDOWN."+stream, req)
				return fmt.Errorf("%s's Raft group is led by %q, not %s", stream, at, server)
			}
		}
		other := "n1"
		if leader.name == "n1" {
			other = "n2"
		}
		testkit.CheckFor(t, testkit.Patience, 200*time.Millisecond, lead(LogStream, other))
		testkit.CheckFor(t, testkit.Patience, 200*time.Millisecond, lead("KV_"+LeaseBucket, "n3"))
		before := leader.n.LeaseChanges()
		stopped.signal(t, syscall.SIGSTOP)
		// The leader steps down (its renewals unanswered for two lease
		// periods), unless the group elected a leader before that.
		deadline := time.Now().Add(6 * time.Second)
		for leader.l.Leading() && time.Now().Before(deadline) {
			time.Sleep(10 * time.Millisecond)
		}
		if !leader.l.Leading() {
			stepped++
		}
		now := leaderOf(t, nodes)
		if now != leader {
			t.Fatalf("round %d: %s leads, %s did until the lease's Raft group lost its leader", round, now.name, leader.name)
		}
		t.Logf("round %d: %s led, stepped down: %v, leads again (lease changes seen: %d)",
			round, leader.name, !leader.l.Leading() || leader.n.LeaseChanges() > before, leader.n.LeaseChanges()-before)
		stopped.signal(t, syscall.SIGCONT)
	}
	if stepped == 0 {
		t.Fatal("the leader never stepped down: the lease's Raft group elected its leader within two lease periods each time")
	}
}

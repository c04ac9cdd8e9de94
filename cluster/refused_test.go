package cluster

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
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

// staleLog is the log of a leader that lost the race: it appends to the
// stream expecting the sequence it last saw, as a deposed leader's publish
// still in flight does when it lands.
type staleLog struct {
	js   jetstream.JetStream
	last uint64
}

func (s *staleLog) Append(seq uint64, rec []byte) func() error {
	m := nats.NewMsg(LogSubject)
	m.Data = rec
	m.Header.Set(hdrSeq, fmt.Sprint(seq))
	m.Header.Set(hdrPart, "1")
	m.Header.Set(hdrParts, "1")
	ack, err := s.js.PublishMsg(context.Background(), m, jetstream.WithExpectLastSequence(s.last))
	if err == nil {
		s.last = ack.Sequence
	}
	return func() error { return err }
}

// TestRefusedAppendLeadsAgain: an append of the leader is refused while it
// still holds the lease (another writer's message landed first: a deposed
// leader's publish still in flight; the same as the leader's own message
// lost while the log's Raft group changed leader). The batch's caller gets
// ErrDeposed, the leader applies the log to its end, the other writer's
// record included, and leads again under the same lease: the lease is never
// given up (no delete of it in its history), and the next write is answered.
func TestRefusedAppendLeadsAgain(t *testing.T) {
	ns, err := events.StartServer(events.ServerOptions{Dir: t.TempDir(), Listen: "127.0.0.1:-1", Logger: zerolog.Nop()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(ns.Shutdown)
	srv := &testServer{t: t, url: ns.ClientURL()}
	opts := Options{Replicas: 1}
	n1 := startNode(t, srv, "n1", opts)
	n2 := startNode(t, srv, "n2", opts)
	nodes := []*testNode{n1, n2}
	leader := leaderOf(t, nodes)
	ctx := context.Background()
	a := holdings.Key{Holder: "user:a", Source: holdings.NullSource, Resource: "vm"}
	if err := leader.l.SetHoldings(ctx, []ledger.HoldingSetting{{Key: a, Limit: 1}}); err != nil {
		t.Fatal(err)
	}
	converged(t, nodes)

	nc, err := nats.Connect(ns.ClientURL())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	// Every change of the lease from now on.
	kv, err := js.KeyValue(ctx, LeaseBucket)
	if err != nil {
		t.Fatal(err)
	}
	w, err := kv.Watch(ctx, "leader", jetstream.UpdatesOnly())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = w.Stop() })
	var mu sync.Mutex
	var changes []jetstream.KeyValueEntry
	go func() {
		for e := range w.Updates() {
			if e != nil {
				mu.Lock()
				changes = append(changes, e)
				mu.Unlock()
			}
		}
	}()

	// The other writer: a copy of the ledger as the log holds it, which
	// appends one record expecting the log's last sequence.
	stream, info := logInfo(t, js)
	id := leader.l.ID()
	stale := ledgertest.Open(t, ledger.Options{Follower: true, ID: id})
	for s := info.State.FirstSeq; s <= info.State.LastSeq; s++ {
		m, err := stream.GetMsg(ctx, s)
		if err != nil {
			t.Fatal(err)
		}
		var rec uint64
		if _, err := fmt.Sscan(m.Header.Get(hdrSeq), &rec); err != nil || m.Header.Get(hdrParts) != "1" {
			t.Fatalf("log message %d: %v %v", s, m.Header, err)
		}
		if err := stale.Follow(rec, m.Data); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := stale.Lead(&staleLog{js: js, last: info.State.LastSeq}); err != nil {
		t.Fatal(err)
	}
	b := holdings.Key{Holder: "user:b", Source: holdings.NullSource, Resource: "vm"}
	if err := stale.SetHoldings(ctx, []ledger.HoldingSetting{{Key: b, Limit: 7}}); err != nil {
		t.Fatal(err)
	}

	// The leader's next append expects the sequence the other took.
	if err := leader.l.SetHoldings(ctx, []ledger.HoldingSetting{{Key: a, Limit: 2}}); !errors.Is(err, ledger.ErrDeposed) {
		t.Fatalf("the write after the other's append: %v, want ErrDeposed", err)
	}
	testkit.CheckFor(t, testkit.Patience, 20*time.Millisecond, func() error {
		if !leader.l.Leading() {
			return fmt.Errorf("%s does not lead again", leader.name)
		}
		return nil
	})
	if now := leaderOf(t, nodes); now != leader {
		t.Fatalf("%s leads, %s did", now.name, leader.name)
	}
	if err := leader.l.SetHoldings(ctx, []ledger.HoldingSetting{{Key: a, Limit: 3}}); err != nil {
		t.Fatalf("a write once it leads again: %v", err)
	}
	converged(t, nodes)
	for _, tn := range nodes {
		if v, ok := tn.l.FindHoldingByKey(b); !ok || v.Limit != 7 {
			t.Fatalf("%s: the other writer's holding is %+v (found: %v); want limit 7", tn.name, v, ok)
		}
		if v, ok := tn.l.FindHoldingByKey(a); !ok || v.Limit != 3 {
			t.Fatalf("%s: the holding is %+v (found: %v); want limit 3 (the refused 2 never shown)", tn.name, v, ok)
		}
	}

	// The lease stayed the leader's all along: renewed, never deleted nor
	// taken (every change of it until its revision now seen).
	e, err := kv.Get(ctx, "leader")
	if err != nil {
		t.Fatal(err)
	}
	testkit.CheckFor(t, testkit.Patience, 20*time.Millisecond, func() error {
		mu.Lock()
		defer mu.Unlock()
		if len(changes) == 0 || changes[len(changes)-1].Revision() < e.Revision() {
			return fmt.Errorf("the lease's changes up to revision %d not seen yet", e.Revision())
		}
		return nil
	})
	mu.Lock()
	defer mu.Unlock()
	for _, c := range changes {
		var v leaseValue
		if c.Operation() != jetstream.KeyValuePut {
			t.Fatalf("the lease was given up (%v at revision %d)", c.Operation(), c.Revision())
		}
		if err := json.Unmarshal(c.Value(), &v); err != nil || v.Name != leader.name {
			t.Fatalf("the lease changed hands at revision %d: %s", c.Revision(), c.Value())
		}
	}
	t.Logf("the lease renewed %d times, held by %s all along", len(changes), leader.name)
}

// gatedLog is a leader's appender whose appends go to the log at once but
// whose acknowledgements wait for gate: the leader's batches stay in
// flight together, as pipelined batches on a busy log are.
type gatedLog struct {
	*appender
	appended chan struct{} // a message per Append
	gate     chan struct{}
	recs     [][]byte // what it appended
}

func (g *gatedLog) Append(seq uint64, rec []byte) func() error {
	wait := g.appender.Append(seq, rec)
	g.recs = append(g.recs, bytes.Clone(rec))
	g.appended <- struct{}{}
	return func() error {
		<-g.gate
		return wait()
	}
}

// applyLog applies the log to l up to its end, as a follower's catch-up
// does.
func applyLog(t *testing.T, l *ledger.Ledger, stream jetstream.Stream) {
	t.Helper()
	ctx := context.Background()
	info, err := stream.Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	n := &Node{l: l, stream: stream, opts: Options{LeaseTTL: time.Second}.withDefaults(), log: zerolog.Nop()}
	start, err := n.resume(ctx)
	if err != nil {
		t.Fatal(err)
	}
	n.streamSeq.Store(start - 1)
	var asm assembler
	if err := n.catchUp(ctx, &asm, info.State.LastSeq); err != nil {
		t.Fatal(err)
	}
}

// TestRefusedAppendSkipped: a leader pipelines its records, each message
// expecting the stream's sequence after the one before; a deposed leader's
// record lands first. The log refuses the leader's first record but takes
// the next two, whose expected sequences the other's record made true:
// records built on one the log does not hold. The leader's callers get
// ErrDeposed, and every node, the leader too once it follows, skips them
// (their records name the term of the record they were built on): all
// show the other's state, and the leader leads again from it.
func TestRefusedAppendSkipped(t *testing.T) {
	nc, js, id := oneServerLog(t)
	ctx := context.Background()
	opts := Options{Name: "n1", Conn: nc, Replicas: 1}
	stream, err := js.Stream(ctx, LogStream)
	if err != nil {
		t.Fatal(err)
	}
	n := &Node{opts: opts.withDefaults(), js: js, log: zerolog.Nop()}
	key := func(h string) holdings.Key {
		return holdings.Key{Holder: h, Source: holdings.NullSource, Resource: "vm"}
	}
	limitOf := func(l *ledger.Ledger, h string) int64 {
		v, ok := l.FindHoldingByKey(key(h))
		if !ok {
			return -1
		}
		return v.Limit
	}

	// The other leader writes record 1; the leader and a follower apply it.
	other := ledgertest.Open(t, ledger.Options{Follower: true, ID: id})
	if _, err := other.Lead(&appender{n: n, term: newTerm()}); err != nil {
		t.Fatal(err)
	}
	if err := other.SetHoldings(ctx, []ledger.HoldingSetting{{Key: key("user:a"), Limit: 10}}); err != nil {
		t.Fatal(err)
	}
	// Three batches in flight at once: the deepest pipeline (a ledger runs
	// one by default, and then none is ever built on a refused one).
	leader := ledgertest.Open(t, ledger.Options{Follower: true, ID: id, PipelineDepth: 3})
	follower := ledgertest.Open(t, ledger.Options{Follower: true, ID: id})
	applyLog(t, leader, stream)
	applyLog(t, follower, stream)

	// The leader takes over at the log's end (message 1); the other, not
	// knowing, appends its record 2 first.
	g := &gatedLog{appender: &appender{n: n, last: 1, term: newTerm()},
		appended: make(chan struct{}, 3), gate: make(chan struct{})}
	if _, err := leader.Lead(g); err != nil {
		t.Fatal(err)
	}
	if err := other.SetHoldings(ctx, []ledger.HoldingSetting{{Key: key("user:b"), Limit: 7}}); err != nil {
		t.Fatal(err)
	}
	// The leader's three batches, in flight together.
	errs := make(chan error, 3)
	for i, h := range []string{"user:a", "user:c", "user:d"} {
		go func() {
			errs <- leader.SetHoldings(ctx, []ledger.HoldingSetting{{Key: key(h), Limit: int64(20 + i)}})
		}()
		select {
		case <-g.appended:
		case <-time.After(testkit.Patience):
			t.Fatalf("the leader's batch %d was not appended", i+1)
		}
	}
	close(g.gate)
	for range 3 {
		if err := <-errs; !errors.Is(err, ledger.ErrDeposed) {
			t.Fatalf("a call of the leader's pipelined batches: %v, want ErrDeposed", err)
		}
	}
	// The refusal of the first failed the other two with it at once (the
	// appender settles its messages in order): their messages land
	// meanwhile.
	testkit.CheckFor(t, testkit.Patience, 10*time.Millisecond, func() error {
		info, err := stream.Info(ctx)
		if err != nil {
			return err
		}
		if info.State.Msgs != 4 {
			return fmt.Errorf("the log holds %d messages; this test needs the other's 2 and the leader's last 2 (its records 3 and 4)", info.State.Msgs)
		}
		return nil
	})

	// Every node skips the leader's records 3 and 4.
	testkit.CheckFor(t, testkit.Patience, 10*time.Millisecond, func() error {
		if leader.Leading() {
			return errors.New("the leader still leads")
		}
		return nil
	})
	applyLog(t, follower, stream)
	applyLog(t, leader, stream)
	want, wantDigest := other.Digest()
	for name, l := range map[string]*ledger.Ledger{"the follower": follower, "the deposed leader": leader} {
		if got := [3]int64{limitOf(l, "user:a"), limitOf(l, "user:c"), limitOf(l, "user:d")}; got != [3]int64{10, -1, -1} {
			t.Errorf("%s shows limits %v of user:a, user:c, user:d; want the other's [10 -1 -1]: it applied records built on one the log refused", name, got)
		}
		if seq, d := l.Digest(); seq != want || d != wantDigest {
			t.Errorf("%s is at record %d, digest %s; the other at %d, %s", name, seq, d, want, wantDigest)
		}
	}
	if t.Failed() {
		t.FailNow()
	}

	// A node killed as it led, its journal holding those records, asks
	// whether the log holds each where the record says it is (InLog): not
	// record 2 (the other's is there); records 3 and 4 it does (the ledger
	// drops them all the same: dropNotInLog).
	inLog, err := InLog(ctx, nc)
	if err != nil {
		t.Fatal(err)
	}
	m, err := stream.GetMsg(ctx, 2)
	if err != nil {
		t.Fatal(err)
	}
	damaged := bytes.Clone(g.recs[1])
	damaged[len(damaged)-1] ^= 1
	for _, c := range []struct {
		seq  uint64
		rec  []byte
		want bool
	}{
		{2, g.recs[0], false}, {3, g.recs[1], true}, {4, g.recs[2], true},
		{2, m.Data, true}, {3, damaged, false}, {4, g.recs[1], false},
	} {
		if got, err := inLog(c.seq, c.rec); err != nil || got != c.want {
			t.Errorf("InLog(%d, record of %d bytes) = %v, %v; want %v", c.seq, len(c.rec), got, err, c.want)
		}
	}

	// The leader leads again from there: its record 3 follows the other's
	// 2, and the follower applies it past the skipped ones.
	if _, err := leader.Lead(&appender{n: n, last: 4, term: newTerm()}); err != nil {
		t.Fatal(err)
	}
	if err := leader.SetHoldings(ctx, []ledger.HoldingSetting{{Key: key("user:a"), Limit: 30}}); err != nil {
		t.Fatal(err)
	}
	applyLog(t, follower, stream)
	if seq, _ := follower.Digest(); seq != 3 || limitOf(follower, "user:a") != 30 || limitOf(follower, "user:b") != 7 {
		t.Fatalf("the follower is at record %d with user:a %d, user:b %d; want record 3, 30 and 7", seq, limitOf(follower, "user:a"), limitOf(follower, "user:b"))
	}
}

// TestAppendSentAgain: the log's Raft group changes leader again and again
// while the leader appends from several callers at once (each stepdown
// drops what its Raft leader had not yet replicated: a message lost, and
// the ones after it refused for the sequence it never took, as when a
// paused NATS server comes back). Every write is answered, none with
// "outcome unknown": the leader sends a message again until the log holds
// it, and the lease never moves.
func TestAppendSentAgain(t *testing.T) {
	srvs := startServers(t, 3)
	var nodes []*testNode
	for i, s := range srvs {
		// The lease of production (3 s): a message is given up after two
		// lease periods, and the stepdowns are meant to lose messages,
		// not to leave the group leaderless that long.
		nodes = append(nodes, startNode(t, s, fmt.Sprintf("n%d", i+1), Options{LeaseTTL: 3 * time.Second}))
	}
	leader := leaderOf(t, nodes)
	ctx := context.Background()
	nc, err := nats.Connect(srvs[0].url)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)

	stop := make(chan struct{})
	var wg sync.WaitGroup
	var mu sync.Mutex
	var failed []error
	writes := 0
	for w := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			k := holdings.Key{Holder: fmt.Sprintf("user:%d", w), Source: holdings.NullSource, Resource: "vm"}
			for i := int64(1); ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				err := leader.l.SetHoldings(ctx, []ledger.HoldingSetting{{Key: k, Limit: i}})
				mu.Lock()
				writes++
				if err != nil {
					failed = append(failed, err)
				}
				mu.Unlock()
			}
		}()
	}
	stepdowns := 0
	for range 6 {
		time.Sleep(1500 * time.Millisecond)
		// Handed to a peer current with the Raft leader (as the node's own
		// moves are, placement.go): a peer behind would leave the group
		// leaderless until an election.
		ci, err := streamCluster(nc, LogStream)
		if err != nil || successorOf(ci) == "" {
			t.Logf("no stepdown now: %v", err)
			continue
		}
		req := marshal(map[string]any{"placement": map[string]string{"preferred": successorOf(ci)}})
		m, err := nc.Request("$JS.API.STREAM.LEADER.STEPDOWN."+LogStream, req, 5*time.Second)
		if err != nil {
			t.Logf("stepdown: %v", err)
			continue
		}
		var resp stepdownResponse
		if json.Unmarshal(m.Data, &resp) == nil && resp.Success {
			stepdowns++
		}
	}
	time.Sleep(time.Second)
	close(stop)
	wg.Wait()
	if stepdowns < 3 {
		t.Fatalf("only %d of 6 stepdowns of the log's Raft leader succeeded", stepdowns)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(failed) > 0 {
		t.Fatalf("%d of %d writes failed across %d stepdowns of the log's Raft leader; the first: %v", len(failed), writes, stepdowns, failed[0])
	}
	if now := leaderOf(t, nodes); now != leader {
		t.Fatalf("%s leads, %s did", now.name, leader.name)
	}
	converged(t, nodes)
	t.Logf("%d writes, all answered, across %d stepdowns of the log's Raft leader", writes, stepdowns)
}

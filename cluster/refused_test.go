package cluster

import (
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
	stream, err := js.Stream(ctx, LogStream)
	if err != nil {
		t.Fatal(err)
	}
	info, err := stream.Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
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

package events

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/rs/zerolog"

	"github.com/quotaledger/quotaledger/holdings"
	"github.com/quotaledger/quotaledger/identity"
	"github.com/quotaledger/quotaledger/internal/testkit"
	"github.com/quotaledger/quotaledger/internal/testkit/identitytest"
	"github.com/quotaledger/quotaledger/internal/testkit/ledgertest"
	"github.com/quotaledger/quotaledger/ledger"
)

// TestRelayEveryChange makes each kind of change once and checks the
// stream holds exactly the expected events, in order, each passing the
// schema check.
func TestRelayEveryChange(t *testing.T) {
	clock := testkit.NewClock(time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC))
	l, ids := identitytest.OpenStores(t, ledger.Options{Now: clock.Now}, identity.Options{})
	srv := MustStartServer(t, t.TempDir(), "")
	relay := StartRelay(t, l, srv.ClientURL(), nil)
	ctx := context.Background()

	cores := holdings.Key{Holder: "project:p1", Source: holdings.NullSource, Resource: "cores"}
	ram := holdings.Key{Holder: "user:u1", Source: holdings.SourceOf("project:p1"), Resource: "ram"}
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	issue := func(req ledger.IssueRequest) uint64 {
		t.Helper()
		res, err := l.Issue(ctx, req)
		must(err)
		relay.Notify()
		return res.Serial
	}
	prov := func(k holdings.Key, q int64) []holdings.Provision {
		return []holdings.Provision{{Key: k, Quantity: q}}
	}

	// want lists the expected events: subject, then checks on the payload.
	type want struct {
		subject string
		check   func(p Payload) error
	}
	holding := func(k holdings.Key, q, limit, usage, pending int64) func(p Payload) error {
		return func(p Payload) error {
			for _, h := range p.Holdings {
				if h.Holder == k.Holder && h.Resource == k.Resource && (h.Source == nil) == k.Source.IsNull() {
					if h.Quantity != q || h.Limit != limit || h.Usage != usage || h.Pending != pending {
						return fmt.Errorf("holding %+v, want quantity %d limit %d usage %d pending %d", h, q, limit, usage, pending)
					}
					return nil
				}
			}
			return fmt.Errorf("no holding %s", k)
		}
	}
	commission := func(serial uint64, client, name, reason string, h func(Payload) error) func(p Payload) error {
		return func(p Payload) error {
			if p.Serial != serial || *p.Client != client || *p.Name != name || *p.Reason != reason {
				return fmt.Errorf("serial %d client %q name %q reason %q, want %d %q %q %q",
					p.Serial, *p.Client, *p.Name, *p.Reason, serial, client, name, reason)
			}
			return h(p)
		}
	}
	var wants []want

	must(l.SetHoldings(ctx, []ledger.HoldingSetting{{Key: cores, Limit: 10}, {Key: ram, Limit: 8}}))
	wants = append(wants, want{"quota.holding.changed", func(p Payload) error {
		if len(p.Holdings) != 2 {
			return fmt.Errorf("%d holdings, want 2", len(p.Holdings))
		}
		return errors.Join(holding(cores, 0, 10, 0, 0)(p), holding(ram, 0, 8, 0, 0)(p))
	}})

	s1 := issue(ledger.IssueRequest{Client: "nova", Name: "vm-1", Provisions: prov(cores, 2)})
	must(l.Resolve(ctx, "nova", s1, true, "done"))
	wants = append(wants,
		want{"quota.commission.nova.issued", commission(s1, "nova", "vm-1", "", holding(cores, 2, 10, 2, 2))},
		want{"quota.commission.nova.accepted", commission(s1, "nova", "vm-1", "ACCEPT:done", holding(cores, 2, 10, 2, 0))})

	s2 := issue(ledger.IssueRequest{Client: "cinder api", Name: "vol", Provisions: prov(ram, 3)})
	must(l.Resolve(ctx, "cinder api", s2, false, "no"))
	wants = append(wants,
		want{"quota.commission.cinder_api.issued", commission(s2, "cinder api", "vol", "", holding(ram, 3, 8, 3, 3))},
		want{"quota.commission.cinder_api.rejected", commission(s2, "cinder api", "vol", "REJECT:no", holding(ram, 3, 8, 0, 0))})

	s3 := issue(ledger.IssueRequest{Client: "nova", Name: "ttl", Provisions: prov(cores, 1), TTL: time.Minute})
	clock.Advance(2 * time.Minute)
	must(l.ExpireDue(ctx))
	wants = append(wants,
		want{"quota.commission.nova.issued", commission(s3, "nova", "ttl", "", holding(cores, 1, 10, 3, 1))},
		want{"quota.commission.nova.expired", commission(s3, "nova", "ttl", "REJECT:EXPIRED", holding(cores, 1, 10, 2, 0))})

	s4 := issue(ledger.IssueRequest{Client: "nova", Name: "auto", Provisions: prov(cores, 1), AutoAccept: true})
	wants = append(wants,
		want{"quota.commission.nova.issued", commission(s4, "nova", "auto", "", holding(cores, 1, 10, 3, 1))},
		want{"quota.commission.nova.accepted", commission(s4, "nova", "auto", "ACCEPT:", holding(cores, 1, 10, 3, 0))})

	s5 := issue(ledger.IssueRequest{Client: "nova", Name: "a", Provisions: prov(cores, 1)})
	s6 := issue(ledger.IssueRequest{Client: "nova", Name: "b", Provisions: prov(cores, -2)})
	res, err := l.ResolveMany(ctx, "nova", []uint64{s5}, []uint64{s6}, "batch")
	must(err)
	if len(res.Accepted) != 1 || len(res.Rejected) != 1 {
		t.Fatalf("ResolveMany: %+v", res)
	}
	wants = append(wants,
		want{"quota.commission.nova.issued", commission(s5, "nova", "a", "", holding(cores, 1, 10, 4, 1))},
		want{"quota.commission.nova.issued", commission(s6, "nova", "b", "", holding(cores, -2, 10, 4, 3))},
		want{"quota.commission.nova.accepted", commission(s5, "nova", "a", "ACCEPT:batch", holding(cores, 1, 10, 4, 2))},
		want{"quota.commission.nova.rejected", commission(s6, "nova", "b", "REJECT:batch", holding(cores, -2, 10, 4, 0))})

	must(l.DeleteHoldings(ctx, []holdings.Key{ram}))
	wants = append(wants, want{"quota.holding.deleted", holding(ram, 0, 8, 0, 0)})

	u, err := ids.Register(ctx, identity.NewUser{Username: "ada@example.org", Password: "correct horse battery staple"})
	must(err)
	wants = append(wants, want{"identity.user.registered", func(p Payload) error {
		if !strings.Contains(string(p.Data), u.UUID) {
			return fmt.Errorf("data %s does not name user %s", p.Data, u.UUID)
		}
		return nil
	}})
	must(ids.RequestPasswordReset(ctx, "ada@example.org"))
	wants = append(wants, want{"identity.password.reset_requested", func(p Payload) error {
		if len(p.Data) < 3 {
			return fmt.Errorf("data %s", p.Data)
		}
		return nil
	}})
	relay.Notify()

	waitDrained(t, l)
	last := uint64(len(wants))
	if st, _ := l.OutboxStats(); st.Last != last {
		t.Fatalf("ledger wrote %d events, the test expects %d", st.Last, last)
	}
	msgs := readStream(t, srv.ClientURL())
	checkExactlyOnce(t, msgs, l.ID(), last)
	for i, m := range msgs {
		if i >= len(wants) {
			break
		}
		w := wants[i]
		if m.Subject != w.subject {
			t.Errorf("event %d: subject %q, want %q", i+1, m.Subject, w.subject)
			continue
		}
		p := checkPayload(t, m.Subject, m.Data)
		if p.ID != m.MsgID {
			t.Errorf("event %d: payload id %q, Nats-Msg-Id %q", i+1, p.ID, m.MsgID)
		}
		if err := w.check(p); err != nil {
			t.Errorf("event %d (%s): %v\npayload %s", i+1, m.Subject, err, m.Data)
		}
	}
	if got := relay.Published(); got != last {
		t.Errorf("Published() = %d, want %d", got, last)
	}
	if !relay.Connected() {
		t.Error("Connected() = false while the server runs")
	}
}

// writer keeps changing the ledger (one event per call) until stopped,
// counting the calls that succeeded.
type writer struct {
	ok, failed atomic.Uint64
	stop       chan struct{}
	wg         sync.WaitGroup
}

func startWriter(tb testing.TB, l *ledger.Ledger, notify func(), goroutines int) *writer {
	w := &writer{stop: make(chan struct{})}
	for g := range goroutines {
		w.wg.Add(1)
		go func() {
			defer w.wg.Done()
			k := holdings.Key{Holder: fmt.Sprintf("project:w%d", g), Source: holdings.NullSource, Resource: "cores"}
			for i := int64(1); ; i++ {
				select {
				case <-w.stop:
					return
				default:
				}
				if err := l.SetHoldings(context.Background(), []ledger.HoldingSetting{{Key: k, Limit: i}}); err != nil {
					w.failed.Add(1)
					continue
				}
				w.ok.Add(1)
				if notify != nil {
					notify()
				}
				time.Sleep(200 * time.Microsecond)
			}
		}()
	}
	tb.Cleanup(w.Stop)
	return w
}

func (w *writer) Stop() {
	select {
	case <-w.stop:
	default:
		close(w.stop)
	}
	w.wg.Wait()
}

// TestRelayNATSOutage stops NATS under load: the ledger keeps serving, the
// outbox grows, and once a new server runs on the same store and port the
// relay reconnects by itself and every event arrives exactly once.
func TestRelayNATSOutage(t *testing.T) {
	l := ledgertest.Open(t, ledger.Options{})
	dir := t.TempDir()
	srv := MustStartServer(t, dir, "")
	addr := listenAddr(t, srv)
	relay := StartRelay(t, l, srv.ClientURL(), nil)
	w := startWriter(t, l, relay.Notify, 4)

	testkit.CheckFor(t, testkit.Patience, 5*time.Millisecond, func() error {
		if n := relay.Published(); n < 200 {
			return fmt.Errorf("%d events published, want 200 before the outage", n)
		}
		return nil
	})

	srv.Shutdown()
	testkit.CheckFor(t, testkit.Patience, 5*time.Millisecond, func() error {
		if relay.Connected() {
			return errors.New("relay still connected after the server stopped")
		}
		return nil
	})
	okAtOutage, published := w.ok.Load(), relay.Published()
	testkit.CheckFor(t, testkit.Patience, 5*time.Millisecond, func() error {
		if d := outboxDepth(t, l); d < 300 {
			return fmt.Errorf("outbox depth %d, want it to grow past 300 while NATS is away", d)
		}
		return nil
	})
	if w.ok.Load() <= okAtOutage || w.failed.Load() != 0 {
		t.Fatalf("the ledger stopped serving while NATS was away: %d ok before, %d after, %d failed",
			okAtOutage, w.ok.Load(), w.failed.Load())
	}
	if relay.Published() != published {
		t.Fatalf("Published() moved from %d to %d with no server", published, relay.Published())
	}

	srv2 := MustStartServer(t, dir, addr)
	testkit.CheckFor(t, testkit.Patience, 5*time.Millisecond, func() error {
		if !relay.Connected() {
			return errors.New("relay not reconnected")
		}
		return nil
	})
	// Keep writing a little against the new server, then let it drain.
	base := relay.Published()
	testkit.CheckFor(t, testkit.Patience, 5*time.Millisecond, func() error {
		if relay.Published() < base+100 {
			return errors.New("relay not publishing after the restart")
		}
		return nil
	})
	w.Stop()
	waitDrained(t, l)
	st, err := l.OutboxStats()
	if err != nil {
		t.Fatal(err)
	}
	if st.Last != w.ok.Load() {
		t.Fatalf("%d events in the ledger, %d writes", st.Last, w.ok.Load())
	}
	checkExactlyOnce(t, readStream(t, srv2.ClientURL()), l.ID(), st.Last)
	t.Logf("%d events, %d published before the outage, %d acks in all", st.Last, published, relay.Published())
}

// TestRelayRepublishDeduplicated stands for a crash between the publish ack
// and the outbox delete: a first relay publishes every event but deletes
// nothing; a second one republishes them all with the same ids, and the
// stream's duplicate window drops every one.
func TestRelayRepublishDeduplicated(t *testing.T) {
	l := ledgertest.Open(t, ledger.Options{})
	srv := MustStartServer(t, t.TempDir(), "")
	const n = 300
	w := startWriter(t, l, nil, 4)
	testkit.CheckFor(t, testkit.Patience, time.Millisecond, func() error {
		if w.ok.Load() < n {
			return fmt.Errorf("%d events written", w.ok.Load())
		}
		return nil
	})
	w.Stop()
	total := w.ok.Load()

	first := StartRelay(t, l, srv.ClientURL(), func(r *Relay) { r.skipDelete = true })
	testkit.CheckFor(t, testkit.Patience, 5*time.Millisecond, func() error {
		if got := first.Published(); got != total {
			return fmt.Errorf("first relay: %d of %d published", got, total)
		}
		return nil
	})
	first.Stop(t)
	if d := outboxDepth(t, l); d != total {
		t.Fatalf("outbox depth %d after the crashed relay, want %d (nothing deleted)", d, total)
	}

	second := StartRelay(t, l, srv.ClientURL(), nil)
	waitDrained(t, l)
	if got, dup := second.Published(), second.duplicates.Load(); got != total || dup != total {
		t.Errorf("second relay: %d published, %d duplicates; want %d and %d", got, dup, total, total)
	}
	checkExactlyOnce(t, readStream(t, srv.ClientURL()), l.ID(), total)
}

// TestRelayLostPublishInOrder loses a publish in flight, with later ones
// in flight behind it, as a Raft group that drops a proposal does: the test
// hook sends the first attempt of some events to a subject outside the
// stream, which no stream acknowledges. The relay's fence (the session's
// publishes expect the stream's last sequence) makes the server refuse the
// later ones, and the next session republishes from the lost one: the stream
// holds every event once and in outbox order.
func TestRelayLostPublishInOrder(t *testing.T) {
	l := ledgertest.Open(t, ledger.Options{})
	srv := MustStartServer(t, t.TempDir(), "")
	const n = 600
	w := startWriter(t, l, nil, 4)
	testkit.CheckFor(t, testkit.Patience, time.Millisecond, func() error {
		if w.ok.Load() < n {
			return fmt.Errorf("%d events written", w.ok.Load())
		}
		return nil
	})
	w.Stop()
	total := w.ok.Load()

	// Each lost event, and the highest event published before its second
	// attempt: above it, later events were in flight behind the lost one.
	lose := []uint64{100, 400}
	var (
		mu       sync.Mutex
		attempts = map[uint64]int{}
		behind   = map[uint64]uint64{}
		highest  uint64
	)
	relay := StartRelay(t, l, srv.ClientURL(), func(r *Relay) {
		r.mangle = func(seq uint64, m *nats.Msg) {
			mu.Lock()
			defer mu.Unlock()
			for _, k := range lose {
				if seq != k {
					continue
				}
				attempts[k]++
				if attempts[k] == 1 {
					m.Subject = "lost." + m.Subject // outside the stream's subjects
				} else if attempts[k] == 2 {
					behind[k] = highest
				}
			}
			highest = max(highest, seq)
		}
	})
	waitDrained(t, l)
	relay.Stop(t)
	mu.Lock()
	for _, k := range lose {
		if attempts[k] < 2 || behind[k] <= k {
			t.Errorf("event %d: %d attempts, event %d published before its second: no later event was in flight behind the lost one",
				k, attempts[k], behind[k])
		}
	}
	mu.Unlock()
	checkExactlyOnce(t, readStream(t, srv.ClientURL()), l.ID(), total)
}

// TestRelayTwoRelaysLosingPublishes runs two relays of one ledger at once,
// as a cluster may for a moment (a deposed leader's and the new one's),
// while events are written, each relay losing the first attempt of some
// publishes with later ones in flight: the fence keeps the stream the outbox
// in order, every event once.
func TestRelayTwoRelaysLosingPublishes(t *testing.T) {
	l := ledgertest.Open(t, ledger.Options{})
	srv := MustStartServer(t, t.TempDir(), "")
	var lost atomic.Uint64
	losing := func(offset uint64) func(*Relay) {
		var seen sync.Map // outbox sequence -> attempted once
		return func(r *Relay) {
			r.mangle = func(seq uint64, m *nats.Msg) {
				if seq%97 != offset {
					return
				}
				if _, again := seen.LoadOrStore(seq, true); !again {
					m.Subject = "lost." + m.Subject // outside the stream's subjects
					lost.Add(1)
				}
			}
		}
	}
	a := StartRelay(t, l, srv.ClientURL(), losing(13))
	b := StartRelay(t, l, srv.ClientURL(), losing(61))
	w := startWriter(t, l, func() { a.Notify(); b.Notify() }, 4)
	testkit.CheckFor(t, testkit.Patience, time.Millisecond, func() error {
		if w.ok.Load() < 1500 {
			return fmt.Errorf("%d events written", w.ok.Load())
		}
		return nil
	})
	w.Stop()
	total := w.ok.Load()
	waitDrained(t, l)
	a.Stop(t)
	b.Stop(t)
	if lost.Load() == 0 {
		t.Error("no publish was lost")
	}
	checkExactlyOnce(t, readStream(t, srv.ClientURL()), l.ID(), total)
	t.Logf("%d events, %d publishes lost, %d and %d acks", total, lost.Load(), a.Published(), b.Published())
}

// TestRelayUndrainableOutbox runs the relay with no server at all: the
// outbox keeps every event, intact, however long it waits; when a server
// comes up the relay connects by itself and drains it.
func TestRelayUndrainableOutbox(t *testing.T) {
	l := ledgertest.Open(t, ledger.Options{})
	addr := testkit.FreeAddr(t)
	relay := StartRelay(t, l, "nats://"+addr, nil)
	w := startWriter(t, l, relay.Notify, 2)
	testkit.CheckFor(t, testkit.Patience, time.Millisecond, func() error {
		if w.ok.Load() < 200 {
			return fmt.Errorf("%d events written", w.ok.Load())
		}
		return nil
	})
	w.Stop()
	total := w.ok.Load()
	// Several backoff rounds (100ms cap) pass without a server.
	deadline := time.Now().Add(500 * time.Millisecond)
	for time.Now().Before(deadline) {
		if relay.Connected() || relay.Published() != 0 {
			t.Fatal("relay connected to nothing")
		}
		if d := outboxDepth(t, l); d != total {
			t.Fatalf("outbox depth %d, want %d: an event was dropped", d, total)
		}
		time.Sleep(20 * time.Millisecond)
	}
	evs, err := l.Outbox(0, int(total)+1)
	if err != nil {
		t.Fatal(err)
	}
	if uint64(len(evs)) != total || evs[0].Seq != 1 || evs[len(evs)-1].Seq != total {
		t.Fatalf("outbox holds %d events, want 1..%d", len(evs), total)
	}

	srv := MustStartServer(t, t.TempDir(), addr)
	waitDrained(t, l)
	if !relay.Connected() {
		t.Error("relay not connected after draining")
	}
	checkExactlyOnce(t, readStream(t, srv.ClientURL()), l.ID(), total)
}

// TestRelayStopsOnClosedLedger checks Run returns the ledger's ErrClosed.
func TestRelayStopsOnClosedLedger(t *testing.T) {
	l := ledgertest.Open(t, ledger.Options{Dir: t.TempDir()})
	srv := MustStartServer(t, t.TempDir(), "")
	r := NewRelay(l, RelayOptions{URL: srv.ClientURL(), Logger: zerolog.Nop()})
	done := make(chan error, 1)
	go func() { done <- r.Run(context.Background()) }()
	testkit.CheckFor(t, testkit.Patience, 5*time.Millisecond, func() error {
		if !r.Connected() {
			return errors.New("not connected")
		}
		return nil
	})
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-done:
		if !errors.Is(err, ledger.ErrClosed) {
			t.Fatalf("Run: %v, want ledger.ErrClosed", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Run did not return after the ledger closed")
	}
}

func TestRelayOptionsValidate(t *testing.T) {
	tests := []struct {
		name string
		opts RelayOptions
		ok   bool
	}{
		{"OK", RelayOptions{URL: "nats://127.0.0.1:4222"}, true},
		{"OKMaxAge", RelayOptions{URL: "nats://x", MaxAge: time.Hour}, true},
		{"ErrNoURL", RelayOptions{}, false},
		{"ErrWindowOverMaxAge", RelayOptions{URL: "nats://x", MaxAge: time.Minute}, false},
		{"ErrNegative", RelayOptions{URL: "nats://x", MaxInFlight: -1}, false},
		{"ErrNegativeReplicas", RelayOptions{URL: "nats://x", Replicas: -1}, false},
		{"OKReplicas", RelayOptions{URL: "nats://x", Replicas: 3}, true},
		{"OKDeleteDelay", RelayOptions{URL: "nats://x", DeleteDelay: time.Minute}, true},
		{"ErrDeleteDelayOverHalfWindow", RelayOptions{URL: "nats://x", DeleteDelay: 61 * time.Second}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if err := tt.opts.Validate(); (err == nil) != tt.ok {
				t.Fatalf("Validate: %v, want ok %v", err, tt.ok)
			}
		})
	}
}

func TestStartServer(t *testing.T) {
	t.Run("ErrNotLoopback", func(t *testing.T) {
		if _, err := StartServer(ServerOptions{Dir: t.TempDir(), Listen: "0.0.0.0:-1"}); err == nil {
			t.Fatal("StartServer listened beyond loopback")
		}
	})
	t.Run("ErrNoDir", func(t *testing.T) {
		if _, err := StartServer(ServerOptions{Listen: "127.0.0.1:-1"}); err == nil {
			t.Fatal("StartServer without Dir")
		}
	})
	for _, syncAlways := range []bool{false, true} {
		t.Run(fmt.Sprintf("SyncAlways=%v", syncAlways), func(t *testing.T) {
			s, err := StartServer(ServerOptions{Dir: t.TempDir(), Listen: "localhost:0", SyncAlways: syncAlways,
				SyncInterval: 3 * time.Second, Logger: zerolog.Nop()})
			if err != nil {
				t.Fatal(err)
			}
			defer s.Shutdown()
			cfg := s.ns.JetStreamConfig()
			if cfg == nil || cfg.SyncAlways != syncAlways || cfg.SyncInterval != 3*time.Second {
				t.Fatalf("JetStream config %+v, want SyncAlways %v", cfg, syncAlways)
			}
			if !strings.HasPrefix(s.ClientURL(), "nats://localhost:") {
				t.Errorf("ClientURL %q", s.ClientURL())
			}
		})
	}
}

// TestRelayDeleteDelay keeps acknowledged events in the outbox for
// DeleteDelay: a server that comes back without them (its store lost the
// writes it had not synced; here, all of them) gets them again, a server
// that kept them drops the republish, and either way the outbox drains once
// the delay has passed. The relay's clock stands still until the test moves
// it, so the restart may take as long as the machine needs.
func TestRelayDeleteDelay(t *testing.T) {
	const delay = time.Minute
	for _, lost := range []bool{true, false} {
		name := "StoreKept"
		if lost {
			name = "StoreLost"
		}
		t.Run(name, func(t *testing.T) {
			now := testkit.NewClock(time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC))
			var reads atomic.Uint64 // of the clock, counted before the time is read
			clock := func() time.Time {
				reads.Add(1)
				return now.Now()
			}
			l := ledgertest.Open(t, ledger.Options{})
			dir := t.TempDir()
			srv := MustStartServer(t, dir, "")
			addr := listenAddr(t, srv)
			relay := StartRelay(t, l, srv.ClientURL(), func(r *Relay) { r.opts.DeleteDelay, r.opts.Now = delay, clock })
			w := startWriter(t, l, relay.Notify, 2)
			testkit.CheckFor(t, testkit.Patience, time.Millisecond, func() error {
				if w.ok.Load() < 100 {
					return fmt.Errorf("%d events written", w.ok.Load())
				}
				return nil
			})
			w.Stop()
			total := w.ok.Load()
			testkit.CheckFor(t, testkit.Patience, time.Millisecond, func() error {
				if got := relay.Published(); got != total {
					return fmt.Errorf("%d of %d published", got, total)
				}
				return nil
			})
			// kept checks that the outbox holds every event until the idle
			// relay has read its clock twice: the first reading decides a
			// delete round, which has ended by the second. (Once the outbox
			// is deleted, the relay stops reading its clock.)
			kept := func(when string) {
				t.Helper()
				r0 := reads.Load()
				check := func() {
					t.Helper()
					if d := outboxDepth(t, l); d != total {
						t.Fatalf("outbox depth %d %s, want %d (kept for DeleteDelay)", d, when, total)
					}
				}
				testkit.CheckFor(t, testkit.Patience, time.Millisecond, func() error {
					check()
					if n := reads.Load() - r0; n < 2 {
						return fmt.Errorf("the relay read its clock %d times %s, want 2", n, when)
					}
					return nil
				})
				check()
			}
			kept("after the acks")

			srv.Shutdown()
			if lost {
				dir = t.TempDir()
			}
			srv2 := MustStartServer(t, dir, addr)
			testkit.CheckFor(t, testkit.Patience, 5*time.Millisecond, func() error {
				if got := relay.Published(); got < 2*total {
					return fmt.Errorf("%d acks, want at least %d: the kept events were not republished", got, 2*total)
				}
				return nil
			})
			kept("after the republish")
			now.Advance(delay - time.Millisecond)
			kept("a millisecond before DeleteDelay has passed")
			now.Advance(time.Millisecond)
			waitDrained(t, l)
			wantDups := uint64(0)
			if !lost {
				wantDups = total
			}
			if got := relay.duplicates.Load(); got != wantDups {
				t.Errorf("%d duplicates, want %d", got, wantDups)
			}
			checkExactlyOnce(t, readStream(t, srv2.ClientURL()), l.ID(), total)
		})
	}
}

func TestRedactURL(t *testing.T) {
	got := redactURL("nats://alice:secret@127.0.0.1:4222, nats://s3cr3t-token@h:4222,nats://h2:4222")
	if strings.Contains(got, "secret") || strings.Contains(got, "s3cr3t") || !strings.Contains(got, "h2:4222") {
		t.Fatalf("redactURL: %q", got)
	}
}

// TestRelayInProcess runs the relay connected to the embedded server in
// process (RelayOptions.InProcess), with a URL where nothing listens: every
// event reaches the stream, so the connection did not go through a socket;
// once the server is shut down the relay is disconnected, and it keeps the
// events written meanwhile.
func TestRelayInProcess(t *testing.T) {
	l := ledgertest.Open(t, ledger.Options{})
	srv := MustStartServer(t, t.TempDir(), "")
	nowhere := "nats://" + testkit.FreeAddr(t)
	relay := StartRelay(t, l, nowhere, func(r *Relay) { r.opts.InProcess = srv })
	w := startWriter(t, l, relay.Notify, 2)
	testkit.CheckFor(t, testkit.Patience, time.Millisecond, func() error {
		if w.ok.Load() < 100 {
			return fmt.Errorf("%d events written", w.ok.Load())
		}
		return nil
	})
	w.Stop()
	waitDrained(t, l)
	if !relay.Connected() {
		t.Error("relay not connected in process")
	}
	checkExactlyOnce(t, readStream(t, srv.ClientURL()), l.ID(), w.ok.Load())

	srv.Shutdown()
	testkit.CheckFor(t, testkit.Patience, 5*time.Millisecond, func() error {
		if relay.Connected() {
			return errors.New("still connected after the server's shutdown")
		}
		return nil
	})
	if err := l.SetHoldings(context.Background(), []ledger.HoldingSetting{{Key: holdings.Key{Holder: "h", Source: holdings.NullSource, Resource: "r"}, Limit: 1}}); err != nil {
		t.Fatal(err)
	}
	relay.Notify()
	if d := outboxDepth(t, l); d != 1 {
		t.Fatalf("outbox depth %d with the server down, want 1", d)
	}
}

// TestRelayRefusedPublish: JetStream refuses publishes (the stream full,
// discarding new messages: an error ack): the relay must not take an
// error ack for an ack. It keeps the refused events in the outbox, starts
// a new session (which sets the stream's configuration back, lifting the
// limit) and publishes them: every event in the stream once, in order.
func TestRelayRefusedPublish(t *testing.T) {
	l := ledgertest.Open(t, ledger.Options{})
	srv := MustStartServer(t, t.TempDir(), "")
	r := StartRelay(t, l, srv.ClientURL(), nil)
	setQuotas(t, l, 10)
	waitDrained(t, l)

	js := jetStreamOf(t, srv.ClientURL())
	ctx := context.Background()
	st, err := js.Stream(ctx, StreamName)
	if err != nil {
		t.Fatal(err)
	}
	cfg := st.CachedInfo().Config
	cfg.MaxMsgs, cfg.Discard = 15, jetstream.DiscardNew
	if _, err := js.UpdateStream(ctx, cfg); err != nil {
		t.Fatal(err)
	}
	setQuotas(t, l, 100)
	waitDrained(t, l)
	r.Stop(t)
	checkExactlyOnce(t, readStream(t, srv.ClientURL()), l.ID(), 110)
}

package events

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/rs/zerolog"

	"github.com/quotaledger/quotaledger/holdings"
	"github.com/quotaledger/quotaledger/internal/testkit"
	"github.com/quotaledger/quotaledger/internal/testkit/ledgertest"
	"github.com/quotaledger/quotaledger/ledger"
)

// setQuotas makes n events in l's outbox.
func setQuotas(t *testing.T, l *ledger.Ledger, n int) {
	t.Helper()
	k := holdings.Key{Holder: "project:p", Source: holdings.NullSource, Resource: "cores"}
	for i := range n {
		if err := l.SetHoldings(context.Background(), []ledger.HoldingSetting{{Key: k, Limit: int64(i + 1)}}); err != nil {
			t.Fatal(err)
		}
	}
}

func jetStreamOf(t *testing.T, url string) jetstream.JetStream {
	t.Helper()
	nc, err := nats.Connect(url)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	return js
}

// TestMarkPublished: what the stream holds of a database's events is
// marked published in every ledger of that database (a cluster's nodes),
// up to what each holds; a ledger of another database marks nothing.
func TestMarkPublished(t *testing.T) {
	ctx := context.Background()
	srv := MustStartServer(t, t.TempDir(), "")
	js := jetStreamOf(t, srv.ClientURL())
	l := ledgertest.Open(t, ledger.Options{})
	if last, err := LastPublished(ctx, js, "", l.ID()); err != nil || last != 0 {
		t.Fatalf("LastPublished before the stream exists: %d, %v", last, err)
	}
	setQuotas(t, l, 10)
	behind := ledgertest.Open(t, ledger.Options{ID: l.ID()}) // a node of the same cluster, behind
	setQuotas(t, behind, 4)
	other := ledgertest.Open(t, ledger.Options{})
	setQuotas(t, other, 3)

	relay := StartRelay(t, l, srv.ClientURL(), func(r *Relay) { r.skipDelete = true })
	testkit.CheckFor(t, testkit.Patience, 5*time.Millisecond, func() error {
		if got := relay.Published(); got != 10 {
			return fmt.Errorf("%d of 10 published", got)
		}
		return nil
	})
	relay.Stop(t)
	if d := outboxDepth(t, l); d != 10 {
		t.Fatalf("outbox depth %d after a relay that deletes nothing, want 10", d)
	}

	for _, tc := range []struct {
		name         string
		l            *ledger.Ledger
		last, marked uint64
		depth        uint64
	}{
		{"Published", l, 10, 10, 0},
		{"Behind", behind, 10, 4, 0},
		{"OtherDatabase", other, 0, 0, 3},
	} {
		t.Run(tc.name, func(t *testing.T) {
			last, err := LastPublished(ctx, js, StreamName, tc.l.ID())
			if err != nil || last != tc.last {
				t.Fatalf("LastPublished: %d, %v; want %d", last, err, tc.last)
			}
			marked, err := MarkPublished(ctx, js, "", tc.l)
			if err != nil || marked != tc.marked {
				t.Fatalf("MarkPublished: %d, %v; want %d", marked, err, tc.marked)
			}
			if d := outboxDepth(t, tc.l); d != tc.depth {
				t.Fatalf("outbox depth %d, want %d", d, tc.depth)
			}
		})
	}
	if last, err := LastPublished(ctx, js, "NO_SUCH_STREAM", l.ID()); err != nil || last != 0 {
		t.Fatalf("LastPublished of a stream that does not exist: %d, %v", last, err)
	}
}

// TestRelayReplicas: on a NATS cluster the relay makes the events stream
// with the replicas asked for, so that it outlives any one server.
func TestRelayReplicas(t *testing.T) {
	const n = 3
	routes := make([]string, n)
	for i := range routes {
		routes[i] = testkit.FreeAddr(t)
	}
	srvs := make([]*Server, n)
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var others []string
			for j, r := range routes {
				if j != i {
					others = append(others, r)
				}
			}
			srvs[i], errs[i] = StartServer(ServerOptions{Dir: t.TempDir(), Listen: "127.0.0.1:-1", SyncAlways: true,
				Logger: zerolog.Nop(), Cluster: ClusterOptions{Name: "test", ServerName: fmt.Sprintf("n%d", i+1),
					Listen: routes[i], Routes: others}})
		}()
	}
	wg.Wait()
	for i, s := range srvs {
		if errs[i] != nil {
			t.Fatal(errs[i])
		}
		t.Cleanup(s.Shutdown)
	}
	l := ledgertest.Open(t, ledger.Options{})
	setQuotas(t, l, 1)
	r := NewRelay(l, RelayOptions{URL: srvs[0].ClientURL(), Replicas: n, MaxBackoff: 100 * time.Millisecond, Logger: zerolog.Nop()})
	rctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- r.Run(rctx) }()
	defer func() {
		cancel()
		if err := <-done; err != nil {
			t.Error(err)
		}
	}()
	waitDrained(t, l)
	js := jetStreamOf(t, srvs[1].ClientURL())
	st, err := js.Stream(context.Background(), StreamName)
	if err != nil {
		t.Fatal(err)
	}
	if got := st.CachedInfo().Config.Replicas; got != n {
		t.Fatalf("the events stream has %d replicas, want %d", got, n)
	}
}

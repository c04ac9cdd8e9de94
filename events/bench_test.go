package events

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/quotaledger/quotaledger/holdings"
	"github.com/quotaledger/quotaledger/ledger"
)

// BenchmarkRelay measures events/s through the relay to the embedded
// JetStream server, on an on-disk ledger, in the two ways of not losing an
// acknowledged event (DESIGN.md §4), against the unsafe baseline:
//
//	go test ./events -run '^$' -bench BenchmarkRelay -benchtime 20000x
//
// SyncAlways=true: the server syncs before each ack, the relay deletes on
// the ack (what serve runs). SyncAlways=false: neither (the baseline; a
// crash may lose up to 2 minutes of events). SyncInterval=1s,DeleteDelay=2s:
// the server syncs every second and the relay keeps acknowledged events in
// the outbox for 2 seconds.
//
// Drain: the outbox holds b.N events (one SetHoldings each) before the relay
// starts; events/s is until every one is acknowledged. Live: 64 goroutines
// make b.N events while the relay runs; besides events/s, the peaks of the
// events not yet acknowledged, of their lag (the age of the oldest) and of
// the outbox's depth, sampled every millisecond.
func BenchmarkRelay(b *testing.B) {
	modes := []struct {
		name   string
		server ServerOptions
		relay  RelayOptions
	}{
		{"SyncAlways=false", ServerOptions{}, RelayOptions{}},
		{"SyncAlways=true", ServerOptions{SyncAlways: true}, RelayOptions{}},
		{"SyncInterval=1s,DeleteDelay=2s", ServerOptions{SyncInterval: time.Second}, RelayOptions{DeleteDelay: 2 * time.Second}},
	}
	for _, m := range modes {
		for _, live := range []bool{false, true} {
			name := m.name + "/Drain"
			if live {
				name = m.name + "/Live"
			}
			b.Run(name, func(b *testing.B) { benchRelay(b, m.server, m.relay, live) })
		}
	}
}

const benchWriters = 64

func benchRelay(b *testing.B, sopts ServerOptions, ropts RelayOptions, live bool) {
	l, err := ledger.Open(ledger.Options{Dir: b.TempDir(), Logger: zerolog.Nop()})
	if err != nil {
		b.Fatal(err)
	}
	defer l.Close()
	sopts.Dir, sopts.Listen, sopts.Logger = b.TempDir(), "127.0.0.1:-1", zerolog.Nop()
	srv, err := StartServer(sopts)
	if err != nil {
		b.Fatal(err)
	}
	defer srv.Shutdown()
	ropts.URL, ropts.Logger = srv.ClientURL(), zerolog.Nop()
	relay := NewRelay(l, ropts)

	write := func(n int, notify func()) {
		var next atomic.Int64
		var wg sync.WaitGroup
		for g := range benchWriters {
			wg.Add(1)
			go func() {
				defer wg.Done()
				k := holdings.Key{Holder: fmt.Sprintf("project:b%d", g), Source: holdings.NullSource, Resource: "cores"}
				for i := next.Add(1); i <= int64(n); i = next.Add(1) {
					if err := l.SetHoldings(context.Background(), []ledger.HoldingSetting{{Key: k, Limit: i}}); err != nil {
						b.Error(err)
						return
					}
					if notify != nil {
						notify()
					}
				}
			}()
		}
		wg.Wait()
	}
	if !live {
		write(b.N, nil)
	}

	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	var peakDepth, peakUnacked uint64
	var peakLag time.Duration
	sampled := make(chan struct{})
	b.ResetTimer()
	start := time.Now()
	go func() { done <- relay.Run(ctx) }()
	if live {
		go func() {
			defer close(sampled)
			for ctx.Err() == nil {
				st, err := l.OutboxStats()
				if err != nil {
					return
				}
				peakDepth = max(peakDepth, st.Depth)
				if acked := relay.Published(); st.Last > acked {
					peakUnacked = max(peakUnacked, st.Last-acked)
					if evs, err := l.Outbox(acked, 1); err == nil && len(evs) == 1 {
						peakLag = max(peakLag, time.Since(evs[0].Time))
					}
				}
				time.Sleep(time.Millisecond)
			}
		}()
		write(b.N, relay.Notify)
	} else {
		close(sampled)
	}
	for relay.Published() < uint64(b.N) {
		time.Sleep(100 * time.Microsecond)
	}
	elapsed := time.Since(start)
	b.StopTimer()
	cancel()
	if err := <-done; err != nil {
		b.Fatal(err)
	}
	<-sampled
	if got := relay.Published(); got != uint64(b.N) {
		b.Fatalf("published %d, want %d", got, b.N)
	}
	b.ReportMetric(float64(b.N)/elapsed.Seconds(), "events/s")
	if live {
		b.ReportMetric(float64(peakUnacked), "peak-unacked")
		b.ReportMetric(float64(peakLag.Microseconds())/1000, "peak-lag-ms")
		b.ReportMetric(float64(peakDepth), "peak-outbox")
	}
}

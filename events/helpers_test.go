package events

import (
	"context"
	"fmt"
	"net/url"
	"sync"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/quotaledger/quotaledger/internal/testkit"
	"github.com/quotaledger/quotaledger/ledger"
)

// MustStartServer starts an embedded server on dir and listen (a random
// port if empty), shut down at the end of the test.
func MustStartServer(tb testing.TB, dir, listen string) *Server {
	tb.Helper()
	if listen == "" {
		listen = "127.0.0.1:-1"
	}
	s, err := StartServer(ServerOptions{Dir: dir, Listen: listen, Logger: zerolog.Nop()})
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(s.Shutdown)
	return s
}

// listenAddr is the host:port of s, to start its successor on.
func listenAddr(tb testing.TB, s *Server) string {
	tb.Helper()
	u, err := url.Parse(s.ClientURL())
	if err != nil {
		tb.Fatal(err)
	}
	return u.Host
}

// runningRelay is a relay whose Run goroutine the test owns.
type runningRelay struct {
	*Relay
	cancel context.CancelFunc
	done   chan error
	once   sync.Once
}

// Stop cancels Run and returns its error.
func (r *runningRelay) Stop(tb testing.TB) {
	tb.Helper()
	r.once.Do(func() {
		r.cancel()
		select {
		case err := <-r.done:
			if err != nil {
				tb.Errorf("relay Run: %v", err)
			}
		case <-time.After(10 * time.Second):
			tb.Errorf("relay Run did not return within 10s of its cancel")
		}
	})
}

// StartRelay runs a relay of l to url until the end of the test. adjust,
// if given, changes the relay before it runs.
func StartRelay(tb testing.TB, l *ledger.Ledger, url string, adjust func(*Relay)) *runningRelay {
	tb.Helper()
	r := NewRelay(l, RelayOptions{URL: url, MaxBackoff: 100 * time.Millisecond, Logger: zerolog.Nop()})
	if adjust != nil {
		adjust(r)
	}
	ctx, cancel := context.WithCancel(context.Background())
	rr := &runningRelay{Relay: r, cancel: cancel, done: make(chan error, 1)}
	go func() { rr.done <- r.Run(ctx) }()
	tb.Cleanup(func() { rr.Stop(tb) })
	return rr
}

// readStream returns every message of the stream at url, in order.
func readStream(tb testing.TB, url string) []testkit.StreamMsg {
	tb.Helper()
	return testkit.ReadStream(tb, url, StreamName)
}

// outboxDepth returns the outbox's depth.
func outboxDepth(tb testing.TB, l *ledger.Ledger) uint64 {
	tb.Helper()
	st, err := l.OutboxStats()
	if err != nil {
		tb.Fatal(err)
	}
	return st.Depth
}

// waitDrained waits until the outbox is empty and its last event is
// published: the relay has deleted every entry.
func waitDrained(tb testing.TB, l *ledger.Ledger) {
	tb.Helper()
	testkit.CheckFor(tb, testkit.Patience, 5*time.Millisecond, func() error {
		if d := outboxDepth(tb, l); d != 0 {
			return fmt.Errorf("outbox depth %d, want 0", d)
		}
		return nil
	})
}

// checkExactlyOnce checks that the stream holds the events 1..last of the
// database dbID, each exactly once and in order.
func checkExactlyOnce(tb testing.TB, msgs []testkit.StreamMsg, dbID string, last uint64) {
	tb.Helper()
	seen := make(map[string]int, len(msgs))
	for _, m := range msgs {
		seen[m.MsgID]++
	}
	for seq := uint64(1); seq <= last; seq++ {
		if n := seen[MsgID(dbID, seq)]; n != 1 {
			tb.Errorf("event %d is in the stream %d times, want once", seq, n)
		}
	}
	if uint64(len(msgs)) != last {
		tb.Errorf("stream holds %d messages, want %d", len(msgs), last)
	}
	for i, m := range msgs {
		if want := MsgID(dbID, uint64(i+1)); m.MsgID != want {
			tb.Errorf("message %d is %s, want %s (out of order)", i+1, m.MsgID, want)
			break
		}
	}
}

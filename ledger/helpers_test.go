package ledger

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/cockroachdb/pebble/v2/vfs"
	"github.com/rs/zerolog"

	"github.com/quotaledger/quotaledger/holdings"
	"github.com/quotaledger/quotaledger/internal/testkit"
)

// memOptions returns options for a ledger on a fresh in-memory filesystem.
func memOptions() Options {
	return Options{Dir: "/ledger", FS: vfs.NewMem(), Logger: zerolog.Nop(), NoFreeSpaceCheck: true,
		MemTableSize: 4 << 20, CacheSize: 8 << 20}
}

// mustOpen opens a ledger and closes it when the test ends.
func mustOpen(tb testing.TB, opts Options) *Ledger {
	tb.Helper()
	l, err := Open(opts)
	if err != nil {
		tb.Fatalf("open: %v", err)
	}
	tb.Cleanup(func() { _ = l.Close() })
	return l
}

// waitGroup waits for wg, failing the test if it is not done within
// timeout.
func waitGroup(tb testing.TB, timeout time.Duration, what string, wg *sync.WaitGroup) {
	tb.Helper()
	done := make(chan struct{})
	go func() {
		wg.Wait()
		close(done)
	}()
	select {
	case <-done:
	case <-time.After(timeout):
		tb.Fatalf("timed out after %v waiting for %s", timeout, what)
	}
}

// holdWriter stops l's writer inside a batch of its own (an Update that
// waits) until release is called: calls made meanwhile queue, and go out
// together in the next batch. release returns the Update's error. The
// writer is let go when the test ends, if it was not before.
func holdWriter(tb testing.TB, l *Ledger) (release func() error) {
	tb.Helper()
	entered, gate, done := make(chan struct{}), make(chan struct{}), make(chan error, 1)
	var open sync.Once
	let := func() { open.Do(func() { close(gate) }) }
	tb.Cleanup(let)
	go func() {
		done <- l.Update(context.Background(), func(*Tx) error {
			close(entered)
			<-gate
			return nil
		})
	}()
	select {
	case <-entered:
	case err := <-done:
		tb.Fatalf("holding the writer: the update returned %v", err)
	case <-time.After(testkit.Patience):
		tb.Fatalf("timed out after %v waiting for the writer to take the holding update", testkit.Patience)
	}
	return func() error {
		tb.Helper()
		let()
		select {
		case err := <-done:
			return err
		case <-time.After(testkit.Patience):
			tb.Fatalf("timed out after %v waiting for the held batch to commit", testkit.Patience)
			return nil
		}
	}
}

func key(holder, source, resource string) holdings.Key {
	s := holdings.SourceOf(source)
	if source == "-" {
		s = holdings.NullSource
	}
	return holdings.Key{Holder: holder, Source: s, Resource: resource}
}

func TestSmoke(t *testing.T) {
	ctx := context.Background()
	l := mustOpen(t, memOptions())
	k := key("user:1", "system", "vm")
	if err := l.SetHoldings(ctx, []HoldingSetting{{Key: k, Limit: 10}}); err != nil {
		t.Fatal(err)
	}
	res, err := l.Issue(ctx, IssueRequest{Client: "cyclades", Provisions: []holdings.Provision{{Key: k, Quantity: 3}}})
	if err != nil || res.Serial != 1 {
		t.Fatalf("issue: %v %v", res, err)
	}
	if v, _ := l.FindHoldingByKey(k); v != (holdings.Value{Limit: 10, UsageMin: 0, UsageMax: 3}) {
		t.Fatalf("after issue: %+v", v)
	}
	if err := l.Resolve(ctx, "cyclades", 1, true, ""); err != nil {
		t.Fatal(err)
	}
	if v, _ := l.FindHoldingByKey(k); v != (holdings.Value{Limit: 10, UsageMin: 3, UsageMax: 3}) {
		t.Fatalf("after accept: %+v", v)
	}
	page, err := l.Log(LogFilter{Holder: "user:1"})
	if err != nil || len(page.Entries) != 1 || page.Entries[0].Reason != "ACCEPT:" {
		t.Fatalf("log: %+v %v", page, err)
	}
	evs, err := l.Outbox(0, 10)
	if err != nil || len(evs) != 3 {
		t.Fatalf("outbox: %+v %v", evs, err)
	}
}

// errKind names the outcome of a call: "" for success, else the kind of
// refusal, as the tests compare them.
func errKind(err error) string {
	var (
		nc *holdings.NoCapacityError
		nq *holdings.NoQuantityError
		nh *holdings.NoHoldingError
	)
	switch {
	case err == nil:
		return ""
	case errors.As(err, &nc):
		return "NoCapacity"
	case errors.As(err, &nq):
		return "NoQuantity"
	case errors.As(err, &nh):
		return "NoHolding"
	case errors.Is(err, ErrNotFound):
		return "NotFound"
	case errors.Is(err, ErrNoSpace):
		return "NoSpace"
	case errors.Is(err, ErrClosed):
		return "Closed"
	case errors.Is(err, ErrOutcomeUnknown):
		return "Unknown"
	case errors.Is(err, ErrFailed):
		return "Failed"
	case errors.Is(err, ErrIdempotencyConflict):
		return "Conflict"
	}
	return "other: " + err.Error()
}

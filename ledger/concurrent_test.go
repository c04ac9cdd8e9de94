package ledger

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/cockroachdb/pebble/v2/vfs"

	"github.com/quotaledger/quotaledger/events/catalog"
	"github.com/quotaledger/quotaledger/holdings"
	"github.com/quotaledger/quotaledger/internal/testkit"
)

// TestConcurrentHotHolding drives the pipelined writer from many goroutines
// that all draw from one holding: every accepted import must be counted once,
// every rejected one undone, and serials must never repeat. The workers'
// first issues queue behind a held writer, so they must go out as one
// batch: group commit is seen at work whatever the machine's speed. It
// runs with one batch in flight at a time, as the ledger does, and with
// the deepest pipeline, where batches build on the overlays of those in
// flight.
func TestConcurrentHotHolding(t *testing.T) {
	for _, depth := range []int{1, maxPipelineDepth} {
		t.Run(fmt.Sprintf("depth=%d", depth), func(t *testing.T) { testConcurrentHotHolding(t, depth) })
	}
}

func testConcurrentHotHolding(t *testing.T, depth int) {
	ctx := context.Background()
	var wg, first sync.WaitGroup
	// After a failure, the workers still running end on ErrClosed: wait for
	// them once the ledger is closed (this cleanup runs last).
	t.Cleanup(func() {
		done := make(chan struct{})
		go func() { wg.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(testkit.Patience):
			t.Errorf("workers still running %v after the ledger closed", testkit.Patience)
		}
	})
	opts := memOptions()
	opts.PipelineDepth = depth
	l := mustOpen(t, opts)
	hot := key("project:p", "-", "vm")
	const workers, rounds = 32, 100
	var ss []HoldingSetting
	ss = append(ss, HoldingSetting{Key: hot, Limit: workers * rounds})
	for w := 0; w < workers; w++ {
		ss = append(ss, HoldingSetting{Key: key("user:"+string(rune('a'+w)), "project:p", "vm"), Limit: rounds})
	}
	if err := l.SetHoldings(ctx, ss); err != nil {
		t.Fatal(err)
	}
	release := holdWriter(t, l)
	st0 := l.Stats()
	var mu sync.Mutex
	serials := map[uint64]bool{}
	accepted := 0
	first.Add(workers)
	proceed := make(chan struct{}) // closed once the first issues are counted
	var letGo sync.Once
	t.Cleanup(func() { letGo.Do(func() { close(proceed) }) })
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			mine := key("user:"+string(rune('a'+w)), "project:p", "vm")
			for i := 0; i < rounds; i++ {
				res, err := l.Issue(ctx, IssueRequest{Client: "c", Provisions: []holdings.Provision{
					{Key: hot, Quantity: 1}, {Key: mine, Quantity: 1}}})
				if i == 0 {
					first.Done()
					<-proceed
				}
				if err != nil {
					t.Error(err)
					return
				}
				accept := i%3 != 0
				if err := l.Resolve(ctx, "c", res.Serial, accept, ""); err != nil {
					t.Error(err)
					return
				}
				mu.Lock()
				if serials[res.Serial] {
					t.Errorf("serial %d handed out twice", res.Serial)
				}
				serials[res.Serial] = true
				if accept {
					accepted++
				}
				mu.Unlock()
			}
		}()
	}
	testkit.CheckFor(t, testkit.Patience, time.Millisecond, func() error {
		if n := len(l.reqs); n != workers {
			return fmt.Errorf("%d of %d workers' first issues queued behind the held writer", n, workers)
		}
		return nil
	})
	if err := release(); err != nil {
		t.Fatal(err)
	}
	waitGroup(t, testkit.Patience, "the first issues", &first)
	// The held batch, then one batch of every issue queued behind it.
	if st := l.Stats(); st.Batches-st0.Batches != 2 || st.Calls-st0.Calls != workers+1 {
		t.Fatalf("the held update and the %d issues queued behind it went out as %d batches of %d calls in all, want 2 batches of %d",
			workers, st.Batches-st0.Batches, st.Calls-st0.Calls, workers+1)
	}
	letGo.Do(func() { close(proceed) })
	waitGroup(t, testkit.Patience, "the workers", &wg)
	v, _ := l.FindHoldingByKey(hot)
	if v.UsageMin != int64(accepted) || v.UsageMax != int64(accepted) {
		t.Fatalf("hot holding %+v, want usage %d", v, accepted)
	}
	if st := l.Stats(); st.Pending != 0 || st.Serial != workers*rounds {
		t.Fatalf("stats %+v", st)
	}
}

// TestGroupCommit: calls queued while the writer is busy go out together,
// up to MaxBatch a batch, each answered as if alone.
func TestGroupCommit(t *testing.T) {
	ctx := context.Background()
	opts := memOptions()
	opts.MaxBatch = 8
	l := mustOpen(t, opts)
	k := key("u", "-", "vm")
	if err := l.SetHoldings(ctx, []HoldingSetting{{Key: k, Limit: 15}}); err != nil {
		t.Fatal(err)
	}
	release := holdWriter(t, l)
	st0 := l.Stats()
	const calls = 20 // 2 full batches and one of 4
	var wg sync.WaitGroup
	errs := make([]error, calls)
	for i := range calls {
		wg.Go(func() {
			_, errs[i] = l.Issue(ctx, IssueRequest{Client: "c", Provisions: []holdings.Provision{{Key: k, Quantity: 1}}})
		})
	}
	testkit.CheckFor(t, testkit.Patience, time.Millisecond, func() error {
		if n := len(l.reqs); n != calls {
			return fmt.Errorf("%d of %d calls queued behind the held writer", n, calls)
		}
		return nil
	})
	if err := release(); err != nil {
		t.Fatal(err)
	}
	waitGroup(t, testkit.Patience, "the calls", &wg)
	if st := l.Stats(); st.Batches-st0.Batches != 1+3 || st.Calls-st0.Calls != 1+calls {
		t.Fatalf("%d calls queued behind a held batch, MaxBatch 8: %d batches of %d calls in all, want 4 of %d",
			calls, st.Batches-st0.Batches, st.Calls-st0.Calls, 1+calls)
	}
	// 15 of the 20 fit; the others, whichever they are, are NoCapacity.
	ok := 0
	for _, err := range errs {
		switch errKind(err) {
		case "":
			ok++
		case "NoCapacity":
		default:
			t.Errorf("issue: %v", err)
		}
	}
	if v, _ := l.FindHoldingByKey(k); ok != 15 || v != (holdings.Value{Limit: 15, UsageMax: 15}) {
		t.Fatalf("%d issues took, holding %+v; want 15 and usage_max 15", ok, v)
	}
}

// TestCloseUnderLoad closes the ledger while callers keep calling: every
// call returns (applied, or ErrClosed), none hangs.
func TestCloseUnderLoad(t *testing.T) {
	ctx := context.Background()
	l, err := Open(memOptions())
	if err != nil {
		t.Fatal(err)
	}
	k := key("u", "-", "vm")
	if err := l.SetHoldings(ctx, []HoldingSetting{{Key: k, Limit: 1 << 40}}); err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	for w := 0; w < 16; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				_, err := l.Issue(ctx, IssueRequest{Client: "c", Provisions: []holdings.Provision{{Key: k, Quantity: 1}}})
				if errors.Is(err, ErrClosed) {
					return
				}
				if err != nil {
					t.Error(err)
					return
				}
			}
		}()
	}
	testkit.CheckFor(t, testkit.Patience, time.Millisecond, func() error {
		if n := l.Stats().Serial; n < 200 {
			return fmt.Errorf("%d issues, want 200", n)
		}
		return nil
	})
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	waitGroup(t, testkit.Patience, "every caller to return after Close", &wg)
	if _, err := l.Log(LogFilter{}); !errors.Is(err, ErrClosed) {
		t.Errorf("log after close: %v, want ErrClosed", err)
	}
	if _, err := l.Outbox(0, 10); !errors.Is(err, ErrClosed) {
		t.Errorf("outbox after close: %v, want ErrClosed", err)
	}
	if err := l.Resolve(ctx, "c", 1, true, ""); !errors.Is(err, ErrClosed) {
		t.Errorf("resolve after close: %v, want ErrClosed", err)
	}
}

func TestOutboxStats(t *testing.T) {
	ctx := context.Background()
	opts := memOptions()
	fs := vfs.NewCrashableMem()
	opts.FS = fs
	l := mustOpen(t, opts)
	if st, err := l.OutboxStats(); err != nil || st.Depth != 0 || !st.Oldest.IsZero() {
		t.Fatalf("empty outbox: %+v %v", st, err)
	}
	k := key("u", "-", "vm")
	for i := 0; i < 3; i++ {
		if err := l.SetHoldings(ctx, []HoldingSetting{{Key: k, Limit: int64(i)}}); err != nil {
			t.Fatal(err)
		}
	}
	st, err := l.OutboxStats()
	if err != nil || st.Depth != 3 || st.Last != 3 || st.Oldest.IsZero() {
		t.Fatalf("three events: %+v %v", st, err)
	}
	if err := l.DeleteOutbox(2); err != nil {
		t.Fatal(err)
	}
	if st, err = l.OutboxStats(); err != nil || st.Depth != 1 || st.Last != 3 {
		t.Fatalf("after deleting two: %+v %v", st, err)
	}
	third, err := l.Outbox(2, 1)
	if err != nil || len(third) != 1 || third[0].Seq != 3 {
		t.Fatalf("the event left: %+v %v", third, err)
	}

	// After a restart (issue 17: OutboxStats used to walk the outbox's
	// tombstones from sequence 0 to the first event left). The outbox is
	// the journal now: the relay's mark is one key, read at open, and the
	// first event after it is found in the journal's index in memory, so
	// there is nothing to walk; the stats are those before the restart,
	// after a crash (the journal still holds the published events) as
	// after a close (its checkpoint dropped them).
	crashed := fs.CrashClone(vfs.CrashCloneCfg{UnsyncedDataPercent: 0, RNG: rand.New(rand.NewPCG(1, 2))})
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	for name, fs := range map[string]vfs.FS{"crash": crashed, "close": fs} {
		opts.FS = fs
		l := mustOpen(t, opts)
		if st, err := l.OutboxStats(); err != nil || st.Depth != 1 || st.Last != 3 || !st.Oldest.Equal(third[0].Time) {
			t.Fatalf("after a %s: %+v %v, want depth 1, last 3, oldest %v", name, st, err, third[0].Time)
		}
		if err := l.Close(); err != nil {
			t.Fatal(err)
		}
	}
}

// TestLargeHoldingChangeIsChunked: a change of many holdings is
// reported as several events, none larger than MaxEventHoldings holdings.
func TestLargeHoldingChangeIsChunked(t *testing.T) {
	ctx := context.Background()
	l := mustOpen(t, memOptions())
	var ss []HoldingSetting
	var ks []holdings.Key
	for i := 0; i < 2*MaxEventHoldings+5; i++ {
		k := key("u"+strconv.Itoa(i), "-", "vm")
		ss = append(ss, HoldingSetting{Key: k, Limit: 1})
		ks = append(ks, k)
	}
	if err := l.SetHoldings(ctx, ss); err != nil {
		t.Fatal(err)
	}
	if err := l.DeleteHoldings(ctx, ks); err != nil {
		t.Fatal(err)
	}
	evs, err := l.Outbox(0, 100)
	if err != nil {
		t.Fatal(err)
	}
	counts := map[string]int{}
	for _, e := range evs {
		if len(e.Holdings) > MaxEventHoldings {
			t.Fatalf("event %d has %d holdings", e.Seq, len(e.Holdings))
		}
		counts[e.Type] += len(e.Holdings)
	}
	if len(evs) != 6 || counts[catalog.HoldingChangedType] != len(ss) || counts[catalog.HoldingDeletedType] != len(ks) {
		t.Fatalf("%d events: %v", len(evs), counts)
	}
}

// TestPublishAfterDelete holds that a batch publishing an issue and, in the
// same batch, deletes of the same holder's other holdings sets the issued
// holding's row and no other, whatever the order the batch's holdings are
// published in: the writer keeps where it found a row (rowRef), and a
// delete moves the holder's last row into the deleted one's place.
func TestPublishAfterDelete(t *testing.T) {
	ctx := context.Background()
	l := mustOpen(t, memOptions())
	for round := range 12 {
		h := fmt.Sprintf("user:%d", round)
		var keys []holdings.Key
		var settings []HoldingSetting
		for _, r := range []string{"a", "b", "c", "d", "e"} {
			k := key(h, "-", r)
			keys = append(keys, k)
			settings = append(settings, HoldingSetting{Key: k, Limit: 10})
		}
		if err := l.SetHoldings(ctx, settings); err != nil {
			t.Fatal(err)
		}
		// e is the holder's last row: each delete of a, b or c published
		// before it moves it.
		release := holdWriter(t, l)
		var wg sync.WaitGroup
		var issueErr, delErr error
		wg.Go(func() {
			_, issueErr = l.Issue(ctx, IssueRequest{Client: "c", Provisions: []holdings.Provision{{Key: keys[4], Quantity: 3}}})
		})
		testkit.CheckFor(t, testkit.Patience, time.Millisecond, func() error {
			if n := len(l.reqs); n != 1 {
				return fmt.Errorf("%d calls queued, want the issue", n)
			}
			return nil
		})
		wg.Go(func() { delErr = l.DeleteHoldings(ctx, keys[:3]) })
		testkit.CheckFor(t, testkit.Patience, time.Millisecond, func() error {
			if n := len(l.reqs); n != 2 {
				return fmt.Errorf("%d calls queued, want the issue and the delete", n)
			}
			return nil
		})
		st0 := l.Stats()
		if err := release(); err != nil {
			t.Fatal(err)
		}
		waitGroup(t, testkit.Patience, "the issue and the delete", &wg)
		if issueErr != nil || delErr != nil {
			t.Fatalf("round %d: issue: %v, delete: %v", round, issueErr, delErr)
		}
		if st := l.Stats(); st.Batches-st0.Batches != 2 {
			t.Fatalf("round %d: the held batch and %d more, want the issue and the delete in one", round, st.Batches-st0.Batches-1)
		}
		for i, k := range keys {
			v, ok := l.FindHoldingByKey(k)
			switch {
			case i < 3 && ok:
				t.Fatalf("round %d: deleted %v is still there: %+v", round, k, v)
			case i == 3 && (!ok || v != (holdings.Value{Limit: 10})):
				t.Fatalf("round %d: untouched %v is %+v (found %v), want limit 10", round, k, v, ok)
			case i == 4 && (!ok || v != (holdings.Value{Limit: 10, UsageMax: 3})):
				t.Fatalf("round %d: issued %v is %+v (found %v), want limit 10, usage_max 3", round, k, v, ok)
			}
		}
	}
}

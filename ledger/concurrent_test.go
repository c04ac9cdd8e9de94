package ledger

import (
	"context"
	"errors"
	"runtime"
	"strconv"
	"sync"
	"testing"

	"github.com/quotaledger/quotaledger/holdings"
)

// TestConcurrentHotHolding drives the pipelined writer from many goroutines
// that all draw from one holding: every accepted import must be counted once,
// every rejected one undone, and serials must never repeat.
func TestConcurrentHotHolding(t *testing.T) {
	ctx := context.Background()
	l := mustOpen(t, memOptions())
	hot := key("project:p", "-", "vm")
	const workers, rounds = 32, 100
	var ss []QuotaSetting
	ss = append(ss, QuotaSetting{Key: hot, Limit: workers * rounds})
	for w := 0; w < workers; w++ {
		ss = append(ss, QuotaSetting{Key: key("user:"+string(rune('a'+w)), "project:p", "vm"), Limit: rounds})
	}
	if err := l.SetQuota(ctx, ss); err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	serials := map[uint64]bool{}
	accepted := 0
	var wg sync.WaitGroup
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			mine := key("user:"+string(rune('a'+w)), "project:p", "vm")
			for i := 0; i < rounds; i++ {
				res, err := l.Issue(ctx, IssueRequest{Client: "c", Provisions: []holdings.Provision{
					{Key: hot, Quantity: 1}, {Key: mine, Quantity: 1}}})
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
	wg.Wait()
	v, _ := l.Holding(hot)
	if v.UsageMin != int64(accepted) || v.UsageMax != int64(accepted) {
		t.Fatalf("hot holding %+v, want usage %d", v, accepted)
	}
	if st := l.Stats(); st.Pending != 0 || st.Serial != workers*rounds {
		t.Fatalf("stats %+v", st)
	}
	if st := l.Stats(); st.Calls/st.Batches < 2 {
		t.Logf("mean batch size %d: the pipeline saw little concurrency", st.Calls/st.Batches)
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
	if err := l.SetQuota(ctx, []QuotaSetting{{Key: k, Limit: 1 << 40}}); err != nil {
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
	for l.Stats().Serial < 200 {
		runtime.Gosched()
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	wg.Wait()
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
	l := mustOpen(t, memOptions())
	if st, err := l.OutboxStats(); err != nil || st.Depth != 0 || !st.Oldest.IsZero() {
		t.Fatalf("empty outbox: %+v %v", st, err)
	}
	k := key("u", "-", "vm")
	for i := 0; i < 3; i++ {
		if err := l.SetQuota(ctx, []QuotaSetting{{Key: k, Limit: int64(i)}}); err != nil {
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
}

// TestLargeQuotaChangeIsChunked: a quota change of many holdings is
// reported as several events, none larger than MaxEventHoldings holdings.
func TestLargeQuotaChangeIsChunked(t *testing.T) {
	ctx := context.Background()
	l := mustOpen(t, memOptions())
	var ss []QuotaSetting
	var ks []holdings.Key
	for i := 0; i < 2*MaxEventHoldings+5; i++ {
		k := key("u"+strconv.Itoa(i), "-", "vm")
		ss = append(ss, QuotaSetting{Key: k, Limit: 1})
		ks = append(ks, k)
	}
	if err := l.SetQuota(ctx, ss); err != nil {
		t.Fatal(err)
	}
	if err := l.DeleteQuota(ctx, ks); err != nil {
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
	if len(evs) != 6 || counts[EventQuotaSet] != len(ss) || counts[EventQuotaDeleted] != len(ks) {
		t.Fatalf("%d events: %v", len(evs), counts)
	}
}

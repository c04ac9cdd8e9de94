package ledger

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/quotaledger/quotaledger/internal/testkit"
)

// TestCheckpointUnderLoad takes a checkpoint while writers set quotas, each
// writer its own holdings in order, and opens the copy: it must hold a
// prefix of every writer's sequence, each with the limit set, and the live
// ledger goes on.
func TestCheckpointUnderLoad(t *testing.T) {
	opts := memOptions()
	l := mustOpen(t, opts)
	ctx := context.Background()

	const writers = 4
	var (
		wg      sync.WaitGroup
		stop    atomic.Bool
		written [writers]atomic.Int64
	)
	for w := range writers {
		wg.Go(func() {
			for i := 0; !stop.Load(); i++ {
				k := key(fmt.Sprintf("h%d-%d", w, i), "system", "r")
				if err := l.SetHoldings(ctx, []HoldingSetting{{Key: k, Limit: int64(w*1_000_000 + i)}}); err != nil {
					t.Errorf("set quota: %v", err)
					return
				}
				written[w].Store(int64(i + 1))
			}
		})
	}
	testkit.CheckFor(t, testkit.Patience, time.Millisecond, func() error {
		if n := written[0].Load(); n < 50 {
			return fmt.Errorf("writer 0 set %d quotas, want 50", n)
		}
		return nil
	})
	if err := l.Checkpoint("/checkpoint"); err != nil {
		t.Fatal(err)
	}
	// A second checkpoint into an existing directory is refused.
	if err := l.Checkpoint("/checkpoint"); err == nil {
		t.Error("checkpoint into an existing directory: no error")
	}
	stop.Store(true)
	waitGroup(t, testkit.Patience, "the writers to stop", &wg)

	copyOpts := opts
	copyOpts.Dir = "/checkpoint"
	c := mustOpen(t, copyOpts)
	if c.ID() != l.ID() {
		t.Errorf("copy id %s, live %s", c.ID(), l.ID())
	}
	got := c.FindHoldings(HoldingFilter{})
	seen := make(map[int]int)
	for _, h := range got {
		var w, i int
		if _, err := fmt.Sscanf(h.Key.Holder, "h%d-%d", &w, &i); err != nil {
			t.Fatalf("holder %q: %v", h.Key.Holder, err)
		}
		if want := int64(w*1_000_000 + i); h.Value.Limit != want {
			t.Errorf("%s: limit %d, want %d", h.Key.Holder, h.Value.Limit, want)
		}
		seen[w]++
	}
	for w := range writers {
		n := seen[w]
		if int64(n) > written[w].Load()+1 {
			t.Errorf("writer %d: %d holdings in the copy, only %d written", w, n, written[w].Load())
		}
		for i := range n {
			if _, ok := c.FindHoldingByKey(key(fmt.Sprintf("h%d-%d", w, i), "system", "r")); !ok {
				t.Errorf("writer %d: h%d-%d missing from a copy with %d of its holdings", w, w, i, n)
			}
		}
	}
	if seen[0] < 50 {
		t.Errorf("copy has %d holdings of writer 0, at least 50 were written before", seen[0])
	}
	// The copy is a ledger of its own.
	if err := c.SetHoldings(ctx, []HoldingSetting{{Key: key("x", "system", "r"), Limit: 1}}); err != nil {
		t.Fatal(err)
	}
	if _, ok := l.FindHoldingByKey(key("x", "system", "r")); ok {
		t.Error("a write to the copy shows in the live ledger")
	}
	_ = l.Close()
	if err := l.Checkpoint("/after-close"); !errors.Is(err, ErrClosed) {
		t.Errorf("checkpoint of a closed ledger: %v, want ErrClosed", err)
	}
}

package ledgertest_test

import (
	"context"
	"errors"
	"os"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/cockroachdb/pebble/v2/vfs"
	"github.com/cockroachdb/pebble/v2/vfs/errorfs"

	"github.com/quotaledger/quotaledger/holdings"
	"github.com/quotaledger/quotaledger/internal/testkit"
	"github.com/quotaledger/quotaledger/internal/testkit/ledgertest"
	"github.com/quotaledger/quotaledger/ledger"
)

var k = holdings.Key{Holder: "user:1", Source: holdings.NullSource, Resource: "vm"}

func setQuota(t *testing.T, l *ledger.Ledger, limit int64) error {
	t.Helper()
	return l.SetHoldings(context.Background(), []ledger.HoldingSetting{{Key: k, Limit: limit}})
}

func TestOpen(t *testing.T) {
	t.Run("InMemory", func(t *testing.T) {
		a, b := ledgertest.Open(t, ledger.Options{}), ledgertest.Open(t, ledger.Options{})
		if err := setQuota(t, a, 5); err != nil {
			t.Fatal(err)
		}
		if _, ok := b.FindHoldingByKey(k); ok {
			t.Fatal("two ledgers opened without a Dir share their filesystem")
		}
	})
	t.Run("OnDisk", func(t *testing.T) {
		dir := t.TempDir()
		l := ledgertest.Open(t, ledger.Options{Dir: dir})
		if err := setQuota(t, l, 5); err != nil {
			t.Fatal(err)
		}
		if ents, err := os.ReadDir(dir); err != nil || len(ents) == 0 {
			t.Fatalf("nothing on disk in %s: %v", dir, err)
		}
	})
	t.Run("FreeSpaceCheckWhenAsked", func(t *testing.T) {
		l := ledgertest.Open(t, ledger.Options{DiskFree: func() (uint64, error) { return 0, nil }})
		if err := setQuota(t, l, 5); !errors.Is(err, ledger.ErrNoSpace) {
			t.Fatalf("a write with no free space: %v, want ledger.ErrNoSpace", err)
		}
	})
	t.Run("ClosedWhenTheTestEnds", func(t *testing.T) {
		var r testkit.Recorder
		l := ledgertest.Open(&r, ledger.Options{})
		if r.Cleanups() != 1 {
			t.Fatalf("%d cleanups, want 1", r.Cleanups())
		}
		r.End()
		if _, err := l.Outbox(0, 1); !errors.Is(err, ledger.ErrClosed) {
			t.Fatalf("after the cleanup: %v, want ledger.ErrClosed", err)
		}
	})
}

func TestCheckOutbox(t *testing.T) {
	ctx := context.Background()
	l := ledgertest.Open(t, ledger.Options{})
	if err := setQuota(t, l, 5); err != nil { // holding.changed, as catalogued
		t.Fatal(err)
	}
	var r testkit.Recorder
	if evs := ledgertest.CheckOutbox(&r, l); len(evs) != 1 || len(r.Errors()) != 0 {
		t.Fatalf("a catalogued event: %+v, errors %q", evs, r.Errors())
	}
	if err := l.Update(ctx, func(tx *ledger.Tx) error {
		tx.Emit("no.such.type", nil)
		tx.Emit("holding.changed", []byte(`{"holdings":[],"extra":1}`))
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if evs := ledgertest.CheckOutbox(&r, l); len(evs) != 3 || len(r.Errors()) != 2 {
		t.Fatalf("an uncatalogued type and a payload with an unknown field: %d events, errors %q, want 3 and 2", len(evs), r.Errors())
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	r = testkit.Recorder{}
	if evs := ledgertest.CheckOutbox(&r, l); evs != nil || len(r.Errors()) != 0 {
		t.Fatalf("a closed ledger: %+v, errors %q", evs, r.Errors())
	}
}

func TestOpenReportsAFailedClose(t *testing.T) {
	var armed atomic.Bool
	fs := errorfs.Wrap(vfs.NewMem(), errorfs.InjectorFunc(func(op errorfs.Op) error {
		if armed.Load() && op.Kind.ReadOrWrite() == errorfs.OpIsWrite {
			return errorfs.ErrInjected
		}
		return nil
	}))
	var r testkit.Recorder
	l := ledgertest.Open(&r, ledger.Options{FS: fs})
	if err := setQuota(t, l, 5); err != nil {
		t.Fatal(err)
	}
	armed.Store(true)
	r.End()
	if errs := r.Errors(); len(errs) != 1 || !strings.Contains(errs[0], "close the ledger") {
		t.Fatalf("a close that fails: %q, want it reported", errs)
	}
}

// Package ledgertest opens ledgers for tests and checks the events they
// hold. It is testkit's layer over package ledger (see testkit): identity's
// tests and those above use it; ledger's own cannot (they are package
// ledger, which it imports).
package ledgertest

import (
	"errors"
	"reflect"

	"github.com/cockroachdb/pebble/v2/vfs"
	"github.com/rs/zerolog"

	"github.com/quotaledger/quotaledger/events/catalog"
	"github.com/quotaledger/quotaledger/internal/testkit"
	"github.com/quotaledger/quotaledger/ledger"
)

// Dir is where Open puts a ledger on an in-memory filesystem when the
// options name no directory.
const Dir = "/ledger"

// Open opens a ledger with opts for a test, and closes it when the test
// ends, failing the test if the close fails (a ledger the test closed
// itself stays closed: that close was the test's to check). It fills what
// opts leave unset as tests want it:
//   - no Dir: a fresh in-memory filesystem (vfs.NewMem, or opts.FS if set)
//     at Dir. For a ledger on disk, pass Dir: tb.TempDir() (and no FS).
//   - no Logger: zerolog.Nop().
//   - NoFreeSpaceCheck, unless opts ask for the check by setting
//     MinFreeBytes or DiskFree.
//   - MemTableSize 4 MiB and CacheSize 8 MiB, unless set: Pebble's defaults
//     take 192 MiB a ledger, and a test opens many.
func Open(tb testkit.TB, opts ledger.Options) *ledger.Ledger {
	tb.Helper()
	l, err := TryOpen(tb, opts)
	if err != nil {
		tb.Fatalf("open the ledger in %s: %v", opts.Dir, err)
		return nil
	}
	return l
}

// TryOpen is Open for a test that expects Open to fail: it returns the
// error.
func TryOpen(tb testkit.TB, opts ledger.Options) (*ledger.Ledger, error) {
	tb.Helper()
	if opts.Dir == "" {
		if opts.FS == nil {
			opts.FS = vfs.NewMem()
		}
		opts.Dir = Dir
	}
	if reflect.ValueOf(opts.Logger).IsZero() {
		opts.Logger = zerolog.Nop()
	}
	if opts.MinFreeBytes == 0 && opts.DiskFree == nil {
		opts.NoFreeSpaceCheck = true
	}
	if opts.MemTableSize == 0 {
		opts.MemTableSize = 4 << 20
	}
	if opts.CacheSize == 0 {
		opts.CacheSize = 8 << 20
	}
	l, err := ledger.Open(opts)
	if err != nil {
		return nil, err
	}
	tb.Cleanup(func() {
		if err := l.Close(); err != nil {
			tb.Errorf("close the ledger in %s: %v", opts.Dir, err)
		}
	})
	return l, nil
}

// CheckOutbox checks every event in l's outbox against the event catalog
// (catalog.Check: a catalogued type, and data that is exactly its payload
// type's), failing the test (Errorf) for each that is not, and returns the
// events. A closed ledger has nothing to check. Environments call it when
// a test ends (identitytest.OpenStores does), so that every event the
// tests make is checked.
func CheckOutbox(tb testkit.TB, l *ledger.Ledger) []ledger.Event {
	tb.Helper()
	var all []ledger.Event
	for after := uint64(0); ; {
		evs, err := l.Outbox(after, 1000)
		if errors.Is(err, ledger.ErrClosed) {
			return all
		}
		if err != nil {
			tb.Errorf("read the outbox: %v", err)
			return all
		}
		if len(evs) == 0 {
			return all
		}
		for _, ev := range evs {
			if err := catalog.Check(ev.Type, ev.Data); err != nil {
				tb.Errorf("outbox event %d: %v", ev.Seq, err)
			}
		}
		all = append(all, evs...)
		after = evs[len(evs)-1].Seq
	}
}

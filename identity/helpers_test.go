package identity

import (
	"github.com/cockroachdb/pebble/v2/vfs"

	"github.com/quotaledger/quotaledger/internal/testkit"
	"github.com/quotaledger/quotaledger/internal/testkit/ledgertest"
	"github.com/quotaledger/quotaledger/ledger"
)

// cheapHash keeps tests fast; production uses DefaultHashParams. It is
// identitytest.CheapHash, which identity's own tests cannot import (it
// imports identity).
var cheapHash = HashParams{Time: 1, Memory: 64, Threads: 1, KeyLen: 16, SaltLen: 8}

// stores is a ledger and a store on it, the base of every environment of
// these tests: reopen opens both again on the same filesystem. When the
// test ends, the outbox is checked against the event catalog
// (ledgertest.CheckOutbox) and the ledger closed.
type stores struct {
	tb   testkit.TB
	fs   vfs.FS // nil: on disk, in dir
	dir  string // "": ledgertest's directory on fs
	opts Options
	l    *ledger.Ledger
	s    *Store
}

// openStores opens a ledger on fs in dir (see stores) and a store on it
// with opts, with cheapHash unless opts.Hash is set.
func openStores(tb testkit.TB, fs vfs.FS, dir string, opts Options) *stores {
	tb.Helper()
	if opts.Hash == (HashParams{}) {
		opts.Hash = cheapHash
	}
	st := &stores{tb: tb, fs: fs, dir: dir, opts: opts}
	st.open()
	return st
}

func (st *stores) open() {
	st.tb.Helper()
	l := ledgertest.Open(st.tb, ledger.Options{Dir: st.dir, FS: st.fs})
	st.tb.Cleanup(func() { ledgertest.CheckOutbox(st.tb, l) }) // before the close
	s, err := Open(l, st.opts)
	if err != nil {
		st.tb.Fatalf("open the store: %v", err)
	}
	st.l, st.s = l, s
}

// reopen closes the ledger and opens it and the store again.
func (st *stores) reopen() {
	st.tb.Helper()
	if err := st.l.Close(); err != nil {
		st.tb.Fatalf("close the ledger: %v", err)
	}
	st.open()
}

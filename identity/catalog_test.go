package identity

import (
	"errors"

	"github.com/quotaledger/quotaledger/events/catalog"
	"github.com/quotaledger/quotaledger/ledger"
)

// checkOutbox checks every event in l's outbox against the event catalog
// (catalog.Check: a catalogued type, and data that is its payload type's,
// exactly). The test environments call it when a test ends, so every event
// the tests make is checked; a closed ledger has nothing to check.
func checkOutbox(tb interface {
	Helper()
	Errorf(format string, args ...any)
}, l *ledger.Ledger) {
	tb.Helper()
	for after := uint64(0); ; {
		evs, err := l.Outbox(after, 1000)
		if errors.Is(err, ledger.ErrClosed) {
			return
		}
		if err != nil {
			tb.Errorf("read the outbox: %v", err)
			return
		}
		if len(evs) == 0 {
			return
		}
		for _, ev := range evs {
			if err := catalog.Check(ev.Type, ev.Data); err != nil {
				tb.Errorf("outbox event %d: %v", ev.Seq, err)
			}
		}
		after = evs[len(evs)-1].Seq
	}
}

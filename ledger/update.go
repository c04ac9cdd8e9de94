package ledger

import (
	"context"

	"github.com/quotaledger/quotaledger/failure"
	"github.com/quotaledger/quotaledger/holdings"
)

// Update runs fn in the writer, against the state as the current batch sees
// it, and commits what fn stages through tx in the same synced batch as the
// other calls of that batch: the identity layer uses it so that, say, a new
// user and their holdings are one atomic change. If fn returns an error,
// nothing it staged is applied and Update returns that error.
//
// fn runs on the writer goroutine: it must be quick, must not block, and
// must not call the Ledger (that would deadlock).
func (l *Ledger) Update(ctx context.Context, fn func(tx *Tx) error) error {
	return l.do(ctx, &updateOp{fn: fn})
}

// Tx stages the changes of one Update.
type Tx struct {
	b        *batch
	settings []HoldingSetting
	raw      records
	events   []*Event
}

// FindHoldingByKey returns a holding as the batch sees it (the durable state plus
// what earlier calls of the batch, and of batches not yet synced, changed).
func (tx *Tx) FindHoldingByKey(k holdings.Key) (holdings.Value, bool) {
	for i := len(tx.settings) - 1; i >= 0; i-- {
		if tx.settings[i].Key == k {
			v, _ := tx.b.get(k)
			v.Limit = tx.settings[i].Limit
			return v, true
		}
	}
	return tx.b.get(k)
}

// SetHoldings stages a change of holdings, as Ledger.SetHoldings does.
func (tx *Tx) SetHoldings(settings ...HoldingSetting) error {
	for _, s := range settings {
		if err := checkKey(s.Key); err != nil {
			return err
		}
		if s.Limit < 0 {
			return invalid("limit of %s is negative", s.Key)
		}
	}
	tx.settings = append(tx.settings, settings...)
	return nil
}

// Put stages a record of the caller's own key space: keys must start with
// a byte from 'A' to 'Z' (the ledger's own records use the others).
func (tx *Tx) Put(key, value []byte) error {
	if err := checkForeignKey(key); err != nil {
		return err
	}
	tx.raw.set(key, value)
	return nil
}

// Delete stages the removal of a record of the caller's own key space.
func (tx *Tx) Delete(key []byte) error {
	if err := checkForeignKey(key); err != nil {
		return err
	}
	tx.raw.del(key)
	return nil
}

// Emit stages an event of type typ with an opaque payload (JSON), for the
// outbox.
func (tx *Tx) Emit(typ string, data []byte) {
	tx.events = append(tx.events, &Event{Type: typ, Data: append([]byte(nil), data...)})
}

func checkForeignKey(key []byte) error {
	if len(key) == 0 || key[0] < 'A' || key[0] > 'Z' {
		return failure.Errorf(failure.Invalid, "key %q is not in a key space open to Update ('A'..'Z')", key)
	}
	return nil
}

type updateOp struct{ fn func(*Tx) error }

func (o *updateOp) apply(b *batch) error {
	tx := &Tx{b: b}
	if err := o.fn(tx); err != nil {
		return err
	}
	if len(tx.settings) > 0 {
		if err := (&setHoldingsOp{settings: tx.settings}).apply(b); err != nil {
			return err
		}
	}
	if len(tx.raw.list) > 0 || len(tx.events) > 0 {
		b.recordUpdate(&tx.raw, tx.events)
		b.emitted(len(tx.events))
	}
	return nil
}

// ScanForeign calls fn for every record whose key starts with prefix, in
// key order, in a key space open to Update. The records reach the state
// database from the journal (applier.go): it first waits, as Log does, until
// every Update that returned before the call is there. Use it to load state
// on start, before calls are made.
func (l *Ledger) ScanForeign(prefix []byte, fn func(key, value []byte) error) error {
	if err := checkForeignKey(prefix); err != nil {
		return err
	}
	l.ap.wait(l.shownSeq(), logWait)
	return l.readDB(func() error {
		return l.scanRange(prefix, prefixEnd(prefix), fn)
	})
}

package ledger

import (
	"encoding/binary"
	"time"

	"github.com/quotaledger/quotaledger/holdings"
)

// Event is one record of the outbox: a change of state, written in the same
// Pebble batch as the change itself. Its id is the database id and Seq, so a
// republished event keeps its id (and NATS can drop the duplicate).
type Event struct {
	Seq    uint64 // position in the outbox: strictly increasing, never reused
	Type   string
	Time   time.Time
	Serial uint64 // the commission's serial, 0 if none
	Client string // the commission's client, "" if none
	Name   string // the commission's name
	Reason string // the resolve reason
	// IssueTime is the commission's issue time (commission events only).
	IssueTime time.Time
	// Holdings are the holdings the change touched, each with the quantity of
	// the provision (0 for holding changes) and its value after the change.
	Holdings []EventHolding
	// Data is an opaque payload (JSON) for events that do not come from the
	// ledger's own records (identity, feedback). Nil otherwise.
	Data []byte
}

// EventHolding is one holding in an event.
type EventHolding struct {
	Key      holdings.Key
	Quantity int64
	After    holdings.Value
}

func appendEvent(b []byte, e *Event) []byte {
	b = append(b, recordVersion)
	b = appendString(b, e.Type)
	b = appendTime(b, e.Time)
	b = appendUvarint(b, e.Serial)
	b = appendString(b, e.Client)
	b = appendString(b, e.Name)
	b = appendString(b, e.Reason)
	b = appendTime(b, e.IssueTime)
	b = appendUvarint(b, uint64(len(e.Holdings)))
	for _, h := range e.Holdings {
		b = appendChange(b, h.Key, h.Quantity, h.After)
	}
	b = binary.AppendUvarint(b, uint64(len(e.Data)))
	return append(b, e.Data...)
}

// DecodeEvent decodes an outbox entry: its key and value as Pebble holds them.
func DecodeEvent(key, value []byte) (Event, error) {
	if len(key) != 9 || key[0] != prefixOutbox {
		return Event{}, ErrCorrupt
	}
	e, err := decodeEventValue(value)
	e.Seq = binary.BigEndian.Uint64(key[1:])
	return e, err
}

// decodeEventValue decodes what appendEvent wrote (the sequence is not in
// it).
func decodeEventValue(value []byte) (Event, error) {
	var e Event
	d := decoder{b: value}
	checkVersion(&d)
	e.Type = d.string()
	e.Time = d.time()
	e.Serial = d.uvarint()
	e.Client = d.string()
	e.Name = d.string()
	e.Reason = d.string()
	e.IssueTime = d.time()
	n := d.count(8)
	if n > 0 {
		e.Holdings = make([]EventHolding, n)
	}
	for i := range e.Holdings {
		e.Holdings[i].Key, e.Holdings[i].Quantity, e.Holdings[i].After = d.change()
	}
	if data := d.bytes(); len(data) > 0 {
		e.Data = append([]byte(nil), data...)
	}
	if d.err == nil && e.Type == "" {
		d.fail()
	}
	return e, d.done()
}

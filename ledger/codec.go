package ledger

import (
	"encoding/binary"
	"time"
	"unicode/utf8"
	"unsafe"

	"github.com/quotaledger/quotaledger/failure"
	"github.com/quotaledger/quotaledger/holdings"
)

// ErrCorrupt is returned by decoders for a record that is not what its key
// range promises: truncated, of an unknown version, or with trailing bytes
// (failure.Internal: the API answers 500 and logs it).
var ErrCorrupt = failure.New(failure.Internal, "corrupt record")

// The records of the ledger are encoded by hand: a version byte, then varints
// and length-prefixed strings. Encoders append to a caller's buffer so that
// the writer reuses one scratch buffer per batch.

func appendString(b []byte, s string) []byte {
	b = binary.AppendUvarint(b, uint64(len(s)))
	return append(b, s...)
}

func appendVarint(b []byte, v int64) []byte { return binary.AppendVarint(b, v) }

func appendUvarint(b []byte, v uint64) []byte { return binary.AppendUvarint(b, v) }

func appendTime(b []byte, t time.Time) []byte {
	if t.IsZero() {
		return binary.AppendVarint(b, 0)
	}
	return binary.AppendVarint(b, t.UnixNano())
}

func appendSource(b []byte, s holdings.Source) []byte {
	if s.IsNull() {
		return append(b, 0)
	}
	b = append(b, 1)
	return appendString(b, s.Name())
}

// appendKeyParts encodes a holding key as holder, source, resource. It is
// used both inside record values and, after a prefix byte, as a Pebble key:
// all holdings of one holder share the prefix of the encoded holder.
func appendKeyParts(b []byte, k holdings.Key) []byte {
	b = appendString(b, k.Holder)
	b = appendSource(b, k.Source)
	return appendString(b, k.Resource)
}

func appendValue(b []byte, v holdings.Value) []byte {
	b = binary.AppendVarint(b, v.Limit)
	b = binary.AppendVarint(b, v.UsageMin)
	return binary.AppendVarint(b, v.UsageMax)
}

// appendChange encodes what a provision did to a holding: its key, the
// quantity and the holding's value after the change (log and event records).
func appendChange(b []byte, k holdings.Key, q int64, after holdings.Value) []byte {
	b = appendKeyParts(b, k)
	b = appendVarint(b, q)
	return appendValue(b, after)
}

// viewString is an intern function for decoders whose strings may share
// the bytes they decode (the applier's records, which nothing changes and
// which outlive what it keeps of them): no copy.
func viewString(b []byte) string { return unsafe.String(unsafe.SliceData(b), len(b)) }

// decoder reads what the append functions wrote. The first error sticks and
// every later read returns a zero value, so callers check err once.
type decoder struct {
	b   []byte
	err error
	// intern, when set, deduplicates strings: on open, millions of holdings
	// share a few thousand holder, source and resource names.
	intern func([]byte) string
	// holder, when set, keeps the last holder decoded: keys come sorted, so
	// the rows of one holder share one string.
	holder *string
}

func (d *decoder) fail() {
	if d.err == nil {
		d.err = ErrCorrupt
	}
	d.b = nil
}

func (d *decoder) byte() byte {
	if d.err != nil || len(d.b) < 1 {
		d.fail()
		return 0
	}
	c := d.b[0]
	d.b = d.b[1:]
	return c
}

func (d *decoder) uvarint() uint64 {
	if d.err != nil {
		return 0
	}
	v, n := binary.Uvarint(d.b)
	if n <= 0 {
		d.fail()
		return 0
	}
	d.b = d.b[n:]
	return v
}

func (d *decoder) varint() int64 {
	if d.err != nil {
		return 0
	}
	v, n := binary.Varint(d.b)
	if n <= 0 {
		d.fail()
		return 0
	}
	d.b = d.b[n:]
	return v
}

func (d *decoder) bytes() []byte {
	n := d.uvarint()
	if d.err != nil || n > uint64(len(d.b)) {
		d.fail()
		return nil
	}
	s := d.b[:n:n]
	d.b = d.b[n:]
	return s
}

func (d *decoder) string() string {
	s := d.bytes()
	if d.err != nil {
		return ""
	}
	if !utf8.Valid(s) {
		d.fail()
		return ""
	}
	if d.intern != nil {
		return d.intern(s)
	}
	return string(s)
}

func (d *decoder) time() time.Time {
	ns := d.varint()
	if ns == 0 || d.err != nil {
		return time.Time{}
	}
	return time.Unix(0, ns).UTC()
}

func (d *decoder) source() holdings.Source {
	switch d.byte() {
	case 0:
		return holdings.NullSource
	case 1:
		return holdings.SourceOf(d.string())
	default:
		d.fail()
		return holdings.NullSource
	}
}

func (d *decoder) key() holdings.Key {
	var k holdings.Key
	if d.holder == nil {
		k.Holder = d.string()
	} else if hb := d.bytes(); d.err == nil {
		if *d.holder != string(hb) {
			if !utf8.Valid(hb) {
				d.fail()
			}
			*d.holder = string(hb)
		}
		k.Holder = *d.holder
	}
	k.Source = d.source()
	k.Resource = d.string()
	if d.err == nil && (k.Holder == "" || k.Resource == "") {
		d.fail()
	}
	return k
}

func (d *decoder) value() holdings.Value {
	var v holdings.Value
	v.Limit = d.varint()
	v.UsageMin = d.varint()
	v.UsageMax = d.varint()
	return v
}

func (d *decoder) change() (holdings.Key, int64, holdings.Value) {
	k := d.key()
	q := d.varint()
	return k, q, d.value()
}

func (d *decoder) fixed64() uint64 {
	if d.err != nil || len(d.b) < 8 {
		d.fail()
		return 0
	}
	v := binary.BigEndian.Uint64(d.b)
	d.b = d.b[8:]
	return v
}

// done reports the first error, or ErrCorrupt if bytes remain.
func (d *decoder) done() error {
	if d.err == nil && len(d.b) != 0 {
		d.err = ErrCorrupt
	}
	return d.err
}

// count reads a list length and refuses one that cannot fit in what is left
// (each element takes at least min bytes), so a corrupt length cannot make a
// decoder allocate without bound.
func (d *decoder) count(min int) int {
	n := d.uvarint()
	if d.err != nil {
		return 0
	}
	if n > uint64(len(d.b)/min) {
		d.fail()
		return 0
	}
	return int(n)
}

package events

import (
	"bytes"
	"math"
	"testing"
	"time"

	"github.com/quotaledger/quotaledger/holdings"
	"github.com/quotaledger/quotaledger/ledger"
)

// TestAppendPayloadMatchesMarshal: the hand-written payload is byte for
// byte json.Marshal's of the Payload, for every shape of event (commission
// or not, serial or none, issue time or none, the null source or a named
// one, extreme quantities) and strings json.Marshal escapes (quotes,
// backslashes, HTML characters, control characters, U+2028, invalid
// UTF-8, non-ASCII). An event with Data takes json.Marshal's path.
func TestAppendPayloadMatchesMarshal(t *testing.T) {
	strs := []string{"", "plain", `a"b`, `back\slash`, "<script>&amp;", "tab\tnew\nline\r\b\f\x00\x1f\x7f",
		"caf\u00e9 \u2028 \u2029 \U0001F600", "bad \xff\xfe utf-8", "\xc3", "quota.>*", "ACCEPT:done"}
	at := time.Date(2025, 5, 6, 7, 8, 9, 120000000, time.FixedZone("x", 3600))
	var evs []ledger.Event
	for i, s := range strs {
		other := strs[(i+3)%len(strs)]
		src := holdings.SourceOf(other)
		if i%3 == 0 {
			src = holdings.NullSource
		}
		hs := []ledger.EventHolding{
			{Key: holdings.Key{Holder: s, Source: src, Resource: other}, Quantity: int64(i) - 5,
				After: holdings.Value{Limit: math.MaxInt64, UsageMin: math.MinInt64 + int64(i), UsageMax: int64(i) * 1000}},
			{Key: holdings.Key{Holder: other, Source: holdings.SourceOf(s), Resource: s}},
		}
		for _, typ := range []string{"commission.issued", "commission.accepted", "holding.changed", "holding.deleted", s} {
			e := ledger.Event{Seq: uint64(i + 1), Type: typ, Time: at.Add(time.Duration(i) * time.Nanosecond),
				Client: s, Name: other, Reason: s + other}
			if i%2 == 0 {
				e.Serial, e.IssueTime = uint64(i)*977+1, at.Add(-time.Hour)
			}
			if i%4 != 1 {
				e.Holdings = hs[:1+i%2]
			}
			evs = append(evs, e)
		}
	}
	for _, e := range evs {
		id := MsgID("db-"+e.Client, e.Seq)
		got, ok := appendPayload(nil, id, &e)
		if !ok {
			t.Fatalf("appendPayload refused %+v", e)
		}
		if want := marshalPayload(id, e); !bytes.Equal(got, want) {
			t.Fatalf("event %+v:\n got %s\nwant %s", e, got, want)
		}
		if _, _, rendered := Render("db-"+e.Client, e); !bytes.Equal(rendered, got) {
			t.Fatalf("Render does not give appendPayload's payload:\n got %s\nwant %s", rendered, got)
		}
	}
	e := ledger.Event{Seq: 1, Type: "identity.user.registered", Time: at, Data: []byte(`{"a": "<b>"}`)}
	if _, ok := appendPayload(nil, "x-1", &e); ok {
		t.Fatal("appendPayload took an event with Data")
	}
	if _, _, p := Render("x", e); !bytes.Equal(p, marshalPayload("x-1", e)) {
		t.Fatalf("Render of an event with Data: %s", p)
	}
}

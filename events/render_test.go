package events

import (
	"bytes"
	"math"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

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

// TestParseAck: the relay's reading of a publish ack, against the acks a
// JetStream server sends (nats-server writes them by hand: the duplicate
// with a space after the colon).
func TestParseAck(t *testing.T) {
	for _, tc := range []struct {
		name    string
		msg     *nats.Msg
		dup     bool
		wantErr string
	}{
		{"ack", &nats.Msg{Data: []byte(`{"stream":"QUOTALEDGER","seq":12}`)}, false, ""},
		{"ack in a domain", &nats.Msg{Data: []byte(`{"stream":"QUOTALEDGER","domain":"hub","seq":12}`)}, false, ""},
		{"duplicate", &nats.Msg{Data: []byte(`{"stream":"QUOTALEDGER","seq":12,"duplicate": true}`)}, true, ""},
		{"duplicate, compact", &nats.Msg{Data: []byte(`{"stream":"QUOTALEDGER","seq":12,"duplicate":true}`)}, true, ""},
		{"not a duplicate", &nats.Msg{Data: []byte(`{"stream":"QUOTALEDGER","seq":12,"duplicate":false}`)}, false, ""},
		{"error", &nats.Msg{Data: []byte(`{"error":{"code":503,"err_code":10077,"description":"maximum messages exceeded"}}`)}, false, "maximum messages exceeded"},
		{"error beside a stream", &nats.Msg{Data: []byte(`{"stream":"QUOTALEDGER","error":{"code":400,"err_code":1,"description":"bad"}}`)}, false, "bad"},
		{"no responders", &nats.Msg{Header: nats.Header{"Status": []string{"503"}}}, false, jetstream.ErrNoStreamResponse.Error()},
		{"empty", &nats.Msg{}, false, jetstream.ErrInvalidJSAck.Error()},
		{"no stream", &nats.Msg{Data: []byte(`{"seq":12}`)}, false, jetstream.ErrInvalidJSAck.Error()},
		{"not JSON", &nats.Msg{Data: []byte(`{"stream":"QUOTALEDGER","seq":`)}, false, jetstream.ErrInvalidJSAck.Error()},
	} {
		dup, err := parseAck(tc.msg)
		switch {
		case tc.wantErr == "" && err != nil:
			t.Errorf("%s: %v", tc.name, err)
		case tc.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tc.wantErr)):
			t.Errorf("%s: error %v, want one saying %q", tc.name, err, tc.wantErr)
		case dup != tc.dup:
			t.Errorf("%s: duplicate %v, want %v", tc.name, dup, tc.dup)
		}
	}
}

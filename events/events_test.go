package events

import (
	"bytes"
	"encoding/json"
	"fmt"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/quotaledger/quotaledger/events/catalog"
	"github.com/quotaledger/quotaledger/holdings"
	"github.com/quotaledger/quotaledger/ledger"
)

func TestRender(t *testing.T) {
	at := time.Date(2026, 3, 1, 10, 30, 0, 123456789, time.FixedZone("CET", 3600))
	cores := holdings.Key{Holder: "project:p1", Source: holdings.NullSource, Resource: "cores"}
	ram := holdings.Key{Holder: "user:u1", Source: holdings.SourceOf("project:p1"), Resource: "ram"}
	tests := []struct {
		name    string
		event   ledger.Event
		subject string
		payload string // exact JSON; "" to skip
	}{
		{"CommissionIssued", ledger.Event{Seq: 7, Type: catalog.CommissionIssuedType, Time: at, Serial: 42,
			Client: "nova compute", Name: "vm-1", IssueTime: at, Holdings: []ledger.EventHolding{
				{Key: cores, Quantity: 2, After: holdings.Value{Limit: 10, UsageMin: 1, UsageMax: 3}},
				{Key: ram, Quantity: -1, After: holdings.Value{Limit: 8, UsageMin: 4, UsageMax: 5}},
			}},
			"quota.commission.nova_compute.issued",
			`{"id":"db1-7","type":"quotaledger.v1.commission.issued","time":"2026-03-01T09:30:00.123456789Z",` +
				`"serial":42,"client":"nova compute","name":"vm-1","reason":"","issue_time":"2026-03-01T09:30:00.123456789Z","holdings":[` +
				`{"holder":"project:p1","source":null,"resource":"cores","quantity":2,"limit":10,"usage_min":1,"usage_max":3,"usage":3,"pending":2},` +
				`{"holder":"user:u1","source":"project:p1","resource":"ram","quantity":-1,"limit":8,"usage_min":4,"usage_max":5,"usage":5,"pending":1}]}`},
		{"CommissionEmptyClient", ledger.Event{Seq: 8, Type: catalog.CommissionAcceptedType, Time: at, Serial: 1, Reason: "ACCEPT:"},
			"quota.commission._.accepted",
			`{"id":"db1-8","type":"quotaledger.v1.commission.accepted","time":"2026-03-01T09:30:00.123456789Z",` +
				`"serial":1,"client":"","name":"","reason":"ACCEPT:"}`},
		{"CommissionClientCleaned", ledger.Event{Seq: 9, Type: catalog.CommissionExpiredType, Time: at, Serial: 3,
			Client: "Zürich.*>a_b-C9", Reason: "REJECT:EXPIRED"},
			"quota.commission.Z_rich___a_b-C9.expired", ""},
		{"HoldingChanged", ledger.Event{Seq: 10, Type: catalog.HoldingChangedType, Time: at.UTC(),
			Holdings: []ledger.EventHolding{{Key: cores, After: holdings.Value{Limit: 5}}}},
			"quota.holding.changed",
			`{"id":"db1-10","type":"quotaledger.v1.holding.changed","time":"2026-03-01T09:30:00.123456789Z",` +
				`"holdings":[{"holder":"project:p1","source":null,"resource":"cores","quantity":0,"limit":5,"usage_min":0,"usage_max":0,"usage":0,"pending":0}]}`},
		{"HoldingDeleted", ledger.Event{Seq: 11, Type: catalog.HoldingDeletedType, Time: at,
			Holdings: []ledger.EventHolding{{Key: ram, After: holdings.Value{Limit: 5}}}},
			"quota.holding.deleted", ""},
		{"Identity", ledger.Event{Seq: 12, Type: "identity.user.registered", Time: time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC),
			Data: []byte(`{"uuid":"u1","role":"user"}`)},
			"identity.user.registered",
			`{"id":"db1-12","type":"quotaledger.v1.identity.user.registered","time":"2026-03-01T00:00:00Z",` +
				`"data":{"uuid":"u1","role":"user"}}`},
		{"IdentityTokensCleaned", ledger.Event{Seq: 13, Type: "identity.a b..c*", Time: at, Data: []byte(`{}`)},
			"identity.a_b._.c_", ""},
		{"IdentityDataNotJSON", ledger.Event{Seq: 14, Type: "identity.feedback", Time: at.UTC(), Data: []byte("not json")},
			"identity.feedback",
			`{"id":"db1-14","type":"quotaledger.v1.identity.feedback","time":"2026-03-01T09:30:00.123456789Z","data":"not json"}`},
		{"UnknownType", ledger.Event{Seq: 15, Type: "misc.thing", Time: at}, "quota.other.misc.thing", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			subject, id, payload := Render("db1", tt.event)
			if subject != tt.subject {
				t.Errorf("subject %q, want %q", subject, tt.subject)
			}
			if want := fmt.Sprintf("db1-%d", tt.event.Seq); id != want {
				t.Errorf("id %q, want %q", id, want)
			}
			if tt.payload != "" && string(payload) != tt.payload {
				t.Errorf("payload\n got %s\nwant %s", payload, tt.payload)
			}
			if !matchesSubjects(subject) {
				t.Errorf("subject %q is outside the stream's subjects %v", subject, Subjects)
			}
			p := checkPayload(t, subject, payload)
			if p.ID != id || p.Type != TypePrefix+tt.event.Type {
				t.Errorf("payload id %q type %q", p.ID, p.Type)
			}
		})
	}
}

func matchesSubjects(subject string) bool {
	for _, s := range Subjects {
		if strings.HasPrefix(subject, strings.TrimSuffix(s, ">")) {
			return true
		}
	}
	return false
}

// checkPayload is the schema check of a message: it decodes the payload
// strictly (no unknown field) and checks the fields each type requires.
func checkPayload(tb testing.TB, subject string, data []byte) Payload {
	tb.Helper()
	var p Payload
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&p); err != nil {
		tb.Fatalf("%s: payload %s: %v", subject, data, err)
	}
	fail := func(format string, args ...any) {
		tb.Helper()
		tb.Errorf("%s: payload %s: %s", subject, data, fmt.Sprintf(format, args...))
	}
	if p.ID == "" || !strings.Contains(p.ID, "-") {
		fail("id %q is not <db>-<seq>", p.ID)
	}
	if ts, err := time.Parse(time.RFC3339Nano, p.Time); err != nil || !strings.HasSuffix(p.Time, "Z") || ts.IsZero() {
		fail("time %q is not RFC 3339 UTC", p.Time)
	}
	typ, ok := strings.CutPrefix(p.Type, TypePrefix)
	if !ok {
		fail("type %q is not versioned", p.Type)
	}
	// Holdings must carry every field, even zero ones.
	var raw struct {
		Holdings []map[string]json.RawMessage `json:"holdings"`
	}
	if err := json.Unmarshal(data, &raw); err != nil {
		tb.Fatal(err)
	}
	wantKeys := "holder limit pending quantity resource source usage usage_max usage_min"
	for _, h := range raw.Holdings {
		keys := make([]string, 0, len(h))
		for k := range h {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		if got := strings.Join(keys, " "); got != wantKeys {
			fail("holding has fields %q, want %q", got, wantKeys)
		}
	}
	for _, h := range p.Holdings {
		if h.Usage != h.UsageMax || h.Pending != h.UsageMax-h.UsageMin {
			fail("holding %+v: usage or pending inconsistent", h)
		}
	}
	switch {
	case strings.HasPrefix(typ, "commission."):
		if p.Client == nil || p.Name == nil || p.Reason == nil {
			fail("commission event without client, name or reason")
		}
		if p.Data != nil {
			fail("commission event with data")
		}
		if want := "quota.commission."; !strings.HasPrefix(subject, want) ||
			!strings.HasSuffix(subject, "."+strings.TrimPrefix(typ, "commission.")) {
			fail("subject does not match type %s", typ)
		}
	case strings.HasPrefix(typ, "holding."):
		if len(p.Holdings) == 0 {
			fail("holding event without holdings")
		}
		if p.Serial != 0 || p.Client != nil || p.Name != nil || p.Reason != nil || p.Data != nil {
			fail("holding event with commission fields or data")
		}
		if subject != "quota."+typ {
			fail("subject does not match type %s", typ)
		}
	case strings.HasPrefix(typ, "identity."):
		if len(p.Data) == 0 {
			fail("identity event without data")
		}
		if p.Serial != 0 || p.Client != nil || len(p.Holdings) != 0 {
			fail("identity event with commission fields or holdings")
		}
		if subject != typ && !strings.ContainsAny(typ, " *>") {
			fail("subject does not match type %s", typ)
		}
	}
	return p
}

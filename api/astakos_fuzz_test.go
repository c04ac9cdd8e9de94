package api

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"math"
	"math/big"
	"net/http"
	"net/http/httptest"
	"reflect"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/rs/zerolog"

	"github.com/quotaledger/quotaledger/holdings"
	"github.com/quotaledger/quotaledger/identity"
	"github.com/quotaledger/quotaledger/internal/testkit/identitytest"
	"github.com/quotaledger/quotaledger/ledger"
)

// fuzzEnv is newEnv for fuzz targets: the real handler over a real ledger
// (in memory), with the usual principals (the service "cyclades", its two
// resources and a user among them), called in process.
type fuzzEnv struct {
	l       *ledger.Ledger
	api     *Server
	service string
	user    *identity.User
}

func newFuzzEnv(tb testing.TB) *fuzzEnv {
	tb.Helper()
	// The ledger's clock stands still, so that no commission expires
	// between the two looks at the state that a refused call must leave
	// as it was.
	frozen := time.Now()
	l, id := openStores(tb, ledger.Options{Now: func() time.Time { return frozen }}, zerolog.Nop(), nil)
	p := identitytest.AddPrincipals(tb, id)
	e := &fuzzEnv{l: l, service: p.ServiceToken, user: p.User}
	// Small caps, so that the fuzzer reaches them.
	e.api = New(l, id, Options{Logger: zerolog.Nop(), MaxBody: 64 << 10, MaxProvisions: 16, MaxNameLen: 64})
	return e
}

func (e *fuzzEnv) state() state {
	st := e.l.Stats()
	st.Batches, st.Calls = 0, 0
	return state{Holdings: e.l.FindHoldings(ledger.HoldingFilter{}), Stats: st}
}

// post calls the handler and checks what every answer must be: never a
// 5xx, JSON with the right content type, a cloudFault of the status's kind
// on failure, and no change of state on failure.
func (e *fuzzEnv) post(t *testing.T, path string, body []byte, header map[string]string) (int, []byte) {
	before := e.state()
	req := httptest.NewRequest("POST", path, bytes.NewReader(body))
	req.Header.Set("X-Auth-Token", e.service)
	for k, v := range header {
		req.Header.Set(k, v)
	}
	w := httptest.NewRecorder()
	e.api.ServeHTTP(w, req)
	st, out := w.Code, w.Body.Bytes()
	if st >= 500 {
		t.Fatalf("%s %q: %d %s", path, body, st, out)
	}
	if st >= 400 {
		var f map[string]*Fault
		if err := json.Unmarshal(out, &f); err != nil || len(f) != 1 {
			t.Fatalf("%s %q: %d, not a cloudFault: %s", path, body, st, out)
		}
		for kind, v := range f {
			if v == nil || kind != faultKinds[st] || v.Code != st || v.Message == "" {
				t.Fatalf("%s %q: %d, bad cloudFault: %s", path, body, st, out)
			}
		}
		if after := e.state(); !reflect.DeepEqual(before, after) {
			t.Fatalf("%s %q: refused with %d but the state changed:\n%+v\n%+v", path, body, st, before, after)
		}
	}
	return st, out
}

// FuzzAstakosIssue sends arbitrary issue bodies, with or without an
// Idempotency-Key, and checks every answer against issueModel, the rules of
// DESIGN §1 (issue steps 1-7, idempotent issue) applied to the body as the
// test reads it: a 201 moved the holdings by exactly the merged quantities
// (accepted at once with auto_accept) and nothing else, under the next
// serial, or replayed the first answer of its key; a 404 or 413 names the
// first merged provision that fails, with the holding's limit and usage; a
// 409 reuses a key with another request; a plainly well-formed body is
// never a 400 unless the rules make it one. A holding no forced import
// touched keeps 0 <= usage_min <= usage_max <= limit.
func FuzzAstakosIssue(f *testing.F) {
	e := newFuzzEnv(f)
	u := e.user.UUID
	member := fmt.Sprintf(`{"holder":"user:%s","source":"project:%s","resource":"cyclades.vm","quantity":%%s}`, u, u)
	memberRAM := fmt.Sprintf(`{"holder":"user:%s","source":"project:%s","resource":"cyclades.ram","quantity":%%s}`, u, u)
	project := fmt.Sprintf(`{"holder":"project:%s","source":null,"resource":"cyclades.vm","quantity":%%s}`, u)
	seeds := []string{
		`{"provisions":[]}`,
		`{"provisions":[` + fmt.Sprintf(member, "1") + `]}`,
		`{"name":"vm","force":false,"auto_accept":true,"provisions":[` + fmt.Sprintf(member, "1") + `,` + fmt.Sprintf(project, "1") + `]}`,
		`{"provisions":[` + fmt.Sprintf(member, "3") + `]}`,
		`{"provisions":[` + fmt.Sprintf(member, "-1") + `],"force":true}`,
		`{"provisions":[` + fmt.Sprintf(member, "9223372036854775807") + `,` + fmt.Sprintf(member, "1") + `]}`,
		`{"provisions":[` + fmt.Sprintf(member, "-9223372036854775808") + `]}`,
		`{"provisions":[` + fmt.Sprintf(member, "1e400") + `]}`,
		`{"provisions":[` + fmt.Sprintf(member, "1.5") + `]}`,
		`{"provisions":[{"holder":"h","source":null,"resource":"r","quantity":1}]}`,
		`{"provisions":[{"holder":"","source":"","resource":"","quantity":0}]}`,
		`{"provisions":[{"holder":1,"source":[],"resource":{},"quantity":"1"}]}`,
		`{"provisions":{},"ttl":-1}`,
		`{"provisions":[],"ttl":5,"idempotency_key":"k"}`,
		`{"provisions":[],"ttl":1e9}`,
		`{"provisions":[],"name":"\u0000\ud800"}`,
		"{\"provisions\":[],\"name\":\"\xff\"}",
		`{"provisions":null}`,
		`[]`, `null`, `""`, `{`, `{}}`, ``, ` `, `{"a":1}{"b":2}`,
		`{"provisions":[],"provisions":[1]}`,
		// Merged provisions, releases, the order of the checks, force with
		// auto_accept, releases accepted at once, the ttl's bound.
		`{"provisions":[` + fmt.Sprintf(memberRAM, "5") + `,` + fmt.Sprintf(memberRAM, "7") + `,` + fmt.Sprintf(project, "0") + `]}`,
		`{"provisions":[` + fmt.Sprintf(memberRAM, "5") + `,` + fmt.Sprintf(memberRAM, "-5") + `]}`,
		`{"provisions":[` + fmt.Sprintf(memberRAM, "-1") + `]}`,
		`{"force":true,"provisions":[` + fmt.Sprintf(memberRAM, "-3") + `]}`,
		`{"provisions":[` + fmt.Sprintf(member, "0") + `,{"holder":"h","source":"s","resource":"r","quantity":1},` + fmt.Sprintf(member, "5") + `]}`,
		`{"provisions":[` + fmt.Sprintf(memberRAM, "4294967297") + `],"force":true,"auto_accept":true}`,
		`{"auto_accept":true,"provisions":[` + fmt.Sprintf(memberRAM, "-2") + `,` + fmt.Sprintf(project, "0") + `]}`,
		`{"provisions":[` + fmt.Sprintf(memberRAM, "1") + `],"ttl":316224000}`,
		`{"provisions":[` + fmt.Sprintf(memberRAM, "1") + `],"ttl":316224001}`,
	}
	for _, s := range seeds {
		f.Add([]byte(s), "")
	}
	f.Add([]byte(`{"provisions":[]}`), "key-1")
	f.Add([]byte(`{"provisions":[`+fmt.Sprintf(member, "1")+`]}`), "key-1")
	// A replay, then the same key with another body (the project's ram is
	// not used by the seeds above).
	projectRAM := fmt.Sprintf(`{"holder":"project:%s","source":null,"resource":"cyclades.ram","quantity":1}`, u)
	f.Add([]byte(`{"provisions":[`+projectRAM+`],"name":"again"}`), " key-2 ")
	f.Add([]byte(`{"provisions":[`+projectRAM+`],"name":"again"}`), "key-2")
	f.Add([]byte(`{"provisions":[`+projectRAM+`],"name":"other"}`), "key-2")
	m := &issueModel{keys: map[string]issueKeyRecord{}, forced: map[holdings.Key]bool{}}
	f.Fuzz(func(t *testing.T, body []byte, key string) {
		var h map[string]string
		if key != "" {
			h = map[string]string{"Idempotency-Key": key}
		}
		before := e.state()
		st, out := e.post(t, "/account/v1.0/commissions", body, h)
		after := e.state()
		m.check(t, body, key, before, after, st, out)
		// Invariants of every holding: the stronger one unless a forced
		// import touched it.
		for _, hd := range after.Holdings {
			if err := hd.Check(m.forced[hd.Key]); err != nil {
				t.Fatalf("%q: %v (forced %v): %v", body, hd.Key, m.forced[hd.Key], err)
			}
		}
	})
}

// issueModel is what FuzzAstakosIssue expects of an issue: the rules of
// DESIGN §1 over the holdings as they were, and what it learnt of earlier
// calls in this process (the state is the fuzz environment's, kept across
// calls).
type issueModel struct {
	keys   map[string]issueKeyRecord // idempotency keys of issued commissions
	forced map[holdings.Key]bool     // holdings a forced import touched
}

type issueKeyRecord struct {
	request string // issueBody.identity
	serial  uint64
}

// issueBody is an issue body as the test reads it, apart from the handler.
type issueBody struct {
	provisions []holdings.Provision // as given: not merged
	force      bool
	autoAccept bool
	name       string
	ttl        int64
	key        string // the idempotency key: the header's, else the body's
	// plain: the body is plainly well formed (known fields of the right
	// types, integers written as digits, within the handler's caps), so
	// only the rules of the ledger may refuse it.
	plain bool
}

// identity is what makes two issues under one key the same request.
func (b *issueBody) identity() string {
	return fmt.Sprint(b.name, b.force, b.autoAccept, b.ttl, b.provisions)
}

// The fuzz environment's caps (newFuzzEnv).
const (
	fuzzMaxBody       = 64 << 10
	fuzzMaxProvisions = 16
	fuzzMaxNameLen    = 64
)

// rawInteger reads a JSON number that is an integer in int64 (in any
// notation: 1e2 is 100), and whether it is written as plain digits.
func rawInteger(raw json.RawMessage) (v int64, plain, ok bool) {
	if i := bytes.IndexAny(raw, "eE"); i >= 0 && len(bytes.TrimLeft(raw[i+1:], "+-")) > 4 {
		return 0, false, false // 1e99999999 is no int64, and too big a Rat to make
	}
	r, ok := new(big.Rat).SetString(string(raw))
	if !ok || len(raw) == 0 || raw[0] == '"' || !r.IsInt() || !r.Num().IsInt64() {
		return 0, false, false
	}
	digits := strings.TrimPrefix(string(raw), "-")
	return r.Num().Int64(), digits != "" && strings.Trim(digits, "0123456789") == "", true
}

// readIssue reads body (and the Idempotency-Key header key). ok is false
// for a body the rules say can never be issued: not a JSON object in UTF-8,
// provisions that are not a list of {holder, source, resource, quantity}
// with names and an integer quantity, options of the wrong type, a ttl out
// of bounds, two idempotency keys that differ.
func readIssue(body []byte, key string) (b issueBody, ok bool) {
	if !utf8.Valid(body) {
		return b, false
	}
	var m map[string]json.RawMessage
	if err := json.Unmarshal(body, &m); err != nil || m == nil {
		return b, false
	}
	b.plain = len(body) <= fuzzMaxBody
	var list []json.RawMessage
	if raw, ok := m["provisions"]; !ok || json.Unmarshal(raw, &list) != nil || list == nil {
		return b, false
	}
	b.plain = b.plain && len(list) <= fuzzMaxProvisions
	for _, raw := range list {
		var pm map[string]json.RawMessage
		if json.Unmarshal(raw, &pm) != nil || pm == nil {
			return b, false
		}
		var p holdings.Provision
		for _, f := range []struct {
			name string
			to   *string
		}{{"holder", &p.Key.Holder}, {"resource", &p.Key.Resource}} {
			if json.Unmarshal(pm[f.name], f.to) != nil || pm[f.name][0] != '"' || *f.to == "" {
				return b, false
			}
			b.plain = b.plain && len(*f.to) <= fuzzMaxNameLen
		}
		src, ok := pm["source"]
		if !ok {
			return b, false
		}
		var name *string
		if json.Unmarshal(src, &name) != nil || (name != nil && src[0] != '"') {
			return b, false
		}
		p.Key.Source = holdings.NullSource
		if name != nil {
			p.Key.Source = holdings.SourceOf(*name)
			b.plain = b.plain && len(*name) <= fuzzMaxNameLen
		}
		q, plain, ok := rawInteger(pm["quantity"])
		if !ok {
			return b, false
		}
		p.Quantity = q
		b.plain = b.plain && plain && q != math.MinInt64 && len(pm) == 4
		b.provisions = append(b.provisions, p)
	}
	for _, f := range []struct {
		name string
		to   *bool
	}{{"force", &b.force}, {"auto_accept", &b.autoAccept}} {
		if raw, ok := m[f.name]; ok {
			if s := string(raw); s != "true" && s != "false" {
				return b, false
			}
			*f.to = string(raw) == "true"
		}
	}
	if raw, ok := m["name"]; ok {
		if len(raw) == 0 || raw[0] != '"' || json.Unmarshal(raw, &b.name) != nil {
			return b, false
		}
		b.plain = b.plain && len(b.name) <= fuzzMaxNameLen
	}
	if raw, ok := m["ttl"]; ok && string(raw) != "null" {
		ttl, plain, ok := rawInteger(raw)
		if !ok || ttl < 0 || ttl > maxTTL {
			return b, false
		}
		b.ttl = ttl
		b.plain = b.plain && plain
	}
	b.key = strings.TrimSpace(key)
	if raw, ok := m["idempotency_key"]; ok && string(raw) != "null" {
		var fk string
		if len(raw) == 0 || raw[0] != '"' || json.Unmarshal(raw, &fk) != nil || b.key != "" && fk != "" && fk != b.key {
			return b, false
		}
		if b.key == "" {
			b.key = fk
		}
		b.plain = false // the body's key has rules of its own; the header's are checked below
	}
	b.plain = b.plain && utf8.ValidString(b.key) && len(b.key) <= fuzzMaxNameLen
	for k := range m {
		switch k {
		case "provisions", "force", "auto_accept", "name", "ttl":
		default:
			b.plain = false
		}
	}
	return b, true
}

// issueOutcome is what the rules make of an issue: the status, the failing
// provision and its data for a 404 or 413, or the holdings after a 201.
type issueOutcome struct {
	status int
	fault  struct {
		provision    holdings.Provision
		name         string
		limit, usage int64
	}
	after  map[holdings.Key]holdings.Value
	serial uint64 // of a 201
	replay bool
}

// outcome applies DESIGN §1's issue to b over the holdings in before.
func (m *issueModel) outcome(b *issueBody, before state) issueOutcome {
	var o issueOutcome
	// 1. Merge the provisions of one holding, in the order of first
	// appearance; a sum out of int64 is a bad request.
	var merged []holdings.Provision
	at := map[holdings.Key]int{}
	for _, p := range b.provisions {
		i, ok := at[p.Key]
		if !ok {
			at[p.Key] = len(merged)
			merged = append(merged, p)
			continue
		}
		s := merged[i].Quantity + p.Quantity
		if (p.Quantity > 0 && s < merged[i].Quantity) || (p.Quantity < 0 && s > merged[i].Quantity) {
			o.status = http.StatusBadRequest
			return o
		}
		merged[i].Quantity = s
	}
	// An idempotency key seen with an issued commission: the same request
	// gets the first answer, another one a conflict.
	if r, ok := m.keys[b.key]; ok && b.key != "" {
		if r.request != b.identity() {
			o.status = http.StatusConflict
			return o
		}
		o.status, o.serial, o.replay = http.StatusCreated, r.serial, true
		return o
	}
	o.after = map[holdings.Key]holdings.Value{}
	for _, h := range before.Holdings {
		o.after[h.Key] = h.Value
	}
	fail := func(status int, p holdings.Provision, name string, limit, usage int64) issueOutcome {
		o.status = status
		o.fault.provision, o.fault.name, o.fault.limit, o.fault.usage = p, name, limit, usage
		o.after = nil
		return o
	}
	// 2-4. In order: the holding exists; an import fits under the limit
	// unless forced; a release never takes usage_min below 0.
	for _, p := range merged {
		v, ok := o.after[p.Key]
		if !ok {
			return fail(http.StatusNotFound, p, "NoHoldingError", 0, 0)
		}
		if p.Quantity >= 0 {
			if v.UsageMax > math.MaxInt64-p.Quantity {
				o.status, o.after = http.StatusBadRequest, nil
				return o
			}
			if v.UsageMax+p.Quantity > v.Limit && !b.force {
				return fail(http.StatusRequestEntityTooLarge, p, "NoCapacityError", v.Limit, v.UsageMax)
			}
			v.UsageMax += p.Quantity
		} else {
			if p.Quantity == math.MinInt64 {
				o.status, o.after = http.StatusBadRequest, nil
				return o
			}
			if v.UsageMin+p.Quantity < 0 {
				return fail(http.StatusRequestEntityTooLarge, p, "NoQuantityError", 0, v.UsageMin)
			}
			v.UsageMin += p.Quantity
		}
		o.after[p.Key] = v
	}
	// 6. auto_accept: accepted in the same step.
	if b.autoAccept {
		for _, p := range merged {
			v := o.after[p.Key]
			if p.Quantity >= 0 {
				v.UsageMin += p.Quantity
			} else {
				v.UsageMax += p.Quantity
			}
			o.after[p.Key] = v
		}
	}
	// 5, 7. The next serial, even for no provisions.
	o.status, o.serial = http.StatusCreated, before.Stats.Serial+1
	return o
}

// check compares the answer (st, out) and the state after to the model,
// and learns from an issue that took.
func (m *issueModel) check(t *testing.T, body []byte, key string, before, after state, st int, out []byte) {
	t.Helper()
	b, ok := readIssue(body, key)
	if !ok {
		if st != http.StatusBadRequest && st != http.StatusRequestEntityTooLarge {
			t.Fatalf("%q (key %q): %d %s, but the body cannot be issued", body, key, st, out)
		}
		return
	}
	want := m.outcome(&b, before)
	if st == http.StatusBadRequest && want.status != http.StatusBadRequest {
		if b.plain {
			t.Fatalf("%q (key %q): 400 %s, but the body is well formed and the rules say %d", body, key, out, want.status)
		}
		return // a rule of the handler's the model does not read (a cap)
	}
	if st == http.StatusRequestEntityTooLarge && len(body) > fuzzMaxBody {
		return // the body cap
	}
	if st != want.status {
		t.Fatalf("%q (key %q): %d %s, the rules say %d", body, key, st, out, want.status)
	}
	switch st {
	case http.StatusCreated:
		var res map[string]uint64
		if err := json.Unmarshal(out, &res); err != nil || len(res) != 1 || res["serial"] != want.serial {
			t.Fatalf("%q (key %q): 201 %s, want serial %d (replayed %v)", body, key, out, want.serial, want.replay)
		}
		wantStats := before.Stats
		if !want.replay {
			wantStats.Serial = want.serial
			if !b.autoAccept {
				wantStats.Pending++
			}
		}
		if after.Stats != wantStats {
			t.Fatalf("%q (key %q): 201, stats %+v, want %+v", body, key, after.Stats, wantStats)
		}
		got := map[holdings.Key]holdings.Value{}
		for _, h := range after.Holdings {
			got[h.Key] = h.Value
		}
		if want.replay {
			if !reflect.DeepEqual(before.Holdings, after.Holdings) {
				t.Fatalf("%q (key %q): a replay changed the holdings:\n%+v\n%+v", body, key, before.Holdings, after.Holdings)
			}
			return
		}
		if !reflect.DeepEqual(got, want.after) {
			t.Fatalf("%q (key %q): 201, holdings\n%+v\nwant\n%+v", body, key, got, want.after)
		}
		if b.key != "" {
			m.keys[b.key] = issueKeyRecord{request: b.identity(), serial: want.serial}
		}
		if b.force {
			for _, p := range b.provisions {
				m.forced[p.Key] = m.forced[p.Key] || p.Quantity > 0
			}
		}
	case http.StatusNotFound, http.StatusRequestEntityTooLarge:
		var f map[string]struct {
			Data *struct {
				Provision struct {
					Holder   string  `json:"holder"`
					Source   *string `json:"source"`
					Resource string  `json:"resource"`
					Quantity int64   `json:"quantity"`
				} `json:"provision"`
				Name  string `json:"name"`
				Limit *int64 `json:"limit"`
				Usage *int64 `json:"usage"`
			} `json:"data"`
		}
		if err := json.Unmarshal(out, &f); err != nil {
			t.Fatalf("%q: %d %s: %v", body, st, out, err)
		}
		d := f[faultKinds[st]].Data
		if d == nil {
			t.Fatalf("%q: %d without data: %s", body, st, out)
		}
		p := want.fault.provision
		gotKey := holdings.Key{Holder: d.Provision.Holder, Source: holdings.NullSource, Resource: d.Provision.Resource}
		if d.Provision.Source != nil {
			gotKey.Source = holdings.SourceOf(*d.Provision.Source)
		}
		dataOK := gotKey == p.Key && d.Provision.Quantity == p.Quantity && d.Name == want.fault.name
		if st == http.StatusNotFound {
			dataOK = dataOK && d.Limit == nil && d.Usage == nil
		} else {
			dataOK = dataOK && d.Limit != nil && *d.Limit == want.fault.limit && d.Usage != nil && *d.Usage == want.fault.usage
		}
		if !dataOK {
			t.Fatalf("%q: %d %s, want %s of %v %+d (limit %d, usage %d)", body, st, out,
				want.fault.name, p.Key, p.Quantity, want.fault.limit, want.fault.usage)
		}
	}
}

func FuzzAstakosResolveMany(f *testing.F) {
	e := newFuzzEnv(f)
	k := holdings.Key{Holder: "user:" + e.user.UUID, Source: holdings.SourceOf("project:" + e.user.UUID), Resource: "cyclades.ram"}
	// Pending commissions for the fuzzer to resolve.
	for range 64 {
		if _, err := e.l.Issue(context.Background(), ledger.IssueRequest{Client: "cyclades",
			Provisions: []holdings.Provision{{Key: k, Quantity: 1}}, TTL: time.Hour}); err != nil {
			f.Fatal(err)
		}
	}
	for _, s := range []string{
		`{"accept":[1],"reject":[2]}`,
		`{"accept":[3,3,4],"reject":[4,5],"reason":"why"}`,
		`{"accept":[],"reject":[]}`,
		`{}`,
		`{"accept":[0,-1,999999],"reject":[-1]}`,
		`{"accept":[18446744073709551615]}`,
		`{"accept":[9223372036854775808]}`,
		`{"accept":[1.0]}`, `{"accept":["1"]}`, `{"accept":1}`, `{"accept":null}`, `{"reject":{}}`,
		`{"accept":[6],"reason":1}`, `{"accept":[7],"reason":null}`,
		"{\"accept\":[8],\"reason\":\"\xfe\"}",
		`[]`, `null`, `{`, ``, `{"accept":[9]}x`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		st, out := e.post(t, "/account/v1.0/commissions/action", body, nil)
		if st == http.StatusOK {
			var res struct {
				Accepted []uint64 `json:"accepted"`
				Rejected []uint64 `json:"rejected"`
				Failed   [][]json.RawMessage
			}
			if err := json.Unmarshal(out, &res); err != nil || res.Accepted == nil || res.Rejected == nil || res.Failed == nil {
				t.Fatalf("%q: 200 with a bad answer: %s", body, out)
			}
			for _, p := range res.Failed {
				if len(p) != 2 {
					t.Fatalf("%q: bad failed pair: %s", body, out)
				}
			}
		}
		if hd, ok := e.l.FindHoldingByKey(k); !ok || hd.Check(false) != nil {
			t.Fatalf("%q: holding %v: %v", body, hd, hd.Check(false))
		}
	})
}

package api

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"reflect"
	"testing"
	"time"

	"github.com/cockroachdb/pebble/v2/vfs"
	"github.com/rs/zerolog"

	"github.com/quotaledger/quotaledger/holdings"
	"github.com/quotaledger/quotaledger/identity"
	"github.com/quotaledger/quotaledger/ledger"
)

// fuzzEnv is newEnv for fuzz targets: the real handler over a real ledger
// (in memory), with the service "cyclades", its two resources and a user,
// called in process.
type fuzzEnv struct {
	l       *ledger.Ledger
	api     *Server
	service string
	user    *identity.User
}

func newFuzzEnv(tb testing.TB) *fuzzEnv {
	tb.Helper()
	ctx := context.Background()
	// The ledger's clock stands still, so that no commission expires
	// between the two looks at the state that a refused call must leave
	// as it was.
	frozen := time.Now()
	l, id := openStores(tb, ledger.Options{Dir: "/l", FS: vfs.NewMem(), NoFreeSpaceCheck: true,
		Now: func() time.Time { return frozen }}, zerolog.Nop(), nil)
	e := &fuzzEnv{l: l}
	var err error
	if e.service, _, err = id.RegisterService(ctx, identity.NewService{Name: "cyclades", Type: "compute"}); err != nil {
		tb.Fatal(err)
	}
	for _, r := range []identity.Resource{
		{Name: "cyclades.vm", Service: "cyclades", AllowInProjects: true, UpLimit: 2},
		{Name: "cyclades.ram", Service: "cyclades", AllowInProjects: true, UpLimit: 4 << 30},
	} {
		if _, err := id.RegisterResource(ctx, r); err != nil {
			tb.Fatal(err)
		}
	}
	if e.user, err = id.CreateUser(ctx, identity.NewUser{Username: "user@example.com", Password: testPassword, Active: true}); err != nil {
		tb.Fatal(err)
	}
	// Small caps, so that the fuzzer reaches them.
	e.api = New(l, id, Options{Logger: zerolog.Nop(), MaxBody: 64 << 10, MaxProvisions: 16, MaxNameLen: 64})
	return e
}

func (e *fuzzEnv) state() state {
	st := e.l.Stats()
	st.Batches, st.Calls = 0, 0
	return state{Holdings: e.l.Quotas(ledger.QuotaFilter{}), Stats: st}
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

func FuzzAstakosIssue(f *testing.F) {
	e := newFuzzEnv(f)
	u := e.user.UUID
	member := fmt.Sprintf(`{"holder":"user:%s","source":"project:%s","resource":"cyclades.vm","quantity":%%s}`, u, u)
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
	}
	for _, s := range seeds {
		f.Add([]byte(s), "")
	}
	f.Add([]byte(`{"provisions":[]}`), "key-1")
	f.Add([]byte(`{"provisions":[`+fmt.Sprintf(member, "1")+`]}`), "key-1")
	f.Fuzz(func(t *testing.T, body []byte, key string) {
		var h map[string]string
		if key != "" {
			h = map[string]string{"Idempotency-Key": key}
		}
		st, out := e.post(t, "/account/v1.0/commissions", body, h)
		if st == http.StatusCreated {
			var ok map[string]uint64
			if err := json.Unmarshal(out, &ok); err != nil || len(ok) != 1 || ok["serial"] == 0 {
				t.Fatalf("%q: 201 without a serial: %s", body, out)
			}
		}
		// Invariants of every holding the fuzzer may touch (nothing is
		// forced on the holdings below unless asked: check the weaker ones).
		for _, hd := range e.l.Quotas(ledger.QuotaFilter{Holders: []string{"user:" + u, "project:" + u}}) {
			if err := hd.Check(true); err != nil {
				t.Fatalf("%q: %v: %v", body, hd.Key, err)
			}
		}
	})
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
		if hd, ok := e.l.Holding(k); !ok || hd.Check(false) != nil {
			t.Fatalf("%q: holding %v: %v", body, hd, hd.Check(false))
		}
	})
}

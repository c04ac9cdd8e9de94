package api

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/quotaledger/quotaledger/events/catalog"
	"github.com/quotaledger/quotaledger/holdings"
	"github.com/quotaledger/quotaledger/ledger"
)

// send makes a request with headers and returns the status, the headers and
// the raw answer.
func (e *env) send(method, path string, headers map[string]string, body []byte) (int, http.Header, []byte) {
	e.t.Helper()
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequest(method, e.srv.URL+path, rd)
	if err != nil {
		e.t.Fatal(err)
	}
	for k, v := range headers {
		req.Header.Set(k, v)
	}
	resp, err := e.srv.Client().Do(req)
	if err != nil {
		e.t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	if err != nil {
		e.t.Fatal(err)
	}
	return resp.StatusCode, resp.Header, raw
}

// doAny is do for answers that may be any JSON value.
func (e *env) doAny(method, path, token string, body any) (int, any) {
	e.t.Helper()
	st, raw := e.doRaw(method, path, token, body)
	var out any
	if len(raw) > 0 {
		if err := json.Unmarshal(raw, &out); err != nil {
			e.t.Fatalf("%s %s: answer is not JSON: %s", method, path, raw)
		}
	}
	return st, out
}

// jsonOf re-encodes v as canonical JSON, for comparisons.
func jsonOf(t *testing.T, v any) string {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// fault returns the one fault of an error answer, failing unless it has
// the kind and code expected.
func fault(t *testing.T, st int, body map[string]any, code int, kind string) map[string]any {
	t.Helper()
	if st != code {
		t.Fatalf("status %d, want %d: %v", st, code, body)
	}
	f, ok := body[kind].(map[string]any)
	if !ok || len(body) != 1 {
		t.Fatalf("answer is not a %s cloudFault: %v", kind, body)
	}
	if f["code"] != float64(code) || f["message"] == "" || f["message"] == nil {
		t.Fatalf("fault without code %d or message: %v", code, f)
	}
	return f
}

func (e *env) uuid() string { return e.userRec.UUID }

// memberKey and projectKey are the holdings of the user's base project.
func (e *env) memberKey(r string) holdings.Key {
	return holdings.Key{Holder: "user:" + e.uuid(), Source: holdings.SourceOf("project:" + e.uuid()), Resource: r}
}

func (e *env) projectKey(r string) holdings.Key {
	return holdings.Key{Holder: "project:" + e.uuid(), Source: holdings.NullSource, Resource: r}
}

// prov builds a provision in the wire form.
func prov(k holdings.Key, q int64) map[string]any {
	return map[string]any{"holder": k.Holder, "source": k.Source.Ptr(), "resource": k.Resource, "quantity": q}
}

// issue issues a commission as the service with token tok and returns its serial.
func (e *env) issue(tok string, body map[string]any) uint64 {
	e.t.Helper()
	st, out := e.do("POST", "/account/v1.0/commissions", tok, body)
	if st != http.StatusCreated {
		e.t.Fatalf("issue: %d %v", st, out)
	}
	s, ok := out["serial"].(float64)
	if !ok || len(out) != 1 || s <= 0 {
		e.t.Fatalf("issue answer: %v", out)
	}
	return uint64(s)
}

// state is what a refused call must leave unchanged.
type state struct {
	Holdings []holdings.Holding
	Stats    ledger.Stats
}

func (e *env) state() state {
	st := e.l.Stats()
	st.Batches, st.Calls = 0, 0
	return state{Holdings: e.l.FindHoldings(ledger.HoldingFilter{}), Stats: st}
}

// userQuota reads one entry of the caller's quotas.
func (e *env) userQuota(path, resource string) map[string]any {
	e.t.Helper()
	st, out := e.do("GET", path, e.user, nil)
	if st != 200 {
		e.t.Fatalf("quotas: %d %v", st, out)
	}
	src, ok := out[e.uuid()].(map[string]any)
	if !ok {
		e.t.Fatalf("quotas: no base project: %v", out)
	}
	q, ok := src[resource].(map[string]any)
	if !ok {
		e.t.Fatalf("quotas: no %s: %v", resource, out)
	}
	return q
}

// TestAstakosFeedback checks what feedback leaves behind: a record and an
// event for each one accepted, nothing for those refused. The answers
// themselves are the feedback script's (testdata/astakos/feedback).
func TestAstakosFeedback(t *testing.T) {
	e := newEnv(t)
	for _, path := range []string{"/account/v1.0/feedback", "/astakos/api/feedback"} {
		// The lineage's client sends a form as application/octet-stream.
		st, _, raw := e.send("POST", path, map[string]string{"X-Auth-Token": e.user, "Content-Type": "application/octet-stream"},
			[]byte("feedback_msg=it+works%21&feedback_data=%7B%22vm%22%3A1%7D"))
		if st != 200 || len(raw) != 0 {
			t.Fatalf("%s: %d %s", path, st, raw)
		}
	}
	for _, body := range []string{"", "feedback_data=x", "feedback_msg=%ff", "feedback_msg=%zz"} {
		if st, raw := e.doRaw("POST", "/account/v1.0/feedback", e.user, body); st != 400 {
			t.Fatalf("feedback %q: %d %s, want 400", body, st, raw)
		}
	}
	// Stored, and its event in the outbox, in the transaction the answer
	// waited for: nothing to wait for here.
	evs, err := e.l.Outbox(0, 10000)
	if err != nil {
		t.Fatal(err)
	}
	var got []map[string]any
	for _, ev := range evs {
		if ev.Type == catalog.FeedbackType {
			var m map[string]any
			if err := json.Unmarshal(ev.Data, &m); err != nil {
				t.Fatal(err)
			}
			got = append(got, m)
		}
	}
	if len(got) != 2 {
		t.Fatalf("feedback events: %v", got)
	}
	for _, m := range got {
		if m["message"] != "it works!" || m["data"] != `{"vm":1}` || m["user"] != e.uuid() {
			t.Fatalf("feedback event: %v", m)
		}
	}
	n := 0
	if err := e.l.ScanForeign([]byte{'F'} /* identity's feedback key space */, func(k, v []byte) error { n++; return nil }); err != nil || n != 2 {
		t.Fatalf("stored feedback: %d %v", n, err)
	}
}

// TestAstakosExpiry issues a commission with a ttl over a ledger whose clock
// the test moves: the commission stays pending until the clock reaches its
// deadline, then the expiry rejects it and releases what it held.
func TestAstakosExpiry(t *testing.T) {
	clock := newTestClock()
	e := newEnvOn(t, zerolog.Nop(), nil, ledger.Options{Now: clock.Now})
	ctx := context.Background()
	s := e.issue(e.service, map[string]any{"ttl": 1, "provisions": []any{prov(e.memberKey("cyclades.vm"), 1)}})
	pending := func() string {
		t.Helper()
		st, list := e.doAny("GET", "/account/v1.0/commissions", e.service, nil)
		if st != 200 {
			t.Fatalf("pending commissions: %d %v", st, list)
		}
		return jsonOf(t, list)
	}
	quota := func() string {
		t.Helper()
		q := e.userQuota("/account/v1.0/quotas", "cyclades.vm")
		return fmt.Sprintf("usage %v, pending %v", q["usage"], q["pending"])
	}
	if got, want := quota(), "usage 1, pending 1"; got != want {
		t.Fatalf("issued: %s, want %s", got, want)
	}
	// A millisecond before the deadline, the expiry leaves it alone.
	clock.Advance(time.Second - time.Millisecond)
	if err := e.l.ExpireDue(ctx); err != nil {
		t.Fatal(err)
	}
	if got, want := pending(), fmt.Sprintf("[%d]", s); got != want {
		t.Fatalf("pending before the ttl ran out: %s, want %s", got, want)
	}
	// At the deadline it expires.
	clock.Advance(time.Millisecond)
	if err := e.l.ExpireDue(ctx); err != nil {
		t.Fatal(err)
	}
	if got := pending(); got != "[]" {
		t.Fatalf("commission %d with ttl 1s still pending once the ledger's clock passed its deadline: %s", s, got)
	}
	if got, want := quota(), "usage 0, pending 0"; got != want {
		t.Fatalf("after expiry: %s, want %s", got, want)
	}
}

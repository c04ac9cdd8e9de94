package api

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/rs/zerolog"

	"github.com/quotaledger/quotaledger/identity"
	"github.com/quotaledger/quotaledger/internal/testkit"
	"github.com/quotaledger/quotaledger/internal/testkit/identitytest"
	"github.com/quotaledger/quotaledger/ledger"
)

// env is a real server on a loopback port over a ledger on an in-memory
// filesystem, with the usual principals (identitytest.AddPrincipals): an
// admin, a user, a service ("cyclades", type compute) and two resources of
// it.
type env struct {
	t       testing.TB
	l       *ledger.Ledger
	id      *identity.Store
	srv     *httptest.Server
	api     *Server
	admin   string // tokens
	user    string
	service string
	userRec *identity.User
}

const testPassword = identitytest.Password

func newEnv(t testing.TB) *env {
	t.Helper()
	return newEnvWith(t, zerolog.Nop(), nil)
}

// newEnvWith is newEnv with log as the logger of every part and, if reg is
// set, their metrics on reg.
func newEnvWith(t testing.TB, log zerolog.Logger, reg *prometheus.Registry) *env {
	t.Helper()
	return newEnvOn(t, log, reg, ledger.Options{})
}

// newEnvOn is newEnvWith over a ledger opened with lopts (in memory unless
// they name a Dir; logger and metrics set here).
func newEnvOn(t testing.TB, log zerolog.Logger, reg *prometheus.Registry, lopts ledger.Options) *env {
	t.Helper()
	var metrics prometheus.Registerer
	if reg != nil {
		metrics = reg
	}
	l, id := openStores(t, lopts, log, metrics)
	p := identitytest.AddPrincipals(t, id)
	e := &env{t: t, l: l, id: id, admin: p.AdminToken, user: p.UserToken, service: p.ServiceToken, userRec: p.User}
	e.api = New(l, id, Options{Logger: log, Metrics: reg})
	e.srv = httptest.NewServer(e.api)
	t.Cleanup(e.srv.Close)
	return e
}

// openStores is identitytest.OpenStores (the outbox checked against the
// event catalog when the test ends) with both stores logging to log and
// registering their metrics on metrics (if not nil).
func openStores(tb testing.TB, lopts ledger.Options, log zerolog.Logger, metrics prometheus.Registerer) (*ledger.Ledger, *identity.Store) {
	tb.Helper()
	lopts.Logger, lopts.Metrics = log, metrics
	return identitytest.OpenStores(tb, lopts, identity.Options{Logger: log, Metrics: metrics})
}

// newTestClock is a clock the test moves by hand.
func newTestClock() *testkit.Clock {
	return testkit.NewClock(time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC))
}

// do sends a request with token (if any) and a body (a string, []byte, or
// a value sent as JSON), and returns the status and the decoded answer.
func (e *env) do(method, path, token string, body any) (int, map[string]any) {
	e.t.Helper()
	status, raw := e.doRaw(method, path, token, body)
	var out map[string]any
	if len(raw) > 0 && raw[0] == '{' {
		if err := json.Unmarshal(raw, &out); err != nil {
			e.t.Fatalf("%s %s: answer is not JSON: %s", method, path, raw)
		}
	}
	return status, out
}

func (e *env) doRaw(method, path, token string, body any) (int, []byte) {
	e.t.Helper()
	var rd io.Reader
	switch b := body.(type) {
	case nil:
	case string:
		rd = bytes.NewBufferString(b)
	case []byte:
		rd = bytes.NewReader(b)
	default:
		j, err := json.Marshal(b)
		if err != nil {
			e.t.Fatal(err)
		}
		rd = bytes.NewReader(j)
	}
	req, err := http.NewRequest(method, e.srv.URL+path, rd)
	if err != nil {
		e.t.Fatal(err)
	}
	if token != "" {
		req.Header.Set("X-Auth-Token", token)
	}
	if rd != nil {
		req.Header.Set("Content-Type", "application/json")
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
	return resp.StatusCode, raw
}

func TestHealth(t *testing.T) {
	e := newEnv(t)
	if st, body := e.do("GET", "/healthz", "", nil); st != 200 || body["status"] != "ok" {
		t.Fatalf("healthz: %d %v", st, body)
	}
	if st, body := e.do("GET", "/no/such/route", "", nil); st != 404 || body["itemNotFound"] == nil {
		t.Fatalf("unknown route: %d %v", st, body)
	}
}

func TestTrailingSlash(t *testing.T) {
	e := newEnv(t)
	st1, a := e.doRaw("GET", "/account/v1.0/resources", "", nil)
	st2, b := e.doRaw("GET", "/account/v1.0/resources/", "", nil)
	if st1 != 200 || st2 != 200 || string(a) != string(b) {
		t.Fatalf("with and without a trailing slash: %d %s / %d %s", st1, a, st2, b)
	}
}

func TestReady(t *testing.T) {
	e := newEnv(t)
	if st, body := e.do("GET", "/readyz", "", nil); st != 200 || body["status"] != "ready" {
		t.Fatalf("readyz without checks: %d %v", st, body)
	}
	var failing atomic.Bool
	e.api = New(e.l, e.id, Options{Logger: zerolog.Nop(), Checks: func(context.Context) map[string]error {
		var err error
		if failing.Load() {
			err = errors.New("too deep")
		}
		return map[string]error{"ledger": nil, "outbox": err}
	}})
	e.srv = httptest.NewServer(e.api)
	t.Cleanup(e.srv.Close)
	st, body := e.do("GET", "/readyz", "", nil)
	if checks, _ := body["checks"].(map[string]any); st != 200 || body["status"] != "ready" || checks["ledger"] != "ok" || checks["outbox"] != "ok" {
		t.Fatalf("readyz, all pass: %d %v", st, body)
	}
	failing.Store(true)
	st, body = e.do("GET", "/readyz", "", nil)
	if checks, _ := body["checks"].(map[string]any); st != 503 || body["status"] != "not ready" || checks["ledger"] != "ok" || checks["outbox"] != "too deep" {
		t.Fatalf("readyz, outbox fails: %d %v", st, body)
	}
	fams := e.scrape()
	if v, ok := sample(fams, "quotaledger_ready", "check", "outbox"); !ok || v != 0 {
		t.Errorf("quotaledger_ready{check=outbox} = %v %v, want 0", v, ok)
	}
	if v, ok := sample(fams, "quotaledger_ready", "check", "ledger"); !ok || v != 1 {
		t.Errorf("quotaledger_ready{check=ledger} = %v %v, want 1", v, ok)
	}
}

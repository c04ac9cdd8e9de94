package api

import (
	"encoding/json"
	"net/http"
	"slices"
	"sort"
	"testing"

	"github.com/quotaledger/quotaledger/ledger"
)

// TestWritesRule holds Route.Writes, the rule by which a follower forwards
// a call to the leader, to a list written by hand: the calls that are not
// GETs but only read. (TestAccess holds it to what every call did.)
func TestWritesRule(t *testing.T) {
	e := newEnv(t)
	var reads []string
	for _, rt := range e.api.Routes() {
		key := rt.Method + " " + rt.Path
		if rt.Method == http.MethodGet && rt.Writes() {
			t.Errorf("%s: a GET that writes", key)
		}
		if rt.Method != http.MethodGet && !rt.Writes() {
			reads = append(reads, key)
		}
	}
	sort.Strings(reads)
	want := []string{
		"POST /account/v1.0/service/user_catalogs",
		"POST /account/v1.0/user_catalogs",
		"POST /astakos/api/service/user_catalogs",
		"POST /astakos/api/tokens",
		"POST /astakos/api/user_catalogs",
		"POST /identity/v2.0/tokens",
	}
	if !slices.Equal(reads, want) {
		t.Errorf("the calls other than GETs that do not write:\n%q\nwant\n%q", reads, want)
	}
	for _, w := range []string{"POST /account/v1.0/auth/login", "POST /account/v1.0/auth/register",
		"POST /account/v1.0/auth/logout", "POST /account/v1.0/auth/password/change",
		"POST /account/v1.0/auth/password/reset", "POST /account/v1.0/auth/password/reset/confirm",
		"POST /account/v1.0/commissions", "POST /astakos/api/commissions/{serial}/action",
		"POST /account/v1.0/feedback", "DELETE /account/v1.0/holdings"} {
		i := slices.IndexFunc(e.api.Routes(), func(rt Route) bool { return rt.Method+" "+rt.Path == w })
		if i < 0 {
			t.Errorf("no route %s", w)
		} else if rt := e.api.Routes()[i]; !rt.Writes() {
			t.Errorf("%s: not a write", w)
		}
	}

	// The password reset of a user that exists writes (TestAccess asks for
	// one that does not).
	applied := e.l.Applied()
	if st, out := e.do("POST", "/account/v1.0/auth/password/reset", "", map[string]any{"username": e.userRec.Username}); st != http.StatusAccepted {
		t.Fatalf("password reset: %d %v", st, out)
	}
	if e.l.Applied() == applied {
		t.Fatal("the password reset of a user wrote nothing")
	}
}

// TestNotLeader: a write that reaches a ledger that does not lead (a node
// of a cluster whose leadership changed under the call) answers 503 with
// Retry-After, and so do the other errors of a change of leader; reads
// answer as ever.
func TestNotLeader(t *testing.T) {
	e := newEnv(t)
	if err := e.l.StepDown(); err != nil {
		t.Fatal(err)
	}
	st, h, raw := e.send("POST", "/account/v1.0/commissions", map[string]string{"X-Auth-Token": e.service},
		[]byte(`{"provisions":[]}`))
	var out map[string]map[string]any
	if err := json.Unmarshal(raw, &out); err != nil || st != http.StatusServiceUnavailable || h.Get("Retry-After") != "1" ||
		out["serviceUnavailable"]["message"] != ledger.ErrNotLeader.Error() {
		t.Fatalf("an issue on a ledger that does not lead: %d Retry-After %q %s", st, h.Get("Retry-After"), raw)
	}
	if st, _ := e.do("GET", "/account/v1.0/quotas", e.user, nil); st != http.StatusOK {
		t.Fatalf("a read on a ledger that does not lead: %d", st)
	}
	for _, err := range []error{ledger.ErrNotLeader, ledger.ErrDeposed, ledger.ErrBusy} {
		if f := faultOf(err); f.Code != http.StatusServiceUnavailable || f.RetryAfter != retryAfterLeader {
			t.Errorf("%v: %d, Retry-After %d", err, f.Code, f.RetryAfter)
		}
	}
	for _, err := range []error{ledger.ErrFailed, ledger.ErrClosed, ledger.ErrOutcomeUnknown} {
		if f := faultOf(err); f.RetryAfter != 0 {
			t.Errorf("%v: Retry-After %d, want none (not a change of leader)", err, f.RetryAfter)
		}
	}
}

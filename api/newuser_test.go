package api

import (
	"encoding/json"
	"net/http"
	"testing"
)

// What a new user hit (issue 17).

// TestRestResetConfirmLimited: guessing reset ids is rate limited per
// address as guessing passwords is: failed confirmations spend the
// address's budget, a refused one is a 429 with Retry-After even for a
// good id, another address is not held back, and a good id does not spend.
func TestRestResetConfirmLimited(t *testing.T) {
	e := newEnv(t)
	confirm := func(addr, id string) (int, string, map[string]any) {
		return e.sendFrom(addr, "POST", restBase+"auth/password/reset/confirm",
			map[string]string{"id": id, "new_password": "reset password here", "new_password_confirm": "reset password here"})
	}
	// A good id, first, spends nothing.
	if st, _, out := confirm("192.0.2.1:1000", e.resetIDOf("user@example.com")); st != 200 {
		t.Fatalf("a good reset id: %d %v", st, out)
	}
	for i := range restConfirmLimit.perAddr {
		if st, _, out := confirm("192.0.2.1:1000", "guessed-id"); st != http.StatusNotFound {
			t.Fatalf("wrong id %d: %d %v", i+1, st, out)
		}
	}
	st, ra, out := confirm("192.0.2.1:2000", "guessed-id")
	retryAfter(t, st, ra, out, restConfirmLimit.window)
	good := e.resetIDOf("user@example.com")
	st, ra, out = confirm("192.0.2.1:3000", good)
	retryAfter(t, st, ra, out, restConfirmLimit.window)
	// Another address is not held back; the id refused above still works.
	if st, _, out := confirm("192.0.2.2:1000", good); st != 200 {
		t.Fatalf("a good reset id from another address: %d %v", st, out)
	}
}

// resetIDOf requests a password reset of username over HTTP and returns
// its id, as the event stream delivers it.
func (e *env) resetIDOf(username string) string {
	e.t.Helper()
	e.restWant(202, "POST", restBase+"auth/password/reset", "", map[string]string{"username": username})
	evs, err := e.l.Outbox(0, 1_000_000)
	if err != nil {
		e.t.Fatal(err)
	}
	for i := len(evs) - 1; i >= 0; i-- {
		if evs[i].Type == "identity.password.reset_requested" {
			var d struct {
				ResetID string `json:"reset_id"`
			}
			if err := json.Unmarshal(evs[i].Data, &d); err != nil || d.ResetID == "" {
				e.t.Fatalf("the reset request's event: %v %s", err, evs[i].Data)
			}
			return d.ResetID
		}
	}
	e.t.Fatal("no reset request event")
	return ""
}

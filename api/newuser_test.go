package api

import (
	"bufio"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
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

// TestFaultListener: the answers net/http writes itself, before any
// handler (headers past MaxHeaderBytes, a malformed request), are
// cloudFaults through FaultListener, as every other answer; the answers
// of the handler pass unchanged.
func TestFaultListener(t *testing.T) {
	e := newEnv(t)
	srv := httptest.NewUnstartedServer(e.api)
	srv.Listener = FaultListener(srv.Listener)
	srv.Config.MaxHeaderBytes = 4 << 10
	srv.Start()
	t.Cleanup(srv.Close)

	get := func(padding int) (int, http.Header, []byte) {
		t.Helper()
		req, err := http.NewRequest("GET", srv.URL+restBase+"auth/whoami", nil)
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set("X-Auth-Token", e.user)
		req.Header.Set("X-Padding", strings.Repeat("p", padding))
		resp, err := srv.Client().Do(req)
		if err != nil {
			t.Fatalf("%d bytes of headers: %v", padding, err)
		}
		defer resp.Body.Close()
		raw, err := io.ReadAll(resp.Body)
		if err != nil {
			t.Fatal(err)
		}
		return resp.StatusCode, resp.Header, raw
	}
	fault := func(what string, status int, h http.Header, raw []byte, want int, kind string) {
		t.Helper()
		var out map[string]any
		if status != want || h.Get("Content-Type") != "application/json; charset=UTF-8" || json.Unmarshal(raw, &out) != nil {
			t.Fatalf("%s: %d %q %s, want a %d cloudFault", what, status, h.Get("Content-Type"), raw, want)
		}
		restFault(t, out, kind, want)
	}

	st, h, raw := get(64 << 10)
	fault("headers too large", st, h, raw, http.StatusRequestHeaderFieldsTooLarge, "overLimit")
	if st, _, raw := get(1 << 10); st != 200 {
		t.Fatalf("small headers: %d %s", st, raw)
	}
	// The handler's own faults pass as they are.
	req, _ := http.NewRequest("GET", srv.URL+restBase+"auth/whoami", nil)
	resp, err := srv.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	raw, _ = io.ReadAll(resp.Body)
	resp.Body.Close()
	fault("no token", resp.StatusCode, resp.Header, raw, http.StatusUnauthorized, "unauthorized")

	// A request net/http cannot parse.
	conn, err := net.Dial("tcp", srv.Listener.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if _, err := conn.Write([]byte("GET / HTTP/1.1\r\nHost: x\r\nno colon here\r\n\r\n")); err != nil {
		t.Fatal(err)
	}
	resp, err = http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		t.Fatal(err)
	}
	raw, _ = io.ReadAll(resp.Body)
	fault("a malformed request", resp.StatusCode, resp.Header, raw, http.StatusBadRequest, "badRequest")
}

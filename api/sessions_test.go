package api

import (
	"bytes"
	"encoding/json"
	"net/http"
	"testing"
	"time"

	"github.com/quotaledger/quotaledger/api/wire"
)

// loginAs logs in over HTTP with a User-Agent, and returns the session's
// secret.
func (e *env) loginAs(username, password, agent string) string {
	e.t.Helper()
	body, _ := json.Marshal(map[string]string{"username": username, "password": password})
	req, err := http.NewRequest("POST", e.srv.URL+restBase+"auth/login", bytes.NewReader(body))
	if err != nil {
		e.t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", agent)
	resp, err := e.srv.Client().Do(req)
	if err != nil {
		e.t.Fatal(err)
	}
	defer resp.Body.Close()
	var out wire.Session
	if err := json.NewDecoder(resp.Body).Decode(&out); err != nil || resp.StatusCode != 200 || out.Token == "" {
		e.t.Fatalf("login of %s: %d %v", username, resp.StatusCode, err)
	}
	return out.Token
}

// sessions lists the sessions the query answers to token, strictly
// decoded.
func (e *env) sessions(query, token string) wire.Page[wire.SessionInfo] {
	e.t.Helper()
	st, raw := e.doRaw("GET", restBase+"sessions"+query, token, nil)
	if st != 200 {
		e.t.Fatalf("GET sessions%s: %d %s", query, st, raw)
	}
	var page wire.Page[wire.SessionInfo]
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&page); err != nil {
		e.t.Fatalf("GET sessions%s: %v: %s", query, err, raw)
	}
	return page
}

// sessionID is the id of the session of secret, as whoami says it.
func (e *env) sessionID(secret string) string {
	e.t.Helper()
	me := e.restWant(200, "GET", restBase+"auth/whoami", secret, nil)
	return me["auth"].(map[string]any)["token_id"].(string)
}

func TestRestSessions(t *testing.T) {
	e := newEnv(t)
	before := time.Now().UTC().Add(-time.Second)
	laptop := e.loginAs("user@example.com", testPassword, "quotaledger-console/1 (laptop)")
	phone := e.loginAs("user@example.com", testPassword, "quotaledger-console/1 (phone)")
	laptopID, phoneID := e.sessionID(laptop), e.sessionID(phone)

	// Mine, newest first, each with where it was made; the one of the call
	// is marked.
	page := e.sessions("", laptop)
	if page.Count != 3 || len(page.Results) != 3 { // and the env's own login
		t.Fatalf("the user's sessions: %+v", page)
	}
	got := map[string]wire.SessionInfo{}
	for _, s := range page.Results {
		got[s.ID] = s
	}
	lp, ph := got[laptopID], got[phoneID]
	if lp.Address != "127.0.0.1" || lp.UserAgent != "quotaledger-console/1 (laptop)" || !lp.Current ||
		lp.User != e.userRec.UUID || lp.Created.Before(before) || !lp.Expires.After(lp.Created.Time) || lp.LastUsed.IsZero() {
		t.Fatalf("the laptop's session %+v", lp)
	}
	if ph.UserAgent != "quotaledger-console/1 (phone)" || ph.Current {
		t.Fatalf("the phone's session %+v", ph)
	}
	if page.Results[0].ID != phoneID || page.Results[1].ID != laptopID {
		t.Fatalf("not newest first: %+v", page.Results)
	}
	var one wire.SessionInfo
	st, raw := e.doRaw("GET", restBase+"sessions/"+phoneID, laptop, nil)
	if err := json.Unmarshal(raw, &one); st != 200 || err != nil || one != ph {
		t.Fatalf("GET sessions/%s: %d %s, want %+v", phoneID, st, raw, ph)
	}

	// Another user's: not there for me, there for an admin; only admins
	// list others'.
	_, other := e.restNewUser("other@example.com")
	otherID := e.sessionID(other)
	e.restWant(404, "GET", restBase+"sessions/"+otherID, laptop, nil)
	e.restWant(404, "DELETE", restBase+"sessions/"+otherID, laptop, nil)
	e.restWant(403, "GET", restBase+"sessions?user="+e.userRec.UUID, other, nil)
	e.restWant(200, "GET", restBase+"sessions/"+otherID, e.admin, nil)
	if p := e.sessions("?user="+e.userRec.UUID, e.admin); p.Count != 3 {
		t.Fatalf("the user's sessions as the admin sees them: %+v", p)
	}
	if p := e.sessions("?user=*&page_size=1", e.admin); p.Count != 4 || len(p.Results) != 1 || p.Next == nil {
		t.Fatalf("every session: %+v", p)
	}

	// The two collections keep apart: a session is no access token (GET,
	// PATCH and DELETE all answer 404 and change nothing), and a personal
	// token is no session.
	e.restWant(404, "GET", restBase+"access_tokens/"+phoneID, phone, nil)
	e.restWant(404, "PATCH", restBase+"access_tokens/"+phoneID, phone, `{"name":"x"}`)
	e.restWant(404, "DELETE", restBase+"access_tokens/"+phoneID, phone, nil)
	e.restWant(200, "GET", restBase+"auth/whoami", phone, nil)
	pat := e.restWant(201, "POST", restBase+"access_tokens", laptop, `{"name":"ci"}`)
	e.restWant(404, "GET", restBase+"sessions/"+pat["id"].(string), laptop, nil)
	e.restWant(404, "DELETE", restBase+"sessions/"+pat["id"].(string), laptop, nil)

	// Ending one: gone at once; ending it again is a 404.
	if st, raw := e.doRaw("DELETE", restBase+"sessions/"+phoneID, laptop, nil); st != 204 || len(raw) != 0 {
		t.Fatalf("DELETE sessions/%s: %d %s", phoneID, st, raw)
	}
	e.restWant(401, "GET", restBase+"auth/whoami", phone, nil)
	e.restWant(404, "DELETE", restBase+"sessions/"+phoneID, laptop, nil)
	// An admin ends another's; a read-only token ends nothing.
	ro := e.restWant(201, "POST", restBase+"access_tokens", laptop, `{"name":"ro","read_only":true}`)
	e.restWant(403, "DELETE", restBase+"sessions/"+laptopID, ro["token"].(string), nil)
	e.restWant(204, "DELETE", restBase+"sessions/"+otherID, e.admin, nil)
	e.restWant(401, "GET", restBase+"auth/whoami", other, nil)
}

func TestRestPasswordEndsSessions(t *testing.T) {
	e := newEnv(t)
	a := e.loginAs("user@example.com", testPassword, "a")
	b := e.loginAs("user@example.com", testPassword, "b")
	pat := e.restWant(201, "POST", restBase+"access_tokens", a, `{"name":"ci"}`)["token"].(string)

	// The change keeps the session it is made with, ends the others.
	e.restWant(200, "POST", restBase+"auth/password/change", a,
		`{"old_password":"correct horse battery","new_password":"second password here","new_password_confirm":"second password here"}`)
	e.restWant(200, "GET", restBase+"auth/whoami", a, nil)
	e.restWant(401, "GET", restBase+"auth/whoami", b, nil)
	e.restWant(401, "GET", restBase+"auth/whoami", e.user, nil)
	e.restWant(200, "GET", restBase+"auth/whoami", pat, nil)
	if p := e.sessions("", a); p.Count != 1 || p.Results[0].ID != e.sessionID(a) {
		t.Fatalf("sessions after the change: %+v", p)
	}

	// A reset ends them all.
	e.restWant(202, "POST", restBase+"auth/password/reset", "", `{"username":"user@example.com"}`)
	evs, err := e.l.Outbox(0, 100000)
	if err != nil {
		t.Fatal(err)
	}
	var id string
	for _, ev := range evs {
		if ev.Type == "identity.password.reset_requested" {
			var d struct {
				ResetID string `json:"reset_id"`
			}
			_ = json.Unmarshal(ev.Data, &d)
			id = d.ResetID
		}
	}
	e.restWant(200, "POST", restBase+"auth/password/reset/confirm", "",
		map[string]string{"id": id, "new_password": "third password here", "new_password_confirm": "third password here"})
	e.restWant(401, "GET", restBase+"auth/whoami", a, nil)
	if p := e.sessions("?user="+e.userRec.UUID, e.admin); p.Count != 0 {
		t.Fatalf("sessions after the reset: %+v", p)
	}
	e.restWant(200, "GET", restBase+"auth/whoami", pat, nil)
}

// TestRestPasswordChangeLimited: wrong old passwords count as failed logins
// of the user, so that a session does not make guessing the password
// cheaper.
func TestRestPasswordChangeLimited(t *testing.T) {
	e := newEnv(t)
	wrong := `{"old_password":"not the password","new_password":"second password here","new_password_confirm":"second password here"}`
	for i := range restLoginLimit.perUser {
		if st, out := e.do("POST", restBase+"auth/password/change", e.user, wrong); st != 400 {
			t.Fatalf("wrong old password %d: %d %v", i+1, st, out)
		}
	}
	req, _ := http.NewRequest("POST", e.srv.URL+restBase+"auth/password/change", bytes.NewBufferString(
		`{"old_password":"correct horse battery","new_password":"second password here","new_password_confirm":"second password here"}`))
	req.Header.Set("X-Auth-Token", e.user)
	resp, err := e.srv.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	var out map[string]any
	_ = json.NewDecoder(resp.Body).Decode(&out)
	resp.Body.Close()
	retryAfter(t, resp.StatusCode, resp.Header.Get("Retry-After"), out, restLoginLimit.window)
	// And a login of the user waits too.
	e.restWant(429, "POST", restBase+"auth/login", "", map[string]string{"username": "user@example.com", "password": testPassword})
}

package api

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strings"
	"sync"
	"testing"

	"github.com/rs/zerolog"
)

// syncBuffer is a log sink safe for the server's goroutines.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// TestLogHasNoSecrets drives the calls that carry secrets (login, token
// creation, password change, reset request and confirm, a service
// registration, a commission) through the real server with every part
// logging at debug level, and checks that no token, password or reset id
// reaches the log, while each request has its line naming the caller.
func TestLogHasNoSecrets(t *testing.T) {
	var sink syncBuffer
	log := zerolog.New(&sink).Level(zerolog.DebugLevel)
	e := newEnvWith(t, log, nil)
	secrets := []string{testPassword, e.admin, e.user, e.service}

	session := e.restWant(200, "POST", restBase+"auth/login", "",
		map[string]string{"username": "user@example.com", "password": testPassword})
	sessionTok, _ := session["token"].(string)
	if sessionTok == "" {
		sessionTok, _ = session["access"].(map[string]any)["token"].(map[string]any)["id"].(string)
	}
	personal := e.restWant(201, "POST", restBase+"access_tokens", e.user, map[string]any{"name": "ci"})
	personalTok, _ := personal["token"].(string)
	e.restWant(200, "POST", restBase+"auth/password/change", e.user,
		`{"old_password":"correct horse battery","new_password":"second password here","new_password_confirm":"second password here"}`)
	e.restWant(202, "POST", restBase+"auth/password/reset", "", `{"username":"user@example.com"}`)
	evs, err := e.l.Outbox(0, 100000)
	if err != nil {
		t.Fatal(err)
	}
	var resetID string
	for _, ev := range evs {
		if ev.Type == "identity.password.reset_requested" {
			var d struct {
				ResetID string `json:"reset_id"`
			}
			_ = json.Unmarshal(ev.Data, &d)
			resetID = d.ResetID
		}
	}
	if resetID == "" {
		t.Fatal("no reset event")
	}
	e.restWant(200, "POST", restBase+"auth/password/reset/confirm", "",
		map[string]string{"id": resetID, "new_password": "reset password here", "new_password_confirm": "reset password here"})
	svc := e.restWant(201, "POST", restBase+"services", e.admin,
		`{"name":"pithos","type":"storage","endpoints":[{"publicURL":"https://pithos.example.com/object-store/v1","versionId":"v2.0"}]}`)
	svcTok, _ := svc["token"].(string)
	s := e.issue(e.service, map[string]any{"provisions": []any{prov(e.projectKey("cyclades.vm"), 1)}})
	e.restWant(200, "POST", fmt.Sprintf("/account/v1.0/commissions/%d/action", s), e.service, map[string]any{"accept": ""})
	// A personal token in use, a wrong password, a bad token.
	e.restWant(200, "GET", restBase+"auth/whoami", personalTok, nil)
	e.restWant(401, "POST", restBase+"auth/login", "", map[string]string{"username": "user@example.com", "password": "wrong password here"})
	e.restWant(401, "GET", restBase+"auth/whoami", "qlp_not_a_real_token_at_all", nil)

	for _, s := range []string{sessionTok, personalTok, svcTok} {
		if s == "" {
			t.Fatalf("a secret was not found in the answers: session %q personal %q service %q", sessionTok, personalTok, svcTok)
		}
	}
	secrets = append(secrets, sessionTok, personalTok, svcTok, resetID, "second password here",
		"reset password here", "wrong password here", "qlp_not_a_real_token_at_all")
	out := sink.String()
	for _, s := range secrets {
		if strings.Contains(out, s) {
			t.Errorf("the log holds the secret %q", s)
		}
	}

	// Each request has its line, with the caller for authenticated ones.
	var sawUser, sawService bool
	for _, line := range strings.Split(strings.TrimSpace(out), "\n") {
		var m map[string]any
		if err := json.Unmarshal([]byte(line), &m); err != nil {
			t.Fatalf("not a JSON log line: %s", line)
		}
		if m["message"] != "request" {
			continue
		}
		for _, k := range []string{"method", "route", "status", "duration", "request_id"} {
			if _, ok := m[k]; !ok {
				t.Errorf("request line without %s: %s", k, line)
			}
		}
		switch {
		case m["principal_kind"] == "personal" && m["principal"] == e.userRec.UUID:
			sawUser = true
		case m["principal_kind"] == "service" && m["principal"] == "cyclades":
			sawService = true
		}
	}
	if !sawUser || !sawService {
		t.Errorf("no request line names the user (%v) or the service (%v):\n%s", sawUser, sawService, out)
	}
}

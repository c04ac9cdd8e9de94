package identity

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/quotaledger/quotaledger/failure"
)

// login opens a session of u from origin.
func (e *tokEnv) login(u *User, from Origin) (string, *Token) {
	e.tb.Helper()
	secret, tok, _, err := e.s.Login(context.Background(), u.Username, tokPassword, from)
	if err != nil {
		e.tb.Fatal(err)
	}
	return secret, tok
}

// sessionIDs lists the ids FindSessions answers for f.
func (e *tokEnv) sessionIDs(f SessionFilter) []string {
	e.tb.Helper()
	ss, n, err := e.s.FindSessions(f)
	if err != nil {
		e.tb.Fatal(err)
	}
	if f.Offset == 0 && f.Limit == 0 && n != len(ss) {
		e.tb.Fatalf("FindSessions(%+v): count %d, %d sessions", f, n, len(ss))
	}
	ids := make([]string, len(ss))
	for i, t := range ss {
		ids[i] = t.ID
	}
	return ids
}

func TestSessions(t *testing.T) {
	ctx := context.Background()
	e := newTokEnv(t, true)
	alice := e.user("alice", RoleUser)
	bob := e.user("bob", RoleUser)

	// The origin is kept as a session record can hold it: valid UTF-8, no
	// control characters, capped.
	agent := "curl/8.5.0\x00\r\nX-Evil: 1 \xff" + strings.Repeat("é", 200)
	_, a1 := e.login(alice, Origin{Address: "192.0.2.7", UserAgent: agent})
	if a1.Address != "192.0.2.7" || len(a1.UserAgent) > maxUserAgent || !strings.HasPrefix(a1.UserAgent, "curl/8.5.0X-Evil: 1 \uFFFDéé") ||
		strings.ContainsAny(a1.UserAgent, "\x00\r\n") || !strings.HasSuffix(a1.UserAgent, "é") {
		t.Fatalf("session origin %q %q", a1.Address, a1.UserAgent)
	}
	e.clock.Advance(time.Minute)
	a2secret, a2 := e.login(alice, Origin{Address: "2001:db8::1", UserAgent: "quotaledger-go-client"})
	e.clock.Advance(time.Minute)
	_, b1 := e.login(bob, Origin{})
	patSecret, pat := e.pat(alice.UUID, "ci", time.Time{}, false)

	// Each user's own, newest first; every user's for "" (admins); never a
	// personal token.
	if got := e.sessionIDs(SessionFilter{User: alice.UUID}); strings.Join(got, ",") != a2.ID+","+a1.ID {
		t.Fatalf("alice's sessions %v, want %s,%s", got, a2.ID, a1.ID)
	}
	if got := e.sessionIDs(SessionFilter{}); strings.Join(got, ",") != b1.ID+","+a2.ID+","+a1.ID {
		t.Fatalf("every session %v", got)
	}
	if got := e.sessionIDs(SessionFilter{User: alice.UUID, Offset: 1, Limit: 1}); len(got) != 1 || got[0] != a1.ID {
		t.Fatalf("the window 1..2 of alice's sessions: %v", got)
	}
	if _, _, err := e.s.FindSessions(SessionFilter{Offset: -1}); failure.CodeOf(err) != failure.Invalid {
		t.Fatalf("negative offset: %v", err)
	}

	// Last use: as authentication sees it, before any flush.
	e.clock.Advance(time.Minute)
	used := e.clock.Now()
	if _, err := e.s.Authenticate(a2secret); err != nil {
		t.Fatal(err)
	}
	got, err := e.s.FindSessionByID(alice.UUID, a2.ID)
	if err != nil || !got.LastUsed.Equal(used) || !got.Created.Equal(a2.Created) || !got.Expires.Equal(a2.Expires) ||
		got.Address != "2001:db8::1" || got.UserAgent != "quotaledger-go-client" {
		t.Fatalf("alice's second session %+v, %v; want last used %v", got, err, used)
	}

	// One's own only, an admin's lookup anyone's; a personal token is not
	// a session, and a session is not a personal access token.
	for _, c := range []struct{ owner, id string }{{bob.UUID, a1.ID}, {alice.UUID, pat.ID}, {alice.UUID, "nope"}} {
		if _, err := e.s.FindSessionByID(c.owner, c.id); failure.CodeOf(err) != failure.NotFound {
			t.Errorf("FindSessionByID(%s, %s): %v, want NotFound", c.owner, c.id, err)
		}
		if err := e.s.DeleteSessionByID(ctx, c.owner, c.id); failure.CodeOf(err) != failure.NotFound {
			t.Errorf("DeleteSessionByID(%s, %s): %v, want NotFound", c.owner, c.id, err)
		}
	}
	if _, err := e.s.FindSessionByID("", b1.ID); err != nil {
		t.Fatalf("an admin's lookup: %v", err)
	}
	if _, err := e.s.FindAccessTokenByID(alice.UUID, a1.ID); failure.CodeOf(err) != failure.NotFound {
		t.Fatalf("a session as a personal access token: %v", err)
	}
	if err := e.s.DeleteAccessToken(ctx, alice.UUID, a1.ID); failure.CodeOf(err) != failure.NotFound {
		t.Fatalf("a session deleted as a personal access token: %v", err)
	}

	// Kept across a restart, origin and all.
	e.reopen()
	got, err = e.s.FindSessionByID(alice.UUID, a1.ID)
	if err != nil || got.Address != a1.Address || got.UserAgent != a1.UserAgent || !got.Created.Equal(a1.Created) {
		t.Fatalf("after a restart %+v, %v; want %+v", got, err, a1)
	}

	// Ended: gone at once, and said so.
	if err := e.s.DeleteSessionByID(ctx, alice.UUID, a2.ID); err != nil {
		t.Fatal(err)
	}
	if _, err := e.s.Authenticate(a2secret); failure.CodeOf(err) != failure.Unauthorized {
		t.Fatalf("an ended session still works: %v", err)
	}
	if err := e.s.DeleteSessionByID(ctx, "", a2.ID); failure.CodeOf(err) != failure.NotFound {
		t.Fatalf("ending it again: %v", err)
	}
	if err := e.s.DeleteSessionByID(ctx, "", b1.ID); err != nil {
		t.Fatalf("an admin ends bob's: %v", err)
	}
	revoked := e.events("identity.token.revoked")
	if len(revoked) != 2 || revoked[0]["id"] != a2.ID || revoked[1]["id"] != b1.ID || revoked[0]["kind"] != "session" {
		t.Fatalf("revoked events %v", revoked)
	}
	if _, err := e.s.Authenticate(patSecret); err != nil {
		t.Fatalf("the personal token: %v", err)
	}

	// Expired: no longer listed nor found, before the flush removes it.
	e.clock.Advance(a1.Expires.Sub(e.clock.Now()))
	if got := e.sessionIDs(SessionFilter{User: alice.UUID}); len(got) != 0 {
		t.Fatalf("expired sessions listed: %v", got)
	}
	if _, err := e.s.FindSessionByID(alice.UUID, a1.ID); failure.CodeOf(err) != failure.NotFound {
		t.Fatalf("an expired session: %v", err)
	}
}

func TestPasswordChangeEndsSessions(t *testing.T) {
	ctx := context.Background()
	e := newTokEnv(t, false)
	alice := e.user("alice", RoleUser)
	bob := e.user("bob", RoleUser)
	s1secret, s1 := e.login(alice, Origin{})
	s2secret, s2 := e.login(alice, Origin{})
	s3secret, s3 := e.login(alice, Origin{})
	bobSecret, _ := e.login(bob, Origin{})
	patSecret, _ := e.pat(alice.UUID, "ci", time.Time{}, false)
	works := func(what, secret string, want bool) {
		t.Helper()
		if _, err := e.s.Authenticate(secret); (err == nil) != want {
			t.Errorf("%s: authenticate: %v, want it to work: %v", what, err, want)
		}
	}

	// A wrong old password changes nothing and ends nothing.
	err := e.s.ChangePassword(ctx, alice.UUID, "not it at all", "a new password 1", "a new password 1", s1.ID)
	if !errors.Is(err, ErrWrongPassword) || failure.CodeOf(err) != failure.Invalid {
		t.Fatalf("wrong old password: %v", err)
	}
	works("the second session after a failed change", s2secret, true)

	// The change keeps the session it was made with; the others end, in
	// the batch of the change.
	if err := e.s.ChangePassword(ctx, alice.UUID, tokPassword, "a new password 1", "a new password 1", s1.ID); err != nil {
		t.Fatal(err)
	}
	works("the session of the change", s1secret, true)
	works("another session", s2secret, false)
	works("a third session", s3secret, false)
	works("the personal token", patSecret, true)
	works("bob's session", bobSecret, true)
	if got := e.sessionIDs(SessionFilter{User: alice.UUID}); len(got) != 1 || got[0] != s1.ID {
		t.Fatalf("sessions after the change %v, want %s", got, s1.ID)
	}
	revoked := e.events("identity.token.revoked")
	ended := map[any]any{}
	for _, ev := range revoked {
		ended[ev["id"]] = ev["reason"]
	}
	if len(revoked) != 2 || ended[s2.ID] != "password_changed" || ended[s3.ID] != "password_changed" {
		t.Fatalf("revoked events %v", revoked)
	}
	// A change with no session to keep (a personal token's) ends them all.
	if err := e.s.ChangePassword(ctx, alice.UUID, "a new password 1", "a new password 2", "a new password 2", ""); err != nil {
		t.Fatal(err)
	}
	works("the session of the first change", s1secret, false)

	// A reset ends every session; personal tokens stay.
	r1secret, _, _, err := e.s.Login(ctx, alice.Username, "a new password 2", Origin{})
	if err != nil {
		t.Fatal(err)
	}
	if err := e.s.RequestPasswordReset(ctx, alice.Username); err != nil {
		t.Fatal(err)
	}
	reqs := e.events("identity.password.reset_requested")
	resetID, _ := reqs[len(reqs)-1]["reset_id"].(string)
	if err := e.s.ResetPassword(ctx, resetID, "a new password 3", "a new password 3"); err != nil {
		t.Fatal(err)
	}
	works("a session after the reset", r1secret, false)
	works("the personal token after the reset", patSecret, true)
	works("bob's session after the reset", bobSecret, true)
	revoked = e.events("identity.token.revoked")
	if last := revoked[len(revoked)-1]; last["reason"] != "password_reset" {
		t.Fatalf("the session the reset ended: %v", last)
	}
	if got := e.sessionIDs(SessionFilter{User: alice.UUID}); len(got) != 0 {
		t.Fatalf("sessions after the reset %v", got)
	}
}

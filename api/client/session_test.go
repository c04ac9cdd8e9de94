package client_test

import (
	"testing"

	"github.com/quotaledger/quotaledger/api/client"
)

func TestSessions(t *testing.T) {
	e := newEnv(t)
	ctx := t.Context()
	laptop, err := e.anon.Login(ctx, "user@example.com", testPassword)
	check(t, "POST /account/v1.0/auth/login", err)
	me := e.anon.WithToken(laptop.Token)
	who, err := me.Whoami(ctx)
	check(t, "GET /account/v1.0/auth/whoami", err)

	page, err := me.FindSessions(ctx, client.SessionFilter{})
	check(t, "GET /account/v1.0/sessions", err)
	if page.Count != 2 || len(page.Results) != 2 || page.Results[0].ID != who.Auth.TokenID || !page.Results[0].Current ||
		page.Results[0].Address != "127.0.0.1" || page.Results[0].UserAgent != "quotaledger-go-client" {
		t.Fatalf("the user's sessions: %+v", page)
	}
	other := page.Results[1]
	s, err := me.FindSessionByID(ctx, other.ID)
	check(t, "GET /account/v1.0/sessions/{id}", err)
	if *s != other {
		t.Fatalf("session %+v, want %+v", s, other)
	}
	all, err := e.admin.FindSessions(ctx, client.SessionFilter{User: "*", PageOptions: client.PageOptions{PageSize: 1}})
	check(t, "GET /account/v1.0/sessions?user=*", err)
	if all.Count != 2 || len(all.Results) != 1 || all.Next == nil {
		t.Fatalf("every session, a page of one: %+v", all)
	}
	_, err = me.FindSessions(ctx, client.SessionFilter{User: "*"})
	wantErr[*client.Forbidden](t, "every session, as a user", err, 403)

	check(t, "DELETE /account/v1.0/sessions/{id}", me.DeleteSession(ctx, other.ID))
	_, err = e.user.Whoami(ctx)
	wantErr[*client.Unauthorized](t, "an ended session", err, 401)
	_, err = me.FindSessionByID(ctx, other.ID)
	wantErr[*client.NotFound](t, "an ended session", err, 404)

	// A wrong old password is a bad request, not a bad token: the session
	// goes on.
	err = me.ChangePassword(ctx, "not the password", "a new password 1", "a new password 1")
	wantErr[*client.BadRequest](t, "a wrong old password", err, 400)
	if _, err := me.Whoami(ctx); err != nil {
		t.Fatalf("the session after a wrong old password: %v", err)
	}
}

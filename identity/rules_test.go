package identity

import (
	"context"
	"testing"
	"time"
)

// TestRules checks the authorisation table against every kind of principal.
func TestRules(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t, Options{})
	s := e.s
	mk := func(name string, role Role) *User {
		u, err := s.CreateUser(ctx, NewUser{Username: name + "@example.com", Password: goodPassword, Role: role, Active: true})
		if err != nil {
			t.Fatal(err)
		}
		return u
	}
	admin, user, reader := mk("admin", RoleAdmin), mk("user", RoleUser), mk("reader", RoleReader)
	principal := func(secret string) Principal {
		p, err := s.Authenticate(secret)
		if err != nil {
			t.Fatal(err)
		}
		return p
	}
	login := func(u *User) Principal {
		secret, _, _, err := s.Login(ctx, u.Username, goodPassword, Origin{})
		if err != nil {
			t.Fatal(err)
		}
		return principal(secret)
	}
	pat := func(u *User, readOnly bool) Principal {
		secret, _, err := s.CreateAccessToken(ctx, u.UUID, "t", time.Time{}, readOnly)
		if err != nil {
			t.Fatal(err)
		}
		return principal(secret)
	}
	svcSecret, _, err := s.CreateService(ctx, NewService{Name: "cyclades", Type: "compute"})
	if err != nil {
		t.Fatal(err)
	}
	ps := map[string]Principal{
		"admin":          login(admin),
		"admin-readonly": pat(admin, true),
		"user":           login(user),
		"user-pat":       pat(user, false),
		"user-readonly":  pat(user, true),
		"reader":         login(reader),
		"service":        principal(svcSecret),
		"anonymous":      {},
	}
	allowed := map[Action][]string{
		ActReadSelf:        {"admin", "admin-readonly", "user", "user-pat", "user-readonly", "reader"},
		ActWriteSelf:       {"admin", "user", "user-pat", "reader"},
		ActReadOwnProjects: {"admin", "admin-readonly", "user", "user-pat", "user-readonly", "reader"},
		ActOwnProjects:     {"admin", "user", "user-pat"},
		ActCommission:      {"service"},
		ActServiceRead:     {"service"},
		ActReadAll:         {"admin", "admin-readonly", "reader"},
		ActManageUsers:     {"admin"},
		ActManageQuotas:    {"admin"},
		ActManageServices:  {"admin"},
		ActManageProjects:  {"admin"},
	}
	if len(allowed) != len(Rules) {
		t.Fatalf("the test covers %d actions, the table has %d", len(allowed), len(Rules))
	}
	for a, who := range allowed {
		for name, p := range ps {
			want := false
			for _, w := range who {
				want = want || w == name
			}
			if got := Allowed(p, a); got != want {
				t.Errorf("%s may %s: got %v, want %v", name, a, got, want)
			}
		}
	}
	if Allowed(ps["admin"], "no_such_action") {
		t.Error("an unknown action is allowed")
	}
}

func TestServiceTokenExpiry(t *testing.T) {
	ctx := context.Background()
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	e := newEnv(t, Options{Now: func() time.Time { return now }})
	if _, _, err := e.s.CreateService(ctx, NewService{Name: "old", TokenExpires: now.Add(-time.Minute)}); err == nil {
		t.Fatal("a service token expiring in the past was accepted")
	}
	secret, _, err := e.s.CreateService(ctx, NewService{Name: "pithos", TokenExpires: now.Add(time.Hour)})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := e.s.Authenticate(secret); err != nil {
		t.Fatalf("before expiry: %v", err)
	}
	now = now.Add(2 * time.Hour)
	if _, err := e.s.Authenticate(secret); err == nil {
		t.Fatal("an expired service token still works")
	}
	renewed, _, err := e.s.RenewServiceToken(ctx, "pithos", time.Time{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := e.s.Authenticate(renewed); err != nil {
		t.Fatalf("renewed without expiry: %v", err)
	}
}

package identity

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/cockroachdb/pebble/v2/vfs"

	"github.com/quotaledger/quotaledger/failure"
	"github.com/quotaledger/quotaledger/holdings"
	"github.com/quotaledger/quotaledger/internal/testkit"
	"github.com/quotaledger/quotaledger/ledger"
)

type testEnv struct {
	*stores
	t *testing.T
}

// newEnv opens a ledger on an in-memory filesystem and a store on it.
func newEnv(t *testing.T, opts Options) *testEnv {
	t.Helper()
	return &testEnv{stores: openStores(t, vfs.NewMem(), "", opts), t: t}
}

// events returns the outbox events of type typ.
func (e *testEnv) events(typ string) []ledger.Event {
	e.t.Helper()
	evs, err := e.l.Outbox(0, 100000)
	if err != nil {
		e.t.Fatal(err)
	}
	var out []ledger.Event
	for _, ev := range evs {
		if ev.Type == typ {
			out = append(out, ev)
		}
	}
	return out
}

func (e *testEnv) limit(holder string, source holdings.Source, resource string) (int64, bool) {
	v, ok := e.l.FindHoldingByKey(holdings.Key{Holder: holder, Source: source, Resource: resource})
	return v.Limit, ok
}

const goodPassword = "correct horse battery"

func TestUsers(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t, Options{})
	s := e.s

	t.Run("FirstRegisteredIsAdmin", func(t *testing.T) {
		u, err := s.Register(ctx, NewUser{Username: "Ada@Example.com", Password: goodPassword, FirstName: "Ada", LastName: "Lovelace"})
		if err != nil {
			t.Fatal(err)
		}
		if u.Role != RoleAdmin || !u.Active || u.DisplayName != "Ada Lovelace" {
			t.Fatalf("first user: %+v", u)
		}
		u2, err := s.Register(ctx, NewUser{Username: "bob@example.com", Password: goodPassword})
		if err != nil || u2.Role != RoleUser {
			t.Fatalf("second user: %+v %v", u2, err)
		}
	})

	t.Run("ErrConflict", func(t *testing.T) {
		_, err := s.Register(ctx, NewUser{Username: "ada@EXAMPLE.com", Password: goodPassword})
		if failure.CodeOf(err) != failure.Conflict {
			t.Fatalf("same username in another case: want failure.Conflict, got %v", err)
		}
	})

	t.Run("ErrInvalid", func(t *testing.T) {
		for name, in := range map[string]NewUser{
			"not an email":   {Username: "ada", Password: goodPassword},
			"display name":   {Username: "x <x@example.com>", Password: goodPassword},
			"short password": {Username: "c@example.com", Password: "short"},
			"common":         {Username: "c@example.com", Password: "password123"},
			"username":       {Username: "c@example.com", Password: "C@example.com"},
			"bad utf8":       {Username: "c@example.com", Password: goodPassword, FirstName: "\xff"},
			"role":           {Username: "c@example.com", Password: goodPassword, Role: "root"},
		} {
			var err error
			if name == "role" {
				_, err = s.CreateUser(ctx, in)
			} else {
				_, err = s.Register(ctx, in)
			}
			if failure.CodeOf(err) != failure.Invalid {
				t.Errorf("%s: want failure.Invalid, got %v", name, err)
			}
		}
		// The message is what the caller reads: what is wrong, no prefix.
		if _, err := s.Register(ctx, NewUser{Username: "ada", Password: goodPassword}); err == nil || err.Error() != "username must be an email address" {
			t.Errorf("message %q, want %q", err, "username must be an email address")
		}
		if _, n, _ := s.FindUsers(UserFilter{}); n != 2 {
			t.Fatalf("refused registrations left users: %d", n)
		}
	})

	t.Run("Lookups", func(t *testing.T) {
		ada, err := s.FindUserByName("ADA@example.com")
		if err != nil {
			t.Fatal(err)
		}
		if u, err := s.FindUserByID(ada.UUID); err != nil || u.Username != "Ada@Example.com" {
			t.Fatalf("by uuid: %+v %v", u, err)
		}
		names := s.Usernames([]string{ada.UUID, "nobody"})
		if len(names) != 1 || names[ada.UUID] != "Ada@Example.com" {
			t.Fatalf("usernames: %v", names)
		}
		ids := s.UUIDs([]string{"ada@example.com", "nobody@example.com"})
		if len(ids) != 1 || ids["ada@example.com"] != ada.UUID {
			t.Fatalf("uuids: %v", ids)
		}
		if all := s.UUIDs(nil); len(all) != 2 {
			t.Fatalf("all: %v", all)
		}
		if _, err := s.FindUserByID("nobody"); failure.CodeOf(err) != failure.NotFound {
			t.Fatalf("unknown uuid: %v", err)
		}
	})

	t.Run("ListPrefix", func(t *testing.T) {
		for _, n := range []string{"carol@example.com", "carl@example.com", "dave@example.com"} {
			if _, err := s.CreateUser(ctx, NewUser{Username: n, Password: goodPassword, Active: true}); err != nil {
				t.Fatal(err)
			}
		}
		page, n, err := s.FindUsers(UserFilter{Prefix: "CAR", Offset: 1, Limit: 1})
		if err != nil || n != 2 || len(page) != 1 || page[0].Username != "carol@example.com" {
			t.Fatalf("list: %d %v %v", n, page, err)
		}
		// The window's bounds are the store's; page sizes and their cap are
		// the API's (api/paging.go).
		if _, _, err := s.FindUsers(UserFilter{Limit: -1}); failure.CodeOf(err) != failure.Invalid {
			t.Fatalf("limit -1: %v", err)
		}
		if _, _, err := s.FindUsers(UserFilter{Offset: -1}); failure.CodeOf(err) != failure.Invalid {
			t.Fatalf("offset -1: %v", err)
		}
		if page, n, err := s.FindUsers(UserFilter{Prefix: "car", Offset: 2}); err != nil || n != 2 || len(page) != 0 {
			t.Fatalf("past the end: %d %v %v", n, page, err)
		}
		if page, n, err := s.FindUsers(UserFilter{Prefix: "car"}); err != nil || n != 2 || len(page) != 2 {
			t.Fatalf("no limit: %d %v %v", n, page, err)
		}
	})

	t.Run("UpdateAndRole", func(t *testing.T) {
		bob, _ := s.FindUserByName("bob@example.com")
		name := "Bobby"
		u, err := s.UpdateUser(ctx, bob.UUID, UserUpdate{DisplayName: &name, Data: json.RawMessage(`{"team": "blue", "n": [1, 2]}`)})
		if err != nil || u.DisplayName != "Bobby" || string(u.Data) != `{"team":"blue","n":[1,2]}` {
			t.Fatalf("update: %+v %v", u, err)
		}
		if _, err := s.UpdateUser(ctx, bob.UUID, UserUpdate{Data: json.RawMessage(`[1]`)}); failure.CodeOf(err) != failure.Invalid {
			t.Fatalf("data not an object: %v", err)
		}
		if u, err := s.SetUserRole(ctx, bob.UUID, RoleReader); err != nil || u.Role != RoleReader {
			t.Fatalf("role: %+v %v", u, err)
		}
		e.reopen()
		s = e.s
		u, err = s.FindUserByID(bob.UUID)
		if err != nil || u.Role != RoleReader || u.DisplayName != "Bobby" || !strings.Contains(string(u.Data), "blue") {
			t.Fatalf("after reopen: %+v %v", u, err)
		}
	})
}

func TestActivation(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t, Options{RequireActivation: true})
	admin, err := e.s.Register(ctx, NewUser{Username: "admin@example.com", Password: goodPassword})
	if err != nil || !admin.Active {
		t.Fatalf("the first user is an active admin even when activation is required: %+v %v", admin, err)
	}
	u, err := e.s.Register(ctx, NewUser{Username: "p@example.com", Password: goodPassword})
	if err != nil || u.Active {
		t.Fatalf("pending user: %+v %v", u, err)
	}
	if _, _, _, err := e.s.Login(ctx, "p@example.com", goodPassword, Origin{}); failure.CodeOf(err) != failure.Forbidden {
		t.Fatalf("login of a pending user: %v", err)
	}
	if u, err = e.s.ActivateUser(ctx, u.UUID, true); err != nil || !u.Active || !u.EmailVerified {
		t.Fatalf("activate: %+v %v", u, err)
	}
	if _, _, _, err := e.s.Login(ctx, "p@example.com", goodPassword, Origin{}); err != nil {
		t.Fatalf("login after activation: %v", err)
	}
	if len(e.events("identity.user.activated")) != 1 {
		t.Fatal("no activation event")
	}
}

func TestPasswords(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t, Options{})
	u, err := e.s.Register(ctx, NewUser{Username: "u@example.com", Password: goodPassword})
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(u.Password, goodPassword) || !strings.HasPrefix(u.Password, "$argon2id$v=19$m=64,t=1,p=1$") {
		t.Fatalf("stored password: %q", u.Password)
	}

	t.Run("Login", func(t *testing.T) {
		secret, tok, lu, err := e.s.Login(ctx, "U@example.com", goodPassword, Origin{})
		if err != nil || secret == "" || tok.Kind != KindSession || lu.LastLogin.IsZero() || tok.Expires.IsZero() {
			t.Fatalf("login: %v %+v %+v", err, tok, lu)
		}
		p, err := e.s.Authenticate(secret)
		if err != nil || p.User == nil || p.User.UUID != u.UUID {
			t.Fatalf("authenticate the session: %+v %v", p, err)
		}
		for _, c := range [][2]string{{"u@example.com", "wrong password"}, {"nobody@example.com", goodPassword}} {
			if _, _, _, err := e.s.Login(ctx, c[0], c[1], Origin{}); failure.CodeOf(err) != failure.Unauthorized || !strings.Contains(err.Error(), "wrong username or password") {
				t.Errorf("login %v: %v", c, err)
			}
		}
	})

	t.Run("Change", func(t *testing.T) {
		// Not Unauthorized: clients take a 401 for a bad token (issue 17).
		if err := e.s.ChangePassword(ctx, u.UUID, "wrong", "new password 1", "new password 1", ""); failure.CodeOf(err) != failure.Invalid ||
			!errors.Is(err, ErrWrongPassword) || err.Error() != "the old password is wrong" {
			t.Fatalf("wrong old password: %v", err)
		}
		if err := e.s.ChangePassword(ctx, u.UUID, goodPassword, "new password 1", "new password 2", ""); failure.CodeOf(err) != failure.Invalid {
			t.Fatalf("confirmation differs: %v", err)
		}
		if err := e.s.ChangePassword(ctx, u.UUID, goodPassword, "new password 1", "new password 1", ""); err != nil {
			t.Fatal(err)
		}
		if _, _, _, err := e.s.Login(ctx, "u@example.com", "new password 1", Origin{}); err != nil {
			t.Fatalf("login with the new password: %v", err)
		}
	})

	t.Run("Rehash", func(t *testing.T) {
		e.s.opts.Hash = HashParams{Time: 2, Memory: 64, Threads: 1, KeyLen: 16, SaltLen: 8}
		if _, _, _, err := e.s.Login(ctx, "u@example.com", "new password 1", Origin{}); err != nil {
			t.Fatal(err)
		}
		got, _ := e.s.FindUserByID(u.UUID)
		if !strings.HasPrefix(got.Password, "$argon2id$v=19$m=64,t=2,p=1$") {
			t.Fatalf("not rehashed with the new parameters: %q", got.Password)
		}
		e.s.opts.Hash = cheapHash
	})

	t.Run("Reset", func(t *testing.T) {
		if err := e.s.RequestPasswordReset(ctx, "nobody@example.com"); err != nil {
			t.Fatalf("reset of an unknown user answers the same: %v", err)
		}
		if err := e.s.RequestPasswordReset(ctx, "u@example.com"); err != nil {
			t.Fatal(err)
		}
		evs := e.events("identity.password.reset_requested")
		if len(evs) != 1 {
			t.Fatalf("want one reset event, got %d", len(evs))
		}
		var ev struct {
			ResetID string `json:"reset_id"`
		}
		if err := json.Unmarshal(evs[0].Data, &ev); err != nil || ev.ResetID == "" {
			t.Fatalf("reset event: %s %v", evs[0].Data, err)
		}
		if err := e.s.ResetPassword(ctx, "not-an-id", "reset password 1", "reset password 1"); failure.CodeOf(err) != failure.NotFound {
			t.Fatalf("unknown id: %v", err)
		}
		if err := e.s.ResetPassword(ctx, ev.ResetID, "short", "short"); failure.CodeOf(err) != failure.Invalid {
			t.Fatalf("policy on reset: %v", err)
		}
		if err := e.s.ResetPassword(ctx, ev.ResetID, "reset password 1", "reset password 1"); err != nil {
			t.Fatal(err)
		}
		if err := e.s.ResetPassword(ctx, ev.ResetID, "reset password 2", "reset password 2"); failure.CodeOf(err) != failure.NotFound {
			t.Fatalf("a reset id is single use: %v", err)
		}
		if _, _, _, err := e.s.Login(ctx, "u@example.com", "reset password 1", Origin{}); err != nil {
			t.Fatalf("login after reset: %v", err)
		}
	})

	t.Run("ResetExpires", func(t *testing.T) {
		now := time.Now()
		e.s.opts.Now = func() time.Time { return now }
		if err := e.s.RequestPasswordReset(ctx, "u@example.com"); err != nil {
			t.Fatal(err)
		}
		evs := e.events("identity.password.reset_requested")
		var ev struct {
			ResetID string `json:"reset_id"`
		}
		_ = json.Unmarshal(evs[len(evs)-1].Data, &ev)
		now = now.Add(2 * time.Hour)
		if err := e.s.ResetPassword(ctx, ev.ResetID, "reset password 3", "reset password 3"); failure.CodeOf(err) != failure.NotFound {
			t.Fatalf("expired reset id: %v", err)
		}
		e.s.opts.Now = time.Now
	})
}

func TestResourcesAndServices(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t, Options{})
	s := e.s
	early, err := s.CreateUser(ctx, NewUser{Username: "early@example.com", Password: goodPassword, Active: true})
	if err != nil {
		t.Fatal(err)
	}
	secret, svc, err := s.CreateService(ctx, NewService{Name: "cyclades", Type: "compute",
		Endpoints: []Endpoint{{PublicURL: "https://cyclades.example.com/compute/v2.0", VersionID: "v2.0"}}})
	if err != nil || svc.TokenID == "" || !strings.HasPrefix(secret, "qlk_") {
		t.Fatalf("register service: %q %+v %v", secret, svc, err)
	}
	if p, err := s.Authenticate(secret); err != nil || p.Service == nil || p.Service.Name != "cyclades" {
		t.Fatalf("service token: %+v %v", p, err)
	}
	if _, _, err := s.CreateService(ctx, NewService{Name: "cyclades"}); failure.CodeOf(err) != failure.Conflict {
		t.Fatalf("service twice: %v", err)
	}
	if _, _, err := s.CreateService(ctx, NewService{Name: "Bad Name"}); failure.CodeOf(err) != failure.Invalid {
		t.Fatalf("bad service name: %v", err)
	}
	if _, _, err := s.CreateService(ctx, NewService{Name: "x", Endpoints: []Endpoint{{PublicURL: "ftp://x"}}}); failure.CodeOf(err) != failure.Invalid {
		t.Fatalf("bad endpoint: %v", err)
	}

	vm := Resource{Name: "cyclades.vm", Service: "cyclades", Unit: "", Description: "virtual machines", AllowInProjects: true, UpLimit: 2}
	if _, err := s.CreateResource(ctx, vm); err != nil {
		t.Fatal(err)
	}
	for _, bad := range []Resource{
		{Name: "cyclades.vm", Service: "cyclades"}, // exists
		{Name: "pithos.disk", Service: "pithos"},   // no such service
		{Name: "vm", Service: "cyclades"},          // not <service>.<name>
		{Name: "cyclades.ram", Service: "cyclades", UpLimit: -1},
	} {
		if _, err := s.CreateResource(ctx, bad); err == nil {
			t.Errorf("resource %+v accepted", bad)
		}
	}
	late, err := s.CreateUser(ctx, NewUser{Username: "late@example.com", Password: goodPassword, Active: true})
	if err != nil {
		t.Fatal(err)
	}
	// Both the user who existed before the resource and the one after have
	// their base-project holdings at the uplimit.
	for _, u := range []*User{early, late} {
		if lim, ok := e.limit("user:"+u.UUID, holdings.SourceOf("project:"+u.UUID), "cyclades.vm"); !ok || lim != 2 {
			t.Errorf("%s member holding: %d %v", u.Username, lim, ok)
		}
		if lim, ok := e.limit("project:"+u.UUID, holdings.NullSource, "cyclades.vm"); !ok || lim != 2 {
			t.Errorf("%s project holding: %d %v", u.Username, lim, ok)
		}
	}

	newSecret, svc2, err := s.RenewServiceToken(ctx, "cyclades", time.Time{})
	if err != nil || svc2.TokenID == svc.TokenID {
		t.Fatalf("renew: %+v %v", svc2, err)
	}
	if _, err := s.Authenticate(secret); failure.CodeOf(err) != failure.Unauthorized {
		t.Fatalf("the old service token still works: %v", err)
	}
	if _, err := s.Authenticate(newSecret); err != nil {
		t.Fatalf("the new service token: %v", err)
	}

	spareSecret, _, err := s.CreateService(ctx, NewService{Name: "spare"})
	if err != nil {
		t.Fatal(err)
	}

	e.reopen()
	if rs := testkit.Items(e.s.FindResources(ResourceFilter{})); len(rs) != 1 || rs[0].Name != "cyclades.vm" || rs[0].UpLimit != 2 {
		t.Fatalf("resources after reopen: %+v", rs)
	}
	if _, err := e.s.Authenticate(newSecret); err != nil {
		t.Fatalf("service token after reopen: %v", err)
	}
	// A service that serves resources stays: they would name a service
	// that no longer exists (issue 17).
	err = e.s.DeleteService(ctx, "cyclades")
	if !errors.Is(err, ErrServiceInUse) || failure.CodeOf(err) != failure.Conflict || !strings.Contains(err.Error(), "cyclades.vm") {
		t.Fatalf("remove a service with resources: %v", err)
	}
	if _, err := e.s.FindServiceByName("cyclades"); err != nil {
		t.Fatalf("the refused service: %v", err)
	}
	if _, err := e.s.Authenticate(newSecret); err != nil {
		t.Fatalf("the refused service's token: %v", err)
	}
	if err := e.s.DeleteService(ctx, "spare"); err != nil {
		t.Fatal(err)
	}
	if _, err := e.s.Authenticate(spareSecret); failure.CodeOf(err) != failure.Unauthorized {
		t.Fatalf("a removed service's token still works: %v", err)
	}
}

func TestDeleteUser(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t, Options{})
	u, err := e.s.Register(ctx, NewUser{Username: "gone@example.com", Password: goodPassword})
	if err != nil {
		t.Fatal(err)
	}
	secret, _, _, err := e.s.Login(ctx, "gone@example.com", goodPassword, Origin{})
	if err != nil {
		t.Fatal(err)
	}
	if err := e.s.DeleteUser(ctx, u.UUID); err != nil {
		t.Fatal(err)
	}
	if _, err := e.s.Authenticate(secret); failure.CodeOf(err) != failure.Unauthorized {
		t.Fatalf("a deleted user's token still works: %v", err)
	}
	if _, err := e.s.FindUserByName("gone@example.com"); failure.CodeOf(err) != failure.NotFound {
		t.Fatalf("deleted user still found: %v", err)
	}
	evs := e.events("identity.user.deleted")
	if len(evs) != 1 || !strings.Contains(string(evs[0].Data), "kept until released") {
		t.Fatalf("delete event: %+v", evs)
	}
	e.reopen()
	if _, err := e.s.Authenticate(secret); failure.CodeOf(err) != failure.Unauthorized {
		t.Fatalf("a deleted user's token works after reopen: %v", err)
	}
}

package identitytest_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/quotaledger/quotaledger/identity"
	"github.com/quotaledger/quotaledger/internal/testkit"
	"github.com/quotaledger/quotaledger/internal/testkit/identitytest"
	"github.com/quotaledger/quotaledger/ledger"
)

func TestOpenStores(t *testing.T) {
	ctx := context.Background()
	start := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	t.Run("CheapHashAndTheLedgersClock", func(t *testing.T) {
		clock := testkit.NewClock(start)
		l, s := identitytest.OpenStores(t, ledger.Options{Now: clock.Now}, identity.Options{})
		u, err := s.CreateUser(ctx, identity.NewUser{Username: "ada@example.com", Password: identitytest.Password})
		if err != nil {
			t.Fatal(err)
		}
		if !strings.HasPrefix(u.Password, "$argon2id$v=19$m=64,t=1,p=1$") {
			t.Fatalf("hash %q, want CheapHash's parameters", u.Password)
		}
		if !u.Created.Equal(start) {
			t.Fatalf("the store's clock: created %v, want the ledger's %v", u.Created, start)
		}
		if evs := outbox(t, l); len(evs) == 0 || !evs[0].Time.Equal(start) {
			t.Fatalf("the ledger's clock: %+v", evs)
		}
	})
	t.Run("TheStoresClock", func(t *testing.T) {
		clock := testkit.NewClock(start)
		l, s := identitytest.OpenStores(t, ledger.Options{}, identity.Options{Now: clock.Now})
		if _, err := s.CreateUser(ctx, identity.NewUser{Username: "ada@example.com", Password: identitytest.Password}); err != nil {
			t.Fatal(err)
		}
		if evs := outbox(t, l); len(evs) == 0 || !evs[0].Time.Equal(start) {
			t.Fatalf("the ledger does not read the store's clock: %+v", evs)
		}
	})
	t.Run("OutboxCheckedBeforeClose", func(t *testing.T) {
		var r testkit.Recorder
		l, _ := identitytest.OpenStores(&r, ledger.Options{}, identity.Options{})
		if err := l.Update(ctx, func(tx *ledger.Tx) error { tx.Emit("no.such.type", nil); return nil }); err != nil {
			t.Fatal(err)
		}
		r.End()
		if len(r.Errors()) != 1 || !strings.Contains(r.Errors()[0], "no.such.type") {
			t.Fatalf("at the end of the test: %q, want the uncatalogued event", r.Errors())
		}
		if _, err := l.Outbox(0, 1); err == nil {
			t.Fatal("the ledger is still open at the end of the test")
		}
	})
}

func outbox(t *testing.T, l *ledger.Ledger) []ledger.Event {
	t.Helper()
	evs, err := l.Outbox(0, 1000)
	if err != nil {
		t.Fatal(err)
	}
	return evs
}

func TestAddPrincipals(t *testing.T) {
	ctx := context.Background()
	_, s := identitytest.OpenStores(t, ledger.Options{}, identity.Options{})
	p := identitytest.AddPrincipals(t, s)
	for _, c := range []struct {
		name  string
		token string
		check func(identity.Principal) bool
	}{
		{"admin", p.AdminToken, func(a identity.Principal) bool {
			return a.Kind == identity.KindPersonal && a.IsAdmin() && a.User.UUID == p.Admin.UUID &&
				a.User.Username == identitytest.AdminName && a.User.Active && a.Token.Name == "admin" && a.Token.Expires.IsZero()
		}},
		{"service", p.ServiceToken, func(a identity.Principal) bool {
			return a.Kind == identity.KindService && a.Service.Name == identitytest.ServiceName && a.Service.Type == "compute" &&
				len(a.Service.Endpoints) == 1 && a.Service.Endpoints[0].PublicURL == "https://cyclades.example.com/compute/v2.0" &&
				a.Service.Endpoints[0].VersionID == "v2.0"
		}},
		{"user", p.UserToken, func(a identity.Principal) bool {
			return a.Kind == identity.KindSession && !a.IsAdmin() && a.User.UUID == p.User.UUID &&
				a.User.Username == identitytest.UserName && a.User.Role == identity.RoleUser && a.User.Active
		}},
	} {
		a, err := s.Authenticate(c.token)
		if err != nil || !c.check(a) {
			t.Errorf("the %s's token: %v, %+v (user %+v, service %+v)", c.name, err, a, a.User, a.Service)
		}
	}
	for _, name := range []string{identitytest.AdminName, identitytest.UserName} {
		if _, _, _, err := s.Login(ctx, name, identitytest.Password, identity.Origin{}); err != nil {
			t.Errorf("%s with Password: %v", name, err)
		}
	}
	if got := len(testkit.Items(s.FindResources(identity.ResourceFilter{}))); got != len(identitytest.Resources()) {
		t.Errorf("%d resources, want %d", got, len(identitytest.Resources()))
	}
	for _, want := range identitytest.Resources() {
		r, err := s.FindResourceByName(want.Name)
		if err != nil || r.Service != want.Service || r.UpLimit != want.UpLimit || r.Unit != want.Unit ||
			r.Description != want.Description || r.AllowInProjects != want.AllowInProjects {
			t.Errorf("resource %s: %v %+v, want %+v", want.Name, err, r, want)
		}
	}
}

// Package identitytest opens the stores most tests run on, a ledger and an
// identity store on it, and makes the principals they start from. It is
// testkit's layer over package identity (see testkit): the tests of events,
// api, api/client, bench and cmd/quotaledger use it; identity's own cannot
// (they are package identity, which it imports).
package identitytest

import (
	"context"
	"reflect"
	"time"

	"github.com/rs/zerolog"

	"github.com/quotaledger/quotaledger/identity"
	"github.com/quotaledger/quotaledger/internal/testkit"
	"github.com/quotaledger/quotaledger/internal/testkit/ledgertest"
	"github.com/quotaledger/quotaledger/ledger"
)

// CheapHash is the password hashing of tests: 64 KiB and one pass, where
// identity.DefaultHashParams take 64 MiB and three. (identity's own tests
// keep a copy: they cannot import this package.)
var CheapHash = identity.HashParams{Time: 1, Memory: 64, Threads: 1, KeyLen: 16, SaltLen: 8}

// OpenStores opens a ledger with lopts (ledgertest.Open: in memory unless
// lopts name a Dir, closed when the test ends) and an identity store on it
// with iopts, filling what iopts leave unset: CheapHash, zerolog.Nop(),
// and the ledger's clock. A clock (Now) set in one of the options and not
// in the other is the other's too, so that both read the test's Clock.
// When the test ends, before the ledger closes, it checks every event in
// the outbox against the event catalog (ledgertest.CheckOutbox).
func OpenStores(tb testkit.TB, lopts ledger.Options, iopts identity.Options) (*ledger.Ledger, *identity.Store) {
	tb.Helper()
	switch {
	case lopts.Now == nil:
		lopts.Now = iopts.Now
	case iopts.Now == nil:
		iopts.Now = lopts.Now
	}
	if iopts.Hash == (identity.HashParams{}) {
		iopts.Hash = CheapHash
	}
	if reflect.ValueOf(iopts.Logger).IsZero() {
		iopts.Logger = zerolog.Nop()
	}
	l := ledgertest.Open(tb, lopts)
	tb.Cleanup(func() { ledgertest.CheckOutbox(tb, l) }) // runs before Open's close
	s, err := identity.Open(l, iopts)
	if err != nil {
		tb.Fatalf("open the identity store: %v", err)
		return nil, nil
	}
	return l, s
}

// Password is the password of the principals' users.
const Password = "correct horse battery"

// The principals' names.
const (
	AdminName   = "admin@example.com"
	UserName    = "user@example.com"
	ServiceName = "cyclades"
)

// Resources are the resources of the service cyclades that AddPrincipals
// registers.
func Resources() []identity.Resource {
	return []identity.Resource{
		{Name: "cyclades.vm", Service: ServiceName, Description: "virtual machines", AllowInProjects: true, UpLimit: 2},
		{Name: "cyclades.ram", Service: ServiceName, Unit: "bytes", Description: "memory", AllowInProjects: true, UpLimit: 4 << 30},
	}
}

// Principals are the principals most tests start from, as AddPrincipals
// makes them.
type Principals struct {
	Admin        *identity.User // AdminName, an active admin
	AdminToken   string         // a personal token of the admin's, "admin", that never expires
	ServiceToken string         // the token of the service ServiceName
	User         *identity.User // UserName, an active user
	UserToken    string         // a session of the user's (Login)
}

// AddPrincipals makes the usual principals in s, in this order: the admin
// and their token; the service cyclades (type compute, one endpoint,
// https://cyclades.example.com/compute/v2.0, version v2.0) and its
// Resources; the user, logged in. Both users have Password.
func AddPrincipals(tb testkit.TB, s *identity.Store) Principals {
	tb.Helper()
	ctx := context.Background()
	check := func(what string, err error) {
		tb.Helper()
		if err != nil {
			tb.Fatalf("principals: %s: %v", what, err)
		}
	}
	var p Principals
	var err error
	p.Admin, err = s.CreateUser(ctx, identity.NewUser{Username: AdminName, Password: Password, Role: identity.RoleAdmin, Active: true})
	check("create the admin", err)
	p.AdminToken, _, err = s.CreateAccessToken(ctx, p.Admin.UUID, "admin", time.Time{}, false)
	check("the admin's token", err)
	p.ServiceToken, _, err = s.CreateService(ctx, identity.NewService{Name: ServiceName, Type: "compute",
		Endpoints: []identity.Endpoint{{PublicURL: "https://cyclades.example.com/compute/v2.0", VersionID: "v2.0"}}})
	check("register the service", err)
	for _, r := range Resources() {
		_, err = s.CreateResource(ctx, r)
		check("register "+r.Name, err)
	}
	p.User, err = s.CreateUser(ctx, identity.NewUser{Username: UserName, Password: Password, Active: true})
	check("create the user", err)
	p.UserToken, _, _, err = s.Login(ctx, UserName, Password, identity.Origin{})
	check("log the user in", err)
	return p
}

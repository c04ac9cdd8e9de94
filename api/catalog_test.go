package api

import (
	"context"
	"encoding/json"
	"maps"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/quotaledger/quotaledger/events/catalog"
	"github.com/quotaledger/quotaledger/holdings"
	"github.com/quotaledger/quotaledger/identity"
	"github.com/quotaledger/quotaledger/internal/testkit/identitytest"
	"github.com/quotaledger/quotaledger/internal/testkit/ledgertest"
	"github.com/quotaledger/quotaledger/ledger"
)

// TestEventCatalog makes every change there is, through the stores and the
// API, and checks that every event they emit is in the event catalog with
// the data of its payload type, and that every catalogued type was emitted.
func TestEventCatalog(t *testing.T) {
	ctx := context.Background()
	clock := newTestClock()
	l, id := identitytest.OpenStores(t, ledger.Options{Now: clock.Now}, identity.Options{RequireActivation: true})
	e := &env{t: t, l: l, id: id, api: New(l, id, Options{Logger: zerolog.Nop()})}
	e.srv = httptest.NewServer(e.api)
	t.Cleanup(e.srv.Close)
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	ptr := func(s string) *string { return &s }
	readOnly := true

	// Users, services, resources and tokens.
	admin, err := id.CreateUser(ctx, identity.NewUser{Username: "admin@example.com", Password: testPassword,
		Role: identity.RoleAdmin, Active: true})
	must(err)
	adminToken, _, err := id.CreateAccessToken(ctx, admin.UUID, "admin", time.Time{}, false)
	must(err)
	_, _, err = id.CreateService(ctx, identity.NewService{Name: "cyclades", Type: "compute", Endpoints: []identity.Endpoint{
		{PublicURL: "https://cyclades.example.com/compute/v2.0", VersionID: "v2.0"},
		{PublicURL: "https://cyclades.example.com/compute", Region: "eu"}},
		TokenExpires: clock.Now().Add(24 * time.Hour)})
	must(err)
	_, _, err = id.CreateService(ctx, identity.NewService{Name: "pithos", Type: "storage"})
	must(err)
	_, err = id.CreateResource(ctx, identity.Resource{Name: "cyclades.vm", Service: "cyclades",
		Description: "virtual machines", AllowInProjects: true, UpLimit: 2})
	must(err)
	bob, err := id.Register(ctx, identity.NewUser{Username: "bob@example.com", Password: testPassword})
	must(err)
	_, err = id.ActivateUser(ctx, bob.UUID, true)
	must(err)
	_, err = id.UpdateUser(ctx, bob.UUID, identity.UserUpdate{DisplayName: ptr("Bob")})
	must(err)
	_, err = id.SetUserRole(ctx, bob.UUID, identity.RoleReader)
	must(err)
	must(id.ChangePassword(ctx, bob.UUID, testPassword, "another password 1", "another password 1", ""))
	must(id.RequestPasswordReset(ctx, "bob@example.com"))
	var reset catalog.PasswordResetRequested
	for _, ev := range ledgertest.CheckOutbox(t, l) {
		if ev.Type == catalog.PasswordResetRequestedType {
			must(json.Unmarshal(ev.Data, &reset))
		}
	}
	must(id.ResetPassword(ctx, reset.ResetID, "another password 2", "another password 2"))
	_, tok, err := id.CreateAccessToken(ctx, bob.UUID, "ci", clock.Now().Add(time.Hour), false)
	must(err)
	_, err = id.UpdateAccessToken(ctx, bob.UUID, tok.ID, identity.TokenUpdate{ReadOnly: &readOnly})
	must(err)
	must(id.DeleteAccessToken(ctx, bob.UUID, tok.ID))
	_, err = id.ImportAccessToken(ctx, bob.UUID, "imported", strings.Repeat("s", 40))
	must(err)
	_, _, _, err = id.Login(ctx, "bob@example.com", "another password 2", identity.Origin{})
	must(err)
	clock.Advance(25 * time.Hour) // past the session's end
	must(id.FlushLastUsed(ctx))

	// Projects and groups.
	carol, err := id.CreateUser(ctx, identity.NewUser{Username: "carol@example.com", Password: testPassword, Active: true})
	must(err)
	p, err := id.CreateProject(ctx, identity.NewProject{Name: "research", Owner: admin.UUID,
		Policies: map[string]identity.Policy{"cyclades.vm": {ProjectCapacity: 10, MemberCapacity: 2}}})
	must(err)
	_, err = id.AddProjectMember(ctx, p.UUID, identity.Member{User: bob.UUID, Role: identity.MemberMember})
	must(err)
	_, err = id.SetProjectMemberRole(ctx, p.UUID, identity.Member{User: bob.UUID, Role: identity.MemberReader})
	must(err)
	_, err = id.SetProjectPolicies(ctx, p.UUID, map[string]identity.Policy{"cyclades.vm": {ProjectCapacity: 20, MemberCapacity: 4}})
	must(err)
	_, err = id.CreateGroup(ctx, "ops")
	must(err)
	_, err = id.AddGroupMember(ctx, "ops", carol.UUID)
	must(err)
	_, err = id.AddProjectMember(ctx, p.UUID, identity.Member{Group: "ops", Role: identity.MemberMember})
	must(err)
	_, err = id.RenameGroup(ctx, "ops", "operators")
	must(err)
	_, err = id.RenameGroup(ctx, "operators", "operators")
	must(err)
	_, err = id.RemoveGroupMember(ctx, "operators", carol.UUID) // group_changed in the project
	must(err)
	_, err = id.RemoveProjectMember(ctx, p.UUID, identity.Member{User: bob.UUID})
	must(err)
	must(id.DeleteGroup(ctx, "operators"))
	must(id.DeleteProject(ctx, p.UUID))

	// Commissions and holdings.
	bobVM := holdings.Key{Holder: "user:" + bob.UUID, Source: holdings.SourceOf("project:" + bob.UUID), Resource: "cyclades.vm"}
	issue := func(name string, ttl time.Duration) uint64 {
		t.Helper()
		r, err := l.Issue(ctx, ledger.IssueRequest{Client: "cyclades", Name: name, TTL: ttl,
			Provisions: []holdings.Provision{{Key: bobVM, Quantity: 1}}})
		must(err)
		return r.Serial
	}
	must(l.Resolve(ctx, "cyclades", issue("create vm-1", 0), true, ""))
	must(l.Resolve(ctx, "cyclades", issue("create vm-2", 0), false, "no room"))
	issue("resize vm-1", time.Second)
	clock.Advance(2 * time.Second)
	must(l.ExpireDue(ctx))
	if n := len(l.Pending("cyclades")); n != 0 {
		t.Fatalf("%d commissions pending after their deadline", n)
	}
	h0 := holdings.Key{Holder: "h0", Source: holdings.SourceOf("system"), Resource: "r1"}
	must(l.SetHoldings(ctx, []ledger.HoldingSetting{{Key: h0, Limit: 10}}))
	must(l.DeleteHoldings(ctx, []holdings.Key{h0}))

	// Feedback, through the API; then removals.
	st, _, raw := e.send("POST", "/account/v1.0/feedback", map[string]string{"X-Auth-Token": adminToken},
		[]byte("feedback_msg=it+works&feedback_data=%7B%22vm%22%3A1%7D"))
	if st != 200 {
		t.Fatalf("feedback: %d %s", st, raw)
	}
	must(id.DeleteService(ctx, "pithos"))
	must(id.DeleteUser(ctx, bob.UUID))

	emitted := map[string]int{}
	for _, ev := range ledgertest.CheckOutbox(t, l) {
		emitted[ev.Type]++
	}
	for _, c := range catalog.All {
		if emitted[c.Type] == 0 {
			t.Errorf("no %s event was emitted", c.Type)
		}
	}
	if t.Failed() {
		t.Logf("emitted: %v", slices.Sorted(maps.Keys(emitted)))
	}
}

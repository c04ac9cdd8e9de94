package events

import (
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/quotaledger/quotaledger/events/catalog"
	"github.com/quotaledger/quotaledger/holdings"
	"github.com/quotaledger/quotaledger/identity"
	"github.com/quotaledger/quotaledger/internal/testkit"
	"github.com/quotaledger/quotaledger/internal/testkit/identitytest"
	"github.com/quotaledger/quotaledger/ledger"
)

// The payloads consumers parse, pinned. TestPayloadsGolden makes every kind
// of change the product emits an event for (every type of the catalog), with a fixed clock, and holds
// the subject and the exact JSON of each event, as Render makes them from
// the outbox and as the relay publishes them to JetStream, against
// testdata/payloads.golden. Renaming a JSON field, changing a subject or a
// type name, or dropping a field fails it.
//
// Values the product draws at random (the database id, user and project
// uuids, token ids, a reset id) are written in the golden file as
// placeholders such as <db> and <user:bob>; everything else is exact. The
// feedback event, made by the API, is pinned in api/format_test.go.
//
// A change meant to be visible to consumers takes a new type version
// (TypePrefix); the golden file is regenerated explicitly:
//
//	go test ./events -run TestPayloadsGolden -update
var update = flag.Bool("update", false, "rewrite testdata/payloads.golden (TestPayloadsGolden) from today's payloads")

const payloadsGolden = "testdata/payloads.golden"

// renderedEvent is an outbox event as the relay publishes it.
type renderedEvent struct {
	typ, subject, msgID string
	payload             []byte
}

func TestPayloadsGolden(t *testing.T) {
	ctx := context.Background()
	clock := testkit.NewClock(time.Date(2025, 5, 6, 7, 8, 9, 0, time.UTC))
	l, ids := identitytest.OpenStores(t, ledger.Options{Now: clock.Now}, identity.Options{SessionTTL: time.Hour})

	// placeholders names the values drawn at random, longest first when
	// replaced.
	placeholders := map[string]string{l.ID(): "<db>"}
	name := func(value, placeholder string) { placeholders[value] = placeholder }
	var (
		events []renderedEvent
		golden strings.Builder
		last   uint64
	)
	// step runs one change and records the events it emitted.
	step := func(title string, change func() error) {
		t.Helper()
		if err := change(); err != nil {
			t.Fatalf("%s: %v", title, err)
		}
		evs, err := l.Outbox(last, 1000)
		if err != nil {
			t.Fatal(err)
		}
		if len(evs) == 0 {
			t.Fatalf("%s: no event", title)
		}
		fmt.Fprintf(&golden, "# %s\n", title)
		for _, e := range evs {
			subject, msgID, payload := Render(l.ID(), e)
			events = append(events, renderedEvent{e.Type, subject, msgID, payload})
			last = e.Seq
		}
		clock.Advance(time.Second + 250*time.Millisecond)
	}
	// flush writes the events recorded since the last flush, with their
	// placeholders (named by then).
	flushed := 0
	flush := func() {
		for _, e := range events[flushed:] {
			fmt.Fprintf(&golden, "%s %s\n", e.subject, withPlaceholders(string(e.payload), placeholders))
		}
		flushed = len(events)
	}
	run := func(title string, change func() error) {
		t.Helper()
		step(title, change)
		flush()
	}
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}

	// Identity: users, services, resources.
	var alice, bob *identity.User
	run("register the first user (an admin)", func() (err error) {
		alice, err = ids.Register(ctx, identity.NewUser{Username: "alice@example.com", Password: "alice's password",
			FirstName: "Alice", LastName: "Archer"})
		if err == nil {
			name(alice.UUID, "<user:alice>")
		}
		return err
	})
	var svcSecret string
	var svc *identity.Service
	step("register a service (and its token)", func() (err error) {
		svcSecret, svc, err = ids.CreateService(ctx, identity.NewService{Name: "compute", Type: "compute-api",
			Endpoints: []identity.Endpoint{{PublicURL: "https://compute.example.com/v2", VersionID: "v2", Region: "north"}}})
		return err
	})
	name(svc.TokenID, "<token:compute>")
	flush()
	if svcSecret == "" {
		t.Fatal("no service secret")
	}
	run("register a resource (alice's base holdings)", func() error {
		_, err := ids.CreateResource(ctx, identity.Resource{Name: "compute.vm", Unit: "VM", Description: "virtual machines",
			Service: "compute", AllowInProjects: true, UpLimit: 2, ProjectDefault: 5})
		return err
	})
	step("an admin creates a user", func() (err error) {
		bob, err = ids.CreateUser(ctx, identity.NewUser{Username: "bob@example.com", Password: "bob's password", Role: identity.RoleUser})
		return err
	})
	name(bob.UUID, "<user:bob>")
	flush()
	run("update a user", func() error {
		dn := "Bob B."
		_, err := ids.UpdateUser(ctx, bob.UUID, identity.UserUpdate{DisplayName: &dn, Data: json.RawMessage(`{"team": "ops"}`)})
		return err
	})
	run("change a role", func() error { _, err := ids.SetUserRole(ctx, bob.UUID, identity.RoleReader); return err })
	run("activate a user", func() error { _, err := ids.ActivateUser(ctx, bob.UUID, true); return err })
	run("change a password", func() error {
		return ids.ChangePassword(ctx, bob.UUID, "bob's password", "bob's new password", "bob's new password", "")
	})
	step("request a password reset", func() error { return ids.RequestPasswordReset(ctx, "bob@example.com") })
	var reset struct {
		Data struct {
			ResetID string `json:"reset_id"`
		} `json:"data"`
	}
	must(json.Unmarshal(events[len(events)-1].payload, &reset))
	name(reset.Data.ResetID, "<reset-id>")
	flush()
	run("reset a password", func() error {
		return ids.ResetPassword(ctx, reset.Data.ResetID, "bob's third password", "bob's third password")
	})

	// Tokens.
	var pat *identity.Token
	step("create a personal access token", func() (err error) {
		_, pat, err = ids.CreateAccessToken(ctx, alice.UUID, "laptop", time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC), true)
		return err
	})
	name(pat.ID, "<token:laptop>")
	flush()
	var imported *identity.Token
	step("import a personal access token", func() (err error) {
		imported, err = ids.ImportAccessToken(ctx, alice.UUID, "ci", "test-only-events-golden-imported-secret")
		return err
	})
	name(imported.ID, "<token:ci>")
	flush()
	run("update a personal access token", func() error {
		n, ro := "old laptop", false
		_, err := ids.UpdateAccessToken(ctx, alice.UUID, pat.ID, identity.TokenUpdate{Name: &n, ReadOnly: &ro})
		return err
	})
	run("revoke a personal access token", func() error { return ids.DeleteAccessToken(ctx, alice.UUID, pat.ID) })
	var session *identity.Token
	step("log in (a session token)", func() (err error) {
		_, session, _, err = ids.Login(ctx, "bob@example.com", "bob's third password", identity.Origin{})
		return err
	})
	name(session.ID, "<token:session>")
	flush()
	run("a session expires", func() error {
		clock.Advance(2 * time.Hour)
		return ids.FlushLastUsed(ctx)
	})

	// Groups and projects.
	run("create a group", func() error { _, err := ids.CreateGroup(ctx, "ops"); return err })
	run("add a user to a group", func() error { _, err := ids.AddGroupMember(ctx, "ops", bob.UUID); return err })
	var alpha *identity.Project
	step("create a project", func() (err error) {
		alpha, err = ids.CreateProject(ctx, identity.NewProject{Name: "alpha", Owner: alice.UUID,
			Policies: map[string]identity.Policy{"compute.vm": {ProjectCapacity: 10, MemberCapacity: 3}}})
		return err
	})
	name(alpha.UUID, "<project:alpha>")
	flush()
	run("add a group to a project", func() error {
		_, err := ids.AddProjectMember(ctx, alpha.UUID, identity.Member{Group: "ops", Role: identity.MemberMember})
		return err
	})
	run("change a member's role", func() error {
		_, err := ids.SetProjectMemberRole(ctx, alpha.UUID, identity.Member{Group: "ops", Role: identity.MemberAdmin})
		return err
	})
	run("rename a group", func() error { _, err := ids.RenameGroup(ctx, "ops", "operators"); return err })
	run("remove a user from a group (and so from a project)", func() error {
		_, err := ids.RemoveGroupMember(ctx, "operators", bob.UUID)
		return err
	})
	run("add a user to a project", func() error {
		_, err := ids.AddProjectMember(ctx, alpha.UUID, identity.Member{User: bob.UUID, Role: identity.MemberReader})
		return err
	})
	run("remove a user from a project", func() error {
		_, err := ids.RemoveProjectMember(ctx, alpha.UUID, identity.Member{User: bob.UUID})
		return err
	})
	// With alice the only member left: holdings of several users are in
	// the order of their random uuids.
	run("change a project's policies", func() error {
		_, err := ids.SetProjectPolicies(ctx, alpha.UUID, map[string]identity.Policy{"compute.vm": {ProjectCapacity: 20, MemberCapacity: 4}})
		return err
	})
	run("remove a group from a project", func() error {
		_, err := ids.RemoveProjectMember(ctx, alpha.UUID, identity.Member{Group: "operators"})
		return err
	})
	run("delete a group", func() error { return ids.DeleteGroup(ctx, "operators") })
	run("delete a project", func() error { return ids.DeleteProject(ctx, alpha.UUID) })

	// The ledger's own events.
	vm := holdings.Key{Holder: "user:" + alice.UUID, Source: holdings.SourceOf("project:" + alice.UUID), Resource: "compute.vm"}
	pool := holdings.Key{Holder: "project:pool", Source: holdings.NullSource, Resource: "compute.ram"}
	run("set quotas", func() error {
		return l.SetHoldings(ctx, []ledger.HoldingSetting{{Key: pool, Limit: 4096}, {Key: vm, Limit: 3}})
	})
	issue := func(req ledger.IssueRequest) (serial uint64) {
		t.Helper()
		res, err := l.Issue(ctx, req)
		must(err)
		return res.Serial
	}
	var s1, s2 uint64
	run("issue a commission", func() error {
		s1 = issue(ledger.IssueRequest{Client: "compute", Name: "vm create",
			Provisions: []holdings.Provision{{Key: vm, Quantity: 1}, {Key: pool, Quantity: 2048}}})
		return nil
	})
	run("accept a commission", func() error { return l.Resolve(ctx, "compute", s1, true, "done") })
	run("issue a release", func() error {
		s2 = issue(ledger.IssueRequest{Client: "compute", Name: "vm delete",
			Provisions: []holdings.Provision{{Key: pool, Quantity: -1024}}})
		return nil
	})
	run("reject a commission", func() error { return l.Resolve(ctx, "compute", s2, false, "vm failed") })
	run("issue a commission with a ttl", func() error {
		issue(ledger.IssueRequest{Client: "compute", Name: "vm resize", TTL: time.Minute,
			Provisions: []holdings.Provision{{Key: pool, Quantity: 1}}})
		return nil
	})
	run("a commission expires", func() error {
		clock.Advance(2 * time.Minute)
		return l.ExpireDue(ctx)
	})
	run("issue with auto-accept", func() error {
		issue(ledger.IssueRequest{Client: "compute", Name: "vm snapshot", AutoAccept: true,
			Provisions: []holdings.Provision{{Key: vm, Quantity: 1}}})
		return nil
	})
	run("delete a holding", func() error { return l.DeleteHoldings(ctx, []holdings.Key{pool}) })

	// Removals.
	// A service that serves resources cannot be removed (issue 17): one that
	// serves none is.
	var legacy *identity.Service
	step("register a service that serves no resource", func() (err error) {
		_, legacy, err = ids.CreateService(ctx, identity.NewService{Name: "legacy", Type: "compute-api"})
		return err
	})
	name(legacy.TokenID, "<token:legacy>")
	flush()
	run("remove a service (and its token)", func() error { return ids.DeleteService(ctx, "legacy") })
	run("delete a user", func() error { return ids.DeleteUser(ctx, bob.UUID) })

	// Every type of the catalog is in the golden file, but the feedback's
	// (made by the API: api/format_test.go pins it).
	seen := map[string]bool{}
	for _, e := range events {
		seen[e.typ] = true
		if _, ok := catalog.Lookup(e.typ); !ok {
			t.Errorf("event type %s is not in the catalog", e.typ)
		}
	}
	for _, c := range catalog.All {
		if !seen[c.Type] && c.Type != catalog.FeedbackType {
			t.Errorf("the scenario makes no %s event: add a step", c.Type)
		}
	}

	got := golden.String()
	if *update {
		if err := os.MkdirAll("testdata", 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(payloadsGolden, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(payloadsGolden)
	if err != nil {
		t.Fatalf("%v (go test ./events -run TestPayloadsGolden -update, and commit it)", err)
	}
	compareGolden(t, got, string(want))

	// The same bytes reach the stream: the relay publishes what Render
	// makes, under its subject and id.
	srv := MustStartServer(t, t.TempDir(), "")
	StartRelay(t, l, srv.ClientURL(), nil)
	waitDrained(t, l)
	msgs := readStream(t, srv.ClientURL())
	if len(msgs) != len(events) {
		t.Fatalf("the stream holds %d messages, want %d", len(msgs), len(events))
	}
	for i, m := range msgs {
		e := events[i]
		if m.Subject != e.subject || m.MsgID != e.msgID || !bytes.Equal(m.Data, e.payload) {
			t.Errorf("message %d on the stream: %s %s %s\nwant %s %s %s", i+1, m.Subject, m.MsgID, m.Data, e.subject, e.msgID, e.payload)
		}
	}
}

// withPlaceholders replaces each value of ph by its placeholder, longest
// values first.
func withPlaceholders(s string, ph map[string]string) string {
	values := make([]string, 0, len(ph))
	for v := range ph {
		values = append(values, v)
	}
	slices.SortFunc(values, func(a, b string) int { return len(b) - len(a) })
	for _, v := range values {
		s = strings.ReplaceAll(s, v, ph[v])
	}
	return s
}

// compareGolden fails t at the first line where got and want differ, with
// the step it belongs to.
func compareGolden(t *testing.T, got, want string) {
	t.Helper()
	n, gl, wl := testkit.FirstLineDiff(got, want)
	if n == 0 {
		return
	}
	step, lines := "", strings.Split(want, "\n")
	for _, l := range lines[:min(n, len(lines))] { // the step of line n is the last one named up to it
		if strings.HasPrefix(l, "# ") {
			step = l
		}
	}
	t.Fatalf("%s: line %d differs: consumers parse the payloads of %s\n got %s\nwant %s",
		payloadsGolden, n, step, gl, wl)
}

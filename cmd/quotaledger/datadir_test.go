package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io/fs"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"testing/cryptotest"
	"time"

	"github.com/quotaledger/quotaledger/events"
	"github.com/quotaledger/quotaledger/holdings"
	"github.com/quotaledger/quotaledger/identity"
	"github.com/quotaledger/quotaledger/internal/testkit"
	"github.com/quotaledger/quotaledger/internal/testkit/identitytest"
	"github.com/quotaledger/quotaledger/ledger"
)

// A data directory written by an earlier version must read the same after
// an upgrade. testdata/datadir-v1 holds one (see its README.md): the ledger
// directory serve keeps under --data, made by generateDataDir, with users,
// a service and its resources, projects, a group, tokens, holdings, pending,
// accepted, rejected and expired commissions, idempotent issues, a password
// reset and the outbox of every change. TestDataDirV1 opens a copy with
// today's code and checks what a user would read, and that the old records
// still work: the idempotency keys answer with their serials, the secret
// authenticates, the password logs in, the reset id resets, the counters go
// on, and a deadline stored then still expires its commission.
//
// The directory is never rewritten to make the test pass: a new disk format
// gets a datadir-v2 of its own, and v1 stays. To make it again on purpose,
// remove it and run
//
//	go test ./cmd/quotaledger -run TestDataDirV1 -update
var update = flag.Bool("update", false, "write testdata/datadir-v1 (TestDataDirV1) if it does not exist")

const dataDirV1 = "testdata/datadir-v1"

// Test-only credentials of the data directory: they open nothing else.
const (
	ddPassword  = "test-only datadir-v1 password"
	ddSecret    = "test-only-datadir-v1-secret-for-alice-0001"
	ddAlice     = "alice@example.com"
	ddBob       = "bob@example.com"
	ddService   = "compute"
	ddVM, ddRAM = "compute.vm", "compute.ram"
)

// The data directory's clock: generation starts at ddStart and ends before
// ddRead, the clock of the test; the long-lived commission's deadline is
// after ddRead and before ddExpire.
var (
	ddStart  = time.Date(2025, 6, 1, 10, 0, 0, 0, time.UTC)
	ddRead   = time.Date(2025, 6, 1, 10, 30, 0, 0, time.UTC)
	ddExpire = time.Date(2025, 8, 1, 0, 0, 0, 0, time.UTC)
)

// ddOpen opens the ledger in dir and the identity store on it
// (identitytest.OpenStores: cheap password hashing, which the hashes in the
// directory carry; both on clock), closed when the test ends or by the
// returned function.
func ddOpen(t *testing.T, dir string, clock *testkit.Clock) (*ledger.Ledger, *identity.Store, func()) {
	return ddOpenWith(t, dir, clock, 4<<20)
}

// ddOpenWith is ddOpen with a memtable of memTable bytes.
func ddOpenWith(t *testing.T, dir string, clock *testkit.Clock, memTable uint64) (*ledger.Ledger, *identity.Store, func()) {
	t.Helper()
	l, s := identitytest.OpenStores(t, ledger.Options{Dir: dir, Now: clock.Now, MemTableSize: memTable}, identity.Options{})
	return l, s, func() {
		if err := l.Close(); err != nil {
			t.Error(err)
		}
	}
}

func TestDataDirV1(t *testing.T) {
	if *update {
		generateDataDir(t)
	}
	ctx := context.Background()
	dir := filepath.Join(t.TempDir(), "ledger")
	if err := os.CopyFS(dir, os.DirFS(filepath.Join(dataDirV1, "ledger"))); err != nil {
		t.Fatalf("copy the data directory: %v", err)
	}
	clock := testkit.NewClock(ddRead)
	l, s, closeLedger := ddOpen(t, dir, clock)
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}

	// What a user reads: every holding, pending commission, log entry and
	// identity record, as today's code reads them then.
	compareDataDirGolden(t, "view.golden", ddView(t, l, s))
	// The outbox: every event the changes made, as the relay would publish
	// it.
	compareDataDirGolden(t, "outbox.golden", ddOutbox(t, l))

	// A few of those, spelled out.
	alice, err := s.FindUserByName(ddAlice)
	must(err)
	bob, err := s.FindUserByName(ddBob)
	must(err)
	if alice.Role != identity.RoleAdmin || !alice.Active || bob.Role != identity.RoleUser || !bob.Active {
		t.Errorf("alice %s active %v, bob %s active %v", alice.Role, alice.Active, bob.Role, bob.Active)
	}
	aliceVM := holdings.Key{Holder: "user:" + alice.UUID, Source: holdings.SourceOf("project:" + alice.UUID), Resource: ddVM}
	if v, ok := l.FindHoldingByKey(aliceVM); !ok || v != (holdings.Value{Limit: 2, UsageMin: 1, UsageMax: 1}) {
		t.Errorf("alice's base vm holding: %+v %v, want limit 2, usage 1", v, ok)
	}
	pending := l.Pending(ddService)
	if !slices.Equal(pending, []uint64{2, 3, 6}) {
		t.Errorf("pending commissions of %s: %v, want [2 3 6]", ddService, pending)
	}
	c6, err := l.Commission(ddService, 6)
	must(err)
	if c6.Name != "vm-6 (a month to live)" || !c6.Deadline.Equal(c6.IssueTime.Add(30*24*time.Hour)) || len(c6.Provisions) != 1 {
		t.Errorf("commission 6: %+v", c6)
	}
	page, err := l.Log(ledger.LogFilter{Serial: 5})
	must(err)
	if len(page.Entries) != 1 || page.Entries[0].Reason != "REJECT:"+ledger.ReasonExpired {
		t.Errorf("log of the expired commission 5: %+v", page.Entries)
	}

	// The idempotency keys answer as they did: the same serial, replayed;
	// another request under a key is a conflict.
	for _, c := range []struct {
		req    ledger.IssueRequest
		serial uint64
		accept bool
	}{
		{ddIssue2(bob, ddProject(t, s, "alpha")), 2, false},
		{ddIssue7(alice), 7, true},
	} {
		res, err := l.Issue(ctx, c.req)
		if err != nil || res.Serial != c.serial || !res.Replayed || res.Accepted != c.accept {
			t.Errorf("replay of %s: %+v, %v; want serial %d, replayed, accepted %v", c.req.IdempotencyKey, res, err, c.serial, c.accept)
		}
		other := c.req
		other.Name += " (another)"
		if _, err := l.Issue(ctx, other); !errors.Is(err, ledger.ErrIdempotencyConflict) {
			t.Errorf("another request under %s: %v, want a conflict", c.req.IdempotencyKey, err)
		}
	}

	// The imported secret is alice's token; the passwords log in; the reset
	// id of the outbox resets bob's password.
	p, err := s.Authenticate(ddSecret)
	if err != nil || p.User == nil || p.User.UUID != alice.UUID || p.Kind != identity.KindPersonal {
		t.Errorf("the secret authenticates as %+v, %v; want alice", p, err)
	}
	if _, _, u, err := s.Login(ctx, ddAlice, ddPassword, identity.Origin{}); err != nil || u.UUID != alice.UUID {
		t.Errorf("alice's login: %v", err)
	}
	must(s.ResetPassword(ctx, ddResetID(t, l), "bob's new test-only password", "bob's new test-only password"))
	if _, _, _, err := s.Login(ctx, ddBob, "bob's new test-only password", identity.Origin{}); err != nil {
		t.Errorf("bob's login after the reset: %v", err)
	}

	// The counters go on from where they were.
	before := l.Stats()
	res, err := l.Issue(ctx, ledger.IssueRequest{Client: ddService, Name: "after the upgrade",
		Provisions: []holdings.Provision{{Key: aliceVM, Quantity: -1}}})
	if err != nil || res.Serial != before.Serial+1 || before.Serial != 8 {
		t.Errorf("a new issue: %+v, %v; want serial %d after 8", res, err, before.Serial+1)
	}

	// A deadline stored then still expires its commission: reopened after
	// it, the ledger rejects commission 6.
	closeLedger()
	clock.Set(ddExpire)
	l, _, _ = ddOpen(t, dir, clock)
	if slices.Contains(l.Pending(ddService), 6) {
		t.Error("commission 6 is still pending after its deadline")
	}
	page, err = l.Log(ledger.LogFilter{Serial: 6})
	must(err)
	if len(page.Entries) != 1 || page.Entries[0].Reason != "REJECT:"+ledger.ReasonExpired {
		t.Errorf("log of commission 6 after its deadline: %+v", page.Entries)
	}
}

// The idempotent issues of the data directory, as a retry would send them.
func ddIssue2(bob *identity.User, alpha string) ledger.IssueRequest {
	return ledger.IssueRequest{Client: ddService, Name: "vm-2 for bob in alpha", IdempotencyKey: "create-vm-2",
		Provisions: []holdings.Provision{{Key: holdings.Key{Holder: "user:" + bob.UUID, Source: holdings.SourceOf("project:" + alpha), Resource: ddVM}, Quantity: 1}}}
}

func ddIssue7(alice *identity.User) ledger.IssueRequest {
	return ledger.IssueRequest{Client: ddService, Name: "vm-7 (auto-accept)", IdempotencyKey: "create-vm-7", AutoAccept: true,
		Provisions: []holdings.Provision{{Key: holdings.Key{Holder: "user:" + alice.UUID, Source: holdings.SourceOf("project:" + alice.UUID), Resource: ddVM}, Quantity: 1}}}
}

// ddProject returns the uuid of the project named name.
func ddProject(t *testing.T, s *identity.Store, name string) string {
	t.Helper()
	for _, p := range testkit.Items(s.FindProjects(identity.ProjectFilter{})) {
		if p.Name == name {
			return p.UUID
		}
	}
	t.Fatalf("no project %q", name)
	return ""
}

// ddResetID returns the reset id of the data directory's password reset,
// which only its event carries.
func ddResetID(t *testing.T, l *ledger.Ledger) string {
	t.Helper()
	evs, err := l.Outbox(0, 10000)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range evs {
		if e.Type == "identity.password.reset_requested" {
			var d struct {
				ResetID string `json:"reset_id"`
			}
			if err := json.Unmarshal(e.Data, &d); err != nil {
				t.Fatal(err)
			}
			return d.ResetID
		}
	}
	t.Fatal("no identity.password.reset_requested event in the outbox")
	return ""
}

// ddView renders what a user reads of the ledger and the identity store:
// labelled fields, independent of Go names and JSON tags.
func ddView(t *testing.T, l *ledger.Ledger, s *identity.Store) string {
	t.Helper()
	var b strings.Builder
	ts := func(t time.Time) string {
		if t.IsZero() {
			return "-"
		}
		return t.UTC().Format(time.RFC3339Nano)
	}
	src := func(s holdings.Source) string {
		if s.IsNull() {
			return "<null>"
		}
		return fmt.Sprintf("%q", s.Name())
	}
	st := l.Stats()
	fmt.Fprintf(&b, "ledger id=%s holdings=%d pending=%d serial=%d\n", l.ID(), st.Holdings, st.Pending, st.Serial)
	for _, h := range l.FindHoldings(ledger.HoldingFilter{}) {
		fmt.Fprintf(&b, "holding holder=%q source=%s resource=%q limit=%d usage_min=%d usage_max=%d\n",
			h.Holder, src(h.Source), h.Resource, h.Limit, h.UsageMin, h.UsageMax)
	}
	for _, client := range []string{ddService, "storage"} {
		for _, serial := range l.Pending(client) {
			c, err := l.Commission(client, serial)
			if err != nil {
				t.Fatal(err)
			}
			fmt.Fprintf(&b, "pending serial=%d client=%q name=%q issued=%s deadline=%s\n", c.Serial, c.Client, c.Name, ts(c.IssueTime), ts(c.Deadline))
			for _, p := range c.Provisions {
				fmt.Fprintf(&b, "  provision holder=%q source=%s resource=%q quantity=%d\n", p.Key.Holder, src(p.Key.Source), p.Key.Resource, p.Quantity)
			}
		}
	}
	logLine := func(what string, e ledger.LogEntry) {
		fmt.Fprintf(&b, "%s serial=%d client=%q name=%q issued=%s logged=%s holder=%q source=%s resource=%q quantity=%d limit=%d usage_min=%d usage_max=%d reason=%q\n",
			what, e.Serial, e.Client, e.Name, ts(e.IssueTime), ts(e.LogTime), e.Key.Holder, src(e.Key.Source), e.Key.Resource,
			e.Quantity, e.After.Limit, e.After.UsageMin, e.After.UsageMax, e.Reason)
	}
	page, err := l.Log(ledger.LogFilter{Limit: ledger.MaxLogPage})
	if err != nil || page.Next != "" {
		t.Fatalf("log: %v (next %q)", err, page.Next)
	}
	for _, e := range page.Entries {
		logLine("log", e)
	}
	// The same entries by holder (the log's second index).
	holders := map[string]bool{}
	for _, e := range page.Entries {
		holders[e.Key.Holder] = true
	}
	for _, h := range slices.Sorted(maps.Keys(holders)) {
		hp, err := l.Log(ledger.LogFilter{Holder: h, Limit: ledger.MaxLogPage})
		if err != nil {
			t.Fatal(err)
		}
		for _, e := range hp.Entries {
			logLine("holder-log", e)
		}
	}

	users, n, err := s.FindUsers(identity.UserFilter{Limit: 100})
	if err != nil || n != len(users) {
		t.Fatalf("users: %d of %d, %v", len(users), n, err)
	}
	for _, u := range users {
		fmt.Fprintf(&b, "user uuid=%s username=%q display=%q first=%q last=%q role=%s active=%v verified=%v data=%s password=%q created=%s updated=%s last_login=%s\n",
			u.UUID, u.Username, u.DisplayName, u.FirstName, u.LastName, u.Role, u.Active, u.EmailVerified, u.Data, u.Password,
			ts(u.Created), ts(u.Updated), ts(u.LastLogin))
	}
	toks, _, err := s.FindAccessTokens(identity.TokenFilter{Sort: "id", Limit: 100})
	if err != nil {
		t.Fatal(err)
	}
	for _, tok := range toks {
		fmt.Fprintf(&b, "token id=%s kind=%s owner=%s name=%q read_only=%v expires=%s created=%s updated=%s last_used=%s\n",
			tok.ID, tok.Kind, tok.Owner, tok.Name, tok.ReadOnly, ts(tok.Expires), ts(tok.Created), ts(tok.Updated), ts(tok.LastUsed))
	}
	for _, svc := range testkit.Items(s.FindServices(identity.ServiceFilter{})) {
		fmt.Fprintf(&b, "service name=%q type=%q token_id=%s created=%s\n", svc.Name, svc.Type, svc.TokenID, ts(svc.Created))
		for _, e := range svc.Endpoints {
			fmt.Fprintf(&b, "  endpoint url=%q version=%q region=%q\n", e.PublicURL, e.VersionID, e.Region)
		}
	}
	for _, r := range testkit.Items(s.FindResources(identity.ResourceFilter{})) {
		fmt.Fprintf(&b, "resource name=%q unit=%q description=%q service=%q in_projects=%v uplimit=%d project_default=%d created=%s\n",
			r.Name, r.Unit, r.Description, r.Service, r.AllowInProjects, r.UpLimit, r.ProjectDefault, ts(r.Created))
	}
	for _, p := range testkit.Items(s.FindProjects(identity.ProjectFilter{})) {
		fmt.Fprintf(&b, "project uuid=%s name=%q owner=%s state=%s base=%v created=%s updated=%s\n",
			p.UUID, p.Name, p.Owner, p.State, p.Base, ts(p.Created), ts(p.Updated))
		for _, r := range slices.Sorted(maps.Keys(p.Policies)) {
			fmt.Fprintf(&b, "  policy resource=%q project_capacity=%d member_capacity=%d\n", r, p.Policies[r].ProjectCapacity, p.Policies[r].MemberCapacity)
		}
		for _, m := range p.Members {
			fmt.Fprintf(&b, "  member user=%q group=%q role=%s\n", m.User, m.Group, m.Role)
		}
	}
	for _, g := range testkit.Items(s.FindGroups(identity.GroupFilter{})) {
		fmt.Fprintf(&b, "group name=%q members=%v created=%s\n", g.Name, g.Members, ts(g.Created))
	}
	return b.String()
}

// ddOutbox renders every outbox event as the relay publishes it: subject,
// message id, payload.
func ddOutbox(t *testing.T, l *ledger.Ledger) string {
	t.Helper()
	evs, err := l.Outbox(0, 10000)
	if err != nil {
		t.Fatal(err)
	}
	var b strings.Builder
	for _, e := range evs {
		subject, id, payload := events.Render(l.ID(), e)
		fmt.Fprintf(&b, "%s %s %s\n", subject, id, payload)
	}
	return b.String()
}

func compareDataDirGolden(t *testing.T, name, got string) {
	t.Helper()
	path := filepath.Join(dataDirV1, name)
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if n, gl, wl := testkit.FirstLineDiff(got, string(want)); n > 0 {
		t.Errorf("the data directory reads differently from %s (line %d):\n got %s\nwant %s", path, n, gl, wl)
	}
}

// generateDataDir writes testdata/datadir-v1: the ledger directory after a
// fixed sequence of changes, with a fixed clock and a fixed random source
// (uuids, secrets, the database id), then view.golden and outbox.golden as
// the directory reads.
func generateDataDir(t *testing.T) {
	if _, err := os.Stat(dataDirV1); err == nil {
		t.Fatalf("%s exists: it is what an earlier version wrote, and is not rewritten; remove it first to make it again on purpose", dataDirV1)
	} else if !errors.Is(err, fs.ErrNotExist) {
		t.Fatal(err)
	}
	cryptotest.SetGlobalRandom(t, 1)
	ctx := context.Background()
	clock := testkit.NewClock(ddStart)
	// A small memtable: most records reach sstables, as in a database that
	// has run a while, and the last ones stay in the WAL.
	work := filepath.Join(t.TempDir(), "ledger")
	l, s, closeLedger := ddOpenWith(t, work, clock, 16<<10)
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	tick := func() { clock.Advance(time.Second) }

	// Users, a service and its resources (the base holdings of each user).
	alice, err := s.Register(ctx, identity.NewUser{Username: ddAlice, Password: ddPassword, FirstName: "Alice", LastName: "Archer"})
	must(err)
	tick()
	_, _, err = s.CreateService(ctx, identity.NewService{Name: ddService, Type: "compute-api",
		Endpoints: []identity.Endpoint{{PublicURL: "https://compute.example.com/v2", VersionID: "v2", Region: "north"}}})
	must(err)
	tick()
	_, err = s.CreateResource(ctx, identity.Resource{Name: ddVM, Unit: "VM", Description: "virtual machines",
		Service: ddService, AllowInProjects: true, UpLimit: 2, ProjectDefault: 5})
	must(err)
	tick()
	_, err = s.CreateResource(ctx, identity.Resource{Name: ddRAM, Unit: "MiB", Description: "memory",
		Service: ddService, AllowInProjects: true, UpLimit: 4096, ProjectDefault: 8192})
	must(err)
	tick()
	bob, err := s.CreateUser(ctx, identity.NewUser{Username: ddBob, Password: ddPassword, DisplayName: "Bob B.", Active: true})
	must(err)
	tick()
	dn := "Bob Builder"
	_, err = s.UpdateUser(ctx, bob.UUID, identity.UserUpdate{DisplayName: &dn, Data: json.RawMessage(`{"team":"ops"}`)})
	must(err)
	tick()

	// A group, a project with the group in it.
	_, err = s.CreateGroup(ctx, "ops")
	must(err)
	_, err = s.AddGroupMember(ctx, "ops", bob.UUID)
	must(err)
	tick()
	alpha, err := s.CreateProject(ctx, identity.NewProject{Name: "alpha", Owner: alice.UUID, Policies: map[string]identity.Policy{
		ddVM: {ProjectCapacity: 10, MemberCapacity: 3}, ddRAM: {ProjectCapacity: 16384, MemberCapacity: 4096}}})
	must(err)
	_, err = s.AddProjectMember(ctx, alpha.UUID, identity.Member{Group: "ops", Role: identity.MemberMember})
	must(err)
	tick()

	// Tokens: an imported secret (the test's), a personal token, a session;
	// a password reset.
	_, err = s.ImportAccessToken(ctx, alice.UUID, "datadir", ddSecret)
	must(err)
	_, _, err = s.CreateAccessToken(ctx, bob.UUID, "laptop", ddExpire.Add(365*24*time.Hour), true)
	must(err)
	_, _, _, err = s.Login(ctx, ddBob, ddPassword, identity.Origin{})
	must(err)
	must(s.RequestPasswordReset(ctx, ddBob))
	tick()

	// Holdings and commissions.
	aliceVM := holdings.Key{Holder: "user:" + alice.UUID, Source: holdings.SourceOf("project:" + alice.UUID), Resource: ddVM}
	aliceProjectVM := holdings.Key{Holder: "project:" + alice.UUID, Source: holdings.NullSource, Resource: ddVM}
	alphaRAM := holdings.Key{Holder: "project:" + alpha.UUID, Source: holdings.NullSource, Resource: ddRAM}
	bobAlphaRAM := holdings.Key{Holder: "user:" + bob.UUID, Source: holdings.SourceOf("project:" + alpha.UUID), Resource: ddRAM}
	pool := holdings.Key{Holder: "project:pool", Source: holdings.NullSource, Resource: "storage.disk"}
	gone := holdings.Key{Holder: "project:pool", Source: holdings.NullSource, Resource: "storage.tape"}
	must(l.SetHoldings(ctx, []ledger.HoldingSetting{{Key: pool, Limit: 1 << 40}, {Key: gone, Limit: 7}}))
	tick()
	issue := func(req ledger.IssueRequest) uint64 {
		t.Helper()
		res, err := l.Issue(ctx, req)
		must(err)
		tick()
		return res.Serial
	}
	s1 := issue(ledger.IssueRequest{Client: ddService, Name: "vm-1", // accepted
		Provisions: []holdings.Provision{{Key: aliceVM, Quantity: 1}, {Key: aliceProjectVM, Quantity: 1}}})
	must(l.Resolve(ctx, ddService, s1, true, "booted"))
	tick()
	issue(ddIssue2(bob, alpha.UUID))                                  // 2: pending, idempotent
	issue(ledger.IssueRequest{Client: ddService, Name: "ram for bob", // 3: pending
		Provisions: []holdings.Provision{{Key: bobAlphaRAM, Quantity: 2048}, {Key: alphaRAM, Quantity: 2048}}})
	s4 := issue(ledger.IssueRequest{Client: "storage", Name: "disk", Force: true, // rejected
		Provisions: []holdings.Provision{{Key: pool, Quantity: 1 << 30}}})
	must(l.Resolve(ctx, "storage", s4, false, "quota check failed"))
	tick()
	issue(ledger.IssueRequest{Client: ddService, Name: "vm-5 (expires)", TTL: time.Minute, // expired below
		Provisions: []holdings.Provision{{Key: bobAlphaRAM, Quantity: 512}}})
	clock.Advance(2 * time.Minute)
	must(l.ExpireDue(ctx))
	issue(ledger.IssueRequest{Client: ddService, Name: "vm-6 (a month to live)", TTL: 30 * 24 * time.Hour, // pending
		Provisions: []holdings.Provision{{Key: alphaRAM, Quantity: 1024}}})
	issue(ddIssue7(alice))                                                          // 7: accepted at once, idempotent
	issue(ledger.IssueRequest{Client: "storage", Name: "release", AutoAccept: true, // 8: a release, accepted
		Provisions: []holdings.Provision{{Key: aliceVM, Quantity: -1}}})
	must(l.DeleteHoldings(ctx, []holdings.Key{gone}))
	if clock.Now().After(ddRead) {
		t.Fatalf("generation ended at %s, after the test's clock %s", clock.Now(), ddRead)
	}

	// What the live stores read, to compare with the directory read back.
	live, liveOutbox := ddView(t, l, s), ddOutbox(t, l)

	// The directory as a clean shutdown leaves it, then the golden files
	// from it opened again.
	closeLedger()
	out := filepath.Join(dataDirV1, "ledger")
	must(os.MkdirAll(dataDirV1, 0o755))
	must(os.CopyFS(out, os.DirFS(work)))
	must(os.Remove(filepath.Join(out, "LOCK"))) // Pebble's lock file: nothing in it
	copyDir := filepath.Join(t.TempDir(), "reread")
	must(os.CopyFS(copyDir, os.DirFS(out)))
	l3, s3, _ := ddOpen(t, copyDir, clock)
	view, outbox := ddView(t, l3, s3), ddOutbox(t, l3)
	if view != live || outbox != liveOutbox {
		t.Fatalf("the checkpoint reads differently from the stores that wrote it:\n%s\n%s", view, live)
	}
	must(os.WriteFile(filepath.Join(dataDirV1, "view.golden"), []byte(view), 0o644))
	must(os.WriteFile(filepath.Join(dataDirV1, "outbox.golden"), []byte(outbox), 0o644))
	t.Logf("wrote %s", dataDirV1)
}

package identity

import (
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"slices"
	"strings"
	"testing"

	"github.com/cockroachdb/pebble/v2/vfs"
	"pgregory.net/rapid"

	"github.com/quotaledger/quotaledger/failure"
	"github.com/quotaledger/quotaledger/holdings"
	"github.com/quotaledger/quotaledger/internal/testkit"
	"github.com/quotaledger/quotaledger/ledger"
)

// projectFixture is a store on a ledger on an in-memory filesystem, with
// one service ("cyclades") registered. Its tb is a *testing.T or a
// *rapid.T.
type projectFixture struct {
	*stores
	n int // users made
}

func newProjectFixture(tb testkit.TB) *projectFixture {
	tb.Helper()
	f := &projectFixture{stores: openStores(tb, vfs.NewMem(), "", Options{})}
	if _, _, err := f.s.CreateService(context.Background(), NewService{Name: "cyclades", Type: "compute"}); err != nil {
		tb.Fatalf("register service: %v", err)
	}
	return f
}

// user creates a user (with their base project) and returns their uuid.
func (f *projectFixture) user() string {
	f.tb.Helper()
	f.n++
	u, err := f.s.CreateUser(context.Background(), NewUser{
		Username: fmt.Sprintf("user%d@example.org", f.n), Password: "correct horse battery", Active: true})
	if err != nil {
		f.tb.Fatalf("create user: %v", err)
	}
	return u.UUID
}

// resource registers cyclades.<name>.
func (f *projectFixture) resource(name string, allow bool, uplimit, projectDefault int64) string {
	f.tb.Helper()
	r, err := f.s.CreateResource(context.Background(), Resource{Name: "cyclades." + name, Service: "cyclades",
		AllowInProjects: allow, UpLimit: uplimit, ProjectDefault: projectDefault})
	if err != nil {
		f.tb.Fatalf("register resource: %v", err)
	}
	return r.Name
}

func (f *projectFixture) project(owner string, policies map[string]Policy) *Project {
	f.tb.Helper()
	p, err := f.s.CreateProject(context.Background(), NewProject{Name: "p", Owner: owner, Policies: policies})
	if err != nil {
		f.tb.Fatalf("create project: %v", err)
	}
	return p
}

// limit is the limit of a holding, -1 if there is none.
func (f *projectFixture) limit(k holdings.Key) int64 {
	v, ok := f.l.FindHoldingByKey(k)
	if !ok {
		return -1
	}
	return v.Limit
}

// wantLimits checks holdings' limits (-1: no holding).
func (f *projectFixture) wantLimits(want map[holdings.Key]int64) {
	f.tb.Helper()
	for _, k := range slices.SortedFunc(maps.Keys(want), compareHoldingKeys) {
		if got := f.limit(k); got != want[k] {
			f.tb.Fatalf("limit of %s = %d, want %d", k, got, want[k])
		}
	}
}

// events returns the payloads of the outbox events of type typ.
func (f *projectFixture) events(typ string) []map[string]any {
	f.tb.Helper()
	evs, err := f.l.Outbox(0, 100000)
	if err != nil {
		f.tb.Fatalf("outbox: %v", err)
	}
	var out []map[string]any
	for _, e := range evs {
		if e.Type == typ {
			var m map[string]any
			if err := json.Unmarshal(e.Data, &m); err != nil {
				f.tb.Fatalf("event %s: %v", typ, err)
			}
			out = append(out, m)
		}
	}
	return out
}

func projectKey(p, r string) holdings.Key {
	return holdings.Key{Holder: "project:" + p, Source: holdings.NullSource, Resource: r}
}

func memberHolding(u, p, r string) holdings.Key {
	return holdings.Key{Holder: "user:" + u, Source: holdings.SourceOf("project:" + p), Resource: r}
}

// wantErr checks that err has the code want ("": no error).
func wantErr(tb testkit.TB, what string, err error, want failure.Code) {
	tb.Helper()
	if got := failure.CodeOf(err); got != want {
		tb.Fatalf("%s: error %v (%q), want %q", what, err, got, want)
	}
	if err != nil && strings.HasPrefix(err.Error(), "identity:") {
		tb.Fatalf("%s: message %q names the package", what, err)
	}
}

func TestCreateProject(t *testing.T) {
	ctx := context.Background()
	f := newProjectFixture(t)
	vm := f.resource("vm", true, 2, 5)
	ram := f.resource("ram", true, 1024, 4096)
	disk := f.resource("disk", false, 10, 0)
	owner := f.user()
	for _, tc := range []struct {
		name string
		in   NewProject
		err  failure.Code
	}{
		{"OK", NewProject{Name: "web", Owner: owner, Policies: map[string]Policy{
			vm: {ProjectCapacity: 10, MemberCapacity: 3}, ram: {ProjectCapacity: 0, MemberCapacity: 0}}}, ""},
		{"OKNoPolicies", NewProject{Name: "empty", Owner: owner}, ""},
		{"OKLongName", NewProject{Name: strings.Repeat("é", maxProjectName), Owner: owner}, ""},
		{"ErrInvalidEmptyName", NewProject{Name: "", Owner: owner}, failure.Invalid},
		{"ErrInvalidBlankName", NewProject{Name: "  ", Owner: owner}, failure.Invalid},
		{"ErrInvalidLongName", NewProject{Name: strings.Repeat("é", maxProjectName+1), Owner: owner}, failure.Invalid},
		{"ErrInvalidUTF8", NewProject{Name: "a\xff", Owner: owner}, failure.Invalid},
		{"ErrInvalidControl", NewProject{Name: "a\nb", Owner: owner}, failure.Invalid},
		{"ErrInvalidOwner", NewProject{Name: "x", Owner: "nobody"}, failure.Invalid},
		{"ErrInvalidResource", NewProject{Name: "x", Owner: owner, Policies: map[string]Policy{"cyclades.gpu": {}}}, failure.Invalid},
		{"ErrInvalidNotInProjects", NewProject{Name: "x", Owner: owner, Policies: map[string]Policy{disk: {}}}, failure.Invalid},
		{"ErrInvalidNegative", NewProject{Name: "x", Owner: owner, Policies: map[string]Policy{vm: {ProjectCapacity: 1, MemberCapacity: -1}}}, failure.Invalid},
	} {
		t.Run(tc.name, func(t *testing.T) {
			nProjects, nHoldings := len(testkit.Items(f.s.FindProjects(ProjectFilter{}))), len(f.l.FindHoldings(ledger.HoldingFilter{}))
			p, err := f.s.CreateProject(ctx, tc.in)
			wantErr(t, "create", err, tc.err)
			if err != nil {
				if len(testkit.Items(f.s.FindProjects(ProjectFilter{}))) != nProjects || len(f.l.FindHoldings(ledger.HoldingFilter{})) != nHoldings {
					t.Fatal("a failed create changed something")
				}
				return
			}
			if p.State != ProjectActive || p.Base || p.Owner != owner || p.Name != tc.in.Name ||
				!slices.Equal(p.Members, []Member{{User: owner, Role: MemberAdmin}}) || len(p.Policies) != len(tc.in.Policies) {
				t.Fatalf("project %+v", p)
			}
			if got, err := f.s.FindProjectByID(p.UUID); err != nil || got != p {
				t.Fatalf("get: %+v %v", got, err)
			}
			if !slices.Contains(testkit.Items(f.s.FindProjects(ProjectFilter{Member: owner})), p) {
				t.Fatal("not among the owner's projects")
			}
			want := map[holdings.Key]int64{}
			for r, pol := range tc.in.Policies {
				want[projectKey(p.UUID, r)] = pol.ProjectCapacity
				want[memberHolding(owner, p.UUID, r)] = pol.MemberCapacity
			}
			for _, r := range []string{vm, ram, disk} {
				if _, ok := tc.in.Policies[r]; !ok {
					want[projectKey(p.UUID, r)] = -1
					want[memberHolding(owner, p.UUID, r)] = -1
				}
			}
			f.wantLimits(want)
		})
	}
	if _, err := f.s.FindProjectByID("nope"); failure.CodeOf(err) != failure.NotFound {
		t.Fatalf("get unknown: %v", err)
	}
	if evs := f.events("identity.project.created"); len(evs) != 3 {
		t.Fatalf("%d created events, want 3", len(evs))
	}
}

func TestProjectMembers(t *testing.T) {
	ctx := context.Background()
	f := newProjectFixture(t)
	vm := f.resource("vm", true, 2, 5)
	owner, alice, bob, carol := f.user(), f.user(), f.user(), f.user()
	p := f.project(owner, map[string]Policy{vm: {ProjectCapacity: 10, MemberCapacity: 3}}).UUID
	if _, err := f.s.CreateGroup(ctx, "ops"); err != nil {
		t.Fatal(err)
	}
	if _, err := f.s.AddGroupMember(ctx, "ops", bob); err != nil {
		t.Fatal(err)
	}
	if _, err := f.s.AddGroupMember(ctx, "ops", carol); err != nil {
		t.Fatal(err)
	}
	type step struct {
		name string
		do   func() error
		err  failure.Code
		want map[holdings.Key]int64
	}
	add := func(m Member) func() error {
		return func() error { _, err := f.s.AddProjectMember(ctx, p, m); return err }
	}
	remove := func(m Member) func() error {
		return func() error { _, err := f.s.RemoveProjectMember(ctx, p, m); return err }
	}
	role := func(m Member) func() error {
		return func() error { _, err := f.s.SetProjectMemberRole(ctx, p, m); return err }
	}
	held := func(lo, lb, lc int64) map[holdings.Key]int64 {
		return map[holdings.Key]int64{memberHolding(owner, p, vm): 3, memberHolding(alice, p, vm): lo,
			memberHolding(bob, p, vm): lb, memberHolding(carol, p, vm): lc, projectKey(p, vm): 10}
	}
	for _, st := range []step{
		{"OKAddUser", add(Member{User: alice, Role: MemberReader}), "", held(3, -1, -1)},
		{"ErrConflictTwice", add(Member{User: alice}), failure.Conflict, held(3, -1, -1)},
		{"ErrInvalidNoUser", add(Member{User: "nobody"}), failure.Invalid, held(3, -1, -1)},
		{"ErrInvalidNoGroup", add(Member{Group: "nobody"}), failure.Invalid, held(3, -1, -1)},
		{"ErrInvalidBoth", add(Member{User: bob, Group: "ops"}), failure.Invalid, held(3, -1, -1)},
		{"ErrInvalidNeither", add(Member{Role: MemberAdmin}), failure.Invalid, held(3, -1, -1)},
		{"ErrInvalidRole", add(Member{User: bob, Role: "owner"}), failure.Invalid, held(3, -1, -1)},
		{"ErrNotFoundProject", func() error { _, err := f.s.AddProjectMember(ctx, "nope", Member{User: bob}); return err }, failure.NotFound, held(3, -1, -1)},
		{"OKAddGroup", add(Member{Group: "ops"}), "", held(3, 3, 3)},
		{"OKAddUserAlsoInGroup", add(Member{User: bob, Role: MemberAdmin}), "", held(3, 3, 3)},
		{"OKRemoveGroupKeepsDirect", remove(Member{Group: "ops"}), "", held(3, 3, 0)},
		{"ErrNotFoundNotMember", remove(Member{Group: "ops"}), failure.NotFound, held(3, 3, 0)},
		{"ErrForbiddenOwnerLeaves", remove(Member{User: owner}), failure.Forbidden, held(3, 3, 0)},
		{"OKRejoin", add(Member{Group: "ops", Role: MemberReader}), "", held(3, 3, 3)},
		{"OKRemoveDirectKeepsGroup", remove(Member{User: bob}), "", held(3, 3, 3)},
		{"OKRemoveUser", remove(Member{User: alice}), "", held(0, 3, 3)},
		{"OKSetRole", role(Member{Group: "ops", Role: MemberAdmin}), "", held(0, 3, 3)},
		{"ErrNotFoundSetRole", role(Member{User: alice, Role: MemberAdmin}), failure.NotFound, held(0, 3, 3)},
		{"ErrForbiddenDemoteOwner", role(Member{User: owner, Role: MemberReader}), failure.Forbidden, held(0, 3, 3)},
	} {
		t.Run(st.name, func(t *testing.T) {
			before, _ := f.s.FindProjectByID(p)
			err := st.do()
			wantErr(t, st.name, err, st.err)
			if after, _ := f.s.FindProjectByID(p); err != nil && after != before {
				t.Fatal("a failed change changed the project")
			}
			f.wantLimits(st.want)
		})
	}
	got, _ := f.s.FindProjectByID(p)
	want := []Member{{User: owner, Role: MemberAdmin}, {Group: "ops", Role: MemberAdmin}}
	if !slices.Equal(got.Members, want) {
		t.Fatalf("members %+v, want %+v", got.Members, want)
	}
	members, err := f.s.ProjectMemberRoles(p)
	if err != nil || !maps.Equal(members, map[string]MemberRole{owner: MemberAdmin, bob: MemberAdmin, carol: MemberAdmin}) {
		t.Fatalf("project members %v %v", members, err)
	}
	for u, n := range map[string]int{owner: 2, alice: 1, bob: 2, carol: 2} {
		if ps := testkit.Items(f.s.FindProjects(ProjectFilter{Member: u})); len(ps) != n {
			t.Fatalf("user %s is in %d projects, want %d", u, len(ps), n)
		}
	}
	evs := f.events("identity.project.membership.changed")
	if len(evs) != 8 { // the group's users joined it before it joined p: no event then
		t.Fatalf("%d membership events, want 8", len(evs))
	}
	if e := evs[1]; e["action"] != "added" || fmt.Sprint(e["joined"]) != fmt.Sprint([]string{min(bob, carol), max(bob, carol)}) {
		t.Fatalf("group join event %v", e)
	}
}

func TestSetProjectPolicies(t *testing.T) {
	ctx := context.Background()
	f := newProjectFixture(t)
	vm := f.resource("vm", true, 2, 5)
	ram := f.resource("ram", true, 1024, 4096)
	disk := f.resource("disk", false, 10, 0)
	owner, alice := f.user(), f.user()
	p := f.project(owner, map[string]Policy{vm: {ProjectCapacity: 10, MemberCapacity: 3}}).UUID
	if _, err := f.s.AddProjectMember(ctx, p, Member{User: alice}); err != nil {
		t.Fatal(err)
	}
	// Usage in the project stays as it is through changes of limits.
	if _, err := f.l.Issue(ctx, ledger.IssueRequest{Client: "cyclades", AutoAccept: true, Provisions: []holdings.Provision{
		{Key: memberHolding(alice, p, vm), Quantity: 2}, {Key: projectKey(p, vm), Quantity: 2}}}); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name     string
		project  string
		policies map[string]Policy
		err      failure.Code
		want     map[holdings.Key]int64
	}{
		{"OKRaise", p, map[string]Policy{vm: {ProjectCapacity: 20, MemberCapacity: 8}}, "", map[holdings.Key]int64{
			projectKey(p, vm): 20, memberHolding(owner, p, vm): 8, memberHolding(alice, p, vm): 8}},
		{"OKBelowUsageAndNewResource", p, map[string]Policy{vm: {ProjectCapacity: 1, MemberCapacity: 1}, ram: {ProjectCapacity: 100, MemberCapacity: 50}}, "", map[holdings.Key]int64{
			projectKey(p, vm): 1, memberHolding(owner, p, vm): 1, memberHolding(alice, p, vm): 1,
			projectKey(p, ram): 100, memberHolding(owner, p, ram): 50, memberHolding(alice, p, ram): 50}},
		{"OKDropResource", p, map[string]Policy{ram: {ProjectCapacity: 100, MemberCapacity: 50}}, "", map[holdings.Key]int64{
			projectKey(p, vm): 0, memberHolding(owner, p, vm): 0, memberHolding(alice, p, vm): 0,
			projectKey(p, ram): 100, memberHolding(owner, p, ram): 50, memberHolding(alice, p, ram): 50}},
		{"ErrInvalidNotInProjects", p, map[string]Policy{disk: {}}, failure.Invalid, map[holdings.Key]int64{projectKey(p, disk): -1, projectKey(p, ram): 100}},
		{"ErrInvalidNegative", p, map[string]Policy{ram: {ProjectCapacity: -1}}, failure.Invalid, map[holdings.Key]int64{projectKey(p, ram): 100}},
		{"ErrInvalidUnknown", p, map[string]Policy{"cyclades.gpu": {}}, failure.Invalid, map[holdings.Key]int64{projectKey(p, ram): 100}},
		{"ErrNotFound", "nope", nil, failure.NotFound, nil},
		{"OKNone", p, nil, "", map[holdings.Key]int64{
			projectKey(p, vm): 0, memberHolding(owner, p, vm): 0, projectKey(p, ram): 0, memberHolding(alice, p, ram): 0}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := f.s.SetProjectPolicies(ctx, tc.project, tc.policies)
			wantErr(t, "set policies", err, tc.err)
			if err == nil && len(got.Policies) != len(tc.policies) {
				t.Fatalf("policies %v", got.Policies)
			}
			f.wantLimits(tc.want)
			for _, k := range []holdings.Key{memberHolding(alice, p, vm), projectKey(p, vm)} {
				if v, _ := f.l.FindHoldingByKey(k); v.UsageMin != 2 || v.UsageMax != 2 {
					t.Fatalf("usage of %s changed: %+v", k, v)
				}
			}
		})
	}
}

func TestDeleteProject(t *testing.T) {
	ctx := context.Background()
	f := newProjectFixture(t)
	vm := f.resource("vm", true, 2, 5)
	owner, alice := f.user(), f.user()
	p := f.project(owner, map[string]Policy{vm: {ProjectCapacity: 10, MemberCapacity: 3}}).UUID
	if _, err := f.s.AddProjectMember(ctx, p, Member{User: alice}); err != nil {
		t.Fatal(err)
	}
	wantErr(t, "delete unknown", f.s.DeleteProject(ctx, "nope"), failure.NotFound)
	wantErr(t, "delete base", f.s.DeleteProject(ctx, owner), failure.Forbidden)
	wantErr(t, "delete", f.s.DeleteProject(ctx, p), "")
	f.wantLimits(map[holdings.Key]int64{projectKey(p, vm): 0, memberHolding(owner, p, vm): 0, memberHolding(alice, p, vm): 0})
	got, err := f.s.FindProjectByID(p)
	if err != nil || got.State != ProjectDeleted {
		t.Fatalf("deleted project: %+v %v", got, err)
	}
	if ps := testkit.Items(f.s.FindProjects(ProjectFilter{Member: alice})); len(ps) != 1 || ps[0].UUID != alice {
		t.Fatalf("alice's projects after the delete: %v", ps)
	}
	// A member's list leaves a deleted project out, the owner's too (who
	// stays its admin); the list of every project keeps it.
	if ps := testkit.Items(f.s.FindProjects(ProjectFilter{Member: owner})); len(ps) != 1 || ps[0].UUID != owner {
		t.Fatalf("the owner's projects after the delete: %v", ps)
	}
	if ps := testkit.Items(f.s.FindProjects(ProjectFilter{})); !slices.ContainsFunc(ps, func(q *Project) bool { return q.UUID == p }) {
		t.Fatalf("every project after the delete: %v, want %s among them", ps, p)
	}
	wantErr(t, "delete twice", f.s.DeleteProject(ctx, p), failure.Conflict)
	_, err = f.s.AddProjectMember(ctx, p, Member{User: f.user()})
	wantErr(t, "join deleted", err, failure.Conflict)
	_, err = f.s.SetProjectPolicies(ctx, p, map[string]Policy{vm: {ProjectCapacity: 1}})
	wantErr(t, "policies of deleted", err, failure.Conflict)
	f.wantLimits(map[holdings.Key]int64{projectKey(p, vm): 0})
	// A resource registered later leaves the deleted project alone.
	ram := f.resource("ram", true, 1024, 4096)
	f.wantLimits(map[holdings.Key]int64{projectKey(p, ram): -1, memberHolding(alice, p, ram): -1})
	if evs := f.events("identity.project.deleted"); len(evs) != 1 || fmt.Sprint(evs[0]["left"]) != fmt.Sprint([]string{min(owner, alice), max(owner, alice)}) {
		t.Fatalf("deleted events %v", evs)
	}
}

func TestBaseProject(t *testing.T) {
	ctx := context.Background()
	f := newProjectFixture(t)
	vm := f.resource("vm", true, 2, 5)
	disk := f.resource("disk", false, 10, 0)
	owner, alice := f.user(), f.user()
	base, err := f.s.FindProjectByID(owner)
	if err != nil || !base.Base {
		t.Fatalf("base project %+v %v", base, err)
	}
	if ps := testkit.Items(f.s.FindProjects(ProjectFilter{Member: owner})); len(ps) != 1 || ps[0] != base {
		t.Fatalf("projects of a new user: %v", ps)
	}
	_, err = f.s.AddProjectMember(ctx, owner, Member{User: alice})
	wantErr(t, "join a base project", err, failure.Forbidden)
	_, err = f.s.AddProjectMember(ctx, owner, Member{Group: "nope"})
	wantErr(t, "group joins a base project", err, failure.Forbidden)
	_, err = f.s.RemoveProjectMember(ctx, owner, Member{User: owner})
	wantErr(t, "owner leaves the base project", err, failure.Forbidden)
	_, err = f.s.SetProjectMemberRole(ctx, owner, Member{User: owner, Role: MemberReader})
	wantErr(t, "role in a base project", err, failure.Forbidden)
	// An admin may set a base project's quotas, of any resource.
	_, err = f.s.SetProjectPolicies(ctx, owner, map[string]Policy{vm: {ProjectCapacity: 7, MemberCapacity: 6}, disk: {ProjectCapacity: 30, MemberCapacity: 20}})
	wantErr(t, "base policies", err, "")
	f.wantLimits(map[holdings.Key]int64{projectKey(owner, vm): 7, memberHolding(owner, owner, vm): 6,
		projectKey(owner, disk): 30, memberHolding(owner, owner, disk): 20, projectKey(alice, vm): 2})
}

func TestNewResourceForProjects(t *testing.T) {
	ctx := context.Background()
	f := newProjectFixture(t)
	vm := f.resource("vm", true, 2, 5)
	owner, alice, bob := f.user(), f.user(), f.user()
	p := f.project(owner, map[string]Policy{vm: {ProjectCapacity: 10, MemberCapacity: 3}}).UUID
	q := f.project(alice, nil).UUID
	if _, err := f.s.CreateGroup(ctx, "ops"); err != nil {
		t.Fatal(err)
	}
	if _, err := f.s.AddGroupMember(ctx, "ops", bob); err != nil {
		t.Fatal(err)
	}
	if _, err := f.s.AddProjectMember(ctx, p, Member{Group: "ops"}); err != nil {
		t.Fatal(err)
	}
	disk := f.resource("disk", false, 10, 50)
	ram := f.resource("ram", true, 1024, 4096)
	f.wantLimits(map[holdings.Key]int64{
		projectKey(p, disk): -1, memberHolding(owner, p, disk): -1, // not allowed in projects
		projectKey(p, ram): 4096, memberHolding(owner, p, ram): 4096, memberHolding(bob, p, ram): 4096,
		memberHolding(alice, p, ram): -1, projectKey(q, ram): 4096, memberHolding(alice, q, ram): 4096,
		projectKey(owner, ram): 1024, memberHolding(owner, owner, ram): 1024, // base: the uplimit
		projectKey(owner, disk): 10, memberHolding(bob, bob, disk): 10,
	})
	for _, id := range []string{p, q} {
		got, _ := f.s.FindProjectByID(id)
		if got.Policies[ram] != (Policy{ProjectCapacity: 4096, MemberCapacity: 4096}) {
			t.Fatalf("policies of %s: %v", id, got.Policies)
		}
		if _, ok := got.Policies[disk]; ok {
			t.Fatalf("policies of %s: %v", id, got.Policies)
		}
	}
	f.reopen()
	if got, _ := f.s.FindProjectByID(q); got.Policies[ram] != (Policy{ProjectCapacity: 4096, MemberCapacity: 4096}) {
		t.Fatalf("policies of %s after reopen: %v", q, got.Policies)
	}
}

func TestProjectsReopen(t *testing.T) {
	ctx := context.Background()
	f := newProjectFixture(t)
	vm := f.resource("vm", true, 2, 5)
	owner, alice, bob := f.user(), f.user(), f.user()
	p := f.project(owner, map[string]Policy{vm: {ProjectCapacity: 10, MemberCapacity: 3}}).UUID
	gone := f.project(owner, map[string]Policy{vm: {ProjectCapacity: 1, MemberCapacity: 1}}).UUID
	if _, err := f.s.CreateGroup(ctx, "ops"); err != nil {
		t.Fatal(err)
	}
	if _, err := f.s.AddGroupMember(ctx, "ops", bob); err != nil {
		t.Fatal(err)
	}
	if _, err := f.s.AddProjectMember(ctx, p, Member{Group: "ops", Role: MemberReader}); err != nil {
		t.Fatal(err)
	}
	if _, err := f.s.AddProjectMember(ctx, p, Member{User: alice}); err != nil {
		t.Fatal(err)
	}
	if err := f.s.DeleteProject(ctx, gone); err != nil {
		t.Fatal(err)
	}
	projects, groups, hs := testkit.Items(f.s.FindProjects(ProjectFilter{})), testkit.Items(f.s.FindGroups(GroupFilter{})), f.l.FindHoldings(ledger.HoldingFilter{})
	f.reopen()
	same := func(a, b any) bool {
		ja, _ := json.Marshal(a)
		jb, _ := json.Marshal(b)
		return string(ja) == string(jb)
	}
	if !same(testkit.Items(f.s.FindProjects(ProjectFilter{})), projects) || !same(testkit.Items(f.s.FindGroups(GroupFilter{})), groups) || !same(f.l.FindHoldings(ledger.HoldingFilter{}), hs) {
		t.Fatalf("after reopen: %+v %+v", testkit.Items(f.s.FindProjects(ProjectFilter{})), testkit.Items(f.s.FindGroups(GroupFilter{})))
	}
	if ps := testkit.Items(f.s.FindProjects(ProjectFilter{Member: bob})); len(ps) != 2 {
		t.Fatalf("bob's projects after reopen: %v", ps)
	}
	// And the reopened store goes on from there.
	if _, err := f.s.RemoveGroupMember(ctx, "ops", bob); err != nil {
		t.Fatal(err)
	}
	f.wantLimits(map[holdings.Key]int64{memberHolding(bob, p, vm): 0, memberHolding(alice, p, vm): 3})
}

// holdingsModel is the reference of TestProjectHoldingsProperty: what
// projects, groups and resources there are, and the usage put on holdings.
type holdingsModel struct {
	users     []string
	resources map[string]*Resource
	projects  map[string]*modelProject
	order     []string // project uuids, in creation order
	groups    map[string][]string
	usage     map[holdings.Key]int64
}

type modelProject struct {
	owner    string
	deleted  bool
	policies map[string]Policy
	users    map[string]MemberRole
	groups   map[string]MemberRole
}

// members is who the model counts as members of p, with their roles.
func (m *holdingsModel) members(p *modelProject) map[string]MemberRole {
	out := map[string]MemberRole{}
	if p.deleted {
		return out
	}
	add := func(u string, r MemberRole) {
		if roleRank(r) > roleRank(out[u]) {
			out[u] = r
		}
	}
	for u, r := range p.users {
		add(u, r)
	}
	for g, r := range p.groups {
		for _, u := range m.groups[g] {
			add(u, r)
		}
	}
	return out
}

// TestProjectHoldingsProperty runs random sequences of project, membership,
// group, policy and resource changes (with some usage and reopens in
// between) and checks after each step that every holding in the ledger has
// the limit the model's policies and memberships call for, and the usage
// put on it.
func TestProjectHoldingsProperty(t *testing.T) {
	rapid.Check(t, func(rt *rapid.T) {
		ctx := context.Background()
		f := newProjectFixture(rt)
		m := &holdingsModel{resources: map[string]*Resource{}, projects: map[string]*modelProject{},
			groups: map[string][]string{}, usage: map[holdings.Key]int64{}}
		register := func(name string, allow bool, def int64) {
			r := f.resource(name, allow, 3, def)
			res, _ := f.s.FindResourceByName(r)
			m.resources[r] = res
			if !allow {
				return
			}
			for _, p := range m.projects {
				if !p.deleted {
					p.policies[r] = Policy{ProjectCapacity: def, MemberCapacity: def}
				}
			}
		}
		register("vm", true, 2)
		register("ram", true, 0)
		register("disk", false, 1)
		for range 4 {
			m.users = append(m.users, f.user())
		}
		groupNames := []string{"ops", "dev", "qa"}
		extra := []string{"ip", "net"}

		drawProject := func(t *rapid.T) (string, *modelProject) {
			if len(m.order) == 0 || rapid.IntRange(0, 9).Draw(t, "unknown project") == 0 {
				return "nope", nil
			}
			id := rapid.SampledFrom(m.order).Draw(t, "project")
			return id, m.projects[id]
		}
		drawPolicies := func(t *rapid.T) map[string]Policy {
			pols := map[string]Policy{}
			for _, r := range slices.Sorted(maps.Keys(m.resources)) {
				if m.resources[r].AllowInProjects && rapid.Bool().Draw(t, "has "+r) {
					pols[r] = Policy{ProjectCapacity: rapid.Int64Range(0, 10).Draw(t, "project capacity"),
						MemberCapacity: rapid.Int64Range(0, 5).Draw(t, "member capacity")}
				}
			}
			return pols
		}
		drawMember := func(t *rapid.T) Member {
			roles := []MemberRole{MemberReader, MemberMember, MemberAdmin}
			mem := Member{Role: rapid.SampledFrom(roles).Draw(t, "role")}
			if rapid.Bool().Draw(t, "group") {
				mem.Group = rapid.SampledFrom(groupNames).Draw(t, "group name")
			} else {
				mem.User = rapid.SampledFrom(m.users).Draw(t, "user")
			}
			return mem
		}
		// liveErr is what a change of project id must fail with, if anything.
		liveErr := func(p *modelProject) failure.Code {
			switch {
			case p == nil:
				return failure.NotFound
			case p.deleted:
				return failure.Conflict
			}
			return ""
		}

		rt.Repeat(map[string]func(*rapid.T){
			"create project": func(t *rapid.T) {
				owner := rapid.SampledFrom(m.users).Draw(t, "owner")
				pols := drawPolicies(t)
				p, err := f.s.CreateProject(ctx, NewProject{Name: "p", Owner: owner, Policies: pols})
				wantErr(t, "create project", err, "")
				m.projects[p.UUID] = &modelProject{owner: owner, policies: pols,
					users: map[string]MemberRole{owner: MemberAdmin}, groups: map[string]MemberRole{}}
				m.order = append(m.order, p.UUID)
			},
			"add member": func(t *rapid.T) {
				id, p := drawProject(t)
				mem := drawMember(t)
				want := liveErr(p)
				switch {
				case want != "":
				case mem.Group != "" && m.groups[mem.Group] == nil:
					want = failure.Invalid
				case mem.User != "" && p.users[mem.User] != "" || mem.Group != "" && p.groups[mem.Group] != "":
					want = failure.Conflict
				}
				_, err := f.s.AddProjectMember(ctx, id, mem)
				wantErr(t, "add member", err, want)
				if want == "" && mem.User != "" {
					p.users[mem.User] = mem.Role
				} else if want == "" {
					p.groups[mem.Group] = mem.Role
				}
			},
			"remove member": func(t *rapid.T) {
				id, p := drawProject(t)
				mem := drawMember(t)
				want := liveErr(p)
				switch {
				case want != "":
				case mem.User == p.owner:
					want = failure.Forbidden
				case mem.User != "" && p.users[mem.User] == "" || mem.Group != "" && p.groups[mem.Group] == "":
					want = failure.NotFound
				}
				_, err := f.s.RemoveProjectMember(ctx, id, mem)
				wantErr(t, "remove member", err, want)
				if want == "" {
					delete(p.users, mem.User)
					delete(p.groups, mem.Group)
				}
			},
			"set role": func(t *rapid.T) {
				id, p := drawProject(t)
				mem := drawMember(t)
				want := liveErr(p)
				switch {
				case want != "":
				case mem.User == p.owner && mem.Role != MemberAdmin:
					want = failure.Forbidden
				case mem.User != "" && p.users[mem.User] == "" || mem.Group != "" && p.groups[mem.Group] == "":
					want = failure.NotFound
				}
				_, err := f.s.SetProjectMemberRole(ctx, id, mem)
				wantErr(t, "set role", err, want)
				if want == "" && mem.User != "" {
					p.users[mem.User] = mem.Role
				} else if want == "" {
					p.groups[mem.Group] = mem.Role
				}
			},
			"set policies": func(t *rapid.T) {
				id, p := drawProject(t)
				pols := drawPolicies(t)
				_, err := f.s.SetProjectPolicies(ctx, id, pols)
				wantErr(t, "set policies", err, liveErr(p))
				if err == nil {
					p.policies = pols
				}
			},
			"delete project": func(t *rapid.T) {
				id, p := drawProject(t)
				err := f.s.DeleteProject(ctx, id)
				wantErr(t, "delete project", err, liveErr(p))
				if err == nil {
					p.deleted = true
				}
			},
			"create group": func(t *rapid.T) {
				name := rapid.SampledFrom(groupNames).Draw(t, "group name")
				var want failure.Code
				if m.groups[name] != nil {
					want = failure.Conflict
				}
				_, err := f.s.CreateGroup(ctx, name)
				wantErr(t, "create group", err, want)
				if err == nil {
					m.groups[name] = []string{}
				}
			},
			"delete group": func(t *rapid.T) {
				name := rapid.SampledFrom(groupNames).Draw(t, "group name")
				var want failure.Code
				if m.groups[name] == nil {
					want = failure.NotFound
				}
				err := f.s.DeleteGroup(ctx, name)
				wantErr(t, "delete group", err, want)
				if err == nil {
					delete(m.groups, name)
					for _, p := range m.projects {
						delete(p.groups, name)
					}
				}
			},
			"group add user": func(t *rapid.T) {
				name := rapid.SampledFrom(groupNames).Draw(t, "group name")
				u := rapid.SampledFrom(m.users).Draw(t, "user")
				var want failure.Code
				switch {
				case m.groups[name] == nil:
					want = failure.NotFound
				case slices.Contains(m.groups[name], u):
					want = failure.Conflict
				}
				_, err := f.s.AddGroupMember(ctx, name, u)
				wantErr(t, "group add user", err, want)
				if err == nil {
					m.groups[name] = append(m.groups[name], u)
				}
			},
			"group remove user": func(t *rapid.T) {
				name := rapid.SampledFrom(groupNames).Draw(t, "group name")
				u := rapid.SampledFrom(m.users).Draw(t, "user")
				var want failure.Code
				if !slices.Contains(m.groups[name], u) {
					want = failure.NotFound
				}
				_, err := f.s.RemoveGroupMember(ctx, name, u)
				wantErr(t, "group remove user", err, want)
				if err == nil {
					m.groups[name] = slices.DeleteFunc(m.groups[name], func(x string) bool { return x == u })
				}
			},
			"register resource": func(t *rapid.T) {
				if len(extra) == 0 {
					t.Skip("no more resources")
				}
				name := extra[0]
				extra = extra[1:]
				register(name, rapid.Bool().Draw(t, "allow"), rapid.Int64Range(0, 4).Draw(t, "default"))
			},
			"use": func(t *rapid.T) {
				all := f.l.FindHoldings(ledger.HoldingFilter{})
				if len(all) == 0 {
					t.Skip("no holdings")
				}
				h := rapid.SampledFrom(all).Draw(t, "holding")
				q := rapid.Int64Range(1, 3).Draw(t, "quantity")
				_, err := f.l.Issue(ctx, ledger.IssueRequest{Client: "cyclades", Force: true, AutoAccept: true,
					Provisions: []holdings.Provision{{Key: h.Key, Quantity: q}}})
				wantErr(t, "use", err, "")
				m.usage[h.Key] += q
			},
			"reopen": func(t *rapid.T) {
				if rapid.IntRange(0, 4).Draw(t, "reopen") == 0 {
					f.reopen()
				}
			},
			"": func(t *rapid.T) { checkProjectHoldings(t, f, m) },
		})
	})
}

// checkProjectHoldings checks the store and every holding in the ledger
// against the model.
func checkProjectHoldings(t *rapid.T, f *projectFixture, m *holdingsModel) {
	t.Helper()
	want := map[holdings.Key]int64{}
	// Base projects: every resource at its uplimit, never touched here.
	for _, u := range m.users {
		for r, res := range m.resources {
			want[projectKey(u, r)] = res.UpLimit
			want[memberHolding(u, u, r)] = res.UpLimit
		}
	}
	projectsOf := map[string][]string{}
	for _, id := range m.order {
		p := m.projects[id]
		members := m.members(p)
		got, err := f.s.FindProjectByID(id)
		if err != nil {
			t.Fatalf("project %s: %v", id, err)
		}
		if got.State == ProjectDeleted != p.deleted || !maps.Equal(got.Policies, p.policies) {
			t.Fatalf("project %s is %+v, want policies %v, deleted %v", id, got, p.policies, p.deleted)
		}
		gotMembers, _ := f.s.ProjectMemberRoles(id)
		if !maps.Equal(gotMembers, members) {
			t.Fatalf("members of %s: %v, want %v", id, gotMembers, members)
		}
		if p.deleted {
			continue
		}
		for u := range members {
			projectsOf[u] = append(projectsOf[u], id)
		}
		for r, pol := range p.policies {
			want[projectKey(id, r)] = pol.ProjectCapacity
			for u := range members {
				want[memberHolding(u, id, r)] = pol.MemberCapacity
			}
		}
	}
	for _, u := range m.users {
		wantIDs := append([]string{u}, projectsOf[u]...)
		var gotIDs []string
		for _, p := range testkit.Items(f.s.FindProjects(ProjectFilter{Member: u})) {
			gotIDs = append(gotIDs, p.UUID)
		}
		slices.Sort(gotIDs)
		slices.Sort(wantIDs)
		if !slices.Equal(gotIDs, wantIDs) {
			t.Fatalf("projects of %s: %v, want %v", u, gotIDs, wantIDs)
		}
	}
	seen := map[holdings.Key]bool{}
	for _, h := range f.l.FindHoldings(ledger.HoldingFilter{}) {
		seen[h.Key] = true
		if h.Limit != want[h.Key] { // a holding no one calls for: limit 0
			t.Fatalf("limit of %s = %d, want %d", h.Key, h.Limit, want[h.Key])
		}
		if u := m.usage[h.Key]; h.UsageMin != u || h.UsageMax != u {
			t.Fatalf("usage of %s = %d..%d, want %d", h.Key, h.UsageMin, h.UsageMax, u)
		}
	}
	for k := range want {
		if !seen[k] {
			t.Fatalf("no holding %s", k)
		}
	}
}

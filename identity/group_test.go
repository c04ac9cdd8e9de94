package identity

import (
	"context"
	"slices"
	"strings"
	"testing"

	"github.com/quotaledger/quotaledger/failure"
	"github.com/quotaledger/quotaledger/holdings"
	"github.com/quotaledger/quotaledger/internal/testkit"
)

func TestCreateGroup(t *testing.T) {
	ctx := context.Background()
	f := newProjectFixture(t)
	for _, tc := range []struct {
		name, group string
		err         failure.Code
	}{
		{"OK", "ops", ""},
		{"OKLongName", strings.Repeat("ö", maxGroupName), ""},
		{"OKSpaces", "site reliability", ""},
		{"ErrConflict", "ops", failure.Conflict},
		{"ErrInvalidEmpty", "", failure.Invalid},
		{"ErrInvalidBlank", " \t", failure.Invalid},
		{"ErrInvalidLong", strings.Repeat("ö", maxGroupName+1), failure.Invalid},
		{"ErrInvalidUTF8", "op\xfe", failure.Invalid},
		{"ErrInvalidControl", "op\x00s", failure.Invalid},
	} {
		t.Run(tc.name, func(t *testing.T) {
			n := len(testkit.Items(f.s.FindGroups(GroupFilter{})))
			g, err := f.s.CreateGroup(ctx, tc.group)
			wantErr(t, "create group", err, tc.err)
			if err != nil {
				if len(testkit.Items(f.s.FindGroups(GroupFilter{}))) != n {
					t.Fatal("a failed create changed the groups")
				}
				return
			}
			if g.Name != tc.group || g.Members == nil || len(g.Members) != 0 {
				t.Fatalf("group %+v", g)
			}
			if got, err := f.s.FindGroupByName(tc.group); err != nil || got != g {
				t.Fatalf("get %+v %v", got, err)
			}
		})
	}
	var names []string
	for _, g := range testkit.Items(f.s.FindGroups(GroupFilter{})) {
		names = append(names, g.Name)
	}
	if !slices.IsSorted(names) || len(names) != 3 {
		t.Fatalf("groups %q", names)
	}
	if _, err := f.s.FindGroupByName("nope"); failure.CodeOf(err) != failure.NotFound {
		t.Fatalf("get unknown group: %v", err)
	}
	if _, err := f.s.GroupUsers("nope"); failure.CodeOf(err) != failure.NotFound {
		t.Fatalf("users of an unknown group: %v", err)
	}
}

func TestGroupMembers(t *testing.T) {
	ctx := context.Background()
	f := newProjectFixture(t)
	vm := f.resource("vm", true, 2, 5)
	owner, alice, bob := f.user(), f.user(), f.user()
	p := f.project(owner, map[string]Policy{vm: {ProjectCapacity: 10, MemberCapacity: 3}}).UUID
	q := f.project(owner, map[string]Policy{vm: {ProjectCapacity: 4, MemberCapacity: 1}}).UUID
	for _, name := range []string{"ops", "dev"} {
		if _, err := f.s.CreateGroup(ctx, name); err != nil {
			t.Fatal(err)
		}
	}
	for _, m := range []struct {
		project string
		member  Member
	}{{p, Member{Group: "ops"}}, {q, Member{Group: "ops"}}, {q, Member{Group: "dev"}}, {p, Member{User: bob}}} {
		if _, err := f.s.AddProjectMember(ctx, m.project, m.member); err != nil {
			t.Fatal(err)
		}
	}
	addUser := func(g, u string) func() error {
		return func() error { _, err := f.s.AddGroupMember(ctx, g, u); return err }
	}
	removeUser := func(g, u string) func() error {
		return func() error { _, err := f.s.RemoveGroupMember(ctx, g, u); return err }
	}
	// held gives alice's and bob's holdings in p and q.
	held := func(ap, bp, aq, bq int64) map[holdings.Key]int64 {
		return map[holdings.Key]int64{memberHolding(alice, p, vm): ap, memberHolding(bob, p, vm): bp,
			memberHolding(alice, q, vm): aq, memberHolding(bob, q, vm): bq, projectKey(p, vm): 10, projectKey(q, vm): 4}
	}
	for _, st := range []struct {
		name  string
		do    func() error
		err   failure.Code
		users map[string][]string // group -> users
		want  map[holdings.Key]int64
	}{
		{"OKAdd", addUser("ops", alice), "", map[string][]string{"ops": {alice}, "dev": {}}, held(3, 3, 1, -1)},
		{"ErrConflictTwice", addUser("ops", alice), failure.Conflict, map[string][]string{"ops": {alice}}, held(3, 3, 1, -1)},
		{"ErrInvalidNoUser", addUser("ops", "nobody"), failure.Invalid, map[string][]string{"ops": {alice}}, held(3, 3, 1, -1)},
		{"ErrNotFoundNoGroup", addUser("nope", alice), failure.NotFound, nil, held(3, 3, 1, -1)},
		{"OKAddDirectMember", addUser("ops", bob), "", map[string][]string{"ops": {alice, bob}}, held(3, 3, 1, 1)},
		{"OKSecondGroup", addUser("dev", alice), "", map[string][]string{"dev": {alice}}, held(3, 3, 1, 1)},
		{"OKRemoveStillInOtherGroup", removeUser("ops", alice), "", map[string][]string{"ops": {bob}}, held(0, 3, 1, 1)},
		{"OKRemoveStillDirect", removeUser("ops", bob), "", map[string][]string{"ops": {}}, held(0, 3, 1, 0)},
		{"ErrNotFoundNotIn", removeUser("ops", bob), failure.NotFound, map[string][]string{"ops": {}}, held(0, 3, 1, 0)},
		{"ErrNotFoundRemoveNoGroup", removeUser("nope", bob), failure.NotFound, nil, held(0, 3, 1, 0)},
		{"OKRemoveLast", removeUser("dev", alice), "", map[string][]string{"dev": {}}, held(0, 3, 0, 0)},
		{"OKBackAgain", addUser("ops", alice), "", map[string][]string{"ops": {alice}}, held(3, 3, 1, 0)},
	} {
		t.Run(st.name, func(t *testing.T) {
			wantErr(t, st.name, st.do(), st.err)
			for g, want := range st.users {
				us, err := f.s.GroupUsers(g)
				if err != nil {
					t.Fatal(err)
				}
				var got []string
				for _, u := range us {
					got = append(got, u.UUID)
				}
				if !slices.Equal(got, want) {
					t.Fatalf("users of %s: %v, want %v", g, got, want)
				}
			}
			f.wantLimits(st.want)
		})
	}
	evs := f.events("identity.project.membership.changed")
	last := evs[len(evs)-1]
	if last["action"] != "group_changed" || last["project"] != p && last["project"] != q {
		t.Fatalf("last membership event %v", last)
	}
	if n := len(f.events("identity.group.membership.changed")); n != 7 {
		t.Fatalf("%d group membership events, want 7", n)
	}
}

func TestRenameGroup(t *testing.T) {
	ctx := context.Background()
	f := newProjectFixture(t)
	vm := f.resource("vm", true, 2, 5)
	owner, alice := f.user(), f.user()
	p := f.project(owner, map[string]Policy{vm: {ProjectCapacity: 10, MemberCapacity: 3}}).UUID
	for _, name := range []string{"ops", "dev"} {
		if _, err := f.s.CreateGroup(ctx, name); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := f.s.AddGroupMember(ctx, "ops", alice); err != nil {
		t.Fatal(err)
	}
	if _, err := f.s.AddProjectMember(ctx, p, Member{Group: "ops", Role: MemberReader}); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name, from, to string
		err            failure.Code
	}{
		{"ErrConflict", "ops", "dev", failure.Conflict},
		{"ErrNotFound", "nope", "sre", failure.NotFound},
		{"ErrInvalid", "ops", "", failure.Invalid},
		{"OK", "ops", "sre", ""},
		{"OKSameName", "sre", "sre", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			g, err := f.s.RenameGroup(ctx, tc.from, tc.to)
			wantErr(t, "rename", err, tc.err)
			if err == nil && (g.Name != tc.to || !slices.Equal(g.Members, []string{alice})) {
				t.Fatalf("renamed group %+v", g)
			}
		})
	}
	check := func() {
		t.Helper()
		if _, err := f.s.FindGroupByName("ops"); failure.CodeOf(err) != failure.NotFound {
			t.Fatalf("old name: %v", err)
		}
		got, _ := f.s.FindProjectByID(p)
		if !slices.Contains(got.Members, Member{Group: "sre", Role: MemberReader}) ||
			slices.ContainsFunc(got.Members, func(m Member) bool { return m.Group == "ops" }) {
			t.Fatalf("project members %+v", got.Members)
		}
		f.wantLimits(map[holdings.Key]int64{memberHolding(alice, p, vm): 3})
	}
	check()
	f.reopen()
	check()
	if _, err := f.s.RemoveGroupMember(ctx, "sre", alice); err != nil {
		t.Fatal(err)
	}
	f.wantLimits(map[holdings.Key]int64{memberHolding(alice, p, vm): 0})
}

func TestDeleteGroup(t *testing.T) {
	ctx := context.Background()
	f := newProjectFixture(t)
	vm := f.resource("vm", true, 2, 5)
	owner, alice, bob := f.user(), f.user(), f.user()
	p := f.project(owner, map[string]Policy{vm: {ProjectCapacity: 10, MemberCapacity: 3}}).UUID
	gone := f.project(owner, map[string]Policy{vm: {ProjectCapacity: 10, MemberCapacity: 3}}).UUID
	if _, err := f.s.CreateGroup(ctx, "ops"); err != nil {
		t.Fatal(err)
	}
	for _, u := range []string{alice, bob} {
		if _, err := f.s.AddGroupMember(ctx, "ops", u); err != nil {
			t.Fatal(err)
		}
	}
	for _, m := range []Member{{Group: "ops"}, {User: bob}} {
		if _, err := f.s.AddProjectMember(ctx, p, m); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := f.s.AddProjectMember(ctx, gone, Member{Group: "ops"}); err != nil {
		t.Fatal(err)
	}
	if err := f.s.DeleteProject(ctx, gone); err != nil {
		t.Fatal(err)
	}
	wantErr(t, "delete unknown group", f.s.DeleteGroup(ctx, "nope"), failure.NotFound)
	wantErr(t, "delete group", f.s.DeleteGroup(ctx, "ops"), "")
	wantErr(t, "delete group twice", f.s.DeleteGroup(ctx, "ops"), failure.NotFound)
	f.wantLimits(map[holdings.Key]int64{memberHolding(alice, p, vm): 0, memberHolding(bob, p, vm): 3,
		memberHolding(owner, p, vm): 3, memberHolding(alice, gone, vm): 0})
	for _, id := range []string{p, gone} {
		got, _ := f.s.FindProjectByID(id)
		if slices.ContainsFunc(got.Members, func(m Member) bool { return m.Group == "ops" }) {
			t.Fatalf("project %s still has the group: %+v", id, got.Members)
		}
	}
	f.reopen()
	if len(testkit.Items(f.s.FindGroups(GroupFilter{}))) != 0 {
		t.Fatalf("groups after reopen: %+v", testkit.Items(f.s.FindGroups(GroupFilter{})))
	}
	if ps := testkit.Items(f.s.FindProjects(ProjectFilter{Member: alice})); len(ps) != 1 {
		t.Fatalf("alice's projects: %+v", ps)
	}
	// The name is free again, and a new group of that name is not a member.
	if _, err := f.s.CreateGroup(ctx, "ops"); err != nil {
		t.Fatal(err)
	}
	if _, err := f.s.AddGroupMember(ctx, "ops", alice); err != nil {
		t.Fatal(err)
	}
	f.wantLimits(map[holdings.Key]int64{memberHolding(alice, p, vm): 0})
}

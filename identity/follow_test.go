package identity

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/quotaledger/quotaledger/internal/testkit"
	"github.com/quotaledger/quotaledger/internal/testkit/ledgertest"
	"github.com/quotaledger/quotaledger/ledger"
)

// memLog is a cluster's log in memory for one leader and its followers.
type memLog struct {
	mu   sync.Mutex
	recs [][]byte
}

func (m *memLog) Append(seq uint64, rec []byte) func() error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if seq != uint64(len(m.recs))+1 {
		return func() error { return errors.New("wrong last sequence") }
	}
	m.recs = append(m.recs, append([]byte(nil), rec...))
	return func() error { return nil }
}

// catchUp applies to f every record of the log it lacks.
func (m *memLog) catchUp(t *testing.T, f *ledger.Ledger) {
	t.Helper()
	m.mu.Lock()
	recs := slices.Clone(m.recs)
	m.mu.Unlock()
	for i, rec := range recs {
		if seq := uint64(i + 1); seq > f.Applied() {
			if err := f.Follow(seq, rec); err != nil {
				t.Fatalf("follow %d: %v", seq, err)
			}
		}
	}
}

// storeView is what a store shows, to compare two.
func storeView(t *testing.T, s *Store) string {
	t.Helper()
	var out string
	users, _, err := s.FindUsers(UserFilter{})
	if err != nil {
		t.Fatal(err)
	}
	for _, u := range users {
		out += fmt.Sprintf("user %s %s %s %v %s\n", u.UUID, u.Username, u.Role, u.Active, u.DisplayName)
	}
	tokens, _, err := s.FindAccessTokens(TokenFilter{})
	if err != nil {
		t.Fatal(err)
	}
	for _, tk := range tokens {
		out += fmt.Sprintf("token %s %s %s %v\n", tk.ID, tk.Owner, tk.Name, tk.ReadOnly)
	}
	services, _, _ := s.FindServices(ServiceFilter{})
	for _, x := range services {
		out += fmt.Sprintf("service %s %s\n", x.Name, x.TokenID)
	}
	resources, _, _ := s.FindResources(ResourceFilter{})
	for _, x := range resources {
		out += fmt.Sprintf("resource %s %s %d\n", x.Name, x.Service, x.UpLimit)
	}
	projects, _, _ := s.FindProjects(ProjectFilter{})
	for _, x := range projects {
		out += fmt.Sprintf("project %s %s %d members\n", x.UUID, x.Name, len(x.Members))
	}
	groups, _, _ := s.FindGroups(GroupFilter{})
	for _, x := range groups {
		out += fmt.Sprintf("group %s %v\n", x.Name, x.Members)
	}
	return out
}

// TestFollow makes identity changes of every kind on a leader's store and
// follows its log on another node: the follower's store shows the same
// records, and the tokens made on the leader authenticate there, until
// revoked there too.
func TestFollow(t *testing.T) {
	ctx := context.Background()
	clock := testkit.NewClock(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC))
	log := &memLog{}
	open := func() (*ledger.Ledger, *Store) {
		l := ledgertest.Open(t, ledger.Options{Follower: true, ID: "cluster", Now: clock.Now})
		s, err := Open(l, Options{Hash: cheapHash, Now: clock.Now})
		if err != nil {
			t.Fatal(err)
		}
		return l, s
	}
	ll, ls := open()
	if _, err := ll.Lead(log); err != nil {
		t.Fatal(err)
	}
	fl, fs := open()

	admin, err := ls.CreateUser(ctx, NewUser{Username: "admin@example.com", Password: "correct horse battery", Role: RoleAdmin, Active: true})
	if err != nil {
		t.Fatal(err)
	}
	alice, err := ls.CreateUser(ctx, NewUser{Username: "alice@example.com", Password: "correct horse battery", Active: true})
	if err != nil {
		t.Fatal(err)
	}
	bob, err := ls.CreateUser(ctx, NewUser{Username: "bob@example.com", Password: "correct horse battery", Active: true})
	if err != nil {
		t.Fatal(err)
	}
	secret, tok, err := ls.CreateAccessToken(ctx, alice.UUID, "laptop", time.Time{}, false)
	if err != nil {
		t.Fatal(err)
	}
	svcSecret, _, err := ls.CreateService(ctx, NewService{Name: "cyclades", Type: "compute"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := ls.CreateResource(ctx, Resource{Name: "cyclades.vm", Service: "cyclades", AllowInProjects: true, UpLimit: 2}); err != nil {
		t.Fatal(err)
	}
	p, err := ls.CreateProject(ctx, NewProject{Name: "alpha", Owner: alice.UUID})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := ls.CreateGroup(ctx, "ops"); err != nil {
		t.Fatal(err)
	}
	if _, err := ls.AddGroupMember(ctx, "ops", bob.UUID); err != nil {
		t.Fatal(err)
	}
	if _, err := ls.RenameGroup(ctx, "ops", "sre"); err != nil {
		t.Fatal(err)
	}
	if _, err := ls.AddProjectMember(ctx, p.UUID, Member{Group: "sre", Role: MemberMember}); err != nil {
		t.Fatal(err)
	}
	if _, err := ls.SetUserRole(ctx, bob.UUID, RoleReader); err != nil {
		t.Fatal(err)
	}
	_ = admin
	log.catchUp(t, fl)
	if got, want := storeView(t, fs), storeView(t, ls); got != want {
		t.Fatalf("the follower shows\n%s\nthe leader\n%s", got, want)
	}
	for _, sec := range []string{secret, svcSecret} {
		if _, err := fs.Authenticate(sec); err != nil {
			t.Fatalf("a secret made on the leader does not authenticate on the follower: %v", err)
		}
	}
	if got, _, _ := fs.FindProjects(ProjectFilter{Member: bob.UUID}); len(got) != 2 { // his base project and alpha, through sre
		t.Fatalf("bob's projects on the follower: %d", len(got))
	}

	// Removals follow too.
	if err := ls.DeleteAccessToken(ctx, alice.UUID, tok.ID); err != nil {
		t.Fatal(err)
	}
	if err := ls.DeleteUser(ctx, bob.UUID); err != nil {
		t.Fatal(err)
	}
	if err := ls.DeleteGroup(ctx, "sre"); err != nil {
		t.Fatal(err)
	}
	log.catchUp(t, fl)
	if got, want := storeView(t, fs), storeView(t, ls); got != want {
		t.Fatalf("after the removals the follower shows\n%s\nthe leader\n%s", got, want)
	}
	if _, err := fs.Authenticate(secret); err == nil {
		t.Fatal("a token revoked on the leader still authenticates on the follower")
	}
	if _, err := fs.FindUserByID(bob.UUID); err == nil {
		t.Fatal("a user deleted on the leader is still on the follower")
	}
}

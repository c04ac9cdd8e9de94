package identity

import (
	"cmp"
	"context"
	"maps"
	"slices"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/google/uuid"

	"github.com/quotaledger/quotaledger/events/catalog"
	"github.com/quotaledger/quotaledger/failure"
	"github.com/quotaledger/quotaledger/holdings"
	"github.com/quotaledger/quotaledger/ledger"
)

// Project states.
const (
	ProjectActive  = "active"
	ProjectDeleted = "deleted"
)

const maxProjectName = 200 // characters

// NewProject is what CreateProject takes.
type NewProject struct {
	Name     string
	Owner    string            // user uuid; becomes an admin member
	Policies map[string]Policy // by resource
}

// How the holdings of a project follow its record (DESIGN.md §2):
//
//   - while the project is active, for every resource r of its policies,
//     (project:P, null, r) has the project capacity and (user:U, project:P, r)
//     the member capacity, for every user U counted as a member;
//   - a user is counted once, however many ways they are a member (directly
//     and through one or more groups); their role is the highest of those;
//     every role, reader included, gets the member holdings (the role says
//     what they may manage, not what they may use);
//   - a holding the record no longer calls for (a member who left, a
//     resource dropped from the policies, a deleted project) is set to limit
//     0, never deleted: its usage stays visible and pending commissions may
//     still resolve against it.
//
// A change computes the holdings the record called for before and after
// and, in the same batch as the record, sets every one whose limit in the
// ledger is not what it should be now.

// CreateProject creates a project owned by an existing user, who becomes its
// admin member, with its holdings and the owner's member holdings, in one
// batch. Policies must name registered resources that allow projects, with
// capacities >= 0. Bad input is failure.Invalid (an owner that is not a user too).
func (s *Store) CreateProject(ctx context.Context, in NewProject) (*Project, error) {
	if err := checkProjectName(in.Name); err != nil {
		return nil, err
	}
	id, err := uuid.NewRandom()
	if err != nil {
		return nil, err
	}
	s.wmu.Lock()
	defer s.wmu.Unlock()
	s.mu.RLock()
	_, owner := s.users[in.Owner]
	policies, err := s.checkPoliciesLocked(in.Policies, false)
	s.mu.RUnlock()
	if err != nil {
		return nil, err
	}
	if !owner {
		return nil, invalidf("owner %q is not a user", in.Owner)
	}
	now := s.now()
	p := &Project{UUID: id.String(), Name: in.Name, Owner: in.Owner, State: ProjectActive,
		Policies: policies, Members: []Member{{User: in.Owner, Role: MemberAdmin}},
		Created: now, Updated: now}
	after := projectHoldings(p, effectiveMembers(p, s.groupLocked))
	err = s.write(ctx, func(tx *ledger.Tx) error {
		if err := put(tx, prefixProject, p.UUID, p); err != nil {
			return err
		}
		if err := stageProjectHoldings(tx, nil, after); err != nil {
			return err
		}
		return emit(tx, catalog.ProjectCreatedType, projectEvent(p))
	}, func() { s.projects[p.UUID] = p })
	if err != nil {
		return nil, err
	}
	return p, nil
}

// FindProjectByID returns a project, active or deleted; failure.NotFound if
// there is no such project.
func (s *Store) FindProjectByID(id string) (*Project, error) {
	s.mu.RLock()
	p := s.projects[id]
	s.mu.RUnlock()
	if p == nil {
		return nil, notFoundf("no project %q", id)
	}
	return p, nil
}

// ProjectFilter selects projects, oldest first: every project, deleted
// ones too, or with Member (a user uuid) the active projects that user is
// a member of, directly or through a group, their base project included
// (deleted projects are left out: FindProjectByID still answers them).
// Offset and Limit cut a window of them (see Lists in identity.go).
type ProjectFilter struct {
	Member        string
	Offset, Limit int
}

// FindProjects returns the window of the projects f selects and the count
// of all of them.
func (s *Store) FindProjects(f ProjectFilter) ([]*Project, int, error) {
	s.mu.RLock()
	var out []*Project
	for _, p := range s.projects {
		if f.Member == "" || (p.State != ProjectDeleted && isMember(p, f.Member, s.groupLocked)) {
			out = append(out, p)
		}
	}
	s.mu.RUnlock()
	sortProjects(out)
	return window(out, f.Offset, f.Limit)
}

// ProjectMemberRoles returns the users counted as members of a project, with
// their role (the highest of their direct and group memberships).
func (s *Store) ProjectMemberRoles(id string) (map[string]MemberRole, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	p := s.projects[id]
	if p == nil {
		return nil, notFoundf("no project %q", id)
	}
	return effectiveMembers(p, s.groupLocked), nil
}

// AddProjectMember adds a user or a group (m.User or m.Group, not both) to a
// project with a role (reader, member or admin; empty means member). Every
// user newly counted as a member gets the member holdings. A user or group
// that does not exist is failure.Invalid, one already a member
// failure.Conflict; a base project takes no one (failure.Forbidden); a
// deleted project is failure.Conflict.
func (s *Store) AddProjectMember(ctx context.Context, project string, m Member) (*Project, error) {
	m, err := checkMember(m)
	if err != nil {
		return nil, err
	}
	return s.changeProject(ctx, project, catalog.MemberAdded, m, func(p *Project) error {
		if p.Base {
			return failure.Errorf(failure.Forbidden, "no one joins a base project")
		}
		if m.User != "" && s.users[m.User] == nil {
			return invalidf("no user %q", m.User)
		}
		if m.Group != "" && s.groups[m.Group] == nil {
			return invalidf("no group %q", m.Group)
		}
		if slices.ContainsFunc(p.Members, m.same) {
			return conflictf("%s is already a member of project %s", m, p.UUID)
		}
		p.Members = append(p.Members, m)
		return nil
	})
}

// RemoveProjectMember removes a user or group (the role of m is ignored)
// from a project. The member holdings of the users no longer counted as
// members are set to limit 0. failure.NotFound if it is not a member; the
// owner cannot leave and no one leaves a base project (failure.Forbidden).
func (s *Store) RemoveProjectMember(ctx context.Context, project string, m Member) (*Project, error) {
	m.Role = MemberMember // any role names the same member
	m, err := checkMember(m)
	if err != nil {
		return nil, err
	}
	return s.changeProject(ctx, project, catalog.MemberRemoved, m, func(p *Project) error {
		if p.Base || m.User == p.Owner {
			return failure.Errorf(failure.Forbidden, "the owner stays a member of their project")
		}
		i := slices.IndexFunc(p.Members, m.same)
		if i < 0 {
			return notFoundf("%s is not a member of project %s", m, p.UUID)
		}
		p.Members = slices.Delete(p.Members, i, i+1)
		return nil
	})
}

// SetProjectMemberRole changes the role of a member (m names it, m.Role is
// the new role). Holdings do not depend on roles and stay as they are. The
// owner stays an admin and base projects do not change (failure.Forbidden).
func (s *Store) SetProjectMemberRole(ctx context.Context, project string, m Member) (*Project, error) {
	m, err := checkMember(m)
	if err != nil {
		return nil, err
	}
	return s.changeProject(ctx, project, catalog.MemberRoleChanged, m, func(p *Project) error {
		if p.Base || (m.User == p.Owner && m.Role != MemberAdmin) {
			return failure.Errorf(failure.Forbidden, "the owner stays an admin of their project")
		}
		i := slices.IndexFunc(p.Members, m.same)
		if i < 0 {
			return notFoundf("%s is not a member of project %s", m, p.UUID)
		}
		p.Members[i].Role = m.Role
		return nil
	})
}

// SetProjectPolicies replaces a project's policies and re-limits its
// holdings and its members' in the same batch; a resource left out gets
// limit 0. The rules are those of CreateProject, except that a base project
// may hold any registered resource.
func (s *Store) SetProjectPolicies(ctx context.Context, project string, policies map[string]Policy) (*Project, error) {
	s.wmu.Lock()
	defer s.wmu.Unlock()
	s.mu.RLock()
	p, err := s.liveProjectLocked(project)
	if err == nil {
		policies, err = s.checkPoliciesLocked(policies, p.Base)
	}
	s.mu.RUnlock()
	if err != nil {
		return nil, err
	}
	np := cloneProject(p)
	np.Policies = policies
	np.Updated = s.now()
	return np, s.commitProject(ctx, p, np, catalog.ProjectPoliciesChangedType, func(joined, left []string) any {
		return catalog.ProjectPoliciesChanged{Joined: joined, Left: left, Policies: policiesEvent(np.Policies),
			Project: np.UUID}
	})
}

// DeleteProject marks a project deleted and sets the limits of its holdings
// and its members' to 0; the record stays (state "deleted") and answers
// FindProjectByID, and no change is taken any more (failure.Conflict). A
// base project goes with its user (failure.Forbidden here).
func (s *Store) DeleteProject(ctx context.Context, project string) error {
	s.wmu.Lock()
	defer s.wmu.Unlock()
	s.mu.RLock()
	p, err := s.liveProjectLocked(project)
	s.mu.RUnlock()
	if err != nil {
		return err
	}
	if p.Base {
		return failure.Errorf(failure.Forbidden, "a base project goes with its user")
	}
	np := cloneProject(p)
	np.State = ProjectDeleted
	np.Updated = s.now()
	return s.commitProject(ctx, p, np, catalog.ProjectDeletedType, func(joined, left []string) any {
		return catalog.ProjectDeleted{Joined: joined, Left: left, Project: np.UUID}
	})
}

// projectSettingsForNewResourceLocked is what registering resource r
// implies for projects: for every active project other than the base ones
// (which the caller gives r's uplimit), if r.AllowInProjects, a policy of r
// with both the project and the member capacity at r.ProjectDefault (the
// one default a resource has for projects: a member may then use what the
// project may, and the project limit is what bounds them together), the
// project holding and every member's holding at that limit. It returns
// the settings and the changed project records; the caller stages both in
// the same Update and stores the records. Callers hold s.wmu and s.mu (read).
func (s *Store) projectSettingsForNewResourceLocked(r *Resource) (settings []ledger.HoldingSetting, updated []*Project) {
	if !r.AllowInProjects {
		return nil, nil
	}
	now := s.now()
	for _, p := range s.projects {
		if p.Base || p.State == ProjectDeleted {
			continue
		}
		if _, ok := p.Policies[r.Name]; ok {
			continue
		}
		np := cloneProject(p)
		np.Policies[r.Name] = Policy{ProjectCapacity: r.ProjectDefault, MemberCapacity: r.ProjectDefault}
		np.Updated = now
		settings = append(settings, ledger.HoldingSetting{
			Key: holdings.Key{Holder: np.Holder(), Source: holdings.NullSource, Resource: r.Name}, Limit: r.ProjectDefault})
		for _, u := range slices.Sorted(maps.Keys(effectiveMembers(np, s.groupLocked))) {
			settings = append(settings, ledger.HoldingSetting{
				Key: memberKey(np, u, r.Name), Limit: r.ProjectDefault})
		}
		updated = append(updated, np)
	}
	sortProjects(updated)
	slices.SortFunc(settings, func(a, b ledger.HoldingSetting) int { return compareHoldingKeys(a.Key, b.Key) })
	return settings, updated
}

// changeProject applies change to a copy of a live project and commits it
// with its holdings and a membership event.
func (s *Store) changeProject(ctx context.Context, project, action string, m Member, change func(p *Project) error) (*Project, error) {
	s.wmu.Lock()
	defer s.wmu.Unlock()
	s.mu.RLock()
	p, err := s.liveProjectLocked(project)
	var np *Project
	if err == nil {
		np = cloneProject(p)
		err = change(np)
	}
	s.mu.RUnlock()
	if err != nil {
		return nil, err
	}
	np.Updated = s.now()
	return np, s.commitProject(ctx, p, np, catalog.ProjectMembershipChangedType, func(joined, left []string) any {
		return catalog.ProjectMembershipChanged{Action: action, Joined: joined, Left: left, Member: memberEvent(m),
			Project: np.UUID}
	})
}

// commitProject stores np in place of p, with the holdings the change
// implies and an event of type typ (payload makes it from the users who
// joined and left). Callers hold s.wmu.
func (s *Store) commitProject(ctx context.Context, p, np *Project, typ string, payload func(joined, left []string) any) error {
	s.mu.RLock()
	before, after := effectiveMembers(p, s.groupLocked), effectiveMembers(np, s.groupLocked)
	s.mu.RUnlock()
	ev := payload(memberDiff(before, after))
	hb, ha := projectHoldings(p, before), projectHoldings(np, after)
	return s.write(ctx, func(tx *ledger.Tx) error {
		if err := put(tx, prefixProject, np.UUID, np); err != nil {
			return err
		}
		if err := stageProjectHoldings(tx, hb, ha); err != nil {
			return err
		}
		return emit(tx, typ, ev)
	}, func() { s.projects[np.UUID] = np })
}

// liveProjectLocked returns an active project: failure.NotFound if there is none,
// failure.Conflict if it was deleted.
func (s *Store) liveProjectLocked(id string) (*Project, error) {
	p := s.projects[id]
	if p == nil {
		return nil, notFoundf("no project %q", id)
	}
	if p.State == ProjectDeleted {
		return nil, conflictf("project %s is deleted", id)
	}
	return p, nil
}

// groupLocked looks a group up; callers hold s.mu.
func (s *Store) groupLocked(name string) *Group { return s.groups[name] }

func (s *Store) checkPoliciesLocked(in map[string]Policy, base bool) (map[string]Policy, error) {
	out := make(map[string]Policy, len(in))
	for _, name := range slices.Sorted(maps.Keys(in)) {
		pol := in[name]
		r := s.resources[name]
		switch {
		case r == nil:
			return nil, invalidf("no resource %q", name)
		case !base && !r.AllowInProjects:
			return nil, invalidf("resource %s is not allowed in projects", name)
		case pol.ProjectCapacity < 0 || pol.MemberCapacity < 0:
			return nil, invalidf("capacities of %s must not be negative", name)
		}
		out[name] = pol
	}
	return out, nil
}

func checkProjectName(name string) error {
	n := utf8.RuneCountInString(name)
	switch {
	case !utf8.ValidString(name):
		return invalidf("project name must be valid UTF-8")
	case strings.TrimSpace(name) == "" || n > maxProjectName:
		return invalidf("project name must be 1 to %d characters, not all spaces", maxProjectName)
	case strings.ContainsFunc(name, unicode.IsControl):
		return invalidf("project name must not contain control characters")
	}
	return nil
}

// checkMember checks that m names a user or a group, not both, with a role.
func checkMember(m Member) (Member, error) {
	if (m.User == "") == (m.Group == "") {
		return m, invalidf("a member is a user or a group")
	}
	switch m.Role {
	case "":
		m.Role = MemberMember
	case MemberReader, MemberMember, MemberAdmin:
	default:
		return m, invalidf("member role must be reader, member or admin, got %q", m.Role)
	}
	return m, nil
}

// same reports whether o names the same user or group as m.
func (m Member) same(o Member) bool { return m.User == o.User && m.Group == o.Group }

func (m Member) String() string {
	if m.Group != "" {
		return "group " + m.Group
	}
	return "user " + m.User
}

func roleRank(r MemberRole) int {
	switch r {
	case MemberAdmin:
		return 3
	case MemberMember:
		return 2
	case MemberReader:
		return 1
	}
	return 0
}

// effectiveMembers returns the users counted as members of p, each once,
// with the highest role they have in it. The owner of a base project always
// is one; a deleted project counts no one (its record keeps the list). Users
// of groups that group does not find are left out.
func effectiveMembers(p *Project, group func(string) *Group) map[string]MemberRole {
	out := make(map[string]MemberRole)
	if p.State == ProjectDeleted {
		return out
	}
	add := func(u string, r MemberRole) {
		if old, ok := out[u]; !ok || roleRank(r) > roleRank(old) {
			out[u] = r
		}
	}
	if p.Base {
		add(p.Owner, MemberAdmin)
	}
	for _, m := range p.Members {
		if m.User != "" {
			add(m.User, m.Role)
		} else if g := group(m.Group); g != nil {
			for _, u := range g.Members {
				add(u, m.Role)
			}
		}
	}
	return out
}

// isMember is effectiveMembers(p, group)[user] without building the map.
func isMember(p *Project, user string, group func(string) *Group) bool {
	if p.State == ProjectDeleted {
		return false
	}
	if p.Base && p.Owner == user {
		return true
	}
	for _, m := range p.Members {
		if m.User == user {
			return true
		}
		if m.Group != "" {
			if g := group(m.Group); g != nil && slices.Contains(g.Members, user) {
				return true
			}
		}
	}
	return false
}

// memberDiff returns the users who joined and who left, sorted.
func memberDiff(before, after map[string]MemberRole) (joined, left []string) {
	joined, left = []string{}, []string{}
	for u := range after {
		if _, ok := before[u]; !ok {
			joined = append(joined, u)
		}
	}
	for u := range before {
		if _, ok := after[u]; !ok {
			left = append(left, u)
		}
	}
	slices.Sort(joined)
	slices.Sort(left)
	return joined, left
}

func memberKey(p *Project, user, resource string) holdings.Key {
	return holdings.Key{Holder: "user:" + user, Source: holdings.SourceOf(p.Holder()), Resource: resource}
}

// projectHoldings returns the limits p's record calls for, with members as
// its members: nothing for a deleted project.
func projectHoldings(p *Project, members map[string]MemberRole) map[holdings.Key]int64 {
	out := make(map[holdings.Key]int64)
	if p.State == ProjectDeleted {
		return out
	}
	for r, pol := range p.Policies {
		out[holdings.Key{Holder: p.Holder(), Source: holdings.NullSource, Resource: r}] = pol.ProjectCapacity
		for u := range members {
			out[memberKey(p, u, r)] = pol.MemberCapacity
		}
	}
	return out
}

// stageProjectHoldings stages, in key order, the settings that take the
// ledger from the holdings a record called for (before) to those it calls
// for now (after): every holding of after whose limit differs or that is
// missing, and limit 0 for every holding of before alone that exists with
// another limit. Comparing with the ledger, not only with before, also
// mends a limit someone set by hand.
func stageProjectHoldings(tx *ledger.Tx, before, after map[holdings.Key]int64) error {
	var settings []ledger.HoldingSetting
	for k, lim := range after {
		if v, ok := tx.FindHoldingByKey(k); !ok || v.Limit != lim {
			settings = append(settings, ledger.HoldingSetting{Key: k, Limit: lim})
		}
	}
	for k := range before {
		if _, ok := after[k]; ok {
			continue
		}
		if v, ok := tx.FindHoldingByKey(k); ok && v.Limit != 0 {
			settings = append(settings, ledger.HoldingSetting{Key: k})
		}
	}
	if len(settings) == 0 {
		return nil
	}
	slices.SortFunc(settings, func(a, b ledger.HoldingSetting) int { return compareHoldingKeys(a.Key, b.Key) })
	return tx.SetHoldings(settings...)
}

func compareHoldingKeys(a, b holdings.Key) int {
	if c := strings.Compare(a.Holder, b.Holder); c != 0 {
		return c
	}
	if a.Source.IsNull() != b.Source.IsNull() {
		if a.Source.IsNull() {
			return -1
		}
		return 1
	}
	if c := strings.Compare(a.Source.Name(), b.Source.Name()); c != 0 {
		return c
	}
	return strings.Compare(a.Resource, b.Resource)
}

func cloneProject(p *Project) *Project {
	np := *p
	np.Policies = maps.Clone(p.Policies)
	if np.Policies == nil {
		np.Policies = map[string]Policy{}
	}
	np.Members = slices.Clone(p.Members)
	if np.Members == nil {
		np.Members = []Member{}
	}
	return &np
}

func sortProjects(ps []*Project) {
	slices.SortFunc(ps, func(a, b *Project) int {
		if c := a.Created.Compare(b.Created); c != 0 {
			return c
		}
		return cmp.Compare(a.UUID, b.UUID)
	})
}

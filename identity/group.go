package identity

import (
	"context"
	"maps"
	"slices"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/quotaledger/quotaledger/events/catalog"
	"github.com/quotaledger/quotaledger/holdings"
	"github.com/quotaledger/quotaledger/ledger"
)

const maxGroupName = 100 // characters

// A group is a named set of users. A group that is a member of a project
// makes each of its users a member (see project.go): adding a user to the
// group, removing one, and deleting the group change their holdings in
// those projects in the same batch as the group.

// CreateGroup creates an empty group. Its name is 1 to 100 characters and
// unique (failure.Conflict).
func (s *Store) CreateGroup(ctx context.Context, name string) (*Group, error) {
	if err := checkGroupName(name); err != nil {
		return nil, err
	}
	s.wmu.Lock()
	defer s.wmu.Unlock()
	s.mu.RLock()
	_, taken := s.groups[name]
	s.mu.RUnlock()
	if taken {
		return nil, conflictf("group %q exists", name)
	}
	g := &Group{Name: name, Members: []string{}, Created: s.now()}
	err := s.write(ctx, func(tx *ledger.Tx) error {
		if err := put(tx, prefixGroup, g.Name, g); err != nil {
			return err
		}
		return emit(tx, catalog.GroupCreatedType, catalog.GroupCreated{Name: g.Name, Members: g.Members, Created: g.Created})
	}, func() { s.groups[g.Name] = g })
	if err != nil {
		return nil, err
	}
	return g, nil
}

// FindGroupByName returns a group; failure.NotFound if there is none.
func (s *Store) FindGroupByName(name string) (*Group, error) {
	s.mu.RLock()
	g := s.groups[name]
	s.mu.RUnlock()
	if g == nil {
		return nil, notFoundf("no group %q", name)
	}
	return g, nil
}

// GroupFilter selects groups (every one, by name); Offset and Limit cut a
// window of them (see Lists in identity.go).
type GroupFilter struct {
	Offset, Limit int
}

// FindGroups returns the window of the groups f selects and the count of
// all of them.
func (s *Store) FindGroups(f GroupFilter) ([]*Group, int, error) {
	s.mu.RLock()
	out := slices.Collect(maps.Values(s.groups))
	s.mu.RUnlock()
	slices.SortFunc(out, func(a, b *Group) int { return strings.Compare(a.Name, b.Name) })
	return window(out, f.Offset, f.Limit)
}

// GroupUsers returns the users of a group, in the order they were added
// (a user deleted since is left out); failure.NotFound if there is no group.
func (s *Store) GroupUsers(name string) ([]*User, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	g := s.groups[name]
	if g == nil {
		return nil, notFoundf("no group %q", name)
	}
	out := make([]*User, 0, len(g.Members))
	for _, id := range g.Members {
		if u := s.users[id]; u != nil {
			out = append(out, u)
		}
	}
	return out, nil
}

// RenameGroup renames a group and the project memberships that name it.
// Holdings do not change. failure.NotFound if there is no group, failure.Conflict if
// the new name is taken.
func (s *Store) RenameGroup(ctx context.Context, name, newName string) (*Group, error) {
	if err := checkGroupName(newName); err != nil {
		return nil, err
	}
	return s.changeGroup(ctx, name, catalog.GroupRenamedType, func(g *Group) error {
		if newName == name {
			return nil
		}
		if s.groups[newName] != nil {
			return conflictf("group %q exists", newName)
		}
		g.Name = newName
		return nil
	})
}

// DeleteGroup deletes a group and removes it from every project it is a
// member of; the users no longer counted as members there get their member
// holdings set to limit 0. failure.NotFound if there is no group.
func (s *Store) DeleteGroup(ctx context.Context, name string) error {
	_, err := s.changeGroup(ctx, name, catalog.GroupDeletedType, nil)
	return err
}

// AddGroupMember adds a user to a group, and so to the projects the group
// is a member of (member holdings for those newly counted). failure.NotFound if
// there is no group, failure.Invalid if there is no user, failure.Conflict if the user
// is in the group already.
func (s *Store) AddGroupMember(ctx context.Context, group, user string) (*Group, error) {
	return s.changeGroup(ctx, group, catalog.GroupMembershipChangedType, func(g *Group) error {
		if s.users[user] == nil {
			return invalidf("no user %q", user)
		}
		if slices.Contains(g.Members, user) {
			return conflictf("user %s is in group %q already", user, group)
		}
		g.Members = append(g.Members, user)
		return nil
	})
}

// RemoveGroupMember removes a user from a group; in the projects the group
// is a member of, a user no longer counted as a member gets their member
// holdings set to limit 0. failure.NotFound if there is no group or the user is
// not in it.
func (s *Store) RemoveGroupMember(ctx context.Context, group, user string) (*Group, error) {
	return s.changeGroup(ctx, group, catalog.GroupMembershipChangedType, func(g *Group) error {
		i := slices.Index(g.Members, user)
		if i < 0 {
			return notFoundf("user %s is not in group %q", user, group)
		}
		g.Members = slices.Delete(g.Members, i, i+1)
		return nil
	})
}

// changeGroup applies change to a copy of group name (a nil change deletes
// the group) and commits it with what it implies for the projects the group
// is a member of: their records (renamed or removed membership) and the
// holdings of the users who join or leave them, with an event for the group
// and a membership event for each project whose members changed.
func (s *Store) changeGroup(ctx context.Context, name, typ string, change func(g *Group) error) (*Group, error) {
	s.wmu.Lock()
	defer s.wmu.Unlock()

	type projectChange struct {
		p, np    *Project
		hb, ha   map[holdings.Key]int64
		joined   []string
		left     []string
		rewrites bool // the record changes, not only who it counts
	}
	s.mu.RLock()
	old := s.groups[name]
	var g *Group // nil: deleted
	var err error
	if old == nil {
		err = notFoundf("no group %q", name)
	} else if change != nil {
		g = cloneGroup(old)
		err = change(g)
	}
	var changes []projectChange
	if err == nil {
		after := func(n string) *Group {
			switch {
			case g != nil && n == g.Name:
				return g
			case n == name:
				return nil
			}
			return s.groups[n]
		}
		now := s.now()
		for _, p := range s.projects {
			if !slices.ContainsFunc(p.Members, func(m Member) bool { return m.Group == name }) {
				continue
			}
			c := projectChange{p: p, np: p}
			if g == nil || g.Name != name {
				c.np, c.rewrites = cloneProject(p), true
				c.np.Updated = now
				c.np.Members = slices.DeleteFunc(c.np.Members, func(m Member) bool { return g == nil && m.Group == name })
				for i := range c.np.Members {
					if c.np.Members[i].Group == name {
						c.np.Members[i].Group = g.Name
					}
				}
			}
			mb, ma := effectiveMembers(p, s.groupLocked), effectiveMembers(c.np, after)
			c.joined, c.left = memberDiff(mb, ma)
			c.hb, c.ha = projectHoldings(p, mb), projectHoldings(c.np, ma)
			changes = append(changes, c)
		}
	}
	s.mu.RUnlock()
	if err != nil {
		return nil, err
	}
	slices.SortFunc(changes, func(a, b projectChange) int { return strings.Compare(a.p.UUID, b.p.UUID) })

	projects := make([]string, 0, len(changes))
	for _, c := range changes {
		projects = append(projects, c.p.UUID)
	}
	var payload any
	switch typ {
	case catalog.GroupDeletedType:
		payload = catalog.GroupDeleted{Group: name, Projects: projects}
	case catalog.GroupRenamedType:
		ev := catalog.GroupRenamed{Group: g.Name, Members: g.Members, Projects: projects}
		if g.Name != name {
			ev.OldName = name
		}
		payload = ev
	default:
		payload = catalog.GroupMembershipChanged{Group: g.Name, Members: g.Members, Projects: projects}
	}

	err = s.write(ctx, func(tx *ledger.Tx) error {
		if g == nil || g.Name != name {
			if err := tx.Delete(recordKey(prefixGroup, name)); err != nil {
				return err
			}
		}
		if g != nil {
			if err := put(tx, prefixGroup, g.Name, g); err != nil {
				return err
			}
		}
		for _, c := range changes {
			if c.rewrites {
				if err := put(tx, prefixProject, c.np.UUID, c.np); err != nil {
					return err
				}
			}
			if err := stageProjectHoldings(tx, c.hb, c.ha); err != nil {
				return err
			}
		}
		if err := emit(tx, typ, payload); err != nil {
			return err
		}
		for _, c := range changes {
			if len(c.joined) == 0 && len(c.left) == 0 {
				continue
			}
			err := emit(tx, catalog.ProjectMembershipChangedType, catalog.ProjectMembershipChanged{
				Action: catalog.MemberGroupChanged, Joined: c.joined, Left: c.left,
				Member: catalog.Member{Group: name}, Project: c.np.UUID})
			if err != nil {
				return err
			}
		}
		return nil
	}, func() {
		delete(s.groups, name)
		if g != nil {
			s.groups[g.Name] = g
		}
		for _, c := range changes {
			s.projects[c.np.UUID] = c.np
		}
	})
	if err != nil {
		return nil, err
	}
	return g, nil
}

func checkGroupName(name string) error {
	switch {
	case !utf8.ValidString(name):
		return invalidf("group name must be valid UTF-8")
	case strings.TrimSpace(name) == "" || utf8.RuneCountInString(name) > maxGroupName:
		return invalidf("group name must be 1 to %d characters, not all spaces", maxGroupName)
	case strings.ContainsFunc(name, unicode.IsControl):
		return invalidf("group name must not contain control characters")
	}
	return nil
}

func cloneGroup(g *Group) *Group {
	ng := *g
	ng.Members = slices.Clone(g.Members)
	if ng.Members == nil {
		ng.Members = []string{}
	}
	return &ng
}

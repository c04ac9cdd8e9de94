package api

import (
	"net/http"
	"slices"

	"github.com/quotaledger/quotaledger/api/wire"
	"github.com/quotaledger/quotaledger/identity"
)

// Groups: /account/v1.0/groups.

// groupView is a group with its users.
func (s *Server) groupView(g *identity.Group) wire.Group {
	users, _ := s.id.GroupUsers(g.Name)
	v := wire.Group{Name: g.Name, Members: make([]wire.GroupMember, 0, len(users)), Created: wire.TimeOf(g.Created)}
	for _, u := range users {
		v.Members = append(v.Members, wire.GroupMember{UUID: u.UUID, Username: u.Username, DisplayName: u.DisplayName})
	}
	return v
}

// listGroups answers GET /account/v1.0/groups.
func (s *Server) listGroups(c *call) error {
	return paginate(c, func(offset, limit int) ([]*identity.Group, int, error) {
		return s.id.FindGroups(identity.GroupFilter{Offset: offset, Limit: limit})
	}, s.groupView)
}

// createGroup answers POST /account/v1.0/groups.
func (s *Server) createGroup(c *call) error {
	var in wire.GroupCreate
	if err := c.body(&in, true); err != nil {
		return err
	}
	if in.Name == "" {
		return badRequest("name is required")
	}
	for i, m := range in.Members {
		if _, err := s.id.FindUserByID(m); err != nil {
			return badRequest("members[%d]: no user %q", i, m)
		}
		if slices.Contains(in.Members[:i], m) {
			return badRequest("members[%d]: user %s is listed twice", i, m)
		}
	}
	g, err := s.id.CreateGroup(c.r.Context(), in.Name)
	if err != nil {
		return err
	}
	for _, m := range in.Members {
		if g, err = s.id.AddGroupMember(c.r.Context(), g.Name, m); err != nil {
			return err
		}
	}
	return c.json(http.StatusCreated, s.groupView(g))
}

// getGroup answers GET /account/v1.0/groups/{name}.
func (s *Server) getGroup(c *call) error {
	name := c.r.PathValue("name")
	g, err := s.id.FindGroupByName(name)
	if err != nil {
		return err
	}
	return c.json(http.StatusOK, s.groupView(g))
}

// renameGroup answers PATCH /account/v1.0/groups/{name}.
func (s *Server) renameGroup(c *call) error {
	name := c.r.PathValue("name")
	var in wire.GroupRename
	if err := c.body(&in, true); err != nil {
		return err
	}
	if in.Name == "" {
		return badRequest("name is required")
	}
	g, err := s.id.RenameGroup(c.r.Context(), name, in.Name)
	if err != nil {
		return err
	}
	return c.json(http.StatusOK, s.groupView(g))
}

// deleteGroup answers DELETE /account/v1.0/groups/{name}.
func (s *Server) deleteGroup(c *call) error {
	name := c.r.PathValue("name")
	if err := s.id.DeleteGroup(c.r.Context(), name); err != nil {
		return err
	}
	return c.noContent()
}

// addGroupMember answers POST /account/v1.0/groups/{name}/members.
func (s *Server) addGroupMember(c *call) error {
	name := c.r.PathValue("name")
	var in wire.GroupMemberAdd
	if err := c.body(&in, true); err != nil {
		return err
	}
	if in.User == "" {
		return badRequest("user (a user uuid) is required")
	}
	g, err := s.id.AddGroupMember(c.r.Context(), name, in.User)
	if err != nil {
		return err
	}
	return c.json(http.StatusOK, s.groupView(g))
}

// removeGroupMember answers DELETE /account/v1.0/groups/{name}/members/{uuid}.
func (s *Server) removeGroupMember(c *call) error {
	name := c.r.PathValue("name")
	user := c.r.PathValue("uuid")
	g, err := s.id.RemoveGroupMember(c.r.Context(), name, user)
	if err != nil {
		return err
	}
	return c.json(http.StatusOK, s.groupView(g))
}

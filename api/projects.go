package api

import (
	"fmt"
	"net/http"

	"github.com/quotaledger/quotaledger/api/wire"
	"github.com/quotaledger/quotaledger/identity"
)

// Projects, their members and policies: /account/v1.0/projects.

// memberView is a project member: a user or a group, with its role.
func memberView(m identity.Member) wire.Member {
	return wire.Member{User: m.User, Group: m.Group, Role: string(m.Role)}
}

// policiesView are a project's capacities by resource ({} when none).
func policiesView(ps map[string]identity.Policy) map[string]wire.Policy {
	out := make(map[string]wire.Policy, len(ps))
	for r, p := range ps {
		out[r] = wire.Policy{ProjectCapacity: p.ProjectCapacity, MemberCapacity: p.MemberCapacity}
	}
	return out
}

// projectView is a project as the API shows it.
func projectView(p *identity.Project) wire.Project {
	v := wire.Project{UUID: p.UUID, Name: p.Name, Owner: p.Owner, State: string(p.State), Base: p.Base,
		Policies: policiesView(p.Policies), Members: make([]wire.Member, 0, len(p.Members)),
		Created: wire.TimeOf(p.Created), Updated: wire.TimeOf(p.Updated)}
	for _, m := range p.Members {
		v.Members = append(v.Members, memberView(m))
	}
	return v
}

// projectFor returns the project of the path once the caller may read it
// (a member, or read_all) or, with manage, change it (an admin member, or
// manage_projects). Non-members get a 404, as if it were absent.
func (c *call) projectFor(manage bool) (*identity.Project, error) {
	id := c.r.PathValue("uuid")
	p, err := c.s.id.FindProjectByID(id)
	if err != nil {
		return nil, err
	}
	if manage && identity.Allowed(c.p, identity.ActManageProjects) {
		return p, nil
	}
	if !manage && c.canReadAll() {
		return p, nil
	}
	members, err := c.s.id.ProjectMemberRoles(id)
	if err != nil {
		return nil, err
	}
	role, member := members[c.p.User.UUID]
	if p.Owner == c.p.User.UUID { // the owner stays an admin, a deleted project's too
		role, member = identity.MemberAdmin, true
	}
	if !member {
		return nil, newFault(http.StatusNotFound, fmt.Sprintf("no project %q", id))
	}
	if manage && role != identity.MemberAdmin {
		return nil, newFault(http.StatusForbidden, "only an admin of project "+id+" may change it")
	}
	return p, nil
}

// policyMap reads the policies of a request: both capacities of each are
// required.
func policyMap(in map[string]wire.PolicySetting) (map[string]identity.Policy, error) {
	out := make(map[string]identity.Policy, len(in))
	for r, p := range in {
		if p.ProjectCapacity == nil || p.MemberCapacity == nil {
			return nil, badRequest("policy of %q needs project_capacity and member_capacity", r)
		}
		out[r] = identity.Policy{ProjectCapacity: *p.ProjectCapacity, MemberCapacity: *p.MemberCapacity}
	}
	return out, nil
}

// listProjects answers GET /account/v1.0/projects.
func (s *Server) listProjects(c *call) error {
	var f identity.ProjectFilter
	if !c.canReadAll() {
		f.Member = c.p.User.UUID
	}
	return paginate(c, func(offset, limit int) ([]*identity.Project, int, error) {
		f.Offset, f.Limit = offset, limit
		return s.id.FindProjects(f)
	}, projectView)
}

// createProject answers POST /account/v1.0/projects.
func (s *Server) createProject(c *call) error {
	var in wire.ProjectCreate
	if err := c.body(&in, true); err != nil {
		return err
	}
	if in.Name == "" {
		return badRequest("name is required")
	}
	owner := c.p.User.UUID
	if in.Owner != "" && in.Owner != owner {
		if !identity.Allowed(c.p, identity.ActManageProjects) {
			return newFault(http.StatusForbidden, "only admins create projects for someone else")
		}
		owner = in.Owner
	}
	policies, err := policyMap(in.Policies)
	if err != nil {
		return err
	}
	p, err := s.id.CreateProject(c.r.Context(), identity.NewProject{Name: in.Name, Owner: owner, Policies: policies})
	if err != nil {
		return err
	}
	return c.json(http.StatusCreated, projectView(p))
}

// getProject answers GET /account/v1.0/projects/{uuid}.
func (s *Server) getProject(c *call) error {
	p, err := c.projectFor(false)
	if err != nil {
		return err
	}
	return c.json(http.StatusOK, projectView(p))
}

// deleteProject answers DELETE /account/v1.0/projects/{uuid}.
func (s *Server) deleteProject(c *call) error {
	p, err := c.projectFor(true)
	if err != nil {
		return err
	}
	if err := s.id.DeleteProject(c.r.Context(), p.UUID); err != nil {
		return err
	}
	return c.noContent()
}

// listProjectMembers answers GET /account/v1.0/projects/{uuid}/members.
func (s *Server) listProjectMembers(c *call) error {
	p, err := c.projectFor(false)
	if err != nil {
		return err
	}
	return paginate(c, inMemory(p.Members), memberView)
}

// addProjectMember answers POST /account/v1.0/projects/{uuid}/members.
func (s *Server) addProjectMember(c *call) error {
	p, err := c.projectFor(true)
	if err != nil {
		return err
	}
	var in wire.Member
	if err := c.body(&in, true); err != nil {
		return err
	}
	if (in.User == "") == (in.Group == "") {
		return badRequest("give user (a user uuid) or group (a group name), not both")
	}
	m := identity.Member{User: in.User, Group: in.Group, Role: identity.MemberRole(in.Role)}
	np, err := s.id.AddProjectMember(c.r.Context(), p.UUID, m)
	if err != nil {
		return err
	}
	return c.json(http.StatusOK, projectView(np))
}

// memberOf finds the member of p the path's {id} names: a user uuid,
// else a group name.
func (c *call) memberOf(p *identity.Project) (identity.Member, error) {
	id := c.r.PathValue("id")
	for _, m := range p.Members {
		if m.User == id {
			return identity.Member{User: id}, nil
		}
	}
	for _, m := range p.Members {
		if m.Group == id {
			return identity.Member{Group: id}, nil
		}
	}
	return identity.Member{}, newFault(http.StatusNotFound, fmt.Sprintf("%q is not a member of project %s", id, p.UUID))
}

// setProjectMemberRole answers PATCH /account/v1.0/projects/{uuid}/members/{id}.
func (s *Server) setProjectMemberRole(c *call) error {
	p, err := c.projectFor(true)
	if err != nil {
		return err
	}
	var in wire.MemberRole
	if err := c.body(&in, true); err != nil {
		return err
	}
	if in.Role == "" {
		return badRequest("role is required")
	}
	m, err := c.memberOf(p)
	if err != nil {
		return err
	}
	m.Role = identity.MemberRole(in.Role)
	np, err := s.id.SetProjectMemberRole(c.r.Context(), p.UUID, m)
	if err != nil {
		return err
	}
	return c.json(http.StatusOK, projectView(np))
}

// removeProjectMember answers DELETE /account/v1.0/projects/{uuid}/members/{id}.
func (s *Server) removeProjectMember(c *call) error {
	p, err := c.projectFor(true)
	if err != nil {
		return err
	}
	m, err := c.memberOf(p)
	if err != nil {
		return err
	}
	if _, err := s.id.RemoveProjectMember(c.r.Context(), p.UUID, m); err != nil {
		return err
	}
	return c.noContent()
}

// getProjectPolicies answers GET /account/v1.0/projects/{uuid}/policies.
func (s *Server) getProjectPolicies(c *call) error {
	p, err := c.projectFor(false)
	if err != nil {
		return err
	}
	return c.json(http.StatusOK, policiesView(p.Policies))
}

// setProjectPolicies answers PUT /account/v1.0/projects/{uuid}/policies.
func (s *Server) setProjectPolicies(c *call) error {
	p, err := c.projectFor(true)
	if err != nil {
		return err
	}
	var in map[string]wire.PolicySetting
	if err := c.body(&in, true); err != nil {
		return err
	}
	if in == nil {
		return badRequest("the body must be a JSON object of resource: {project_capacity, member_capacity}")
	}
	policies, err := policyMap(in)
	if err != nil {
		return err
	}
	np, err := s.id.SetProjectPolicies(c.r.Context(), p.UUID, policies)
	if err != nil {
		return err
	}
	return c.json(http.StatusOK, policiesView(np.Policies))
}

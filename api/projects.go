package api

import (
	"fmt"
	"net/http"

	"github.com/quotaledger/quotaledger/identity"
)

func membersView(ms []identity.Member) []map[string]any {
	out := make([]map[string]any, 0, len(ms))
	for _, m := range ms {
		v := map[string]any{"role": m.Role}
		if m.User != "" {
			v["user"] = m.User
		} else {
			v["group"] = m.Group
		}
		out = append(out, v)
	}
	return out
}

func policiesView(ps map[string]identity.Policy) map[string]identity.Policy {
	if ps == nil {
		return map[string]identity.Policy{}
	}
	return ps
}

func projectView(p *identity.Project) map[string]any {
	return map[string]any{"uuid": p.UUID, "name": p.Name, "owner": p.Owner, "state": p.State, "base": p.Base,
		"policies": policiesView(p.Policies), "members": membersView(p.Members),
		"created": rfc3339(p.Created), "updated": rfc3339(p.Updated)}
}

// projectFor returns the project of the path once the caller may read it
// (a member, or read_all) or, with manage, change it (an admin member, or
// manage_projects). Non-members get a 404, as if it were absent.
func (c *call) projectFor(manage bool) (*identity.Project, error) {
	id, err := c.pathValue("uuid")
	if err != nil {
		return nil, err
	}
	p, err := c.s.id.GetProject(id)
	if err != nil {
		return nil, err
	}
	if manage && identity.Allowed(c.p, identity.ActManageProjects) {
		return p, nil
	}
	if !manage && c.canReadAll() {
		return p, nil
	}
	members, err := c.s.id.ProjectMembers(id)
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

type policyIn struct {
	ProjectCapacity *int64 `json:"project_capacity"`
	MemberCapacity  *int64 `json:"member_capacity"`
}

func policyMap(in map[string]policyIn) (map[string]identity.Policy, error) {
	out := make(map[string]identity.Policy, len(in))
	for r, p := range in {
		if p.ProjectCapacity == nil || p.MemberCapacity == nil {
			return nil, badRequest("policy of %q needs project_capacity and member_capacity", r)
		}
		out[r] = identity.Policy{ProjectCapacity: *p.ProjectCapacity, MemberCapacity: *p.MemberCapacity}
	}
	return out, nil
}

func (s *Server) listProjects(c *call) error {
	q := c.q
	var ps []*identity.Project
	if c.canReadAll() {
		ps = s.id.Projects()
	} else {
		ps = s.id.ProjectsOf(c.p.User.UUID)
	}
	return paginate(c, q, ps, func(p *identity.Project) any { return projectView(p) })
}

func (s *Server) createProject(c *call) error {
	var in struct {
		Name     *string             `json:"name"`
		Owner    *string             `json:"owner"`
		Policies map[string]policyIn `json:"policies"`
	}
	if err := c.body(&in, true); err != nil {
		return err
	}
	if in.Name == nil {
		return badRequest("name is required")
	}
	owner := c.p.User.UUID
	if in.Owner != nil && *in.Owner != owner {
		if !identity.Allowed(c.p, identity.ActManageProjects) {
			return newFault(http.StatusForbidden, "only admins create projects for someone else")
		}
		owner = *in.Owner
	}
	policies, err := policyMap(in.Policies)
	if err != nil {
		return err
	}
	p, err := s.id.CreateProject(c.r.Context(), identity.NewProject{Name: *in.Name, Owner: owner, Policies: policies})
	if err != nil {
		return err
	}
	return c.json(http.StatusCreated, projectView(p))
}

func (s *Server) getProject(c *call) error {
	p, err := c.projectFor(false)
	if err != nil {
		return err
	}
	return c.json(http.StatusOK, projectView(p))
}

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

func (s *Server) listProjectMembers(c *call) error {
	q := c.q
	p, err := c.projectFor(false)
	if err != nil {
		return err
	}
	return paginate(c, q, membersView(p.Members), func(m map[string]any) any { return m })
}

// memberIn is a member as a body names it.
type memberIn struct {
	User  *string `json:"user"`
	Group *string `json:"group"`
	Role  string  `json:"role"`
}

func (s *Server) addProjectMember(c *call) error {
	p, err := c.projectFor(true)
	if err != nil {
		return err
	}
	var in memberIn
	if err := c.body(&in, true); err != nil {
		return err
	}
	m := identity.Member{Role: identity.MemberRole(in.Role)}
	switch {
	case (in.User == nil) == (in.Group == nil):
		return badRequest("give user (a user uuid) or group (a group name), not both")
	case in.User != nil:
		m.User = *in.User
	default:
		m.Group = *in.Group
	}
	np, err := s.id.AddMember(c.r.Context(), p.UUID, m)
	if err != nil {
		return err
	}
	return c.json(http.StatusOK, projectView(np))
}

// memberOf finds the member of p the path's {id} names: a user uuid,
// else a group name.
func (c *call) memberOf(p *identity.Project) (identity.Member, error) {
	id, err := c.pathValue("id")
	if err != nil {
		return identity.Member{}, err
	}
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

func (s *Server) setProjectMemberRole(c *call) error {
	p, err := c.projectFor(true)
	if err != nil {
		return err
	}
	var in struct {
		Role *string `json:"role"`
	}
	if err := c.body(&in, true); err != nil {
		return err
	}
	if in.Role == nil {
		return badRequest("role is required")
	}
	m, err := c.memberOf(p)
	if err != nil {
		return err
	}
	m.Role = identity.MemberRole(*in.Role)
	np, err := s.id.SetMemberRole(c.r.Context(), p.UUID, m)
	if err != nil {
		return err
	}
	return c.json(http.StatusOK, projectView(np))
}

func (s *Server) removeProjectMember(c *call) error {
	p, err := c.projectFor(true)
	if err != nil {
		return err
	}
	m, err := c.memberOf(p)
	if err != nil {
		return err
	}
	if _, err := s.id.RemoveMember(c.r.Context(), p.UUID, m); err != nil {
		return err
	}
	return c.noContent()
}

func (s *Server) getProjectPolicies(c *call) error {
	p, err := c.projectFor(false)
	if err != nil {
		return err
	}
	return c.json(http.StatusOK, policiesView(p.Policies))
}

func (s *Server) setProjectPolicies(c *call) error {
	p, err := c.projectFor(true)
	if err != nil {
		return err
	}
	var in map[string]policyIn
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
	np, err := s.id.SetPolicies(c.r.Context(), p.UUID, policies)
	if err != nil {
		return err
	}
	return c.json(http.StatusOK, policiesView(np.Policies))
}

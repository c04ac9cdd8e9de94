package console

import (
	"cmp"
	"maps"
	"net/http"
	"slices"

	"github.com/quotaledger/quotaledger/api/wire"
)

// The projects page: the user's projects, each with its owner, its
// members and their roles, and what the project gives of each resource.

type projectMember struct {
	Name  string // a username, or a group's name
	Group bool
	Role  string
	You   bool
}

type projectPolicy struct {
	Resource, Unit                  string
	ProjectCapacity, MemberCapacity int64
}

type projectView struct {
	UUID, Name, Owner, State string
	Base, YouOwn             bool
	Created                  wire.Time
	Members                  []projectMember
	Policies                 []projectPolicy
}

type projectsPage struct{ Projects []projectView }

// projects shows the user's projects and their members.
func (c *Console) projects(rq *request) error {
	ctx := rq.context()
	qs, err := c.api.GetQuotas(ctx)
	if err != nil {
		return err
	}
	byID, err := c.projectsOf(ctx, slices.Collect(maps.Keys(qs)))
	if err != nil {
		return err
	}
	resources, err := c.api.GetResources(ctx)
	if err != nil {
		return err
	}
	var uuids []string
	for _, p := range byID {
		uuids = append(uuids, p.Owner)
		for _, m := range p.Members {
			if m.User != "" {
				uuids = append(uuids, m.User)
			}
		}
	}
	names, err := c.api.GetUsernames(ctx, uuids)
	if err != nil {
		return err
	}
	nameOf := func(uuid string) string {
		if n, ok := names[uuid]; ok {
			return n
		}
		return uuid // a user since deleted
	}
	var page projectsPage
	for _, p := range byID {
		v := projectView{UUID: p.UUID, Name: p.Name, Owner: nameOf(p.Owner), State: p.State, Base: p.Base,
			YouOwn: p.Owner == rq.me.UUID, Created: p.Created}
		if p.Base {
			v.Name = "Personal project"
		}
		for _, m := range p.Members {
			pm := projectMember{Role: m.Role}
			if m.User != "" {
				pm.Name, pm.You = nameOf(m.User), m.User == rq.me.UUID
			} else {
				pm.Name, pm.Group = m.Group, true
			}
			v.Members = append(v.Members, pm)
		}
		slices.SortFunc(v.Members, func(a, b projectMember) int { return cmp.Compare(a.Name, b.Name) })
		for r, pol := range p.Policies {
			v.Policies = append(v.Policies, projectPolicy{Resource: r, Unit: string(resources[r].Unit),
				ProjectCapacity: pol.ProjectCapacity, MemberCapacity: pol.MemberCapacity})
		}
		slices.SortFunc(v.Policies, func(a, b projectPolicy) int { return cmp.Compare(a.Resource, b.Resource) })
		page.Projects = append(page.Projects, v)
	}
	slices.SortFunc(page.Projects, func(a, b projectView) int {
		if a.Base != b.Base {
			if a.Base {
				return -1
			}
			return 1
		}
		return cmp.Or(cmp.Compare(a.Name, b.Name), cmp.Compare(a.UUID, b.UUID))
	})
	rq.render(http.StatusOK, "projects", "Your projects", "projects", page)
	return nil
}

package console

import (
	"cmp"
	"context"
	"fmt"
	"maps"
	"net/http"
	"slices"

	"github.com/quotaledger/quotaledger/api/wire"
)

// The quotas page: each project of the user, and in it each resource as a
// bar of the user's share (what is in use, what is pending, the limit)
// beside the project's total (every member's use of the project's own
// limit). The numbers are GET quotas' (the Astakos quotas): usage counts
// pending commissions, so what is in use is usage - pending.

// bar is a usage bar: the percentages of its scale that are in use and
// pending (the scale is the limit, or the usage where it is above it),
// and what it says to a screen reader.
type bar struct {
	Used, Pending string // percentages, "12.50"
	Over          bool   // usage above the limit
	Label         string
}

// share is a holding's numbers and its bar.
type share struct {
	Used, Pending, Limit, Free int64
	Bar                        bar
}

func newShare(unit string, usage, pending, limit int64) share {
	s := share{Used: usage - pending, Pending: pending, Limit: limit, Free: max(limit-usage, 0)}
	scale := max(limit, usage, 1)
	pct := func(n int64) string { return fmt.Sprintf("%.2f", float64(max(n, 0))*100/float64(scale)) }
	s.Bar = bar{Used: pct(s.Used), Pending: pct(pending), Over: usage > limit,
		Label: fmt.Sprintf("%s in use and %s pending of a limit of %s", amount(unit, s.Used), amount(unit, pending), amount(unit, limit))}
	return s
}

// quotaRow is one resource of a project on the quotas page.
type quotaRow struct {
	Resource, Description, Unit string
	Mine, Project               share
}

// projectQuotas is one project on the quotas page.
type projectQuotas struct {
	UUID, Name string
	Base       bool
	Rows       []quotaRow
}

type quotasPage struct {
	Projects []projectQuotas
}

// quotas shows the user's quotas.
func (c *Console) quotas(rq *request) error {
	ctx := rq.context()
	qs, err := c.api.GetQuotas(ctx)
	if err != nil {
		return err
	}
	resources, err := c.api.GetResources(ctx)
	if err != nil {
		return err
	}
	// The projects of the quotas are those the user is a member of,
	// directly or through a group (the server's own rule).
	names, err := c.projectsOf(ctx, slices.Collect(maps.Keys(qs)))
	if err != nil {
		return err
	}
	var page quotasPage
	for uuid, byResource := range qs {
		pq := projectQuotas{UUID: uuid, Name: uuid}
		if p := names[uuid]; p != nil {
			pq.Name, pq.Base = p.Name, p.Base
		}
		if pq.Base {
			pq.Name = "Personal project"
		}
		for name, q := range byResource {
			info := resources[name]
			unit := string(info.Unit)
			pq.Rows = append(pq.Rows, quotaRow{Resource: name, Description: info.Description, Unit: unit,
				Mine:    newShare(unit, q.Usage, q.Pending, q.Limit),
				Project: newShare(unit, q.ProjectUsage, q.ProjectPending, q.ProjectLimit)})
		}
		slices.SortFunc(pq.Rows, func(a, b quotaRow) int { return cmp.Compare(a.Resource, b.Resource) })
		page.Projects = append(page.Projects, pq)
	}
	// The personal project first, then by name.
	slices.SortFunc(page.Projects, func(a, b projectQuotas) int {
		if a.Base != b.Base {
			if a.Base {
				return -1
			}
			return 1
		}
		return cmp.Or(cmp.Compare(a.Name, b.Name), cmp.Compare(a.UUID, b.UUID))
	})
	rq.render(http.StatusOK, "quotas", "Your quotas", "quotas", page)
	return nil
}

// projectsOf returns the projects of uuids, by uuid.
func (c *Console) projectsOf(ctx context.Context, uuids []string) (map[string]*wire.Project, error) {
	out := make(map[string]*wire.Project, len(uuids))
	for _, id := range uuids {
		p, err := c.api.FindProjectByID(ctx, id)
		if err != nil {
			return nil, err
		}
		out[id] = p
	}
	return out, nil
}

package api

import (
	"fmt"
	"net/http"
	"strings"

	"github.com/quotaledger/quotaledger/api/wire"
	"github.com/quotaledger/quotaledger/holdings"
	"github.com/quotaledger/quotaledger/identity"
	"github.com/quotaledger/quotaledger/ledger"
)

// The Astakos quotas: /account/v1.0/quotas, service_quotas and
// service_project_quotas.

const (
	userPrefix    = "user:"
	projectPrefix = "project:"
)

// projectQuotaOf is the quota of a project's own holding.
func projectQuotaOf(v holdings.Value) wire.ProjectQuota {
	return wire.ProjectQuota{ProjectLimit: v.Limit, ProjectUsage: v.Usage(), ProjectPending: v.Pending()}
}

// projectQuota is the quota of project's own holding of resource.
func (s *Server) projectQuota(project, resource string) wire.ProjectQuota {
	v, _ := s.l.FindHoldingByKey(holdings.Key{Holder: projectPrefix + project, Source: holdings.NullSource, Resource: resource})
	return projectQuotaOf(v)
}

// quotaOf is a member holding's quota, with its project's.
func quotaOf(v holdings.Value, pq wire.ProjectQuota) wire.Quota {
	return wire.Quota{Limit: v.Limit, Usage: v.Usage(), Pending: v.Pending(),
		ProjectLimit: pq.ProjectLimit, ProjectUsage: pq.ProjectUsage, ProjectPending: pq.ProjectPending}
}

// astQuotas answers GET /account/v1.0/quotas.
func (s *Server) astQuotas(c *call) error {
	u := c.p.User
	resources := every(s.id.FindResources(identity.ResourceFilter{}))
	out := make(wire.Quotas)
	for _, p := range every(s.id.FindProjects(identity.ProjectFilter{Member: u.UUID})) {
		src := holdings.SourceOf(projectPrefix + p.UUID)
		m := make(map[string]wire.Quota)
		for _, r := range resources {
			v, ok := s.l.FindHoldingByKey(holdings.Key{Holder: u.Holder(), Source: src, Resource: r.Name})
			if !ok {
				continue
			}
			m[r.Name] = quotaOf(v, s.projectQuota(p.UUID, r.Name))
		}
		out[p.UUID] = m
	}
	return c.json(http.StatusOK, out)
}

// astServiceQuotas answers GET /account/v1.0/service_quotas.
func (s *Server) astServiceQuotas(c *call) error {
	out, err := s.serviceQuotas(c.p.Service.Name, listParam(c.q, "user", false), listParam(c.q, "project", false))
	if err != nil {
		return err
	}
	return c.json(http.StatusOK, out)
}

// serviceQuotas are the quotas of users (every user if none) in projects
// (every project if none) of the resources the service svc serves (both
// wires' service quotas).
func (s *Server) serviceQuotas(svc string, users, projects []string) (map[string]wire.Quotas, error) {
	served := s.id.ServedResources(svc)
	out := make(map[string]wire.Quotas)
	if len(served) > 0 {
		f := ledger.HoldingFilter{Resources: served}
		for _, u := range users {
			f.Holders = append(f.Holders, userPrefix+u)
		}
		for _, p := range projects {
			f.Sources = append(f.Sources, holdings.SourceOf(projectPrefix+p))
		}
		for _, h := range s.l.FindHoldings(f) {
			uuid, ok := strings.CutPrefix(h.Holder, userPrefix)
			if !ok || h.Source.IsNull() {
				continue
			}
			src, isProject := strings.CutPrefix(h.Source.Name(), projectPrefix)
			var pq wire.ProjectQuota
			if isProject {
				pq = s.projectQuota(src, h.Resource)
			}
			if out[uuid] == nil {
				out[uuid] = make(wire.Quotas)
			}
			if out[uuid][src] == nil {
				out[uuid][src] = make(map[string]wire.Quota)
			}
			out[uuid][src][h.Resource] = quotaOf(h.Value, pq)
		}
	}
	for _, u := range users {
		if _, ok := out[u]; !ok {
			return nil, newFault(http.StatusNotFound, fmt.Sprintf("No such user '%s'", u))
		}
	}
	return out, nil
}

// astServiceProjectQuotas answers GET /account/v1.0/service_project_quotas.
func (s *Server) astServiceProjectQuotas(c *call) error {
	out, err := s.serviceProjectQuotas(c.p.Service.Name, listParam(c.q, "project", false))
	if err != nil {
		return err
	}
	return c.json(http.StatusOK, out)
}

// serviceProjectQuotas are the quotas of projects (every project if
// none) of the resources the service svc serves (both wires' service
// project quotas).
func (s *Server) serviceProjectQuotas(svc string, projects []string) (wire.ProjectQuotas, error) {
	served := s.id.ServedResources(svc)
	out := make(wire.ProjectQuotas)
	if len(served) > 0 {
		f := ledger.HoldingFilter{Resources: served, Sources: []holdings.Source{holdings.NullSource}}
		for _, p := range projects {
			f.Holders = append(f.Holders, projectPrefix+p)
		}
		for _, h := range s.l.FindHoldings(f) {
			p, ok := strings.CutPrefix(h.Holder, projectPrefix)
			if !ok {
				continue
			}
			if out[p] == nil {
				out[p] = make(map[string]wire.ProjectQuota)
			}
			out[p][h.Resource] = projectQuotaOf(h.Value)
		}
	}
	for _, p := range projects {
		if _, ok := out[p]; !ok {
			return nil, newFault(http.StatusNotFound, fmt.Sprintf("No such project '%s'", p))
		}
	}
	return out, nil
}

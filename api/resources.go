package api

import (
	"net/http"

	"github.com/quotaledger/quotaledger/identity"
)

func resourceView(r *identity.Resource) map[string]any {
	var unit any
	if r.Unit != "" {
		unit = r.Unit
	}
	return map[string]any{"name": r.Name, "service": r.Service, "unit": unit, "description": r.Description,
		"allow_in_projects": r.AllowInProjects, "uplimit": r.UpLimit, "project_default": r.ProjectDefault,
		"created": rfc3339(r.Created)}
}

func (s *Server) createResource(c *call) error {
	var in struct {
		Name            *string `json:"name"`
		Service         *string `json:"service"`
		Unit            *string `json:"unit"`
		Description     string  `json:"description"`
		AllowInProjects bool    `json:"allow_in_projects"`
		UpLimit         int64   `json:"uplimit"`
		ProjectDefault  int64   `json:"project_default"`
	}
	if err := c.body(&in, true); err != nil {
		return err
	}
	if in.Name == nil || in.Service == nil {
		return badRequest("name and service are required")
	}
	r := identity.Resource{Name: *in.Name, Service: *in.Service, Description: in.Description,
		AllowInProjects: in.AllowInProjects, UpLimit: in.UpLimit, ProjectDefault: in.ProjectDefault}
	if in.Unit != nil {
		r.Unit = *in.Unit
	}
	res, err := s.id.RegisterResource(c.r.Context(), r)
	if err != nil {
		return err
	}
	return c.json(http.StatusCreated, resourceView(res))
}

package api

import (
	"net/http"

	"github.com/quotaledger/quotaledger/api/wire"
	"github.com/quotaledger/quotaledger/identity"
)

// Registering resources: POST /account/v1.0/resources (the Astakos GET is
// in astakos_resources.go).

// resourceView is a registered resource as the API shows it.
func resourceView(r *identity.Resource) wire.Resource {
	return wire.Resource{Name: r.Name, Service: r.Service, Unit: wire.NullString(r.Unit), Description: r.Description,
		AllowInProjects: r.AllowInProjects, UpLimit: r.UpLimit, ProjectDefault: r.ProjectDefault,
		Created: wire.TimeOf(r.Created)}
}

// createResource answers POST /account/v1.0/resources.
func (s *Server) createResource(c *call) error {
	var in wire.NewResource
	if err := c.body(&in, true); err != nil {
		return err
	}
	if in.Name == "" || in.Service == "" {
		return badRequest("name and service are required")
	}
	r := identity.Resource{Name: in.Name, Service: in.Service, Description: in.Description,
		AllowInProjects: in.AllowInProjects, UpLimit: in.UpLimit, ProjectDefault: in.ProjectDefault}
	if in.Unit != nil {
		r.Unit = *in.Unit
	}
	res, err := s.id.CreateResource(c.r.Context(), r)
	if err != nil {
		return err
	}
	return c.json(http.StatusCreated, resourceView(res))
}

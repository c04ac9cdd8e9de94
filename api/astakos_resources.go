package api

import (
	"net/http"
	"strconv"

	"github.com/quotaledger/quotaledger/api/wire"
	"github.com/quotaledger/quotaledger/identity"
)

// The Astakos resource and service lists: GET /account/v1.0/resources and
// GET /ui/get_services.

// astResources answers GET /account/v1.0/resources.
func (s *Server) astResources(c *call) error {
	out := make(map[string]wire.ResourceInfo)
	for _, r := range every(s.id.FindResources(identity.ResourceFilter{})) {
		out[r.Name] = wire.ResourceInfo{Unit: wire.NullString(r.Unit), Description: r.Description, Service: r.Service,
			AllowInProjects: r.AllowInProjects}
	}
	return c.json(http.StatusOK, out)
}

// astGetServices answers GET /ui/get_services.
func (s *Server) astGetServices(c *call) error {
	out := []wire.ServiceSummary{}
	for i, svc := range every(s.id.FindServices(identity.ServiceFilter{})) {
		u := ""
		if len(svc.Endpoints) > 0 {
			u = svc.Endpoints[0].PublicURL
		}
		out = append(out, wire.ServiceSummary{ID: strconv.Itoa(i + 1), Name: svc.Name, Type: svc.Type, URL: u})
	}
	return c.json(http.StatusOK, out)
}

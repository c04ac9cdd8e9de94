package api

import (
	"net/http"
	"strconv"
)

func (s *Server) astResources(c *call) error {
	out := make(map[string]any)
	for _, r := range s.id.Resources() {
		var unit any
		if r.Unit != "" {
			unit = r.Unit
		}
		out[r.Name] = map[string]any{"unit": unit, "description": r.Description, "service": r.Service,
			"allow_in_projects": r.AllowInProjects}
	}
	return c.json(http.StatusOK, out)
}

func (s *Server) astGetServices(c *call) error {
	out := []map[string]any{}
	for i, svc := range s.id.Services() {
		u := ""
		if len(svc.Endpoints) > 0 {
			u = svc.Endpoints[0].PublicURL
		}
		out = append(out, map[string]any{"id": strconv.Itoa(i + 1), "name": svc.Name, "type": svc.Type, "url": u})
	}
	return c.json(http.StatusOK, out)
}

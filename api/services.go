package api

import (
	"encoding/json"
	"net/http"
	"time"

	"github.com/quotaledger/quotaledger/identity"
)

func serviceView(svc *identity.Service) map[string]any {
	eps := svc.Endpoints
	if eps == nil {
		eps = []identity.Endpoint{}
	}
	return map[string]any{"name": svc.Name, "type": svc.Type, "endpoints": eps, "token_id": svc.TokenID,
		"created": rfc3339(svc.Created)}
}

func (s *Server) listServices(c *call) error {
	q := c.q
	return paginate(c, q, s.id.Services(), func(svc *identity.Service) any { return serviceView(svc) })
}

type endpointIn struct {
	PublicURL string `json:"publicURL"`
	VersionID string `json:"versionId"`
	Region    string `json:"region"`
}

func (s *Server) createService(c *call) error {
	var in struct {
		Name         *string         `json:"name"`
		Type         string          `json:"type"`
		Endpoints    []endpointIn    `json:"endpoints"`
		TokenExpires json.RawMessage `json:"token_expires"`
	}
	if err := c.body(&in, true); err != nil {
		return err
	}
	if in.Name == nil {
		return badRequest("name is required")
	}
	exp, err := optTime("token_expires", in.TokenExpires)
	if err != nil {
		return err
	}
	ns := identity.NewService{Name: *in.Name, Type: in.Type, Endpoints: make([]identity.Endpoint, 0, len(in.Endpoints))}
	for _, e := range in.Endpoints {
		ns.Endpoints = append(ns.Endpoints, identity.Endpoint{PublicURL: e.PublicURL, VersionID: e.VersionID, Region: e.Region})
	}
	if exp != nil {
		ns.TokenExpires = *exp
	}
	secret, svc, err := s.id.RegisterService(c.r.Context(), ns)
	if err != nil {
		return err
	}
	v := serviceView(svc)
	v["token"] = secret
	v["token_expires"] = rfc3339(ns.TokenExpires)
	return c.json(http.StatusCreated, v)
}

func (s *Server) getService(c *call) error {
	name, err := c.pathValue("name")
	if err != nil {
		return err
	}
	svc, err := s.id.GetService(name)
	if err != nil {
		return err
	}
	return c.json(http.StatusOK, serviceView(svc))
}

func (s *Server) deleteService(c *call) error {
	name, err := c.pathValue("name")
	if err != nil {
		return err
	}
	if err := s.id.RemoveService(c.r.Context(), name); err != nil {
		return err
	}
	return c.noContent()
}

func (s *Server) renewServiceToken(c *call) error {
	name, err := c.pathValue("name")
	if err != nil {
		return err
	}
	var in struct {
		Expires json.RawMessage `json:"expires"`
	}
	if err := c.optionalBody(&in); err != nil {
		return err
	}
	exp, err := optTime("expires", in.Expires)
	if err != nil {
		return err
	}
	var expires time.Time
	if exp != nil {
		expires = *exp
	}
	secret, svc, err := s.id.RenewServiceToken(c.r.Context(), name, expires)
	if err != nil {
		return err
	}
	v := serviceView(svc)
	v["token"] = secret
	v["token_expires"] = rfc3339(expires)
	return c.json(http.StatusOK, v)
}

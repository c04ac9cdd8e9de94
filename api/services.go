package api

import (
	"net/http"
	"time"

	"github.com/quotaledger/quotaledger/api/wire"
	"github.com/quotaledger/quotaledger/identity"
)

// Services: /account/v1.0/services.

// serviceView is a registered service as the API shows it (without its
// token).
func serviceView(svc *identity.Service) wire.Service {
	v := wire.Service{Name: svc.Name, Type: svc.Type, Endpoints: make([]wire.ServiceEndpoint, 0, len(svc.Endpoints)),
		TokenID: svc.TokenID, Created: wire.TimeOf(svc.Created)}
	for _, e := range svc.Endpoints {
		v.Endpoints = append(v.Endpoints, wire.ServiceEndpoint{PublicURL: e.PublicURL, VersionID: e.VersionID, Region: e.Region})
	}
	return v
}

// withToken is a service's view with its new token, shown this once, and
// when that expires (left out: never).
func withToken(svc *identity.Service, secret string, expires time.Time) wire.Service {
	v := serviceView(svc)
	v.Token = secret
	if !expires.IsZero() {
		exp := wire.TimeOf(expires)
		v.TokenExpires = &exp
	}
	return v
}

// listServices answers GET /account/v1.0/services.
func (s *Server) listServices(c *call) error {
	return paginate(c, func(offset, limit int) ([]*identity.Service, int, error) {
		return s.id.FindServices(identity.ServiceFilter{Offset: offset, Limit: limit})
	}, serviceView)
}

// createService answers POST /account/v1.0/services.
func (s *Server) createService(c *call) error {
	var in wire.NewService
	if err := c.body(&in, true); err != nil {
		return err
	}
	if in.Name == "" {
		return badRequest("name is required")
	}
	ns := identity.NewService{Name: in.Name, Type: in.Type, Endpoints: make([]identity.Endpoint, 0, len(in.Endpoints))}
	for _, e := range in.Endpoints {
		ns.Endpoints = append(ns.Endpoints, identity.Endpoint{PublicURL: e.PublicURL, VersionID: e.VersionID, Region: e.Region})
	}
	if in.TokenExpires != nil {
		ns.TokenExpires = in.TokenExpires.UTC()
	}
	secret, svc, err := s.id.CreateService(c.r.Context(), ns)
	if err != nil {
		return err
	}
	return c.json(http.StatusCreated, withToken(svc, secret, ns.TokenExpires))
}

// getService answers GET /account/v1.0/services/{name}.
func (s *Server) getService(c *call) error {
	name := c.r.PathValue("name")
	svc, err := s.id.FindServiceByName(name)
	if err != nil {
		return err
	}
	return c.json(http.StatusOK, serviceView(svc))
}

// deleteService answers DELETE /account/v1.0/services/{name}.
func (s *Server) deleteService(c *call) error {
	name := c.r.PathValue("name")
	if err := s.id.DeleteService(c.r.Context(), name); err != nil {
		return err
	}
	return c.noContent()
}

// renewServiceToken answers POST /account/v1.0/services/{name}/token.
func (s *Server) renewServiceToken(c *call) error {
	name := c.r.PathValue("name")
	var in wire.ServiceTokenRenew
	if err := c.optionalBody(&in); err != nil {
		return err
	}
	secret, svc, err := s.id.RenewServiceToken(c.r.Context(), name, in.Expires.Time)
	if err != nil {
		return err
	}
	return c.json(http.StatusOK, withToken(svc, secret, in.Expires.Time))
}

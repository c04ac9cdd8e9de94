package api

import (
	"bytes"
	"net/http"

	"github.com/quotaledger/quotaledger/api/wire"
	"github.com/quotaledger/quotaledger/identity"
)

// The Astakos identity API: POST /identity/v2.0/tokens and GET
// /identity/v2.0/tokens/{token}.

// serviceCatalog lists the server itself (astakos_account, astakos_identity)
// then every registered service.
func (c *call) serviceCatalog() []wire.CatalogEntry {
	base := c.baseURL()
	ui := base + "/ui"
	out := []wire.CatalogEntry{
		{Name: "astakos_account", Type: "account", EndpointsLinks: []any{}, Endpoints: []wire.CatalogEndpoint{{
			VersionID: "v1.0", PublicURL: base + "/account/v1.0", UIURL: ui, Region: "default"}}},
		{Name: "astakos_identity", Type: "identity", EndpointsLinks: []any{}, Endpoints: []wire.CatalogEndpoint{{
			VersionID: "v2.0", PublicURL: base + "/identity/v2.0", UIURL: ui, Region: "default"}}},
	}
	for _, svc := range every(c.s.id.FindServices(identity.ServiceFilter{})) {
		if svc.Name == "astakos_account" || svc.Name == "astakos_identity" {
			continue
		}
		e := wire.CatalogEntry{Name: svc.Name, Type: svc.Type, EndpointsLinks: []any{}, Endpoints: []wire.CatalogEndpoint{}}
		for _, ep := range svc.Endpoints {
			region := ep.Region
			if region == "" {
				region = "default"
			}
			e.Endpoints = append(e.Endpoints, wire.CatalogEndpoint{VersionID: ep.VersionID, PublicURL: ep.PublicURL, Region: region})
		}
		out = append(out, e)
	}
	return out
}

// tokenAccess is the token part of an Access.
func tokenAccess(secret string, p identity.Principal) *wire.AccessTokenInfo {
	u := p.User
	return &wire.AccessTokenInfo{ID: secret, Expires: wire.TimeOf(p.Token.Expires),
		Tenant: wire.Tenant{ID: u.UUID, Name: realName(u)}}
}

// accessUser is the user part of an Access (projects: nil leaves them out).
func (s *Server) accessUser(u *identity.User, projects []string) *wire.AccessUser {
	return &wire.AccessUser{ID: u.UUID, Name: realName(u), Roles: s.roles(u), RolesLinks: []any{}, Projects: projects}
}

// astTokens answers POST /identity/v2.0/tokens.
func (s *Server) astTokens(c *call) error {
	body, err := readBody(c.r, c.s.opts.MaxBody)
	if err != nil {
		return err
	}
	if len(bytes.TrimSpace(body)) == 0 {
		return c.json(http.StatusOK, wire.TokensAnswer{Access: wire.Access{ServiceCatalog: c.serviceCatalog()}})
	}
	root, err := parseObject(body)
	if err != nil {
		return err
	}
	authRaw, ok := root["auth"]
	if !ok || isNull(authRaw) {
		return badRequest("Malformed request: missing credentials")
	}
	auth, err := parseObject(authRaw)
	if err != nil {
		return badRequest("Malformed request: \"auth\" must be an object")
	}
	var secret, uuid string
	var haveUUID bool
	if tokRaw, ok := auth["token"]; ok {
		tok, err := parseObject(tokRaw)
		if err != nil {
			return badRequest("Malformed request: \"auth.token\" must be an object")
		}
		idRaw, ok := tok["id"]
		if !ok {
			return badRequest("Malformed request: missing credentials")
		}
		if isNull(idRaw) {
			return badRequest("Malformed request: missing token")
		}
		if secret, ok = rawString(idRaw); !ok {
			return badRequest("Malformed request: \"auth.token.id\" must be a string")
		}
	} else if pcRaw, ok := auth["passwordCredentials"]; ok {
		pc, err := parseObject(pcRaw)
		if err != nil {
			return badRequest("Malformed request: \"auth.passwordCredentials\" must be an object")
		}
		pw, okP := pc["password"]
		un, okU := pc["username"]
		if !okP || !okU {
			return badRequest("Malformed request: missing credentials")
		}
		if isNull(pw) {
			return badRequest("Malformed request: missing token")
		}
		if secret, ok = rawString(pw); !ok {
			return badRequest("Malformed request: \"auth.passwordCredentials.password\" must be a string")
		}
		if uuid, ok = rawString(un); !ok {
			return badRequest("Malformed request: \"auth.passwordCredentials.username\" must be a string")
		}
		haveUUID = true
	} else {
		return badRequest("Malformed request: missing credentials")
	}
	var tenant string
	if tRaw, ok := auth["tenantName"]; ok && !isNull(tRaw) {
		if tenant, ok = rawString(tRaw); !ok {
			return badRequest("Malformed request: \"auth.tenantName\" must be a string")
		}
	}
	p, err := c.s.id.Authenticate(secret)
	if err != nil {
		c.s.metrics.authFailed(identity.AuthFailure(err))
	}
	if err != nil || p.User == nil {
		return newFault(http.StatusUnauthorized, "Invalid token")
	}
	u := p.User
	if haveUUID && u.UUID != uuid {
		return newFault(http.StatusUnauthorized, "Invalid credentials")
	}
	if tenant != "" && tenant != u.UUID {
		return badRequest("Not conforming tenantName")
	}
	projects := []string{}
	for _, pr := range every(c.s.id.FindProjects(identity.ProjectFilter{Member: u.UUID})) {
		projects = append(projects, pr.UUID)
	}
	return c.json(http.StatusOK, wire.TokensAnswer{Access: wire.Access{Token: tokenAccess(secret, p),
		User: s.accessUser(u, projects), ServiceCatalog: c.serviceCatalog()}})
}

// astValidateToken answers GET /identity/v2.0/tokens/{token}.
func (s *Server) astValidateToken(c *call) error {
	q := c.q
	out, err := s.validateToken(c.r.PathValue("token"), q.Get("belongsTo"), q.Has("belongsTo"))
	if err != nil {
		return err
	}
	return c.json(http.StatusOK, out)
}

// validateToken validates a user's token secret (both wires' token
// validation): unknown, expired or not a user's, or not the user
// belongsTo when checkOwner, it is not found.
func (s *Server) validateToken(secret, belongsTo string, checkOwner bool) (wire.TokensAnswer, error) {
	p, err := s.id.Authenticate(secret)
	if err != nil || p.User == nil {
		return wire.TokensAnswer{}, newFault(http.StatusNotFound, "Invalid token")
	}
	u := p.User
	if checkOwner && belongsTo != u.UUID {
		return wire.TokensAnswer{}, newFault(http.StatusNotFound, "The specified tenant is outside the token's scope")
	}
	return wire.TokensAnswer{Access: wire.Access{Token: tokenAccess(secret, p), User: s.accessUser(u, nil)}}, nil
}

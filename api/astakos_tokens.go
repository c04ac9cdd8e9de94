package api

import (
	"bytes"
	"net/http"

	"github.com/quotaledger/quotaledger/identity"
)

type catalogEndpoint = map[string]any

type catalogEntry struct {
	Name           string            `json:"name"`
	Type           string            `json:"type"`
	Endpoints      []catalogEndpoint `json:"endpoints"`
	EndpointsLinks []any             `json:"endpoints_links"`
}

// serviceCatalog lists the server itself (astakos_account, astakos_identity)
// then every registered service.
func (c *call) serviceCatalog() []catalogEntry {
	base := c.baseURL()
	ui := base + "/ui"
	out := []catalogEntry{
		{Name: "astakos_account", Type: "account", EndpointsLinks: []any{}, Endpoints: []catalogEndpoint{{
			"versionId": "v1.0", "publicURL": base + "/account/v1.0", "SNF:uiURL": ui, "region": "default"}}},
		{Name: "astakos_identity", Type: "identity", EndpointsLinks: []any{}, Endpoints: []catalogEndpoint{{
			"versionId": "v2.0", "publicURL": base + "/identity/v2.0", "SNF:uiURL": ui, "region": "default"}}},
	}
	for _, svc := range c.s.id.Services() {
		if svc.Name == "astakos_account" || svc.Name == "astakos_identity" {
			continue
		}
		e := catalogEntry{Name: svc.Name, Type: svc.Type, EndpointsLinks: []any{}, Endpoints: []catalogEndpoint{}}
		for _, ep := range svc.Endpoints {
			m := catalogEndpoint{"publicURL": ep.PublicURL, "region": "default"}
			if ep.VersionID != "" {
				m["versionId"] = ep.VersionID
			}
			if ep.Region != "" {
				m["region"] = ep.Region
			}
			e.Endpoints = append(e.Endpoints, m)
		}
		out = append(out, e)
	}
	return out
}

func (s *Server) tokenAccess(secret string, p identity.Principal) map[string]any {
	u := p.User
	return map[string]any{
		"id":      secret,
		"expires": rfc3339(p.Token.Expires),
		"tenant":  map[string]string{"id": u.UUID, "name": realName(u)},
	}
}

func (s *Server) astTokens(c *call) error {
	body, err := readBody(c.r, c.s.opts.MaxBody)
	if err != nil {
		return err
	}
	if len(bytes.TrimSpace(body)) == 0 {
		return c.json(http.StatusOK, map[string]any{"access": map[string]any{"serviceCatalog": c.serviceCatalog()}})
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
	for _, pr := range c.s.id.ProjectsOf(u.UUID) {
		projects = append(projects, pr.UUID)
	}
	return c.json(http.StatusOK, map[string]any{"access": map[string]any{
		"token": c.s.tokenAccess(secret, p),
		"user": map[string]any{"id": u.UUID, "name": realName(u), "roles": c.s.roles(u),
			"roles_links": []any{}, "projects": projects},
		"serviceCatalog": c.serviceCatalog(),
	}})
}

func (s *Server) astValidateToken(c *call) error {
	secret := c.r.PathValue("token")
	p, err := s.id.Authenticate(secret)
	if err != nil || p.User == nil {
		return newFault(http.StatusNotFound, "Invalid token")
	}
	u := p.User
	if q := c.q; q.Has("belongsTo") && q.Get("belongsTo") != u.UUID {
		return newFault(http.StatusNotFound, "The specified tenant is outside the token's scope")
	}
	return c.json(http.StatusOK, map[string]any{"access": map[string]any{
		"token": s.tokenAccess(secret, p),
		"user": map[string]any{"id": u.UUID, "name": realName(u), "roles": s.roles(u),
			"roles_links": []any{}},
	}})
}

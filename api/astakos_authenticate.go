package api

import (
	"net/http"
	"strings"

	"github.com/quotaledger/quotaledger/holdings"
)

func (s *Server) astAuthenticate(c *call) error {
	u := c.p.User
	info := map[string]any{
		"uuid":               u.UUID,
		"username":           u.Username,
		"displayname":        u.Username,
		"name":               realName(u),
		"email":              []string{u.Username},
		"groups":             s.groupNames(u),
		"auth_token_created": epochMillis(c.p.Token.Created),
		"auth_token_expires": epochMillis(c.p.Token.Expires),
	}
	if v := c.q.Get("usage"); v != "" && v != "0" && !strings.EqualFold(v, "false") {
		usage := []map[string]any{}
		src := holdings.SourceOf(projectPrefix + u.UUID)
		for _, r := range s.id.Resources() {
			h, ok := s.l.Holding(holdings.Key{Holder: u.Holder(), Source: src, Resource: r.Name})
			if !ok {
				continue
			}
			var unit any
			if r.Unit != "" {
				unit = r.Unit
			}
			usage = append(usage, map[string]any{"name": r.Name, "description": r.Description, "unit": unit,
				"maxValue": h.Limit, "currValue": h.Usage()})
		}
		info["usage"] = usage
	}
	return c.json(http.StatusOK, info)
}

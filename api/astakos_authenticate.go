package api

import (
	"net/http"
	"strings"

	"github.com/quotaledger/quotaledger/api/wire"
	"github.com/quotaledger/quotaledger/holdings"
	"github.com/quotaledger/quotaledger/identity"
)

// The 2013 clients' user info: GET /account/v1.0/authenticate.

// astAuthenticate answers GET /account/v1.0/authenticate.
func (s *Server) astAuthenticate(c *call) error {
	u := c.p.User
	info := wire.UserInfo{
		UUID:             u.UUID,
		Username:         u.Username,
		DisplayName:      u.Username,
		Name:             realName(u),
		Email:            []string{u.Username},
		Groups:           s.groupNames(u),
		AuthTokenCreated: wire.MillisOf(c.p.Token.Created),
		AuthTokenExpires: wire.MillisOf(c.p.Token.Expires),
	}
	if v := c.q.Get("usage"); v != "" && v != "0" && !strings.EqualFold(v, "false") {
		info.Usage = []wire.UsageEntry{}
		src := holdings.SourceOf(projectPrefix + u.UUID)
		for _, r := range every(s.id.FindResources(identity.ResourceFilter{})) {
			h, ok := s.l.FindHoldingByKey(holdings.Key{Holder: u.Holder(), Source: src, Resource: r.Name})
			if !ok {
				continue
			}
			info.Usage = append(info.Usage, wire.UsageEntry{Name: r.Name, Description: r.Description,
				Unit: wire.NullString(r.Unit), MaxValue: h.Limit, CurrValue: h.Usage()})
		}
	}
	return c.json(http.StatusOK, info)
}

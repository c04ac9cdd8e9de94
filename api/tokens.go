package api

import (
	"encoding/json"
	"net/http"
	"time"

	"github.com/quotaledger/quotaledger/identity"
)

func tokenView(t *identity.Token) map[string]any {
	return map[string]any{
		"id": t.ID, "name": t.Name, "kind": t.Kind, "owner": t.Owner, "read_only": t.ReadOnly,
		"expires": rfc3339(t.Expires), "created": rfc3339(t.Created), "updated": rfc3339(t.Updated),
		"last_used": rfc3339(t.LastUsed),
	}
}

func (s *Server) createToken(c *call) error {
	var in struct {
		Name       *string         `json:"name"`
		Expires    json.RawMessage `json:"expires"`
		ExpiryDate json.RawMessage `json:"expiry_date"`
		ReadOnly   bool            `json:"read_only"`
	}
	if err := c.body(&in, true); err != nil {
		return err
	}
	if in.Name == nil {
		return badRequest("name is required")
	}
	if in.Expires != nil && in.ExpiryDate != nil {
		return badRequest("give expires or expiry_date, not both")
	}
	raw, field := in.Expires, "expires"
	if in.ExpiryDate != nil {
		raw, field = in.ExpiryDate, "expiry_date"
	}
	exp, err := optTime(field, raw)
	if err != nil {
		return err
	}
	var expires time.Time
	if exp != nil {
		expires = *exp
	}
	secret, tok, err := s.id.CreateAccessToken(c.r.Context(), c.p.User.UUID, *in.Name, expires, in.ReadOnly)
	if err != nil {
		return err
	}
	v := tokenView(tok)
	v["token"] = secret
	return c.json(http.StatusCreated, v)
}

func (s *Server) listTokens(c *call) error {
	q := c.q
	page, size, err := paging(q)
	if err != nil {
		return err
	}
	owner := c.p.User.UUID
	if o := q.Get("owner"); o != "" && o != owner {
		if !c.p.IsAdmin() {
			return newFault(http.StatusForbidden, "only admins list other users' tokens")
		}
		owner = o
		if o == "*" {
			owner = ""
		}
	}
	tq := identity.TokenQuery{Owner: owner, Name: q.Get("name"), Search: q.Get("search"), Sort: q.Get("sort"),
		Page: page, PageSize: size}
	if f := q.Get("filter"); f != "" {
		tq.Filter = json.RawMessage(f)
	}
	res, err := s.id.ListAccessTokens(tq)
	if err != nil {
		return err
	}
	out := make([]any, 0, len(res.Results))
	for _, t := range res.Results {
		out = append(out, tokenView(t))
	}
	return c.list(res.Count, page, size, out)
}

func (s *Server) selfToken(c *call) error {
	t, err := s.id.SelfToken(c.p)
	if err != nil {
		return err
	}
	return c.json(http.StatusOK, tokenView(t))
}

// tokenOwner is the owner a token call is limited to: the caller, or
// anyone ("") for admins.
func (c *call) tokenOwner() string {
	if c.p.IsAdmin() {
		return ""
	}
	return c.p.User.UUID
}

func (s *Server) getToken(c *call) error {
	id, err := c.pathValue("id")
	if err != nil {
		return err
	}
	var t *identity.Token
	if owner := c.tokenOwner(); owner == "" {
		t, err = s.id.GetAccessTokenAny(id)
	} else {
		t, err = s.id.GetAccessToken(owner, id)
	}
	if err != nil {
		return err
	}
	return c.json(http.StatusOK, tokenView(t))
}

func (s *Server) updateToken(c *call) error {
	id, err := c.pathValue("id")
	if err != nil {
		return err
	}
	var in struct {
		Name       *string         `json:"name"`
		Expires    json.RawMessage `json:"expires"`
		ExpiryDate json.RawMessage `json:"expiry_date"`
		ReadOnly   *bool           `json:"read_only"`
	}
	if err := c.body(&in, true); err != nil {
		return err
	}
	if in.Expires != nil && in.ExpiryDate != nil {
		return badRequest("give expires or expiry_date, not both")
	}
	raw, field := in.Expires, "expires"
	if in.ExpiryDate != nil {
		raw, field = in.ExpiryDate, "expiry_date"
	}
	exp, err := optTime(field, raw)
	if err != nil {
		return err
	}
	t, err := s.id.UpdateAccessToken(c.r.Context(), c.tokenOwner(), id,
		identity.TokenUpdate{Name: in.Name, Expires: exp, ReadOnly: in.ReadOnly})
	if err != nil {
		return err
	}
	return c.json(http.StatusOK, tokenView(t))
}

func (s *Server) revokeToken(c *call) error {
	id, err := c.pathValue("id")
	if err != nil {
		return err
	}
	if err := s.id.RevokeToken(c.r.Context(), c.tokenOwner(), id); err != nil {
		return err
	}
	return c.noContent()
}

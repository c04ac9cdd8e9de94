package api

import (
	"encoding/json"
	"net/http"
	"time"

	"github.com/quotaledger/quotaledger/api/wire"
	"github.com/quotaledger/quotaledger/identity"
)

// Personal access tokens: /account/v1.0/access_tokens.

// tokenView is an access token as the API shows one (without its secret).
func tokenView(t *identity.Token) wire.AccessToken {
	return wire.AccessToken{ID: t.ID, Name: t.Name, Kind: string(t.Kind), Owner: t.Owner, ReadOnly: t.ReadOnly,
		Expires: wire.TimeOf(t.Expires), Created: wire.TimeOf(t.Created), Updated: wire.TimeOf(t.Updated),
		LastUsed: wire.TimeOf(t.LastUsed)}
}

// expiryOf is the expiry a token request gives, under either of its names:
// nil when left out, the zero time for null (never).
func expiryOf(expires, expiryDate wire.OptTime) (*time.Time, error) {
	switch {
	case expires.Set && expiryDate.Set:
		return nil, badRequest("give expires or expiry_date, not both")
	case expires.Set:
		return &expires.Time, nil
	case expiryDate.Set:
		return &expiryDate.Time, nil
	}
	return nil, nil
}

// createToken answers POST /account/v1.0/access_tokens.
func (s *Server) createToken(c *call) error {
	var in wire.AccessTokenCreate
	if err := c.body(&in, true); err != nil {
		return err
	}
	if in.Name == "" {
		return badRequest("name is required")
	}
	exp, err := expiryOf(in.Expires, in.ExpiryDate)
	if err != nil {
		return err
	}
	var expires time.Time
	if exp != nil {
		expires = *exp
	}
	secret, tok, err := s.id.CreateAccessToken(c.r.Context(), c.p.User.UUID, in.Name, expires, in.ReadOnly)
	if err != nil {
		return err
	}
	v := tokenView(tok)
	v.Token = secret
	return c.json(http.StatusCreated, v)
}

// listTokens answers GET /account/v1.0/access_tokens.
func (s *Server) listTokens(c *call) error {
	q := c.q
	if _, err := paging(q); err != nil {
		return err // a bad page is refused before the owner is checked, as it always was
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
	f := identity.TokenFilter{Owner: owner, Name: q.Get("name"), Search: q.Get("search"), Sort: q.Get("sort")}
	if v := q.Get("filter"); v != "" {
		f.Filter = json.RawMessage(v)
	}
	return paginate(c, func(offset, limit int) ([]*identity.Token, int, error) {
		f.Offset, f.Limit = offset, limit
		return s.id.FindAccessTokens(f)
	}, tokenView)
}

// selfToken answers GET /account/v1.0/access_tokens/self.
func (s *Server) selfToken(c *call) error {
	t, err := s.id.FindSelfAccessToken(c.p)
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

// getToken answers GET /account/v1.0/access_tokens/{id}.
func (s *Server) getToken(c *call) error {
	id := c.r.PathValue("id")
	var t *identity.Token
	var err error
	if owner := c.tokenOwner(); owner == "" {
		t, err = s.id.FindAnyAccessTokenByID(id)
	} else {
		t, err = s.id.FindAccessTokenByID(owner, id)
	}
	if err != nil {
		return err
	}
	return c.json(http.StatusOK, tokenView(t))
}

// updateToken answers PATCH /account/v1.0/access_tokens/{id}.
func (s *Server) updateToken(c *call) error {
	id := c.r.PathValue("id")
	var in wire.AccessTokenUpdate
	if err := c.body(&in, true); err != nil {
		return err
	}
	exp, err := expiryOf(in.Expires, in.ExpiryDate)
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

// deleteToken answers DELETE /account/v1.0/access_tokens/{id}.
func (s *Server) deleteToken(c *call) error {
	id := c.r.PathValue("id")
	if err := s.id.DeleteAccessToken(c.r.Context(), c.tokenOwner(), id); err != nil {
		return err
	}
	return c.noContent()
}

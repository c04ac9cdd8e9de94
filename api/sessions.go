package api

import (
	"net/http"

	"github.com/quotaledger/quotaledger/api/wire"
	"github.com/quotaledger/quotaledger/identity"
)

// Sessions: /account/v1.0/sessions. A user lists, looks at and ends their
// own sessions; an admin anyone's (?user=UUID, or * for every user's).
// Personal access tokens are not sessions (access_tokens), and sessions
// are not personal access tokens: each collection answers 404 for the
// other's ids.

// sessionView is a session as the API shows one.
func (c *call) sessionView(t *identity.Token) wire.SessionInfo {
	return wire.SessionInfo{ID: t.ID, User: t.Owner, Created: wire.TimeOf(t.Created), Expires: wire.TimeOf(t.Expires),
		LastUsed: wire.TimeOf(t.LastUsed), Address: t.Address, UserAgent: t.UserAgent,
		Current: c.p.Token != nil && c.p.Token.ID == t.ID}
}

// sessionOwner is the user a session call is limited to: the caller, or
// anyone ("") for admins.
func (c *call) sessionOwner() string {
	if c.p.IsAdmin() {
		return ""
	}
	return c.p.User.UUID
}

// listSessions answers GET /account/v1.0/sessions.
func (s *Server) listSessions(c *call) error {
	if _, err := paging(c.q); err != nil {
		return err
	}
	user := c.p.User.UUID
	if u := c.q.Get("user"); u != "" && u != user {
		if !c.p.IsAdmin() {
			return newFault(http.StatusForbidden, "only admins list other users' sessions")
		}
		user = u
		if u == "*" {
			user = ""
		}
	}
	return paginate(c, func(offset, limit int) ([]*identity.Token, int, error) {
		return s.id.FindSessions(identity.SessionFilter{User: user, Offset: offset, Limit: limit})
	}, c.sessionView)
}

// getSession answers GET /account/v1.0/sessions/{id}.
func (s *Server) getSession(c *call) error {
	t, err := s.id.FindSessionByID(c.sessionOwner(), c.r.PathValue("id"))
	if err != nil {
		return err
	}
	return c.json(http.StatusOK, c.sessionView(t))
}

// deleteSession answers DELETE /account/v1.0/sessions/{id}: the session
// ends at once (the one of the call too: a logout).
func (s *Server) deleteSession(c *call) error {
	if err := s.id.DeleteSessionByID(c.r.Context(), c.sessionOwner(), c.r.PathValue("id")); err != nil {
		return err
	}
	return c.noContent()
}

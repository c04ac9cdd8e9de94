package client

import (
	"context"
	"net/http"
	"net/url"

	"github.com/quotaledger/quotaledger/api/wire"
)

// Sessions: the tokens of logins (GET and DELETE /account/v1.0/sessions).

// SessionInfo is a session as the server shows one: its times, where its
// login came from, and whether it is the session of the call.
type SessionInfo = wire.SessionInfo

// SessionFilter selects sessions: the caller's, or (admins) User's, or
// every user's with User "*".
type SessionFilter struct {
	User string
	PageOptions
}

// FindSessions lists sessions, newest first (GET /account/v1.0/sessions).
func (c *Client) FindSessions(ctx context.Context, f SessionFilter) (*Page[SessionInfo], error) {
	q := url.Values{}
	if f.User != "" {
		q.Set("user", f.User)
	}
	f.PageOptions.set(q)
	var out Page[SessionInfo]
	if _, err := c.do(ctx, &request{method: http.MethodGet, path: accountPrefix + "/sessions", query: q, idempotent: true}, &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// FindSessionByID returns a session (GET /account/v1.0/sessions/{id}): the
// caller's own, or anyone's for admins.
func (c *Client) FindSessionByID(ctx context.Context, id string) (*SessionInfo, error) {
	var out SessionInfo
	if _, err := c.do(ctx, &request{method: http.MethodGet, path: path(accountPrefix+"/sessions", id), idempotent: true}, &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// DeleteSession ends a session (DELETE /account/v1.0/sessions/{id}): the
// caller's own, or anyone's for admins. Its token stops working at once.
func (c *Client) DeleteSession(ctx context.Context, id string) error {
	_, err := c.do(ctx, &request{method: http.MethodDelete, path: path(accountPrefix+"/sessions", id), idempotent: true}, nil)
	return err
}

package api

import (
	"encoding/json"
	"net/http"

	"github.com/quotaledger/quotaledger/identity"
)

func userView(u *identity.User, withData bool) map[string]any {
	m := map[string]any{
		"uuid": u.UUID, "username": u.Username, "display_name": u.DisplayName,
		"first_name": u.FirstName, "last_name": u.LastName, "role": u.Role,
		"active": u.Active, "email_verified": u.EmailVerified,
		"created": rfc3339(u.Created), "updated": rfc3339(u.Updated), "last_login": rfc3339(u.LastLogin),
	}
	if withData {
		m["data"] = userDataView(u)
	}
	return m
}

func userDataView(u *identity.User) json.RawMessage {
	if len(u.Data) == 0 {
		return json.RawMessage("{}")
	}
	return u.Data
}

// userFor returns the user a /users/{uuid} call names, once the caller
// may act on them: themselves, or anyone with the action others need.
func (c *call) userFor(others identity.Action) (*identity.User, error) {
	id, err := c.pathValue("uuid")
	if err != nil {
		return nil, err
	}
	if id != c.p.User.UUID && !identity.Allowed(c.p, others) {
		if c.p.ReadOnly() {
			return nil, newFault(http.StatusForbidden, "a read-only token cannot change anything")
		}
		return nil, newFault(http.StatusForbidden, "not allowed to "+string(others)+": only your own user")
	}
	return c.s.id.GetUser(id)
}

func (s *Server) listUsers(c *call) error {
	q := c.q
	page, size, err := paging(q)
	if err != nil {
		return err
	}
	n, users, err := s.id.ListUsers(identity.UserQuery{Prefix: q.Get("q"), Page: page, PageSize: size})
	if err != nil {
		return err
	}
	out := make([]any, 0, len(users))
	for _, u := range users {
		out = append(out, userView(u, false))
	}
	return c.list(n, page, size, out)
}

func (s *Server) createUser(c *call) error {
	var in struct {
		Username    *string `json:"username"`
		Password    *string `json:"password"`
		FirstName   string  `json:"first_name"`
		LastName    string  `json:"last_name"`
		DisplayName string  `json:"display_name"`
		Role        string  `json:"role"`
		Active      *bool   `json:"active"`
	}
	if err := c.body(&in, true); err != nil {
		return err
	}
	if in.Username == nil || in.Password == nil {
		return badRequest("username and password are required")
	}
	active := in.Active == nil || *in.Active
	u, err := s.id.CreateUser(c.r.Context(), identity.NewUser{Username: *in.Username, Password: *in.Password,
		FirstName: in.FirstName, LastName: in.LastName, DisplayName: in.DisplayName,
		Role: identity.Role(in.Role), Active: active})
	if err != nil {
		return err
	}
	return c.json(http.StatusCreated, userView(u, true))
}

func (s *Server) getUser(c *call) error {
	u, err := c.userFor(identity.ActReadAll)
	if err != nil {
		return err
	}
	return c.json(http.StatusOK, userView(u, true))
}

func (s *Server) updateUser(c *call) error {
	u, err := c.userFor(identity.ActManageUsers)
	if err != nil {
		return err
	}
	var in struct {
		DisplayName *string         `json:"display_name"`
		FirstName   *string         `json:"first_name"`
		LastName    *string         `json:"last_name"`
		Data        json.RawMessage `json:"data"`
	}
	if err := c.body(&in, true); err != nil {
		return err
	}
	if in.Data != nil && string(in.Data) == "null" {
		return badRequest("data must be a JSON object")
	}
	nu, err := s.id.UpdateUser(c.r.Context(), u.UUID, identity.UserUpdate{DisplayName: in.DisplayName,
		FirstName: in.FirstName, LastName: in.LastName, Data: in.Data})
	if err != nil {
		return err
	}
	return c.json(http.StatusOK, userView(nu, true))
}

func (s *Server) deleteUser(c *call) error {
	id, err := c.pathValue("uuid")
	if err != nil {
		return err
	}
	if err := s.id.DeleteUser(c.r.Context(), id); err != nil {
		return err
	}
	return c.noContent()
}

func (s *Server) activateUser(c *call) error {
	id, err := c.pathValue("uuid")
	if err != nil {
		return err
	}
	var in struct {
		EmailVerified bool `json:"email_verified"`
	}
	if err := c.optionalBody(&in); err != nil {
		return err
	}
	u, err := s.id.Activate(c.r.Context(), id, in.EmailVerified)
	if err != nil {
		return err
	}
	return c.json(http.StatusOK, userView(u, true))
}

func (s *Server) setUserRole(c *call) error {
	id, err := c.pathValue("uuid")
	if err != nil {
		return err
	}
	var in struct {
		Role *string `json:"role"`
	}
	if err := c.body(&in, true); err != nil {
		return err
	}
	if in.Role == nil {
		return badRequest("role is required")
	}
	u, err := s.id.SetRole(c.r.Context(), id, identity.Role(*in.Role))
	if err != nil {
		return err
	}
	return c.json(http.StatusOK, userView(u, true))
}

func (s *Server) getUserData(c *call) error {
	u, err := c.userFor(identity.ActReadAll)
	if err != nil {
		return err
	}
	return c.json(http.StatusOK, userDataView(u))
}

func (s *Server) putUserData(c *call) error {
	u, err := c.userFor(identity.ActManageUsers)
	if err != nil {
		return err
	}
	var data json.RawMessage
	if err := c.body(&data, true); err != nil {
		return err
	}
	if len(data) == 0 || data[0] != '{' {
		return badRequest("the body must be a JSON object")
	}
	nu, err := s.id.UpdateUser(c.r.Context(), u.UUID, identity.UserUpdate{Data: data})
	if err != nil {
		return err
	}
	return c.json(http.StatusOK, userDataView(nu))
}

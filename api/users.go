package api

import (
	"encoding/json"
	"net/http"

	"github.com/quotaledger/quotaledger/api/wire"
	"github.com/quotaledger/quotaledger/identity"
)

// The users: /account/v1.0/users and users/{uuid} (activate, role, data).

// userView is a user as the API shows one; withData adds the custom data
// (the answers about one user).
func userView(u *identity.User, withData bool) wire.User {
	v := wire.User{UUID: u.UUID, Username: u.Username, DisplayName: u.DisplayName,
		FirstName: u.FirstName, LastName: u.LastName, Role: string(u.Role),
		Active: u.Active, EmailVerified: u.EmailVerified,
		Created: wire.TimeOf(u.Created), Updated: wire.TimeOf(u.Updated), LastLogin: wire.TimeOf(u.LastLogin)}
	if withData {
		v.Data = userDataView(u)
	}
	return v
}

// userDataView is a user's custom data: a JSON object, {} when none.
func userDataView(u *identity.User) json.RawMessage {
	if len(u.Data) == 0 {
		return json.RawMessage("{}")
	}
	return u.Data
}

// userFor returns the user a /users/{uuid} call names, once the caller
// may act on them: themselves, or anyone with the action others need.
func (c *call) userFor(others identity.Action) (*identity.User, error) {
	id := c.r.PathValue("uuid")
	if id != c.p.User.UUID && !identity.Allowed(c.p, others) {
		if c.p.ReadOnly() {
			return nil, newFault(http.StatusForbidden, "a read-only token cannot change anything")
		}
		return nil, newFault(http.StatusForbidden, "not allowed to "+string(others)+": only your own user")
	}
	return c.s.id.FindUserByID(id)
}

// listUsers answers GET /account/v1.0/users.
func (s *Server) listUsers(c *call) error {
	prefix := c.q.Get("q")
	return paginate(c, func(offset, limit int) ([]*identity.User, int, error) {
		return s.id.FindUsers(identity.UserFilter{Prefix: prefix, Offset: offset, Limit: limit})
	}, func(u *identity.User) wire.User { return userView(u, false) })
}

// createUser answers POST /account/v1.0/users.
func (s *Server) createUser(c *call) error {
	var in wire.NewUser
	if err := c.body(&in, true); err != nil {
		return err
	}
	if in.Username == "" || in.Password == "" {
		return badRequest("username and password are required")
	}
	active := in.Active == nil || *in.Active
	u, err := s.id.CreateUser(c.r.Context(), identity.NewUser{Username: in.Username, Password: in.Password,
		FirstName: in.FirstName, LastName: in.LastName, DisplayName: in.DisplayName,
		Role: identity.Role(in.Role), Active: active})
	if err != nil {
		return err
	}
	return c.json(http.StatusCreated, userView(u, true))
}

// getUser answers GET /account/v1.0/users/{uuid}.
func (s *Server) getUser(c *call) error {
	u, err := c.userFor(identity.ActReadAll)
	if err != nil {
		return err
	}
	return c.json(http.StatusOK, userView(u, true))
}

// updateUser answers PATCH /account/v1.0/users/{uuid}.
func (s *Server) updateUser(c *call) error {
	u, err := c.userFor(identity.ActManageUsers)
	if err != nil {
		return err
	}
	var in wire.UserUpdate
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

// deleteUser answers DELETE /account/v1.0/users/{uuid}.
func (s *Server) deleteUser(c *call) error {
	id := c.r.PathValue("uuid")
	if err := s.id.DeleteUser(c.r.Context(), id); err != nil {
		return err
	}
	return c.noContent()
}

// activateUser answers POST /account/v1.0/users/{uuid}/activate.
func (s *Server) activateUser(c *call) error {
	id := c.r.PathValue("uuid")
	var in wire.UserActivate
	if err := c.optionalBody(&in); err != nil {
		return err
	}
	u, err := s.id.ActivateUser(c.r.Context(), id, in.EmailVerified)
	if err != nil {
		return err
	}
	return c.json(http.StatusOK, userView(u, true))
}

// setUserRole answers PUT and POST /account/v1.0/users/{uuid}/role.
func (s *Server) setUserRole(c *call) error {
	id := c.r.PathValue("uuid")
	var in wire.UserRole
	if err := c.body(&in, true); err != nil {
		return err
	}
	if in.Role == "" {
		return badRequest("role is required")
	}
	u, err := s.id.SetUserRole(c.r.Context(), id, identity.Role(in.Role))
	if err != nil {
		return err
	}
	return c.json(http.StatusOK, userView(u, true))
}

// getUserData answers GET /account/v1.0/users/{uuid}/data.
func (s *Server) getUserData(c *call) error {
	u, err := c.userFor(identity.ActReadAll)
	if err != nil {
		return err
	}
	return c.json(http.StatusOK, userDataView(u))
}

// putUserData answers PUT /account/v1.0/users/{uuid}/data.
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

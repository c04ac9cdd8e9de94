package api

import (
	"net/http"
	"strings"

	"github.com/quotaledger/quotaledger/identity"
)

// eitherName returns the value of one of two names for a field; both given
// and different is a 400.
func eitherName(a, b *string, nameA, nameB string) (string, bool, error) {
	switch {
	case a != nil && b != nil && *a != *b:
		return "", false, badRequest("%s and %s are the same field and differ", nameA, nameB)
	case a != nil:
		return *a, true, nil
	case b != nil:
		return *b, true, nil
	}
	return "", false, nil
}

func (s *Server) register(c *call) error {
	var in struct {
		Username        *string `json:"username"`
		Email           *string `json:"email"`
		Password        *string `json:"password"`
		Password1       *string `json:"password1"`
		Password2       *string `json:"password2"`
		PasswordConfirm *string `json:"password_confirm"`
		FirstName       string  `json:"first_name"`
		LastName        string  `json:"last_name"`
		DisplayName     string  `json:"display_name"`
	}
	if err := c.body(&in, true); err != nil {
		return err
	}
	username, ok, err := eitherName(in.Username, in.Email, "username", "email")
	if err != nil {
		return err
	}
	if !ok {
		return badRequest("username is required")
	}
	password, ok, err := eitherName(in.Password, in.Password1, "password", "password1")
	if err != nil {
		return err
	}
	if !ok {
		return badRequest("password is required")
	}
	confirm, ok, err := eitherName(in.Password2, in.PasswordConfirm, "password2", "password_confirm")
	if err != nil {
		return err
	}
	if ok && confirm != password {
		return badRequest("the password and its confirmation differ")
	}
	u, err := s.id.Register(c.r.Context(), identity.NewUser{Username: username, Password: password,
		FirstName: in.FirstName, LastName: in.LastName, DisplayName: in.DisplayName})
	if err != nil {
		return err
	}
	return c.json(http.StatusCreated, userView(u, true))
}

func (s *Server) login(c *call) error {
	var in struct {
		Username *string `json:"username"`
		Email    *string `json:"email"`
		Password *string `json:"password"`
	}
	if err := c.body(&in, true); err != nil {
		return err
	}
	username, ok, err := eitherName(in.Username, in.Email, "username", "email")
	if err != nil {
		return err
	}
	if !ok || in.Password == nil {
		return badRequest("username and password are required")
	}
	if d := c.restLimited(restLoginLimit, username); d > 0 {
		return c.restTooMany(d)
	}
	secret, tok, u, err := s.id.Login(c.r.Context(), username, *in.Password)
	if err != nil {
		if f := faultOf(err); f.Code == http.StatusUnauthorized || f.Code == http.StatusForbidden {
			c.restCount(restLoginLimit, username)
		}
		return err
	}
	return c.json(http.StatusOK, map[string]any{"token": secret, "expires": rfc3339(tok.Expires), "user": userView(u, false)})
}

func (s *Server) logout(c *call) error {
	if c.p.Kind != identity.KindSession {
		return badRequest("logout ends a session; a personal access token is revoked with DELETE /account/v1.0/access_tokens/{id}")
	}
	if err := s.id.RevokeSession(c.r.Context(), c.p.Token); err != nil {
		return err
	}
	return c.json(http.StatusOK, map[string]any{"detail": "logged out"})
}

func (s *Server) whoami(c *call) error {
	v := userView(c.p.User, true)
	t := c.p.Token
	v["auth"] = map[string]any{"kind": t.Kind, "token_id": t.ID, "expires": rfc3339(t.Expires), "read_only": c.p.ReadOnly()}
	return c.json(http.StatusOK, v)
}

// readNewPassword reads a new password and its confirmation under either
// of their names.
func readNewPassword(np, np1, confirm, np2 *string) (string, string, error) {
	password, ok, err := eitherName(np, np1, "new_password", "new_password1")
	if err != nil {
		return "", "", err
	}
	if !ok {
		return "", "", badRequest("new_password is required")
	}
	conf, ok, err := eitherName(confirm, np2, "new_password_confirm", "new_password2")
	if err != nil {
		return "", "", err
	}
	if !ok {
		return "", "", badRequest("new_password_confirm is required")
	}
	return password, conf, nil
}

func (s *Server) changePassword(c *call) error {
	var in struct {
		OldPassword        *string `json:"old_password"`
		CurrentPassword    *string `json:"current_password"`
		NewPassword        *string `json:"new_password"`
		NewPassword1       *string `json:"new_password1"`
		NewPasswordConfirm *string `json:"new_password_confirm"`
		NewPassword2       *string `json:"new_password2"`
	}
	if err := c.body(&in, true); err != nil {
		return err
	}
	old, ok, err := eitherName(in.OldPassword, in.CurrentPassword, "old_password", "current_password")
	if err != nil {
		return err
	}
	if !ok {
		return badRequest("old_password is required")
	}
	np, conf, err := readNewPassword(in.NewPassword, in.NewPassword1, in.NewPasswordConfirm, in.NewPassword2)
	if err != nil {
		return err
	}
	if err := s.id.ChangePassword(c.r.Context(), c.p.User.UUID, old, np, conf); err != nil {
		return err
	}
	return c.json(http.StatusOK, map[string]any{"detail": "password changed"})
}

func (s *Server) requestPasswordReset(c *call) error {
	var in struct {
		Username *string `json:"username"`
		Email    *string `json:"email"`
	}
	if err := c.body(&in, true); err != nil {
		return err
	}
	username, ok, err := eitherName(in.Username, in.Email, "username", "email")
	if err != nil {
		return err
	}
	if !ok || strings.TrimSpace(username) == "" {
		return badRequest("username is required")
	}
	if len(username) > 1024 {
		return badRequest("username is too long")
	}
	if d := c.restCount(restResetLimit, username); d > 0 {
		return c.restTooMany(d)
	}
	if err := s.id.RequestPasswordReset(c.r.Context(), username); err != nil {
		return err
	}
	return c.json(http.StatusAccepted, map[string]any{
		"detail": "if the user exists, a password reset request was made; its id is delivered out of band"})
}

func (s *Server) resetPassword(c *call) error {
	var in struct {
		ID                 *string `json:"id"`
		Token              *string `json:"token"`
		NewPassword        *string `json:"new_password"`
		NewPassword1       *string `json:"new_password1"`
		NewPasswordConfirm *string `json:"new_password_confirm"`
		NewPassword2       *string `json:"new_password2"`
	}
	if err := c.body(&in, true); err != nil {
		return err
	}
	id, ok, err := eitherName(in.ID, in.Token, "id", "token")
	if err != nil {
		return err
	}
	if !ok || id == "" {
		return badRequest("id (the reset request id) is required")
	}
	np, conf, err := readNewPassword(in.NewPassword, in.NewPassword1, in.NewPasswordConfirm, in.NewPassword2)
	if err != nil {
		return err
	}
	if err := s.id.ResetPassword(c.r.Context(), id, np, conf); err != nil {
		return err
	}
	return c.json(http.StatusOK, map[string]any{"detail": "password reset"})
}

func (s *Server) passwordPolicy(c *call) error {
	return c.json(http.StatusOK, s.id.Policy())
}

func (s *Server) rules(c *call) error {
	rules := make([]map[string]any, 0, len(identity.Rules))
	for _, r := range identity.Rules {
		roles := r.Roles
		if roles == nil {
			roles = []identity.Role{}
		}
		kinds := r.Kinds
		if kinds == nil {
			kinds = []identity.TokenKind{}
		}
		rules = append(rules, map[string]any{"action": r.Action, "roles": roles, "token_kinds": kinds, "changes_state": r.Changes})
	}
	return c.json(http.StatusOK, map[string]any{
		"rules":       rules,
		"roles":       []identity.Role{identity.RoleAdmin, identity.RoleUser, identity.RoleReader},
		"token_kinds": []identity.TokenKind{identity.KindSession, identity.KindPersonal, identity.KindService},
		"note":        "a read-only personal access token is refused every action that changes state",
	})
}

package api

import (
	"errors"
	"net/http"
	"strings"

	"github.com/quotaledger/quotaledger/api/wire"
	"github.com/quotaledger/quotaledger/failure"
	"github.com/quotaledger/quotaledger/identity"
)

// Registration, login and passwords: /account/v1.0/auth/....

// eitherName returns the value of a field that has two names (the
// lineage's clients use both): an empty value is left out; both given and
// different is a 400.
func eitherName(a, b string, nameA, nameB string) (string, bool, error) {
	switch {
	case a != "" && b != "" && a != b:
		return "", false, badRequest("%s and %s are the same field and differ", nameA, nameB)
	case a != "":
		return a, true, nil
	case b != "":
		return b, true, nil
	}
	return "", false, nil
}

// register answers POST /account/v1.0/auth/register.
func (s *Server) register(c *call) error {
	var in wire.Registration
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

// login answers POST /account/v1.0/auth/login.
func (s *Server) login(c *call) error {
	var in wire.Login
	if err := c.body(&in, true); err != nil {
		return err
	}
	username, ok, err := eitherName(in.Username, in.Email, "username", "email")
	if err != nil {
		return err
	}
	if !ok || in.Password == "" {
		return badRequest("username and password are required")
	}
	if d := c.restLimited(restLoginLimit, username); d > 0 {
		return c.restTooMany(d)
	}
	from := identity.Origin{Address: c.clientAddress(), UserAgent: c.r.UserAgent()}
	secret, tok, u, err := s.id.Login(c.r.Context(), username, in.Password, from)
	if err != nil {
		if f := faultOf(err); f.Code == http.StatusUnauthorized || f.Code == http.StatusForbidden {
			c.restCount(restLoginLimit, username)
		}
		return err
	}
	return c.json(http.StatusOK, wire.Session{Token: secret, Expires: wire.TimeOf(tok.Expires), User: userView(u, false)})
}

// logout answers POST /account/v1.0/auth/logout.
func (s *Server) logout(c *call) error {
	if c.p.Kind != identity.KindSession {
		return badRequest("logout ends a session; a personal access token is revoked with DELETE /account/v1.0/access_tokens/{id}")
	}
	if err := s.id.DeleteSession(c.r.Context(), c.p.Token); err != nil {
		return err
	}
	return c.json(http.StatusOK, wire.Detail{Detail: "logged out"})
}

// whoami answers GET /account/v1.0/auth/whoami.
func (s *Server) whoami(c *call) error {
	t := c.p.Token
	return c.json(http.StatusOK, wire.Me{User: userView(c.p.User, true),
		Auth: wire.TokenAuth{Kind: string(t.Kind), TokenID: t.ID, Expires: wire.TimeOf(t.Expires), ReadOnly: c.p.ReadOnly()}})
}

// readNewPassword reads a new password and its confirmation under either
// of their names.
func readNewPassword(np, np1, confirm, np2 string) (string, string, error) {
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

// changePassword answers POST /account/v1.0/auth/password/change.
func (s *Server) changePassword(c *call) error {
	var in wire.PasswordChange
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
	// A wrong old password counts as a failed login of the user: a stolen
	// session must not make guessing the password cheaper.
	name := c.p.User.Username
	if d := c.restLimited(restLoginLimit, name); d > 0 {
		return c.restTooMany(d)
	}
	keep := "" // the session the change is made with stays; the others end
	if c.p.Kind == identity.KindSession {
		keep = c.p.Token.ID
	}
	if err := s.id.ChangePassword(c.r.Context(), c.p.User.UUID, old, np, conf, keep); err != nil {
		if errors.Is(err, identity.ErrWrongPassword) {
			c.restCount(restLoginLimit, name)
		}
		return err
	}
	return c.json(http.StatusOK, wire.Detail{Detail: "password changed"})
}

// requestPasswordReset answers POST /account/v1.0/auth/password/reset.
func (s *Server) requestPasswordReset(c *call) error {
	var in wire.PasswordReset
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
	return c.json(http.StatusAccepted, wire.Detail{
		Detail: "if the user exists, a password reset request was made; its id is delivered out of band"})
}

// resetPassword answers POST /account/v1.0/auth/password/reset/confirm.
func (s *Server) resetPassword(c *call) error {
	var in wire.PasswordResetConfirm
	if err := c.body(&in, true); err != nil {
		return err
	}
	id, ok, err := eitherName(in.ID, in.Token, "id", "token")
	if err != nil {
		return err
	}
	if !ok {
		return badRequest("id (the reset request id) is required")
	}
	np, conf, err := readNewPassword(in.NewPassword, in.NewPassword1, in.NewPasswordConfirm, in.NewPassword2)
	if err != nil {
		return err
	}
	// Guessing reset ids is limited as guessing passwords is: a failed
	// confirmation (the id unknown or expired) spends the address's budget.
	k := c.restAddrKey(restConfirmLimit)
	if d := s.limiter.wait(k); d > 0 {
		return c.restTooMany(d)
	}
	if err := s.id.ResetPassword(c.r.Context(), id, np, conf); err != nil {
		if failure.CodeOf(err) == failure.NotFound {
			s.limiter.take(k)
		}
		return err
	}
	return c.json(http.StatusOK, wire.Detail{Detail: "password reset"})
}

// passwordPolicy answers GET /account/v1.0/auth/password/policy.
func (s *Server) passwordPolicy(c *call) error {
	p := s.id.PasswordPolicy()
	return c.json(http.StatusOK, wire.PasswordPolicy{MinLength: p.MinLength, MaxLength: p.MaxLength,
		NotUsername: p.NotUsername, NotCommon: p.NotCommon})
}

// rules answers GET /account/v1.0/auth/rules.
func (s *Server) rules(c *call) error {
	rules := make([]wire.Rule, 0, len(identity.Rules))
	for _, r := range identity.Rules {
		rule := wire.Rule{Action: string(r.Action), Roles: make([]string, 0, len(r.Roles)),
			TokenKinds: make([]string, 0, len(r.Kinds)), ChangesState: r.Changes}
		for _, role := range r.Roles {
			rule.Roles = append(rule.Roles, string(role))
		}
		for _, k := range r.Kinds {
			rule.TokenKinds = append(rule.TokenKinds, string(k))
		}
		rules = append(rules, rule)
	}
	return c.json(http.StatusOK, wire.Rules{
		Rules:      rules,
		Roles:      []string{string(identity.RoleAdmin), string(identity.RoleUser), string(identity.RoleReader)},
		TokenKinds: []string{string(identity.KindSession), string(identity.KindPersonal), string(identity.KindService)},
		Note:       "a read-only personal access token is refused every action that changes state",
	})
}

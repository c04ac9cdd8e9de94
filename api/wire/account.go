package wire

import "encoding/json"

// The messages of registration, login, passwords, users and access tokens
// (/account/v1.0/auth/..., users, access_tokens).

// User is a user as the server shows one. Data, the user's custom data (a
// JSON object), is in the answers about one user, not in lists or logins.
type User struct {
	UUID          string          `json:"uuid"`
	Username      string          `json:"username"`
	DisplayName   string          `json:"display_name"`
	FirstName     string          `json:"first_name"`
	LastName      string          `json:"last_name"`
	Role          string          `json:"role"` // admin, user, reader
	Active        bool            `json:"active"`
	EmailVerified bool            `json:"email_verified"`
	Created       Time            `json:"created"`
	Updated       Time            `json:"updated"`
	LastLogin     Time            `json:"last_login"`
	Data          json.RawMessage `json:"data,omitempty"`
}

// Me is the answer of auth/whoami: the caller's user and the token in use.
type Me struct {
	User
	Auth TokenAuth `json:"auth"`
}

// TokenAuth is the token a call was made with.
type TokenAuth struct {
	Kind     string `json:"kind"` // session, personal
	TokenID  string `json:"token_id"`
	Expires  Time   `json:"expires"`
	ReadOnly bool   `json:"read_only"`
}

// Registration is the body of auth/register. Email is the lineage's other
// name of Username, Password2 and PasswordConfirm of the optional
// confirmation (which must match), Password1 of Password.
type Registration struct {
	Username        string `json:"username,omitempty"` // an email address
	Email           string `json:"email,omitempty"`
	Password        string `json:"password,omitempty"`
	Password1       string `json:"password1,omitempty"`
	Password2       string `json:"password2,omitempty"`
	PasswordConfirm string `json:"password_confirm,omitempty"`
	FirstName       string `json:"first_name,omitempty"`
	LastName        string `json:"last_name,omitempty"`
	DisplayName     string `json:"display_name,omitempty"`
}

// Login is the body of auth/login (Email: Username's other name).
type Login struct {
	Username string `json:"username,omitempty"`
	Email    string `json:"email,omitempty"`
	Password string `json:"password"`
}

// Session is the answer of auth/login: a session token and its user.
type Session struct {
	Token   string `json:"token"`
	Expires Time   `json:"expires"`
	User    User   `json:"user"`
}

// PasswordChange is the body of auth/password/change. CurrentPassword is
// OldPassword's other name, NewPassword1 NewPassword's, NewPassword2
// NewPasswordConfirm's; the confirmation is required.
type PasswordChange struct {
	OldPassword        string `json:"old_password,omitempty"`
	CurrentPassword    string `json:"current_password,omitempty"`
	NewPassword        string `json:"new_password,omitempty"`
	NewPassword1       string `json:"new_password1,omitempty"`
	NewPasswordConfirm string `json:"new_password_confirm,omitempty"`
	NewPassword2       string `json:"new_password2,omitempty"`
}

// PasswordReset is the body of auth/password/reset (Email: Username's
// other name).
type PasswordReset struct {
	Username string `json:"username,omitempty"`
	Email    string `json:"email,omitempty"`
}

// PasswordResetConfirm is the body of auth/password/reset/confirm: the id
// of the reset request (Token: its other name) and the new password, as
// PasswordChange names it.
type PasswordResetConfirm struct {
	ID                 string `json:"id,omitempty"`
	Token              string `json:"token,omitempty"`
	NewPassword        string `json:"new_password,omitempty"`
	NewPassword1       string `json:"new_password1,omitempty"`
	NewPasswordConfirm string `json:"new_password_confirm,omitempty"`
	NewPassword2       string `json:"new_password2,omitempty"`
}

// PasswordPolicy is the answer of auth/password/policy.
type PasswordPolicy struct {
	MinLength   int  `json:"min_length"`
	MaxLength   int  `json:"max_length"`
	NotUsername bool `json:"not_username"` // may not equal the username (case-insensitively)
	NotCommon   bool `json:"not_common"`   // may not be one of the commonest passwords
}

// Rules is the answer of auth/rules: what each role and token kind may do.
type Rules struct {
	Rules      []Rule   `json:"rules"`
	Roles      []string `json:"roles"`
	TokenKinds []string `json:"token_kinds"`
	Note       string   `json:"note"`
}

// Rule is one action and who may take it.
type Rule struct {
	Action       string   `json:"action"`
	Roles        []string `json:"roles"`
	TokenKinds   []string `json:"token_kinds"`
	ChangesState bool     `json:"changes_state"`
}

// NewUser is the body of POST users (an admin's call).
type NewUser struct {
	Username    string `json:"username"`
	Password    string `json:"password"`
	FirstName   string `json:"first_name,omitempty"`
	LastName    string `json:"last_name,omitempty"`
	DisplayName string `json:"display_name,omitempty"`
	Role        string `json:"role,omitempty"` // admin, user (default), reader
	// Active is whether the user may log in at once (nil: the server's
	// default, active).
	Active *bool `json:"active,omitempty"`
}

// UserUpdate is the body of PATCH users/{uuid}; nil fields stay. Data, if
// not nil, replaces the custom data (a JSON object).
type UserUpdate struct {
	DisplayName *string         `json:"display_name,omitempty"`
	FirstName   *string         `json:"first_name,omitempty"`
	LastName    *string         `json:"last_name,omitempty"`
	Data        json.RawMessage `json:"data,omitempty"`
}

// UserActivate is the body of users/{uuid}/activate, which may be empty.
type UserActivate struct {
	EmailVerified bool `json:"email_verified,omitempty"`
}

// UserRole is the body of users/{uuid}/role.
type UserRole struct {
	Role string `json:"role"` // admin, user, reader
}

// AccessToken is a personal access token. Token, the secret, is only in
// the answer of its creation.
type AccessToken struct {
	ID       string `json:"id"`
	Token    string `json:"token,omitempty"`
	Kind     string `json:"kind"`
	Owner    string `json:"owner"`
	Name     string `json:"name"`
	ReadOnly bool   `json:"read_only"`
	Expires  Time   `json:"expires"`
	Created  Time   `json:"created"`
	Updated  Time   `json:"updated"`
	LastUsed Time   `json:"last_used"`
}

// AccessTokenCreate is the body of POST access_tokens. ExpiryDate is
// Expires's other name (give one); null or left out: never expires.
type AccessTokenCreate struct {
	Name       string  `json:"name"`
	Expires    OptTime `json:"expires,omitzero"`
	ExpiryDate OptTime `json:"expiry_date,omitzero"`
	ReadOnly   bool    `json:"read_only"`
}

// AccessTokenUpdate is the body of PATCH access_tokens/{id}: fields left
// out stay; Expires (or ExpiryDate) null makes the token never expire.
type AccessTokenUpdate struct {
	Name       *string `json:"name,omitempty"`
	Expires    OptTime `json:"expires,omitzero"`
	ExpiryDate OptTime `json:"expiry_date,omitzero"`
	ReadOnly   *bool   `json:"read_only,omitempty"`
}

// SessionInfo is a session, the token of a login, as the sessions routes
// show it (never its secret): its times, and the address and User-Agent
// of the login that made it. Current marks the session of the call.
type SessionInfo struct {
	ID        string `json:"id"`
	User      string `json:"user"` // the uuid of its user
	Created   Time   `json:"created"`
	Expires   Time   `json:"expires"`
	LastUsed  Time   `json:"last_used"` // null: not used since the login
	Address   string `json:"address"`   // "" for a session made before addresses were kept
	UserAgent string `json:"user_agent"`
	Current   bool   `json:"current"`
}

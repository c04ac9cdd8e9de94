package identity

import (
	"encoding/json"
	"strings"
	"sync/atomic"
	"time"
)

// The records of the identity layer, as kept in memory and stored (JSON).
// A record in memory is never changed in place: a change stores a new copy.

// Role is what a user may do (see rules.go).
type Role string

const (
	RoleAdmin  Role = "admin"
	RoleUser   Role = "user"
	RoleReader Role = "reader"
)

// User is a person. Their base project has their uuid.
type User struct {
	UUID          string          `json:"uuid"`
	Username      string          `json:"username"` // an email address, unique case-insensitively
	DisplayName   string          `json:"display_name"`
	FirstName     string          `json:"first_name"`
	LastName      string          `json:"last_name"`
	Role          Role            `json:"role"`
	Active        bool            `json:"active"`
	EmailVerified bool            `json:"email_verified"`
	Data          json.RawMessage `json:"data,omitempty"` // a JSON object, kept as given
	Password      string          `json:"password"`       // argon2id hash with its parameters (password.go)
	Created       time.Time       `json:"created"`
	Updated       time.Time       `json:"updated"`
	LastLogin     time.Time       `json:"last_login,omitzero"`
}

// Holder is the ledger holder name of the user.
func (u *User) Holder() string { return "user:" + u.UUID }

// foldName is the form usernames are unique in.
func foldName(s string) string { return strings.ToLower(s) }

// TokenKind tells how a token was made and what it may be used for.
type TokenKind string

const (
	KindSession  TokenKind = "session"  // from login, ended by logout, expires
	KindPersonal TokenKind = "personal" // a personal access token
	KindService  TokenKind = "service"  // a service's token
)

// Token is a bearer secret, stored only as the SHA-256 of the secret.
type Token struct {
	ID       string    `json:"id"`   // public id (not secret): the first 16 hex digits of Hash
	Hash     [32]byte  `json:"hash"` // SHA-256 of the secret
	Kind     TokenKind `json:"kind"`
	Owner    string    `json:"owner"` // user uuid, or service name
	Name     string    `json:"name,omitempty"`
	ReadOnly bool      `json:"read_only,omitempty"`
	Expires  time.Time `json:"expires,omitzero"` // zero: never
	Created  time.Time `json:"created"`
	Updated  time.Time `json:"updated"`
	LastUsed time.Time `json:"last_used,omitzero"` // as of the last flush; see tokenEntry
	// Address and UserAgent are where a session was made from (Origin):
	// empty for the other kinds, and for sessions made before they were
	// kept.
	Address   string `json:"address,omitempty"`
	UserAgent string `json:"user_agent,omitempty"`
}

// tokenEntry is a token in memory with its last use, updated on every
// authentication without a write (flushed now and then).
type tokenEntry struct {
	tok      *Token
	lastUsed atomic.Int64 // unix ns
}

func newTokenEntry(t *Token) *tokenEntry {
	e := &tokenEntry{tok: t}
	if !t.LastUsed.IsZero() {
		e.lastUsed.Store(t.LastUsed.UnixNano())
	}
	return e
}

// Endpoint is where a service answers, for the service catalog.
type Endpoint struct {
	PublicURL string `json:"publicURL"`
	VersionID string `json:"versionId,omitempty"`
	Region    string `json:"region,omitempty"`
}

// Service is a caller of the commission API; its name is the clientkey.
type Service struct {
	Name      string     `json:"name"`
	Type      string     `json:"type"`
	Endpoints []Endpoint `json:"endpoints"`
	TokenID   string     `json:"token_id"` // its current token
	Created   time.Time  `json:"created"`
}

// Resource is a kind of thing quotas are kept of, "<service>.<name>".
type Resource struct {
	Name            string `json:"name"`
	Unit            string `json:"unit,omitempty"`
	Description     string `json:"description,omitempty"`
	Service         string `json:"service"`
	AllowInProjects bool   `json:"allow_in_projects"`
	// UpLimit is the limit of a new user's base project, for both the
	// member holding and the project holding.
	UpLimit int64 `json:"uplimit"`
	// ProjectDefault is the default capacity of other projects.
	ProjectDefault int64     `json:"project_default"`
	Created        time.Time `json:"created"`
}

// MemberRole is a member's role in a project.
type MemberRole string

const (
	MemberReader MemberRole = "reader"
	MemberMember MemberRole = "member"
	MemberAdmin  MemberRole = "admin"
)

// Policy is a project's capacities of one resource.
type Policy struct {
	ProjectCapacity int64 `json:"project_capacity"` // limit of (project:P, null, r)
	MemberCapacity  int64 `json:"member_capacity"`  // limit of (user:U, project:P, r) per member
}

// Member is a user or a group in a project.
type Member struct {
	User  string     `json:"user,omitempty"`  // user uuid, or
	Group string     `json:"group,omitempty"` // group name
	Role  MemberRole `json:"role"`
}

// Project is a pool of quota shared by its members. Every user has a base
// project whose uuid is the user's.
type Project struct {
	UUID     string            `json:"uuid"`
	Name     string            `json:"name"`
	Owner    string            `json:"owner"` // user uuid
	State    string            `json:"state"` // "active", "deleted"
	Base     bool              `json:"base,omitempty"`
	Policies map[string]Policy `json:"policies"` // by resource
	Members  []Member          `json:"members"`
	Created  time.Time         `json:"created"`
	Updated  time.Time         `json:"updated"`
}

// Holder is the ledger holder name of the project.
func (p *Project) Holder() string { return "project:" + p.UUID }

// Group is a named set of users.
type Group struct {
	Name    string    `json:"name"`
	Members []string  `json:"members"` // user uuids
	Created time.Time `json:"created"`
}

// resetRequest is a pending password reset, stored by the SHA-256 of its id.
type resetRequest struct {
	Hash    [32]byte  `json:"hash"`
	User    string    `json:"user"`
	Expires time.Time `json:"expires"`
}

package client

import (
	"context"
	"encoding/json"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/quotaledger/quotaledger/api/wire"
)

// The rest of the API (DESIGN.md §3 "The rest of the API", and the
// operator contract of §9), under /account/v1.0.

// Page is one page of a list: the count of every match, the URLs of the
// next and previous pages (nil at the ends), and the results.
type Page[T any] = wire.Page[T]

// Names: every list is FindXs(ctx, XFilter), the filter's fields selecting
// and, for the paged lists, its PageOptions picking the page of a *Page[X]
// (holdings are not paged: FindHoldings answers them all); a read of one
// is FindXByID or FindXByName, and the writes are CreateX, UpdateX and
// DeleteX, as in package identity. The Astakos calls (astakos.go) keep the
// names of their lineage's client.

// PageOptions select a page (0: the server's defaults).
type PageOptions struct {
	Page, PageSize int
}

func (p PageOptions) set(q url.Values) {
	if p.Page > 0 {
		q.Set("page", strconv.Itoa(p.Page))
	}
	if p.PageSize > 0 {
		q.Set("page_size", strconv.Itoa(p.PageSize))
	}
}

// User is a user as the server shows one.
type User = wire.User

// Registration is what Register sends.
type Registration = wire.Registration

// Register signs a user up (POST /account/v1.0/auth/register): active at
// once, or pending until activated, as the server is configured.
func (c *Client) Register(ctx context.Context, r Registration) (*User, error) {
	var out User
	if _, err := c.do(ctx, &request{method: http.MethodPost, path: accountPrefix + "/auth/register", body: r, public: true}, &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// Session is the answer of Login.
type Session = wire.Session

// Login exchanges a username and password for a session token (POST
// /account/v1.0/auth/login). c.WithToken(s.Token) then calls as the user;
// SaveToken keeps it for later.
func (c *Client) Login(ctx context.Context, username, password string) (*Session, error) {
	var out Session
	if _, err := c.do(ctx, &request{method: http.MethodPost, path: accountPrefix + "/auth/login",
		body: wire.Login{Username: username, Password: password}, public: true}, &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// Logout ends the session of the token (POST /account/v1.0/auth/logout).
func (c *Client) Logout(ctx context.Context) error {
	_, err := c.do(ctx, &request{method: http.MethodPost, path: accountPrefix + "/auth/logout"}, nil)
	return err
}

// Me is the answer of Whoami: the caller's user and the token in use.
type Me = wire.Me

// Whoami returns the user of the token and the token (GET
// /account/v1.0/auth/whoami).
func (c *Client) Whoami(ctx context.Context) (*Me, error) {
	var out Me
	if _, err := c.do(ctx, &request{method: http.MethodGet, path: accountPrefix + "/auth/whoami", idempotent: true}, &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// ChangePassword changes the password of the token's user (POST
// /account/v1.0/auth/password/change).
func (c *Client) ChangePassword(ctx context.Context, oldPassword, newPassword, confirm string) error {
	_, err := c.do(ctx, &request{method: http.MethodPost, path: accountPrefix + "/auth/password/change",
		body: wire.PasswordChange{OldPassword: oldPassword, NewPassword: newPassword, NewPasswordConfirm: confirm}}, nil)
	return err
}

// RequestPasswordReset asks for a password reset of username (POST
// /account/v1.0/auth/password/reset). The server answers the same whether
// or not the user exists; the reset id goes out on the event stream.
func (c *Client) RequestPasswordReset(ctx context.Context, username string) error {
	_, err := c.do(ctx, &request{method: http.MethodPost, path: accountPrefix + "/auth/password/reset",
		body: wire.PasswordReset{Username: username}, public: true}, nil)
	return err
}

// ResetPassword sets a new password with a reset id (POST
// /account/v1.0/auth/password/reset/confirm).
func (c *Client) ResetPassword(ctx context.Context, resetID, newPassword, confirm string) error {
	_, err := c.do(ctx, &request{method: http.MethodPost, path: accountPrefix + "/auth/password/reset/confirm",
		body: wire.PasswordResetConfirm{ID: resetID, NewPassword: newPassword, NewPasswordConfirm: confirm}, public: true}, nil)
	return err
}

// GetPasswordPolicy returns the password policy (GET
// /account/v1.0/auth/password/policy).
func (c *Client) GetPasswordPolicy(ctx context.Context) (map[string]any, error) {
	var out map[string]any
	if _, err := c.do(ctx, &request{method: http.MethodGet, path: accountPrefix + "/auth/password/policy", idempotent: true, public: true}, &out); err != nil {
		return nil, err
	}
	return out, nil
}

// GetRules returns what each role and token kind may do (GET
// /account/v1.0/auth/rules).
func (c *Client) GetRules(ctx context.Context) (json.RawMessage, error) {
	var out json.RawMessage
	if _, err := c.do(ctx, &request{method: http.MethodGet, path: accountPrefix + "/auth/rules", idempotent: true}, &out); err != nil {
		return nil, err
	}
	return out, nil
}

// AccessToken is a personal access token. Token, the secret, is only
// set in the answer of CreateAccessToken.
type AccessToken = wire.AccessToken

// NewAccessToken is what CreateAccessToken sends.
type NewAccessToken struct {
	Name     string
	Expires  time.Time // zero: never
	ReadOnly bool
}

// CreateAccessToken makes a personal access token for the token's user
// (POST /account/v1.0/access_tokens); the answer carries the secret, shown
// this once.
func (c *Client) CreateAccessToken(ctx context.Context, t NewAccessToken) (*AccessToken, error) {
	body := wire.AccessTokenCreate{Name: t.Name, ReadOnly: t.ReadOnly}
	if !t.Expires.IsZero() {
		body.Expires = wire.OptTime{Set: true, Time: t.Expires}
	}
	var out AccessToken
	if _, err := c.do(ctx, &request{method: http.MethodPost, path: accountPrefix + "/access_tokens", body: body}, &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// TokenFilter selects access tokens to list.
type TokenFilter struct {
	Owner  string // a user uuid (admins: anyone's; "" = the caller's, or everyone's for admins)
	Name   string // exact name
	Search string // a case-insensitive substring of the name
	// Sort is a comma-separated list of fields, "-" first for descending:
	// id, name, owner, kind, read_only, created, updated, expires, last_used.
	Sort string
	// Filter is a JSON Logic expression over the same fields.
	Filter json.RawMessage
	PageOptions
}

// FindAccessTokens lists personal access tokens (GET
// /account/v1.0/access_tokens).
func (c *Client) FindAccessTokens(ctx context.Context, tq TokenFilter) (*Page[AccessToken], error) {
	q := url.Values{}
	for k, v := range map[string]string{"owner": tq.Owner, "name": tq.Name, "search": tq.Search, "sort": tq.Sort,
		"filter": string(tq.Filter)} {
		if v != "" {
			q.Set(k, v)
		}
	}
	tq.PageOptions.set(q)
	var out Page[AccessToken]
	if _, err := c.do(ctx, &request{method: http.MethodGet, path: accountPrefix + "/access_tokens", query: q, idempotent: true}, &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// FindAccessTokenByID returns an access token by id.
func (c *Client) FindAccessTokenByID(ctx context.Context, id string) (*AccessToken, error) {
	var out AccessToken
	if _, err := c.do(ctx, &request{method: http.MethodGet, path: path(accountPrefix+"/access_tokens", id), idempotent: true}, &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// FindSelfAccessToken returns the token the call is made with (GET
// /account/v1.0/access_tokens/self).
func (c *Client) FindSelfAccessToken(ctx context.Context) (*AccessToken, error) {
	return c.FindAccessTokenByID(ctx, "self")
}

// TokenUpdate changes an access token; nil fields stay. A non-nil zero
// Expires makes the token never expire.
type TokenUpdate struct {
	Name     *string
	Expires  *time.Time
	ReadOnly *bool
}

// UpdateAccessToken changes an access token's name, expiry or read-only
// flag (PATCH /account/v1.0/access_tokens/{id}).
func (c *Client) UpdateAccessToken(ctx context.Context, id string, u TokenUpdate) (*AccessToken, error) {
	body := wire.AccessTokenUpdate{Name: u.Name, ReadOnly: u.ReadOnly}
	if u.Expires != nil {
		body.Expires = wire.OptTime{Set: true, Time: *u.Expires}
	}
	var out AccessToken
	if _, err := c.do(ctx, &request{method: http.MethodPatch, path: path(accountPrefix+"/access_tokens", id), body: body}, &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// DeleteAccessToken revokes an access token (DELETE
// /account/v1.0/access_tokens/{id}).
func (c *Client) DeleteAccessToken(ctx context.Context, id string) error {
	_, err := c.do(ctx, &request{method: http.MethodDelete, path: path(accountPrefix+"/access_tokens", id), idempotent: true}, nil)
	return err
}

// NewUser is what CreateUser sends (an admin's call, §9).
type NewUser = wire.NewUser

// Bool returns a pointer to b (for the optional flags of requests).
func Bool(b bool) *bool { return &b }

// CreateUser creates a user (POST /account/v1.0/users, admin).
func (c *Client) CreateUser(ctx context.Context, u NewUser) (*User, error) {
	var out User
	if _, err := c.do(ctx, &request{method: http.MethodPost, path: accountPrefix + "/users", body: u}, &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// FindUserByID returns a user by uuid.
func (c *Client) FindUserByID(ctx context.Context, uuid string) (*User, error) {
	var out User
	if _, err := c.do(ctx, &request{method: http.MethodGet, path: path(accountPrefix+"/users", uuid), idempotent: true}, &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// UserFilter selects users to list.
type UserFilter struct {
	Prefix string // a username prefix, any case
	PageOptions
}

// FindUsers lists the users whose username starts with f.Prefix (GET
// /account/v1.0/users?q=).
func (c *Client) FindUsers(ctx context.Context, f UserFilter) (*Page[User], error) {
	q := url.Values{}
	if f.Prefix != "" {
		q.Set("q", f.Prefix)
	}
	f.PageOptions.set(q)
	var out Page[User]
	if _, err := c.do(ctx, &request{method: http.MethodGet, path: accountPrefix + "/users", query: q, idempotent: true}, &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// ActivateUser activates a pending user (POST
// /account/v1.0/users/{uuid}/activate, admin).
func (c *Client) ActivateUser(ctx context.Context, uuid string) (*User, error) {
	var out User
	if _, err := c.do(ctx, &request{method: http.MethodPost, path: path(accountPrefix+"/users", uuid, "activate"),
		body: wire.UserActivate{}, idempotent: true}, &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// SetUserRole sets a user's role (POST /account/v1.0/users/{uuid}/role,
// admin): admin, user or reader.
func (c *Client) SetUserRole(ctx context.Context, uuid, role string) (*User, error) {
	var out User
	if _, err := c.do(ctx, &request{method: http.MethodPost, path: path(accountPrefix+"/users", uuid, "role"),
		body: wire.UserRole{Role: role}, idempotent: true}, &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// UserUpdate changes a user's profile; nil fields stay. Data, if not
// nil, replaces the custom data (a JSON object).
type UserUpdate = wire.UserUpdate

// UpdateUser changes a user's profile (PATCH /account/v1.0/users/{uuid}):
// oneself, or anyone for admins.
func (c *Client) UpdateUser(ctx context.Context, uuid string, u UserUpdate) (*User, error) {
	var out User
	if _, err := c.do(ctx, &request{method: http.MethodPatch, path: path(accountPrefix+"/users", uuid), body: u}, &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// GetUserData returns a user's custom data (GET
// /account/v1.0/users/{uuid}/data).
func (c *Client) GetUserData(ctx context.Context, uuid string) (json.RawMessage, error) {
	var out json.RawMessage
	if _, err := c.do(ctx, &request{method: http.MethodGet, path: path(accountPrefix+"/users", uuid, "data"), idempotent: true}, &out); err != nil {
		return nil, err
	}
	return out, nil
}

// SetUserData replaces a user's custom data, a JSON object, and returns
// it (PUT /account/v1.0/users/{uuid}/data).
func (c *Client) SetUserData(ctx context.Context, uuid string, data json.RawMessage) (json.RawMessage, error) {
	var out json.RawMessage
	if _, err := c.do(ctx, &request{method: http.MethodPut, path: path(accountPrefix+"/users", uuid, "data"),
		raw: data, rawTyp: "application/json", idempotent: true}, &out); err != nil {
		return nil, err
	}
	return out, nil
}

// DeleteUser deletes a user (DELETE /account/v1.0/users/{uuid}).
func (c *Client) DeleteUser(ctx context.Context, uuid string) error {
	_, err := c.do(ctx, &request{method: http.MethodDelete, path: path(accountPrefix+"/users", uuid), idempotent: true}, nil)
	return err
}

// Group is a named set of users.
type Group = wire.Group

// GroupMember is a user of a group.
type GroupMember = wire.GroupMember

// CreateGroup creates a group with its first members, user uuids (POST
// /account/v1.0/groups).
func (c *Client) CreateGroup(ctx context.Context, name string, members ...string) (*Group, error) {
	body := wire.GroupCreate{Name: name, Members: members}
	var out Group
	if _, err := c.do(ctx, &request{method: http.MethodPost, path: accountPrefix + "/groups", body: body}, &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// GroupFilter selects groups to list: every group, a page at a time.
type GroupFilter struct {
	PageOptions
}

// FindGroups lists the groups (GET /account/v1.0/groups).
func (c *Client) FindGroups(ctx context.Context, f GroupFilter) (*Page[Group], error) {
	q := url.Values{}
	f.PageOptions.set(q)
	var out Page[Group]
	if _, err := c.do(ctx, &request{method: http.MethodGet, path: accountPrefix + "/groups", query: q, idempotent: true}, &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// FindGroupByName returns a group with its users.
func (c *Client) FindGroupByName(ctx context.Context, name string) (*Group, error) {
	var out Group
	if _, err := c.do(ctx, &request{method: http.MethodGet, path: path(accountPrefix+"/groups", name), idempotent: true}, &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// GroupUsers lists the users of a group.
func (c *Client) GroupUsers(ctx context.Context, name string) ([]GroupMember, error) {
	g, err := c.FindGroupByName(ctx, name)
	if err != nil {
		return nil, err
	}
	return g.Members, nil
}

// RenameGroup renames a group (PATCH /account/v1.0/groups/{name}).
func (c *Client) RenameGroup(ctx context.Context, name, newName string) (*Group, error) {
	var out Group
	if _, err := c.do(ctx, &request{method: http.MethodPatch, path: path(accountPrefix+"/groups", name),
		body: wire.GroupRename{Name: newName}}, &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// DeleteGroup deletes a group.
func (c *Client) DeleteGroup(ctx context.Context, name string) error {
	_, err := c.do(ctx, &request{method: http.MethodDelete, path: path(accountPrefix+"/groups", name), idempotent: true}, nil)
	return err
}

// AddGroupMember adds a user to a group (POST
// /account/v1.0/groups/{name}/members {"user"}).
func (c *Client) AddGroupMember(ctx context.Context, group, user string) (*Group, error) {
	var out Group
	if _, err := c.do(ctx, &request{method: http.MethodPost, path: path(accountPrefix+"/groups", group, "members"),
		body: wire.GroupMemberAdd{User: user}}, &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// RemoveGroupMember removes a user from a group (DELETE
// /account/v1.0/groups/{name}/members/{uuid}).
func (c *Client) RemoveGroupMember(ctx context.Context, group, user string) (*Group, error) {
	var out Group
	if _, err := c.do(ctx, &request{method: http.MethodDelete, path: path(accountPrefix+"/groups", group, "members", user),
		idempotent: true}, &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// Policy is a project's capacities of one resource.
type Policy = wire.Policy

// Member is a user or a group in a project, with a role: reader, member
// or admin.
type Member = wire.Member

// Project is a pool of quota shared by its members.
type Project = wire.Project

// NewProject is what CreateProject sends.
type NewProject struct {
	Name     string
	Owner    string // default: the caller
	Policies map[string]Policy
}

// policySettings are policies as a request sets them.
func policySettings(ps map[string]Policy) map[string]wire.PolicySetting {
	out := make(map[string]wire.PolicySetting, len(ps))
	for r, p := range ps {
		out[r] = wire.PolicySetting{ProjectCapacity: &p.ProjectCapacity, MemberCapacity: &p.MemberCapacity}
	}
	return out
}

// CreateProject creates a project (POST /account/v1.0/projects).
func (c *Client) CreateProject(ctx context.Context, p NewProject) (*Project, error) {
	var out Project
	body := wire.ProjectCreate{Name: p.Name, Owner: p.Owner}
	if len(p.Policies) > 0 {
		body.Policies = policySettings(p.Policies)
	}
	if _, err := c.do(ctx, &request{method: http.MethodPost, path: accountPrefix + "/projects", body: body}, &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// FindProjectByID returns a project by uuid.
func (c *Client) FindProjectByID(ctx context.Context, uuid string) (*Project, error) {
	var out Project
	if _, err := c.do(ctx, &request{method: http.MethodGet, path: path(accountPrefix+"/projects", uuid), idempotent: true}, &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// ProjectFilter selects projects to list: those the caller may see, a
// page at a time.
type ProjectFilter struct {
	PageOptions
}

// FindProjects lists the projects the caller may see (GET
// /account/v1.0/projects).
func (c *Client) FindProjects(ctx context.Context, f ProjectFilter) (*Page[Project], error) {
	q := url.Values{}
	f.PageOptions.set(q)
	var out Page[Project]
	if _, err := c.do(ctx, &request{method: http.MethodGet, path: accountPrefix + "/projects", query: q, idempotent: true}, &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// DeleteProject deletes a project.
func (c *Client) DeleteProject(ctx context.Context, uuid string) error {
	_, err := c.do(ctx, &request{method: http.MethodDelete, path: path(accountPrefix+"/projects", uuid), idempotent: true}, nil)
	return err
}

// AddProjectMember adds a user or a group to a project (POST
// /account/v1.0/projects/{uuid}/members).
func (c *Client) AddProjectMember(ctx context.Context, project string, m Member) (*Project, error) {
	var out Project
	if _, err := c.do(ctx, &request{method: http.MethodPost, path: path(accountPrefix+"/projects", project, "members"),
		body: m}, &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// SetProjectMemberRole changes the role of a member, a user uuid or a
// group name (PATCH /account/v1.0/projects/{uuid}/members/{id}).
func (c *Client) SetProjectMemberRole(ctx context.Context, project, member, role string) (*Project, error) {
	var out Project
	if _, err := c.do(ctx, &request{method: http.MethodPatch, path: path(accountPrefix+"/projects", project, "members", member),
		body: wire.MemberRole{Role: role}, idempotent: true}, &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// RemoveProjectMember removes a member, a user uuid or a group name
// (DELETE /account/v1.0/projects/{uuid}/members/{id}).
func (c *Client) RemoveProjectMember(ctx context.Context, project, member string) error {
	_, err := c.do(ctx, &request{method: http.MethodDelete, path: path(accountPrefix+"/projects", project, "members", member),
		idempotent: true}, nil)
	return err
}

// ProjectMemberFilter selects the members of a project to list.
type ProjectMemberFilter struct {
	Project string // the project's uuid
	PageOptions
}

// FindProjectMembers lists a project's members (GET
// /account/v1.0/projects/{uuid}/members).
func (c *Client) FindProjectMembers(ctx context.Context, f ProjectMemberFilter) (*Page[Member], error) {
	q := url.Values{}
	f.PageOptions.set(q)
	var out Page[Member]
	if _, err := c.do(ctx, &request{method: http.MethodGet, path: path(accountPrefix+"/projects", f.Project, "members"),
		query: q, idempotent: true}, &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// GetProjectPolicies returns a project's capacities by resource (GET
// /account/v1.0/projects/{uuid}/policies).
func (c *Client) GetProjectPolicies(ctx context.Context, project string) (map[string]Policy, error) {
	var out map[string]Policy
	if _, err := c.do(ctx, &request{method: http.MethodGet, path: path(accountPrefix+"/projects", project, "policies"),
		idempotent: true}, &out); err != nil {
		return nil, err
	}
	return out, nil
}

// SetProjectPolicies replaces a project's capacities by resource and
// returns them (PUT /account/v1.0/projects/{uuid}/policies).
func (c *Client) SetProjectPolicies(ctx context.Context, project string, policies map[string]Policy) (map[string]Policy, error) {
	var out map[string]Policy
	if _, err := c.do(ctx, &request{method: http.MethodPut, path: path(accountPrefix+"/projects", project, "policies"),
		body: policySettings(policies), idempotent: true}, &out); err != nil {
		return nil, err
	}
	return out, nil
}

// HoldingKey names a holding; a nil Source is the null source.
type HoldingKey = wire.HoldingKey

// HoldingLimit is a holding's limit to set.
type HoldingLimit struct {
	Holder   string
	Source   *string
	Resource string
	Limit    int64
}

// Holding is a holding with its limit and usage.
type Holding = wire.Holding

// SetHoldings sets the limits of holdings, creating missing ones with no
// usage (POST /account/v1.0/holdings, admin); later entries of a key win.
// It returns the holdings set, as they are after the change.
func (c *Client) SetHoldings(ctx context.Context, hs []HoldingLimit) ([]Holding, error) {
	body := wire.HoldingSettings{Holdings: make([]wire.HoldingSetting, len(hs))}
	for i, h := range hs {
		body.Holdings[i] = wire.HoldingSetting{HoldingKey: HoldingKey{Holder: h.Holder, Source: h.Source, Resource: h.Resource}, Limit: &h.Limit}
	}
	var out wire.Holdings
	if _, err := c.do(ctx, &request{method: http.MethodPost, path: accountPrefix + "/holdings",
		body: body, idempotent: true}, &out); err != nil {
		return nil, err
	}
	return out.Holdings, nil
}

// HoldingFilter selects the holdings FindHoldings returns; empty lists
// select everything. Sources are source names ("" is the empty-string
// source); NullSource adds the null source.
type HoldingFilter struct {
	Holders, Sources, Resources []string
	NullSource                  bool
}

// FindHoldings returns the holdings f selects (GET
// /account/v1.0/holdings?holder=&source=&resource=).
func (c *Client) FindHoldings(ctx context.Context, hq HoldingFilter) ([]Holding, error) {
	q := url.Values{}
	for k, v := range map[string][]string{"holder": hq.Holders, "source": hq.Sources, "resource": hq.Resources} {
		if len(v) > 0 {
			q.Set(k, strings.Join(v, ","))
		}
	}
	if hq.NullSource {
		q.Set("null_source", "1")
	}
	var out wire.Holdings
	if _, err := c.do(ctx, &request{method: http.MethodGet, path: accountPrefix + "/holdings", query: q, idempotent: true}, &out); err != nil {
		return nil, err
	}
	if out.Holdings == nil {
		out.Holdings = []Holding{}
	}
	return out.Holdings, nil
}

// DeleteHoldings removes holdings (DELETE /account/v1.0/holdings); a
// holding a pending commission touches is a Conflict.
func (c *Client) DeleteHoldings(ctx context.Context, keys []HoldingKey) error {
	if keys == nil {
		keys = []HoldingKey{}
	}
	_, err := c.do(ctx, &request{method: http.MethodDelete, path: accountPrefix + "/holdings",
		body: wire.HoldingKeys{Holdings: keys}, idempotent: true}, nil)
	return err
}

// NewResource is what CreateResource sends (§9).
type NewResource = wire.NewResource

// Resource is a registered resource.
type Resource = wire.Resource

// CreateResource registers a resource (POST /account/v1.0/resources,
// admin); every user and project gets its holdings.
func (c *Client) CreateResource(ctx context.Context, r NewResource) (*Resource, error) {
	var out Resource
	if _, err := c.do(ctx, &request{method: http.MethodPost, path: accountPrefix + "/resources", body: r}, &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// ServiceEndpoint is where a registered service answers.
type ServiceEndpoint = wire.ServiceEndpoint

// NewService is what CreateService sends (§9).
type NewService = wire.NewService

// Service is a registered service. Token, its secret, and TokenExpires
// are only set in the answers of CreateService and RenewServiceToken.
type Service = wire.Service

// CreateService registers a service and returns it with its token
// (POST /account/v1.0/services, admin).
func (c *Client) CreateService(ctx context.Context, s NewService) (*Service, error) {
	if s.Endpoints == nil {
		s.Endpoints = []ServiceEndpoint{}
	}
	var out Service
	if _, err := c.do(ctx, &request{method: http.MethodPost, path: accountPrefix + "/services", body: s}, &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// ServiceFilter selects services to list: every registered service, a
// page at a time.
type ServiceFilter struct {
	PageOptions
}

// FindServices lists the registered services (GET
// /account/v1.0/services).
func (c *Client) FindServices(ctx context.Context, f ServiceFilter) (*Page[Service], error) {
	q := url.Values{}
	f.PageOptions.set(q)
	var out Page[Service]
	if _, err := c.do(ctx, &request{method: http.MethodGet, path: accountPrefix + "/services", query: q, idempotent: true}, &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// DeleteService removes a service and its token (DELETE
// /account/v1.0/services/{name}).
func (c *Client) DeleteService(ctx context.Context, name string) error {
	_, err := c.do(ctx, &request{method: http.MethodDelete, path: path(accountPrefix+"/services", name), idempotent: true}, nil)
	return err
}

// FindServiceByName returns a registered service by name.
func (c *Client) FindServiceByName(ctx context.Context, name string) (*Service, error) {
	var out Service
	if _, err := c.do(ctx, &request{method: http.MethodGet, path: path(accountPrefix+"/services", name), idempotent: true}, &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// RenewServiceToken gives a service a new token (the old one stops
// working) that expires at expires (zero: never) (POST
// /account/v1.0/services/{name}/token, admin).
func (c *Client) RenewServiceToken(ctx context.Context, name string, expires time.Time) (*Service, error) {
	var body wire.ServiceTokenRenew
	if !expires.IsZero() {
		body.Expires = wire.OptTime{Set: true, Time: expires}
	}
	var out Service
	if _, err := c.do(ctx, &request{method: http.MethodPost, path: path(accountPrefix+"/services", name, "token"), body: body}, &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// LogEntry is one line of the provision log: a provision of a resolved
// commission and the holding after it.
type LogEntry = wire.LogEntry

// CommissionLogFilter selects the provision log of one commission.
type CommissionLogFilter struct {
	Serial int64 // the commission's serial
	PageOptions
}

// FindCommissionLog returns the provision log of a resolved commission
// (GET /account/v1.0/commissions/{serial}/log): its service, admins and
// readers.
func (c *Client) FindCommissionLog(ctx context.Context, f CommissionLogFilter) (*Page[LogEntry], error) {
	q := url.Values{}
	f.PageOptions.set(q)
	var out Page[LogEntry]
	if _, err := c.do(ctx, &request{method: http.MethodGet,
		path: path(accountPrefix+"/commissions", strconv.FormatInt(f.Serial, 10), "log"), query: q, idempotent: true}, &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// HistoryFilter selects provision log entries. Zero fields select all.
type HistoryFilter struct {
	Holder   string // default: the caller's own holdings (user:<uuid>)
	Resource string
	Serial   int64
	From, To time.Time
	PageOptions
	// Limit is the page size by its older name (PageSize wins).
	Limit int
}

// History is one page of the provision log.
type History = Page[LogEntry]

// FindHistory queries the provision log (GET /account/v1.0/history), a page
// at a time like every list.
func (c *Client) FindHistory(ctx context.Context, hq HistoryFilter) (*History, error) {
	q := url.Values{}
	for k, v := range map[string]string{"holder": hq.Holder, "resource": hq.Resource} {
		if v != "" {
			q.Set(k, v)
		}
	}
	if hq.Serial > 0 {
		q.Set("serial", strconv.FormatInt(hq.Serial, 10))
	}
	if !hq.From.IsZero() {
		q.Set("from", hq.From.UTC().Format(time.RFC3339Nano))
	}
	if !hq.To.IsZero() {
		q.Set("to", hq.To.UTC().Format(time.RFC3339Nano))
	}
	if hq.PageSize == 0 {
		hq.PageSize = hq.Limit
	}
	hq.PageOptions.set(q)
	var out History
	if _, err := c.do(ctx, &request{method: http.MethodGet, path: accountPrefix + "/history", query: q, idempotent: true}, &out); err != nil {
		return nil, err
	}
	return &out, nil
}

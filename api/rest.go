package api

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/quotaledger/quotaledger/holdings"
	"github.com/quotaledger/quotaledger/identity"
	"github.com/quotaledger/quotaledger/ledger"
)

// The rest of the API (DESIGN.md §3, "The rest of the API"), under
// /account/v1.0/, in the style of the lineage's routes: JSON in and out,
// cloudFault errors, times in RFC 3339 UTC, lists as
// {count, next, previous, results} paged by page / page_size.
//
// Choices where DESIGN.md is silent (docs in the route summaries too):
//
//   - auth/logout ends the session whose token made the call (200). A
//     personal access token is not a session: logout with one is a 400 that
//     points at DELETE access_tokens/{id}; nothing is revoked.
//   - auth/password/change takes old_password (or current_password, seed
//     003), new_password (or new_password1, seed 004) and
//     new_password_confirm (or new_password2). The confirmation is required.
//   - auth/register takes username (or email, seed 004), password (and
//     optionally password2 / password_confirm, which must match),
//     first_name, last_name, display_name.
//   - auth/password/reset always answers 202 with the same body; its id goes
//     to the event stream only. reset/confirm takes id (or token, seed 004),
//     new_password (or new_password1) and new_password_confirm (or
//     new_password2).
//   - Login and reset requests are rate limited per username and per client
//     address (failed logins: 10 per 5 minutes per username, 50 per address;
//     reset requests: 5 per hour per username, 20 per address), as token
//     buckets (ratelimit.go): 429 with Retry-After.
//   - A user reading another user (users/{uuid}, its data) without the
//     read_all action (admins, readers) is a 403. A project the caller is not
//     a member of is a 404 to them (as if absent), unless they may read all.
//   - access_tokens lists the caller's own tokens; an admin may pass
//     owner=<uuid>, or owner=* for everyone's. access_tokens/{id} of someone
//     else is a 404, except to admins.
//   - holdings: a missing "source" is the null source. GET filters sources
//     with source=a,b (an empty item is the empty-string source) and adds
//     the null source with null_source=1. A service token sees only the
//     holdings of the resources it serves (identity.Store.Serves: those
//     registered to it); naming another resource is a 403.
//     POST answers the holdings it set, as they are after the change;
//     DELETE answers the keys it was given.
//   - history: a user may read the log of their own holdings (holder
//     user:<uuid>, the default) and of the projects they are a member of
//     (project:<uuid>); admins and readers any holder, or every holder when
//     none is given.
//   - commissions/{serial}/log: the issuing service or an admin / reader; a
//     commission that is not resolved, is another service's, or had no
//     provisions has no log: 404.
//   - DELETE answers 204 without a body, except holdings (200, §9).
//   - users POST: "active" defaults to true, "role" to user.
func (s *Server) registerRest() {
	const p = "/account/v1.0/"

	// Authentication and passwords.
	s.handle("POST", p+"auth/register", Public, "", "sign up: a user, active unless activation is required (the first user of an empty system is admin)", s.restRegister)
	s.handle("POST", p+"auth/login", Public, "", "log in with username and password: a session token", s.restLogin)
	s.handle("POST", p+"auth/logout", User, identity.ActWriteSelf, "end the session used for the call (a personal token: 400)", s.restLogout)
	s.handle("GET", p+"auth/whoami", User, identity.ActReadSelf, "the caller's user and token", s.restWhoami)
	s.handle("POST", p+"auth/password/change", User, identity.ActWriteSelf, "change the caller's password: old_password, new_password, new_password_confirm", s.restPasswordChange)
	s.handle("POST", p+"auth/password/reset", Public, "", "request a password reset; the answer is the same whether or not the user exists", s.restPasswordReset)
	s.handle("POST", p+"auth/password/reset/confirm", Public, "", "reset a password with the id of a reset request", s.restPasswordResetConfirm)
	s.handle("GET", p+"auth/password/policy", Public, "", "the password policy", s.restPasswordPolicy)
	s.handle("GET", p+"auth/rules", Public, "", "what each role and token kind may do", s.restRules)

	// Personal access tokens.
	s.handle("POST", p+"access_tokens", User, identity.ActWriteSelf, "create a personal access token; the secret is shown once", s.restTokenCreate)
	s.handle("GET", p+"access_tokens", User, identity.ActReadSelf, "list personal access tokens (name, owner, search, sort, filter, page, page_size)", s.restTokenList)
	s.handle("GET", p+"access_tokens/self", User, identity.ActReadSelf, "the personal access token used for the call", s.restTokenSelf)
	s.handle("GET", p+"access_tokens/{id}", User, identity.ActReadSelf, "one personal access token", s.restTokenGet)
	s.handle("PATCH", p+"access_tokens/{id}", User, identity.ActWriteSelf, "update a token's name, expiry or read-only flag", s.restTokenUpdate)
	s.handle("DELETE", p+"access_tokens/{id}", User, identity.ActWriteSelf, "revoke a token", s.restTokenRevoke)

	// Users.
	s.handle("GET", p+"users", User, identity.ActReadAll, "list users (q: username prefix; page, page_size)", s.restUserList)
	s.handle("POST", p+"users", User, identity.ActManageUsers, "create a user", s.restUserCreate)
	s.handle("GET", p+"users/{uuid}", User, identity.ActReadSelf, "a user (oneself, or anyone for admins and readers)", s.restUserGet)
	s.handle("PATCH", p+"users/{uuid}", User, identity.ActWriteSelf, "update a profile (oneself, or anyone for admins)", s.restUserUpdate)
	s.handle("DELETE", p+"users/{uuid}", User, identity.ActManageUsers, "delete a user", s.restUserDelete)
	s.handle("POST", p+"users/{uuid}/activate", User, identity.ActManageUsers, "activate a user", s.restUserActivate)
	s.handle("PUT", p+"users/{uuid}/role", User, identity.ActManageUsers, "set a user's role", s.restUserRole)
	s.handle("POST", p+"users/{uuid}/role", User, identity.ActManageUsers, "set a user's role", s.restUserRole)
	s.handle("GET", p+"users/{uuid}/data", User, identity.ActReadSelf, "a user's custom data", s.restUserDataGet)
	s.handle("PUT", p+"users/{uuid}/data", User, identity.ActWriteSelf, "replace a user's custom data (a JSON object)", s.restUserDataPut)

	// Groups.
	s.handle("GET", p+"groups", User, identity.ActReadAll, "list groups", s.restGroupList)
	s.handle("POST", p+"groups", User, identity.ActManageProjects, "create a group", s.restGroupCreate)
	s.handle("GET", p+"groups/{name}", User, identity.ActReadAll, "a group with its users", s.restGroupGet)
	s.handle("PATCH", p+"groups/{name}", User, identity.ActManageProjects, "rename a group", s.restGroupRename)
	s.handle("DELETE", p+"groups/{name}", User, identity.ActManageProjects, "delete a group", s.restGroupDelete)
	s.handle("POST", p+"groups/{name}/members", User, identity.ActManageProjects, "add a user to a group", s.restGroupAddMember)
	s.handle("DELETE", p+"groups/{name}/members/{uuid}", User, identity.ActManageProjects, "remove a user from a group", s.restGroupRemoveMember)

	// Projects.
	s.handle("GET", p+"projects", User, identity.ActReadOwnProjects, "the caller's projects (every project for admins and readers)", s.restProjectList)
	s.handle("POST", p+"projects", User, identity.ActOwnProjects, "create a project owned by the caller", s.restProjectCreate)
	s.handle("GET", p+"projects/{uuid}", User, identity.ActReadOwnProjects, "a project", s.restProjectGet)
	s.handle("DELETE", p+"projects/{uuid}", User, identity.ActOwnProjects, "delete a project (its admins, or admins)", s.restProjectDelete)
	s.handle("GET", p+"projects/{uuid}/members", User, identity.ActReadOwnProjects, "a project's members", s.restProjectMembers)
	s.handle("POST", p+"projects/{uuid}/members", User, identity.ActOwnProjects, "add a user or a group to a project", s.restProjectAddMember)
	s.handle("PATCH", p+"projects/{uuid}/members/{id}", User, identity.ActOwnProjects, "change a member's role", s.restProjectMemberRole)
	s.handle("DELETE", p+"projects/{uuid}/members/{id}", User, identity.ActOwnProjects, "remove a member (a user uuid or a group name)", s.restProjectRemoveMember)
	s.handle("GET", p+"projects/{uuid}/policies", User, identity.ActReadOwnProjects, "a project's capacities by resource", s.restProjectPolicies)
	s.handle("PUT", p+"projects/{uuid}/policies", User, identity.ActOwnProjects, "replace a project's capacities", s.restProjectSetPolicies)

	// Resources and services.
	s.handle("POST", p+"resources", User, identity.ActManageServices, "register a resource", s.restResourceCreate)
	s.handle("GET", p+"services", User, identity.ActReadAll, "list services", s.restServiceList)
	s.handle("POST", p+"services", User, identity.ActManageServices, "register a service; its token is shown once", s.restServiceCreate)
	s.handle("GET", p+"services/{name}", User, identity.ActReadAll, "a service", s.restServiceGet)
	s.handle("DELETE", p+"services/{name}", User, identity.ActManageServices, "remove a service and its token", s.restServiceDelete)
	s.handle("POST", p+"services/{name}/token", User, identity.ActManageServices, "renew a service's token; the old one stops working", s.restServiceRenew)

	// Holdings and the provision log.
	s.handle("POST", p+"holdings", User, identity.ActManageQuotas, "set quota: create or re-limit holdings (later entries of the same key win)", s.restHoldingsSet)
	s.handle("GET", p+"holdings", Any, "", "get quota by holder, source, resource (admins, readers; services for their resources)", s.restHoldingsGet)
	s.handle("DELETE", p+"holdings", User, identity.ActManageQuotas, "delete holdings (refused while a pending commission touches them)", s.restHoldingsDelete)
	s.handle("GET", p+"commissions/{serial}/log", Any, "", "the provision log of a resolved commission (its service, admins, readers)", s.restCommissionLog)
	s.handle("GET", p+"history", User, identity.ActReadSelf, "the provision log of holdings (holder, resource, serial, from, to, after, limit)", s.restHistory)

	// Backup (backup.go).
	s.registerBackup()
}

// ---- Views ----

// restTime renders a time in RFC 3339 UTC, null when unset.
func restTime(t time.Time) any {
	if t.IsZero() {
		return nil
	}
	return t.UTC().Format(time.RFC3339Nano)
}

func restUser(u *identity.User, withData bool) map[string]any {
	m := map[string]any{
		"uuid": u.UUID, "username": u.Username, "display_name": u.DisplayName,
		"first_name": u.FirstName, "last_name": u.LastName, "role": u.Role,
		"active": u.Active, "email_verified": u.EmailVerified,
		"created": restTime(u.Created), "updated": restTime(u.Updated), "last_login": restTime(u.LastLogin),
	}
	if withData {
		m["data"] = restUserData(u)
	}
	return m
}

func restUserData(u *identity.User) json.RawMessage {
	if len(u.Data) == 0 {
		return json.RawMessage("{}")
	}
	return u.Data
}

func restToken(t *identity.Token) map[string]any {
	return map[string]any{
		"id": t.ID, "name": t.Name, "kind": t.Kind, "owner": t.Owner, "read_only": t.ReadOnly,
		"expires": restTime(t.Expires), "created": restTime(t.Created), "updated": restTime(t.Updated),
		"last_used": restTime(t.LastUsed),
	}
}

func restService(svc *identity.Service) map[string]any {
	eps := svc.Endpoints
	if eps == nil {
		eps = []identity.Endpoint{}
	}
	return map[string]any{"name": svc.Name, "type": svc.Type, "endpoints": eps, "token_id": svc.TokenID,
		"created": restTime(svc.Created)}
}

func restResource(r *identity.Resource) map[string]any {
	var unit any
	if r.Unit != "" {
		unit = r.Unit
	}
	return map[string]any{"name": r.Name, "service": r.Service, "unit": unit, "description": r.Description,
		"allow_in_projects": r.AllowInProjects, "uplimit": r.UpLimit, "project_default": r.ProjectDefault,
		"created": restTime(r.Created)}
}

func restMembers(ms []identity.Member) []map[string]any {
	out := make([]map[string]any, 0, len(ms))
	for _, m := range ms {
		v := map[string]any{"role": m.Role}
		if m.User != "" {
			v["user"] = m.User
		} else {
			v["group"] = m.Group
		}
		out = append(out, v)
	}
	return out
}

func restPolicies(ps map[string]identity.Policy) map[string]identity.Policy {
	if ps == nil {
		return map[string]identity.Policy{}
	}
	return ps
}

func restProjectView(p *identity.Project) map[string]any {
	return map[string]any{"uuid": p.UUID, "name": p.Name, "owner": p.Owner, "state": p.State, "base": p.Base,
		"policies": restPolicies(p.Policies), "members": restMembers(p.Members),
		"created": restTime(p.Created), "updated": restTime(p.Updated)}
}

func (s *Server) restGroupView(g *identity.Group) map[string]any {
	users, _ := s.id.GroupUsers(g.Name)
	us := make([]map[string]any, 0, len(users))
	for _, u := range users {
		us = append(us, map[string]any{"uuid": u.UUID, "username": u.Username, "display_name": u.DisplayName})
	}
	return map[string]any{"name": g.Name, "members": us, "created": restTime(g.Created)}
}

func restHolding(k holdings.Key, v holdings.Value) map[string]any {
	return map[string]any{"holder": k.Holder, "source": k.Source.Ptr(), "resource": k.Resource,
		"limit": v.Limit, "usage_min": v.UsageMin, "usage_max": v.UsageMax}
}

func restLogEntry(e *ledger.LogEntry) map[string]any {
	return map[string]any{
		"serial": e.Serial, "client": e.Client, "name": e.Name,
		"issue_time": restTime(e.IssueTime), "log_time": restTime(e.LogTime),
		"holder": e.Key.Holder, "source": e.Key.Source.Ptr(), "resource": e.Key.Resource,
		"quantity": e.Quantity, "limit": e.After.Limit, "usage_min": e.After.UsageMin, "usage_max": e.After.UsageMax,
		"reason": e.Reason,
	}
}

// ---- Request helpers ----

func restBad(format string, args ...any) *Fault {
	return newFault(http.StatusBadRequest, fmt.Sprintf(format, args...))
}

// restNoContent answers 204 without a body.
func (c *call) restNoContent() error {
	c.w.WriteHeader(http.StatusNoContent)
	return nil
}

// restOptionalBody decodes the body into v when there is one; an empty
// body leaves v as it is.
func (c *call) restOptionalBody(v any) error {
	b, err := readBody(c.r, c.s.opts.MaxBody)
	if err != nil {
		return err
	}
	if len(strings.TrimSpace(string(b))) == 0 {
		return nil
	}
	return decodeJSON(b, v, true)
}

// restQuery returns the query, refusing one that is not valid UTF-8 or
// names a parameter the route does not take.
func (c *call) restQuery(allowed ...string) (url.Values, error) {
	q, err := url.ParseQuery(c.r.URL.RawQuery)
	if err != nil {
		return nil, restBad("malformed query string: %v", err)
	}
	for k, vs := range q {
		if !utf8.ValidString(k) {
			return nil, restBad("query parameter names must be valid UTF-8")
		}
		if !slices.Contains(allowed, k) {
			return nil, restBad("unknown query parameter %q (this call takes: %s)", k, strings.Join(allowed, ", "))
		}
		for _, v := range vs {
			if !utf8.ValidString(v) {
				return nil, restBad("query parameter %s must be valid UTF-8", k)
			}
		}
	}
	return q, nil
}

// restPathValue returns a path wildcard, refusing invalid UTF-8.
func (c *call) restPathValue(name string) (string, error) {
	v := c.r.PathValue(name)
	if !utf8.ValidString(v) {
		return "", restBad("%s in the path must be valid UTF-8", name)
	}
	return v, nil
}

var restPageParams = []string{"page", "page_size"}

// restPaging reads page and page_size (defaults 1 and 20, at most 100).
func restPaging(q url.Values) (page, size int, err error) {
	page, size = 1, 20
	if v := q.Get("page"); v != "" {
		if page, err = strconv.Atoi(v); err != nil || page < 1 || page > 1_000_000_000 {
			return 0, 0, restBad("page must be an integer from 1 to 1000000000, got %q", v)
		}
	}
	if v := q.Get("page_size"); v != "" {
		if size, err = strconv.Atoi(v); err != nil || size < 1 || size > 100 {
			return 0, 0, restBad("page_size must be an integer from 1 to 100, got %q", v)
		}
	}
	return page, size, nil
}

// restPageOf is the page of n items: the bounds of its slice.
func restPageOf(page, size, n int) (lo, hi int) {
	if page-1 > n/size {
		return n, n
	}
	lo = min((page-1)*size, n)
	return lo, min(lo+size, n)
}

// restList answers a page as {count, next, previous, results}, next and
// previous being the URLs of the neighbouring pages (null at the ends).
func (c *call) restList(count, page, size int, results any) error {
	link := func(p int) any {
		q := c.r.URL.Query()
		q.Set("page", strconv.Itoa(p))
		q.Set("page_size", strconv.Itoa(size))
		return c.baseURL() + c.r.URL.Path + "?" + q.Encode()
	}
	var next, prev any
	if page <= count/size && page*size < count {
		next = link(page + 1)
	}
	if page > 1 {
		prev = link(min(page-1, max(1, (count+size-1)/size)))
	}
	return c.json(http.StatusOK, map[string]any{"count": count, "next": next, "previous": prev, "results": results})
}

// restPaginate answers one page of an in-memory list.
func restPaginate[T any](c *call, q url.Values, all []T, view func(T) any) error {
	page, size, err := restPaging(q)
	if err != nil {
		return err
	}
	lo, hi := restPageOf(page, size, len(all))
	out := make([]any, 0, hi-lo)
	for _, x := range all[lo:hi] {
		out = append(out, view(x))
	}
	return c.restList(len(all), page, size, out)
}

// restSplit splits comma-separated values (repeated parameters too),
// dropping empty items unless keepEmpty.
func restSplit(vs []string, keepEmpty bool) []string {
	var out []string
	for _, v := range vs {
		for item := range strings.SplitSeq(v, ",") {
			if item != "" || keepEmpty {
				out = append(out, item)
			}
		}
	}
	return out
}

func restParseTime(field, v string) (time.Time, error) {
	t, err := time.Parse(time.RFC3339Nano, v)
	if err != nil {
		return time.Time{}, restBad("%s must be an RFC 3339 time, got %q", field, v)
	}
	return t.UTC(), nil
}

// restOptTime decodes an optional time field: absent (nil) is (nil, nil),
// null is the zero time, a string is an RFC 3339 time.
func restOptTime(field string, raw json.RawMessage) (*time.Time, error) {
	if raw == nil {
		return nil, nil
	}
	var s *string
	if err := json.Unmarshal(raw, &s); err != nil {
		return nil, restBad("%s must be an RFC 3339 time or null", field)
	}
	if s == nil {
		return &time.Time{}, nil
	}
	t, err := restParseTime(field, *s)
	return &t, err
}

// restEither returns the value of one of two names for a field; both given
// and different is a 400.
func restEither(a, b *string, nameA, nameB string) (string, bool, error) {
	switch {
	case a != nil && b != nil && *a != *b:
		return "", false, restBad("%s and %s are the same field and differ", nameA, nameB)
	case a != nil:
		return *a, true, nil
	case b != nil:
		return *b, true, nil
	}
	return "", false, nil
}

func (c *call) restCanReadAll() bool { return identity.Allowed(c.p, identity.ActReadAll) }

// restUserFor returns the user a /users/{uuid} call names, once the caller
// may act on them: themselves, or anyone with the action others need.
func (c *call) restUserFor(others identity.Action) (*identity.User, error) {
	id, err := c.restPathValue("uuid")
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

// ---- Authentication and passwords ----

func (s *Server) restRegister(c *call) error {
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
	username, ok, err := restEither(in.Username, in.Email, "username", "email")
	if err != nil {
		return err
	}
	if !ok {
		return restBad("username is required")
	}
	password, ok, err := restEither(in.Password, in.Password1, "password", "password1")
	if err != nil {
		return err
	}
	if !ok {
		return restBad("password is required")
	}
	confirm, ok, err := restEither(in.Password2, in.PasswordConfirm, "password2", "password_confirm")
	if err != nil {
		return err
	}
	if ok && confirm != password {
		return restBad("the password and its confirmation differ")
	}
	u, err := s.id.Register(c.r.Context(), identity.NewUser{Username: username, Password: password,
		FirstName: in.FirstName, LastName: in.LastName, DisplayName: in.DisplayName})
	if err != nil {
		return err
	}
	return c.json(http.StatusCreated, restUser(u, true))
}

func (s *Server) restLogin(c *call) error {
	var in struct {
		Username *string `json:"username"`
		Email    *string `json:"email"`
		Password *string `json:"password"`
	}
	if err := c.body(&in, true); err != nil {
		return err
	}
	username, ok, err := restEither(in.Username, in.Email, "username", "email")
	if err != nil {
		return err
	}
	if !ok || in.Password == nil {
		return restBad("username and password are required")
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
	return c.json(http.StatusOK, map[string]any{"token": secret, "expires": restTime(tok.Expires), "user": restUser(u, false)})
}

func (s *Server) restLogout(c *call) error {
	if c.p.Kind != identity.KindSession {
		return restBad("logout ends a session; a personal access token is revoked with DELETE /account/v1.0/access_tokens/{id}")
	}
	if err := s.id.RevokeSession(c.r.Context(), c.p.Token); err != nil {
		return err
	}
	return c.json(http.StatusOK, map[string]any{"detail": "logged out"})
}

func (s *Server) restWhoami(c *call) error {
	v := restUser(c.p.User, true)
	t := c.p.Token
	v["auth"] = map[string]any{"kind": t.Kind, "token_id": t.ID, "expires": restTime(t.Expires), "read_only": c.p.ReadOnly()}
	return c.json(http.StatusOK, v)
}

// restNewPassword reads a new password and its confirmation under either
// of their names.
func restNewPassword(np, np1, confirm, np2 *string) (string, string, error) {
	password, ok, err := restEither(np, np1, "new_password", "new_password1")
	if err != nil {
		return "", "", err
	}
	if !ok {
		return "", "", restBad("new_password is required")
	}
	conf, ok, err := restEither(confirm, np2, "new_password_confirm", "new_password2")
	if err != nil {
		return "", "", err
	}
	if !ok {
		return "", "", restBad("new_password_confirm is required")
	}
	return password, conf, nil
}

func (s *Server) restPasswordChange(c *call) error {
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
	old, ok, err := restEither(in.OldPassword, in.CurrentPassword, "old_password", "current_password")
	if err != nil {
		return err
	}
	if !ok {
		return restBad("old_password is required")
	}
	np, conf, err := restNewPassword(in.NewPassword, in.NewPassword1, in.NewPasswordConfirm, in.NewPassword2)
	if err != nil {
		return err
	}
	if err := s.id.ChangePassword(c.r.Context(), c.p.User.UUID, old, np, conf); err != nil {
		return err
	}
	return c.json(http.StatusOK, map[string]any{"detail": "password changed"})
}

func (s *Server) restPasswordReset(c *call) error {
	var in struct {
		Username *string `json:"username"`
		Email    *string `json:"email"`
	}
	if err := c.body(&in, true); err != nil {
		return err
	}
	username, ok, err := restEither(in.Username, in.Email, "username", "email")
	if err != nil {
		return err
	}
	if !ok || strings.TrimSpace(username) == "" {
		return restBad("username is required")
	}
	if len(username) > 1024 {
		return restBad("username is too long")
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

func (s *Server) restPasswordResetConfirm(c *call) error {
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
	id, ok, err := restEither(in.ID, in.Token, "id", "token")
	if err != nil {
		return err
	}
	if !ok || id == "" {
		return restBad("id (the reset request id) is required")
	}
	np, conf, err := restNewPassword(in.NewPassword, in.NewPassword1, in.NewPasswordConfirm, in.NewPassword2)
	if err != nil {
		return err
	}
	if err := s.id.ResetPassword(c.r.Context(), id, np, conf); err != nil {
		return err
	}
	return c.json(http.StatusOK, map[string]any{"detail": "password reset"})
}

func (s *Server) restPasswordPolicy(c *call) error {
	return c.json(http.StatusOK, s.id.Policy())
}

func (s *Server) restRules(c *call) error {
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

// ---- Access tokens ----

func (s *Server) restTokenCreate(c *call) error {
	var in struct {
		Name       *string         `json:"name"`
		Expires    json.RawMessage `json:"expires"`
		ExpiryDate json.RawMessage `json:"expiry_date"`
		ReadOnly   bool            `json:"read_only"`
	}
	if err := c.body(&in, true); err != nil {
		return err
	}
	if in.Name == nil {
		return restBad("name is required")
	}
	if in.Expires != nil && in.ExpiryDate != nil {
		return restBad("give expires or expiry_date, not both")
	}
	raw, field := in.Expires, "expires"
	if in.ExpiryDate != nil {
		raw, field = in.ExpiryDate, "expiry_date"
	}
	exp, err := restOptTime(field, raw)
	if err != nil {
		return err
	}
	var expires time.Time
	if exp != nil {
		expires = *exp
	}
	secret, tok, err := s.id.CreateAccessToken(c.r.Context(), c.p.User.UUID, *in.Name, expires, in.ReadOnly)
	if err != nil {
		return err
	}
	v := restToken(tok)
	v["token"] = secret
	return c.json(http.StatusCreated, v)
}

func (s *Server) restTokenList(c *call) error {
	q, err := c.restQuery(append([]string{"name", "owner", "search", "sort", "filter"}, restPageParams...)...)
	if err != nil {
		return err
	}
	page, size, err := restPaging(q)
	if err != nil {
		return err
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
	tq := identity.TokenQuery{Owner: owner, Name: q.Get("name"), Search: q.Get("search"), Sort: q.Get("sort"),
		Page: page, PageSize: size}
	if f := q.Get("filter"); f != "" {
		tq.Filter = json.RawMessage(f)
	}
	res, err := s.id.ListAccessTokens(tq)
	if err != nil {
		return err
	}
	out := make([]any, 0, len(res.Results))
	for _, t := range res.Results {
		out = append(out, restToken(t))
	}
	return c.restList(res.Count, page, size, out)
}

func (s *Server) restTokenSelf(c *call) error {
	t, err := s.id.SelfToken(c.p)
	if err != nil {
		return err
	}
	return c.json(http.StatusOK, restToken(t))
}

// restTokenOwner is the owner a token call is limited to: the caller, or
// anyone ("") for admins.
func (c *call) restTokenOwner() string {
	if c.p.IsAdmin() {
		return ""
	}
	return c.p.User.UUID
}

func (s *Server) restTokenGet(c *call) error {
	id, err := c.restPathValue("id")
	if err != nil {
		return err
	}
	var t *identity.Token
	if owner := c.restTokenOwner(); owner == "" {
		t, err = s.id.GetAccessTokenAny(id)
	} else {
		t, err = s.id.GetAccessToken(owner, id)
	}
	if err != nil {
		return err
	}
	return c.json(http.StatusOK, restToken(t))
}

func (s *Server) restTokenUpdate(c *call) error {
	id, err := c.restPathValue("id")
	if err != nil {
		return err
	}
	var in struct {
		Name       *string         `json:"name"`
		Expires    json.RawMessage `json:"expires"`
		ExpiryDate json.RawMessage `json:"expiry_date"`
		ReadOnly   *bool           `json:"read_only"`
	}
	if err := c.body(&in, true); err != nil {
		return err
	}
	if in.Expires != nil && in.ExpiryDate != nil {
		return restBad("give expires or expiry_date, not both")
	}
	raw, field := in.Expires, "expires"
	if in.ExpiryDate != nil {
		raw, field = in.ExpiryDate, "expiry_date"
	}
	exp, err := restOptTime(field, raw)
	if err != nil {
		return err
	}
	t, err := s.id.UpdateAccessToken(c.r.Context(), c.restTokenOwner(), id,
		identity.TokenUpdate{Name: in.Name, Expires: exp, ReadOnly: in.ReadOnly})
	if err != nil {
		return err
	}
	return c.json(http.StatusOK, restToken(t))
}

func (s *Server) restTokenRevoke(c *call) error {
	id, err := c.restPathValue("id")
	if err != nil {
		return err
	}
	if err := s.id.RevokeToken(c.r.Context(), c.restTokenOwner(), id); err != nil {
		return err
	}
	return c.restNoContent()
}

// ---- Users ----

func (s *Server) restUserList(c *call) error {
	q, err := c.restQuery(append([]string{"q"}, restPageParams...)...)
	if err != nil {
		return err
	}
	page, size, err := restPaging(q)
	if err != nil {
		return err
	}
	n, users, err := s.id.ListUsers(identity.UserQuery{Prefix: q.Get("q"), Page: page, PageSize: size})
	if err != nil {
		return err
	}
	out := make([]any, 0, len(users))
	for _, u := range users {
		out = append(out, restUser(u, false))
	}
	return c.restList(n, page, size, out)
}

func (s *Server) restUserCreate(c *call) error {
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
		return restBad("username and password are required")
	}
	active := in.Active == nil || *in.Active
	u, err := s.id.CreateUser(c.r.Context(), identity.NewUser{Username: *in.Username, Password: *in.Password,
		FirstName: in.FirstName, LastName: in.LastName, DisplayName: in.DisplayName,
		Role: identity.Role(in.Role), Active: active})
	if err != nil {
		return err
	}
	return c.json(http.StatusCreated, restUser(u, true))
}

func (s *Server) restUserGet(c *call) error {
	u, err := c.restUserFor(identity.ActReadAll)
	if err != nil {
		return err
	}
	return c.json(http.StatusOK, restUser(u, true))
}

func (s *Server) restUserUpdate(c *call) error {
	u, err := c.restUserFor(identity.ActManageUsers)
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
		return restBad("data must be a JSON object")
	}
	nu, err := s.id.UpdateUser(c.r.Context(), u.UUID, identity.UserUpdate{DisplayName: in.DisplayName,
		FirstName: in.FirstName, LastName: in.LastName, Data: in.Data})
	if err != nil {
		return err
	}
	return c.json(http.StatusOK, restUser(nu, true))
}

func (s *Server) restUserDelete(c *call) error {
	id, err := c.restPathValue("uuid")
	if err != nil {
		return err
	}
	if err := s.id.DeleteUser(c.r.Context(), id); err != nil {
		return err
	}
	return c.restNoContent()
}

func (s *Server) restUserActivate(c *call) error {
	id, err := c.restPathValue("uuid")
	if err != nil {
		return err
	}
	var in struct {
		EmailVerified bool `json:"email_verified"`
	}
	if err := c.restOptionalBody(&in); err != nil {
		return err
	}
	u, err := s.id.Activate(c.r.Context(), id, in.EmailVerified)
	if err != nil {
		return err
	}
	return c.json(http.StatusOK, restUser(u, true))
}

func (s *Server) restUserRole(c *call) error {
	id, err := c.restPathValue("uuid")
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
		return restBad("role is required")
	}
	u, err := s.id.SetRole(c.r.Context(), id, identity.Role(*in.Role))
	if err != nil {
		return err
	}
	return c.json(http.StatusOK, restUser(u, true))
}

func (s *Server) restUserDataGet(c *call) error {
	u, err := c.restUserFor(identity.ActReadAll)
	if err != nil {
		return err
	}
	return c.json(http.StatusOK, restUserData(u))
}

func (s *Server) restUserDataPut(c *call) error {
	u, err := c.restUserFor(identity.ActManageUsers)
	if err != nil {
		return err
	}
	var data json.RawMessage
	if err := c.body(&data, true); err != nil {
		return err
	}
	if len(data) == 0 || data[0] != '{' {
		return restBad("the body must be a JSON object")
	}
	nu, err := s.id.UpdateUser(c.r.Context(), u.UUID, identity.UserUpdate{Data: data})
	if err != nil {
		return err
	}
	return c.json(http.StatusOK, restUserData(nu))
}

// ---- Groups ----

func (s *Server) restGroupList(c *call) error {
	q, err := c.restQuery(restPageParams...)
	if err != nil {
		return err
	}
	return restPaginate(c, q, s.id.Groups(), func(g *identity.Group) any { return s.restGroupView(g) })
}

func (s *Server) restGroupCreate(c *call) error {
	var in struct {
		Name    *string  `json:"name"`
		Members []string `json:"members"`
	}
	if err := c.body(&in, true); err != nil {
		return err
	}
	if in.Name == nil {
		return restBad("name is required")
	}
	for i, m := range in.Members {
		if _, err := s.id.GetUser(m); err != nil {
			return restBad("members[%d]: no user %q", i, m)
		}
		if slices.Contains(in.Members[:i], m) {
			return restBad("members[%d]: user %s is listed twice", i, m)
		}
	}
	g, err := s.id.CreateGroup(c.r.Context(), *in.Name)
	if err != nil {
		return err
	}
	for _, m := range in.Members {
		if g, err = s.id.AddGroupMember(c.r.Context(), g.Name, m); err != nil {
			return err
		}
	}
	return c.json(http.StatusCreated, s.restGroupView(g))
}

func (s *Server) restGroupGet(c *call) error {
	name, err := c.restPathValue("name")
	if err != nil {
		return err
	}
	g, err := s.id.GetGroup(name)
	if err != nil {
		return err
	}
	return c.json(http.StatusOK, s.restGroupView(g))
}

func (s *Server) restGroupRename(c *call) error {
	name, err := c.restPathValue("name")
	if err != nil {
		return err
	}
	var in struct {
		Name *string `json:"name"`
	}
	if err := c.body(&in, true); err != nil {
		return err
	}
	if in.Name == nil {
		return restBad("name is required")
	}
	g, err := s.id.RenameGroup(c.r.Context(), name, *in.Name)
	if err != nil {
		return err
	}
	return c.json(http.StatusOK, s.restGroupView(g))
}

func (s *Server) restGroupDelete(c *call) error {
	name, err := c.restPathValue("name")
	if err != nil {
		return err
	}
	if err := s.id.DeleteGroup(c.r.Context(), name); err != nil {
		return err
	}
	return c.restNoContent()
}

func (s *Server) restGroupAddMember(c *call) error {
	name, err := c.restPathValue("name")
	if err != nil {
		return err
	}
	var in struct {
		User *string `json:"user"`
	}
	if err := c.body(&in, true); err != nil {
		return err
	}
	if in.User == nil {
		return restBad("user (a user uuid) is required")
	}
	g, err := s.id.AddGroupMember(c.r.Context(), name, *in.User)
	if err != nil {
		return err
	}
	return c.json(http.StatusOK, s.restGroupView(g))
}

func (s *Server) restGroupRemoveMember(c *call) error {
	name, err := c.restPathValue("name")
	if err != nil {
		return err
	}
	user, err := c.restPathValue("uuid")
	if err != nil {
		return err
	}
	g, err := s.id.RemoveGroupMember(c.r.Context(), name, user)
	if err != nil {
		return err
	}
	return c.json(http.StatusOK, s.restGroupView(g))
}

// ---- Projects ----

// restProject returns the project of the path once the caller may read it
// (a member, or read_all) or, with manage, change it (an admin member, or
// manage_projects). Non-members get a 404, as if it were absent.
func (c *call) restProject(manage bool) (*identity.Project, error) {
	id, err := c.restPathValue("uuid")
	if err != nil {
		return nil, err
	}
	p, err := c.s.id.GetProject(id)
	if err != nil {
		return nil, err
	}
	if manage && identity.Allowed(c.p, identity.ActManageProjects) {
		return p, nil
	}
	if !manage && c.restCanReadAll() {
		return p, nil
	}
	members, err := c.s.id.ProjectMembers(id)
	if err != nil {
		return nil, err
	}
	role, member := members[c.p.User.UUID]
	if p.Owner == c.p.User.UUID { // the owner stays an admin, a deleted project's too
		role, member = identity.MemberAdmin, true
	}
	if !member {
		return nil, newFault(http.StatusNotFound, fmt.Sprintf("no project %q", id))
	}
	if manage && role != identity.MemberAdmin {
		return nil, newFault(http.StatusForbidden, "only an admin of project "+id+" may change it")
	}
	return p, nil
}

type restPolicy struct {
	ProjectCapacity *int64 `json:"project_capacity"`
	MemberCapacity  *int64 `json:"member_capacity"`
}

func restPolicyMap(in map[string]restPolicy) (map[string]identity.Policy, error) {
	out := make(map[string]identity.Policy, len(in))
	for r, p := range in {
		if p.ProjectCapacity == nil || p.MemberCapacity == nil {
			return nil, restBad("policy of %q needs project_capacity and member_capacity", r)
		}
		out[r] = identity.Policy{ProjectCapacity: *p.ProjectCapacity, MemberCapacity: *p.MemberCapacity}
	}
	return out, nil
}

func (s *Server) restProjectList(c *call) error {
	q, err := c.restQuery(restPageParams...)
	if err != nil {
		return err
	}
	var ps []*identity.Project
	if c.restCanReadAll() {
		ps = s.id.Projects()
	} else {
		ps = s.id.ProjectsOf(c.p.User.UUID)
	}
	return restPaginate(c, q, ps, func(p *identity.Project) any { return restProjectView(p) })
}

func (s *Server) restProjectCreate(c *call) error {
	var in struct {
		Name     *string               `json:"name"`
		Owner    *string               `json:"owner"`
		Policies map[string]restPolicy `json:"policies"`
	}
	if err := c.body(&in, true); err != nil {
		return err
	}
	if in.Name == nil {
		return restBad("name is required")
	}
	owner := c.p.User.UUID
	if in.Owner != nil && *in.Owner != owner {
		if !identity.Allowed(c.p, identity.ActManageProjects) {
			return newFault(http.StatusForbidden, "only admins create projects for someone else")
		}
		owner = *in.Owner
	}
	policies, err := restPolicyMap(in.Policies)
	if err != nil {
		return err
	}
	p, err := s.id.CreateProject(c.r.Context(), identity.NewProject{Name: *in.Name, Owner: owner, Policies: policies})
	if err != nil {
		return err
	}
	return c.json(http.StatusCreated, restProjectView(p))
}

func (s *Server) restProjectGet(c *call) error {
	p, err := c.restProject(false)
	if err != nil {
		return err
	}
	return c.json(http.StatusOK, restProjectView(p))
}

func (s *Server) restProjectDelete(c *call) error {
	p, err := c.restProject(true)
	if err != nil {
		return err
	}
	if err := s.id.DeleteProject(c.r.Context(), p.UUID); err != nil {
		return err
	}
	return c.restNoContent()
}

func (s *Server) restProjectMembers(c *call) error {
	q, err := c.restQuery(restPageParams...)
	if err != nil {
		return err
	}
	p, err := c.restProject(false)
	if err != nil {
		return err
	}
	return restPaginate(c, q, restMembers(p.Members), func(m map[string]any) any { return m })
}

// restMemberIn is a member as a body names it.
type restMemberIn struct {
	User  *string `json:"user"`
	Group *string `json:"group"`
	Role  string  `json:"role"`
}

func (s *Server) restProjectAddMember(c *call) error {
	p, err := c.restProject(true)
	if err != nil {
		return err
	}
	var in restMemberIn
	if err := c.body(&in, true); err != nil {
		return err
	}
	m := identity.Member{Role: identity.MemberRole(in.Role)}
	switch {
	case (in.User == nil) == (in.Group == nil):
		return restBad("give user (a user uuid) or group (a group name), not both")
	case in.User != nil:
		m.User = *in.User
	default:
		m.Group = *in.Group
	}
	np, err := s.id.AddMember(c.r.Context(), p.UUID, m)
	if err != nil {
		return err
	}
	return c.json(http.StatusOK, restProjectView(np))
}

// restMemberOf finds the member of p the path's {id} names: a user uuid,
// else a group name.
func (c *call) restMemberOf(p *identity.Project) (identity.Member, error) {
	id, err := c.restPathValue("id")
	if err != nil {
		return identity.Member{}, err
	}
	for _, m := range p.Members {
		if m.User == id {
			return identity.Member{User: id}, nil
		}
	}
	for _, m := range p.Members {
		if m.Group == id {
			return identity.Member{Group: id}, nil
		}
	}
	return identity.Member{}, newFault(http.StatusNotFound, fmt.Sprintf("%q is not a member of project %s", id, p.UUID))
}

func (s *Server) restProjectMemberRole(c *call) error {
	p, err := c.restProject(true)
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
		return restBad("role is required")
	}
	m, err := c.restMemberOf(p)
	if err != nil {
		return err
	}
	m.Role = identity.MemberRole(*in.Role)
	np, err := s.id.SetMemberRole(c.r.Context(), p.UUID, m)
	if err != nil {
		return err
	}
	return c.json(http.StatusOK, restProjectView(np))
}

func (s *Server) restProjectRemoveMember(c *call) error {
	p, err := c.restProject(true)
	if err != nil {
		return err
	}
	m, err := c.restMemberOf(p)
	if err != nil {
		return err
	}
	if _, err := s.id.RemoveMember(c.r.Context(), p.UUID, m); err != nil {
		return err
	}
	return c.restNoContent()
}

func (s *Server) restProjectPolicies(c *call) error {
	p, err := c.restProject(false)
	if err != nil {
		return err
	}
	return c.json(http.StatusOK, restPolicies(p.Policies))
}

func (s *Server) restProjectSetPolicies(c *call) error {
	p, err := c.restProject(true)
	if err != nil {
		return err
	}
	var in map[string]restPolicy
	if err := c.body(&in, true); err != nil {
		return err
	}
	if in == nil {
		return restBad("the body must be a JSON object of resource: {project_capacity, member_capacity}")
	}
	policies, err := restPolicyMap(in)
	if err != nil {
		return err
	}
	np, err := s.id.SetPolicies(c.r.Context(), p.UUID, policies)
	if err != nil {
		return err
	}
	return c.json(http.StatusOK, restPolicies(np.Policies))
}

// ---- Resources and services ----

func (s *Server) restResourceCreate(c *call) error {
	var in struct {
		Name            *string `json:"name"`
		Service         *string `json:"service"`
		Unit            *string `json:"unit"`
		Description     string  `json:"description"`
		AllowInProjects bool    `json:"allow_in_projects"`
		UpLimit         int64   `json:"uplimit"`
		ProjectDefault  int64   `json:"project_default"`
	}
	if err := c.body(&in, true); err != nil {
		return err
	}
	if in.Name == nil || in.Service == nil {
		return restBad("name and service are required")
	}
	r := identity.Resource{Name: *in.Name, Service: *in.Service, Description: in.Description,
		AllowInProjects: in.AllowInProjects, UpLimit: in.UpLimit, ProjectDefault: in.ProjectDefault}
	if in.Unit != nil {
		r.Unit = *in.Unit
	}
	res, err := s.id.RegisterResource(c.r.Context(), r)
	if err != nil {
		return err
	}
	return c.json(http.StatusCreated, restResource(res))
}

func (s *Server) restServiceList(c *call) error {
	q, err := c.restQuery(restPageParams...)
	if err != nil {
		return err
	}
	return restPaginate(c, q, s.id.Services(), func(svc *identity.Service) any { return restService(svc) })
}

type restEndpointIn struct {
	PublicURL string `json:"publicURL"`
	VersionID string `json:"versionId"`
	Region    string `json:"region"`
}

func (s *Server) restServiceCreate(c *call) error {
	var in struct {
		Name         *string          `json:"name"`
		Type         string           `json:"type"`
		Endpoints    []restEndpointIn `json:"endpoints"`
		TokenExpires json.RawMessage  `json:"token_expires"`
	}
	if err := c.body(&in, true); err != nil {
		return err
	}
	if in.Name == nil {
		return restBad("name is required")
	}
	exp, err := restOptTime("token_expires", in.TokenExpires)
	if err != nil {
		return err
	}
	ns := identity.NewService{Name: *in.Name, Type: in.Type, Endpoints: make([]identity.Endpoint, 0, len(in.Endpoints))}
	for _, e := range in.Endpoints {
		ns.Endpoints = append(ns.Endpoints, identity.Endpoint{PublicURL: e.PublicURL, VersionID: e.VersionID, Region: e.Region})
	}
	if exp != nil {
		ns.TokenExpires = *exp
	}
	secret, svc, err := s.id.RegisterService(c.r.Context(), ns)
	if err != nil {
		return err
	}
	v := restService(svc)
	v["token"] = secret
	v["token_expires"] = restTime(ns.TokenExpires)
	return c.json(http.StatusCreated, v)
}

func (s *Server) restServiceGet(c *call) error {
	name, err := c.restPathValue("name")
	if err != nil {
		return err
	}
	svc, err := s.id.GetService(name)
	if err != nil {
		return err
	}
	return c.json(http.StatusOK, restService(svc))
}

func (s *Server) restServiceDelete(c *call) error {
	name, err := c.restPathValue("name")
	if err != nil {
		return err
	}
	if err := s.id.RemoveService(c.r.Context(), name); err != nil {
		return err
	}
	return c.restNoContent()
}

func (s *Server) restServiceRenew(c *call) error {
	name, err := c.restPathValue("name")
	if err != nil {
		return err
	}
	var in struct {
		Expires json.RawMessage `json:"expires"`
	}
	if err := c.restOptionalBody(&in); err != nil {
		return err
	}
	exp, err := restOptTime("expires", in.Expires)
	if err != nil {
		return err
	}
	var expires time.Time
	if exp != nil {
		expires = *exp
	}
	secret, svc, err := s.id.RenewServiceToken(c.r.Context(), name, expires)
	if err != nil {
		return err
	}
	v := restService(svc)
	v["token"] = secret
	v["token_expires"] = restTime(expires)
	return c.json(http.StatusOK, v)
}

// ---- Holdings ----

// restKeyIn is a holding's key as a body gives it; a missing source is null.
type restKeyIn struct {
	Holder   *string         `json:"holder"`
	Source   holdings.Source `json:"source"`
	Resource *string         `json:"resource"`
}

// restKey is entry i's key, checked by holdings.
func (s *Server) restKey(i int, in restKeyIn) (holdings.Key, error) {
	k := holdings.Key{Source: in.Source}
	if in.Holder != nil {
		k.Holder = *in.Holder
	}
	if in.Resource != nil {
		k.Resource = *in.Resource
	}
	var ie *holdings.InvalidError
	if err := s.limits.ValidateKey(k); errors.As(err, &ie) {
		switch ie.Problem {
		case holdings.Empty:
			return k, restBad("holdings[%d].%s must be a non-empty string", i, ie.Part)
		case holdings.TooLong:
			return k, restBad("holdings[%d]: holder, source and resource are at most %d bytes", i, ie.Max)
		}
		return k, restBad("holdings[%d]: %v", i, err)
	}
	return k, nil
}

func (s *Server) restHoldingsSet(c *call) error {
	type entry struct {
		restKeyIn
		Limit *int64 `json:"limit"`
	}
	var in struct {
		Holdings *[]entry `json:"holdings"`
	}
	if err := c.body(&in, true); err != nil {
		return err
	}
	if in.Holdings == nil {
		return restBad(`holdings is required: {"holdings": [{"holder", "source", "resource", "limit"}, ...]}`)
	}
	settings := make([]ledger.QuotaSetting, 0, len(*in.Holdings))
	var order []holdings.Key
	seen := make(map[holdings.Key]bool, len(*in.Holdings))
	for i, e := range *in.Holdings {
		k, err := s.restKey(i, e.restKeyIn)
		if err != nil {
			return err
		}
		if e.Limit == nil {
			return restBad("holdings[%d].limit is required", i)
		}
		if *e.Limit < 0 {
			return restBad("holdings[%d].limit must not be negative", i)
		}
		settings = append(settings, ledger.QuotaSetting{Key: k, Limit: *e.Limit})
		if !seen[k] {
			seen[k] = true
			order = append(order, k)
		}
	}
	if len(settings) > 0 {
		if err := s.l.SetQuota(c.r.Context(), settings); err != nil {
			return err
		}
	}
	out := make([]any, 0, len(order))
	for _, k := range order {
		if v, ok := s.l.Holding(k); ok {
			out = append(out, restHolding(k, v))
		}
	}
	return c.json(http.StatusOK, map[string]any{"holdings": out})
}

func (s *Server) restHoldingsGet(c *call) error {
	svc := c.p.Service
	switch {
	case svc != nil:
		if !identity.Allowed(c.p, identity.ActServiceRead) {
			return newFault(http.StatusForbidden, "not allowed to "+string(identity.ActServiceRead))
		}
	case !c.restCanReadAll():
		return newFault(http.StatusForbidden, "not allowed to "+string(identity.ActReadAll))
	}
	q, err := c.restQuery("holder", "source", "resource", "null_source")
	if err != nil {
		return err
	}
	f := ledger.QuotaFilter{Holders: restSplit(q["holder"], false), Resources: restSplit(q["resource"], false)}
	for _, src := range restSplit(q["source"], true) {
		f.Sources = append(f.Sources, holdings.SourceOf(src))
	}
	switch v := q.Get("null_source"); v {
	case "", "0", "false":
	case "1", "true":
		f.Sources = append(f.Sources, holdings.NullSource)
	default:
		return restBad("null_source must be 1, true, 0 or false, got %q", v)
	}
	if svc != nil {
		for _, r := range f.Resources {
			if !s.id.Serves(svc.Name, r) {
				return newFault(http.StatusForbidden, fmt.Sprintf("service %s does not serve resource %q", svc.Name, r))
			}
		}
		if len(f.Resources) == 0 {
			if f.Resources = s.id.ServedResources(svc.Name); len(f.Resources) == 0 {
				return c.json(http.StatusOK, map[string]any{"holdings": []any{}})
			}
		}
	}
	hs := s.l.Quotas(f)
	out := make([]any, 0, len(hs))
	for _, h := range hs {
		out = append(out, restHolding(h.Key, h.Value))
	}
	return c.json(http.StatusOK, map[string]any{"holdings": out})
}

func (s *Server) restHoldingsDelete(c *call) error {
	var in struct {
		Holdings *[]restKeyIn `json:"holdings"`
	}
	if err := c.body(&in, true); err != nil {
		return err
	}
	if in.Holdings == nil {
		return restBad(`holdings is required: {"holdings": [{"holder", "source", "resource"}, ...]}`)
	}
	keys := make([]holdings.Key, 0, len(*in.Holdings))
	out := make([]any, 0, len(*in.Holdings))
	for i, e := range *in.Holdings {
		k, err := s.restKey(i, e)
		if err != nil {
			return err
		}
		keys = append(keys, k)
		out = append(out, map[string]any{"holder": k.Holder, "source": k.Source.Ptr(), "resource": k.Resource})
	}
	if len(keys) > 0 {
		if err := s.l.DeleteQuota(c.r.Context(), keys); err != nil {
			return err
		}
	}
	return c.json(http.StatusOK, map[string]any{"holdings": out})
}

// ---- The provision log ----

func restSerial(v string) (uint64, error) {
	n, err := strconv.ParseUint(v, 10, 64)
	if err != nil || n == 0 {
		return 0, restBad("serial must be a positive integer, got %q", v)
	}
	return n, nil
}

func (s *Server) restCommissionLog(c *call) error {
	q, err := c.restQuery(restPageParams...)
	if err != nil {
		return err
	}
	f := ledger.LogFilter{}
	switch {
	case c.p.Service != nil:
		if !identity.Allowed(c.p, identity.ActCommission) {
			return newFault(http.StatusForbidden, "not allowed to "+string(identity.ActCommission))
		}
		f.Client = c.p.Service.Name
	case !c.restCanReadAll():
		return newFault(http.StatusForbidden, "only the issuing service, admins and readers read a commission's log")
	}
	sv, err := c.restPathValue("serial")
	if err != nil {
		return err
	}
	if f.Serial, err = restSerial(sv); err != nil {
		return err
	}
	page, err := s.l.Log(f)
	if err != nil {
		return err
	}
	if len(page.Entries) == 0 {
		return newFault(http.StatusNotFound, fmt.Sprintf("no log of commission %d (not resolved, not yours, or without provisions)", f.Serial))
	}
	return restPaginate(c, q, page.Entries, func(e ledger.LogEntry) any { return restLogEntry(&e) })
}

// restHolderAllowed reports whether the caller may read the log of holder.
func (c *call) restHolderAllowed(holder string) bool {
	if c.restCanReadAll() || holder == "user:"+c.p.User.UUID {
		return true
	}
	if pid, ok := strings.CutPrefix(holder, "project:"); ok {
		members, err := c.s.id.ProjectMembers(pid)
		if err == nil {
			_, member := members[c.p.User.UUID]
			return member
		}
	}
	return false
}

func (s *Server) restHistory(c *call) error {
	q, err := c.restQuery("holder", "resource", "serial", "from", "to", "after", "limit")
	if err != nil {
		return err
	}
	f := ledger.LogFilter{Holder: q.Get("holder"), Resource: q.Get("resource"), After: q.Get("after")}
	if f.Holder == "" && !c.restCanReadAll() {
		f.Holder = "user:" + c.p.User.UUID
	}
	if f.Holder != "" && !c.restHolderAllowed(f.Holder) {
		return newFault(http.StatusForbidden, "you may read the history of your own holdings and your projects' only")
	}
	if v := q.Get("serial"); v != "" {
		if f.Serial, err = restSerial(v); err != nil {
			return err
		}
	}
	for _, t := range []struct {
		name string
		dst  *time.Time
	}{{"from", &f.From}, {"to", &f.To}} {
		if v := q.Get(t.name); v != "" {
			if *t.dst, err = restParseTime(t.name, v); err != nil {
				return err
			}
		}
	}
	if v := q.Get("limit"); v != "" {
		if f.Limit, err = strconv.Atoi(v); err != nil || f.Limit < 1 || f.Limit > ledger.MaxLogPage {
			return restBad("limit must be an integer from 1 to %d, got %q", ledger.MaxLogPage, v)
		}
	}
	page, err := s.l.Log(f)
	if err != nil {
		return err
	}
	out := make([]any, 0, len(page.Entries))
	for i := range page.Entries {
		out = append(out, restLogEntry(&page.Entries[i]))
	}
	var next any
	if page.Next != "" {
		next = page.Next
	}
	return c.json(http.StatusOK, map[string]any{"count": len(out), "next": next, "results": out})
}

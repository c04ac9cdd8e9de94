package api

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/quotaledger/quotaledger/failure"
	"github.com/quotaledger/quotaledger/holdings"
	"github.com/quotaledger/quotaledger/identity"
	"github.com/quotaledger/quotaledger/internal/testkit"
	"github.com/quotaledger/quotaledger/ledger"
)

// The principal kinds of the access table.
const (
	whoAnon         = "anonymous"
	whoUser         = "user"          // the first user, by a session
	whoReadOnly     = "read-only"     // the first user, by a read-only personal token
	whoOther        = "other-user"    // a second user, by a session
	whoService      = "service"       // cyclades, whose commissions the table names
	whoOtherService = "other-service" // pithos
	whoAdmin        = "admin"         // an admin, by a personal token
	whoAdminRO      = "admin-ro"      // the admin, by a read-only personal token
	whoReader       = "reader"        // a user of role reader, by a session
	whoReaderRO     = "reader-ro"     // the reader, by a read-only personal token
	whoExpired      = "expired"       // the first user's personal token, past its expiry
	whoRevoked      = "revoked"       // the first user's personal token, revoked
	whoDeleted      = "deleted-user"  // a token issued before its user was deleted
)

// accessWho is a principal kind: its token, and what the rules table knows
// of it.
type accessWho struct {
	name  string
	token string
	// valid is false for no token and for one that no longer authenticates:
	// every route that needs a token refuses it with 401.
	valid    bool
	kind     identity.TokenKind
	role     identity.Role // of the user, for user tokens
	readOnly bool
	// mint makes another token of the same kind and owner, for a call that
	// ends the token it is made with (logout); nil: the same token.
	mint func(t *testing.T) string
}

// may reports whether the rules table lets w perform a. It reads
// identity.Rules itself rather than calling identity.Allowed, so that a
// slip in either shows here.
func (w *accessWho) may(a identity.Action) bool {
	for _, r := range identity.Rules {
		if r.Action != a {
			continue
		}
		if !slices.Contains(r.Kinds, w.kind) || (r.Changes && w.readOnly) {
			return false
		}
		return w.kind == identity.KindService || slices.Contains(r.Roles, w.role)
	}
	return false
}

// accessSpec is what the access table knows of a route beyond its access
// kind and action: how to call it, and the refusals that depend on the
// object a call names rather than on the rules table.
type accessSpec struct {
	// query is added to the path; {placeholders} are filled as in the path.
	query string
	// vars are path values other than the defaults (accessFix.vars).
	vars func(f *accessFix) map[string]string
	// body is the request body, built from the call's path values.
	body func(f *accessFix, v map[string]string) any
	// need, for a route open to Any token, lists the actions one of which
	// the caller needs (the route's summary and DESIGN.md §3 say who).
	need []identity.Action
	// fresh makes, for each allowed call of a route that consumes its
	// object (delete, rename, resolve), a new object of the first user or
	// service and returns its path values. Refused calls name the first
	// user's or service's own objects.
	fresh func(t *testing.T, f *accessFix) map[string]string
	// freshToken: an allowed call ends the token it is made with, so it is
	// made with another of the same kind (who.mint).
	freshToken bool
	// deny are the per-object refusals: principals the rules table lets
	// call the route whose call names an object that is not theirs, with
	// the status the API answers (DESIGN.md §3 and §8, the notes at the
	// top of rest.go). Such a call must change nothing either.
	deny map[string]int
	// odd are allowed calls that do not answer 2xx, with their status.
	odd map[string]int
	// hide are principals whose (allowed) answer must not contain a text
	// ({placeholders} filled): the first user's uuid, the first service's
	// resources.
	hide map[string]string
}

// accessFix is the world the access table runs in: the env's admin, user
// and service, and the objects the table's paths name.
type accessFix struct {
	e   *env
	ctx context.Context
	who []*accessWho

	u1, u2, u4 *identity.User // the first user, the other user, a bystander
	adminUUID  string
	p1         string // a project of the first user (its owner); u4 is a member
	victim     string // id of a personal token of the first user no principal uses
	s0, s1     uint64 // commissions of cyclades: resolved, pending
	n          int    // for unique names
	// wrote are the routes (method and path) an allowed call of which
	// wrote to the ledger (its applied sequence moved).
	wrote map[string]bool
}

func (f *accessFix) next() int { f.n++; return f.n }

// vars are the default path values: the first user's and the first
// service's objects.
func (f *accessFix) vars() map[string]string {
	return map[string]string{
		"{uuid}":   f.u1.UUID,
		"{u1}":     f.u1.UUID,
		"{p1}":     f.p1,
		"{id}":     f.victim,
		"{name}":   "cyclades",
		"{serial}": strconv.FormatUint(f.s1, 10),
		"{token}":  f.e.user,
	}
}

func newAccessFix(t *testing.T) *accessFix {
	t.Helper()
	e := newEnv(t)
	ctx := context.Background()
	f := &accessFix{e: e, ctx: ctx, u1: e.userRec, wrote: map[string]bool{}}
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	// The expired token first: it expires while the rest is set up (newEnv
	// has no clock to move; identity takes the expiry as given).
	expired, _, err := e.id.CreateAccessToken(ctx, f.u1.UUID, "expiring", time.Now().Add(300*time.Millisecond), false)
	must(err)

	ro, _, err := e.id.CreateAccessToken(ctx, f.u1.UUID, "read-only", time.Time{}, true)
	must(err)
	revoked, rtok, err := e.id.CreateAccessToken(ctx, f.u1.UUID, "revoked", time.Time{}, false)
	must(err)
	must(e.id.DeleteAccessToken(ctx, f.u1.UUID, rtok.ID))
	_, vtok, err := e.id.CreateAccessToken(ctx, f.u1.UUID, "victim", time.Time{}, false)
	must(err)
	f.victim = vtok.ID

	var other string
	f.u2, other = e.restNewUser("other@example.com")
	readerRec, err := e.id.CreateUser(ctx, identity.NewUser{Username: "reader@example.com", Password: testPassword,
		Role: identity.RoleReader, Active: true})
	must(err)
	reader, _, _, err := e.id.Login(ctx, "reader@example.com", testPassword, identity.Origin{})
	must(err)
	readerRO, _, err := e.id.CreateAccessToken(ctx, readerRec.UUID, "reader read-only", time.Time{}, true)
	must(err)
	f.u4, _ = e.restNewUser("bystander@example.com")
	u3, _ := e.restNewUser("deleted@example.com")
	deleted, _, err := e.id.CreateAccessToken(ctx, u3.UUID, "before deletion", time.Time{}, false)
	must(err)
	must(e.id.DeleteUser(ctx, u3.UUID))
	admin, err := e.id.FindUserByName("admin@example.com")
	must(err)
	f.adminUUID = admin.UUID
	adminRO, _, err := e.id.CreateAccessToken(ctx, f.adminUUID, "admin read-only", time.Time{}, true)
	must(err)

	otherService, _, err := e.id.CreateService(ctx, identity.NewService{Name: "pithos", Type: "object-store"})
	must(err)
	_, err = e.id.CreateResource(ctx, identity.Resource{Name: "pithos.diskspace", Service: "pithos", Unit: "bytes",
		AllowInProjects: true, UpLimit: 1 << 30, ProjectDefault: 1 << 20})
	must(err)

	p1, err := e.id.CreateProject(ctx, identity.NewProject{Name: "first", Owner: f.u1.UUID,
		Policies: map[string]identity.Policy{"cyclades.vm": {ProjectCapacity: 4, MemberCapacity: 2},
			"pithos.diskspace": {ProjectCapacity: 1 << 30, MemberCapacity: 1 << 20}}})
	must(err)
	f.p1 = p1.UUID
	_, err = e.id.AddProjectMember(ctx, f.p1, identity.Member{User: f.u4.UUID, Role: identity.MemberMember})
	must(err)
	_, err = e.id.CreateGroup(ctx, "g1")
	must(err)
	_, err = e.id.AddGroupMember(ctx, "g1", f.u1.UUID)
	must(err)

	f.s0 = f.issue(t)
	must(e.l.Resolve(ctx, "cyclades", f.s0, true, ""))
	f.s1 = f.issue(t)

	login := func(name string) func(t *testing.T) string {
		return func(t *testing.T) string {
			secret, _, _, err := e.id.Login(ctx, name, testPassword, identity.Origin{})
			if err != nil {
				t.Fatal(err)
			}
			return secret
		}
	}
	pat := func(owner string, readOnly bool) func(t *testing.T) string {
		return func(t *testing.T) string {
			secret, _, err := e.id.CreateAccessToken(ctx, owner, "minted", time.Time{}, readOnly)
			if err != nil {
				t.Fatal(err)
			}
			return secret
		}
	}
	f.who = []*accessWho{
		{name: whoAnon},
		{name: whoUser, token: e.user, valid: true, kind: identity.KindSession, role: identity.RoleUser, mint: login("user@example.com")},
		{name: whoReadOnly, token: ro, valid: true, kind: identity.KindPersonal, role: identity.RoleUser, readOnly: true, mint: pat(f.u1.UUID, true)},
		{name: whoOther, token: other, valid: true, kind: identity.KindSession, role: identity.RoleUser, mint: login("other@example.com")},
		{name: whoService, token: e.service, valid: true, kind: identity.KindService},
		{name: whoOtherService, token: otherService, valid: true, kind: identity.KindService},
		{name: whoAdmin, token: e.admin, valid: true, kind: identity.KindPersonal, role: identity.RoleAdmin, mint: pat(f.adminUUID, false)},
		{name: whoAdminRO, token: adminRO, valid: true, kind: identity.KindPersonal, role: identity.RoleAdmin, readOnly: true, mint: pat(f.adminUUID, true)},
		{name: whoReader, token: reader, valid: true, kind: identity.KindSession, role: identity.RoleReader, mint: login("reader@example.com")},
		{name: whoReaderRO, token: readerRO, valid: true, kind: identity.KindPersonal, role: identity.RoleReader, readOnly: true, mint: pat(readerRec.UUID, true)},
		{name: whoExpired, token: expired},
		{name: whoRevoked, token: revoked},
		{name: whoDeleted, token: deleted},
	}

	testkit.CheckFor(t, testkit.Patience, 10*time.Millisecond, func() error {
		if _, err := e.id.Authenticate(expired); err == nil {
			return errors.New("the expiring token did not expire")
		}
		return nil
	})
	// Each principal authenticates, or not, as the table assumes.
	for _, w := range f.who {
		if w.token == "" {
			continue
		}
		p, err := e.id.Authenticate(w.token)
		if w.valid != (err == nil) {
			t.Fatalf("%s: authenticate: %v", w.name, err)
		}
		if !w.valid {
			if failure.CodeOf(err) != failure.Unauthorized {
				t.Fatalf("%s: authenticate: %v, want failure.Unauthorized", w.name, err)
			}
			continue
		}
		if p.Kind != w.kind || p.ReadOnly() != w.readOnly || (p.User != nil && p.User.Role != w.role) {
			t.Fatalf("%s: principal %+v is not what the table assumes", w.name, p)
		}
	}
	return f
}

// issue issues a commission of cyclades on the first user's base project:
// one byte of memory, so that many fit.
func (f *accessFix) issue(t *testing.T) uint64 {
	t.Helper()
	res, err := f.e.l.Issue(f.ctx, ledger.IssueRequest{Client: "cyclades",
		Provisions: []holdings.Provision{{Key: f.e.memberKey("cyclades.ram"), Quantity: 1}}})
	if err != nil {
		t.Fatal(err)
	}
	return res.Serial
}

// state is what a refused call must leave as it was: the ledger's counts
// and holdings, the outbox (every committed change emits an event), the
// pending commissions, and the records the table's calls name.
func (f *accessFix) state(t *testing.T) string {
	t.Helper()
	e := f.e
	var b strings.Builder
	st := e.l.Stats()
	st.Batches, st.Calls = 0, 0 // a call the ledger refuses is counted too
	ob, err := e.l.OutboxStats()
	if err != nil {
		t.Fatal(err)
	}
	_, n, _ := e.id.FindUsers(identity.UserFilter{Limit: 1})
	toks, _, err := e.id.FindAccessTokens(identity.TokenFilter{Owner: f.u1.UUID, Limit: 100})
	if err != nil {
		t.Fatal(err)
	}
	fmt.Fprintf(&b, "outbox=%d stats=%+v users=%d pending=%v/%v\n", ob.Last, st, n,
		e.l.Pending("cyclades"), e.l.Pending("pithos"))
	fmt.Fprintf(&b, "holdings=%v\n", e.l.FindHoldings(ledger.HoldingFilter{}))
	for _, id := range []string{f.u1.UUID, f.u2.UUID, f.u4.UUID, f.adminUUID} {
		u, err := e.id.FindUserByID(id)
		if err != nil {
			t.Fatal(err)
		}
		fmt.Fprintf(&b, "user %+v\n", *u)
	}
	for _, tok := range toks {
		tok := *tok
		tok.LastUsed = time.Time{} // kept on every authentication, refused calls included
		fmt.Fprintf(&b, "token %+v\n", tok)
	}
	for _, tok := range testkit.Items(e.id.FindSessions(identity.SessionFilter{User: f.u1.UUID})) {
		fmt.Fprintf(&b, "session %s %v %v\n", tok.ID, tok.Created, tok.Expires)
	}
	for _, p := range testkit.Items(e.id.FindProjects(identity.ProjectFilter{})) {
		fmt.Fprintf(&b, "project %+v\n", *p)
	}
	for _, g := range testkit.Items(e.id.FindGroups(identity.GroupFilter{})) {
		fmt.Fprintf(&b, "group %+v\n", *g)
	}
	for _, s := range testkit.Items(e.id.FindServices(identity.ServiceFilter{})) {
		fmt.Fprintf(&b, "service %+v\n", *s)
	}
	for _, r := range testkit.Items(e.id.FindResources(identity.ResourceFilter{})) {
		fmt.Fprintf(&b, "resource %+v\n", *r)
	}
	return b.String()
}

// call sends a request as do does, failing t (not the env's test) on a
// transport error.
func (f *accessFix) call(t *testing.T, method, path, token string, body any) (int, []byte) {
	t.Helper()
	var rd io.Reader
	switch b := body.(type) {
	case nil:
	case string:
		rd = strings.NewReader(b)
	default:
		j, err := json.Marshal(b)
		if err != nil {
			t.Fatal(err)
		}
		rd = bytes.NewReader(j)
	}
	req, err := http.NewRequest(method, f.e.srv.URL+path, rd)
	if err != nil {
		t.Fatal(err)
	}
	if token != "" {
		req.Header.Set("X-Auth-Token", token)
	}
	if rd != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := f.e.srv.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, raw
}

// accessCanonical is the path a route of the table is known by: an
// /astakos/api alias goes by the path it is an alias of.
func accessCanonical(path string) string {
	rest, ok := strings.CutPrefix(path, "/astakos/api/")
	switch {
	case !ok:
		return path
	case strings.HasPrefix(rest, "tokens"):
		return "/identity/v2.0/" + rest
	case rest == "get_services":
		return "/ui/get_services"
	}
	return restBase + rest
}

// Fresh objects, for allowed calls that consume theirs.

func freshProject(withMember bool) func(t *testing.T, f *accessFix) map[string]string {
	return func(t *testing.T, f *accessFix) map[string]string {
		p, err := f.e.id.CreateProject(f.ctx, identity.NewProject{Name: fmt.Sprintf("fresh-%d", f.next()), Owner: f.u1.UUID})
		if err != nil {
			t.Fatal(err)
		}
		if withMember {
			if _, err := f.e.id.AddProjectMember(f.ctx, p.UUID, identity.Member{User: f.u4.UUID, Role: identity.MemberMember}); err != nil {
				t.Fatal(err)
			}
		}
		return map[string]string{"{uuid}": p.UUID}
	}
}

func freshGroup(withMember bool) func(t *testing.T, f *accessFix) map[string]string {
	return func(t *testing.T, f *accessFix) map[string]string {
		name := fmt.Sprintf("fresh-%d", f.next())
		if _, err := f.e.id.CreateGroup(f.ctx, name); err != nil {
			t.Fatal(err)
		}
		if withMember {
			if _, err := f.e.id.AddGroupMember(f.ctx, name, f.u1.UUID); err != nil {
				t.Fatal(err)
			}
		}
		return map[string]string{"{name}": name}
	}
}

func freshService(t *testing.T, f *accessFix) map[string]string {
	name := fmt.Sprintf("fresh%d", f.next())
	if _, _, err := f.e.id.CreateService(f.ctx, identity.NewService{Name: name, Type: "t"}); err != nil {
		t.Fatal(err)
	}
	return map[string]string{"{name}": name}
}

// freshSession logs the first user in: a session for the call to name.
func freshSession(f *accessFix) map[string]string {
	_, tok, _, err := f.e.id.Login(f.ctx, f.u1.Username, testPassword, identity.Origin{Address: "192.0.2.1"})
	if err != nil {
		panic(err) // vars has no t; the table's fixture logs in fine
	}
	return map[string]string{"{id}": tok.ID}
}

func freshCommission(t *testing.T, f *accessFix) map[string]string {
	return map[string]string{"{serial}": strconv.FormatUint(f.issue(t), 10)}
}

// The bodies of the table.

func static(v any) func(*accessFix, map[string]string) any {
	return func(*accessFix, map[string]string) any { return v }
}

func uniqueName(format string) func(f *accessFix, _ map[string]string) any {
	return func(f *accessFix, _ map[string]string) any {
		return map[string]any{"name": fmt.Sprintf(format, f.next())}
	}
}

// accessSpecs has an entry for every route of the table, by method and
// canonical path (accessCanonical). A route without one fails the test.
func accessSpecs() map[string]accessSpec {
	const acc = restBase
	project := func(f *accessFix) map[string]string { return map[string]string{"{uuid}": f.p1} }
	projectMember := func(f *accessFix) map[string]string {
		return map[string]string{"{uuid}": f.p1, "{id}": f.u4.UUID}
	}
	group := func(f *accessFix) map[string]string { return map[string]string{"{name}": "g1"} }
	// A non-member asking for a project is told it does not exist.
	hiddenProject := map[string]int{whoOther: http.StatusNotFound}
	// Another user's record: forbidden (rest.go: users/{uuid} without read_all).
	otherUser := map[string]int{whoOther: http.StatusForbidden}
	// Changing another user's record: only admins (a reader reads it).
	otherUserWrite := map[string]int{whoOther: http.StatusForbidden, whoReader: http.StatusForbidden}
	// Another user's token: not found (rest.go: access_tokens/{id}).
	// A reader's read_all does not reach tokens.
	otherToken := map[string]int{whoOther: http.StatusNotFound, whoReader: http.StatusNotFound, whoReaderRO: http.StatusNotFound}
	otherTokenWrite := map[string]int{whoOther: http.StatusNotFound, whoReader: http.StatusNotFound}
	// Another service's commission: not found (DESIGN.md §8).
	otherCommission := map[string]int{whoOtherService: http.StatusNotFound}
	firstUser := map[string]string{whoOther: "{u1}"}
	cyclades := map[string]string{whoOtherService: "cyclades."}
	password := map[string]any{"old_password": testPassword, "new_password": testPassword, "new_password_confirm": testPassword}
	catalogs := func(f *accessFix, _ map[string]string) any {
		return map[string]any{"uuids": []string{f.u1.UUID}, "displaynames": []string{"user@example.com"}}
	}
	return map[string]accessSpec{
		"GET /healthz":      {},
		"GET /readyz":       {},
		"GET /metrics":      {},
		"GET /openapi.json": {},

		// Astakos.
		"POST /identity/v2.0/tokens":            {}, // no body: the service catalog
		"GET /identity/v2.0/tokens/{token}":     {query: "belongsTo={u1}"},
		"GET " + acc + "resources":              {},
		"GET " + acc + "quotas":                 {hide: firstUser},
		"GET " + acc + "service_quotas":         {query: "user={u1}", hide: cyclades},
		"GET " + acc + "service_project_quotas": {query: "project={p1}", hide: cyclades},
		"POST " + acc + "commissions": {body: func(f *accessFix, _ map[string]string) any {
			return map[string]any{"provisions": []any{prov(f.e.memberKey("cyclades.ram"), 1)}}
		}},
		"GET " + acc + "commissions":          {},
		"GET " + acc + "commissions/{serial}": {deny: otherCommission},
		"POST " + acc + "commissions/{serial}/action": {body: static(map[string]any{"reject": ""}),
			fresh: freshCommission, deny: otherCommission},
		// Resolving many: the call is answered, the other service's serial
		// is in "failed", and nothing changes.
		"POST " + acc + "commissions/action": {body: func(_ *accessFix, v map[string]string) any {
			n, _ := strconv.ParseUint(v["{serial}"], 10, 64)
			return map[string]any{"reject": []uint64{n}}
		}, fresh: freshCommission, deny: map[string]int{whoOtherService: http.StatusOK}},
		"POST " + acc + "user_catalogs":         {body: catalogs},
		"POST " + acc + "service/user_catalogs": {body: catalogs},
		"GET " + acc + "authenticate":           {hide: firstUser},
		"POST " + acc + "feedback":              {body: static("feedback_msg=access+table")},
		"GET /ui/get_services":                  {},

		// Authentication and passwords.
		"POST " + acc + "auth/register": {body: func(f *accessFix, _ map[string]string) any {
			return map[string]any{"username": fmt.Sprintf("reg%d@example.com", f.next()), "password": testPassword}
		}},
		"POST " + acc + "auth/login": {body: static(map[string]any{"username": "user@example.com", "password": testPassword})},
		// A personal token is not a session: logout with one is a 400.
		"POST " + acc + "auth/logout":          {freshToken: true, odd: map[string]int{whoAdmin: http.StatusBadRequest}},
		"GET " + acc + "auth/whoami":           {hide: firstUser},
		"POST " + acc + "auth/password/change": {body: static(password)},
		"POST " + acc + "auth/password/reset": {body: func(f *accessFix, _ map[string]string) any {
			return map[string]any{"username": fmt.Sprintf("nobody%d@example.com", f.next())}
		}},
		"POST " + acc + "auth/password/reset/confirm": {fresh: func(t *testing.T, f *accessFix) map[string]string {
			return map[string]string{"{reset}": f.resetID(t)}
		}, body: func(_ *accessFix, v map[string]string) any {
			return map[string]any{"id": v["{reset}"], "new_password": testPassword, "new_password_confirm": testPassword}
		}},
		"GET " + acc + "auth/password/policy": {},
		"GET " + acc + "auth/rules":           {},

		// Personal access tokens.
		"POST " + acc + "access_tokens": {body: static(map[string]any{"name": "made by the access table"})},
		// Only admins list another user's tokens.
		"GET " + acc + "access_tokens": {query: "owner={u1}", deny: map[string]int{whoOther: http.StatusForbidden,
			whoReader: http.StatusForbidden, whoReaderRO: http.StatusForbidden}},
		// The rules let any user token read its own; a session is not a
		// personal token, and identity.FindSelfAccessToken answers that with
		// ErrForbidden (TestRestAccessTokens holds it so).
		"GET " + acc + "access_tokens/self": {deny: map[string]int{whoUser: http.StatusForbidden, whoOther: http.StatusForbidden,
			whoReader: http.StatusForbidden}},
		"GET " + acc + "access_tokens/{id}":   {deny: otherToken},
		"PATCH " + acc + "access_tokens/{id}": {body: static(map[string]any{"name": "victim"}), deny: otherTokenWrite},
		"DELETE " + acc + "access_tokens/{id}": {deny: otherTokenWrite, fresh: func(t *testing.T, f *accessFix) map[string]string {
			_, tok, err := f.e.id.CreateAccessToken(f.ctx, f.u1.UUID, "fresh", time.Time{}, false)
			if err != nil {
				t.Fatal(err)
			}
			return map[string]string{"{id}": tok.ID}
		}},

		// Sessions: one's own; another user's is not found, as another's
		// token is (admins see and end anyone's). The {id} is a session of
		// the first user made for the call.
		"GET " + acc + "sessions": {query: "user={u1}", deny: map[string]int{whoOther: http.StatusForbidden,
			whoReader: http.StatusForbidden, whoReaderRO: http.StatusForbidden}},
		"GET " + acc + "sessions/{id}":    {vars: freshSession, deny: otherToken},
		"DELETE " + acc + "sessions/{id}": {vars: freshSession, deny: otherTokenWrite},

		// Reconciliation: a service of its own holdings, an admin of any
		// service's; readers look without fixing (the table fixes). Each
		// allowed call counts another usage of the first user's memory, so
		// each corrects it. Another service names cyclades: refused.
		"POST " + acc + "reconcile": {need: []identity.Action{identity.ActCommission, identity.ActManageQuotas},
			body: func(f *accessFix, _ map[string]string) any {
				k := f.e.memberKey("cyclades.ram")
				return map[string]any{"service": "cyclades", "fix": true, "usage": []any{map[string]any{
					"holder": k.Holder, "source": k.Source.Ptr(), "resource": k.Resource, "usage": 1000 + f.next()}}}
			}, deny: map[string]int{whoOtherService: http.StatusForbidden}},
		"GET " + acc + "pending_commissions": {query: "service=cyclades&older_than=0"},
		"POST " + acc + "pending_commissions/action": {body: func(_ *accessFix, v map[string]string) any {
			n, _ := strconv.ParseUint(v["{serial}"], 10, 64)
			return map[string]any{"reject": []uint64{n}, "reason": "stuck"}
		}, fresh: freshCommission},

		// Users.
		"GET " + acc + "users": {},
		"POST " + acc + "users": {body: func(f *accessFix, _ map[string]string) any {
			return map[string]any{"username": fmt.Sprintf("made%d@example.com", f.next()), "password": testPassword}
		}},
		"GET " + acc + "users/{uuid}":   {deny: otherUser},
		"PATCH " + acc + "users/{uuid}": {body: static(map[string]any{"display_name": "User One"}), deny: otherUserWrite},
		"DELETE " + acc + "users/{uuid}": {fresh: func(t *testing.T, f *accessFix) map[string]string {
			u, err := f.e.id.CreateUser(f.ctx, identity.NewUser{Username: fmt.Sprintf("doomed%d@example.com", f.next()),
				Password: testPassword, Active: true})
			if err != nil {
				t.Fatal(err)
			}
			return map[string]string{"{uuid}": u.UUID}
		}},
		"POST " + acc + "users/{uuid}/activate": {},
		"PUT " + acc + "users/{uuid}/role":      {body: static(map[string]any{"role": "user"})},
		"POST " + acc + "users/{uuid}/role":     {body: static(map[string]any{"role": "user"})},
		"GET " + acc + "users/{uuid}/data":      {deny: otherUser},
		"PUT " + acc + "users/{uuid}/data":      {body: static(map[string]any{"team": "access"}), deny: otherUserWrite},

		// Groups.
		"GET " + acc + "groups":           {},
		"POST " + acc + "groups":          {body: uniqueName("group-%d")},
		"GET " + acc + "groups/{name}":    {vars: group},
		"PATCH " + acc + "groups/{name}":  {vars: group, fresh: freshGroup(false), body: uniqueName("renamed-%d")},
		"DELETE " + acc + "groups/{name}": {vars: group, fresh: freshGroup(false)},
		"POST " + acc + "groups/{name}/members": {vars: group, fresh: freshGroup(false),
			body: func(f *accessFix, _ map[string]string) any { return map[string]any{"user": f.u4.UUID} }},
		"DELETE " + acc + "groups/{name}/members/{uuid}": {vars: group, fresh: freshGroup(true)},

		// Projects.
		"GET " + acc + "projects":                {hide: firstUser},
		"POST " + acc + "projects":               {body: uniqueName("project-%d")},
		"GET " + acc + "projects/{uuid}":         {vars: project, deny: hiddenProject},
		"DELETE " + acc + "projects/{uuid}":      {vars: project, deny: hiddenProject, fresh: freshProject(false)},
		"GET " + acc + "projects/{uuid}/members": {vars: project, deny: hiddenProject},
		"POST " + acc + "projects/{uuid}/members": {vars: project, deny: hiddenProject, fresh: freshProject(false),
			body: func(f *accessFix, _ map[string]string) any {
				return map[string]any{"user": f.u4.UUID, "role": "member"}
			}},
		"PATCH " + acc + "projects/{uuid}/members/{id}": {vars: projectMember, deny: hiddenProject,
			fresh: freshProject(true), body: static(map[string]any{"role": "reader"})},
		"DELETE " + acc + "projects/{uuid}/members/{id}": {vars: projectMember, deny: hiddenProject,
			fresh: freshProject(true)},
		"GET " + acc + "projects/{uuid}/policies": {vars: project, deny: hiddenProject},
		"PUT " + acc + "projects/{uuid}/policies": {vars: project, deny: hiddenProject, fresh: freshProject(false),
			body: static(map[string]any{"cyclades.vm": map[string]any{"project_capacity": 4, "member_capacity": 2}})},

		// Resources and services.
		"POST " + acc + "resources": {body: func(f *accessFix, _ map[string]string) any {
			return map[string]any{"name": fmt.Sprintf("cyclades.thing%d", f.next()), "service": "cyclades"}
		}},
		"GET " + acc + "services":               {},
		"POST " + acc + "services":              {body: uniqueName("made%d")},
		"GET " + acc + "services/{name}":        {},
		"DELETE " + acc + "services/{name}":     {fresh: freshService},
		"POST " + acc + "services/{name}/token": {fresh: freshService},

		// Holdings and the provision log.
		"POST " + acc + "holdings": {body: func(f *accessFix, _ map[string]string) any {
			k := f.e.memberKey("cyclades.ram")
			return map[string]any{"holdings": []any{map[string]any{"holder": k.Holder, "source": k.Source.Ptr(),
				"resource": k.Resource, "limit": 4 << 30}}}
		}},
		// Admins and readers; services for the resources they serve: the
		// other service naming cyclades' resource is refused.
		"GET " + acc + "holdings": {query: "holder=user:{u1}&resource=cyclades.vm",
			need: []identity.Action{identity.ActReadAll, identity.ActServiceRead},
			deny: map[string]int{whoOtherService: http.StatusForbidden}},
		"DELETE " + acc + "holdings": {
			vars: func(f *accessFix) map[string]string { return map[string]string{"{source}": "project:" + f.u1.UUID} },
			fresh: func(t *testing.T, f *accessFix) map[string]string {
				src := fmt.Sprintf("scratch-%d", f.next())
				k := holdings.Key{Holder: f.u1.Holder(), Source: holdings.SourceOf(src), Resource: "cyclades.vm"}
				if err := f.e.l.SetHoldings(f.ctx, []ledger.HoldingSetting{{Key: k, Limit: 1}}); err != nil {
					t.Fatal(err)
				}
				return map[string]string{"{source}": src}
			},
			body: func(f *accessFix, v map[string]string) any {
				return map[string]any{"holdings": []any{map[string]any{"holder": f.u1.Holder(), "source": v["{source}"],
					"resource": "cyclades.vm"}}}
			}},
		// The issuing service, admins and readers.
		"GET " + acc + "commissions/{serial}/log": {
			vars: func(f *accessFix) map[string]string {
				return map[string]string{"{serial}": strconv.FormatUint(f.s0, 10)}
			},
			need: []identity.Action{identity.ActReadAll, identity.ActCommission},
			deny: otherCommission},
		// Their own holdings and their projects' only.
		"GET " + acc + "history": {query: "holder=user:{u1}", deny: map[string]int{whoOther: http.StatusForbidden}},
		"GET " + acc + "backup":  {},
		"GET " + acc + "cluster": {},
	}
}

// resetID requests a password reset for the first user and returns its id,
// as the event stream delivers it.
func (f *accessFix) resetID(t *testing.T) string {
	t.Helper()
	// The bystander's: a reset ends every session of its user, and the
	// principals' must live on.
	if err := f.e.id.RequestPasswordReset(f.ctx, "bystander@example.com"); err != nil {
		t.Fatal(err)
	}
	ob, err := f.e.l.OutboxStats()
	if err != nil {
		t.Fatal(err)
	}
	evs, err := f.e.l.Outbox(ob.Last-1, 1)
	if err != nil || len(evs) != 1 || evs[0].Type != "identity.password.reset_requested" {
		t.Fatalf("the reset request's event: %v %+v", err, evs)
	}
	var d struct {
		ID string `json:"reset_id"`
	}
	if err := json.Unmarshal(evs[0].Data, &d); err != nil || d.ID == "" {
		t.Fatalf("the reset request's event: %v %s", err, evs[0].Data)
	}
	return d.ID
}

// accessWant is what the rules table and the route's access kind say of w
// calling rt: 0 (allowed), 401 (no valid token) or 403.
func accessWant(rt Route, spec accessSpec, w *accessWho) int {
	if rt.Access == Public {
		return 0
	}
	if !w.valid {
		return http.StatusUnauthorized
	}
	switch rt.Access {
	case Service:
		if w.kind != identity.KindService {
			return http.StatusForbidden
		}
	case User:
		if w.kind == identity.KindService {
			return http.StatusForbidden
		}
	}
	actions := spec.need
	if rt.Action != "" {
		actions = []identity.Action{rt.Action}
	}
	if len(actions) == 0 {
		return 0
	}
	for _, a := range actions {
		if w.may(a) {
			return 0
		}
	}
	return http.StatusForbidden
}

// accessFaults are the cloudFault kinds of the refusals.
var accessFaults = map[int]string{http.StatusBadRequest: "badRequest", http.StatusUnauthorized: "unauthorized",
	http.StatusForbidden: "forbidden", http.StatusNotFound: "itemNotFound"}

// accessHandCols are the principals of accessHand's rows, in order.
var accessHandCols = []string{whoAnon, whoUser, whoReadOnly, whoOther, whoService, whoOtherService,
	whoAdmin, whoAdminRO, whoReader, whoReaderRO, whoExpired, whoRevoked, whoDeleted}

// yes in accessHand: the call is allowed (2xx).
const yes = 0

// accessHand is what every admin write route answers each principal,
// written out by hand from DESIGN.md §2, §3 and §8 rather than derived
// from identity.Rules, so that a wrong rule cannot make its own test pass:
// a user token can't reach admin calls, a service token can't reach user
// calls, a read-only token (an admin's too) can't change anything, a
// reader reads but never writes, a non-member is told a project does not
// exist. Calls are made as TestAccess makes them (the first user's
// objects, or fresh ones for an allowed call that consumes its object).
var accessHand = map[string][]int{
	//                                                      anon user ro   oth  svc  osvc adm  a-ro rdr  r-ro exp  rev  del
	"POST " + restBase + "holdings":                       {401, 403, 403, 403, 403, 403, yes, 403, 403, 403, 401, 401, 401},
	"DELETE " + restBase + "holdings":                     {401, 403, 403, 403, 403, 403, yes, 403, 403, 403, 401, 401, 401},
	"POST " + restBase + "users":                          {401, 403, 403, 403, 403, 403, yes, 403, 403, 403, 401, 401, 401},
	"DELETE " + restBase + "users/{uuid}":                 {401, 403, 403, 403, 403, 403, yes, 403, 403, 403, 401, 401, 401},
	"POST " + restBase + "users/{uuid}/activate":          {401, 403, 403, 403, 403, 403, yes, 403, 403, 403, 401, 401, 401},
	"PUT " + restBase + "users/{uuid}/role":               {401, 403, 403, 403, 403, 403, yes, 403, 403, 403, 401, 401, 401},
	"POST " + restBase + "users/{uuid}/role":              {401, 403, 403, 403, 403, 403, yes, 403, 403, 403, 401, 401, 401},
	"PATCH " + restBase + "users/{uuid}":                  {401, yes, 403, 403, 403, 403, yes, 403, 403, 403, 401, 401, 401},
	"PUT " + restBase + "users/{uuid}/data":               {401, yes, 403, 403, 403, 403, yes, 403, 403, 403, 401, 401, 401},
	"POST " + restBase + "services":                       {401, 403, 403, 403, 403, 403, yes, 403, 403, 403, 401, 401, 401},
	"DELETE " + restBase + "services/{name}":              {401, 403, 403, 403, 403, 403, yes, 403, 403, 403, 401, 401, 401},
	"POST " + restBase + "services/{name}/token":          {401, 403, 403, 403, 403, 403, yes, 403, 403, 403, 401, 401, 401},
	"POST " + restBase + "resources":                      {401, 403, 403, 403, 403, 403, yes, 403, 403, 403, 401, 401, 401},
	"POST " + restBase + "pending_commissions/action":     {401, 403, 403, 403, 403, 403, yes, 403, 403, 403, 401, 401, 401},
	"POST " + restBase + "groups":                         {401, 403, 403, 403, 403, 403, yes, 403, 403, 403, 401, 401, 401},
	"PATCH " + restBase + "groups/{name}":                 {401, 403, 403, 403, 403, 403, yes, 403, 403, 403, 401, 401, 401},
	"DELETE " + restBase + "groups/{name}":                {401, 403, 403, 403, 403, 403, yes, 403, 403, 403, 401, 401, 401},
	"POST " + restBase + "groups/{name}/members":          {401, 403, 403, 403, 403, 403, yes, 403, 403, 403, 401, 401, 401},
	"DELETE " + restBase + "groups/{name}/members/{uuid}": {401, 403, 403, 403, 403, 403, yes, 403, 403, 403, 401, 401, 401},
	"POST " + restBase + "projects":                       {401, yes, 403, yes, 403, 403, yes, 403, 403, 403, 401, 401, 401},
	"DELETE " + restBase + "projects/{uuid}":              {401, yes, 403, 404, 403, 403, yes, 403, 403, 403, 401, 401, 401},
	"POST " + restBase + "projects/{uuid}/members":        {401, yes, 403, 404, 403, 403, yes, 403, 403, 403, 401, 401, 401},
	"PATCH " + restBase + "projects/{uuid}/members/{id}":  {401, yes, 403, 404, 403, 403, yes, 403, 403, 403, 401, 401, 401},
	"DELETE " + restBase + "projects/{uuid}/members/{id}": {401, yes, 403, 404, 403, 403, yes, 403, 403, 403, 401, 401, 401},
	"PUT " + restBase + "projects/{uuid}/policies":        {401, yes, 403, 404, 403, 403, yes, 403, 403, 403, 401, 401, 401},
}

// accessAdminWrite reports whether rt is an admin write route, one that
// accessHand must have: a write whose action is one of the admins' (or,
// for projects, their owners').
func accessAdminWrite(rt Route) bool {
	switch rt.Action {
	case identity.ActManageUsers, identity.ActManageQuotas, identity.ActManageServices,
		identity.ActManageProjects, identity.ActOwnProjects:
		return rt.Method != http.MethodGet
	}
	return false
}

// checkAccessHand checks accessHand's shape against the access table: a
// column for every principal, a row for every admin write route of routes
// and for no other key.
func checkAccessHand(t *testing.T, f *accessFix) {
	t.Helper()
	var names []string
	for _, w := range f.who {
		names = append(names, w.name)
	}
	if !slices.Equal(names, accessHandCols) {
		t.Errorf("accessHandCols %v, the access table's principals %v", accessHandCols, names)
	}
	routes := map[string]bool{}
	for _, rt := range f.e.api.Routes() {
		key := rt.Method + " " + accessCanonical(rt.Path)
		routes[key] = true
		if _, ok := accessHand[key]; accessAdminWrite(rt) && !ok {
			t.Errorf("%s: an admin write route with no row in accessHand", key)
		}
	}
	for key, row := range accessHand {
		if !routes[key] {
			t.Errorf("accessHand has %s, which is no route", key)
		}
		if len(row) != len(accessHandCols) {
			t.Errorf("accessHand %s: %d columns, want %d", key, len(row), len(accessHandCols))
		}
	}
}

// TestAccess walks the routing table: every route against every principal
// kind, each call allowed or refused as the rules table (identity.Rules,
// published at auth/rules) and the route's access kind say, and as the
// per-object refusals of accessSpecs say where a call names an object that
// is not the caller's. Allowed calls answer 2xx (or the status accessSpecs
// gives); refused calls answer 401 or 403 (or the 404 that hides an
// object) as a cloudFault, and change nothing. The admin write routes
// are held to accessHand as well, written by hand, not from the rules.
func TestAccess(t *testing.T) {
	f := newAccessFix(t)
	checkAccessHand(t, f)
	specs := accessSpecs()
	used := map[string]bool{}
	n := 0
	for _, rt := range f.e.api.Routes() {
		key := rt.Method + " " + accessCanonical(rt.Path)
		spec, ok := specs[key]
		switch {
		case !ok:
			t.Errorf("%s %s: no entry in accessSpecs; say how to call it and whom it refuses", rt.Method, rt.Path)
			continue
		case len(spec.need) > 0 && (rt.Access != Any || rt.Action != ""):
			t.Errorf("%s %s: accessSpecs gives need to a route that is not open to Any token without an action", rt.Method, rt.Path)
		case rt.Access == Any && rt.Action == "" && len(spec.need) == 0:
			t.Errorf("%s %s: open to Any token without an action: accessSpecs must say which actions it needs", rt.Method, rt.Path)
		}
		used[key] = true
		t.Run(rt.Method+" "+rt.Path, func(t *testing.T) {
			for _, w := range f.who {
				n++
				t.Run(w.name, func(t *testing.T) { f.cell(t, rt, spec, w) })
			}
		})
	}
	for key := range specs {
		if !used[key] {
			t.Errorf("accessSpecs has %s, which is no route", key)
		}
	}
	// The rule of Route.Writes against what the calls did: every route it
	// calls a write wrote in some allowed call (it read nothing alone),
	// and no route it calls a read wrote (cell).
	// (The table asks for the password reset of a user who does not exist,
	// which writes nothing; TestWritesRule asks for a real one's.)
	f.wrote["POST /account/v1.0/auth/password/reset"] = true
	for _, rt := range f.e.api.Routes() {
		if rt.Writes() && !f.wrote[rt.Method+" "+rt.Path] {
			t.Errorf("%s %s: Route.Writes says it writes, but no call of it wrote", rt.Method, rt.Path)
		}
	}
	if n < 80*len(f.who) {
		t.Errorf("only %d calls: the routing table shrank?", n)
	}
}

// cell is one call of the table: w calling rt.
func (f *accessFix) cell(t *testing.T, rt Route, spec accessSpec, w *accessWho) {
	want := accessWant(rt, spec, w)
	refused := want != 0
	if st, ok := spec.deny[w.name]; ok {
		if refused {
			t.Fatalf("accessSpecs denies %s, whom the rules table refuses already (%d)", w.name, want)
		}
		want, refused = st, true
	}
	if st, ok := spec.odd[w.name]; ok {
		if refused {
			t.Fatalf("accessSpecs gives an odd status to %s, whom the table refuses", w.name)
		}
		want = st
	}
	v := f.vars()
	if spec.vars != nil {
		for k, x := range spec.vars(f) {
			v[k] = x
		}
	}
	token := w.token
	if !refused {
		if spec.fresh != nil {
			for k, x := range spec.fresh(t, f) {
				v[k] = x
			}
		}
		if spec.freshToken && w.mint != nil {
			token = w.mint(t)
		}
	}
	var inPath, inQuery, inPlain []string
	for k, x := range v {
		inPlain = append(inPlain, k, x)
		inPath = append(inPath, k, url.PathEscape(x))
		inQuery = append(inQuery, k, url.QueryEscape(x))
	}
	path := strings.NewReplacer(inPath...).Replace(rt.Path)
	if spec.query != "" {
		path += "?" + strings.NewReplacer(inQuery...).Replace(spec.query)
	}
	var body any
	if spec.body != nil {
		body = spec.body(f, v)
	}
	var before string
	if refused && rt.Method != http.MethodGet {
		before = f.state(t)
	}

	applied := f.e.l.Applied()
	st, full := f.call(t, rt.Method, path, token, body)
	if f.e.l.Applied() != applied {
		if !rt.Writes() {
			t.Errorf("%s %s as %s wrote to the ledger, but Route.Writes says the route does not: a follower would not forward it", rt.Method, path, w.name)
		}
		f.wrote[rt.Method+" "+rt.Path] = true
	}
	raw := full
	if len(raw) > 300 {
		raw = raw[:300]
	}
	switch {
	case want == 0 && (st < 200 || st > 299):
		t.Errorf("%s %s as %s: %d, want 2xx (allowed): %s", rt.Method, path, w.name, st, raw)
	case want != 0 && st != want:
		t.Errorf("%s %s as %s: %d, want %d: %s", rt.Method, path, w.name, st, want, raw)
	case st >= 400:
		var out map[string]any
		if err := json.Unmarshal(full, &out); err != nil || out[accessFaults[st]] == nil || len(out) != 1 {
			t.Errorf("%s %s as %s: %d is not a %s cloudFault: %s", rt.Method, path, w.name, st, accessFaults[st], raw)
		}
	}
	if row, ok := accessHand[rt.Method+" "+accessCanonical(rt.Path)]; ok {
		if i := slices.Index(accessHandCols, w.name); i < 0 || i >= len(row) {
			t.Errorf("%s %s as %s: no column in accessHand", rt.Method, path, w.name)
		} else if hand := row[i]; hand == yes && (st < 200 || st > 299) || hand != yes && st != hand {
			t.Errorf("%s %s as %s: %d, but accessHand (written by hand, not from identity.Rules) says %s: %s",
				rt.Method, path, w.name, st, accessHandStatus(hand), raw)
		}
	}
	if before != "" {
		if after := f.state(t); after != before {
			t.Errorf("%s %s as %s, refused, changed the state:\n%s", rt.Method, path, w.name, accessDiff(before, after))
		}
	}
	if h, ok := spec.hide[w.name]; ok && !refused {
		h = strings.NewReplacer(inPlain...).Replace(h)
		if bytes.Contains(full, []byte(h)) {
			t.Errorf("%s %s as %s: the answer contains %q: %s", rt.Method, path, w.name, h, raw)
		}
	}
}

// accessDiff lists the lines of two states that differ.
func accessDiff(before, after string) string {
	a, b := strings.Split(before, "\n"), strings.Split(after, "\n")
	var out []string
	for _, l := range a {
		if !slices.Contains(b, l) {
			out = append(out, "- "+l)
		}
	}
	for _, l := range b {
		if !slices.Contains(a, l) {
			out = append(out, "+ "+l)
		}
	}
	return strings.Join(out, "\n")
}

func accessHandStatus(st int) string {
	if st == yes {
		return "2xx"
	}
	return strconv.Itoa(st)
}

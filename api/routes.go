package api

import (
	"net/http"

	"github.com/quotaledger/quotaledger/api/wire"
	"github.com/quotaledger/quotaledger/identity"
)

// Access says who may call a route.
type Access int

const (
	Public  Access = iota // anyone; a token, if sent, is ignored
	User                  // a user's token (session or personal)
	Service               // a service's token
	Any                   // any valid token
)

// Route is one entry of the routing table, kept as data so that the
// OpenAPI document can be checked against it.
type Route struct {
	Method, Path string
	Access       Access
	// Action is what identity.Allowed checks for User routes ("" = any user).
	Action  identity.Action
	Summary string
	// Query are the query parameters the route takes; a call with any
	// other is refused (400) before the handler runs.
	Query []Param
	// Body is the request body: a value of its type in package wire (nil:
	// none). The feedback's is a form (Form).
	Body any
	// Form says the body is a form (application/x-www-form-urlencoded), not
	// JSON; BodyOptional that the route also takes none.
	Form, BodyOptional bool
	// Lookup marks a POST that only reads (the lineage's token
	// authentication, which has no action): not a write (Writes).
	Lookup bool
	// Answers are the route's answers but its faults: their status and
	// body, which a test decodes strictly into the type given.
	Answers []Answer
	handler handlerFunc
	// alias is the lineage's older path of an Astakos route ("" if none),
	// served by the same handler.
	alias string
	// wildcards are the names of the path's wildcards, whose values are
	// checked (valid UTF-8) before the handler runs.
	wildcards []string
	// metrics are the route's instruments, resolved once.
	metrics *routeMetrics
}

// Writes reports whether a call of the route may change state, the one
// rule by which a follower of a cluster forwards a call to the leader
// (cluster.go): every route but a GET, unless its action does not change
// state (identity.Rules: the catalogs' POSTs) or it is a Lookup. A route
// with no action that is not a GET (the public ones: register, login,
// the password resets) writes. Forwarding a read costs a hop; answering a
// write on a follower would fail it, so what the table cannot tell is a
// write.
func (rt *Route) Writes() bool {
	switch {
	case rt.Method == http.MethodGet || rt.Method == http.MethodHead || rt.Lookup:
		return false
	case rt.Action == "":
		return true
	}
	changes, known := actionChanges[rt.Action]
	return changes || !known
}

// actionChanges says which actions change state (identity.Rules).
var actionChanges = func() map[identity.Action]bool {
	m := make(map[identity.Action]bool, len(identity.Rules))
	for _, r := range identity.Rules {
		m[r.Action] = r.Changes
	}
	return m
}()

// Answer is an answer of a route: its status and its body, a value of
// its type in package wire (nil: no body); Type is the content type of a
// body that is not JSON.
type Answer struct {
	Status int
	Body   any
	Type   string
}

// ok, created and accepted are a route's one JSON answer of a status.
func ok(body any) []Answer       { return []Answer{{Status: 200, Body: body}} }
func created(body any) []Answer  { return []Answer{{Status: 201, Body: body}} }
func accepted(body any) []Answer { return []Answer{{Status: 202, Body: body}} }

var (
	// emptyOK is the lineage's answer of an action: 200, no body.
	emptyOK = []Answer{{Status: 200}}
	// deleted is a deletion's answer: 204, no body.
	deleted = []Answer{{Status: 204}}
)

// routeTable is the routing table: every route of the server, with who may
// call it, what it does and its handler, in one place. The handlers live in
// a file per resource (users.go, holdings.go, astakos_quotas.go, ...);
// docs/api.md says what the routes decide where DESIGN.md is silent. An
// Astakos route with an alias is served under its /astakos/api path too.
func (s *Server) routeTable() []Route {
	const acc, old = "/account/v1.0/", "/astakos/api/"
	return []Route{
		// Operations.
		{Method: "GET", Path: "/healthz", Access: Public, Summary: "the process is alive, and its storage has not failed (503 after a failed commit: restart it)", Answers: []Answer{{Status: 200, Body: wire.Health{}}, {Status: 503, Body: wire.Health{}}}, handler: s.healthz},
		{Method: "GET", Path: "/readyz", Access: Public, Summary: "the server takes calls; the body names every check and which failed", Answers: []Answer{{Status: 200, Body: wire.Ready{}}, {Status: 503, Body: wire.Ready{}}}, handler: s.readyz},
		{Method: "GET", Path: "/metrics", Access: Public, Summary: "Prometheus metrics (text exposition format)", Answers: []Answer{{Status: 200, Type: "text/plain"}}, handler: s.serveMetrics},
		{Method: "GET", Path: acc + "cluster", Access: User, Action: identity.ActReadAll, Summary: "the nodes of the cluster, the leader first: name, role, applied log sequence, lag, last contact and a digest of the state of each (a single node: itself, role single)", Answers: ok(wire.Cluster{}), handler: s.clusterStatus},
		{Method: "GET", Path: "/openapi.json", Access: Public, Summary: "this document", Answers: ok(map[string]any{}), handler: s.serveOpenAPI},

		// Kept wire-compatible with Astakos (DESIGN.md §3).
		{Method: "POST", Path: "/identity/v2.0/tokens", alias: old + "tokens", Access: Public, Summary: "authenticate a user token; answers the token, the user and the service catalog (no body: the catalog only)", Body: wire.TokensRequest{}, Answers: ok(wire.TokensAnswer{}), BodyOptional: true, Lookup: true, handler: s.astTokens},
		{Method: "GET", Path: "/identity/v2.0/tokens/{token}", alias: old + "tokens/{token}", Access: Service, Action: identity.ActServiceRead, Summary: "validate a user token (?belongsTo=uuid)", Query: []Param{{Name: "belongsTo", Type: "string", Doc: "the uuid of the user the token must belong to"}}, Answers: ok(wire.TokensAnswer{}), handler: s.astValidateToken},
		{Method: "GET", Path: acc + "resources", alias: old + "resources", Access: Public, Summary: "the registered resources", Answers: ok(map[string]wire.ResourceInfo{}), handler: s.astResources},
		{Method: "GET", Path: acc + "quotas", alias: old + "quotas", Access: User, Action: identity.ActReadSelf, Summary: "the caller's quotas, by project", Answers: ok(wire.Quotas{}), handler: s.astQuotas},
		{Method: "GET", Path: acc + "service_quotas", alias: old + "service_quotas", Access: Service, Action: identity.ActServiceRead, Summary: "the users' quotas of the calling service's resources (?user=a,b&project=p)", Query: []Param{{Name: "user", Type: "string", Doc: "user uuids, comma-separated (default: every user)"}, {Name: "project", Type: "string", Doc: "project uuids, comma-separated (default: every project)"}}, Answers: ok(map[string]wire.Quotas{}), handler: s.astServiceQuotas},
		{Method: "GET", Path: acc + "service_project_quotas", Access: Service, Action: identity.ActServiceRead, Summary: "the projects' quotas of the calling service's resources (?project=p)", Query: []Param{{Name: "project", Type: "string", Doc: "project uuids, comma-separated (default: every project)"}}, Answers: ok(wire.ProjectQuotas{}), handler: s.astServiceProjectQuotas},
		{Method: "POST", Path: acc + "commissions", alias: old + "commissions", Access: Service, Action: identity.ActCommission, Summary: "issue a commission", Body: wire.Commission{}, Answers: created(wire.Issued{}), handler: s.astIssue},
		{Method: "GET", Path: acc + "commissions", alias: old + "commissions", Access: Service, Action: identity.ActCommission, Summary: "the serials of the caller's pending commissions", Answers: ok([]int64{}), handler: s.astPending},
		{Method: "GET", Path: acc + "commissions/{serial}", alias: old + "commissions/{serial}", Access: Service, Action: identity.ActCommission, Summary: "a pending commission of the caller", Answers: ok(wire.CommissionInfo{}), handler: s.astCommission},
		{Method: "POST", Path: acc + "commissions/{serial}/action", alias: old + "commissions/{serial}/action", Access: Service, Action: identity.ActCommission, Summary: "accept or reject a pending commission", Body: wire.CommissionAction{}, Answers: emptyOK, handler: s.astAction},
		{Method: "POST", Path: acc + "commissions/action", alias: old + "commissions/action", Access: Service, Action: identity.ActCommission, Summary: "accept and reject many pending commissions at once", Body: wire.Resolve{}, Answers: ok(wire.Resolved{}), handler: s.astResolveMany},
		{Method: "POST", Path: acc + "user_catalogs", alias: old + "user_catalogs", Access: User, Action: identity.ActReadSelf, Summary: "uuid -> username and username -> uuid catalogs", Body: wire.CatalogsRequest{}, Answers: ok(wire.Catalogs{}), handler: s.astCatalogs(true)},
		{Method: "POST", Path: acc + "service/user_catalogs", alias: old + "service/user_catalogs", Access: Service, Action: identity.ActServiceRead, Summary: "uuid -> username and username -> uuid catalogs (null lists: every user)", Body: wire.CatalogsRequest{}, Answers: ok(wire.Catalogs{}), handler: s.astCatalogs(false)},
		{Method: "GET", Path: acc + "authenticate", alias: old + "authenticate", Access: User, Action: identity.ActReadSelf, Summary: "the caller's user info (?usage=1 adds the usage list)", Query: []Param{{Name: "usage", Type: "boolean", Doc: "add the usage list (1, true)"}}, Answers: ok(wire.UserInfo{}), handler: s.astAuthenticate},
		{Method: "POST", Path: acc + "feedback", alias: old + "feedback", Access: User, Action: identity.ActWriteSelf, Summary: "send feedback (form fields feedback_msg, feedback_data)", Body: wire.Feedback{}, Form: true, Answers: emptyOK, handler: s.astFeedback},
		{Method: "GET", Path: "/ui/get_services", alias: old + "get_services", Access: Public, Summary: "the registered services", Answers: ok([]wire.ServiceSummary{}), handler: s.astGetServices},

		// The rest of the API (DESIGN.md §3, "The rest of the API").
		// Authentication and passwords.
		{Method: "POST", Path: acc + "auth/register", Access: Public, Summary: "sign up: a user, active unless activation is required (the first user of an empty system is admin)", Body: wire.Registration{}, Answers: created(wire.User{}), handler: s.register},
		{Method: "POST", Path: acc + "auth/login", Access: Public, Summary: "log in with username and password: a session token", Body: wire.Login{}, Answers: ok(wire.Session{}), handler: s.login},
		{Method: "POST", Path: acc + "auth/logout", Access: User, Action: identity.ActWriteSelf, Summary: "end the session used for the call (a personal token: 400)", Answers: ok(wire.Detail{}), handler: s.logout},
		{Method: "GET", Path: acc + "auth/whoami", Access: User, Action: identity.ActReadSelf, Summary: "the caller's user and token", Answers: ok(wire.Me{}), handler: s.whoami},
		{Method: "POST", Path: acc + "auth/password/change", Access: User, Action: identity.ActWriteSelf, Summary: "change the caller's password: old_password, new_password, new_password_confirm", Body: wire.PasswordChange{}, Answers: ok(wire.Detail{}), handler: s.changePassword},
		{Method: "POST", Path: acc + "auth/password/reset", Access: Public, Summary: "request a password reset; the answer is the same whether or not the user exists", Body: wire.PasswordReset{}, Answers: accepted(wire.Detail{}), handler: s.requestPasswordReset},
		{Method: "POST", Path: acc + "auth/password/reset/confirm", Access: Public, Summary: "reset a password with the id of a reset request", Body: wire.PasswordResetConfirm{}, Answers: ok(wire.Detail{}), handler: s.resetPassword},
		{Method: "GET", Path: acc + "auth/password/policy", Access: Public, Summary: "the password policy", Answers: ok(wire.PasswordPolicy{}), handler: s.passwordPolicy},
		{Method: "GET", Path: acc + "auth/rules", Access: Public, Summary: "what each role and token kind may do", Answers: ok(wire.Rules{}), handler: s.rules},

		// Personal access tokens.
		{Method: "POST", Path: acc + "access_tokens", Access: User, Action: identity.ActWriteSelf, Summary: "create a personal access token; the secret is shown once", Body: wire.AccessTokenCreate{}, Answers: created(wire.AccessToken{}), handler: s.createToken},
		{Method: "GET", Path: acc + "access_tokens", Access: User, Action: identity.ActReadSelf, Summary: "list personal access tokens (name, owner, search, sort, filter, page, page_size)", Query: paged(Param{Name: "name", Type: "string", Doc: "exact name"}, Param{Name: "owner", Type: "string", Doc: "a user uuid, or * (admins)"}, Param{Name: "search", Type: "string", Doc: "a substring of the name, any case"}, Param{Name: "sort", Type: "string", Doc: "fields, comma-separated, - first for descending"}, Param{Name: "filter", Type: "string", Doc: "a JSON Logic expression"}), Answers: ok(wire.Page[wire.AccessToken]{}), handler: s.listTokens},
		{Method: "GET", Path: acc + "access_tokens/self", Access: User, Action: identity.ActReadSelf, Summary: "the personal access token used for the call", Answers: ok(wire.AccessToken{}), handler: s.selfToken},
		{Method: "GET", Path: acc + "access_tokens/{id}", Access: User, Action: identity.ActReadSelf, Summary: "one personal access token", Answers: ok(wire.AccessToken{}), handler: s.getToken},
		{Method: "PATCH", Path: acc + "access_tokens/{id}", Access: User, Action: identity.ActWriteSelf, Summary: "update a token's name, expiry or read-only flag", Body: wire.AccessTokenUpdate{}, Answers: ok(wire.AccessToken{}), handler: s.updateToken},
		{Method: "DELETE", Path: acc + "access_tokens/{id}", Access: User, Action: identity.ActWriteSelf, Summary: "revoke a token", Answers: deleted, handler: s.deleteToken},

		// Sessions (sessions.go).
		{Method: "GET", Path: acc + "sessions", Access: User, Action: identity.ActReadSelf, Summary: "the caller's sessions, newest first, with where each was made (admins: ?user=UUID, or * for every user's)", Query: paged(Param{Name: "user", Type: "string", Doc: "a user uuid, or * (admins)"}), Answers: ok(wire.Page[wire.SessionInfo]{}), handler: s.listSessions},
		{Method: "GET", Path: acc + "sessions/{id}", Access: User, Action: identity.ActReadSelf, Summary: "one session (one's own; admins: anyone's)", Answers: ok(wire.SessionInfo{}), handler: s.getSession},
		{Method: "DELETE", Path: acc + "sessions/{id}", Access: User, Action: identity.ActWriteSelf, Summary: "end a session (one's own; admins: anyone's)", Answers: deleted, handler: s.deleteSession},

		// Users.
		{Method: "GET", Path: acc + "users", Access: User, Action: identity.ActReadAll, Summary: "list users (q: username prefix; page, page_size)", Query: paged(Param{Name: "q", Type: "string", Doc: "a username prefix"}), Answers: ok(wire.Page[wire.User]{}), handler: s.listUsers},
		{Method: "POST", Path: acc + "users", Access: User, Action: identity.ActManageUsers, Summary: "create a user", Body: wire.NewUser{}, Answers: created(wire.User{}), handler: s.createUser},
		{Method: "GET", Path: acc + "users/{uuid}", Access: User, Action: identity.ActReadSelf, Summary: "a user (oneself, or anyone for admins and readers)", Answers: ok(wire.User{}), handler: s.getUser},
		{Method: "PATCH", Path: acc + "users/{uuid}", Access: User, Action: identity.ActWriteSelf, Summary: "update a profile (oneself, or anyone for admins)", Body: wire.UserUpdate{}, Answers: ok(wire.User{}), handler: s.updateUser},
		{Method: "DELETE", Path: acc + "users/{uuid}", Access: User, Action: identity.ActManageUsers, Summary: "delete a user", Answers: deleted, handler: s.deleteUser},
		{Method: "POST", Path: acc + "users/{uuid}/activate", Access: User, Action: identity.ActManageUsers, Summary: "activate a user", Body: wire.UserActivate{}, Answers: ok(wire.User{}), BodyOptional: true, handler: s.activateUser},
		{Method: "PUT", Path: acc + "users/{uuid}/role", Access: User, Action: identity.ActManageUsers, Summary: "set a user's role", Body: wire.UserRole{}, Answers: ok(wire.User{}), handler: s.setUserRole},
		{Method: "POST", Path: acc + "users/{uuid}/role", Access: User, Action: identity.ActManageUsers, Summary: "set a user's role", Body: wire.UserRole{}, Answers: ok(wire.User{}), handler: s.setUserRole},
		{Method: "GET", Path: acc + "users/{uuid}/data", Access: User, Action: identity.ActReadSelf, Summary: "a user's custom data", Answers: ok(map[string]any{}), handler: s.getUserData},
		{Method: "PUT", Path: acc + "users/{uuid}/data", Access: User, Action: identity.ActWriteSelf, Summary: "replace a user's custom data (a JSON object)", Body: map[string]any{}, Answers: ok(map[string]any{}), handler: s.putUserData},

		// Groups.
		{Method: "GET", Path: acc + "groups", Access: User, Action: identity.ActReadAll, Summary: "list groups", Query: paged(), Answers: ok(wire.Page[wire.Group]{}), handler: s.listGroups},
		{Method: "POST", Path: acc + "groups", Access: User, Action: identity.ActManageProjects, Summary: "create a group", Body: wire.GroupCreate{}, Answers: created(wire.Group{}), handler: s.createGroup},
		{Method: "GET", Path: acc + "groups/{name}", Access: User, Action: identity.ActReadAll, Summary: "a group with its users", Answers: ok(wire.Group{}), handler: s.getGroup},
		{Method: "PATCH", Path: acc + "groups/{name}", Access: User, Action: identity.ActManageProjects, Summary: "rename a group", Body: wire.GroupRename{}, Answers: ok(wire.Group{}), handler: s.renameGroup},
		{Method: "DELETE", Path: acc + "groups/{name}", Access: User, Action: identity.ActManageProjects, Summary: "delete a group", Answers: deleted, handler: s.deleteGroup},
		{Method: "POST", Path: acc + "groups/{name}/members", Access: User, Action: identity.ActManageProjects, Summary: "add a user to a group", Body: wire.GroupMemberAdd{}, Answers: ok(wire.Group{}), handler: s.addGroupMember},
		{Method: "DELETE", Path: acc + "groups/{name}/members/{uuid}", Access: User, Action: identity.ActManageProjects, Summary: "remove a user from a group", Answers: ok(wire.Group{}), handler: s.removeGroupMember},

		// Projects.
		{Method: "GET", Path: acc + "projects", Access: User, Action: identity.ActReadOwnProjects, Summary: "the caller's projects (every project for admins and readers)", Query: paged(), Answers: ok(wire.Page[wire.Project]{}), handler: s.listProjects},
		{Method: "POST", Path: acc + "projects", Access: User, Action: identity.ActOwnProjects, Summary: "create a project owned by the caller", Body: wire.ProjectCreate{}, Answers: created(wire.Project{}), handler: s.createProject},
		{Method: "GET", Path: acc + "projects/{uuid}", Access: User, Action: identity.ActReadOwnProjects, Summary: "a project", Answers: ok(wire.Project{}), handler: s.getProject},
		{Method: "DELETE", Path: acc + "projects/{uuid}", Access: User, Action: identity.ActOwnProjects, Summary: "delete a project (its admins, or admins)", Answers: deleted, handler: s.deleteProject},
		{Method: "GET", Path: acc + "projects/{uuid}/members", Access: User, Action: identity.ActReadOwnProjects, Summary: "a project's members", Query: paged(), Answers: ok(wire.Page[wire.Member]{}), handler: s.listProjectMembers},
		{Method: "POST", Path: acc + "projects/{uuid}/members", Access: User, Action: identity.ActOwnProjects, Summary: "add a user or a group to a project", Body: wire.Member{}, Answers: ok(wire.Project{}), handler: s.addProjectMember},
		{Method: "PATCH", Path: acc + "projects/{uuid}/members/{id}", Access: User, Action: identity.ActOwnProjects, Summary: "change a member's role", Body: wire.MemberRole{}, Answers: ok(wire.Project{}), handler: s.setProjectMemberRole},
		{Method: "DELETE", Path: acc + "projects/{uuid}/members/{id}", Access: User, Action: identity.ActOwnProjects, Summary: "remove a member (a user uuid or a group name)", Answers: deleted, handler: s.removeProjectMember},
		{Method: "GET", Path: acc + "projects/{uuid}/policies", Access: User, Action: identity.ActReadOwnProjects, Summary: "a project's capacities by resource", Answers: ok(map[string]wire.Policy{}), handler: s.getProjectPolicies},
		{Method: "PUT", Path: acc + "projects/{uuid}/policies", Access: User, Action: identity.ActOwnProjects, Summary: "replace a project's capacities", Body: map[string]wire.PolicySetting{}, Answers: ok(map[string]wire.Policy{}), handler: s.setProjectPolicies},

		// Resources and services.
		{Method: "POST", Path: acc + "resources", Access: User, Action: identity.ActManageServices, Summary: "register a resource", Body: wire.NewResource{}, Answers: created(wire.Resource{}), handler: s.createResource},
		{Method: "GET", Path: acc + "services", Access: User, Action: identity.ActReadAll, Summary: "list services", Query: paged(), Answers: ok(wire.Page[wire.Service]{}), handler: s.listServices},
		{Method: "POST", Path: acc + "services", Access: User, Action: identity.ActManageServices, Summary: "register a service; its token is shown once", Body: wire.NewService{}, Answers: created(wire.Service{}), handler: s.createService},
		{Method: "GET", Path: acc + "services/{name}", Access: User, Action: identity.ActReadAll, Summary: "a service", Answers: ok(wire.Service{}), handler: s.getService},
		{Method: "DELETE", Path: acc + "services/{name}", Access: User, Action: identity.ActManageServices, Summary: "remove a service and its token", Answers: deleted, handler: s.deleteService},
		{Method: "POST", Path: acc + "services/{name}/token", Access: User, Action: identity.ActManageServices, Summary: "renew a service's token; the old one stops working", Body: wire.ServiceTokenRenew{}, Answers: ok(wire.Service{}), BodyOptional: true, handler: s.renewServiceToken},

		// Holdings and the provision log.
		{Method: "POST", Path: acc + "holdings", Access: User, Action: identity.ActManageQuotas, Summary: "set quota: create or re-limit holdings (later entries of the same key win)", Body: wire.HoldingSettings{}, Answers: ok(wire.Holdings{}), handler: s.setHoldings},
		{Method: "GET", Path: acc + "holdings", Access: Any, Summary: "get quota by holder, source, resource (admins, readers; services for their resources)", Query: []Param{{Name: "holder", Type: "string", Doc: "holders, comma-separated"}, {Name: "source", Type: "string", Doc: "sources, comma-separated (an empty item: the empty-string source)"}, {Name: "resource", Type: "string", Doc: "resources, comma-separated"}, {Name: "null_source", Type: "boolean", Doc: "add the null source (1, true)"}}, Answers: ok(wire.Holdings{}), handler: s.getHoldings},
		{Method: "DELETE", Path: acc + "holdings", Access: User, Action: identity.ActManageQuotas, Summary: "delete holdings (refused while a pending commission touches them)", Body: wire.HoldingKeys{}, Answers: ok(wire.HoldingKeys{}), handler: s.deleteHoldings},
		{Method: "GET", Path: acc + "commissions/{serial}/log", Access: Any, Summary: "the provision log of a resolved commission (its service, admins, readers)", Query: paged(), Answers: ok(wire.Page[wire.LogEntry]{}), handler: s.commissionLog},
		{Method: "GET", Path: acc + "history", Access: User, Action: identity.ActReadSelf, Summary: "the provision log of holdings (holder, resource, serial, from, to, page, page_size)", Query: paged(Param{Name: "holder", Type: "string", Doc: "the holder (default: the caller's own holdings; admins and readers: every holder)"}, Param{Name: "resource", Type: "string", Doc: "only this resource"}, Param{Name: "serial", Type: "integer", Doc: "only this commission"}, Param{Name: "from", Type: "string", Doc: "logged at or after this RFC 3339 time"}, Param{Name: "to", Type: "string", Doc: "logged before this RFC 3339 time"}), Answers: ok(wire.Page[wire.LogEntry]{}), handler: s.history},

		// Reconciliation and every service's pending commissions (reconcile.go).
		{Method: "POST", Path: acc + "reconcile", Access: Any, Summary: "compare a service's count of its usage per holding with the ledger: the holdings that differ and the service's orphans (pending past older_than); with fix, reject the orphans and correct the holdings in one step (a service: its own; admins: any, naming it; readers: without fix)", Body: wire.ReconcileRequest{}, Answers: ok(wire.Reconciliation{}), handler: s.reconcile},
		{Method: "GET", Path: acc + "pending_commissions", Access: User, Action: identity.ActReadAll, Summary: "every service's pending commissions, oldest first, with their age (admins, readers)", Query: paged(Param{Name: "service", Type: "string", Doc: "only this service's"}, Param{Name: "older_than", Type: "integer", Doc: "only those pending at least this many seconds"}), Answers: ok(wire.Page[wire.PendingCommission]{}), handler: s.listPendingCommissions},
		{Method: "POST", Path: acc + "pending_commissions/action", Access: User, Action: identity.ActManageQuotas, Summary: "accept and reject pending commissions of any service (admins; logged with reason ADMIN:<uuid>)", Body: wire.Resolve{}, Answers: ok(wire.Resolved{}), handler: s.resolvePendingCommissions},

		// Backup (backup.go).
		{Method: "GET", Path: acc + "backup", Access: User, Action: identity.ActManageUsers, Summary: "a consistent checkpoint of the whole ledger, taken without stopping writes, streamed as one tar.gz archive (admins; quotaledger restore rebuilds a data directory from it)", Answers: []Answer{{Status: 200, Type: "application/gzip"}}, handler: s.backup},
	}
}

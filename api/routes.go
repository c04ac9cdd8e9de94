package api

import "github.com/quotaledger/quotaledger/identity"

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
	Query   []Param
	handler handlerFunc
	// alias is the lineage's older path of an Astakos route ("" if none),
	// served by the same handler.
	alias string
}

// routeTable is the routing table: every route of the server, with who may
// call it, what it does and its handler, in one place. The handlers live in
// a file per resource (users.go, holdings.go, astakos_quotas.go, ...);
// docs/api.md says what the routes decide where DESIGN.md is silent. An
// Astakos route with an alias is served under its /astakos/api path too.
func (s *Server) routeTable() []Route {
	const acc, old = "/account/v1.0/", "/astakos/api/"
	return []Route{
		// Operations.
		{Method: "GET", Path: "/healthz", Access: Public, Summary: "the process is alive, and its storage has not failed (503 after a failed commit: restart it)", handler: s.healthz},
		{Method: "GET", Path: "/readyz", Access: Public, Summary: "the server takes calls; the body names every check and which failed", handler: s.readyz},
		{Method: "GET", Path: "/metrics", Access: Public, Summary: "Prometheus metrics (text exposition format)", handler: s.serveMetrics},
		{Method: "GET", Path: "/openapi.json", Access: Public, Summary: "this document", handler: s.serveOpenAPI},

		// Kept wire-compatible with Astakos (DESIGN.md §3).
		{Method: "POST", Path: "/identity/v2.0/tokens", alias: old + "tokens", Access: Public, Summary: "authenticate a user token; answers the token, the user and the service catalog (no body: the catalog only)", handler: s.astTokens},
		{Method: "GET", Path: "/identity/v2.0/tokens/{token}", alias: old + "tokens/{token}", Access: Service, Action: identity.ActServiceRead, Summary: "validate a user token (?belongsTo=uuid)", Query: []Param{{Name: "belongsTo", Type: "string", Doc: "the uuid of the user the token must belong to"}}, handler: s.astValidateToken},
		{Method: "GET", Path: acc + "resources", alias: old + "resources", Access: Public, Summary: "the registered resources", handler: s.astResources},
		{Method: "GET", Path: acc + "quotas", alias: old + "quotas", Access: User, Action: identity.ActReadSelf, Summary: "the caller's quotas, by project", handler: s.astQuotas},
		{Method: "GET", Path: acc + "service_quotas", alias: old + "service_quotas", Access: Service, Action: identity.ActServiceRead, Summary: "the users' quotas of the calling service's resources (?user=a,b&project=p)", Query: []Param{{Name: "user", Type: "string", Doc: "user uuids, comma-separated (default: every user)"}, {Name: "project", Type: "string", Doc: "project uuids, comma-separated (default: every project)"}}, handler: s.astServiceQuotas},
		{Method: "GET", Path: acc + "service_project_quotas", Access: Service, Action: identity.ActServiceRead, Summary: "the projects' quotas of the calling service's resources (?project=p)", Query: []Param{{Name: "project", Type: "string", Doc: "project uuids, comma-separated (default: every project)"}}, handler: s.astServiceProjectQuotas},
		{Method: "POST", Path: acc + "commissions", alias: old + "commissions", Access: Service, Action: identity.ActCommission, Summary: "issue a commission", handler: s.astIssue},
		{Method: "GET", Path: acc + "commissions", alias: old + "commissions", Access: Service, Action: identity.ActCommission, Summary: "the serials of the caller's pending commissions", handler: s.astPending},
		{Method: "GET", Path: acc + "commissions/{serial}", alias: old + "commissions/{serial}", Access: Service, Action: identity.ActCommission, Summary: "a pending commission of the caller", handler: s.astCommission},
		{Method: "POST", Path: acc + "commissions/{serial}/action", alias: old + "commissions/{serial}/action", Access: Service, Action: identity.ActCommission, Summary: "accept or reject a pending commission", handler: s.astAction},
		{Method: "POST", Path: acc + "commissions/action", alias: old + "commissions/action", Access: Service, Action: identity.ActCommission, Summary: "accept and reject many pending commissions at once", handler: s.astResolveMany},
		{Method: "POST", Path: acc + "user_catalogs", alias: old + "user_catalogs", Access: User, Action: identity.ActReadSelf, Summary: "uuid -> username and username -> uuid catalogs", handler: s.astCatalogs(true)},
		{Method: "POST", Path: acc + "service/user_catalogs", alias: old + "service/user_catalogs", Access: Service, Action: identity.ActServiceRead, Summary: "uuid -> username and username -> uuid catalogs (null lists: every user)", handler: s.astCatalogs(false)},
		{Method: "GET", Path: acc + "authenticate", alias: old + "authenticate", Access: User, Action: identity.ActReadSelf, Summary: "the caller's user info (?usage=1 adds the usage list)", Query: []Param{{Name: "usage", Type: "boolean", Doc: "add the usage list (1, true)"}}, handler: s.astAuthenticate},
		{Method: "POST", Path: acc + "feedback", alias: old + "feedback", Access: User, Action: identity.ActWriteSelf, Summary: "send feedback (form fields feedback_msg, feedback_data)", handler: s.astFeedback},
		{Method: "GET", Path: "/ui/get_services", alias: old + "get_services", Access: Public, Summary: "the registered services", handler: s.astGetServices},

		// The rest of the API (DESIGN.md §3, "The rest of the API").
		// Authentication and passwords.
		{Method: "POST", Path: acc + "auth/register", Access: Public, Summary: "sign up: a user, active unless activation is required (the first user of an empty system is admin)", handler: s.register},
		{Method: "POST", Path: acc + "auth/login", Access: Public, Summary: "log in with username and password: a session token", handler: s.login},
		{Method: "POST", Path: acc + "auth/logout", Access: User, Action: identity.ActWriteSelf, Summary: "end the session used for the call (a personal token: 400)", handler: s.logout},
		{Method: "GET", Path: acc + "auth/whoami", Access: User, Action: identity.ActReadSelf, Summary: "the caller's user and token", handler: s.whoami},
		{Method: "POST", Path: acc + "auth/password/change", Access: User, Action: identity.ActWriteSelf, Summary: "change the caller's password: old_password, new_password, new_password_confirm", handler: s.changePassword},
		{Method: "POST", Path: acc + "auth/password/reset", Access: Public, Summary: "request a password reset; the answer is the same whether or not the user exists", handler: s.requestPasswordReset},
		{Method: "POST", Path: acc + "auth/password/reset/confirm", Access: Public, Summary: "reset a password with the id of a reset request", handler: s.resetPassword},
		{Method: "GET", Path: acc + "auth/password/policy", Access: Public, Summary: "the password policy", handler: s.passwordPolicy},
		{Method: "GET", Path: acc + "auth/rules", Access: Public, Summary: "what each role and token kind may do", handler: s.rules},

		// Personal access tokens.
		{Method: "POST", Path: acc + "access_tokens", Access: User, Action: identity.ActWriteSelf, Summary: "create a personal access token; the secret is shown once", handler: s.createToken},
		{Method: "GET", Path: acc + "access_tokens", Access: User, Action: identity.ActReadSelf, Summary: "list personal access tokens (name, owner, search, sort, filter, page, page_size)", Query: paged(Param{Name: "name", Type: "string", Doc: "exact name"}, Param{Name: "owner", Type: "string", Doc: "a user uuid, or * (admins)"}, Param{Name: "search", Type: "string", Doc: "a substring of the name, any case"}, Param{Name: "sort", Type: "string", Doc: "fields, comma-separated, - first for descending"}, Param{Name: "filter", Type: "string", Doc: "a JSON Logic expression"}), handler: s.listTokens},
		{Method: "GET", Path: acc + "access_tokens/self", Access: User, Action: identity.ActReadSelf, Summary: "the personal access token used for the call", handler: s.selfToken},
		{Method: "GET", Path: acc + "access_tokens/{id}", Access: User, Action: identity.ActReadSelf, Summary: "one personal access token", handler: s.getToken},
		{Method: "PATCH", Path: acc + "access_tokens/{id}", Access: User, Action: identity.ActWriteSelf, Summary: "update a token's name, expiry or read-only flag", handler: s.updateToken},
		{Method: "DELETE", Path: acc + "access_tokens/{id}", Access: User, Action: identity.ActWriteSelf, Summary: "revoke a token", handler: s.revokeToken},

		// Users.
		{Method: "GET", Path: acc + "users", Access: User, Action: identity.ActReadAll, Summary: "list users (q: username prefix; page, page_size)", Query: paged(Param{Name: "q", Type: "string", Doc: "a username prefix"}), handler: s.listUsers},
		{Method: "POST", Path: acc + "users", Access: User, Action: identity.ActManageUsers, Summary: "create a user", handler: s.createUser},
		{Method: "GET", Path: acc + "users/{uuid}", Access: User, Action: identity.ActReadSelf, Summary: "a user (oneself, or anyone for admins and readers)", handler: s.getUser},
		{Method: "PATCH", Path: acc + "users/{uuid}", Access: User, Action: identity.ActWriteSelf, Summary: "update a profile (oneself, or anyone for admins)", handler: s.updateUser},
		{Method: "DELETE", Path: acc + "users/{uuid}", Access: User, Action: identity.ActManageUsers, Summary: "delete a user", handler: s.deleteUser},
		{Method: "POST", Path: acc + "users/{uuid}/activate", Access: User, Action: identity.ActManageUsers, Summary: "activate a user", handler: s.activateUser},
		{Method: "PUT", Path: acc + "users/{uuid}/role", Access: User, Action: identity.ActManageUsers, Summary: "set a user's role", handler: s.setUserRole},
		{Method: "POST", Path: acc + "users/{uuid}/role", Access: User, Action: identity.ActManageUsers, Summary: "set a user's role", handler: s.setUserRole},
		{Method: "GET", Path: acc + "users/{uuid}/data", Access: User, Action: identity.ActReadSelf, Summary: "a user's custom data", handler: s.getUserData},
		{Method: "PUT", Path: acc + "users/{uuid}/data", Access: User, Action: identity.ActWriteSelf, Summary: "replace a user's custom data (a JSON object)", handler: s.putUserData},

		// Groups.
		{Method: "GET", Path: acc + "groups", Access: User, Action: identity.ActReadAll, Summary: "list groups", Query: paged(), handler: s.listGroups},
		{Method: "POST", Path: acc + "groups", Access: User, Action: identity.ActManageProjects, Summary: "create a group", handler: s.createGroup},
		{Method: "GET", Path: acc + "groups/{name}", Access: User, Action: identity.ActReadAll, Summary: "a group with its users", handler: s.getGroup},
		{Method: "PATCH", Path: acc + "groups/{name}", Access: User, Action: identity.ActManageProjects, Summary: "rename a group", handler: s.renameGroup},
		{Method: "DELETE", Path: acc + "groups/{name}", Access: User, Action: identity.ActManageProjects, Summary: "delete a group", handler: s.deleteGroup},
		{Method: "POST", Path: acc + "groups/{name}/members", Access: User, Action: identity.ActManageProjects, Summary: "add a user to a group", handler: s.addGroupMember},
		{Method: "DELETE", Path: acc + "groups/{name}/members/{uuid}", Access: User, Action: identity.ActManageProjects, Summary: "remove a user from a group", handler: s.removeGroupMember},

		// Projects.
		{Method: "GET", Path: acc + "projects", Access: User, Action: identity.ActReadOwnProjects, Summary: "the caller's projects (every project for admins and readers)", Query: paged(), handler: s.listProjects},
		{Method: "POST", Path: acc + "projects", Access: User, Action: identity.ActOwnProjects, Summary: "create a project owned by the caller", handler: s.createProject},
		{Method: "GET", Path: acc + "projects/{uuid}", Access: User, Action: identity.ActReadOwnProjects, Summary: "a project", handler: s.getProject},
		{Method: "DELETE", Path: acc + "projects/{uuid}", Access: User, Action: identity.ActOwnProjects, Summary: "delete a project (its admins, or admins)", handler: s.deleteProject},
		{Method: "GET", Path: acc + "projects/{uuid}/members", Access: User, Action: identity.ActReadOwnProjects, Summary: "a project's members", Query: paged(), handler: s.listProjectMembers},
		{Method: "POST", Path: acc + "projects/{uuid}/members", Access: User, Action: identity.ActOwnProjects, Summary: "add a user or a group to a project", handler: s.addProjectMember},
		{Method: "PATCH", Path: acc + "projects/{uuid}/members/{id}", Access: User, Action: identity.ActOwnProjects, Summary: "change a member's role", handler: s.setProjectMemberRole},
		{Method: "DELETE", Path: acc + "projects/{uuid}/members/{id}", Access: User, Action: identity.ActOwnProjects, Summary: "remove a member (a user uuid or a group name)", handler: s.removeProjectMember},
		{Method: "GET", Path: acc + "projects/{uuid}/policies", Access: User, Action: identity.ActReadOwnProjects, Summary: "a project's capacities by resource", handler: s.getProjectPolicies},
		{Method: "PUT", Path: acc + "projects/{uuid}/policies", Access: User, Action: identity.ActOwnProjects, Summary: "replace a project's capacities", handler: s.setProjectPolicies},

		// Resources and services.
		{Method: "POST", Path: acc + "resources", Access: User, Action: identity.ActManageServices, Summary: "register a resource", handler: s.createResource},
		{Method: "GET", Path: acc + "services", Access: User, Action: identity.ActReadAll, Summary: "list services", Query: paged(), handler: s.listServices},
		{Method: "POST", Path: acc + "services", Access: User, Action: identity.ActManageServices, Summary: "register a service; its token is shown once", handler: s.createService},
		{Method: "GET", Path: acc + "services/{name}", Access: User, Action: identity.ActReadAll, Summary: "a service", handler: s.getService},
		{Method: "DELETE", Path: acc + "services/{name}", Access: User, Action: identity.ActManageServices, Summary: "remove a service and its token", handler: s.deleteService},
		{Method: "POST", Path: acc + "services/{name}/token", Access: User, Action: identity.ActManageServices, Summary: "renew a service's token; the old one stops working", handler: s.renewServiceToken},

		// Holdings and the provision log.
		{Method: "POST", Path: acc + "holdings", Access: User, Action: identity.ActManageQuotas, Summary: "set quota: create or re-limit holdings (later entries of the same key win)", handler: s.setHoldings},
		{Method: "GET", Path: acc + "holdings", Access: Any, Summary: "get quota by holder, source, resource (admins, readers; services for their resources)", Query: []Param{{Name: "holder", Type: "string", Doc: "holders, comma-separated"}, {Name: "source", Type: "string", Doc: "sources, comma-separated (an empty item: the empty-string source)"}, {Name: "resource", Type: "string", Doc: "resources, comma-separated"}, {Name: "null_source", Type: "boolean", Doc: "add the null source (1, true)"}}, handler: s.getHoldings},
		{Method: "DELETE", Path: acc + "holdings", Access: User, Action: identity.ActManageQuotas, Summary: "delete holdings (refused while a pending commission touches them)", handler: s.deleteHoldings},
		{Method: "GET", Path: acc + "commissions/{serial}/log", Access: Any, Summary: "the provision log of a resolved commission (its service, admins, readers)", Query: paged(), handler: s.commissionLog},
		{Method: "GET", Path: acc + "history", Access: User, Action: identity.ActReadSelf, Summary: "the provision log of holdings (holder, resource, serial, from, to, after, limit)", Query: []Param{{Name: "holder", Type: "string"}, {Name: "resource", Type: "string"}, {Name: "serial", Type: "integer"}, {Name: "from", Type: "string"}, {Name: "to", Type: "string"}, {Name: "after", Type: "string"}, {Name: "limit", Type: "integer"}}, handler: s.history},

		// Backup (backup.go).
		{Method: "GET", Path: acc + "backup", Access: User, Action: identity.ActManageUsers, Summary: "a consistent checkpoint of the whole ledger, taken without stopping writes, streamed as one tar.gz archive (admins; quotaledger restore rebuilds a data directory from it)", handler: s.backup},
	}
}

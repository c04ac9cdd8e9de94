package identity

// Action names a kind of call the API authorises.
type Action string

// The actions of the API, by what they touch.
const (
	ActReadSelf        Action = "read_self"         // whoami, own quotas, catalogs, own tokens
	ActWriteSelf       Action = "write_self"        // own profile, password, tokens, logout
	ActCommission      Action = "commission"        // issue, resolve, pending, info (a service's own)
	ActServiceRead     Action = "service_read"      // service quotas, service catalogs, token validation
	ActReadAll         Action = "read_all"          // any user, quota, project, holding
	ActManageUsers     Action = "manage_users"      // create, activate, role, delete users
	ActManageQuotas    Action = "manage_quotas"     // holdings set / delete
	ActManageServices  Action = "manage_services"   // services, resources
	ActManageProjects  Action = "manage_projects"   // any project and group
	ActOwnProjects     Action = "own_projects"      // projects the caller administers
	ActReadOwnProjects Action = "read_own_projects" // projects the caller is a member of
)

// Rule says who may perform an action: user roles (through session or
// personal tokens) and token kinds. Writes is true for actions that change
// state: read-only tokens are refused them.
type Rule struct {
	Action  Action      `json:"action"`
	Roles   []Role      `json:"roles"`
	Kinds   []TokenKind `json:"token_kinds"`
	Changes bool        `json:"changes_state"`
}

// Rules is the authorisation table; the API consults it and publishes it
// at auth/rules.
var Rules = []Rule{
	{ActReadSelf, []Role{RoleAdmin, RoleUser, RoleReader}, []TokenKind{KindSession, KindPersonal}, false},
	{ActWriteSelf, []Role{RoleAdmin, RoleUser, RoleReader}, []TokenKind{KindSession, KindPersonal}, true},
	{ActReadOwnProjects, []Role{RoleAdmin, RoleUser, RoleReader}, []TokenKind{KindSession, KindPersonal}, false},
	{ActOwnProjects, []Role{RoleAdmin, RoleUser}, []TokenKind{KindSession, KindPersonal}, true},
	{ActCommission, nil, []TokenKind{KindService}, true},
	{ActServiceRead, nil, []TokenKind{KindService}, false},
	{ActReadAll, []Role{RoleAdmin, RoleReader}, []TokenKind{KindSession, KindPersonal}, false},
	{ActManageUsers, []Role{RoleAdmin}, []TokenKind{KindSession, KindPersonal}, true},
	{ActManageQuotas, []Role{RoleAdmin}, []TokenKind{KindSession, KindPersonal}, true},
	{ActManageServices, []Role{RoleAdmin}, []TokenKind{KindSession, KindPersonal}, true},
	{ActManageProjects, []Role{RoleAdmin}, []TokenKind{KindSession, KindPersonal}, true},
}

var rulesByAction = func() map[Action]Rule {
	m := make(map[Action]Rule, len(Rules))
	for _, r := range Rules {
		m[r.Action] = r
	}
	return m
}()

// Allowed reports whether principal p may perform action a: its token kind
// is listed, its user's role is listed (for user tokens), and a read-only
// token does not change state.
func Allowed(p Principal, a Action) bool {
	r, ok := rulesByAction[a]
	if !ok || p.Token == nil {
		return false
	}
	kindOK := false
	for _, k := range r.Kinds {
		kindOK = kindOK || k == p.Token.Kind
	}
	if !kindOK || (r.Changes && p.ReadOnly()) {
		return false
	}
	if p.Token.Kind == KindService {
		return p.Service != nil
	}
	if p.User == nil {
		return false
	}
	for _, role := range r.Roles {
		if role == p.User.Role {
			return true
		}
	}
	return false
}

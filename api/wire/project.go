package wire

// The messages of groups and projects (/account/v1.0/groups, projects).

// Group is a named set of users.
type Group struct {
	Name    string        `json:"name"`
	Members []GroupMember `json:"members"`
	Created Time          `json:"created"`
}

// GroupMember is a user of a group.
type GroupMember struct {
	UUID        string `json:"uuid"`
	Username    string `json:"username"`
	DisplayName string `json:"display_name"`
}

// GroupCreate is the body of POST groups: its name and first members
// (user uuids).
type GroupCreate struct {
	Name    string   `json:"name"`
	Members []string `json:"members,omitempty"`
}

// GroupRename is the body of PATCH groups/{name}.
type GroupRename struct {
	Name string `json:"name"`
}

// GroupMemberAdd is the body of POST groups/{name}/members.
type GroupMemberAdd struct {
	User string `json:"user"` // a user uuid
}

// Policy is a project's capacities of one resource.
type Policy struct {
	ProjectCapacity int64 `json:"project_capacity"`
	MemberCapacity  int64 `json:"member_capacity"`
}

// PolicySetting is a Policy as a request sets it: both capacities are
// required.
type PolicySetting struct {
	ProjectCapacity *int64 `json:"project_capacity"`
	MemberCapacity  *int64 `json:"member_capacity"`
}

// Member is a user or a group in a project, with a role: reader, member
// or admin. It is also the body of POST projects/{uuid}/members, which
// names a user or a group.
type Member struct {
	User  string `json:"user,omitempty"`
	Group string `json:"group,omitempty"`
	Role  string `json:"role"`
}

// MemberRole is the body of PATCH projects/{uuid}/members/{id}.
type MemberRole struct {
	Role string `json:"role"`
}

// Project is a pool of quota shared by its members.
type Project struct {
	UUID     string            `json:"uuid"`
	Name     string            `json:"name"`
	Owner    string            `json:"owner"`
	State    string            `json:"state"`
	Base     bool              `json:"base"`
	Policies map[string]Policy `json:"policies"`
	Members  []Member          `json:"members"`
	Created  Time              `json:"created"`
	Updated  Time              `json:"updated"`
}

// ProjectCreate is the body of POST projects.
type ProjectCreate struct {
	Name     string                   `json:"name"`
	Owner    string                   `json:"owner,omitempty"` // default: the caller
	Policies map[string]PolicySetting `json:"policies,omitempty"`
}

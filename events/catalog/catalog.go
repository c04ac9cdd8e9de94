// Package catalog is the list of the events quotaledger emits: for each, the
// constant of its type, the type of its payload and one line saying what it
// means (nats-server's server/events.go pairs them the same way). The ledger
// and the identity layer emit with these constants and payload types, and
// tests hold README.md's list of events and every event the tests make to
// this catalog.
//
// A type here is the ledger's type, as stored in the outbox; the published
// message's "type" is events.TypePrefix ("quotaledger.v1.") and this type,
// and its subject follows from it (see package events).
//
// The ledger's own events (commission.* and holding.*) carry no "data":
// their payload is the envelope's commission fields (serial, client, name,
// reason, issue_time) and its holdings, events.Payload and
// events.PayloadHolding. Identity events (identity.*) carry their own
// object as "data", of the payload type catalogued here. Payload types are
// encoded by encoding/json, field by field in the order declared: changing a
// field, its tag or their order changes what consumers get.
package catalog

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"time"
)

// The ledger's events: their payload is the envelope (events.Payload), with
// no data.
const (
	// CommissionIssuedType: a commission was issued; its provisions are
	// pending on the holdings it names.
	CommissionIssuedType = "commission.issued"
	// CommissionAcceptedType: a pending commission was accepted (or one was
	// issued with auto-accept); its provisions are now usage.
	CommissionAcceptedType = "commission.accepted"
	// CommissionRejectedType: a pending commission was rejected; its
	// provisions are released.
	CommissionRejectedType = "commission.rejected"
	// CommissionExpiredType: a pending commission reached its deadline and
	// the ledger rejected it (reason "REJECT:EXPIRED").
	CommissionExpiredType = "commission.expired"
	// HoldingChangedType: limits were set, by an admin or by a change of
	// users, resources or projects; each holding as it is after.
	HoldingChangedType = "holding.changed"
	// HoldingDeletedType: holdings were deleted; each as it was before.
	HoldingDeletedType = "holding.deleted"
)

// Identity events: each carries the payload type named in its comment as
// its "data".
const (
	UserRegisteredType      = "identity.user.registered"       // UserRegistered
	UserActivatedType       = "identity.user.activated"        // User
	UserUpdatedType         = "identity.user.updated"          // User
	UserRoleChangedType     = "identity.user.role_changed"     // User
	UserPasswordChangedType = "identity.user.password_changed" // User
	UserDeletedType         = "identity.user.deleted"          // UserDeleted

	PasswordResetRequestedType = "identity.password.reset_requested" // PasswordResetRequested
	PasswordResetType          = "identity.password.reset"           // User

	TokenCreatedType = "identity.token.created" // Token
	TokenUpdatedType = "identity.token.updated" // Token
	TokenRevokedType = "identity.token.revoked" // Token

	ServiceRegisteredType  = "identity.service.registered"  // ServiceRegistered
	ServiceRemovedType     = "identity.service.removed"     // ServiceRemoved
	ResourceRegisteredType = "identity.resource.registered" // ResourceRegistered

	ProjectCreatedType           = "identity.project.created"            // ProjectCreated
	ProjectMembershipChangedType = "identity.project.membership.changed" // ProjectMembershipChanged
	ProjectPoliciesChangedType   = "identity.project.policies.changed"   // ProjectPoliciesChanged
	ProjectDeletedType           = "identity.project.deleted"            // ProjectDeleted

	GroupCreatedType           = "identity.group.created"            // GroupCreated
	GroupRenamedType           = "identity.group.renamed"            // GroupRenamed
	GroupDeletedType           = "identity.group.deleted"            // GroupDeleted
	GroupMembershipChangedType = "identity.group.membership.changed" // GroupMembershipChanged

	FeedbackType = "identity.feedback" // Feedback
)

// Fields are declared in the order they are emitted. Payloads that were
// built as JSON objects from maps have their fields in the order of their
// names (encoding/json sorts a map's keys); those that were records have
// the records' order.

// User is the payload of the events that change a user but for their
// registration and deletion: activated, updated, role_changed,
// password_changed and password.reset. It is the user after the change.
type User struct {
	Active   bool   `json:"active"`
	Role     string `json:"role"` // admin, user, reader
	Username string `json:"username"`
	UUID     string `json:"uuid"`
}

// UserRegistered is the payload of identity.user.registered.
type UserRegistered struct {
	Active   bool   `json:"active"`
	By       string `json:"by"` // "self" (signed up) or "admin" (created by an admin)
	Role     string `json:"role"`
	Username string `json:"username"`
	UUID     string `json:"uuid"`
}

// UserDeleted is the payload of identity.user.deleted: the user as they
// were, and how many of their tokens were revoked with them (one
// identity.token.revoked each).
type UserDeleted struct {
	Active        bool   `json:"active"`
	Holdings      string `json:"holdings"` // "kept until released"
	Role          string `json:"role"`
	TokensRevoked int    `json:"tokens_revoked"`
	Username      string `json:"username"`
	UUID          string `json:"uuid"`
}

// HoldingsKept is UserDeleted.Holdings: a deleted user's holdings stay in
// the ledger until released.
const HoldingsKept = "kept until released"

// PasswordResetRequested is the payload of identity.password.reset_requested.
// ResetID is the secret the user resets their password with: this event is
// the only place it appears.
type PasswordResetRequested struct {
	Expires  time.Time `json:"expires"`
	ResetID  string    `json:"reset_id"`
	Username string    `json:"username"`
	UUID     string    `json:"uuid"`
}

// Token is the payload of the token events (created, updated, revoked):
// never the secret, nor its hash.
type Token struct {
	Expires  time.Time `json:"expires,omitzero"` // absent: never
	ID       string    `json:"id"`
	Imported bool      `json:"imported,omitempty"` // created only: an imported secret
	Kind     string    `json:"kind"`               // session, personal, service
	Name     string    `json:"name"`
	Owner    string    `json:"owner"` // user uuid, or service name
	ReadOnly bool      `json:"read_only"`
	Reason   string    `json:"reason,omitempty"` // revoked only: why, when it was not its owner's call (TokenExpired, ...)
}

// Token.Reason of a session revoked by the server rather than by a call
// that ends it (logout, DELETE sessions/{id}).
const (
	// TokenExpired: the session reached its expiry.
	TokenExpired = "expired"
	// TokenPasswordChanged: its user changed their password with another
	// session or token.
	TokenPasswordChanged = "password_changed"
	// TokenPasswordReset: its user's password was reset.
	TokenPasswordReset = "password_reset"
)

// Endpoint is where a service answers.
type Endpoint struct {
	PublicURL string `json:"publicURL"`
	VersionID string `json:"versionId,omitempty"`
	Region    string `json:"region,omitempty"`
}

// ServiceRegistered is the payload of identity.service.registered.
type ServiceRegistered struct {
	Name      string     `json:"name"`
	Type      string     `json:"type"`
	Endpoints []Endpoint `json:"endpoints"`
	TokenID   string     `json:"token_id"` // its token (an identity.token.created of the same batch)
	Created   time.Time  `json:"created"`
}

// ServiceRemoved is the payload of identity.service.removed.
type ServiceRemoved struct {
	Name string `json:"name"`
}

// ResourceRegistered is the payload of identity.resource.registered.
type ResourceRegistered struct {
	Name            string    `json:"name"`
	Unit            string    `json:"unit,omitempty"`
	Description     string    `json:"description,omitempty"`
	Service         string    `json:"service"`
	AllowInProjects bool      `json:"allow_in_projects"`
	UpLimit         int64     `json:"uplimit"`         // limit of a new user's base project
	ProjectDefault  int64     `json:"project_default"` // default capacity of other projects
	Created         time.Time `json:"created"`
}

// Policy is a project's capacities of one resource.
type Policy struct {
	ProjectCapacity int64 `json:"project_capacity"`
	MemberCapacity  int64 `json:"member_capacity"`
}

// Member is a user or a group in a project.
type Member struct {
	User  string `json:"user,omitempty"`  // user uuid, or
	Group string `json:"group,omitempty"` // group name
	Role  string `json:"role"`            // reader, member, admin; "" in group_changed
}

// ProjectCreated is the payload of identity.project.created.
type ProjectCreated struct {
	UUID     string            `json:"uuid"`
	Name     string            `json:"name"`
	Owner    string            `json:"owner"`
	State    string            `json:"state"`
	Policies map[string]Policy `json:"policies"` // by resource
	Members  []Member          `json:"members"`
	Created  time.Time         `json:"created"`
	Updated  time.Time         `json:"updated"`
}

// ProjectMembershipChanged is the payload of
// identity.project.membership.changed. Joined and Left are the users whose
// holdings in the project came or went (directly or through a group).
type ProjectMembershipChanged struct {
	Action  string   `json:"action"` // added, removed, role_changed, group_changed
	Joined  []string `json:"joined"`
	Left    []string `json:"left"`
	Member  Member   `json:"member"` // as added or changed; the group, for group_changed
	Project string   `json:"project"`
}

// The actions of ProjectMembershipChanged.
const (
	MemberAdded        = "added"
	MemberRemoved      = "removed"
	MemberRoleChanged  = "role_changed"
	MemberGroupChanged = "group_changed" // a group member of the project changed
)

// ProjectPoliciesChanged is the payload of identity.project.policies.changed:
// the project's new policies.
type ProjectPoliciesChanged struct {
	Joined   []string          `json:"joined"`
	Left     []string          `json:"left"`
	Policies map[string]Policy `json:"policies"`
	Project  string            `json:"project"`
}

// ProjectDeleted is the payload of identity.project.deleted; Left is every
// user who had holdings in it.
type ProjectDeleted struct {
	Joined  []string `json:"joined"`
	Left    []string `json:"left"`
	Project string   `json:"project"`
}

// GroupCreated is the payload of identity.group.created.
type GroupCreated struct {
	Name    string    `json:"name"`
	Members []string  `json:"members"`
	Created time.Time `json:"created"`
}

// GroupRenamed is the payload of identity.group.renamed. Projects are those
// the group is a member of (their memberships follow the new name).
type GroupRenamed struct {
	Group    string   `json:"group"` // the new name
	Members  []string `json:"members"`
	OldName  string   `json:"old_name,omitempty"` // absent if the name did not change
	Projects []string `json:"projects"`
}

// GroupDeleted is the payload of identity.group.deleted. Projects are those
// the group was a member of.
type GroupDeleted struct {
	Group    string   `json:"group"`
	Projects []string `json:"projects"`
}

// GroupMembershipChanged is the payload of identity.group.membership.changed:
// the group's users after the change and the projects it is a member of.
type GroupMembershipChanged struct {
	Group    string   `json:"group"`
	Members  []string `json:"members"`
	Projects []string `json:"projects"`
}

// Feedback is the payload of identity.feedback: a user's feedback, as sent.
type Feedback struct {
	Data     string `json:"data"`
	Message  string `json:"message"`
	Time     string `json:"time"` // RFC 3339 with nanoseconds, UTC
	User     string `json:"user"` // user uuid
	Username string `json:"username"`
}

// Event is one entry of the catalog.
type Event struct {
	Type string // the ledger's type, e.g. "commission.issued"
	// Payload is the type of the event's "data"; nil for the ledger's
	// events, which carry none (their payload is the envelope: see the
	// package comment).
	Payload     reflect.Type
	Description string
}

func of[T any]() reflect.Type { return reflect.TypeFor[T]() }

// All is every event type quotaledger emits, in the order of README.md's
// list.
var All = []Event{
	{CommissionIssuedType, nil, "a commission was issued: its provisions are pending"},
	{CommissionAcceptedType, nil, "a pending commission was accepted (or one was issued with auto-accept)"},
	{CommissionRejectedType, nil, "a pending commission was rejected: its provisions are released"},
	{CommissionExpiredType, nil, "a pending commission reached its deadline and the ledger rejected it"},
	{HoldingChangedType, nil, "limits were set (by an admin, or by users, resources and projects)"},
	{HoldingDeletedType, nil, "holdings were deleted (each as it was before)"},
	{UserRegisteredType, of[UserRegistered](), "a user signed up or was created by an admin"},
	{UserActivatedType, of[User](), "a pending user was made active"},
	{UserUpdatedType, of[User](), "a user's names or data changed"},
	{UserRoleChangedType, of[User](), "a user's role changed"},
	{UserDeletedType, of[UserDeleted](), "a user was deleted with their tokens; their holdings stay until released"},
	{PasswordResetRequestedType, of[PasswordResetRequested](), "a password reset was asked for: its reset id appears only here"},
	{UserPasswordChangedType, of[User](), "a user changed their password"},
	{PasswordResetType, of[User](), "a user's password was set with a reset id"},
	{TokenCreatedType, of[Token](), "a token was made (session, personal access token, service token) or imported"},
	{TokenUpdatedType, of[Token](), "a personal access token's name, expiry or read-only flag changed"},
	{TokenRevokedType, of[Token](), "a token was revoked, expired, or went with its user or service"},
	{ServiceRegisteredType, of[ServiceRegistered](), "a service was registered (with its token)"},
	{ServiceRemovedType, of[ServiceRemoved](), "a service was removed (with its tokens)"},
	{ResourceRegisteredType, of[ResourceRegistered](), "a resource was registered"},
	{ProjectCreatedType, of[ProjectCreated](), "a project was created"},
	{ProjectMembershipChangedType, of[ProjectMembershipChanged](), "a project's member was added, removed or changed role, or a group member changed"},
	{ProjectPoliciesChangedType, of[ProjectPoliciesChanged](), "a project's policies were replaced"},
	{ProjectDeletedType, of[ProjectDeleted](), "a project was deleted: its holdings' limits are 0"},
	{GroupCreatedType, of[GroupCreated](), "a group was created"},
	{GroupRenamedType, of[GroupRenamed](), "a group was renamed"},
	{GroupDeletedType, of[GroupDeleted](), "a group was deleted"},
	{GroupMembershipChangedType, of[GroupMembershipChanged](), "a user was added to or removed from a group"},
	{FeedbackType, of[Feedback](), "a user sent feedback"},
}

var byType = func() map[string]Event {
	m := make(map[string]Event, len(All))
	for _, e := range All {
		m[e.Type] = e
	}
	return m
}()

// Lookup returns the catalog's entry of type typ.
func Lookup(typ string) (Event, bool) {
	e, ok := byType[typ]
	return e, ok
}

// ErrUncatalogued is the error of Check for a type not in the catalog.
var ErrUncatalogued = errors.New("catalog: event type not in the catalog")

// Check reports whether data is the payload of an event of type typ as the
// catalog has it: typ is catalogued, and data is empty for the ledger's
// events; for the others, one JSON object that decodes into the type's
// payload with no unknown field and encodes back to the same bytes (so that
// no field is missing, misspelt or out of order either). Every event
// quotaledger emits passes; tests check them with it.
func Check(typ string, data []byte) error {
	e, ok := Lookup(typ)
	if !ok {
		return fmt.Errorf("%w: %q", ErrUncatalogued, typ)
	}
	if e.Payload == nil {
		if len(data) > 0 {
			return fmt.Errorf("catalog: %s carries no data, got %s", typ, data)
		}
		return nil
	}
	v := reflect.New(e.Payload)
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v.Interface()); err != nil {
		return fmt.Errorf("catalog: %s data %s does not decode into %s: %w", typ, data, e.Payload, err)
	}
	if dec.More() {
		return fmt.Errorf("catalog: %s data %s: more than one JSON value", typ, data)
	}
	again, err := json.Marshal(v.Interface())
	if err != nil {
		return fmt.Errorf("catalog: %s: encoding %s: %w", typ, e.Payload, err)
	}
	if !bytes.Equal(again, data) {
		return fmt.Errorf("catalog: %s data %s is not %s as encoded: %s", typ, data, e.Payload, again)
	}
	return nil
}

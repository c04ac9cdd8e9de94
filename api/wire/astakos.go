package wire

import (
	"encoding/json"
	"fmt"
	"net/url"
)

// The messages of the routes kept wire-compatible with Astakos (DESIGN.md
// §3): their shapes are the lineage's, to the letter.

// TokensRequest is the body of POST /identity/v2.0/tokens (which may also
// have none: the service catalog alone).
type TokensRequest struct {
	Auth *TokensAuth `json:"auth"`
}

// TokensAuth is what a TokensRequest authenticates with: a token, or the
// lineage's passwordCredentials (a user's uuid and token).
type TokensAuth struct {
	Token               *TokenCredentials    `json:"token,omitempty"`
	PasswordCredentials *PasswordCredentials `json:"passwordCredentials,omitempty"`
	TenantName          string               `json:"tenantName,omitempty"` // the user's uuid, if given
}

// TokenCredentials is a token to authenticate.
type TokenCredentials struct {
	ID string `json:"id"`
}

// PasswordCredentials are the lineage's other credentials: the user's uuid
// as username and the token as password.
type PasswordCredentials struct {
	Username string `json:"username"`
	Password string `json:"password"`
}

// TokensAnswer is the answer of POST /identity/v2.0/tokens and of GET
// /identity/v2.0/tokens/{token}.
type TokensAnswer struct {
	Access Access `json:"access"`
}

// Access is a token, its user and the service catalog. Without a body, POST
// tokens answers the catalog alone; GET tokens/{token} answers no catalog,
// and a user without projects.
type Access struct {
	Token          *AccessTokenInfo `json:"token,omitempty"`
	User           *AccessUser      `json:"user,omitempty"`
	ServiceCatalog []CatalogEntry   `json:"serviceCatalog,omitzero"`
}

// Endpoint returns the first endpoint of the catalog entry of type typ.
func (a *Access) Endpoint(typ string) (CatalogEndpoint, bool) {
	for _, s := range a.ServiceCatalog {
		if s.Type == typ && len(s.Endpoints) > 0 {
			return s.Endpoints[0], true
		}
	}
	return CatalogEndpoint{}, false
}

// AccessTokenInfo is the token part of an Access.
type AccessTokenInfo struct {
	ID      string `json:"id"`
	Expires Time   `json:"expires"`
	Tenant  Tenant `json:"tenant"`
}

// Tenant is the user a token belongs to.
type Tenant struct {
	ID   string `json:"id"`
	Name string `json:"name"`
}

// AccessUser is the user part of an Access. Projects (the uuids of the
// user's projects) are in the answer of POST tokens only.
type AccessUser struct {
	ID         string   `json:"id"`
	Name       string   `json:"name"`
	Roles      []Role   `json:"roles"`
	RolesLinks []any    `json:"roles_links"`
	Projects   []string `json:"projects,omitzero"`
}

// Role is a group of a user, as the lineage lists it.
type Role struct {
	ID   string `json:"id"`
	Name string `json:"name"`
}

// CatalogEntry is a service of the service catalog.
type CatalogEntry struct {
	Name           string            `json:"name"`
	Type           string            `json:"type"`
	Endpoints      []CatalogEndpoint `json:"endpoints"`
	EndpointsLinks []any             `json:"endpoints_links"`
}

// CatalogEndpoint is where a service of the catalog answers.
type CatalogEndpoint struct {
	VersionID string `json:"versionId,omitempty"`
	PublicURL string `json:"publicURL"`
	UIURL     string `json:"SNF:uiURL,omitempty"`
	Region    string `json:"region"`
}

// ResourceInfo is a registered resource as GET /account/v1.0/resources
// shows it, by name.
type ResourceInfo struct {
	Unit            NullString `json:"unit"`
	Description     string     `json:"description"`
	Service         string     `json:"service"`
	AllowInProjects bool       `json:"allow_in_projects"`
}

// ServiceSummary is a service as GET /ui/get_services lists it.
type ServiceSummary struct {
	ID   string `json:"id"` // its place in the list, from "1"
	Name string `json:"name"`
	Type string `json:"type"`
	URL  string `json:"url"` // its first endpoint, or ""
}

// Quota is one resource's quota of a user in one project (source).
type Quota struct {
	Limit          int64 `json:"limit"`
	Usage          int64 `json:"usage"`
	Pending        int64 `json:"pending"`
	ProjectLimit   int64 `json:"project_limit"`
	ProjectUsage   int64 `json:"project_usage"`
	ProjectPending int64 `json:"project_pending"`
}

// Quotas are a user's quotas: source (project uuid) -> resource -> quota
// (GET quotas). GET service_quotas answers user uuid -> Quotas.
type Quotas map[string]map[string]Quota

// ProjectQuota is one resource's quota of a project.
type ProjectQuota struct {
	ProjectLimit   int64 `json:"project_limit"`
	ProjectUsage   int64 `json:"project_usage"`
	ProjectPending int64 `json:"project_pending"`
}

// ProjectQuotas are projects' quotas: project uuid -> resource -> quota
// (GET service_project_quotas).
type ProjectQuotas map[string]map[string]ProjectQuota

// Provision is one line of a commission: quantity of resource that holder
// draws from source (nil: the null source of a project's own holding). A
// negative quantity is a release.
type Provision struct {
	Holder   string  `json:"holder"`
	Source   *string `json:"source"`
	Resource string  `json:"resource"`
	Quantity int64   `json:"quantity"`
}

// Commission is the body of an issue (POST commissions).
type Commission struct {
	Name       string      `json:"name"`
	Force      bool        `json:"force"`
	AutoAccept bool        `json:"auto_accept"`
	Provisions []Provision `json:"provisions"`
	// TTL, if positive, is how long the commission may stay pending
	// before the server rejects it with reason EXPIRED (seconds).
	TTL int64 `json:"ttl,omitempty"`
	// IdempotencyKey, if set, makes a retry answer the first call's
	// serial and apply nothing twice; the Idempotency-Key header may carry
	// it instead (the Go client sends it so).
	IdempotencyKey string `json:"idempotency_key,omitempty"`
}

// Issued is the answer of an issue.
type Issued struct {
	Serial int64 `json:"serial"`
}

// CommissionInfo is a pending commission (GET commissions/{serial}).
type CommissionInfo struct {
	Serial     int64       `json:"serial"`
	Name       string      `json:"name"`
	IssueTime  Time        `json:"issue_time"`
	Provisions []Provision `json:"provisions"`
}

// CommissionAction is the body of POST commissions/{serial}/action: accept
// or reject (the key counts, not its value) and an optional reason for the
// provision log.
type CommissionAction struct {
	Accept *string `json:"accept,omitempty"`
	Reject *string `json:"reject,omitempty"`
	Reason string  `json:"reason,omitempty"`
}

// Resolve is the body of POST commissions/action.
type Resolve struct {
	Accept []int64 `json:"accept"`
	Reject []int64 `json:"reject"`
	Reason string  `json:"reason,omitempty"`
}

// Resolved is the answer of POST commissions/action.
type Resolved struct {
	Accepted []int64        `json:"accepted"`
	Rejected []int64        `json:"rejected"`
	Failed   []FailedSerial `json:"failed"`
}

// FailedSerial is a serial a resolve could not apply and why, sent as the
// pair [serial, {"<kind>": fault}].
type FailedSerial struct {
	Serial int64
	Fault  Faults
}

// MarshalJSON implements json.Marshaler.
func (f FailedSerial) MarshalJSON() ([]byte, error) {
	return json.Marshal([]any{f.Serial, f.Fault})
}

// UnmarshalJSON implements json.Unmarshaler.
func (f *FailedSerial) UnmarshalJSON(b []byte) error {
	*f = FailedSerial{}
	var pair []json.RawMessage
	if err := json.Unmarshal(b, &pair); err != nil {
		return err
	}
	if len(pair) != 2 {
		return fmt.Errorf("a failed entry has %d elements, want [serial, fault]", len(pair))
	}
	if err := json.Unmarshal(pair[0], &f.Serial); err != nil {
		return err
	}
	if err := json.Unmarshal(pair[1], &f.Fault); err != nil || len(f.Fault) != 1 {
		return fmt.Errorf("a failed entry's fault is not a cloudFault: %s", pair[1])
	}
	return nil
}

// CatalogsRequest is the body of POST user_catalogs and
// service/user_catalogs: uuids and usernames to look up. Left out is none;
// null, for a service, is every user.
type CatalogsRequest struct {
	UUIDs        []string `json:"uuids"`
	DisplayNames []string `json:"displaynames"`
}

// Catalogs is the answer of the user catalogs: unknown names are absent.
type Catalogs struct {
	UUIDCatalog        map[string]string `json:"uuid_catalog"`        // uuid -> username
	DisplayNameCatalog map[string]string `json:"displayname_catalog"` // username -> uuid
}

// UserInfo is the 2013 clients' user info (GET authenticate); Usage is
// there when asked for (?usage=1).
type UserInfo struct {
	UUID             string       `json:"uuid"`
	Username         string       `json:"username"`
	DisplayName      string       `json:"displayname"`
	Name             string       `json:"name"`
	Email            []string     `json:"email"`
	Groups           []string     `json:"groups"`
	AuthTokenCreated Millis       `json:"auth_token_created"`
	AuthTokenExpires Millis       `json:"auth_token_expires"`
	Usage            []UsageEntry `json:"usage,omitzero"`
}

// UsageEntry is a user's usage of one resource in their base project.
type UsageEntry struct {
	Name        string     `json:"name"`
	Description string     `json:"description"`
	Unit        NullString `json:"unit"`
	MaxValue    int64      `json:"maxValue"`
	CurrValue   int64      `json:"currValue"`
}

// Feedback is the form (application/x-www-form-urlencoded, whatever the
// Content-Type says) of POST feedback: these are its field names.
type Feedback struct {
	Message string `json:"feedback_msg"`
	Data    string `json:"feedback_data,omitempty"`
}

// Values returns the form of f.
func (f Feedback) Values() url.Values {
	return url.Values{"feedback_msg": {f.Message}, "feedback_data": {f.Data}}
}

// FeedbackOf reads the form of a feedback.
func FeedbackOf(form url.Values) Feedback {
	return Feedback{Message: form.Get("feedback_msg"), Data: form.Get("feedback_data")}
}

package client

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"

	"github.com/quotaledger/quotaledger/api/wire"
)

// The calls of the lineage's client (astakosclient, seed 001), on the
// routes DESIGN.md §3 keeps wire-compatible with Astakos.

// Time is a time of an answer: RFC 3339, or (as older servers sent)
// milliseconds since the epoch. A null or empty time is the zero Time.
type Time = wire.Time

// Millis is a time the 2013 clients' user info sends as milliseconds since
// the epoch.
type Millis = wire.Millis

// UserInfo is the 2013 clients' user info (GET /account/v1.0/authenticate).
type UserInfo = wire.UserInfo

// UsageEntry is a user's usage of one resource in their base project.
type UsageEntry = wire.UsageEntry

// GetUserInfo returns the user info of the token (astakosclient's
// get_user_info, GET /account/v1.0/authenticate), with the user's usage
// when usage is set.
func (c *Client) GetUserInfo(ctx context.Context, usage bool) (*UserInfo, error) {
	q := url.Values{}
	if usage {
		q.Set("usage", "1")
	}
	var out UserInfo
	_, err := c.do(ctx, &request{method: http.MethodGet, path: accountPrefix + "/authenticate", query: q, idempotent: true}, &out)
	if err != nil {
		return nil, err
	}
	return &out, nil
}

// Authenticate is GetUserInfo (the call's name in the 2013 API).
func (c *Client) Authenticate(ctx context.Context, usage bool) (*UserInfo, error) {
	return c.GetUserInfo(ctx, usage)
}

// Access is the answer of POST /identity/v2.0/tokens: the token, its
// user and the service catalog.
type Access = wire.Access

// AccessTokenInfo is the token part of an Access.
type AccessTokenInfo = wire.AccessTokenInfo

// Tenant is the user a token belongs to.
type Tenant = wire.Tenant

// AccessUser is the user part of an Access.
type AccessUser = wire.AccessUser

// Role is a group of a user.
type Role = wire.Role

// CatalogEntry is a service of the service catalog.
type CatalogEntry = wire.CatalogEntry

// CatalogEndpoint is where a service of the catalog answers.
type CatalogEndpoint = wire.CatalogEndpoint

// GetEndpoints returns the token, its user and the service catalog
// (astakosclient's get_endpoints: POST /identity/v2.0/tokens with the
// client's token; uuid, if not empty, is sent as the tenantName).
func (c *Client) GetEndpoints(ctx context.Context, uuid string) (*Access, error) {
	token := c.token
	if t, ok := ctx.Value(ctxToken{}).(string); ok {
		token = t
	}
	body := wire.TokensRequest{Auth: &wire.TokensAuth{Token: &wire.TokenCredentials{ID: token}, TenantName: uuid}}
	var out wire.TokensAnswer
	if _, err := c.do(ctx, &request{method: http.MethodPost, path: identityPrefix + "/tokens",
		body: body, idempotent: true, public: true}, &out); err != nil {
		return nil, err
	}
	return &out.Access, nil
}

// GetServiceCatalog returns the service catalog alone (POST
// /identity/v2.0/tokens with no body).
func (c *Client) GetServiceCatalog(ctx context.Context) ([]CatalogEntry, error) {
	var out wire.TokensAnswer
	if _, err := c.do(ctx, &request{method: http.MethodPost, path: identityPrefix + "/tokens",
		idempotent: true, public: true}, &out); err != nil {
		return nil, err
	}
	return out.Access.ServiceCatalog, nil
}

// ValidateToken checks a user's token (a service's call: GET
// /identity/v2.0/tokens/{token}?belongsTo=uuid); a token that is unknown,
// expired or not that user's is a NotFound.
func (c *Client) ValidateToken(ctx context.Context, userToken, belongsTo string) (*Access, error) {
	q := url.Values{}
	if belongsTo != "" {
		q.Set("belongsTo", belongsTo)
	}
	var out wire.TokensAnswer
	if _, err := c.do(ctx, &request{method: http.MethodGet, path: path(identityPrefix+"/tokens", userToken),
		query: q, idempotent: true}, &out); err != nil {
		return nil, err
	}
	return &out.Access, nil
}

// Catalogs is the answer of the user catalog calls: uuid -> username and
// username -> uuid.
type Catalogs = wire.Catalogs

// GetCatalogs looks up uuids and usernames with a user's token (POST
// /account/v1.0/user_catalogs); unknown ones are absent from the answer.
func (c *Client) GetCatalogs(ctx context.Context, uuids, usernames []string) (*Catalogs, error) {
	return c.catalogs(ctx, accountPrefix+"/user_catalogs", orEmpty(uuids), orEmpty(usernames))
}

// ServiceGetCatalogs is GetCatalogs with a service's token (POST
// /account/v1.0/service/user_catalogs); a nil list means every user.
func (c *Client) ServiceGetCatalogs(ctx context.Context, uuids, usernames []string) (*Catalogs, error) {
	return c.catalogs(ctx, accountPrefix+"/service/user_catalogs", uuids, usernames)
}

func (c *Client) catalogs(ctx context.Context, p string, uuids, names []string) (*Catalogs, error) {
	var out Catalogs
	body := wire.CatalogsRequest{UUIDs: uuids, DisplayNames: names}
	if _, err := c.do(ctx, &request{method: http.MethodPost, path: p, body: body, idempotent: true}, &out); err != nil {
		return nil, err
	}
	return catalogsOf(out), nil
}

// catalogsOf is the answer of a catalogs call, with empty catalogs for
// null ones.
func catalogsOf(out Catalogs) *Catalogs {
	if out.UUIDCatalog == nil {
		out.UUIDCatalog = map[string]string{}
	}
	if out.DisplayNameCatalog == nil {
		out.DisplayNameCatalog = map[string]string{}
	}
	return &out
}

func orEmpty(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}

// GetUsernames returns uuid -> username for the uuids the server knows
// (astakosclient's get_usernames).
func (c *Client) GetUsernames(ctx context.Context, uuids []string) (map[string]string, error) {
	cat, err := c.catalogs(ctx, accountPrefix+"/user_catalogs", orEmpty(uuids), []string{})
	if err != nil {
		return nil, err
	}
	return cat.UUIDCatalog, nil
}

// GetUsername returns the username of uuid, or a NoUserName
// (astakosclient's get_username).
func (c *Client) GetUsername(ctx context.Context, uuid string) (string, error) {
	m, err := c.GetUsernames(ctx, []string{uuid})
	return oneName(m, uuid, err)
}

// ServiceGetUsernames is GetUsernames with a service's token.
func (c *Client) ServiceGetUsernames(ctx context.Context, uuids []string) (map[string]string, error) {
	cat, err := c.catalogs(ctx, accountPrefix+"/service/user_catalogs", orEmpty(uuids), []string{})
	if err != nil {
		return nil, err
	}
	return cat.UUIDCatalog, nil
}

// ServiceGetUsername is GetUsername with a service's token.
func (c *Client) ServiceGetUsername(ctx context.Context, uuid string) (string, error) {
	m, err := c.ServiceGetUsernames(ctx, []string{uuid})
	return oneName(m, uuid, err)
}

func oneName(m map[string]string, uuid string, err error) (string, error) {
	if err != nil {
		return "", err
	}
	if n, ok := m[uuid]; ok {
		return n, nil
	}
	return "", &NoUserName{UUID: uuid, Err: &Error{Status: http.StatusNotFound, Kind: "itemNotFound",
		Message: fmt.Sprintf("no user name for uuid %q", uuid), Name: "NoUserName"}}
}

// GetUUIDs returns username -> uuid for the usernames the server knows
// (astakosclient's get_uuids).
func (c *Client) GetUUIDs(ctx context.Context, usernames []string) (map[string]string, error) {
	cat, err := c.catalogs(ctx, accountPrefix+"/user_catalogs", []string{}, orEmpty(usernames))
	if err != nil {
		return nil, err
	}
	return cat.DisplayNameCatalog, nil
}

// GetUUID returns the uuid of username, or a NoUUID (astakosclient's
// get_uuid).
func (c *Client) GetUUID(ctx context.Context, username string) (string, error) {
	m, err := c.GetUUIDs(ctx, []string{username})
	return oneUUID(m, username, err)
}

// ServiceGetUUIDs is GetUUIDs with a service's token.
func (c *Client) ServiceGetUUIDs(ctx context.Context, usernames []string) (map[string]string, error) {
	cat, err := c.catalogs(ctx, accountPrefix+"/service/user_catalogs", []string{}, orEmpty(usernames))
	if err != nil {
		return nil, err
	}
	return cat.DisplayNameCatalog, nil
}

// ServiceGetUUID is GetUUID with a service's token.
func (c *Client) ServiceGetUUID(ctx context.Context, username string) (string, error) {
	m, err := c.ServiceGetUUIDs(ctx, []string{username})
	return oneUUID(m, username, err)
}

func oneUUID(m map[string]string, name string, err error) (string, error) {
	if err != nil {
		return "", err
	}
	if u, ok := m[name]; ok {
		return u, nil
	}
	return "", &NoUUID{Username: name, Err: &Error{Status: http.StatusNotFound, Kind: "itemNotFound",
		Message: fmt.Sprintf("no uuid for user name %q", name), Name: "NoUUID"}}
}

// Quota is one resource's quota of a user in one project (source).
type Quota = wire.Quota

// Quotas are a user's quotas: source (project uuid) -> resource -> quota.
type Quotas = wire.Quotas

// GetQuotas returns the quotas of the token's user (astakosclient's
// get_quotas, GET /account/v1.0/quotas).
func (c *Client) GetQuotas(ctx context.Context) (Quotas, error) {
	var out Quotas
	if _, err := c.do(ctx, &request{method: http.MethodGet, path: accountPrefix + "/quotas", idempotent: true}, &out); err != nil {
		return nil, err
	}
	return out, nil
}

// ServiceGetQuotas returns, for the service's resources, the quotas of
// the users given (every user when none), in the project given (every
// project when ""): user uuid -> quotas (astakosclient's
// service_get_quotas, GET /account/v1.0/service_quotas).
func (c *Client) ServiceGetQuotas(ctx context.Context, users []string, project string) (map[string]Quotas, error) {
	q := url.Values{}
	if len(users) > 0 {
		q.Set("user", strings.Join(users, ","))
	}
	if project != "" {
		q.Set("project", project)
	}
	var out map[string]Quotas
	if _, err := c.do(ctx, &request{method: http.MethodGet, path: accountPrefix + "/service_quotas", query: q, idempotent: true}, &out); err != nil {
		return nil, err
	}
	return out, nil
}

// ProjectQuota is one resource's quota of a project.
type ProjectQuota = wire.ProjectQuota

// ServiceGetProjectQuotas returns, for the service's resources, the
// quotas of the projects given (every project when none): project uuid ->
// resource -> quota (GET /account/v1.0/service_project_quotas).
func (c *Client) ServiceGetProjectQuotas(ctx context.Context, projects ...string) (map[string]map[string]ProjectQuota, error) {
	q := url.Values{}
	if len(projects) > 0 {
		q.Set("project", strings.Join(projects, ","))
	}
	var out map[string]map[string]ProjectQuota
	if _, err := c.do(ctx, &request{method: http.MethodGet, path: accountPrefix + "/service_project_quotas", query: q, idempotent: true}, &out); err != nil {
		return nil, err
	}
	return out, nil
}

// Provision is one line of a commission: quantity of resource that holder
// draws from source (nil: the null source of a project's own holding).
// A negative quantity is a release.
type Provision = wire.Provision

// String returns a pointer to s (for Provision.Source and the optional
// fields of updates).
func String(s string) *string { return &s }

// Commission is what an issue sends. Its IdempotencyKey goes as the
// Idempotency-Key header.
type Commission = wire.Commission

// IssueOptions are the optional parts of an issue built by the client.
type IssueOptions struct {
	Name           string
	Force          bool
	AutoAccept     bool
	TTL            int64 // seconds; 0: the server's default
	IdempotencyKey string
}

// IssueCommission issues a commission with a service's token and returns
// its serial (astakosclient's issue_commission, POST
// /account/v1.0/commissions). A provision past a limit is a QuotaLimit, a
// holding that does not exist a NotFound.
func (c *Client) IssueCommission(ctx context.Context, cm Commission) (int64, error) {
	cm, key := issueBody(cm, c.opts.SafeRetries)
	var out wire.Issued
	a, err := c.do(ctx, &request{method: http.MethodPost, path: accountPrefix + "/commissions", body: cm, idemKey: key}, &out)
	if err != nil {
		return 0, err
	}
	if out.Serial <= 0 {
		return 0, invalidResponse(a.status, a.body, a.requestID, errors.New("no serial"))
	}
	return out.Serial, nil
}

// issueBody is the body of an issue of cm, and the idempotency key sent
// beside it as a header (one of its own, with safeRetries, if cm has none).
func issueBody(cm Commission, safeRetries bool) (Commission, string) {
	if cm.Provisions == nil {
		cm.Provisions = []Provision{}
	}
	key := cm.IdempotencyKey
	if key == "" && safeRetries {
		key = NewIdempotencyKey()
	}
	cm.IdempotencyKey = "" // sent as the header
	return cm, key
}

// IssueOneCommission issues a commission of holder drawing from source
// the quantity of each resource of provisions (astakosclient's
// issue_one_commission). Provisions go in the order of resource names.
func (c *Client) IssueOneCommission(ctx context.Context, holder string, source *string, provisions map[string]int64, o IssueOptions) (int64, error) {
	return c.IssueCommission(ctx, o.commission(oneHolderProvisions(holder, source, provisions)))
}

// oneHolderProvisions are the provisions of IssueOneCommission.
func oneHolderProvisions(holder string, source *string, provisions map[string]int64) []Provision {
	ps := make([]Provision, 0, len(provisions))
	for _, r := range sortedKeys(provisions) {
		ps = append(ps, Provision{Holder: holder, Source: source, Resource: r, Quantity: provisions[r]})
	}
	return ps
}

// UserProjectProvisions builds the provisions of a user drawing from a
// project: for each resource, (user:U, project:P, r) and (project:P,
// null, r), in the order of resource names.
func UserProjectProvisions(user, project string, resources map[string]int64) []Provision {
	ps := make([]Provision, 0, 2*len(resources))
	src := "project:" + project
	for _, r := range sortedKeys(resources) {
		q := resources[r]
		ps = append(ps,
			Provision{Holder: "user:" + user, Source: String(src), Resource: r, Quantity: q},
			Provision{Holder: src, Source: nil, Resource: r, Quantity: q})
	}
	return ps
}

// IssueUserProjectCommission issues the commission of a user drawing the
// quantity of each resource from a project (its member holding and the
// project's own holding; see UserProjectProvisions). For a user's base
// project, project is the user's uuid.
func (c *Client) IssueUserProjectCommission(ctx context.Context, user, project string, resources map[string]int64, o IssueOptions) (int64, error) {
	return c.IssueCommission(ctx, o.commission(UserProjectProvisions(user, project, resources)))
}

func (o IssueOptions) commission(ps []Provision) Commission {
	return Commission{Name: o.Name, Force: o.Force, AutoAccept: o.AutoAccept, Provisions: ps, TTL: o.TTL,
		IdempotencyKey: o.IdempotencyKey}
}

func sortedKeys(m map[string]int64) []string {
	ks := make([]string, 0, len(m))
	for k := range m {
		ks = append(ks, k)
	}
	slices.Sort(ks)
	return ks
}

// GetPendingCommissions returns the serials of the service's pending
// commissions (astakosclient's get_pending_commissions).
func (c *Client) GetPendingCommissions(ctx context.Context) ([]int64, error) {
	var out []int64
	if _, err := c.do(ctx, &request{method: http.MethodGet, path: accountPrefix + "/commissions", idempotent: true}, &out); err != nil {
		return nil, err
	}
	if out == nil {
		out = []int64{}
	}
	return out, nil
}

// CommissionInfo is a pending commission's detail.
type CommissionInfo = wire.CommissionInfo

// GetCommissionInfo returns a pending commission of the service
// (astakosclient's get_commission_info); NotFound if it is not pending.
func (c *Client) GetCommissionInfo(ctx context.Context, serial int64) (*CommissionInfo, error) {
	var out CommissionInfo
	if _, err := c.do(ctx, &request{method: http.MethodGet, path: path(accountPrefix+"/commissions", strconv.FormatInt(serial, 10)),
		idempotent: true}, &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// The actions of CommissionAction.
const (
	ActionAccept = "accept"
	ActionReject = "reject"
)

// CommissionAction accepts or rejects a pending commission
// (astakosclient's commission_action); NotFound if it is not pending.
func (c *Client) CommissionAction(ctx context.Context, serial int64, action string) error {
	return c.CommissionActionReason(ctx, serial, action, "")
}

// CommissionActionReason is CommissionAction with a reason, logged after
// ACCEPT: or REJECT: in the provision log.
func (c *Client) CommissionActionReason(ctx context.Context, serial int64, action, reason string) error {
	body, err := actionBody(action, reason)
	if err != nil {
		return err
	}
	_, err = c.do(ctx, &request{method: http.MethodPost,
		path: path(accountPrefix+"/commissions", strconv.FormatInt(serial, 10), "action"), body: body}, nil)
	return err
}

// actionBody is the body of an action: accept or reject, and the reason.
func actionBody(action, reason string) (wire.CommissionAction, error) {
	if action != ActionAccept && action != ActionReject {
		return wire.CommissionAction{}, &BadRequest{&Error{Kind: "badRequest", Message: fmt.Sprintf("action %q: want accept or reject", action)}}
	}
	empty := ""
	body := wire.CommissionAction{Reason: reason}
	if action == ActionAccept {
		body.Accept = &empty
	} else {
		body.Reject = &empty
	}
	return body, nil
}

// AcceptCommission accepts a pending commission.
func (c *Client) AcceptCommission(ctx context.Context, serial int64) error {
	return c.CommissionAction(ctx, serial, ActionAccept)
}

// RejectCommission rejects a pending commission.
func (c *Client) RejectCommission(ctx context.Context, serial int64) error {
	return c.CommissionAction(ctx, serial, ActionReject)
}

// Resolved is the answer of ResolveCommissions.
type Resolved struct {
	Accepted []int64
	Rejected []int64
	Failed   []FailedSerial
}

// FailedSerial is a serial a resolve could not apply, and why: a NotFound
// (not pending for this service) or a BadRequest (in both lists).
type FailedSerial struct {
	Serial int64
	Err    error
}

// ResolveCommissions accepts and rejects many pending commissions at
// once (astakosclient's resolve_commissions); a serial in both lists, or
// not pending, is among the failed.
func (c *Client) ResolveCommissions(ctx context.Context, accept, reject []int64) (*Resolved, error) {
	return c.ResolveCommissionsReason(ctx, accept, reject, "")
}

// ResolveCommissionsReason is ResolveCommissions with a reason for the
// provision log.
func (c *Client) ResolveCommissionsReason(ctx context.Context, accept, reject []int64, reason string) (*Resolved, error) {
	var out wire.Resolved
	if _, err := c.do(ctx, &request{method: http.MethodPost, path: accountPrefix + "/commissions/action",
		body: resolveBody(accept, reject, reason)}, &out); err != nil {
		return nil, err
	}
	return resolvedOf(&out), nil
}

// resolveBody is the body of a resolve (nil lists sent empty).
func resolveBody(accept, reject []int64, reason string) wire.Resolve {
	if accept == nil {
		accept = []int64{}
	}
	if reject == nil {
		reject = []int64{}
	}
	return wire.Resolve{Accept: accept, Reject: reject, Reason: reason}
}

// resolvedOf is a resolve-many's answer with its failures as errors
// (typed, as a call's).
func resolvedOf(out *wire.Resolved) *Resolved {
	res := &Resolved{Accepted: out.Accepted, Rejected: out.Rejected, Failed: make([]FailedSerial, 0, len(out.Failed))}
	for _, f := range out.Failed {
		for kind, fault := range f.Fault {
			res.Failed = append(res.Failed, FailedSerial{Serial: f.Serial, Err: typed(faultError(0, kind, fault))})
		}
	}
	return res
}

// ResourceInfo is a registered resource as GetResources shows it.
type ResourceInfo = wire.ResourceInfo

// GetResources returns the registered resources by name (astakosclient's
// get_resources, GET /account/v1.0/resources).
func (c *Client) GetResources(ctx context.Context) (map[string]ResourceInfo, error) {
	var out map[string]ResourceInfo
	if _, err := c.do(ctx, &request{method: http.MethodGet, path: accountPrefix + "/resources", idempotent: true, public: true}, &out); err != nil {
		return nil, err
	}
	return out, nil
}

// GetServices returns the registered services (astakosclient's
// get_services, GET /ui/get_services).
func (c *Client) GetServices(ctx context.Context) ([]map[string]any, error) {
	var out []map[string]any
	if _, err := c.do(ctx, &request{method: http.MethodGet, path: "/ui/get_services", idempotent: true, public: true}, &out); err != nil {
		return nil, err
	}
	return out, nil
}

// SendFeedback sends a user's feedback, message and data about the
// client's state (astakosclient's send_feedback, POST
// /account/v1.0/feedback, form fields feedback_msg and feedback_data).
func (c *Client) SendFeedback(ctx context.Context, message, data string) error {
	form := wire.Feedback{Message: message, Data: data}.Values()
	_, err := c.do(ctx, &request{method: http.MethodPost, path: accountPrefix + "/feedback",
		raw: []byte(form.Encode()), rawTyp: "application/x-www-form-urlencoded"}, nil)
	return err
}

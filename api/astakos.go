package api

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"math"
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

// registerAstakos adds the routes kept wire-compatible with Astakos
// (DESIGN.md §3), and their /astakos/api aliases.
//
// Bodies are read the lineage's way: keys it did not read are ignored (it
// never refused them), but every key it read is type-checked, and a wrong
// one is a 400 that says what is wrong.
func (s *Server) registerAstakos() {
	type route struct {
		method, path string
		alias        string // the path under /astakos/api, "" if none
		access       Access
		action       identity.Action
		summary      string
		h            handlerFunc
	}
	const acc, old = "/account/v1.0/", "/astakos/api/"
	routes := []route{
		{"POST", "/identity/v2.0/tokens", old + "tokens", Public, "",
			"authenticate a user token; answers the token, the user and the service catalog (no body: the catalog only)", s.astTokens},
		{"GET", "/identity/v2.0/tokens/{token}", old + "tokens/{token}", Service, identity.ActServiceRead,
			"validate a user token (?belongsTo=uuid)", s.astValidateToken},
		{"GET", acc + "resources", old + "resources", Public, "",
			"the registered resources", s.astResources},
		{"GET", acc + "quotas", old + "quotas", User, identity.ActReadSelf,
			"the caller's quotas, by project", s.astQuotas},
		{"GET", acc + "service_quotas", old + "service_quotas", Service, identity.ActServiceRead,
			"the users' quotas of the calling service's resources (?user=a,b&project=p)", s.astServiceQuotas},
		{"GET", acc + "service_project_quotas", "", Service, identity.ActServiceRead,
			"the projects' quotas of the calling service's resources (?project=p)", s.astServiceProjectQuotas},
		{"POST", acc + "commissions", old + "commissions", Service, identity.ActCommission,
			"issue a commission", s.astIssue},
		{"GET", acc + "commissions", old + "commissions", Service, identity.ActCommission,
			"the serials of the caller's pending commissions", s.astPending},
		{"GET", acc + "commissions/{serial}", old + "commissions/{serial}", Service, identity.ActCommission,
			"a pending commission of the caller", s.astCommission},
		{"POST", acc + "commissions/{serial}/action", old + "commissions/{serial}/action", Service, identity.ActCommission,
			"accept or reject a pending commission", s.astAction},
		{"POST", acc + "commissions/action", old + "commissions/action", Service, identity.ActCommission,
			"accept and reject many pending commissions at once", s.astResolveMany},
		{"POST", acc + "user_catalogs", old + "user_catalogs", User, identity.ActReadSelf,
			"uuid -> username and username -> uuid catalogs", s.astCatalogs(true)},
		{"POST", acc + "service/user_catalogs", old + "service/user_catalogs", Service, identity.ActServiceRead,
			"uuid -> username and username -> uuid catalogs (null lists: every user)", s.astCatalogs(false)},
		{"GET", acc + "authenticate", old + "authenticate", User, identity.ActReadSelf,
			"the caller's user info (?usage=1 adds the usage list)", s.astAuthenticate},
		{"POST", acc + "feedback", old + "feedback", User, identity.ActWriteSelf,
			"send feedback (form fields feedback_msg, feedback_data)", s.astFeedback},
		{"GET", "/ui/get_services", old + "get_services", Public, "",
			"the registered services", s.astGetServices},
	}
	for _, r := range routes {
		s.handle(r.method, r.path, r.access, r.action, r.summary, r.h)
		if r.alias != "" {
			s.handle(r.method, r.alias, r.access, r.action, r.summary+" (the lineage's older path)", r.h)
		}
	}
}

// ---------------------------------------------------------------------------
// Body helpers: a JSON object read key by key.

// jsonObject reads the body as a JSON object whose values are kept raw.
func (c *call) jsonObject() (map[string]json.RawMessage, error) {
	b, err := readBody(c.r, c.s.opts.MaxBody)
	if err != nil {
		return nil, err
	}
	return parseObject(b)
}

func parseObject(b []byte) (map[string]json.RawMessage, error) {
	t := bytes.TrimLeft(b, " \t\r\n")
	if len(t) == 0 {
		return nil, newFault(http.StatusBadRequest, "request body is empty; a JSON object is expected")
	}
	if t[0] != '{' {
		if !json.Valid(b) {
			return nil, decodeJSON(b, new(any), false)
		}
		return nil, newFault(http.StatusBadRequest, "request body must be a JSON object")
	}
	var m map[string]json.RawMessage
	if err := decodeJSON(b, &m, false); err != nil {
		return nil, err
	}
	return m, nil
}

func isNull(raw json.RawMessage) bool { return string(raw) == "null" }

// rawString decodes a JSON string; ok is false if raw is not one.
func rawString(raw json.RawMessage) (string, bool) {
	if len(raw) == 0 || raw[0] != '"' {
		return "", false
	}
	var s string
	if err := json.Unmarshal(raw, &s); err != nil {
		return "", false
	}
	return s, true
}

// rawBool decodes a JSON true or false.
func rawBool(raw json.RawMessage) (v, ok bool) {
	switch string(raw) {
	case "true":
		return true, true
	case "false":
		return false, true
	}
	return false, false
}

// errRange is returned by rawInt for an integer outside int64.
var errRange = errors.New("does not fit in a signed 64-bit integer")

// rawInt decodes a JSON integer (no fraction, no exponent) that fits int64.
func rawInt(raw json.RawMessage) (int64, error) {
	s := string(raw)
	digits := strings.TrimPrefix(s, "-")
	if digits == "" || strings.Trim(digits, "0123456789") != "" {
		return 0, errors.New("is not an integer")
	}
	v, err := strconv.ParseInt(s, 10, 64)
	if err != nil {
		return 0, errRange
	}
	return v, nil
}

func badRequest(format string, args ...any) *Fault {
	return newFault(http.StatusBadRequest, fmt.Sprintf(format, args...))
}

// checkName checks a string of the request: valid UTF-8 and at most
// MaxNameLen bytes.
func (c *call) checkName(what, v string) error {
	if !utf8.ValidString(v) {
		return badRequest("%s is not valid UTF-8", what)
	}
	if len(v) > c.s.opts.MaxNameLen {
		return badRequest("%s is longer than %d bytes", what, c.s.opts.MaxNameLen)
	}
	return nil
}

// writeEmpty answers status with an empty body, as the lineage does for
// actions and feedback.
func (c *call) writeEmpty(status int) error {
	c.w.Header().Set("Content-Length", "0")
	c.w.WriteHeader(status)
	return nil
}

// ---------------------------------------------------------------------------
// Faults with the lineage's messages.

// pyRepr renders a holding key the way the lineage's messages showed it (a
// Python tuple).
func pyRepr(k holdings.Key) string {
	src := "None"
	if !k.Source.IsNull() {
		src = strconv.Quote(k.Source.Name())
	}
	return fmt.Sprintf("(%s, %s, %s)", strconv.Quote(k.Holder), src, strconv.Quote(k.Resource))
}

// commissionFault is faultOf with the messages of the lineage's
// quotaholder for its three errors; the data are faultOf's.
func commissionFault(err error) *Fault {
	f := faultOf(err)
	if q, ok := holdings.AsQuotaLimit(err); ok {
		p, _, _ := q.QuotaLimit()
		cp := *f
		switch q.Name() {
		case "NoQuantityError":
			cp.Message = fmt.Sprintf("%s attempts to release more %s than it contains.", p.Key.Holder, p.Key.Resource)
		default:
			cp.Message = fmt.Sprintf("%s has not enough capacity of %s.", p.Key.Holder, p.Key.Resource)
		}
		return &cp
	}
	var nh *holdings.NoHoldingError
	if errors.As(err, &nh) {
		cp := *f
		cp.Message = "There is no such holding " + pyRepr(nh.Provision.Key)
		return &cp
	}
	return f
}

// ---------------------------------------------------------------------------
// Tokens (the identity API).

type catalogEndpoint = map[string]any

type catalogEntry struct {
	Name           string            `json:"name"`
	Type           string            `json:"type"`
	Endpoints      []catalogEndpoint `json:"endpoints"`
	EndpointsLinks []any             `json:"endpoints_links"`
}

// serviceCatalog lists the server itself (astakos_account, astakos_identity)
// then every registered service.
func (c *call) serviceCatalog() []catalogEntry {
	base := c.baseURL()
	ui := base + "/ui"
	out := []catalogEntry{
		{Name: "astakos_account", Type: "account", EndpointsLinks: []any{}, Endpoints: []catalogEndpoint{{
			"versionId": "v1.0", "publicURL": base + "/account/v1.0", "SNF:uiURL": ui, "region": "default"}}},
		{Name: "astakos_identity", Type: "identity", EndpointsLinks: []any{}, Endpoints: []catalogEndpoint{{
			"versionId": "v2.0", "publicURL": base + "/identity/v2.0", "SNF:uiURL": ui, "region": "default"}}},
	}
	for _, svc := range c.s.id.Services() {
		if svc.Name == "astakos_account" || svc.Name == "astakos_identity" {
			continue
		}
		e := catalogEntry{Name: svc.Name, Type: svc.Type, EndpointsLinks: []any{}, Endpoints: []catalogEndpoint{}}
		for _, ep := range svc.Endpoints {
			m := catalogEndpoint{"publicURL": ep.PublicURL, "region": "default"}
			if ep.VersionID != "" {
				m["versionId"] = ep.VersionID
			}
			if ep.Region != "" {
				m["region"] = ep.Region
			}
			e.Endpoints = append(e.Endpoints, m)
		}
		out = append(out, e)
	}
	return out
}

// realName is the lineage's "realname": the display name, or first and last
// name, or the username.
func realName(u *identity.User) string {
	if u.DisplayName != "" {
		return u.DisplayName
	}
	if n := strings.TrimSpace(u.FirstName + " " + u.LastName); n != "" {
		return n
	}
	return u.Username
}

// roles are the groups of a user, as the lineage listed them.
func (s *Server) roles(u *identity.User) []map[string]string {
	out := []map[string]string{}
	for _, g := range s.id.Groups() {
		if slices.Contains(g.Members, u.UUID) {
			out = append(out, map[string]string{"id": g.Name, "name": g.Name})
		}
	}
	return out
}

func rfc3339(t time.Time) any {
	if t.IsZero() {
		return nil
	}
	return t.UTC().Format(time.RFC3339Nano)
}

func (s *Server) tokenAccess(secret string, p identity.Principal) map[string]any {
	u := p.User
	return map[string]any{
		"id":      secret,
		"expires": rfc3339(p.Token.Expires),
		"tenant":  map[string]string{"id": u.UUID, "name": realName(u)},
	}
}

func (s *Server) astTokens(c *call) error {
	body, err := readBody(c.r, c.s.opts.MaxBody)
	if err != nil {
		return err
	}
	if len(bytes.TrimSpace(body)) == 0 {
		return c.json(http.StatusOK, map[string]any{"access": map[string]any{"serviceCatalog": c.serviceCatalog()}})
	}
	root, err := parseObject(body)
	if err != nil {
		return err
	}
	authRaw, ok := root["auth"]
	if !ok || isNull(authRaw) {
		return badRequest("Malformed request: missing credentials")
	}
	auth, err := parseObject(authRaw)
	if err != nil {
		return badRequest("Malformed request: \"auth\" must be an object")
	}
	var secret, uuid string
	var haveUUID bool
	if tokRaw, ok := auth["token"]; ok {
		tok, err := parseObject(tokRaw)
		if err != nil {
			return badRequest("Malformed request: \"auth.token\" must be an object")
		}
		idRaw, ok := tok["id"]
		if !ok {
			return badRequest("Malformed request: missing credentials")
		}
		if isNull(idRaw) {
			return badRequest("Malformed request: missing token")
		}
		if secret, ok = rawString(idRaw); !ok {
			return badRequest("Malformed request: \"auth.token.id\" must be a string")
		}
	} else if pcRaw, ok := auth["passwordCredentials"]; ok {
		pc, err := parseObject(pcRaw)
		if err != nil {
			return badRequest("Malformed request: \"auth.passwordCredentials\" must be an object")
		}
		pw, okP := pc["password"]
		un, okU := pc["username"]
		if !okP || !okU {
			return badRequest("Malformed request: missing credentials")
		}
		if isNull(pw) {
			return badRequest("Malformed request: missing token")
		}
		if secret, ok = rawString(pw); !ok {
			return badRequest("Malformed request: \"auth.passwordCredentials.password\" must be a string")
		}
		if uuid, ok = rawString(un); !ok {
			return badRequest("Malformed request: \"auth.passwordCredentials.username\" must be a string")
		}
		haveUUID = true
	} else {
		return badRequest("Malformed request: missing credentials")
	}
	var tenant string
	if tRaw, ok := auth["tenantName"]; ok && !isNull(tRaw) {
		if tenant, ok = rawString(tRaw); !ok {
			return badRequest("Malformed request: \"auth.tenantName\" must be a string")
		}
	}
	p, err := c.s.id.Authenticate(secret)
	if err != nil {
		c.s.metrics.authFailed(identity.AuthFailure(err))
	}
	if err != nil || p.User == nil {
		return newFault(http.StatusUnauthorized, "Invalid token")
	}
	u := p.User
	if haveUUID && u.UUID != uuid {
		return newFault(http.StatusUnauthorized, "Invalid credentials")
	}
	if tenant != "" && tenant != u.UUID {
		return badRequest("Not conforming tenantName")
	}
	projects := []string{}
	for _, pr := range c.s.id.ProjectsOf(u.UUID) {
		projects = append(projects, pr.UUID)
	}
	return c.json(http.StatusOK, map[string]any{"access": map[string]any{
		"token": c.s.tokenAccess(secret, p),
		"user": map[string]any{"id": u.UUID, "name": realName(u), "roles": c.s.roles(u),
			"roles_links": []any{}, "projects": projects},
		"serviceCatalog": c.serviceCatalog(),
	}})
}

func (s *Server) astValidateToken(c *call) error {
	secret := c.r.PathValue("token")
	p, err := s.id.Authenticate(secret)
	if err != nil || p.User == nil {
		return newFault(http.StatusNotFound, "Invalid token")
	}
	u := p.User
	if q := c.r.URL.Query(); q.Has("belongsTo") && q.Get("belongsTo") != u.UUID {
		return newFault(http.StatusNotFound, "The specified tenant is outside the token's scope")
	}
	return c.json(http.StatusOK, map[string]any{"access": map[string]any{
		"token": s.tokenAccess(secret, p),
		"user": map[string]any{"id": u.UUID, "name": realName(u), "roles": s.roles(u),
			"roles_links": []any{}},
	}})
}

// ---------------------------------------------------------------------------
// Resources, services.

func (s *Server) astResources(c *call) error {
	out := make(map[string]any)
	for _, r := range s.id.Resources() {
		var unit any
		if r.Unit != "" {
			unit = r.Unit
		}
		out[r.Name] = map[string]any{"unit": unit, "description": r.Description, "service": r.Service,
			"allow_in_projects": r.AllowInProjects}
	}
	return c.json(http.StatusOK, out)
}

func (s *Server) astGetServices(c *call) error {
	out := []map[string]any{}
	for i, svc := range s.id.Services() {
		u := ""
		if len(svc.Endpoints) > 0 {
			u = svc.Endpoints[0].PublicURL
		}
		out = append(out, map[string]any{"id": strconv.Itoa(i + 1), "name": svc.Name, "type": svc.Type, "url": u})
	}
	return c.json(http.StatusOK, out)
}

// ---------------------------------------------------------------------------
// Quotas.

type quotaEntry struct {
	Limit          int64 `json:"limit"`
	Usage          int64 `json:"usage"`
	Pending        int64 `json:"pending"`
	ProjectLimit   int64 `json:"project_limit"`
	ProjectUsage   int64 `json:"project_usage"`
	ProjectPending int64 `json:"project_pending"`
}

type projectQuota struct {
	ProjectLimit   int64 `json:"project_limit"`
	ProjectUsage   int64 `json:"project_usage"`
	ProjectPending int64 `json:"project_pending"`
}

const (
	userPrefix    = "user:"
	projectPrefix = "project:"
)

func (s *Server) projectQuota(project, resource string) projectQuota {
	v, _ := s.l.Holding(holdings.Key{Holder: projectPrefix + project, Source: holdings.NullSource, Resource: resource})
	return projectQuota{ProjectLimit: v.Limit, ProjectUsage: v.Usage(), ProjectPending: v.Pending()}
}

func entry(v holdings.Value, pq projectQuota) quotaEntry {
	return quotaEntry{Limit: v.Limit, Usage: v.Usage(), Pending: v.Pending(),
		ProjectLimit: pq.ProjectLimit, ProjectUsage: pq.ProjectUsage, ProjectPending: pq.ProjectPending}
}

func (s *Server) astQuotas(c *call) error {
	u := c.p.User
	resources := s.id.Resources()
	out := make(map[string]map[string]quotaEntry)
	for _, p := range s.id.ProjectsOf(u.UUID) {
		src := holdings.SourceOf(projectPrefix + p.UUID)
		m := make(map[string]quotaEntry)
		for _, r := range resources {
			v, ok := s.l.Holding(holdings.Key{Holder: u.Holder(), Source: src, Resource: r.Name})
			if !ok {
				continue
			}
			m[r.Name] = entry(v, s.projectQuota(p.UUID, r.Name))
		}
		out[p.UUID] = m
	}
	return c.json(http.StatusOK, out)
}

// listParam splits the comma-separated values of a query parameter (it may
// also be repeated).
func listParam(q url.Values, name string) []string {
	var out []string
	for _, v := range q[name] {
		for _, x := range strings.Split(v, ",") {
			if x = strings.TrimSpace(x); x != "" {
				out = append(out, x)
			}
		}
	}
	return out
}

func (s *Server) astServiceQuotas(c *call) error {
	q := c.r.URL.Query()
	users := listParam(q, "user")
	projects := listParam(q, "project")
	served := s.id.ServedResources(c.p.Service.Name)
	out := make(map[string]map[string]map[string]quotaEntry)
	if len(served) > 0 {
		f := ledger.QuotaFilter{Resources: served}
		for _, u := range users {
			f.Holders = append(f.Holders, userPrefix+u)
		}
		for _, p := range projects {
			f.Sources = append(f.Sources, holdings.SourceOf(projectPrefix+p))
		}
		for _, h := range s.l.Quotas(f) {
			uuid, ok := strings.CutPrefix(h.Holder, userPrefix)
			if !ok || h.Source.IsNull() {
				continue
			}
			src, isProject := strings.CutPrefix(h.Source.Name(), projectPrefix)
			var pq projectQuota
			if isProject {
				pq = s.projectQuota(src, h.Resource)
			}
			if out[uuid] == nil {
				out[uuid] = make(map[string]map[string]quotaEntry)
			}
			if out[uuid][src] == nil {
				out[uuid][src] = make(map[string]quotaEntry)
			}
			out[uuid][src][h.Resource] = entry(h.Value, pq)
		}
	}
	for _, u := range users {
		if _, ok := out[u]; !ok {
			return newFault(http.StatusNotFound, fmt.Sprintf("No such user '%s'", u))
		}
	}
	return c.json(http.StatusOK, out)
}

func (s *Server) astServiceProjectQuotas(c *call) error {
	projects := listParam(c.r.URL.Query(), "project")
	served := s.id.ServedResources(c.p.Service.Name)
	out := make(map[string]map[string]projectQuota)
	if len(served) > 0 {
		f := ledger.QuotaFilter{Resources: served, Sources: []holdings.Source{holdings.NullSource}}
		for _, p := range projects {
			f.Holders = append(f.Holders, projectPrefix+p)
		}
		for _, h := range s.l.Quotas(f) {
			p, ok := strings.CutPrefix(h.Holder, projectPrefix)
			if !ok {
				continue
			}
			if out[p] == nil {
				out[p] = make(map[string]projectQuota)
			}
			out[p][h.Resource] = projectQuota{ProjectLimit: h.Limit, ProjectUsage: h.Usage(), ProjectPending: h.Pending()}
		}
	}
	for _, p := range projects {
		if _, ok := out[p]; !ok {
			return newFault(http.StatusNotFound, fmt.Sprintf("No such project '%s'", p))
		}
	}
	return c.json(http.StatusOK, out)
}

// ---------------------------------------------------------------------------
// Commissions.

// maxTTL bounds the ttl of a commission (ten years, in seconds).
const maxTTL = 10 * 366 * 24 * 3600

// maxSerials bounds the serials of one resolve-many call.
const maxSerials = 10000

// parseIssue reads an issue body into a request (Client left unset).
func (s *Server) parseIssue(body []byte, headerKey string) (ledger.IssueRequest, error) {
	var req ledger.IssueRequest
	m, err := parseObject(body)
	if err != nil {
		return req, err
	}
	praw, ok := m["provisions"]
	if !ok || isNull(praw) {
		return req, badRequest("Provisions are missing.")
	}
	if praw[0] != '[' {
		return req, badRequest("Provisions should be a list.")
	}
	var list []json.RawMessage
	if err := json.Unmarshal(praw, &list); err != nil {
		return req, badRequest("Provisions should be a list.")
	}
	req.Provisions = make([]holdings.Provision, 0, len(list))
	for i, raw := range list {
		p, err := parseProvision(raw)
		if err != nil {
			return req, badRequest("Malformed provision %d: %s", i, err)
		}
		req.Provisions = append(req.Provisions, p)
	}
	var ie *holdings.InvalidError
	if err := s.limits.ValidateProvisions(req.Provisions); errors.As(err, &ie) {
		switch ie.Problem {
		case holdings.TooMany:
			return req, badRequest("a commission has at most %d provisions; this one has %d", ie.Max, len(list))
		case holdings.Empty:
			return req, badRequest("Malformed provision %d: %q must not be empty", ie.Provision, ie.Part)
		case holdings.TooLong:
			return req, badRequest("Malformed provision %d: %q is longer than %d bytes", ie.Provision, ie.Part, ie.Max)
		}
		return req, badRequest("Malformed provision %d: %q must be valid UTF-8", ie.Provision, ie.Part)
	}
	if raw, ok := m["force"]; ok {
		if req.Force, ok = rawBool(raw); !ok {
			return req, badRequest(`"force" option should be a boolean.`)
		}
	}
	if raw, ok := m["auto_accept"]; ok {
		if req.AutoAccept, ok = rawBool(raw); !ok {
			return req, badRequest(`"auto_accept" option should be a boolean.`)
		}
	}
	if raw, ok := m["name"]; ok {
		if req.Name, ok = rawString(raw); !ok {
			return req, badRequest("Commission name should be a string.")
		}
		if len(req.Name) > s.opts.MaxNameLen {
			return req, badRequest("Commission name is longer than %d bytes.", s.opts.MaxNameLen)
		}
	}
	if raw, ok := m["ttl"]; ok && !isNull(raw) {
		ttl, err := rawInt(raw)
		switch {
		case err != nil:
			return req, badRequest(`"ttl" should be an integer number of seconds: %s %v`, raw, err)
		case ttl < 0:
			return req, badRequest(`"ttl" must not be negative`)
		case ttl > maxTTL:
			return req, badRequest(`"ttl" is at most %d seconds`, maxTTL)
		}
		req.TTL = time.Duration(ttl) * time.Second
	}
	if raw, ok := m["idempotency_key"]; ok && !isNull(raw) {
		if req.IdempotencyKey, ok = rawString(raw); !ok {
			return req, badRequest(`"idempotency_key" should be a string.`)
		}
	}
	if headerKey != "" {
		if req.IdempotencyKey != "" && req.IdempotencyKey != headerKey {
			return req, badRequest("the Idempotency-Key header and the idempotency_key field differ")
		}
		req.IdempotencyKey = headerKey
	}
	if !utf8.ValidString(req.IdempotencyKey) {
		return req, badRequest("the idempotency key is not valid UTF-8")
	}
	if len(req.IdempotencyKey) > s.opts.MaxNameLen {
		return req, badRequest("the idempotency key is longer than %d bytes", s.opts.MaxNameLen)
	}
	return req, nil
}

func parseProvision(raw json.RawMessage) (holdings.Provision, error) {
	var p holdings.Provision
	if raw[0] != '{' {
		return p, errors.New("a provision is an object {holder, source, resource, quantity}")
	}
	m, err := parseObject(raw)
	if err != nil {
		return p, err
	}
	str := func(name string) (string, error) {
		raw, ok := m[name]
		if !ok {
			return "", fmt.Errorf("%q is missing", name)
		}
		v, ok := rawString(raw)
		if !ok {
			return "", fmt.Errorf("%q should be a string", name)
		}
		return v, nil
	}
	if p.Key.Holder, err = str("holder"); err != nil {
		return p, err
	}
	if p.Key.Resource, err = str("resource"); err != nil {
		return p, err
	}
	src, ok := m["source"]
	switch {
	case !ok:
		return p, errors.New(`"source" is missing (it may be null)`)
	case isNull(src):
		p.Key.Source = holdings.NullSource
	default:
		name, ok := rawString(src)
		if !ok {
			return p, errors.New(`"source" should be a string or null`)
		}
		p.Key.Source = holdings.SourceOf(name)
	}
	q, ok := m["quantity"]
	if !ok {
		return p, errors.New(`"quantity" is missing`)
	}
	if p.Quantity, err = rawInt(q); err != nil {
		return p, fmt.Errorf(`"quantity" %s %v`, q, err)
	}
	if p.Quantity == math.MinInt64 {
		return p, fmt.Errorf(`"quantity" %s %v`, q, errRange)
	}
	return p, nil
}

func (s *Server) astIssue(c *call) error {
	body, err := readBody(c.r, s.opts.MaxBody)
	if err != nil {
		return err
	}
	req, err := s.parseIssue(body, strings.TrimSpace(c.r.Header.Get("Idempotency-Key")))
	if err != nil {
		return err
	}
	req.Client = c.p.Service.Name
	res, err := s.l.Issue(c.r.Context(), req)
	if err != nil {
		if errors.Is(err, ledger.ErrIdempotencyConflict) {
			return newFault(http.StatusConflict, "the idempotency key was used with another request")
		}
		return commissionFault(err)
	}
	return c.json(http.StatusCreated, map[string]uint64{"serial": res.Serial})
}

func (s *Server) astPending(c *call) error {
	return c.json(http.StatusOK, s.l.Pending(c.p.Service.Name))
}

// pathSerial reads the {serial} of the path; ok is false for a serial that
// can name no commission (zero or negative).
func pathSerial(c *call) (serial uint64, ok bool, err error) {
	raw := c.r.PathValue("serial")
	v, err := strconv.ParseInt(raw, 10, 64)
	if err != nil {
		if errors.Is(err, strconv.ErrRange) {
			return 0, false, nil // an integer, but no serial
		}
		return 0, false, badRequest("Serial should be an integer.")
	}
	if v <= 0 {
		return 0, false, nil
	}
	return uint64(v), true, nil
}

func serialNotFound(raw string) *Fault {
	return newFault(http.StatusNotFound, fmt.Sprintf("serial %s does not exist", raw))
}

func (s *Server) astCommission(c *call) error {
	serial, ok, err := pathSerial(c)
	if err != nil {
		return err
	}
	if !ok {
		return serialNotFound(c.r.PathValue("serial"))
	}
	cm, err := s.l.Commission(c.p.Service.Name, serial)
	if errors.Is(err, ledger.ErrNotFound) {
		return serialNotFound(c.r.PathValue("serial"))
	}
	if err != nil {
		return err
	}
	ps := make([]map[string]any, len(cm.Provisions))
	for i, p := range cm.Provisions {
		ps[i] = provisionData(p)
	}
	return c.json(http.StatusOK, map[string]any{"serial": cm.Serial, "name": cm.Name,
		"issue_time": cm.IssueTime.UTC().Format(time.RFC3339Nano), "provisions": ps})
}

// reasonOf reads the optional "reason" of a resolve body.
func (c *call) reasonOf(m map[string]json.RawMessage) (string, error) {
	raw, ok := m["reason"]
	if !ok || isNull(raw) {
		return "", nil
	}
	r, ok := rawString(raw)
	if !ok {
		return "", badRequest(`"reason" should be a string.`)
	}
	if err := c.checkName(`"reason"`, r); err != nil {
		return "", err
	}
	return r, nil
}

func (s *Server) astAction(c *call) error {
	m, err := c.jsonObject()
	if err != nil {
		return err
	}
	serial, ok, err := pathSerial(c)
	if err != nil {
		return err
	}
	_, accept := m["accept"]
	_, reject := m["reject"]
	if accept == reject {
		return badRequest("Specify either accept or reject action.")
	}
	reason, err := c.reasonOf(m)
	if err != nil {
		return err
	}
	if !ok {
		return serialNotFound(c.r.PathValue("serial"))
	}
	err = s.l.Resolve(c.r.Context(), c.p.Service.Name, serial, accept, reason)
	if errors.Is(err, ledger.ErrNotFound) {
		return serialNotFound(c.r.PathValue("serial"))
	}
	if err != nil {
		return err
	}
	return c.writeEmpty(http.StatusOK)
}

// serialList reads the "accept" or "reject" list of a resolve-many body.
func serialList(m map[string]json.RawMessage, name string) ([]int64, error) {
	raw, ok := m[name]
	if !ok {
		return nil, nil
	}
	if raw[0] != '[' {
		return nil, badRequest(`"accept" and "reject" should reference lists of serials.`)
	}
	var items []json.RawMessage
	if err := json.Unmarshal(raw, &items); err != nil {
		return nil, badRequest(`"accept" and "reject" should reference lists of serials.`)
	}
	out := make([]int64, len(items))
	for i, it := range items {
		v, err := rawInt(it)
		if err != nil {
			if errors.Is(err, errRange) {
				return nil, badRequest("Serials should be integer: %s %v", it, err)
			}
			return nil, badRequest("Serials should be integer.")
		}
		out[i] = v
	}
	return out, nil
}

func faultPair(serial int64, f *Fault) []any {
	return []any{serial, map[string]*Fault{f.Kind: f}}
}

func (s *Server) astResolveMany(c *call) error {
	m, err := c.jsonObject()
	if err != nil {
		return err
	}
	accept, err := serialList(m, "accept")
	if err != nil {
		return err
	}
	reject, err := serialList(m, "reject")
	if err != nil {
		return err
	}
	if len(accept)+len(reject) > maxSerials {
		return badRequest("at most %d serials may be resolved at once", maxSerials)
	}
	reason, err := c.reasonOf(m)
	if err != nil {
		return err
	}
	// Serials that can name no commission (zero, negative) are settled
	// here, the ledger's way: in both lists they conflict, else not found.
	var acc, rej []uint64
	var badAcc, badRej []int64
	for _, v := range accept {
		if v > 0 {
			acc = append(acc, uint64(v))
		} else if !slices.Contains(badAcc, v) {
			badAcc = append(badAcc, v)
		}
	}
	for _, v := range reject {
		if v > 0 {
			rej = append(rej, uint64(v))
		} else if !slices.Contains(badRej, v) {
			badRej = append(badRej, v)
		}
	}
	res, err := s.l.ResolveMany(c.r.Context(), c.p.Service.Name, acc, rej, reason)
	if err != nil {
		return err
	}
	failed := [][]any{}
	notFound := func(v int64) {
		failed = append(failed, faultPair(v, serialNotFound(strconv.FormatInt(v, 10))))
	}
	conflicting := func(v int64) {
		failed = append(failed, faultPair(v, badRequest("cannot both accept and reject serial %d", v)))
	}
	for _, v := range res.NotFound {
		notFound(int64(v))
	}
	for _, v := range badAcc {
		if !slices.Contains(badRej, v) {
			notFound(v)
		}
	}
	for _, v := range badRej {
		if !slices.Contains(badAcc, v) {
			notFound(v)
		}
	}
	for _, v := range res.Conflicting {
		conflicting(int64(v))
	}
	for _, v := range badAcc {
		if slices.Contains(badRej, v) {
			conflicting(v)
		}
	}
	accepted, rejected := res.Accepted, res.Rejected
	if accepted == nil {
		accepted = []uint64{}
	}
	if rejected == nil {
		rejected = []uint64{}
	}
	return c.json(http.StatusOK, map[string]any{"accepted": accepted, "rejected": rejected, "failed": failed})
}

// ---------------------------------------------------------------------------
// Catalogs, user info, feedback.

// catalogList reads "uuids" or "displaynames": missing is an empty list,
// null is every user for services (nil) and an empty list for users.
func catalogList(m map[string]json.RawMessage, name string, userCall bool) ([]string, error) {
	raw, ok := m[name]
	if !ok {
		return []string{}, nil
	}
	if isNull(raw) {
		if userCall {
			return []string{}, nil
		}
		return nil, nil
	}
	if raw[0] != '[' {
		return nil, badRequest("%q should be a list of strings", name)
	}
	var items []json.RawMessage
	if err := json.Unmarshal(raw, &items); err != nil {
		return nil, badRequest("%q should be a list of strings", name)
	}
	out := make([]string, 0, len(items))
	for _, it := range items {
		s, ok := rawString(it)
		if !ok {
			return nil, badRequest("%q should be a list of strings", name)
		}
		out = append(out, s)
	}
	return out, nil
}

func (s *Server) astCatalogs(userCall bool) handlerFunc {
	return func(c *call) error {
		m, err := c.jsonObject()
		if err != nil {
			var f *Fault
			if errors.As(err, &f) && f.Code == http.StatusBadRequest {
				return badRequest("Request body should be json formatted: %s", f.Message)
			}
			return err
		}
		uuids, err := catalogList(m, "uuids", userCall)
		if err != nil {
			return err
		}
		names, err := catalogList(m, "displaynames", userCall)
		if err != nil {
			return err
		}
		return c.json(http.StatusOK, map[string]any{
			"uuid_catalog":        s.id.Usernames(uuids),
			"displayname_catalog": s.id.UUIDs(names),
		})
	}
}

func epochMillis(t time.Time) any {
	if t.IsZero() {
		return nil
	}
	return t.UnixMilli()
}

func (s *Server) astAuthenticate(c *call) error {
	u := c.p.User
	info := map[string]any{
		"uuid":               u.UUID,
		"username":           u.Username,
		"displayname":        u.Username,
		"name":               realName(u),
		"email":              []string{u.Username},
		"groups":             s.groupNames(u),
		"auth_token_created": epochMillis(c.p.Token.Created),
		"auth_token_expires": epochMillis(c.p.Token.Expires),
	}
	if v := c.r.URL.Query().Get("usage"); v != "" && v != "0" && !strings.EqualFold(v, "false") {
		usage := []map[string]any{}
		src := holdings.SourceOf(projectPrefix + u.UUID)
		for _, r := range s.id.Resources() {
			h, ok := s.l.Holding(holdings.Key{Holder: u.Holder(), Source: src, Resource: r.Name})
			if !ok {
				continue
			}
			var unit any
			if r.Unit != "" {
				unit = r.Unit
			}
			usage = append(usage, map[string]any{"name": r.Name, "description": r.Description, "unit": unit,
				"maxValue": h.Limit, "currValue": h.Usage()})
		}
		info["usage"] = usage
	}
	return c.json(http.StatusOK, info)
}

func (s *Server) groupNames(u *identity.User) []string {
	out := []string{}
	for _, r := range s.roles(u) {
		out = append(out, r["name"])
	}
	return out
}

// astFeedback reads the form (whatever its Content-Type: the lineage's
// client sends application/octet-stream); identity checks and stores it.
func (s *Server) astFeedback(c *call) error {
	body, err := readBody(c.r, s.opts.MaxBody)
	if err != nil {
		return err
	}
	form, err := url.ParseQuery(string(body))
	if err != nil {
		return badRequest("Invalid data: the body is not a form (feedback_msg=...&feedback_data=...): %v", err)
	}
	if err := s.id.SendFeedback(c.r.Context(), c.p.User.UUID, form.Get("feedback_msg"), form.Get("feedback_data")); err != nil {
		return err
	}
	return c.writeEmpty(http.StatusOK)
}

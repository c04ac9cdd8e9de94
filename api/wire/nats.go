package wire

import "strings"

// The NATS wire (DESIGN.md §12): the service half of the API as the NATS
// micro service "quotaledger". A request is a NATS request on one of the
// subjects below, with the service's token in the header TokenHeader (or
// "Authorization: Bearer <token>"), and the body of the HTTP route it
// mirrors; the answer is that route's answer body. A refusal carries the
// micro error headers (Nats-Service-Error-Code: the cloudFault code, which
// is the HTTP status; Nats-Service-Error: "<kind>: <message>") and the
// cloudFault {"<kind>": {...}} as its body, data included.
//
// Where the HTTP route takes its input in the path or the query, the NATS
// request takes it in the subject (a commission's serial) or in a body of
// its own (QuotasQuery, ProjectQuotasQuery, TokenValidation): a token is a
// secret, and a subject is no place for one.

// NATSService is the micro service's name ($SRV.PING|INFO|STATS.quotaledger).
const NATSService = "quotaledger"

// NATSPrefix is the prefix of every subject of the service: its name and
// the version of its wire. A subject is NATSPrefix + "." + the endpoint's
// suffix, with the serial in place of "*".
const NATSPrefix = "quotaledger.v1"

// The headers of a request.
const (
	// TokenHeader carries the service's token, as over HTTP.
	TokenHeader = "X-Auth-Token"
	// IdempotencyHeader carries an issue's idempotency key, as over HTTP.
	IdempotencyHeader = "Idempotency-Key"
	// RequestIDHeader names a request in the server's log: the caller's,
	// or one the server makes; the answer carries it.
	RequestIDHeader = "X-Request-Id"
)

// NATSEndpoint is an endpoint of the micro service: its name, and its
// subject after the prefix ("*" stands for a commission's serial).
type NATSEndpoint struct {
	Name, Suffix string
}

// The endpoints, and the HTTP route each mirrors.
var (
	// Issue: POST /account/v1.0/commissions; body Commission, answer
	// Issued; IdempotencyHeader as over HTTP.
	NATSIssue = NATSEndpoint{"issue", "commission.issue"}
	// Pending: GET /account/v1.0/commissions; no body, answer [serial, ...].
	NATSPending = NATSEndpoint{"pending", "commission.pending"}
	// Info: GET /account/v1.0/commissions/{serial}; no body, answer
	// CommissionInfo.
	NATSInfo = NATSEndpoint{"info", "commission.info.*"}
	// Action: POST /account/v1.0/commissions/{serial}/action; body
	// CommissionAction, an empty answer.
	NATSAction = NATSEndpoint{"action", "commission.action.*"}
	// Resolve: POST /account/v1.0/commissions/action; body Resolve, answer
	// Resolved.
	NATSResolve = NATSEndpoint{"resolve", "commission.resolve"}
	// ServiceQuotas: GET /account/v1.0/service_quotas; body QuotasQuery
	// (or none), answer user uuid -> Quotas.
	NATSServiceQuotas = NATSEndpoint{"service_quotas", "quotas.service"}
	// ServiceProjectQuotas: GET /account/v1.0/service_project_quotas; body
	// ProjectQuotasQuery (or none), answer ProjectQuotas.
	NATSServiceProjectQuotas = NATSEndpoint{"service_project_quotas", "quotas.project"}
	// ValidateToken: GET /identity/v2.0/tokens/{token}; body
	// TokenValidation, answer TokensAnswer.
	NATSValidateToken = NATSEndpoint{"validate_token", "token.validate"}
	// Catalogs: POST /account/v1.0/service/user_catalogs; body
	// CatalogsRequest, answer Catalogs.
	NATSCatalogs = NATSEndpoint{"user_catalogs", "catalogs"}
)

// NATSEndpoints are every endpoint of the service, in the order of INFO.
var NATSEndpoints = []NATSEndpoint{NATSIssue, NATSPending, NATSInfo, NATSAction, NATSResolve,
	NATSServiceQuotas, NATSServiceProjectQuotas, NATSValidateToken, NATSCatalogs}

// Subject is the endpoint's subject under prefix (NATSPrefix if ""), with
// serial in place of "*" (the subscription's subject, with its wildcard,
// if serial is "").
func (e NATSEndpoint) Subject(prefix, serial string) string {
	if prefix == "" {
		prefix = NATSPrefix
	}
	s := prefix + "." + e.Suffix
	if serial != "" {
		s = strings.Replace(s, "*", serial, 1)
	}
	return s
}

// QuotasQuery is the body of the NATS service quotas: the HTTP route's
// query parameters, each a list of strings read as the query's are
// (comma-separated items, spaces trimmed, empty ones dropped). Left out:
// every user, every project.
type QuotasQuery struct {
	User    []string `json:"user,omitempty"`
	Project []string `json:"project,omitempty"`
}

// ProjectQuotasQuery is the body of the NATS service project quotas: the
// projects (every project if left out), read as QuotasQuery's.
type ProjectQuotasQuery struct {
	Project []string `json:"project,omitempty"`
}

// TokenValidation is the body of the NATS token validation: the user's
// token (the HTTP route's path) and, if given, the uuid of the user it
// must belong to (its belongsTo).
type TokenValidation struct {
	Token     string  `json:"token"`
	BelongsTo *string `json:"belongsTo,omitempty"`
}

package client

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/micro"

	"github.com/quotaledger/quotaledger/api/wire"
)

// ServiceAPI is the service half of the API, the calls a service (compute,
// storage) makes with its token: both wires offer it, HTTP (*Client) and
// NATS (*NATS), with the same arguments, answers and typed errors.
type ServiceAPI interface {
	IssueCommission(ctx context.Context, cm Commission) (int64, error)
	IssueOneCommission(ctx context.Context, holder string, source *string, provisions map[string]int64, o IssueOptions) (int64, error)
	IssueUserProjectCommission(ctx context.Context, user, project string, resources map[string]int64, o IssueOptions) (int64, error)
	GetPendingCommissions(ctx context.Context) ([]int64, error)
	GetCommissionInfo(ctx context.Context, serial int64) (*CommissionInfo, error)
	CommissionAction(ctx context.Context, serial int64, action string) error
	CommissionActionReason(ctx context.Context, serial int64, action, reason string) error
	AcceptCommission(ctx context.Context, serial int64) error
	RejectCommission(ctx context.Context, serial int64) error
	ResolveCommissions(ctx context.Context, accept, reject []int64) (*Resolved, error)
	ResolveCommissionsReason(ctx context.Context, accept, reject []int64, reason string) (*Resolved, error)
	ServiceGetQuotas(ctx context.Context, users []string, project string) (map[string]Quotas, error)
	ServiceGetProjectQuotas(ctx context.Context, projects ...string) (map[string]map[string]ProjectQuota, error)
	ValidateToken(ctx context.Context, userToken, belongsTo string) (*Access, error)
	ServiceGetCatalogs(ctx context.Context, uuids, usernames []string) (*Catalogs, error)
	ServiceGetUsernames(ctx context.Context, uuids []string) (map[string]string, error)
	ServiceGetUsername(ctx context.Context, uuid string) (string, error)
	ServiceGetUUIDs(ctx context.Context, usernames []string) (map[string]string, error)
	ServiceGetUUID(ctx context.Context, username string) (string, error)
}

var (
	_ ServiceAPI = (*Client)(nil)
	_ ServiceAPI = (*NATS)(nil)
)

// NATSOptions configure a NATS client. Zero fields take defaults.
type NATSOptions struct {
	// Prefix is the subjects' prefix of the service (wire.NATSPrefix).
	Prefix string
	// Timeout bounds a call whose context has no deadline (30 s).
	Timeout time.Duration
	// Retries, Backoff, MaxBackoff and SafeRetries are Options': a call
	// that reached no server (no responders) is sent again, and one that
	// may be retried (the reads, an issue with an idempotency key) also
	// after a timeout or a 503; a 4xx is never retried.
	Retries             int
	Backoff, MaxBackoff time.Duration
	SafeRetries         bool
}

// NATS calls the service half of the API over NATS: the micro service
// quotaledger (DESIGN.md §12), on a connection the caller owns. It is safe
// for concurrent use. Its calls are ServiceAPI's, with the same answers and
// the same typed errors as Client's (the cloudFault of a refusal is the
// answer's body; its code the micro error code header). A call that reached
// no instance of the service is an error wrapping nats.ErrNoResponders.
type NATS struct {
	nc    *nats.Conn
	token string
	opts  NATSOptions
}

// NewNATS returns a client of the service on nc that sends token (a
// service's) with every call.
func NewNATS(nc *nats.Conn, token string, opts NATSOptions) *NATS {
	if opts.Prefix == "" {
		opts.Prefix = wire.NATSPrefix
	}
	if opts.Timeout <= 0 {
		opts.Timeout = 30 * time.Second
	}
	o := Options{Backoff: opts.Backoff, MaxBackoff: opts.MaxBackoff}.withBackoff()
	opts.Backoff, opts.MaxBackoff = o.Backoff, o.MaxBackoff
	return &NATS{nc: nc, token: token, opts: opts}
}

// WithToken returns a client on the same connection that sends token
// instead.
func (c *NATS) WithToken(token string) *NATS {
	cc := *c
	cc.token = token
	return &cc
}

// Token returns the token the client sends.
func (c *NATS) Token() string { return c.token }

// natsRequest is one call to send.
type natsRequest struct {
	ep     wire.NATSEndpoint
	serial string // the subject's serial, if the endpoint takes one
	body   any    // sent as JSON unless nil
	// idempotent: may be sent again after a timeout or a 503.
	idempotent bool
	idemKey    string
}

// do sends rq (retrying when allowed) and decodes a success into out
// (unless nil). A refusal is a typed error.
func (c *NATS) do(ctx context.Context, rq *natsRequest, out any) error {
	var data []byte
	if rq.body != nil {
		b, err := json.Marshal(rq.body)
		if err != nil {
			return fmt.Errorf("quotaledger: encoding the request: %w", err)
		}
		data = b
	}
	subject := rq.ep.Subject(c.opts.Prefix, rq.serial)
	token := c.token
	if t, ok := ctx.Value(ctxToken{}).(string); ok {
		token = t
	}
	retryable := rq.idempotent || rq.idemKey != ""
	for attempt := 0; ; attempt++ {
		msg := &nats.Msg{Subject: subject, Data: data, Header: nats.Header{}}
		if token != "" {
			msg.Header[wire.TokenHeader] = []string{token}
		}
		if rq.idemKey != "" {
			msg.Header[wire.IdempotencyHeader] = []string{rq.idemKey}
		}
		cctx, cancel := ctx, context.CancelFunc(func() {})
		if _, ok := ctx.Deadline(); !ok {
			cctx, cancel = context.WithTimeout(ctx, c.opts.Timeout)
		}
		reply, err := c.nc.RequestMsgWithContext(cctx, msg)
		cancel()
		if err != nil {
			if ctx.Err() != nil {
				return fmt.Errorf("quotaledger: %s: %w", subject, ctx.Err())
			}
			// No responders: no instance took it, so any call may go again.
			// A timeout: it may have been applied, so only a retryable one.
			if attempt < c.opts.Retries && (retryable || errors.Is(err, nats.ErrNoResponders)) {
				if werr := backoff(ctx, c.opts.Backoff, c.opts.MaxBackoff, attempt, 0); werr != nil {
					return werr
				}
				continue
			}
			return fmt.Errorf("quotaledger: %s: %w", subject, err)
		}
		if code := reply.Header.Get(micro.ErrorCodeHeader); code != "" {
			err := natsError(code, reply)
			if StatusOf(err) == 503 && retryable && attempt < c.opts.Retries {
				if werr := backoff(ctx, c.opts.Backoff, c.opts.MaxBackoff, attempt, 0); werr != nil {
					return werr
				}
				continue
			}
			return err
		}
		if out != nil {
			if err := decode(reply.Data, out); err != nil {
				return invalidResponse(200, reply.Data, reply.Header.Get(wire.RequestIDHeader), err)
			}
		}
		return nil
	}
}

// natsError makes the typed error of a refusal: the cloudFault of its
// body, with the status of its error code.
func natsError(code string, reply *nats.Msg) error {
	status, _ := strconv.Atoi(code)
	id := reply.Header.Get(wire.RequestIDHeader)
	kind, f, ok := parseFault(reply.Data)
	var e *Error
	if ok {
		e = faultError(status, kind, f)
	} else {
		e = &Error{Status: status, Message: reply.Header.Get(micro.ErrorHeader)}
		if e.Message == "" {
			e.Message = strings.TrimSpace(string(snippet(reply.Data)))
		}
	}
	e.RequestID = id
	return typed(e)
}

// IssueCommission issues a commission (Client.IssueCommission).
func (c *NATS) IssueCommission(ctx context.Context, cm Commission) (int64, error) {
	cm, key := c.keyed(cm)
	var out wire.Issued
	if err := c.do(ctx, &natsRequest{ep: wire.NATSIssue, body: cm, idemKey: key}, &out); err != nil {
		return 0, err
	}
	if out.Serial <= 0 {
		return 0, invalidResponse(200, nil, "", errors.New("no serial"))
	}
	return out.Serial, nil
}

// keyed makes an issue's body and idempotency key, as Client sends them.
func (c *NATS) keyed(cm Commission) (Commission, string) {
	return issueBody(cm, c.opts.SafeRetries)
}

// IssueOneCommission is Client.IssueOneCommission.
func (c *NATS) IssueOneCommission(ctx context.Context, holder string, source *string, provisions map[string]int64, o IssueOptions) (int64, error) {
	return c.IssueCommission(ctx, o.commission(oneHolderProvisions(holder, source, provisions)))
}

// IssueUserProjectCommission is Client.IssueUserProjectCommission.
func (c *NATS) IssueUserProjectCommission(ctx context.Context, user, project string, resources map[string]int64, o IssueOptions) (int64, error) {
	return c.IssueCommission(ctx, o.commission(UserProjectProvisions(user, project, resources)))
}

// GetPendingCommissions is Client.GetPendingCommissions.
func (c *NATS) GetPendingCommissions(ctx context.Context) ([]int64, error) {
	var out []int64
	if err := c.do(ctx, &natsRequest{ep: wire.NATSPending, idempotent: true}, &out); err != nil {
		return nil, err
	}
	if out == nil {
		out = []int64{}
	}
	return out, nil
}

// GetCommissionInfo is Client.GetCommissionInfo.
func (c *NATS) GetCommissionInfo(ctx context.Context, serial int64) (*CommissionInfo, error) {
	var out CommissionInfo
	if err := c.do(ctx, &natsRequest{ep: wire.NATSInfo, serial: strconv.FormatInt(serial, 10), idempotent: true}, &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// CommissionAction is Client.CommissionAction.
func (c *NATS) CommissionAction(ctx context.Context, serial int64, action string) error {
	return c.CommissionActionReason(ctx, serial, action, "")
}

// CommissionActionReason is Client.CommissionActionReason.
func (c *NATS) CommissionActionReason(ctx context.Context, serial int64, action, reason string) error {
	body, err := actionBody(action, reason)
	if err != nil {
		return err
	}
	return c.do(ctx, &natsRequest{ep: wire.NATSAction, serial: strconv.FormatInt(serial, 10), body: body}, nil)
}

// AcceptCommission is Client.AcceptCommission.
func (c *NATS) AcceptCommission(ctx context.Context, serial int64) error {
	return c.CommissionAction(ctx, serial, ActionAccept)
}

// RejectCommission is Client.RejectCommission.
func (c *NATS) RejectCommission(ctx context.Context, serial int64) error {
	return c.CommissionAction(ctx, serial, ActionReject)
}

// ResolveCommissions is Client.ResolveCommissions.
func (c *NATS) ResolveCommissions(ctx context.Context, accept, reject []int64) (*Resolved, error) {
	return c.ResolveCommissionsReason(ctx, accept, reject, "")
}

// ResolveCommissionsReason is Client.ResolveCommissionsReason.
func (c *NATS) ResolveCommissionsReason(ctx context.Context, accept, reject []int64, reason string) (*Resolved, error) {
	var out wire.Resolved
	if err := c.do(ctx, &natsRequest{ep: wire.NATSResolve, body: resolveBody(accept, reject, reason)}, &out); err != nil {
		return nil, err
	}
	return resolvedOf(&out), nil
}

// ServiceGetQuotas is Client.ServiceGetQuotas.
func (c *NATS) ServiceGetQuotas(ctx context.Context, users []string, project string) (map[string]Quotas, error) {
	q := wire.QuotasQuery{User: users}
	if project != "" {
		q.Project = []string{project}
	}
	var out map[string]Quotas
	if err := c.do(ctx, &natsRequest{ep: wire.NATSServiceQuotas, body: q, idempotent: true}, &out); err != nil {
		return nil, err
	}
	return out, nil
}

// ServiceGetProjectQuotas is Client.ServiceGetProjectQuotas.
func (c *NATS) ServiceGetProjectQuotas(ctx context.Context, projects ...string) (map[string]map[string]ProjectQuota, error) {
	var out map[string]map[string]ProjectQuota
	if err := c.do(ctx, &natsRequest{ep: wire.NATSServiceProjectQuotas, body: wire.ProjectQuotasQuery{Project: projects},
		idempotent: true}, &out); err != nil {
		return nil, err
	}
	return out, nil
}

// ValidateToken is Client.ValidateToken: belongsTo "" checks no owner.
func (c *NATS) ValidateToken(ctx context.Context, userToken, belongsTo string) (*Access, error) {
	body := wire.TokenValidation{Token: userToken}
	if belongsTo != "" {
		body.BelongsTo = &belongsTo
	}
	var out wire.TokensAnswer
	if err := c.do(ctx, &natsRequest{ep: wire.NATSValidateToken, body: body, idempotent: true}, &out); err != nil {
		return nil, err
	}
	return &out.Access, nil
}

// ServiceGetCatalogs is Client.ServiceGetCatalogs.
func (c *NATS) ServiceGetCatalogs(ctx context.Context, uuids, usernames []string) (*Catalogs, error) {
	var out Catalogs
	if err := c.do(ctx, &natsRequest{ep: wire.NATSCatalogs, body: wire.CatalogsRequest{UUIDs: uuids, DisplayNames: usernames},
		idempotent: true}, &out); err != nil {
		return nil, err
	}
	return catalogsOf(out), nil
}

// ServiceGetUsernames is Client.ServiceGetUsernames.
func (c *NATS) ServiceGetUsernames(ctx context.Context, uuids []string) (map[string]string, error) {
	cat, err := c.ServiceGetCatalogs(ctx, orEmpty(uuids), []string{})
	if err != nil {
		return nil, err
	}
	return cat.UUIDCatalog, nil
}

// ServiceGetUsername is Client.ServiceGetUsername.
func (c *NATS) ServiceGetUsername(ctx context.Context, uuid string) (string, error) {
	m, err := c.ServiceGetUsernames(ctx, []string{uuid})
	return oneName(m, uuid, err)
}

// ServiceGetUUIDs is Client.ServiceGetUUIDs.
func (c *NATS) ServiceGetUUIDs(ctx context.Context, usernames []string) (map[string]string, error) {
	cat, err := c.ServiceGetCatalogs(ctx, []string{}, orEmpty(usernames))
	if err != nil {
		return nil, err
	}
	return cat.DisplayNameCatalog, nil
}

// ServiceGetUUID is Client.ServiceGetUUID.
func (c *NATS) ServiceGetUUID(ctx context.Context, username string) (string, error) {
	m, err := c.ServiceGetUUIDs(ctx, []string{username})
	return oneUUID(m, username, err)
}

package api

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"reflect"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
	"unicode/utf8"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/micro"

	"github.com/quotaledger/quotaledger/api/wire"
	"github.com/quotaledger/quotaledger/identity"
)

// The service half of the API as a NATS micro service (DESIGN.md §12,
// api/wire/nats.go): the same calls as the Astakos service routes, with
// their bodies, their checks and their answers, over NATS request-reply.
// Each endpoint mirrors one HTTP route of the table and takes from it who
// may call it and what it does; the work is the functions both wires call
// (astakos_commissions.go, astakos_quotas.go, ...). docs/api.md describes
// the wire.

// NATSOptions configure the micro service. Zero fields take defaults.
type NATSOptions struct {
	// Prefix is the subjects' prefix (wire.NATSPrefix).
	Prefix string
	// QueueGroup is the endpoints' queue group (micro's, "q"): every
	// instance of the service on the same NATS (every node of a cluster)
	// takes a share of the requests.
	QueueGroup string
	// MaxInFlight bounds the writes (issue, action, resolve) being applied
	// at once (4096). A write waits for its batch to be durable, so writes
	// are answered off the endpoint's subscription, each in a goroutine of
	// its own; past the bound the subscription waits, and NATS holds the
	// requests that come meanwhile.
	MaxInFlight int
	// Forward is a hook to send writes elsewhere. A server that is a node
	// of a cluster (Options.Cluster) needs none: while it follows, it
	// forwards the writes to the leader itself (nats_cluster.go), unless
	// Forward is set, which then replaces that. When set, it is called for
	// each write, once its token is checked, with the endpoint's name and
	// the request: a message it returns is the answer, relayed as it is (a
	// follower forwards the request to the leader and returns the leader's
	// answer); (nil, nil) lets this node apply the write; an error is
	// answered as a fault through the fault table (a node that cannot
	// write and cannot forward returns a failure.Unavailable error, such
	// as the cluster's ledger.ErrNotLeader: 503 serviceUnavailable, which
	// the client retries for the calls it may retry).
	Forward func(ctx context.Context, endpoint string, req *nats.Msg) (*nats.Msg, error)
}

func (o NATSOptions) withDefaults() NATSOptions {
	if o.Prefix == "" {
		o.Prefix = wire.NATSPrefix
	}
	if o.MaxInFlight <= 0 {
		o.MaxInFlight = 4096
	}
	return o
}

// NATSService is the micro service running on a connection (ServeNATS).
type NATSService struct {
	s    *Server
	nc   *nats.Conn
	svc  micro.Service
	opts NATSOptions
	eps  []*natsEndpoint

	// The calls being answered, which Stop waits for: a call takes its
	// place under mu's read lock unless closed.
	mu       sync.RWMutex
	closed   bool
	inflight sync.WaitGroup
	writes   chan struct{} // a place per write in flight (MaxInFlight)
}

// natsEndpoint is an endpoint of the service: the HTTP route it mirrors,
// and how it reads its request and answers.
type natsEndpoint struct {
	wire.NATSEndpoint
	route *Route
	// write: answered once the ledger made the change durable, off the
	// subscription's goroutine.
	write bool
	// request and answer are the types of the bodies (for INFO); request
	// nil is none.
	request, answer any
	// handle does the call and returns the answer's body (nil: empty).
	handle  func(s *Server, c *natsCall) ([]byte, error)
	metrics *routeMetrics
	stats   natsStats
}

// natsCall is one request being answered.
type natsCall struct {
	ctx    context.Context
	p      identity.Principal
	header nats.Header
	serial string // the subject's wildcard, for info and action
	body   []byte
}

// natsStats are an endpoint's own figures, in the data of $SRV.STATS:
// micro counts a write when it is handed off, not when it is answered.
type natsStats struct {
	answered, errors, inFlight, nanos atomic.Int64
}

// natsStatsData is an endpoint's data in $SRV.STATS.
type natsStatsData struct {
	Answered              int64         `json:"answered"`
	Errors                int64         `json:"errors"`
	InFlight              int64         `json:"in_flight"`
	ProcessingTime        time.Duration `json:"processing_time"`
	AverageProcessingTime time.Duration `json:"average_processing_time"`
}

// natsEndpoints are the endpoints, each with the route of the table it
// mirrors.
func (s *Server) natsEndpoints() ([]*natsEndpoint, error) {
	const acc = "/account/v1.0/"
	eps := []*natsEndpoint{
		{NATSEndpoint: wire.NATSIssue, write: true, handle: natsIssue},
		{NATSEndpoint: wire.NATSPending, handle: func(s *Server, c *natsCall) ([]byte, error) {
			return s.appendPending(nil, c.p.Service.Name), nil
		}},
		{NATSEndpoint: wire.NATSInfo, handle: func(s *Server, c *natsCall) ([]byte, error) {
			return answerJSON(s.commissionInfo(c.p.Service.Name, c.serial))
		}},
		{NATSEndpoint: wire.NATSAction, write: true, handle: func(s *Server, c *natsCall) ([]byte, error) {
			return nil, s.commissionAction(c.ctx, c.p.Service.Name, c.serial, c.body)
		}},
		{NATSEndpoint: wire.NATSResolve, write: true, handle: func(s *Server, c *natsCall) ([]byte, error) {
			return s.resolveMany(c.ctx, c.p.Service.Name, c.body, nil)
		}},
		{NATSEndpoint: wire.NATSServiceQuotas, request: wire.QuotasQuery{}, handle: natsServiceQuotas},
		{NATSEndpoint: wire.NATSServiceProjectQuotas, request: wire.ProjectQuotasQuery{}, handle: natsServiceProjectQuotas},
		{NATSEndpoint: wire.NATSValidateToken, request: wire.TokenValidation{}, handle: natsValidateToken},
		{NATSEndpoint: wire.NATSCatalogs, handle: func(s *Server, c *natsCall) ([]byte, error) {
			return answerJSON(s.catalogs(c.body, false))
		}},
	}
	routes := map[string]string{
		wire.NATSIssue.Name:                "POST " + acc + "commissions",
		wire.NATSPending.Name:              "GET " + acc + "commissions",
		wire.NATSInfo.Name:                 "GET " + acc + "commissions/{serial}",
		wire.NATSAction.Name:               "POST " + acc + "commissions/{serial}/action",
		wire.NATSResolve.Name:              "POST " + acc + "commissions/action",
		wire.NATSServiceQuotas.Name:        "GET " + acc + "service_quotas",
		wire.NATSServiceProjectQuotas.Name: "GET " + acc + "service_project_quotas",
		wire.NATSValidateToken.Name:        "GET /identity/v2.0/tokens/{token}",
		wire.NATSCatalogs.Name:             "POST " + acc + "service/user_catalogs",
	}
	for _, ep := range eps {
		for i := range s.routes {
			if rt := &s.routes[i]; rt.Method+" "+rt.Path == routes[ep.Name] {
				ep.route = rt
				break
			}
		}
		if ep.route == nil || ep.route.Access != Service {
			return nil, fmt.Errorf("api: NATS endpoint %s: no service route %s", ep.Name, routes[ep.Name])
		}
		if ep.request == nil {
			ep.request = ep.route.Body
		}
		for _, a := range ep.route.Answers {
			ep.answer = a.Body
		}
	}
	return eps, nil
}

// answerJSON is the answer v as encoding/json renders it (as over HTTP).
func answerJSON[T any](v T, err error) ([]byte, error) {
	if err != nil {
		return nil, err
	}
	return json.Marshal(v)
}

func natsIssue(s *Server, c *natsCall) ([]byte, error) {
	serial, err := s.issue(c.ctx, c.p.Service.Name, c.body, strings.TrimSpace(c.header.Get(wire.IdempotencyHeader)))
	if err != nil {
		return nil, err
	}
	return appendIssued(nil, serial), nil
}

// natsQuery decodes the body of an endpoint whose HTTP route takes a query
// into v, strictly (a key the route has no parameter for is refused, as an
// unknown query parameter is); no body leaves v as it is.
func natsQuery(body []byte, v any) error {
	if len(strings.TrimSpace(string(body))) == 0 {
		return nil
	}
	return decodeJSON(body, v, true)
}

// queryList reads a list of a query body as the route reads its query
// parameter (listParam).
func queryList(items []string) []string {
	return listParam(url.Values{"v": items}, "v", false)
}

func natsServiceQuotas(s *Server, c *natsCall) ([]byte, error) {
	var q wire.QuotasQuery
	if err := natsQuery(c.body, &q); err != nil {
		return nil, err
	}
	return answerJSON(s.serviceQuotas(c.p.Service.Name, queryList(q.User), queryList(q.Project)))
}

func natsServiceProjectQuotas(s *Server, c *natsCall) ([]byte, error) {
	var q wire.ProjectQuotasQuery
	if err := natsQuery(c.body, &q); err != nil {
		return nil, err
	}
	return answerJSON(s.serviceProjectQuotas(c.p.Service.Name, queryList(q.Project)))
}

func natsValidateToken(s *Server, c *natsCall) ([]byte, error) {
	var v wire.TokenValidation
	if err := decodeJSON(c.body, &v, true); err != nil {
		return nil, err
	}
	belongsTo := ""
	if v.BelongsTo != nil {
		belongsTo = *v.BelongsTo
	}
	return answerJSON(s.validateToken(v.Token, belongsTo, v.BelongsTo != nil))
}

// ServeNATS starts the micro service quotaledger on nc, with an endpoint
// per call of the service API (wire.NATSEndpoints) under opts.Prefix, and
// PING, INFO (each endpoint's HTTP route, access and body schemas in its
// metadata) and STATS. The connection must stay open until Stop; a
// connection that reconnects keeps the service (its subscriptions are
// made again). It returns once the server routes requests to the
// endpoints (on a connection still connecting, once they are subscribed:
// they are served from its connection on). Its requests are counted
// beside the HTTP ones (quotaledger_nats_*) on the server's registry.
func (s *Server) ServeNATS(nc *nats.Conn, opts NATSOptions) (*NATSService, error) {
	opts = opts.withDefaults()
	if err := s.metrics.natsMetrics(); err != nil {
		return nil, fmt.Errorf("api: NATS metrics: %w", err)
	}
	eps, err := s.natsEndpoints()
	if err != nil {
		return nil, err
	}
	n := &NATSService{s: s, nc: nc, opts: opts, eps: eps, writes: make(chan struct{}, opts.MaxInFlight)}
	byName := map[string]*natsEndpoint{}
	for _, ep := range eps {
		byName[ep.Name] = ep
		ep.metrics = s.metrics.natsEndpoint(ep.Name)
	}
	log := s.log.With().Str("wire", "nats").Logger()
	svc, err := micro.AddService(nc, micro.Config{
		Name:    wire.NATSService,
		Version: "1.0.0",
		Description: "quotaledger: the service calls of the commission API (issue, accept, reject, resolve, " +
			"pending, info, service quotas, token validation, user catalogs), as over HTTP",
		Metadata:   map[string]string{"prefix": opts.Prefix, "token_header": wire.TokenHeader},
		QueueGroup: opts.QueueGroup,
		StatsHandler: func(e *micro.Endpoint) any {
			ep := byName[e.Name]
			if ep == nil {
				return nil
			}
			st := &ep.stats
			d := natsStatsData{Answered: st.answered.Load(), Errors: st.errors.Load(), InFlight: st.inFlight.Load(),
				ProcessingTime: time.Duration(st.nanos.Load())}
			if d.Answered > 0 {
				d.AverageProcessingTime = d.ProcessingTime / time.Duration(d.Answered)
			}
			return d
		},
		ErrorHandler: func(_ micro.Service, err *micro.NATSError) {
			log.Error().Str("subject", err.Subject).Str("error", err.Description).Msg("NATS micro service error")
		},
	})
	if err != nil {
		return nil, fmt.Errorf("api: NATS micro service: %w", err)
	}
	n.svc = svc
	for _, ep := range eps {
		meta, err := ep.metadata()
		if err != nil {
			_ = svc.Stop()
			return nil, err
		}
		if err := svc.AddEndpoint(ep.Name, n.handler(ep), micro.WithEndpointSubject(ep.Subject(opts.Prefix, "")),
			micro.WithEndpointMetadata(meta)); err != nil {
			_ = svc.Stop()
			return nil, fmt.Errorf("api: NATS endpoint %s: %w", ep.Name, err)
		}
	}
	// The subscriptions are sent to the server asynchronously: once the
	// server has answered a ping after them, it routes requests to them. A
	// connection that is not connected (yet) sends them when it connects.
	if nc.IsConnected() {
		if err := nc.Flush(); err != nil && nc.IsConnected() {
			_ = svc.Stop()
			return nil, fmt.Errorf("api: NATS micro service: %w", err)
		}
	}
	return n, nil
}

// metadata is what INFO says of an endpoint: the HTTP route it mirrors,
// its access, and the JSON schemas of its request and answer bodies.
func (ep *natsEndpoint) metadata() (map[string]string, error) {
	rt := ep.route
	m := map[string]string{
		"summary":      rt.Summary,
		"http":         rt.Method + " " + rt.Path,
		"access":       "service",
		"action":       string(rt.Action),
		"token_header": wire.TokenHeader,
	}
	if strings.Contains(ep.Suffix, "*") {
		m["subject_token"] = "the commission's serial in place of *"
	}
	if ep.Name == wire.NATSIssue.Name {
		m["idempotency_header"] = wire.IdempotencyHeader
	}
	if ep.answer == nil {
		m["response"] = "empty"
	}
	for key, v := range map[string]any{"request_schema": ep.request, "response_schema": ep.answer} {
		if v == nil {
			continue
		}
		b, err := jsonSchema(reflect.TypeOf(v))
		if err != nil {
			return nil, fmt.Errorf("api: NATS endpoint %s: %s: %w", ep.Name, key, err)
		}
		m[key] = string(b)
	}
	return m, nil
}

// jsonSchema is the schema of t as one document: the OpenAPI document's
// schema of t, with the wire types it names under $defs.
func jsonSchema(t reflect.Type) ([]byte, error) {
	sc := &schemas{defs: map[string]any{}}
	doc := sc.of(t)
	if len(sc.defs) > 0 {
		d := map[string]any{"$defs": sc.defs}
		for k, v := range doc {
			d[k] = v
		}
		doc = d
	}
	b, err := json.Marshal(doc)
	if err != nil {
		return nil, err
	}
	return []byte(strings.ReplaceAll(string(b), `"#/components/schemas/`, `"#/$defs/`)), nil
}

// Info returns what $SRV.INFO.quotaledger answers for this instance.
func (n *NATSService) Info() micro.Info { return n.svc.Info() }

// Stop stops taking requests and waits until every call in flight is
// answered (or ctx is done): a request that arrives meanwhile is answered
// 503, and one sent after Stop returns, on any connection, finds no
// responders. The connection stays open.
func (n *NATSService) Stop(ctx context.Context) error {
	err := n.svc.Stop()
	// The server has the unsubscriptions once it answers a flush: a
	// request of another connection is routed by the server's interest,
	// which the UNSUBs sent on this one change only when it reads them.
	fctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	if ferr := n.nc.FlushWithContext(fctx); ferr != nil && !errors.Is(ferr, nats.ErrConnectionClosed) {
		err = errors.Join(err, fmt.Errorf("api: NATS: %w", ferr))
	}
	cancel()
	n.mu.Lock()
	n.closed = true
	n.mu.Unlock()
	done := make(chan struct{})
	go func() {
		n.inflight.Wait()
		close(done)
	}()
	select {
	case <-done:
	case <-ctx.Done():
		return errors.Join(err, fmt.Errorf("api: NATS calls still in flight: %w", ctx.Err()))
	}
	return err
}

// handler is the micro handler of ep: a read is answered on the
// subscription's goroutine, a write in a goroutine of its own.
func (n *NATSService) handler(ep *natsEndpoint) micro.Handler {
	return micro.HandlerFunc(func(r micro.Request) {
		start := time.Now()
		if r.Reply() == "" {
			return // a publish, not a request: nobody to answer, nothing to do
		}
		ep.stats.inFlight.Add(1)
		n.mu.RLock()
		if n.closed {
			n.mu.RUnlock()
			n.answer(ep, r, start, "", nil, nil, newFault(http.StatusServiceUnavailable, "the server is shutting down"), false)
			return
		}
		n.inflight.Add(1)
		n.mu.RUnlock()
		if !ep.write {
			defer n.inflight.Done()
			n.serve(ep, r, start, false)
			return
		}
		n.writes <- struct{}{}
		go func() {
			defer n.inflight.Done()
			defer func() { <-n.writes }()
			n.serve(ep, r, start, true)
		}()
	})
}

// serve answers one request: its token checked as over HTTP, its input
// within the same limits, then the call. async says the handler has
// returned: the answer is published to the reply subject, not given to r.
func (n *NATSService) serve(ep *natsEndpoint, r micro.Request, start time.Time, async bool) {
	s := n.s
	h := nats.Header(r.Headers())
	id := natsHeader(h, wire.RequestIDHeader)
	if id == "" || len(id) > 64 {
		id = newRequestID()
	}
	if ep.write && s.cluster != nil && n.opts.Forward == nil {
		// A node of a cluster (nats_cluster.go): while it follows, the
		// leader answers the write.
		serial := ""
		if strings.Contains(ep.Suffix, "*") {
			serial = r.Subject()[strings.LastIndexByte(r.Subject(), '.')+1:]
		}
		fwd, err := s.cluster.forwardNATS(context.Background(), ep, serial, id, &nats.Msg{Subject: r.Subject(), Header: h, Data: r.Data()})
		if err != nil {
			n.answer(ep, r, start, id, nil, nil, faultOf(err), async)
			return
		}
		if fwd != nil {
			n.relay(ep, r, start, id, nil, fwd)
			return
		}
	}
	p, f := s.authenticate(tokenOfHeaders(natsHeader(h, wire.TokenHeader), natsHeader(h, "Authorization")), ep.route)
	if f != nil {
		n.answer(ep, r, start, id, nil, nil, f, async)
		return
	}
	c := &natsCall{ctx: context.Background(), p: p, header: h}
	body, err := natsBody(r.Data(), s.opts.MaxBody)
	if err == nil && strings.Contains(ep.Suffix, "*") {
		c.serial = r.Subject()[strings.LastIndexByte(r.Subject(), '.')+1:]
		if !utf8.ValidString(c.serial) {
			err = badRequest("serial in the subject must be valid UTF-8")
		}
	}
	if err != nil {
		n.answer(ep, r, start, id, &p, nil, faultOf(err), async)
		return
	}
	c.body = body
	if ep.write && n.opts.Forward != nil {
		fwd, err := n.opts.Forward(c.ctx, ep.Name, &nats.Msg{Subject: r.Subject(), Header: h, Data: r.Data()})
		if err != nil {
			n.answer(ep, r, start, id, &p, nil, faultOf(err), async)
			return
		}
		if fwd != nil {
			n.relay(ep, r, start, id, &p, fwd)
			return
		}
	}
	out, err := ep.handle(s, c)
	if err != nil {
		f := faultOf(err)
		if f.Code >= 500 {
			s.log.Error().Err(err).Str("wire", "nats").Str("endpoint", ep.Name).Msg("internal error")
		}
		n.answer(ep, r, start, id, &p, nil, f, async)
		return
	}
	n.answer(ep, r, start, id, &p, out, nil, async)
}

// natsBody checks a request's body as an HTTP body is checked: at most
// limit bytes, valid UTF-8.
func natsBody(data []byte, limit int64) ([]byte, error) {
	if int64(len(data)) > limit {
		return checkBody(nil, &http.MaxBytesError{Limit: limit}, limit)
	}
	return checkBody(data, nil, limit)
}

// natsHeader is the header key of h: as written, or in any case (a
// client in another language may send x-auth-token).
func natsHeader(h nats.Header, key string) string {
	if vs := h[key]; len(vs) > 0 {
		return vs[0]
	}
	for k, vs := range h {
		if len(vs) > 0 && strings.EqualFold(k, key) {
			return vs[0]
		}
	}
	return ""
}

// answer answers a request: out, or the fault f with micro's error
// headers (Nats-Service-Error-Code: its code; Nats-Service-Error: its kind
// and message) and its cloudFault as the body. It counts the answer before
// sending it (so that STATS and the metrics have it once the caller does),
// and logs it. p is the caller, if known.
func (n *NATSService) answer(ep *natsEndpoint, r micro.Request, start time.Time, id string, p *identity.Principal, out []byte, f *Fault, async bool) {
	code := ep.route.Answers[0].Status
	msg := &nats.Msg{Subject: r.Reply(), Header: nats.Header{}, Data: out}
	if id != "" {
		msg.Header[wire.RequestIDHeader] = []string{id}
	}
	if f != nil {
		code = f.Code
		msg.Data = faultBody(f)
		msg.Header[micro.ErrorCodeHeader] = []string{strconv.Itoa(f.Code)}
		msg.Header[micro.ErrorHeader] = []string{headerValue(f.Kind + ": " + f.Message)}
		if f.RetryAfter > 0 {
			msg.Header["Retry-After"] = []string{strconv.Itoa(f.RetryAfter)}
		}
	}
	d := n.count(ep, start, code)
	var err error
	switch {
	case async:
		err = n.nc.PublishMsg(msg)
	case f != nil:
		err = r.Error(msg.Header[micro.ErrorCodeHeader][0], msg.Header[micro.ErrorHeader][0], msg.Data,
			micro.WithHeaders(micro.Headers(msg.Header)))
	default:
		err = r.Respond(msg.Data, micro.WithHeaders(micro.Headers(msg.Header)))
	}
	n.log(ep, d, id, p, code, err)
}

// relay answers a request with the answer a cluster's leader gave to it
// (NATSOptions.Forward), as it is.
func (n *NATSService) relay(ep *natsEndpoint, r micro.Request, start time.Time, id string, p *identity.Principal, fwd *nats.Msg) {
	code := ep.route.Answers[0].Status
	if c, err := strconv.Atoi(fwd.Header.Get(micro.ErrorCodeHeader)); err == nil {
		code = c
	}
	d := n.count(ep, start, code)
	err := n.nc.PublishMsg(&nats.Msg{Subject: r.Reply(), Header: fwd.Header, Data: fwd.Data})
	n.log(ep, d, id, p, code, err)
}

// count counts an answer of ep with code, in the metrics and the
// endpoint's figures, and returns how long the request took.
func (n *NATSService) count(ep *natsEndpoint, start time.Time, code int) time.Duration {
	d := time.Since(start)
	ep.metrics.observe(code, d)
	ep.stats.answered.Add(1)
	ep.stats.nanos.Add(int64(d))
	ep.stats.inFlight.Add(-1)
	if code >= 400 {
		ep.stats.errors.Add(1)
	}
	return d
}

// log logs an answered request, as ServeHTTP does; err is the sending's.
func (n *NATSService) log(ep *natsEndpoint, d time.Duration, id string, p *identity.Principal, code int, err error) {
	s := n.s
	if err != nil {
		s.log.Warn().Err(err).Str("wire", "nats").Str("endpoint", ep.Name).Str("request_id", id).Msg("answering a NATS request")
	}
	ev := s.log.Info().Str("wire", "nats").Str("endpoint", ep.Name).Int("status", code).
		Dur("duration", d).Str("request_id", id)
	if p != nil && p.Token != nil {
		ev = ev.Str("principal_kind", string(p.Kind))
		switch {
		case p.User != nil:
			ev = ev.Str("principal", p.User.UUID)
		case p.Service != nil:
			ev = ev.Str("principal", p.Service.Name)
		}
	}
	ev.Msg("request")
}

// headerValue makes v fit a NATS header value: one line (a control
// character becomes a space), at most 1 KiB.
func headerValue(v string) string {
	const limit = 1024
	if len(v) > limit {
		v = v[:limit]
		for !utf8.ValidString(v) {
			v = v[:len(v)-1]
		}
	}
	return strings.Map(func(r rune) rune {
		if r < 0x20 || r == 0x7f {
			return ' '
		}
		return r
	}, v)
}

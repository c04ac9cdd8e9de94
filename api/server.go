// Package api is the HTTP face of quotaledger: the routes of DESIGN.md §3
// (the Astakos-compatible ones to the letter, their /astakos/api aliases,
// and the rest), authentication by X-Auth-Token or Authorization: Bearer,
// the cloudFault error shape, and input limits. It knows the ledger and the
// identity layer; nothing imports it but cmd.
package api

import (
	"context"
	"fmt"
	"math/rand/v2"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/rs/zerolog"

	"github.com/quotaledger/quotaledger/api/console"
	"github.com/quotaledger/quotaledger/holdings"
	"github.com/quotaledger/quotaledger/identity"
	"github.com/quotaledger/quotaledger/ledger"
)

// noContent answers 204 without a body.
func (c *call) noContent() error {
	c.w.WriteHeader(http.StatusNoContent)
	return nil
}

// optionalBody decodes the body into v when there is one; an empty
// body leaves v as it is.
func (c *call) optionalBody(v any) error {
	b, err := readBody(c.r, c.s.opts.MaxBody)
	if err != nil {
		return err
	}
	if len(strings.TrimSpace(string(b))) == 0 {
		return nil
	}
	return decodeJSON(b, v, true)
}

func (c *call) canReadAll() bool { return identity.Allowed(c.p, identity.ActReadAll) }

// Options configure a Server. Zero fields take defaults.
type Options struct {
	Logger zerolog.Logger
	// PublicURL is the base URL the service catalog names ("" = the scheme
	// and host each request came to).
	PublicURL string
	// MaxBody caps request bodies (1 MiB).
	MaxBody int64
	// MaxProvisions caps the provisions of one commission:
	// holdings.MaxProvisions (1,000), the ledger's cap, or less.
	MaxProvisions int
	// MaxNameLen caps holder, source and resource (holdings.MaxNameLen,
	// 512 bytes, or less), and commission names, idempotency keys and
	// reasons.
	MaxNameLen int
	// Checks are the checks of /readyz, by name: nil means the check
	// passed. The server is ready when all pass (nil: always ready).
	Checks func(ctx context.Context) map[string]error
	// Metrics is the registry /metrics serves, on which the server registers
	// its own metrics (nil: a registry of the server's own).
	Metrics *prometheus.Registry
	// Cluster makes the server a node of a cluster (cluster.go); its zero
	// value, a single node.
	Cluster ClusterOptions
	// Console configures the web console under /ui/ (console.go): its API,
	// logger and, on a node of a cluster, Applied are the server's.
	Console console.Options
}

func (o Options) withDefaults() Options {
	if o.MaxBody == 0 {
		o.MaxBody = 1 << 20
	}
	if o.MaxProvisions <= 0 || o.MaxProvisions > holdings.MaxProvisions {
		o.MaxProvisions = holdings.MaxProvisions
	}
	if o.MaxNameLen <= 0 || o.MaxNameLen > holdings.MaxNameLen {
		o.MaxNameLen = holdings.MaxNameLen
	}
	return o
}

// Server answers the HTTP API.
type Server struct {
	l    *ledger.Ledger
	id   *identity.Store
	opts Options
	// limits are holdings' checks of keys and provisions with opts' caps.
	limits holdings.Limits
	log    zerolog.Logger
	mux    *http.ServeMux
	routes []Route
	// methods are the methods of the routes, for the Allow of a 405.
	methods []string
	// limiter counts login and password-reset attempts (ratelimit.go).
	limiter *rateLimiter
	metrics *metrics
	// unmatched are the metrics of the requests no route took.
	unmatched *routeMetrics
	// cluster is the server's part of a cluster (nil: a single node).
	cluster *clusterNode
	// console is the web console under /ui/ (console.go).
	console *console.Console
}

// call is one request being served.
type call struct {
	w http.ResponseWriter
	r *http.Request
	s *Server
	p identity.Principal // zero for Public routes
	q url.Values         // the query, checked against the route's
	// buf holds the body read by pooledBody, until the call is answered.
	buf *[]byte
	// scratch is room for an answer built by hand (issued).
	scratch [32]byte
}

type handlerFunc func(c *call) error

// New returns a server for l and id. It panics if its metrics cannot be
// registered on opts.Metrics (a registry takes one server).
func New(l *ledger.Ledger, id *identity.Store, opts Options) *Server {
	opts = opts.withDefaults()
	s := &Server{l: l, id: id, opts: opts, log: opts.Logger.With().Str("component", "api").Logger(),
		limits: holdings.Limits{NameLen: opts.MaxNameLen, Provisions: opts.MaxProvisions},
		mux:    http.NewServeMux(), limiter: newRateLimiter(nil)}
	reg := opts.Metrics
	if reg == nil {
		reg = prometheus.NewRegistry()
	}
	m, err := newMetrics(reg, opts.Checks)
	if err != nil {
		panic("api: registering metrics: " + err.Error())
	}
	s.metrics, s.unmatched = m, m.route("unmatched")
	if opts.Cluster.Node != nil {
		if s.cluster, err = newClusterNode(s, opts.Cluster, reg); err != nil {
			panic("api: registering metrics: " + err.Error())
		}
	}
	for _, rt := range s.routeTable() {
		s.handle(rt)
		if rt.alias != "" {
			rt.Path, rt.Summary, rt.alias = rt.alias, rt.Summary+" (the lineage's older path)", ""
			s.handle(rt)
		}
	}
	s.mountConsole()
	s.mux.HandleFunc("/", s.noRoute)
	return s
}

// noRoute answers a call no route takes: a 405 with Allow if routes take
// its path with other methods, else a 404.
func (s *Server) noRoute(w http.ResponseWriter, r *http.Request) {
	var allow []string
	for _, m := range s.methods {
		if m == r.Method {
			continue
		}
		probe := &http.Request{Method: m, Host: r.Host, URL: r.URL}
		if _, pattern := s.mux.Handler(probe); pattern != "" && pattern != "/" {
			allow = append(allow, m)
			if m == http.MethodGet {
				allow = append(allow, http.MethodHead) // GET routes take HEAD too
			}
		}
	}
	if len(allow) == 0 {
		if s.consoleNotFound(w, r) {
			return
		}
		writeFault(w, newFault(http.StatusNotFound, "no route "+r.Method+" "+r.URL.Path))
		return
	}
	slices.Sort(allow)
	w.Header().Set("Allow", strings.Join(allow, ", "))
	writeFault(w, newFault(http.StatusMethodNotAllowed,
		fmt.Sprintf("%s is not allowed on %s; it takes %s", r.Method, r.URL.Path, strings.Join(allow, ", "))))
}

// Routes returns the routing table.
func (s *Server) Routes() []Route { return s.routes }

// handle registers a route.
func (s *Server) handle(rt Route) {
	for _, m := range pathParam.FindAllStringSubmatch(rt.Path, -1) {
		rt.wildcards = append(rt.wildcards, m[1])
	}
	s.routes = append(s.routes, rt)
	if !slices.Contains(s.methods, rt.Method) {
		s.methods = append(s.methods, rt.Method)
	}
	rt.metrics = s.metrics.route(rt.Method + " " + rt.Path)
	p := &rt
	s.mux.HandleFunc(rt.Method+" "+rt.Path, func(w http.ResponseWriter, r *http.Request) { s.serve(w, r, p) })
}

// ServeHTTP implements http.Handler.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	start := time.Now()
	if s.cluster != nil {
		w = s.cluster.wrap(w)
	}
	sw := writers.Get().(*statusWriter)
	defer sw.release()
	*sw = statusWriter{ResponseWriter: w, status: http.StatusOK}
	id := r.Header.Get("X-Request-Id")
	if id == "" || len(id) > 64 {
		id = newRequestID()
	}
	w.Header()["X-Request-Id"] = []string{id} // canonical already
	// The lineage answered paths with or without a trailing slash.
	if p := r.URL.Path; len(p) > 1 && strings.HasSuffix(p, "/") {
		r.URL.Path = strings.TrimRight(p, "/")
		r.URL.RawPath = ""
	}
	s.mux.ServeHTTP(sw, r)
	route, rm := r.Pattern, s.unmatched
	if sw.route != nil {
		rm = sw.route.metrics
	}
	if route == "" || route == "/" { // "/" is the catch-all 404
		route = "unmatched"
	}
	d := time.Since(start)
	rm.observe(sw.status, d)
	ev := s.log.Info().Str("method", r.Method).Str("route", route).Int("status", sw.status).
		Dur("duration", d).Str("request_id", id)
	// Who called: the kind of token and the user's uuid or the service's
	// name, never the token.
	if p := sw.principal; p.Token != nil {
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

// newRequestID returns 16 hex digits of a random 64-bit number: an id to
// find a request's log line by, not a secret, so math/rand's generator
// (per thread, no system call) serves.
func newRequestID() string {
	var b [16]byte
	const digits = "0123456789abcdef"
	v := rand.Uint64()
	for i := range b {
		b[i] = digits[v>>60]
		v <<= 4
	}
	return string(b[:])
}

// statusWriter is a request's writer: it records the answer's status, the
// route and the caller, for the request's log line and metrics, and holds
// the request's call. ServeHTTP takes one from writers and puts it back
// when the request is answered: nothing keeps it after that.
type statusWriter struct {
	http.ResponseWriter
	status    int
	route     *Route // nil: no route took the request
	principal identity.Principal
	c         call
}

var writers = sync.Pool{New: func() any { return new(statusWriter) }}

func (w *statusWriter) release() {
	w.c.releaseBody()
	*w = statusWriter{}
	writers.Put(w)
}

func (w *statusWriter) WriteHeader(code int) {
	w.status = code
	w.ResponseWriter.WriteHeader(code)
}

// Unwrap lets http.ResponseController reach the connection (the backup
// route lifts the write deadline for a long stream).
func (w *statusWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// serve authenticates and authorises the call, runs the handler, and
// answers its error as a fault.
func (s *Server) serve(w http.ResponseWriter, r *http.Request, rt *Route) {
	if s.cluster != nil && rt.Writes() && s.cluster.route(w, r) {
		return // forwarded to the leader, or refused
	}
	sw, _ := w.(*statusWriter)
	var c *call
	if sw != nil {
		sw.route, c = rt, &sw.c
	} else {
		c = new(call)
	}
	*c = call{w: w, r: r, s: s}
	if rt.Access != Public {
		p, f := s.authenticate(tokenOf(r), rt)
		if f != nil {
			writeFault(w, f)
			return
		}
		c.p = p
		if sw != nil {
			sw.principal = p
		}
	}
	q, err := rt.parseQuery(r)
	if err != nil {
		writeFault(w, faultOf(err))
		return
	}
	c.q = q
	for _, name := range rt.wildcards {
		if !utf8.ValidString(r.PathValue(name)) {
			writeFault(w, badRequest("%s in the path must be valid UTF-8", name))
			return
		}
	}
	if err := rt.handler(c); err != nil {
		f := faultOf(err)
		// A 503 is the service working as designed (below the free-space
		// floor, after a failed commit, closing, no leader): its part logs
		// the change of state once and counts the refusals, and the request
		// line has the status. An error line per call would fill the log,
		// and the disk it shares, while the state lasts.
		if f.Code >= 500 && f.Code != http.StatusServiceUnavailable {
			s.log.Error().Err(err).Str("route", rt.Method+" "+rt.Path).Msg("internal error")
		}
		writeFault(w, f)
	}
}

// authenticate finds the caller of a route by the token its call carried
// (secret, "" if none) and checks it may call the route: the same check on
// either wire. A refusal is counted by its reason.
func (s *Server) authenticate(secret string, rt *Route) (identity.Principal, *Fault) {
	if secret == "" {
		s.metrics.authFailed("missing")
		return identity.Principal{}, newFault(http.StatusUnauthorized, "missing token: send X-Auth-Token or Authorization: Bearer")
	}
	p, err := s.id.Authenticate(secret)
	if err != nil {
		s.metrics.authFailed(identity.AuthFailure(err))
		return identity.Principal{}, faultOf(err)
	}
	if f := authorise(p, *rt); f != nil {
		return identity.Principal{}, f
	}
	return p, nil
}

func authorise(p identity.Principal, rt Route) *Fault {
	switch rt.Access {
	case Service:
		if p.Service == nil {
			return newFault(http.StatusForbidden, "this call is for services")
		}
		return nil
	case User:
		if p.User == nil {
			return newFault(http.StatusForbidden, "this call is for users")
		}
	}
	if rt.Action != "" && !identity.Allowed(p, rt.Action) {
		if p.ReadOnly() {
			return newFault(http.StatusForbidden, "a read-only token cannot change anything")
		}
		return newFault(http.StatusForbidden, "not allowed to "+string(rt.Action))
	}
	return nil
}

// tokenOf returns the token of a request: X-Auth-Token, or a bearer token.
func tokenOf(r *http.Request) string {
	return tokenOfHeaders(r.Header.Get("X-Auth-Token"), r.Header.Get("Authorization"))
}

// tokenOfHeaders returns the token of a call with these X-Auth-Token and
// Authorization headers (on either wire).
func tokenOfHeaders(xAuthToken, authorization string) string {
	if xAuthToken != "" {
		return strings.TrimSpace(xAuthToken)
	}
	if a := authorization; len(a) > 7 && strings.EqualFold(a[:7], "bearer ") {
		return strings.TrimSpace(a[7:])
	}
	return ""
}

// baseURL is the public base of the server, for the service catalog.
func (c *call) baseURL() string {
	if c.s.opts.PublicURL != "" {
		return strings.TrimRight(c.s.opts.PublicURL, "/")
	}
	scheme := "http"
	if c.r.TLS != nil {
		scheme = "https"
	}
	return scheme + "://" + c.r.Host
}

// body reads and decodes the request body into v (strictly: unknown fields
// are refused).
func (c *call) body(v any, strict bool) error {
	b, err := readBody(c.r, c.s.opts.MaxBody)
	if err != nil {
		return err
	}
	return decodeJSON(b, v, strict)
}

func (c *call) json(status int, v any) error {
	writeJSON(c.w, status, v)
	return nil
}

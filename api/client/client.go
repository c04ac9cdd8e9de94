// Package client is the Go client of quotaledger: every call of the
// lineage's astakosclient (Synnefo Astakos, seed 001) — user info,
// endpoints, uuid and username catalogs, quotas, commissions, resources,
// services, feedback — and the rest of the HTTP API of DESIGN.md §3 and §9
// (registration and login, access tokens, users, groups, projects,
// holdings, resources and services).
//
// The messages are package wire's (api/wire), the server's own: the answers
// are aliases of its types (User is wire.User, Quotas wire.Quotas, ...), and
// the requests are sent as its messages. The client imports nothing else of
// quotaledger (and nats.go, for NewNATS).
//
// A Client is safe for concurrent use. The token is given once, at New
// (or picked up from QUOTALEDGER_TOKEN or the token file); WithToken and
// ContextWithToken send another one, for the 2013 client's style of a
// token on every call. Every call takes a context.
//
// Errors: every error answer is an *Error, wrapped in the typed error of
// its class (BadRequest, Unauthorized, Forbidden, NotFound, Conflict,
// QuotaLimit, TooManyRequests, ServiceUnavailable); the singular catalog
// lookups answer NoUserName / NoUUID; an answer that is not JSON is an
// InvalidResponse. Connection errors are returned wrapped, as they come.
//
// The service half of the API (issue, accept, reject, resolve, pending,
// commission info, service quotas, token validation, user catalogs) is
// also served over NATS, by the micro service quotaledger (DESIGN.md §12):
// NewNATS makes a client of it on a NATS connection, with the same calls
// (ServiceAPI, which both clients implement), answers and typed errors.
//
// Retries: with Options.Retries > 0, a call that could not connect, or an
// idempotent call (GET, PUT, DELETE, and the POSTs that only read) whose
// connection failed or that got a 503, is sent again after a backoff. A
// 4xx is never retried. An issue is retried only when it carries an
// idempotency key (given by the caller, or generated when
// Options.SafeRetries is set), so that the server applies it once.
package client

import (
	"bytes"
	"context"
	crand "crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"net/url"
	"os"
	"strconv"
	"strings"
	"time"
)

// Options configure a Client. Zero fields take defaults.
type Options struct {
	// HTTPClient sends the calls (default: a client of its own with a
	// shared keep-alive pool and a 30 s timeout).
	HTTPClient *http.Client
	// Retries is how many times a call that may be retried is sent again
	// (0: never; the lineage's `retry`).
	Retries int
	// Backoff is the wait before the first retry (100 ms); it doubles
	// with every retry, with jitter, up to MaxBackoff (2 s). A 503's
	// Retry-After is honoured up to MaxBackoff.
	Backoff, MaxBackoff time.Duration
	// SafeRetries makes the client give every issue without an
	// idempotency key one of its own, so that issues may be retried too.
	SafeRetries bool
	// NoTokenPickup stops New from picking up a token from
	// QUOTALEDGER_TOKEN or the token file when none is given.
	NoTokenPickup bool
	// UserAgent is sent with every call ("quotaledger-go-client").
	UserAgent string
	// RootCAs are the certificate authorities an https:// server's
	// certificate is checked against (nil: the system's), e.g. of a
	// server with a certificate of a private CA (serve --tls-cert); see
	// CertPool. The client then has a connection pool of its own, and
	// speaks TLS 1.2 and newer. Not with HTTPClient, which has its own
	// transport.
	RootCAs *x509.CertPool
}

// CertPool reads the PEM certificates of file (a CA's, or a self-signed
// server's) into a pool for Options.RootCAs.
func CertPool(file string) (*x509.CertPool, error) {
	data, err := os.ReadFile(file)
	if err != nil {
		return nil, fmt.Errorf("quotaledger: CA certificate: %w", err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(data) {
		return nil, fmt.Errorf("quotaledger: CA certificate %s: no PEM certificate in it", file)
	}
	return pool, nil
}

// newHTTPClient is defaultHTTP's like, trusting rootCAs.
func newHTTPClient(rootCAs *x509.CertPool) *http.Client {
	t := http.DefaultTransport.(*http.Transport).Clone()
	t.MaxIdleConnsPerHost = 64
	t.TLSClientConfig = &tls.Config{RootCAs: rootCAs, MinVersion: tls.VersionTLS12}
	return &http.Client{Timeout: defaultHTTP.Timeout, Transport: t}
}

// Client calls one quotaledger server.
type Client struct {
	base  *url.URL // without a trailing slash
	token string
	hc    *http.Client
	opts  Options
}

var defaultHTTP = &http.Client{
	Timeout: 30 * time.Second,
	Transport: func() http.RoundTripper {
		t := http.DefaultTransport.(*http.Transport).Clone()
		t.MaxIdleConnsPerHost = 64
		return t
	}(),
}

// New returns a client of the server at baseURL (scheme and host, and
// the path it is mounted under if any) that sends token with every call
// that needs one. An empty token is picked up from QUOTALEDGER_TOKEN or
// the token file (see LoadToken) unless opts.NoTokenPickup is set.
func New(baseURL, token string, opts Options) (*Client, error) {
	u, err := url.Parse(strings.TrimRight(baseURL, "/"))
	if err != nil {
		return nil, fmt.Errorf("quotaledger: bad base URL: %w", err)
	}
	if u.Scheme != "http" && u.Scheme != "https" || u.Host == "" {
		return nil, fmt.Errorf("quotaledger: bad base URL %q: want http(s)://host[:port][/path]", baseURL)
	}
	switch {
	case opts.HTTPClient != nil && opts.RootCAs != nil:
		return nil, errors.New("quotaledger: Options.RootCAs and HTTPClient: give the CAs to HTTPClient's transport")
	case opts.RootCAs != nil:
		opts.HTTPClient = newHTTPClient(opts.RootCAs)
	case opts.HTTPClient == nil:
		opts.HTTPClient = defaultHTTP
	}
	opts = opts.withBackoff()
	if opts.UserAgent == "" {
		opts.UserAgent = "quotaledger-go-client"
	}
	if token == "" && !opts.NoTokenPickup {
		token, _ = LoadToken()
	}
	return &Client{base: u, token: token, hc: opts.HTTPClient, opts: opts}, nil
}

// withBackoff fills the backoff's defaults.
func (o Options) withBackoff() Options {
	if o.Backoff <= 0 {
		o.Backoff = 100 * time.Millisecond
	}
	if o.MaxBackoff <= 0 {
		o.MaxBackoff = 2 * time.Second
	}
	if o.MaxBackoff < o.Backoff {
		o.MaxBackoff = o.Backoff
	}
	return o
}

// WithToken returns a client that sends token instead (sharing the
// connection pool): the 2013 client's token-on-every-call style is
// c.WithToken(t).GetUserInfo(ctx, false).
func (c *Client) WithToken(token string) *Client {
	cc := *c
	cc.token = token
	return &cc
}

// Token returns the token the client sends.
func (c *Client) Token() string { return c.token }

// BaseURL returns the base URL of the server.
func (c *Client) BaseURL() string { return c.base.String() }

type ctxToken struct{}

// ContextWithToken returns a context whose calls send token instead of
// the client's.
func ContextWithToken(ctx context.Context, token string) context.Context {
	return context.WithValue(ctx, ctxToken{}, token)
}

// request is one call to send.
type request struct {
	method string
	path   string // from the base, with a leading slash
	query  url.Values
	body   any    // sent as JSON unless nil
	raw    []byte // sent as is, with rawType, when body is nil
	rawTyp string
	// idempotent: may be sent again after a connection error or a 503.
	idempotent bool
	idemKey    string // Idempotency-Key header
	public     bool   // no token needed (one is still sent if known)
	header     http.Header
}

// answer is what came back.
type answer struct {
	status    int
	header    http.Header
	body      []byte
	requestID string
}

// do sends rq (retrying when allowed), and decodes a 2xx answer into out
// (unless out is nil). A non-2xx answer is a typed error.
func (c *Client) do(ctx context.Context, rq *request, out any) (*answer, error) {
	a, err := c.send(ctx, rq)
	if err != nil {
		return nil, err
	}
	if a.status < 200 || a.status > 299 {
		return a, answerError(a.status, a.body, a.requestID)
	}
	if out != nil {
		if err := decode(a.body, out); err != nil {
			return a, invalidResponse(a.status, a.body, a.requestID, err)
		}
	}
	return a, nil
}

func decode(body []byte, out any) error {
	if len(bytes.TrimSpace(body)) == 0 {
		return errors.New("empty answer")
	}
	return json.Unmarshal(body, out)
}

func (c *Client) send(ctx context.Context, rq *request) (*answer, error) {
	var body []byte
	ctype := ""
	switch {
	case rq.body != nil:
		b, err := json.Marshal(rq.body)
		if err != nil {
			return nil, fmt.Errorf("quotaledger: encoding the request: %w", err)
		}
		body, ctype = b, "application/json"
	case rq.raw != nil:
		body, ctype = rq.raw, rq.rawTyp
	}
	retryable := rq.idempotent || rq.idemKey != ""
	for attempt := 0; ; attempt++ {
		req, err := c.httpRequest(ctx, rq, body, ctype)
		if err != nil {
			return nil, err
		}
		resp, err := c.hc.Do(req)
		if err != nil {
			if ctx.Err() != nil {
				return nil, fmt.Errorf("quotaledger: %s %s: %w", rq.method, rq.path, ctx.Err())
			}
			if attempt < c.opts.Retries && (retryable || notSent(err)) {
				if werr := c.wait(ctx, attempt, 0); werr != nil {
					return nil, werr
				}
				continue
			}
			return nil, fmt.Errorf("quotaledger: %s %s: %w", rq.method, rq.path, err)
		}
		raw, err := io.ReadAll(io.LimitReader(resp.Body, 64<<20))
		resp.Body.Close()
		if err != nil {
			if ctx.Err() == nil && attempt < c.opts.Retries && retryable {
				if werr := c.wait(ctx, attempt, 0); werr != nil {
					return nil, werr
				}
				continue
			}
			return nil, fmt.Errorf("quotaledger: %s %s: reading the answer: %w", rq.method, rq.path, err)
		}
		if resp.StatusCode == http.StatusServiceUnavailable && retryable && attempt < c.opts.Retries {
			if werr := c.wait(ctx, attempt, retryAfter(resp.Header)); werr != nil {
				return nil, werr
			}
			continue
		}
		return &answer{status: resp.StatusCode, header: resp.Header, body: raw,
			requestID: resp.Header.Get("X-Request-Id")}, nil
	}
}

// httpRequest makes the HTTP request of rq with body (of type ctype).
func (c *Client) httpRequest(ctx context.Context, rq *request, body []byte, ctype string) (*http.Request, error) {
	u := *c.base
	u.Path = c.base.Path + rq.path
	u.RawPath = ""
	if c.base.RawPath != "" || strings.Contains(rq.path, "%") {
		u.RawPath = c.base.EscapedPath() + rq.path
	}
	if len(rq.query) > 0 {
		u.RawQuery = rq.query.Encode()
	}
	token := c.token
	if t, ok := ctx.Value(ctxToken{}).(string); ok {
		token = t
	}
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, rq.method, u.String(), rd)
	if err != nil {
		return nil, fmt.Errorf("quotaledger: %w", err)
	}
	for k, vs := range rq.header {
		req.Header[k] = vs
	}
	if ctype != "" {
		req.Header.Set("Content-Type", ctype)
	}
	if req.Header.Get("Accept") == "" {
		req.Header.Set("Accept", "application/json")
	}
	req.Header.Set("User-Agent", c.opts.UserAgent)
	if token != "" {
		req.Header.Set("X-Auth-Token", token)
	}
	if rq.idemKey != "" {
		req.Header.Set("Idempotency-Key", rq.idemKey)
	}
	return req, nil
}

// notSent reports whether err says the request never reached the server
// (so that any call, idempotent or not, may be sent again).
func notSent(err error) bool {
	var op *net.OpError
	return errors.As(err, &op) && op.Op == "dial"
}

func retryAfter(h http.Header) time.Duration {
	v := h.Get("Retry-After")
	if v == "" {
		return 0
	}
	if s, err := strconv.Atoi(v); err == nil && s >= 0 {
		return time.Duration(s) * time.Second
	}
	if t, err := http.ParseTime(v); err == nil {
		return time.Until(t)
	}
	return 0
}

// wait sleeps before retry attempt+1: the backoff (doubling, with
// jitter), or the server's Retry-After, at most MaxBackoff.
func (c *Client) wait(ctx context.Context, attempt int, after time.Duration) error {
	return backoff(ctx, c.opts.Backoff, c.opts.MaxBackoff, attempt, after)
}

// backoff sleeps before retry attempt+1: first (doubling with every
// attempt, with jitter), or after if longer, at most most.
func backoff(ctx context.Context, first, most time.Duration, attempt int, after time.Duration) error {
	d := first << min(attempt, 20)
	if d <= 0 || d > most {
		d = most
	}
	d = d/2 + rand.N(d/2+1) // jitter in [d/2, d]
	if after > d {
		d = min(after, most)
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return fmt.Errorf("quotaledger: waiting to retry: %w", ctx.Err())
	case <-t.C:
		return nil
	}
}

// NewIdempotencyKey returns a fresh random idempotency key.
func NewIdempotencyKey() string {
	var b [16]byte
	_, _ = crand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// path joins escaped path segments to a prefix.
func path(prefix string, segs ...string) string {
	var b strings.Builder
	b.WriteString(prefix)
	for _, s := range segs {
		b.WriteByte('/')
		b.WriteString(url.PathEscape(s))
	}
	return b.String()
}

const (
	accountPrefix  = "/account/v1.0"
	identityPrefix = "/identity/v2.0"
)

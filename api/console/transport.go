package console

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"strconv"
	"sync"
	"time"
)

// The console calls the API through the Go client (api/client), whose
// requests a transport of its own hands to the API's handler in process: no
// socket, but the API's whole path (authentication, access rules, rate
// limits, metrics, the log, and on a follower of a cluster the forwarding
// of writes). A call is made as from the browser the page was asked by: its
// address (which the login rate limits count, and a session records), its
// User-Agent, its Host and its request id.

// origin is where a page's calls come from, and what their answers said
// that the client does not return: the Retry-After of a refused login and
// the log sequence of a write.
type origin struct {
	remoteAddr, host, userAgent, requestID string

	mu         sync.Mutex
	retryAfter time.Duration // of the last answer that had one
	applied    uint64        // the highest X-Quotaledger-Applied of a write's answer
}

type originKey struct{}

func withOrigin(ctx context.Context, o *origin) context.Context {
	return context.WithValue(ctx, originKey{}, o)
}

// headerApplied is api.HeaderApplied (the console cannot import api).
const headerApplied = "X-Quotaledger-Applied"

// inProcess is the client's transport: it serves each request with api.
type inProcess struct{ api http.Handler }

func (t inProcess) RoundTrip(req *http.Request) (*http.Response, error) {
	o, _ := req.Context().Value(originKey{}).(*origin)
	in := req.Clone(req.Context()) // a RoundTripper does not change its request
	if req.Body != nil {
		defer req.Body.Close()
		b, err := io.ReadAll(req.Body)
		if err != nil {
			return nil, err
		}
		in.Body = io.NopCloser(bytes.NewReader(b))
		in.ContentLength = int64(len(b))
	}
	in.RequestURI = in.URL.RequestURI()
	in.RemoteAddr = "127.0.0.1:0"
	if o != nil {
		in.RemoteAddr, in.Host = o.remoteAddr, o.host
		if o.userAgent != "" {
			in.Header.Set("User-Agent", o.userAgent)
		}
		if o.requestID != "" {
			in.Header.Set("X-Request-Id", o.requestID)
		}
	}
	rec := &recorder{header: make(http.Header)}
	t.api.ServeHTTP(rec, in)
	if rec.status == 0 {
		rec.status = http.StatusOK
	}
	if o != nil {
		o.note(req.Method, rec.header)
	}
	return &http.Response{
		Status: strconv.Itoa(rec.status) + " " + http.StatusText(rec.status), StatusCode: rec.status,
		Proto: "HTTP/1.1", ProtoMajor: 1, ProtoMinor: 1,
		Header: rec.header, Body: io.NopCloser(&rec.body), ContentLength: int64(rec.body.Len()), Request: req,
	}, nil
}

// note keeps what an answer to a call of method said in header.
func (o *origin) note(method string, h http.Header) {
	o.mu.Lock()
	defer o.mu.Unlock()
	if s, err := strconv.Atoi(h.Get("Retry-After")); err == nil && s > 0 {
		o.retryAfter = time.Duration(s) * time.Second
	}
	if method != http.MethodGet && method != http.MethodHead {
		if seq, err := strconv.ParseUint(h.Get(headerApplied), 10, 64); err == nil && seq > o.applied {
			o.applied = seq
		}
	}
}

// wrote returns the highest log sequence of a write's answer (0: none).
func (o *origin) wrote() uint64 {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.applied
}

// lastRetryAfter returns the Retry-After of the last answer that had one.
func (o *origin) lastRetryAfter() time.Duration {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.retryAfter
}

// recorder is the http.ResponseWriter of an in-process call.
type recorder struct {
	header http.Header
	status int
	body   bytes.Buffer
}

func (r *recorder) Header() http.Header { return r.header }

func (r *recorder) WriteHeader(code int) {
	if r.status == 0 {
		r.status = code
	}
}

func (r *recorder) Write(b []byte) (int, error) {
	if r.status == 0 {
		r.status = http.StatusOK
	}
	return r.body.Write(b)
}

// Flush lets a reverse proxy (a follower forwarding a write) flush.
func (r *recorder) Flush() {}

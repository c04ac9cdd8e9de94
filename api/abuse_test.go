package api

import (
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/rs/zerolog"
)

// sendFrom serves a JSON call as if it came from addr (host:port), through
// the server's handler, and returns the status, the Retry-After header and
// the decoded answer.
func (e *env) sendFrom(addr, method, path string, body any) (int, string, map[string]any) {
	e.t.Helper()
	j, err := json.Marshal(body)
	if err != nil {
		e.t.Fatal(err)
	}
	r := httptest.NewRequest(method, path, strings.NewReader(string(j)))
	r.RemoteAddr = addr
	r.Header.Set("Content-Type", "application/json")
	w := httptest.NewRecorder()
	e.api.ServeHTTP(w, r)
	var out map[string]any
	if err := json.Unmarshal(w.Body.Bytes(), &out); err != nil {
		e.t.Fatalf("%s %s: answer is not JSON: %s", method, path, w.Body)
	}
	return w.Code, w.Header().Get("Retry-After"), out
}

// retryAfter checks a 429 of the rate limits: a cloudFault, and a
// Retry-After of whole seconds from 1 to most; it returns the wait.
func retryAfter(t *testing.T, status int, header string, out map[string]any, most time.Duration) time.Duration {
	t.Helper()
	if status != http.StatusTooManyRequests {
		t.Fatalf("status %d, want 429: %v", status, out)
	}
	restFault(t, out, "tooManyRequests", http.StatusTooManyRequests)
	secs, err := strconv.Atoi(header)
	if err != nil || secs < 1 || time.Duration(secs)*time.Second > most {
		t.Fatalf("Retry-After %q, want whole seconds from 1 to %v", header, most)
	}
	return time.Duration(secs) * time.Second
}

// TestAbuseLimiterBounded: a spray of usernames (and addresses) cannot
// grow the limiter past its cap, and buckets that have refilled go, while
// one that is still spent stays.
func TestAbuseLimiterBounded(t *testing.T) {
	clock := newTestClock()
	l := newRateLimiter(clock.Now)
	l.maxBuckets = 500

	// A user spends their budget of failed logins.
	victim := restLoginLimit.keys("victim@example.com", "192.0.2.1")
	for range restLoginLimit.perUser {
		if d := l.take(victim[:]...); d != 0 {
			t.Fatalf("attempt refused too early: wait %v", d)
		}
	}
	if d := l.wait(victim[:]...); d <= 0 {
		t.Fatal("the spent user may still try")
	}

	// A spray of 5,000 usernames from 1,250 addresses, 4 ms apart.
	for i := range 5_000 {
		clock.Advance(4 * time.Millisecond)
		k := restLoginLimit.keys(fmt.Sprintf("spray%d@example.com", i), fmt.Sprintf("198.51.%d.%d", i/250%5, i%250))
		l.take(k[:]...)
		if n := l.size(); n > l.maxBuckets {
			t.Fatalf("after %d sprayed keys the limiter holds %d buckets, over its cap %d", i+1, n, l.maxBuckets)
		}
	}

	// Past a full refill, the next new key sweeps every bucket away.
	clock.Advance(restLoginLimit.window)
	k := restLoginLimit.keys("late@example.com", "203.0.113.9")
	l.take(k[:]...)
	if n := l.size(); n != 2 {
		t.Fatalf("after a refill the limiter holds %d buckets, want the 2 just made", n)
	}

	// A bucket that is still spent survives a sweep: 2 attempts earned
	// back in a minute, not a fresh budget.
	for range restLoginLimit.perUser {
		l.take(victim[:]...)
	}
	clock.Advance(sweepInterval + time.Second) // earns 2 attempts back (1 each 30 s)
	k = restLoginLimit.keys("sweeper@example.com", "203.0.113.10")
	l.take(k[:]...) // sweeps
	for i := range 2 {
		if d := l.take(victim[:]...); d != 0 {
			t.Fatalf("earned attempt %d refused: wait %v", i+1, d)
		}
	}
	if d := l.take(victim[:]...); d <= 0 || d > 30*time.Second {
		t.Fatalf("the spent user's bucket was swept: wait %v, want 0 < wait <= 30s", d)
	}
}

// badToken is a random token of one of the shapes a guesser sends.
func badToken(i int) (secret, reason string) {
	var b [32]byte
	_, _ = rand.Read(b[:])
	r := base64.RawURLEncoding.EncodeToString(b[:])
	switch i % 5 {
	case 0:
		return "", "missing"
	case 1:
		return "qls_" + r, "unknown" // the form of a session token
	case 2:
		return "qlk_" + r, "unknown"
	case 3:
		return r[:40], "unknown" // could be an imported secret
	default:
		return r[:8], "malformed" // too short to be any token
	}
}

// TestAuthFailuresFlood: 5,000 calls with bad tokens are all 401, counted
// by reason, and change nothing.
func TestAuthFailuresFlood(t *testing.T) {
	e := newEnvWith(t, zerolog.Nop(), prometheus.NewRegistry())
	before := e.scrape()
	for _, r := range authReasons {
		if _, ok := sample(before, "quotaledger_auth_failures_total", "reason", r); !ok {
			t.Errorf("quotaledger_auth_failures_total{reason=%q} is not exported before any failure", r)
		}
	}
	state, restState := e.state(), e.restState()

	const n, workers = 5000, 8
	routes := []struct{ method, path, body string }{
		{"GET", "/account/v1.0/quotas", ""},
		{"GET", "/account/v1.0/auth/whoami", ""},
		{"POST", "/account/v1.0/commissions", `{"provisions":[{"holder":"h","source":"system","resource":"cyclades.vm","quantity":1}]}`},
		{"POST", "/account/v1.0/holdings", `{"holdings":[{"holder":"h","source":"system","resource":"cyclades.vm","limit":1}]}`},
		{"DELETE", "/account/v1.0/access_tokens/x", ""},
	}
	want := map[string]int{}
	for i := range n {
		_, reason := badToken(i)
		want[reason]++
	}
	// Straight through the handler: the race detector makes a loopback
	// round trip cost more than the whole of what is tested.
	var wg sync.WaitGroup
	errs := make(chan error, workers)
	for w := range workers {
		wg.Go(func() {
			for i := w; i < n; i += workers {
				secret, _ := badToken(i)
				rt := routes[i%len(routes)]
				req := httptest.NewRequest(rt.method, rt.path, strings.NewReader(rt.body))
				if secret != "" {
					req.Header.Set("X-Auth-Token", secret)
				}
				rec := httptest.NewRecorder()
				e.api.ServeHTTP(rec, req)
				if rec.Code != http.StatusUnauthorized {
					errs <- fmt.Errorf("%s %s with token %q: %d, want 401", rt.method, rt.path, secret, rec.Code)
					return
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}

	after := e.scrape()
	total := 0.0
	for _, r := range authReasons {
		got, _ := sample(after, "quotaledger_auth_failures_total", "reason", r)
		was, _ := sample(before, "quotaledger_auth_failures_total", "reason", r)
		if got-was != float64(want[r]) {
			t.Errorf("quotaledger_auth_failures_total{reason=%q} rose by %v, want %d", r, got-was, want[r])
		}
		total += got - was
	}
	if total != n {
		t.Errorf("quotaledger_auth_failures_total rose by %v, want %d", total, n)
	}
	if got := e.state(); fmt.Sprint(got) != fmt.Sprint(state) {
		t.Errorf("the flood changed the ledger:\n%v\n%v", state, got)
	}
	if got := e.restState(); got != restState {
		t.Errorf("the flood changed the identity state:\n%s\n%s", restState, got)
	}
	// The real tokens still work.
	e.restWant(200, "GET", "/account/v1.0/auth/whoami", e.user, nil)
}

// BenchmarkBadToken is the whole handler's cost of a call with a bad
// token (routing, authentication, the 401, its metrics and its log line,
// JSON to a discarded log), by the token's shape:
//
//	go test ./api -run '^$' -bench BadToken -benchmem
func BenchmarkBadToken(b *testing.B) {
	e := newEnvWith(b, zerolog.New(io.Discard), nil)
	for _, tc := range []struct{ name, token string }{
		{"unknown", "qls_" + strings.Repeat("A", 43)},
		{"imported", strings.Repeat("x", 40)},
		{"malformed", "not a token"},
		{"missing", ""},
	} {
		b.Run(tc.name, func(b *testing.B) {
			r := httptest.NewRequest("GET", "/account/v1.0/quotas", nil)
			if tc.token != "" {
				r.Header.Set("X-Auth-Token", tc.token)
			}
			w := &discardWriter{h: http.Header{}}
			b.ReportAllocs()
			for b.Loop() {
				clear(w.h)
				e.api.ServeHTTP(w, r)
				if w.status != http.StatusUnauthorized {
					b.Fatalf("status %d", w.status)
				}
			}
		})
	}
}

// discardWriter is a ResponseWriter that keeps only the status.
type discardWriter struct {
	h      http.Header
	status int
}

func (w *discardWriter) Header() http.Header         { return w.h }
func (w *discardWriter) Write(p []byte) (int, error) { return len(p), nil }
func (w *discardWriter) WriteHeader(code int)        { w.status = code }

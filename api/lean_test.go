package api

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"math"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"testing"
	"testing/iotest"

	"github.com/cockroachdb/pebble/v2/vfs"
	"github.com/rs/zerolog"

	"github.com/quotaledger/quotaledger/api/wire"
	"github.com/quotaledger/quotaledger/ledger"
)

// The per-request state the server keeps between requests (the pooled
// writer and call, the pooled body buffers) must carry nothing from one
// request to the next. These tests call the handler in one goroutine, one
// request after another, so that the pools hand the same objects back.

// leanEnv is a server with a small body limit over a ledger in memory,
// logging to log, with the service "cyclades" (its token).
func leanEnv(t *testing.T, log zerolog.Logger, maxBody int64) (*Server, string) {
	t.Helper()
	l, id := openStores(t, ledger.Options{Dir: "/l", FS: vfs.NewMem(), NoFreeSpaceCheck: true}, zerolog.Nop(), nil)
	token, _, err := id.CreateService(context.Background(), identityService("cyclades"))
	if err != nil {
		t.Fatal(err)
	}
	return New(l, id, Options{Logger: log, MaxBody: maxBody}), token
}

// serveDirect calls the handler in this goroutine.
func serveDirect(s *Server, method, path, token string, body io.Reader, header map[string]string) *httptest.ResponseRecorder {
	req := httptest.NewRequest(method, path, body)
	if token != "" {
		req.Header.Set("X-Auth-Token", token)
	}
	for k, v := range header {
		req.Header.Set(k, v)
	}
	w := httptest.NewRecorder()
	s.ServeHTTP(w, req)
	return w
}

// TestRequestLinesCarryNothing: each request's log line names its own
// caller and request id, whatever the request before it was, and the
// X-Request-Id answered is the one sent (up to 64 bytes), else a fresh
// one of 16 hex digits.
func TestRequestLinesCarryNothing(t *testing.T) {
	var sink syncBuffer
	s, token := leanEnv(t, zerolog.New(&sink), 1<<20)
	type sent struct {
		method, path, token, id string
		status                  int
		principal               string // "" for none
	}
	calls := []sent{
		{"POST", "/account/v1.0/commissions", token, "", http.StatusCreated, "cyclades"},
		{"GET", "/healthz", "", "", http.StatusOK, ""},
		{"POST", "/account/v1.0/commissions", token, "caller-chosen-id", http.StatusCreated, "cyclades"},
		{"POST", "/account/v1.0/commissions", "qlp_not_a_real_token_at_all", "", http.StatusUnauthorized, ""},
		{"POST", "/account/v1.0/commissions", token, strings.Repeat("x", 65), http.StatusCreated, "cyclades"},
		{"GET", "/no/such/route", "", "", http.StatusNotFound, ""},
	}
	hex16 := regexp.MustCompile(`^[0-9a-f]{16}$`)
	seen := map[string]bool{}
	for i, c := range calls {
		var h map[string]string
		if c.id != "" {
			h = map[string]string{"X-Request-Id": c.id}
		}
		w := serveDirect(s, c.method, c.path, c.token, strings.NewReader(`{"provisions":[]}`), h)
		if w.Code != c.status {
			t.Fatalf("call %d: %d %s, want %d", i, w.Code, w.Body, c.status)
		}
		id := w.Header().Get("X-Request-Id")
		switch {
		case c.id != "" && len(c.id) <= 64:
			if id != c.id {
				t.Errorf("call %d: X-Request-Id %q, want the one sent, %q", i, id, c.id)
			}
		case !hex16.MatchString(id) || seen[id]:
			t.Errorf("call %d: X-Request-Id %q: not 16 hex digits, or seen before", i, id)
		}
		seen[id] = true
		lines := strings.Split(strings.TrimSpace(sink.String()), "\n")
		if len(lines) != i+1 {
			t.Fatalf("call %d: %d log lines, want %d:\n%s", i, len(lines), i+1, sink.String())
		}
		var line map[string]any
		if err := json.Unmarshal([]byte(lines[i]), &line); err != nil {
			t.Fatal(err)
		}
		principal, _ := line["principal"].(string)
		if line["request_id"] != id || principal != c.principal || line["status"] != float64(c.status) || line["method"] != c.method {
			t.Errorf("call %d (%s %s, principal %q, id %q): log line %s", i, c.method, c.path, c.principal, id, lines[i])
		}
	}
}

// TestPooledBody: the commission routes read their bodies into pooled
// buffers; a body is read whole whatever the reader's pieces, up to the
// limit and not a byte more, whatever the bodies before it were.
func TestPooledBody(t *testing.T) {
	const limit = 300
	s, token := leanEnv(t, zerolog.Nop(), limit)
	// body is an issue body of exactly n bytes (at least 32).
	body := func(n int) string {
		b := `{"provisions":[],"pad":"` + strings.Repeat("x", n-26) + `"}`
		if len(b) != n {
			t.Fatalf("body of %d bytes, want %d", len(b), n)
		}
		return b
	}
	for i, c := range []struct {
		body   io.Reader
		status int
		msg    string
	}{
		{strings.NewReader(body(limit)), http.StatusCreated, ""},
		{strings.NewReader(body(32)), http.StatusCreated, ""},
		{strings.NewReader(body(limit + 1)), http.StatusRequestEntityTooLarge, "request body larger than 300 bytes"},
		{strings.NewReader(`{"provisions":[]}`), http.StatusCreated, ""},
		{iotest.OneByteReader(strings.NewReader(body(limit))), http.StatusCreated, ""},
		{iotest.HalfReader(strings.NewReader(body(limit + 1))), http.StatusRequestEntityTooLarge, "request body larger than 300 bytes"},
		{iotest.DataErrReader(strings.NewReader(body(100))), http.StatusCreated, ""},
		{io.MultiReader(strings.NewReader(`{"provisions":[`), iotest.ErrReader(errors.New("cut"))), http.StatusBadRequest, "could not read the request body"},
		{strings.NewReader("{\"provisions\":[],\"x\":\"\xff\"}"), http.StatusBadRequest, "request body is not valid UTF-8"},
		{strings.NewReader(`{"provisions":[]}`), http.StatusCreated, ""},
		{strings.NewReader(`{"provisions":[1]}`), http.StatusBadRequest, "Malformed provision 0: a provision is an object {holder, source, resource, quantity}"},
	} {
		w := serveDirect(s, "POST", "/account/v1.0/commissions", token, c.body, nil)
		if w.Code != c.status {
			t.Fatalf("body %d: %d %s, want %d", i, w.Code, w.Body, c.status)
		}
		if c.msg != "" && !bytes.Contains(w.Body.Bytes(), []byte(`"message":"`+c.msg+`"`)) {
			t.Fatalf("body %d: %s, want the message %q", i, w.Body, c.msg)
		}
	}
}

// TestReadAll holds readAll, the pooled bodies' reader, to what it
// replaces, io.ReadAll from http.MaxBytesReader, on readers that give
// their bytes in pieces, fail, or hold more than the limit.
func TestReadAll(t *testing.T) {
	const limit = 64
	data := strings.Repeat("0123456789", 10)
	readers := map[string]func() io.Reader{}
	for _, n := range []int{0, 1, limit - 1, limit, limit + 1, 100} {
		src := data[:n]
		readers["whole "+src] = func() io.Reader { return strings.NewReader(src) }
		readers["one byte "+src] = func() io.Reader { return iotest.OneByteReader(strings.NewReader(src)) }
		readers["half "+src] = func() io.Reader { return iotest.HalfReader(strings.NewReader(src)) }
		readers["data with EOF "+src] = func() io.Reader { return iotest.DataErrReader(strings.NewReader(src)) }
		readers["then an error "+src] = func() io.Reader {
			return io.MultiReader(strings.NewReader(src), iotest.ErrReader(errors.New("cut")))
		}
	}
	if got, err := readAll(nil, strings.NewReader(data), math.MaxInt64); err != nil || string(got) != data {
		t.Errorf("no limit to speak of: %q %v", got, err)
	}
	for name, r := range readers {
		want, wantErr := io.ReadAll(http.MaxBytesReader(nil, io.NopCloser(r()), limit))
		for _, buf := range [][]byte{nil, make([]byte, 0, 8), make([]byte, 3, 200)} {
			got, gotErr := readAll(buf[:0], r(), limit)
			var tooBig *http.MaxBytesError
			if errors.As(wantErr, &tooBig) != errors.As(gotErr, &tooBig) || (wantErr == nil) != (gotErr == nil) {
				t.Errorf("%s (buffer of %d): error %v, want %v", name, cap(buf), gotErr, wantErr)
			}
			if wantErr == nil && string(got) != string(want) {
				t.Errorf("%s (buffer of %d): %q, want %q", name, cap(buf), got, want)
			}
			if len(got) > limit+1 {
				t.Errorf("%s (buffer of %d): read %d bytes, past the limit and one", name, cap(buf), len(got))
			}
		}
	}
}

// TestAnswersByHand: the commission answers written without reflection
// (the resolve-many answer, the pending list) are byte for byte what
// encoding/json makes of their wire types.
func TestAnswersByHand(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	serials := func() []int64 {
		switch rng.IntN(4) {
		case 0:
			return nil
		case 1:
			return []int64{}
		}
		vs := make([]int64, 1+rng.IntN(5))
		for i := range vs {
			vs[i] = rng.Int64() >> rng.IntN(64)
			if rng.IntN(2) == 0 {
				vs[i] = -vs[i]
			}
		}
		return vs
	}
	messages := []string{"serial 7 does not exist", `<b>&"quoted"</b>`, "é\u2028\x01", "\xff"}
	for i := range 2000 {
		r := wire.Resolved{Accepted: serials(), Rejected: serials()}
		if n := rng.IntN(4); n > 0 {
			r.Failed = []wire.FailedSerial{}
			for range n - 1 {
				f := newFault([]int{400, 404, 409}[rng.IntN(3)], messages[rng.IntN(len(messages))])
				r.Failed = append(r.Failed, failedSerial(rng.Int64(), f))
			}
		}
		want, err := json.Marshal(r)
		if err != nil {
			t.Fatal(err)
		}
		got, err := appendResolved([]byte("x"), r)
		if err != nil || string(got) != "x"+string(want) {
			t.Fatalf("case %d: %+v\n got %s %v\nwant x%s", i, r, got, err, want)
		}
		want, _ = json.Marshal(r.Accepted)
		if got := appendSerials(nil, r.Accepted); string(got) != string(want) {
			t.Fatalf("case %d: serials %v: %s, want %s", i, r.Accepted, got, want)
		}
	}
}

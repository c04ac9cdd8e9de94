package client_test

import (
	"errors"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/quotaledger/quotaledger/api/client"
)

// FuzzAnswerDecoding serves arbitrary answers (a status and a body) to the
// Go client's calls over real HTTP (issue 17): it never panics; a 2xx is a
// result or an InvalidResponse of that status; any other status is an
// error of that status and request id, of the typed error of its status,
// with a message; the failures inside a resolve-many's answer are errors
// too.
func FuzzAnswerDecoding(f *testing.F) {
	var status int
	var body []byte
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("X-Request-Id", "req-1")
		w.WriteHeader(status)
		_, _ = w.Write(body)
	}))
	f.Cleanup(srv.Close)
	c, err := client.New(srv.URL, "qlk_token", client.Options{NoTokenPickup: true})
	if err != nil {
		f.Fatal(err)
	}
	for _, seed := range []struct {
		call   uint8
		status uint16
		body   string
	}{
		{0, 200, `{"u1":{"system":{"cyclades.vm":{"limit":2,"usage":1,"pending":0}}}}`},
		{1, 200, `{"count":1,"next":null,"previous":null,"results":[{"serial":1,"service":"cyclades","age":3}]}`},
		{2, 200, `{"accepted":[1],"rejected":[],"failed":[[2,{"itemNotFound":{"code":404,"message":"x"}}]]}`},
		{2, 200, `{"accepted":[],"rejected":[],"failed":[[2,{"overLimit":{"code":413,"message":"x","data":{"provision":{"holder":"h","source":null,"resource":"r","quantity":1},"name":"NoCapacityError","limit":1,"usage":1}}}]]}`},
		{3, 201, `{"serial":0}`},
		{3, 413, `{"overLimit":{"code":413,"message":"over","data":{"provision":{"holder":"h","source":"s","resource":"r","quantity":3},"name":"NoCapacityError","limit":2,"usage":0}}}`},
		{3, 404, `{"itemNotFound":{"code":500,"message":"the code is not the status"}}`},
		{4, 401, `{"unauthorized":null}`},
		{4, 429, `not json at all`},
		{4, 503, ``},
		{0, 200, `[`},
		{1, 200, "\xff\xfe"},
		{2, 500, `{"a":{},"b":{}}`},
		{4, 302, `{}`},
	} {
		f.Add(seed.call, seed.status, []byte(seed.body))
	}
	typedFor := map[int]func(error) bool{
		400: func(err error) bool { var e *client.BadRequest; return errors.As(err, &e) },
		401: func(err error) bool { var e *client.Unauthorized; return errors.As(err, &e) },
		403: func(err error) bool { var e *client.Forbidden; return errors.As(err, &e) },
		404: func(err error) bool { var e *client.NotFound; return errors.As(err, &e) },
		409: func(err error) bool { var e *client.Conflict; return errors.As(err, &e) },
		429: func(err error) bool { var e *client.TooManyRequests; return errors.As(err, &e) },
		503: func(err error) bool { var e *client.ServiceUnavailable; return errors.As(err, &e) },
	}
	f.Fuzz(func(t *testing.T, call uint8, st uint16, raw []byte) {
		status, body = int(st), raw
		if status < 200 || status > 599 {
			status = 200 + status%400
		}
		if status == 204 || status == 304 {
			status = 200 // no body goes with these
		}
		ctx := t.Context()
		var err error
		var resolved *client.Resolved
		switch call % 5 {
		case 0:
			_, err = c.GetQuotas(ctx)
		case 1:
			_, err = c.FindPendingCommissions(ctx, client.PendingFilter{})
		case 2:
			resolved, err = c.ResolveCommissions(ctx, []int64{1}, nil)
		case 3:
			_, err = c.IssueCommission(ctx, client.Commission{})
		case 4:
			_, err = c.Whoami(ctx)
		}
		if status < 300 {
			var inv *client.InvalidResponse
			if err != nil && (!errors.As(err, &inv) || client.StatusOf(err) != status) {
				t.Fatalf("%d %q: %v, want a result or an InvalidResponse", status, raw, err)
			}
			if resolved != nil {
				for _, fl := range resolved.Failed {
					if fl.Err == nil || fl.Err.Error() == "" {
						t.Fatalf("%q: a failure without its error: %+v", raw, fl)
					}
				}
			}
			return
		}
		var e *client.Error
		if err == nil || !errors.As(err, &e) || e.Status != status || client.StatusOf(err) != status || e.RequestID != "req-1" {
			t.Fatalf("%d %q: %#v, want an error of status %d", status, raw, err, status)
		}
		if e.Message == "" || err.Error() == "" {
			t.Fatalf("%d %q: an error without a message: %#v", status, raw, e)
		}
		if is, ok := typedFor[status]; ok && !is(err) {
			t.Fatalf("%d %q: %T, not the typed error of its status", status, raw, err)
		}
	})
}

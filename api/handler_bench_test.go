package api

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"testing"

	"github.com/rs/zerolog"

	"github.com/quotaledger/quotaledger/holdings"
	"github.com/quotaledger/quotaledger/ledger"
)

// BenchmarkHandlerIssueAccept is the server's side of a commission without
// the network: a 2-provision issue and its accept through ServeHTTP, on a
// ledger on an in-memory filesystem (so that the disk's syncs do not hide
// the HTTP layer's cost), each request logging its line as serve's logger
// does (JSON with a timestamp, here to io.Discard). Run:
//
//	go test ./api -run '^$' -bench BenchmarkHandlerIssueAccept -benchmem -benchtime 20000x
func BenchmarkHandlerIssueAccept(b *testing.B) {
	l, id := openStores(b, ledger.Options{}, zerolog.Nop(), nil)
	ctx := context.Background()
	token, _, err := id.CreateService(ctx, identityService("cyclades"))
	if err != nil {
		b.Fatal(err)
	}
	keys := []holdings.Key{
		{Holder: "user:u", Source: holdings.SourceOf("project:p"), Resource: "cyclades.vm"},
		{Holder: "project:p", Source: holdings.NullSource, Resource: "cyclades.vm"},
	}
	if err := l.SetHoldings(ctx, []ledger.HoldingSetting{{Key: keys[0], Limit: 1 << 60}, {Key: keys[1], Limit: 1 << 60}}); err != nil {
		b.Fatal(err)
	}
	srv := New(l, id, Options{Logger: zerolog.New(io.Discard).With().Timestamp().Logger()})
	issue := []byte(`{"name":"vm","provisions":[` +
		`{"holder":"user:u","source":"project:p","resource":"cyclades.vm","quantity":1},` +
		`{"holder":"project:p","source":null,"resource":"cyclades.vm","quantity":1}]}`)
	accept := []byte(`{"accept":""}`)
	call := func(path string, body []byte) *httptest.ResponseRecorder {
		req := httptest.NewRequest(http.MethodPost, path, bytes.NewReader(body))
		req.Header.Set("X-Auth-Token", token)
		w := httptest.NewRecorder()
		srv.ServeHTTP(w, req)
		return w
	}
	b.ReportAllocs()
	b.ResetTimer()
	for range b.N {
		w := call("/account/v1.0/commissions", issue)
		if w.Code != http.StatusCreated {
			b.Fatalf("issue: %d %s", w.Code, w.Body)
		}
		serial := bytes.TrimSuffix(bytes.TrimPrefix(w.Body.Bytes(), []byte(`{"serial":`)), []byte("}"))
		if _, err := strconv.ParseUint(string(serial), 10, 64); err != nil {
			b.Fatalf("issue answered %s", w.Body)
		}
		if w := call(fmt.Sprintf("/account/v1.0/commissions/%s/action", serial), accept); w.Code != http.StatusOK {
			b.Fatalf("accept: %d %s", w.Code, w.Body)
		}
	}
}

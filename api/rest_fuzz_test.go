package api

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/cockroachdb/pebble/v2/vfs"
	"github.com/rs/zerolog"

	"github.com/quotaledger/quotaledger/identity"
	"github.com/quotaledger/quotaledger/ledger"
)

// restFuzzServer is a server over a real ledger (in memory) with an admin
// token, made once per fuzz target: requests go straight to the handler.
func restFuzzServer(tb testing.TB) (*Server, *ledger.Ledger, *identity.Store, string) {
	tb.Helper()
	ctx := context.Background()
	l, id := openStores(tb, ledger.Options{Dir: "/l", FS: vfs.NewMem(), NoFreeSpaceCheck: true}, zerolog.Nop(), nil)
	admin, err := id.CreateUser(ctx, identity.NewUser{Username: "admin@example.com", Password: testPassword, Role: identity.RoleAdmin, Active: true})
	if err != nil {
		tb.Fatal(err)
	}
	tok, _, err := id.CreateAccessToken(ctx, admin.UUID, "admin", time.Time{}, false)
	if err != nil {
		tb.Fatal(err)
	}
	return New(l, id, Options{Logger: zerolog.Nop()}), l, id, tok
}

func restFuzzCall(s *Server, method, path, token string, body []byte) *httptest.ResponseRecorder {
	req := httptest.NewRequest(method, path, bytes.NewReader(body))
	if token != "" {
		req.Header.Set("X-Auth-Token", token)
	}
	w := httptest.NewRecorder()
	s.ServeHTTP(w, req)
	return w
}

// restCheckAnswer fails on a 5xx, and on a 4xx that is not a cloudFault.
func restCheckAnswer(t *testing.T, w *httptest.ResponseRecorder, body []byte) {
	t.Helper()
	if w.Code >= 500 {
		t.Fatalf("%q: %d %s", body, w.Code, w.Body.Bytes())
	}
	if w.Code >= 400 {
		var f map[string]map[string]any
		if err := json.Unmarshal(w.Body.Bytes(), &f); err != nil || len(f) != 1 {
			t.Fatalf("%q: %d, not a cloudFault: %s", body, w.Code, w.Body.Bytes())
		}
	}
}

// FuzzRestHoldingsSet sends arbitrary bodies to POST holdings: never a 5xx
// or a panic, and a refused body changes no holding.
func FuzzRestHoldingsSet(f *testing.F) {
	for _, seed := range []string{
		`{"holdings":[{"holder":"h0","source":"system","resource":"r1","limit":10}]}`,
		`{"holdings":[{"holder":"h0","source":null,"resource":"r1","limit":10},{"holder":"h0","source":null,"resource":"r1","limit":3}]}`,
		`{"holdings":[{"holder":"h","resource":"r","limit":9223372036854775807}]}`,
		`{"holdings":[{"holder":"h","resource":"r","limit":9223372036854775808}]}`,
		`{"holdings":[{"holder":"h","resource":"r","limit":-1}]}`,
		`{"holdings":[{"holder":"","resource":"r","limit":1}]}`,
		`{"holdings":[{"holder":"h","source":1,"resource":"r","limit":1}]}`,
		`{"holdings":[]}`, `{"holdings":null}`, `{}`, `[]`, `{`, ``, "{\"holdings\":[{\"holder\":\"\xff\"}]}",
		`{"holdings":[{"holder":"h","resource":"r","limit":1,"x":1}]}`,
		`{"holdings":[{"holder":"\ud800","resource":"r","limit":1}]}`,
	} {
		f.Add([]byte(seed))
	}
	s, l, _, admin := restFuzzServer(f)
	f.Fuzz(func(t *testing.T, body []byte) {
		before := l.Quotas(ledger.QuotaFilter{})
		w := restFuzzCall(s, "POST", "/account/v1.0/holdings", admin, body)
		restCheckAnswer(t, w, body)
		if w.Code != http.StatusOK {
			after := l.Quotas(ledger.QuotaFilter{})
			if len(after) != len(before) {
				t.Fatalf("%q: refused (%d) but holdings went from %d to %d", body, w.Code, len(before), len(after))
			}
			for i := range after {
				if after[i] != before[i] {
					t.Fatalf("%q: refused (%d) but %v became %v", body, w.Code, before[i], after[i])
				}
			}
		}
	})
}

// FuzzRestRegister sends arbitrary bodies to POST auth/register: never a
// 5xx or a panic, and a refused body makes no user.
func FuzzRestRegister(f *testing.F) {
	for _, seed := range []string{
		`{"username":"new@example.com","password":"a fine long password","first_name":"N","last_name":"P"}`,
		`{"email":"cvat@example.com","password1":"another fine one","password2":"another fine one"}`,
		`{"username":"new@example.com","password":"short"}`,
		`{"username":"not an email","password":"a fine long password"}`,
		`{"username":"x@example.com","password":"a fine long password","role":"admin"}`,
		`{"username":"x@example.com","password":12345678}`,
		`{"username":"x@example.com","email":"y@example.com","password":"a fine long password"}`,
		`{}`, `[]`, `null`, `{`, ``, "{\"username\":\"\xff@example.com\",\"password\":\"a fine long password\"}",
	} {
		f.Add([]byte(seed))
	}
	s, _, id, _ := restFuzzServer(f)
	f.Fuzz(func(t *testing.T, body []byte) {
		before, _, _ := id.ListUsers(identity.UserQuery{PageSize: 1})
		w := restFuzzCall(s, "POST", "/account/v1.0/auth/register", "", body)
		restCheckAnswer(t, w, body)
		after, _, _ := id.ListUsers(identity.UserQuery{PageSize: 1})
		switch {
		case w.Code == http.StatusCreated && after != before+1:
			t.Fatalf("%q: 201 but users went from %d to %d", body, before, after)
		case w.Code != http.StatusCreated && after != before:
			t.Fatalf("%q: refused (%d) but users went from %d to %d", body, w.Code, before, after)
		}
	})
}

package api

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/rs/zerolog"

	"github.com/quotaledger/quotaledger/holdings"
	"github.com/quotaledger/quotaledger/identity"
	"github.com/quotaledger/quotaledger/internal/testkit/identitytest"
	"github.com/quotaledger/quotaledger/ledger"
)

// restFuzzServer is a server over a real ledger (in memory) with the usual
// principals, made once per fuzz target, and the admin's token: requests
// go straight to the handler.
func restFuzzServer(tb testing.TB) (*Server, *ledger.Ledger, *identity.Store, string) {
	tb.Helper()
	l, id := openStores(tb, ledger.Options{}, zerolog.Nop(), nil)
	p := identitytest.AddPrincipals(tb, id)
	return New(l, id, Options{Logger: zerolog.Nop()}), l, id, p.AdminToken
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
// or a panic; a refused body changes no holding; an accepted one (200) sets
// exactly the limits it names (the last of a repeated key), keeps every
// usage, touches no other holding, and answers the holdings it set.
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
		`{"holdings":[{"holder":"h0","source":"","resource":"r1","limit":4},{"holder":"h0","resource":"r1","limit":5},{"holder":"h0","source":"","resource":"r1","limit":6}]}`,
		`{"holdings":[{"holder":"h0","source":"system","resource":"r1","limit":0},{"holder":"h1","source":"system","resource":"r1","limit":7}]}`,
	} {
		f.Add([]byte(seed))
	}
	s, l, _, admin := restFuzzServer(f)
	// Usage to keep: a holding with a pending and an accepted commission.
	used := holdings.Key{Holder: "h0", Source: holdings.SourceOf("system"), Resource: "r1"}
	ctx := context.Background()
	if err := l.SetHoldings(ctx, []ledger.HoldingSetting{{Key: used, Limit: 100}}); err != nil {
		f.Fatal(err)
	}
	for _, auto := range []bool{true, false} {
		if _, err := l.Issue(ctx, ledger.IssueRequest{Client: "c", AutoAccept: auto,
			Provisions: []holdings.Provision{{Key: used, Quantity: 3}}}); err != nil {
			f.Fatal(err)
		}
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		before := l.FindHoldings(ledger.HoldingFilter{})
		w := restFuzzCall(s, "POST", "/account/v1.0/holdings", admin, body)
		restCheckAnswer(t, w, body)
		after := l.FindHoldings(ledger.HoldingFilter{})
		if w.Code != http.StatusOK {
			if len(after) != len(before) {
				t.Fatalf("%q: refused (%d) but holdings went from %d to %d", body, w.Code, len(before), len(after))
			}
			for i := range after {
				if after[i] != before[i] {
					t.Fatalf("%q: refused (%d) but %v became %v", body, w.Code, before[i], after[i])
				}
			}
			return
		}
		// What the body asks, read apart from the handler.
		var in struct {
			Holdings []struct {
				Holder   string  `json:"holder"`
				Source   *string `json:"source"` // missing or null: the null source
				Resource string  `json:"resource"`
				Limit    int64   `json:"limit"`
			} `json:"holdings"`
		}
		if err := json.Unmarshal(body, &in); err != nil {
			t.Fatalf("%q: accepted, but it is not a list of holdings: %v", body, err)
		}
		want := map[holdings.Key]int64{}
		var order []holdings.Key
		for _, e := range in.Holdings {
			k := holdings.Key{Holder: e.Holder, Source: holdings.NullSource, Resource: e.Resource}
			if e.Source != nil {
				k.Source = holdings.SourceOf(*e.Source)
			}
			if k.Holder == "" || k.Resource == "" || e.Limit < 0 {
				t.Fatalf("%q: accepted a holding without holder or resource, or a negative limit: %+v", body, e)
			}
			if _, ok := want[k]; !ok {
				order = append(order, k)
			}
			want[k] = e.Limit
		}
		was := map[holdings.Key]holdings.Value{}
		for _, h := range before {
			was[h.Key] = h.Value
		}
		now := map[holdings.Key]holdings.Value{}
		for _, h := range after {
			now[h.Key] = h.Value
		}
		for k, v := range was {
			if _, set := want[k]; !set && now[k] != v {
				t.Fatalf("%q: %v, not in the body, went from %+v to %+v", body, k, v, now[k])
			}
		}
		for k, limit := range want {
			old := was[k] // zero usage if new
			if v, ok := now[k]; !ok || v != (holdings.Value{Limit: limit, UsageMin: old.UsageMin, UsageMax: old.UsageMax}) {
				t.Fatalf("%q: %v is %+v (exists %v), want limit %d and the usage of %+v", body, k, v, ok, limit, old)
			}
			was[k] = now[k]
		}
		if len(now) != len(was) {
			t.Fatalf("%q: %d holdings after, want %d", body, len(now), len(was))
		}
		// The answer: the holdings set, in the order the body first names them.
		var out struct {
			Holdings []struct {
				Holder   string  `json:"holder"`
				Source   *string `json:"source"`
				Resource string  `json:"resource"`
				Limit    int64   `json:"limit"`
				UsageMin int64   `json:"usage_min"`
				UsageMax int64   `json:"usage_max"`
			} `json:"holdings"`
		}
		if err := json.Unmarshal(w.Body.Bytes(), &out); err != nil || len(out.Holdings) != len(order) {
			t.Fatalf("%q: answer %s (%v), want %d holdings", body, w.Body.Bytes(), err, len(order))
		}
		for i, k := range order {
			h := out.Holdings[i]
			v := now[k]
			if h.Holder != k.Holder || h.Resource != k.Resource || (h.Source == nil) != k.Source.IsNull() ||
				h.Source != nil && *h.Source != k.Source.Name() ||
				h.Limit != v.Limit || h.UsageMin != v.UsageMin || h.UsageMax != v.UsageMax {
				t.Fatalf("%q: answer %d is %+v, want %v %+v", body, i, h, k, v)
			}
		}
	})
}

// FuzzRestRegister sends arbitrary bodies to POST auth/register: never a
// 5xx or a panic; a refused body makes no user; an accepted one (201) makes
// exactly one, with the username, names and password sent, as the answer
// and the store both show.
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
		`{"username":" spaced@example.com ","password":"a fine long password","display_name":"Spaced Out"}`,
		`{"username":"Both@Example.com","email":"Both@Example.com","password":"a fine long password","password_confirm":"a fine long password","last_name":"Only"}`,
	} {
		f.Add([]byte(seed))
	}
	s, _, id, _ := restFuzzServer(f)
	f.Fuzz(func(t *testing.T, body []byte) {
		_, before, _ := id.FindUsers(identity.UserFilter{Limit: 1})
		w := restFuzzCall(s, "POST", "/account/v1.0/auth/register", "", body)
		restCheckAnswer(t, w, body)
		_, after, _ := id.FindUsers(identity.UserFilter{Limit: 1})
		switch {
		case w.Code == http.StatusCreated && after != before+1:
			t.Fatalf("%q: 201 but users went from %d to %d", body, before, after)
		case w.Code != http.StatusCreated && after != before:
			t.Fatalf("%q: refused (%d) but users went from %d to %d", body, w.Code, before, after)
		}
		if w.Code != http.StatusCreated {
			return
		}
		// What the body asks, read apart from the handler.
		var in struct {
			Username  *string `json:"username"`
			Email     *string `json:"email"`
			Password  *string `json:"password"`
			Password1 *string `json:"password1"`
			FirstName string  `json:"first_name"`
			LastName  string  `json:"last_name"`
			Display   string  `json:"display_name"`
		}
		if err := json.Unmarshal(body, &in); err != nil {
			t.Fatalf("%q: 201, but it is not a sign-up: %v", body, err)
		}
		name, password := in.Username, in.Password
		if name == nil {
			name = in.Email
		}
		if password == nil {
			password = in.Password1
		}
		if name == nil || password == nil {
			t.Fatalf("%q: 201 without a username or a password", body)
		}
		username := strings.TrimSpace(*name)
		display := in.Display
		if display == "" {
			display = strings.TrimSpace(in.FirstName + " " + in.LastName)
		}
		if display == "" {
			display = username
		}
		var out struct {
			UUID        string `json:"uuid"`
			Username    string `json:"username"`
			DisplayName string `json:"display_name"`
			FirstName   string `json:"first_name"`
			LastName    string `json:"last_name"`
			Role        string `json:"role"`
			Active      bool   `json:"active"`
		}
		if err := json.Unmarshal(w.Body.Bytes(), &out); err != nil {
			t.Fatalf("%q: 201 with %s: %v", body, w.Body.Bytes(), err)
		}
		u, err := id.FindUserByID(out.UUID)
		if err != nil {
			t.Fatalf("%q: 201 with uuid %q, but the store has no such user: %v", body, out.UUID, err)
		}
		if u.Username != username || u.FirstName != in.FirstName || u.LastName != in.LastName ||
			u.DisplayName != display || u.Role != identity.RoleUser || !u.Active {
			t.Fatalf("%q: stored username %q, names %q %q, display %q, role %s, active %v; want %q, %q %q, %q, an active user",
				body, u.Username, u.FirstName, u.LastName, u.DisplayName, u.Role, u.Active, username, in.FirstName, in.LastName, display)
		}
		if out.Username != u.Username || out.DisplayName != u.DisplayName || out.FirstName != u.FirstName ||
			out.LastName != u.LastName || out.Role != string(u.Role) || out.Active != u.Active {
			t.Fatalf("%q: answered %+v, stored username %q, names %q %q, display %q, role %s, active %v",
				body, out, u.Username, u.FirstName, u.LastName, u.DisplayName, u.Role, u.Active)
		}
		if byName, err := id.FindUserByName(username); err != nil || byName.UUID != u.UUID {
			t.Fatalf("%q: %q finds %v %v, want %s", body, username, byName, err, u.UUID)
		}
		if _, _, who, err := id.Login(context.Background(), username, *password, identity.Origin{}); err != nil || who.UUID != u.UUID {
			t.Fatalf("%q: login with the password sent: %v %v", body, who, err)
		}
	})
}

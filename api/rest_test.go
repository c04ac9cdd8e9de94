package api

import (
	"context"
	"encoding/json"
	"fmt"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/quotaledger/quotaledger/holdings"
	"github.com/quotaledger/quotaledger/identity"
	"github.com/quotaledger/quotaledger/ledger"
)

const restBase = "/account/v1.0/"

// restWant fails unless status is want.
func (e *env) restWant(want int, method, path, token string, body any) map[string]any {
	e.t.Helper()
	st, out := e.do(method, path, token, body)
	if st != want {
		e.t.Fatalf("%s %s: status %d, want %d: %v", method, path, st, want, out)
	}
	return out
}

// restFault checks a cloudFault answer of kind with code.
func restFault(t *testing.T, out map[string]any, kind string, code int) string {
	t.Helper()
	f, ok := out[kind].(map[string]any)
	if !ok {
		t.Fatalf("answer is not a %s fault: %v", kind, out)
	}
	if f["code"] != float64(code) {
		t.Fatalf("fault code %v, want %d", f["code"], code)
	}
	msg, _ := f["message"].(string)
	if msg == "" {
		t.Fatalf("fault without a message: %v", out)
	}
	return msg
}

func restRFC3339UTC(t *testing.T, v any) time.Time {
	t.Helper()
	s, ok := v.(string)
	if !ok || !strings.HasSuffix(s, "Z") {
		t.Fatalf("time %v is not an RFC 3339 UTC string", v)
	}
	tm, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		t.Fatal(err)
	}
	return tm
}

func (e *env) restToken(owner string, readOnly bool) string {
	e.t.Helper()
	secret, _, err := e.id.CreateAccessToken(context.Background(), owner, "t", time.Time{}, readOnly)
	if err != nil {
		e.t.Fatal(err)
	}
	return secret
}

func (e *env) restNewUser(name string) (*identity.User, string) {
	e.t.Helper()
	ctx := context.Background()
	u, err := e.id.CreateUser(ctx, identity.NewUser{Username: name, Password: testPassword, Active: true})
	if err != nil {
		e.t.Fatal(err)
	}
	secret, _, _, err := e.id.Login(ctx, name, testPassword, identity.Origin{})
	if err != nil {
		e.t.Fatal(err)
	}
	return u, secret
}

func (e *env) restState() string {
	e.t.Helper()
	_, users, _ := e.id.FindUsers(identity.UserFilter{Limit: 1})
	_, toks, _ := e.id.FindAccessTokens(identity.TokenFilter{Limit: 1})
	_, groups, _ := e.id.FindGroups(identity.GroupFilter{Limit: 1})
	_, projects, _ := e.id.FindProjects(identity.ProjectFilter{Limit: 1})
	_, services, _ := e.id.FindServices(identity.ServiceFilter{Limit: 1})
	_, resources, _ := e.id.FindResources(identity.ResourceFilter{Limit: 1})
	return fmt.Sprintf("holdings=%v users=%d tokens=%d groups=%d projects=%d services=%d resources=%d",
		e.l.FindHoldings(ledger.HoldingFilter{}), users, toks, groups, projects, services, resources)
}

func TestRestLoginContract(t *testing.T) {
	e := newEnv(t)
	out := e.restWant(200, "POST", restBase+"auth/login", "", `{"username":"user@example.com","password":"correct horse battery"}`)
	tok, _ := out["token"].(string)
	if !strings.HasPrefix(tok, "qls_") {
		t.Fatalf("token %q", tok)
	}
	if exp := restRFC3339UTC(t, out["expires"]); !exp.After(time.Now()) {
		t.Fatalf("expires %v is not in the future", exp)
	}
	user, _ := out["user"].(map[string]any)
	if user["uuid"] != e.userRec.UUID || user["username"] != "user@example.com" || user["password"] != nil {
		t.Fatalf("user %v", user)
	}
	// A token sent with a public call is ignored.
	e.restWant(200, "POST", restBase+"auth/login", "garbage", map[string]string{"username": "user@example.com", "password": testPassword})

	who := e.restWant(200, "GET", restBase+"auth/whoami", tok, nil)
	if who["uuid"] != e.userRec.UUID || who["auth"].(map[string]any)["kind"] != "session" {
		t.Fatalf("whoami %v", who)
	}
	restFault(t, e.restWant(401, "POST", restBase+"auth/login", "", `{"username":"user@example.com","password":"wrong password!"}`), "unauthorized", 401)
	restFault(t, e.restWant(401, "POST", restBase+"auth/login", "", `{"username":"nobody@example.com","password":"wrong password!"}`), "unauthorized", 401)
	restFault(t, e.restWant(400, "POST", restBase+"auth/login", "", `{"username":"user@example.com"}`), "badRequest", 400)
	restFault(t, e.restWant(400, "POST", restBase+"auth/login", "", `{"username":"user@example.com","password":"x","extra":1}`), "badRequest", 400)

	// Logout ends the session used, and only that one.
	e.restWant(200, "POST", restBase+"auth/logout", tok, nil)
	restFault(t, e.restWant(401, "GET", restBase+"auth/whoami", tok, nil), "unauthorized", 401)
	e.restWant(200, "GET", restBase+"auth/whoami", e.user, nil)
	// A personal token is not a session: 400, and it keeps working.
	pat := e.restToken(e.userRec.UUID, false)
	restFault(t, e.restWant(400, "POST", restBase+"auth/logout", pat, nil), "badRequest", 400)
	e.restWant(200, "GET", restBase+"auth/whoami", pat, nil)
}

// TestRestLoginRateLimit: failed logins and reset requests are limited per
// username and per address, each refusal a 429 whose Retry-After is when
// the next attempt is taken (by the limiter's clock, moved by hand).
func TestRestLoginRateLimit(t *testing.T) {
	e := newEnv(t)
	clock := newTestClock()
	e.api.limiter.now = clock.Now
	login, reset := restBase+"auth/login", restBase+"auth/password/reset"
	bad := func(user string) map[string]string {
		return map[string]string{"username": user, "password": "wrong password!"}
	}
	const a1, a2, a3 = "192.0.2.1:40000", "192.0.2.2:40000", "192.0.2.3:40000"

	t.Run("LoginPerUsername", func(t *testing.T) {
		for range restLoginLimit.perUser {
			if st, _, out := e.sendFrom(a1, "POST", login, bad("user@example.com")); st != 401 {
				t.Fatalf("failed login: %d %v", st, out)
			}
		}
		st, ra, out := e.sendFrom(a1, "POST", login, bad("user@example.com"))
		wait := retryAfter(t, st, ra, out, restLoginLimit.window/time.Duration(restLoginLimit.perUser))
		// The right password too, from another address; other users are
		// not affected.
		st, ra, out = e.sendFrom(a2, "POST", login, map[string]string{"username": "User@Example.com ", "password": testPassword})
		retryAfter(t, st, ra, out, wait)
		if st, _, out := e.sendFrom(a1, "POST", login, map[string]string{"username": "admin@example.com", "password": testPassword}); st != 200 {
			t.Fatalf("another user's login: %d %v", st, out)
		}
		// Once Retry-After has passed, one attempt is taken, then the next
		// waits again.
		clock.Advance(wait)
		if st, _, out := e.sendFrom(a1, "POST", login, map[string]string{"username": "user@example.com", "password": testPassword}); st != 200 {
			t.Fatalf("login after Retry-After: %d %v", st, out)
		}
		if st, _, out := e.sendFrom(a1, "POST", login, bad("user@example.com")); st != 401 {
			t.Fatalf("failed login after Retry-After: %d %v", st, out)
		}
		st, ra, out = e.sendFrom(a1, "POST", login, bad("user@example.com"))
		retryAfter(t, st, ra, out, wait)
	})

	t.Run("LoginPerAddress", func(t *testing.T) {
		for i := range restLoginLimit.perAddr {
			if st, _, out := e.sendFrom(a3, "POST", login, bad(fmt.Sprintf("nobody%d@example.com", i))); st != 401 {
				t.Fatalf("failed login %d: %d %v", i, st, out)
			}
		}
		st, ra, out := e.sendFrom(a3, "POST", login, map[string]string{"username": "admin@example.com", "password": testPassword})
		wait := retryAfter(t, st, ra, out, restLoginLimit.window/time.Duration(restLoginLimit.perAddr))
		// From another address, the same user logs in.
		if st, _, out := e.sendFrom(a2, "POST", login, map[string]string{"username": "admin@example.com", "password": testPassword}); st != 200 {
			t.Fatalf("login from another address: %d %v", st, out)
		}
		clock.Advance(wait)
		if st, _, out := e.sendFrom(a3, "POST", login, map[string]string{"username": "admin@example.com", "password": testPassword}); st != 200 {
			t.Fatalf("login after Retry-After: %d %v", st, out)
		}
	})

	t.Run("ResetPerUsername", func(t *testing.T) {
		for range restResetLimit.perUser {
			if st, _, out := e.sendFrom(a1, "POST", reset, map[string]string{"username": "user@example.com"}); st != 202 {
				t.Fatalf("reset: %d %v", st, out)
			}
		}
		st, ra, out := e.sendFrom(a2, "POST", reset, map[string]string{"username": "user@example.com"})
		wait := retryAfter(t, st, ra, out, restResetLimit.window/time.Duration(restResetLimit.perUser))
		if st, _, out := e.sendFrom(a1, "POST", reset, map[string]string{"username": "admin@example.com"}); st != 202 {
			t.Fatalf("another user's reset: %d %v", st, out)
		}
		clock.Advance(wait)
		if st, _, out := e.sendFrom(a1, "POST", reset, map[string]string{"username": "user@example.com"}); st != 202 {
			t.Fatalf("reset after Retry-After: %d %v", st, out)
		}
		st, ra, out = e.sendFrom(a1, "POST", reset, map[string]string{"username": "user@example.com"})
		retryAfter(t, st, ra, out, wait)
	})

	t.Run("ResetPerAddress", func(t *testing.T) {
		// IPv6 addresses count by their /64.
		for i := range restResetLimit.perAddr {
			addr := fmt.Sprintf("[2001:db8:1:2::%x]:443", i+1)
			if st, _, out := e.sendFrom(addr, "POST", reset, map[string]string{"username": fmt.Sprintf("nobody%d@example.com", i)}); st != 202 {
				t.Fatalf("reset %d: %d %v", i, st, out)
			}
		}
		st, ra, out := e.sendFrom("[2001:db8:1:2:ffff::1]:443", "POST", reset, map[string]string{"username": "admin@example.com"})
		wait := retryAfter(t, st, ra, out, restResetLimit.window/time.Duration(restResetLimit.perAddr))
		// A refused request spent nothing: the username still has its budget.
		if st, _, out := e.sendFrom("[2001:db8:1:3::1]:443", "POST", reset, map[string]string{"username": "admin@example.com"}); st != 202 {
			t.Fatalf("reset from another /64: %d %v", st, out)
		}
		clock.Advance(wait)
		if st, _, out := e.sendFrom("[2001:db8:1:2::1]:443", "POST", reset, map[string]string{"username": "nobody@example.com"}); st != 202 {
			t.Fatalf("reset after Retry-After: %d %v", st, out)
		}
	})
}

func TestRestRegister(t *testing.T) {
	e := newEnv(t)
	out := e.restWant(201, "POST", restBase+"auth/register", "",
		`{"username":"new@example.com","password":"a fine long password","first_name":"New","last_name":"Person"}`)
	if out["uuid"] == "" || out["username"] != "new@example.com" || out["role"] != "user" || out["active"] != true ||
		out["display_name"] != "New Person" || out["password"] != nil {
		t.Fatalf("registered %v", out)
	}
	restRFC3339UTC(t, out["created"])
	e.restWant(200, "POST", restBase+"auth/login", "", map[string]string{"username": "new@example.com", "password": "a fine long password"})
	// The base project's holdings exist at once.
	if _, ok := e.l.FindHoldingByKey(holdings.Key{Holder: "user:" + out["uuid"].(string), Source: holdings.SourceOf("project:" + out["uuid"].(string)), Resource: "cyclades.vm"}); !ok {
		t.Fatal("no base holding")
	}
	// Seed 004's names.
	e.restWant(201, "POST", restBase+"auth/register", "",
		`{"email":"cvat@example.com","password1":"another fine one","password2":"another fine one"}`)

	before := e.restState()
	for _, body := range []string{
		`{"username":"new@example.com","password":"a fine long password"}`, // taken: 409
		`{"username":"weak@example.com","password":"short"}`,
		`{"username":"weak@example.com","password":"password123"}`,
		`{"username":"not an email","password":"a fine long password"}`,
		`{"username":"x@example.com","password1":"a fine long password","password2":"a different password"}`,
		`{"username":"x@example.com","email":"y@example.com","password":"a fine long password"}`,
		`{"username":"x@example.com"}`,
		`{"username":"x@example.com","password":"a fine long password","role":"admin"}`,
		`{"username":"x@example.com","password":12345678}`,
		`[]`, `null`, ``, `{`,
	} {
		st, out := e.do("POST", restBase+"auth/register", "", body)
		if st != 400 && st != 409 {
			t.Fatalf("register %s: %d %v", body, st, out)
		}
	}
	if after := e.restState(); after != before {
		t.Fatalf("a refused register changed the state:\n%s\n%s", before, after)
	}
}

func TestRestPasswords(t *testing.T) {
	e := newEnv(t)
	pol := e.restWant(200, "GET", restBase+"auth/password/policy", "", nil)
	if pol["min_length"] != float64(8) {
		t.Fatalf("policy %v", pol)
	}
	// Change, with the names of seed 003 and of seed 004.
	e.restWant(200, "POST", restBase+"auth/password/change", e.user,
		`{"current_password":"correct horse battery","new_password":"second password here","new_password_confirm":"second password here"}`)
	e.restWant(200, "POST", restBase+"auth/password/change", e.user,
		`{"old_password":"second password here","new_password1":"third password here","new_password2":"third password here"}`)
	// A wrong old password is the request's fault, not the token's: a 401
	// would tell a client its token is bad (issue 17).
	wrong := e.restWant(400, "POST", restBase+"auth/password/change", e.user,
		`{"old_password":"wrong","new_password":"fourth password here","new_password_confirm":"fourth password here"}`)
	restFault(t, wrong, "badRequest", 400)
	if msg := wrong["badRequest"].(map[string]any)["message"]; msg != "the old password is wrong" {
		t.Fatalf("wrong old password: message %q", msg)
	}
	e.restWant(200, "GET", restBase+"auth/whoami", e.user, nil)
	e.restWant(400, "POST", restBase+"auth/password/change", e.user,
		`{"old_password":"third password here","new_password":"fourth password here","new_password_confirm":"not the same"}`)
	e.restWant(400, "POST", restBase+"auth/password/change", e.user,
		`{"old_password":"third password here","new_password":"fourth password here"}`)
	e.restWant(200, "POST", restBase+"auth/login", "", map[string]string{"username": "user@example.com", "password": "third password here"})

	// Reset: the same answer whether or not the user exists.
	st1, raw1 := e.doRaw("POST", restBase+"auth/password/reset", "", `{"username":"user@example.com"}`)
	st2, raw2 := e.doRaw("POST", restBase+"auth/password/reset", "", `{"username":"nobody@example.com"}`)
	if st1 != 202 || st2 != 202 || string(raw1) != string(raw2) {
		t.Fatalf("reset answers differ: %d %s / %d %s", st1, raw1, st2, raw2)
	}
	if strings.Contains(string(raw1), "reset_id") {
		t.Fatalf("the reset id leaked: %s", raw1)
	}
	evs, err := e.l.Outbox(0, 100000)
	if err != nil {
		t.Fatal(err)
	}
	var id string
	for _, ev := range evs {
		if ev.Type == "identity.password.reset_requested" {
			var d struct {
				ResetID string `json:"reset_id"`
			}
			_ = json.Unmarshal(ev.Data, &d)
			id = d.ResetID
		}
	}
	if id == "" {
		t.Fatal("no reset event")
	}
	e.restWant(400, "POST", restBase+"auth/password/reset/confirm", "",
		map[string]string{"id": id, "new_password": "reset password here", "new_password_confirm": "differs"})
	e.restWant(200, "POST", restBase+"auth/password/reset/confirm", "",
		map[string]string{"id": id, "new_password": "reset password here", "new_password_confirm": "reset password here"})
	restFault(t, e.restWant(404, "POST", restBase+"auth/password/reset/confirm", "",
		map[string]string{"id": id, "new_password": "reset again here", "new_password_confirm": "reset again here"}), "itemNotFound", 404)
	e.restWant(200, "POST", restBase+"auth/login", "", map[string]string{"username": "user@example.com", "password": "reset password here"})
	e.restWant(400, "POST", restBase+"auth/password/reset", "", `{}`)
}

func TestRestRules(t *testing.T) {
	e := newEnv(t)
	out := e.restWant(200, "GET", restBase+"auth/rules", "", nil)
	rules, _ := out["rules"].([]any)
	if len(rules) != len(identity.Rules) {
		t.Fatalf("rules %v", out)
	}
	r0 := rules[0].(map[string]any)
	if r0["action"] != string(identity.Rules[0].Action) || r0["changes_state"] != identity.Rules[0].Changes {
		t.Fatalf("rule %v", r0)
	}
}

func TestRestAccessTokens(t *testing.T) {
	e := newEnv(t)
	exp := time.Now().Add(48 * time.Hour).UTC().Format(time.RFC3339)
	out := e.restWant(201, "POST", restBase+"access_tokens", e.user, map[string]any{"name": "ci", "expires": exp})
	secret, _ := out["token"].(string)
	id, _ := out["id"].(string)
	if !strings.HasPrefix(secret, "qlp_") || id == "" || out["read_only"] != false || out["owner"] != e.userRec.UUID {
		t.Fatalf("created %v", out)
	}
	restRFC3339UTC(t, out["expires"])
	ro := e.restWant(201, "POST", restBase+"access_tokens", e.user, map[string]any{"name": "reader", "read_only": true, "expiry_date": nil})
	roSecret := ro["token"].(string)
	if ro["expires"] != nil {
		t.Fatalf("a token without expiry: %v", ro)
	}
	for i := range 3 {
		e.restWant(201, "POST", restBase+"access_tokens", e.user, map[string]any{"name": fmt.Sprintf("bulk-%d", i)})
	}
	// The secret is shown once: never in a list or a get.
	list := e.restWant(200, "GET", restBase+"access_tokens?page_size=2&sort=name", e.user, nil)
	if list["count"] != float64(5) || list["previous"] != nil || len(list["results"].([]any)) != 2 {
		t.Fatalf("list %v", list)
	}
	next, _ := list["next"].(string)
	u, err := url.Parse(next)
	if err != nil || u.Query().Get("page") != "2" {
		t.Fatalf("next %q", next)
	}
	if first := list["results"].([]any)[0].(map[string]any); first["name"] != "bulk-0" || first["token"] != nil {
		t.Fatalf("sorted by name: %v", first)
	}
	page2 := e.restWant(200, "GET", u.RequestURI(), e.user, nil)
	if page2["previous"] == nil || len(page2["results"].([]any)) != 2 {
		t.Fatalf("page 2 %v", page2)
	}
	last := e.restWant(200, "GET", restBase+"access_tokens?page_size=2&page=3", e.user, nil)
	if last["next"] != nil || len(last["results"].([]any)) != 1 {
		t.Fatalf("page 3 %v", last)
	}
	if l := e.restWant(200, "GET", restBase+"access_tokens?name=ci", e.user, nil); l["count"] != float64(1) {
		t.Fatalf("by name %v", l)
	}
	if l := e.restWant(200, "GET", restBase+"access_tokens?search=BULK", e.user, nil); l["count"] != float64(3) {
		t.Fatalf("search %v", l)
	}
	filter := url.QueryEscape(`{"and":[{"==":[{"var":"read_only"},true]}]}`)
	if l := e.restWant(200, "GET", restBase+"access_tokens?filter="+filter, e.user, nil); l["count"] != float64(1) {
		t.Fatalf("filter %v", l)
	}
	e.restWant(400, "GET", restBase+"access_tokens?filter="+url.QueryEscape(`{"nope":[1]}`), e.user, nil)
	e.restWant(400, "GET", restBase+"access_tokens?filter="+url.QueryEscape(`{"==":`), e.user, nil)
	e.restWant(400, "GET", restBase+"access_tokens?sort=secret", e.user, nil)
	e.restWant(400, "GET", restBase+"access_tokens?page=0", e.user, nil)
	e.restWant(400, "GET", restBase+"access_tokens?page_size=1000", e.user, nil)
	e.restWant(400, "GET", restBase+"access_tokens?bogus=1", e.user, nil)
	// Owners: a user sees only theirs; an admin may look at anyone's.
	if l := e.restWant(200, "GET", restBase+"access_tokens", e.admin, nil); l["count"] != float64(1) {
		t.Fatalf("admin's own %v", l)
	}
	if l := e.restWant(200, "GET", restBase+"access_tokens?owner="+e.userRec.UUID, e.admin, nil); l["count"] != float64(5) {
		t.Fatalf("admin, owner=user %v", l)
	}
	if l := e.restWant(200, "GET", restBase+"access_tokens?owner=*", e.admin, nil); l["count"] != float64(6) {
		t.Fatalf("admin, owner=* %v", l)
	}
	e.restWant(403, "GET", restBase+"access_tokens?owner=*", e.user, nil)

	// Get, self, update, revoke.
	got := e.restWant(200, "GET", restBase+"access_tokens/"+id, e.user, nil)
	if got["name"] != "ci" || got["token"] != nil {
		t.Fatalf("get %v", got)
	}
	e.restWant(200, "GET", restBase+"access_tokens/"+id, e.admin, nil)
	adminTok := e.restWant(200, "GET", restBase+"access_tokens", e.admin, nil)["results"].([]any)[0].(map[string]any)["id"].(string)
	e.restWant(404, "GET", restBase+"access_tokens/"+adminTok, e.user, nil)
	if self := e.restWant(200, "GET", restBase+"access_tokens/self", secret, nil); self["id"] != id {
		t.Fatalf("self %v", self)
	}
	restFault(t, e.restWant(403, "GET", restBase+"access_tokens/self", e.user, nil), "forbidden", 403)
	upd := e.restWant(200, "PATCH", restBase+"access_tokens/"+id, e.user, `{"name":"ci-2","expires":null,"read_only":true}`)
	if upd["name"] != "ci-2" || upd["expires"] != nil || upd["read_only"] != true {
		t.Fatalf("update %v", upd)
	}
	e.restWant(400, "PATCH", restBase+"access_tokens/"+id, e.user, `{"expires":"yesterday"}`)
	e.restWant(400, "PATCH", restBase+"access_tokens/"+id, e.user, `{"expires":"2001-01-01T00:00:00Z"}`)
	e.restWant(400, "PATCH", restBase+"access_tokens/"+id, e.user, `{"name":""}`)
	e.restWant(404, "PATCH", restBase+"access_tokens/"+adminTok, e.user, `{"name":"mine now"}`)

	// A read-only token reads but changes nothing, itself included.
	e.restWant(200, "GET", restBase+"auth/whoami", roSecret, nil)
	restFault(t, e.restWant(403, "POST", restBase+"access_tokens", roSecret, `{"name":"more"}`), "forbidden", 403)
	e.restWant(403, "PATCH", restBase+"access_tokens/"+ro["id"].(string), roSecret, `{"read_only":false}`)
	e.restWant(403, "PATCH", restBase+"users/"+e.userRec.UUID, roSecret, `{"first_name":"X"}`)

	st, raw := e.doRaw("DELETE", restBase+"access_tokens/"+id, e.user, nil)
	if st != 204 || len(raw) != 0 {
		t.Fatalf("revoke: %d %s", st, raw)
	}
	e.restWant(404, "GET", restBase+"access_tokens/"+id, e.user, nil)
	e.restWant(401, "GET", restBase+"auth/whoami", secret, nil)
	e.restWant(404, "DELETE", restBase+"access_tokens/"+adminTok, e.user, nil)
}

func TestRestUsersContract(t *testing.T) {
	e := newEnv(t)
	// §9, to the letter.
	out := e.restWant(201, "POST", restBase+"users", e.admin,
		`{"username":"ops@example.com","password":"an operator password","first_name":"Op","last_name":"Erator","role":"reader","active":true}`)
	opUUID, _ := out["uuid"].(string)
	if opUUID == "" || out["role"] != "reader" || out["active"] != true || out["password"] != nil {
		t.Fatalf("created %v", out)
	}
	login := e.restWant(200, "POST", restBase+"auth/login", "", `{"username":"ops@example.com","password":"an operator password"}`)
	reader := login["token"].(string)

	// Refusals.
	restFault(t, e.restWant(401, "POST", restBase+"users", "", `{}`), "unauthorized", 401)
	restFault(t, e.restWant(403, "POST", restBase+"users", e.user,
		`{"username":"x@example.com","password":"an operator password"}`), "forbidden", 403)
	e.restWant(403, "POST", restBase+"users", reader, `{"username":"x@example.com","password":"an operator password"}`)
	e.restWant(403, "POST", restBase+"users", e.service, `{"username":"x@example.com","password":"an operator password"}`)
	e.restWant(409, "POST", restBase+"users", e.admin, `{"username":"OPS@example.com","password":"an operator password"}`)
	e.restWant(400, "POST", restBase+"users", e.admin, `{"username":"x@example.com","password":"an operator password","role":"root"}`)

	// Lists: admins and readers; q is a username prefix.
	for _, tok := range []string{e.admin, reader} {
		l := e.restWant(200, "GET", restBase+"users?page_size=2", tok, nil)
		if l["count"] != float64(3) || len(l["results"].([]any)) != 2 || l["next"] == nil || l["previous"] != nil {
			t.Fatalf("users %v", l)
		}
	}
	if l := e.restWant(200, "GET", restBase+"users?q=OPS", e.admin, nil); l["count"] != float64(1) {
		t.Fatalf("q=OPS %v", l)
	}
	e.restWant(403, "GET", restBase+"users", e.user, nil)

	// One user: oneself, or anyone for admins and readers.
	me := restBase + "users/" + e.userRec.UUID
	e.restWant(200, "GET", me, e.user, nil)
	e.restWant(200, "GET", me, reader, nil)
	e.restWant(200, "GET", me, e.admin, nil)
	restFault(t, e.restWant(403, "GET", restBase+"users/"+opUUID, e.user, nil), "forbidden", 403)
	e.restWant(403, "GET", restBase+"users/"+opUUID+"/data", e.user, nil)
	e.restWant(404, "GET", restBase+"users/no-such-user", e.admin, nil)

	upd := e.restWant(200, "PATCH", me, e.user, `{"first_name":"Ann","display_name":"Ann Example"}`)
	if upd["first_name"] != "Ann" || upd["display_name"] != "Ann Example" {
		t.Fatalf("update %v", upd)
	}
	e.restWant(403, "PATCH", restBase+"users/"+opUUID, e.user, `{"first_name":"Eve"}`)
	e.restWant(403, "PATCH", me, reader, `{"first_name":"Eve"}`)
	e.restWant(200, "PATCH", me, e.admin, `{"last_name":"Admin-set"}`)
	e.restWant(400, "PATCH", me, e.user, `{"uuid":"other"}`)
	e.restWant(400, "PATCH", me, e.user, `{"first_name":7}`)

	// Custom data.
	if d := e.restWant(200, "GET", me+"/data", e.user, nil); len(d) != 0 {
		t.Fatalf("no data yet: %v", d)
	}
	e.restWant(200, "PUT", me+"/data", e.user, `{"theme":"dark","n":[1,2]}`)
	if d := e.restWant(200, "GET", me+"/data", reader, nil); d["theme"] != "dark" {
		t.Fatalf("data %v", d)
	}
	if d := e.restWant(200, "GET", me, e.user, nil)["data"].(map[string]any); d["theme"] != "dark" {
		t.Fatalf("data with the user %v", d)
	}
	for _, bad := range []string{`[1]`, `"x"`, `null`, `{"a":`} {
		e.restWant(400, "PUT", me+"/data", e.user, bad)
	}
	e.restWant(400, "PUT", me+"/data", e.user, `{"big":"`+strings.Repeat("x", 70<<10)+`"}`)
	e.restWant(403, "PUT", restBase+"users/"+opUUID+"/data", e.user, `{}`)

	// Activation and roles.
	pending := e.restWant(201, "POST", restBase+"users", e.admin,
		`{"username":"later@example.com","password":"a pending password","first_name":"","last_name":"","role":"user","active":false}`)
	pid := pending["uuid"].(string)
	restFault(t, e.restWant(403, "POST", restBase+"auth/login", "", `{"username":"later@example.com","password":"a pending password"}`), "forbidden", 403)
	e.restWant(403, "POST", restBase+"users/"+pid+"/activate", e.user, nil)
	if a := e.restWant(200, "POST", restBase+"users/"+pid+"/activate", e.admin, nil); a["active"] != true {
		t.Fatalf("activate %v", a)
	}
	e.restWant(200, "POST", restBase+"auth/login", "", `{"username":"later@example.com","password":"a pending password"}`)
	if r := e.restWant(200, "PUT", restBase+"users/"+pid+"/role", e.admin, `{"role":"admin"}`); r["role"] != "admin" {
		t.Fatalf("role %v", r)
	}
	if r := e.restWant(200, "POST", restBase+"users/"+pid+"/role", e.admin, `{"role":"reader"}`); r["role"] != "reader" {
		t.Fatalf("role %v", r)
	}
	e.restWant(400, "PUT", restBase+"users/"+pid+"/role", e.admin, `{"role":"god"}`)
	e.restWant(400, "PUT", restBase+"users/"+pid+"/role", e.admin, `{}`)
	e.restWant(403, "PUT", restBase+"users/"+pid+"/role", e.user, `{"role":"user"}`)
	e.restWant(404, "PUT", restBase+"users/nobody/role", e.admin, `{"role":"user"}`)

	e.restWant(403, "DELETE", restBase+"users/"+pid, e.user, nil)
	if st, _ := e.doRaw("DELETE", restBase+"users/"+pid, e.admin, nil); st != 204 {
		t.Fatalf("delete: %d", st)
	}
	e.restWant(404, "GET", restBase+"users/"+pid, e.admin, nil)
	e.restWant(404, "DELETE", restBase+"users/"+pid, e.admin, nil)
}

func TestRestGroups(t *testing.T) {
	e := newEnv(t)
	other, _ := e.restNewUser("other@example.com")
	g := e.restWant(201, "POST", restBase+"groups", e.admin, map[string]any{"name": "team east", "members": []string{e.userRec.UUID}})
	if ms := g["members"].([]any); len(ms) != 1 || ms[0].(map[string]any)["uuid"] != e.userRec.UUID {
		t.Fatalf("group %v", g)
	}
	e.restWant(409, "POST", restBase+"groups", e.admin, `{"name":"team east"}`)
	e.restWant(400, "POST", restBase+"groups", e.admin, `{"name":"x","members":["nobody"]}`)
	if _, n, _ := e.id.FindGroups(identity.GroupFilter{}); n != 1 {
		t.Fatal("a refused group was made")
	}
	e.restWant(403, "POST", restBase+"groups", e.user, `{"name":"mine"}`)
	e.restWant(403, "GET", restBase+"groups", e.user, nil)

	path := restBase + "groups/" + url.PathEscape("team east")
	e.restWant(200, "POST", path+"/members", e.admin, map[string]string{"user": other.UUID})
	e.restWant(409, "POST", path+"/members", e.admin, map[string]string{"user": other.UUID})
	e.restWant(400, "POST", path+"/members", e.admin, map[string]string{"user": "nobody"})
	got := e.restWant(200, "GET", path, e.admin, nil)
	if len(got["members"].([]any)) != 2 {
		t.Fatalf("members %v", got)
	}
	l := e.restWant(200, "GET", restBase+"groups", e.admin, nil)
	if l["count"] != float64(1) {
		t.Fatalf("groups %v", l)
	}
	e.restWant(200, "DELETE", path+"/members/"+other.UUID, e.admin, nil)
	e.restWant(404, "DELETE", path+"/members/"+other.UUID, e.admin, nil)
	ren := e.restWant(200, "PATCH", path, e.admin, `{"name":"team west"}`)
	if ren["name"] != "team west" {
		t.Fatalf("rename %v", ren)
	}
	e.restWant(404, "GET", path, e.admin, nil)
	if st, _ := e.doRaw("DELETE", restBase+"groups/team%20west", e.admin, nil); st != 204 {
		t.Fatalf("delete %d", st)
	}
	e.restWant(404, "DELETE", restBase+"groups/team%20west", e.admin, nil)
}

func TestRestProjects(t *testing.T) {
	e := newEnv(t)
	other, otherTok := e.restNewUser("other@example.com")
	p := e.restWant(201, "POST", restBase+"projects", e.user,
		`{"name":"lab","policies":{"cyclades.vm":{"project_capacity":10,"member_capacity":3}}}`)
	pid := p["uuid"].(string)
	if p["owner"] != e.userRec.UUID || p["state"] != "active" {
		t.Fatalf("project %v", p)
	}
	e.restWant(400, "POST", restBase+"projects", e.user, `{"name":"bad","policies":{"cyclades.vm":{"project_capacity":10}}}`)
	e.restWant(400, "POST", restBase+"projects", e.user, `{"name":"bad","policies":{"nope.x":{"project_capacity":1,"member_capacity":1}}}`)
	e.restWant(403, "POST", restBase+"projects", e.user, map[string]any{"name": "for other", "owner": other.UUID})

	// Lists: one's own (the base project too), or all for admins.
	if l := e.restWant(200, "GET", restBase+"projects", e.user, nil); l["count"] != float64(2) {
		t.Fatalf("user's projects %v", l)
	}
	if l := e.restWant(200, "GET", restBase+"projects", otherTok, nil); l["count"] != float64(1) {
		t.Fatalf("other's projects %v", l)
	}
	if l := e.restWant(200, "GET", restBase+"projects?page_size=1", e.admin, nil); l["count"] != float64(4) || l["next"] == nil {
		t.Fatalf("all projects %v", l)
	}
	path := restBase + "projects/" + pid
	e.restWant(200, "GET", path, e.user, nil)
	e.restWant(200, "GET", path, e.admin, nil)
	restFault(t, e.restWant(404, "GET", path, otherTok, nil), "itemNotFound", 404)
	e.restWant(404, "GET", path+"/policies", otherTok, nil)

	// Members.
	e.restWant(404, "POST", path+"/members", otherTok, map[string]string{"user": other.UUID})
	e.restWant(200, "POST", path+"/members", e.user, map[string]string{"user": other.UUID, "role": "member"})
	e.restWant(409, "POST", path+"/members", e.user, map[string]string{"user": other.UUID})
	e.restWant(400, "POST", path+"/members", e.user, map[string]string{"user": other.UUID, "group": "g"})
	e.restWant(400, "POST", path+"/members", e.user, map[string]string{"user": other.UUID, "role": "boss"})
	v, ok := e.l.FindHoldingByKey(holdings.Key{Holder: "user:" + other.UUID, Source: holdings.SourceOf("project:" + pid), Resource: "cyclades.vm"})
	if !ok || v.Limit != 3 {
		t.Fatalf("member holding %v %v", v, ok)
	}
	ms := e.restWant(200, "GET", path+"/members", otherTok, nil)
	if ms["count"] != float64(2) {
		t.Fatalf("members %v", ms)
	}
	// The members page like every list (their list is held whole: inMemory).
	for _, pg := range []struct {
		query     string
		n         int
		next, pre bool
	}{{"page=1&page_size=1", 1, true, false}, {"page=2&page_size=1", 1, false, true}, {"page=3&page_size=1", 0, false, true}} {
		ms := e.restWant(200, "GET", path+"/members?"+pg.query, otherTok, nil)
		if ms["count"] != float64(2) || len(ms["results"].([]any)) != pg.n || (ms["next"] != nil) != pg.next || (ms["previous"] != nil) != pg.pre {
			t.Fatalf("members?%s: %v", pg.query, ms)
		}
	}
	// A plain member may read, not change.
	e.restWant(200, "GET", path, otherTok, nil)
	e.restWant(403, "PUT", path+"/policies", otherTok, `{}`)
	e.restWant(403, "DELETE", path, otherTok, nil)
	e.restWant(200, "PATCH", path+"/members/"+other.UUID, e.user, `{"role":"admin"}`)
	e.restWant(200, "PATCH", path+"/members/"+other.UUID, otherTok, `{"role":"reader"}`)

	pol := e.restWant(200, "GET", path+"/policies", e.user, nil)
	if pol["cyclades.vm"].(map[string]any)["member_capacity"] != float64(3) {
		t.Fatalf("policies %v", pol)
	}
	pol = e.restWant(200, "PUT", path+"/policies", e.user, `{"cyclades.vm":{"project_capacity":20,"member_capacity":5},"cyclades.ram":{"project_capacity":1,"member_capacity":1}}`)
	if len(pol) != 2 {
		t.Fatalf("policies %v", pol)
	}
	if v, _ := e.l.FindHoldingByKey(holdings.Key{Holder: "project:" + pid, Source: holdings.NullSource, Resource: "cyclades.vm"}); v.Limit != 20 {
		t.Fatalf("project holding %v", v)
	}
	e.restWant(400, "PUT", path+"/policies", e.user, `{"cyclades.vm":{"project_capacity":-1,"member_capacity":5}}`)
	e.restWant(400, "PUT", path+"/policies", e.user, `{"cyclades.vm":{"project_capacity":1e100,"member_capacity":5}}`)

	if st, _ := e.doRaw("DELETE", path+"/members/"+other.UUID, e.user, nil); st != 204 {
		t.Fatalf("remove member %d", st)
	}
	e.restWant(404, "DELETE", path+"/members/"+other.UUID, e.user, nil)
	e.restWant(403, "DELETE", path+"/members/"+e.userRec.UUID, e.user, nil) // the owner stays
	e.restWant(404, "GET", path, otherTok, nil)

	// Groups as members.
	if _, err := e.id.CreateGroup(context.Background(), "crew"); err != nil {
		t.Fatal(err)
	}
	e.restWant(200, "POST", path+"/members", e.admin, map[string]string{"group": "crew", "role": "reader"})
	if st, _ := e.doRaw("DELETE", path+"/members/crew", e.admin, nil); st != 204 {
		t.Fatalf("remove group %d", st)
	}
	// Base projects take no one and are not deleted.
	e.restWant(403, "POST", restBase+"projects/"+e.userRec.UUID+"/members", e.user, map[string]string{"user": other.UUID})
	e.restWant(403, "DELETE", restBase+"projects/"+e.userRec.UUID, e.user, nil)

	if st, _ := e.doRaw("DELETE", path, e.user, nil); st != 204 {
		t.Fatalf("delete %d", st)
	}
	if got := e.restWant(200, "GET", path, e.user, nil); got["state"] != "deleted" {
		t.Fatalf("deleted %v", got)
	}
	e.restWant(409, "DELETE", path, e.user, nil)
}

func TestRestServicesAndResourcesContract(t *testing.T) {
	e := newEnv(t)
	// §9, to the letter.
	out := e.restWant(201, "POST", restBase+"services", e.admin,
		`{"name":"pithos","type":"storage","endpoints":[{"publicURL":"https://pithos.example.com/object-store/v1","versionId":"v2.0"}]}`)
	tok, _ := out["token"].(string)
	if out["name"] != "pithos" || !strings.HasPrefix(tok, "qlk_") {
		t.Fatalf("service %v", out)
	}
	res := e.restWant(201, "POST", restBase+"resources", e.admin,
		`{"name":"pithos.diskspace","service":"pithos","unit":null,"description":"disk","allow_in_projects":true,"uplimit":2,"project_default":0}`)
	if res["name"] != "pithos.diskspace" || res["uplimit"] != float64(2) || res["unit"] != nil {
		t.Fatalf("resource %v", res)
	}
	// Every user got the resource in their base project.
	if v, ok := e.l.FindHoldingByKey(holdings.Key{Holder: "project:" + e.userRec.UUID, Source: holdings.NullSource, Resource: "pithos.diskspace"}); !ok || v.Limit != 2 {
		t.Fatalf("base holding %v %v", v, ok)
	}
	e.restWant(409, "POST", restBase+"resources", e.admin, `{"name":"pithos.diskspace","service":"pithos"}`)
	e.restWant(404, "POST", restBase+"resources", e.admin, `{"name":"nosvc.x","service":"nosvc"}`)
	e.restWant(400, "POST", restBase+"resources", e.admin, `{"name":"pithos.x","service":"pithos","uplimit":-1}`)
	e.restWant(400, "POST", restBase+"resources", e.admin, `{"name":"pithos.x","service":"pithos","uplimit":9223372036854775808}`)
	e.restWant(400, "POST", restBase+"resources", e.admin, `{"name":"pithos.x","service":"pithos","unit":5}`)
	e.restWant(403, "POST", restBase+"resources", e.user, `{"name":"pithos.x","service":"pithos"}`)
	e.restWant(409, "POST", restBase+"services", e.admin, `{"name":"pithos","type":"storage"}`)
	e.restWant(400, "POST", restBase+"services", e.admin, `{"name":"Bad Name"}`)
	e.restWant(400, "POST", restBase+"services", e.admin, `{"name":"x","endpoints":[{"publicURL":"ftp://x"}]}`)
	e.restWant(400, "POST", restBase+"services", e.admin, `{"name":"x","endpoints":[{"url":"https://x"}]}`)
	e.restWant(403, "POST", restBase+"services", e.user, `{"name":"mine"}`)

	// The new token works.
	e.restWant(200, "GET", restBase+"holdings?resource=pithos.diskspace", tok, nil)

	l := e.restWant(200, "GET", restBase+"services", e.admin, nil)
	if l["count"] != float64(2) {
		t.Fatalf("services %v", l)
	}
	for _, r := range l["results"].([]any) {
		if r.(map[string]any)["token"] != nil {
			t.Fatal("a list shows a token")
		}
	}
	e.restWant(403, "GET", restBase+"services", e.user, nil)
	if g := e.restWant(200, "GET", restBase+"services/pithos", e.admin, nil); g["type"] != "storage" {
		t.Fatalf("service %v", g)
	}
	e.restWant(404, "GET", restBase+"services/nope", e.admin, nil)

	ren := e.restWant(200, "POST", restBase+"services/pithos/token", e.admin, nil)
	tok2, _ := ren["token"].(string)
	if tok2 == "" || tok2 == tok {
		t.Fatalf("renew %v", ren)
	}
	e.restWant(401, "GET", restBase+"holdings", tok, nil)
	e.restWant(200, "GET", restBase+"holdings", tok2, nil)
	e.restWant(400, "POST", restBase+"services/pithos/token", e.admin, `{"expires":"2000-01-01T00:00:00Z"}`)
	e.restWant(403, "POST", restBase+"services/pithos/token", e.user, nil)

	// A service that still serves resources stays (issue 17): 409, naming
	// them; it is still listed, its resources too, and its token works.
	in := e.restWant(409, "DELETE", restBase+"services/pithos", e.admin, nil)
	if msg, _ := in["conflict"].(map[string]any)["message"].(string); !strings.Contains(msg, "pithos.diskspace") {
		t.Fatalf("delete a service with resources: %v", in)
	}
	e.restWant(200, "GET", restBase+"services/pithos", e.admin, nil)
	e.restWant(200, "GET", restBase+"holdings", tok2, nil)
	if st, res := e.do("GET", "/account/v1.0/resources", "", nil); st != 200 || res["pithos.diskspace"] == nil {
		t.Fatalf("resources after a refused delete: %d %v", st, res)
	}
	in = e.restWant(409, "DELETE", restBase+"services/cyclades", e.admin, nil)
	if msg, _ := in["conflict"].(map[string]any)["message"].(string); !strings.Contains(msg, "cyclades.ram, cyclades.vm") {
		t.Fatalf("delete a service with resources: %v", in)
	}

	// One that serves none is removed, with its token.
	spare := e.restWant(201, "POST", restBase+"services", e.admin, `{"name":"spare","type":"storage"}`)
	tok3, _ := spare["token"].(string)
	e.restWant(200, "GET", restBase+"holdings", tok3, nil)
	if st, _ := e.doRaw("DELETE", restBase+"services/spare", e.admin, nil); st != 204 {
		t.Fatalf("delete %d", st)
	}
	e.restWant(401, "GET", restBase+"holdings", tok3, nil)
	e.restWant(404, "DELETE", restBase+"services/spare", e.admin, nil)
}

func TestRestHoldingsContract(t *testing.T) {
	e := newEnv(t)
	// §9: set, later entries of the same key win.
	out := e.restWant(200, "POST", restBase+"holdings", e.admin,
		`{"holdings":[{"holder":"h0","source":"system","resource":"r1","limit":10},{"holder":"h0","source":"system","resource":"r1","limit":7},`+
			`{"holder":"h1","source":null,"resource":"r2","limit":5},{"holder":"h1","source":"","resource":"r2","limit":6}]}`)
	if hs := out["holdings"].([]any); len(hs) != 3 || hs[0].(map[string]any)["limit"] != float64(7) {
		t.Fatalf("set %v", out)
	}
	if v, _ := e.l.FindHoldingByKey(holdings.Key{Holder: "h0", Source: holdings.SourceOf("system"), Resource: "r1"}); v.Limit != 7 {
		t.Fatalf("later entry did not win: %v", v)
	}
	get := e.restWant(200, "GET", restBase+"holdings?holder=h0,h1&source=system&resource=r1,r2", e.admin, nil)
	hs := get["holdings"].([]any)
	if len(hs) != 1 {
		t.Fatalf("get %v", get)
	}
	h := hs[0].(map[string]any)
	want := map[string]any{"holder": "h0", "source": "system", "resource": "r1", "limit": float64(7), "usage_min": float64(0), "usage_max": float64(0)}
	for k, v := range want {
		if h[k] != v {
			t.Fatalf("holding %v, want %v", h, want)
		}
	}
	if len(h) != len(want) {
		t.Fatalf("holding has extra fields: %v", h)
	}
	// Null and "" sources are different.
	if hs := e.restWant(200, "GET", restBase+"holdings?holder=h1&null_source=1", e.admin, nil)["holdings"].([]any); len(hs) != 1 || hs[0].(map[string]any)["source"] != nil {
		t.Fatalf("null source %v", hs)
	}
	if hs := e.restWant(200, "GET", restBase+"holdings?holder=h1&source=", e.admin, nil)["holdings"].([]any); len(hs) != 1 || hs[0].(map[string]any)["source"] != "" {
		t.Fatalf("empty source %v", hs)
	}
	if hs := e.restWant(200, "GET", restBase+"holdings?holder=h1", e.admin, nil)["holdings"].([]any); len(hs) != 2 {
		t.Fatalf("h1 %v", hs)
	}
	// Readers read; users do not.
	ctx := context.Background()
	rd, err := e.id.CreateUser(ctx, identity.NewUser{Username: "reader@example.com", Password: testPassword, Role: identity.RoleReader, Active: true})
	if err != nil {
		t.Fatal(err)
	}
	e.restWant(200, "GET", restBase+"holdings", e.restToken(rd.UUID, false), nil)
	restFault(t, e.restWant(403, "GET", restBase+"holdings", e.user, nil), "forbidden", 403)
	restFault(t, e.restWant(401, "GET", restBase+"holdings", "", nil), "unauthorized", 401)
	e.restWant(403, "POST", restBase+"holdings", e.user, `{"holdings":[]}`)
	e.restWant(403, "POST", restBase+"holdings", e.service, `{"holdings":[]}`)

	// Services: the holdings of their resources only.
	svc := e.restWant(200, "GET", restBase+"holdings?holder=user:"+e.userRec.UUID, e.service, nil)["holdings"].([]any)
	if len(svc) != 2 {
		t.Fatalf("service view %v", svc)
	}
	for _, x := range svc {
		if !strings.HasPrefix(x.(map[string]any)["resource"].(string), "cyclades.") {
			t.Fatalf("service sees %v", x)
		}
	}
	if hs := e.restWant(200, "GET", restBase+"holdings?holder=h0", e.service, nil)["holdings"].([]any); len(hs) != 0 {
		t.Fatalf("service sees another's resource: %v", hs)
	}
	e.restWant(403, "GET", restBase+"holdings?resource=r1", e.service, nil)
	e.restWant(200, "GET", restBase+"holdings?resource=cyclades.vm", e.service, nil)

	// Delete, §9; refused while a pending commission touches it.
	k := holdings.Key{Holder: "h0", Source: holdings.SourceOf("system"), Resource: "r1"}
	if _, err := e.l.Issue(ctx, ledger.IssueRequest{Client: "cyclades", Provisions: []holdings.Provision{{Key: k, Quantity: 1}}}); err != nil {
		t.Fatal(err)
	}
	restFault(t, e.restWant(409, "DELETE", restBase+"holdings", e.admin, `{"holdings":[{"holder":"h0","source":"system","resource":"r1"}]}`), "conflict", 409)
	e.restWant(403, "DELETE", restBase+"holdings", e.user, `{"holdings":[{"holder":"h1","source":null,"resource":"r2"}]}`)
	e.restWant(200, "DELETE", restBase+"holdings", e.admin, `{"holdings":[{"holder":"h1","source":null,"resource":"r2"},{"holder":"nobody","source":"x","resource":"y"}]}`)
	if hs := e.restWant(200, "GET", restBase+"holdings?holder=h1", e.admin, nil)["holdings"].([]any); len(hs) != 1 || hs[0].(map[string]any)["source"] != "" {
		t.Fatalf("after delete %v", hs)
	}
	if _, ok := e.l.FindHoldingByKey(k); !ok {
		t.Fatal("the busy holding went")
	}
}

func TestRestHistoryAndCommissionLog(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	u := e.userRec.UUID
	key := holdings.Key{Holder: "user:" + u, Source: holdings.SourceOf("project:" + u), Resource: "cyclades.vm"}
	var serials []uint64
	for range 3 {
		r, err := e.l.Issue(ctx, ledger.IssueRequest{Client: "cyclades", Name: "vm", AutoAccept: true, Force: true,
			Provisions: []holdings.Provision{{Key: key, Quantity: 1}, {Key: holdings.Key{Holder: "project:" + u, Resource: "cyclades.vm"}, Quantity: 1}}})
		if err != nil {
			t.Fatal(err)
		}
		serials = append(serials, r.Serial)
	}
	pending, err := e.l.Issue(ctx, ledger.IssueRequest{Client: "cyclades", Provisions: []holdings.Provision{{Key: key, Quantity: -1}}})
	if err != nil {
		t.Fatal(err)
	}

	h := e.restWant(200, "GET", restBase+"history", e.user, nil)
	if h["count"] != float64(3) || h["next"] != nil {
		t.Fatalf("history %v", h)
	}
	first := h["results"].([]any)[0].(map[string]any)
	if first["holder"] != "user:"+u || first["quantity"] != float64(1) || first["reason"] != "ACCEPT:" ||
		first["usage_max"] != float64(1) || first["client"] != "cyclades" {
		t.Fatalf("entry %v", first)
	}
	restRFC3339UTC(t, first["log_time"])
	// Pages, as every list: count is the total, next and previous link the
	// neighbouring pages.
	p1 := e.restWant(200, "GET", restBase+"history?page_size=2", e.user, nil)
	next, _ := p1["next"].(string)
	if p1["count"] != float64(3) || len(p1["results"].([]any)) != 2 || next == "" || p1["previous"] != nil {
		t.Fatalf("page 1 %v", p1)
	}
	u2, err := url.Parse(next)
	if err != nil {
		t.Fatal(err)
	}
	p2 := e.restWant(200, "GET", restBase+"history?"+u2.RawQuery, e.user, nil)
	if p2["count"] != float64(3) || len(p2["results"].([]any)) != 1 || p2["next"] != nil || p2["previous"] == nil {
		t.Fatalf("page 2 %v", p2)
	}
	if got := p2["results"].([]any)[0].(map[string]any); got["serial"] != float64(serials[2]) {
		t.Fatalf("page 2 holds %v, want the third entry (serial %d)", got, serials[2])
	}
	e.restWant(400, "GET", restBase+"history?after=%21%21", e.user, nil) // the cursor is gone: unknown
	e.restWant(400, "GET", restBase+"history?limit=0", e.user, nil)
	e.restWant(400, "GET", restBase+"history?page_size=0", e.user, nil)
	e.restWant(400, "GET", restBase+"history?from=yesterday", e.user, nil)
	e.restWant(400, "GET", restBase+"history?serial=-1", e.user, nil)
	if h := e.restWant(200, "GET", fmt.Sprintf("%shistory?serial=%d", restBase, serials[1]), e.user, nil); h["count"] != float64(1) {
		t.Fatalf("by serial %v", h)
	}
	if h := e.restWant(200, "GET", restBase+"history?from="+url.QueryEscape(time.Now().Add(time.Hour).UTC().Format(time.RFC3339)), e.user, nil); h["count"] != float64(0) {
		t.Fatalf("from the future %v", h)
	}
	// Their base project, yes; another user's holdings, no (unless admin or reader).
	if h := e.restWant(200, "GET", restBase+"history?holder=project:"+u, e.user, nil); h["count"] != float64(3) {
		t.Fatalf("project history %v", h)
	}
	other, otherTok := e.restNewUser("other@example.com")
	restFault(t, e.restWant(403, "GET", restBase+"history?holder=user:"+u, otherTok, nil), "forbidden", 403)
	e.restWant(403, "GET", restBase+"history?holder=project:"+u, otherTok, nil)
	if h := e.restWant(200, "GET", restBase+"history", otherTok, nil); h["count"] != float64(0) {
		t.Fatalf("other's history %v", h)
	}
	_ = other
	if h := e.restWant(200, "GET", restBase+"history?holder=user:"+u, e.admin, nil); h["count"] != float64(3) {
		t.Fatalf("admin %v", h)
	}
	if h := e.restWant(200, "GET", restBase+"history", e.admin, nil); h["count"] != float64(6) {
		t.Fatalf("admin, every holder %v", h)
	}
	e.restWant(403, "GET", restBase+"history", e.service, nil)

	// A commission's log: its service, admins; not users, not other services.
	path := fmt.Sprintf("%scommissions/%d/log", restBase, serials[0])
	lg := e.restWant(200, "GET", path, e.service, nil)
	if lg["count"] != float64(2) || lg["previous"] != nil {
		t.Fatalf("log %v", lg)
	}
	if en := lg["results"].([]any)[0].(map[string]any); en["serial"] != float64(serials[0]) || en["name"] != "vm" {
		t.Fatalf("log entry %v", en)
	}
	if lg2 := e.restWant(200, "GET", path+"?page=2&page_size=1", e.service, nil); lg2["count"] != float64(2) ||
		len(lg2["results"].([]any)) != 1 || lg2["next"] != nil || lg2["previous"] == nil ||
		fmt.Sprint(lg2["results"].([]any)[0]) != fmt.Sprint(lg["results"].([]any)[1]) {
		t.Fatalf("the log's second page of one: %v, want the second entry of %v", lg2, lg)
	}
	e.restWant(200, "GET", path, e.admin, nil)
	restFault(t, e.restWant(403, "GET", path, e.user, nil), "forbidden", 403)
	other2, _, err := e.id.CreateService(ctx, identity.NewService{Name: "pithos", Type: "storage"})
	if err != nil {
		t.Fatal(err)
	}
	e.restWant(404, "GET", path, other2, nil)
	e.restWant(404, "GET", fmt.Sprintf("%scommissions/%d/log", restBase, pending.Serial), e.service, nil)
	e.restWant(400, "GET", restBase+"commissions/0/log", e.service, nil)
	e.restWant(400, "GET", restBase+"commissions/abc/log", e.service, nil)
	e.restWant(400, "GET", restBase+"commissions/99999999999999999999999/log", e.service, nil)
	e.restWant(401, "GET", path, "", nil)
}

// TestRestRouteRefusals walks the routing table: every route that needs a
// token refuses a call without one (401); every route whose action changes
// state refuses a read-only token (403); every admin-only route refuses a
// plain user (403). None of these change anything.
func TestRestRouteRefusals(t *testing.T) {
	e := newEnv(t)
	ro := e.restToken(e.userRec.UUID, true)
	changes := map[identity.Action]bool{}
	for _, r := range identity.Rules {
		changes[r.Action] = r.Changes
	}
	adminOnly := map[identity.Action]bool{identity.ActManageUsers: true, identity.ActManageQuotas: true,
		identity.ActManageServices: true, identity.ActManageProjects: true, identity.ActReadAll: true}
	fill := strings.NewReplacer("{uuid}", e.userRec.UUID, "{id}", "x", "{name}", "cyclades", "{serial}", "1")
	before := e.restState()
	n := 0
	for _, rt := range e.api.Routes() {
		if !strings.HasPrefix(rt.Path, restBase) {
			continue
		}
		path := fill.Replace(rt.Path)
		if rt.Access != Public {
			n++
			st, out := e.do(rt.Method, path, "", `{}`)
			if st != 401 || out["unauthorized"] == nil {
				t.Errorf("%s %s without a token: %d %v", rt.Method, rt.Path, st, out)
			}
			if st, _ := e.do(rt.Method, path, "qlp_not-a-real-token", `{}`); st != 401 {
				t.Errorf("%s %s with a bad token: %d", rt.Method, rt.Path, st)
			}
		}
		if rt.Action != "" && changes[rt.Action] {
			if st, out := e.do(rt.Method, path, ro, `{}`); st != 403 || out["forbidden"] == nil {
				t.Errorf("%s %s with a read-only token: %d %v", rt.Method, rt.Path, st, out)
			}
		}
		if rt.Access == User && adminOnly[rt.Action] {
			if st, _ := e.do(rt.Method, path, e.user, `{}`); st != 403 {
				t.Errorf("%s %s as a user: %d", rt.Method, rt.Path, st)
			}
		}
		if rt.Access == User {
			if st, _ := e.do(rt.Method, path, e.service, `{}`); st != 403 {
				t.Errorf("%s %s as a service: %d", rt.Method, rt.Path, st)
			}
		}
	}
	if n < 50 {
		t.Fatalf("only %d token routes under %s", n, restBase)
	}
	if after := e.restState(); after != before {
		t.Fatalf("refused calls changed the state:\n%s\n%s", before, after)
	}
}

// TestRestBadInput sends malformed bodies of every kind to the write
// routes: each is a 4xx with a message, none changes anything.
func TestRestBadInput(t *testing.T) {
	e := newEnv(t)
	u := e.userRec.UUID
	p, err := e.id.CreateProject(context.Background(), identity.NewProject{Name: "p", Owner: u})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := e.id.CreateGroup(context.Background(), "g"); err != nil {
		t.Fatal(err)
	}
	bodies := []any{
		``, `{`, `nul`, `[]`, `"x"`, `42`, `{"a":1}{"b":2}`, `{"holdings":[{"holder":"h","resource":"r","limit":1}]}x`,
		[]byte("{\"name\":\"\xff\xfe\"}"), []byte("{\"username\":\"a\xc3\x28@example.com\",\"password\":\"x\"}"),
		`{"holdings":"all"}`, `{"holdings":[1]}`, `{"holdings":[{"holder":1,"resource":"r","limit":1}]}`,
		`{"holdings":[{"holder":"h","resource":"r","limit":9223372036854775808}]}`,
		`{"holdings":[{"holder":"h","resource":"r","limit":1e30}]}`,
		`{"holdings":[{"holder":"h","resource":"r","limit":1.5}]}`,
		`{"holdings":[{"holder":"h","resource":"r","limit":-1}]}`,
		`{"holdings":[{"holder":"","resource":"r","limit":1}]}`,
		`{"holdings":[{"holder":"h","resource":"r"}]}`,
		`{"holdings":[{"holder":"h","source":5,"resource":"r","limit":1}]}`,
		`{"holdings":[{"holder":"h","resource":"r","limit":1,"usage":3}]}`,
		`{"holdings":[{"holder":"` + strings.Repeat("h", 600) + `","resource":"r","limit":1}]}`,
		`{"name":5}`, `{"name":"x","read_only":"yes"}`, `{"role":["admin"]}`, `{"user":{"id":"x"}}`,
		`{"username":"x@example.com","password":"a good password","active":"yes"}`,
		`{"name":"x","uplimit":"2"}`, `{"old_password":1}`, `{"unknown_field":true}`,
		`{"username":"q@example.com","password":"a good password","first_name":"` + strings.Repeat("é", 300) + `"}`,
		strings.Repeat(" ", 2<<20),
	}
	paths := []struct{ method, path, token string }{
		{"POST", "holdings", e.admin}, {"DELETE", "holdings", e.admin},
		{"POST", "users", e.admin}, {"PATCH", "users/" + u, e.user}, {"PUT", "users/" + u + "/role", e.admin},
		{"POST", "users/" + u + "/activate", e.admin},
		{"POST", "auth/register", ""}, {"POST", "auth/login", ""}, {"POST", "auth/password/change", e.user},
		{"POST", "auth/password/reset/confirm", ""},
		{"POST", "access_tokens", e.user}, {"POST", "groups", e.admin}, {"PATCH", "groups/g", e.admin},
		{"POST", "groups/g/members", e.admin}, {"POST", "projects", e.user},
		{"POST", "projects/" + p.UUID + "/members", e.user}, {"PUT", "projects/" + p.UUID + "/policies", e.user},
		{"POST", "resources", e.admin}, {"POST", "services", e.admin}, {"POST", "services/cyclades/token", e.admin},
		{"PUT", "users/" + u + "/data", e.user}, // only the bodies that are not JSON objects
	}
	before := e.restState()
	for _, pt := range paths {
		for _, b := range bodies {
			if s, ok := b.(string); ok && strings.TrimSpace(s) == "" && len(s) < 100 &&
				(strings.HasSuffix(pt.path, "/activate") || strings.HasSuffix(pt.path, "/token")) {
				continue // the body is optional there
			}
			if s, ok := b.(string); ok && strings.HasPrefix(s, "{") && !strings.HasSuffix(s, "x") && strings.HasSuffix(pt.path, "/data") {
				continue // any JSON object is custom data
			}
			if pt.method == "DELETE" && b == `{"holdings":[{"holder":"h","resource":"r"}]}` {
				continue // a valid delete
			}
			st, raw := e.doRaw(pt.method, restBase+pt.path, pt.token, b)
			if st < 400 || st >= 500 {
				t.Errorf("%s %s %.60q: %d %s", pt.method, pt.path, b, st, raw)
				continue
			}
			var out map[string]map[string]any
			if err := json.Unmarshal(raw, &out); err != nil || len(out) != 1 {
				t.Errorf("%s %s %.60q: not a cloudFault: %s", pt.method, pt.path, b, raw)
				continue
			}
			for _, f := range out {
				if msg, _ := f["message"].(string); msg == "" {
					t.Errorf("%s %s %.60q: no message: %s", pt.method, pt.path, b, raw)
				}
			}
		}
	}
	if after := e.restState(); after != before {
		t.Fatalf("bad input changed the state:\n%s\n%s", before, after)
	}
	// A few messages say what is wrong.
	for _, c := range []struct {
		body, want string
	}{
		{`{"holdings":[{"holder":"h","resource":"r","limit":9223372036854775808}]}`, "int64"},
		{`{"holdings":[{"holder":"h","resource":"r","limit":1,"usage":3}]}`, "unknown field"},
		{`{"holdings":[{"holder":"h","resource":"r"}]}`, "limit is required"},
		{`{`, "malformed JSON"},
		{"{\"holdings\":[{\"holder\":\"\xff\",\"resource\":\"r\",\"limit\":1}]}", "UTF-8"},
	} {
		_, out := e.do("POST", restBase+"holdings", e.admin, c.body)
		if msg := restFault(t, out, "badRequest", 400); !strings.Contains(msg, c.want) {
			t.Errorf("%q: message %q does not say %q", c.body, msg, c.want)
		}
	}
	// Bad query strings and paths.
	e.restWant(400, "GET", restBase+"users?q=%ff", e.admin, nil)
	e.restWant(400, "GET", restBase+"users?page=abc", e.admin, nil)
	e.restWant(400, "GET", restBase+"users?page=99999999999999999999", e.admin, nil)
	e.restWant(400, "GET", restBase+"holdings?null_source=maybe", e.admin, nil)
	e.restWant(400, "GET", restBase+"users/%ff", e.admin, nil)
	if l := e.restWant(200, "GET", restBase+"users?page=1000000000", e.admin, nil); len(l["results"].([]any)) != 0 || l["next"] != nil {
		t.Fatalf("a page past the end %v", l)
	}
	if l := e.restWant(200, "GET", restBase+"groups?page=1000000000&page_size=100", e.admin, nil); len(l["results"].([]any)) != 0 {
		t.Fatalf("a page past the end %v", l)
	}
}

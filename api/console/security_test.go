package console_test

import (
	"context"
	"net/http"
	"net/url"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/quotaledger/quotaledger/api/client"
	"github.com/quotaledger/quotaledger/api/console"
	"github.com/quotaledger/quotaledger/identity"
)

// The console's security, without a browser: the headers of its pages,
// its cookies, CSRF, who reaches what, HTML in names, the end of a
// session, the login's rate limits, and no token in a URL.

// wantCSP is the content security policy of every answer.
const wantCSP = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; " +
	"connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"

var (
	inlineScript  = regexp.MustCompile(`(?i)<script(\s[^>]*)?>`)
	scriptSrc     = regexp.MustCompile(`(?i)<script\s[^>]*\bsrc=`)
	inlineStyle   = regexp.MustCompile(`(?i)(<style|\sstyle=)`)
	inlineEvent   = regexp.MustCompile(`(?i)<[^>]+\son[a-z]+=`)
	javascriptURL = regexp.MustCompile(`(?i)(href|src|action)="javascript:`)
)

// checkPage checks the headers of an answer of the console and, for a
// page, that it needs no exception to the policy (no inline script or
// style, no event handler attribute).
func checkPage(t *testing.T, what string, p page) {
	t.Helper()
	h := p.header
	for name, want := range map[string]string{
		"Content-Security-Policy": wantCSP,
		"X-Frame-Options":         "DENY",
		"X-Content-Type-Options":  "nosniff",
		"Referrer-Policy":         "no-referrer",
	} {
		if got := h.Get(name); got != want {
			t.Errorf("%s: %s %q, want %q", what, name, got, want)
		}
	}
	if strings.HasPrefix(h.Get("Content-Type"), "text/html") {
		if h.Get("Cache-Control") != "no-store" {
			t.Errorf("%s: Cache-Control %q, want no-store", what, h.Get("Cache-Control"))
		}
		for _, m := range inlineScript.FindAllString(p.body, -1) {
			if !scriptSrc.MatchString(m) {
				t.Errorf("%s: an inline script: %s", what, m)
			}
		}
		for _, re := range []*regexp.Regexp{inlineStyle, inlineEvent, javascriptURL} {
			if m := re.FindString(p.body); m != "" {
				t.Errorf("%s: %q needs an exception to the policy", what, m)
			}
		}
	}
}

func TestHeaders(t *testing.T) {
	e := newEnv(t)
	anon := e.browser()
	checkPage(t, "the login page", anon.get("/ui/login"))
	checkPage(t, "a page not logged in (redirect)", anon.get("/ui/quotas"))
	checkPage(t, "a page that is not", anon.get("/ui/no/such/page"))
	checkPage(t, "the stylesheet", anon.get("/ui/static/console.css"))
	checkPage(t, "the script", anon.get("/ui/static/console.js"))
	user := e.browser()
	user.login(demoUser, demoPassword)
	admin := e.browser()
	admin.login(adminUser, adminPassword)
	for _, path := range []string{"/ui/quotas", "/ui/projects", "/ui/tokens", "/ui/sessions", "/ui/password"} {
		checkPage(t, path, user.get(path))
	}
	checkPage(t, "an admin page refused", user.get("/ui/admin/users"))
	for _, path := range []string{"/ui/admin/users", "/ui/admin/services", "/ui/admin/holdings?holder=" + demoUser,
		"/ui/admin/history?holder=" + demoUser, "/ui/admin/pending"} {
		checkPage(t, path, admin.get(path))
	}
	created := user.form("/ui/tokens", "/ui/tokens", url.Values{"name": {"t"}, "expires": {"30"}})
	checkPage(t, "a token just made", created)
	if css := anon.get("/ui/static/console.css"); css.header.Get("Content-Type") != "text/css; charset=utf-8" {
		t.Errorf("the stylesheet is %q", css.header.Get("Content-Type"))
	}
}

// setCookies are the cookies an answer sets.
func (p page) setCookies() map[string]*http.Cookie {
	out := map[string]*http.Cookie{}
	for _, c := range (&http.Response{Header: p.header}).Cookies() {
		out[c.Name] = c
	}
	return out
}

// loginAnswer logs in with a fresh browser and returns the answer.
func loginAnswer(t *testing.T, e *env) page {
	t.Helper()
	b := e.browser()
	lp := b.get("/ui/login")
	return b.post("/ui/login", url.Values{"csrf": {lp.csrf(t)}, "username": {demoUser}, "password": {demoPassword}})
}

func TestCookies(t *testing.T) {
	for _, c := range []struct {
		name    string
		opts    envOptions
		session string
		path    string
		secure  bool
	}{
		{"HTTP", envOptions{}, "ql_session", "/ui", false},
		{"TLS", envOptions{tls: true}, "__Host-ql_session", "/", true},
		{"HTTPSPublicURL", envOptions{publicURL: "https://quota.example.com"}, "__Host-ql_session", "/", true},
	} {
		t.Run(c.name, func(t *testing.T) {
			e := newEnvWith(t, c.opts)
			p := loginAnswer(t, e)
			if p.status != http.StatusSeeOther {
				t.Fatalf("login: %d %.300s", p.status, p.body)
			}
			ck := p.setCookies()[c.session]
			if ck == nil {
				t.Fatalf("no cookie %s: %v", c.session, p.header["Set-Cookie"])
			}
			if !ck.HttpOnly || ck.SameSite != http.SameSiteStrictMode || ck.Secure != c.secure || ck.Path != c.path {
				t.Errorf("session cookie %s: HttpOnly %v, SameSite %v, Secure %v, Path %q; want HttpOnly, Strict, Secure %v, %q",
					ck.Name, ck.HttpOnly, ck.SameSite, ck.Secure, ck.Path, c.secure, c.path)
			}
			// It lives as long as the session (identity's 24h).
			if want := e.clock.Now().Add(24 * time.Hour); !ck.Expires.Equal(want) || ck.MaxAge != int((24*time.Hour).Seconds()) {
				t.Errorf("session cookie expires %v (max-age %d), want %v", ck.Expires, ck.MaxAge, want)
			}
			if _, err := e.client(ck.Value).Whoami(context.Background()); err != nil {
				t.Errorf("the cookie is not the session: %v", err)
			}
			// The login form's own cookie has the same flags.
			b := e.browser()
			lc := b.get("/ui/login").setCookies()
			for name, ck := range lc {
				if !ck.HttpOnly || ck.SameSite != http.SameSiteStrictMode || ck.Secure != c.secure {
					t.Errorf("cookie %s of the login page: HttpOnly %v, SameSite %v, Secure %v", name, ck.HttpOnly, ck.SameSite, ck.Secure)
				}
			}
			if len(lc) != 1 {
				t.Errorf("the login page sets %d cookies, want its CSRF cookie", len(lc))
			}
		})
	}
}

func TestCSRF(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	tokens := func() int {
		t.Helper()
		page, err := e.api.FindAccessTokens(ctx, client.TokenFilter{Owner: e.demo.UUID})
		if err != nil {
			t.Fatal(err)
		}
		return page.Count
	}
	user := e.browser()
	user.login(demoUser, demoPassword)
	good := user.get("/ui/tokens").csrf(t)
	other := e.browser()
	other.login(demoUser, demoPassword) // the same user's other session
	otherToken := other.get("/ui/tokens").csrf(t)
	form := func(csrf string) url.Values {
		v := url.Values{"name": {"from a form"}, "expires": {"30"}}
		if csrf != "" {
			v.Set("csrf", csrf)
		}
		return v
	}
	for _, c := range []struct {
		name    string
		csrf    string
		headers []string
	}{
		{"NoToken", "", nil},
		{"WrongToken", "not-the-token", nil},
		{"AnotherSessionsToken", otherToken, nil},
		{"CrossOrigin", good, []string{"Origin", "https://evil.example"}},
		{"CrossSite", good, []string{"Sec-Fetch-Site", "cross-site"}},
	} {
		t.Run(c.name, func(t *testing.T) {
			p := user.post("/ui/tokens", form(c.csrf), c.headers...)
			if p.status != http.StatusForbidden || !strings.Contains(p.body, "nothing was done") && !strings.Contains(p.body, "another site") {
				t.Errorf("%d: %.500s", p.status, p.body)
			}
			if n := tokens(); n != 0 {
				t.Fatalf("a refused form made %d tokens", n)
			}
		})
	}
	t.Run("RightToken", func(t *testing.T) {
		if p := user.post("/ui/tokens", form(good), "Origin", e.srv.URL, "Sec-Fetch-Site", "same-origin"); p.status != http.StatusOK || tokens() != 1 {
			t.Fatalf("%d, %d tokens: %.300s", p.status, tokens(), p.body)
		}
	})
	t.Run("Logout", func(t *testing.T) {
		if p := user.post("/ui/logout", url.Values{}); p.status != http.StatusForbidden {
			t.Fatalf("logout without the token: %d", p.status)
		}
		if p := user.get("/ui/quotas"); p.status != http.StatusOK {
			t.Fatalf("the session ended on a logout without the token: %d", p.status)
		}
	})
	t.Run("Login", func(t *testing.T) {
		b := e.browser()
		creds := url.Values{"username": {demoUser}, "password": {demoPassword}}
		// No cookie and no field; a field but no cookie (another browser's
		// form); the cookie but another field.
		if p := b.post("/ui/login", creds); p.status != http.StatusForbidden || p.setCookies()["ql_session"] != nil {
			t.Errorf("login without the token: %d %v", p.status, p.header["Set-Cookie"])
		}
		formToken := e.browser().get("/ui/login").csrf(t)
		with := url.Values{"csrf": {formToken}, "username": creds["username"], "password": creds["password"]}
		if p := b.post("/ui/login", with); p.status != http.StatusForbidden {
			t.Errorf("login with another browser's token: %d", p.status)
		}
		b.get("/ui/login")
		if p := b.post("/ui/login", with); p.status != http.StatusForbidden {
			t.Errorf("login with a token that is not its cookie's: %d", p.status)
		}
	})
}

func TestAccess(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	anon := e.browser()
	for _, path := range []string{"/ui/quotas", "/ui/tokens", "/ui/admin/users"} {
		p := anon.get(path)
		if want := "/ui/login?next=" + url.QueryEscape(path); p.status != http.StatusSeeOther || p.location() != want {
			t.Errorf("%s not logged in: %d to %q, want %q", path, p.status, p.location(), want)
		}
	}
	if p := anon.get("/ui"); p.status != http.StatusSeeOther || p.location() != "/ui/quotas" {
		t.Errorf("/ui: %d to %q", p.status, p.location())
	}
	user := e.browser()
	user.login(demoUser, demoPassword)
	csrf := user.get("/ui/quotas").csrf(t)

	t.Run("AdminPages", func(t *testing.T) {
		for _, path := range []string{"/ui/admin/users", "/ui/admin/services", "/ui/admin/holdings?holder=user:" + e.ada.UUID,
			"/ui/admin/history?holder=user:" + e.ada.UUID, "/ui/admin/pending"} {
			if p := user.get(path); p.status != http.StatusForbidden || !strings.Contains(p.body, "for administrators") ||
				strings.Contains(p.body, e.ada.UUID) {
				t.Errorf("a user's GET %s: %d %.300s", path, p.status, p.body)
			}
		}
		if p := user.get("/ui/quotas"); strings.Contains(p.body, "/ui/admin/") {
			t.Error("a user's menu links to the admin pages")
		}
		key := "user:" + e.demo.UUID
		serial, err := e.svc.IssueUserProjectCommission(ctx, e.ada.UUID, e.ada.UUID, map[string]int64{"compute.vm": 1}, client.IssueOptions{Name: "ada's vm"})
		if err != nil {
			t.Fatal(err)
		}
		for _, c := range []struct {
			action string
			form   url.Values
		}{
			{"/ui/admin/holdings", url.Values{"holder": {key}, "source": {"project:" + e.demo.UUID}, "resource": {"compute.vm"}, "limit": {"1000"}, "confirm": {"yes"}}},
			{"/ui/admin/users/role", url.Values{"uuid": {e.demo.UUID}, "role": {"admin"}}},
			{"/ui/admin/users/delete", url.Values{"uuid": {e.ada.UUID}, "username": {"ada"}}},
			{"/ui/admin/users/activate", url.Values{"uuid": {e.ada.UUID}}},
			{"/ui/admin/pending", url.Values{"serial": {strconv.FormatInt(serial, 10)}, "action": {"reject"}, "confirm": {"yes"}}},
		} {
			c.form.Set("csrf", csrf)
			if p := user.post(c.action, c.form); p.status != http.StatusForbidden {
				t.Errorf("a user's POST %s: %d", c.action, p.status)
			}
		}
		if u, err := e.api.FindUserByID(ctx, e.demo.UUID); err != nil || u.Role != "user" {
			t.Errorf("the user's role: %v %v", u, err)
		}
		if _, err := e.api.FindUserByID(ctx, e.ada.UUID); err != nil {
			t.Errorf("the other user: %v", err)
		}
		hs, err := e.api.FindHoldings(ctx, client.HoldingFilter{Holders: []string{key}, Resources: []string{"compute.vm"}, Sources: []string{"project:" + e.demo.UUID}})
		if err != nil || len(hs) != 1 || hs[0].Limit != 2 {
			t.Errorf("the holding: %v %v", hs, err)
		}
		if pending, err := e.svc.GetPendingCommissions(ctx); err != nil || !slices.Contains(pending, serial) {
			t.Errorf("ada's commission after a user's resolve: pending %v %v", pending, err)
		}
	})

	t.Run("AnotherUsersSession", func(t *testing.T) {
		ada := e.browser()
		ada.login("ada@example.com", demoPassword)
		theirs := sessionIDs(t, ada.get("/ui/sessions"))
		if len(theirs) != 1 {
			t.Fatalf("ada's sessions page lists %d sessions", len(theirs))
		}
		mine := user.get("/ui/sessions")
		if ids := sessionIDs(t, mine); len(ids) != 1 || slices.Contains(ids, theirs[0]) || strings.Contains(mine.body, "ada@example.com") {
			t.Errorf("the user's sessions page lists another user's session: %v", ids)
		}
		p := user.post("/ui/sessions/end", url.Values{"csrf": {csrf}, "id": {theirs[0]}})
		if p.status != http.StatusUnprocessableEntity || !strings.Contains(p.body, "There is no such session of yours") {
			t.Errorf("ending another user's session: %d %.300s", p.status, p.body)
		}
		if p := ada.get("/ui/quotas"); p.status != http.StatusOK {
			t.Errorf("ada's session after the attempt: %d to %q", p.status, p.location())
		}
	})

	t.Run("AnotherUsersToken", func(t *testing.T) {
		secret, tok, err := e.id.CreateAccessToken(ctx, e.ada.UUID, "ada's script", time.Time{}, false)
		if err != nil {
			t.Fatal(err)
		}
		if p := user.get("/ui/tokens"); strings.Contains(p.body, "ada&#39;s script") || strings.Contains(p.body, tok.ID) {
			t.Error("the user's tokens page lists another user's token")
		}
		p := user.post("/ui/tokens/revoke", url.Values{"csrf": {csrf}, "id": {tok.ID}, "name": {"x"}})
		if p.status != http.StatusUnprocessableEntity || !strings.Contains(p.body, "There is no such token of yours") {
			t.Errorf("revoking another user's token: %d %.300s", p.status, p.body)
		}
		if _, err := e.client(secret).Whoami(ctx); err != nil {
			t.Errorf("the other user's token after the attempt: %v", err)
		}
	})

	t.Run("Reader", func(t *testing.T) {
		if _, err := e.id.SetUserRole(ctx, e.ada.UUID, identity.RoleReader); err != nil {
			t.Fatal(err)
		}
		r := e.browser()
		r.login("ada@example.com", demoPassword)
		p := r.get("/ui/admin/holdings?holder=" + demoUser)
		if post := `method="post" action="/ui/admin/holdings"`; p.status != http.StatusOK || strings.Contains(p.body, post) || !strings.Contains(p.body, "compute.vm") {
			t.Errorf("a reader's holdings page: %d, forms %v", p.status, strings.Contains(p.body, post))
		}
		if p := r.get("/ui/admin/users"); p.status != http.StatusOK || strings.Contains(p.body, "/ui/admin/users/delete") {
			t.Errorf("a reader's users page: %d", p.status)
		}
		form := url.Values{"csrf": {p.csrf(t)}, "holder": {"user:" + e.demo.UUID}, "source": {"project:" + e.demo.UUID},
			"resource": {"compute.vm"}, "limit": {"1000"}, "confirm": {"yes"}}
		if p := r.post("/ui/admin/holdings", form); p.status != http.StatusForbidden {
			t.Errorf("a reader's POST: %d", p.status)
		}
		serial, err := e.svc.IssueUserProjectCommission(ctx, e.demo.UUID, e.demo.UUID, map[string]int64{"compute.vm": 1}, client.IssueOptions{Name: "for the reader"})
		if err != nil {
			t.Fatal(err)
		}
		if p := r.get("/ui/admin/pending"); p.status != http.StatusOK || !strings.Contains(p.body, `data-serial="`+strconv.FormatInt(serial, 10)+`"`) ||
			strings.Contains(p.body, `name="action"`) {
			t.Errorf("a reader's pending page: %d, a form %v", p.status, strings.Contains(p.body, `name="action"`))
		}
		resolve := url.Values{"csrf": {p.csrf(t)}, "serial": {strconv.FormatInt(serial, 10)}, "action": {"accept"}, "confirm": {"yes"}}
		if p := r.post("/ui/admin/pending", resolve); p.status != http.StatusForbidden {
			t.Errorf("a reader's resolve: %d", p.status)
		}
	})

	t.Run("NextIsThisSite", func(t *testing.T) {
		for next, want := range map[string]string{
			"/ui/tokens?page=2":         "/ui/tokens?page=2",
			"https://evil.example/ui/x": "/ui/quotas",
			"//evil.example/ui/x":       "/ui/quotas",
			"/\\evil.example":           "/ui/quotas",
			"/account/v1.0/auth/whoami": "/ui/quotas",
			"javascript:alert(1)":       "/ui/quotas",
		} {
			b := e.browser()
			lp := b.get("/ui/login?next=" + url.QueryEscape(next))
			p := b.post("/ui/login", url.Values{"csrf": {lp.csrf(t)}, "username": {demoUser}, "password": {demoPassword}, "next": {next}})
			if p.location() != want {
				t.Errorf("next %q: to %q, want %q", next, p.location(), want)
			}
		}
	})
}

func TestHTMLInNamesIsText(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	const tokenName = `<b class="x">bold</b><script>alert(1)</script>`
	const displayName = `<img src=x onerror=alert(1)>`
	if _, _, err := e.id.CreateAccessToken(ctx, e.demo.UUID, tokenName, time.Time{}, false); err != nil {
		t.Fatal(err)
	}
	if _, err := e.id.UpdateUser(ctx, e.ada.UUID, identity.UserUpdate{DisplayName: new(displayName)}); err != nil {
		t.Fatal(err)
	}
	user := e.browser()
	user.login(demoUser, demoPassword)
	admin := e.browser()
	admin.login(adminUser, adminPassword)
	pages := map[string]page{"tokens": user.get("/ui/tokens"), "users": admin.get("/ui/admin/users")}
	// A revoke's flash says the token's name too.
	tokens := user.get("/ui/tokens")
	id := regexp.MustCompile(`name="id" value="([0-9a-f]+)"`).FindStringSubmatch(tokens.body)[1]
	p := user.post("/ui/tokens/revoke", url.Values{"csrf": {tokens.csrf(t)}, "id": {id}, "name": {tokenName}})
	if p.status != http.StatusSeeOther {
		t.Fatalf("revoke: %d", p.status)
	}
	pages["flash"] = user.get(p.location())
	// A username typed at the login is shown again.
	b := e.browser()
	lp := b.get("/ui/login")
	pages["login"] = b.post("/ui/login", url.Values{"csrf": {lp.csrf(t)}, "username": {`"><script>alert(1)</script>`}, "password": {"x"}})
	for name, p := range pages {
		for _, raw := range []string{tokenName, displayName, "<b class", "<img src", "<script>alert", `"><script>`} {
			if strings.Contains(p.body, raw) {
				t.Errorf("the %s page has %q as HTML", name, raw)
			}
		}
	}
	for name, want := range map[string]string{
		"tokens": "&lt;b class=&#34;x&#34;&gt;bold&lt;/b&gt;&lt;script&gt;alert(1)&lt;/script&gt;",
		"users":  "&lt;img src=x onerror=alert(1)&gt;",
		"flash":  "&lt;b class=",
		"login":  "&#34;&gt;&lt;script&gt;alert(1)&lt;/script&gt;",
	} {
		if !strings.Contains(pages[name].body, want) {
			t.Errorf("the %s page does not show the name as text (%s)", name, want)
		}
	}
}

func TestSessionEnds(t *testing.T) {
	e := newEnv(t)
	t.Run("Expired", func(t *testing.T) {
		b := e.browser()
		b.login(demoUser, demoPassword)
		secret := b.cookie("ql_session")
		e.clock.Advance(24*time.Hour + time.Second)
		p := b.get("/ui/tokens")
		if p.status != http.StatusSeeOther || p.location() != "/ui/login?m=ended&next=%2Fui%2Ftokens" {
			t.Fatalf("an expired session: %d to %q", p.status, p.location())
		}
		if ck := p.setCookies()["ql_session"]; ck == nil || ck.MaxAge >= 0 {
			t.Errorf("the cookie of an ended session is not deleted: %v", p.header["Set-Cookie"])
		}
		if b.cookie("ql_session") != "" {
			t.Error("the browser keeps the cookie")
		}
		if lp := b.get(p.location()); !strings.Contains(lp.body, "Your session has ended") {
			t.Errorf("the login page does not say why: %.400s", lp.body)
		}
		if _, err := e.client(secret).Whoami(context.Background()); client.StatusOf(err) != http.StatusUnauthorized {
			t.Errorf("the API takes the expired session: %v", err)
		}
	})
	t.Run("LoggedOut", func(t *testing.T) {
		b := e.browser()
		b.login(demoUser, demoPassword)
		secret := b.cookie("ql_session")
		p := b.form("/ui/quotas", "/ui/logout", url.Values{})
		if p.status != http.StatusSeeOther || p.location() != "/ui/login?m=logged-out" || b.cookie("ql_session") != "" {
			t.Fatalf("logout: %d to %q", p.status, p.location())
		}
		if _, err := e.client(secret).Whoami(context.Background()); client.StatusOf(err) != http.StatusUnauthorized {
			t.Errorf("the API takes the session after logout: %v", err)
		}
		if p := b.get("/ui/quotas"); p.status != http.StatusSeeOther {
			t.Errorf("a page after logout: %d", p.status)
		}
	})
	t.Run("EndedOnTheSessionsPage", func(t *testing.T) {
		laptop, phone, tablet := e.browser(), e.browser(), e.browser()
		for _, b := range []*browser{laptop, phone, tablet} {
			b.login(demoUser, demoPassword)
		}
		list := laptop.get("/ui/sessions")
		ids := sessionIDs(t, list)
		if len(ids) != 3 || strings.Count(list.body, "this browser") != 1 {
			t.Fatalf("the sessions page lists %d sessions (want 3), %d marked as this browser", len(ids), strings.Count(list.body, "this browser"))
		}
		phoneID := sessionOf(t, e, phone)
		p := laptop.post("/ui/sessions/end", url.Values{"csrf": {list.csrf(t)}, "id": {phoneID}})
		if p.status != http.StatusSeeOther || p.location() != "/ui/sessions" {
			t.Fatalf("ending the phone's session: %d to %q %.300s", p.status, p.location(), p.body)
		}
		if p := laptop.get("/ui/sessions"); !strings.Contains(p.body, "The session was ended") || slices.Contains(sessionIDs(t, p), phoneID) {
			t.Errorf("the page after ending a session: %v", sessionIDs(t, p))
		}
		if p := phone.get("/ui/quotas"); p.status != http.StatusSeeOther || !strings.HasPrefix(p.location(), "/ui/login?m=ended") {
			t.Errorf("the phone's page after its session was ended: %d to %q", p.status, p.location())
		}
		if p := tablet.get("/ui/quotas"); p.status != http.StatusOK {
			t.Errorf("the tablet's page: %d", p.status)
		}
		// Every other session: the tablet's ends, the laptop's goes on.
		p = laptop.post("/ui/sessions/end-others", url.Values{"csrf": {list.csrf(t)}})
		if p.status != http.StatusSeeOther {
			t.Fatalf("ending every other session: %d", p.status)
		}
		if p := tablet.get("/ui/quotas"); p.status != http.StatusSeeOther {
			t.Errorf("the tablet's page after every other session was ended: %d", p.status)
		}
		if ids := sessionIDs(t, laptop.get("/ui/sessions")); len(ids) != 1 {
			t.Errorf("sessions left: %v", ids)
		}
		// Ending this browser's session is a logout.
		own := sessionOf(t, e, laptop)
		p = laptop.post("/ui/sessions/end", url.Values{"csrf": {list.csrf(t)}, "id": {own}})
		if p.status != http.StatusSeeOther || p.location() != "/ui/login?m=logged-out" || laptop.cookie("ql_session") != "" {
			t.Errorf("ending this browser's session: %d to %q", p.status, p.location())
		}
	})
	t.Run("NotASession", func(t *testing.T) {
		// A personal access token put in the cookie is not a login.
		b := e.browser()
		u, _ := url.Parse(e.srv.URL + "/ui/")
		b.jar.SetCookies(u, []*http.Cookie{{Name: "ql_session", Value: e.admin, Path: "/ui"}})
		if p := b.get("/ui/quotas"); p.status != http.StatusSeeOther || !strings.HasPrefix(p.location(), "/ui/login") {
			t.Errorf("a personal token as the session: %d to %q", p.status, p.location())
		}
	})
}

func TestLogin(t *testing.T) {
	e := newEnv(t)
	try := func(b *browser, username, password string) page {
		t.Helper()
		lp := b.get("/ui/login")
		return b.post("/ui/login", url.Values{"csrf": {lp.csrf(t)}, "username": {username}, "password": {password}})
	}
	b := e.browser()
	for _, c := range []struct{ username, password, field, says string }{
		{"", "x", "username", "Enter your username"},
		{demoUser, "", "password", "Enter your password"},
		{demoUser, "wrong", "password", "The username or the password is wrong."},
		{"nobody@example.com", "wrong", "password", "The username or the password is wrong."},
	} {
		p := try(b, c.username, c.password)
		if p.status != http.StatusUnprocessableEntity || !regexp.MustCompile(`id="`+c.field+`-error"[^>]*>`+regexp.QuoteMeta(c.says)).MatchString(p.body) {
			t.Errorf("%q/%q: %d, want %q at the %s field: %.600s", c.username, c.password, p.status, c.says, c.field, p.body)
		}
	}
	t.Run("Inactive", func(t *testing.T) {
		if _, err := e.id.CreateUser(context.Background(), identity.NewUser{Username: "new@example.com", Password: demoPassword}); err != nil {
			t.Fatal(err)
		}
		if p := try(e.browser(), "new@example.com", demoPassword); !strings.Contains(p.body, "This account is not active") {
			t.Errorf("an inactive user: %d %.400s", p.status, p.body)
		}
	})
	t.Run("RateLimited", func(t *testing.T) {
		// The API's budget of failed logins (10 a user per 5 minutes; one
		// spent above) runs out, and then the right password is refused
		// too, with when to try again.
		var p page
		for range 9 {
			p = try(b, demoUser, "wrong")
		}
		if !strings.Contains(p.body, "The username or the password is wrong.") {
			t.Fatalf("the 10th failed login: %.400s", p.body)
		}
		p = try(b, demoUser, demoPassword)
		if p.status != http.StatusUnprocessableEntity || !strings.Contains(p.body, "Too many failed attempts") ||
			!regexp.MustCompile(`Try again in [0-9]+ seconds?\.`).MatchString(p.body) {
			t.Fatalf("past the budget: %d %.600s", p.status, p.body)
		}
		if p.setCookies()["ql_session"] != nil {
			t.Fatal("a refused login set a session")
		}
	})
}

func TestNoTokenInAURL(t *testing.T) {
	e := newEnv(t)
	b := e.browser()
	var seen []string
	b.hc.CheckRedirect = func(req *http.Request, _ []*http.Request) error {
		seen = append(seen, req.URL.String())
		return http.ErrUseLastResponse
	}
	lp := b.get("/ui/login?next=%2Fui%2Ftokens")
	p := b.post("/ui/login", url.Values{"csrf": {lp.csrf(t)}, "username": {demoUser}, "password": {demoPassword}, "next": {"/ui/tokens"}})
	seen = append(seen, p.location())
	created := b.form("/ui/tokens", "/ui/tokens", url.Values{"name": {"ci"}, "expires": {"7"}})
	secret := regexp.MustCompile(`id="secret"[^>]*value="([^"]+)"`).FindStringSubmatch(created.body)
	if created.status != http.StatusOK || created.location() != "" || secret == nil || !strings.HasPrefix(secret[1], "qlp_") {
		t.Fatalf("the token's page: %d to %q, secret %v", created.status, created.location(), secret)
	}
	if strings.Contains(b.get("/ui/tokens").body, secret[1]) {
		t.Error("the secret is shown again")
	}
	for _, u := range seen {
		if strings.Contains(u, "qls_") || strings.Contains(u, "qlp_") || strings.Contains(u, b.cookie("ql_session")) {
			t.Errorf("a token in a URL: %s", u)
		}
	}
}

var sessionRow = regexp.MustCompile(`data-session-id="([0-9a-f]+)"`)

// sessionIDs are the ids of the sessions a sessions page lists.
func sessionIDs(t *testing.T, p page) []string {
	t.Helper()
	if p.status != http.StatusOK {
		t.Fatalf("the sessions page: %d %.300s", p.status, p.body)
	}
	var ids []string
	for _, m := range sessionRow.FindAllStringSubmatch(p.body, -1) {
		ids = append(ids, m[1])
	}
	return ids
}

// sessionOf is the id of the session of a browser.
func sessionOf(t *testing.T, e *env, b *browser) string {
	t.Helper()
	me, err := e.client(b.cookie("ql_session")).Whoami(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return me.Auth.TokenID
}

// TestCSRFOnEveryForm sends every form of the console without its CSRF
// token, as an admin: each is refused, whatever page it is.
func TestCSRFOnEveryForm(t *testing.T) {
	e := newEnv(t)
	admin := e.browser()
	admin.login(adminUser, adminPassword)
	c := console.New(console.Options{API: http.NotFoundHandler()})
	n := 0
	for _, p := range c.Patterns() {
		path, ok := strings.CutPrefix(p.Pattern, "POST ")
		if !ok {
			continue
		}
		n++
		got := admin.post(path, url.Values{"id": {"x"}, "uuid": {e.ada.UUID}, "serial": {"1"}, "action": {"reject"}, "confirm": {"yes"}})
		if got.status != http.StatusForbidden || !strings.Contains(got.body, "nothing was done") && !strings.Contains(got.body, "login form had expired") {
			t.Errorf("POST %s without the CSRF token: %d %.300s", path, got.status, got.body)
		}
	}
	if n < 10 {
		t.Fatalf("only %d forms", n)
	}
	if p := admin.get("/ui/quotas"); p.status != http.StatusOK {
		t.Fatalf("the admin's session after the forms: %d", p.status)
	}
}

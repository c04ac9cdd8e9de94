package console_test

import (
	"context"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/quotaledger/quotaledger/api"
	"github.com/quotaledger/quotaledger/api/client"
	"github.com/quotaledger/quotaledger/api/console"
	"github.com/quotaledger/quotaledger/identity"
	"github.com/quotaledger/quotaledger/internal/testkit"
	"github.com/quotaledger/quotaledger/internal/testkit/identitytest"
	"github.com/quotaledger/quotaledger/ledger"
)

// The demo setup of serve --demo (cmd/quotaledger/bootstrap.go): a
// service compute with its resources compute.vm and compute.ram (bytes),
// and the demo user; and an admin.
const (
	demoUser      = "demo@example.com"
	demoPassword  = "demo password 1"
	adminUser     = "admin@example.com"
	adminPassword = "admin password 1"
	demoService   = "compute"
)

// env is a real server (api.New over a ledger on an in-memory filesystem)
// on a loopback port, with the demo setup.
type env struct {
	t            testing.TB
	l            *ledger.Ledger
	id           *identity.Store
	srv          *httptest.Server
	clock        *testkit.Clock
	admin        string // the admin's personal token
	service      string // the service's token
	demo, adminU *identity.User
	ada          *identity.User    // another user, in lab with demo
	lab          *identity.Project // the project "Physics lab"
	api          *client.Client    // as the admin
	svc          *client.Client    // as the service
}

// envOptions change an env.
type envOptions struct {
	tls       bool
	publicURL string
}

func newEnv(t testing.TB) *env { return newEnvWith(t, envOptions{}) }

func newEnvWith(t testing.TB, o envOptions) *env {
	t.Helper()
	// The clock starts at the real time: a browser keeps a cookie by its
	// own clock.
	clock := testkit.NewClock(time.Now().UTC().Truncate(time.Second))
	l, id := identitytest.OpenStores(t, ledger.Options{Now: clock.Now}, identity.Options{Now: clock.Now})
	e := &env{t: t, l: l, id: id, clock: clock}
	ctx := context.Background()
	must := func(what string, err error) {
		t.Helper()
		if err != nil {
			t.Fatalf("%s: %v", what, err)
		}
	}
	var err error
	e.adminU, err = id.CreateUser(ctx, identity.NewUser{Username: adminUser, Password: adminPassword, Role: identity.RoleAdmin, Active: true})
	must("the admin", err)
	e.admin, _, err = id.CreateAccessToken(ctx, e.adminU.UUID, "admin", time.Time{}, false)
	must("the admin's token", err)
	e.service, _, err = id.CreateService(ctx, identity.NewService{Name: demoService, Type: "compute"})
	must("the service", err)
	for _, r := range []identity.Resource{
		{Name: "compute.vm", Service: demoService, Description: "Virtual machines", AllowInProjects: true, UpLimit: 2},
		{Name: "compute.ram", Service: demoService, Unit: "bytes", Description: "Memory", AllowInProjects: true, UpLimit: 4 << 30},
	} {
		_, err = id.CreateResource(ctx, r)
		must(r.Name, err)
	}
	e.demo, err = id.CreateUser(ctx, identity.NewUser{Username: demoUser, Password: demoPassword, Active: true})
	must("the demo user", err)
	// A project the demo user shares with another.
	e.ada, err = id.CreateUser(ctx, identity.NewUser{Username: "ada@example.com", Password: demoPassword,
		DisplayName: "Ada Lovelace", Active: true})
	must("another user", err)
	e.lab, err = id.CreateProject(ctx, identity.NewProject{Name: "Physics lab", Owner: e.adminU.UUID, Policies: map[string]identity.Policy{
		"compute.vm":  {ProjectCapacity: 10, MemberCapacity: 4},
		"compute.ram": {ProjectCapacity: 64 << 30, MemberCapacity: 16 << 30},
	}})
	must("the project", err)
	for _, u := range []*identity.User{e.demo, e.ada} {
		_, err = id.AddProjectMember(ctx, e.lab.UUID, identity.Member{User: u.UUID, Role: identity.MemberMember})
		must("a member", err)
	}
	handler := api.New(l, id, api.Options{Logger: zerolog.Nop(), PublicURL: o.publicURL,
		Console: console.Options{Now: clock.Now}})
	if o.tls {
		e.srv = httptest.NewTLSServer(handler)
	} else {
		e.srv = httptest.NewServer(handler)
	}
	t.Cleanup(e.srv.Close)
	e.api = e.client(e.admin)
	e.svc = e.client(e.service)
	return e
}

// client is a client of the API with token.
func (e *env) client(token string) *client.Client {
	e.t.Helper()
	c, err := client.New(e.srv.URL, token, client.Options{HTTPClient: e.srv.Client(), NoTokenPickup: true})
	if err != nil {
		e.t.Fatal(err)
	}
	return c
}

// browser is a client of the console as a browser without script: it
// keeps cookies and does not follow redirects (the test reads them).
type browser struct {
	e   *env
	hc  *http.Client
	jar *cookiejar.Jar
}

func (e *env) browser() *browser {
	jar, err := cookiejar.New(nil)
	if err != nil {
		e.t.Fatal(err)
	}
	hc := *e.srv.Client()
	hc.Jar = jar
	hc.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	return &browser{e: e, hc: &hc, jar: jar}
}

// page is an answer of the console.
type page struct {
	status int
	header http.Header
	body   string
}

// location is where a redirect sends to.
func (p page) location() string { return p.header.Get("Location") }

func (b *browser) do(req *http.Request) page {
	b.e.t.Helper()
	resp, err := b.hc.Do(req)
	if err != nil {
		b.e.t.Fatalf("%s %s: %v", req.Method, req.URL, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		b.e.t.Fatal(err)
	}
	return page{status: resp.StatusCode, header: resp.Header, body: string(body)}
}

// get asks for a page.
func (b *browser) get(path string) page {
	b.e.t.Helper()
	req, err := http.NewRequest("GET", b.e.srv.URL+path, nil)
	if err != nil {
		b.e.t.Fatal(err)
	}
	return b.do(req)
}

// post sends a form, with the headers given (name, value, ...).
func (b *browser) post(path string, form url.Values, headers ...string) page {
	b.e.t.Helper()
	req, err := http.NewRequest("POST", b.e.srv.URL+path, strings.NewReader(form.Encode()))
	if err != nil {
		b.e.t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	for i := 0; i+1 < len(headers); i += 2 {
		req.Header.Set(headers[i], headers[i+1])
	}
	return b.do(req)
}

var csrfField = regexp.MustCompile(`name="csrf" value="([^"]+)"`)

// csrf is the CSRF token of the forms of a page.
func (p page) csrf(t testing.TB) string {
	t.Helper()
	m := csrfField.FindStringSubmatch(p.body)
	if m == nil {
		t.Fatalf("no CSRF token in the page: %.300s", p.body)
	}
	return m[1]
}

// login logs in with the login form and checks it worked.
func (b *browser) login(username, password string) {
	b.e.t.Helper()
	lp := b.get("/ui/login")
	p := b.post("/ui/login", url.Values{"csrf": {lp.csrf(b.e.t)}, "username": {username}, "password": {password}})
	if p.status != http.StatusSeeOther || p.location() != "/ui/quotas" {
		b.e.t.Fatalf("login as %s: %d to %q: %.500s", username, p.status, p.location(), p.body)
	}
}

// form posts a form of the page at path: the page's CSRF token and the
// fields given.
func (b *browser) form(path, action string, fields url.Values) page {
	b.e.t.Helper()
	p := b.get(path)
	if p.status != http.StatusOK {
		b.e.t.Fatalf("GET %s: %d", path, p.status)
	}
	fields.Set("csrf", p.csrf(b.e.t))
	return b.post(action, fields)
}

// cookie returns the cookie of the browser named name ("" if none).
func (b *browser) cookie(name string) string {
	u, _ := url.Parse(b.e.srv.URL + "/ui/")
	for _, c := range b.jar.Cookies(u) {
		if c.Name == name {
			return c.Value
		}
	}
	return ""
}

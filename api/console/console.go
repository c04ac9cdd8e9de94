// Package console is the web console of quotaledger (DESIGN.md §13): pages
// under /ui/ where a user sees their quotas, projects, access tokens and
// sessions and changes their password, and where an admin also sees the
// users, services, holdings, pending commissions and a holder's history.
//
// The pages are rendered on the server with html/template from files
// embedded in the binary, with one small script (the copy button) and one
// stylesheet: no build step, nothing fetched from another host
// (docs/console.md says why). The console holds no state of its own and
// reads nothing behind the API's back: every read and every write is a
// call of the API, made in process with the session's token
// (transport.go), so that the API's access rules, its login rate limits
// and, on a follower of a cluster, its forwarding of writes to the leader
// apply to the console as to any other client.
//
// The session is the API's: logging in calls auth/login, and its token is
// kept in a cookie (HttpOnly, SameSite=Strict, Secure under TLS) that
// lives as long as the session; every form carries a CSRF token derived
// from it, and the pages are sent with a strict Content-Security-Policy
// (session.go, headers.go).
package console

import (
	"context"
	"embed"
	"net/http"
	"time"

	"github.com/rs/zerolog"

	"github.com/quotaledger/quotaledger/api/client"
)

//go:embed templates/*.html static/*
var files embed.FS

// Options configure a Console. API is required; zero fields take
// defaults.
type Options struct {
	// API is the HTTP API the console calls in process (api.Server).
	API http.Handler
	// Logger logs what the console cannot show its user (a template that
	// failed).
	Logger zerolog.Logger
	// Now is the clock of the pages (the age of a pending commission, the
	// expiry of a new token): time.Now.
	Now func() time.Time
	// SecureCookies marks the cookies Secure on every request, for a
	// console behind a proxy that ends TLS (the server's public URL is
	// https); a request that came over TLS gets Secure cookies anyway.
	SecureCookies bool
	// Applied, on a node of a cluster, is the log sequence the node has
	// applied: after a write, which the leader answered with the sequence
	// that holds it, the console waits (up to AppliedWait) until this node
	// has applied it, so that the next page shows what its user just did.
	// Nil: a single node, whose reads always follow its writes.
	Applied func() uint64
	// AppliedWait bounds that wait (10s: a node that lags longer is
	// unwell, and its page shows the state a moment behind).
	AppliedWait time.Duration
}

func (o Options) withDefaults() Options {
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.AppliedWait <= 0 {
		o.AppliedWait = 10 * time.Second
	}
	return o
}

// Console serves the pages under /ui/.
type Console struct {
	opts  Options
	log   zerolog.Logger
	api   *client.Client
	pages []page
	views *views
	// cop refuses the cross-origin writes a browser marks as such (Origin,
	// Sec-Fetch-Site), before the CSRF token is checked.
	cop *http.CrossOriginProtection
}

// access says who may open a page.
type access int

const (
	public access = iota // anyone
	member               // a logged-in user
	staff                // admins and readers (the roles that read everything)
	admin                // admins
)

// page is one page of the console: a method and a path (a pattern of
// http.ServeMux), who may open it, and its handler.
type page struct {
	method, path string
	who          access
	handle       func(rq *request) error
}

// Prefix is the path the console is served under.
const Prefix = "/ui"

// New returns the console of opts.API. It panics if opts.API is nil or
// the embedded templates do not parse (a bug caught by every test).
func New(opts Options) *Console {
	if opts.API == nil {
		panic("console: Options.API is required")
	}
	opts = opts.withDefaults()
	c := &Console{opts: opts, log: opts.Logger.With().Str("component", "console").Logger(),
		cop: http.NewCrossOriginProtection()}
	// The client's requests never leave the process: the host is a name
	// for the log, and the transport answers them (transport.go).
	var err error
	c.api, err = client.New("http://console.internal", "", client.Options{
		HTTPClient:    &http.Client{Transport: inProcess{api: opts.API}},
		NoTokenPickup: true,
		UserAgent:     "quotaledger-console",
	})
	if err != nil {
		panic("console: " + err.Error())
	}
	if c.views, err = parseViews(); err != nil {
		panic("console: " + err.Error())
	}
	c.pages = c.pageTable()
	return c
}

// pageTable is every page of the console. A GET shows a page; a POST is a
// form's action, which answers with the page again (a form with an error
// next to its field, or a secret shown once) or redirects to a page.
func (c *Console) pageTable() []page {
	return []page{
		{"GET", Prefix, public, c.home},
		{"GET", Prefix + "/static/{file}", public, c.static},
		{"GET", Prefix + "/login", public, c.loginPage},
		{"POST", Prefix + "/login", public, c.login},
		{"POST", Prefix + "/logout", member, c.logout},

		{"GET", Prefix + "/quotas", member, c.quotas},
		{"GET", Prefix + "/projects", member, c.projects},
		{"GET", Prefix + "/tokens", member, c.tokens},
		{"POST", Prefix + "/tokens", member, c.createToken},
		{"POST", Prefix + "/tokens/revoke", member, c.revokeToken},
		{"GET", Prefix + "/sessions", member, c.sessions},
		{"POST", Prefix + "/sessions/end", member, c.endSession},
		{"POST", Prefix + "/sessions/end-others", member, c.endOtherSessions},
		{"GET", Prefix + "/password", member, c.passwordPage},
		{"POST", Prefix + "/password", member, c.changePassword},

		{"GET", Prefix + "/admin/users", staff, c.users},
		{"POST", Prefix + "/admin/users/activate", admin, c.activateUser},
		{"POST", Prefix + "/admin/users/role", admin, c.setUserRole},
		{"POST", Prefix + "/admin/users/delete", admin, c.deleteUser},
		{"GET", Prefix + "/admin/services", staff, c.services},
		{"GET", Prefix + "/admin/holdings", staff, c.holdings},
		{"POST", Prefix + "/admin/holdings", admin, c.setLimit},
		{"GET", Prefix + "/admin/pending", staff, c.pending},
		{"POST", Prefix + "/admin/pending", admin, c.resolvePending},
		{"GET", Prefix + "/admin/history", staff, c.history},
	}
}

// Pattern is a pattern of http.ServeMux and its handler.
type Pattern struct {
	Pattern string
	Handler http.Handler
}

// Patterns are the console's pages, to register on the server's mux: a
// page's method and path, and its handler.
func (c *Console) Patterns() []Pattern {
	out := make([]Pattern, 0, len(c.pages))
	for i := range c.pages {
		p := &c.pages[i]
		out = append(out, Pattern{Pattern: p.method + " " + p.path,
			Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { c.serve(w, r, p) })})
	}
	return out
}

// NotFound answers a path under /ui/ that no page takes, as a page.
func (c *Console) NotFound(w http.ResponseWriter, r *http.Request) {
	setHeaders(w)
	rq := c.newRequest(w, r)
	rq.render(http.StatusNotFound, "problem", "Page not found", "", problem{
		Heading: "There is no such page",
		Text:    "The address " + r.URL.Path + " is not a page of this console. The menu above lists the pages there are.",
	})
}

// home sends a visitor to their quotas, or to the login page.
func (c *Console) home(rq *request) error {
	rq.redirect(Prefix + "/quotas")
	return nil
}

// context is the context of the console's calls of the API for rq: its
// session's token, and rq's origin for the transport.
func (rq *request) context() context.Context {
	ctx := withOrigin(rq.r.Context(), rq.origin)
	if rq.secret != "" {
		ctx = client.ContextWithToken(ctx, rq.secret)
	}
	return ctx
}

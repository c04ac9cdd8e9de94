package console

import (
	"bytes"
	"encoding/base64"
	"errors"
	"net/http"
	"net/url"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/quotaledger/quotaledger/api/client"
	"github.com/quotaledger/quotaledger/api/wire"
)

// request is one page being served.
type request struct {
	c      *Console
	w      http.ResponseWriter
	r      *http.Request
	page   *page
	names  cookieNames
	origin *origin
	// secret is the session's token ("" before login); me its user and
	// token, as auth/whoami answered them.
	secret string
	me     *wire.Me
	// csrf is the token the page's forms carry.
	csrf string
	// flash is the message of the action that led here.
	flash string
	// answered is set once the page is answered (a redirect, a render).
	answered bool
}

// maxForm bounds the body of a form.
const maxForm = 64 << 10

func (c *Console) newRequest(w http.ResponseWriter, r *http.Request) *request {
	return &request{c: c, w: w, r: r, names: c.cookieNames(r), origin: &origin{
		remoteAddr: r.RemoteAddr, host: r.Host, userAgent: r.UserAgent(),
		requestID: w.Header().Get("X-Request-Id"),
	}}
}

// serve answers a page: it checks who asks and, for a form, where it
// comes from and its CSRF token, then runs the page's handler.
func (c *Console) serve(w http.ResponseWriter, r *http.Request, p *page) {
	setHeaders(w)
	rq := c.newRequest(w, r)
	rq.page = p
	if r.Method == http.MethodPost {
		if err := c.cop.Check(r); err != nil {
			rq.fail(rq.forbidden("This form was sent from another site; it was refused. Use the console's own pages."))
			return
		}
		r.Body = http.MaxBytesReader(w, r.Body, maxForm)
		if err := r.ParseForm(); err != nil {
			rq.fail(rq.badForm())
			return
		}
	}
	if p.who != public {
		rq.secret = cookie(r, rq.names.session)
		if rq.secret == "" {
			if r.Method == http.MethodGet && r.URL.Path != Prefix {
				rq.redirect(Prefix + "/login?next=" + url.QueryEscape(r.URL.RequestURI()))
			} else {
				rq.redirect(Prefix + "/login")
			}
			return
		}
		me, err := c.api.Whoami(rq.context())
		if err != nil {
			if client.StatusOf(err) == http.StatusUnauthorized {
				rq.sessionEnded()
				return
			}
			rq.fail(err)
			return
		}
		if me.Auth.Kind != "session" { // the console takes sessions only
			rq.sessionEnded()
			return
		}
		rq.me, rq.csrf = me, csrfFor(rq.secret)
		if r.Method == http.MethodPost && !sameToken(r.PostForm.Get("csrf"), rq.csrf) {
			rq.fail(rq.forbidden("This form had expired or did not come from this console, so nothing was done. Reload the page and try again."))
			return
		}
		switch {
		case p.who == staff && !rq.staff(), p.who == admin && !rq.admin():
			rq.fail(rq.forbidden("This page is for administrators. Your account (" + me.Username + ") is not one."))
			return
		}
		rq.flash = rq.takeFlash()
	}
	if err := p.handle(rq); err != nil {
		rq.fail(err)
	}
}

// loggedIn reports whether the visitor of a public page has a session the
// API takes.
func (rq *request) loggedIn() bool {
	rq.secret = cookie(rq.r, rq.names.session)
	if rq.secret == "" {
		return false
	}
	me, err := rq.c.api.Whoami(rq.context())
	if err != nil || me.Auth.Kind != "session" {
		rq.secret = ""
		return false
	}
	return true
}

func (rq *request) staff() bool {
	return rq.me != nil && (rq.me.Role == "admin" || rq.me.Role == "reader")
}

func (rq *request) admin() bool { return rq.me != nil && rq.me.Role == "admin" }

// redirect answers 303: the page to go to next.
func (rq *request) redirect(to string) {
	rq.answered = true
	http.Redirect(rq.w, rq.r, to, http.StatusSeeOther)
}

// done ends a successful form: it waits until this node shows what the
// form did (a cluster's follower), then sends the visitor to the page to,
// with message as the flash.
func (rq *request) done(to, message string) error {
	rq.waitApplied()
	if message != "" {
		rq.c.setCookie(rq.w, rq.r, rq.names.flash, base64.RawURLEncoding.EncodeToString([]byte(message)), time.Time{})
	}
	rq.redirect(to)
	return nil
}

// takeFlash returns the message of the flash cookie, and deletes it.
func (rq *request) takeFlash() string {
	v := cookie(rq.r, rq.names.flash)
	if v == "" {
		return ""
	}
	rq.c.deleteCookie(rq.w, rq.r, rq.names.flash)
	b, err := base64.RawURLEncoding.DecodeString(v)
	if err != nil || len(b) > 500 || !utf8.Valid(b) {
		return ""
	}
	return string(b)
}

// waitApplied waits, on a node of a cluster, until the node has applied
// the writes this request made, for at most AppliedWait (a node that lags
// longer shows the page a moment behind).
func (rq *request) waitApplied() {
	applied, seq := rq.c.opts.Applied, rq.origin.wrote()
	if applied == nil || seq == 0 {
		return
	}
	deadline := time.Now().Add(rq.c.opts.AppliedWait)
	for applied() < seq && time.Now().Before(deadline) {
		select {
		case <-rq.r.Context().Done():
			return
		case <-time.After(5 * time.Millisecond):
		}
	}
}

// problem is the page of something that went wrong.
type problem struct {
	Heading, Text string
	Reference     string // the request id, for the server's log
}

// httpError is an error the console shows as a page with a status.
type httpError struct {
	status int
	problem
}

func (e *httpError) Error() string { return e.Text }

func (rq *request) forbidden(text string) error {
	return &httpError{http.StatusForbidden, problem{Heading: "Not allowed", Text: text}}
}

func (rq *request) badForm() error {
	return &httpError{http.StatusBadRequest, problem{Heading: "The form could not be read",
		Text: "The form sent was too large or malformed. Go back, reload the page and try again."}}
}

// fail answers err as a page that says, in words, what went wrong.
func (rq *request) fail(err error) {
	if rq.answered {
		return
	}
	var he *httpError
	if !errors.As(err, &he) {
		he = rq.explain(err)
	}
	if he.status >= 500 {
		he.Reference = rq.origin.requestID
		rq.c.log.Error().Err(err).Str("path", rq.r.URL.Path).Str("request_id", rq.origin.requestID).Msg("console page failed")
	}
	rq.render(he.status, "problem", he.Heading, "", he.problem)
}

// explain turns an error of the API into the words of a page.
func (rq *request) explain(err error) *httpError {
	var ce *client.Error
	if !errors.As(err, &ce) || ce.Status == 0 {
		return &httpError{http.StatusInternalServerError, problem{Heading: "Something went wrong",
			Text: "The console could not finish this page because of an error on the server. Try again; if it happens again, " +
				"tell your administrator and give them the reference below."}}
	}
	switch ce.Status {
	case http.StatusForbidden:
		return &httpError{http.StatusForbidden, problem{Heading: "Not allowed", Text: "You are not allowed to do this: " + sentence(ce.Message)}}
	case http.StatusNotFound:
		return &httpError{http.StatusNotFound, problem{Heading: "Not found",
			Text: "What this page is about does not exist (any more): " + sentence(ce.Message)}}
	case http.StatusTooManyRequests:
		return &httpError{http.StatusTooManyRequests, problem{Heading: "Too many attempts", Text: rq.tryAgain()}}
	case http.StatusServiceUnavailable:
		return &httpError{http.StatusServiceUnavailable, problem{Heading: "Not available just now",
			Text: "The server cannot do this at the moment (" + sentence(ce.Message) + ") Try again in a few seconds."}}
	}
	if ce.Status >= 500 {
		return &httpError{ce.Status, problem{Heading: "Something went wrong",
			Text: "The server could not do this because of an error on its side. Try again; if it happens again, " +
				"tell your administrator and give them the reference below."}}
	}
	return &httpError{ce.Status, problem{Heading: "That did not work", Text: sentence(ce.Message)}}
}

// tryAgain says when a refused attempt may be made again.
func (rq *request) tryAgain() string {
	d := rq.origin.lastRetryAfter()
	if d <= 0 {
		return "Wait a few minutes, then try again."
	}
	return "Try again in " + duration(d) + "."
}

// messageOf is the message of an error of the API.
func messageOf(err error) string {
	var ce *client.Error
	if errors.As(err, &ce) {
		return ce.Message
	}
	return err.Error()
}

// sentence makes a message of the API a sentence: a capital first letter
// and a full stop.
func sentence(s string) string {
	s = strings.TrimSpace(s)
	if s == "" {
		return ""
	}
	r, n := utf8.DecodeRuneInString(s)
	s = strings.ToUpper(string(r)) + s[n:]
	if !strings.HasSuffix(s, ".") && !strings.HasSuffix(s, "?") && !strings.HasSuffix(s, "!") {
		s += "."
	}
	return s
}

// fieldErrors are a form's errors by field name.
type fieldErrors map[string]string

// statusOfForm is the status of a form page: 200, or 422 with errors.
func statusOfForm(errs fieldErrors) int {
	if len(errs) > 0 {
		return http.StatusUnprocessableEntity
	}
	return http.StatusOK
}

// render answers the template name, with the page's title and data.
func (rq *request) render(status int, name, title, nav string, data any) {
	rq.answered = true
	v := view{Title: title, Nav: nav, Me: rq.me, Staff: rq.staff(), Admin: rq.admin(), CSRF: rq.csrf,
		Flash: rq.flash, Data: data, Now: rq.c.opts.Now()}
	var buf bytes.Buffer
	if err := rq.c.views.execute(&buf, name, v); err != nil {
		rq.c.log.Error().Err(err).Str("template", name).Msg("console template failed")
		http.Error(rq.w, "the console could not show this page (request "+rq.origin.requestID+")", http.StatusInternalServerError)
		return
	}
	rq.w.Header().Set("Content-Type", "text/html; charset=utf-8")
	rq.w.WriteHeader(status)
	_, _ = rq.w.Write(buf.Bytes())
}

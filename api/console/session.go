package console

import (
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/quotaledger/quotaledger/api/client"
	"github.com/quotaledger/quotaledger/api/wire"
)

// The console's session is the API's: logging in calls auth/login and
// keeps the session's token in a cookie that the browser sends back to the
// console only (HttpOnly: no script reads it; SameSite=Strict: no other
// site's page sends it; Secure under TLS, then named with the __Host-
// prefix, which binds it to this host and path /). The cookie lives as
// long as the session; the API decides when the session ends (its expiry,
// logout, a password change, an admin), and the console follows: a page
// asked with an ended session sends its visitor to the login page.
//
// Every form carries a CSRF token: on a session's pages, a hash of the
// session's token (unknown to another site, which cannot read the cookie;
// the same on every node of a cluster and after a restart); on the login
// form, which has no session yet, a random value also set in a cookie of
// its own (a double submit). A form whose token does not match is refused
// before anything is done. Cross-origin writes that the browser marks as
// such are refused before that (net/http's CrossOriginProtection).

// cookieNames are the names of the console's cookies, plain or with the
// __Host- prefix.
type cookieNames struct{ session, login, flash string }

var (
	plainCookies  = cookieNames{"ql_session", "ql_login", "ql_flash"}
	secureCookies = cookieNames{"__Host-ql_session", "__Host-ql_login", "__Host-ql_flash"}
)

// secure reports whether the cookies of r are Secure.
func (c *Console) secure(r *http.Request) bool { return r.TLS != nil || c.opts.SecureCookies }

func (c *Console) cookieNames(r *http.Request) cookieNames {
	if c.secure(r) {
		return secureCookies
	}
	return plainCookies
}

// setCookie sets a cookie of the console: HttpOnly, SameSite=Strict, and
// under TLS Secure with path / (as __Host- requires), else path /ui.
// expires zero is a cookie of the browser's session; in the past, a
// deletion.
func (c *Console) setCookie(w http.ResponseWriter, r *http.Request, name, value string, expires time.Time) {
	ck := &http.Cookie{Name: name, Value: value, Path: Prefix, HttpOnly: true, SameSite: http.SameSiteStrictMode}
	if c.secure(r) {
		ck.Secure, ck.Path = true, "/"
	}
	if !expires.IsZero() {
		ck.Expires = expires.UTC()
		ck.MaxAge = int(expires.Sub(c.opts.Now()).Seconds())
		if ck.MaxAge <= 0 {
			ck.MaxAge, ck.Value = -1, ""
		}
	}
	http.SetCookie(w, ck)
}

// deleteCookie removes a cookie of the console.
func (c *Console) deleteCookie(w http.ResponseWriter, r *http.Request, name string) {
	c.setCookie(w, r, name, "", time.Unix(1, 0))
}

// cookie returns the value of a cookie of the console ("" if none).
func cookie(r *http.Request, name string) string {
	ck, err := r.Cookie(name)
	if err != nil {
		return ""
	}
	return ck.Value
}

// csrfFor is the CSRF token of the forms of a session: a hash of its
// secret, from which the secret cannot be found.
func csrfFor(secret string) string {
	sum := sha256.Sum256([]byte("quotaledger console csrf\x00" + secret))
	return base64.RawURLEncoding.EncodeToString(sum[:])
}

// sameToken compares two tokens in constant time; an empty one matches
// nothing.
func sameToken(a, b string) bool {
	return a != "" && b != "" && subtle.ConstantTimeCompare([]byte(a), []byte(b)) == 1
}

// randomToken is 32 random bytes in base64url.
func randomToken() string {
	var b [32]byte
	_, _ = rand.Read(b[:]) // never fails (crypto/rand since Go 1.24)
	return base64.RawURLEncoding.EncodeToString(b[:])
}

// loginForm is the login page's form.
type loginForm struct {
	Username, Next string
	Errors         fieldErrors
	Message        string // why the visitor is here (logged out, session ended)
}

// Why a visitor is sent to the login page (?m=).
var loginMessages = map[string]string{
	"ended":      "Your session has ended: it expired, or it was ended from another browser or by a password change. Log in again.",
	"logged-out": "You are logged out.",
	"password":   "Your password was changed. Log in with the new one.",
}

// loginPage shows the login form, or sends a logged-in visitor on.
func (c *Console) loginPage(rq *request) error {
	next := safeNext(rq.r.URL.Query().Get("next"))
	if rq.loggedIn() {
		rq.redirect(next)
		return nil
	}
	rq.loginCSRF()
	rq.render(http.StatusOK, "login", "Log in", "", loginForm{Next: next, Message: loginMessages[rq.r.URL.Query().Get("m")]})
	return nil
}

// login logs a visitor in with the API's auth/login, whose rate limits
// count the browser's address and the username.
func (c *Console) login(rq *request) error {
	f := rq.r.PostForm
	form := loginForm{Username: strings.TrimSpace(f.Get("username")), Next: safeNext(f.Get("next")), Errors: fieldErrors{}}
	if !sameToken(f.Get("csrf"), cookie(rq.r, rq.names.login)) {
		return rq.forbidden("The login form had expired or did not come from this console. It has been reloaded: try again.")
	}
	password := f.Get("password")
	switch {
	case form.Username == "":
		form.Errors["username"] = "Enter your username (your email address)."
	case password == "":
		form.Errors["password"] = "Enter your password."
	}
	if len(form.Errors) == 0 {
		s, err := c.api.Login(rq.context(), form.Username, password)
		if err == nil {
			if s.Expires.IsZero() {
				return errors.New("console: the login answered a session without an expiry")
			}
			c.setCookie(rq.w, rq.r, rq.names.session, s.Token, s.Expires.Time)
			c.deleteCookie(rq.w, rq.r, rq.names.login)
			return rq.done(form.Next, "")
		}
		switch client.StatusOf(err) {
		case http.StatusUnauthorized:
			form.Errors["password"] = "The username or the password is wrong."
		case http.StatusForbidden:
			form.Errors["username"] = "This account is not active: an administrator has to activate it before you can log in."
		case http.StatusTooManyRequests:
			form.Errors["password"] = "Too many failed attempts for this account or from your address. " + rq.tryAgain()
		case http.StatusBadRequest:
			form.Errors["username"] = sentence(messageOf(err))
		default:
			return err
		}
	}
	rq.loginCSRF()
	rq.render(statusOfForm(form.Errors), "login", "Log in", "", form)
	return nil
}

// loginCSRF gives the login form its token, keeping the cookie's.
func (rq *request) loginCSRF() {
	rq.csrf = cookie(rq.r, rq.names.login)
	if rq.csrf == "" || len(rq.csrf) > 64 {
		rq.csrf = randomToken()
		rq.c.setCookie(rq.w, rq.r, rq.names.login, rq.csrf, time.Time{})
	}
}

// logout ends the session with the API's auth/logout.
func (c *Console) logout(rq *request) error {
	err := c.api.Logout(rq.context())
	if err != nil && client.StatusOf(err) != http.StatusUnauthorized {
		return err
	}
	c.deleteCookie(rq.w, rq.r, rq.names.session)
	return rq.done(Prefix+"/login?m=logged-out", "")
}

// sessionEnded sends a visitor whose session the API no longer takes to
// the login page, and back to where they were once logged in.
func (rq *request) sessionEnded() {
	rq.c.deleteCookie(rq.w, rq.r, rq.names.session)
	q := url.Values{"m": {"ended"}}
	if rq.r.Method == http.MethodGet && rq.r.URL.Path != Prefix {
		q.Set("next", rq.r.URL.RequestURI())
	}
	rq.redirect(Prefix + "/login?" + q.Encode())
}

// safeNext is where to go after logging in: a page of the console, or
// the quotas (never another site).
func safeNext(next string) string {
	u, err := url.Parse(next)
	if err != nil || u.Scheme != "" || u.Host != "" || u.User != nil ||
		!strings.HasPrefix(u.Path, Prefix+"/") || strings.HasPrefix(next, "//") ||
		strings.Contains(next, "\\") || strings.HasPrefix(u.Path, Prefix+"/login") {
		return Prefix + "/quotas"
	}
	return u.RequestURI()
}

// The sessions page: the user's sessions (the logins of their browsers
// and of the CLI), each with when it was made, expires and was last used,
// and where its login came from; this browser's marked. Ending one ends
// it at once (its next call is refused); ending this browser's is a
// logout.

type sessionsPage struct {
	Sessions []sessionRow
	Pager    pager
	// Others is how many sessions other than this browser's there are.
	Others int
	// EndError is why an end failed: by the session's id when the page
	// lists it, else by "".
	EndError map[string]string
}

// sessionRow is one session on the page.
type sessionRow struct {
	wire.SessionInfo
	Browser string // the User-Agent in words: "Chrome on Linux"
}

// sessionsPerPage is how many sessions a page lists.
const sessionsPerPage = 20

// sessions lists the user's sessions.
func (c *Console) sessions(rq *request) error {
	return c.showSessions(rq, http.StatusOK, nil)
}

// showSessions renders the sessions page, with an end that failed.
func (c *Console) showSessions(rq *request, status int, failed *rowFailure) error {
	pageNo := pageParam(rq.r)
	list, err := c.api.FindSessions(rq.context(), client.SessionFilter{PageOptions: client.PageOptions{Page: pageNo, PageSize: sessionsPerPage}})
	if err != nil {
		return err
	}
	page := sessionsPage{Pager: newPager(rq.r, pageNo, sessionsPerPage, list.Count), Others: max(list.Count-1, 0)}
	for _, s := range list.Results {
		page.Sessions = append(page.Sessions, sessionRow{SessionInfo: s, Browser: browserName(s.UserAgent)})
	}
	page.EndError = failed.byRow(func(id string) bool {
		return slices.ContainsFunc(list.Results, func(s wire.SessionInfo) bool { return s.ID == id })
	})
	rq.render(status, "sessions", "Sessions", "sessions", page)
	return nil
}

// rowFailure is a form of a row of a list that failed: the row's id, and
// why.
type rowFailure struct{ id, message string }

// byRow is the failure by the id of its row if the page lists it (has),
// else by "" (said above the list); nil for no failure.
func (f *rowFailure) byRow(has func(id string) bool) map[string]string {
	if f == nil {
		return nil
	}
	if has(f.id) {
		return map[string]string{f.id: f.message}
	}
	return map[string]string{"": f.message}
}

// endSession ends a session of the user's: another browser's, or this
// one's (a logout).
func (c *Console) endSession(rq *request) error {
	id := rq.r.PostForm.Get("id")
	if id == "" {
		return rq.badForm()
	}
	if err := c.api.DeleteSession(rq.context(), id); err != nil {
		if client.StatusOf(err) == http.StatusNotFound {
			return c.showSessions(rq, http.StatusUnprocessableEntity, &rowFailure{id,
				"There is no such session of yours: it has ended already (it expired, or was ended elsewhere)."})
		}
		return err
	}
	if id == rq.me.Auth.TokenID {
		c.deleteCookie(rq.w, rq.r, rq.names.session)
		return rq.done(Prefix+"/login?m=logged-out", "")
	}
	return rq.done(Prefix+"/sessions", "The session was ended: whoever used it has to log in again.")
}

// endOtherSessions ends every session of the user's but this browser's.
func (c *Console) endOtherSessions(rq *request) error {
	ctx := rq.context()
	var others []string
	for p := 1; p <= maxListPages; p++ {
		list, err := c.api.FindSessions(ctx, client.SessionFilter{PageOptions: client.PageOptions{Page: p, PageSize: 100}})
		if err != nil {
			return err
		}
		for _, s := range list.Results {
			if s.ID != rq.me.Auth.TokenID {
				others = append(others, s.ID)
			}
		}
		if list.Next == nil {
			break
		}
	}
	ended := 0
	for _, id := range others {
		err := c.api.DeleteSession(ctx, id)
		switch {
		case err == nil:
			ended++
		case client.StatusOf(err) == http.StatusNotFound: // it ended meanwhile
		default:
			return err
		}
	}
	msg := "There was no other session to end."
	if ended > 0 {
		msg = "Every other session was ended (" + strconv.Itoa(ended) + "): only this browser is logged in now."
	}
	return rq.done(Prefix+"/sessions", msg)
}

// browserName says which browser on which system a User-Agent is, in a
// few words ("Firefox on Windows"), or the User-Agent itself when it is
// none of the usual ones (a program: "quotaledger-go-client").
func browserName(ua string) string {
	if strings.TrimSpace(ua) == "" {
		return "unknown"
	}
	var browser string
	for _, b := range []struct{ token, name string }{
		{"Firefox/", "Firefox"}, {"Edg/", "Edge"}, {"OPR/", "Opera"}, {"Chromium/", "Chromium"},
		{"HeadlessChrome/", "Chrome (headless)"}, {"Chrome/", "Chrome"}, {"CriOS/", "Chrome"}, {"Safari/", "Safari"},
	} {
		if strings.Contains(ua, b.token) {
			browser = b.name
			break
		}
	}
	if browser == "" {
		if len(ua) > 60 {
			return ua[:60] + "…"
		}
		return ua
	}
	for _, s := range []struct{ token, name string }{
		{"Android", "Android"}, {"iPhone", "iPhone"}, {"iPad", "iPad"}, {"Windows", "Windows"},
		{"Mac OS X", "macOS"}, {"CrOS", "ChromeOS"}, {"Linux", "Linux"},
	} {
		if strings.Contains(ua, s.token) {
			return browser + " on " + s.name
		}
	}
	return browser
}

package console

import (
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/quotaledger/quotaledger/api/client"
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

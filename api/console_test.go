package api

import (
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/quotaledger/quotaledger/internal/testkit/identitytest"
)

// TestConsoleOnAFollower uses the console on a follower of a cluster: its
// writes (the login, a token) are the API's calls, forwarded to the
// leader like any client's, and the page after each shows what it did
// (the console waits until the follower has applied the write).
func TestConsoleOnAFollower(t *testing.T) {
	nodes := startCluster(t, 2, time.Second)
	leader, rest := leaderOf(t, nodes)
	follower := rest[0]
	identitytest.AddPrincipals(t, leader.id)
	caughtUp(t, follower, leader.l.Applied())

	jar, err := cookiejar.New(nil)
	if err != nil {
		t.Fatal(err)
	}
	b := &http.Client{Jar: jar, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	csrf := regexp.MustCompile(`name="csrf" value="([^"]+)"`)
	get := func(path string) (int, string) {
		t.Helper()
		st, _, raw := clusterCall(t, b, "GET", follower.srv.URL+path, nil, "")
		return st, string(raw)
	}
	post := func(path string, form url.Values) (int, http.Header, string) {
		t.Helper()
		req, err := http.NewRequest("POST", follower.srv.URL+path, strings.NewReader(form.Encode()))
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		resp, err := b.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		raw, err := io.ReadAll(resp.Body)
		if err != nil {
			t.Fatal(err)
		}
		return resp.StatusCode, resp.Header, string(raw)
	}
	forwarded := func() float64 {
		return counterOf(t, follower.reg, "quotaledger_cluster_forwarded_total", map[string]string{"outcome": "answered"})
	}

	_, login := get("/ui/login")
	st, h, body := post("/ui/login", url.Values{"csrf": {csrf.FindStringSubmatch(login)[1]},
		"username": {identitytest.UserName}, "password": {identitytest.Password}})
	if st != http.StatusSeeOther || h.Get("Location") != "/ui/quotas" {
		t.Fatalf("login on the follower: %d to %q: %.500s", st, h.Get("Location"), body)
	}
	if forwarded() != 1 {
		t.Fatalf("the login was not forwarded to the leader: %v", forwarded())
	}
	// The follower knows the session the leader made at once.
	st, tokens := get("/ui/tokens")
	if st != http.StatusOK {
		t.Fatalf("a page after the login: %d %.300s", st, tokens)
	}
	st, _, body = post("/ui/tokens", url.Values{"csrf": {csrf.FindStringSubmatch(tokens)[1]}, "name": {"made on a follower"}, "expires": {"7"}})
	if st != http.StatusOK || !strings.Contains(body, `<td class="token-name">made on a follower</td>`) || !strings.Contains(body, `id="secret"`) {
		t.Fatalf("a token made on the follower: %d %.800s", st, body)
	}
	if forwarded() != 2 {
		t.Fatalf("the token was not forwarded to the leader: %v", forwarded())
	}
}

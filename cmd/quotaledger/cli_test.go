package main

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/quotaledger/quotaledger/internal/testkit"
)

// cliServer starts a server in the process and returns its base URL, the
// admin's token and the URL of its embedded NATS server.
func cliServer(t *testing.T) (base, admin, natsURL string) {
	t.Helper()
	clearEnv(t)
	for _, k := range []string{"QUOTALEDGER_URL", "QUOTALEDGER_TOKEN", "QUOTALEDGER_TOKEN_FILE", "QUOTALEDGER_PASSWORD", "QUOTALEDGER_USERNAME"} {
		t.Setenv(k, "")
		_ = os.Unsetenv(k)
	}
	t.Setenv("XDG_CONFIG_HOME", t.TempDir()) // never the operator's own token file
	dir := t.TempDir()
	m, _, stderr := newTestMain()
	ctx := context.Background()
	if err := m.ParseFlags(ctx, []string{"serve", "--data", dir, "--listen", "127.0.0.1:0", "--nats-listen", "127.0.0.1:-1"}); err != nil {
		t.Fatal(err)
	}
	if err := m.Run(ctx); err != nil {
		t.Fatalf("Run: %v\n%s", err, stderr.String())
	}
	t.Cleanup(func() { _ = m.Close() })
	return "http://" + m.server.addr.String(), readBootstrap(t, dir).Token, m.server.nats.ClientURL()
}

// cli runs the command line args through Main and returns the exit code,
// stdout and stderr.
func cli(t *testing.T, env map[string]string, args ...string) (int, string, string) {
	t.Helper()
	m, stdout, stderr := newTestMain()
	m.Getenv = func(k string) string { return env[k] }
	m.Stdin = strings.NewReader("")
	code := m.Main(context.Background(), func() {}, args)
	return code, stdout.String(), stderr.String()
}

// ok runs args and fails the test unless it exits 0.
func ok(t *testing.T, args ...string) string {
	t.Helper()
	code, out, errOut := cli(t, nil, args...)
	if code != 0 {
		t.Fatalf("%q: exit %d\nstdout: %s\nstderr: %s", args, code, out, errOut)
	}
	return out
}

// okJSON runs args with --json and decodes the output into v.
func okJSON(t *testing.T, v any, args ...string) {
	t.Helper()
	out := ok(t, append(args, "--json")...)
	if err := json.Unmarshal([]byte(out), v); err != nil {
		t.Fatalf("%q --json: %v\n%s", args, err, out)
	}
}

// exits runs args and checks the exit code and that stderr says want.
func exits(t *testing.T, code int, want string, args ...string) {
	t.Helper()
	got, out, errOut := cli(t, nil, args...)
	if got != code || !strings.Contains(errOut, want) {
		t.Fatalf("%q: exit %d, want %d with %q in stderr\nstdout: %s\nstderr: %s", args, got, code, want, out, errOut)
	}
}

func mustContain(t *testing.T, out string, wants ...string) {
	t.Helper()
	for _, w := range wants {
		if !strings.Contains(out, w) {
			t.Fatalf("output does not contain %q:\n%s", w, out)
		}
	}
}

func TestCLI(t *testing.T) {
	base, admin, natsURL := cliServer(t)
	as := func(token string, args ...string) []string {
		return append(args, "--url", base, "--token", token)
	}
	a := func(args ...string) []string { return as(admin, args...) }

	t.Run("whoami", func(t *testing.T) {
		mustContain(t, ok(t, a("whoami")...), "username", "admin")
		var me struct {
			UUID string `json:"uuid"`
		}
		okJSON(t, &me, a("whoami")...)
		if me.UUID == "" {
			t.Fatal("whoami --json: no uuid")
		}
	})

	var svcToken string
	t.Run("service and resource", func(t *testing.T) {
		var s struct{ Token string }
		okJSON(t, &s, a("service", "create", "cyclades", "--type", "compute", "--endpoint", "http://cyclades.example/v2", "--version", "v2.0")...)
		if s.Token == "" {
			t.Fatal("service create: no token")
		}
		mustContain(t, ok(t, a("service", "list")...), "cyclades", "compute", "http://cyclades.example/v2")
		var r struct{ Token string }
		okJSON(t, &r, a("service", "renew", "cyclades")...)
		if r.Token == "" || r.Token == s.Token {
			t.Fatalf("service renew: token %q", r.Token)
		}
		svcToken = r.Token
		mustContain(t, ok(t, a("resource", "register", "cyclades.vm", "--service", "cyclades", "--uplimit", "2",
			"--description", "virtual machines", "--allow-in-projects")...), "cyclades.vm")
		mustContain(t, ok(t, a("resource", "list")...), "cyclades.vm", "virtual machines")
		var rs map[string]any
		okJSON(t, &rs, a("resource", "list")...)
		if _, ok := rs["cyclades.vm"]; !ok {
			t.Fatalf("resource list --json: %v", rs)
		}
	})

	t.Run("commission over NATS", func(t *testing.T) {
		// --nats sends the commission commands to the micro service; --url
		// names nothing that answers, so nothing goes over HTTP.
		ok(t, a("quota", "set", "hn", "system", "cyclades.vm", "3")...)
		s := []string{"--nats", natsURL, "--token", svcToken, "--url", "http://" + testkit.FreeAddr(t)}
		var issued struct{ Serial int64 }
		okJSON(t, &issued, append([]string{"commission", "issue", "--holder", "hn", "--source", "system", "-p", "cyclades.vm=2"}, s...)...)
		serial := strconv.FormatInt(issued.Serial, 10)
		if issued.Serial <= 0 {
			t.Fatalf("commission issue --nats: serial %d", issued.Serial)
		}
		mustContain(t, ok(t, append([]string{"commission", "list"}, s...)...), serial)
		mustContain(t, ok(t, as(svcToken, "commission", "list")...), serial) // the same server over HTTP
		mustContain(t, ok(t, append([]string{"commission", "show", serial}, s...)...), "hn", "system", "cyclades.vm", "2")
		exits(t, 1, "413 overLimit", append([]string{"commission", "issue", "--holder", "hn", "--source", "system", "-p", "cyclades.vm=2"}, s...)...)
		mustContain(t, ok(t, append([]string{"commission", "accept", serial}, s...)...), "accepted commission "+serial)
		exits(t, 1, "404 itemNotFound", append([]string{"commission", "show", serial}, s...)...)
		exits(t, 1, "403 forbidden", "commission", "list", "--nats", natsURL, "--token", admin)
		exits(t, 3, "--nats", "commission", "list", "--nats", "nats://"+testkit.FreeAddr(t), "--token", svcToken)
		// The admins' commission calls are not the micro service's.
		exits(t, 2, "over HTTP only", "commission", "pending", "--nats", natsURL, "--token", admin)
		exits(t, 2, "over HTTP only", "commission", "resolve", "--accept", serial, "--nats", natsURL, "--token", admin)
		ok(t, a("quota", "delete", "hn", "system", "cyclades.vm")...)
	})

	t.Run("quota and commission", func(t *testing.T) {
		mustContain(t, ok(t, a("quota", "set", "h1", "system", "cyclades.vm", "10")...), "h1", "[..........] 0/10")
		ok(t, a("quota", "set", "h1", "-", "cyclades.vm", "4")...)
		s := as(svcToken)
		var issued struct{ Serial int64 }
		okJSON(t, &issued, as(svcToken, "commission", "issue", "--holder", "h1", "--source", "system", "-p", "cyclades.vm=5", "--name", "vm")...)
		serial := strconv.FormatInt(issued.Serial, 10)
		mustContain(t, ok(t, append([]string{"commission", "list"}, s...)...), serial)
		var pending []int64
		okJSON(t, &pending, append([]string{"commission", "list"}, s...)...)
		if len(pending) != 1 || pending[0] != issued.Serial {
			t.Fatalf("commission list --json: %v", pending)
		}
		mustContain(t, ok(t, append([]string{"commission", "show", serial}, s...)...), "h1", "system", "cyclades.vm", "5")
		mustContain(t, ok(t, append([]string{"commission", "accept", serial, "--reason", "ok"}, s...)...), "accepted commission "+serial)
		out := ok(t, a("quota", "get", "--holder", "h1")...)
		mustContain(t, out, "[#####.....] 5/10", "[..........] 0/4", "HOLDER")
		var hs struct {
			Holdings []struct {
				Source   *string `json:"source"`
				Limit    int64   `json:"limit"`
				UsageMax int64   `json:"usage_max"`
			} `json:"holdings"`
		}
		okJSON(t, &hs, a("quota", "get", "--holder", "h1", "--source", "system")...)
		if len(hs.Holdings) != 1 || hs.Holdings[0].UsageMax != 5 || hs.Holdings[0].Limit != 10 {
			t.Fatalf("quota get --json: %+v", hs)
		}
		// A commission from a JSON file, then rejected.
		f := filepath.Join(t.TempDir(), "c.json")
		if err := os.WriteFile(f, []byte(`{"name":"f","provisions":[{"holder":"h1","source":"system","resource":"cyclades.vm","quantity":2}]}`), 0o600); err != nil {
			t.Fatal(err)
		}
		out = ok(t, append([]string{"commission", "issue", "--file", f}, s...)...)
		mustContain(t, out, "issued commission")
		serial2 := strings.TrimSpace(strings.TrimPrefix(out, "issued commission"))
		mustContain(t, ok(t, append([]string{"commission", "reject", serial2}, s...)...), "rejected commission "+serial2)
		// Refusals: past the limit (413), not pending (404).
		exits(t, 1, "413", append([]string{"commission", "issue", "--holder", "h1", "--source", "system", "-p", "cyclades.vm=6"}, s...)...)
		exits(t, 1, "404", append([]string{"commission", "show", serial}, s...)...)
		exits(t, 1, "404", append([]string{"commission", "accept", "999999"}, s...)...)
		// The history shows the accepted commission.
		mustContain(t, ok(t, a("history", "--holder", "h1")...), serial, "cyclades.vm", "ACCEPT")
		var h struct {
			Results []struct{ Serial int64 } `json:"results"`
		}
		okJSON(t, &h, a("history", "--holder", "h1", "--serial", serial)...)
		if len(h.Results) != 1 || h.Results[0].Serial != issued.Serial {
			t.Fatalf("history --json: %+v", h)
		}
		ok(t, a("quota", "delete", "h1", "-", "cyclades.vm")...)
		okJSON(t, &hs, a("quota", "get", "--holder", "h1")...)
		if len(hs.Holdings) != 1 {
			t.Fatalf("after delete: %+v", hs)
		}
	})

	var alice string
	t.Run("user", func(t *testing.T) {
		var u struct {
			UUID   string `json:"uuid"`
			Active bool   `json:"active"`
		}
		okJSON(t, &u, a("user", "create", "alice@example.org", "--password", "correct horse battery", "--first-name", "Alice", "--inactive")...)
		if u.UUID == "" || u.Active {
			t.Fatalf("user create: %+v", u)
		}
		alice = u.UUID
		mustContain(t, ok(t, a("user", "list", "--prefix", "alice")...), alice, "alice@example.org")
		mustContain(t, ok(t, a("user", "activate", alice)...), "true")
		mustContain(t, ok(t, a("user", "role", alice, "reader")...), "reader")
		mustContain(t, ok(t, a("user", "show", alice)...), "alice@example.org", "reader")
		ok(t, a("user", "role", alice, "user")...)
		exits(t, 1, "404", a("user", "show", "00000000-0000-0000-0000-000000000000")...)
		exits(t, 1, "403", as(svcToken, "user", "list")...)
	})

	t.Run("token", func(t *testing.T) {
		var tk struct {
			ID    string `json:"id"`
			Token string `json:"token"`
		}
		okJSON(t, &tk, a("token", "create", "ci", "--expires", "24h", "--read-only")...)
		if tk.ID == "" || tk.Token == "" {
			t.Fatalf("token create: %+v", tk)
		}
		mustContain(t, ok(t, as(tk.Token, "whoami")...), "admin")
		mustContain(t, ok(t, a("token", "list")...), tk.ID, "ci")
		mustContain(t, ok(t, a("token", "revoke", tk.ID)...), "revoked")
		exits(t, 1, "401", as(tk.Token, "whoami")...)
	})

	t.Run("project", func(t *testing.T) {
		var p struct {
			UUID string `json:"uuid"`
		}
		okJSON(t, &p, a("project", "create", "p1", "--policy", "cyclades.vm=10:2")...)
		if p.UUID == "" {
			t.Fatal("project create: no uuid")
		}
		mustContain(t, ok(t, a("project", "join", p.UUID, "--user", alice)...), alice)
		mustContain(t, ok(t, a("project", "show", p.UUID)...), "p1", "cyclades.vm", alice)
		ok(t, a("project", "leave", p.UUID, "--user", alice)...)
		if strings.Contains(ok(t, a("project", "show", p.UUID)...), alice) {
			t.Fatal("alice is still a member after leave")
		}
	})

	t.Run("login and logout", func(t *testing.T) {
		file := filepath.Join(t.TempDir(), "token")
		code, out, errOut := cli(t, map[string]string{"QUOTALEDGER_PASSWORD": "correct horse battery"},
			"login", "--url", base, "--username", "alice@example.org", "--token-file", file)
		if code != 0 {
			t.Fatalf("login: exit %d\n%s%s", code, out, errOut)
		}
		mustContain(t, ok(t, "whoami", "--url", base, "--token-file", file), "alice@example.org")
		// Her own quotas: the base project, under her uuid, with cyclades.vm's uplimit.
		mustContain(t, ok(t, "quota", "get", "--mine", "--url", base, "--token-file", file), alice, "cyclades.vm", "[..........] 0/2")
		var qs map[string]map[string]struct{ Limit int64 }
		okJSON(t, &qs, "quota", "get", "--mine", "--resource", "cyclades.vm", "--url", base, "--token-file", file)
		if qs[alice]["cyclades.vm"].Limit != 2 {
			t.Fatalf("quota get --mine --json: %+v", qs)
		}
		exits(t, 1, "403", "quota", "get", "--url", base, "--token-file", file)
		mustContain(t, ok(t, "logout", "--url", base, "--token-file", file), "logged out")
		if _, err := os.Stat(file); !os.IsNotExist(err) {
			t.Fatalf("the token file is still there: %v", err)
		}
		exits(t, 2, "not logged in", "logout", "--url", base, "--token-file", file)
		exits(t, 1, "401", "whoami", "--url", base, "--token-file", file)
	})

	t.Run("session", func(t *testing.T) {
		login := func() string {
			file := filepath.Join(t.TempDir(), "token")
			code, out, errOut := cli(t, map[string]string{"QUOTALEDGER_PASSWORD": "correct horse battery"},
				"login", "--url", base, "--username", "alice@example.org", "--token-file", file)
			if code != 0 {
				t.Fatalf("login: exit %d\n%s%s", code, out, errOut)
			}
			return file
		}
		laptop, phone := login(), login()
		var mine []struct {
			ID        string `json:"id"`
			Current   bool   `json:"current"`
			Address   string `json:"address"`
			UserAgent string `json:"user_agent"`
		}
		okJSON(t, &mine, "session", "list", "--url", base, "--token-file", laptop)
		if len(mine) != 2 || mine[0].Current || !mine[1].Current || mine[0].Address != "127.0.0.1" ||
			mine[0].UserAgent != "quotaledger-go-client" {
			t.Fatalf("session list --json: %+v", mine)
		}
		phoneID, laptopID := mine[0].ID, mine[1].ID
		mustContain(t, ok(t, "session", "list", "--url", base, "--token-file", laptop),
			"ADDRESS", laptopID+" *", phoneID, "127.0.0.1", "quotaledger-go-client")
		exits(t, 1, "403", "session", "list", "--user", "*", "--url", base, "--token-file", laptop)
		mustContain(t, ok(t, a("session", "list", "--user", alice)...), laptopID, phoneID)
		mustContain(t, ok(t, "session", "end", phoneID, "--url", base, "--token-file", laptop), "ended session "+phoneID)
		exits(t, 1, "401", "whoami", "--url", base, "--token-file", phone)
		exits(t, 1, "404", "session", "end", phoneID, "--url", base, "--token-file", laptop)
		mustContain(t, ok(t, a("session", "end", laptopID)...), "ended session "+laptopID)
		exits(t, 1, "401", "whoami", "--url", base, "--token-file", laptop)
	})

	t.Run("reconcile", func(t *testing.T) {
		svc := func(args ...string) []string { return as(svcToken, args...) }
		holder, src := "user:"+alice, "project:"+alice
		ok(t, svc("commission", "issue", "--holder", holder, "--source", src, "-p", "cyclades.vm=2", "--auto-accept")...)
		var orphan struct{ Serial int64 }
		okJSON(t, &orphan, svc("commission", "issue", "--holder", holder, "--source", src, "-p", "cyclades.vm=0", "--name", "stuck")...)
		file := filepath.Join(t.TempDir(), "usage.csv")
		if err := os.WriteFile(file, []byte("holder,source,resource,usage\n"+holder+","+src+",cyclades.vm,1\n"), 0o600); err != nil {
			t.Fatal(err)
		}
		serial := strconv.FormatInt(orphan.Serial, 10)
		// An admin sees it pending, with its age; a user may not.
		mustContain(t, ok(t, a("commission", "pending", "--service", "cyclades")...), serial, "cyclades", "stuck", "AGE")
		userFile := filepath.Join(t.TempDir(), "token")
		if code, out, errOut := cli(t, map[string]string{"QUOTALEDGER_PASSWORD": "correct horse battery"},
			"login", "--url", base, "--username", "alice@example.org", "--token-file", userFile); code != 0 {
			t.Fatalf("login: exit %d\n%s%s", code, out, errOut)
		}
		exits(t, 1, "403", "commission", "pending", "--url", base, "--token-file", userFile)
		// An admin resolves any service's: a serial not pending is shown, and
		// exits 1.
		var other struct{ Serial int64 }
		okJSON(t, &other, svc("commission", "issue", "--holder", holder, "--source", src, "-p", "cyclades.vm=0", "--name", "other")...)
		otherSerial := strconv.FormatInt(other.Serial, 10)
		code, out, errOut := cli(t, nil, a("commission", "resolve", "--reject", otherSerial+",99999", "--reason", "stuck")...)
		if code != 1 || !strings.Contains(errOut, "1 of the serials not resolved") {
			t.Fatalf("commission resolve: exit %d\n%s%s", code, out, errOut)
		}
		mustContain(t, out, otherSerial, "rejected", "99999")
		mustContain(t, ok(t, a("history", "--holder", holder)...), "REJECT:ADMIN:")
		exits(t, 2, "--accept or --reject", a("commission", "resolve")...)
		exits(t, 1, "403", "commission", "resolve", "--reject", otherSerial, "--url", base, "--token-file", userFile)
		// The table first; nothing done without --fix.
		out = ok(t, svc("reconcile", "--file", file, "--older-than", "0s")...)
		mustContain(t, out, "DIFFERENCE", holder, "cyclades.vm", "-1", "ORPHAN", serial, "stuck",
			"1 holdings differ, 1 orphans", "run again with --fix")
		out = ok(t, svc("reconcile", "--file", file, "--older-than", "0s", "--fix")...)
		mustContain(t, out, "DIFFERENCE", "-1", "fixed: rejected orphans "+serial+"; correcting commissions ")
		mustContain(t, ok(t, svc("reconcile", "--file", file, "--older-than", "0s", "--fix")...), "0 holdings differ, 0 orphans", "nothing to fix")
		mustContain(t, ok(t, a("history", "--holder", holder)...), "RECONCILE:cyclades", "REJECT:RECONCILE:cyclades")
		// An admin names the service; a bad file is a usage error.
		exits(t, 1, "400", a("reconcile", "--file", file)...)
		var res struct {
			Service  string `json:"service"`
			Holdings []any  `json:"holdings"`
		}
		okJSON(t, &res, a("reconcile", "--file", file, "--service", "cyclades")...)
		if res.Service != "cyclades" || len(res.Holdings) != 0 {
			t.Fatalf("reconcile --json: %+v", res)
		}
		bad := filepath.Join(t.TempDir(), "bad.csv")
		if err := os.WriteFile(bad, []byte(holder+","+src+",cyclades.vm,many\n"), 0o600); err != nil {
			t.Fatal(err)
		}
		exits(t, 2, "line 1", svc("reconcile", "--file", bad)...)
	})

	t.Run("user delete", func(t *testing.T) {
		mustContain(t, ok(t, a("user", "delete", alice)...), "deleted")
	})

	t.Run("usage errors", func(t *testing.T) {
		exits(t, 2, "want HOLDER SOURCE RESOURCE LIMIT", a("quota", "set", "h1", "system")...)
		exits(t, 2, "limit", a("quota", "set", "h1", "system", "cyclades.vm", "lots")...)
		exits(t, 2, "serial", a("commission", "show", "x")...)
		exits(t, 2, "unknown flag", a("quota", "get", "--nope")...)
		exits(t, 2, "RESOURCE=QUANTITY", a("commission", "issue", "--holder", "h", "-p", "r")...)
		exits(t, 2, "expected", a("user", "role")...)
	})

	t.Run("failure", func(t *testing.T) {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		dead := "http://" + l.Addr().String()
		_ = l.Close()
		exits(t, 3, "connect", "whoami", "--url", dead, "--token", "x")
		// A 5xx and an answer that is not JSON are failures too.
		broken := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if strings.HasSuffix(r.URL.Path, "/whoami") {
				w.Header().Set("Content-Type", "application/json")
				w.WriteHeader(http.StatusInternalServerError)
				_, _ = w.Write([]byte(`{"internalServerError":{"message":"boom","code":500}}`))
				return
			}
			_, _ = w.Write([]byte("<html>not json</html>"))
		}))
		defer broken.Close()
		exits(t, 3, "boom", "whoami", "--url", broken.URL, "--token", "x")
		exits(t, 3, "not valid JSON", "user", "list", "--url", broken.URL, "--token", "x")
	})

	t.Run("csv import", func(t *testing.T) {
		const n = 1234
		var b strings.Builder
		b.WriteString("holder,source,resource,limit\n")
		for i := range n {
			src := "system"
			if i%2 == 1 {
				src = "-"
			}
			fmt.Fprintf(&b, "csvh,%s,r%04d,%d\n", src, i, i)
		}
		f := filepath.Join(t.TempDir(), "limits.csv")
		if err := os.WriteFile(f, []byte(b.String()), 0o600); err != nil {
			t.Fatal(err)
		}
		mustContain(t, ok(t, a("quota", "set", "--file", f, "--chunk", "300")...), fmt.Sprintf("set %d holdings", n))
		var hs struct {
			Holdings []struct {
				Source   *string `json:"source"`
				Resource string  `json:"resource"`
				Limit    int64   `json:"limit"`
			} `json:"holdings"`
		}
		okJSON(t, &hs, a("quota", "get", "--holder", "csvh")...)
		if len(hs.Holdings) != n {
			t.Fatalf("quota get: %d holdings, want %d", len(hs.Holdings), n)
		}
		for _, h := range hs.Holdings {
			i, err := strconv.Atoi(strings.TrimPrefix(h.Resource, "r"))
			if err != nil || h.Limit != int64(i) || (h.Source == nil) != (i%2 == 1) {
				t.Fatalf("holding %+v", h)
			}
		}
		bad := filepath.Join(t.TempDir(), "bad.csv")
		if err := os.WriteFile(bad, []byte("a,b,c,1\na,b,c,x\n"), 0o600); err != nil {
			t.Fatal(err)
		}
		exits(t, 2, "line 2", a("quota", "set", "--file", bad)...)
	})

	t.Run("cluster status", func(t *testing.T) {
		mustContain(t, ok(t, a("cluster", "status")...), "NAME", "ROLE", "APPLIED", "LAG", "LAST CONTACT", "DIGEST", " single ", "leader: ")
		var cl struct {
			Nodes []struct {
				Role    string `json:"role"`
				Applied uint64 `json:"applied"`
				Digest  string `json:"digest"`
			} `json:"nodes"`
		}
		okJSON(t, &cl, a("cluster", "status")...)
		if len(cl.Nodes) != 1 || cl.Nodes[0].Role != "single" || cl.Nodes[0].Applied == 0 || cl.Nodes[0].Digest == "" {
			t.Fatalf("cluster status --json: %+v", cl)
		}
	})
}

func TestUsageBar(t *testing.T) {
	for _, c := range []struct {
		usage, limit int64
		want         string
	}{
		{5, 10, "[#####.....] 5/10"},
		{0, 10, "[..........] 0/10"},
		{12, 10, "[##########] 12/10"},
		{0, 0, "[..........] 0/0"},
		{3, 0, "[##########] 3/0"},
	} {
		if got := usageBar(c.usage, c.limit); got != c.want {
			t.Errorf("usageBar(%d, %d) = %q, want %q", c.usage, c.limit, got, c.want)
		}
	}
}

func TestProgress(t *testing.T) {
	var b strings.Builder
	p := &progress{w: &b, on: true, total: 4}
	p.update(0)
	p.update(2)
	p.update(4)
	p.end()
	out := b.String()
	mustContain(t, out, "\r[..............................] 0/4 holdings",
		"\r[###############...............] 2/4 holdings", "\r[##############################] 4/4 holdings")
	if strings.Count(out, "\n") != 1 || !strings.HasSuffix(out, "\n") {
		t.Fatalf("want one updating line ended once: %q", out)
	}
	var off strings.Builder
	p = &progress{w: &off, on: cliIsTerminal(&off), total: 4}
	p.update(1)
	p.end()
	if off.Len() != 0 {
		t.Fatalf("progress on a non-terminal: %q", off.String())
	}
}

func TestCLIHelp(t *testing.T) {
	clearEnv(t)
	code, out, _ := cli(t, nil, "--help")
	if code != 0 {
		t.Fatalf("--help: exit %d", code)
	}
	for _, cmd := range []string{"logout", "whoami", "quota", "commission", "user", "token", "resource", "service", "project", "history", "cluster"} {
		mustContain(t, out, "  "+cmd+" ")
	}
	mustContain(t, strings.Join(strings.Fields(out), " "),
		"Exit codes: 0 success, 1 refused by the server (4xx), 2 usage error, 3 failure (network, 5xx, invalid answer).")
	code, out, _ = cli(t, nil, "quota", "set", "--help")
	if code != 0 {
		t.Fatalf("quota set --help: exit %d", code)
	}
	mustContain(t, out, "--file", "--url", "--token", "--json", "QUOTALEDGER_URL", "QUOTALEDGER_TOKEN")
}

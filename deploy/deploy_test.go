// Package deploy holds quotaledger's deployment files (a systemd unit, a
// Dockerfile, an example configuration, a Prometheus scrape configuration)
// and the tests that check them: docker cannot run where the tests run, so
// the Dockerfile is parsed for what it must do; promtool (Debian's
// prometheus package) checks the scrape configuration and the alerting
// rules of docs/alerts.yml and runs their unit tests (docs/alerts_test.yml);
// systemd-analyze, when present, verifies the unit. The example
// configuration is checked against serve's flags in cmd/quotaledger.
package deploy

import (
	"bufio"
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"gopkg.in/yaml.v3"
)

// dataDir is where the unit and the image keep the data.
const dataDir = "/var/lib/quotaledger"

// unitFile is a systemd unit's settings: section, then key, then its
// values in order (a key may be given more than once).
type unitFile map[string]map[string][]string

func parseUnit(t *testing.T, path string) unitFile {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	u := unitFile{}
	section := ""
	sc := bufio.NewScanner(bytes.NewReader(data))
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		switch {
		case line == "" || strings.HasPrefix(line, "#") || strings.HasPrefix(line, ";"):
		case strings.HasPrefix(line, "[") && strings.HasSuffix(line, "]"):
			section = line[1 : len(line)-1]
			u[section] = map[string][]string{}
		default:
			k, v, ok := strings.Cut(line, "=")
			if !ok || section == "" {
				t.Fatalf("%s:%d: not a key=value of a section: %q", path, n, line)
			}
			u[section][k] = append(u[section][k], v)
		}
	}
	return u
}

// one is the key's only value in the section, or fails.
func (u unitFile) one(t *testing.T, section, key string) string {
	t.Helper()
	v := u[section][key]
	if len(v) != 1 {
		t.Fatalf("[%s] %s= given %d times (%q), want once", section, key, len(v), v)
	}
	return v[0]
}

// TestSystemdUnit: the unit runs serve as its own user, with the system
// read-only but the data directory, no new privileges, and a restart when
// it fails (the storage-failure exit relies on it).
func TestSystemdUnit(t *testing.T) {
	const path = "quotaledger.service"
	u := parseUnit(t, path)
	s := "Service"
	if user := u.one(t, s, "User"); user == "" || user == "root" || user == "0" {
		t.Errorf("User=%q: want a user of its own", user)
	}
	if u[s]["DynamicUser"] != nil {
		t.Errorf("DynamicUser= set: the data directory must keep one owner across upgrades")
	}
	for k, want := range map[string]string{"ProtectSystem": "strict", "NoNewPrivileges": "yes",
		"Restart": "on-failure", "ProtectHome": "yes", "PrivateTmp": "yes", "StateDirectory": "quotaledger",
		"KillSignal": "SIGTERM", "CapabilityBoundingSet": ""} {
		if got := u.one(t, s, k); got != want {
			t.Errorf("%s=%s, want %s", k, got, want)
		}
	}
	// The only path it writes is the data directory, and that is where
	// serve keeps its data.
	if rw := u[s]["ReadWritePaths"]; !slices.Equal(rw, []string{dataDir}) {
		t.Errorf("ReadWritePaths=%q, want only %s", rw, dataDir)
	}
	if env := u[s]["Environment"]; !slices.Contains(env, "QUOTALEDGER_DATA="+dataDir) {
		t.Errorf("Environment=%q does not set QUOTALEDGER_DATA=%s", env, dataDir)
	}
	exec := u.one(t, s, "ExecStart")
	if f := strings.Fields(exec); len(f) < 2 || f[1] != "serve" || slices.Contains(f, "--data") {
		t.Errorf("ExecStart=%s: want `quotaledger serve`, with the data directory from the environment", exec)
	}
	if u.one(t, s, "ExecReload") != "/bin/kill -HUP $MAINPID" {
		t.Errorf("ExecReload=%q: want SIGHUP (the TLS files re-read)", u[s]["ExecReload"])
	}
	if u.one(t, "Install", "WantedBy") != "multi-user.target" {
		t.Errorf("WantedBy=%q", u["Install"]["WantedBy"])
	}
}

// TestSystemdUnitVerifies runs systemd-analyze verify on the unit (with
// its binary replaced by one that exists), when systemd-analyze is there:
// a misspelt hardening key is ignored by systemd with only a warning.
func TestSystemdUnitVerifies(t *testing.T) {
	analyze, err := exec.LookPath("systemd-analyze")
	if err != nil {
		t.Skip("no systemd-analyze")
	}
	data, err := os.ReadFile("quotaledger.service")
	if err != nil {
		t.Fatal(err)
	}
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	unit := filepath.Join(t.TempDir(), "quotaledger.service")
	if err := os.WriteFile(unit, bytes.ReplaceAll(data, []byte("/usr/local/bin/quotaledger"), []byte(self)), 0o644); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command(analyze, "verify", unit).CombinedOutput()
	if err != nil || len(bytes.TrimSpace(out)) > 0 {
		t.Fatalf("systemd-analyze verify: %v\n%s", err, out)
	}
}

// dockerInstr is one instruction of a Dockerfile.
type dockerInstr struct {
	cmd  string // upper case
	args string
}

// parseDockerfile reads a Dockerfile's instructions, continuation lines
// joined, comments dropped.
func parseDockerfile(t *testing.T, path string) []dockerInstr {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var out []dockerInstr
	var cur strings.Builder
	for _, line := range strings.Split(string(data), "\n") {
		trim := strings.TrimSpace(line)
		if strings.HasPrefix(trim, "#") || (trim == "" && cur.Len() == 0) {
			continue
		}
		if more, ok := strings.CutSuffix(trim, "\\"); ok {
			cur.WriteString(more + " ")
			continue
		}
		cur.WriteString(trim)
		cmd, args, _ := strings.Cut(strings.TrimSpace(cur.String()), " ")
		out = append(out, dockerInstr{strings.ToUpper(cmd), strings.TrimSpace(args)})
		cur.Reset()
	}
	return out
}

// TestDockerfile: docker cannot run here, so the Dockerfile is read for
// what it must do: two stages, the binary built static (no cgo) in the
// first and copied from it, run as an unprivileged user, its data in a
// volume where QUOTALEDGER_DATA points, the API on every interface, and a
// HEALTHCHECK on /healthz.
func TestDockerfile(t *testing.T) {
	ins := parseDockerfile(t, "Dockerfile")
	var stages []string // each stage's FROM
	var final []dockerInstr
	built := false
	for _, in := range ins {
		if in.cmd == "FROM" {
			stages = append(stages, in.args)
			final = nil
			continue
		}
		final = append(final, in)
		if in.cmd == "RUN" && len(stages) == 1 && strings.Contains(in.args, "CGO_ENABLED=0") &&
			strings.Contains(in.args, "go build") && strings.Contains(in.args, "./cmd/quotaledger") {
			built = true
		}
	}
	if len(stages) < 2 || !strings.Contains(stages[0], " AS build") {
		t.Fatalf("stages %q: want a build stage (AS build) and a final one", stages)
	}
	if !strings.HasPrefix(stages[0], "golang:") {
		t.Errorf("the build stage is FROM %s, want a golang image", stages[0])
	}
	if !built {
		t.Errorf("the build stage does not build ./cmd/quotaledger with CGO_ENABLED=0 (a static binary)")
	}
	get := func(cmd string) []string {
		var v []string
		for _, in := range final {
			if in.cmd == cmd {
				v = append(v, in.args)
			}
		}
		return v
	}
	if c := get("COPY"); len(c) != 1 || !strings.HasPrefix(c[0], "--from=build ") {
		t.Errorf("the final stage's COPY %q: want only the binary, from the build stage", c)
	}
	users := get("USER")
	if len(users) != 1 {
		t.Fatalf("USER %q: want one, in the final stage", users)
	}
	if u, _, _ := strings.Cut(users[0], ":"); u == "" || u == "root" || u == "0" {
		t.Errorf("USER %s: want an unprivileged user", users[0])
	}
	if v := get("VOLUME"); len(v) != 1 || !strings.Contains(v[0], `"`+dataDir+`"`) {
		t.Errorf("VOLUME %q: want %s", v, dataDir)
	}
	env := strings.Join(get("ENV"), " ")
	if !strings.Contains(env, "QUOTALEDGER_DATA="+dataDir) || !strings.Contains(env, "QUOTALEDGER_LISTEN=0.0.0.0:8080") {
		t.Errorf("ENV %q: want QUOTALEDGER_DATA=%s and QUOTALEDGER_LISTEN=0.0.0.0:8080", env, dataDir)
	}
	hc := get("HEALTHCHECK")
	if len(hc) != 1 || !regexp.MustCompile(`CMD .*http://127\.0\.0\.1:8080/healthz`).MatchString(hc[0]) {
		t.Errorf("HEALTHCHECK %q: want one, on http://127.0.0.1:8080/healthz", hc)
	}
	if e := get("ENTRYPOINT"); len(e) != 1 || !strings.Contains(e[0], "quotaledger") {
		t.Errorf("ENTRYPOINT %q", e)
	}
	if c := get("CMD"); len(c) != 1 || c[0] != `["serve"]` {
		t.Errorf("CMD %q: want [\"serve\"]", c)
	}
}

// promtool is promtool's path; without it the test is skipped, unless CI
// is set: there .ci/run installs it, and its absence is a failure.
func promtool(t *testing.T) string {
	t.Helper()
	p, err := exec.LookPath("promtool")
	if err != nil {
		if os.Getenv("CI") != "" {
			t.Fatalf("CI is set and promtool is not installed (apt-get install prometheus; .ci/run does): %v", err)
		}
		t.Skip("no promtool (Debian: apt-get install prometheus)")
	}
	return p
}

func runPromtool(t *testing.T, dir string, args ...string) {
	t.Helper()
	cmd := exec.Command(promtool(t), args...)
	cmd.Dir = dir
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("promtool %s: %v\n%s", strings.Join(args, " "), err, out)
	}
}

// TestAlertRules checks docs/alerts.yml with promtool check rules and runs
// its unit tests, docs/alerts_test.yml.
func TestAlertRules(t *testing.T) {
	runPromtool(t, "../docs", "check", "rules", "alerts.yml")
	runPromtool(t, "../docs", "test", "rules", "alerts_test.yml")
}

// TestPrometheusConfig checks the scrape configuration with promtool,
// the alerting rules installed beside it as it says, and that its job is
// the one the alerts select.
func TestPrometheusConfig(t *testing.T) {
	dir := t.TempDir()
	for src, dst := range map[string]string{"prometheus.yml": "prometheus.yml", "../docs/alerts.yml": "quotaledger-alerts.yml"} {
		data, err := os.ReadFile(src)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, dst), data, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	var cfg struct {
		ScrapeConfigs []struct {
			JobName string `yaml:"job_name"`
		} `yaml:"scrape_configs"`
	}
	data, err := os.ReadFile("prometheus.yml")
	if err != nil {
		t.Fatal(err)
	}
	if err := yaml.Unmarshal(data, &cfg); err != nil {
		t.Fatal(err)
	}
	if len(cfg.ScrapeConfigs) != 1 || cfg.ScrapeConfigs[0].JobName != "quotaledger" {
		t.Errorf("scrape configs %+v: want the job quotaledger, which docs/alerts.yml selects", cfg.ScrapeConfigs)
	}
	runPromtool(t, dir, "check", "config", "prometheus.yml")
}

// alertNames are the alerts of docs/alerts.yml.
func alertNames(t *testing.T) []string {
	t.Helper()
	data, err := os.ReadFile("../docs/alerts.yml")
	if err != nil {
		t.Fatal(err)
	}
	var rules struct {
		Groups []struct {
			Rules []struct {
				Alert string `yaml:"alert"`
			} `yaml:"rules"`
		} `yaml:"groups"`
	}
	if err := yaml.Unmarshal(data, &rules); err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, g := range rules.Groups {
		for _, r := range g.Rules {
			if r.Alert != "" {
				names = append(names, r.Alert)
			}
		}
	}
	if len(names) == 0 {
		t.Fatal("docs/alerts.yml has no alert")
	}
	return names
}

// TestEveryAlertTestedAndDocumented: each alert of docs/alerts.yml has a
// unit test where it fires (docs/alerts_test.yml: an alert_rule_test of
// that alertname with exp_alerts) and a section of docs/operations.md that
// says what it means and what to do.
func TestEveryAlertTestedAndDocumented(t *testing.T) {
	data, err := os.ReadFile("../docs/alerts_test.yml")
	if err != nil {
		t.Fatal(err)
	}
	var tests struct {
		Tests []struct {
			AlertRuleTest []struct {
				Alertname string           `yaml:"alertname"`
				ExpAlerts []map[string]any `yaml:"exp_alerts"`
			} `yaml:"alert_rule_test"`
		} `yaml:"tests"`
	}
	if err := yaml.Unmarshal(data, &tests); err != nil {
		t.Fatal(err)
	}
	fires := map[string]bool{}
	for _, tc := range tests.Tests {
		for _, a := range tc.AlertRuleTest {
			if len(a.ExpAlerts) > 0 {
				fires[a.Alertname] = true
			}
		}
	}
	ops, err := os.ReadFile("../docs/operations.md")
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range alertNames(t) {
		if !fires[name] {
			t.Errorf("docs/alerts_test.yml has no test where %s fires", name)
		}
		if !regexp.MustCompile(`(?m)^#### ` + name + `\s*$`).Match(ops) {
			t.Errorf("docs/operations.md has no section #### %s", name)
		}
	}
}

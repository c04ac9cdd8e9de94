package main

import (
	"context"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
)

// exampleConfig is the example configuration file of deploy/.
const exampleConfig = "../../deploy/quotaledger.yml"

// configKeys are the keys of a configuration file: those set, and those
// shown commented out ("# key: value").
func configKeys(t *testing.T, text string) (set, commented []string) {
	t.Helper()
	key := regexp.MustCompile(`^(# )?([a-z][a-z0-9-]*):(\s|$)`)
	for _, line := range strings.Split(text, "\n") {
		m := key.FindStringSubmatch(line)
		if m == nil {
			continue
		}
		if m[1] == "" {
			set = append(set, m[2])
		} else {
			commented = append(commented, m[2])
		}
	}
	return set, commented
}

// TestExampleConfig: deploy/quotaledger.yml names every flag of serve (set,
// or commented out where it is one of a choice: an external NATS, a
// cluster), names no key that is not a flag, and serve starts with it.
func TestExampleConfig(t *testing.T) {
	clearConfigEnv(t)
	data, err := os.ReadFile(exampleConfig)
	if err != nil {
		t.Fatal(err)
	}
	set, commented := configKeys(t, string(data))
	if len(set) == 0 {
		t.Fatalf("%s sets no key", exampleConfig)
	}

	// Every flag of serve, and of the operator's commands (url), is there.
	m, _, stderr := newTestMain()
	ctx := context.Background()
	dir := t.TempDir()
	// The file as installed, with the test's directory and free ports.
	text := string(data)
	for k, v := range map[string]string{"data": dir, "listen": "127.0.0.1:0", "nats-listen": "127.0.0.1:-1"} {
		re := regexp.MustCompile(`(?m)^` + k + `: .*$`)
		if !re.MatchString(text) {
			t.Fatalf("%s does not set %s", exampleConfig, k)
		}
		text = re.ReplaceAllString(text, k+": "+v)
	}
	cfg := writeConfig(t, text)
	if err := m.ParseFlags(ctx, []string{"serve", "--config", cfg}); err != nil {
		t.Fatalf("serve --config %s: %v\n%s", exampleConfig, err, stderr.String())
	}
	flags := map[string]bool{}
	for _, f := range m.kctx.Flags() {
		if f.Name == "help" || f.Name == configFlag {
			continue
		}
		flags[f.Name] = true
		if !slices.Contains(set, f.Name) && !slices.Contains(commented, f.Name) {
			t.Errorf("%s does not name the key %s (--%s)", exampleConfig, f.Name, f.Name)
		}
	}
	for _, k := range append(set, commented...) {
		if !flags[k] {
			t.Errorf("%s names %s, which is not a flag of serve", exampleConfig, k)
		}
	}

	// serve takes it, and serves.
	if err := m.Run(ctx); err != nil {
		t.Fatalf("serve with %s: %v\n%s", exampleConfig, err, stderr.String())
	}
	t.Cleanup(func() { _ = m.Close() })
	if code, body := call(t, http.MethodGet, "http://"+m.server.addr.String()+"/readyz", "", ""); code != http.StatusOK {
		t.Fatalf("/readyz of a server started with %s: %d %s", exampleConfig, code, body)
	}
	if _, err := os.Stat(filepath.Join(dir, bootstrapFile)); err != nil {
		t.Fatalf("the example's bootstrap-admin: %v", err)
	}
}

package main

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func writeConfig(t *testing.T, text string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "quotaledger.yaml")
	if err := os.WriteFile(p, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func clearConfigEnv(t *testing.T) {
	t.Helper()
	clearEnv(t)
	t.Setenv("QUOTALEDGER_CONFIG", "")
	if err := os.Unsetenv("QUOTALEDGER_CONFIG"); err != nil {
		t.Fatal(err)
	}
}

// TestConfigPrecedence: flag > environment > file > default.
func TestConfigPrecedence(t *testing.T) {
	clearConfigEnv(t)
	cfg := writeConfig(t, `# quotaledger
listen: 127.0.0.1:9001
data: /srv/from-file
log-level: debug
shutdown-timeout: 45s
demo: true
url: http://127.0.0.1:9001   # for the operator's commands; serve has no --url
`)
	parse := func(args ...string) ServeCmd {
		t.Helper()
		m, _, stderr := newTestMain()
		if err := m.ParseFlags(context.Background(), args); err != nil {
			t.Fatalf("%v: %v\n%s", args, err, stderr.String())
		}
		return m.CLI.Serve
	}

	// No file: the defaults.
	c := parse("serve")
	if c.Listen != "127.0.0.1:8080" || c.Data != "./data" || c.LogLevel != "info" || c.ShutdownTimeout != 30*time.Second || c.Demo {
		t.Errorf("defaults: %+v", c)
	}
	// The file over the defaults, with --config before or after the command.
	for _, args := range [][]string{{"--config", cfg, "serve"}, {"serve", "--config", cfg}} {
		c = parse(args...)
		if c.Listen != "127.0.0.1:9001" || c.Data != "/srv/from-file" || c.LogLevel != "debug" ||
			c.ShutdownTimeout != 45*time.Second || !c.Demo {
			t.Errorf("%v: %+v", args, c)
		}
		if c.LogFormat != "json" || c.NatsListen != "127.0.0.1:4222" {
			t.Errorf("%v: keys not in the file lost their defaults: %+v", args, c)
		}
	}
	// QUOTALEDGER_CONFIG names the file too.
	t.Setenv("QUOTALEDGER_CONFIG", cfg)
	if c = parse("serve"); c.Listen != "127.0.0.1:9001" {
		t.Errorf("QUOTALEDGER_CONFIG: listen %q", c.Listen)
	}
	// The environment over the file (even for a flag whose value the file
	// also has), the file still over the defaults for the rest.
	t.Setenv("QUOTALEDGER_LISTEN", "127.0.0.1:9002")
	t.Setenv("QUOTALEDGER_SHUTDOWN_TIMEOUT", "5s")
	c = parse("serve")
	if c.Listen != "127.0.0.1:9002" || c.ShutdownTimeout != 5*time.Second || c.Data != "/srv/from-file" {
		t.Errorf("environment over file: %+v", c)
	}
	// The command line over both.
	c = parse("serve", "--listen", "127.0.0.1:9003", "--data", "/srv/from-flag", "--log-level", "warn")
	if c.Listen != "127.0.0.1:9003" || c.Data != "/srv/from-flag" || c.LogLevel != "warn" ||
		c.ShutdownTimeout != 5*time.Second || !c.Demo {
		t.Errorf("flags over environment and file: %+v", c)
	}
}

// TestConfigErrors: an unknown key, a bad value, a bad file stop the
// parse with a message naming the key.
func TestConfigErrors(t *testing.T) {
	clearConfigEnv(t)
	for name, tc := range map[string]struct {
		text string
		want []string
	}{
		"unknown key":      {"listen: 127.0.0.1:9001\nlisten-addr: 127.0.0.1:9002\n", []string{`key "listen-addr"`, "unknown key", "line 2"}},
		"bad duration":     {"shutdown-timeout: soon\n", []string{`key "shutdown-timeout"`, "line 1"}},
		"bad enum":         {"log-level: loud\n", []string{`key "log-level"`, "loud"}},
		"bad number":       {"outbox-max-depth: many\n", []string{`key "outbox-max-depth"`}},
		"bad bool":         {"demo: maybe\n", []string{`key "demo"`}},
		"not scalar":       {"listen: [a, b]\n", []string{`key "listen"`, "single value"}},
		"duplicate":        {"data: a\ndata: b\n", []string{`key "data"`}},
		"not a mapping":    {"- listen\n", []string{"mapping"}},
		"syntax":           {"listen: 'unterminated\n", []string{"config file"}},
		"checked by serve": {"listen: nowhere\n", []string{"--listen"}},
	} {
		t.Run(name, func(t *testing.T) {
			cfg := writeConfig(t, tc.text)
			m, _, stderr := newTestMain()
			err := m.ParseFlags(context.Background(), []string{"serve", "--config", cfg})
			if err == nil {
				t.Fatalf("no error; serve %+v", m.CLI.Serve)
			}
			for _, w := range tc.want {
				if !strings.Contains(stderr.String(), w) {
					t.Errorf("stderr %q does not say %q", stderr.String(), w)
				}
			}
			if ee, ok := err.(*ExitError); !ok || ee.Code != 2 {
				t.Errorf("error %v, want exit code 2", err)
			}
		})
	}
	// A file that is not there.
	m, _, stderr := newTestMain()
	if err := m.ParseFlags(context.Background(), []string{"serve", "--config", filepath.Join(t.TempDir(), "none.yaml")}); err == nil ||
		!strings.Contains(stderr.String(), "none.yaml") {
		t.Errorf("missing file: %v %s", err, stderr.String())
	}
	// An empty file is no configuration.
	m, _, stderr = newTestMain()
	if err := m.ParseFlags(context.Background(), []string{"serve", "--config", writeConfig(t, "# nothing\n")}); err != nil {
		t.Errorf("empty file: %v %s", err, stderr.String())
	}
}

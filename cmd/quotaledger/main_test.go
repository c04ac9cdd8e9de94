package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"runtime"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/alecthomas/kong"

	"github.com/quotaledger/quotaledger/identity"
	"github.com/quotaledger/quotaledger/internal/testkit"
	"github.com/quotaledger/quotaledger/internal/testkit/identitytest"
	"github.com/quotaledger/quotaledger/ledger"
)

// envVars are the environment variables serve reads.
var envVars = []string{"QUOTALEDGER_DATA", "QUOTALEDGER_LISTEN", "QUOTALEDGER_NATS_URL",
	"QUOTALEDGER_NATS_LISTEN", "QUOTALEDGER_NATS_TOKEN", "QUOTALEDGER_NATS_USER", "QUOTALEDGER_NATS_PASSWORD",
	"QUOTALEDGER_NATS_CREDS", "QUOTALEDGER_OUTBOX_MAX_DEPTH", "QUOTALEDGER_OUTBOX_MAX_AGE",
	"QUOTALEDGER_PUBLIC_URL", "QUOTALEDGER_LOG_LEVEL", "QUOTALEDGER_LOG_FORMAT",
	"QUOTALEDGER_SHUTDOWN_TIMEOUT", "QUOTALEDGER_DEMO", "QUOTALEDGER_ADMIN_TOKEN",
	"QUOTALEDGER_HTTP_READ_HEADER_TIMEOUT", "QUOTALEDGER_HTTP_READ_TIMEOUT", "QUOTALEDGER_HTTP_WRITE_TIMEOUT",
	"QUOTALEDGER_HTTP_IDLE_TIMEOUT", "QUOTALEDGER_HTTP_MAX_HEADER_BYTES", "QUOTALEDGER_STORAGE_FAILURE_EXIT",
	"QUOTALEDGER_NODE_NAME", "QUOTALEDGER_CLUSTER_NAME", "QUOTALEDGER_CLUSTER_LISTEN", "QUOTALEDGER_CLUSTER_ALLOW_REMOTE",
	"QUOTALEDGER_PEERS", "QUOTALEDGER_REPLICAS", "QUOTALEDGER_LOG_MAX_AGE", "QUOTALEDGER_LEASE_TTL",
	"QUOTALEDGER_ADVERTISE_URL", "QUOTALEDGER_JOIN_TIMEOUT",
	"QUOTALEDGER_COMMISSION_TTL", "QUOTALEDGER_IDEMPOTENCY_RETENTION", "QUOTALEDGER_MIN_FREE_SPACE",
	"QUOTALEDGER_REQUIRE_ACTIVATION", "QUOTALEDGER_SESSION_TTL", "QUOTALEDGER_PASSWORD_RESET_TTL",
	"QUOTALEDGER_PASSWORD_MIN_LENGTH", "QUOTALEDGER_PASSWORD_MAX_LENGTH", "QUOTALEDGER_PASSWORD_REJECT_USERNAME",
	"QUOTALEDGER_PASSWORD_REJECT_COMMON", "QUOTALEDGER_BOOTSTRAP_ADMIN",
	"QUOTALEDGER_TLS_CERT", "QUOTALEDGER_TLS_KEY", "QUOTALEDGER_NATS_CA", "QUOTALEDGER_NATS_CERT", "QUOTALEDGER_NATS_KEY"}

// clearEnv unsets every QUOTALEDGER_* variable for the test (restored
// after it).
func clearEnv(t *testing.T) {
	t.Helper()
	for _, k := range envVars {
		t.Setenv(k, "")
		if err := os.Unsetenv(k); err != nil {
			t.Fatal(err)
		}
	}
}

// syncBuffer is a bytes.Buffer safe for a logger writing from many
// goroutines while the test reads.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.String()
}

// commandOf is the command ParseFlags chose, as kong names it, or "".
func commandOf(m *Main) string {
	if m.kctx == nil {
		return ""
	}
	return m.kctx.Command()
}

func newTestMain() (*Main, *syncBuffer, *syncBuffer) {
	var stdout, stderr syncBuffer
	m := &Main{Stdout: &stdout, Stderr: &stderr, Getenv: func(string) string { return "" }}
	return m, &stdout, &stderr
}

func TestParseFlags(t *testing.T) {
	defaults := ServeCmd{Data: "./data", Listen: "127.0.0.1:8080", NatsListen: "127.0.0.1:4222",
		OutboxMaxDepth: 1_000_000, OutboxMaxAge: 10 * time.Minute, StreamMaxAge: 7 * 24 * time.Hour, LogLevel: "info", LogFormat: "json",
		ShutdownTimeout: 30 * time.Second, StorageFailureExit: 30 * time.Second,
		HTTPLimits: HTTPLimits{ReadHeaderTimeout: 5 * time.Second, ReadTimeout: 30 * time.Second,
			WriteTimeout: time.Minute, IdleTimeout: 2 * time.Minute, MaxHeaderBytes: 64 << 10},
		ClusterFlags: ClusterFlags{ClusterName: "quotaledger", ClusterListen: "127.0.0.1:6222", Replicas: 3,
			LogMaxAge: 24 * time.Hour, LeaseTTL: 3 * time.Second, JoinTimeout: 2 * time.Minute},
		SettingsFlags: SettingsFlags{IdempotencyRetention: 24 * time.Hour, MinFreeSpace: 128 << 20, SessionTTL: 24 * time.Hour,
			PasswordResetTTL: time.Hour, PasswordMinLength: 8, PasswordMaxLength: 128, PasswordRejectUsername: true,
			PasswordRejectCommon: true, BootstrapAdmin: true}}
	creds := filepath.Join(t.TempDir(), "user.creds")
	if err := os.WriteFile(creds, []byte("not read by ParseFlags"), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		args []string
		env  map[string]string
		want func(c *ServeCmd)
		code int // of the *ExitError, when want is nil
	}{
		{name: "OK/defaults", args: []string{"serve"}, want: func(*ServeCmd) {}},
		{name: "OK/flags", args: []string{"serve", "--data", "/var/lib/ql", "--listen", "0.0.0.0:9000",
			"--nats-url", "nats://n1:4222", "--public-url", "https://quota.example.org", "--log-level", "debug",
			"--log-format", "console", "--shutdown-timeout", "5s", "--demo", "--nats-listen", "0.0.0.0:4333",
			"--nats-creds", creds, "--outbox-max-depth", "10", "--outbox-max-age", "1h", "--stream-max-age", "720h",
			"--storage-failure-exit", "0s"},
			want: func(c *ServeCmd) {
				*c = ServeCmd{Data: "/var/lib/ql", Listen: "0.0.0.0:9000", NatsURL: "nats://n1:4222",
					NatsListen: "0.0.0.0:4333", OutboxMaxDepth: 10, OutboxMaxAge: time.Hour, StreamMaxAge: 720 * time.Hour,
					PublicURL: "https://quota.example.org", LogLevel: "debug", LogFormat: "console",
					ShutdownTimeout: 5 * time.Second, Demo: true, NatsAuth: NatsAuth{NatsCreds: creds}, HTTPLimits: defaults.HTTPLimits,
					ClusterFlags: defaults.ClusterFlags, SettingsFlags: defaults.SettingsFlags}
			}},
		{name: "OK/nats user", args: []string{"serve", "--nats-url", "nats://n1:4222", "--nats-user", "u"},
			env: map[string]string{"QUOTALEDGER_NATS_PASSWORD": "pw"},
			want: func(c *ServeCmd) {
				c.NatsURL, c.NatsAuth = "nats://n1:4222", NatsAuth{NatsUser: "u", NatsPassword: "pw"}
			}},
		{name: "OK/random nats port", args: []string{"serve", "--nats-listen", "127.0.0.1:-1"},
			want: func(c *ServeCmd) { c.NatsListen = "127.0.0.1:-1" }},
		{name: "OK/equals form", args: []string{"serve", "--data=d", "--listen=[::1]:0"},
			want: func(c *ServeCmd) { c.Data, c.Listen = "d", "[::1]:0" }},
		{name: "OK/environment", args: []string{"serve"},
			env: map[string]string{"QUOTALEDGER_DATA": "/srv/ql", "QUOTALEDGER_LISTEN": ":8081",
				"QUOTALEDGER_NATS_URL": "nats://tok@n1:4222", "QUOTALEDGER_PUBLIC_URL": "http://q.example.org/",
				"QUOTALEDGER_LOG_LEVEL": "warn", "QUOTALEDGER_LOG_FORMAT": "console",
				"QUOTALEDGER_SHUTDOWN_TIMEOUT": "1m", "QUOTALEDGER_DEMO": "true",
				"QUOTALEDGER_NATS_LISTEN": ":4223", "QUOTALEDGER_NATS_TOKEN": "t0k",
				"QUOTALEDGER_OUTBOX_MAX_DEPTH": "5", "QUOTALEDGER_OUTBOX_MAX_AGE": "30s",
				"QUOTALEDGER_STORAGE_FAILURE_EXIT": "2m", "QUOTALEDGER_STREAM_MAX_AGE": "0s"}, // 0: for ever
			want: func(c *ServeCmd) {
				*c = ServeCmd{Data: "/srv/ql", Listen: ":8081", NatsURL: "nats://tok@n1:4222",
					NatsListen: ":4223", OutboxMaxDepth: 5, OutboxMaxAge: 30 * time.Second,
					PublicURL: "http://q.example.org/", LogLevel: "warn", LogFormat: "console",
					ShutdownTimeout: time.Minute, StorageFailureExit: 2 * time.Minute, Demo: true, NatsAuth: NatsAuth{NatsToken: "t0k"}, HTTPLimits: defaults.HTTPLimits,
					ClusterFlags: defaults.ClusterFlags, SettingsFlags: defaults.SettingsFlags}
			}},
		{name: "OK/http limits", args: []string{"serve", "--http-read-header-timeout", "300ms", "--http-read-timeout", "1s",
			"--http-write-timeout", "2s", "--http-idle-timeout", "3s"},
			env: map[string]string{"QUOTALEDGER_HTTP_MAX_HEADER_BYTES": "8192", "QUOTALEDGER_HTTP_IDLE_TIMEOUT": "1h"},
			want: func(c *ServeCmd) {
				c.HTTPLimits = HTTPLimits{ReadHeaderTimeout: 300 * time.Millisecond, ReadTimeout: time.Second,
					WriteTimeout: 2 * time.Second, IdleTimeout: 3 * time.Second, MaxHeaderBytes: 8192}
			}},
		{name: "OK/cluster flags", args: []string{"serve", "--node-name", "n1", "--cluster-name", "qc", "--cluster-listen", "127.0.0.1:7001",
			"--peers", "127.0.0.1:7002,127.0.0.1:7003", "--replicas", "3", "--log-max-age", "1h", "--lease-ttl", "2s",
			"--advertise-url", "http://10.0.0.1:8080", "--join-timeout", "30s", "--cluster-sync", "interval"},
			want: func(c *ServeCmd) {
				c.ClusterFlags = ClusterFlags{NodeName: "n1", ClusterName: "qc", ClusterListen: "127.0.0.1:7001",
					Peers: []string{"127.0.0.1:7002", "127.0.0.1:7003"}, Replicas: 3, LogMaxAge: time.Hour, LeaseTTL: 2 * time.Second,
					AdvertiseURL: "http://10.0.0.1:8080", JoinTimeout: 30 * time.Second, ClusterSync: "interval"}
			}},
		{name: "OK/cluster environment", args: []string{"serve"},
			env: map[string]string{"QUOTALEDGER_NODE_NAME": "n2", "QUOTALEDGER_CLUSTER_NAME": "qc",
				"QUOTALEDGER_CLUSTER_LISTEN": "0.0.0.0:7002", "QUOTALEDGER_CLUSTER_ALLOW_REMOTE": "true",
				"QUOTALEDGER_PEERS": "10.0.0.1:7001,10.0.0.3:7003", "QUOTALEDGER_REPLICAS": "1",
				"QUOTALEDGER_LOG_MAX_AGE": "2h", "QUOTALEDGER_LEASE_TTL": "3s", "QUOTALEDGER_ADVERTISE_URL": "https://n2.example.org",
				"QUOTALEDGER_JOIN_TIMEOUT": "1m", "QUOTALEDGER_CLUSTER_SYNC": "interval"},
			want: func(c *ServeCmd) {
				c.ClusterFlags = ClusterFlags{NodeName: "n2", ClusterName: "qc", ClusterListen: "0.0.0.0:7002", ClusterAllowRemote: true,
					Peers: []string{"10.0.0.1:7001", "10.0.0.3:7003"}, Replicas: 1, LogMaxAge: 2 * time.Hour, LeaseTTL: 3 * time.Second,
					AdvertiseURL: "https://n2.example.org", JoinTimeout: time.Minute, ClusterSync: "interval"}
			}},
		{name: "OK/cluster on external NATS", args: []string{"serve", "--node-name", "n1", "--nats-url", "nats://n1:4222", "--replicas", "5"},
			want: func(c *ServeCmd) { c.NodeName, c.NatsURL, c.Replicas = "n1", "nats://n1:4222", 5 }},
		{name: "OK/settings", args: []string{"serve", "--commission-ttl", "1h", "--idempotency-retention", "48h",
			"--min-free-space", "1.5GB", "--require-activation", "--session-ttl", "8h", "--password-reset-ttl", "15m",
			"--password-min-length", "12", "--password-max-length", "64", "--password-reject-username=false",
			"--password-reject-common=false", "--bootstrap-admin=false"},
			want: func(c *ServeCmd) {
				c.SettingsFlags = SettingsFlags{CommissionTTL: time.Hour, IdempotencyRetention: 48 * time.Hour,
					MinFreeSpace: 1_500_000_000, RequireActivation: true, SessionTTL: 8 * time.Hour, PasswordResetTTL: 15 * time.Minute,
					PasswordMinLength: 12, PasswordMaxLength: 64}
			}},
		{name: "OK/settings environment", args: []string{"serve"},
			env: map[string]string{"QUOTALEDGER_COMMISSION_TTL": "30m", "QUOTALEDGER_IDEMPOTENCY_RETENTION": "1h",
				"QUOTALEDGER_MIN_FREE_SPACE": "0", "QUOTALEDGER_REQUIRE_ACTIVATION": "true", "QUOTALEDGER_SESSION_TTL": "1h",
				"QUOTALEDGER_PASSWORD_RESET_TTL": "5m", "QUOTALEDGER_PASSWORD_MIN_LENGTH": "10",
				"QUOTALEDGER_PASSWORD_MAX_LENGTH": "10", "QUOTALEDGER_PASSWORD_REJECT_USERNAME": "false",
				"QUOTALEDGER_PASSWORD_REJECT_COMMON": "false", "QUOTALEDGER_BOOTSTRAP_ADMIN": "false"},
			want: func(c *ServeCmd) {
				c.SettingsFlags = SettingsFlags{CommissionTTL: 30 * time.Minute, IdempotencyRetention: time.Hour,
					RequireActivation: true, SessionTTL: time.Hour, PasswordResetTTL: 5 * time.Minute,
					PasswordMinLength: 10, PasswordMaxLength: 10}
			}},
		{name: "OK/tls", args: []string{"serve", "--tls-cert", "c.pem"}, env: map[string]string{"QUOTALEDGER_TLS_KEY": "k.pem"},
			want: func(c *ServeCmd) { c.TLSCert, c.TLSKey = "c.pem", "k.pem" }},
		{name: "OK/nats tls", args: []string{"serve", "--nats-url", "tls://n1:4222", "--nats-ca", creds, "--nats-cert", creds, "--nats-key", creds},
			want: func(c *ServeCmd) {
				c.NatsURL, c.NatsAuth = "tls://n1:4222", NatsAuth{NatsCA: creds, NatsCert: creds, NatsKey: creds}
			}},
		{name: "OK/min free space units", args: []string{"serve", "--min-free-space", "2GiB"},
			want: func(c *ServeCmd) { c.MinFreeSpace = 2 << 30 }},
		{name: "OK/flag beats environment", args: []string{"serve", "--data", "flag", "--log-level", "error"},
			env:  map[string]string{"QUOTALEDGER_DATA": "env", "QUOTALEDGER_LOG_LEVEL": "debug"},
			want: func(c *ServeCmd) { c.Data, c.LogLevel = "flag", "error" }},
		{name: "ErrUsage/no command", args: nil, code: 2},
		{name: "ErrUsage/unknown command", args: []string{"frobnicate"}, code: 2},
		{name: "ErrUsage/unknown flag", args: []string{"serve", "--port", "80"}, code: 2},
		{name: "ErrUsage/listen", args: []string{"serve", "--listen", "8080"}, code: 2},
		{name: "ErrUsage/log level", args: []string{"serve", "--log-level", "loud"}, code: 2},
		{name: "ErrUsage/log format", args: []string{"serve", "--log-format", "xml"}, code: 2},
		{name: "ErrUsage/public url", args: []string{"serve", "--public-url", "quota.example.org"}, code: 2},
		{name: "ErrUsage/nats url", args: []string{"serve", "--nats-url", "http://n1:4222"}, code: 2},
		{name: "ErrUsage/empty data", args: []string{"serve", "--data", ""}, code: 2},
		{name: "ErrUsage/environment", args: []string{"serve"}, env: map[string]string{"QUOTALEDGER_LOG_LEVEL": "loud"}, code: 2},
		{name: "ErrUsage/shutdown timeout", args: []string{"serve", "--shutdown-timeout", "0s"}, code: 2},
		{name: "ErrUsage/nats listen", args: []string{"serve", "--nats-listen", "4222"}, code: 2},
		{name: "ErrUsage/nats listen not loopback", args: []string{"serve", "--nats-listen", "0.0.0.0:4222"}, code: 2},
		{name: "ErrUsage/nats token and user", args: []string{"serve", "--nats-token", "t", "--nats-user", "u", "--nats-password", "p"}, code: 2},
		{name: "ErrUsage/nats user without password", args: []string{"serve", "--nats-user", "u"}, code: 2},
		{name: "ErrUsage/nats password without user", args: []string{"serve"}, env: map[string]string{"QUOTALEDGER_NATS_PASSWORD": "p"}, code: 2},
		{name: "ErrUsage/nats creds missing", args: []string{"serve", "--nats-creds", "/nonexistent/user.creds"}, code: 2},
		{name: "ErrUsage/outbox max age", args: []string{"serve", "--outbox-max-age", "0s"}, code: 2},
		{name: "ErrUsage/outbox max depth", args: []string{"serve", "--outbox-max-depth", "-1"}, code: 2},
		{name: "ErrUsage/http read header timeout", args: []string{"serve", "--http-read-header-timeout", "0s"}, code: 2},
		{name: "ErrUsage/http idle timeout", args: []string{"serve"}, env: map[string]string{"QUOTALEDGER_HTTP_IDLE_TIMEOUT": "-1s"}, code: 2},
		{name: "ErrUsage/http max header bytes", args: []string{"serve", "--http-max-header-bytes", "0"}, code: 2},
		{name: "ErrUsage/tls cert without key", args: []string{"serve", "--tls-cert", "c.pem"}, code: 2},
		{name: "ErrUsage/tls key without cert", args: []string{"serve"}, env: map[string]string{"QUOTALEDGER_TLS_KEY": "k.pem"}, code: 2},
		{name: "ErrUsage/nats cert without key", args: []string{"serve", "--nats-url", "tls://n1:4222", "--nats-cert", creds}, code: 2},
		{name: "ErrUsage/nats ca missing", args: []string{"serve", "--nats-url", "tls://n1:4222", "--nats-ca", creds + ".missing"}, code: 2},
		{name: "ErrUsage/commission ttl negative", args: []string{"serve", "--commission-ttl", "-1s"}, code: 2},
		{name: "ErrUsage/commission ttl over ten years", args: []string{"serve", "--commission-ttl", "87841h"}, code: 2},
		{name: "ErrUsage/idempotency retention", args: []string{"serve", "--idempotency-retention", "0s"}, code: 2},
		{name: "ErrUsage/min free space unit", args: []string{"serve", "--min-free-space", "12 parsecs"}, code: 2},
		{name: "ErrUsage/min free space negative", args: []string{"serve", "--min-free-space", "-1"}, code: 2},
		{name: "ErrUsage/session ttl", args: []string{"serve"}, env: map[string]string{"QUOTALEDGER_SESSION_TTL": "0s"}, code: 2},
		{name: "ErrUsage/password reset ttl", args: []string{"serve", "--password-reset-ttl", "-1m"}, code: 2},
		{name: "ErrUsage/password min length", args: []string{"serve", "--password-min-length", "0"}, code: 2},
		{name: "ErrUsage/password max under min", args: []string{"serve", "--password-min-length", "20", "--password-max-length", "19"}, code: 2},
		{name: "ErrUsage/bootstrap admin", args: []string{"serve", "--bootstrap-admin=maybe"}, code: 2},
		{name: "ErrUsage/demo without bootstrap admin", args: []string{"serve", "--demo", "--bootstrap-admin=false"}, code: 2},
		{name: "Help", args: []string{"serve", "--help"}, code: 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			clearEnv(t)
			for k, v := range tc.env {
				t.Setenv(k, v)
			}
			m, stdout, stderr := newTestMain()
			err := m.ParseFlags(context.Background(), tc.args)
			if tc.want == nil {
				var ee *ExitError
				if !errors.As(err, &ee) || ee.Code != tc.code {
					t.Fatalf("ParseFlags(%q) = %v, want exit code %d", tc.args, err, tc.code)
				}
				if tc.code != 0 && !strings.Contains(stderr.String(), "quotaledger: ") {
					t.Fatalf("stderr %q says nothing", stderr.String())
				}
				if commandOf(m) != "" && tc.code != 0 {
					t.Fatalf("command %q chosen after a usage error", commandOf(m))
				}
				_ = stdout
				return
			}
			if err != nil {
				t.Fatalf("ParseFlags(%q): %v (stderr %q)", tc.args, err, stderr.String())
			}
			want := defaults
			tc.want(&want)
			if commandOf(m) != "serve" || !reflect.DeepEqual(m.CLI.Serve, want) {
				t.Fatalf("command %q, flags %+v\nwant %+v", commandOf(m), m.CLI.Serve, want)
			}
		})
	}
}

// TestEveryCommandRuns: kong dispatches (Main.Run calls kctx.Run), so a
// command without a Run method, or with a Run asking for something Main.Run
// does not bind, would parse and then fail when run. Every command of the
// model has a Run whose parameters Main.Run binds; a command group has none
// (kong would run it as well, after its command's); and only the commands
// with ClientFlags ask for the *cliEnv.
func TestEveryCommandRuns(t *testing.T) {
	parser, err := kong.New(&CLI{}, kong.Name("quotaledger"))
	if err != nil {
		t.Fatal(err)
	}
	bound := map[reflect.Type]bool{reflect.TypeFor[context.Context](): true, reflect.TypeFor[*streams](): true,
		reflect.TypeFor[getenvFunc](): true, reflect.TypeFor[serveStarted](): true}
	ran := map[string]bool{}
	var walk func(n *kong.Node)
	walk = func(n *kong.Node) {
		run := n.Target.Addr().MethodByName("Run")
		var subs []*kong.Node
		for _, c := range n.Children {
			if c.Type == kong.CommandNode {
				subs = append(subs, c)
			}
		}
		if len(subs) > 0 {
			if run.IsValid() {
				t.Errorf("%q is a command group with a Run method", n.FullPath())
			}
			for _, c := range subs {
				walk(c)
			}
			return
		}
		if !run.IsValid() {
			t.Errorf("%q has no Run method", n.FullPath())
			return
		}
		rt := run.Type()
		if rt.NumOut() != 1 || rt.Out(0) != reflect.TypeFor[error]() {
			t.Errorf("%q: Run %s does not return just an error", n.FullPath(), rt)
		}
		for i := range rt.NumIn() {
			switch p := rt.In(i); {
			case p == reflect.TypeFor[*cliEnv]():
				if clientFlagsOf(n) == nil {
					t.Errorf("%q: Run takes a *cliEnv, but the command has no ClientFlags", n.FullPath())
				}
			case !bound[p]:
				t.Errorf("%q: Run takes a %s, which Main.Run does not bind", n.FullPath(), p)
			}
		}
		ran[n.FullPath()] = true
	}
	walk(parser.Model.Node)
	for _, want := range []string{"serve", "login", "bench", "commission accept", "commission reject", "user show", "history"} {
		if !ran["quotaledger "+want] {
			t.Errorf("the walk did not reach %q", want)
		}
	}
}

// TestServeHelp checks that `serve --help` documents every flag's
// environment variable, its defaults and QUOTALEDGER_ADMIN_TOKEN, and that
// asking for help runs nothing.
func TestServeHelp(t *testing.T) {
	clearEnv(t)
	m, stdout, _ := newTestMain()
	code := m.Main(context.Background(), func() {}, []string{"serve", "--help"})
	if code != 0 || m.server != nil {
		t.Fatalf("serve --help: exit %d, server %v", code, m.server)
	}
	help := strings.Join(strings.Fields(stdout.String()), " ") // as one line, whatever the wrapping
	for _, want := range append(envVars, "--data=DIR", "--listen=HOST:PORT", "--nats-url=URL", "--public-url=URL",
		"--log-level", "--log-format", "--demo", "default ./data", "default 127.0.0.1:8080", "bootstrap.json",
		"--nats-listen=HOST:PORT", "default 127.0.0.1:4222", "--nats-token=TOKEN", "--nats-user=USER",
		"--nats-password=PASSWORD", "--nats-creds=FILE", "--outbox-max-depth=N", "default 1000000",
		"--outbox-max-age=DURATION", "default 10m", "--commission-ttl=DURATION", "--idempotency-retention=DURATION",
		"--min-free-space=SIZE", "default 128MiB", "--require-activation", "--session-ttl=DURATION", "default 24h",
		"--password-reset-ttl=DURATION", "--password-min-length=N", "--password-max-length=N",
		"--password-reject-username", "--password-reject-common", "--bootstrap-admin", "--tls-cert=FILE", "--tls-key=FILE",
		"SIGHUP", "--nats-ca=FILE", "--nats-cert=FILE", "--nats-key=FILE", "QUOTALEDGER") {
		if !strings.Contains(help, want) {
			t.Errorf("serve --help does not mention %q:\n%s", want, help)
		}
	}
}

// TestMainServe runs serve in the process (as wtfd's main_test does): it
// bootstraps, answers /readyz, and stops.
func TestMainServe(t *testing.T) {
	clearEnv(t)
	dir := t.TempDir()
	m, stdout, stderr := newTestMain()
	ctx := context.Background()
	// A NATS server that is not there: the relay keeps trying, the server
	// serves, and the outbox is within its bounds.
	if err := m.ParseFlags(ctx, []string{"serve", "--data", dir, "--listen", "127.0.0.1:0", "--nats-url", "nats://user:secret@" + testkit.FreeAddr(t)}); err != nil {
		t.Fatal(err)
	}
	if err := m.Run(ctx); err != nil {
		t.Fatalf("Run: %v\n%s", err, stderr.String())
	}
	t.Cleanup(func() { _ = m.Close() })
	base := "http://" + m.server.addr.String()
	if code := get(t, base+"/readyz", ""); code != http.StatusOK {
		t.Fatalf("/readyz: %d", code)
	}
	b := readBootstrap(t, dir)
	if !strings.Contains(stdout.String(), b.Token) || b.Token == "" {
		t.Fatalf("stdout %q does not show the token", stdout.String())
	}
	if err := m.Close(); err != nil {
		t.Fatal(err)
	}
	if err := m.Close(); err != nil { // again: nothing
		t.Fatal(err)
	}
	log := stderr.String()
	if !strings.Contains(log, "external NATS server") || strings.Contains(log, "secret") {
		t.Fatalf("the log should name the --nats-url without its password:\n%s", log)
	}
	if _, err := http.Get(base + "/readyz"); err == nil {
		t.Fatal("the server still answers after Close")
	}
}

// Building the binary once serves every end-to-end test.
var (
	buildOnce sync.Once
	binPath   string
	buildErr  error
)

func TestMain(m *testing.M) {
	code := m.Run()
	if binPath != "" {
		_ = os.RemoveAll(filepath.Dir(binPath))
	}
	os.Exit(code)
}

func binary(t *testing.T) string {
	t.Helper()
	buildOnce.Do(func() {
		dir, err := os.MkdirTemp("", "quotaledger-bin-")
		if err != nil {
			buildErr = err
			return
		}
		binPath = filepath.Join(dir, "quotaledger")
		out, err := exec.Command("go", "build", "-o", binPath, ".").CombinedOutput()
		if err != nil {
			buildErr = fmt.Errorf("go build: %v\n%s", err, out)
		}
	})
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	return binPath
}

// proc is a running quotaledger serve.
type proc struct {
	t      *testing.T
	cmd    *exec.Cmd
	base   string // http://host:port
	nats   string // the embedded NATS server's client URL
	stdout *syncBuffer
	stderr *syncBuffer
	exited chan struct{}
	err    error // of Wait, once exited is closed
	// addrs receives the addresses of the "listening" log line.
	addrs chan procAddrs
}

// procAddrs are the addresses a serve's "listening" line names.
type procAddrs struct{ http, nats string }

// startServe starts the binary with serve --listen 127.0.0.1:0
// --nats-listen 127.0.0.1:-1 and args, with env added to a QUOTALEDGER_-free
// environment, learns the bound addresses (HTTP and the embedded NATS) from
// its "listening" log line, and waits for /readyz.
//
// Port 0 and the logged address leave no window in which another process
// could take a port picked in advance.
func startServe(t *testing.T, env []string, args ...string) *proc {
	t.Helper()
	p := spawnServe(t, env, append([]string{"--listen", "127.0.0.1:0", "--nats-listen", "127.0.0.1:-1"}, args...)...)
	p.waitListening()
	p.waitReady()
	return p
}

// spawnServe starts the binary with serve --log-format json and args, with
// env added to a QUOTALEDGER_-free environment, and returns at once: the
// process logs its "listening" line (waitListening) once it serves.
func spawnServe(t *testing.T, env []string, args ...string) *proc {
	t.Helper()
	p := &proc{t: t, stdout: new(syncBuffer), stderr: new(syncBuffer), exited: make(chan struct{}), addrs: make(chan procAddrs, 1)}
	p.cmd = exec.Command(binary(t), append([]string{"serve", "--log-format", "json"}, args...)...)
	p.cmd.Env = append(cleanEnv(), env...)
	p.cmd.Stdout = p.stdout
	errPipe, err := p.cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	copied := make(chan struct{})
	go func() {
		defer close(copied)
		sc := bufio.NewScanner(errPipe)
		for sc.Scan() {
			line := sc.Bytes()
			_, _ = p.stderr.Write(append(line, '\n'))
			var rec struct {
				Message string `json:"message"`
				Addr    string `json:"addr"`
				NatsURL string `json:"nats_url"`
			}
			if json.Unmarshal(line, &rec) == nil && rec.Message == "listening" && rec.Addr != "" {
				select {
				case p.addrs <- procAddrs{rec.Addr, rec.NatsURL}:
				default:
				}
			}
		}
		_, _ = io.Copy(p.stderr, errPipe)
	}()
	go func() {
		<-copied // Wait closes the pipe: read it all first
		p.err = p.cmd.Wait()
		close(p.exited)
	}()
	t.Cleanup(func() {
		select {
		case <-p.exited:
		default:
			_ = p.cmd.Process.Kill()
			<-p.exited
		}
		if t.Failed() {
			t.Logf("stdout:\n%s\nstderr:\n%s", p.stdout, p.stderr)
		}
		keepLog(t, p)
	})
	return p
}

// keepLog writes what p logged to a file of the directory
// QUOTALEDGER_TEST_LOGS names, if it does, whether the test failed or not:
// for reading a run's node logs after it (a timing, a leader change).
func keepLog(t *testing.T, p *proc) {
	dir := os.Getenv("QUOTALEDGER_TEST_LOGS")
	if dir == "" {
		return
	}
	name := fmt.Sprintf("%s-%d.log", strings.ReplaceAll(t.Name(), "/", "_"), p.cmd.Process.Pid)
	if err := os.WriteFile(filepath.Join(dir, name), []byte(p.stderr.String()), 0o644); err != nil {
		t.Errorf("keeping the log: %v", err)
	}
}

// listenPatience is how long a test waits for serve to listen: only to turn
// a hang into a failure. A restart replays the WAL (9 s seen on a loaded
// machine); a node of a cluster first waits for the cluster's JetStream, up
// to its --join-timeout (2m: a wiped node's NATS server catching up its
// streams from the others took over 30 s under load), and exits if it
// gives up, which fails the wait at once.
const listenPatience = 3 * time.Minute

// waitListening waits for the process's "listening" line and notes its
// addresses.
func (p *proc) waitListening() {
	p.t.Helper()
	select {
	case a := <-p.addrs:
		p.base, p.nats = "http://"+a.http, a.nats
	case <-p.exited:
		p.t.Fatalf("serve exited before listening: %v", p.err)
	case <-time.After(listenPatience):
		p.t.Fatalf("serve did not log its address within %v", listenPatience)
	}
}

// waitReady waits for /readyz to answer 200.
func (p *proc) waitReady() {
	p.t.Helper()
	testkit.CheckFor(p.t, 15*time.Second, poll, func() error {
		if code := get(p.t, p.base+"/readyz", ""); code != http.StatusOK {
			return fmt.Errorf("/readyz: %d", code)
		}
		return nil
	})
}

// stop sends SIGTERM and checks the process stops gracefully and exits 0,
// without waiting out its shutdown timeout (30 s) for calls in flight. How
// long the stop takes is the machine's business: the deadline only turns a
// hang into a failure.
func (p *proc) stop() {
	p.t.Helper()
	if err := p.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		p.t.Fatal(err)
	}
	select {
	case <-p.exited:
	case <-time.After(2 * time.Minute):
		p.t.Fatal("serve did not exit within 2 minutes of SIGTERM")
	}
	if p.err != nil {
		p.t.Fatalf("serve exited with %v after SIGTERM", p.err)
	}
	if !strings.Contains(p.stderr.String(), `"message":"stopped"`) {
		p.t.Fatalf("no graceful stop in the log:\n%s", p.stderr)
	}
	if strings.Contains(p.stderr.String(), "calls still in flight at the shutdown timeout") {
		p.t.Fatalf("the stop waited out the shutdown timeout:\n%s", p.stderr)
	}
}

// cleanEnv is the test's environment without QUOTALEDGER_* variables.
func cleanEnv() []string {
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "QUOTALEDGER_") {
			env = append(env, kv)
		}
	}
	return env
}

// poll is how often the tests' testkit.CheckFor calls look again.
const poll = 20 * time.Millisecond

// httpClient's timeout only turns a hang into a failure: on a busy machine
// a synced write may take seconds.
var httpClient = &http.Client{Timeout: 30 * time.Second}

// get answers the status of GET url with token (if any); 0 if the call
// failed.
func get(t *testing.T, url, token string) int {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	if token != "" {
		req.Header.Set("X-Auth-Token", token)
	}
	resp, err := httpClient.Do(req)
	if err != nil {
		return 0
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	_ = resp.Body.Close()
	return resp.StatusCode
}

func readBootstrap(t *testing.T, dir string) Bootstrap {
	t.Helper()
	path := filepath.Join(dir, bootstrapFile)
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o600 {
		t.Fatalf("%s has mode %v, want 0600", path, fi.Mode().Perm())
	}
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var b Bootstrap
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&b); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	if b.Username != adminUsername || len(b.Password) < 16 || b.UserUUID == "" || b.TokenID == "" {
		t.Fatalf("bootstrap.json %s", data)
	}
	return b
}

// authRoutes are routes that need a token, tried in turn: the first one
// the server has (401 without a token) checks a token over HTTP.
var authRoutes = []string{"/account/v1.0/users", "/account/v1.0/auth/whoami", "/account/v1.0/access_tokens",
	"/account/v1.0/quotas"}

// checkTokenHTTP checks that token is taken on a route that needs one,
// where the API has such a route yet.
func checkTokenHTTP(t *testing.T, base, token string) {
	t.Helper()
	if code := get(t, base+"/healthz", token); code != http.StatusOK {
		t.Fatalf("/healthz with the admin token: %d", code)
	}
	for _, route := range authRoutes {
		if get(t, base+route, "") != http.StatusUnauthorized {
			continue // not served yet
		}
		if code := get(t, base+route, token); code != http.StatusOK {
			t.Fatalf("GET %s with the admin token: %d", route, code)
		}
		if code := get(t, base+route, token+"x"); code != http.StatusUnauthorized {
			t.Fatalf("GET %s with a wrong token: %d", route, code)
		}
		return
	}
	t.Logf("no route of %v needs a token yet: the token is checked against the store only", authRoutes)
}

// openStore opens the identity store of a stopped server's data directory
// (identitytest.OpenStores: its events are checked against the catalog
// when the test ends), hashing as the server does, so that a login does
// not rehash.
func openStore(t *testing.T, dir string) *identity.Store {
	t.Helper()
	_, s := identitytest.OpenStores(t, ledger.Options{Dir: filepath.Join(dir, "ledger")},
		identity.Options{Hash: identity.DefaultHashParams})
	return s
}

// checkAdminToken checks, in the store itself, that token is the admin's.
func checkAdminToken(t *testing.T, s *identity.Store, token string) *identity.User {
	t.Helper()
	p, err := s.Authenticate(token)
	if err != nil {
		t.Fatalf("the admin token: %v", err)
	}
	if !p.IsAdmin() || p.User.Username != adminUsername || p.Token.Name != bootstrapToken {
		t.Fatalf("the admin token is %+v of %+v", p.Token, p.User)
	}
	return p.User
}

func countUsers(t *testing.T, s *identity.Store) int {
	t.Helper()
	_, n, err := s.FindUsers(identity.UserFilter{})
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// TestServeBootstrap: the first start makes the admin and prints the
// token once; a restart on the same data makes nothing; SIGTERM stops it.
func TestServeBootstrap(t *testing.T) {
	if runtime.GOOS == "windows" {
		t.Skip("SIGTERM")
	}
	dir := t.TempDir()
	p := startServe(t, nil, "--data", dir)
	b := readBootstrap(t, dir)
	if b.TokenSource != "generated" || !strings.HasPrefix(b.Token, "qlp_") {
		t.Fatalf("bootstrap.json %+v", b)
	}
	if n := strings.Count(p.stdout.String(), b.Token); n != 1 {
		t.Fatalf("stdout shows the token %d times, want once:\n%s", n, p.stdout)
	}
	if strings.Contains(p.stderr.String(), b.Token) || strings.Contains(p.stderr.String(), b.Password) {
		t.Fatal("the log holds the admin's token or password")
	}
	checkTokenHTTP(t, p.base, b.Token)
	if _, err := os.Stat(filepath.Join(dir, demoFile)); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("plain serve made a demo setup: %v", err)
	}
	before, err := os.ReadFile(filepath.Join(dir, bootstrapFile))
	if err != nil {
		t.Fatal(err)
	}
	p.stop()

	// Restart: same data, no new admin, no token shown, the token works.
	p = startServe(t, nil, "--data", dir, "--demo")
	if out := p.stdout.String(); out != "" {
		t.Fatalf("a restart printed %q", out)
	}
	after, err := os.ReadFile(filepath.Join(dir, bootstrapFile))
	if err != nil || !bytes.Equal(before, after) {
		t.Fatalf("a restart changed bootstrap.json (%v)", err)
	}
	checkTokenHTTP(t, p.base, b.Token)
	p.stop()

	s := openStore(t, dir)
	if u := checkAdminToken(t, s, b.Token); u.UUID != b.UserUUID {
		t.Fatalf("admin %s, bootstrap.json says %s", u.UUID, b.UserUUID)
	}
	if n := countUsers(t, s); n != 1 {
		t.Fatalf("%d users after a restart, want the admin only", n)
	}
	if _, _, _, err := s.Login(context.Background(), b.Username, b.Password, identity.Origin{}); err != nil {
		t.Fatalf("the admin's password from bootstrap.json: %v", err)
	}
}

// TestServeAdminTokenAndDemo: QUOTALEDGER_ADMIN_TOKEN becomes the admin's
// token (never printed nor written), and --demo makes the README's setup.
func TestServeAdminTokenAndDemo(t *testing.T) {
	if runtime.GOOS == "windows" {
		t.Skip("SIGTERM")
	}
	const chosen = "deployment-chosen-admin-token-0123456789"
	dir := t.TempDir()
	p := startServe(t, []string{"QUOTALEDGER_ADMIN_TOKEN=" + chosen}, "--data", dir, "--demo")
	b := readBootstrap(t, dir)
	if b.Token != "" || b.TokenSource != adminTokenEnv {
		t.Fatalf("bootstrap.json %+v", b)
	}
	if strings.Contains(p.stdout.String(), chosen) || strings.Contains(p.stderr.String(), chosen) {
		t.Fatal("the chosen admin token was printed or logged")
	}
	data, err := os.ReadFile(filepath.Join(dir, bootstrapFile))
	if err != nil || bytes.Contains(data, []byte(chosen)) {
		t.Fatalf("bootstrap.json holds the chosen token (%v)", err)
	}
	checkTokenHTTP(t, p.base, chosen)

	env := readDemo(t, dir)
	if !strings.Contains(p.stdout.String(), env["SERVICE_TOKEN"]) || env["QL"] != p.base {
		t.Fatalf("demo setup %v not printed, or not for %s:\n%s", env, p.base, p.stdout)
	}
	p.stop()

	s := openStore(t, dir)
	checkAdminToken(t, s, chosen)
	ctx := context.Background()
	sp, err := s.Authenticate(env["SERVICE_TOKEN"])
	if err != nil || sp.Service == nil || sp.Service.Name != "compute" || sp.Service.Type != "compute" ||
		len(sp.Service.Endpoints) != 1 || sp.Service.Endpoints[0].PublicURL != p.base+"/compute/v2.0" {
		t.Fatalf("service token: %v %+v", err, sp.Service)
	}
	up, err := s.Authenticate(env["DEMO_TOKEN"])
	if err != nil || up.User == nil || up.User.Username != demoUsername || up.User.UUID != env["DEMO_UUID"] || up.IsAdmin() {
		t.Fatalf("demo token: %v %+v", err, up.User)
	}
	if _, _, _, err := s.Login(ctx, env["DEMO_USER"], env["DEMO_PASSWORD"], identity.Origin{}); err != nil {
		t.Fatalf("demo password: %v", err)
	}
	for name, uplimit := range map[string]int64{"compute.vm": 2, "compute.ram": 4294967296} {
		r, err := s.FindResourceByName(name)
		if err != nil || r.UpLimit != uplimit || r.Service != "compute" {
			t.Fatalf("resource %s: %v %+v", name, err, r)
		}
	}
}

// readDemo reads DIR/demo.env (mode 0600) as its exported variables.
func readDemo(t *testing.T, dir string) map[string]string {
	t.Helper()
	path := filepath.Join(dir, demoFile)
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o600 {
		t.Fatalf("%s has mode %v", path, fi.Mode().Perm())
	}
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	env := map[string]string{}
	for line := range strings.Lines(string(data)) {
		line, _, _ = strings.Cut(line, "#")
		rest, ok := strings.CutPrefix(strings.TrimSpace(line), "export ")
		if !ok {
			continue
		}
		for _, kv := range strings.Fields(rest) {
			k, v, _ := strings.Cut(kv, "=")
			env[k] = v
		}
	}
	for _, k := range []string{"QL", "SERVICE_TOKEN", "DEMO_USER", "DEMO_PASSWORD", "DEMO_UUID", "DEMO_TOKEN"} {
		if env[k] == "" {
			t.Fatalf("%s lacks %s:\n%s", path, k, data)
		}
	}
	return env
}

// TestServeBadAdminToken: a QUOTALEDGER_ADMIN_TOKEN that cannot be a token
// fails the first start and leaves the data directory new.
func TestServeBadAdminToken(t *testing.T) {
	dir := t.TempDir()
	cmd := exec.Command(binary(t), "serve", "--data", dir, "--listen", "127.0.0.1:0", "--nats-listen", "127.0.0.1:-1")
	cmd.Env = append(cleanEnv(), "QUOTALEDGER_ADMIN_TOKEN=too short")
	out, err := cmd.CombinedOutput()
	var ee *exec.ExitError
	if !errors.As(err, &ee) || ee.ExitCode() != 1 || !strings.Contains(string(out), "QUOTALEDGER_ADMIN_TOKEN") {
		t.Fatalf("serve with a bad admin token: %v\n%s", err, out)
	}
	if _, err := os.Stat(filepath.Join(dir, bootstrapFile)); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("bootstrap.json after a failed bootstrap: %v", err)
	}
	if n := countUsers(t, openStore(t, dir)); n != 0 {
		t.Fatalf("%d users after a failed bootstrap", n)
	}
}

// TestLogin logs in to a running server with the login command and checks
// the token file: mode 0600, and the token in it works.
func TestLogin(t *testing.T) {
	clearEnv(t)
	dir := t.TempDir()
	p := startServe(t, nil, "--data", dir)
	b := readBootstrap(t, dir)
	file := filepath.Join(t.TempDir(), "cfg", "token")

	m, stdout, stderr := newTestMain()
	m.Stdin = strings.NewReader(b.Password + "\n")
	m.Getenv = func(string) string { return "" }
	ctx := context.Background()
	if err := m.ParseFlags(ctx, []string{"login", "--url", p.base, "--username", b.Username, "--token-file", file}); err != nil {
		t.Fatal(err)
	}
	if err := m.Run(ctx); err != nil {
		t.Fatalf("login: %v\n%s", err, stderr.String())
	}
	info, err := os.Stat(file)
	if err != nil || info.Mode().Perm() != 0o600 {
		t.Fatalf("token file: %v %v", info, err)
	}
	raw, _ := os.ReadFile(file)
	token := strings.TrimSpace(string(raw))
	if !strings.HasPrefix(token, "qls_") || strings.Contains(stdout.String(), token) {
		t.Fatalf("token %q (stdout %q)", token, stdout.String())
	}
	if code := get(t, p.base+"/account/v1.0/auth/whoami", token); code != http.StatusOK {
		t.Fatalf("whoami with the saved token: %d", code)
	}

	m, _, _ = newTestMain()
	m.Stdin = strings.NewReader("wrong password\n")
	m.Getenv = func(string) string { return "" }
	if err := m.ParseFlags(ctx, []string{"login", "--url", p.base, "--username", b.Username, "--token-file", file + "2"}); err != nil {
		t.Fatal(err)
	}
	if err := m.Run(ctx); err == nil {
		t.Fatal("a wrong password logged in")
	}
	if _, err := os.Stat(file + "2"); err == nil {
		t.Fatal("a failed login wrote a token file")
	}
}

// TestClusterFlagsRefused: cluster flags that cannot work stop serve before
// it starts, with a message that names the flag.
func TestClusterFlagsRefused(t *testing.T) {
	node := []string{"serve", "--node-name", "n1"}
	for _, tc := range []struct {
		name string
		args []string
		flag string // the message names it
	}{
		{"ReplicasOverNodes", append(node, "--peers", "127.0.0.1:7002"), "--replicas 3 is more than the 2 nodes"},
		{"ReplicasOverNodesAlone", node, "--replicas 3 is more than the 1 nodes"},
		{"ReplicasZero", append(node, "--replicas", "0"), "--replicas"},
		{"ReplicasOverFive", append(node, "--nats-url", "nats://n:4222", "--replicas", "7"), "--replicas"},
		{"PeersWithoutNodeName", []string{"serve", "--peers", "127.0.0.1:7002,127.0.0.1:7003"}, "--node-name"},
		{"NodeName", []string{"serve", "--node-name", "n 1", "--replicas", "1"}, "--node-name"},
		{"ClusterName", append(node, "--cluster-name", "a.b", "--replicas", "1"), "--cluster-name"},
		{"ClusterListenNotLoopback", append(node, "--cluster-listen", "0.0.0.0:6222", "--replicas", "1"), "--cluster-listen"},
		{"ClusterListenNotHostPort", append(node, "--cluster-listen", "6222", "--replicas", "1"), "--cluster-listen"},
		{"Peer", append(node, "--peers", "127.0.0.1", "--replicas", "1"), "--peers"},
		{"PeersWithNATSURL", append(node, "--nats-url", "nats://n:4222", "--peers", "127.0.0.1:7002"), "--peers"},
		{"LogMaxAge", append(node, "--replicas", "1", "--log-max-age", "10s"), "--log-max-age"},
		{"LeaseTTL", append(node, "--replicas", "1", "--lease-ttl", "100ms"), "--lease-ttl"},
		{"AdvertiseURL", append(node, "--replicas", "1", "--advertise-url", "n1:8080"), "--advertise-url"},
		{"JoinTimeout", append(node, "--replicas", "1", "--join-timeout", "0s"), "--join-timeout"},
		{"ClusterSync", append(node, "--replicas", "1", "--cluster-sync", "never"), "--cluster-sync"},
		{"ClusterSyncWithNATSURL", append(node, "--nats-url", "nats://n:4222", "--cluster-sync", "interval"), "--cluster-sync"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			clearEnv(t)
			m, _, stderr := newTestMain()
			err := m.ParseFlags(context.Background(), tc.args)
			var ee *ExitError
			if !errors.As(err, &ee) || ee.Code != 2 || !strings.Contains(stderr.String(), tc.flag) {
				t.Fatalf("ParseFlags(%q) = %v, want exit code 2 and a message naming %s:\n%s", tc.args, err, tc.flag, stderr)
			}
		})
	}
	// Allowed explicitly, the routes listen beyond loopback.
	clearEnv(t)
	m, _, stderr := newTestMain()
	if err := m.ParseFlags(context.Background(), append(node, "--cluster-listen", "0.0.0.0:6222", "--cluster-allow-remote", "--replicas", "1")); err != nil {
		t.Fatalf("--cluster-allow-remote: %v\n%s", err, stderr)
	}

	// --cluster-ca: a file of PEM certificates, read at the start.
	dir := t.TempDir()
	notPEM, ca := filepath.Join(dir, "not.pem"), filepath.Join(dir, "ca.pem")
	probe := httptest.NewTLSServer(nil)
	caPEM := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: probe.Certificate().Raw})
	probe.Close()
	if err := errors.Join(os.WriteFile(notPEM, []byte("a key, not a certificate"), 0o600), os.WriteFile(ca, caPEM, 0o600)); err != nil {
		t.Fatal(err)
	}
	for _, file := range []string{filepath.Join(dir, "absent.pem"), notPEM} {
		clearEnv(t)
		m, _, stderr := newTestMain()
		err := m.ParseFlags(context.Background(), append(node, "--replicas", "1", "--cluster-ca", file))
		var ee *ExitError
		if !errors.As(err, &ee) || ee.Code != 2 || !strings.Contains(stderr.String(), "--cluster-ca") {
			t.Fatalf("--cluster-ca %s: %v, want exit code 2 and a message naming --cluster-ca:\n%s", file, err, stderr)
		}
	}
	clearEnv(t)
	t.Setenv("QUOTALEDGER_CLUSTER_CA", ca)
	m, _, stderr = newTestMain()
	if err := m.ParseFlags(context.Background(), append(node, "--replicas", "1")); err != nil {
		t.Fatalf("QUOTALEDGER_CLUSTER_CA of a PEM certificate: %v\n%s", err, stderr)
	}
}

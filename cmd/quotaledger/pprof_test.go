package main

import (
	"context"
	"errors"
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/quotaledger/quotaledger/internal/testkit"
)

// TestPprof: --pprof serves Go's profiles on a loopback address of its
// own, never through the API, and is refused on any other address.
func TestPprof(t *testing.T) {
	clearEnv(t)
	for _, addr := range []string{"0.0.0.0:6060", "192.0.2.1:6060", "[::]:6060", "6060"} {
		m, _, _ := newTestMain()
		var ee *ExitError
		if err := m.ParseFlags(context.Background(), []string{"serve", "--pprof", addr}); !errors.As(err, &ee) || ee.Code != 2 {
			t.Errorf("--pprof %s: %v, want a usage error", addr, err)
		}
	}

	m, _, stderr := newTestMain()
	ctx := context.Background()
	if err := m.ParseFlags(ctx, []string{"serve", "--data", t.TempDir(), "--listen", "127.0.0.1:0",
		"--nats-url", "nats://" + testkit.FreeAddr(t), "--pprof", "127.0.0.1:0"}); err != nil {
		t.Fatal(err)
	}
	if err := m.Run(ctx); err != nil {
		t.Fatalf("Run: %v\n%s", err, stderr.String())
	}
	t.Cleanup(func() { _ = m.Close() })
	if m.server.pprofAddr == nil || !strings.Contains(stderr.String(), `"pprof listening"`) {
		t.Fatalf("no pprof listener (log:\n%s)", stderr.String())
	}
	pprof := "http://" + m.server.pprofAddr.String()
	resp, err := http.Get(pprof + "/debug/pprof/cmdline")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || len(body) == 0 {
		t.Fatalf("/debug/pprof/cmdline: %d %q", resp.StatusCode, body)
	}
	if code := get(t, "http://"+m.server.addr.String()+"/debug/pprof/cmdline", ""); code != http.StatusNotFound {
		t.Fatalf("the API answers /debug/pprof/cmdline with %d, want 404", code)
	}
	if err := m.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := http.Get(pprof + "/debug/pprof/cmdline"); err == nil {
		t.Fatal("pprof still answers after Close")
	}
}

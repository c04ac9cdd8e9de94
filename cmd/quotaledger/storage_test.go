package main

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/cockroachdb/pebble/v2/vfs"
	"github.com/cockroachdb/pebble/v2/vfs/errorfs"
)

// TestServeStorageFailure fails the ledger's WAL writes under a server run
// in the process: writes answer 503, reads and /healthz (503) go on, and
// --storage-failure-exit later the server stops with an error, so that a
// supervisor restarts it; the restarted server, the fault gone, takes
// writes again and kept what it had answered.
func TestServeStorageFailure(t *testing.T) {
	clearEnv(t)
	dir := t.TempDir()
	var armed atomic.Bool
	faulty := errorfs.Wrap(vfs.Default, errorfs.InjectorFunc(func(op errorfs.Op) error {
		if armed.Load() && strings.HasSuffix(op.Path, ".log") && (op.Kind == errorfs.OpFileWrite || op.Kind == errorfs.OpFileWriteAt) {
			return errorfs.ErrInjected
		}
		return nil
	}))

	m, _, stderr := newTestMain()
	ctx := context.Background()
	args := []string{"serve", "--data", dir, "--listen", "127.0.0.1:0", "--nats-listen", "127.0.0.1:-1", "--storage-failure-exit", "4s"}
	if err := m.ParseFlags(ctx, args); err != nil {
		t.Fatal(err)
	}
	m.CLI.Serve.ledgerFS = faulty
	if err := m.Run(ctx); err != nil {
		t.Fatalf("Run: %v\n%s", err, stderr.String())
	}
	t.Cleanup(func() { _ = m.Close() })
	base := "http://" + m.server.addr.String()
	token := readBootstrap(t, dir).Token
	setQuota(t, base, token, "user:kept", 7)

	armed.Store(true)
	body := `{"holdings":[{"holder":"user:lost","source":"system","resource":"r1","limit":1}]}`
	for i := range 3 {
		code, data := call(t, http.MethodPost, base+"/account/v1.0/holdings", token, body)
		if code != http.StatusServiceUnavailable || !strings.Contains(string(data), "storage failed") {
			t.Fatalf("write %d after the fault: %d %s, want 503 storage failed", i, code, data)
		}
	}
	if code, data := call(t, http.MethodGet, base+"/healthz", "", ""); code != http.StatusServiceUnavailable {
		t.Fatalf("/healthz after the fault: %d %s", code, data)
	}
	if code, data := call(t, http.MethodGet, base+"/account/v1.0/holdings?holder=user:kept", token, ""); code != http.StatusOK || !strings.Contains(string(data), `"limit":7`) {
		t.Fatalf("read after the fault: %d %s", code, data)
	}

	wctx, cancel := context.WithTimeout(ctx, 20*time.Second)
	defer cancel()
	if err := m.Wait(wctx); err == nil || !strings.Contains(err.Error(), "storage failed") {
		t.Fatalf("Wait: %v, want the storage failure\n%s", err, stderr.String())
	}
	_ = m.Close()
	// The relay met the failure too (deleting acknowledged events, whose
	// delay of 2 s passed within the 4 s), and said so without exiting.
	if !strings.Contains(stderr.String(), "acknowledged events stay in the outbox") {
		t.Errorf("the relay did not report the failed ledger:\n%s", stderr.String())
	}

	// The restart, the fault gone (a new Main: the default filesystem).
	armed.Store(false)
	m2, _, stderr2 := newTestMain()
	if err := m2.ParseFlags(ctx, args); err != nil {
		t.Fatal(err)
	}
	if err := m2.Run(ctx); err != nil {
		t.Fatalf("Run after the fault: %v\n%s", err, stderr2.String())
	}
	t.Cleanup(func() { _ = m2.Close() })
	base = "http://" + m2.server.addr.String()
	if code, data := call(t, http.MethodGet, base+"/healthz", "", ""); code != http.StatusOK {
		t.Fatalf("/healthz after the restart: %d %s", code, data)
	}
	for holder, want := range map[string]string{"user:kept": `"limit":7`, "user:lost": `"holdings":[]`} {
		code, data := call(t, http.MethodGet, base+"/account/v1.0/holdings?holder="+holder, token, "")
		if code != http.StatusOK || !strings.Contains(string(data), want) {
			t.Errorf("%s after the restart: %d %s, want %s", holder, code, data, want)
		}
	}
	setQuota(t, base, token, "user:new", 3)
	if err := m2.Close(); err != nil {
		t.Fatal(fmt.Errorf("close after the restart: %w", err))
	}
}

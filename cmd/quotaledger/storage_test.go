package main

import (
	"context"
	"fmt"
	"net/http"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/cockroachdb/pebble/v2/vfs"
	"github.com/cockroachdb/pebble/v2/vfs/errorfs"

	"github.com/quotaledger/quotaledger/internal/testkit/smallfs"
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

// TestServeFullDisk is issue 17's full disk, on a small volume: the
// ledger's filesystem is a 160 MiB volume (smallfs, which counts what
// Pebble preallocates for its WAL as a real filesystem does; a tmpfs or a
// loop device would need root and mount, which CI may not allow), with
// --min-free-space 96MiB. The server starts and bootstraps there (with a
// WAL sized for a large disk, 70 MB preallocated at once, it could not: the
// volume was under the floor from the first write). A file fills the volume
// to just over the floor: writes are taken; to under it: writes answer 503,
// reads go on, /readyz says why, the log says so once (not an error line
// per call) and /metrics counts the refusals and shows the space and the
// floor. The file removed, the same server takes writes again, with no
// restart. (The NATS store and bootstrap.json are on the real disk: only
// the ledger is on the volume.)
func TestServeFullDisk(t *testing.T) {
	clearEnv(t)
	const volume, floor = 160 << 20, 96 << 20
	dir := t.TempDir()
	small, err := smallfs.New(vfs.Default, dir, volume)
	if err != nil {
		t.Fatal(err)
	}
	m, _, stderr := newTestMain()
	ctx := context.Background()
	if err := m.ParseFlags(ctx, []string{"serve", "--data", dir, "--listen", "127.0.0.1:0", "--nats-listen", "127.0.0.1:-1",
		"--min-free-space", "96MiB"}); err != nil {
		t.Fatal(err)
	}
	m.CLI.Serve.ledgerFS = small
	if err := m.Run(ctx); err != nil {
		t.Fatalf("Run on a %d-byte volume with a floor of %d: %v (%s)\n%s", volume, floor, err, small, stderr.String())
	}
	t.Cleanup(func() { _ = m.Close() })
	base := "http://" + m.server.addr.String()
	token := readBootstrap(t, dir).Token
	setQuota(t, base, token, "user:before", 1)

	// Just over the floor: taken (the default floor, 128 MiB, would refuse).
	filler := filepath.Join(dir, "filler")
	if err := small.Fill(filler, volume-small.Used()-floor-(1<<20)); err != nil {
		t.Fatal(err)
	}
	setQuota(t, base, token, "user:over", 2)

	// Under it: refused, many times.
	if err := small.Fill(filler+"2", volume-small.Used()-floor+1); err != nil {
		t.Fatal(err)
	}
	const refusals = 50
	body := `{"holdings":[{"holder":"user:full","source":"system","resource":"r1","limit":3}]}`
	for i := range refusals {
		code, data := call(t, http.MethodPost, base+"/account/v1.0/holdings", token, body)
		if code != http.StatusServiceUnavailable || !strings.Contains(string(data), "free disk space below the floor") {
			t.Fatalf("write %d on the full volume: %d %s, want 503 (%s)", i, code, data, small)
		}
	}
	if code, data := call(t, http.MethodGet, base+"/account/v1.0/holdings?holder=user:over", token, ""); code != http.StatusOK || !strings.Contains(string(data), `"limit":2`) {
		t.Fatalf("read on the full volume: %d %s", code, data)
	}
	if code, data := call(t, http.MethodGet, base+"/readyz", "", ""); code != http.StatusServiceUnavailable || !strings.Contains(string(data), "free disk space below the floor") {
		t.Fatalf("/readyz on the full volume: %d %s", code, data)
	}
	fams := scrape(t, base)
	if got := metricWithLabel(fams, "quotaledger_writes_refused_total", "reason", "no_space"); got < refusals {
		t.Errorf("quotaledger_writes_refused_total{reason=no_space} = %v after %d refused writes", got, refusals)
	}
	if got := metricWithLabel(fams, "quotaledger_disk_floor_bytes", "", ""); got != floor {
		t.Errorf("quotaledger_disk_floor_bytes = %v, want %d", got, floor)
	}
	if got := metricWithLabel(fams, "quotaledger_disk_available_bytes", "", ""); got >= floor {
		t.Errorf("quotaledger_disk_available_bytes = %v on the full volume, want under %d", got, floor)
	}

	// Cleared: the same server takes writes.
	for _, f := range []string{filler, filler + "2"} {
		if err := small.Remove(f); err != nil {
			t.Fatal(err)
		}
	}
	setQuota(t, base, token, "user:after", 4)
	if code, data := call(t, http.MethodGet, base+"/readyz", "", ""); code != http.StatusOK {
		t.Fatalf("/readyz on the cleared volume: %d %s", code, data)
	}
	if err := m.Close(); err != nil {
		t.Fatal(err)
	}
	if ledgerBytes := small.UsedUnder(filepath.Join(dir, "ledger"), ""); ledgerBytes > volume/10 {
		t.Errorf("the ledger takes %d bytes of the %d-byte volume, more than a tenth", ledgerBytes, volume)
	}

	// The log: the change of state, twice, once each way; no error line.
	log := stderr.String()
	for msg, want := range map[string]int{
		"free disk space below the floor: writes refused":     1,
		"free disk space above the floor again: writes taken": 1,
		`"level":"error"`: 0,
	} {
		if n := strings.Count(log, msg); n != want {
			t.Errorf("the log has %q %d times, want %d:\n%s", msg, n, want, grepLines(log, "disk space"))
		}
	}
}

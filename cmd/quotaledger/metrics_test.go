package main

import (
	"bytes"
	"context"
	"net/http"
	"testing"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"

	"github.com/quotaledger/quotaledger/internal/testkit"
)

// TestServeMetrics: serve's /metrics carries every part's families on one
// registry, with the Go runtime and the process.
func TestServeMetrics(t *testing.T) {
	clearEnv(t)
	m, _, stderr := newTestMain()
	ctx := context.Background()
	if err := m.ParseFlags(ctx, []string{"serve", "--data", t.TempDir(), "--listen", "127.0.0.1:0",
		"--nats-url", "nats://" + testkit.FreeAddr(t)}); err != nil {
		t.Fatal(err)
	}
	if err := m.Run(ctx); err != nil {
		t.Fatalf("Run: %v\n%s", err, stderr.String())
	}
	t.Cleanup(func() { _ = m.Close() })
	base := "http://" + m.server.addr.String()
	if code, body := call(t, http.MethodGet, base+"/healthz", "", ""); code != http.StatusOK {
		t.Fatalf("/healthz: %d %s", code, body)
	}
	fams := scrape(t, base)
	for _, name := range []string{"go_goroutines", "go_memstats_alloc_bytes", "process_cpu_seconds_total",
		"quotaledger_commissions_total", "quotaledger_pending_commissions", "quotaledger_outbox_depth",
		"quotaledger_tokens", "quotaledger_http_requests_total", "quotaledger_ready"} {
		if fams[name] == nil {
			t.Errorf("/metrics has no %s", name)
		}
	}
}

// scrape reads and parses the /metrics of the server at base.
func scrape(t *testing.T, base string) map[string]*dto.MetricFamily {
	t.Helper()
	code, body := call(t, http.MethodGet, base+"/metrics", "", "")
	if code != http.StatusOK {
		t.Fatalf("/metrics: %d %s", code, body)
	}
	var p expfmt.TextParser
	fams, err := p.TextToMetricFamilies(bytes.NewReader(body))
	if err != nil {
		t.Fatalf("/metrics does not parse: %v", err)
	}
	return fams
}

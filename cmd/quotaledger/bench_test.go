package main

import (
	"context"
	"path/filepath"
	"testing"
	"time"

	"github.com/quotaledger/quotaledger/bench"
	"github.com/quotaledger/quotaledger/holdings"
	"github.com/quotaledger/quotaledger/internal/testkit/ledgertest"
	"github.com/quotaledger/quotaledger/ledger"
)

// TestBenchFlags: `quotaledger bench` takes every flag of qlbench (one
// definition, bench.Flags), and its own old --bench-token.
func TestBenchFlags(t *testing.T) {
	clearEnv(t)
	t.Setenv("QUOTALEDGER_TOKEN", "")
	m, _, stderr := newTestMain()
	args := []string{"bench", "--workload", "issue-accept", "--target", "http", "--url", "http://127.0.0.1:8080",
		"--bench-token", "svc", "--user-token", "usr", "-c", "512", "-d", "8s", "--holders", "1000", "--rate", "50",
		"--dir", "/tmp/b", "--json", "--prepare", "/tmp/p"}
	if err := m.ParseFlags(context.Background(), args); err != nil {
		t.Fatalf("ParseFlags(%q): %v\n%s", args, err, stderr.String())
	}
	want := bench.Flags{Workload: "issue-accept", Target: "http", URL: "http://127.0.0.1:8080", Token: "svc",
		UserToken: "usr", Concurrency: 512, Duration: 8 * time.Second, Holders: 1000, Rate: 50, Dir: "/tmp/b",
		JSON: true, Prepare: "/tmp/p"}
	if commandOf(m) != "bench" || m.CLI.Bench.Flags != want {
		t.Fatalf("command %q, flags %+v\nwant %+v", commandOf(m), m.CLI.Bench.Flags, want)
	}
}

// TestBenchPrepare runs `quotaledger bench --prepare DIR` through Main: the
// data directory holds the layout of --holders holdings.
func TestBenchPrepare(t *testing.T) {
	clearEnv(t)
	dir := filepath.Join(t.TempDir(), "data")
	code, out, errOut := cli(t, nil, "bench", "--prepare", dir, "--holders", "8")
	if code != 0 {
		t.Fatalf("bench --prepare: exit %d\nstdout: %s\nstderr: %s", code, out, errOut)
	}
	l := ledgertest.Open(t, ledger.Options{Dir: dir})
	hot := holdings.Key{Holder: "project:hot", Source: holdings.NullSource, Resource: "cyclades.vm"}
	if v, ok := l.FindHoldingByKey(hot); !ok || v.Limit != 1<<50 {
		t.Fatalf("the hot holding: %+v, %v", v, ok)
	}
	if n := len(l.FindHoldings(ledger.HoldingFilter{})); n < 8 || n > 16 {
		t.Fatalf("%d holdings, want about --holders 8", n)
	}
}

package main

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/quotaledger/quotaledger/bench"
)

// TestParse: the command lines of the README, docs/performance.md and the
// Makefile (one dash, Go's flag package's style) read as they always did,
// and so do two dashes, -name=value and the environment's token.
func TestParse(t *testing.T) {
	defaults := bench.Flags{Workload: "all", Target: "engine", Concurrency: 64, Duration: 10 * time.Second, Holders: 100_000}
	for _, tc := range []struct {
		name string
		args []string
		env  string // QUOTALEDGER_TOKEN
		want func(f *bench.Flags)
	}{
		{name: "OK/defaults", want: func(*bench.Flags) {}},
		{name: "OK/one dash", args: strings.Fields("-workload issue-accept -target engine -c 512 -d 8s -holders 100000"),
			want: func(f *bench.Flags) {
				f.Workload, f.Concurrency, f.Duration = "issue-accept", 512, 8*time.Second
			}},
		{name: "OK/external server", args: strings.Fields("-target http -url http://127.0.0.1:8080 -token svc -user-token usr -rate 5000 -json -dir /tmp/b"),
			want: func(f *bench.Flags) {
				f.Target, f.URL, f.Token, f.UserToken, f.Rate, f.JSON, f.Dir = "http", "http://127.0.0.1:8080", "svc", "usr", 5000, true, "/tmp/b"
			}},
		{name: "OK/prepare", args: strings.Fields("-prepare /srv/ql -holders 1000"),
			want: func(f *bench.Flags) { f.Prepare, f.Holders = "/srv/ql", 1000 }},
		{name: "OK/equals", args: strings.Fields("-c=8 -d=1s -workload=hot --holders=64 -json=false"),
			want: func(f *bench.Flags) { f.Concurrency, f.Duration, f.Workload, f.Holders = 8, time.Second, "hot", 64 }},
		{name: "OK/two dashes", args: strings.Fields("--workload mixed --concurrency 4 --duration 2s --bench-token t"),
			want: func(f *bench.Flags) { f.Workload, f.Concurrency, f.Duration, f.Token = "mixed", 4, 2*time.Second, "t" }},
		{name: "OK/token from the environment", env: "from-env",
			want: func(f *bench.Flags) { f.Token = "from-env" }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Setenv("QUOTALEDGER_TOKEN", tc.env)
			var stdout, stderr strings.Builder
			f, err := parse(tc.args, &stdout, &stderr)
			if err != nil {
				t.Fatalf("parse(%q): %v\n%s", tc.args, err, stderr.String())
			}
			want := defaults
			tc.want(&want)
			if *f != want {
				t.Fatalf("parse(%q) = %+v\nwant %+v", tc.args, *f, want)
			}
		})
	}
}

func TestParseErrors(t *testing.T) {
	t.Setenv("QUOTALEDGER_TOKEN", "")
	for _, args := range [][]string{
		strings.Fields("-target grpc"),
		strings.Fields("-frobnicate"),
		strings.Fields("-c many"),
		strings.Fields("-workload"),
	} {
		var stdout, stderr strings.Builder
		if f, err := parse(args, &stdout, &stderr); err == nil || !strings.Contains(stderr.String(), "qlbench: ") {
			t.Errorf("parse(%q) = %+v, %v; stderr %q", args, f, err, stderr.String())
		}
	}
}

// TestHelp: -h, -help and --help print the flags, every workload among
// them, and exit 0.
func TestHelp(t *testing.T) {
	for _, arg := range []string{"-h", "-help", "--help"} {
		var stdout, stderr strings.Builder
		_, err := parse([]string{arg}, &stdout, &stderr)
		var ex exit
		if !errors.As(err, &ex) || ex != 0 {
			t.Fatalf("%s: %v, want exit 0", arg, err)
		}
		help := stdout.String()
		for _, want := range append([]string{"--workload", "--target", "--url", "--token", "--user-token", "-c, --concurrency",
			"-d, --duration", "--holders", "--rate", "--dir", "--json", "--prepare", "QUOTALEDGER_TOKEN"}, bench.Workloads...) {
			if !strings.Contains(help, want) {
				t.Errorf("%s does not mention %q:\n%s", arg, want, help)
			}
		}
	}
}

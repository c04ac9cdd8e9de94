package bench

import (
	"context"
	"io"
	"os"
	"runtime/pprof"
	"runtime/trace"
	"time"
)

// Flags are the command line of a benchmark run, defined once for both
// commands in front of this package: bench/cmd/qlbench and `quotaledger
// bench` embed it. The tags are kong's (name, short, aliases, default,
// env, enum, help); qlbench also takes each long flag after one dash
// (-workload), as Go's flag package did.
type Flags struct {
	Workload string `name:"workload" default:"all" help:"all, or one of: issue-accept, issue-reject, auto-accept, resolve-many, hot, mixed, over-limit, open, events."`
	Target   string `name:"target" default:"engine" enum:"engine,http,nats" help:"engine (in process), http (loopback; --url for a running server) or nats (the micro service; --url for a running server's NATS)."`
	URL      string `name:"url" help:"Base URL of a running server (http target), or the URL of its NATS server (nats target); empty: one in process."`
	// Token is --token, as qlbench has always named it; --bench-token is
	// the name quotaledger bench had.
	Token       string        `name:"token" aliases:"bench-token" env:"QUOTALEDGER_TOKEN" help:"A service's token (with --url)."`
	UserToken   string        `name:"user-token" help:"A user's token for the token validations of mixed (with --url)."`
	Concurrency int           `name:"concurrency" short:"c" default:"64" help:"Concurrent callers."`
	Duration    time.Duration `name:"duration" short:"d" default:"10s" help:"Duration of each workload."`
	Holders     int           `name:"holders" default:"100000" help:"Holdings of the layout."`
	Rate        float64       `name:"rate" help:"Open loop: operations started per second (0: closed loop)."`
	MaxOps      int           `name:"max-ops" short:"n" help:"End each workload after this many operations, or at --duration if sooner (0: at --duration)."`
	Dir         string        `name:"dir" help:"Where data directories go (a temporary directory when empty)."`
	JSON        bool          `name:"json" help:"Print JSON instead of a table."`
	CPUProfile  string        `name:"cpuprofile" placeholder:"FILE" help:"Write a CPU profile of the whole run (load generator included: in process, the engine's too) to FILE (go tool pprof)."`
	Trace       string        `name:"trace" placeholder:"FILE" help:"Write a runtime execution trace of the whole run to FILE (go tool trace); keep the run short, a trace grows fast."`
	Prepare     string        `name:"prepare" placeholder:"DIR" help:"Write a data directory of the layout's holdings here for a server (quotaledger serve --data DIR), and exit."`
}

// Config is the run the flags ask for.
func (f *Flags) Config() Config {
	return Config{Workload: f.Workload, Target: f.Target, URL: f.URL, Token: f.Token, UserToken: f.UserToken,
		Concurrency: f.Concurrency, Duration: f.Duration, Holders: f.Holders, Rate: f.Rate, MaxOps: f.MaxOps, Dir: f.Dir}
}

// Exec does what the flags ask: with --prepare, writes the data directory
// (Prepare); otherwise runs the workloads and prints their table, or JSON,
// to stdout (RunAll, which reports a failed workload to stderr).
func (f *Flags) Exec(ctx context.Context, stdout, stderr io.Writer) error {
	if f.Prepare != "" {
		return Prepare(ctx, f.Prepare, f.Holders)
	}
	if f.CPUProfile != "" {
		out, err := os.Create(f.CPUProfile)
		if err != nil {
			return err
		}
		defer out.Close()
		if err := pprof.StartCPUProfile(out); err != nil {
			return err
		}
		defer pprof.StopCPUProfile()
	}
	if f.Trace != "" {
		out, err := os.Create(f.Trace)
		if err != nil {
			return err
		}
		defer out.Close()
		if err := trace.Start(out); err != nil {
			return err
		}
		defer trace.Stop()
	}
	return RunAll(ctx, f.Config(), stdout, stderr, f.JSON)
}

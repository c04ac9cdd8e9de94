// Command qlbench runs the workloads of package bench and prints one table
// (or JSON with -json):
//
//	go run ./bench/cmd/qlbench -workload all -target engine -c 64 -d 10s -holders 100000
//	go run ./bench/cmd/qlbench -workload issue-accept -target http -rate 5000
//
// Against a running server: prepare its data directory with -prepare DIR
// (the layout's holdings), start quotaledger serve --data DIR, register a
// service, then -target http -url URL -token SERVICE_TOKEN.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"strings"
	"syscall"

	"github.com/quotaledger/quotaledger/bench"
)

func main() {
	var cfg bench.Config
	var asJSON bool
	var prepare string
	flag.StringVar(&cfg.Workload, "workload", "all", "workload: all or one of "+strings.Join(bench.Workloads, ", "))
	flag.StringVar(&cfg.Target, "target", "engine", "engine (in process) or http (loopback; -url for a running server)")
	flag.StringVar(&cfg.URL, "url", "", "base URL of a running server (http target; empty: one in process)")
	flag.StringVar(&cfg.Token, "token", os.Getenv("QUOTALEDGER_TOKEN"), "a service's token (with -url)")
	flag.StringVar(&cfg.UserToken, "user-token", "", "a user's token for the token validations of mixed (with -url)")
	flag.IntVar(&cfg.Concurrency, "c", 64, "concurrent callers")
	flag.DurationVar(&cfg.Duration, "d", 10e9, "duration of each workload")
	flag.IntVar(&cfg.Holders, "holders", 100_000, "holdings of the layout")
	flag.Float64Var(&cfg.Rate, "rate", 0, "open loop: operations started per second (0: closed loop)")
	flag.IntVar(&cfg.MaxOps, "n", 0, "end each workload after this many operations, or at -d if sooner (0: at -d)")
	flag.StringVar(&cfg.Dir, "dir", "", "where data directories go (a temporary directory when empty)")
	flag.BoolVar(&asJSON, "json", false, "print JSON instead of a table")
	flag.StringVar(&prepare, "prepare", "", "write a data directory of the layout's holdings here for a server, and exit")
	flag.Parse()
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, cfg, asJSON, prepare); err != nil {
		fmt.Fprintln(os.Stderr, "qlbench:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, cfg bench.Config, asJSON bool, prepare string) error {
	if prepare != "" {
		return bench.Prepare(ctx, prepare, cfg.Holders)
	}
	return bench.RunAll(ctx, cfg, os.Stdout, os.Stderr, asJSON)
}

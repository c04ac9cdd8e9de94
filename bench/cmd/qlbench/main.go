// Command qlbench runs the workloads of package bench and prints one table
// (or JSON with -json):
//
//	go run ./bench/cmd/qlbench -workload all -target engine -c 64 -d 10s -holders 100000
//	go run ./bench/cmd/qlbench -workload issue-accept -target http -rate 5000
//
// Against a running server: prepare its data directory with -prepare DIR
// (the layout's holdings), start quotaledger serve --data DIR, register a
// service, then -target http -url URL -token SERVICE_TOKEN, or -target nats
// -url NATS_URL -token SERVICE_TOKEN for its NATS micro service
// (bench/pinned.sh runs both with serve and qlbench each on a core of its
// own).
//
// Its flags are bench.Flags, the same as `quotaledger bench`'s; each long
// flag may be given after one dash (-workload) or two (--workload).
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"syscall"

	"github.com/alecthomas/kong"

	"github.com/quotaledger/quotaledger/bench"
)

func main() {
	f, err := parse(os.Args[1:], os.Stdout, os.Stderr)
	if err != nil {
		var ex exit
		if errors.As(err, &ex) {
			os.Exit(int(ex))
		}
		os.Exit(2)
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	if err := f.Exec(ctx, os.Stdout, os.Stderr); err != nil {
		fmt.Fprintln(os.Stderr, "qlbench:", err)
		os.Exit(1)
	}
}

// exit is the code kong asked to exit with (0 after --help).
type exit int

func (e exit) Error() string { return fmt.Sprintf("exit %d", int(e)) }

// parse reads the command line into bench.Flags. Help goes to stdout and
// returns exit(0); a usage error is printed to stderr and returned.
func parse(args []string, stdout, stderr io.Writer) (f *bench.Flags, err error) {
	f = &bench.Flags{}
	parser, err := kong.New(f,
		kong.Name("qlbench"),
		kong.Description("Runs the workloads of DESIGN.md §7 (package bench) and prints one table. "+
			"Each long flag may also be given after one dash (-workload all)."),
		kong.Writers(stdout, stderr),
		kong.Exit(func(code int) { panic(exit(code)) }),
	)
	if err != nil {
		return nil, err
	}
	defer func() {
		if r := recover(); r != nil {
			code, ok := r.(exit)
			if !ok {
				panic(r)
			}
			f, err = nil, code
		}
	}()
	if _, err := parser.Parse(doubleDash(parser.Model.Node, args)); err != nil {
		fmt.Fprintf(stderr, "qlbench: %v\nrun \"qlbench --help\" for usage\n", err)
		return nil, err
	}
	return f, nil
}

// doubleDash rewrites the flags Go's flag package took and kong does not,
// so that qlbench's command lines keep working: a long flag after one dash
// (-workload x, -json) and any flag with its value after = (-c=512, where
// kong wants -c 512 or --concurrency=512). Everything else is left as it
// is, up to a "--".
func doubleDash(app *kong.Node, args []string) []string {
	long := map[string]string{} // a name after one dash -> its long name
	for _, fl := range app.Flags {
		long[fl.Name] = fl.Name
		for _, a := range fl.Aliases {
			long[a] = fl.Name
		}
		if fl.Short != 0 {
			long[string(fl.Short)] = fl.Name
		}
	}
	out := make([]string, 0, len(args))
	for i, a := range args {
		if a == "--" {
			return append(out, args[i:]...)
		}
		name, value, hasValue := strings.Cut(strings.TrimPrefix(a, "-"), "=")
		l, ok := long[name]
		switch {
		case !strings.HasPrefix(a, "-") || strings.HasPrefix(a, "--") || !ok:
		case hasValue:
			a = "--" + l + "=" + value
		case len(name) > 1:
			a = "--" + l
		}
		out = append(out, a)
	}
	return out
}

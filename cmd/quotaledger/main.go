// Command quotaledger is the quota and commission ledger: one binary whose
// subcommands are the daemon (serve) and, as they arrive, the operator's
// tools (DESIGN.md §6, §9, §10).
//
// Main follows the shape of wtf's cmd/wtfd: ParseFlags reads the command
// line (flags with QUOTALEDGER_* environment fallbacks), Run starts the
// command, Wait blocks while a daemon runs, Close stops it gracefully. The
// tests drive the same type.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"

	"github.com/alecthomas/kong"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	m := NewMain()
	os.Exit(m.Main(ctx, stop, os.Args[1:]))
}

// CLI is the command line: one field per subcommand, each in the file named
// after it (serve.go, session.go for login, logout and whoami, quota.go,
// ...). Every command has a Run method, which kong calls (Main.Run).
type CLI struct {
	// Config names a YAML file of flag values (config.go).
	Config string `name:"config" env:"QUOTALEDGER_CONFIG" placeholder:"FILE" help:"A YAML file of flag values (keys: flag names without dashes, e.g. listen: 127.0.0.1:8080); a flag or its environment variable wins over the file."`

	Serve ServeCmd `cmd:"" help:"Run the server: the HTTP API over the ledger in --data."`
	Login LoginCmd `cmd:"" help:"Log in (password from QUOTALEDGER_PASSWORD or stdin) and keep the token in the token file."`
	Watch WatchCmd `cmd:"" help:"Follow the event stream on NATS and print one line per event (--json: the payloads)."`

	// Backup and restore (backup.go).
	Backup  BackupCmd  `cmd:"" help:"Write a consistent backup of the running server's ledger to --to (an admin token)."`
	Restore RestoreCmd `cmd:"" help:"Rebuild a data directory from a backup, offline (--from FILE --data DIR)."`

	// The operator CLI (cli.go). Exit codes: 0 success, 1 refused by the
	// server (4xx), 2 usage error, 3 failure (network, 5xx, invalid answer).
	Logout     LogoutCmd     `cmd:"" help:"End the token's session and remove the token file. Exit codes: 0 success, 1 refused by the server (4xx), 2 usage error, 3 failure (network, 5xx, invalid answer)."`
	Whoami     WhoamiCmd     `cmd:"" help:"Show the token's user and token. Exit codes: 0 success, 1 refused (4xx), 2 usage error, 3 failure."`
	Quota      QuotaCmd      `cmd:"" help:"Set, show (with usage bars) and delete holdings; bulk import from CSV (admin). Exit codes: 0 success, 1 refused (4xx), 2 usage error, 3 failure."`
	Commission CommissionCmd `cmd:"" help:"List, show, accept, reject and issue commissions (service token); list and resolve every service's pending ones (admins). Exit codes: 0 success, 1 refused (4xx), 2 usage error, 3 failure."`
	User       UserCmd       `cmd:"" help:"Create, list, show, activate, set the role of and delete users (admin). Exit codes: 0 success, 1 refused (4xx), 2 usage error, 3 failure."`
	Token      TokenCmd      `cmd:"" help:"Create, list and revoke personal access tokens. Exit codes: 0 success, 1 refused (4xx), 2 usage error, 3 failure."`
	Session    SessionCmd    `cmd:"" help:"List and end sessions (the tokens of logins). Exit codes: 0 success, 1 refused (4xx), 2 usage error, 3 failure."`
	Resource   ResourceCmd   `cmd:"" help:"Register and list resources. Exit codes: 0 success, 1 refused (4xx), 2 usage error, 3 failure."`
	Service    ServiceCmd    `cmd:"" help:"Register, list and renew the tokens of services (admin). Exit codes: 0 success, 1 refused (4xx), 2 usage error, 3 failure."`
	Project    ProjectCmd    `cmd:"" help:"Create, show, join and leave projects. Exit codes: 0 success, 1 refused (4xx), 2 usage error, 3 failure."`
	History    HistoryCmd    `cmd:"" help:"Query the provision log. Exit codes: 0 success, 1 refused (4xx), 2 usage error, 3 failure."`
	Reconcile  ReconcileCmd  `cmd:"" help:"Compare a service's count of its usage (--file usage.csv) with the ledger, and with --fix set it right. Exit codes: 0 success, 1 refused (4xx), 2 usage error, 3 failure."`
	Cluster    ClusterCmd    `cmd:"" help:"Show the nodes of the server's cluster (admins and readers). Exit codes: 0 success, 1 refused (4xx), 2 usage error, 3 failure."`

	Bench BenchCmd `cmd:"" help:"Run the benchmark workloads of DESIGN §7 (bench/) and print one table (docs/performance.md)."`
}

// ExitError ends the process with Code. Code 0 is not a failure: --help
// was asked for and printed.
type ExitError struct {
	Code int
	Err  error
}

func (e *ExitError) Error() string {
	if e.Err == nil {
		return fmt.Sprintf("exit %d", e.Code)
	}
	return e.Err.Error()
}

func (e *ExitError) Unwrap() error { return e.Err }

// Main is the program: parsed flags, and the running command.
type Main struct {
	// Stdout receives what the operator must see once (the bootstrap token,
	// the demo setup); Stderr, help, usage errors and the log.
	Stdout, Stderr io.Writer
	// Stdin is where login reads a password from when none is in the
	// environment.
	Stdin io.Reader
	// Getenv reads the environment variables that are not flags
	// (QUOTALEDGER_ADMIN_TOKEN). Flags' own fallbacks come from the process
	// environment.
	Getenv func(string) string

	CLI    CLI
	kctx   *kong.Context // the parse ParseFlags made: the command chosen
	server *server       // the running server (serve)
}

// streams are the standard streams kong gives a command's Run.
type streams struct {
	Stdin          io.Reader
	Stdout, Stderr io.Writer
}

// getenvFunc reads an environment variable that is not a flag (Main.Getenv),
// as kong gives it to a command's Run.
type getenvFunc func(string) string

// serveStarted hands Main the server that serve's Run started, for Wait and
// Close.
type serveStarted func(*server)

// NewMain returns a Main on the process's standard streams and environment.
func NewMain() *Main {
	return &Main{Stdin: os.Stdin, Stdout: os.Stdout, Stderr: os.Stderr, Getenv: os.Getenv}
}

// Main runs the program with args and returns the exit code: it parses,
// runs, waits while a daemon serves until ctx is done (then calls stop, so
// that a second signal kills at once), and closes.
func (m *Main) Main(ctx context.Context, stop func(), args []string) int {
	if err := m.ParseFlags(ctx, args); err != nil {
		var ee *ExitError
		if errors.As(err, &ee) {
			return ee.Code
		}
		fmt.Fprintf(m.Stderr, "quotaledger: %v\n", err)
		return 2
	}
	if err := m.Run(ctx); err != nil {
		fmt.Fprintf(m.Stderr, "quotaledger: %v\n", err)
		_ = m.Close()
		if ee := (*ExitError)(nil); errors.As(err, &ee) && ee.Code != 0 {
			return ee.Code
		}
		return 1
	}
	err := m.Wait(ctx)
	stop()
	if cerr := m.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		fmt.Fprintf(m.Stderr, "quotaledger: %v\n", err)
		return 1
	}
	return 0
}

// exitPanic carries kong's exit code out of a parse (kong calls Exit after
// printing help, and would otherwise carry on).
type exitPanic int

// ParseFlags parses args into m.CLI. Each flag falls back to its
// QUOTALEDGER_* environment variable, then to its default. --help prints
// help to Stdout and returns an *ExitError with code 0; a usage error is
// printed to Stderr and returned as an *ExitError with code 2.
func (m *Main) ParseFlags(_ context.Context, args []string) (err error) {
	m.CLI, m.kctx = CLI{}, nil
	parser, err := kong.New(&m.CLI,
		kong.Name("quotaledger"),
		kong.Description("A quota and commission ledger (DESIGN.md). Every flag falls back to the environment variable named in its help."),
		kong.Writers(m.Stdout, m.Stderr),
		kong.Exit(func(code int) { panic(exitPanic(code)) }),
		kong.ConfigureHelp(kong.HelpOptions{Compact: true, NoExpandSubcommands: true}),
		configOption(),
	)
	if err != nil {
		return fmt.Errorf("quotaledger: command line model: %w", err)
	}
	defer func() {
		if r := recover(); r != nil {
			code, ok := r.(exitPanic)
			if !ok {
				panic(r)
			}
			err = &ExitError{Code: int(code)}
		}
	}()
	kctx, err := parser.Parse(args)
	if err != nil {
		fmt.Fprintf(m.Stderr, "quotaledger: %v\n", err)
		var pe *kong.ParseError
		word := ""
		if errors.As(err, &pe) && pe.Context != nil {
			word = commandWord(pe.Context)
		}
		fmt.Fprintf(m.Stderr, "run %q for usage\n", "quotaledger "+word+"--help")
		return &ExitError{Code: 2, Err: err}
	}
	m.kctx = kctx
	return nil
}

// commandWord is the subcommand a failed parse got to, with a trailing
// space, or "".
func commandWord(kctx *kong.Context) string {
	if n := kctx.Selected(); n != nil {
		return n.Name + " "
	}
	return ""
}

// Run runs the parsed command: kong calls the Run method of the command
// chosen, giving it what it asks for of the bindings below. For serve it
// returns once the server listens and answers /readyz; Wait then blocks
// while it serves. Watch runs in Run, until ctx is done. The commands that
// call the server (ClientFlags) are given a *cliEnv, and their errors carry
// their exit codes (cliError).
func (m *Main) Run(ctx context.Context) error {
	if m.kctx == nil {
		return errors.New("no command: call ParseFlags first")
	}
	m.kctx.BindTo(ctx, (*context.Context)(nil))
	m.kctx.Bind(&streams{Stdin: m.Stdin, Stdout: m.Stdout, Stderr: m.Stderr}, getenvFunc(m.Getenv),
		serveStarted(func(s *server) { m.server = s }))
	flags := clientFlagsOf(m.kctx.Selected())
	var env *cliEnv
	if flags != nil {
		// Made when Run asks for it, after kong has checked the flags.
		nf := natsFlagsOf(m.kctx.Selected())
		if err := m.kctx.BindSingletonProvider(func(ctx context.Context, s *streams) (*cliEnv, error) {
			var err error
			env, err = newCLIEnv(ctx, flags, nf, s)
			return env, err
		}); err != nil {
			return err
		}
	}
	err := m.kctx.Run()
	if env != nil {
		env.close()
	}
	if flags != nil {
		return cliError(err)
	}
	return err
}

// Wait blocks while a daemon runs: until ctx is done (nil) or the server
// fails (its error). A command that is not a daemon returns at once.
func (m *Main) Wait(ctx context.Context) error {
	if m.server == nil {
		return nil
	}
	select {
	case <-ctx.Done():
		return nil
	case err := <-m.server.failed:
		return err
	}
}

// Close stops what Run started: for serve, a graceful shutdown (see
// server.Close). It is safe to call more than once.
func (m *Main) Close() error {
	if m.server == nil {
		return nil
	}
	return m.server.Close()
}

package main

// The operator CLI (issue 6): subcommands that talk to a running server's
// HTTP API with the Go client (api/client), one file per command group
// (quota.go, commission.go, user.go, token.go, resource.go, service.go,
// project.go, history.go, session.go, with session list and end). This file is what they share: the
// client flags, the *cliEnv kong gives their Run methods, the exit codes and
// the printing.
//
// Exit codes of these commands:
//
//	0  success
//	1  the server refused (a 4xx answer; its cloudFault message is printed)
//	2  usage error (bad flags or arguments)
//	3  failure (network, a 5xx answer, an answer that is not valid)

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/alecthomas/kong"
	"github.com/nats-io/nats.go"

	"github.com/quotaledger/quotaledger/api/client"
)

// ClientFlags are the flags of every command that calls the server.
type ClientFlags struct {
	URL       string `name:"url" default:"http://127.0.0.1:8080" env:"QUOTALEDGER_URL" help:"The server's base URL."`
	Token     string `name:"token" env:"QUOTALEDGER_TOKEN" help:"The token to call with (default: the token file)."`
	TokenFile string `name:"token-file" env:"QUOTALEDGER_TOKEN_FILE" help:"The token file (default ~/.config/quotaledger/token)."`
	JSON      bool   `name:"json" help:"Print the API's JSON instead of a table."`
	CACertFlag
}

// CACertFlag is --ca-cert, of every command that calls the server.
type CACertFlag struct {
	CACert string `name:"ca-cert" env:"QUOTALEDGER_CA_CERT" placeholder:"FILE" help:"PEM certificate(s) of the CA that signed an https:// server's certificate (serve --tls-cert), instead of the system's."`
}

// clientOptions are opts with the CA of --ca-cert, if given.
func (f CACertFlag) clientOptions(opts client.Options) (client.Options, error) {
	if f.CACert == "" {
		return opts, nil
	}
	pool, err := client.CertPool(f.CACert)
	if err != nil {
		return opts, usageError("--ca-cert: %v", err)
	}
	opts.RootCAs = pool
	return opts, nil
}

// clientFlags makes ClientFlags, embedded in a command or in its group,
// mark the command as one that calls the server.
func (f *ClientFlags) clientFlags() *ClientFlags { return f }

// clientFlagsOf returns the ClientFlags of command (its own or its
// group's), or nil for a command that does not call the server.
func clientFlagsOf(command *kong.Node) *ClientFlags {
	for n := command; n != nil; n = n.Parent {
		if c, ok := n.Target.Addr().Interface().(interface{ clientFlags() *ClientFlags }); ok {
			return c.clientFlags()
		}
	}
	return nil
}

// NATSFlags are the flags of the commands that may call the service API
// over NATS (the commission commands): --nats and its credentials.
type NATSFlags struct {
	NATS     string `name:"nats" placeholder:"URL" help:"Call over NATS, the micro service quotaledger at this NATS server (nats://127.0.0.1:4222 is serve's embedded one), instead of HTTP at --url. The token is the same (a service's)."`
	NatsAuth `embed:""`
}

// natsFlags marks a command whose group embeds NATSFlags.
func (f *NATSFlags) natsFlags() *NATSFlags { return f }

// natsFlagsOf returns the NATSFlags of command (its own or its group's),
// or nil.
func natsFlagsOf(command *kong.Node) *NATSFlags {
	for n := command; n != nil; n = n.Parent {
		if c, ok := n.Target.Addr().Interface().(interface{ natsFlags() *NATSFlags }); ok {
			return c.natsFlags()
		}
	}
	return nil
}

// cliEnv is what a running operator command uses: kong gives it to the
// command's Run (Main.Run).
type cliEnv struct {
	ctx context.Context
	c   *client.Client
	// svc makes the service's calls: c, or with --nats the micro service
	// on nc (closed by close).
	svc    client.ServiceAPI
	nc     *nats.Conn
	flags  *ClientFlags
	stdout io.Writer
	stderr io.Writer
	stdin  io.Reader
}

// usageError is an error of the command line found while running: exit 2.
func usageError(format string, args ...any) error {
	return &ExitError{Code: 2, Err: fmt.Errorf(format, args...)}
}

// cliError maps an error of the client to the exit code it stands for.
func cliError(err error) error {
	if err == nil {
		return nil
	}
	var ee *ExitError
	if errors.As(err, &ee) {
		return err
	}
	var ce *client.Error
	var inv *client.InvalidResponse
	if errors.As(err, &ce) && !errors.As(err, &inv) && ce.Status >= 400 && ce.Status < 500 {
		msg := ce.Message
		if ce.Details != "" {
			msg += " (" + ce.Details + ")"
		}
		kind := ce.Kind
		if kind == "" {
			kind = "refused"
		}
		return &ExitError{Code: 1, Err: fmt.Errorf("%d %s: %s", ce.Status, kind, msg)}
	}
	return &ExitError{Code: 3, Err: err}
}

// tokenFilePath is the token file of the flags or the default.
func (f *ClientFlags) tokenFilePath() (string, error) {
	if f.TokenFile != "" {
		return f.TokenFile, nil
	}
	return client.TokenFile()
}

// newCLIEnv makes the client of f: the token of --token, else of the token
// file; with nf's --nats, the service's calls go over NATS.
func newCLIEnv(ctx context.Context, f *ClientFlags, nf *NATSFlags, s *streams) (*cliEnv, error) {
	token := strings.TrimSpace(f.Token)
	if token == "" {
		if p, err := f.tokenFilePath(); err == nil {
			if b, err := os.ReadFile(p); err == nil {
				token = strings.TrimSpace(string(b))
			}
		}
	}
	opts, err := f.clientOptions(client.Options{NoTokenPickup: true})
	if err != nil {
		return nil, err
	}
	c, err := client.New(f.URL, token, opts)
	if err != nil {
		return nil, usageError("%v", err)
	}
	e := &cliEnv{ctx: ctx, c: c, svc: c, flags: f, stdout: s.Stdout, stderr: s.Stderr, stdin: s.Stdin}
	if nf != nil && nf.NATS != "" {
		if err := nf.NatsAuth.Validate(); err != nil {
			return nil, usageError("%v", err)
		}
		auth, err := nf.NatsAuth.options()
		if err != nil {
			return nil, usageError("%v", err)
		}
		nc, err := nats.Connect(nf.NATS, append(auth, nats.Name("quotaledger cli"))...)
		if err != nil {
			return nil, &ExitError{Code: 3, Err: fmt.Errorf("--nats %s: %w", nf.NATS, err)}
		}
		e.nc, e.svc = nc, client.NewNATS(nc, token, client.NATSOptions{})
	}
	return e, nil
}

// close closes what the env opened.
func (e *cliEnv) close() {
	if e.nc != nil {
		e.nc.Close()
	}
}

// printJSON writes v as indented JSON.
func (e *cliEnv) printJSON(v any) error {
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return err
	}
	_, err = fmt.Fprintf(e.stdout, "%s\n", b)
	return err
}

// table starts a table with a header row.
func (e *cliEnv) table(header ...string) *tabwriter.Writer {
	tw := tabwriter.NewWriter(e.stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, strings.Join(header, "\t"))
	return tw
}

func row(tw io.Writer, cols ...any) {
	s := make([]string, len(cols))
	for i, c := range cols {
		s[i] = fmt.Sprint(c)
	}
	fmt.Fprintln(tw, strings.Join(s, "\t"))
}

// show prints v as JSON with --json, else calls human.
func (e *cliEnv) show(v any, human func() error) error {
	if e.flags.JSON {
		return e.printJSON(v)
	}
	return human()
}

func fmtTime(t client.Time) string {
	if t.IsZero() {
		return "-"
	}
	return t.UTC().Format(time.RFC3339)
}

func srcString(s *string) string {
	if s == nil {
		return "-"
	}
	return *s
}

// parseSource reads a SOURCE argument: "-" is the null source.
func parseSource(s string) *string {
	if s == "-" {
		return nil
	}
	return client.String(s)
}

// parseExpiry reads --expires: a duration from now ("720h") or an RFC 3339
// time; "" is never.
func parseExpiry(s string) (time.Time, error) {
	if s == "" {
		return time.Time{}, nil
	}
	if d, err := time.ParseDuration(s); err == nil {
		if d <= 0 {
			return time.Time{}, usageError("--expires %q: want a positive duration", s)
		}
		return time.Now().Add(d), nil
	}
	t, err := time.Parse(time.RFC3339, s)
	if err != nil {
		return time.Time{}, usageError("--expires %q: want a duration (720h) or an RFC 3339 time", s)
	}
	return t, nil
}

func parseSerial(s string) (int64, error) {
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil || n <= 0 {
		return 0, usageError("serial %q: want a positive integer", s)
	}
	return n, nil
}

// allPages calls get for page 1, 2, ... until the answer has no next page.
func allPages[T any](get func(client.PageOptions) (*client.Page[T], error)) ([]T, error) {
	out := []T{}
	for page := 1; page <= 10000; page++ {
		p, err := get(client.PageOptions{Page: page, PageSize: 100})
		if err != nil {
			return nil, err
		}
		out = append(out, p.Results...)
		if p.Next == nil || len(p.Results) == 0 {
			break
		}
	}
	return out, nil
}

func sortedNames[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	for i := 1; i < len(out); i++ {
		for j := i; j > 0 && out[j] < out[j-1]; j-- {
			out[j], out[j-1] = out[j-1], out[j]
		}
	}
	return out
}

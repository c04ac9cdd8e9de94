package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	stdlog "log"
	"net"
	"net/http"
	"net/http/pprof"
	"net/url"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"

	"github.com/cockroachdb/pebble/v2/vfs"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/rs/zerolog"

	"github.com/quotaledger/quotaledger/api"
	"github.com/quotaledger/quotaledger/cluster"
	"github.com/quotaledger/quotaledger/events"
	"github.com/quotaledger/quotaledger/identity"
	"github.com/quotaledger/quotaledger/ledger"
)

// ServeCmd is `quotaledger serve`, the daemon (DESIGN.md §9: these flags,
// their defaults and QUOTALEDGER_ADMIN_TOKEN are the operator contract).
type ServeCmd struct {
	Data               string        `default:"./data" env:"QUOTALEDGER_DATA" placeholder:"DIR" help:"Data directory: the ledger in DIR/ledger, bootstrap.json beside it (default ${default})."`
	Listen             string        `default:"127.0.0.1:8080" env:"QUOTALEDGER_LISTEN" placeholder:"HOST:PORT" help:"Address to listen on (default ${default}); port 0 takes a free one, logged with the message \"listening\"."`
	NatsURL            string        `name:"nats-url" env:"QUOTALEDGER_NATS_URL" placeholder:"URL" help:"External NATS server (JetStream) to publish events to, instead of the embedded one."`
	NatsListen         string        `name:"nats-listen" default:"127.0.0.1:4222" env:"QUOTALEDGER_NATS_LISTEN" placeholder:"HOST:PORT" help:"Without --nats-url: where the embedded NATS server listens, a loopback address (default ${default}); port -1 takes a free one. The log's \"listening\" message names its URL (nats_url)."`
	OutboxMaxDepth     uint64        `name:"outbox-max-depth" default:"1000000" env:"QUOTALEDGER_OUTBOX_MAX_DEPTH" placeholder:"N" help:"While NATS is not connected, /readyz fails once more than N events wait in the outbox (default ${default})."`
	StreamMaxAge       time.Duration `name:"stream-max-age" default:"168h" env:"QUOTALEDGER_STREAM_MAX_AGE" placeholder:"DURATION" help:"How long the QUOTALEDGER stream keeps events (default ${default}, 7 days: some 2 KB an event; 0: for ever, without bound). The start's log says it."`
	OutboxMaxAge       time.Duration `name:"outbox-max-age" default:"10m" env:"QUOTALEDGER_OUTBOX_MAX_AGE" placeholder:"DURATION" help:"While NATS is not connected, /readyz fails once the oldest event in the outbox is older than this (default ${default})."`
	PublicURL          string        `name:"public-url" env:"QUOTALEDGER_PUBLIC_URL" placeholder:"URL" help:"Base URL the service catalog names (default: the scheme and host each request came to)."`
	LogLevel           string        `default:"info" enum:"trace,debug,info,warn,error" env:"QUOTALEDGER_LOG_LEVEL" placeholder:"LEVEL" help:"Log level: trace, debug, info, warn or error (default ${default})."`
	LogFormat          string        `default:"json" enum:"json,console" env:"QUOTALEDGER_LOG_FORMAT" placeholder:"FORMAT" help:"Log format: json (one object a line) or console (for people) (default ${default})."`
	ShutdownTimeout    time.Duration `default:"30s" env:"QUOTALEDGER_SHUTDOWN_TIMEOUT" placeholder:"DURATION" help:"How long a shutdown (SIGTERM, SIGINT) waits for calls in flight (default ${default})."`
	StorageFailureExit time.Duration `name:"storage-failure-exit" default:"30s" env:"QUOTALEDGER_STORAGE_FAILURE_EXIT" placeholder:"DURATION" help:"After a failed WAL write or sync, writes answer 503 and reads go on; this long after it the server exits with status 1 so that its supervisor restarts it, rebuilding from disk (0: never; /healthz answers 503 meanwhile) (default ${default})."`
	Demo               bool          `env:"QUOTALEDGER_DEMO" help:"On the first start of an empty data directory, also create the demo setup of the README (a compute service, two resources, a user) and print it."`
	Pprof              string        `name:"pprof" env:"QUOTALEDGER_PPROF" placeholder:"HOST:PORT" help:"Serve Go's profiles (net/http/pprof, under /debug/pprof/) on this loopback address, apart from the API; port 0 takes a free one, logged with the message \"pprof listening\" (default: off)."`

	// The ledger's and identity's options (serve_settings.go).
	SettingsFlags `embed:""`
	// HTTPS (serve_tls.go).
	TLSFlags `embed:""`
	// NATS credentials, with --nats-url.
	NatsAuth `embed:""`
	// Cluster mode (serve_cluster.go).
	ClusterFlags `embed:""`
	// Timeouts and header size of the HTTP server.
	HTTPLimits `embed:""`

	// ledgerFS is the ledger's filesystem: nil, Pebble's default, but for
	// the in-process tests that inject disk faults (set after ParseFlags).
	ledgerFS vfs.FS
}

// Help is the detail of `serve --help`.
func (c *ServeCmd) Help() string {
	return `Serves the HTTP API (DESIGN.md §3), and its service calls over NATS as
the micro service quotaledger (subjects quotaledger.v1.*, DESIGN.md §12),
until SIGTERM or SIGINT, then stops gracefully: no new connections, calls in
flight finish (up to --shutdown-timeout), token last-use times are stored,
the events relay publishes what it has in flight, the ledger is closed, and
the embedded NATS server (if any) stops.

Every change is also an event, written to the ledger's outbox with the change
and published by a relay to the NATS JetStream stream QUOTALEDGER, each
exactly once. Without --nats-url the server runs NATS itself, storing under
DIR/nats and listening on --nats-listen for consumers (quotaledger watch).
With --nats-url it publishes to that server, with --nats-token,
--nats-user and --nats-password, or --nats-creds. The micro service runs on
the same NATS: in process on the embedded server (services connect to
--nats-listen), or on the --nats-url server, reconnecting while it is away. While NATS is away events
wait in the outbox; /readyz fails once the outbox passes --outbox-max-depth
or --outbox-max-age.

On the first start of an empty data directory it creates the admin user
` + adminUsername + ` with a random password and a personal access token. If
QUOTALEDGER_ADMIN_TOKEN is set (32 to 256 bytes of visible ASCII), that value
becomes the admin's token; otherwise the fresh token is printed once on
stdout. Either way DIR/bootstrap.json (mode 0600) holds the username and
password (and the fresh token). Later starts do none of this.

With --node-name the server is a node of a cluster (docs/cluster.md): its
embedded NATS server joins the other nodes' (--cluster-listen, --peers) into
one NATS cluster with JetStream, syncing every write before it acknowledges
it, so that the cluster's log is on a majority of disks before a leader
answers (with --nats-url every node uses that NATS cluster instead). One
node leads and takes the writes; the others follow the log and forward the
writes that reach them to it. The first leader of a new cluster makes the
admin (above) in its own data directory. DIR/cluster.json records the
cluster a data directory joined: a single node's directory is refused as a
node's, and a node's as a single node's or another cluster's.`
}

// Validate checks what kong's types cannot.
func (c *ServeCmd) Validate() error {
	if c.Data == "" {
		return errors.New("--data must not be empty")
	}
	if _, _, err := net.SplitHostPort(c.Listen); err != nil {
		return fmt.Errorf("--listen must be HOST:PORT: %w", err)
	}
	if c.PublicURL != "" {
		if err := checkURL(c.PublicURL, "http", "https"); err != nil {
			return fmt.Errorf("--public-url: %w", err)
		}
	}
	if c.NatsURL != "" {
		if err := checkURL(c.NatsURL, "nats", "tls", "ws", "wss"); err != nil {
			return fmt.Errorf("--nats-url: %w", err)
		}
	}
	host, _, err := net.SplitHostPort(c.NatsListen)
	if err != nil {
		return fmt.Errorf("--nats-listen must be HOST:PORT: %w", err)
	}
	if ip := net.ParseIP(host); c.NatsURL == "" && host != "localhost" && (ip == nil || !ip.IsLoopback()) {
		// The embedded server has no authentication: it is for this machine.
		return fmt.Errorf("--nats-listen %s: the embedded NATS server listens on a loopback address only (use --nats-url for another server)", c.NatsListen)
	}
	if c.Pprof != "" {
		host, _, err := net.SplitHostPort(c.Pprof)
		if err != nil {
			return fmt.Errorf("--pprof must be HOST:PORT: %w", err)
		}
		if ip := net.ParseIP(host); host != "localhost" && (ip == nil || !ip.IsLoopback()) {
			// The profiles show the process's insides and cost CPU to take.
			return fmt.Errorf("--pprof %s: the profiles are served on a loopback address only", c.Pprof)
		}
	}
	if err := c.NatsAuth.Validate(); err != nil {
		return err
	}
	if err := c.HTTPLimits.Validate(); err != nil {
		return err
	}
	if err := c.SettingsFlags.Validate(); err != nil {
		return err
	}
	if err := c.TLSFlags.Validate(); err != nil {
		return err
	}
	if !c.BootstrapAdmin && c.Demo {
		// The demo's user would be the first user, and no one could
		// become admin by signing up.
		return errors.New("--demo needs the bootstrap admin: leave --bootstrap-admin on")
	}
	if err := c.ClusterFlags.Validate(c.NatsURL); err != nil {
		return err
	}
	if c.StreamMaxAge < 0 {
		return errors.New("--stream-max-age must not be negative")
	}
	if c.OutboxMaxAge <= 0 {
		return errors.New("--outbox-max-age must be positive")
	}
	if c.ShutdownTimeout <= 0 {
		return errors.New("--shutdown-timeout must be positive")
	}
	if c.StorageFailureExit < 0 {
		return errors.New("--storage-failure-exit must not be negative")
	}
	return nil
}

func checkURL(s string, schemes ...string) error {
	u, err := url.Parse(s)
	if err != nil {
		return err
	}
	for _, sc := range schemes {
		if u.Scheme == sc && u.Host != "" {
			return nil
		}
	}
	return fmt.Errorf("%q is not a %v URL with a host", s, schemes)
}

// HTTPLimits bound what one client may hold of the HTTP server. A call of
// this API is small and quick: a header is a token and a few fields, a body
// is capped by the API (1 MiB), and the engine answers in milliseconds; the
// timeouts are there to shed slow or stuck clients (a slowloris sending its
// headers a byte at a time holds a connection and a goroutine for at most
// --http-read-header-timeout), not to bound honest work.
type HTTPLimits struct {
	ReadHeaderTimeout time.Duration `name:"http-read-header-timeout" default:"5s" env:"QUOTALEDGER_HTTP_READ_HEADER_TIMEOUT" placeholder:"DURATION" help:"How long a client may take to send a request's headers before the server closes the connection (default ${default})."`
	ReadTimeout       time.Duration `name:"http-read-timeout" default:"30s" env:"QUOTALEDGER_HTTP_READ_TIMEOUT" placeholder:"DURATION" help:"How long a client may take to send a whole request, headers and body (default ${default})."`
	WriteTimeout      time.Duration `name:"http-write-timeout" default:"60s" env:"QUOTALEDGER_HTTP_WRITE_TIMEOUT" placeholder:"DURATION" help:"How long the server may take to answer a request, counted from the end of its headers (default ${default}); a backup stream lifts it."`
	IdleTimeout       time.Duration `name:"http-idle-timeout" default:"2m" env:"QUOTALEDGER_HTTP_IDLE_TIMEOUT" placeholder:"DURATION" help:"How long a keep-alive connection may wait for its next request (default ${default})."`
	MaxHeaderBytes    int           `name:"http-max-header-bytes" default:"65536" env:"QUOTALEDGER_HTTP_MAX_HEADER_BYTES" placeholder:"N" help:"The largest request headers taken, in bytes (default ${default}); larger ones are answered 431."`
}

// Validate checks that every limit is positive.
func (h *HTTPLimits) Validate() error {
	for _, d := range []struct {
		flag string
		v    time.Duration
	}{
		{"--http-read-header-timeout", h.ReadHeaderTimeout}, {"--http-read-timeout", h.ReadTimeout},
		{"--http-write-timeout", h.WriteTimeout}, {"--http-idle-timeout", h.IdleTimeout},
	} {
		if d.v <= 0 {
			return fmt.Errorf("%s must be positive", d.flag)
		}
	}
	if h.MaxHeaderBytes <= 0 {
		return errors.New("--http-max-header-bytes must be positive")
	}
	return nil
}

// flushInterval is how often token last-use times are stored.
const flushInterval = time.Minute

// newLogger makes the process logger: JSON lines, or console text, on w.
func newLogger(w io.Writer, level, format string) (zerolog.Logger, error) {
	lvl, err := zerolog.ParseLevel(level)
	if err != nil {
		return zerolog.Nop(), fmt.Errorf("--log-level: %w", err)
	}
	lw, buffered := w.(*logWriter)
	if format == "console" {
		out := w
		if buffered {
			out = lw.w // the terminal, if it is one, is behind the buffer
		}
		w = zerolog.ConsoleWriter{Out: w, TimeFormat: time.RFC3339, NoColor: !isTerminal(out)}
	}
	if buffered {
		w = urgentFlusher{w: w, lw: lw}
	}
	return zerolog.New(w).Level(lvl).With().Timestamp().Logger(), nil
}

// isTerminal reports whether w is a terminal (colours are for people).
func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	fi, err := f.Stat()
	return err == nil && fi.Mode()&os.ModeCharDevice != 0
}

// server is a running `serve`.
type server struct {
	log             zerolog.Logger
	logw            *logWriter // the log's buffer, closed last
	ledger          *ledger.Ledger
	id              *identity.Store
	http            *http.Server
	addr            net.Addr
	pprof           *http.Server // nil without --pprof
	pprofAddr       net.Addr
	shutdownTimeout time.Duration

	// The events: the embedded NATS server (nil with --nats-url) and the
	// relay from the outbox to it, running until stopRelay.
	nats      *events.Server
	natsURL   string // for the log: no user information
	relay     *events.Relay
	stopRelay context.CancelFunc
	relayDone chan struct{}
	// termMu guards stopRelay and relayDone, which a node of a cluster
	// changes at each term it leads (onLead), and closing, set once the
	// relay must not start again.
	termMu  sync.Mutex
	closing bool

	// A node of a cluster (serve_cluster.go): its NATS connection, the
	// node, and what the first leader bootstraps with. nil for a single
	// node.
	natsTarget      string // the NATS URL to connect to, with its credentials
	nc              *nats.Conn
	js              jetstream.JetStream
	node            *cluster.Node
	bootstrapConfig bootstrapConfig
	duplicateName   atomic.Bool // the embedded NATS server met a server of its name

	// micro is the NATS micro service (micro.go), nil until started.
	micro *microService

	// Readiness bounds of the outbox while the relay is not connected.
	outboxMaxDepth uint64
	outboxMaxAge   time.Duration

	ready  atomic.Bool
	failed chan error // the first error of a part that stopped by itself

	stopFlush chan struct{}
	flushDone chan struct{}
	served    chan struct{} // closed when Serve has returned
	// stopHangup ends the handling of SIGHUP (serve_tls.go).
	stopHangup chan struct{}

	closeOnce sync.Once
	closeErr  error
}

// Run starts the server and hands it to Main (started), which waits while
// it serves and closes it.
func (c *ServeCmd) Run(ctx context.Context, s *streams, getenv getenvFunc, started serveStarted) error {
	srv, err := startServer(ctx, c, s.Stdout, s.Stderr, getenv)
	if err != nil {
		return err
	}
	started(srv)
	return nil
}

// startServer opens the ledger and identity under c.Data, bootstraps a new
// data directory, and serves the API on c.Listen. It returns once the
// server takes calls.
func startServer(ctx context.Context, c *ServeCmd, stdout, stderr io.Writer, getenv func(string) string) (*server, error) {
	// The log lines are written out every logFlushInterval, not one
	// write(2) each (logwriter.go); Close writes out the last ones.
	logw := newLogWriter(stderr, logFlushInterval)
	started := false
	defer func() {
		if !started {
			_ = logw.Close()
		}
	}()
	log, err := newLogger(logw, c.LogLevel, c.LogFormat)
	if err != nil {
		return nil, err
	}
	if err := os.MkdirAll(c.Data, 0o700); err != nil {
		return nil, fmt.Errorf("data directory: %w", err)
	}
	var certs *certHolder
	if c.TLSCert != "" {
		if certs, err = newCertHolder(c.TLSCert, c.TLSKey, log.With().Str("component", "tls").Logger()); err != nil {
			return nil, err
		}
	}
	// Listen first: a taken port fails the start before anything is made.
	ln, err := net.Listen("tcp", c.Listen)
	if err != nil {
		return nil, fmt.Errorf("listen: %w", err)
	}
	s := &server{log: log, logw: logw, addr: ln.Addr(), shutdownTimeout: c.ShutdownTimeout,
		outboxMaxDepth: c.OutboxMaxDepth, outboxMaxAge: c.OutboxMaxAge,
		failed: make(chan error, 1), stopFlush: make(chan struct{}), flushDone: make(chan struct{}),
		served: make(chan struct{}), stopHangup: make(chan struct{})}
	ok := false
	defer func() {
		if !ok {
			_ = ln.Close()
			s.stopMicro()
			s.stopEvents()
			if s.node != nil {
				_ = s.node.Close()
			}
			if s.ledger != nil {
				_ = s.ledger.Close()
			}
			if s.nc != nil {
				s.nc.Close()
			}
			if s.nats != nil {
				s.nats.Shutdown()
			}
		}
	}()

	// One registry for every part's metrics, with the Go runtime and the
	// process; /metrics serves it.
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	if certs != nil {
		reg.MustRegister(certs.expiryGauge())
	}
	base := c.PublicURL
	if base == "" {
		base = c.scheme() + "://" + loopbackAddr(s.addr)
	}
	bcfg := bootstrapConfig{
		Dir: c.Data, Log: log, Stdout: stdout,
		AdminToken: getenv("QUOTALEDGER_ADMIN_TOKEN"), Demo: c.Demo, BaseURL: base, NoAdmin: !c.BootstrapAdmin,
	}
	if bcfg.NoAdmin && bcfg.AdminToken != "" {
		// The token would name no one: say so rather than ignore it.
		return nil, fmt.Errorf("bootstrap: %s is the bootstrap admin's token, and --bootstrap-admin=false makes no admin: unset one of them", adminTokenEnv)
	}
	var copts api.ClusterOptions
	if c.clusterMode() {
		// The first leader bootstraps, later: refuse a token it would.
		if bcfg.AdminToken != "" {
			if err := identity.CheckImportedSecret(bcfg.AdminToken); err != nil {
				return nil, fmt.Errorf("bootstrap: %s: %w", adminTokenEnv, err)
			}
		}
		advertise := c.AdvertiseURL
		if advertise == "" {
			addr := loopbackAddr(s.addr)
			advertise = c.scheme() + "://" + addr
			host, _, _ := net.SplitHostPort(addr)
			if ip := net.ParseIP(host); (ip == nil || ip.IsLoopback()) && (c.ClusterAllowRemote || c.NatsURL != "") {
				log.Warn().Str("advertise_url", advertise).Msg("the other nodes forward writes to this node at a loopback address: set --advertise-url if they run on other machines")
			}
		}
		s.bootstrapConfig = bcfg
		if err := s.startCluster(ctx, c, reg, advertise); err != nil {
			return nil, err
		}
		fctx, fcancel := context.WithTimeout(ctx, c.JoinTimeout)
		secret, err := forwardSecret(fctx, s.js)
		fcancel()
		if err != nil {
			return nil, err
		}
		roots, err := c.clusterRoots()
		if err != nil {
			return nil, err
		}
		copts = api.ClusterOptions{Node: s.node, Name: c.NodeName, HTTPURL: advertise, Secret: secret, RootCAs: roots}
	} else {
		// A node's data directory is not a single node's.
		if _, err := checkMembership(c.Data, &c.ClusterFlags); err != nil {
			return nil, err
		}
		s.ledger, err = ledger.Open(c.ledgerOptions(filepath.Join(c.Data, "ledger"), log, reg))
		if err != nil {
			return nil, err
		}
		removeLeftovers(c.Data, log)
		s.id, err = identity.Open(s.ledger, c.identityOptions(log, reg))
		if err != nil {
			return nil, err
		}
		if err := s.startEvents(c); err != nil {
			return nil, err
		}
		bcfg.Store = s.id
		if err := bootstrap(ctx, bcfg); err != nil {
			return nil, err
		}
		host, _ := os.Hostname()
		copts = api.ClusterOptions{Name: host, HTTPURL: base}
	}

	handler := api.New(s.ledger, s.id, api.Options{Logger: log, PublicURL: c.PublicURL, Checks: s.readyChecks, Metrics: reg,
		Cluster: copts})
	if err := s.startMicro(c, handler); err != nil {
		return nil, err
	}
	if c.Pprof != "" { // the last step that can fail: nothing after it stops it
		if err := s.startPprof(c.Pprof); err != nil {
			return nil, err
		}
	}
	s.http = &http.Server{
		Handler:           handler,
		ReadHeaderTimeout: c.HTTPLimits.ReadHeaderTimeout,
		ReadTimeout:       c.HTTPLimits.ReadTimeout,
		WriteTimeout:      c.HTTPLimits.WriteTimeout,
		IdleTimeout:       c.HTTPLimits.IdleTimeout,
		MaxHeaderBytes:    c.HTTPLimits.MaxHeaderBytes,
		ErrorLog:          stdlog.New(log.With().Str("component", "http").Logger(), "", 0),
		BaseContext:       func(net.Listener) context.Context { return context.WithoutCancel(ctx) },
	}
	if certs != nil {
		s.http.TLSConfig = certs.tlsConfig()
	}
	go func() {
		defer close(s.served)
		// net/http's own plain-text answers (a 431, a 400) as cloudFaults;
		// with TLS the TLS listener goes over it (api.FaultListener), and
		// those answers stay plain text, encrypted.
		ln := api.FaultListener(ln)
		serve := s.http.Serve
		if certs != nil {
			serve = func(ln net.Listener) error { return s.http.ServeTLS(ln, "", "") }
		}
		if err := serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			s.fail(fmt.Errorf("serve: %w", err))
		}
	}()
	go s.flushLoop()
	go s.watchStorage(c.StorageFailureExit)
	watchHangup(certs, log, s.stopHangup)
	if s.node != nil {
		go s.markPublished()
	}
	s.ready.Store(true)
	ok, started = true, true
	ev := log.Info().Str("addr", s.addr.String()).Str("scheme", c.scheme()).Str("data", c.Data).Str("nats_url", s.natsURL)
	if s.node != nil {
		ev = ev.Str("node", c.NodeName).Str("advertise_url", copts.HTTPURL)
		if s.nats != nil {
			ev = ev.Str("route", s.nats.RouteURL())
		}
	}
	ev.Msg("listening")
	// The start's lines go out at once, not at the next flush: whoever
	// watches the log (an operator, a supervisor, a test) sees the server
	// up when it is.
	_ = logw.Flush()
	return s, nil
}

// startPprof serves Go's profiles (net/http/pprof) on addr, a loopback
// address checked by Validate, on a server of their own: the API's
// handler never routes to them, and the API's write timeout does not cut
// a 30-second CPU profile.
func (s *server) startPprof(addr string) error {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return fmt.Errorf("--pprof: %w", err)
	}
	mux := http.NewServeMux()
	mux.HandleFunc("/debug/pprof/", pprof.Index)
	mux.HandleFunc("/debug/pprof/cmdline", pprof.Cmdline)
	mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
	mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
	mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	s.pprof = &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second,
		ErrorLog: stdlog.New(s.log.With().Str("component", "pprof").Logger(), "", 0)}
	s.pprofAddr = ln.Addr()
	go func() { _ = s.pprof.Serve(ln) }()
	s.log.Info().Str("addr", s.pprofAddr.String()).Msg("pprof listening")
	return nil
}

// startEvents starts the embedded NATS server (without --nats-url) and the
// relay that publishes the outbox to NATS, in a goroutine that runs until
// Close. The relay connects, and reconnects, by itself: a NATS server that
// is away does not stop the start.
func (s *server) startEvents(c *ServeCmd) error {
	target := c.NatsURL
	if target == "" {
		if c.NatsAuth.given() || c.NatsAuth.tlsGiven() {
			s.log.Warn().Msg("--nats-token, --nats-user, --nats-password, --nats-creds and the --nats-ca, --nats-cert, --nats-key of TLS are for --nats-url: the embedded NATS server takes none")
		}
		// JetStream acknowledges before it syncs. Syncing every message
		// (SyncAlways) costs 15x in relay throughput (BenchmarkRelay): the
		// relay could not keep pace with the ledger. Instead the store syncs
		// every second and the relay keeps acknowledged events in the
		// outbox for two more (DeleteDelay below), so an event lost by a
		// crashed NATS is republished, and one it kept is dropped as a
		// duplicate.
		srv, err := events.StartServer(events.ServerOptions{
			Dir: filepath.Join(c.Data, "nats"), Listen: c.NatsListen, SyncInterval: embeddedSyncInterval,
			Logger: s.log.With().Str("component", "nats").Logger(),
		})
		if err != nil {
			return fmt.Errorf("embedded NATS server: %w", err)
		}
		s.nats = srv
		target = srv.ClientURL()
		s.natsURL = target
		s.log.Info().Str("nats_url", target).Str("dir", filepath.Join(c.Data, "nats")).Msg("embedded NATS server listening")
	} else {
		s.natsURL = redactURL(target)
		s.log.Info().Str("nats_url", s.natsURL).Msg("publishing events to an external NATS server")
	}
	opts := events.RelayOptions{URL: target, Logger: s.log.With().Str("component", "relay").Logger(),
		DeleteDelay: embeddedDeleteDelay, MaxAge: c.StreamMaxAge}
	if s.nats != nil {
		// The embedded server is in this process: the relay talks to it
		// through a pipe, not loopback TCP (no socket, no system call per
		// publish).
		opts.InProcess = s.nats
	}
	if c.NatsURL != "" {
		var err error
		if opts, err = s.externalRelayOptions(c, opts); err != nil {
			return err
		}
	}
	s.relay = events.NewRelay(s.ledger, opts)
	ctx, cancel := context.WithCancel(context.Background())
	s.stopRelay, s.relayDone = cancel, make(chan struct{})
	go func() {
		defer close(s.relayDone)
		if err := s.relay.Run(ctx); err != nil && ctx.Err() == nil {
			s.fail(fmt.Errorf("events relay: %w", err))
		}
	}()
	return nil
}

// An embedded NATS server that does not sync every write syncs every
// embeddedSyncInterval, and its relay keeps acknowledged events in the
// outbox for embeddedDeleteDelay, past the next sync.
const (
	embeddedSyncInterval = time.Second
	embeddedDeleteDelay  = 2 * time.Second
)

// externalRelayOptions are opts for an external NATS server (--nats-url):
// with its credentials, and a delete delay for a server that syncs on its
// own schedule.
func (s *server) externalRelayOptions(c *ServeCmd, opts events.RelayOptions) (events.RelayOptions, error) {
	target := c.NatsURL
	// An external server syncs on its own schedule (JetStream's default:
	// every 2 minutes): keep acknowledged events longer than that, under
	// a duplicate window twice as long.
	opts.DeleteDelay, opts.DuplicateWindow = 150*time.Second, 5*time.Minute
	opts.Token, opts.User, opts.Password, opts.CredsFile = c.NatsToken, c.NatsUser, c.NatsPassword, c.NatsCreds
	tlsConfig, err := c.NatsAuth.tlsConfig()
	if err != nil {
		return opts, err
	}
	opts.TLS = tlsConfig
	// Credentials in the URL itself travel as options, so that the URL
	// the relay holds (and may log) has none.
	opts.URL = redactURL(target)
	if u, err := url.Parse(target); err == nil && u.User != nil && !c.NatsAuth.given() {
		if pw, ok := u.User.Password(); ok {
			opts.User, opts.Password = u.User.Username(), pw
		} else {
			opts.Token = u.User.Username()
		}
	}
	return opts, nil
}

// stopEvents stops the relay once it has what it published acknowledged
// (or the shutdown timeout has passed), and keeps a node of a cluster from
// starting it again. The outbox keeps whatever it did not publish, for the
// next start (or the next leader).
func (s *server) stopEvents() {
	s.termMu.Lock()
	s.closing = true
	stop, done := s.stopRelay, s.relayDone
	s.stopRelay = nil
	s.termMu.Unlock()
	if stop == nil {
		return
	}
	stop()
	select {
	case <-done:
	case <-time.After(s.shutdownTimeout):
		s.log.Warn().Dur("timeout", s.shutdownTimeout).Msg("the events relay did not stop within the shutdown timeout: its events stay in the outbox")
	}
}

// watchStorage waits for the ledger to fail a commit (a failed WAL write or
// sync: DESIGN §8), says so, and after grace (unless 0) stops the server
// with an error, so that the supervisor restarts it and the engine rebuilds
// from disk. Until then writes answer 503 and reads go on.
func (s *server) watchStorage(grace time.Duration) {
	select {
	case <-s.stopFlush:
		return
	case <-s.ledger.FailedC():
	}
	err := s.ledger.Failed()
	if grace <= 0 {
		s.log.Error().Err(err).Msg("storage failed: writes answer 503, reads go on; restart the server (--storage-failure-exit is 0)")
		return
	}
	s.log.Error().Err(err).Dur("exit_in", grace).Msg("storage failed: writes answer 503, reads go on until the exit")
	select {
	case <-s.stopFlush:
	case <-time.After(grace):
		s.fail(fmt.Errorf("storage failed %s ago: %w", grace, err))
	}
}

// fail reports the first error of a part that stopped by itself (Wait
// returns it); later ones are logged only.
func (s *server) fail(err error) {
	select {
	case s.failed <- err:
	default:
		s.log.Error().Err(err).Msg("failed")
	}
}

// readyChecks are the checks of /readyz: "server" (between the start and
// the shutdown), "ledger" (open and taking writes), "nats" (the relay
// connected) and "outbox" (within its bounds). A relay that is not connected
// fails readiness only once the outbox passes its bounds: "nats" then
// fails too, so that the body says why the outbox cannot drain.
func (s *server) readyChecks(context.Context) map[string]error {
	checks := map[string]error{"server": nil, "ledger": nil, "nats": nil, "outbox": nil}
	if !s.ready.Load() {
		checks["server"] = errors.New("shutting down")
	}
	checks["ledger"] = s.ledger.Writable()
	connected := s.relay.Connected()
	if s.node != nil {
		checks["cluster"] = s.clusterCheck()
		if !s.node.Leading() {
			// A follower publishes nothing: what the leader's relay
			// publishes leaves its outbox by markPublished, over the node's
			// own connection.
			connected = s.nc.IsConnected()
		}
	}
	st, err := s.ledger.OutboxStats()
	if err != nil {
		checks["outbox"] = err
		return checks
	}
	if connected {
		return checks
	}
	switch {
	case st.Depth > s.outboxMaxDepth:
		checks["outbox"] = fmt.Errorf("NATS is not connected and %d events wait in the outbox, more than --outbox-max-depth %d",
			st.Depth, s.outboxMaxDepth)
	case st.Depth > 0 && time.Since(st.Oldest) > s.outboxMaxAge:
		checks["outbox"] = fmt.Errorf("NATS is not connected and the oldest event in the outbox is %s old, more than --outbox-max-age %s",
			time.Since(st.Oldest).Round(time.Second), s.outboxMaxAge)
	}
	if checks["outbox"] != nil {
		checks["nats"] = errors.New("not connected")
	}
	return checks
}

// flushLoop stores token last-use times every flushInterval.
func (s *server) flushLoop() {
	defer close(s.flushDone)
	t := time.NewTicker(flushInterval)
	defer t.Stop()
	for {
		select {
		case <-s.stopFlush:
			return
		case <-t.C:
			if s.node != nil && !s.node.Leading() {
				continue // a follower writes nothing (its tokens' last use is not kept)
			}
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			if err := s.id.FlushLastUsed(ctx); err != nil {
				s.log.Warn().Err(err).Msg("storing token last use")
			}
			cancel()
		}
	}
}

// Close shuts the server down gracefully: /readyz turns 503, the listener
// closes, calls in flight finish (up to the shutdown timeout, then their
// connections are cut), the NATS micro service stops once its calls in
// flight are answered, token last-use times are stored, the relay stops
// once its publishes in flight are acknowledged, the ledger is closed, and
// last the embedded NATS server stops. It is safe to call more than once.
func (s *server) Close() error {
	s.closeOnce.Do(func() {
		start := time.Now()
		s.ready.Store(false)
		s.log.Info().Msg("shutting down")
		close(s.stopHangup)
		var errs []error
		ctx, cancel := context.WithTimeout(context.Background(), s.shutdownTimeout)
		if err := s.http.Shutdown(ctx); err != nil {
			s.log.Warn().Err(err).Dur("timeout", s.shutdownTimeout).Msg("calls still in flight at the shutdown timeout: cutting them")
			_ = s.http.Close()
		}
		cancel()
		<-s.served
		s.stopMicro()
		if s.pprof != nil {
			_ = s.pprof.Close()
		}
		close(s.stopFlush)
		<-s.flushDone
		fctx, fcancel := context.WithTimeout(context.Background(), 10*time.Second)
		if s.node == nil || s.node.Leading() {
			if err := s.id.FlushLastUsed(fctx); err != nil && !errors.Is(err, ledger.ErrNotLeader) && !errors.Is(err, ledger.ErrDeposed) {
				errs = append(errs, fmt.Errorf("storing token last use: %w", err))
			}
		}
		fcancel()
		s.stopEvents() // after the flush, whose token expiries are events too
		if s.node != nil {
			_ = s.node.Close() // a leader steps down and gives its lease up: another leads at once
		}
		if err := s.ledger.Close(); err != nil {
			errs = append(errs, fmt.Errorf("closing the ledger: %w", err))
		}
		if s.nc != nil {
			s.nc.Close()
		}
		if s.nats != nil {
			s.nats.Shutdown()
		}
		s.closeErr = errors.Join(errs...)
		if s.closeErr != nil {
			s.log.Error().Err(s.closeErr).Msg("shutdown")
		} else {
			s.log.Info().Dur("took", time.Since(start)).Msg("stopped")
		}
		_ = s.logw.Close() // no line is lost on a clean exit
	})
	return s.closeErr
}

// loopbackAddr is addr as a client on this machine dials it: an
// unspecified host (0.0.0.0, ::) becomes the loopback address.
func loopbackAddr(addr net.Addr) string {
	host, port, err := net.SplitHostPort(addr.String())
	if err != nil {
		return addr.String()
	}
	if ip := net.ParseIP(host); ip != nil && ip.IsUnspecified() {
		if ip.To4() != nil {
			host = "127.0.0.1"
		} else {
			host = "::1"
		}
	}
	return net.JoinHostPort(host, port)
}

// redactURL drops a URL's user information (a NATS token or user and
// password), for the log.
func redactURL(s string) string {
	u, err := url.Parse(s)
	if err != nil {
		return "(unparsable)"
	}
	u.User = nil
	return u.String()
}

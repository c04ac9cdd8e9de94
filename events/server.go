package events

import (
	"errors"
	"fmt"
	"net"
	"net/url"
	"strconv"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/rs/zerolog"
)

// DefaultListen is where the embedded server listens unless told otherwise.
const DefaultListen = "127.0.0.1:4222"

// ServerOptions configure the embedded NATS server.
type ServerOptions struct {
	// Dir is the JetStream store directory (file storage). Required.
	Dir string
	// Listen is the client address, host:port, DefaultListen if empty. The
	// host must be a loopback address or "localhost": the embedded server has
	// no authentication. Port -1 or 0 takes a random free port (ClientURL
	// tells which).
	Listen string
	// SyncAlways makes JetStream sync its file store before it acknowledges a
	// publish. The relay deletes an outbox entry on its ack, so without it a
	// machine crash can lose the events of the last sync interval (2 min by
	// default). serve passes true; BenchmarkRelay measures the cost.
	SyncAlways bool
	// SyncInterval is how often JetStream syncs its file store when
	// SyncAlways is off (nats-server's default, 2m, if zero). Pair it with
	// RelayOptions.DeleteDelay to keep acknowledged events in the outbox
	// until the stream has synced past them, the cheaper way not to lose
	// them (see BenchmarkRelay).
	SyncInterval time.Duration
	// ReadyTimeout is how long StartServer waits for the server to accept
	// clients (a minute if zero): a server recovering a large store after a
	// crash, or one starting on a loaded machine, takes seconds.
	ReadyTimeout time.Duration
	Logger       zerolog.Logger

	// Cluster, when its Name is set, makes the server one of a NATS cluster
	// with JetStream (DESIGN §11): the servers of a quotaledger cluster
	// route to each other and replicate the streams.
	Cluster ClusterOptions
}

// ClusterOptions join the embedded server to a NATS cluster.
type ClusterOptions struct {
	// Name is the cluster's name, the same on every node; ServerName this
	// server's, unique in the cluster (the node's name).
	Name, ServerName string
	// Listen is the route address, host:port, on a loopback address unless
	// AllowRemote; port 0 or -1 takes a free one (RouteURL tells which).
	Listen string
	// Routes are the other servers' route addresses, host:port.
	Routes []string
	// AllowRemote lets Listen be a non-loopback address (the nodes of a
	// real cluster are on other machines).
	AllowRemote bool
}

// Validate reports the first option that cannot work.
func (o ServerOptions) Validate() error {
	if o.Dir == "" {
		return errors.New("events: server: Dir is required")
	}
	if o.SyncInterval < 0 {
		return errors.New("events: server: SyncInterval must not be negative")
	}
	host, _, err := splitListen(o.Listen)
	if err != nil {
		return err
	}
	if host != "localhost" {
		ip := net.ParseIP(host)
		if ip == nil || !ip.IsLoopback() {
			return fmt.Errorf("events: server: listen host %q is not a loopback address", host)
		}
	}
	return nil
}

func splitListen(listen string) (string, int, error) {
	if listen == "" {
		listen = DefaultListen
	}
	host, p, err := net.SplitHostPort(listen)
	if err != nil {
		return "", 0, fmt.Errorf("events: server: listen %q: %w", listen, err)
	}
	port, err := strconv.Atoi(p)
	if err != nil || port < -1 || port > 65535 {
		return "", 0, fmt.Errorf("events: server: listen %q: bad port", listen)
	}
	if port == 0 {
		port = server.RANDOM_PORT
	}
	return host, port, nil
}

// Server is an embedded NATS server with JetStream.
type Server struct {
	ns  *server.Server
	log zerolog.Logger
}

// StartServer starts an embedded NATS server with JetStream storing under
// opts.Dir, and returns once it accepts clients. Call Shutdown to stop it.
func StartServer(opts ServerOptions) (*Server, error) {
	if err := opts.Validate(); err != nil {
		return nil, err
	}
	host, port, _ := splitListen(opts.Listen)
	so := &server.Options{
		ServerName:             "quotaledger",
		Host:                   host,
		Port:                   port,
		JetStream:              true,
		StoreDir:               opts.Dir,
		SyncAlways:             opts.SyncAlways,
		SyncInterval:           opts.SyncInterval,
		NoSigs:                 true,
		DisableJetStreamBanner: true,
	}
	if c := opts.Cluster; c.Name != "" {
		if err := clusterOptions(so, c); err != nil {
			return nil, err
		}
	}
	ns, err := server.NewServer(so)
	if err != nil {
		return nil, fmt.Errorf("events: server: %w", err)
	}
	ns.SetLoggerV2(natsLogger{opts.Logger}, false, false, false)
	ns.Start()
	ready := opts.ReadyTimeout
	if ready <= 0 {
		ready = time.Minute
	}
	if !ns.ReadyForConnections(ready) {
		ns.Shutdown()
		// The server logged why (a port in use, most often).
		return nil, fmt.Errorf("events: server: not ready after %v (its log above says why: a port in use?)", ready)
	}
	if !ns.JetStreamEnabled() {
		ns.Shutdown()
		return nil, errors.New("events: server: JetStream did not start (see the log)")
	}
	s := &Server{ns: ns, log: opts.Logger}
	s.log.Info().Str("url", s.ClientURL()).Str("dir", opts.Dir).Bool("sync_always", opts.SyncAlways).
		Msg("embedded NATS server ready")
	return s, nil
}

// clusterOptions sets the route options of a server of a cluster.
func clusterOptions(so *server.Options, c ClusterOptions) error {
	if c.ServerName == "" {
		return errors.New("events: server: a server of a cluster needs a name")
	}
	rhost, rport, err := splitListen(c.Listen)
	if err != nil {
		return err
	}
	if !c.AllowRemote {
		if ip := net.ParseIP(rhost); rhost != "localhost" && (ip == nil || !ip.IsLoopback()) {
			return fmt.Errorf("events: server: route host %q is not a loopback address", rhost)
		}
	}
	so.ServerName = c.ServerName
	so.Cluster = server.ClusterOpts{Name: c.Name, Host: rhost, Port: rport}
	for _, r := range c.Routes {
		u, err := url.Parse("nats-route://" + r)
		if err != nil || u.Host == "" {
			return fmt.Errorf("events: server: route %q: not host:port", r)
		}
		so.Routes = append(so.Routes, u)
	}
	return nil
}

// RouteURL is the address the server's routes listen on (a server of a
// cluster), host:port, or "".
func (s *Server) RouteURL() string {
	if a := s.ns.ClusterAddr(); a != nil {
		return a.String()
	}
	return ""
}

// NATS is the embedded server itself, for what this package does not wrap
// (a cluster's tests wait for its JetStream to be current with it).
func (s *Server) NATS() *server.Server { return s.ns }

// ClientURL is the URL clients connect to, e.g. nats://127.0.0.1:4222.
func (s *Server) ClientURL() string { return s.ns.ClientURL() }

// InProcessConn returns a connection to the server from this process
// that goes through a pipe instead of a socket: s is a
// nats.InProcessConnProvider, for nats.InProcessServer(s) and
// RelayOptions.InProcess. It fails once the server is shut down.
func (s *Server) InProcessConn() (net.Conn, error) {
	conn, err := s.ns.InProcessConn()
	if err != nil {
		return nil, err
	}
	return newAsyncConn(conn), nil // pipe.go
}

// Conn is a client connection of the embedded server.
type Conn struct {
	Name string // the name the client gave (nats.Name), if any
	// InProcess says the client connected through InProcessConn, not a
	// socket.
	InProcess bool
}

// Conns lists the server's client connections (its monitoring's view:
// an in-process one has no address).
func (s *Server) Conns() ([]Conn, error) {
	cz, err := s.ns.Connz(&server.ConnzOptions{Limit: 1 << 16})
	if err != nil {
		return nil, fmt.Errorf("events: server: %w", err)
	}
	out := make([]Conn, 0, len(cz.Conns))
	for _, c := range cz.Conns {
		out = append(out, Conn{Name: c.Name, InProcess: c.IP == "" && c.Port == 0})
	}
	return out, nil
}

// Shutdown stops the server and waits until it has stopped. Safe to call
// more than once.
func (s *Server) Shutdown() {
	s.ns.Shutdown()
	s.ns.WaitForShutdown()
}

// natsLogger sends the server's log to zerolog. The server's notices (its
// start banner, config lines) go to debug.
type natsLogger struct{ log zerolog.Logger }

func (l natsLogger) Noticef(format string, v ...any) { l.log.Debug().Msgf("nats: "+format, v...) }
func (l natsLogger) Warnf(format string, v ...any)   { l.log.Warn().Msgf("nats: "+format, v...) }
func (l natsLogger) Fatalf(format string, v ...any)  { l.log.Error().Msgf("nats: "+format, v...) }
func (l natsLogger) Errorf(format string, v ...any)  { l.log.Error().Msgf("nats: "+format, v...) }
func (l natsLogger) Debugf(format string, v ...any)  { l.log.Debug().Msgf("nats: "+format, v...) }
func (l natsLogger) Tracef(format string, v ...any)  { l.log.Trace().Msgf("nats: "+format, v...) }

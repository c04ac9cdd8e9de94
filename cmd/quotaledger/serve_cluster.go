package main

import (
	"context"
	"crypto/rand"
	"crypto/x509"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/rs/zerolog"

	"github.com/quotaledger/quotaledger/cluster"
	"github.com/quotaledger/quotaledger/events"
	"github.com/quotaledger/quotaledger/identity"
	"github.com/quotaledger/quotaledger/ledger"
)

// A cluster of quotaledger nodes (DESIGN §11, docs/cluster.md): each node
// is a `serve` with its own --data and --node-name. Without --nats-url
// each runs an embedded NATS server joined to the others' by routes
// (--cluster-listen, --peers) into one NATS cluster with JetStream; with
// it, every node uses that (external) NATS cluster. The cluster's log,
// lease and checkpoints live in JetStream (package cluster); one node
// leads and takes the writes, the others follow and forward the writes
// that reach them to it (api/cluster.go).

// ClusterFlags are serve's flags of cluster mode: a node of a cluster when
// --node-name (or --peers) is given, a single node otherwise.
type ClusterFlags struct {
	NodeName string `name:"node-name" env:"QUOTALEDGER_NODE_NAME" placeholder:"NAME" help:"Run as the node NAME of a cluster (letters, digits, - and _; unique in the cluster). Without it (and without --peers) the server is a single node."`
	// ClusterName names the NATS cluster of the embedded servers, and the
	// cluster a data directory belongs to (DIR/cluster.json).
	ClusterName        string        `name:"cluster-name" default:"quotaledger" env:"QUOTALEDGER_CLUSTER_NAME" placeholder:"NAME" help:"The cluster's name, the same on every node (default ${default}); a data directory joined to one cluster is refused by another."`
	ClusterListen      string        `name:"cluster-listen" default:"127.0.0.1:6222" env:"QUOTALEDGER_CLUSTER_LISTEN" placeholder:"HOST:PORT" help:"Without --nats-url: where the embedded NATS server listens for the other nodes' routes, a loopback address unless --cluster-allow-remote (default ${default}); port -1 takes a free one."`
	ClusterAllowRemote bool          `name:"cluster-allow-remote" env:"QUOTALEDGER_CLUSTER_ALLOW_REMOTE" help:"Let --cluster-listen be an address other machines reach. The routes have no authentication and no TLS: only on a network that only the cluster's nodes reach."`
	Peers              []string      `name:"peers" sep:"," env:"QUOTALEDGER_PEERS" placeholder:"HOST:PORT,..." help:"Without --nats-url: the other nodes' --cluster-listen addresses."`
	Replicas           int           `name:"replicas" default:"3" env:"QUOTALEDGER_REPLICAS" placeholder:"N" help:"How many copies the cluster's log, lease and events streams keep (default ${default}); a write is answered once a majority holds it. At most the number of nodes."`
	LogMaxAge          time.Duration `name:"log-max-age" default:"24h" env:"QUOTALEDGER_LOG_MAX_AGE" placeholder:"DURATION" help:"How long the cluster's log keeps its records (default ${default}); a node further behind restarts from the cluster's checkpoint."`
	LeaseTTL           time.Duration `name:"lease-ttl" default:"3s" env:"QUOTALEDGER_LEASE_TTL" placeholder:"DURATION" help:"How long the leader's lease outlives its last renewal (default ${default}): a leader that stops answering is replaced after about this long."`
	AdvertiseURL       string        `name:"advertise-url" env:"QUOTALEDGER_ADVERTISE_URL" placeholder:"URL" help:"The URL the other nodes reach this node's API at, to forward writes to it when it leads (default: http:// and the address --listen bound, its loopback address for 0.0.0.0)."`
	ClusterCA          string        `name:"cluster-ca" env:"QUOTALEDGER_CLUSTER_CA" placeholder:"FILE" help:"PEM certificate(s) of the CA that signed the nodes' --tls-cert: a node forwarding a write to the leader's https:// --advertise-url checks its certificate against them (default: the system's roots)."`
	// ClusterSync is how the embedded NATS servers sync the cluster's
	// streams: interval (every second, like a single node's server; the
	// default) or always (every write, before it is acknowledged):
	// docs/cluster.md, "Durability". Empty: not given.
	ClusterSync string        `name:"cluster-sync" env:"QUOTALEDGER_CLUSTER_SYNC" placeholder:"interval|always" help:"Without --nats-url: interval (default): each embedded NATS server syncs the cluster's log and events every second, and an answered call is on a majority's memory and on the leader's disk (synced before it answers), which gives the log back what a power loss of every machine took from it; always: each syncs every write before it acknowledges it, so an answered call is on a majority of disks, for about two thirds of the writes."`
	JoinTimeout time.Duration `name:"join-timeout" default:"2m" env:"QUOTALEDGER_JOIN_TIMEOUT" placeholder:"DURATION" help:"How long a starting node waits for the cluster's JetStream (a majority of its nodes up) before it gives up (default ${default})."`
}

// clusterMode reports whether the flags make the server a node of a
// cluster.
func (f *ClusterFlags) clusterMode() bool { return f.NodeName != "" || len(f.Peers) > 0 }

// nameRE is what a node's or a cluster's name may be: a NATS server and
// cluster name, and a key of the cluster's buckets.
var nameRE = regexp.MustCompile(`^[A-Za-z0-9_-]{1,64}$`)

// Validate checks the cluster flags, with messages that name the flag. A
// single node's flags are not checked beyond their types: they are unused.
func (f *ClusterFlags) Validate(natsURL string) error {
	if !f.clusterMode() {
		return nil
	}
	switch {
	case f.NodeName == "":
		return errors.New("--peers is for a node of a cluster: give its --node-name too")
	case !nameRE.MatchString(f.NodeName):
		return fmt.Errorf("--node-name %q: 1 to 64 letters, digits, - and _", f.NodeName)
	case !nameRE.MatchString(f.ClusterName):
		return fmt.Errorf("--cluster-name %q: 1 to 64 letters, digits, - and _", f.ClusterName)
	case f.Replicas < 1:
		return fmt.Errorf("--replicas %d: at least 1", f.Replicas)
	case f.Replicas > 5:
		// JetStream's replicated assets take at most 5.
		return fmt.Errorf("--replicas %d: at most 5", f.Replicas)
	case f.LogMaxAge < time.Minute:
		return fmt.Errorf("--log-max-age %s: at least 1m", f.LogMaxAge)
	case f.LeaseTTL < time.Second:
		return fmt.Errorf("--lease-ttl %s: at least 1s", f.LeaseTTL)
	case f.JoinTimeout <= 0:
		return errors.New("--join-timeout must be positive")
	}
	if f.AdvertiseURL != "" {
		if err := checkURL(f.AdvertiseURL, "http", "https"); err != nil {
			return fmt.Errorf("--advertise-url: %w", err)
		}
	}
	if f.ClusterCA != "" {
		if _, err := f.clusterRoots(); err != nil {
			return err
		}
	}
	switch f.ClusterSync {
	case "", "interval", "always":
	default:
		return fmt.Errorf("--cluster-sync must be interval or always, not %q", f.ClusterSync)
	}
	if natsURL != "" {
		if f.ClusterSync != "" {
			return fmt.Errorf("--cluster-sync %s is for the embedded NATS servers: an external NATS cluster syncs as its own configuration says (sync_interval)", f.ClusterSync)
		}
		if len(f.Peers) > 0 {
			return errors.New("--peers are the routes of the embedded NATS servers: with --nats-url the nodes meet in that NATS cluster; leave --peers out")
		}
		return nil
	}
	host, _, err := net.SplitHostPort(f.ClusterListen)
	if err != nil {
		return fmt.Errorf("--cluster-listen must be HOST:PORT: %w", err)
	}
	if ip := net.ParseIP(host); !f.ClusterAllowRemote && host != "localhost" && (ip == nil || !ip.IsLoopback()) {
		return fmt.Errorf("--cluster-listen %s: the embedded NATS server's routes listen on a loopback address unless --cluster-allow-remote (they have no authentication)", f.ClusterListen)
	}
	for _, p := range f.Peers {
		if _, _, err := net.SplitHostPort(p); err != nil {
			return fmt.Errorf("--peers: %q is not HOST:PORT", p)
		}
	}
	if nodes := 1 + len(f.Peers); f.Replicas > nodes {
		return fmt.Errorf("--replicas %d is more than the %d nodes of the cluster (this one and its --peers)", f.Replicas, nodes)
	}
	return nil
}

// membershipFile records, in a node's data directory, the cluster it
// joined: a data directory is a single node's or one cluster's node's, and
// a start with the other kind of flags is refused.
const membershipFile = "cluster.json"

// membership is the content of DIR/cluster.json.
type membership struct {
	ClusterName string    `json:"cluster_name"`
	NodeName    string    `json:"node_name"`
	ClusterID   string    `json:"cluster_id"`
	Joined      time.Time `json:"joined"`
}

// readMembership reads DIR/cluster.json (nil if there is none).
func readMembership(dir string) (*membership, error) {
	data, err := os.ReadFile(filepath.Join(dir, membershipFile))
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("data directory: %w", err)
	}
	m := new(membership)
	if err := json.Unmarshal(data, m); err != nil || m.NodeName == "" || m.ClusterID == "" {
		return nil, fmt.Errorf("data directory: %s is not a cluster membership file", filepath.Join(dir, membershipFile))
	}
	return m, nil
}

// ledgerExists reports whether DIR holds a ledger.
func ledgerExists(dir string) bool {
	entries, err := os.ReadDir(filepath.Join(dir, "ledger"))
	return err == nil && len(entries) > 0
}

// checkMembership refuses a data directory that is not what the flags say
// it is, before anything is opened: a node's directory for a single node,
// a single node's (a ledger and no cluster.json) or another node's or
// cluster's for a node. It returns the membership on record (nil: none).
func checkMembership(dir string, f *ClusterFlags) (*membership, error) {
	m, err := readMembership(dir)
	if err != nil {
		return nil, err
	}
	switch {
	case !f.clusterMode() && m != nil:
		return nil, fmt.Errorf("--node-name: the data directory %s is the node %s of the cluster %s (%s): start it with --node-name %s and the cluster's flags",
			dir, m.NodeName, m.ClusterName, membershipFile, m.NodeName)
	case !f.clusterMode():
		return nil, nil
	case m == nil && ledgerExists(dir):
		return nil, fmt.Errorf("--node-name: the data directory %s holds a single node's ledger (it has no %s): a node joins a cluster with an empty data directory",
			dir, membershipFile)
	case m == nil:
		return nil, nil
	case m.ClusterName != f.ClusterName:
		return nil, fmt.Errorf("--cluster-name %s: the data directory %s is a node of the cluster %s (%s)", f.ClusterName, dir, m.ClusterName, membershipFile)
	case m.NodeName != f.NodeName:
		return nil, fmt.Errorf("--node-name %s: the data directory %s is the node %s's (%s)", f.NodeName, dir, m.NodeName, membershipFile)
	}
	return m, nil
}

// writeMembership records that DIR joined the cluster id as node f.NodeName.
func writeMembership(dir string, f *ClusterFlags, id string) error {
	data, err := json.MarshalIndent(membership{ClusterName: f.ClusterName, NodeName: f.NodeName, ClusterID: id,
		Joined: time.Now().UTC()}, "", "  ")
	if err != nil {
		return err
	}
	p, err := createPrivate(filepath.Join(dir, membershipFile))
	if err != nil {
		return fmt.Errorf("data directory: %w", err)
	}
	defer p.abort()
	return p.commit(append(data, '\n'))
}

// newClusterID is the id a first node proposes for a new cluster (the
// ledger's id on every node: cluster.Setup keeps the first).
func newClusterID() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// takeBack registers collectors on a registry and can unregister them
// again: the ledger a starting node closes to restore a checkpoint gives
// its metrics back to the one that replaces it.
type takeBack struct {
	reg *prometheus.Registry
	cs  []prometheus.Collector
}

func (t *takeBack) Register(c prometheus.Collector) error {
	if err := t.reg.Register(c); err != nil {
		return err
	}
	t.cs = append(t.cs, c)
	return nil
}

func (t *takeBack) MustRegister(cs ...prometheus.Collector) {
	for _, c := range cs {
		if err := t.Register(c); err != nil {
			panic(err)
		}
	}
}

func (t *takeBack) Unregister(c prometheus.Collector) bool { return t.reg.Unregister(c) }

// undo unregisters everything registered through t.
func (t *takeBack) undo() {
	for _, c := range t.cs {
		t.reg.Unregister(c)
	}
	t.cs = nil
}

// startCluster starts a node's part of a cluster, in the order the log
// needs (DESIGN §11): NATS (the embedded server joined to the others, or
// the external one) → the cluster's stream and buckets and its id (once
// JetStream is ready) → the ledger, opened as a follower with that id and
// without the journal records past the log's end → the cluster's
// checkpoint if the ledger is new or behind the log → identity → the node,
// which follows, and leads when it wins the lease (onLead). httpURL is
// where the other nodes reach this one's API.
func (s *server) startCluster(ctx context.Context, c *ServeCmd, reg *prometheus.Registry, httpURL string) error {
	f := &c.ClusterFlags
	known, err := checkMembership(c.Data, f)
	if err != nil {
		return err
	}
	if err := s.startClusterNATS(c); err != nil {
		return err
	}
	var auth []nats.Option
	if c.NatsURL != "" {
		if auth, err = c.NatsAuth.options(); err != nil {
			return err
		}
	}
	nc, err := nats.Connect(s.natsTarget, append(auth, nats.Name("quotaledger node "+f.NodeName),
		nats.MaxReconnects(-1), nats.ReconnectWait(250*time.Millisecond))...)
	if err != nil {
		return fmt.Errorf("NATS: %w", err)
	}
	s.nc = nc
	copts := cluster.Options{Name: f.NodeName, Conn: nc, Replicas: f.Replicas, LogMaxAge: f.LogMaxAge,
		LeaseTTL: f.LeaseTTL, HTTPURL: httpURL, Logger: s.log,
		OnLead: s.onLead, OnFollow: s.onFollow}

	// The cluster's stream, buckets and id: JetStream answers once a
	// majority of its servers are up.
	jctx, cancel := context.WithTimeout(ctx, f.JoinTimeout)
	defer cancel()
	var id string
	for attempt := 0; ; attempt++ {
		// Each attempt on its own deadline: a request that JetStream drops
		// while it elects its leaders is not answered at all.
		actx, acancel := context.WithTimeout(jctx, 5*time.Second)
		id, err = cluster.Setup(actx, copts, newClusterID())
		acancel()
		if s.duplicateName.Load() {
			// Whether or not JetStream answered: the routes were refused.
			return fmt.Errorf("--node-name %s: another node of the cluster has that name (the NATS servers refuse the routes between servers of one name): every node needs a name of its own",
				f.NodeName)
		}
		if err == nil {
			break
		}
		if jctx.Err() != nil {
			return fmt.Errorf("--join-timeout %s: the cluster's JetStream did not answer (are a majority of the nodes up, and --peers right? is --replicas %d more than the NATS cluster's servers?): %w",
				f.JoinTimeout, f.Replicas, err)
		}
		if attempt == 0 || attempt%20 == 0 {
			s.log.Info().Err(err).Msg("waiting for the cluster's JetStream (a majority of the nodes)")
		}
		sleepCtx(jctx, 250*time.Millisecond)
	}
	switch {
	case known != nil && known.ClusterID != id:
		return fmt.Errorf("--data %s: the data directory is a node of another cluster (id %s; this cluster's is %s): a node joins with an empty data directory",
			c.Data, known.ClusterID, id)
	case known == nil:
		if err := writeMembership(c.Data, f, id); err != nil {
			return err
		}
	}
	if err := s.checkNodeName(jctx, f, httpURL); err != nil {
		return err
	}
	logEnd, err := cluster.LogEnd(jctx, nc)
	if err != nil {
		return fmt.Errorf("cluster: %w", err)
	}
	inLog, err := cluster.InLog(jctx, nc)
	if err != nil {
		return fmt.Errorf("cluster: %w", err)
	}
	reappend, err := cluster.Reappend(jctx, nc, copts.PartSize)
	if err != nil {
		return fmt.Errorf("cluster: %w", err)
	}

	// The ledger, restored from the cluster's checkpoint when it is new
	// (and the log does not start at its first record) or behind the log;
	// its journal's records past the log's end given to the log again
	// where their places are free (the log's servers lost them: a power
	// loss), and those the log does not hold dropped (past the log's end,
	// or, on a node killed while it led, another leader's records of the
	// same sequences in the log).
	lopts := c.ledgerOptions(filepath.Join(c.Data, "ledger"), s.log, nil)
	lopts.Follower, lopts.ID, lopts.KeepJournalTo, lopts.InLog, lopts.Reappend = true, id, logEnd, inLog, reappend
	var applied uint64
	need := false
	if ledgerExists(c.Data) {
		tb := &takeBack{reg: reg}
		lopts.Metrics = tb
		s.ledger, err = openClusterLedger(lopts, c.Data)
		switch {
		case errors.Is(err, ledger.ErrPastLog):
			// Its state took records that the log lost (a power loss of
			// its servers) and that another node wrote over before this
			// one could give them back: not the cluster's.
			s.log.Warn().Err(err).Msg("the ledger holds records the cluster's log lost, in places since taken: starting from the cluster's checkpoint")
			tb.undo()
			need = true
		case err != nil:
			return err
		default:
			applied = s.ledger.Applied()
			if need, err = cluster.NeedsCheckpoint(jctx, nc, applied); err != nil {
				return fmt.Errorf("cluster: %w", err)
			}
		}
		if need && s.ledger != nil {
			err := s.ledger.Close()
			s.ledger = nil
			tb.undo()
			if err != nil {
				return err
			}
		}
	} else if need, err = cluster.NeedsCheckpoint(jctx, nc, 0); err != nil {
		return fmt.Errorf("cluster: %w", err)
	}
	if s.ledger == nil {
		if need {
			s.log.Info().Uint64("applied", applied).Msg("restoring the cluster's checkpoint")
			if err := cluster.RestoreCheckpoint(jctx, nc, c.Data); err != nil {
				return err
			}
		}
		lopts.Metrics = reg
		if s.ledger, err = openClusterLedger(lopts, c.Data); err != nil {
			return err
		}
	}
	if s.id, err = identity.Open(s.ledger, c.identityOptions(s.log, reg)); err != nil {
		return err
	}
	s.bootstrapConfig.Store = s.id
	s.relay = events.NewRelay(s.ledger, s.relayOptions(c))
	if s.js, err = jetstream.New(nc); err != nil {
		return fmt.Errorf("NATS: %w", err)
	}
	if s.node, err = cluster.Start(ctx, s.ledger, copts); err != nil {
		return err
	}
	s.log.Info().Str("node", f.NodeName).Str("cluster", f.ClusterName).Str("cluster_id", id).
		Uint64("applied", s.ledger.Applied()).Uint64("log_end", logEnd).Msg("joined the cluster")
	return nil
}

// openClusterLedger opens a node's ledger; a ledger of another cluster is
// refused with the flags to look at.
func openClusterLedger(opts ledger.Options, dir string) (*ledger.Ledger, error) {
	l, err := ledger.Open(opts)
	if errors.Is(err, ledger.ErrWrongID) {
		return nil, fmt.Errorf("--data %s: the data directory holds a ledger of another cluster (not %s): a node joins with an empty data directory: %w",
			dir, opts.ID, err)
	}
	if err == nil {
		removeLeftovers(dir, opts.Logger)
	}
	return l, err
}

// syncAlways reports whether the embedded NATS servers sync every write
// (--cluster-sync always) rather than every second (interval, the default).
func (f *ClusterFlags) syncAlways() bool { return f.ClusterSync == "always" }

// startClusterNATS starts the embedded NATS server as a server of the
// nodes' NATS cluster, or notes the external one. With --cluster-sync
// always the server syncs every write before it acknowledges it (an
// answered call is then on a majority of disks); with interval, every
// second (it is in a majority's memory, and on disk a second later).
func (s *server) startClusterNATS(c *ServeCmd) error {
	f := &c.ClusterFlags
	if c.NatsURL != "" {
		s.natsTarget, s.natsURL = c.NatsURL, redactURL(c.NatsURL)
		s.log.Info().Str("nats_url", s.natsURL).Msg("a node of a cluster on an external NATS cluster")
		return nil
	}
	if c.NatsAuth.given() || c.NatsAuth.tlsGiven() {
		s.log.Warn().Msg("--nats-token, --nats-user, --nats-password, --nats-creds and the --nats-ca, --nats-cert, --nats-key of TLS are for --nats-url: the embedded NATS server takes none")
	}
	// NATS refuses the routes between two servers of one name, and says
	// so in its log: the node of a name another node has then never sees
	// JetStream (startCluster).
	natsLog := s.log.With().Str("component", "nats").Logger().Hook(zerolog.HookFunc(func(_ *zerolog.Event, _ zerolog.Level, msg string) {
		if strings.Contains(msg, "duplicate name") {
			s.duplicateName.Store(true)
		}
	}))
	opts := events.ServerOptions{
		Dir: filepath.Join(c.Data, "nats"), Listen: c.NatsListen, SyncAlways: f.syncAlways(),
		Logger: natsLog,
		Cluster: events.ClusterOptions{Name: f.ClusterName, ServerName: f.NodeName, Listen: f.ClusterListen,
			Routes: f.Peers, AllowRemote: f.ClusterAllowRemote},
	}
	if !opts.SyncAlways {
		opts.SyncInterval = embeddedSyncInterval
	}
	if len(f.Peers) == 0 {
		// A cluster of one node (--replicas 1): JetStream takes no NATS
		// cluster without routes, so the server runs alone.
		opts.Cluster = events.ClusterOptions{}
		s.log.Info().Msg("no --peers: a cluster of this node alone, whose embedded NATS server routes to none (--cluster-listen unused)")
	}
	srv, err := events.StartServer(opts)
	if err != nil {
		return fmt.Errorf("embedded NATS server: %w", err)
	}
	s.nats = srv
	s.natsTarget, s.natsURL = srv.ClientURL(), srv.ClientURL()
	s.log.Info().Str("nats_url", s.natsURL).Str("route", srv.RouteURL()).Strs("peers", f.Peers).
		Str("dir", filepath.Join(c.Data, "nats")).Msg("embedded NATS server listening, a server of the nodes' NATS cluster")
	return nil
}

// checkNodeName refuses a second node of a name that a running node has:
// the cluster's status holds a node.<name> key that its node renews every
// fraction of the lease. A key of another HTTP URL may be this node's own
// from before a crash: it is a running node's only if it is renewed while
// this one waits for it to expire.
func (s *server) checkNodeName(ctx context.Context, f *ClusterFlags, httpURL string) error {
	js, err := jetstream.New(s.nc)
	if err != nil {
		return err
	}
	kv, err := cluster.Patiently(ctx, func(ctx context.Context) (jetstream.KeyValue, error) {
		return js.KeyValue(ctx, cluster.LeaseBucket)
	})
	if err != nil {
		return fmt.Errorf("cluster: %w", err)
	}
	key := "node." + f.NodeName
	get := func(ctx context.Context) (jetstream.KeyValueEntry, error) { return kv.Get(ctx, key) }
	first, err := cluster.Patiently(ctx, get)
	if errors.Is(err, jetstream.ErrKeyNotFound) || errors.Is(err, jetstream.ErrKeyDeleted) {
		return nil // none: the name is free
	}
	if err != nil {
		return fmt.Errorf("cluster: the status of the nodes: %w", err)
	}
	var st struct {
		HTTPURL string `json:"http_url"`
	}
	if json.Unmarshal(first.Value(), &st) != nil || st.HTTPURL == httpURL {
		return nil
	}
	s.log.Info().Str("other", st.HTTPURL).Msg("the cluster knows a node of this name at another URL: waiting to see whether it runs")
	deadline := time.Now().Add(2 * f.LeaseTTL)
	for time.Now().Before(deadline) {
		sleepCtx(ctx, f.LeaseTTL/5)
		e, err := cluster.Patiently(ctx, get)
		if errors.Is(err, jetstream.ErrKeyNotFound) || errors.Is(err, jetstream.ErrKeyDeleted) {
			return nil // expired: it stopped
		}
		if err != nil {
			return fmt.Errorf("cluster: the status of the nodes: %w", err)
		}
		if e.Revision() != first.Revision() {
			return fmt.Errorf("--node-name %s: a running node of the cluster has that name (at %s): every node needs a name of its own",
				f.NodeName, st.HTTPURL)
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
	}
	return nil
}

// relayOptions are the events relay's options: as a single node's, with
// the events stream replicated as the log is. The embedded servers of a
// cluster sync before they acknowledge, so an acknowledged event leaves the
// outbox at once.
func (s *server) relayOptions(c *ServeCmd) events.RelayOptions {
	opts := events.RelayOptions{URL: s.natsTarget, Logger: s.log.With().Str("component", "relay").Logger(),
		MaxAge: c.StreamMaxAge, Replicas: c.Replicas}
	if c.NatsURL != "" {
		// The TLS files were read at the start (startCluster's connection):
		// one that cannot be read now leaves the relay unable to connect,
		// which the log and /readyz say.
		o, err := s.externalRelayOptions(c, opts)
		if err != nil {
			s.log.Error().Err(err).Msg("events relay: NATS TLS")
		}
		opts = o
	} else if !c.syncAlways() {
		// The servers sync every second: as a single node's relay, keep
		// the acknowledged events in the outbox past the next sync.
		opts.DeleteDelay = embeddedDeleteDelay
	}
	return opts
}

// onLead is called when the node starts leading: the relay starts, once
// the last term's has stopped and what the events stream holds is marked
// published; a new cluster is bootstrapped. It must not block: the node
// renews its lease on the goroutine that calls it.
func (s *server) onLead() {
	s.termMu.Lock()
	defer s.termMu.Unlock()
	if s.closing {
		return
	}
	ctx, cancel := context.WithCancel(context.Background())
	prev := s.relayDone
	done := make(chan struct{})
	s.stopRelay, s.relayDone = cancel, done
	go func() {
		defer close(done)
		if prev != nil {
			<-prev
		}
		mctx, mcancel := context.WithTimeout(ctx, 10*time.Second)
		seq, err := events.MarkPublished(mctx, s.js, "", s.ledger)
		mcancel()
		if err != nil && ctx.Err() == nil {
			// The relay republishes from the last mark; the stream drops
			// what it holds of that within its duplicate window.
			s.log.Warn().Err(err).Msg("reading the events stream's last event: the relay resumes from the last mark")
		}
		s.log.Info().Uint64("published", seq).Msg("leading: the events relay starts")
		go s.bootstrapCluster(ctx)
		if err := s.relay.Run(ctx); err != nil && ctx.Err() == nil {
			s.fail(fmt.Errorf("events relay: %w", err))
		}
	}()
}

// onFollow is called when the node stops leading: its relay stops (the
// next leader's publishes).
func (s *server) onFollow() {
	s.termMu.Lock()
	defer s.termMu.Unlock()
	if s.stopRelay != nil {
		s.stopRelay()
	}
}

// bootstrapCluster makes a new cluster's admin (and demo setup) on its
// first leader; a later leader finds the users there and makes nothing.
// A failure (the leader lost its lease midway) is logged: the next leader
// tries again.
func (s *server) bootstrapCluster(ctx context.Context) {
	if err := bootstrap(ctx, s.bootstrapConfig); err != nil && ctx.Err() == nil {
		s.log.Error().Err(err).Msg("bootstrap: the next leader tries again")
	}
}

// markInterval is how often a follower marks what the events stream holds
// as published, so that its outbox, and the journal it keeps for it, stay
// short.
const markInterval = 5 * time.Second

// markPublished marks, while the node follows, what the events stream
// holds as published in its outbox, every markInterval until Close.
func (s *server) markPublished() {
	t := time.NewTicker(markInterval)
	defer t.Stop()
	for {
		select {
		case <-s.stopFlush:
			return
		case <-t.C:
		}
		if s.node.Leading() {
			continue
		}
		ctx, cancel := context.WithTimeout(context.Background(), markInterval)
		if _, err := events.MarkPublished(ctx, s.js, "", s.ledger); err != nil {
			s.log.Debug().Err(err).Msg("marking the published events")
		}
		cancel()
	}
}

// clusterCheck is the "cluster" check of /readyz: the node takes writes,
// itself as the leader or forwarded to a leader it knows.
func (s *server) clusterCheck() error {
	if s.node.Leading() {
		return nil
	}
	if name, _ := s.node.Leader(); name != "" {
		return nil
	}
	return errors.New("no leader: writes answer 503 until one is elected")
}

// sleepCtx sleeps d or until ctx is done.
func sleepCtx(ctx context.Context, d time.Duration) {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
	case <-t.C:
	}
}

// forwardSecretKey is the key, in the cluster's info bucket, of the key
// its nodes prove a forwarded call with (api.ClusterOptions.Secret).
const forwardSecretKey = "forward.key"

// forwardSecret returns the cluster's forwarding key, made by the first
// node that asks. Whoever reaches the cluster's JetStream may read it, as
// they may append to the log: the cluster's NATS is its trust boundary.
func forwardSecret(ctx context.Context, js jetstream.JetStream) (string, error) {
	// Each request asked again while unanswered (cluster.Patiently): a
	// Create whose answer was lost is then refused (the key exists) and
	// the key read.
	kv, err := cluster.Patiently(ctx, func(ctx context.Context) (jetstream.KeyValue, error) {
		return js.KeyValue(ctx, cluster.InfoBucket)
	})
	if err != nil {
		return "", fmt.Errorf("cluster: %w", err)
	}
	key := newClusterID() + newClusterID()
	if _, err := cluster.Patiently(ctx, func(ctx context.Context) (uint64, error) {
		return kv.Create(ctx, forwardSecretKey, []byte(key))
	}); err == nil {
		return key, nil
	} else if !errors.Is(err, jetstream.ErrKeyExists) {
		return "", fmt.Errorf("cluster: the forwarding key: %w", err)
	}
	// Another node made it: a replica that has not caught up with its
	// making may answer a moment longer that there is none.
	for {
		e, err := cluster.Patiently(ctx, func(ctx context.Context) (jetstream.KeyValueEntry, error) {
			return kv.Get(ctx, forwardSecretKey)
		})
		if err == nil {
			return strings.TrimSpace(string(e.Value())), nil
		}
		if !errors.Is(err, jetstream.ErrKeyNotFound) || ctx.Err() != nil {
			return "", fmt.Errorf("cluster: the forwarding key: %w", err)
		}
		sleepCtx(ctx, 100*time.Millisecond)
	}
}

// clusterRoots are the certificate authorities of --cluster-ca, nil
// without it (the system's roots).
func (f *ClusterFlags) clusterRoots() (*x509.CertPool, error) {
	if f.ClusterCA == "" {
		return nil, nil
	}
	data, err := os.ReadFile(f.ClusterCA)
	if err != nil {
		return nil, fmt.Errorf("--cluster-ca: %w", err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(data) {
		return nil, fmt.Errorf("--cluster-ca %s: no PEM certificate in it", f.ClusterCA)
	}
	return pool, nil
}

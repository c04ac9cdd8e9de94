package api

import (
	"context"
	"crypto/subtle"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	stdlog "log"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/quotaledger/quotaledger/api/wire"
	"github.com/quotaledger/quotaledger/cluster"
	"github.com/quotaledger/quotaledger/ledger"
)

// A node of a cluster (DESIGN §11) answers every call: reads from its own
// state, writes (Route.Writes) itself while it leads, and by forwarding
// them to the leader while it follows, relaying the leader's answer as it
// is. A forwarded call carries HeaderForwarded: a node that does not lead
// answers such a call 503 rather than forward it again (the leader changed
// on the way), and so does a follower that knows no leader. Every answer of
// a node carries its applied log sequence in HeaderApplied (a forwarded
// write, the leader's, which holds the write): a client that reads on
// another node may wait until that node's header reaches it to read its
// own writes.
//
// The leader counts the attempts of logins and password resets against
// the client's address, which a forwarded call carries in X-Forwarded-For;
// it believes that header only on a call that carries the cluster's
// forwarding key as well (ClusterOptions.Secret), so that a client cannot
// pick the address it is counted against.

// The headers of a cluster's calls.
const (
	// HeaderApplied is the node's applied log sequence, on every answer.
	HeaderApplied = "X-Quotaledger-Applied"
	// HeaderForwarded marks a call a follower forwarded to the leader: the
	// follower's name.
	HeaderForwarded = "X-Quotaledger-Forwarded"
	// headerForwardKey proves a forwarded call came from a node.
	headerForwardKey = "X-Quotaledger-Forward-Key"
)

// ClusterOptions make the server a node of a cluster. With a nil Node the
// server is a single node: it answers every call itself and GET cluster
// lists it alone, named Name, with the role "single".
type ClusterOptions struct {
	// Node is this node of the cluster (cluster.Start).
	Node *cluster.Node
	// Name is the node's name, as the cluster knows it.
	Name string
	// HTTPURL is where this node's API answers (a single node's GET
	// cluster shows it).
	HTTPURL string
	// Secret is the cluster's forwarding key, the same on every node: the
	// leader believes the client address of a forwarded call that carries
	// it. Empty: no forwarded call is believed.
	Secret string
	// ForwardTimeout bounds the wait for the leader's answer to a
	// forwarded call (15s); a call that times out answers 503, its outcome
	// unknown.
	ForwardTimeout time.Duration
	// Transport carries the forwarded calls (nil: one of the server's own,
	// keeping connections to the leader open).
	Transport http.RoundTripper
	// RootCAs are the certificate authorities a leader's https:// HTTPURL
	// is checked against by the server's own Transport (nil: the system's
	// roots).
	RootCAs *x509.CertPool
}

// Roles of a node, as GET cluster shows them.
const (
	RoleLeader   = "leader"
	RoleFollower = "follower"
	RoleSingle   = "single"
)

// Outcomes of a forwarded call (quotaledger_cluster_forwarded_total).
const (
	forwardAnswered    = "answered"       // the leader answered (whatever it answered)
	forwardUnreachable = "unreachable"    // the leader did not answer
	forwardNoLeader    = "no_leader"      // no leader known: 503 here
	forwardLoop        = "loop"           // a forwarded call on a node that does not lead: 503 here
	forwardMoved       = "leader_changed" // another took the lease while the leader had not answered: 503 here
)

// errLeaderMoved is the cause of a forwarded call given up because the
// lease changed hands while it waited for the leader's answer.
var errLeaderMoved = errors.New("the leader changed while the call waited for its answer")

// leaderMovedFault answers a forwarded call given up for errLeaderMoved.
func leaderMovedFault(leader string) *Fault {
	return &Fault{Kind: "serviceUnavailable", Code: http.StatusServiceUnavailable, RetryAfter: retryAfterLeader,
		Message: fmt.Sprintf("the leader changed while the call forwarded to it (%s) waited for its answer; if it reached it, its outcome is unknown: retry it (an issue with the same idempotency key)", leader)}
}

// watchLeader is ctx, canceled with errLeaderMoved once moved is closed
// (LeaderWatch), until stop is called: a call forwarded to a leader that
// lost its lease (cut off, paused) is given up once another leads, rather
// than after ForwardTimeout.
func watchLeader(ctx context.Context, moved <-chan struct{}) (_ context.Context, stop func()) {
	ctx, cancel := context.WithCancelCause(ctx)
	done := make(chan struct{})
	go func() {
		select {
		case <-moved:
			cancel(errLeaderMoved)
		case <-done:
		case <-ctx.Done():
		}
	}()
	var once sync.Once
	return ctx, func() { once.Do(func() { close(done) }) }
}

// clusterNode is a server's part of a cluster: the forwarding of writes,
// the applied header, and the cluster's metrics.
type clusterNode struct {
	s         *Server
	opts      ClusterOptions
	proxy     *httputil.ReverseProxy
	forwarded map[string]prometheus.Counter // by outcome
}

// forwardTo is the context key of a forwarded call's target and request id.
type forwardTo struct{}

type forwardTarget struct {
	leader    *url.URL
	requestID string
	answered  func() // the leader's answer came: it is relayed whatever happens to the lease
}

// newClusterNode makes the cluster part of s, registering its metrics on
// reg.
func newClusterNode(s *Server, opts ClusterOptions, reg prometheus.Registerer) (*clusterNode, error) {
	if opts.ForwardTimeout <= 0 {
		opts.ForwardTimeout = 15 * time.Second
	}
	cn := &clusterNode{s: s, opts: opts, forwarded: map[string]prometheus.Counter{}}
	tr := opts.Transport
	if tr == nil {
		tr = &http.Transport{
			DialContext:           (&net.Dialer{Timeout: 5 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
			MaxIdleConns:          256,
			MaxIdleConnsPerHost:   256,
			IdleConnTimeout:       90 * time.Second,
			ResponseHeaderTimeout: opts.ForwardTimeout,
			TLSClientConfig:       &tls.Config{RootCAs: opts.RootCAs, MinVersion: tls.VersionTLS12},
		}
	}
	cn.proxy = &httputil.ReverseProxy{
		Transport: tr,
		Rewrite: func(pr *httputil.ProxyRequest) {
			t := pr.In.Context().Value(forwardTo{}).(forwardTarget)
			pr.SetURL(t.leader)
			pr.Out.Host = pr.In.Host // the leader answers as to the host the client called
			pr.SetXForwarded()
			pr.Out.Header.Set(HeaderForwarded, opts.Name)
			pr.Out.Header.Del(headerForwardKey)
			if opts.Secret != "" {
				pr.Out.Header.Set(headerForwardKey, opts.Secret)
			}
			pr.Out.Header.Set("X-Request-Id", t.requestID)
		},
		ModifyResponse: func(resp *http.Response) error {
			resp.Request.Context().Value(forwardTo{}).(forwardTarget).answered()
			cn.forwarded[forwardAnswered].Inc()
			return nil
		},
		ErrorHandler: func(w http.ResponseWriter, r *http.Request, err error) {
			t := r.Context().Value(forwardTo{}).(forwardTarget)
			w.Header().Set("X-Request-Id", t.requestID)
			if errors.Is(context.Cause(r.Context()), errLeaderMoved) {
				cn.forwarded[forwardMoved].Inc()
				s.log.Warn().Err(errLeaderMoved).Str("leader", t.leader.String()).Str("request_id", t.requestID).Msg("forwarding a write to the leader")
				writeFault(w, leaderMovedFault(t.leader.String()))
				return
			}
			cn.forwarded[forwardUnreachable].Inc()
			s.log.Warn().Err(err).Str("leader", t.leader.String()).Str("request_id", t.requestID).Msg("forwarding a write to the leader")
			writeFault(w, &Fault{Kind: "serviceUnavailable", Code: http.StatusServiceUnavailable, RetryAfter: retryAfterLeader,
				Message: "the leader did not answer the forwarded call; if it reached the leader its outcome is unknown: retry it (an issue with the same idempotency key)"})
		},
		// What the proxy says besides (a body cut while copied) goes to the log.
		ErrorLog: stdlog.New(s.log.With().Str("component", "forward").Logger(), "", 0),
	}
	outcomes := prometheus.NewCounterVec(prometheus.CounterOpts{
		Namespace: "quotaledger", Subsystem: "cluster", Name: "forwarded_total",
		Help: "Writes that reached this node while it followed, by outcome: answered (by the leader, whatever it answered), unreachable (the leader did not answer: 503), leader_changed (another took the lease before the leader answered: 503), no_leader (none known: 503), loop (a call already forwarded, on a node that does not lead: 503).",
	}, []string{"outcome"})
	for _, o := range []string{forwardAnswered, forwardUnreachable, forwardMoved, forwardNoLeader, forwardLoop} {
		cn.forwarded[o] = outcomes.WithLabelValues(o)
	}
	for _, c := range []prometheus.Collector{outcomes, clusterCollector{cn}} {
		if err := reg.Register(c); err != nil {
			return nil, err
		}
	}
	return cn, nil
}

// wrap makes w add the node's applied sequence to the answer.
func (cn *clusterNode) wrap(w http.ResponseWriter) http.ResponseWriter {
	return &appliedWriter{ResponseWriter: w, l: cn.s.l, start: cn.s.l.Applied()}
}

// route takes a write on a node that does not lead: it forwards it to the
// leader or refuses it, and reports true; on the leader it reports false
// (the server answers the call), having taken the client's address of a
// call forwarded by a node.
func (cn *clusterNode) route(w http.ResponseWriter, r *http.Request) bool {
	forwarded := r.Header.Get(HeaderForwarded) != ""
	if cn.opts.Node.Leading() {
		markWrite(w)
		if forwarded && cn.fromNode(r) {
			xff := r.Header.Get("X-Forwarded-For")
			if i := strings.LastIndexByte(xff, ','); i >= 0 {
				xff = xff[i+1:]
			}
			if ip := net.ParseIP(strings.TrimSpace(xff)); ip != nil {
				r.RemoteAddr = net.JoinHostPort(ip.String(), "0")
			}
		}
		return false
	}
	if forwarded {
		cn.forwarded[forwardLoop].Inc()
		writeFault(w, &Fault{Kind: "serviceUnavailable", Code: http.StatusServiceUnavailable, RetryAfter: retryAfterLeader,
			Message: "a call forwarded to the leader reached a node that does not lead (the leader changed): retry it"})
		return true
	}
	_, leader, moved := cn.opts.Node.LeaderWatch()
	target, err := url.Parse(leader)
	if leader == "" || err != nil || target.Host == "" {
		cn.forwarded[forwardNoLeader].Inc()
		writeFault(w, &Fault{Kind: "serviceUnavailable", Code: http.StatusServiceUnavailable, RetryAfter: retryAfterLeader,
			Message: "the cluster has no leader at the moment (one is being elected): retry"})
		return true
	}
	// The request id goes with the call, and comes back with the leader's
	// answer, which is relayed whole.
	h := w.Header()
	id := h.Get("X-Request-Id")
	h.Del("X-Request-Id")
	ctx, answered := watchLeader(r.Context(), moved)
	defer answered()
	ctx = context.WithValue(ctx, forwardTo{}, forwardTarget{leader: target, requestID: id, answered: answered})
	cn.proxy.ServeHTTP(w, r.WithContext(ctx))
	return true
}

// fromNode reports whether r carries the cluster's forwarding key.
func (cn *clusterNode) fromNode(r *http.Request) bool {
	key := r.Header.Get(headerForwardKey)
	return cn.opts.Secret != "" && subtle.ConstantTimeCompare([]byte(key), []byte(cn.opts.Secret)) == 1
}

// appliedWriter adds HeaderApplied to an answer that has none (a forwarded
// answer has the leader's). A read's answer shows at least the state of
// the sequence applied when the call came (the ledger only moves on), not
// necessarily of the one when it is written; a write's shows its own
// write, held by the sequence applied once it is answered.
type appliedWriter struct {
	http.ResponseWriter
	l     *ledger.Ledger
	start uint64 // applied when the call came
	write bool   // a write answered here (markWrite)
	wrote bool
}

func (w *appliedWriter) WriteHeader(code int) {
	if !w.wrote {
		w.wrote = true
		if h := w.ResponseWriter.Header(); h.Get(HeaderApplied) == "" {
			seq := w.start
			if w.write {
				seq = w.l.Applied()
			}
			h.Set(HeaderApplied, strconv.FormatUint(seq, 10))
		}
	}
	w.ResponseWriter.WriteHeader(code)
}

// markWrite tells the appliedWriter under w that it answers a write.
func markWrite(w http.ResponseWriter) {
	for w != nil {
		if aw, ok := w.(*appliedWriter); ok {
			aw.write = true
			return
		}
		u, ok := w.(interface{ Unwrap() http.ResponseWriter })
		if !ok {
			return
		}
		w = u.Unwrap()
	}
}

func (w *appliedWriter) Write(b []byte) (int, error) {
	if !w.wrote {
		w.WriteHeader(http.StatusOK)
	}
	return w.ResponseWriter.Write(b)
}

// Unwrap lets http.ResponseController reach the connection.
func (w *appliedWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// clusterStatus answers GET cluster.
func (s *Server) clusterStatus(c *call) error {
	opts := s.opts.Cluster
	if opts.Node == nil {
		seq, digest := s.l.Digest()
		return c.json(http.StatusOK, wire.Cluster{Node: opts.Name, Leader: opts.Name, Nodes: []wire.ClusterNode{{
			Name: opts.Name, Role: RoleSingle, HTTPURL: opts.HTTPURL, Applied: s.l.Applied(),
			LastContact: wire.TimeOf(time.Now().UTC()), Digest: digest, DigestSeq: seq,
		}}})
	}
	ctx, cancel := context.WithTimeout(c.r.Context(), 5*time.Second)
	defer cancel()
	st, err := opts.Node.Status(ctx)
	if err != nil {
		return &Fault{Kind: "serviceUnavailable", Code: http.StatusServiceUnavailable, RetryAfter: retryAfterLeader,
			Message: fmt.Sprintf("the cluster's status cannot be read: %v", err)}
	}
	leader, _ := opts.Node.Leader()
	out := wire.Cluster{Node: opts.Name, Leader: leader, Nodes: make([]wire.ClusterNode, 0, len(st))}
	for _, n := range st {
		out.Nodes = append(out.Nodes, wire.ClusterNode{Name: n.Name, Role: n.Role, HTTPURL: n.HTTPURL,
			Applied: n.Applied, Lag: n.Lag, LastContact: wire.TimeOf(n.LastContact), Digest: n.Digest, DigestSeq: n.DigestSeq})
	}
	return c.json(http.StatusOK, out)
}

var (
	descClusterLeader = prometheus.NewDesc("quotaledger_cluster_leader",
		"1 while this node leads its cluster (takes the writes), 0 while it follows.", nil, nil)
	descClusterApplied = prometheus.NewDesc("quotaledger_cluster_applied",
		"The last log record (journal sequence) this node applied.", nil, nil)
	descClusterLag = prometheus.NewDesc("quotaledger_cluster_lag",
		"How many log records this node is behind the leader, as the cluster's status last showed (absent when it cannot be read).", nil, nil)
	descClusterLeaseChanges = prometheus.NewDesc("quotaledger_cluster_lease_changes_total",
		"Times this node saw the cluster's lease change hands (a new leader, or none).", nil, nil)
)

// clusterCollector reads a node's role, applied sequence, lag and lease
// changes at scrape time.
type clusterCollector struct{ cn *clusterNode }

func (c clusterCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- descClusterLeader
	ch <- descClusterApplied
	ch <- descClusterLag
	ch <- descClusterLeaseChanges
}

func (c clusterCollector) Collect(ch chan<- prometheus.Metric) {
	n := c.cn.opts.Node
	leading := 0.0
	if n.Leading() {
		leading = 1
	}
	ch <- prometheus.MustNewConstMetric(descClusterLeader, prometheus.GaugeValue, leading)
	ch <- prometheus.MustNewConstMetric(descClusterApplied, prometheus.GaugeValue, float64(c.cn.s.l.Applied()))
	ch <- prometheus.MustNewConstMetric(descClusterLeaseChanges, prometheus.CounterValue, float64(n.LeaseChanges()))
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	if st, err := n.Status(ctx); err == nil {
		for _, s := range st {
			if s.Name == c.cn.opts.Name {
				ch <- prometheus.MustNewConstMetric(descClusterLag, prometheus.GaugeValue, float64(s.Lag))
			}
		}
	}
}

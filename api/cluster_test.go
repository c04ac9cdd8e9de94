package api

import (
	"context"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/micro"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/rs/zerolog"

	"github.com/quotaledger/quotaledger/api/wire"
	"github.com/quotaledger/quotaledger/cluster"
	"github.com/quotaledger/quotaledger/events"
	"github.com/quotaledger/quotaledger/holdings"
	"github.com/quotaledger/quotaledger/identity"
	"github.com/quotaledger/quotaledger/internal/testkit"
	"github.com/quotaledger/quotaledger/internal/testkit/identitytest"
	"github.com/quotaledger/quotaledger/ledger"
)

// TestWritesRule holds Route.Writes, the rule by which a follower forwards
// a call to the leader, to a list written by hand: the calls that are not
// GETs but only read. (TestAccess holds it to what every call did.)
func TestWritesRule(t *testing.T) {
	e := newEnv(t)
	var reads []string
	for _, rt := range e.api.Routes() {
		key := rt.Method + " " + rt.Path
		if rt.Method == http.MethodGet && rt.Writes() {
			t.Errorf("%s: a GET that writes", key)
		}
		if rt.Method != http.MethodGet && !rt.Writes() {
			reads = append(reads, key)
		}
	}
	sort.Strings(reads)
	want := []string{
		"POST /account/v1.0/service/user_catalogs",
		"POST /account/v1.0/user_catalogs",
		"POST /astakos/api/service/user_catalogs",
		"POST /astakos/api/tokens",
		"POST /astakos/api/user_catalogs",
		"POST /identity/v2.0/tokens",
	}
	if !slices.Equal(reads, want) {
		t.Errorf("the calls other than GETs that do not write:\n%q\nwant\n%q", reads, want)
	}
	for _, w := range []string{"POST /account/v1.0/auth/login", "POST /account/v1.0/auth/register",
		"POST /account/v1.0/auth/logout", "POST /account/v1.0/auth/password/change",
		"POST /account/v1.0/auth/password/reset", "POST /account/v1.0/auth/password/reset/confirm",
		"POST /account/v1.0/commissions", "POST /astakos/api/commissions/{serial}/action",
		"POST /account/v1.0/feedback", "DELETE /account/v1.0/holdings"} {
		i := slices.IndexFunc(e.api.Routes(), func(rt Route) bool { return rt.Method+" "+rt.Path == w })
		if i < 0 {
			t.Errorf("no route %s", w)
		} else if rt := e.api.Routes()[i]; !rt.Writes() {
			t.Errorf("%s: not a write", w)
		}
	}

	// The password reset of a user that exists writes (TestAccess asks for
	// one that does not).
	applied := e.l.Applied()
	if st, out := e.do("POST", "/account/v1.0/auth/password/reset", "", map[string]any{"username": e.userRec.Username}); st != http.StatusAccepted {
		t.Fatalf("password reset: %d %v", st, out)
	}
	if e.l.Applied() == applied {
		t.Fatal("the password reset of a user wrote nothing")
	}
}

// TestNotLeader: a write that reaches a ledger that does not lead (a node
// of a cluster whose leadership changed under the call) answers 503 with
// Retry-After, and so do the other errors of a change of leader; reads
// answer as ever.
func TestNotLeader(t *testing.T) {
	e := newEnv(t)
	if err := e.l.StepDown(); err != nil {
		t.Fatal(err)
	}
	st, h, raw := e.send("POST", "/account/v1.0/commissions", map[string]string{"X-Auth-Token": e.service},
		[]byte(`{"provisions":[]}`))
	var out map[string]map[string]any
	if err := json.Unmarshal(raw, &out); err != nil || st != http.StatusServiceUnavailable || h.Get("Retry-After") != "1" ||
		out["serviceUnavailable"]["message"] != ledger.ErrNotLeader.Error() {
		t.Fatalf("an issue on a ledger that does not lead: %d Retry-After %q %s", st, h.Get("Retry-After"), raw)
	}
	if st, _ := e.do("GET", "/account/v1.0/quotas", e.user, nil); st != http.StatusOK {
		t.Fatalf("a read on a ledger that does not lead: %d", st)
	}
	for _, err := range []error{ledger.ErrNotLeader, ledger.ErrDeposed, ledger.ErrBusy} {
		if f := faultOf(err); f.Code != http.StatusServiceUnavailable || f.RetryAfter != retryAfterLeader {
			t.Errorf("%v: %d, Retry-After %d", err, f.Code, f.RetryAfter)
		}
	}
	for _, err := range []error{ledger.ErrFailed, ledger.ErrClosed, ledger.ErrOutcomeUnknown} {
		if f := faultOf(err); f.RetryAfter != 0 {
			t.Errorf("%v: Retry-After %d, want none (not a change of leader)", err, f.RetryAfter)
		}
	}
}

// testNode is a node of a cluster in this process: a ledger on an
// in-memory filesystem, its identity store, a cluster.Node, and the API on
// a real HTTP server.
type testNode struct {
	name string
	l    *ledger.Ledger
	id   *identity.Store
	node *cluster.Node
	api  *Server
	srv  *httptest.Server
	reg  *prometheus.Registry
	// hang makes the node's HTTP server answer nothing (a node cut off):
	// each call waits until its client gives up; hung counts them.
	hang atomic.Bool
	hung atomic.Int64
}

// testSecret is the forwarding key of the test clusters.
const testSecret = "the-cluster-forwarding-key-of-the-test"

// startCluster starts n nodes over one NATS server (as nodes sharing an
// external NATS do), the log with one replica, a lease of leaseTTL.
func startCluster(t *testing.T, n int, leaseTTL time.Duration) []*testNode {
	t.Helper()
	return startClusterOf(t, n, leaseTTL, nil)
}

// httpsNodes makes startClusterOf's nodes serve https (httptest's
// certificate), forwarding with roots as their ClusterOptions.RootCAs.
type httpsNodes struct{ roots *x509.CertPool }

// startClusterOf is startCluster, its nodes serving https when tls is
// not nil, each node's ClusterOptions set by with.
func startClusterOf(t *testing.T, n int, leaseTTL time.Duration, tls *httpsNodes, with ...func(*ClusterOptions)) []*testNode {
	t.Helper()
	scheme := "http://"
	if tls != nil {
		scheme = "https://"
	}
	ns, err := events.StartServer(events.ServerOptions{Dir: t.TempDir(), Listen: "127.0.0.1:-1", SyncAlways: true, Logger: zerolog.Nop()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(ns.Shutdown)
	ctx := context.Background()
	var nodes []*testNode
	for i := range n {
		tn := &testNode{name: fmt.Sprintf("n%d", i+1), reg: prometheus.NewRegistry()}
		nc, err := nats.Connect(ns.ClientURL())
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(nc.Close)
		tn.srv = httptest.NewUnstartedServer(nil)
		opts := cluster.Options{Name: tn.name, Conn: nc, Replicas: 1, LeaseTTL: leaseTTL, Logger: zerolog.Nop(),
			HTTPURL: scheme + tn.srv.Listener.Addr().String()}
		var cid string
		testkit.CheckFor(t, testkit.Patience, 50*time.Millisecond, func() error {
			cid, err = cluster.Setup(ctx, opts, "cluster-of-"+tn.name)
			return err
		})
		tn.l, tn.id = openStores(t, ledger.Options{Follower: true, ID: cid}, zerolog.Nop(), tn.reg)
		if tn.node, err = cluster.Start(ctx, tn.l, opts); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = tn.node.Close() }) // before the ledger closes
		copts := ClusterOptions{Node: tn.node, Name: tn.name, HTTPURL: opts.HTTPURL, Secret: testSecret}
		if tls != nil {
			copts.RootCAs = tls.roots
		}
		for _, f := range with {
			f(&copts)
		}
		tn.api = New(tn.l, tn.id, Options{Logger: zerolog.Nop(), Metrics: tn.reg, Cluster: copts})
		tn.srv.Config.Handler = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if tn.hang.Load() {
				// The body read, the server notices the client go.
				_, _ = io.Copy(io.Discard, r.Body)
				tn.hung.Add(1)
				<-r.Context().Done()
				return
			}
			tn.api.ServeHTTP(w, r)
		})
		if tls != nil {
			tn.srv.StartTLS()
		} else {
			tn.srv.Start()
		}
		t.Cleanup(tn.srv.Close)
		nodes = append(nodes, tn)
	}
	return nodes
}

// leaderOf waits for one node to lead and returns it and the others.
func leaderOf(t *testing.T, nodes []*testNode) (*testNode, []*testNode) {
	t.Helper()
	var leader *testNode
	var rest []*testNode
	testkit.CheckFor(t, testkit.Patience, 20*time.Millisecond, func() error {
		leader, rest = nil, nil
		for _, tn := range nodes {
			if tn.node.Leading() {
				leader = tn
			} else {
				rest = append(rest, tn)
			}
		}
		if leader == nil {
			return errors.New("no leader")
		}
		// The followers know it, to forward to it.
		for _, tn := range rest {
			if name, _ := tn.node.Leader(); name != leader.name {
				return fmt.Errorf("%s sees %q lead, not %s", tn.name, name, leader.name)
			}
		}
		return nil
	})
	return leader, rest
}

// caughtUp waits until tn has applied seq.
func caughtUp(t *testing.T, tn *testNode, seq uint64) {
	t.Helper()
	testkit.CheckFor(t, testkit.Patience, 10*time.Millisecond, func() error {
		if a := tn.l.Applied(); a < seq {
			return fmt.Errorf("%s applied %d of %d", tn.name, a, seq)
		}
		return nil
	})
}

// clusterCall makes a call of a node through client (nil: the default),
// with headers; it returns the status, the headers and the body.
func clusterCall(t *testing.T, client *http.Client, method, url string, headers map[string]string, body string) (int, http.Header, []byte) {
	t.Helper()
	req, err := http.NewRequest(method, url, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	for k, v := range headers {
		req.Header.Set(k, v)
	}
	if client == nil {
		client = http.DefaultClient
	}
	resp, err := client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, resp.Header, raw
}

// appliedOf reads HeaderApplied of an answer.
func appliedOf(t *testing.T, h http.Header) uint64 {
	t.Helper()
	v := h.Values(HeaderApplied)
	if len(v) != 1 {
		t.Fatalf("%s: %q, want one value", HeaderApplied, v)
	}
	n, err := strconv.ParseUint(v[0], 10, 64)
	if err != nil {
		t.Fatalf("%s: %q", HeaderApplied, v[0])
	}
	return n
}

// counterOf reads a counter or gauge of reg with the labels given.
func counterOf(t *testing.T, reg *prometheus.Registry, name string, labels map[string]string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
	next:
		for _, m := range mf.GetMetric() {
			for _, lp := range m.GetLabel() {
				if labels[lp.GetName()] != lp.GetValue() {
					continue next
				}
			}
			if c := m.GetCounter(); c != nil {
				return c.GetValue()
			}
			return m.GetGauge().GetValue()
		}
	}
	t.Fatalf("no metric %s %v", name, labels)
	return 0
}

// fromAddr is a client whose calls come from the loopback address ip.
func fromAddr(ip string) *http.Client {
	d := &net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(ip)}}
	return &http.Client{Transport: &http.Transport{DialContext: d.DialContext}}
}

// TestClusterForwarding runs two nodes: a write on the follower is
// forwarded to the leader and answered as the leader answers, with the
// leader's applied sequence, by which a read on the follower finds it; a
// call already forwarded is not forwarded again; GET cluster lists both;
// the leader counts attempts against the address of the client that
// called the follower, and believes a forwarded address only with the
// cluster's key.
func TestClusterForwarding(t *testing.T) {
	nodes := startCluster(t, 2, time.Second)
	leader, rest := leaderOf(t, nodes)
	follower := rest[0]
	p := identitytest.AddPrincipals(t, leader.id)
	caughtUp(t, follower, leader.l.Applied())
	svc := map[string]string{"X-Auth-Token": p.ServiceToken, "X-Request-Id": "forwarded-issue"}

	// A write on the follower: the leader's answer, with its applied
	// sequence and the request id.
	st, h, raw := clusterCall(t, nil, "POST", follower.srv.URL+"/account/v1.0/commissions", svc, `{"provisions":[],"name":"via the follower"}`)
	var issued wire.Issued
	if err := json.Unmarshal(raw, &issued); st != http.StatusCreated || err != nil || issued.Serial == 0 {
		t.Fatalf("an issue on the follower: %d %s", st, raw)
	}
	if ids := h.Values("X-Request-Id"); len(ids) != 1 || ids[0] != "forwarded-issue" {
		t.Fatalf("X-Request-Id of the forwarded answer: %q", ids)
	}
	wrote := appliedOf(t, h)
	if wrote > leader.l.Applied() || wrote == 0 {
		t.Fatalf("the forwarded answer says applied %d; the leader is at %d", wrote, leader.l.Applied())
	}
	if got := counterOf(t, follower.reg, "quotaledger_cluster_forwarded_total", map[string]string{"outcome": "answered"}); got != 1 {
		t.Fatalf("forwarded answered: %v, want 1", got)
	}
	// A read on the follower once its header says it holds the write.
	testkit.CheckFor(t, testkit.Patience, 10*time.Millisecond, func() error {
		st, h, raw := clusterCall(t, nil, "GET", follower.srv.URL+"/account/v1.0/commissions", svc, "")
		if st != http.StatusOK {
			t.Fatalf("pending on the follower: %d %s", st, raw)
		}
		if appliedOf(t, h) < wrote {
			return fmt.Errorf("the follower is at %d, the write at %d", appliedOf(t, h), wrote)
		}
		if !strings.Contains(string(raw), strconv.FormatInt(issued.Serial, 10)) {
			t.Fatalf("the follower, at %d, does not show serial %d: %s", appliedOf(t, h), issued.Serial, raw)
		}
		return nil
	})
	// A write on the leader carries the sequence that holds it.
	before := leader.l.Applied()
	st, h, raw = clusterCall(t, nil, "POST", leader.srv.URL+"/account/v1.0/commissions", svc, `{"provisions":[],"name":"on the leader"}`)
	if st != http.StatusCreated || appliedOf(t, h) <= before {
		t.Fatalf("an issue on the leader at %d: %d, applied %d: %s", before, st, appliedOf(t, h), raw)
	}
	// A read on the leader carries its own sequence.
	if _, h, _ := clusterCall(t, nil, "GET", leader.srv.URL+"/healthz", nil, ""); appliedOf(t, h) != leader.l.Applied() {
		t.Fatalf("the leader's /healthz says applied %d, the leader is at %d", appliedOf(t, h), leader.l.Applied())
	}

	// A forwarded write on a node that does not lead.
	loop := map[string]string{"X-Auth-Token": p.ServiceToken, HeaderForwarded: "n9"}
	st, h, raw = clusterCall(t, nil, "POST", follower.srv.URL+"/account/v1.0/commissions", loop, `{"provisions":[]}`)
	if st != http.StatusServiceUnavailable || h.Get("Retry-After") != "1" || !strings.Contains(string(raw), "serviceUnavailable") {
		t.Fatalf("a forwarded write on the follower: %d Retry-After %q %s", st, h.Get("Retry-After"), raw)
	}
	if got := counterOf(t, follower.reg, "quotaledger_cluster_forwarded_total", map[string]string{"outcome": "loop"}); got != 1 {
		t.Fatalf("forwarded loop: %v, want 1", got)
	}

	// GET cluster, on the follower.
	var cl wire.Cluster
	testkit.CheckFor(t, testkit.Patience, 50*time.Millisecond, func() error {
		st, _, raw := clusterCall(t, nil, "GET", follower.srv.URL+"/account/v1.0/cluster", map[string]string{"X-Auth-Token": p.AdminToken}, "")
		if st != http.StatusOK {
			t.Fatalf("GET cluster: %d %s", st, raw)
		}
		cl = wire.Cluster{}
		if err := json.Unmarshal(raw, &cl); err != nil {
			t.Fatal(err)
		}
		if len(cl.Nodes) != 2 {
			return fmt.Errorf("GET cluster: %s", raw)
		}
		return nil
	})
	if cl.Node != follower.name || cl.Leader != leader.name || cl.Nodes[0].Name != leader.name || cl.Nodes[0].Role != RoleLeader ||
		cl.Nodes[1].Name != follower.name || cl.Nodes[1].Role != RoleFollower || cl.Nodes[1].HTTPURL != follower.srv.URL ||
		cl.Nodes[0].Digest == "" || cl.Nodes[0].LastContact.IsZero() {
		t.Fatalf("GET cluster: %+v", cl)
	}
	if got := counterOf(t, follower.reg, "quotaledger_cluster_leader", nil); got != 0 {
		t.Fatalf("the follower's quotaledger_cluster_leader: %v", got)
	}
	if got := counterOf(t, leader.reg, "quotaledger_cluster_leader", nil); got != 1 {
		t.Fatalf("the leader's quotaledger_cluster_leader: %v", got)
	}

	// Password resets through the follower count against the client's
	// address: one client spends its address' budget, another still may.
	reset := func(client *http.Client, base string, headers map[string]string, i int) int {
		st, _, _ := clusterCall(t, client, "POST", base+"/account/v1.0/auth/password/reset", headers,
			fmt.Sprintf(`{"username":"nobody%d@example.com"}`, i))
		return st
	}
	spender, other := fromAddr("127.0.0.2"), fromAddr("127.0.0.3")
	for i := range restResetLimit.perAddr {
		if st := reset(spender, follower.srv.URL, nil, i); st != http.StatusAccepted {
			t.Fatalf("reset %d through the follower: %d", i, st)
		}
	}
	if st := reset(spender, follower.srv.URL, nil, 100); st != http.StatusTooManyRequests {
		t.Fatalf("a reset past the address' budget: %d, want 429", st)
	}
	if st := reset(other, follower.srv.URL, nil, 101); st != http.StatusAccepted {
		t.Fatalf("a reset from another address through the same follower: %d, want 202", st)
	}
	// Called on the leader directly, the spent client cannot say it is
	// another without the key; with it, it is believed.
	spoof := map[string]string{HeaderForwarded: "n9", "X-Forwarded-For": "127.0.0.9", headerForwardKey: "a guess"}
	if st := reset(spender, leader.srv.URL, spoof, 102); st != http.StatusTooManyRequests {
		t.Fatalf("a reset that claims another address without the key: %d, want 429", st)
	}
	spoof[headerForwardKey] = testSecret
	if st := reset(spender, leader.srv.URL, spoof, 103); st != http.StatusAccepted {
		t.Fatalf("a reset forwarded with the key: %d, want 202", st)
	}
}

// TestClusterForwardLeaderMoved: a write forwarded to a leader that
// answers nothing (cut off), over HTTP and over NATS, is given up once the follower sees the lease
// leave it (gone, or taken by another): 503 with Retry-After, its outcome
// unknown, counted leader_changed; not when the forward times out (a
// minute here).
func TestClusterForwardLeaderMoved(t *testing.T) {
	nodes := startClusterOf(t, 3, time.Second, nil, func(o *ClusterOptions) { o.ForwardTimeout = time.Minute })
	leader, rest := leaderOf(t, nodes)
	p := identitytest.AddPrincipals(t, leader.id)
	follower := rest[0]
	caughtUp(t, follower, leader.l.Applied())
	const prefix = "follower.v1"
	nc := serveNATSOn(t, follower, startNATS(t).ClientURL(), prefix)

	leader.hang.Store(true)
	overNATS := make(chan *nats.Msg, 1)
	go func() {
		m, err := nc.RequestMsg(&nats.Msg{Subject: wire.NATSIssue.Subject(prefix, ""), Header: nats.Header{wire.TokenHeader: {p.ServiceToken}},
			Data: []byte(`{"provisions":[],"name":"over NATS to a leader cut off"}`)}, 2*time.Minute)
		if err != nil {
			m = &nats.Msg{Data: []byte(err.Error())}
		}
		overNATS <- m
	}()
	type answer struct {
		status int
		header http.Header
		body   string
		err    error
	}
	answers := make(chan answer, 1)
	go func() {
		req, _ := http.NewRequest("POST", follower.srv.URL+"/account/v1.0/commissions", strings.NewReader(`{"provisions":[],"name":"to a leader cut off"}`))
		req.Header.Set("X-Auth-Token", p.ServiceToken)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			answers <- answer{err: err}
			return
		}
		defer resp.Body.Close()
		raw, err := io.ReadAll(resp.Body)
		answers <- answer{resp.StatusCode, resp.Header, string(raw), err}
	}()
	testkit.CheckFor(t, testkit.Patience, 10*time.Millisecond, func() error {
		if leader.hung.Load() < 2 {
			return errors.New("the forwarded writes have not reached the leader")
		}
		return nil
	})
	// The leader stops leading; another node takes the lease.
	_ = leader.node.Close()
	a := <-answers
	if a.err != nil || a.status != http.StatusServiceUnavailable || a.header.Get("Retry-After") != "1" ||
		!strings.Contains(a.body, "the leader changed") || !strings.Contains(a.body, "outcome is unknown") {
		t.Fatalf("a write forwarded to the leader as another took the lease: %d Retry-After %q %s %v", a.status, a.header.Get("Retry-After"), a.body, a.err)
	}
	m := <-overNATS
	if m.Header.Get(micro.ErrorCodeHeader) != "503" || !strings.Contains(m.Header.Get(micro.ErrorHeader), "the leader changed") {
		t.Fatalf("a write over NATS forwarded to the leader as another took the lease: %v %s", m.Header, m.Data)
	}
	if got := counterOf(t, follower.reg, "quotaledger_cluster_forwarded_total", map[string]string{"outcome": "leader_changed"}); got != 2 {
		t.Fatalf("forwarded leader_changed: %v, want 2", got)
	}
	if name, _ := follower.node.Leader(); name == leader.name {
		t.Fatalf("the follower still sees %s lead", name)
	}
}

// TestClusterNoLeader: a write on a node that knows no leader answers 503
// with Retry-After, and reads answer. The node's lease is an hour long,
// so it does not campaign for minutes.
func TestClusterNoLeader(t *testing.T) {
	tn := startCluster(t, 1, time.Hour)[0]
	if name, _ := tn.node.Leader(); name != "" || tn.node.Leading() {
		t.Fatalf("a node that has not campaigned sees %q lead", name)
	}
	st, h, raw := clusterCall(t, nil, "POST", tn.srv.URL+"/account/v1.0/auth/login", nil, `{"username":"a@example.com","password":"x"}`)
	if st != http.StatusServiceUnavailable || h.Get("Retry-After") != "1" || !strings.Contains(string(raw), "no leader") {
		t.Fatalf("a write with no leader: %d Retry-After %q %s", st, h.Get("Retry-After"), raw)
	}
	if got := counterOf(t, tn.reg, "quotaledger_cluster_forwarded_total", map[string]string{"outcome": "no_leader"}); got != 1 {
		t.Fatalf("forwarded no_leader: %v, want 1", got)
	}
	st, h, _ = clusterCall(t, nil, "GET", tn.srv.URL+"/account/v1.0/resources", nil, "")
	if st != http.StatusOK || appliedOf(t, h) != 0 {
		t.Fatalf("a read with no leader: %d, applied %q", st, h.Get(HeaderApplied))
	}
}

// TestSingleNodeCluster: a single node answers GET cluster with itself,
// and adds no cluster header to its answers.
func TestSingleNodeCluster(t *testing.T) {
	e := newEnv(t)
	st, h, raw := e.send("GET", "/account/v1.0/cluster", map[string]string{"X-Auth-Token": e.admin}, nil)
	var cl wire.Cluster
	if err := json.Unmarshal(raw, &cl); st != http.StatusOK || err != nil {
		t.Fatalf("GET cluster: %d %s", st, raw)
	}
	seq, digest := e.l.Digest()
	if len(cl.Nodes) != 1 || cl.Nodes[0].Role != RoleSingle || cl.Nodes[0].Applied != e.l.Applied() ||
		cl.Nodes[0].Digest != digest || cl.Nodes[0].DigestSeq != seq || cl.Nodes[0].Lag != 0 {
		t.Fatalf("GET cluster of a single node: %s", raw)
	}
	if v := h.Values(HeaderApplied); v != nil {
		t.Fatalf("a single node's answer carries %s %q", HeaderApplied, v)
	}
}

// hookWriter is an httptest.ResponseRecorder that runs hook once: the
// first time the answer's header is asked for after the request id is in
// it, that is once the handler made its answer, before the header is
// written.
type hookWriter struct {
	*httptest.ResponseRecorder
	hook func()
	done bool
}

func (w *hookWriter) Header() http.Header {
	h := w.ResponseRecorder.Header()
	if !w.done && h.Get("X-Request-Id") != "" {
		w.done = true
		w.hook()
	}
	return h
}

// TestClusterAppliedOfARead: a read's answer says the sequence applied
// when the read came, not one its answer may not show: here the follower
// applies a new holding after the read made its answer, before the answer
// is written, and the header must not claim that sequence.
func TestClusterAppliedOfARead(t *testing.T) {
	nodes := startCluster(t, 2, time.Second)
	leader, rest := leaderOf(t, nodes)
	follower := rest[0]
	p := identitytest.AddPrincipals(t, leader.id)
	caughtUp(t, follower, leader.l.Applied())
	k := holdings.Key{Holder: "project:late", Source: holdings.NullSource, Resource: "vm"}
	var added uint64
	w := &hookWriter{ResponseRecorder: httptest.NewRecorder(), hook: func() {
		if err := leader.l.SetHoldings(context.Background(), []ledger.HoldingSetting{{Key: k, Limit: 5}}); err != nil {
			t.Fatal(err)
		}
		added = leader.l.Applied()
		caughtUp(t, follower, added)
	}}
	r := httptest.NewRequest("GET", "/account/v1.0/holdings?holder=project:late&null_source=1", nil)
	r.Header.Set("X-Auth-Token", p.AdminToken)
	follower.api.ServeHTTP(w, r)
	if w.Code != http.StatusOK || !w.done {
		t.Fatalf("GET holdings: %d (hook ran: %v) %s", w.Code, w.done, w.Body)
	}
	if strings.Contains(w.Body.String(), "project:late") {
		t.Fatalf("the answer was made after the hook: %s", w.Body)
	}
	if got := appliedOf(t, w.Header()); got >= added {
		t.Fatalf("the answer, which does not show record %d, says applied %d", added, got)
	}
}

// TestClusterForwardingTLS: nodes serving https forward a write to the
// leader when their RootCAs hold the CA of its certificate, and refuse to
// (503, the leader unreachable) when they check it against the system's
// roots, which do not.
func TestClusterForwardingTLS(t *testing.T) {
	probe := httptest.NewTLSServer(nil) // every httptest server has its certificate
	roots := x509.NewCertPool()
	roots.AddCert(probe.Certificate())
	probe.Close()
	for _, c := range []struct {
		name  string
		roots *x509.CertPool
		want  int
	}{{"private CA", roots, http.StatusCreated}, {"system roots", nil, http.StatusServiceUnavailable}} {
		t.Run(c.name, func(t *testing.T) {
			nodes := startClusterOf(t, 2, time.Second, &httpsNodes{roots: c.roots})
			leader, rest := leaderOf(t, nodes)
			follower := rest[0]
			p := identitytest.AddPrincipals(t, leader.id)
			caughtUp(t, follower, leader.l.Applied())
			svc := map[string]string{"X-Auth-Token": p.ServiceToken}
			st, _, raw := clusterCall(t, follower.srv.Client(), "POST", follower.srv.URL+"/account/v1.0/commissions", svc, `{"provisions":[],"name":"over https"}`)
			if st != c.want {
				t.Fatalf("an issue on the follower, forwarded over https: %d %s, want %d", st, raw, c.want)
			}
			outcome := "answered"
			if c.want != http.StatusCreated {
				outcome = "unreachable"
			}
			if got := counterOf(t, follower.reg, "quotaledger_cluster_forwarded_total", map[string]string{"outcome": outcome}); got != 1 {
				t.Fatalf("forwarded %s: %v, want 1", outcome, got)
			}
		})
	}
}

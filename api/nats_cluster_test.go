package api

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/micro"

	"github.com/quotaledger/quotaledger/api/wire"
	"github.com/quotaledger/quotaledger/internal/testkit"
	"github.com/quotaledger/quotaledger/internal/testkit/identitytest"
)

// serveNATSOn serves tn's micro service under prefix on a connection to
// ns, and returns a connection of the test's to ns.
func serveNATSOn(t *testing.T, tn *testNode, url, prefix string) *nats.Conn {
	t.Helper()
	nc, err := nats.Connect(url)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	svc, err := tn.api.ServeNATS(nc, NATSOptions{Prefix: prefix})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = svc.Stop(context.Background()) })
	cl, err := nats.Connect(url)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cl.Close)
	return cl
}

// natsCallOf sends a request to ep under prefix and returns the answer.
func natsCallOf(t *testing.T, nc *nats.Conn, prefix string, ep wire.NATSEndpoint, serial string, h nats.Header, body string) *nats.Msg {
	t.Helper()
	m, err := nc.RequestMsg(&nats.Msg{Subject: ep.Subject(prefix, serial), Header: h, Data: []byte(body)}, time.Minute)
	if err != nil {
		t.Fatalf("%s: %v", ep.Name, err)
	}
	return m
}

// TestNATSClusterForwarding: a write that reaches a follower's micro
// service is forwarded to the leader (through its HTTP route) and answered
// as the leader answered: the issue applied on the leader, once for its
// idempotency key, the accept too, a refusal with the leader's code, kind
// and cloudFault; the answers carry the request id and the leader's
// applied sequence; the follower counts them as forwarded, and applies
// nothing itself; reads are the follower's.
func TestNATSClusterForwarding(t *testing.T) {
	nodes := startCluster(t, 2, time.Second)
	leader, rest := leaderOf(t, nodes)
	follower := rest[0]
	p := identitytest.AddPrincipals(t, leader.id)
	caughtUp(t, follower, leader.l.Applied())
	const prefix = "follower.v1" // the follower's service alone
	nc := serveNATSOn(t, follower, startNATS(t).ClientURL(), prefix)
	hdr := func(kv ...string) nats.Header {
		h := nats.Header{wire.TokenHeader: {p.ServiceToken}}
		for i := 0; i+1 < len(kv); i += 2 {
			h.Set(kv[i], kv[i+1])
		}
		return h
	}
	forwarded := func() float64 {
		return counterOf(t, follower.reg, "quotaledger_cluster_forwarded_total", map[string]string{"outcome": "answered"})
	}

	before := leader.l.Applied()
	m := natsCallOf(t, nc, prefix, wire.NATSIssue, "", hdr(wire.IdempotencyHeader, "k1", wire.RequestIDHeader, "nats-forwarded"),
		`{"provisions":[],"name":"over NATS via the follower"}`)
	var issued wire.Issued
	if err := json.Unmarshal(m.Data, &issued); m.Header.Get(micro.ErrorCodeHeader) != "" || err != nil || issued.Serial == 0 {
		t.Fatalf("an issue over NATS on the follower: %v %s", m.Header, m.Data)
	}
	if got := m.Header.Get(wire.RequestIDHeader); got != "nats-forwarded" {
		t.Fatalf("the request id of the forwarded answer: %q", got)
	}
	wrote, err := strconv.ParseUint(m.Header.Get(HeaderApplied), 10, 64)
	if err != nil || wrote <= before || wrote > leader.l.Applied() {
		t.Fatalf("the forwarded answer says applied %q; the leader went from %d to %d", m.Header.Get(HeaderApplied), before, leader.l.Applied())
	}
	if got := forwarded(); got != 1 {
		t.Fatalf("forwarded answered: %v, want 1", got)
	}
	serial := strconv.FormatInt(issued.Serial, 10)
	svc := map[string]string{"X-Auth-Token": p.ServiceToken}
	if st, _, raw := clusterCall(t, nil, "GET", leader.srv.URL+"/account/v1.0/commissions/"+serial, svc, ""); st != http.StatusOK {
		t.Fatalf("the issued commission on the leader: %d %s", st, raw)
	}
	// The same key: the leader's first answer.
	m = natsCallOf(t, nc, prefix, wire.NATSIssue, "", hdr(wire.IdempotencyHeader, "k1"), `{"provisions":[],"name":"over NATS via the follower"}`)
	if string(m.Data) != fmt.Sprintf(`{"serial":%d}`, issued.Serial) {
		t.Fatalf("the issue again with its key: %v %s, want serial %d", m.Header, m.Data, issued.Serial)
	}

	// Reads are the follower's own (not forwarded), once it holds the write.
	testkit.CheckFor(t, testkit.Patience, 10*time.Millisecond, func() error {
		m := natsCallOf(t, nc, prefix, wire.NATSPending, "", hdr(), "")
		if !strings.Contains(string(m.Data), serial) {
			return fmt.Errorf("pending on the follower: %v %s", m.Header, m.Data)
		}
		return nil
	})

	// Accept, forwarded: the commission is gone on the leader.
	m = natsCallOf(t, nc, prefix, wire.NATSAction, serial, hdr(), `{"accept":""}`)
	if m.Header.Get(micro.ErrorCodeHeader) != "" || len(m.Data) != 0 {
		t.Fatalf("accept over NATS on the follower: %v %s", m.Header, m.Data)
	}
	if st, _, raw := clusterCall(t, nil, "GET", leader.srv.URL+"/account/v1.0/commissions/"+serial, svc, ""); st != http.StatusNotFound {
		t.Fatalf("the accepted commission on the leader: %d %s", st, raw)
	}

	// A refusal of the leader's, relayed: its code and kind in micro's
	// headers, its cloudFault as the body.
	m = natsCallOf(t, nc, prefix, wire.NATSIssue, "", hdr(), `{"provisions":[{"holder":"project:none","source":null,"resource":"cyclades.vm","quantity":1}]}`)
	var fault map[string]map[string]any
	if err := json.Unmarshal(m.Data, &fault); err != nil || m.Header.Get(micro.ErrorCodeHeader) != "404" ||
		!strings.HasPrefix(m.Header.Get(micro.ErrorHeader), "itemNotFound: ") || fault["itemNotFound"]["code"] != 404.0 {
		t.Fatalf("an issue on no holding over NATS on the follower: %v %s", m.Header, m.Data)
	}
	m = natsCallOf(t, nc, prefix, wire.NATSResolve, "", hdr(), `{"accept":[`)
	if m.Header.Get(micro.ErrorCodeHeader) != "400" || !strings.Contains(string(m.Data), `"badRequest"`) {
		t.Fatalf("a bad body to resolve over NATS on the follower: %v %s", m.Header, m.Data)
	}
	if got := forwarded(); got != 5 {
		t.Fatalf("forwarded answered: %v, want 5", got)
	}
	// The follower counted them as its NATS requests, by the leader's code.
	if got := counterOf(t, follower.reg, "quotaledger_nats_requests_total", map[string]string{"endpoint": "issue", "code": "201"}); got != 2 {
		t.Fatalf("the follower's NATS issues answered 201: %v, want 2", got)
	}
	if got := counterOf(t, follower.reg, "quotaledger_nats_requests_total", map[string]string{"endpoint": "issue", "code": "404"}); got != 1 {
		t.Fatalf("the follower's NATS issues answered 404: %v, want 1", got)
	}
}

// TestNATSClusterNoLeader: a write over NATS on a node that knows no
// leader answers 503 with Retry-After (the client retries it), and is
// counted so; a read answers.
func TestNATSClusterNoLeader(t *testing.T) {
	tn := startCluster(t, 1, time.Hour)[0]
	if name, _ := tn.node.Leader(); name != "" || tn.node.Leading() {
		t.Fatalf("a node that has not campaigned sees %q lead", name)
	}
	nc := serveNATSOn(t, tn, startNATS(t).ClientURL(), "")
	m := natsCallOf(t, nc, "", wire.NATSIssue, "", nats.Header{wire.TokenHeader: {"whatever"}}, `{"provisions":[]}`)
	if m.Header.Get(micro.ErrorCodeHeader) != "503" || m.Header.Get("Retry-After") != "1" ||
		!strings.Contains(string(m.Data), `"serviceUnavailable"`) || !strings.Contains(string(m.Data), "no leader") {
		t.Fatalf("a write over NATS with no leader: %v %s", m.Header, m.Data)
	}
	if got := counterOf(t, tn.reg, "quotaledger_cluster_forwarded_total", map[string]string{"outcome": "no_leader"}); got != 1 {
		t.Fatalf("forwarded no_leader: %v, want 1", got)
	}
	// A read is the node's: its token unknown here, 401, not 503.
	m = natsCallOf(t, nc, "", wire.NATSPending, "", nats.Header{wire.TokenHeader: {"whatever"}}, "")
	if m.Header.Get(micro.ErrorCodeHeader) != "401" {
		t.Fatalf("a read over NATS with no leader: %v %s", m.Header, m.Data)
	}
}

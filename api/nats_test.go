package api

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/micro"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/rs/zerolog"

	"github.com/quotaledger/quotaledger/api/wire"
	"github.com/quotaledger/quotaledger/events"
	"github.com/quotaledger/quotaledger/failure"
	"github.com/quotaledger/quotaledger/holdings"
	"github.com/quotaledger/quotaledger/internal/testkit"
	"github.com/quotaledger/quotaledger/ledger"
)

// The NATS micro service's own behaviour: discovery, error headers,
// metrics, the stop, the cluster's hook. What it answers, call by call,
// is api/client's TestServiceAPIOnBothWires: the same as over HTTP.

// startNATS starts an embedded NATS server (JetStream, a random loopback
// port) for the test.
func startNATS(tb testing.TB) *events.Server {
	tb.Helper()
	ns, err := events.StartServer(events.ServerOptions{Dir: tb.TempDir(), Listen: "127.0.0.1:-1", Logger: zerolog.Nop()})
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(ns.Shutdown)
	return ns
}

// natsEnv is newEnv's server also serving the micro service, connected in
// process to an embedded NATS server, and a connection of the test's over
// TCP.
type natsEnv struct {
	*env
	ns  *events.Server
	svc *NATSService
	nc  *nats.Conn
}

func newNATSEnv(t *testing.T, opts NATSOptions) *natsEnv {
	t.Helper()
	reg := prometheus.NewRegistry()
	e := &natsEnv{env: newEnvWith(t, zerolog.Nop(), reg), ns: startNATS(t)}
	inproc, err := nats.Connect("", nats.InProcessServer(e.ns))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(inproc.Close)
	if e.svc, err = e.api.ServeNATS(inproc, opts); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = e.svc.Stop(context.Background()) })
	if e.nc, err = nats.Connect(e.ns.ClientURL()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(e.nc.Close)
	return e
}

// request sends a request to ep (with serial, if it takes one) with token
// and header, and returns the reply.
func (e *natsEnv) request(ep wire.NATSEndpoint, serial, token string, header nats.Header, body string) *nats.Msg {
	e.t.Helper()
	if header == nil {
		header = nats.Header{}
	}
	if token != "" {
		header.Set(wire.TokenHeader, token)
	}
	reply, err := e.nc.RequestMsg(&nats.Msg{Subject: ep.Subject("", serial), Header: header, Data: []byte(body)}, time.Minute)
	if err != nil {
		e.t.Fatalf("%s: %v", ep.Name, err)
	}
	return reply
}

// vmKey is the user's member holding of cyclades.vm (limit 2).
func (e *natsEnv) vmKey() holdings.Key {
	u := e.userRec.UUID
	return holdings.Key{Holder: "user:" + u, Source: holdings.SourceOf("project:" + u), Resource: "cyclades.vm"}
}

func (e *natsEnv) issueBody(q int64) string {
	k := e.vmKey()
	return fmt.Sprintf(`{"provisions": [{"holder": %q, "source": %q, "resource": %q, "quantity": %d}]}`,
		k.Holder, k.Source.Name(), k.Resource, q)
}

// TestNATSDiscovery: PING, INFO and STATS as micro gives them: INFO lists
// every endpoint under the prefix with its HTTP route and the schemas of
// its bodies, and STATS counts requests, errors, and in its data the
// writes answered.
func TestNATSDiscovery(t *testing.T) {
	e := newNATSEnv(t, NATSOptions{})
	ask := func(subject string, v any) {
		t.Helper()
		reply, err := e.nc.Request(subject, nil, time.Minute)
		if err != nil {
			t.Fatalf("%s: %v", subject, err)
		}
		if err := json.Unmarshal(reply.Data, v); err != nil {
			t.Fatalf("%s: %v: %s", subject, err, reply.Data)
		}
	}
	var ping micro.Ping
	ask("$SRV.PING."+wire.NATSService, &ping)
	if ping.Name != wire.NATSService || ping.Version != "1.0.0" || ping.ID == "" {
		t.Fatalf("PING: %+v", ping)
	}
	var info micro.Info
	ask("$SRV.INFO."+wire.NATSService, &info)
	if info.Metadata["prefix"] != wire.NATSPrefix || info.Description == "" {
		t.Fatalf("INFO: %+v", info)
	}
	var names []string
	for _, ep := range info.Endpoints {
		names = append(names, ep.Name)
	}
	var want []string
	for _, ep := range wire.NATSEndpoints {
		want = append(want, ep.Name)
	}
	if !reflect.DeepEqual(names, want) {
		t.Fatalf("INFO endpoints %v, want %v", names, want)
	}
	for i, ep := range info.Endpoints {
		we := wire.NATSEndpoints[i]
		if ep.Subject != we.Subject("", "") || ep.QueueGroup != micro.DefaultQueueGroup {
			t.Errorf("%s: subject %q queue group %q", ep.Name, ep.Subject, ep.QueueGroup)
		}
		md := ep.Metadata
		_, schema := md["response_schema"]
		if md["http"] == "" || md["access"] != "service" || md["summary"] == "" || schema == (md["response"] == "empty") ||
			(ep.Name == wire.NATSAction.Name) == schema {
			t.Errorf("%s: metadata %v", ep.Name, md)
		}
		for _, key := range []string{"request_schema", "response_schema"} {
			if s, ok := md[key]; ok {
				var doc map[string]any
				if err := json.Unmarshal([]byte(s), &doc); err != nil {
					t.Errorf("%s: %s does not parse: %v", ep.Name, key, err)
				}
				if strings.Contains(s, "#/components/") {
					t.Errorf("%s: %s refers outside itself: %s", ep.Name, key, s)
				}
			}
		}
		takesBody := ep.Name != wire.NATSPending.Name && ep.Name != wire.NATSInfo.Name
		if _, ok := md["request_schema"]; ok != takesBody {
			t.Errorf("%s: request schema %v, want %v", ep.Name, ok, takesBody)
		}
	}
	issue := info.Endpoints[0].Metadata
	if issue["http"] != "POST /account/v1.0/commissions" || issue["idempotency_header"] != wire.IdempotencyHeader ||
		!strings.Contains(issue["request_schema"], `"provisions"`) || !strings.Contains(issue["response_schema"], `"serial"`) {
		t.Fatalf("issue's metadata: %v", issue)
	}

	// Two issues, one refused, and a read with a bad token.
	if r := e.request(wire.NATSIssue, "", e.service, nil, e.issueBody(1)); r.Header.Get(micro.ErrorCodeHeader) != "" {
		t.Fatalf("issue: %s", r.Data)
	}
	if r := e.request(wire.NATSIssue, "", e.service, nil, e.issueBody(5)); r.Header.Get(micro.ErrorCodeHeader) != "413" {
		t.Fatalf("issue past the limit: %v %s", r.Header, r.Data)
	}
	if r := e.request(wire.NATSPending, "", "bad", nil, ""); r.Header.Get(micro.ErrorCodeHeader) != "401" {
		t.Fatalf("pending with a bad token: %v %s", r.Header, r.Data)
	}
	// Micro counts a request once its handler returned, after the answer
	// went: the figures settle a little after the answers came.
	testkit.CheckFor(t, testkit.Patience, 5*time.Millisecond, func() error {
		var stats micro.Stats
		ask("$SRV.STATS."+wire.NATSService, &stats)
		byName := map[string]*micro.EndpointStats{}
		for _, st := range stats.Endpoints {
			byName[st.Name] = st
		}
		var data natsStatsData
		if st := byName["issue"]; st == nil || st.NumRequests != 2 || json.Unmarshal(st.Data, &data) != nil {
			return fmt.Errorf("STATS of issue: %+v", st)
		}
		if data.Answered != 2 || data.Errors != 1 || data.InFlight != 0 || data.ProcessingTime <= 0 {
			return fmt.Errorf("STATS of issue, data: %+v", data)
		}
		if st := byName["pending"]; st == nil || st.NumRequests != 1 || st.NumErrors != 1 || !strings.Contains(st.LastError, "401") {
			return fmt.Errorf("STATS of pending: %+v", st)
		}
		return nil
	})
}

// TestNATSErrorHeaders: a refusal carries the cloudFault's code and kind in
// micro's error headers and the cloudFault, data included, as its body;
// the request id the caller sent comes back, and a header's name may be in
// any case.
func TestNATSErrorHeaders(t *testing.T) {
	e := newNATSEnv(t, NATSOptions{})
	r := e.request(wire.NATSIssue, "", "", nats.Header{"x-auth-token": {e.service}, wire.RequestIDHeader: {"req-1"}}, e.issueBody(3))
	if code, desc := r.Header.Get(micro.ErrorCodeHeader), r.Header.Get(micro.ErrorHeader); code != "413" ||
		desc != "overLimit: user:"+e.userRec.UUID+" has not enough capacity of cyclades.vm." {
		t.Fatalf("headers %v", r.Header)
	}
	if id := r.Header.Get(wire.RequestIDHeader); id != "req-1" {
		t.Fatalf("request id %q, want the caller's", id)
	}
	var f map[string]struct {
		Code int            `json:"code"`
		Data wire.FaultData `json:"data"`
	}
	if err := json.Unmarshal(r.Data, &f); err != nil || f["overLimit"].Code != 413 {
		t.Fatalf("body %s", r.Data)
	}
	if d := f["overLimit"].Data; d.Name != "NoCapacityError" || d.Limit != 2 || d.Usage != 0 || d.Provision == nil || d.Provision.Quantity != 3 {
		t.Fatalf("data %+v", d)
	}
	// A success has no error header, and a request id of the server's.
	r = e.request(wire.NATSIssue, "", e.service, nil, e.issueBody(1))
	if r.Header.Get(micro.ErrorCodeHeader) != "" || len(r.Header.Get(wire.RequestIDHeader)) != 16 || string(r.Data) != `{"serial":1}` {
		t.Fatalf("issue: %v %s", r.Header, r.Data)
	}
	// A message that cannot be a header value is made one.
	if v := headerValue("a\r\nb\x00" + strings.Repeat("é", 600)); strings.ContainsAny(v, "\r\n\x00") || len(v) > 1024 || !strings.HasPrefix(v, "a  b ") {
		t.Fatalf("headerValue: %q", v)
	}
}

// TestNATSMetrics: the requests are counted per endpoint and code beside
// the HTTP ones, and their refusals and bad tokens in the counters both
// wires share.
func TestNATSMetrics(t *testing.T) {
	e := newNATSEnv(t, NATSOptions{})
	e.request(wire.NATSIssue, "", e.service, nil, e.issueBody(1))
	e.request(wire.NATSIssue, "", e.service, nil, e.issueBody(5))
	e.request(wire.NATSPending, "", "qlk_nope", nil, "")
	e.request(wire.NATSPending, "", "", nil, "")
	fams := e.scrape()
	for _, c := range []struct {
		name   string
		labels []string
		want   float64
	}{
		{"quotaledger_nats_requests_total", []string{"endpoint", "issue", "code", "201"}, 1},
		{"quotaledger_nats_requests_total", []string{"endpoint", "issue", "code", "413"}, 1},
		{"quotaledger_nats_requests_total", []string{"endpoint", "pending", "code", "401"}, 2},
		{"quotaledger_nats_request_duration_seconds", []string{"endpoint", "issue", "code", "201"}, 1},
		{"quotaledger_errors_total", []string{"kind", "overLimit"}, 1},
		{"quotaledger_api_errors_total", []string{"code", "unauthorized"}, 2},
		{"quotaledger_auth_failures_total", []string{"reason", "missing"}, 1},
		{"quotaledger_auth_failures_total", []string{"reason", "malformed"}, 1},
	} {
		if v, ok := sample(fams, c.name, c.labels...); !ok || v != c.want {
			t.Errorf("%s%v = %v (%v), want %v", c.name, c.labels, v, ok, c.want)
		}
	}
}

// TestNATSConcurrentWrites: writes in flight at once are each answered
// once their batch is durable (the endpoint does not answer one at a
// time), and every answered serial is in the ledger.
func TestNATSConcurrentWrites(t *testing.T) {
	e := newNATSEnv(t, NATSOptions{})
	k := holdings.Key{Holder: "h", Source: holdings.NullSource, Resource: "r"}
	if err := e.l.SetHoldings(context.Background(), []ledger.HoldingSetting{{Key: k, Limit: 1 << 40}}); err != nil {
		t.Fatal(err)
	}
	body := `{"provisions": [{"holder": "h", "source": null, "resource": "r", "quantity": 1}]}`
	const n = 200
	var wg sync.WaitGroup
	serials := make(chan int64, n)
	for range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r := e.request(wire.NATSIssue, "", e.service, nil, body)
			var out wire.Issued
			if err := json.Unmarshal(r.Data, &out); err != nil || out.Serial <= 0 {
				t.Errorf("issue: %v %s", r.Header, r.Data)
			}
			serials <- out.Serial
		}()
	}
	wg.Wait()
	close(serials)
	seen := map[int64]bool{}
	for s := range serials {
		if seen[s] {
			t.Fatalf("serial %d answered twice", s)
		}
		seen[s] = true
	}
	if v, _ := e.l.FindHoldingByKey(k); v.UsageMax != n || len(e.l.Pending("cyclades")) != n {
		t.Fatalf("after %d issues: %+v, %d pending", n, v, len(e.l.Pending("cyclades")))
	}
	if st := e.l.Stats(); st.Batches >= n {
		t.Logf("%d issues took %d batches: the writes did not share a batch this time", n, st.Batches)
	}
}

// TestNATSWritesInParallel: a write does not wait for the one before it
// to be answered: two issues meet in the cluster's hook, each waiting
// there for the other (answered one at a time, the second would never
// come).
func TestNATSWritesInParallel(t *testing.T) {
	var arrived sync.WaitGroup
	arrived.Add(2)
	e := newNATSEnv(t, NATSOptions{Forward: func(context.Context, string, *nats.Msg) (*nats.Msg, error) {
		arrived.Done()
		met := make(chan struct{})
		go func() { arrived.Wait(); close(met) }()
		select {
		case <-met:
			return nil, nil
		case <-time.After(testkit.Patience):
			return nil, errors.New("the other write never came")
		}
	}})
	var wg sync.WaitGroup
	for range 2 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if r := e.request(wire.NATSIssue, "", e.service, nil, e.issueBody(1)); r.Header.Get(micro.ErrorCodeHeader) != "" {
				t.Errorf("issue: %s", r.Data)
			}
		}()
	}
	wg.Wait()
}

// TestNATSStop: Stop waits for the writes in flight, each of which is
// answered, then the service takes no more requests (no responders).
func TestNATSStop(t *testing.T) {
	t.Run("InFlight", func(t *testing.T) {
		// A write held in the cluster's hook while the service stops: Stop
		// returns only once it is applied.
		entered, release := make(chan struct{}), make(chan struct{})
		e := newNATSEnv(t, NATSOptions{Forward: func(context.Context, string, *nats.Msg) (*nats.Msg, error) {
			close(entered)
			<-release
			return nil, nil
		}})
		answer := make(chan *nats.Msg, 1)
		go func() {
			reply, err := e.nc.RequestMsg(&nats.Msg{Subject: wire.NATSIssue.Subject("", ""),
				Header: nats.Header{wire.TokenHeader: {e.service}}, Data: []byte(e.issueBody(1))}, time.Minute)
			if err != nil {
				t.Errorf("the write in flight: %v", err)
			}
			answer <- reply
		}()
		<-entered
		stopped := make(chan error, 1)
		go func() { stopped <- e.svc.Stop(context.Background()) }()
		// Once the endpoints are gone, let the write go on.
		testkit.CheckFor(t, testkit.Patience, 5*time.Millisecond, func() error {
			_, err := e.nc.Request(wire.NATSPending.Subject("", ""), nil, 10*time.Second)
			if !errors.Is(err, nats.ErrNoResponders) {
				return fmt.Errorf("a request while stopping: %v, want no responders", err)
			}
			return nil
		})
		close(release)
		if err := <-stopped; err != nil {
			t.Fatal(err)
		}
		if st := e.l.Stats(); st.Serial != 1 || st.Pending != 1 {
			t.Fatalf("Stop returned before the write in flight was applied: %+v", st)
		}
		if r := <-answer; r == nil || string(r.Data) != `{"serial":1}` {
			t.Fatalf("the write in flight: %v", r)
		}
	})
	t.Run("Load", func(t *testing.T) {
		e := newNATSEnv(t, NATSOptions{})
		k := holdings.Key{Holder: "h", Source: holdings.NullSource, Resource: "r"}
		if err := e.l.SetHoldings(context.Background(), []ledger.HoldingSetting{{Key: k, Limit: 1 << 40}}); err != nil {
			t.Fatal(err)
		}
		body := []byte(`{"provisions": [{"holder": "h", "source": null, "resource": "r", "quantity": 1}]}`)
		const n = 100
		type result struct {
			serial int64
			code   string
			err    error
		}
		results := make(chan result, n)
		for range n {
			go func() {
				reply, err := e.nc.RequestMsg(&nats.Msg{Subject: wire.NATSIssue.Subject("", ""),
					Header: nats.Header{wire.TokenHeader: {e.service}}, Data: body}, time.Minute)
				if err != nil {
					results <- result{err: err}
					return
				}
				var out wire.Issued
				_ = json.Unmarshal(reply.Data, &out)
				results <- result{serial: out.Serial, code: reply.Header.Get(micro.ErrorCodeHeader)}
			}()
		}
		if err := e.svc.Stop(context.Background()); err != nil {
			t.Fatal(err)
		}
		after := e.l.Stats()
		answered := 0
		for range n {
			r := <-results
			switch {
			case r.err != nil:
				if !errors.Is(r.err, nats.ErrNoResponders) {
					t.Fatalf("a request: %v", r.err)
				}
			case r.code == "503":
			case r.code == "" && r.serial > 0:
				answered++
				if _, err := e.l.Commission("cyclades", uint64(r.serial)); err != nil {
					t.Fatalf("answered serial %d is not pending: %v", r.serial, err)
				}
			default:
				t.Fatalf("a request: %+v", r)
			}
		}
		if st := e.l.Stats(); st != after || st.Pending != answered {
			t.Fatalf("after the stop %+v, once every answer came %+v; %d answered", after, st, answered)
		}
		if _, err := e.nc.Request(wire.NATSPending.Subject("", ""), nil, 10*time.Second); !errors.Is(err, nats.ErrNoResponders) {
			t.Fatalf("a request after Stop: %v, want no responders", err)
		}
		t.Logf("%d of %d issues answered before the stop", answered, n)
	})
}

// TestNATSForward: the cluster's hook. A write it forwards is answered as
// the leader answered, without this node applying it; one it refuses as
// unavailable is a 503 (what a node that cannot write answers); one it
// lets through is applied here; reads never ask it.
func TestNATSForward(t *testing.T) {
	errNotLeader := failure.New(failure.Unavailable, "not the leader, and no leader to forward to")
	var mu sync.Mutex
	var mode string
	var asked []string
	e := newNATSEnv(t, NATSOptions{Forward: func(_ context.Context, endpoint string, m *nats.Msg) (*nats.Msg, error) {
		mu.Lock()
		defer mu.Unlock()
		asked = append(asked, endpoint)
		switch mode {
		case "forward":
			if m.Header.Get(wire.TokenHeader) == "" || len(m.Data) == 0 {
				return nil, errors.New("the request came without its token or body")
			}
			return &nats.Msg{Header: nats.Header{"Leader": {"n2"}}, Data: []byte(`{"serial":99}`)}, nil
		case "unavailable":
			return nil, errNotLeader
		}
		return nil, nil
	}})
	set := func(m string) {
		mu.Lock()
		mode = m
		mu.Unlock()
	}
	set("forward")
	r := e.request(wire.NATSIssue, "", e.service, nil, e.issueBody(1))
	if string(r.Data) != `{"serial":99}` || r.Header.Get("Leader") != "n2" {
		t.Fatalf("forwarded: %v %s", r.Header, r.Data)
	}
	if st := e.l.Stats(); st.Serial != 0 {
		t.Fatalf("a forwarded issue was applied here: %+v", st)
	}
	set("unavailable")
	r = e.request(wire.NATSAction, "1", e.service, nil, `{"accept": ""}`)
	if r.Header.Get(micro.ErrorCodeHeader) != "503" || !strings.Contains(string(r.Data), `"serviceUnavailable"`) {
		t.Fatalf("unavailable: %v %s", r.Header, r.Data)
	}
	set("")
	r = e.request(wire.NATSIssue, "", e.service, nil, e.issueBody(1))
	if string(r.Data) != `{"serial":1}` {
		t.Fatalf("applied here: %v %s", r.Header, r.Data)
	}
	e.request(wire.NATSPending, "", e.service, nil, "")
	e.request(wire.NATSIssue, "", "bad token", nil, e.issueBody(1)) // refused before the hook
	mu.Lock()
	defer mu.Unlock()
	if want := []string{"issue", "action", "issue"}; !reflect.DeepEqual(asked, want) {
		t.Fatalf("the hook was asked for %v, want %v", asked, want)
	}
}

// TestNATSNoReply: a message published without a reply subject is no
// request: nothing is applied.
func TestNATSNoReply(t *testing.T) {
	e := newNATSEnv(t, NATSOptions{})
	if err := e.nc.PublishMsg(&nats.Msg{Subject: wire.NATSIssue.Subject("", ""),
		Header: nats.Header{wire.TokenHeader: {e.service}}, Data: []byte(e.issueBody(1))}); err != nil {
		t.Fatal(err)
	}
	// A request after it, on the same connection, reaches the endpoint
	// after it; once the service stopped, with every call in flight done,
	// only the request was applied.
	r := e.request(wire.NATSIssue, "", e.service, nil, e.issueBody(1))
	if err := e.svc.Stop(context.Background()); err != nil {
		t.Fatal(err)
	}
	if st := e.l.Stats(); string(r.Data) != `{"serial":1}` || st.Serial != 1 || st.Pending != 1 {
		t.Fatalf("the publish was applied: the request got %s; %+v", r.Data, st)
	}
}

// FuzzNATSRequests sends arbitrary requests to every endpoint of the micro
// service, through a real NATS server and the real handler: every one is
// answered (no panic, no silence), a refusal is a cloudFault of a 4xx
// whose kind and code the micro error headers repeat, and a refusal
// changes nothing.
func FuzzNATSRequests(f *testing.F) {
	fe := newFuzzEnv(f)
	ns := startNATS(f)
	inproc, err := nats.Connect("", nats.InProcessServer(ns))
	if err != nil {
		f.Fatal(err)
	}
	f.Cleanup(inproc.Close)
	svc, err := fe.api.ServeNATS(inproc, NATSOptions{})
	if err != nil {
		f.Fatal(err)
	}
	f.Cleanup(func() { _ = svc.Stop(context.Background()) })
	nc, err := nats.Connect(ns.ClientURL())
	if err != nil {
		f.Fatal(err)
	}
	f.Cleanup(nc.Close)
	u := fe.user.UUID
	member := fmt.Sprintf(`{"holder":"user:%s","source":"project:%s","resource":"cyclades.vm","quantity":1}`, u, u)
	for i := range wire.NATSEndpoints {
		f.Add(uint8(i), "1", uint8(0), "", []byte(``))
		f.Add(uint8(i), "x", uint8(1), "k", []byte(`{}`))
	}
	f.Add(uint8(0), "", uint8(0), "", []byte(`{"provisions":[`+member+`]}`))
	f.Add(uint8(0), "", uint8(0), "key", []byte(`{"provisions":[`+member+`],"auto_accept":true,"idempotency_key":"key"}`))
	f.Add(uint8(0), "", uint8(0), "", []byte(`{"provisions":[`+member+`,`+member+`,`+member+`]}`))
	f.Add(uint8(3), "1", uint8(0), "", []byte(`{"accept":"","reason":"r"}`))
	f.Add(uint8(3), "0", uint8(0), "", []byte(`{"reject":""}`))
	f.Add(uint8(4), "", uint8(0), "", []byte(`{"accept":[1,2],"reject":[2,-1]}`))
	f.Add(uint8(5), "", uint8(0), "", []byte(`{"user":["`+u+`, nobody"],"project":[""]}`))
	f.Add(uint8(6), "", uint8(0), "", []byte(`{"project":["`+u+`"],"user":["x"]}`))
	f.Add(uint8(7), "", uint8(0), "", []byte(`{"token":"qls_x","belongsTo":"`+u+`"}`))
	f.Add(uint8(8), "", uint8(0), "", []byte(`{"uuids":null,"displaynames":["user@example.com"]}`))
	f.Add(uint8(0), "", uint8(0), "", []byte("{\"provisions\":[],\"name\":\"\xff\"}"))
	f.Fuzz(func(t *testing.T, which uint8, serial string, token uint8, idem string, body []byte) {
		ep := wire.NATSEndpoints[int(which)%len(wire.NATSEndpoints)]
		if strings.Contains(ep.Suffix, "*") {
			// A subject token: no space, no dot, no wildcard, not empty.
			if serial == "" || strings.ContainsAny(serial, " .*>") || strings.ContainsFunc(serial, isControl) {
				return
			}
		} else {
			serial = ""
		}
		h := nats.Header{}
		switch token % 4 {
		case 0:
			h.Set(wire.TokenHeader, fe.service)
		case 1:
			h.Set("Authorization", "Bearer "+fe.service)
		case 2:
			if strings.ContainsFunc(idem, isControl) {
				return
			}
			h.Set(wire.TokenHeader, "qlk_"+idem)
		}
		if idem != "" && !strings.ContainsFunc(idem, isControl) {
			h.Set(wire.IdempotencyHeader, idem)
		}
		before := fe.state()
		reply, err := nc.RequestMsg(&nats.Msg{Subject: ep.Subject("", serial), Header: h, Data: body}, time.Minute)
		if err != nil {
			t.Fatalf("%s %q %q: %v", ep.Name, serial, body, err)
		}
		code := reply.Header.Get(micro.ErrorCodeHeader)
		if code == "" {
			return
		}
		st, err := strconv.Atoi(code)
		if err != nil || st < 400 || st >= 500 {
			t.Fatalf("%s %q %q: error code %q: %s", ep.Name, serial, body, code, reply.Data)
		}
		var fault map[string]*Fault
		if err := json.Unmarshal(reply.Data, &fault); err != nil || len(fault) != 1 {
			t.Fatalf("%s %q %q: %s, not a cloudFault: %s", ep.Name, serial, body, code, reply.Data)
		}
		for kind, v := range fault {
			if v == nil || kind != faultKinds[st] || v.Code != st || v.Message == "" ||
				!strings.HasPrefix(reply.Header.Get(micro.ErrorHeader), kind+": ") {
				t.Fatalf("%s %q %q: %s, bad cloudFault %s (%v)", ep.Name, serial, body, code, reply.Data, reply.Header)
			}
		}
		if after := fe.state(); !reflect.DeepEqual(before, after) {
			t.Fatalf("%s %q %q: refused with %s but the state changed:\n%+v\n%+v", ep.Name, serial, body, code, before, after)
		}
	})
}

// isControl says r cannot go in a subject or a header value.
func isControl(r rune) bool { return r < 0x20 || r == 0x7f }

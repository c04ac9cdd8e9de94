package client_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/micro"
	"github.com/rs/zerolog"

	"github.com/quotaledger/quotaledger/api"
	"github.com/quotaledger/quotaledger/api/client"
	"github.com/quotaledger/quotaledger/api/wire"
	"github.com/quotaledger/quotaledger/events"
	"github.com/quotaledger/quotaledger/failure"
	"github.com/quotaledger/quotaledger/holdings"
	"github.com/quotaledger/quotaledger/identity"
	"github.com/quotaledger/quotaledger/internal/testkit/identitytest"
	"github.com/quotaledger/quotaledger/ledger"
)

// twoWires is one real server (package api over a ledger in memory, the
// usual principals) answering on both wires: HTTP on a loopback port, and
// the NATS micro service on an embedded NATS server (connected in
// process, as serve connects it), which the test's clients reach over TCP
// as a service would.
type twoWires struct {
	l        *ledger.Ledger
	id       *identity.Store
	http     *httptest.Server
	ns       *events.Server
	nc       *nats.Conn // the test's connection, over TCP
	svcTok   string     // cyclades
	otherTok string     // pithos, another service
	userTok  string     // a user's session
	readOnly string     // a user's read-only personal token
	user     *identity.User
}

// The test server's input limits, small enough to reach.
const (
	wiresMaxBody       = 4 << 10
	wiresMaxProvisions = 8
	wiresMaxNameLen    = 64
)

func newTwoWires(t *testing.T) *twoWires {
	t.Helper()
	return newTwoWiresWith(t, api.NATSOptions{})
}

// newTwoWiresWith is newTwoWires with the micro service's options.
func newTwoWiresWith(t *testing.T, opts api.NATSOptions) *twoWires {
	t.Helper()
	ctx := context.Background()
	l, id := identitytest.OpenStores(t, ledger.Options{}, identity.Options{})
	p := identitytest.AddPrincipals(t, id)
	e := &twoWires{l: l, id: id, svcTok: p.ServiceToken, userTok: p.UserToken, user: p.User}
	var err error
	if e.otherTok, _, err = id.CreateService(ctx, identity.NewService{Name: "pithos", Type: "storage"}); err != nil {
		t.Fatal(err)
	}
	if e.readOnly, _, err = id.CreateAccessToken(ctx, p.User.UUID, "ro", time.Time{}, true); err != nil {
		t.Fatal(err)
	}
	srv := api.New(l, id, api.Options{Logger: zerolog.Nop(), MaxBody: wiresMaxBody,
		MaxProvisions: wiresMaxProvisions, MaxNameLen: wiresMaxNameLen})
	e.http = httptest.NewServer(srv)
	t.Cleanup(e.http.Close)
	e.ns, err = events.StartServer(events.ServerOptions{Dir: t.TempDir(), Listen: "127.0.0.1:-1", Logger: zerolog.Nop()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(e.ns.Shutdown)
	inproc, err := nats.Connect("", nats.InProcessServer(e.ns), nats.Name("quotaledger micro service"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(inproc.Close)
	svc, err := srv.ServeNATS(inproc, opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := svc.Stop(context.Background()); err != nil {
			t.Errorf("stop the NATS service: %v", err)
		}
	})
	if e.nc, err = nats.Connect(e.ns.ClientURL()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(e.nc.Close)
	return e
}

// aWire is one wire under test: a typed client with a token, and raw
// calls of an endpoint (a serial for the endpoints that take one, a token,
// more headers, a body) that return the answer's status (the HTTP status;
// over NATS the error code, or the HTTP route's success status) and body.
type aWire struct {
	name string
	api  func(token string) client.ServiceAPI
	raw  func(t *testing.T, ep wire.NATSEndpoint, serial, token string, header map[string]string, body []byte) (int, []byte)
}

func (e *twoWires) wires() []aWire {
	hc, err := client.New(e.http.URL, "", client.Options{NoTokenPickup: true, HTTPClient: e.http.Client()})
	if err != nil {
		panic(err)
	}
	nc := client.NewNATS(e.nc, "", client.NATSOptions{Timeout: time.Minute})
	return []aWire{
		{name: "http", api: func(tok string) client.ServiceAPI { return hc.WithToken(tok) }, raw: e.rawHTTP},
		{name: "nats", api: func(tok string) client.ServiceAPI { return nc.WithToken(tok) }, raw: e.rawNATS},
	}
}

// httpRoutes are the HTTP routes of the endpoints called raw.
var httpRoutes = map[string]string{
	wire.NATSIssue.Name:    "POST /account/v1.0/commissions",
	wire.NATSPending.Name:  "GET /account/v1.0/commissions",
	wire.NATSInfo.Name:     "GET /account/v1.0/commissions/*",
	wire.NATSAction.Name:   "POST /account/v1.0/commissions/*/action",
	wire.NATSResolve.Name:  "POST /account/v1.0/commissions/action",
	wire.NATSCatalogs.Name: "POST /account/v1.0/service/user_catalogs",
}

func (e *twoWires) rawHTTP(t *testing.T, ep wire.NATSEndpoint, serial, token string, header map[string]string, body []byte) (int, []byte) {
	t.Helper()
	route, ok := httpRoutes[ep.Name]
	if !ok {
		t.Fatalf("no HTTP route for %s", ep.Name)
	}
	method, path, _ := strings.Cut(route, " ")
	path = strings.Replace(path, "*", serial, 1)
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequest(method, e.http.URL+path, rd)
	if err != nil {
		t.Fatal(err)
	}
	if token != "" {
		req.Header.Set("X-Auth-Token", token)
	}
	for k, v := range header {
		req.Header.Set(k, v)
	}
	resp, err := e.http.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	out, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, out
}

func (e *twoWires) rawNATS(t *testing.T, ep wire.NATSEndpoint, serial, token string, header map[string]string, body []byte) (int, []byte) {
	t.Helper()
	msg := &nats.Msg{Subject: ep.Subject("", serial), Header: nats.Header{}, Data: body}
	if token != "" {
		msg.Header.Set(wire.TokenHeader, token)
	}
	for k, v := range header {
		msg.Header.Set(k, v)
	}
	reply, err := e.nc.RequestMsg(msg, time.Minute)
	if err != nil {
		t.Fatalf("%s: %v", msg.Subject, err)
	}
	code := reply.Header.Get(micro.ErrorCodeHeader)
	if code == "" {
		if ep == wire.NATSIssue {
			return http.StatusCreated, reply.Data
		}
		return http.StatusOK, reply.Data
	}
	st, err := strconv.Atoi(code)
	if err != nil {
		t.Fatalf("%s: error code %q", msg.Subject, code)
	}
	// The micro error headers carry the cloudFault's kind and code.
	var f map[string]json.RawMessage
	if err := json.Unmarshal(reply.Data, &f); err != nil || len(f) != 1 {
		t.Fatalf("%s: %d, the body is not a cloudFault: %s", msg.Subject, st, reply.Data)
	}
	for kind := range f {
		if d := reply.Header.Get(micro.ErrorHeader); !strings.HasPrefix(d, kind+": ") {
			t.Fatalf("%s: %s %q, want the kind %s first", msg.Subject, micro.ErrorHeader, d, kind)
		}
	}
	return st, reply.Data
}

// run is one case run on one wire: what happened, line by line, with the
// wire's names and the serials made the same for every wire.
type run struct {
	t     *testing.T
	e     *twoWires
	w     aWire
	cs    string // the case's name
	ctx   context.Context
	lines []string
	// serials are the serials this run made, by label (S1, S2, ...).
	serials []int64
}

// name is a holder of this run's own: the same on both wires once the
// transcript is read (canon).
func (r *run) name(s string) string { return r.w.name + "-" + r.cs + "-" + s }

// holding sets a holding of this run's with limit and returns its key.
func (r *run) holding(holder, resource string, limit int64) holdings.Key {
	r.t.Helper()
	k := holdings.Key{Holder: r.name(holder), Source: holdings.SourceOf(r.name("project")), Resource: resource}
	if err := r.e.l.SetHoldings(r.ctx, []ledger.HoldingSetting{{Key: k, Limit: limit}}); err != nil {
		r.t.Fatal(err)
	}
	return k
}

// usage is the holding's usage_min and usage_max.
func (r *run) usage(k holdings.Key) string {
	v, ok := r.e.l.FindHoldingByKey(k)
	if !ok {
		return "none"
	}
	return fmt.Sprintf("limit %d usage %d..%d", v.Limit, v.UsageMin, v.UsageMax)
}

func prov(k holdings.Key, q int64) client.Provision {
	return client.Provision{Holder: k.Holder, Source: k.Source.Ptr(), Resource: k.Resource, Quantity: q}
}

// say adds a line to the transcript.
func (r *run) say(format string, args ...any) {
	r.lines = append(r.lines, fmt.Sprintf(format, args...))
}

// label is the run's label of a serial (a new one the first time).
func (r *run) label(serial int64) string {
	for i, s := range r.serials {
		if s == serial {
			return fmt.Sprintf("S%d", i+1)
		}
	}
	if serial <= 0 || serial > 1<<40 {
		return strconv.FormatInt(serial, 10) // a serial that names nothing, as given
	}
	r.serials = append(r.serials, serial)
	return fmt.Sprintf("S%d", len(r.serials))
}

var serialInText = regexp.MustCompile(`serial (-?\d+)`)

// errText is what err says: its type, status, kind, message, data and the
// lineage's name, for the transcript.
func (r *run) errText(err error) string {
	if err == nil {
		return "ok"
	}
	var e *client.Error
	if !errors.As(err, &e) {
		return "not a client.Error: " + err.Error()
	}
	typ := fmt.Sprintf("%T", err)
	var ql *client.QuotaLimit
	if errors.As(err, &ql) {
		typ += fmt.Sprintf(" %s limit %d usage %d provision %s/%v/%s/%d", ql.Name, ql.Limit, ql.Usage,
			ql.Provision.Holder, deref(ql.Provision.Source), ql.Provision.Resource, ql.Provision.Quantity)
	}
	var nf *client.NotFound
	if errors.As(err, &nf) && nf.Provision != nil {
		typ += fmt.Sprintf(" provision %s/%v/%s/%d", nf.Provision.Holder, deref(nf.Provision.Source), nf.Provision.Resource, nf.Provision.Quantity)
	}
	if e.RequestID == "" {
		typ += " (no request id)"
	}
	msg := serialInText.ReplaceAllStringFunc(e.Message, func(m string) string {
		n, _ := strconv.ParseInt(serialInText.FindStringSubmatch(m)[1], 10, 64)
		return "serial " + r.label(n)
	})
	return fmt.Sprintf("%s %d %s %q data=%s name=%s", typ, e.Status, e.Kind, msg, e.Data, e.Name)
}

func deref(s *string) string {
	if s == nil {
		return "null"
	}
	return *s
}

// must fails the run unless cond holds: each case says what the answer
// must be, besides being the same on both wires.
func (r *run) must(cond bool, format string, args ...any) {
	r.t.Helper()
	if !cond {
		r.t.Errorf("%s: "+format, append([]any{r.w.name}, args...)...)
	}
}

// state is what a refused call must leave as it was: every holding and
// the pending commissions.
func (r *run) state() string {
	var b strings.Builder
	for _, h := range r.e.l.FindHoldings(ledger.HoldingFilter{}) {
		fmt.Fprintf(&b, "%s %+v\n", h.Key, h.Value)
	}
	st := r.e.l.Stats()
	fmt.Fprintf(&b, "pending %d serial %d\n", st.Pending, st.Serial)
	return b.String()
}

// canon is a transcript as both wires must have written it.
func canon(w aWire, lines []string) string {
	return strings.ReplaceAll(strings.Join(lines, "\n"), w.name+"-", "W-")
}

// A serviceCase is a semantic case of the service API, run on each wire.
type serviceCase struct {
	name string
	run  func(r *run)
}

// TestServiceAPIOnBothWires runs every semantic case of the service API
// over HTTP and over NATS against the same server, checks each answer is
// the one the case expects, and checks the two wires answered every call
// the same: the same answers, the same typed errors with the same status,
// kind, message and data.
func TestServiceAPIOnBothWires(t *testing.T) {
	e := newTwoWires(t)
	for _, tc := range serviceCases() {
		t.Run(tc.name, func(t *testing.T) {
			var got []string
			ws := e.wires()
			for _, w := range ws {
				r := &run{t: t, e: e, w: w, cs: tc.name, ctx: context.Background()}
				tc.run(r)
				if len(r.lines) == 0 {
					t.Fatalf("%s: the case said nothing", w.name)
				}
				got = append(got, canon(w, r.lines))
			}
			t.Logf("the transcript:\n%s", got[0])
			if got[0] != got[1] {
				t.Errorf("the wires answered otherwise:\n--- %s\n%s\n--- %s\n%s", ws[0].name, got[0], ws[1].name, got[1])
			}
		})
	}
}

func serviceCases() []serviceCase {
	return []serviceCase{
		{"Issue", func(r *run) {
			svc := r.w.api(r.e.svcTok)
			vm := r.holding("u1", "cyclades.vm", 5)
			serial, err := svc.IssueCommission(r.ctx, client.Commission{Name: "vm-1", Provisions: []client.Provision{prov(vm, 2)}})
			r.must(err == nil && serial > 0, "issue: %d %v", serial, err)
			r.say("issue: %s %s; %s", r.label(serial), r.errText(err), r.usage(vm))
			info, err := svc.GetCommissionInfo(r.ctx, serial)
			r.must(err == nil && info.Name == "vm-1" && len(info.Provisions) == 1, "info: %+v %v", info, err)
			if err == nil {
				r.say("info: %s %q %d provisions, issued %v", r.label(info.Serial), info.Name, len(info.Provisions), !info.IssueTime.IsZero())
			}
			pending, err := svc.GetPendingCommissions(r.ctx)
			r.must(err == nil && contains(pending, serial), "pending %v %v", pending, err)
			r.say("pending has it: %v", contains(pending, serial))
		}},
		{"Merge", func(r *run) {
			svc := r.w.api(r.e.svcTok)
			vm := r.holding("u1", "cyclades.vm", 5)
			serial, err := svc.IssueCommission(r.ctx, client.Commission{Provisions: []client.Provision{prov(vm, 1), prov(vm, 2)}})
			r.say("issue 1+2: %s %s; %s", r.label(serial), r.errText(err), r.usage(vm))
			info, err := svc.GetCommissionInfo(r.ctx, serial)
			r.must(err == nil && len(info.Provisions) == 1 && info.Provisions[0].Quantity == 3, "merged info: %+v %v", info, err)
			r.say("info: %s", r.errText(err))
			// Merged, 2+2 goes past the limit as one provision of 4.
			_, err = svc.IssueCommission(r.ctx, client.Commission{Provisions: []client.Provision{prov(vm, 2), prov(vm, 2)}})
			var ql *client.QuotaLimit
			r.must(errors.As(err, &ql) && ql.Provision.Quantity == 4 && ql.Usage == 3, "merged refusal: %v", err)
			r.say("issue 2+2: %s; %s", r.errText(err), r.usage(vm))
		}},
		{"NoHolding", func(r *run) {
			svc := r.w.api(r.e.svcTok)
			vm := r.holding("u1", "cyclades.vm", 5)
			missing := holdings.Key{Holder: r.name("nobody"), Source: holdings.NullSource, Resource: "cyclades.vm"}
			before := r.state()
			_, err := svc.IssueCommission(r.ctx, client.Commission{Provisions: []client.Provision{prov(vm, 1), prov(missing, 1)}})
			var nf *client.NotFound
			r.must(errors.As(err, &nf) && nf.Provision != nil && nf.Err.Name == "NoHoldingError", "no holding: %v", err)
			r.must(r.state() == before, "a refused issue changed the state")
			r.say("issue: %s; %s", r.errText(err), r.usage(vm))
		}},
		{"NoCapacity", func(r *run) {
			svc := r.w.api(r.e.svcTok)
			vm := r.holding("u1", "cyclades.vm", 2)
			_, err := svc.IssueCommission(r.ctx, client.Commission{Provisions: []client.Provision{prov(vm, 1)}})
			r.say("issue 1: %s", r.errText(err))
			before := r.state()
			_, err = svc.IssueCommission(r.ctx, client.Commission{Provisions: []client.Provision{prov(vm, 2)}})
			var ql *client.QuotaLimit
			r.must(errors.As(err, &ql) && ql.Name == "NoCapacityError" && ql.Limit == 2 && ql.Usage == 1 &&
				ql.Provision.Quantity == 2 && client.StatusOf(err) == 413, "no capacity: %v", err)
			r.must(r.state() == before, "a refused issue changed the state")
			r.say("issue 2: %s; %s", r.errText(err), r.usage(vm))
		}},
		{"NoQuantity", func(r *run) {
			svc := r.w.api(r.e.svcTok)
			vm := r.holding("u1", "cyclades.vm", 5)
			_, err := svc.IssueCommission(r.ctx, client.Commission{AutoAccept: true, Provisions: []client.Provision{prov(vm, 1)}})
			r.say("take 1: %s; %s", r.errText(err), r.usage(vm))
			before := r.state()
			for _, force := range []bool{false, true} { // force never waives it
				_, err = svc.IssueCommission(r.ctx, client.Commission{Force: force, Provisions: []client.Provision{prov(vm, -2)}})
				var ql *client.QuotaLimit
				r.must(errors.As(err, &ql) && ql.Name == "NoQuantityError" && ql.Limit == 0 && ql.Usage == 1, "no quantity (force %v): %v", force, err)
				r.say("release 2 (force %v): %s", force, r.errText(err))
			}
			r.must(r.state() == before, "a refused release changed the state")
		}},
		{"Force", func(r *run) {
			svc := r.w.api(r.e.svcTok)
			vm := r.holding("u1", "cyclades.vm", 1)
			serial, err := svc.IssueCommission(r.ctx, client.Commission{Force: true, Provisions: []client.Provision{prov(vm, 3)}})
			r.must(err == nil, "forced issue: %v", err)
			r.say("forced issue 3 of 1: %s %s; %s", r.label(serial), r.errText(err), r.usage(vm))
		}},
		{"AutoAccept", func(r *run) {
			svc := r.w.api(r.e.svcTok)
			vm := r.holding("u1", "cyclades.vm", 5)
			serial, err := svc.IssueCommission(r.ctx, client.Commission{AutoAccept: true, Provisions: []client.Provision{prov(vm, 2)}})
			r.say("auto-accept: %s %s; %s", r.label(serial), r.errText(err), r.usage(vm))
			v, _ := r.e.l.FindHoldingByKey(vm)
			r.must(err == nil && v.UsageMin == 2 && v.UsageMax == 2, "auto-accept: %v %+v", err, v)
			_, err = svc.GetCommissionInfo(r.ctx, serial)
			r.must(client.StatusOf(err) == 404, "an accepted commission is pending: %v", err)
			r.say("info: %s", r.errText(err))
		}},
		{"Idempotency", func(r *run) {
			svc := r.w.api(r.e.svcTok)
			vm := r.holding("u1", "cyclades.vm", 5)
			key := r.name("key")
			cm := client.Commission{Name: "once", IdempotencyKey: key, Provisions: []client.Provision{prov(vm, 1)}}
			first, err := svc.IssueCommission(r.ctx, cm)
			r.say("first: %s %s", r.label(first), r.errText(err))
			again, err := svc.IssueCommission(r.ctx, cm)
			r.must(err == nil && again == first, "the same issue again: %d %v, want %d", again, err, first)
			r.say("again: %s %s; %s", r.label(again), r.errText(err), r.usage(vm))
			cm.Provisions[0].Quantity = 2
			before := r.state()
			_, err = svc.IssueCommission(r.ctx, cm)
			var c *client.Conflict
			r.must(errors.As(err, &c), "another body under the key: %v", err)
			r.must(r.state() == before, "a conflict changed the state")
			r.say("another body: %s", r.errText(err))
			// The key in the body, as the lineage's clients may send it, and
			// in the header, differing: a bad request.
			code, body := r.w.raw(r.t, wire.NATSIssue, "", r.e.svcTok, map[string]string{wire.IdempotencyHeader: key},
				fmt.Appendf(nil, `{"idempotency_key": "other", "provisions": [{"holder": %q, "source": %q, "resource": "cyclades.vm", "quantity": 1}]}`,
					vm.Holder, vm.Source.Name()))
			r.must(code == 400, "two keys: %d %s", code, body)
			r.say("two keys: %d %s", code, body)
		}},
		{"Accept", func(r *run) { resolveCase(r, true) }},
		{"Reject", func(r *run) { resolveCase(r, false) }},
		{"ResolveMany", func(r *run) {
			svc := r.w.api(r.e.svcTok)
			vm := r.holding("u1", "cyclades.vm", 10)
			var s [3]int64
			for i := range s {
				var err error
				s[i], err = svc.IssueCommission(r.ctx, client.Commission{Provisions: []client.Provision{prov(vm, 1)}})
				r.say("issue: %s %s", r.label(s[i]), r.errText(err))
			}
			const never = 1 << 50 // pending for no one
			res, err := svc.ResolveCommissionsReason(r.ctx, []int64{s[0], s[1], never, 0}, []int64{s[1], s[2], -1, 0}, "bulk")
			r.must(err == nil, "resolve: %v", err)
			if err != nil {
				return
			}
			r.must(len(res.Accepted) == 1 && res.Accepted[0] == s[0] && len(res.Rejected) == 1 && res.Rejected[0] == s[2],
				"accepted %v rejected %v", res.Accepted, res.Rejected)
			r.say("accepted %s rejected %s", r.labels(res.Accepted), r.labels(res.Rejected))
			status := map[int64]int{}
			for _, f := range res.Failed {
				status[f.Serial] = client.StatusOf(f.Err)
				r.say("failed %s: %s", r.label(f.Serial), r.errText(f.Err))
			}
			r.must(status[s[1]] == 400 && status[0] == 400 && status[never] == 404 && status[-1] == 404 && len(status) == 4,
				"failed: %v", status)
			r.say("%s", r.usage(vm))
			pending, err := svc.GetPendingCommissions(r.ctx)
			r.must(err == nil && contains(pending, s[1]) && !contains(pending, s[0]) && !contains(pending, s[2]), "pending %v", pending)
		}},
		{"Pending", func(r *run) {
			vm := r.holding("u1", "cyclades.vm", 10)
			other := r.w.api(r.e.otherTok)
			mine, err := other.IssueCommission(r.ctx, client.Commission{Provisions: []client.Provision{prov(vm, 1)}})
			r.say("pithos issues: %s %s", r.label(mine), r.errText(err))
			pending, err := other.GetPendingCommissions(r.ctx)
			r.must(err == nil && len(pending) == 1 && pending[0] == mine, "pithos's pending: %v %v", pending, err)
			r.say("pithos's pending: %s %s", r.labels(pending), r.errText(err))
			err = other.AcceptCommission(r.ctx, mine)
			pending, err2 := other.GetPendingCommissions(r.ctx)
			r.must(err == nil && err2 == nil && len(pending) == 0 && pending != nil, "after accept: %v %v %v", pending, err, err2)
			r.say("accept: %s; pending %s", r.errText(err), r.labels(pending))
		}},
		{"AnotherServicesCommission", func(r *run) {
			vm := r.holding("u1", "cyclades.vm", 10)
			svc, other := r.w.api(r.e.svcTok), r.w.api(r.e.otherTok)
			theirs, err := other.IssueCommission(r.ctx, client.Commission{Name: "pithos's", Provisions: []client.Provision{prov(vm, 1)}})
			r.say("pithos issues: %s %s", r.label(theirs), r.errText(err))
			before := r.state()
			_, err = svc.GetCommissionInfo(r.ctx, theirs)
			r.must(client.StatusOf(err) == 404, "cyclades sees pithos's commission: %v", err)
			r.say("cyclades's info: %s", r.errText(err))
			for _, accept := range []bool{true, false} {
				if accept {
					err = svc.AcceptCommission(r.ctx, theirs)
				} else {
					err = svc.RejectCommission(r.ctx, theirs)
				}
				r.must(client.StatusOf(err) == 404, "cyclades resolves pithos's commission: %v", err)
				r.say("cyclades's accept %v: %s", accept, r.errText(err))
			}
			res, err := svc.ResolveCommissions(r.ctx, []int64{theirs}, nil)
			r.must(err == nil && len(res.Accepted) == 0 && len(res.Failed) == 1, "cyclades resolves many: %+v %v", res, err)
			if err == nil {
				for _, f := range res.Failed {
					r.say("cyclades's resolve: failed %s %s", r.label(f.Serial), r.errText(f.Err))
				}
			}
			pending, err := svc.GetPendingCommissions(r.ctx)
			r.must(err == nil && !contains(pending, theirs), "cyclades's pending has pithos's: %v", pending)
			r.must(r.state() == before, "another service changed pithos's commission")
			info, err := other.GetCommissionInfo(r.ctx, theirs)
			r.must(err == nil && info.Name == "pithos's", "pithos's own info: %+v %v", info, err)
			r.say("pithos's info: %s", r.errText(err))
		}},
		{"UserTokens", func(r *run) {
			// A read-only token refused on writes; any user's token refused
			// on every service call.
			vm := r.holding("u1", "cyclades.vm", 10)
			before := r.state()
			for _, tok := range []struct{ name, tok string }{{"read-only", r.e.readOnly}, {"session", r.e.userTok}} {
				u := r.w.api(tok.tok)
				_, err := u.IssueCommission(r.ctx, client.Commission{Provisions: []client.Provision{prov(vm, 1)}})
				var fb *client.Forbidden
				r.must(errors.As(err, &fb), "%s issues: %v", tok.name, err)
				r.say("%s issue: %s", tok.name, r.errText(err))
				err = u.AcceptCommission(r.ctx, 1)
				r.must(errors.As(err, &fb), "%s accepts: %v", tok.name, err)
				r.say("%s accept: %s", tok.name, r.errText(err))
				_, err = u.ResolveCommissions(r.ctx, []int64{1}, nil)
				r.say("%s resolve: %s", tok.name, r.errText(err))
				_, err = u.GetPendingCommissions(r.ctx)
				r.must(errors.As(err, &fb), "%s reads pending: %v", tok.name, err)
				r.say("%s pending: %s", tok.name, r.errText(err))
				_, err = u.ServiceGetQuotas(r.ctx, nil, "")
				r.say("%s service quotas: %s", tok.name, r.errText(err))
			}
			r.must(r.state() == before, "a user's token changed the state")
		}},
		{"BadToken", func(r *run) {
			vm := r.holding("u1", "cyclades.vm", 10)
			before := r.state()
			for _, tok := range []string{"qlk_" + strings.Repeat("A", 43), "not a token", ""} {
				u := r.w.api(tok)
				_, err := u.IssueCommission(r.ctx, client.Commission{Provisions: []client.Provision{prov(vm, 1)}})
				var ua *client.Unauthorized
				r.must(errors.As(err, &ua), "token %q issues: %v", tok, err)
				r.say("token %q issue: %s", tok, r.errText(err))
				_, err = u.GetPendingCommissions(r.ctx)
				r.must(errors.As(err, &ua), "token %q reads pending: %v", tok, err)
				r.say("token %q pending: %s", tok, r.errText(err))
				_, err = u.ValidateToken(r.ctx, r.e.userTok, "")
				r.say("token %q validate: %s", tok, r.errText(err))
			}
			// The token as a bearer token does as well as X-Auth-Token.
			code, _ := r.w.raw(r.t, wire.NATSPending, "", "", map[string]string{"Authorization": "Bearer " + r.e.svcTok}, nil)
			r.must(code == 200, "a bearer token: %d", code)
			r.say("bearer: %d", code)
			r.must(r.state() == before, "a bad token changed the state")
		}},
		{"BadBodies", badBodies},
		{"ServiceReads", func(r *run) {
			svc := r.w.api(r.e.svcTok)
			u := r.e.user.UUID
			q, err := svc.ServiceGetQuotas(r.ctx, []string{u}, "")
			r.must(err == nil && q[u][u]["cyclades.vm"].Limit == 2, "service quotas: %v %v", q, err)
			r.say("service quotas of the user: %s %s", jsonText(q), r.errText(err))
			q, err = svc.ServiceGetQuotas(r.ctx, []string{u, r.name("nobody")}, "")
			r.must(client.StatusOf(err) == 404, "service quotas of no one: %v %v", q, err)
			r.say("service quotas of no one: %s", r.errText(err))
			pq, err := svc.ServiceGetProjectQuotas(r.ctx, u)
			r.must(err == nil && pq[u]["cyclades.vm"].ProjectLimit == 2, "project quotas: %v %v", pq, err)
			r.say("project quotas: %s %s", jsonText(pq), r.errText(err))
			_, err = svc.ServiceGetProjectQuotas(r.ctx, r.name("nowhere"))
			r.say("project quotas of nothing: %s", r.errText(err))
			acc, err := svc.ValidateToken(r.ctx, r.e.userTok, u)
			r.must(err == nil && acc.User != nil && acc.User.ID == u && acc.Token.ID == r.e.userTok, "validate: %+v %v", acc, err)
			r.say("validate: %s", r.errText(err))
			_, err = svc.ValidateToken(r.ctx, r.e.userTok, r.name("someone else"))
			r.must(client.StatusOf(err) == 404, "validate, not the user's: %v", err)
			r.say("validate, not the user's: %s", r.errText(err))
			_, err = svc.ValidateToken(r.ctx, "qlp_"+strings.Repeat("B", 43), "")
			r.say("validate a bad token: %s", r.errText(err))
			name, err := svc.ServiceGetUsername(r.ctx, u)
			r.must(err == nil && name == identitytest.UserName, "username: %q %v", name, err)
			r.say("username: %s %s", name, r.errText(err))
			_, err = svc.ServiceGetUUID(r.ctx, r.name("nobody@example.com"))
			var nu *client.NoUUID
			r.must(errors.As(err, &nu), "no uuid: %v", err)
			r.say("uuid of no one: %s", r.errText(err))
			all, err := svc.ServiceGetCatalogs(r.ctx, nil, []string{identitytest.UserName})
			r.must(err == nil && all.UUIDCatalog[u] == identitytest.UserName && all.DisplayNameCatalog[identitytest.UserName] == u,
				"catalogs, every user: %+v %v", all, err)
			r.say("catalogs: %s %s", jsonText(all), r.errText(err))
		}},
		{"InputLimits", func(r *run) {
			svc := r.w.api(r.e.svcTok)
			vm := r.holding("u1", "cyclades.vm", 100)
			before := r.state()
			many := make([]client.Provision, wiresMaxProvisions+1)
			for i := range many {
				many[i] = prov(vm, 1)
			}
			for _, cm := range []client.Commission{
				{Provisions: many},
				{Name: strings.Repeat("n", wiresMaxNameLen+1), Provisions: []client.Provision{prov(vm, 1)}},
				{IdempotencyKey: strings.Repeat("k", wiresMaxNameLen+1), Provisions: []client.Provision{prov(vm, 1)}},
				{TTL: -1, Provisions: []client.Provision{prov(vm, 1)}},
				{Provisions: []client.Provision{{Holder: strings.Repeat("h", wiresMaxNameLen+1), Resource: "r", Quantity: 1}}},
				{Provisions: []client.Provision{{Holder: "", Resource: "r", Quantity: 1}}},
			} {
				_, err := svc.IssueCommission(r.ctx, cm)
				var br *client.BadRequest
				r.must(errors.As(err, &br), "issue past a limit: %v", err)
				r.say("issue: %s", r.errText(err))
			}
			serial, err := svc.IssueCommission(r.ctx, client.Commission{Provisions: []client.Provision{prov(vm, 1)}})
			r.say("issue: %s %s", r.label(serial), r.errText(err))
			err = svc.CommissionActionReason(r.ctx, serial, client.ActionAccept, strings.Repeat("r", wiresMaxNameLen+1))
			r.must(client.StatusOf(err) == 400, "a long reason: %v", err)
			r.say("accept with a long reason: %s", r.errText(err))
			err = svc.RejectCommission(r.ctx, serial)
			r.say("reject: %s", r.errText(err))
			r.must(r.state() != before, "nothing was issued")
		}},
	}
}

// resolveCase accepts or rejects a commission, then does it again.
func resolveCase(r *run, accept bool) {
	svc := r.w.api(r.e.svcTok)
	vm := r.holding("u1", "cyclades.vm", 5)
	ram := r.holding("u1", "cyclades.ram", 5)
	_, err := svc.IssueCommission(r.ctx, client.Commission{AutoAccept: true, Provisions: []client.Provision{prov(ram, 3)}})
	r.say("take 3 ram: %s", r.errText(err))
	serial, err := svc.IssueCommission(r.ctx, client.Commission{Provisions: []client.Provision{prov(vm, 2), prov(ram, -1)}})
	r.say("issue: %s %s; vm %s; ram %s", r.label(serial), r.errText(err), r.usage(vm), r.usage(ram))
	if accept {
		err = svc.AcceptCommission(r.ctx, serial)
	} else {
		err = svc.CommissionActionReason(r.ctx, serial, client.ActionReject, "changed my mind")
	}
	r.must(err == nil, "resolve: %v", err)
	r.say("resolve (accept %v): %s; vm %s; ram %s", accept, r.errText(err), r.usage(vm), r.usage(ram))
	want := map[bool][2]string{true: {"limit 5 usage 2..2", "limit 5 usage 2..2"}, false: {"limit 5 usage 0..0", "limit 5 usage 3..3"}}[accept]
	r.must(r.usage(vm) == want[0] && r.usage(ram) == want[1], "after the resolve: vm %s, ram %s; want %v", r.usage(vm), r.usage(ram), want)
	before := r.state()
	err = svc.AcceptCommission(r.ctx, serial)
	r.must(client.StatusOf(err) == 404, "resolved twice: %v", err)
	r.say("again: %s", r.errText(err))
	_, err = svc.GetCommissionInfo(r.ctx, serial)
	r.say("info: %s", r.errText(err))
	r.must(r.state() == before, "a second resolve changed the state")
}

// badBodies sends bodies of every wrong shape, raw, to the endpoints that
// take a body (and serials that are no serial to those that take one):
// every one is a 4xx that says what is wrong, the same on both wires, and
// changes nothing.
func badBodies(r *run) {
	vm := r.holding("u1", "cyclades.vm", 10)
	serial, err := r.w.api(r.e.svcTok).IssueCommission(r.ctx, client.Commission{Provisions: []client.Provision{prov(vm, 1)}})
	r.say("issue: %s %s", r.label(serial), r.errText(err))
	s := strconv.FormatInt(serial, 10)
	p := fmt.Sprintf(`{"holder": %q, "source": %q, "resource": "cyclades.vm", "quantity": 1}`, vm.Holder, vm.Source.Name())
	big := `{"provisions": [` + p + `], "name": "` + strings.Repeat("x", wiresMaxBody) + `"}`
	cases := []struct {
		ep     wire.NATSEndpoint
		serial string
		body   string
	}{
		{wire.NATSIssue, "", ``},
		{wire.NATSIssue, "", `not json`},
		{wire.NATSIssue, "", `[1]`},
		{wire.NATSIssue, "", `{"provisions": [` + p + `]} trailing`},
		{wire.NATSIssue, "", `{"provisions": "x"}`},
		{wire.NATSIssue, "", `{"provisions": null}`},
		{wire.NATSIssue, "", `{"provisions": [1]}`},
		{wire.NATSIssue, "", `{"provisions": [{"holder": 1, "source": null, "resource": "r", "quantity": 1}]}`},
		{wire.NATSIssue, "", `{"provisions": [{"holder": "h", "resource": "r", "quantity": 1}]}`},
		{wire.NATSIssue, "", `{"provisions": [{"holder": "h", "source": null, "resource": "r", "quantity": 1.5}]}`},
		{wire.NATSIssue, "", `{"provisions": [{"holder": "h", "source": null, "resource": "r", "quantity": 9223372036854775808}]}`},
		{wire.NATSIssue, "", `{"provisions": [` + p + `], "force": "yes"}`},
		{wire.NATSIssue, "", `{"provisions": [` + p + `], "auto_accept": 1}`},
		{wire.NATSIssue, "", `{"provisions": [` + p + `], "name": 7}`},
		{wire.NATSIssue, "", `{"provisions": [` + p + `], "ttl": "1h"}`},
		{wire.NATSIssue, "", `{"provisions": [` + p + `], "ttl": 1e99}`},
		{wire.NATSIssue, "", "{\"provisions\": [], \"name\": \"\xff\"}"},
		{wire.NATSIssue, "", big},
		{wire.NATSAction, s, ``},
		{wire.NATSAction, s, `{}`},
		{wire.NATSAction, s, `{"accept": "", "reject": ""}`},
		{wire.NATSAction, s, `{"accept": "", "reason": 5}`},
		{wire.NATSAction, s, `{"accept": ""`},
		{wire.NATSAction, "abc", `{"accept": ""}`},
		{wire.NATSAction, "99999999999999999999", `{"accept": ""}`},
		{wire.NATSAction, "-3", `{"accept": ""}`},
		{wire.NATSInfo, "abc", ``},
		{wire.NATSInfo, "0", ``},
		{wire.NATSResolve, "", `{"accept": "x"}`},
		{wire.NATSResolve, "", `{"accept": [1.5]}`},
		{wire.NATSResolve, "", `{"reject": [99999999999999999999]}`},
		{wire.NATSResolve, "", `{"accept": [], "reason": ["x"]}`},
		{wire.NATSResolve, "", `nope`},
		{wire.NATSCatalogs, "", `{"uuids": 5}`},
		{wire.NATSCatalogs, "", `{"displaynames": [1]}`},
		{wire.NATSCatalogs, "", `[]`},
		{wire.NATSCatalogs, "", ``},
	}
	before := r.state()
	for _, c := range cases {
		code, body := r.w.raw(r.t, c.ep, c.serial, r.e.svcTok, nil, []byte(c.body))
		r.must(code >= 400 && code < 500, "%s %q %.40q: %d %s", c.ep.Name, c.serial, c.body, code, body)
		in := c.body
		if len(in) > 80 {
			in = in[:80] + "..."
		}
		shown := c.serial
		if shown == s {
			shown = r.label(serial)
		}
		r.say("%s %q %q: %d %s", c.ep.Name, shown, in, code, serialInText.ReplaceAllString(string(body), "serial N"))
	}
	r.must(r.state() == before, "a bad body changed the state")
}

func contains(ss []int64, s int64) bool {
	for _, v := range ss {
		if v == s {
			return true
		}
	}
	return false
}

// labels are the run's labels of serials.
func (r *run) labels(ss []int64) string {
	out := make([]string, len(ss))
	for i, s := range ss {
		out[i] = r.label(s)
	}
	return "[" + strings.Join(out, " ") + "]"
}

func jsonText(v any) string {
	b, err := json.Marshal(v)
	if err != nil {
		return err.Error()
	}
	return string(b)
}

// TestNATSRetries: the NATS client retries what it may, as Client does: an
// issue with an idempotency key (given, or its own with SafeRetries) after
// a 503, not one without; and a call that no instance of the service took
// is an error that says so.
func TestNATSRetries(t *testing.T) {
	var mu sync.Mutex
	refuse, asked := 0, 0
	e := newTwoWiresWith(t, api.NATSOptions{Forward: func(context.Context, string, *nats.Msg) (*nats.Msg, error) {
		mu.Lock()
		defer mu.Unlock()
		asked++
		if refuse > 0 {
			refuse--
			return nil, failure.New(failure.Unavailable, "no leader yet")
		}
		return nil, nil
	}})
	ctx := context.Background()
	k := holdings.Key{Holder: "h", Source: holdings.NullSource, Resource: "r"}
	if err := e.l.SetHoldings(ctx, []ledger.HoldingSetting{{Key: k, Limit: 100}}); err != nil {
		t.Fatal(err)
	}
	cm := client.Commission{Provisions: []client.Provision{prov(k, 1)}}
	opts := client.NATSOptions{Retries: 3, Backoff: time.Millisecond, MaxBackoff: 5 * time.Millisecond}
	try := func(opts client.NATSOptions, cm client.Commission, refusals int) (int, error) {
		t.Helper()
		mu.Lock()
		refuse, asked = refusals, 0
		mu.Unlock()
		_, err := client.NewNATS(e.nc, e.svcTok, opts).IssueCommission(ctx, cm)
		mu.Lock()
		defer mu.Unlock()
		return asked, err
	}
	keyed := cm
	keyed.IdempotencyKey = "retry-me"
	if n, err := try(opts, keyed, 2); err != nil || n != 3 {
		t.Fatalf("a keyed issue after two 503s: %v, sent %d times, want 3", err, n)
	}
	var su *client.ServiceUnavailable
	if n, err := try(opts, cm, 2); !errors.As(err, &su) || n != 1 {
		t.Fatalf("an issue without a key after a 503: %v, sent %d times, want once", err, n)
	}
	safe := opts
	safe.SafeRetries = true
	if n, err := try(safe, cm, 1); err != nil || n != 2 {
		t.Fatalf("an issue with SafeRetries after a 503: %v, sent %d times, want 2", err, n)
	}
	if n, err := try(opts, keyed, 5); !errors.As(err, &su) || n != 4 {
		t.Fatalf("a keyed issue after more 503s than retries: %v, sent %d times, want 4", err, n)
	}
	// No instance of the service on a prefix: no responders, said so.
	_, err := client.NewNATS(e.nc, e.svcTok, client.NATSOptions{Prefix: "nobody.v1", Retries: 2, Backoff: time.Millisecond}).
		GetPendingCommissions(ctx)
	if !errors.Is(err, nats.ErrNoResponders) {
		t.Fatalf("a call no one takes: %v", err)
	}
}

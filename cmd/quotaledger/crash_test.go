package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"os"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/quotaledger/quotaledger/events"
	"github.com/quotaledger/quotaledger/internal/testkit"
)

// The load of TestCrashUnderLoad and TestNATSAway: one service issues
// commissions on a few holdings, accepts and rejects them, over HTTP from
// many clients at once; every call and its answer is recorded, and the
// ledger read back afterwards must be what the answers say (DESIGN.md §8).

const (
	crashService  = "crashsvc"
	crashSource   = "system"
	crashResource = "crash.r"
)

// crashSoak reports whether the long form runs (QUOTALEDGER_SOAK set).
func crashSoak() bool { return os.Getenv("QUOTALEDGER_SOAK") != "" }

// crashProv is one provision of an issue body.
type crashProv struct {
	Holder   string `json:"holder"`
	Source   string `json:"source"`
	Resource string `json:"resource"`
	Quantity int64  `json:"quantity"`
}

// crashIssue is an issue request as sent, kept so that an unanswered
// idempotent one can be sent again after the restart.
type crashIssue struct {
	name   string
	idem   string // "" without an idempotency key
	header bool   // the key goes in the Idempotency-Key header, not the body
	auto   bool
	provs  []crashProv
	body   string
}

// merged are the issue's provisions merged by holding, as the ledger keeps them.
func (is *crashIssue) merged() map[string]int64 {
	m := map[string]int64{}
	for _, p := range is.provs {
		m[p.Holder] += p.Quantity
	}
	return m
}

// Kinds of calls.
const (
	crashKindIssue   = "issue"   // a new commission
	crashKindReplay  = "replay"  // the same idempotent issue again, after its 201
	crashKindRetry   = "retry"   // an unanswered idempotent issue sent again after the restart
	crashKindResolve = "resolve" // accept or reject a pending commission
	crashKindStale   = "stale"   // accept or reject a commission resolved before: 404
	crashKindMany    = "many"    // resolve many: pending ones and one resolved before
	crashKindRead    = "read"    // GET the pending list or the holdings
)

// crashCall is one call and its answer.
type crashCall struct {
	kind     string
	issue    *crashIssue // issue, replay, retry
	serial   uint64      // resolve, stale
	accept   bool        // resolve, stale
	acc, rej []uint64    // many: pending serials to accept and reject
	stale    uint64      // many: a resolved serial in the accept list
	path     string      // read
	target   string      // the API it went to (set before: that one, else one at random)

	status     int // 0: no answer
	body       []byte
	retryAfter string // the answer's Retry-After header
	err        error
	notSent    bool      // refused at connect: the server never saw it
	sent, done time.Time // when the call was made, and when the answer (or the failure) came
}

// unavailable reports whether c was answered 503: on a cluster, while a
// leader is elected or the call met a change of leader.
func (c *crashCall) unavailable() bool { return c.status == http.StatusServiceUnavailable }

// unknown reports whether c's answer says its outcome is unknown (a 503
// for a call that met a change of leader on the way, or a forwarded one
// the leader did not answer): it is applied wholly or not at all, as a
// call with no answer. Any other 503 refused the call before it was
// applied.
func (c *crashCall) unknown() bool {
	return c.unavailable() && strings.Contains(string(c.body), "outcome is unknown")
}

// answeredNot reports whether c got no answer that says what became of it:
// none at all, or a 503 whose outcome is unknown.
func (c *crashCall) answeredNot() bool { return c.status == 0 || c.unknown() }

// answered is the serial of a 201 to an issue (0 otherwise).
func (c *crashCall) answered() uint64 {
	if c.status != http.StatusCreated {
		return 0
	}
	var v struct {
		Serial uint64 `json:"serial"`
	}
	if json.Unmarshal(c.body, &v) != nil {
		return 0
	}
	return v.Serial
}

// crashCommission is a commission as the ledger holds it.
type crashCommission struct {
	serial uint64
	name   string
	provs  map[string]int64 // holder -> quantity
	state  string           // crashPending, crashAccepted, crashRejected
}

const (
	crashPending  = "pending"
	crashAccepted = "accepted"
	crashRejected = "rejected"
)

// crashLedger is what the ledger holds of the service's commissions.
type crashLedger struct {
	byName   map[string]*crashCommission
	bySerial map[uint64]*crashCommission
}

// crashHarness drives one server (restarted on the same data directory),
// or the nodes of a cluster, and knows what its ledger must hold.
type crashHarness struct {
	t   *testing.T
	dir string
	p   *proc
	// cluster is set when the load meets the nodes of a cluster: a write
	// may be answered 503 (with Retry-After) while a leader is elected or
	// when it meets a change of leader, and node is the one the checks
	// read (h.p when empty).
	cluster bool
	node    string
	admin   string // the admin's token
	svc     string // the service's token
	holders []string
	limit   int64
	workers int
	rnd     *rand.Rand
	names   atomic.Uint64

	// What the last check found: the ledger then.
	model crashLedger
}

// crashStart starts a server on a fresh data directory (with args) and
// sets up the service and its holdings.
func crashStart(t *testing.T, holders, workers int, limit int64, args ...string) *crashHarness {
	t.Helper()
	h := newCrashHarness(t, workers, limit)
	h.dir = t.TempDir()
	h.p = startServe(t, nil, append([]string{"--data", h.dir}, args...)...)
	h.admin = readBootstrap(t, h.dir).Token
	h.setup(holders)
	return h
}

// crashStartCluster sets up the service and its holdings on a cluster,
// through its leader, for a load that meets every node.
func crashStartCluster(t *testing.T, c *testCluster, holders, workers int, limit int64) *crashHarness {
	t.Helper()
	h := newCrashHarness(t, workers, limit)
	h.cluster, h.node, h.admin = true, c.Leader().Base(), c.Token
	h.setup(holders)
	// Every node knows the service's token (the log brings it to the
	// followers; until then a read there with it is a 401). The status
	// Converged reads is as of each node's last report: a node that joined
	// from a checkpoint may report the leader's sequence before the leader
	// reports its own past the setup, so each node is asked too.
	c.Converged()
	for _, nd := range c.Nodes {
		testkit.CheckFor(t, testkit.Patience, poll, func() error {
			if code, data := call(t, http.MethodGet, nd.Base()+"/account/v1.0/commissions", h.svc, ""); code != http.StatusOK {
				return fmt.Errorf("%s: GET commissions with the service's token: %d %s", nd.Name, code, data)
			}
			return nil
		})
	}
	return h
}

func newCrashHarness(t *testing.T, workers int, limit int64) *crashHarness {
	seed := uint64(time.Now().UnixNano())
	t.Logf("seed %d", seed)
	return &crashHarness{t: t, limit: limit, workers: workers, rnd: rand.New(rand.NewPCG(seed, seed>>7)),
		model: crashLedger{byName: map[string]*crashCommission{}, bySerial: map[uint64]*crashCommission{}}}
}

// base is the API the checks read: the server's, or the node's of a
// cluster.
func (h *crashHarness) base() string {
	if h.node != "" {
		return h.node
	}
	return h.p.base
}

// setup makes the service and its holdings.
func (h *crashHarness) setup(holders int) {
	t := h.t
	t.Helper()
	code, data := call(t, http.MethodPost, h.base()+"/account/v1.0/services", h.admin,
		`{"name":"`+crashService+`","type":"compute","endpoints":[]}`)
	var svc struct {
		Token string `json:"token"`
	}
	if code != http.StatusCreated || json.Unmarshal(data, &svc) != nil || svc.Token == "" {
		t.Fatalf("POST services: %d %s", code, data)
	}
	h.svc = svc.Token
	var hs []string
	for i := range holders {
		holder := fmt.Sprintf("crash-h%d", i)
		h.holders = append(h.holders, holder)
		hs = append(hs, fmt.Sprintf(`{"holder":%q,"source":%q,"resource":%q,"limit":%d}`, holder, crashSource, crashResource, h.limit))
	}
	if code, data := call(t, http.MethodPost, h.base()+"/account/v1.0/holdings", h.admin,
		`{"holdings":[`+strings.Join(hs, ",")+`]}`); code != http.StatusOK {
		t.Fatalf("POST holdings: %d %s", code, data)
	}
}

// crashLoad is one run of load against one server process, or the nodes
// of a cluster.
type crashLoad struct {
	h       *crashHarness
	targets atomic.Pointer[[]string] // each call goes to one of these, at random
	client  *http.Client
	stop    atomic.Bool

	mu       sync.Mutex
	pool     []uint64 // pending serials nobody is resolving
	resolved []uint64 // serials surely resolved (for stale calls)
	calls    []*crashCall
}

// newLoad prepares a run against the server, or the nodes at bases: the
// pool holds the commissions the model has pending, and the stale calls
// pick among those it has resolved.
func (h *crashHarness) newLoad(bases ...string) *crashLoad {
	l := &crashLoad{h: h, client: &http.Client{Timeout: 20 * time.Second,
		Transport: &http.Transport{MaxIdleConnsPerHost: 2 * h.workers}}}
	if len(bases) == 0 {
		bases = []string{h.p.base}
	}
	l.aim(bases...)
	for s, c := range h.model.bySerial {
		if c.state == crashPending {
			l.pool = append(l.pool, s)
		} else {
			l.resolved = append(l.resolved, s)
		}
	}
	slices.Sort(l.pool)
	slices.Sort(l.resolved)
	if len(l.resolved) > 1000 {
		l.resolved = l.resolved[len(l.resolved)-1000:]
	}
	return l
}

// aim sends the calls from now on to the nodes at bases (as a client
// that learnt a node is gone).
func (l *crashLoad) aim(bases ...string) { l.targets.Store(&bases) }

// crashBackoff is how long a worker waits after a 503 or a failed call on
// a cluster before its next call, as a client would, rather than spin
// while a leader is elected.
const crashBackoff = 50 * time.Millisecond

// send makes one call; status 0 and err when no full answer came.
func (l *crashLoad) send(c *crashCall, method, path, token, body, idemHeader string) {
	if c.target == "" {
		targets := *l.targets.Load()
		c.target = targets[rand.IntN(len(targets))]
	}
	req, err := http.NewRequest(method, c.target+path, strings.NewReader(body))
	if err != nil {
		c.err = err
		return
	}
	if l.h.cluster {
		defer func() {
			if c.status == 0 || c.unavailable() {
				time.Sleep(crashBackoff)
			}
		}()
	}
	req.Header.Set("X-Auth-Token", token)
	req.Header.Set("Content-Type", "application/json")
	if idemHeader != "" {
		req.Header.Set("Idempotency-Key", idemHeader)
	}
	c.sent = time.Now()
	resp, err := l.client.Do(req)
	defer func() { c.done = time.Now() }()
	if err != nil {
		c.err = err
		// Refused at connect: never seen by the server. Not so with an
		// Idempotency-Key header, which makes net/http resend the request
		// on a new connection after a failed one: then the refusal may
		// follow a first attempt that the server did apply.
		c.notSent = errors.Is(err, syscall.ECONNREFUSED) && idemHeader == ""
		return
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	if err != nil {
		c.err = err // half an answer is no answer
		return
	}
	c.status, c.body, c.retryAfter = resp.StatusCode, data, resp.Header.Get("Retry-After")
}

func (l *crashLoad) record(c *crashCall) {
	l.mu.Lock()
	l.calls = append(l.calls, c)
	l.mu.Unlock()
}

// take removes up to n random serials from the pool.
func (l *crashLoad) take(r *rand.Rand, n int) []uint64 {
	l.mu.Lock()
	defer l.mu.Unlock()
	var out []uint64
	for len(out) < n && len(l.pool) > 0 {
		i := r.IntN(len(l.pool))
		out = append(out, l.pool[i])
		l.pool[i] = l.pool[len(l.pool)-1]
		l.pool = l.pool[:len(l.pool)-1]
	}
	return out
}

func (l *crashLoad) put(serial uint64, resolved bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if resolved {
		l.resolved = append(l.resolved, serial)
	} else {
		l.pool = append(l.pool, serial)
	}
}

func (l *crashLoad) staleSerial(r *rand.Rand) uint64 {
	l.mu.Lock()
	defer l.mu.Unlock()
	if len(l.resolved) == 0 {
		return 0
	}
	return l.resolved[r.IntN(len(l.resolved))]
}

// newIssue makes a random issue request with a name never used before.
func (l *crashLoad) newIssue(r *rand.Rand) *crashIssue {
	h := l.h
	n := h.names.Add(1)
	is := &crashIssue{name: fmt.Sprintf("crash-%d", n), auto: r.IntN(4) == 0}
	if r.IntN(10) < 3 {
		is.idem, is.header = fmt.Sprintf("crash-key-%d", n), r.IntN(2) == 0
	}
	for _, i := range r.Perm(len(h.holders))[:1+r.IntN(3)] {
		q := 1 + r.Int64N(5)
		if r.IntN(100) < 35 {
			q = -1 - r.Int64N(3)
		}
		is.provs = append(is.provs, crashProv{Holder: h.holders[i], Source: crashSource, Resource: crashResource, Quantity: q})
	}
	if r.IntN(10) == 0 { // a holding twice: the ledger merges them
		p := is.provs[0]
		p.Quantity = 1
		is.provs = append(is.provs, p)
	}
	body := map[string]any{"name": is.name, "provisions": is.provs}
	if is.auto {
		body["auto_accept"] = true
	}
	if is.idem != "" && !is.header {
		body["idempotency_key"] = is.idem
	}
	b, _ := json.Marshal(body)
	is.body = string(b)
	return is
}

// issue sends is (kind issue, replay or retry).
func (l *crashLoad) issue(kind string, is *crashIssue) *crashCall { return l.issueAt("", kind, is) }

// issueAt sends is to the API at target ("": to one at random).
func (l *crashLoad) issueAt(target, kind string, is *crashIssue) *crashCall {
	c := &crashCall{kind: kind, issue: is, target: target}
	hdr := ""
	if is.header {
		hdr = is.idem
	}
	l.send(c, http.MethodPost, "/account/v1.0/commissions", l.h.svc, is.body, hdr)
	l.record(c)
	return c
}

// worker makes random calls until the load stops.
func (l *crashLoad) worker(r *rand.Rand) {
	for !l.stop.Load() {
		switch x := r.IntN(100); {
		case x < 50:
			is := l.newIssue(r)
			c := l.issue(crashKindIssue, is)
			s := c.answered()
			if s == 0 {
				continue
			}
			l.put(s, is.auto)
			if is.idem != "" && r.IntN(3) == 0 {
				l.issue(crashKindReplay, is)
			}
		case x < 88:
			serials := l.take(r, 1)
			if len(serials) == 0 {
				continue
			}
			c := &crashCall{kind: crashKindResolve, serial: serials[0], accept: r.IntN(2) == 0}
			l.resolve(c)
			if c.status == http.StatusOK {
				l.put(c.serial, true)
			}
		case x < 92:
			serials := l.take(r, 1+r.IntN(4))
			if len(serials) == 0 {
				continue
			}
			c := &crashCall{kind: crashKindMany, stale: l.staleSerial(r)}
			for _, s := range serials {
				if r.IntN(2) == 0 {
					c.acc = append(c.acc, s)
				} else {
					c.rej = append(c.rej, s)
				}
			}
			acc := c.acc
			if c.stale != 0 {
				acc = append(slices.Clone(acc), c.stale)
			}
			b, _ := json.Marshal(map[string]any{"accept": nonNil(acc), "reject": nonNil(c.rej), "reason": "many"})
			l.send(c, http.MethodPost, "/account/v1.0/commissions/action", l.h.svc, string(b), "")
			l.record(c)
			if c.status == http.StatusOK {
				for _, s := range serials {
					l.put(s, true)
				}
			}
		case x < 96:
			c := &crashCall{kind: crashKindRead, path: "/account/v1.0/commissions"}
			token := l.h.svc
			if r.IntN(2) == 0 {
				c.path, token = "/account/v1.0/holdings?holder="+l.h.holders[r.IntN(len(l.h.holders))], l.h.admin
			}
			l.send(c, http.MethodGet, c.path, token, "", "")
			l.record(c)
		default:
			s := l.staleSerial(r)
			if s == 0 {
				continue
			}
			l.resolve(&crashCall{kind: crashKindStale, serial: s, accept: r.IntN(2) == 0})
		}
	}
}

func nonNil(s []uint64) []uint64 {
	if s == nil {
		return []uint64{}
	}
	return s
}

// resolve sends the accept or reject of c.
func (l *crashLoad) resolve(c *crashCall) {
	body := `{"reject":"","reason":"crash"}`
	if c.accept {
		body = `{"accept":"","reason":"crash"}`
	}
	l.send(c, http.MethodPost, fmt.Sprintf("/account/v1.0/commissions/%d/action", c.serial), l.h.svc, body, "")
	l.record(c)
}

// start starts the workers; the returned function stops them and waits.
func (l *crashLoad) start() (wait func()) {
	var wg sync.WaitGroup
	for range l.h.workers {
		r := rand.New(rand.NewPCG(l.h.rnd.Uint64(), l.h.rnd.Uint64()))
		wg.Add(1)
		go func() {
			defer wg.Done()
			l.worker(r)
		}()
	}
	return func() {
		l.stop.Store(true)
		wg.Wait()
		l.client.CloseIdleConnections()
	}
}

// retry sends again, to the restarted server, every idempotent issue that
// got no answer (on a cluster, or a 503): the same key must answer the
// first call's serial if it was applied, and issue anew if not.
func (l *crashLoad) retry(calls []*crashCall) {
	unanswered := func(c *crashCall) bool { return c.status == 0 || (l.h.cluster && c.unavailable()) }
	answeredNames := map[string]bool{}
	for _, c := range calls {
		if c.issue != nil && !unanswered(c) {
			answeredNames[c.issue.name] = true
		}
	}
	for _, c := range calls {
		if c.kind == crashKindIssue && unanswered(c) && c.issue.idem != "" && !answeredNames[c.issue.name] {
			l.issue(crashKindRetry, c.issue)
		}
	}
}

// ---------------------------------------------------------------------------
// Reading the ledger back.

// crashGet answers the JSON of GET path, failing the test on anything but
// 200.
func (h *crashHarness) crashGet(path, token string, v any) {
	h.t.Helper()
	code, data := call(h.t, http.MethodGet, h.base()+path, token, "")
	if code != http.StatusOK {
		h.t.Fatalf("GET %s: %d %s", path, code, data)
	}
	if err := json.Unmarshal(data, v); err != nil {
		h.t.Fatalf("GET %s: %v: %s", path, err, data)
	}
}

// readLedger reads the service's commissions: the pending ones (list,
// then each one's detail) and the resolved ones (the provision log).
func (h *crashHarness) readLedger() crashLedger {
	t := h.t
	t.Helper()
	out := crashLedger{byName: map[string]*crashCommission{}, bySerial: map[uint64]*crashCommission{}}
	add := func(c *crashCommission) {
		if prev := out.byName[c.name]; prev != nil {
			t.Fatalf("commission name %s twice in the ledger: serials %d and %d", c.name, prev.serial, c.serial)
		}
		if out.bySerial[c.serial] != nil {
			t.Fatalf("serial %d twice in the ledger", c.serial)
		}
		out.byName[c.name], out.bySerial[c.serial] = c, c
	}
	var pending []uint64
	h.crashGet("/account/v1.0/commissions", h.svc, &pending)
	for _, s := range pending {
		var cm struct {
			Serial     uint64      `json:"serial"`
			Name       string      `json:"name"`
			Provisions []crashProv `json:"provisions"`
		}
		h.crashGet(fmt.Sprintf("/account/v1.0/commissions/%d", s), h.svc, &cm)
		c := &crashCommission{serial: cm.Serial, name: cm.Name, provs: map[string]int64{}, state: crashPending}
		for _, p := range cm.Provisions {
			c.provs[p.Holder] += p.Quantity
		}
		add(c)
	}
	var c *crashCommission // a commission's entries may span two pages
	for pageNo := 1; ; pageNo++ {
		var page struct {
			Next    *string `json:"next"`
			Results []struct {
				Serial   uint64 `json:"serial"`
				Client   string `json:"client"`
				Name     string `json:"name"`
				Holder   string `json:"holder"`
				Quantity int64  `json:"quantity"`
				Reason   string `json:"reason"`
			} `json:"results"`
		}
		h.crashGet(fmt.Sprintf("/account/v1.0/history?page=%d&page_size=100", pageNo), h.admin, &page)
		for _, e := range page.Results {
			if e.Client != crashService {
				continue
			}
			if c == nil || c.serial != e.Serial {
				c = &crashCommission{serial: e.Serial, name: e.Name, provs: map[string]int64{}}
				switch {
				case strings.HasPrefix(e.Reason, "ACCEPT:"):
					c.state = crashAccepted
				case strings.HasPrefix(e.Reason, "REJECT:"):
					c.state = crashRejected
				default:
					t.Fatalf("commission %d logged with reason %q", e.Serial, e.Reason)
				}
				add(c) // fails for one also pending, or logged twice
			}
			c.provs[e.Holder] += e.Quantity
		}
		if page.Next == nil {
			return out
		}
	}
}

// crashHolding is a holding as GET holdings answers it.
type crashHolding struct {
	Holder   string `json:"holder"`
	Limit    int64  `json:"limit"`
	UsageMin int64  `json:"usage_min"`
	UsageMax int64  `json:"usage_max"`
}

// checkUsage checks each holding against the commissions of led: usage_min
// is the accepted quantities less the pending releases, usage_max the
// accepted quantities plus the pending imports; and the invariants of
// DESIGN.md §1 hold (nothing is forced).
func (h *crashHarness) checkUsage(led crashLedger) {
	t := h.t
	t.Helper()
	var got struct {
		Holdings []crashHolding `json:"holdings"`
	}
	h.crashGet("/account/v1.0/holdings?holder="+strings.Join(h.holders, ",")+"&source="+crashSource+
		"&resource="+crashResource, h.admin, &got)
	if len(got.Holdings) != len(h.holders) {
		t.Fatalf("%d holdings, want %d: %+v", len(got.Holdings), len(h.holders), got.Holdings)
	}
	want := map[string]*crashHolding{}
	for _, holder := range h.holders {
		want[holder] = &crashHolding{Holder: holder, Limit: h.limit}
	}
	for _, c := range led.bySerial {
		for holder, q := range c.provs {
			w := want[holder]
			if w == nil {
				t.Fatalf("commission %d names holding %s", c.serial, holder)
			}
			switch {
			case c.state == crashAccepted:
				w.UsageMin += q
				w.UsageMax += q
			case c.state == crashPending && q >= 0:
				w.UsageMax += q
			case c.state == crashPending:
				w.UsageMin += q
			}
		}
	}
	for _, g := range got.Holdings {
		w := want[g.Holder]
		if w == nil || *w != g {
			t.Fatalf("holding %s is %+v; its commissions make it %+v", g.Holder, g, w)
		}
		if g.UsageMin < 0 || g.UsageMin > g.UsageMax || g.UsageMax > g.Limit {
			t.Fatalf("holding %+v breaks 0 <= usage_min <= usage_max <= limit", g)
		}
	}
}

// crashSummary counts a run's calls.
type crashSummary struct {
	answered, refused int
	inFlight          int // no answer: the connection broke
	connRefused       int // no answer: the server was gone
	applied           int // of the changes without an answer, applied
	notApplied        int // and not applied
	retried           int // idempotent issues sent again after the restart
	stale             int // resolves of resolved commissions refused (404), changing nothing
	unavailable       int // answered 503 (a cluster's only)
	unknown           int // of those, the ones whose outcome is unknown
	events            int // messages in the stream
}

func (s crashSummary) String() string {
	unanswered := "none unanswered"
	if s.inFlight+s.connRefused > 0 {
		unanswered = fmt.Sprintf("%d unanswered: %d in flight at the kill, %d refused connection "+
			"(of the changes among them %d applied, %d not)", s.inFlight+s.connRefused, s.inFlight, s.connRefused,
			s.applied, s.notApplied)
	}
	if s.unavailable > 0 {
		unanswered += fmt.Sprintf("; %d answered 503 (%d of them with an unknown outcome, counted with the unanswered changes)",
			s.unavailable, s.unknown)
	}
	return fmt.Sprintf("%d calls answered 2xx, %d refused 4xx (%d of them resolves of resolved commissions), %s; "+
		"%d unanswered idempotent issues retried; %d events in the stream, each once, in outbox order",
		s.answered, s.refused, s.stale, unanswered, s.retried, s.events)
}

func (s *crashSummary) add(o crashSummary) {
	s.answered += o.answered
	s.refused += o.refused
	s.inFlight += o.inFlight
	s.connRefused += o.connRefused
	s.applied += o.applied
	s.notApplied += o.notApplied
	s.retried += o.retried
	s.stale += o.stale
	s.unavailable += o.unavailable
	s.unknown += o.unknown
	s.events = o.events
}

// check reads the ledger back and checks it against the model (the ledger
// at the previous check) and the calls made since: every answered call is
// there, no refused call left a trace, every unanswered one is all there
// or not at all, the holdings add up, and every event is in the stream
// once, in order. The ledger read becomes the model. On a cluster a write
// may be answered 503 with Retry-After: one whose outcome is unknown is
// taken as unanswered, any other as refused.
func (h *crashHarness) check(calls []*crashCall, natsURL string) crashSummary {
	t := h.t
	t.Helper()
	led := h.readLedger()
	var sum crashSummary
	fail := func(c *crashCall, format string, args ...any) {
		t.Helper()
		t.Fatalf("%s call (issue %+v, serial %d, accept %v, many %v/%v/%d, path %q): status %d %s (%v): %s", c.kind,
			c.issue, c.serial, c.accept, c.acc, c.rej, c.stale, c.path, c.status, c.body, c.err, fmt.Sprintf(format, args...))
	}

	// The model's commissions are all still there, unchanged but for the
	// resolves of the pending ones.
	for name, m := range h.model.byName {
		c := led.byName[name]
		if c == nil || c.serial != m.serial || !mapsEqual(c.provs, m.provs) {
			t.Fatalf("commission %s (%d %v) became %+v", name, m.serial, m.provs, c)
		}
		if m.state != crashPending && c.state != m.state {
			t.Fatalf("commission %s was %s, now %s", name, m.state, c.state)
		}
	}

	// Issues, by name (an idempotent one may be sent more than once).
	type nameAnswers struct {
		issue      *crashIssue
		serials    map[uint64]bool
		refused    bool
		unsure     bool // some call got no answer
		notSent    bool // the first call surely never arrived
		calls      int
		refused503 int // calls answered 503 with nothing applied
	}
	byName := map[string]*nameAnswers{}
	touched := map[uint64]bool{} // serials some resolve call named
	for _, c := range calls {
		switch {
		case c.status >= 200 && c.status < 300:
			sum.answered++
		case c.status >= 400 && c.status < 500:
			sum.refused++
		case c.status == 0 && errors.Is(c.err, syscall.ECONNREFUSED):
			sum.connRefused++
		case c.status == 0:
			sum.inFlight++
		case h.cluster && c.unavailable() && c.kind != crashKindRead:
			if c.retryAfter == "" {
				fail(c, "503 without Retry-After")
			}
			sum.unavailable++
			if c.unknown() {
				sum.unknown++
			}
		default:
			fail(c, "a status the load never expects")
		}
		switch c.kind {
		case crashKindIssue, crashKindReplay, crashKindRetry:
			if c.kind == crashKindRetry {
				sum.retried++
			}
			a := byName[c.issue.name]
			if a == nil {
				a = &nameAnswers{issue: c.issue, serials: map[uint64]bool{}}
				byName[c.issue.name] = a
			}
			a.calls++
			switch {
			case c.status == http.StatusCreated:
				if c.answered() == 0 {
					fail(c, "no serial")
				}
				a.serials[c.answered()] = true
			case c.status == http.StatusRequestEntityTooLarge && strings.Contains(string(c.body), `"overLimit"`):
				a.refused = true
			case c.answeredNot():
				a.unsure = true
				a.notSent = a.notSent || (c.kind == crashKindIssue && c.notSent)
			case c.unavailable():
				a.refused503++
			default:
				fail(c, "want 201 or 413 overLimit")
			}
		case crashKindResolve:
			touched[c.serial] = true
			cm := led.bySerial[c.serial]
			want := crashRejected
			if c.accept {
				want = crashAccepted
			}
			switch {
			case cm == nil:
				fail(c, "the commission is not in the ledger")
			case c.status == http.StatusOK && cm.state != want:
				fail(c, "answered, but the commission is %s", cm.state)
			case c.answeredNot() && cm.state != want && cm.state != crashPending:
				fail(c, "unanswered, and the commission is %s", cm.state)
			case c.answeredNot() && cm.state == want:
				sum.applied++
			case c.answeredNot():
				sum.notApplied++
			case c.unavailable() && cm.state != crashPending:
				// Nobody else resolved it: the serial left the pool.
				fail(c, "refused, but the commission is %s", cm.state)
			case c.unavailable():
			case c.status != http.StatusOK:
				fail(c, "want 200: the commission was pending and nobody else resolved it")
			}
		case crashKindRead:
			if c.status != 0 && c.status != http.StatusOK {
				fail(c, "want 200")
			}
		case crashKindStale:
			// The commission was resolved before the call; a resolved
			// commission stays as it was (checked with the model above,
			// and here for those resolved since).
			if c.status != 0 && c.status != http.StatusNotFound && !(h.cluster && c.unavailable()) {
				fail(c, "want 404 for a resolved commission")
			}
			if c.status == http.StatusNotFound {
				sum.stale++
			}
			if cm := led.bySerial[c.serial]; cm == nil || cm.state == crashPending {
				fail(c, "the commission is %+v", cm)
			}
		case crashKindMany:
			state := func(serials []uint64, want string) (all, none bool) {
				all, none = true, true
				for _, s := range serials {
					touched[s] = true
					cm := led.bySerial[s]
					if cm == nil {
						fail(c, "commission %d is not in the ledger", s)
					}
					all = all && cm.state == want
					none = none && cm.state == crashPending
				}
				return all, none
			}
			allAcc, noneAcc := state(c.acc, crashAccepted)
			allRej, noneRej := state(c.rej, crashRejected)
			if cm := led.bySerial[c.stale]; c.stale != 0 && (cm == nil || cm.state == crashPending) {
				fail(c, "the resolved commission %d is %+v", c.stale, cm)
			}
			switch c.status {
			case http.StatusOK:
				var res struct {
					Accepted []uint64            `json:"accepted"`
					Rejected []uint64            `json:"rejected"`
					Failed   [][]json.RawMessage `json:"failed"`
				}
				if err := json.Unmarshal(c.body, &res); err != nil {
					fail(c, "%v", err)
				}
				wantFailed := 0
				if c.stale != 0 {
					wantFailed = 1
				}
				if !sameSet(res.Accepted, c.acc) || !sameSet(res.Rejected, c.rej) || len(res.Failed) != wantFailed ||
					(wantFailed == 1 && (string(res.Failed[0][0]) != strconv.FormatUint(c.stale, 10) ||
						!strings.Contains(string(res.Failed[0][1]), `"itemNotFound"`))) {
					fail(c, "the answer does not match the request")
				}
				if !allAcc || !allRej {
					fail(c, "answered, but not every commission is resolved as asked")
				}
			case 0, http.StatusServiceUnavailable:
				switch {
				case c.unavailable() && !c.unknown() && !(noneAcc && noneRej):
					fail(c, "refused, but applied")
				case !c.answeredNot():
				case allAcc && allRej:
					sum.applied++
				case noneAcc && noneRej:
					sum.notApplied++
				default:
					fail(c, "unanswered, and applied in part: not atomic")
				}
			default:
				fail(c, "want 200")
			}
		}
	}
	for name, a := range byName {
		c := led.byName[name]
		switch {
		case len(a.serials) > 1:
			t.Fatalf("issue %s answered serials %v", name, a.serials)
		case a.refused && (len(a.serials) > 0 || c != nil):
			t.Fatalf("issue %s refused, but answered %v and in the ledger as %+v", name, a.serials, c)
		case len(a.serials) == 1 && c == nil:
			t.Fatalf("issue %s answered %v, not in the ledger", name, a.serials)
		case len(a.serials) == 1 && !a.serials[c.serial]:
			t.Fatalf("issue %s answered %v, in the ledger as %d", name, a.serials, c.serial)
		case a.notSent && a.calls == 1 && c != nil:
			t.Fatalf("issue %s never reached the server, yet it is in the ledger as %d", name, c.serial)
		case a.refused503 == a.calls && c != nil:
			t.Fatalf("issue %s refused (503) every time, yet it is in the ledger as %d", name, c.serial)
		}
		if c != nil && !mapsEqual(c.provs, a.issue.merged()) {
			t.Fatalf("commission %s holds %v, issued with %v", name, c.provs, a.issue.provs)
		}
		if c != nil && !touched[c.serial] {
			want := crashPending
			if a.issue.auto {
				want = crashAccepted
			}
			if c.state != want {
				t.Fatalf("commission %s (auto_accept %v) is %s, and no call resolved it", name, a.issue.auto, c.state)
			}
		}
		if a.unsure && len(a.serials) == 0 && !a.refused {
			if c != nil {
				sum.applied++
			} else {
				sum.notApplied++
			}
		}
	}
	for name, c := range led.byName {
		if h.model.byName[name] == nil && byName[name] == nil {
			t.Fatalf("commission %s (%d) in the ledger: no call issued it", name, c.serial)
		}
		if m := h.model.byName[name]; m != nil && m.state == crashPending && c.state != crashPending && !touched[c.serial] {
			t.Fatalf("commission %s became %s, and no call resolved it", name, c.state)
		}
	}
	h.checkUsage(led)
	sum.events = h.checkEvents(led, natsURL)
	h.model = led
	return sum
}

func mapsEqual(a, b map[string]int64) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if w, ok := b[k]; !ok || w != v {
			return false
		}
	}
	return true
}

func sameSet(a, b []uint64) bool {
	a, b = slices.Clone(a), slices.Clone(b)
	slices.Sort(a)
	slices.Sort(b)
	return slices.Equal(a, b)
}

// crashEventSeq is the outbox sequence in an event id ("<db id>-<seq>").
func crashEventSeq(t *testing.T, id string) uint64 {
	t.Helper()
	i := strings.LastIndexByte(id, '-')
	seq, err := strconv.ParseUint(id[i+1:], 10, 64)
	if i < 0 || err != nil {
		t.Fatalf("event id %q", id)
	}
	return seq
}

// checkEvents waits until the stream at natsURL holds the events of every
// commission of led (issued, and accepted or rejected once resolved), then
// checks that it holds these only, each once, and that the stream is the
// outbox in order: ids 1, 2, 3... of one database. It answers the number of
// messages.
func (h *crashHarness) checkEvents(led crashLedger, natsURL string) int {
	t := h.t
	t.Helper()
	type ev struct {
		typ    string
		serial uint64
	}
	want := map[ev]string{} // -> name
	for _, c := range led.bySerial {
		want[ev{"commission.issued", c.serial}] = c.name
		switch c.state {
		case crashAccepted:
			want[ev{"commission.accepted", c.serial}] = c.name
		case crashRejected:
			want[ev{"commission.rejected", c.serial}] = c.name
		}
	}
	var msgs []streamMsg
	testkit.CheckFor(t, 30*time.Second, 100*time.Millisecond, func() error {
		msgs = h.readEvents(natsURL)
		got := map[ev]bool{}
		for _, m := range msgs {
			if m.Payload.Client != nil && *m.Payload.Client == crashService {
				got[ev{strings.TrimPrefix(m.Payload.Type, events.TypePrefix), m.Payload.Serial}] = true
			}
		}
		missing := 0
		for e := range want {
			if !got[e] {
				missing++
			}
		}
		if missing > 0 {
			return fmt.Errorf("%d of %d commission events not in the stream", missing, len(want))
		}
		return nil
	})
	time.Sleep(200 * time.Millisecond) // room for a late duplicate, read again if any came
	if h.cluster || len(msgs) == 0 || crashStreamLast(t, natsURL) != msgs[len(msgs)-1].Seq {
		msgs = h.readEvents(natsURL)
	}
	checkOnce(t, msgs)
	db := ""
	seen := map[ev]bool{}
	for i, m := range msgs {
		id := m.Payload.ID
		if seq := crashEventSeq(t, id); seq != uint64(i+1) {
			t.Fatalf("message %d of the stream is event %s: the stream is not the outbox in order", i+1, id)
		}
		if i == 0 {
			db = id[:strings.LastIndexByte(id, '-')]
		} else if !strings.HasPrefix(id, db+"-") {
			t.Fatalf("event %s of another database than %s", id, db)
		}
		if m.Payload.Client == nil || *m.Payload.Client != crashService {
			continue
		}
		e := ev{strings.TrimPrefix(m.Payload.Type, events.TypePrefix), m.Payload.Serial}
		name, ok := want[e]
		switch {
		case !ok:
			t.Fatalf("event %s %s of commission %d (%q): not a change the ledger holds", id, e.typ, e.serial, *m.Payload.Name)
		case seen[e]:
			t.Fatalf("event %s of commission %d twice in the stream", e.typ, e.serial)
		case m.Payload.Name == nil || *m.Payload.Name != name:
			t.Fatalf("event %s %s of commission %d names %v, want %s", id, e.typ, e.serial, m.Payload.Name, name)
		case m.Subject != "quota.commission."+crashService+"."+strings.TrimPrefix(e.typ, "commission."):
			t.Fatalf("event %s %s on subject %s", id, e.typ, m.Subject)
		}
		seen[e] = true
	}
	return len(msgs)
}

// readEvents reads the events stream at natsURL; on a cluster, again while
// the stream elects a leader after a node went.
func (h *crashHarness) readEvents(natsURL string) []streamMsg {
	h.t.Helper()
	if h.cluster {
		return readStreamAgain(h.t, natsURL)
	}
	return readStream(h.t, natsURL)
}

// crashStreamLast is the last sequence of the stream QUOTALEDGER at url.
func crashStreamLast(t *testing.T, url string) uint64 {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	stream, info, done := openStream(ctx, t, url)
	defer done()
	if stream == nil {
		t.Fatalf("no stream %s", events.StreamName)
	}
	return info.State.LastSeq
}

// ---------------------------------------------------------------------------

// TestCrashUnderLoad: many clients issue, accept and reject commissions
// over HTTP while the server is killed with SIGKILL at a random moment, then
// restarted on the same data directory, again and again. After each
// restart the ledger must hold every answered call, nothing of a refused
// one, each unanswered one wholly or not at all; the holdings must add up
// to their commissions; and the stream must hold every event exactly once,
// in outbox order (DESIGN.md §8). QUOTALEDGER_SOAK runs it longer: 25 kills
// (or QUOTALEDGER_SOAK_KILLS) after 1 to 8 s of load each.
func TestCrashUnderLoad(t *testing.T) {
	if runtime.GOOS == "windows" {
		t.Skip("SIGKILL")
	}
	kills, minLoad, maxLoad := 3, 300*time.Millisecond, 1500*time.Millisecond
	if crashSoak() {
		kills, minLoad, maxLoad = 25, time.Second, 8*time.Second
		if n, err := strconv.Atoi(os.Getenv("QUOTALEDGER_SOAK_KILLS")); err == nil && n > 0 {
			kills = n
		}
	}
	began := time.Now()
	h := crashStart(t, 8, 16, 40)
	t.Logf("started in %s", time.Since(began).Round(time.Millisecond))
	var total crashSummary
	for round := 1; round <= kills; round++ {
		l := h.newLoad()
		wait := l.start()
		load := minLoad + time.Duration(h.rnd.Int64N(int64(maxLoad-minLoad)))
		time.Sleep(load)
		h.p.kill()
		wait()
		calls := l.calls

		killed := time.Now()
		outbox := len(outboxIDs(t, h.dir))
		h.p = startServe(t, nil, "--data", h.dir)
		restarted := time.Now()
		l = h.newLoad()
		l.retry(calls)
		calls = append(calls, l.calls...)
		sum := h.check(calls, h.p.nats)
		t.Logf("kill %d after %s of load: %s; %d events were in the outbox at the kill; %d commissions in the ledger "+
			"(restart %s, check %s)", round, load.Round(time.Millisecond), sum, outbox, len(h.model.bySerial),
			restarted.Sub(killed).Round(time.Millisecond), time.Since(restarted).Round(time.Millisecond))
		total.add(sum)
	}
	t.Logf("after %d kills: %s", kills, total)
	if total.answered == 0 || total.refused == 0 {
		t.Fatalf("the load made no answered or no refused call: %s", total)
	}
	h.p.stop()
}

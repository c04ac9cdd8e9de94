package ledger

// The crash test (DESIGN §8, "kill -9 at any moment under load"): the test
// runs its own binary again as a child process that drives the ledger on a
// real disk and prints one line per answered call; the parent kills it with
// SIGKILL at a random moment, reopens the same directory and checks that
// every answered call is there, that no refused call left a trace, and that
// the holdings agree with the durable commissions and provision log. The
// child process, its line protocol and the checker are shared with the fault
// tests of fault_test.go.

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"math/rand/v2"
	"os"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/cockroachdb/pebble/v2/vfs"
	"github.com/rs/zerolog"

	"github.com/quotaledger/quotaledger/holdings"
)

const (
	// crashChildEnv names the directory the crash child runs the ledger in;
	// TestCrashChild does nothing unless it is set.
	crashChildEnv = "QUOTALEDGER_CRASH_CHILD"
	// crashSeedEnv replays the parent's random choices of an earlier run.
	crashSeedEnv = "QUOTALEDGER_CRASH_SEED"

	crashUsers        = 50
	crashProjects     = 5
	crashUserLimit    = 8
	crashProjectLimit = 30
	crashWorkers      = 16
	// crashChecker is the client the parent issues its own commissions as.
	crashChecker = "checker"
	// crashChildDeadline bounds a child that nobody kills.
	crashChildDeadline = 60 * time.Second
)

var (
	crashResources = [2]string{"cyclades.vm", "pithos.diskspace"}
	crashClients   = [4]string{"cyclades", "pithos", "archipelago", "kamaki"}
)

// crashKeys returns the holdings of the workload by index: 2*u+r is user u's
// holding of resource r drawn from its project, 2*crashUsers+2*p+r is
// project p's own holding of resource r (source null).
func crashKeys() []holdings.Key {
	ks := make([]holdings.Key, 0, 2*crashUsers+2*crashProjects)
	for u := range crashUsers {
		for _, r := range crashResources {
			ks = append(ks, key(fmt.Sprintf("user:%02d", u), fmt.Sprintf("project:%d", u%crashProjects), r))
		}
	}
	for p := range crashProjects {
		for _, r := range crashResources {
			ks = append(ks, key(fmt.Sprintf("project:%d", p), "-", r))
		}
	}
	return ks
}

func crashLimit(i int) int64 {
	if i < 2*crashUsers {
		return crashUserLimit
	}
	return crashProjectLimit
}

func crashSettings() []HoldingSetting {
	ks := crashKeys()
	s := make([]HoldingSetting, len(ks))
	for i, k := range ks {
		s[i] = HoldingSetting{Key: k, Limit: crashLimit(i)}
	}
	return s
}

// crashLine is one line a child prints. A line with Try is printed just
// before a call (what is about to be asked), a line without it just after
// the call was answered. Commissions are told apart by their Name, unique
// per issue attempt, so the parent can match what is durable to what was
// asked even for a call that was never answered.
type crashLine struct {
	Op     string     `json:"op"` // ready | issue | resolve | many | injected
	Try    bool       `json:"try,omitempty"`
	Client string     `json:"c,omitempty"`
	Name   string     `json:"n,omitempty"`
	Force  bool       `json:"f,omitempty"`
	Auto   bool       `json:"aa,omitempty"`
	P      [][2]int64 `json:"p,omitempty"` // provisions: key index, quantity
	Serial uint64     `json:"s,omitempty"`
	Accept bool       `json:"a,omitempty"`
	Acc    []uint64   `json:"acc,omitempty"`
	Rej    []uint64   `json:"rej,omitempty"`
	NF     []uint64   `json:"nf,omitempty"`
	Conf   []uint64   `json:"conf,omitempty"`
	Err    string     `json:"err,omitempty"` // "" ok, else the kind of refusal
}

// crashOut writes the child's lines to stdout, one write per line, so that
// a line is either wholly in the pipe or not at all when the child dies.
type crashOut struct {
	mu       sync.Mutex
	answered int
	// onAnswer, if set, is called under mu after each answered line.
	onAnswer func(n int)
}

func (o *crashOut) print(line *crashLine) {
	b, err := json.Marshal(line)
	if err != nil {
		panic(err)
	}
	b = append(b, '\n')
	o.mu.Lock()
	defer o.mu.Unlock()
	if _, err := os.Stdout.Write(b); err != nil {
		os.Exit(4) // the parent is gone
	}
	if !line.Try && line.Op != "ready" && line.Op != "injected" {
		o.answered++
		if o.onAnswer != nil {
			o.onAnswer(o.answered)
		}
	}
}

// crashChild is the child's side: it opens the ledger in dir on fs, creates
// the holdings (or resets their limits), rejects what earlier runs left
// pending, prints "ready" and runs workers goroutines until killed. before,
// if set, is called just before each ledger call with the call's op.
// crashChildLedger is the child's ledger, for the fault child's checks.
var crashChildLedger atomic.Pointer[Ledger]

func crashChild(dir string, fs vfs.FS, workers int, out *crashOut, before func(op string)) {
	time.AfterFunc(crashChildDeadline, func() {
		fmt.Fprintln(os.Stderr, "crash child: deadline passed, nobody killed me")
		os.Exit(3)
	})
	l, err := Open(Options{Dir: dir, FS: fs, Logger: zerolog.New(os.Stderr).Level(zerolog.WarnLevel),
		NoFreeSpaceCheck: true, MemTableSize: 4 << 20, CacheSize: 8 << 20})
	if err != nil {
		fmt.Fprintln(os.Stderr, "crash child: open:", err)
		os.Exit(2)
	}
	crashChildLedger.Store(l)
	ctx := context.Background()
	if err := l.SetHoldings(ctx, crashSettings()); err != nil {
		fmt.Fprintln(os.Stderr, "crash child: set quota:", err)
		os.Exit(2)
	}
	out.print(&crashLine{Op: "ready"})
	for _, c := range crashClients {
		if left := l.Pending(c); len(left) > 0 {
			out.print(&crashLine{Op: "many", Try: true, Client: c, Rej: left})
			res, err := l.ResolveMany(ctx, c, nil, left, "cleanup")
			line := &crashLine{Op: "many", Client: c, Acc: res.Accepted, Rej: res.Rejected, NF: res.NotFound,
				Conf: res.Conflicting, Err: errKind(err)}
			if err == nil && !slices.Equal(res.Rejected, left) {
				line.Err = fmt.Sprintf("bug: cleanup rejected %v of %v", res.Rejected, left)
			}
			out.print(line)
		}
	}
	tag := strconv.FormatInt(time.Now().UnixNano(), 36) + "." + strconv.Itoa(os.Getpid())
	var wg sync.WaitGroup
	for i := range workers {
		w := &crashWorker{l: l, out: out, before: before, client: crashClients[i%len(crashClients)],
			rng: rand.New(rand.NewPCG(uint64(time.Now().UnixNano()), uint64(i))), tag: tag, id: i,
			keys: crashKeys()}
		wg.Go(func() {
			for {
				w.step(ctx)
			}
		})
	}
	wg.Wait()
}

// crashWorker issues commissions as one client and resolves them. The
// commissions it leaves pending (in mine) are its own: no one else resolves
// them, so every resolve it makes must succeed.
type crashWorker struct {
	l      *Ledger
	out    *crashOut
	before func(op string)
	client string
	rng    *rand.Rand
	tag    string
	id, n  int
	keys   []holdings.Key
	mine   []uint64 // pending, to resolve many at once
	gone   uint64   // a serial of this worker already resolved
}

func (w *crashWorker) call(op string) {
	if w.before != nil {
		w.before(op)
	}
}

// provisions draws 2 to 4 provisions: a quantity taken from (or given back
// to) a user's holding and the same from its project's holding, and maybe a
// second pair (or half of one).
func (w *crashWorker) provisions() ([]holdings.Provision, [][2]int64) {
	n := 2 + w.rng.IntN(3)
	idx := make([][2]int64, 0, n)
	for len(idx) < n {
		u, r := w.rng.IntN(crashUsers), w.rng.IntN(2)
		q := int64(1 + w.rng.IntN(4))
		if w.rng.IntN(100) < 45 {
			q = -int64(1 + w.rng.IntN(3))
		}
		idx = append(idx, [2]int64{int64(2*u + r), q})
		if len(idx) < n {
			idx = append(idx, [2]int64{int64(2*crashUsers + 2*(u%crashProjects) + r), q})
		}
	}
	ps := make([]holdings.Provision, len(idx))
	for i, p := range idx {
		ps[i] = holdings.Provision{Key: w.keys[p[0]], Quantity: p[1]}
	}
	return ps, idx
}

func (w *crashWorker) step(ctx context.Context) {
	w.n++
	ps, idx := w.provisions()
	force := w.rng.IntN(10) == 0
	auto := w.rng.IntN(5) == 0
	name := fmt.Sprintf("%s.%d.%d", w.tag, w.id, w.n)
	w.out.print(&crashLine{Op: "issue", Try: true, Client: w.client, Name: name, Force: force, Auto: auto, P: idx})
	w.call("issue")
	res, err := w.l.Issue(ctx, IssueRequest{Client: w.client, Name: name, Force: force, AutoAccept: auto, Provisions: ps})
	line := &crashLine{Op: "issue", Name: name, Serial: res.Serial, Err: errKind(err)}
	if err == nil && (res.Serial == 0 || res.Accepted != auto || res.Replayed) {
		line.Err = fmt.Sprintf("bug: issue answered %+v", res)
	}
	w.out.print(line)
	if err != nil || auto {
		return
	}
	if w.rng.IntN(2) == 0 {
		accept := w.rng.IntN(5) < 3
		w.out.print(&crashLine{Op: "resolve", Try: true, Client: w.client, Serial: res.Serial, Accept: accept})
		w.call("resolve")
		err := w.l.Resolve(ctx, w.client, res.Serial, accept, "")
		w.out.print(&crashLine{Op: "resolve", Client: w.client, Serial: res.Serial, Accept: accept, Err: errKind(err)})
		if err == nil {
			w.gone = res.Serial
		}
		return
	}
	w.mine = append(w.mine, res.Serial)
	if len(w.mine) < 2+w.rng.IntN(3) {
		return
	}
	w.resolveMany(ctx)
}

// resolveMany accepts some of the worker's pending commissions and rejects
// the others in one call; now and then it also names one in both lists
// (conflicting: it stays pending) and one already resolved (not found).
func (w *crashWorker) resolveMany(ctx context.Context) {
	var acc, rej, conf, nf []uint64
	for _, s := range w.mine {
		if w.rng.IntN(2) == 0 {
			acc = append(acc, s)
		} else {
			rej = append(rej, s)
		}
	}
	if w.rng.IntN(4) == 0 {
		s := w.mine[w.rng.IntN(len(w.mine))]
		conf = []uint64{s}
		if slices.Contains(acc, s) {
			rej = append(rej, s)
		} else {
			acc = append(acc, s)
		}
	}
	if w.gone != 0 && w.rng.IntN(4) == 0 {
		nf = []uint64{w.gone}
		rej = append(rej, w.gone)
	}
	w.out.print(&crashLine{Op: "many", Try: true, Client: w.client, Acc: acc, Rej: rej})
	w.call("many")
	res, err := w.l.ResolveMany(ctx, w.client, acc, rej, "")
	line := &crashLine{Op: "many", Client: w.client, Acc: res.Accepted, Rej: res.Rejected, NF: res.NotFound,
		Conf: res.Conflicting, Err: errKind(err)}
	if err == nil {
		minus := func(a []uint64) []uint64 {
			return slices.DeleteFunc(slices.Clone(a), func(s uint64) bool { return slices.Contains(conf, s) || slices.Contains(nf, s) })
		}
		sorted := func(a []uint64) []uint64 { a = slices.Clone(a); slices.Sort(a); return a }
		if !slices.Equal(sorted(res.Accepted), sorted(minus(acc))) || !slices.Equal(sorted(res.Rejected), sorted(minus(rej))) ||
			!slices.Equal(sorted(res.Conflicting), conf) || !slices.Equal(sorted(res.NotFound), nf) {
			line.Err = fmt.Sprintf("bug: resolve many accept %v reject %v (conflicting %v, not found %v) answered %+v",
				acc, rej, conf, nf, res)
		}
		w.mine = w.mine[:0]
		w.mine = append(w.mine, conf...)
		if len(res.Accepted) > 0 {
			w.gone = res.Accepted[0]
		}
	}
	w.out.print(line)
}

// TestCrashChild is the child process of TestCrash; it is skipped unless
// crashChildEnv is set, and it runs until it is killed.
func TestCrashChild(t *testing.T) {
	dir := os.Getenv(crashChildEnv)
	if dir == "" {
		t.Skip("the child process of TestCrash")
	}
	crashChild(dir, vfs.Default, crashWorkers, &crashOut{}, nil)
}

// crashTry is an issue as the child asked it, merged.
type crashTry struct {
	client      string
	force, auto bool
	prov        map[holdings.Key]int64
}

// crashModel is what the parent learned from the children's lines, over
// every run on one directory.
type crashModel struct {
	keys         []holdings.Key
	tries        map[string]*crashTry // every issue asked, by name
	issued       map[uint64]string    // answered successful issues: serial -> name
	refused      map[string]string    // answered refused issues: name -> kind
	resolveTried map[uint64]uint8     // resolutions asked: 1 accept, 2 reject
	resolved     map[uint64]bool      // answered resolutions: serial -> accepted
	outcomes     map[string]int       // answered calls by op and outcome
	// inflight is the last call asked and not answered (meaningful for a
	// sequential child).
	inflight *crashLine
	injected string // the fault the child injected, if any
	// unknown is the first call answered ErrOutcomeUnknown: in a sequential
	// fault test, the call in flight when the fault hit.
	unknown  *crashLine
	quotaSet bool // a child said "ready": the holdings exist
	bad      []string
}

func newCrashModel() *crashModel {
	return &crashModel{
		keys:         crashKeys(),
		tries:        make(map[string]*crashTry),
		issued:       make(map[uint64]string),
		refused:      make(map[string]string),
		resolveTried: make(map[uint64]uint8),
		resolved:     make(map[uint64]bool),
		outcomes:     make(map[string]int),
	}
}

func (m *crashModel) badf(format string, args ...any) {
	m.bad = append(m.bad, fmt.Sprintf(format, args...))
}

func (m *crashModel) tryResolve(s uint64, accept bool) {
	if accept {
		m.resolveTried[s] |= 1
	} else {
		m.resolveTried[s] |= 2
	}
}

func (m *crashModel) resolvedAs(s uint64, accept bool) {
	if prev, ok := m.resolved[s]; ok {
		m.badf("serial %d answered as resolved twice (accept %v, then %v)", s, prev, accept)
	}
	m.resolved[s] = accept
}

func (m *crashModel) refusalOK(kind string, issue bool) bool {
	switch {
	case issue && (kind == "NoCapacity" || kind == "NoQuantity"):
		return true
	case m.injected != "" && (kind == "Failed" || kind == "Unknown"):
		// After an injected fault (fault_test.go): refused, or in a batch
		// whose commit failed.
		return true
	}
	return false
}

// add takes in one line of a child.
func (m *crashModel) add(line *crashLine) {
	if strings.HasPrefix(line.Err, "bug:") {
		m.badf("child: %s", line.Err)
	}
	if line.Try {
		m.inflight = line
	} else if line.Op != "ready" && line.Op != "injected" {
		m.inflight = nil
		outcome := line.Err
		if outcome == "" {
			outcome = "ok"
		}
		m.outcomes[line.Op+" "+outcome]++
		if outcome == "Unknown" && m.unknown == nil {
			m.unknown = line
		}
	}
	switch {
	case line.Op == "ready":
		m.quotaSet = true
	case line.Op == "injected":
		m.injected = line.Name
	case line.Op == "issue" && line.Try:
		if _, dup := m.tries[line.Name]; dup {
			m.badf("commission name %q asked twice", line.Name)
		}
		tr := &crashTry{client: line.Client, force: line.Force, auto: line.Auto, prov: make(map[holdings.Key]int64)}
		for _, p := range line.P {
			tr.prov[m.keys[p[0]]] += p[1]
		}
		m.tries[line.Name] = tr
	case line.Op == "issue":
		tr := m.tries[line.Name]
		switch {
		case tr == nil:
			m.badf("issue %q answered but never asked", line.Name)
		case line.Err == "":
			if prev, dup := m.issued[line.Serial]; dup {
				m.badf("serial %d handed out twice: %q and %q", line.Serial, prev, line.Name)
			}
			m.issued[line.Serial] = line.Name
			if tr.auto {
				m.resolvedAs(line.Serial, true)
			}
		case line.Err == "Unknown" && m.injected != "":
			// Its batch's commit failed: applied wholly or not at all.
		default:
			m.refused[line.Name] = line.Err
			if !m.refusalOK(line.Err, true) {
				m.badf("issue %q refused unexpectedly: %s", line.Name, line.Err)
			}
		}
	case line.Op == "resolve" && line.Try:
		m.tryResolve(line.Serial, line.Accept)
	case line.Op == "resolve":
		switch {
		case line.Err == "":
			m.resolvedAs(line.Serial, line.Accept)
		case !m.refusalOK(line.Err, false):
			m.badf("resolve of %d refused unexpectedly: %s", line.Serial, line.Err)
		}
	case line.Op == "many" && line.Try:
		for _, s := range line.Acc {
			m.tryResolve(s, true)
		}
		for _, s := range line.Rej {
			m.tryResolve(s, false)
		}
	case line.Op == "many":
		switch {
		case line.Err == "":
			for _, s := range line.Acc {
				m.resolvedAs(s, true)
			}
			for _, s := range line.Rej {
				m.resolvedAs(s, false)
			}
		case !m.refusalOK(line.Err, false):
			m.badf("resolve many refused unexpectedly: %s", line.Err)
		}
	}
}

// crashDurable is a commission as the reopened ledger has it.
type crashDurable struct {
	name, client string
	state        byte // 'P'ending, 'A'ccepted, 'R'ejected
	prov         map[holdings.Key]int64
}

// crashRead reads every commission the ledger knows: the pending ones of
// every client of the workload and the resolved ones from the whole
// provision log, page by page.
func crashRead(t *testing.T, l *Ledger, fail func(string, ...any)) map[uint64]*crashDurable {
	t.Helper()
	all := make(map[uint64]*crashDurable)
	after := ""
	for {
		page, err := l.Log(LogFilter{After: after, Limit: MaxLogPage})
		if err != nil {
			t.Fatalf("log: %v", err)
		}
		for _, e := range page.Entries {
			var state byte
			switch {
			case strings.HasPrefix(e.Reason, "ACCEPT:"):
				state = 'A'
			case strings.HasPrefix(e.Reason, "REJECT:"):
				state = 'R'
			default:
				fail("log entry of serial %d has reason %q", e.Serial, e.Reason)
			}
			d := all[e.Serial]
			if d == nil {
				d = &crashDurable{name: e.Name, client: e.Client, state: state, prov: make(map[holdings.Key]int64)}
				all[e.Serial] = d
			} else if d.name != e.Name || d.client != e.Client || d.state != state {
				fail("log entries of serial %d disagree: %q/%q/%c and %q/%q/%c",
					e.Serial, d.name, d.client, d.state, e.Name, e.Client, state)
			}
			if _, dup := d.prov[e.Key]; dup {
				fail("serial %d logs %s twice", e.Serial, e.Key)
			}
			d.prov[e.Key] = e.Quantity
		}
		if page.Next == "" {
			break
		}
		after = page.Next
	}
	n := 0
	for _, client := range append(crashClients[:], crashChecker) {
		for _, s := range l.Pending(client) {
			n++
			c, err := l.Commission(client, s)
			if err != nil {
				fail("pending serial %d of %s: %v", s, client, err)
				continue
			}
			if all[s] != nil {
				fail("serial %d is both pending and in the log", s)
			}
			d := &crashDurable{name: c.Name, client: c.Client, state: 'P', prov: make(map[holdings.Key]int64)}
			for _, p := range c.Provisions {
				if _, dup := d.prov[p.Key]; dup {
					fail("pending serial %d names %s twice", s, p.Key)
				}
				d.prov[p.Key] = p.Quantity
			}
			all[s] = d
		}
	}
	if st := l.Stats(); st.Pending != n {
		fail("stats count %d pending commissions, the clients have %d", st.Pending, n)
	}
	return all
}

// verify checks the reopened ledger against everything the children said,
// and returns the greatest serial seen and the durable commissions.
func (m *crashModel) verify(t *testing.T, l *Ledger) (uint64, map[uint64]*crashDurable) {
	t.Helper()
	nfail := 0
	fail := func(format string, args ...any) {
		t.Helper()
		if nfail++; nfail <= 25 {
			t.Errorf(format, args...)
		}
	}
	defer func() {
		if nfail > 0 {
			t.Fatalf("%d failed checks", nfail)
		}
	}()
	for _, b := range m.bad {
		fail("%s", b)
	}
	m.bad = nil

	all := crashRead(t, l, fail)
	var maxSerial uint64
	names := make(map[string]uint64, len(all))
	forced := make(map[holdings.Key]bool)
	for s, d := range all {
		maxSerial = max(maxSerial, s)
		if prev, dup := names[d.name]; dup {
			fail("commission %q applied twice: serials %d and %d", d.name, prev, s)
		}
		names[d.name] = s
		tr := m.tries[d.name]
		if tr == nil {
			fail("serial %d (%q of %s) was never asked for", s, d.name, d.client)
			continue
		}
		if tr.client != d.client || !maps.Equal(tr.prov, d.prov) {
			fail("serial %d is %s %v, asked %s %v", s, d.client, d.prov, tr.client, tr.prov)
		}
		for k, q := range d.prov {
			if tr.force && q > 0 {
				forced[k] = true
			}
		}
		switch {
		case tr.auto && d.state != 'A':
			fail("serial %d was issued with auto accept but is %c", s, d.state)
		case !tr.auto && d.state == 'A' && m.resolveTried[s]&1 == 0:
			fail("serial %d is accepted but no one asked to accept it", s)
		case d.state == 'R' && m.resolveTried[s]&2 == 0:
			fail("serial %d is rejected but no one asked to reject it", s)
		}
	}
	for s, name := range m.issued {
		maxSerial = max(maxSerial, s)
		if d := all[s]; d == nil {
			fail("answered issue %q (serial %d) is lost", name, s)
		} else if d.name != name {
			fail("answered issue %q got serial %d, which holds %q", name, s, d.name)
		}
	}
	for name, kind := range m.refused {
		if s, ok := names[name]; ok {
			fail("issue %q was refused (%s) but left serial %d", name, kind, s)
		}
	}
	for s, accepted := range m.resolved {
		want := byte('R')
		if accepted {
			want = 'A'
		}
		if d := all[s]; d == nil || d.state != want {
			got := byte('-')
			if d != nil {
				got = d.state
			}
			fail("serial %d answered as %c is %c", s, want, got)
		}
	}

	// Holdings: every one started at zero usage, so its usage follows from
	// the durable commissions alone.
	acc := make(map[holdings.Key]int64)
	imp := make(map[holdings.Key]int64)
	rel := make(map[holdings.Key]int64)
	for _, d := range all {
		for k, q := range d.prov {
			switch {
			case d.state == 'A':
				acc[k] += q
			case d.state == 'P' && q >= 0:
				imp[k] += q
			case d.state == 'P':
				rel[k] += q
			}
		}
	}
	hs := l.FindHoldings(HoldingFilter{})
	if len(hs) == 0 && !m.quotaSet && len(all) == 0 {
		return maxSerial, all // killed before its holdings were set: nothing to see
	}
	if len(hs) != len(m.keys) {
		fail("%d holdings, want %d", len(hs), len(m.keys))
	}
	for i, k := range m.keys {
		v, ok := l.FindHoldingByKey(k)
		if !ok {
			fail("holding %s is gone", k)
			continue
		}
		want := holdings.Value{Limit: crashLimit(i), UsageMin: acc[k] + rel[k], UsageMax: acc[k] + imp[k]}
		if v != want {
			fail("holding %s is %+v; its commissions make it %+v", k, v, want)
		}
		if v.UsageMin < 0 || v.UsageMin > v.UsageMax {
			fail("holding %s breaks 0 <= usage_min <= usage_max: %+v", k, v)
		}
		if v.UsageMax > v.Limit && !forced[k] {
			fail("holding %s is over its limit with no forced commission: %+v", k, v)
		}
	}
	if st := l.Stats(); st.Serial < maxSerial {
		fail("last serial %d is below serial %d seen", st.Serial, maxSerial)
	}
	return maxSerial, all
}

// checkNext issues a commission on the reopened ledger: its serial must
// come after every serial seen, and nothing is skipped. It then rejects it.
func (m *crashModel) checkNext(t *testing.T, l *Ledger, maxSerial uint64, name string) {
	t.Helper()
	ctx := context.Background()
	if !m.quotaSet { // the child died before it set them
		if err := l.SetHoldings(ctx, crashSettings()); err != nil {
			t.Fatalf("set quota: %v", err)
		}
		m.quotaSet = true
	}
	last := l.Stats().Serial
	ps := []holdings.Provision{{Key: m.keys[0], Quantity: 0}}
	m.tries[name] = &crashTry{client: crashChecker, force: true, prov: map[holdings.Key]int64{m.keys[0]: 0}}
	res, err := l.Issue(ctx, IssueRequest{Client: crashChecker, Name: name, Force: true, Provisions: ps})
	if err != nil {
		t.Fatalf("issue after reopening: %v", err)
	}
	if res.Serial <= maxSerial || res.Serial != last+1 {
		t.Fatalf("issue after reopening got serial %d; greatest seen %d, last %d", res.Serial, maxSerial, last)
	}
	m.issued[res.Serial] = name
	m.tryResolve(res.Serial, false)
	if err := l.Resolve(ctx, crashChecker, res.Serial, false, "check"); err != nil {
		t.Fatalf("reject after reopening: %v", err)
	}
	m.resolvedAs(res.Serial, false)
}

// crashReopen opens the directory a child left, without faults.
func crashReopen(t *testing.T, dir string) *Ledger {
	t.Helper()
	l, err := Open(Options{Dir: dir, Logger: zerolog.Nop(), NoFreeSpaceCheck: true, MemTableSize: 4 << 20, CacheSize: 8 << 20})
	if err != nil {
		t.Fatalf("reopen: %v", err)
	}
	return l
}

// childPolicy says when the parent kills a child: after it answered
// afterAnswered calls, afterReady past its "ready" line, or afterStart past
// its start (whichever comes first; zero is never). limit is the longest the
// child may run at all.
type childPolicy struct {
	afterAnswered int
	afterReady    time.Duration
	afterStart    time.Duration
	limit         time.Duration
}

type childResult struct {
	answered int
	ready    bool
	killed   bool // the parent killed it (not for running past limit)
	timedOut bool
	state    *os.ProcessState
	stderr   string
	elapsed  time.Duration
}

// cappedBuffer keeps the first 256 KiB written to it.
type cappedBuffer struct{ bytes.Buffer }

func (b *cappedBuffer) Write(p []byte) (int, error) {
	if room := 256<<10 - b.Len(); room > 0 {
		b.Buffer.Write(p[:min(len(p), room)])
	}
	return len(p), nil
}

// runChild runs this test binary again as test with env added, feeds every
// line it prints to m, and kills it as policy says. It returns once the child
// is gone and all it printed is read.
func runChild(t *testing.T, test string, env []string, m *crashModel, policy childPolicy) childResult {
	t.Helper()
	start := time.Now()
	cmd := exec.Command(os.Args[0], "-test.run=^"+test+"$", "-test.count=1")
	cmd.Env = append(os.Environ(), env...)
	var stderr cappedBuffer
	cmd.Stderr = &stderr
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	var res childResult
	var killed, timedOut atomic.Bool
	var once sync.Once
	kill := func() { once.Do(func() { _ = cmd.Process.Kill() }) }
	guard := time.AfterFunc(policy.limit, func() { timedOut.Store(true); kill() })
	defer guard.Stop()
	if policy.afterStart > 0 {
		tm := time.AfterFunc(policy.afterStart, func() { killed.Store(true); kill() })
		defer tm.Stop()
	}
	r := bufio.NewReaderSize(stdout, 64<<10)
	for {
		b, err := r.ReadBytes('\n')
		// A line cut short by the kill (it cannot be: each is one write
		// smaller than PIPE_BUF) or one of the testing package is skipped.
		if len(b) > 1 && b[0] == '{' && b[len(b)-1] == '\n' {
			var line crashLine
			if jerr := json.Unmarshal(b, &line); jerr != nil {
				t.Errorf("child line %q: %v", b, jerr)
			} else {
				m.add(&line)
				switch {
				case line.Op == "ready":
					res.ready = true
					if policy.afterReady > 0 {
						tm := time.AfterFunc(policy.afterReady, func() { killed.Store(true); kill() })
						defer tm.Stop()
					}
				case !line.Try && line.Op != "injected":
					res.answered++
					if policy.afterAnswered > 0 && res.answered >= policy.afterAnswered {
						killed.Store(true)
						kill()
					}
				}
			}
		}
		if err != nil {
			break
		}
	}
	_ = cmd.Wait()
	res.state = cmd.ProcessState
	res.killed = killed.Load()
	res.timedOut = timedOut.Load()
	res.stderr = stderr.String()
	res.elapsed = time.Since(start)
	if strings.Contains(res.stderr, "DATA RACE") {
		t.Errorf("the child reported a data race:\n%s", res.stderr)
	}
	return res
}

// crashSeed returns the seed of the parent's random choices, from
// crashSeedEnv if set.
func crashSeed(t *testing.T) uint64 {
	seed := uint64(time.Now().UnixNano())
	if s := os.Getenv(crashSeedEnv); s != "" {
		var err error
		if seed, err = strconv.ParseUint(s, 10, 64); err != nil {
			t.Fatalf("%s: %v", crashSeedEnv, err)
		}
	}
	t.Logf("seed %d (replay the parent's choices with %s=%d)", seed, crashSeedEnv, seed)
	return seed
}

// TestCrash kills a child running the ledger under load at random moments,
// on the same directory again and again, and checks after every restart
// that the ledger kept exactly what it answered.
func TestCrash(t *testing.T) {
	cycles := 8
	if testing.Short() {
		cycles = 3
	}
	dir := t.TempDir()
	rng := rand.New(rand.NewPCG(crashSeed(t), 1))
	m := newCrashModel()
	for cycle := range cycles {
		policy := childPolicy{limit: 30 * time.Second}
		var how string
		switch cycle % 3 {
		case 0: // under load, after a number of answers
			policy.afterAnswered = 50 + rng.IntN(1951)
			how = fmt.Sprintf("after %d answers", policy.afterAnswered)
		case 1: // under load, after a while
			policy.afterReady = time.Duration(50+rng.IntN(1000)) * time.Millisecond
			how = fmt.Sprintf("%v after ready", policy.afterReady)
		case 2: // at any moment: maybe while opening, replaying or cleaning up
			policy.afterStart = time.Duration(rng.IntN(1500)) * time.Millisecond
			how = fmt.Sprintf("%v after start", policy.afterStart)
		}
		res := runChild(t, "TestCrashChild", []string{crashChildEnv + "=" + dir}, m, policy)
		if res.timedOut || !res.killed {
			t.Fatalf("cycle %d: the child was not killed as planned (%s; timed out %v): %v\n%s",
				cycle, how, res.timedOut, res.state, res.stderr)
		}
		if ws, ok := res.state.Sys().(syscall.WaitStatus); !ok || !ws.Signaled() || ws.Signal() != syscall.SIGKILL {
			t.Fatalf("cycle %d: the child ended with %v before the kill:\n%s", cycle, res.state, res.stderr)
		}
		start := time.Now()
		l := crashReopen(t, dir)
		maxSerial, _ := m.verify(t, l)
		m.checkNext(t, l, maxSerial, fmt.Sprintf("check.%d", cycle))
		st := l.Stats()
		if err := l.Close(); err != nil {
			t.Fatalf("close: %v", err)
		}
		t.Logf("cycle %d: killed %s (ready %v) having answered %d calls in %v; checked in %v: serial %d, %d pending",
			cycle, how, res.ready, res.answered, res.elapsed.Round(time.Millisecond),
			time.Since(start).Round(time.Millisecond), st.Serial, st.Pending)
	}
	t.Logf("answered calls by outcome: %v", m.outcomes)
	if m.outcomes["issue ok"] == 0 || m.outcomes["resolve ok"]+m.outcomes["many ok"] == 0 {
		t.Fatalf("the children did too little to test anything: %v", m.outcomes)
	}
}

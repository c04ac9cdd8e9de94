package ledger

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/cockroachdb/pebble/v2/vfs"
	"pgregory.net/rapid"

	"github.com/quotaledger/quotaledger/events/catalog"
	"github.com/quotaledger/quotaledger/holdings"
	"github.com/quotaledger/quotaledger/internal/testkit"
)

// TestModel runs random sequences of set / delete / issue / accept / reject /
// resolve-many / expiry / reopen / crash against the ledger and against a tiny
// reference model written with plain integers, and checks after every step
// that the two agree and that the invariants of DESIGN.md §1 hold.
func TestModel(t *testing.T) {
	rapid.Check(t, func(rt *rapid.T) {
		clock := testkit.NewClock(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC))
		opts := memOptions()
		opts.Now = clock.Now
		fs := vfs.NewCrashableMem()
		opts.FS = fs
		// Checkpoints after every batch, or none but at Close and when
		// asked: then a crash replays the whole tail of the journal.
		if rapid.Bool().Draw(rt, "long tail") {
			opts.CheckpointInterval, opts.CheckpointBytes = time.Hour, 1<<40
		} else {
			opts.CheckpointInterval, opts.CheckpointBytes = time.Nanosecond, 1
		}
		// crashAt, when set, is the part of the next checkpoint after which
		// the files are taken as a crash would leave them.
		// The applier runs the hook, at checkpoints of its own too: mu
		// guards these.
		var mu sync.Mutex
		var crashAt int
		var crashed *vfs.MemFS
		crashSeed := uint64(1)
		opts.checkpointHook = func(part int) {
			mu.Lock()
			defer mu.Unlock()
			if part == crashAt && crashed == nil {
				crashed = fs.CrashClone(vfs.CrashCloneCfg{UnsyncedDataPercent: 50, RNG: rand.New(rand.NewPCG(crashSeed, 2))})
			}
		}
		l, err := Open(opts)
		if err != nil {
			rt.Fatal(err)
		}
		defer func() { _ = l.Close() }()
		m := newModel()
		ctx := context.Background()

		universe := []holdings.Key{}
		// A small universe, so that commissions meet: null and "" differ.
		for _, h := range []string{"user:a", "project:p"} {
			for _, s := range []holdings.Source{holdings.NullSource, holdings.SourceOf(""), holdings.SourceOf("project:p")} {
				for _, r := range []string{"vm"} {
					universe = append(universe, holdings.Key{Holder: h, Source: s, Resource: r})
				}
			}
		}
		genKey := rapid.SampledFrom(universe)
		clients := rapid.SampledFrom([]string{"c1", "c2"})
		genSerial := func(t *rapid.T) uint64 {
			if all := m.serials(); len(all) > 0 && rapid.Bool().Draw(t, "known") {
				return rapid.SampledFrom(all).Draw(t, "serial")
			}
			return rapid.Uint64Range(1, m.serial+2).Draw(t, "serial")
		}

		rt.Repeat(map[string]func(*rapid.T){
			"set": func(t *rapid.T) {
				n := rapid.IntRange(1, 4).Draw(t, "n")
				var ss []HoldingSetting
				for i := 0; i < n; i++ {
					ss = append(ss, HoldingSetting{Key: genKey.Draw(t, "key"), Limit: rapid.Int64Range(0, 20).Draw(t, "limit")})
				}
				must(t, l.SetHoldings(ctx, ss))
				m.events = append(m.events, catalog.HoldingChangedType)
				for _, s := range ss {
					v := m.holdings[s.Key]
					v.limit = s.Limit
					m.holdings[s.Key] = v
				}
			},
			"delete": func(t *rapid.T) {
				ks := rapid.SliceOfN(genKey, 1, 3).Draw(t, "keys")
				err := l.DeleteHoldings(ctx, ks)
				if m.touched(ks) {
					if !errors.Is(err, ErrHoldingInUse) {
						t.Fatalf("delete of a held key: want ErrHoldingInUse, got %v", err)
					}
					return
				}
				must(t, err)
				for _, k := range ks {
					if _, ok := m.holdings[k]; ok {
						m.events = append(m.events, catalog.HoldingDeletedType)
						break
					}
				}
				for _, k := range ks {
					delete(m.holdings, k)
				}
			},
			"issue": func(t *rapid.T) {
				req := IssueRequest{
					Client:         clients.Draw(t, "client"),
					Force:          rapid.Bool().Draw(t, "force"),
					AutoAccept:     rapid.IntRange(0, 4).Draw(t, "auto") == 0,
					TTL:            time.Duration(rapid.SampledFrom([]int{0, 0, 10, 60}).Draw(t, "ttl")) * time.Second,
					IdempotencyKey: rapid.SampledFrom([]string{"", "", "", "k1", "k2"}).Draw(t, "idem"),
				}
				n := rapid.IntRange(0, 4).Draw(t, "provisions")
				for i := 0; i < n; i++ {
					req.Provisions = append(req.Provisions, holdings.Provision{
						Key: genKey.Draw(t, "key"), Quantity: rapid.Int64Range(-4, 6).Draw(t, "q")})
				}
				res, err := l.Issue(ctx, req)
				want, wantErr := m.issue(req, clock.Now())
				if wantErr != "" {
					if got := errKind(err); got != wantErr {
						t.Fatalf("issue %+v: want %s, got %v", req, wantErr, err)
					}
					return
				}
				must(t, err)
				if res != want {
					t.Fatalf("issue %+v: want %+v, got %+v", req, want, res)
				}
			},
			"resolve": func(t *rapid.T) {
				client, serial, accept := clients.Draw(t, "client"), genSerial(t), rapid.Bool().Draw(t, "accept")
				err := l.Resolve(ctx, client, serial, accept, "")
				if !m.resolve(client, serial, accept) {
					if !errors.Is(err, ErrNotFound) {
						t.Fatalf("resolve %d by %s: want ErrNotFound, got %v", serial, client, err)
					}
					return
				}
				must(t, err)
			},
			"resolveMany": func(t *rapid.T) {
				client := clients.Draw(t, "client")
				acc := rapid.SliceOfN(rapid.Custom(genSerial), 0, 4).Draw(t, "accept")
				rej := rapid.SliceOfN(rapid.Custom(genSerial), 0, 4).Draw(t, "reject")
				res, err := l.ResolveMany(ctx, client, acc, rej, "")
				must(t, err)
				var want ResolveResult
				inAcc := func(s uint64) bool { return slices.Contains(acc, s) }
				inRej := func(s uint64) bool { return slices.Contains(rej, s) }
				seen := map[uint64]bool{}
				for _, list := range [][]uint64{acc, rej} {
					for _, s := range list {
						if seen[s] {
							continue
						}
						seen[s] = true
						c, ok := m.pending[s]
						switch {
						case inAcc(s) && inRej(s):
							want.Conflicting = append(want.Conflicting, s)
						case !ok || c.client != client:
							want.NotFound = append(want.NotFound, s)
						case inAcc(s):
							want.Accepted = append(want.Accepted, s)
						default:
							want.Rejected = append(want.Rejected, s)
						}
					}
				}
				for _, s := range want.Accepted {
					m.resolve(client, s, true)
				}
				for _, s := range want.Rejected {
					m.resolve(client, s, false)
				}
				if fmt.Sprint(res) != fmt.Sprint(want) {
					t.Fatalf("resolve many %v / %v: want %+v, got %+v", acc, rej, want, res)
				}
			},
			"expire": func(t *rapid.T) {
				now := clock.Advance(time.Duration(rapid.IntRange(0, 40).Draw(t, "seconds")) * time.Second)
				must(t, l.ExpireDue(ctx))
				// In the ledger's order: by deadline, then serial.
				var due []uint64
				for s, c := range m.pending {
					if !c.deadline.IsZero() && !c.deadline.After(now) {
						due = append(due, s)
					}
				}
				slices.SortFunc(due, func(a, b uint64) int {
					if c := m.pending[a].deadline.Compare(m.pending[b].deadline); c != 0 {
						return c
					}
					return int(a) - int(b)
				})
				for _, s := range due {
					m.settle(m.pending[s].client, s, false, true)
				}
			},
			"relay": func(t *rapid.T) {
				// The relay published events up to some point.
				if len(m.events) == 0 {
					return
				}
				seq := rapid.IntRange(m.relayed, len(m.events)).Draw(t, "published")
				must(t, l.DeleteOutbox(uint64(seq)))
				m.relayed = max(m.relayed, seq)
			},
			"checkpoint": func(t *rapid.T) {
				// A checkpoint, and a crash after one of its parts (or none).
				part := rapid.IntRange(0, checkpointTruncated).Draw(t, "crash after part")
				seed := rapid.Uint64().Draw(t, "seed")
				mu.Lock()
				crashAt, crashSeed, crashed = part, seed, nil
				mu.Unlock()
				must(t, l.CheckpointNow())
				mu.Lock()
				clone := crashed
				crashAt, crashed = 0, nil
				mu.Unlock()
				if clone == nil {
					// No crash asked for, or nothing new to checkpoint (the
					// checkpoint then has no parts).
					return
				}
				_ = l.Close()
				mu.Lock()
				fs = clone
				mu.Unlock()
				opts.FS = fs
				var err error
				if l, err = Open(opts); err != nil {
					t.Fatal(err)
				}
			},
			"reopen": func(t *rapid.T) {
				must(t, l.Close())
				var err error
				if l, err = Open(opts); err != nil {
					t.Fatal(err)
				}
			},
			"crash": func(t *rapid.T) {
				// The files as a crash leaves them: what was synced, and a
				// random part of what was not. Every answered call was synced.
				seed := rapid.Int64().Draw(t, "seed")
				unsynced := rapid.IntRange(0, 100).Draw(t, "unsynced")
				mu.Lock()
				fs = fs.CrashClone(vfs.CrashCloneCfg{
					UnsyncedDataPercent: unsynced,
					RNG:                 rand.New(rand.NewPCG(uint64(seed), 1)),
				})
				mu.Unlock()
				_ = l.Close()
				opts.FS = fs
				var err error
				if l, err = Open(opts); err != nil {
					t.Fatal(err)
				}
			},
			"": func(t *rapid.T) { m.check(t, l) },
		})
	})
}

func must(t *rapid.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// model is the reference: plain integers, no shared code with the engine.
type model struct {
	holdings map[holdings.Key]modelValue
	pending  map[uint64]modelCommission
	idem     map[string]modelIdem
	serial   uint64
	// events are the types of the events made so far, in order; logged,
	// the provisions logged by each resolved commission.
	events []string
	logged map[uint64]int
	// byHolder counts the log entries of each holder.
	byHolder map[string]int
	// relayed is the number of events the relay published.
	relayed int
}

type modelValue struct{ limit, min, max int64 }

type modelCommission struct {
	client   string
	deadline time.Time
	qs       map[holdings.Key]int64
}

type modelIdem struct {
	body     string
	serial   uint64
	accepted bool
}

func newModel() *model {
	return &model{holdings: map[holdings.Key]modelValue{}, pending: map[uint64]modelCommission{}, idem: map[string]modelIdem{},
		logged: map[uint64]int{}, byHolder: map[string]int{}}
}

func (m *model) serials() []uint64 {
	var out []uint64
	for s := range m.pending {
		out = append(out, s)
	}
	slices.Sort(out)
	return out
}

func (m *model) touched(ks []holdings.Key) bool {
	for _, c := range m.pending {
		for _, k := range ks {
			if _, ok := c.qs[k]; ok {
				return true
			}
		}
	}
	return false
}

func (m *model) issue(req IssueRequest, now time.Time) (IssueResult, string) {
	body := fmt.Sprint(req.Force, req.AutoAccept, req.TTL, req.Provisions)
	ik := req.Client + "\x00" + req.IdempotencyKey
	if req.IdempotencyKey != "" {
		if r, ok := m.idem[ik]; ok {
			if r.body != body {
				return IssueResult{}, "Conflict"
			}
			return IssueResult{Serial: r.serial, Accepted: r.accepted, Replayed: true}, ""
		}
	}
	var order []holdings.Key
	qs := map[holdings.Key]int64{}
	for _, p := range req.Provisions {
		if _, ok := qs[p.Key]; !ok {
			order = append(order, p.Key)
		}
		qs[p.Key] += p.Quantity
	}
	next := map[holdings.Key]modelValue{}
	for _, k := range order {
		v, ok := m.holdings[k]
		if !ok {
			return IssueResult{}, "NoHolding"
		}
		q := qs[k]
		if q >= 0 {
			if v.max+q > v.limit && !req.Force {
				return IssueResult{}, "NoCapacity"
			}
			v.max += q
		} else {
			if v.min+q < 0 {
				return IssueResult{}, "NoQuantity"
			}
			v.min += q
		}
		next[k] = v
	}
	m.serial++
	for k, v := range next {
		m.holdings[k] = v
	}
	c := modelCommission{client: req.Client, qs: qs}
	ttl := req.TTL
	if ttl > 0 && !req.AutoAccept {
		c.deadline = now.Add(ttl)
	}
	m.pending[m.serial] = c
	m.events = append(m.events, catalog.CommissionIssuedType)
	if req.AutoAccept {
		m.resolve(req.Client, m.serial, true)
	}
	res := IssueResult{Serial: m.serial, Accepted: req.AutoAccept}
	if req.IdempotencyKey != "" {
		m.idem[ik] = modelIdem{body: body, serial: m.serial, accepted: req.AutoAccept}
	}
	return res, ""
}

func (m *model) resolve(client string, serial uint64, accept bool) bool {
	return m.settle(client, serial, accept, false)
}

// settle is resolve, or (expired) the ledger's own reject at a deadline.
func (m *model) settle(client string, serial uint64, accept, expired bool) bool {
	c, ok := m.pending[serial]
	if !ok || c.client != client {
		return false
	}
	for k, q := range c.qs {
		v := m.holdings[k]
		switch {
		case accept && q >= 0:
			v.min += q
		case accept:
			v.max += q
		case q >= 0:
			v.max -= q
		default:
			v.min -= q
		}
		m.holdings[k] = v
	}
	delete(m.pending, serial)
	m.logged[serial] = len(c.qs)
	for k := range c.qs {
		m.byHolder[k.Holder]++
	}
	switch {
	case accept:
		m.events = append(m.events, catalog.CommissionAcceptedType)
	case expired:
		m.events = append(m.events, catalog.CommissionExpiredType)
	default:
		m.events = append(m.events, catalog.CommissionRejectedType)
	}
	return true
}

func (m *model) check(t *rapid.T, l *Ledger) {
	got := l.FindHoldings(HoldingFilter{})
	if len(got) != len(m.holdings) {
		t.Fatalf("ledger has %d holdings, model %d", len(got), len(m.holdings))
	}
	for _, h := range got {
		w, ok := m.holdings[h.Key]
		if !ok || w != (modelValue{h.Limit, h.UsageMin, h.UsageMax}) {
			t.Fatalf("holding %s: ledger %+v, model %+v", h.Key, h.Value, w)
		}
		if h.UsageMin < 0 || h.UsageMin > h.UsageMax {
			t.Fatalf("holding %s breaks 0 <= usage_min <= usage_max: %+v", h.Key, h.Value)
		}
	}
	for _, c := range []string{"c1", "c2"} {
		var want []uint64
		for s, mc := range m.pending {
			if mc.client == c {
				want = append(want, s)
			}
		}
		slices.Sort(want)
		if got := l.Pending(c); !slices.Equal(got, want) {
			t.Fatalf("pending of %s: ledger %v, model %v", c, got, want)
		}
	}
	if st := l.Stats(); st.Serial != m.serial {
		t.Fatalf("last serial: ledger %d, model %d", st.Serial, m.serial)
	}
	// Every event not yet published once, in order, numbered from 1.
	evs, err := l.Outbox(0, len(m.events)+10)
	if err != nil {
		t.Fatal(err)
	}
	if len(evs) != len(m.events)-m.relayed {
		t.Fatalf("outbox has %d events, model %d of %d published", len(evs), m.relayed, len(m.events))
	}
	for i, e := range evs {
		if n := m.relayed + i; e.Seq != uint64(n+1) || e.Type != m.events[n] {
			t.Fatalf("event %d: ledger %d %s, model %s", n+1, e.Seq, e.Type, m.events[n])
		}
	}
	if st, err := l.OutboxStats(); err != nil || st.Last != uint64(len(m.events)) || st.Depth != uint64(len(m.events)-m.relayed) {
		t.Fatalf("outbox stats %+v %v, model %d events, %d published", st, err, len(m.events), m.relayed)
	}
	// The log of each holder, in pages of 3: every entry once, in order.
	for _, h := range []string{"user:a", "project:p"} {
		f := LogFilter{Holder: h, Limit: 3}
		n, last := 0, logCursor{}
		for {
			page, err := l.Log(f)
			if err != nil {
				t.Fatal(err)
			}
			for i := range page.Entries {
				e := &page.Entries[i]
				c := logCursor{logTime: e.LogTime.UnixNano(), serial: e.Serial}
				if e.Key.Holder != h || c.less(last) {
					t.Fatalf("log of %s: entry %+v after %+v", h, e, last)
				}
				last = c
			}
			n += len(page.Entries)
			if page.Next == "" {
				break
			}
			f.After = page.Next
		}
		if n != m.byHolder[h] {
			t.Fatalf("log of %s: %d entries, model %d", h, n, m.byHolder[h])
		}
	}
	// The log of each resolved commission: one entry per provision.
	for s, n := range m.logged {
		page, err := l.Log(LogFilter{Serial: s})
		if err != nil {
			t.Fatal(err)
		}
		if len(page.Entries) != n {
			t.Fatalf("log of commission %d: %d entries, model %d", s, len(page.Entries), n)
		}
	}
	// The whole log, in pages of 2: every resolved commission once, in
	// order of serial, with all its entries.
	seen := make(map[uint64]int)
	var last uint64
	for f := (LogFilter{Limit: 2}); ; {
		page, err := l.Log(f)
		if err != nil {
			t.Fatal(err)
		}
		for _, e := range page.Entries {
			if e.Serial < last || e.Serial > last && seen[e.Serial] > 0 {
				t.Fatalf("whole log: commission %d after %d", e.Serial, last)
			}
			last = e.Serial
			seen[e.Serial]++
		}
		if page.Next == "" {
			break
		}
		f.After = page.Next
	}
	withEntries := 0
	for _, n := range m.logged {
		if n > 0 {
			withEntries++
		}
	}
	if len(seen) != withEntries {
		t.Fatalf("whole log: %d commissions, model %d", len(seen), withEntries)
	}
	for s, n := range m.logged {
		if seen[s] != n {
			t.Fatalf("whole log: commission %d has %d entries, model %d", s, seen[s], n)
		}
	}
}

package ledger

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"testing"
	"time"

	"github.com/cockroachdb/pebble/v2/vfs"
	"pgregory.net/rapid"

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
				var ss []QuotaSetting
				for i := 0; i < n; i++ {
					ss = append(ss, QuotaSetting{Key: genKey.Draw(t, "key"), Limit: rapid.Int64Range(0, 20).Draw(t, "limit")})
				}
				must(t, l.SetQuota(ctx, ss))
				for _, s := range ss {
					v := m.holdings[s.Key]
					v.limit = s.Limit
					m.holdings[s.Key] = v
				}
			},
			"delete": func(t *rapid.T) {
				ks := rapid.SliceOfN(genKey, 1, 3).Draw(t, "keys")
				err := l.DeleteQuota(ctx, ks)
				if m.touched(ks) {
					if !errors.Is(err, ErrHoldingInUse) {
						t.Fatalf("delete of a held key: want ErrHoldingInUse, got %v", err)
					}
					return
				}
				must(t, err)
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
				for s, c := range m.pending {
					if !c.deadline.IsZero() && !c.deadline.After(now) {
						m.resolve(c.client, s, false)
					}
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
				fs = fs.CrashClone(vfs.CrashCloneCfg{
					UnsyncedDataPercent: rapid.IntRange(0, 100).Draw(t, "unsynced"),
					RNG:                 rand.New(rand.NewPCG(uint64(seed), 1)),
				})
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
	return &model{holdings: map[holdings.Key]modelValue{}, pending: map[uint64]modelCommission{}, idem: map[string]modelIdem{}}
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
	return true
}

func (m *model) check(t *rapid.T, l *Ledger) {
	got := l.Quotas(QuotaFilter{})
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
}

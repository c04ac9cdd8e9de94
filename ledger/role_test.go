package ledger

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"pgregory.net/rapid"

	"github.com/quotaledger/quotaledger/holdings"
	"github.com/quotaledger/quotaledger/internal/testkit"
)

// memLog is a replicated log in memory: the records appended, in order;
// refuse, when set, refuses the append of that sequence and every later
// one, as a log another leader appended to first would.
type memLog struct {
	mu      sync.Mutex
	recs    [][]byte // recs[i] is record i+1
	refuse  uint64
	appends int
}

func (m *memLog) Append(seq uint64, rec []byte) func() error {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.appends++
	if m.refuse != 0 && seq >= m.refuse {
		return func() error { return errors.New("wrong last sequence") }
	}
	if seq != uint64(len(m.recs))+1 {
		err := fmt.Errorf("append %d after %d", seq, len(m.recs))
		return func() error { return err }
	}
	m.recs = append(m.recs, append([]byte(nil), rec...))
	return func() error { return nil }
}

func (m *memLog) records() [][]byte {
	m.mu.Lock()
	defer m.mu.Unlock()
	return slices.Clone(m.recs)
}

// follow applies to f the records of log it has not applied yet.
func follow(t testkit.TB, f *Ledger, log *memLog) {
	t.Helper()
	for i, rec := range log.records() {
		seq := uint64(i + 1)
		if seq <= f.Applied() {
			continue
		}
		for {
			err := f.Follow(seq, rec)
			if errors.Is(err, ErrBusy) {
				time.Sleep(time.Millisecond)
				continue
			}
			if err != nil {
				t.Fatalf("follow %d: %v", seq, err)
			}
			break
		}
	}
}

// TestFollow makes every kind of journal record on a leader and applies
// its log on a follower: the follower reads the same (holdings, pending,
// the provision log, the events, identity's records, the digest), refuses
// writes, and hands identity's records to OnFollow.
func TestFollow(t *testing.T) {
	clock := testkit.NewClock(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC))
	log := &memLog{}
	lopts := memOptions()
	lopts.Now, lopts.Follower, lopts.ID = clock.Now, true, "cluster-1"
	leader := mustOpen(t, lopts)
	if _, err := leader.Lead(log); err != nil {
		t.Fatal(err)
	}
	fopts := memOptions()
	fopts.Now, fopts.Follower, fopts.ID = clock.Now, true, "cluster-1"
	f := mustOpen(t, fopts)
	var mu sync.Mutex
	var raw []string
	f.OnFollow(func(rs []RawRecord) {
		mu.Lock()
		defer mu.Unlock()
		for _, r := range rs {
			raw = append(raw, fmt.Sprintf("%s=%s %v", r.Key, r.Value, r.Del))
		}
	})
	for round := range 3 {
		journalWorkload(t, leader, clock, round)
		follow(t, f, log)
	}
	if got, want := ledgerState(t, f), ledgerState(t, leader); got != want {
		t.Fatalf("the follower reads\n%s\nthe leader\n%s", got, want)
	}
	ls, ld := leader.Digest()
	fs, fd := f.Digest()
	if ls != fs || ld != fd || ls != uint64(len(log.records())) {
		t.Fatalf("digests: leader %d %s, follower %d %s, log %d records", ls, ld, fs, fd, len(log.records()))
	}
	mu.Lock()
	if len(raw) != 3 || raw[0] != "Xrecord-0=value false" {
		t.Fatalf("identity records followed: %q", raw)
	}
	mu.Unlock()
	if err := f.SetHoldings(context.Background(), []HoldingSetting{{Key: key("x", "-", "vm"), Limit: 1}}); !errors.Is(err, ErrNotLeader) {
		t.Fatalf("a write on a follower: %v, want ErrNotLeader", err)
	}
	if err := f.Follow(f.Applied()+2, log.records()[0]); err == nil {
		t.Fatal("a record out of order was followed")
	}
}

// TestDeposed refuses an append: the calls of that batch and of the
// batches after it get ErrDeposed, nothing of them is shown, the
// ledger stops leading (its channel closes) and refuses writes, and, once
// it has followed the log, it leads again from the log's end; a reopen
// reads the log's history, not the refused batches.
func TestDeposed(t *testing.T) {
	log := &memLog{}
	opts := memOptions()
	opts.Follower = true
	l := mustOpen(t, opts)
	deposed, err := l.Lead(log)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	k := key("user:a", "-", "vm")
	if err := l.SetHoldings(ctx, []HoldingSetting{{Key: k, Limit: 10}}); err != nil {
		t.Fatal(err)
	}
	before := ledgerState(t, l)
	log.mu.Lock()
	log.refuse = uint64(len(log.recs)) + 1
	log.mu.Unlock()
	if err := l.SetHoldings(ctx, []HoldingSetting{{Key: k, Limit: 20}}); !errors.Is(err, ErrDeposed) {
		t.Fatalf("a refused append: %v, want ErrDeposed", err)
	}
	select {
	case <-deposed:
	case <-time.After(testkit.Patience):
		t.Fatal("the deposed channel is open")
	}
	if l.Leading() {
		t.Fatal("still leading")
	}
	if err := l.SetHoldings(ctx, []HoldingSetting{{Key: k, Limit: 30}}); !errors.Is(err, ErrNotLeader) {
		t.Fatalf("a write after the refusal: %v, want ErrNotLeader", err)
	}
	if got := ledgerState(t, l); got != before {
		t.Fatalf("the refused batch shows:\n%s\nwant\n%s", got, before)
	}
	// Another leader appended meanwhile: follow it, then lead again.
	log.mu.Lock()
	log.refuse = 0
	log.mu.Unlock()
	other := mustOpen(t, Options{Dir: "/other", FS: opts.FS, NoFreeSpaceCheck: true, Follower: true,
		MemTableSize: 4 << 20, CacheSize: 8 << 20})
	follow(t, other, log)
	if _, err := other.Lead(log); err != nil {
		t.Fatal(err)
	}
	if err := other.SetHoldings(ctx, []HoldingSetting{{Key: k, Limit: 40}}); err != nil {
		t.Fatalf("%v (log %d records, other applied %d, failed %v)", err, len(log.records()), other.Applied(), other.Failed())
	}
	follow(t, l, log)
	if v, _ := l.FindHoldingByKey(k); v.Limit != 40 {
		t.Fatalf("after following, the holding is %+v, want limit 40", v)
	}
	if err := other.StepDown(); err != nil {
		t.Fatal(err)
	}
	if _, err := l.Lead(log); err != nil {
		t.Fatal(err)
	}
	if err := l.SetHoldings(ctx, []HoldingSetting{{Key: k, Limit: 50}}); err != nil {
		t.Fatal(err)
	}
	want := ledgerState(t, l)
	_ = l.Close()
	l2 := mustOpen(t, opts)
	if got := ledgerState(t, l2); got != want {
		t.Fatalf("reopened:\n%s\nwant\n%s", got, want)
	}
	if got := len(log.records()); l2.Applied() != uint64(got) {
		t.Fatalf("reopened at record %d, the log has %d", l2.Applied(), got)
	}
}

// lossyLog acknowledges the append of record lose without keeping it: the
// journal of its leader then holds a record the log does not, as a leader
// killed while the append was in flight leaves it (its journal synced, no
// quorum of the log had it).
type lossyLog struct {
	*memLog
	lose uint64
}

func (m *lossyLog) Append(seq uint64, rec []byte) func() error {
	if seq == m.lose {
		return func() error { return nil }
	}
	return m.memLog.Append(seq, rec)
}

// TestInLog opens a node killed while it led: its journal holds a record
// the log never took, and the log has another node's record of the same
// sequence (and more), so KeepJournalTo (the log's end) keeps it. InLog
// finds the journal's last records that are not the log's, they go, and
// the node follows the log to the state of the node that leads now.
func TestInLog(t *testing.T) {
	log := &memLog{}
	ctx := context.Background()
	k := key("user:a", "-", "vm")
	opts := memOptions()
	opts.Follower, opts.ID = true, "cluster-1"
	opts.CheckpointInterval, opts.CheckpointBytes = time.Hour, 1<<40
	a := mustOpen(t, opts)
	if _, err := a.Lead(&lossyLog{memLog: log, lose: 3}); err != nil {
		t.Fatal(err)
	}
	for limit := range int64(3) {
		if err := a.SetHoldings(ctx, []HoldingSetting{{Key: k, Limit: 10 + limit}}); err != nil {
			t.Fatal(err)
		}
	}
	a.skipCloseCheckpoint = true // as a kill leaves it
	_ = a.Close()

	// b leads after a: it follows the log's two records and appends its
	// own third and fourth, of another holding (a's third would stay).
	bopts := memOptions()
	bopts.Follower, bopts.ID = true, "cluster-1"
	b := mustOpen(t, bopts)
	follow(t, b, log)
	if _, err := b.Lead(log); err != nil {
		t.Fatal(err)
	}
	for _, limit := range []int64{20, 21} {
		if err := b.SetHoldings(ctx, []HoldingSetting{{Key: key("user:b", "-", "vm"), Limit: limit}}); err != nil {
			t.Fatal(err)
		}
	}
	if n := len(log.records()); n != 4 {
		t.Fatalf("the log holds %d records, want 4", n)
	}

	opts.KeepJournalTo = 4
	asked := 0
	opts.InLog = func(seq uint64, rec []byte) (bool, error) {
		asked++
		recs := log.records()
		return seq <= uint64(len(recs)) && bytes.Equal(recs[seq-1], rec), nil
	}
	a = mustOpen(t, opts)
	// Record 3 is not the log's; 2 is, and so is the one before it
	// (dropNotInLog keeps a record once those before it in the pipeline's
	// depth are the log's too, or the checkpoint is reached).
	if a.Applied() != 2 || asked != 3 {
		t.Fatalf("reopened at record %d, having asked InLog %d times; want 2, 3 times", a.Applied(), asked)
	}
	follow(t, a, log)
	if got, want := ledgerState(t, a), ledgerState(t, b); got != want {
		t.Fatalf("the node reads\n%s\nthe leader\n%s", got, want)
	}
	as, ad := a.Digest()
	bs, bd := b.Digest()
	if as != bs || ad != bd {
		t.Fatalf("digests: %d %s, the leader's %d %s", as, ad, bs, bd)
	}
}

// TestKeepJournalTo opens a node whose journal holds a record the log does
// not (it was never acknowledged): the record goes, and the node is at the
// log's end.
func TestKeepJournalTo(t *testing.T) {
	log := &memLog{}
	opts := memOptions()
	opts.Follower = true
	opts.CheckpointInterval, opts.CheckpointBytes = time.Hour, 1<<40
	l := mustOpen(t, opts)
	if _, err := l.Lead(log); err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	k := key("user:a", "-", "vm")
	for limit := range int64(3) {
		if err := l.SetHoldings(ctx, []HoldingSetting{{Key: k, Limit: 10 + limit}}); err != nil {
			t.Fatal(err)
		}
	}
	l.skipCloseCheckpoint = true // as a crash leaves it
	_ = l.Close()
	opts.KeepJournalTo = 2
	l = mustOpen(t, opts)
	if v, _ := l.FindHoldingByKey(k); l.Applied() != 2 || v.Limit != 11 {
		t.Fatalf("applied %d, holding %+v; want 2 and limit 11", l.Applied(), v)
	}
	_ = l.Close()
	opts.KeepJournalTo = 0
	l = mustOpen(t, opts)
	if l.Applied() != 2 {
		t.Fatalf("the dropped record came back: applied %d", l.Applied())
	}
}

// heldLog holds every append's acknowledgement until release is closed,
// then acknowledges it: an append in flight.
type heldLog struct {
	memLog
	release chan struct{}
}

func (h *heldLog) Append(seq uint64, rec []byte) func() error {
	wait := h.memLog.Append(seq, rec)
	return func() error {
		<-h.release
		return wait()
	}
}

// TestLeadBusy: while a batch of the last term is in flight (its append
// not acknowledged yet), Lead answers ErrBusy; once it is, the ledger leads
// again from it.
func TestLeadBusy(t *testing.T) {
	log := &heldLog{release: make(chan struct{})}
	opts := memOptions()
	opts.Follower = true
	l := mustOpen(t, opts)
	var once sync.Once
	release := func() { once.Do(func() { close(log.release) }) }
	t.Cleanup(release) // before the ledger closes: it waits for its batches
	if _, err := l.Lead(log); err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	k := key("user:a", "-", "vm")
	done := make(chan error, 1)
	go func() { done <- l.SetHoldings(ctx, []HoldingSetting{{Key: k, Limit: 10}}) }()
	testkit.CheckFor(t, testkit.Patience, time.Millisecond, func() error {
		log.mu.Lock()
		defer log.mu.Unlock()
		if log.appends == 0 {
			return errors.New("no append yet")
		}
		return nil
	})
	if err := l.StepDown(); err != nil {
		t.Fatal(err)
	}
	if _, err := l.Lead(log); !errors.Is(err, ErrBusy) {
		t.Fatalf("Lead with a batch of the last term in flight: %v, want ErrBusy", err)
	}
	release()
	if err := <-done; err != nil {
		t.Fatalf("the batch in flight: %v", err)
	}
	if _, err := l.Lead(log); err != nil {
		t.Fatalf("Lead once the batch finished: %v", err)
	}
	if err := l.SetHoldings(ctx, []HoldingSetting{{Key: k, Limit: 20}}); err != nil {
		t.Fatal(err)
	}
	if v, _ := l.FindHoldingByKey(k); v.Limit != 20 || l.Applied() != 2 {
		t.Fatalf("holding %+v at record %d, want limit 20 at 2", v, l.Applied())
	}
}

// refusingLog holds every append until release is closed, then refuses
// it: the log of a leader that another leader appended to meanwhile (its
// lease expired while it could not tell), each of its records refused as
// the log meets it.
type refusingLog struct {
	mu      sync.Mutex
	appends int
	release chan struct{}
}

func (r *refusingLog) Append(seq uint64, rec []byte) func() error {
	r.mu.Lock()
	r.appends++
	r.mu.Unlock()
	return func() error {
		<-r.release
		return fmt.Errorf("wrong last sequence: record %d was another leader's", seq)
	}
}

// usageMismatch says how the holdings of l differ from what its
// commissions make them, as a user reads them (and as the cluster's crash
// harness checks them): usage_min is the accepted quantities (the
// provision log) plus the pending releases, usage_max the accepted
// quantities plus the pending imports; "" when they agree.
func usageMismatch(l *Ledger, client string) (string, error) {
	type usage struct{ min, max int64 }
	want := map[holdings.Key]usage{}
	for _, s := range l.Pending(client) {
		c, err := l.Commission(client, s)
		if err != nil {
			return "", fmt.Errorf("pending commission %d: %w", s, err)
		}
		for _, p := range c.Provisions {
			u := want[p.Key]
			if p.Quantity >= 0 {
				u.max += p.Quantity
			} else {
				u.min += p.Quantity
			}
			want[p.Key] = u
		}
	}
	seen := map[uint64]string{}
	f := LogFilter{Limit: MaxLogPage}
	for {
		page, err := l.Log(f)
		if err != nil {
			return "", err
		}
		for _, e := range page.Entries {
			if e.Client != client {
				continue
			}
			if slices.Contains(l.Pending(client), e.Serial) {
				return fmt.Sprintf("commission %d is pending and in the provision log (%s)", e.Serial, e.Reason), nil
			}
			if r, ok := seen[e.Serial]; ok && r != e.Reason {
				return fmt.Sprintf("commission %d logged as %s and %s", e.Serial, r, e.Reason), nil
			}
			seen[e.Serial] = e.Reason
			if strings.HasPrefix(e.Reason, "ACCEPT:") {
				u := want[e.Key]
				u.min += e.Quantity
				u.max += e.Quantity
				want[e.Key] = u
			}
		}
		if page.Next == "" {
			break
		}
		f.After = page.Next
	}
	var out []string
	for _, h := range l.FindHoldings(HoldingFilter{}) {
		if w := want[h.Key]; w.min != h.Value.UsageMin || w.max != h.Value.UsageMax {
			out = append(out, fmt.Sprintf("holding %s is %+v; its commissions make usage_min %d, usage_max %d",
				h.Key, h.Value, w.min, w.max))
		}
	}
	return strings.Join(out, "\n"), nil
}

// refusedCall is a random write of TestRefusedLeadAgainUsage.
type refusedCall func(ctx context.Context, l *Ledger) error

// genRefusedCall draws a write on the holdings ks for client "c": an
// issue (with or without an idempotency key, auto-accepted or not, with a
// deadline or not), an accept or a reject of a serial near the ledger's
// last, a resolve-many, or an expiry.
func genRefusedCall(t *rapid.T, ks []holdings.Key, label string) refusedCall {
	switch rapid.IntRange(0, 9).Draw(t, label+" kind") {
	case 0, 1, 2, 3:
		n := rapid.IntRange(1, len(ks)).Draw(t, label+" provisions")
		req := IssueRequest{Client: "c", AutoAccept: rapid.IntRange(0, 3).Draw(t, label+" auto") == 0,
			TTL:            time.Duration(rapid.SampledFrom([]int{0, 0, 10}).Draw(t, label+" ttl")) * time.Second,
			IdempotencyKey: rapid.SampledFrom([]string{"", "", "k1", "k2", "k3"}).Draw(t, label+" idem")}
		for _, i := range rapid.Permutation([]int{0, 1, 2}).Draw(t, label+" keys")[:n] {
			q := rapid.Int64Range(-3, 5).Draw(t, label+" quantity")
			if q == 0 {
				q = 1
			}
			req.Provisions = append(req.Provisions, holdings.Provision{Key: ks[i], Quantity: q})
		}
		if req.IdempotencyKey != "" {
			// The same key, the same request (a retry), whatever was drawn.
			req.AutoAccept, req.TTL = false, 0
			req.Provisions = []holdings.Provision{{Key: ks[0], Quantity: int64(req.IdempotencyKey[1] - '0')}}
		}
		return func(ctx context.Context, l *Ledger) error { _, err := l.Issue(ctx, req); return err }
	case 4, 5, 6:
		back := rapid.Uint64Range(0, 4).Draw(t, label+" back")
		accept := rapid.Bool().Draw(t, label+" accept")
		return func(ctx context.Context, l *Ledger) error {
			s := l.Stats().Serial
			if back >= s {
				return nil
			}
			return l.Resolve(ctx, "c", s-back, accept, "")
		}
	case 7, 8:
		acc := rapid.SliceOfN(rapid.Uint64Range(0, 4), 0, 3).Draw(t, label+" accept many")
		rej := rapid.SliceOfN(rapid.Uint64Range(0, 4), 0, 3).Draw(t, label+" reject many")
		return func(ctx context.Context, l *Ledger) error {
			s := l.Stats().Serial
			var a, r []uint64
			for _, b := range acc {
				if b < s {
					a = append(a, s-b)
				}
			}
			for _, b := range rej {
				if b < s {
					r = append(r, s-b)
				}
			}
			_, err := l.ResolveMany(ctx, "c", a, r, "many")
			return err
		}
	}
	return func(ctx context.Context, l *Ledger) error { return l.ExpireDue(ctx) }
}

// TestRefusedLeadAgainUsage: a follower B wins the lease and leads, and
// its first batches (issues, accepts, rejects, with and without
// idempotency keys, on holdings near their limits) are refused by the
// log, where the leader before it, A, whose lease expired unbeknownst to
// it, appended records of the same sequences, with commissions of the same
// serials. B then follows A's records, leads again, and takes more calls.
// What a user reads of B (every holding's usage is what its pending and
// accepted commissions make it), B's digest (A's, once A followed) and B
// reopened must show nothing of the refused batches.
func TestRefusedLeadAgainUsage(t *testing.T) {
	rapid.Check(t, func(rt *rapid.T) {
		ctx := context.Background()
		clock := testkit.NewClock(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC))
		log := &memLog{}
		aopts := memOptions()
		aopts.Now, aopts.Follower, aopts.ID = clock.Now, true, "cluster-1"
		a, err := Open(aopts)
		must(rt, err)
		defer func() { _ = a.Close() }()
		bopts := memOptions()
		bopts.Now, bopts.Follower, bopts.ID = clock.Now, true, "cluster-1"
		bopts.MaxBatch = rapid.IntRange(1, 4).Draw(rt, "B's batch size")
		// Batches in flight behind one whose append waits (an expiry's,
		// when the clock moved past a deadline): the pipeline at its
		// deepest.
		bopts.PipelineDepth = maxPipelineDepth
		if rapid.Bool().Draw(rt, "B checkpoints often") {
			bopts.CheckpointInterval, bopts.CheckpointBytes = time.Nanosecond, 1
		}
		b, err := Open(bopts)
		must(rt, err)
		defer func() { _ = b.Close() }()

		if _, err := a.Lead(log); err != nil {
			rt.Fatal(err)
		}
		ks := []holdings.Key{key("h0", "s", "vm"), key("h1", "s", "vm"), key("h2", "s", "vm")}
		var settings []HoldingSetting
		for i, k := range ks {
			settings = append(settings, HoldingSetting{Key: k, Limit: rapid.Int64Range(3, 8).Draw(rt, fmt.Sprintf("limit %d", i))})
		}
		must(rt, a.SetHoldings(ctx, settings))
		for i := range rapid.IntRange(0, 8).Draw(rt, "calls before") {
			_ = genRefusedCall(rt, ks, fmt.Sprintf("before %d", i))(ctx, a)
		}
		clock.Advance(time.Duration(rapid.IntRange(0, 11).Draw(rt, "seconds")) * time.Second)
		follow(rt, b, log)

		// B leads; its writer held (an Update that waits), its calls
		// queue, to go out together in batches of up to MaxBatch, as many
		// as the pipeline takes; every append of B's waits, then is
		// refused.
		rlog := &refusingLog{release: make(chan struct{})}
		entered, gate := make(chan struct{}), make(chan struct{})
		var openGate, refuse sync.Once
		// Before B closes (deferred above): it waits for its batches.
		defer func() {
			openGate.Do(func() { close(gate) })
			refuse.Do(func() { close(rlog.release) })
		}()
		if _, err := b.Lead(rlog); err != nil {
			rt.Fatal(err)
		}
		held := make(chan error, 1)
		go func() {
			held <- b.Update(ctx, func(*Tx) error {
				close(entered)
				<-gate
				return nil
			})
		}()
		select {
		case <-entered:
		case err := <-held:
			rt.Fatalf("the update to hold B's writer: %v", err)
		}
		// As many as its queue holds (then none waits to be queued).
		bcalls := rapid.IntRange(1, min(10, cap(b.reqs))).Draw(rt, "B's refused calls")
		var wg sync.WaitGroup
		var returned atomic.Int64 // without queueing (a resolve of no serial)
		for i := range bcalls {
			call := genRefusedCall(rt, ks, fmt.Sprintf("B refused %d", i))
			wg.Add(1)
			go func() {
				defer wg.Done()
				_ = call(ctx, b)
				returned.Add(1)
			}()
			// One by one into the queue, in the order drawn.
			testkit.CheckFor(rt, testkit.Patience, time.Millisecond, func() error {
				if n := len(b.reqs) + int(returned.Load()); n != i+1 {
					return fmt.Errorf("%d calls queued or answered, want %d", n, i+1)
				}
				return nil
			})
		}
		openGate.Do(func() { close(gate) })

		// A appends meanwhile: the same sequences, the same serials.
		for i := range rapid.IntRange(1, 8).Draw(rt, "A's calls") {
			_ = genRefusedCall(rt, ks, fmt.Sprintf("A %d", i))(ctx, a)
		}
		refuse.Do(func() { close(rlog.release) })
		wg.Wait()
		// Its batch had nothing to append: answered, unless after a
		// refused one (then refused as well).
		if err := <-held; err != nil && !errors.Is(err, ErrDeposed) {
			rt.Fatalf("the update that held B's writer: %v", err)
		}
		if b.Leading() {
			rlog.mu.Lock()
			n := rlog.appends
			rlog.mu.Unlock()
			if n > 0 {
				rt.Fatalf("B leads after %d refused appends", n)
			}
			must(rt, b.StepDown()) // none of its batches wrote a record
		}

		// A's lease is B's: A steps down; B follows A's records and leads
		// again, and takes more calls, A following them.
		must(rt, a.StepDown())
		follow(rt, b, log)
		for {
			_, err := b.Lead(log)
			if errors.Is(err, ErrBusy) {
				time.Sleep(time.Millisecond)
				continue
			}
			must(rt, err)
			break
		}
		for i := range rapid.IntRange(0, 10).Draw(rt, "B's calls after") {
			_ = genRefusedCall(rt, ks, fmt.Sprintf("B after %d", i))(ctx, b)
		}
		clock.Advance(11 * time.Second)
		must(rt, b.ExpireDue(ctx))
		follow(rt, a, log)

		for _, l := range []struct {
			name string
			l    *Ledger
		}{{"B", b}, {"A", a}} {
			bad, err := usageMismatch(l.l, "c")
			must(rt, err)
			if bad != "" {
				rt.Fatalf("on %s:\n%s", l.name, bad)
			}
		}
		as, ad := a.Digest()
		bs, bd := b.Digest()
		if as != bs || ad != bd || bs != uint64(len(log.records())) {
			rt.Fatalf("digests: A %d %s, B %d %s; the log has %d records", as, ad, bs, bd, len(log.records()))
		}
		for _, s := range b.Pending("c") {
			if c, _ := b.Commission("c", s); !c.Deadline.IsZero() && !c.Deadline.After(clock.Now()) {
				rt.Fatalf("commission %d, due at %v, is still pending on B after ExpireDue at %v", s, c.Deadline, clock.Now())
			}
		}
		want := ledgerState(rt, b)
		must(rt, b.Close())
		b, err = Open(bopts)
		must(rt, err)
		if got := ledgerState(rt, b); got != want {
			rt.Fatalf("B reopened reads\n%s\nwant\n%s", got, want)
		}
		bad, err := usageMismatch(b, "c")
		must(rt, err)
		if bad != "" {
			rt.Fatalf("on B reopened:\n%s", bad)
		}
	})
}

// TestRefusedExpiry: a leader's expiry of a due commission is in a batch
// the log refuses. Once it has followed the log (which has nothing new) and
// leads again, the commission still expires: the refused batch had taken
// it off the writer's expiry heap, outside its overlay.
func TestRefusedExpiry(t *testing.T) {
	clock := testkit.NewClock(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC))
	log := &memLog{}
	opts := memOptions()
	opts.Now, opts.Follower, opts.ID = clock.Now, true, "cluster-1"
	l := mustOpen(t, opts)
	if _, err := l.Lead(log); err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	k := key("user:a", "-", "vm")
	if err := l.SetHoldings(ctx, []HoldingSetting{{Key: k, Limit: 10}}); err != nil {
		t.Fatal(err)
	}
	res, err := l.Issue(ctx, IssueRequest{Client: "c", TTL: time.Minute, Provisions: []holdings.Provision{{Key: k, Quantity: 1}}})
	if err != nil {
		t.Fatal(err)
	}
	clock.Advance(2 * time.Minute)
	log.mu.Lock()
	log.refuse = uint64(len(log.recs)) + 1
	log.mu.Unlock()
	if err := l.ExpireDue(ctx); !errors.Is(err, ErrDeposed) {
		t.Fatalf("the expiry's batch refused: %v, want ErrDeposed", err)
	}
	log.mu.Lock()
	log.refuse = 0
	log.mu.Unlock()
	follow(t, l, log)
	for {
		_, err := l.Lead(log)
		if errors.Is(err, ErrBusy) {
			time.Sleep(time.Millisecond)
			continue
		}
		if err != nil {
			t.Fatal(err)
		}
		break
	}
	if err := l.ExpireDue(ctx); err != nil {
		t.Fatal(err)
	}
	if p := l.Pending("c"); len(p) != 0 {
		t.Fatalf("commission %d, due since a minute, still pending after the leader leads again: %v", res.Serial, p)
	}
}

// TestInLogAfterRefused opens a node killed while it led, whose last
// records the log took after refusing the one before them (another
// writer's message was in its place, and the leader pipelined): the log
// holds records 4 and 5 of its journal but not 3, so 4 and 5, built on
// 3, are not the cluster's. The node reopens at record 2.
func TestInLogAfterRefused(t *testing.T) {
	log := &memLog{}
	ctx := context.Background()
	k := key("user:a", "-", "vm")
	opts := memOptions()
	opts.Follower, opts.ID = true, "cluster-1"
	opts.CheckpointInterval, opts.CheckpointBytes = time.Hour, 1<<40
	a := mustOpen(t, opts)
	if _, err := a.Lead(log); err != nil {
		t.Fatal(err)
	}
	for limit := range int64(5) {
		if err := a.SetHoldings(ctx, []HoldingSetting{{Key: k, Limit: 10 + limit}}); err != nil {
			t.Fatal(err)
		}
	}
	a.skipCloseCheckpoint = true // as a kill leaves it
	_ = a.Close()

	opts.KeepJournalTo = 5
	opts.InLog = func(seq uint64, rec []byte) (bool, error) {
		return seq != 3, nil
	}
	a = mustOpen(t, opts)
	if a.Applied() != 2 {
		t.Fatalf("reopened at record %d, want 2: records 4 and 5 were built on 3, which the log does not hold", a.Applied())
	}
	if v, _ := a.FindHoldingByKey(k); v.Limit != 11 {
		t.Fatalf("the holding is %+v, want limit 11 (record 2's)", v)
	}
}

package ledger

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

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
func follow(t *testing.T, f *Ledger, log *memLog) {
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
	if a.Applied() != 2 || asked != 2 {
		t.Fatalf("reopened at record %d, having asked InLog %d times; want 2, twice", a.Applied(), asked)
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

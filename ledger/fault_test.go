package ledger

// Fault tests (DESIGN §8, "a full disk or a failed fsync: writes are
// refused, nothing half-applied").
//
// What Pebble v2.1.7 does when the WAL fails (checked empirically with
// errorfs, and in its source: db.go applyInternal, commit.go, record/
// log_writer.go). The LogWriter's flush loop keeps the error of a failed
// Write or Sync of the WAL file for good and hands it to every batch waiting
// for a sync, then and later. What becomes of it depends on how the batch was
// applied:
//   - DB.Apply / Batch.Commit with Sync (the ledger's first writer): the
//     commit pipeline returns the error and applyInternal calls
//     Logger.Fatalf("pebble: fatal commit error: ..."); the ledger's logger
//     exits with status 1.
//   - DB.ApplyNoSyncWait (the pipelined writer): the batch is written to the
//     WAL buffer, applied to the memtable and made visible at once; the
//     error only comes back from Batch.SyncWait, and nothing exits. A later
//     apply meets the kept error in DB.commitWrite, which panics.
// The ledger (Ledger.fail, setFailed) keeps the first error, sends no batch
// to Pebble after it (and turns the panic of one applied in the moment
// before it knew back into the error), answers the calls of the batches in
// flight with ErrOutcomeUnknown and every later write with ErrFailed, and
// goes on answering reads from the last durable state, which it no longer
// moves. A restart (here: the parent reopening the directory) rebuilds from
// disk. An earlier version answered the batch in flight as refused, and
// after a failed sync those calls were there after a restart: hence
// "outcome unknown", not "refused", for them.
// And on disk:
//   - A failed WAL write: errorfs fails the write before any byte reaches the
//     file, and the LogWriter writes nothing after it, so the batch in flight
//     (and any after it) is gone after the restart.
//   - A failed WAL sync: the write before it went through, so the batch is in
//     the file (in the page cache, which a process exit does not lose) and
//     comes back on restart although no one was told it was durable. That is
//     allowed: a call that was never answered may be wholly applied or not
//     at all, never in part (a Pebble batch is one checksummed WAL record).
//     On power loss it could be lost instead; these tests do not simulate
//     that.
// The tests check the ledger's guarantees whatever Pebble does: every
// answered call is durable, every refused call (including one refused
// because its commit failed, should the ledger ever answer that again) left
// no trace (those answered ErrFailed included), and the holdings agree with
// the durable commissions. Then they check that the child, faultGrace calls
// after the fault, found its ledger failed as described (faultChildDegraded).

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/cockroachdb/pebble/v2/vfs"
	"github.com/cockroachdb/pebble/v2/vfs/errorfs"
	"github.com/rs/zerolog"

	"github.com/quotaledger/quotaledger/holdings"
	"github.com/quotaledger/quotaledger/internal/testkit"
	"github.com/quotaledger/quotaledger/internal/testkit/smallfs"
)

const (
	faultChildEnv   = "QUOTALEDGER_FAULT_CHILD"   // the directory
	faultKindEnv    = "QUOTALEDGER_FAULT_KIND"    // write | sync
	faultWorkersEnv = "QUOTALEDGER_FAULT_WORKERS" // concurrent callers
	faultArmEnv     = "QUOTALEDGER_FAULT_ARM"     // answered calls before the fault
	faultBeforeEnv  = "QUOTALEDGER_FAULT_BEFORE"  // sequential: arm just before this op
	// faultGrace is how many calls the child answers after the fault before
	// it gives up waiting for Pebble to exit.
	faultGrace = 200
)

func faultOpName(k errorfs.OpKind) string {
	switch k {
	case errorfs.OpFileWrite:
		return "write"
	case errorfs.OpFileWriteAt:
		return "write-at"
	case errorfs.OpFileSync:
		return "sync"
	case errorfs.OpFileSyncData:
		return "sync-data"
	case errorfs.OpFileSyncTo:
		return "sync-to"
	}
	return "op-" + strconv.Itoa(int(k))
}

// faultInjector fails every write (or every sync) of a WAL file while armed,
// and prints an "injected" line the first time.
func faultInjector(kind string, armed *atomic.Bool, out *crashOut) errorfs.Injector {
	var once sync.Once
	return errorfs.InjectorFunc(func(op errorfs.Op) error {
		if !armed.Load() || !strings.HasSuffix(op.Path, ".log") {
			return nil
		}
		switch op.Kind {
		case errorfs.OpFileWrite, errorfs.OpFileWriteAt:
			if kind != "write" {
				return nil
			}
		case errorfs.OpFileSync, errorfs.OpFileSyncData, errorfs.OpFileSyncTo:
			if kind != "sync" {
				return nil
			}
		default:
			return nil
		}
		once.Do(func() {
			out.print(&crashLine{Op: "injected", Name: faultOpName(op.Kind) + " " + filepath.Base(op.Path)})
		})
		return errorfs.ErrInjected
	})
}

// TestFaultChild is the child process of the fault tests; it is skipped
// unless faultChildEnv is set. It runs the crash workload on a filesystem
// that starts failing WAL writes or syncs once some calls were answered.
func TestFaultChild(t *testing.T) {
	dir := os.Getenv(faultChildEnv)
	if dir == "" {
		t.Skip("the child process of TestFaultWALWrite and TestFaultWALSync")
	}
	kind := os.Getenv(faultKindEnv)
	workers, err1 := strconv.Atoi(os.Getenv(faultWorkersEnv))
	arm, err2 := strconv.Atoi(os.Getenv(faultArmEnv))
	before := os.Getenv(faultBeforeEnv)
	if err := errors.Join(err1, err2); err != nil || (kind != "write" && kind != "sync") {
		fmt.Fprintln(os.Stderr, "fault child: bad environment:", kind, err)
		os.Exit(2)
	}
	var armed atomic.Bool
	var answered atomic.Int64
	out := &crashOut{}
	out.onAnswer = func(n int) {
		answered.Store(int64(n))
		if before == "" && n >= arm {
			armed.Store(true)
		}
		if n >= arm+faultGrace {
			faultChildDegraded(crashChildLedger.Load())
		}
	}
	var beforeCall func(op string)
	if before != "" {
		// Sequential: the fault hits exactly the call of this op that comes
		// first once arm calls were answered; its try line is out already.
		beforeCall = func(op string) {
			if op == before && answered.Load() >= int64(arm) {
				armed.Store(true)
			}
		}
	}
	crashChild(dir, errorfs.Wrap(vfs.Default, faultInjector(kind, &armed, out)), workers, out, beforeCall)
}

// faultChildDegraded checks, faultGrace calls after the fault, that the
// child's ledger is in the state a failed commit leaves: writes refused with
// ErrFailed, reads answering from the last durable state, which no longer
// moves. Then it exits with status faultDegradedExit (or 6 on a failed
// check); the parent reopens the directory, as a restarted service would.
func faultChildDegraded(l *Ledger) {
	ctx := context.Background()
	failf := func(format string, args ...any) {
		fmt.Fprintf(os.Stderr, "fault child: "+format+"\n", args...)
		os.Exit(6)
	}
	if l.Failed() == nil || !errors.Is(l.Writable(), ErrFailed) {
		failf("%d calls after the fault the ledger is not failed: %v, writable %v", faultGrace, l.Failed(), l.Writable())
	}
	select {
	case <-l.FailedC():
	default:
		failf("the ledger is failed but FailedC is open")
	}
	before := l.Stats()
	if err := l.SetHoldings(ctx, crashSettings()[:1]); !errors.Is(err, ErrFailed) || errors.Is(err, ErrOutcomeUnknown) {
		failf("set quota after the fault: %v, want ErrFailed", err)
	}
	if _, err := l.Log(LogFilter{Limit: 10}); err != nil {
		failf("log after the fault: %v", err)
	}
	if _, err := l.Outbox(0, 10); err != nil {
		failf("outbox after the fault: %v", err)
	}
	if len(l.FindHoldings(HoldingFilter{})) == 0 {
		failf("no quotas after the fault")
	}
	for _, c := range crashClients {
		for _, s := range l.Pending(c) {
			if _, err := l.Commission(c, s); err != nil {
				failf("commission %d of %s after the fault: %v", s, c, err)
			}
		}
	}
	if after := l.Stats(); after != before {
		failf("the durable state moved after the fault: %+v, then %+v", before, after)
	}
	fmt.Fprintln(os.Stderr, "fault child: degraded as designed")
	os.Exit(faultDegradedExit)
}

// faultDegradedExit is the fault child's status when it checked the failed
// state.
const faultDegradedExit = 7

func TestFaultWALWrite(t *testing.T) { testFault(t, "write") }

func TestFaultWALSync(t *testing.T) { testFault(t, "sync") }

func testFault(t *testing.T, kind string) {
	rng := rand.New(rand.NewPCG(crashSeed(t), 2))
	for _, tc := range []struct {
		name    string
		workers int
		before  string // sequential: the op in flight when the fault hits
	}{
		{"sequential-issue", 1, "issue"},
		{"sequential-resolve", 1, "resolve"},
		{"concurrent", 8, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			arm := 20 + rng.IntN(150)
			m := newCrashModel()
			env := []string{faultChildEnv + "=" + dir, faultKindEnv + "=" + kind,
				faultWorkersEnv + "=" + strconv.Itoa(tc.workers), faultArmEnv + "=" + strconv.Itoa(arm),
				faultBeforeEnv + "=" + tc.before}
			res := runChild(t, "TestFaultChild", env, m, childPolicy{limit: 30 * time.Second})
			if res.timedOut {
				t.Fatalf("the child ran past %v:\n%s", 30*time.Second, res.stderr)
			}
			if !res.ready {
				t.Fatalf("the child failed before it was ready: %v\n%s", res.state, res.stderr)
			}

			// The guarantees first, whatever the child's end was.
			start := time.Now()
			l := crashReopen(t, dir)
			defer l.Close()
			maxSerial, all := m.verify(t, l)
			if tc.workers == 1 {
				faultCheckInflight(t, kind, tc.before, m, all)
			}
			m.checkNext(t, l, maxSerial, "check")

			// Then that the child exited on the failed commit.
			if m.injected == "" {
				t.Fatalf("no fault was injected; the child ended with %v:\n%s", res.state, res.stderr)
			}
			if code := res.state.ExitCode(); code != faultDegradedExit || !strings.Contains(res.stderr, "a commit failed") {
				t.Fatalf("after the injected WAL %s the child ended with %v, want exit status %d after checking the failed state:\n%s",
					m.injected, res.state, faultDegradedExit, res.stderr)
			}
			t.Logf("armed after %d answers; injected %s; the child checked its failed state and exited (%v) after %d answered calls in %v; checked in %v; outcomes %v",
				arm, m.injected, res.state, res.answered, res.elapsed.Round(time.Millisecond),
				time.Since(start).Round(time.Millisecond), m.outcomes)
		})
	}
}

// faultCheckInflight checks the one call a sequential child had in flight
// when the fault hit. After a failed WAL write it must not be visible at
// all. After a failed sync it may be there (its batch reached the file
// before the sync failed) or not, never in part; verify already showed that
// whatever is durable is whole (a commission with exactly the provisions
// asked, a resolution with every log entry, holdings that agree).
func faultCheckInflight(t *testing.T, kind, before string, m *crashModel, all map[uint64]*crashDurable) {
	t.Helper()
	in := m.unknown
	if in == nil || in.Op != before {
		t.Fatalf("the child had no %s in flight when the fault hit (first answered as of unknown outcome: %+v)", before, in)
	}
	var present bool
	switch in.Op {
	case "issue":
		for _, d := range all {
			if d.name == in.Name {
				present = true
			}
		}
	case "resolve":
		d := all[in.Serial]
		if d == nil {
			t.Fatalf("serial %d, resolving when the fault hit, is lost", in.Serial)
		}
		present = d.state != 'P'
	}
	if kind == "write" && present {
		t.Fatalf("the %s in flight when the WAL write failed is visible after the restart: %+v", in.Op, in)
	}
	t.Logf("the %s in flight when the WAL %s failed is present after the restart: %v", in.Op, kind, present)
}

// TestFreeSpaceFloor checks that below the free-space floor every write is
// refused with ErrNoSpace and changes nothing, that reads go on, and that
// writes work again once there is room.
func TestFreeSpaceFloor(t *testing.T) {
	ctx := context.Background()
	var free, diskFreeCalls atomic.Uint64
	var cannotTell atomic.Bool
	var now atomic.Int64 // the ledger's clock
	free.Store(1 << 30)
	now.Store(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC).UnixNano())
	opts := memOptions()
	opts.Now = func() time.Time { return time.Unix(0, now.Load()) }
	opts.NoFreeSpaceCheck = false
	opts.MinFreeBytes = 1 << 20
	opts.DiskFree = func() (uint64, error) {
		diskFreeCalls.Add(1)
		if cannotTell.Load() {
			return 0, errors.New("statfs: not supported")
		}
		return free.Load(), nil
	}
	l := mustOpen(t, opts)
	ku, kp := key("user:1", "project:1", "cyclades.vm"), key("project:1", "-", "cyclades.vm")
	prov := func(q int64) []holdings.Provision {
		return []holdings.Provision{{Key: ku, Quantity: q}, {Key: kp, Quantity: q}}
	}

	// Plenty of room.
	if err := l.SetHoldings(ctx, []HoldingSetting{{Key: ku, Limit: 10}, {Key: kp, Limit: 100}}); err != nil {
		t.Fatal(err)
	}
	if res, err := l.Issue(ctx, IssueRequest{Client: "cyclades", Provisions: prov(2)}); err != nil || res.Serial != 1 {
		t.Fatalf("issue: %+v %v", res, err)
	}
	if res, err := l.Issue(ctx, IssueRequest{Client: "cyclades", AutoAccept: true, Provisions: prov(1)}); err != nil || res.Serial != 2 {
		t.Fatalf("issue: %+v %v", res, err)
	}
	state := func() string {
		c, err := l.Commission("cyclades", 1)
		if err != nil {
			t.Fatalf("commission: %v", err)
		}
		page, err := l.Log(LogFilter{})
		if err != nil {
			t.Fatalf("log: %v", err)
		}
		byHolder, err := l.Log(LogFilter{Holder: "user:1"})
		if err != nil {
			t.Fatalf("log: %v", err)
		}
		evs, err := l.Outbox(0, 1000)
		if err != nil {
			t.Fatalf("outbox: %v", err)
		}
		return fmt.Sprintf("quotas %+v\npending %v\ncommission %+v\nlog %+v\nlog of user:1 %+v\nstats %+v\noutbox %+v",
			l.FindHoldings(HoldingFilter{}), l.Pending("cyclades"), c, page, byHolder, l.Stats(), evs)
	}
	before := state()

	// Below the floor: every write is refused and changes nothing.
	free.Store(opts.MinFreeBytes - 1)
	refused := func(what string, err error) {
		t.Helper()
		if !errors.Is(err, ErrNoSpace) {
			t.Errorf("%s below the floor: %v, want ErrNoSpace", what, err)
		}
	}
	refused("set quota", l.SetHoldings(ctx, []HoldingSetting{{Key: ku, Limit: 20}, {Key: key("user:2", "project:1", "cyclades.vm"), Limit: 5}}))
	refused("delete quota", l.DeleteHoldings(ctx, []holdings.Key{key("user:1", "project:1", "cyclades.ram")}))
	_, err := l.Issue(ctx, IssueRequest{Client: "cyclades", Provisions: prov(1), IdempotencyKey: "k1"})
	refused("issue", err)
	_, err = l.Issue(ctx, IssueRequest{Client: "cyclades", AutoAccept: true, Force: true, Provisions: prov(50)})
	refused("issue with auto accept", err)
	refused("accept", l.Resolve(ctx, "cyclades", 1, true, ""))
	refused("reject", l.Resolve(ctx, "cyclades", 1, false, ""))
	_, err = l.ResolveMany(ctx, "cyclades", []uint64{1}, nil, "")
	refused("resolve many", err)
	refused("expire", l.ExpireDue(ctx))
	// Many callers at once: the whole batch is refused.
	var wg sync.WaitGroup
	errs := make([]error, 16)
	for i := range errs {
		wg.Go(func() {
			_, errs[i] = l.Issue(ctx, IssueRequest{Client: "cyclades", Provisions: prov(1)})
		})
	}
	waitGroup(t, testkit.Patience, "the refused callers", &wg)
	for i, err := range errs {
		refused("issue "+strconv.Itoa(i), err)
	}
	// Reads go on, and nothing changed.
	if after := state(); after != before {
		t.Fatalf("refused writes changed the ledger:\nbefore:\n%s\nafter:\n%s", before, after)
	}
	if v, ok := l.FindHoldingByKey(ku); !ok || v != (holdings.Value{Limit: 10, UsageMin: 1, UsageMax: 3}) {
		t.Fatalf("holding below the floor: %+v %v", v, ok)
	}
	if p := l.Pending("cyclades"); !slices.Equal(p, []uint64{1}) {
		t.Fatalf("pending below the floor: %v", p)
	}
	if page, err := l.Log(LogFilter{Serial: 2}); err != nil || len(page.Entries) != 2 {
		t.Fatalf("log below the floor: %+v %v", page, err)
	}

	// Exactly at the floor is enough.
	free.Store(opts.MinFreeBytes)
	if err := l.Resolve(ctx, "cyclades", 1, true, ""); err != nil {
		t.Fatalf("accept at the floor: %v", err)
	}
	// A disk that cannot tell its free space counts as having room. The
	// refused issues took no serial and the refused idempotency key was
	// not recorded.
	cannotTell.Store(true)
	res, err := l.Issue(ctx, IssueRequest{Client: "cyclades", Provisions: prov(1), IdempotencyKey: "k1"})
	if err != nil || res.Serial != 3 || res.Replayed {
		t.Fatalf("issue on a disk that cannot tell: %+v %v", res, err)
	}
	cannotTell.Store(false)

	// Below again, then room again.
	free.Store(0)
	refused("reject", l.Resolve(ctx, "cyclades", 3, false, ""))
	free.Store(1 << 30)
	if err := l.Resolve(ctx, "cyclades", 3, false, ""); err != nil {
		t.Fatalf("reject with room again: %v", err)
	}
	if err := l.SetHoldings(ctx, []HoldingSetting{{Key: ku, Limit: 20}}); err != nil {
		t.Fatalf("set quota with room again: %v", err)
	}
	if v, _ := l.FindHoldingByKey(ku); v != (holdings.Value{Limit: 20, UsageMin: 3, UsageMax: 3}) {
		t.Fatalf("holding at the end: %+v", v)
	}
	if st := l.Stats(); st.Pending != 0 || st.Serial != 3 || st.Holdings != 2 {
		t.Fatalf("stats at the end: %+v", st)
	}

	// A commission with a ttl, then a restart below the floor after its
	// deadline: the ledger opens and serves reads, and refuses writes. It
	// cannot expire the commission without room, and it does not spin
	// trying: the deadline timer waits before it tries again.
	res, err = l.Issue(ctx, IssueRequest{Client: "cyclades", Provisions: prov(1), TTL: time.Minute})
	if err != nil || res.Serial != 4 {
		t.Fatalf("issue with a ttl: %+v %v", res, err)
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	free.Store(0)
	now.Add(int64(2 * time.Minute))
	l, err = Open(opts)
	if err != nil {
		t.Fatalf("open below the floor: %v", err)
	}
	t.Cleanup(func() { _ = l.Close() })
	if v, _ := l.FindHoldingByKey(ku); v != (holdings.Value{Limit: 20, UsageMin: 3, UsageMax: 4}) {
		t.Fatalf("holding after a restart below the floor: %+v", v)
	}
	if page, err := l.Log(LogFilter{Holder: "user:1"}); err != nil || len(page.Entries) != 3 {
		t.Fatalf("log after a restart below the floor: %+v %v", page, err)
	}
	if p := l.Pending("cyclades"); !slices.Equal(p, []uint64{4}) {
		t.Fatalf("pending after a restart below the floor: %v", p)
	}
	_, err = l.Issue(ctx, IssueRequest{Client: "cyclades", Provisions: prov(1)})
	refused("issue after a restart below the floor", err)
	// A window to count in, not a wait for something: a writer that spins
	// asks for the free space hundreds of thousands of times in it.
	asked := diskFreeCalls.Load()
	time.Sleep(100 * time.Millisecond)
	if n := diskFreeCalls.Load() - asked; n > 20 {
		t.Fatalf("below the floor with a commission past its deadline, the writer asked for the free space %d times in 100ms", n)
	}
	// Room again: the writer expires the commission by itself.
	free.Store(1 << 30)
	testkit.CheckFor(t, testkit.Patience, time.Millisecond, func() error {
		if n := len(l.Pending("cyclades")); n != 0 {
			return fmt.Errorf("%d commissions pending, want the overdue one expired", n)
		}
		return nil
	})
	if page, err := l.Log(LogFilter{Serial: 4}); err != nil || len(page.Entries) != 2 || page.Entries[0].Reason != "REJECT:"+ReasonExpired {
		t.Fatalf("log of the expired commission: %+v %v", page, err)
	}
	if res, err := l.Issue(ctx, IssueRequest{Client: "cyclades", Provisions: prov(1)}); err != nil || res.Serial != 5 {
		t.Fatalf("issue after a restart, with room again: %+v %v", res, err)
	}
}

// TestJournalWALFitsTheVolume fills the journal on a small volume
// (smallfs: a 256 MiB one, counting what Pebble preallocates for its WAL
// files as a real filesystem does) and checks that the WAL files of the
// journal, live, preallocated and kept to be recycled, never hold more than
// a tenth of it: sized for a large disk (64 MiB memtables, a WAL file
// preallocated at 70 MB and three kept), they held 280 MB, and a volume
// cleared of what filled it stayed under the free-space floor until a
// restart (issue 17). Then a file fills the volume to under the floor, and
// once it is removed the same ledger takes writes again.
func TestJournalWALFitsTheVolume(t *testing.T) {
	ctx := context.Background()
	const volume = 256 << 20
	root := t.TempDir()
	fs, err := smallfs.New(vfs.Default, root, volume)
	if err != nil {
		t.Fatal(err)
	}
	dir := filepath.Join(root, "ledger")
	opts := Options{Dir: dir, FS: fs, Logger: zerolog.Nop(), MinFreeBytes: 32 << 20, CacheSize: 8 << 20}
	l := mustOpen(t, opts)
	wal := func() int64 { return fs.UsedUnder(journalDir(dir), ".log") }

	// 64 MiB of journal, in records of 256 KiB (identity's records and the
	// ledger's go the same way): the journal's memtable turns over many
	// times, each time with a new WAL file.
	value := bytes.Repeat([]byte{'q'}, 256<<10)
	var most int64
	for i := range 256 {
		if err := l.Update(ctx, func(tx *Tx) error { return tx.Put([]byte("U"+strconv.Itoa(i%8)), value) }); err != nil {
			t.Fatalf("write %d: %v (%s)", i, err, fs)
		}
		most = max(most, wal())
		if most > volume/10 {
			t.Fatalf("after write %d the journal's WAL files take %d bytes of the %d of the volume, more than a tenth", i, most, volume)
		}
	}
	t.Logf("the journal's WAL files took at most %d bytes of %d", most, volume)

	// A file fills the volume to a byte under the floor: writes refused.
	filler := filepath.Join(root, "filler")
	if err := fs.Fill(filler, fs.Size()-fs.Used()-int64(opts.MinFreeBytes)+1); err != nil {
		t.Fatal(err)
	}
	if err := l.Update(ctx, func(tx *Tx) error { return tx.Put([]byte("Ufull"), value) }); !errors.Is(err, ErrNoSpace) {
		t.Fatalf("write on a full volume: %v, want ErrNoSpace (%s)", err, fs)
	}
	// Cleared: writes taken at once, by the same ledger.
	if err := fs.Remove(filler); err != nil {
		t.Fatal(err)
	}
	if err := l.Update(ctx, func(tx *Tx) error { return tx.Put([]byte("Ucleared"), value) }); err != nil {
		t.Fatalf("write on the cleared volume: %v (%s)", err, fs)
	}
}

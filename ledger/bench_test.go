package ledger

import (
	"context"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/cockroachdb/pebble/v2"
	"github.com/rs/zerolog"

	"github.com/quotaledger/quotaledger/holdings"
)

// The engine benchmarks of DESIGN.md §7: durable (every call synced), on
// the real disk under the benchmark's temporary directory. Run:
//
//	go test ./ledger -run '^$' -bench 'IssueAccept|HotHolding|OverLimit' -benchtime 5s
//
// Each reports provisions/s and the p99 latency of one call (issue or accept).

const (
	benchHoldings = 100_000
	benchCallers  = 64
	benchProjects = 1000
)

var benchResources = [2]string{"cyclades.vm", "cyclades.ram"}

// benchLayout names the holdings of the §7 workload: users, each a member of
// one project, each drawing two resources from the project; commissions take
// the user's and the project's holdings of both resources (4 provisions).
type benchLayout struct {
	users, projects int
}

func newBenchLayout(n int) benchLayout {
	projects := min(benchProjects, n/4)
	return benchLayout{users: (n - 2*projects) / 2, projects: projects}
}

func (bl benchLayout) commission(user int, q int64) []holdings.Provision {
	u := fmt.Sprintf("user:%08d", user)
	p := fmt.Sprintf("project:%05d", user%bl.projects)
	ps := make([]holdings.Provision, 0, 4)
	for _, r := range benchResources {
		ps = append(ps,
			holdings.Provision{Key: holdings.Key{Holder: u, Source: holdings.SourceOf(p), Resource: r}, Quantity: q},
			holdings.Provision{Key: holdings.Key{Holder: p, Source: holdings.NullSource, Resource: r}, Quantity: q})
	}
	return ps
}

func (bl benchLayout) create(tb testing.TB, l *Ledger, userLimit, projectLimit int64) {
	tb.Helper()
	var batch []HoldingSetting
	flush := func() {
		if err := l.SetHoldings(context.Background(), batch); err != nil {
			tb.Fatal(err)
		}
		batch = batch[:0]
	}
	for u := 0; u < bl.users; u++ {
		for i, p := range bl.commission(u, 0) {
			limit := userLimit
			if i%2 == 1 {
				if u >= bl.projects {
					continue
				}
				limit = projectLimit
			}
			batch = append(batch, HoldingSetting{Key: p.Key, Limit: limit})
		}
		if len(batch) >= 10_000 {
			flush()
		}
	}
	flush()
}

func openBench(tb testing.TB) *Ledger {
	tb.Helper()
	return mustOpen(tb, Options{Dir: tb.TempDir(), Logger: zerolog.Nop()})
}

// runCallers runs n commissions spread over benchCallers goroutines; each
// does one commission with fn and records the latency of every call.
func runCallers(b *testing.B, l *Ledger, fn func(ctx context.Context, i int, lat *[]time.Duration) error) {
	var next atomic.Int64
	var mu sync.Mutex
	var all []time.Duration
	var wg sync.WaitGroup
	var failed atomic.Value
	st0 := l.Stats()
	b.ResetTimer()
	start := time.Now()
	for g := 0; g < benchCallers; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			lat := make([]time.Duration, 0, 2*b.N/benchCallers+2)
			for {
				i := int(next.Add(1)) - 1
				if i >= b.N {
					break
				}
				if err := fn(context.Background(), i, &lat); err != nil {
					failed.Store(err)
					break
				}
			}
			mu.Lock()
			all = append(all, lat...)
			mu.Unlock()
		}()
	}
	wg.Wait()
	elapsed := time.Since(start)
	b.StopTimer()
	if err, ok := failed.Load().(error); ok {
		b.Fatal(err)
	}
	st := l.Stats()
	if n := st.Batches - st0.Batches; n > 0 {
		b.ReportMetric(float64(st.Calls-st0.Calls)/float64(n), "calls/batch")
	}
	slices.Sort(all)
	b.ReportMetric(float64(4*b.N)/elapsed.Seconds(), "provisions/s")
	b.ReportMetric(float64(b.N)/elapsed.Seconds(), "commissions/s")
	if len(all) > 0 {
		pct := func(p float64) float64 { return float64(all[int(float64(len(all))*p)].Microseconds()) / 1000 }
		b.ReportMetric(pct(0.50), "p50-ms")
		b.ReportMetric(pct(0.99), "p99-ms")
		b.ReportMetric(pct(0.999), "p99.9-ms")
	}
}

func timed(lat *[]time.Duration, fn func() error) error {
	t := time.Now()
	err := fn()
	*lat = append(*lat, time.Since(t))
	return err
}

// BenchmarkIssueAccept: 4-provision commissions issued then accepted over
// 100,000 holdings by 64 concurrent callers.
func BenchmarkIssueAccept(b *testing.B) {
	l := openBench(b)
	bl := newBenchLayout(benchHoldings)
	bl.create(b, l, 1<<50, 1<<50)
	runCallers(b, l, func(ctx context.Context, i int, lat *[]time.Duration) error {
		var res IssueResult
		err := timed(lat, func() (err error) {
			res, err = l.Issue(ctx, IssueRequest{Client: "bench", Provisions: bl.commission(i%bl.users, 1)})
			return err
		})
		if err != nil {
			return err
		}
		return timed(lat, func() error { return l.Resolve(ctx, "bench", res.Serial, true, "") })
	})
}

// BenchmarkHotHolding: the same, but every commission also draws from one
// project holding shared by all callers.
func BenchmarkHotHolding(b *testing.B) {
	l := openBench(b)
	bl := newBenchLayout(benchHoldings)
	bl.create(b, l, 1<<50, 1<<50)
	hot := holdings.Key{Holder: "project:hot", Source: holdings.NullSource, Resource: benchResources[0]}
	if err := l.SetHoldings(context.Background(), []HoldingSetting{{Key: hot, Limit: 1 << 50}}); err != nil {
		b.Fatal(err)
	}
	runCallers(b, l, func(ctx context.Context, i int, lat *[]time.Duration) error {
		ps := bl.commission(i%bl.users, 1)
		ps[1].Key = hot // the project holding of the first resource
		var res IssueResult
		err := timed(lat, func() (err error) {
			res, err = l.Issue(ctx, IssueRequest{Client: "bench", Provisions: ps})
			return err
		})
		if err != nil {
			return err
		}
		return timed(lat, func() error { return l.Resolve(ctx, "bench", res.Serial, true, "") })
	})
	if v, _ := l.FindHoldingByKey(hot); v.UsageMin != int64(b.N) || v.UsageMax != int64(b.N) {
		b.Fatalf("hot holding lost updates: %+v after %d commissions", v, b.N)
	}
}

// BenchmarkOverLimit: half of the issues are refused with NoCapacity.
func BenchmarkOverLimit(b *testing.B) {
	l := openBench(b)
	bl := newBenchLayout(benchHoldings)
	bl.create(b, l, 0, 1<<50)
	runCallers(b, l, func(ctx context.Context, i int, lat *[]time.Duration) error {
		q := int64(i % 2) // odd commissions ask 1 of a holding with limit 0
		var res IssueResult
		err := timed(lat, func() (err error) {
			res, err = l.Issue(ctx, IssueRequest{Client: "bench", Provisions: bl.commission(i%bl.users, q)})
			return err
		})
		if q == 1 {
			if _, ok := holdings.AsQuotaLimit(err); !ok {
				return fmt.Errorf("want NoCapacity, got %v", err)
			}
			return nil
		}
		if err != nil {
			return err
		}
		return timed(lat, func() error { return l.Resolve(ctx, "bench", res.Serial, true, "") })
	})
}

// BenchmarkMemoryPerHolding reports the heap bytes each resident holding
// costs (target <= 300), with the names of the §7 workload.
//
//	go test ./ledger -run '^$' -bench MemoryPerHolding -benchtime 1x
func BenchmarkMemoryPerHolding(b *testing.B) {
	const n = 1_000_000
	dir := b.TempDir()
	l, err := Open(Options{Dir: dir, Logger: zerolog.Nop()})
	if err != nil {
		b.Fatal(err)
	}
	newBenchLayout(n).create(b, l, 100, 100)
	if err := l.Close(); err != nil {
		b.Fatal(err)
	}
	before := heapInUse()
	l, err = Open(Options{Dir: dir, Logger: zerolog.Nop(), CacheSize: 1 << 20})
	if err != nil {
		b.Fatal(err)
	}
	defer l.Close()
	after := heapInUse()
	held := l.Stats().Holdings
	b.ReportMetric(float64(after-before)/float64(held), "bytes/holding")
	b.ReportMetric(float64(held), "holdings")
}

func heapInUse() uint64 {
	runtime.GC()
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return m.HeapInuse
}

// BenchmarkOpen reports the time to open a ledger of 1,000,000 holdings
// whose log holds 10,000,000 provisions (target < 3 s, DESIGN §7), with
// 1,000 commissions pending:
//   - checkpointed: closed cleanly, so the open loads the checkpoint and
//     replays nothing;
//   - tail: at its worst, with a journal of Options.CheckpointBytes (64 MiB)
//     written since the last checkpoint, which the open replays (the process
//     stopped without its closing checkpoint, as after a crash).
//
// The log is written straight into the state database in the ledger's own
// chunks, unsynced, to build the data directory quickly; only the open is
// timed.
//
//	go test ./ledger -run '^$' -bench Open -benchtime 1x -timeout 30m
func BenchmarkOpen(b *testing.B) {
	const nHoldings, nLog = 1_000_000, 10_000_000
	for _, tail := range []bool{false, true} {
		name := "checkpointed"
		if tail {
			name = "tail"
		}
		b.Run(name, func(b *testing.B) {
			dir := b.TempDir()
			opts := Options{Dir: dir, Logger: zerolog.Nop()}
			l, err := Open(opts)
			if err != nil {
				b.Fatal(err)
			}
			bl := newBenchLayout(nHoldings)
			bl.create(b, l, 1<<40, 1<<40)
			// 1,000 commissions left pending, to be loaded too.
			for i := 0; i < 1000; i++ {
				if _, err := l.Issue(context.Background(), IssueRequest{Client: "bench", Provisions: bl.commission(i, 1)}); err != nil {
					b.Fatal(err)
				}
			}
			writeBenchLog(b, l, bl, nLog)
			replayed := 0
			if tail {
				replayed = writeBenchTail(b, l, bl)
				l.skipCloseCheckpoint = true
			}
			if err := l.Close(); err != nil {
				b.Fatal(err)
			}
			if tail {
				// Every open checkpoints at its close; keep the tail for
				// each timed open.
				if err := copyDir(dir, dir+".tail"); err != nil {
					b.Fatal(err)
				}
			}
			b.ResetTimer()
			var held, pending int
			for i := 0; i < b.N; i++ {
				if tail && i > 0 {
					resetTail(b, dir)
				}
				l, err := Open(opts)
				if err != nil {
					b.Fatal(err)
				}
				st := l.Stats()
				held, pending = st.Holdings, st.Pending
				b.StopTimer()
				_ = l.Close()
				b.StartTimer()
			}
			b.ReportMetric(b.Elapsed().Seconds()/float64(b.N), "s/open")
			b.ReportMetric(float64(held), "holdings")
			b.ReportMetric(float64(pending), "pending")
			b.ReportMetric(float64(replayed), "calls-replayed")
		})
	}
}

// writeBenchLog writes n logged provisions of commissions of bl straight
// into the state database: the resolved records, a block of serials a key,
// and the holders' chunks.
func writeBenchLog(b *testing.B, l *Ledger, bl benchLayout, n int) {
	pb := l.db.NewBatch()
	t0 := time.Now().UnixNano()
	var lb logBuffer
	var k, v, arena []byte
	var rs []resolvedRec
	writeBlock := func() {
		if len(rs) > 0 {
			block := blockOf(rs[0].serial)
			_ = pb.Set(blockKey(k[:0], block, block), appendResolvedBlock(v[:0], rs, arena), nil)
			rs, arena = rs[:0], arena[:0]
		}
	}
	for i := 0; i < n/4; i++ {
		serial := uint64(1_000_000 + i)
		es := make([]LogEntry, 0, 4)
		for j, p := range bl.commission(i%bl.users, 1) {
			e := LogEntry{Serial: serial, Client: "bench", Key: p.Key, Quantity: 1, Reason: "ACCEPT:",
				IssueTime: time.Unix(0, t0), LogTime: time.Unix(0, t0+int64(i)), After: holdings.Value{Limit: 1 << 40, UsageMin: 1, UsageMax: 1}}
			es = append(es, e)
			lb.stage(p.Key.Holder, &es[len(es)-1], j)
		}
		lb.commit()
		if len(rs) > 0 && blockOf(rs[0].serial) != blockOf(serial) {
			writeBlock()
		}
		start := len(arena)
		arena = appendResolved(arena, es[0], es)
		rs = append(rs, resolvedRec{serial: serial, start: start, end: len(arena)})
		if lb.size() >= maxLogBuffer {
			lb.flush(pb)
		}
		if pb.Len() > 16<<20 {
			if err := pb.Commit(pebble.NoSync); err != nil {
				b.Fatal(err)
			}
			pb = l.db.NewBatch()
		}
	}
	writeBlock()
	lb.flush(pb)
	if err := pb.Commit(pebble.NoSync); err != nil {
		b.Fatal(err)
	}
}

// writeBenchTail issues and accepts commissions until the journal written
// since the last checkpoint reaches Options.CheckpointBytes, and returns how
// many calls it made.
func writeBenchTail(b *testing.B, l *Ledger, bl benchLayout) int {
	if err := l.CheckpointNow(); err != nil {
		b.Fatal(err)
	}
	l.skipCheckpoints.Store(true)
	return issueAcceptUntil(b, l, bl, func(int64) bool { return l.journalSince() >= l.opts.CheckpointBytes })
}

// issueAcceptUntil has 64 callers issue and accept commissions of bl until
// done (given the calls made so far) says so; it returns the calls made.
func issueAcceptUntil(b *testing.B, l *Ledger, bl benchLayout, done func(calls int64) bool) int {
	var calls atomic.Int64
	ctx := context.Background()
	var wg sync.WaitGroup
	for g := range 64 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := g; !done(calls.Load()); i += 64 {
				res, err := l.Issue(ctx, IssueRequest{Client: "bench", Provisions: bl.commission(i%bl.users, 1)})
				if err == nil {
					err = l.Resolve(ctx, "bench", res.Serial, true, "")
				}
				if err != nil {
					b.Error(err)
					return
				}
				calls.Add(2)
			}
		}()
	}
	wg.Wait()
	return int(calls.Load())
}

// resetTail puts back, with the timer stopped, the data directory as
// copyDir saved it in dir.tail.
func resetTail(b *testing.B, dir string) {
	b.StopTimer()
	defer b.StartTimer()
	if err := os.RemoveAll(dir); err != nil {
		b.Fatal(err)
	}
	if err := copyDir(dir+".tail", dir); err != nil {
		b.Fatal(err)
	}
}

// copyDir copies the files of a data directory (one level of
// subdirectories: the journal's).
func copyDir(src, dst string) error {
	return filepath.WalkDir(src, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(src, path)
		to := filepath.Join(dst, rel)
		if d.IsDir() {
			return os.MkdirAll(to, 0o755)
		}
		data, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		return os.WriteFile(to, data, 0o644)
	})
}

// BenchmarkSyncedWrite measures the floor the disk sets: one goroutine
// writing one small record at a time to Pebble, synced. Its syncs/s bounds
// any durable design: a call waits for at least one sync, so C closed-loop
// callers make at most C x syncs/s calls per second.
//
//	go test ./ledger -run '^$' -bench SyncedWrite -benchtime 3s
func BenchmarkSyncedWrite(b *testing.B) {
	l := openBench(b)
	v := make([]byte, 100)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if err := l.jdb.Set(journalKey(nil, uint64(i)), v, pebble.Sync); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "syncs/s")
}

// BenchmarkReplay reports what an open spends replaying each call of the
// journal after the last checkpoint (100,000 holdings; a tail of 200,000
// calls, issues and accepts of 4 provisions).
//
//	go test ./ledger -run '^$' -bench Replay -benchtime 3x
func BenchmarkReplay(b *testing.B) {
	dir := b.TempDir()
	opts := Options{Dir: dir, Logger: zerolog.Nop(), CheckpointBytes: 1 << 40}
	l, err := Open(opts)
	if err != nil {
		b.Fatal(err)
	}
	bl := newBenchLayout(100_000)
	bl.create(b, l, 1<<40, 1<<40)
	if err := l.CheckpointNow(); err != nil {
		b.Fatal(err)
	}
	l.skipCheckpoints.Store(true)
	const calls = 200_000
	issueAcceptUntil(b, l, bl, func(n int64) bool { return n >= calls })
	l.skipCloseCheckpoint = true
	if err := l.Close(); err != nil {
		b.Fatal(err)
	}
	if err := copyDir(dir, dir+".tail"); err != nil {
		b.Fatal(err)
	}
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		resetTail(b, dir)
		l, err := Open(opts)
		if err != nil {
			b.Fatal(err)
		}
		b.StopTimer()
		l.skipCloseCheckpoint = true
		_ = l.Close()
		b.StartTimer()
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/calls/1000, "us/call")
}

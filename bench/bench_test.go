package bench

import (
	"context"
	"fmt"
	"testing"
	"time"
)

// TestWorkloads runs every workload against every target where it applies,
// a few operations over a few holdings, so the harness never rots: each
// operation makes the calls it should, none fails, and only over-limit's
// odd operations are refused. The figures of docs/performance.md come from:
//
//	go run ./bench/cmd/qlbench -workload all -target engine -c 64 -d 10s -holders 100000
//	go run ./bench/cmd/qlbench -workload all -target http -c 64 -d 10s -holders 100000
//	go run ./bench/cmd/qlbench -workload all -target nats -c 64 -d 10s -holders 100000
func TestWorkloads(t *testing.T) {
	// The calls operation i makes.
	two := func(int) int64 { return 2 } // issue, then resolve
	callsOf := map[string]func(i int) int64{
		"issue-accept": two,
		"issue-reject": two,
		"auto-accept":  func(int) int64 { return 1 },
		"resolve-many": func(int) int64 { return 101 }, // 100 issues, one resolve
		"hot":          two,
		"mixed": func(i int) int64 {
			if i%5 == 0 {
				return 2 // a commission
			}
			return 1 // a read
		},
		"over-limit": func(i int) int64 { return 2 - int64(i%2) }, // odd ones refused at the issue
		"open":       func(int) int64 { return 1 },
		"events":     two,
	}
	const ops = 8
	for _, target := range []string{"engine", "http", "nats"} {
		for _, w := range Workloads {
			if !Applies(w, target, false) {
				continue
			}
			t.Run(w+"/"+target, func(t *testing.T) {
				// Duration only turns a hang into a failure: the run is
				// ops operations, however long they take.
				cfg := Config{Workload: w, Target: target, Concurrency: 4, MaxOps: ops, Duration: 2 * time.Minute, Holders: 64, Dir: t.TempDir()}
				res, err := Run(context.Background(), cfg)
				if err != nil {
					t.Fatal(err)
				}
				var calls, refused int64
				for i := range ops {
					calls += callsOf[w](i)
					if w == "over-limit" {
						refused += int64(i % 2)
					}
				}
				if res.Calls != calls {
					t.Fatalf("%d calls answered in %d operations, want %d: %+v", res.Calls, ops, calls, res)
				}
				if res.Errors > 0 {
					t.Fatalf("%d errors: %s", res.Errors, res.Note)
				}
				if res.Refused != refused {
					t.Fatalf("%d refused, want %d: %+v", res.Refused, refused, res)
				}
				if res.P50 <= 0 || res.P99 < res.P50 || res.P999 < res.P99 {
					t.Fatalf("latencies out of order: %+v", res)
				}
				if res.CallsPerBatch > 0 && res.SyncCeilingShare <= 0 {
					// Batches measured, in a closed loop: the share of callers /
					// (1.5 x sync period) reached (DESIGN §7, 64 callers).
					t.Fatalf("no share of the sync-bound ceiling: %+v", res)
				}
			})
		}
	}
}

// TestOpenLoop runs a workload open loop for a fixed number of operations:
// every one is answered, and the run lasts at least until the last one's
// scheduled start (the generator does not start operations early).
func TestOpenLoop(t *testing.T) {
	const rate, ops = 200, 30
	res, err := Run(context.Background(), Config{Workload: "auto-accept", Concurrency: 4, MaxOps: ops, Duration: 2 * time.Minute,
		Holders: 64, Rate: rate, Dir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	if res.Calls != ops || res.Errors > 0 {
		t.Fatalf("%d operations at %d/s: %+v", ops, rate, res)
	}
	if res.SyncCeilingShare != 0 {
		t.Fatalf("a share of the sync-bound ceiling, %.2f, in an open loop (the callers do not bound it): %+v", res.SyncCeilingShare, res)
	}
	if last := (ops - 1) * time.Second / rate; res.Elapsed < last {
		t.Fatalf("the run took %v, before the last operation's start at %v", res.Elapsed, last)
	}
}

// TestOpenLoopSchedule drives a stand-in operation whose first run holds
// the only caller for ten intervals. Open loop, the operations due
// meanwhile keep their places on the schedule (it does not wait for the
// callers), none starts before its time, and each one's latency counts
// from its intended start, so the wait shows in it.
func TestOpenLoopSchedule(t *testing.T) {
	const rate, ops, held = 200, 20, 10
	interval := time.Second / rate
	type run struct {
		intended, started time.Time
		latency           time.Duration // as recorded, to the histogram's precision (from above)
	}
	var runs [ops]run
	res := drive(context.Background(), Config{Concurrency: 1, Rate: rate, MaxOps: ops, Duration: 2 * time.Minute},
		func(_ context.Context, i int, rec *recorder) error {
			if i >= ops {
				return fmt.Errorf("operation %d of %d", i, ops)
			}
			r := run{intended: rec.intended, started: time.Now()}
			before := rec.hist
			err := rec.call(func() error {
				if i == 0 {
					// A slow service (the scenario, not a synchronisation).
					time.Sleep(time.Until(r.intended.Add(held * interval)))
				}
				return nil
			})
			r.latency = lastRecorded(&before, &rec.hist)
			runs[i] = r
			return err
		})
	if res.Calls != ops || res.Errors > 0 {
		t.Fatalf("%d operations: %+v", ops, res)
	}
	start := runs[0].intended
	for k, r := range runs {
		if got, want := r.intended.Sub(start), time.Duration(k)*interval; got != want {
			t.Errorf("operation %d intended at +%v, want +%v: the schedule is not fixed", k, got, want)
		}
		if late := r.started.Sub(r.intended); late < 0 {
			t.Errorf("operation %d started %v before its intended start", k, -late)
		} else if r.latency < late {
			t.Errorf("operation %d started %v late, but its latency is %v: it does not count from the intended start", k, late, r.latency)
		}
	}
}

// lastRecorded is the latency that after records beyond before (one), at
// the top of its bucket.
func lastRecorded(before, after *histogram) time.Duration {
	for i := range after.counts {
		if after.counts[i] != before.counts[i] {
			return time.Duration(upper(i))
		}
	}
	return -1
}

func TestHistogram(t *testing.T) {
	var h histogram
	for i := 1; i <= 100_000; i++ {
		h.record(time.Duration(i) * time.Microsecond)
	}
	for _, c := range []struct {
		q    float64
		want time.Duration
	}{{0.5, 50 * time.Millisecond}, {0.99, 99 * time.Millisecond}, {0.999, 99900 * time.Microsecond}} {
		got := h.quantile(c.q)
		if d := float64(got-c.want) / float64(c.want); d < -0.04 || d > 0.04 {
			t.Errorf("q%.3f = %v, want %v within 4%%", c.q, got, c.want)
		}
	}
	for v := uint64(0); v < 1<<20; v += 7 {
		if i := bucketOf(v); upper(i) < v || (i > 0 && upper(i-1) >= v) {
			t.Fatalf("value %d in bucket %d [%d, %d]", v, i, upper(i-1)+1, upper(i))
		}
	}
}

// TestFlagsConfig: every flag of a run reaches its Config.
func TestFlagsConfig(t *testing.T) {
	f := Flags{Workload: "hot", Target: "http", URL: "http://127.0.0.1:1", Token: "svc", UserToken: "usr",
		Concurrency: 3, Duration: time.Second, Holders: 9, Rate: 5, Dir: "/d", JSON: true, Prepare: "/p"}
	want := Config{Workload: "hot", Target: "http", URL: "http://127.0.0.1:1", Token: "svc", UserToken: "usr",
		Concurrency: 3, Duration: time.Second, Holders: 9, Rate: 5, Dir: "/d"}
	if got := f.Config(); got != want {
		t.Fatalf("Config() = %+v\nwant %+v", got, want)
	}
}

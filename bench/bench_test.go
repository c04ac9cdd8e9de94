package bench

import (
	"context"
	"testing"
	"time"
)

// TestWorkloads runs every workload against both targets where it applies,
// for a fraction of a second over a few holdings, so the harness never
// rots. The figures of docs/performance.md come from:
//
//	go run ./bench/cmd/qlbench -workload all -target engine -c 64 -d 10s -holders 100000
//	go run ./bench/cmd/qlbench -workload all -target http -c 64 -d 10s -holders 100000
func TestWorkloads(t *testing.T) {
	for _, target := range []string{"engine", "http"} {
		for _, w := range Workloads {
			if !Applies(w, target, false) {
				continue
			}
			t.Run(w+"/"+target, func(t *testing.T) {
				cfg := Config{Workload: w, Target: target, Concurrency: 4, Duration: 150 * time.Millisecond, Holders: 64, Dir: t.TempDir()}
				res, err := Run(context.Background(), cfg)
				if err != nil {
					t.Fatal(err)
				}
				if res.Calls == 0 {
					t.Fatalf("no calls: %+v", res)
				}
				if res.Errors > 0 {
					t.Fatalf("%d errors: %s", res.Errors, res.Note)
				}
				if w == "over-limit" && res.Refused == 0 {
					t.Fatalf("over-limit refused nothing: %+v", res)
				}
				if w != "over-limit" && res.Refused > 0 {
					t.Fatalf("%d refused: %+v", res.Refused, res)
				}
				if res.P50 <= 0 || res.P99 < res.P50 || res.P999 < res.P99 {
					t.Fatalf("latencies out of order: %+v", res)
				}
			})
		}
	}
}

// TestOpenLoop: with a rate, the operations started follow the schedule.
func TestOpenLoop(t *testing.T) {
	res, err := Run(context.Background(), Config{Workload: "auto-accept", Concurrency: 4, Duration: 300 * time.Millisecond, Holders: 64, Rate: 200, Dir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	if res.Calls < 20 || res.Calls > 70 || res.Errors > 0 {
		t.Fatalf("200/s for 0.3 s: %+v", res)
	}
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

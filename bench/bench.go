// Package bench is the benchmark harness of DESIGN.md §7: a library of
// workloads, each run by Run with a Config, against the ledger in process
// (Target "engine"), against the HTTP API (Target "http") or against the
// NATS micro service (Target "nats"). The command in
// front of it is bench/cmd/qlbench; docs/performance.md has the figures.
//
//	go run ./bench/cmd/qlbench -workload all -target engine -c 64 -d 10s -holders 100000
package bench

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/bits"
	"os"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"text/tabwriter"
	"time"
)

// Workloads are the names Run knows, in the order "all" runs them.
var Workloads = []string{
	"issue-accept", "issue-reject", "auto-accept", "resolve-many", "hot",
	"mixed", "over-limit", "open", "events",
}

// Config is one run of one workload.
type Config struct {
	Workload string
	// Target is "engine" (the ledger in process, durable, on disk under Dir),
	// "http" (the API over loopback with keep-alive: the server at URL with
	// Token, a service's token, or, when URL is empty, one started in
	// process) or "nats" (the micro service: on the NATS server at URL, or,
	// when URL is empty, served in process on an embedded NATS server that
	// the load generator reaches over TCP).
	Target string
	URL    string
	Token  string
	// UserToken, for an external server, is a user's token that the
	// token validations of "mixed" check (empty: they look up the service
	// catalog instead).
	UserToken   string
	Concurrency int           // callers (64)
	Duration    time.Duration // of the measured run (10s)
	Holders     int           // holdings of the §7 layout (100,000)
	// Rate, when positive, makes the run open-loop: operations start at
	// this many per second on a fixed schedule, and the latency of an
	// operation's first call counts from its intended start. Zero: each
	// caller starts its next operation when the last one returns.
	Rate float64
	// MaxOps, when positive, ends the run once this many operations have
	// started and finished (or at Duration, if that comes first): a run of
	// a fixed amount of work, however fast the machine is.
	MaxOps int
	// Dir holds the data directories (a temporary directory, removed
	// after, when empty).
	Dir string
}

func (c Config) withDefaults() Config {
	if c.Workload == "" {
		c.Workload = "issue-accept"
	}
	if c.Target == "" {
		c.Target = "engine"
	}
	if c.Concurrency <= 0 {
		c.Concurrency = 64
	}
	if c.Duration <= 0 {
		c.Duration = 10 * time.Second
	}
	if c.Holders <= 0 {
		c.Holders = 100_000
	}
	c.Holders = max(c.Holders, 8)
	return c
}

// Result is what one run measured.
type Result struct {
	Workload string `json:"workload"`
	Target   string `json:"target"`
	// Calls are the calls answered (issues, resolves, reads; one open of
	// "open"); Errors those that failed unexpectedly; Refused the issues
	// refused for capacity that the workload meant to be refused.
	Calls      int64 `json:"calls"`
	Errors     int64 `json:"errors"`
	Refused    int64 `json:"refused"`
	Provisions int64 `json:"provisions"` // of the commissions issued (asked, for refused ones)
	// Elapsed is the measured run's length.
	Elapsed          time.Duration `json:"elapsed_ns"`
	CallsPerSec      float64       `json:"calls_per_sec"`
	ProvisionsPerSec float64       `json:"provisions_per_sec"`
	P50              time.Duration `json:"p50_ns"`
	P99              time.Duration `json:"p99_ns"`
	P999             time.Duration `json:"p999_ns"`
	Max              time.Duration `json:"max_ns"`
	// CPUSecondsPer1000Calls is the process's user + system CPU during
	// the run (rusage), per 1,000 calls: the load generator's included.
	CPUSecondsPer1000Calls float64 `json:"cpu_seconds_per_1000_calls"`
	// CPUMicrosPerCall is the same figure per call, in microseconds: the
	// figure of merit of DESIGN §7.
	CPUMicrosPerCall float64 `json:"cpu_us_per_call"`
	// DiskBytesPerCall is what the process had written to storage during
	// the run (/proc/self/io write_bytes: WAL, flushes, compactions), per
	// call; 0 where the kernel does not say.
	DiskBytesPerCall float64 `json:"disk_bytes_per_call"`
	// PeakRSSBytes is the process's peak resident set (rusage maxrss).
	PeakRSSBytes int64 `json:"peak_rss_bytes"`
	// Of "events": events the relay had acknowledged per second, and the
	// peak age of the oldest event not yet acknowledged.
	EventsPerSec float64       `json:"events_per_sec,omitempty"`
	OutboxLag    time.Duration `json:"outbox_lag_ns,omitempty"`
	// CallsPerBatch is the ledger's mean group-commit size during the run
	// (in process only: the engine target and the in-process server).
	CallsPerBatch float64 `json:"calls_per_batch,omitempty"`
	// SyncsPerSec is the ledger's synced batches (WAL fsyncs) per second
	// during the run (in process only).
	SyncsPerSec float64 `json:"syncs_per_sec,omitempty"`
	// SyncCeilingShare is, in a closed loop, the calls a second as a share
	// of the sync-bound ceiling of DESIGN §7: callers / (1.5 x the sync
	// period), the period read as 1 / SyncsPerSec (one fsync a batch: the
	// ledger has one batch in flight).
	SyncCeilingShare float64 `json:"sync_ceiling_share,omitempty"`
	// Note says what else the run found (a lost update, a skipped target).
	Note string `json:"note,omitempty"`
}

// Run runs cfg's workload and returns what it measured. A workload that
// does not apply to the target (open over HTTP) is an error.
func Run(ctx context.Context, cfg Config) (Result, error) {
	cfg = cfg.withDefaults()
	w, ok := workloads[cfg.Workload]
	if !ok {
		return Result{}, fmt.Errorf("bench: unknown workload %q (want one of %s)", cfg.Workload, strings.Join(Workloads, ", "))
	}
	if cfg.Target != "engine" && cfg.Target != "http" && cfg.Target != "nats" {
		return Result{}, fmt.Errorf("bench: unknown target %q (want engine, http or nats)", cfg.Target)
	}
	res, err := w(ctx, cfg)
	res.Workload, res.Target = cfg.Workload, cfg.Target
	return res, err
}

// Applies reports whether workload runs against target.
func Applies(workload, target string, external bool) bool {
	switch workload {
	case "open":
		return target == "engine"
	case "events":
		return !external
	}
	return true
}

// op is one operation of a workload: a commission issued and resolved, a
// batch resolved, a read. It times each call with rec and reports what it
// did; an error stops nothing, it is counted.
type op func(ctx context.Context, i int, rec *recorder) error

// recorder collects one caller's figures.
type recorder struct {
	calls, errs, refused, provis int64
	intended                     time.Time // open loop: the operation's scheduled start
	hist                         histogram
}

// call times fn. The first call of an open-loop operation counts from the
// operation's intended start, so a late start shows in the latency.
func (r *recorder) call(fn func() error) error {
	t := time.Now()
	if !r.intended.IsZero() {
		t, r.intended = r.intended, time.Time{}
	}
	err := fn()
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return err // cut off by the end of the run: not a call answered
	}
	r.hist.record(time.Since(t))
	r.calls++
	return err
}

// drive runs o with cfg.Concurrency callers for cfg.Duration (or
// cfg.MaxOps operations), closed or open loop, and fills the call figures
// of a Result.
func drive(ctx context.Context, cfg Config, o op) Result {
	ctx, cancel := context.WithTimeout(ctx, cfg.Duration)
	defer cancel()
	var next atomic.Int64
	var firstErr atomic.Pointer[error]
	recs := make([]*recorder, cfg.Concurrency)
	var sched chan time.Time
	if cfg.Rate > 0 {
		sched = make(chan time.Time, 1<<16)
	}
	cpu0, io0 := cpuTime(), ioWritten()
	start := time.Now()
	var wg sync.WaitGroup
	for g := range recs {
		rec := &recorder{}
		recs[g] = rec
		wg.Add(1)
		go func() {
			defer wg.Done()
			for ctx.Err() == nil {
				if sched != nil {
					select {
					case t, ok := <-sched:
						if !ok {
							return
						}
						rec.intended = t
					case <-ctx.Done():
						return
					}
				}
				i := next.Add(1) - 1
				if cfg.MaxOps > 0 && i >= int64(cfg.MaxOps) {
					return
				}
				if err := o(ctx, int(i), rec); err != nil && ctx.Err() == nil {
					rec.errs++
					if rec.errs == 1 {
						firstErr.CompareAndSwap(nil, &err)
					}
				}
			}
		}()
	}
	if sched != nil {
		interval := time.Duration(float64(time.Second) / cfg.Rate)
	loop:
		for k := 0; cfg.MaxOps <= 0 || k < cfg.MaxOps; k++ {
			t := start.Add(time.Duration(k) * interval)
			if d := time.Until(t); d > 0 {
				select {
				case <-time.After(d):
				case <-ctx.Done():
					break loop
				}
			}
			select {
			case sched <- t:
			case <-ctx.Done():
				break loop
			}
		}
		close(sched)
	}
	wg.Wait()
	elapsed := time.Since(start)
	cpu, written := cpuTime()-cpu0, ioWritten()-io0
	var res Result
	var h histogram
	for _, r := range recs {
		h.merge(&r.hist)
		res.Calls += r.calls
		res.Errors += r.errs
		res.Refused += r.refused
		res.Provisions += r.provis
	}
	res.Elapsed = elapsed
	res.CallsPerSec = float64(res.Calls) / elapsed.Seconds()
	res.ProvisionsPerSec = float64(res.Provisions) / elapsed.Seconds()
	res.P50, res.P99, res.P999, res.Max = h.quantile(0.50), h.quantile(0.99), h.quantile(0.999), h.max
	if res.Calls > 0 {
		res.CPUSecondsPer1000Calls = cpu.Seconds() / float64(res.Calls) * 1000
		res.CPUMicrosPerCall = float64(cpu.Microseconds()) / float64(res.Calls)
		res.DiskBytesPerCall = float64(written) / float64(res.Calls)
	}
	res.PeakRSSBytes = peakRSS()
	if p := firstErr.Swap(nil); p != nil && res.Errors > 0 {
		res.Note = "first error: " + (*p).Error()
	}
	return res
}

// histogram is log-linear (HDR-style): values below 64 ns exactly, then 32
// buckets per power of two, so any quantile is within 1/32 (3 %).
type histogram struct {
	// n and max first: beside the recorder's other fields, touched on
	// every call, not 16 KiB away (a cache miss a call, 2-3 % of a
	// 512-caller run's CPU, which counts the load generator's).
	n      uint64
	max    time.Duration
	counts [2048]uint64
}

const subBits = 5

func bucketOf(v uint64) int {
	if v < 2<<subBits {
		return int(v)
	}
	s := bits.Len64(v) - subBits - 1
	return s<<subBits + int(v>>s)
}

// upper is the largest value of bucket i.
func upper(i int) uint64 {
	if i < 2<<subBits {
		return uint64(i)
	}
	s := i>>subBits - 1
	m := uint64(i - s<<subBits)
	return (m+1)<<s - 1
}

func (h *histogram) record(d time.Duration) {
	if d < 0 {
		d = 0
	}
	h.counts[bucketOf(uint64(d))]++
	h.n++
	h.max = max(h.max, d)
}

func (h *histogram) merge(o *histogram) {
	for i, c := range o.counts {
		h.counts[i] += c
	}
	h.n += o.n
	h.max = max(h.max, o.max)
}

func (h *histogram) quantile(q float64) time.Duration {
	if h.n == 0 {
		return 0
	}
	rank := uint64(q * float64(h.n))
	if rank >= h.n {
		rank = h.n - 1
	}
	var seen uint64
	for i, c := range h.counts {
		seen += c
		if seen > rank {
			return min(time.Duration(upper(i)), h.max)
		}
	}
	return h.max
}

func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// ioWritten is what the process has caused to be written to storage
// (write_bytes of /proc/self/io), or 0 where that cannot be read.
func ioWritten() int64 {
	b, err := os.ReadFile("/proc/self/io")
	if err != nil {
		return 0
	}
	for line := range strings.SplitSeq(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "write_bytes: "); ok {
			n, _ := strconv.ParseInt(strings.TrimSpace(v), 10, 64)
			return n
		}
	}
	return 0
}

func peakRSS() int64 {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return int64(ru.Maxrss) * 1024 // kilobytes on Linux
}

// RunAll runs cfg.Workload, or with "all" every workload that applies to
// the target, and prints the results to w as one table (JSON if asJSON).
// A workload that fails is reported to errw and the others go on; the
// error then says so.
func RunAll(ctx context.Context, cfg Config, w, errw io.Writer, asJSON bool) error {
	names := []string{cfg.Workload}
	if cfg.Workload == "all" {
		names = nil
		for _, n := range Workloads {
			if Applies(n, cfg.Target, cfg.URL != "") {
				names = append(names, n)
			}
		}
	}
	var results []Result
	var failed []string
	for _, n := range names {
		c := cfg
		c.Workload = n
		r, err := Run(ctx, c)
		if err != nil {
			fmt.Fprintf(errw, "bench: %s: %v\n", n, err)
			failed = append(failed, n)
			continue
		}
		results = append(results, r)
		if ctx.Err() != nil {
			break
		}
	}
	var err error
	if asJSON {
		err = WriteJSON(w, results)
	} else {
		err = WriteTable(w, results)
	}
	if err == nil && len(failed) > 0 {
		err = fmt.Errorf("bench: failed: %s", strings.Join(failed, ", "))
	}
	return err
}

// WriteTable prints results as one table.
func WriteTable(w io.Writer, rs []Result) error {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "workload\ttarget\tcalls/s\tprovisions/s\tp50 ms\tp99 ms\tp99.9 ms\terrors\trefused\tCPU us/call\tdisk B/call\tpeak RSS MiB\t")
	for _, r := range rs {
		fmt.Fprintf(tw, "%s\t%s\t%.0f\t%.0f\t%.3f\t%.3f\t%.3f\t%d\t%d\t%.1f\t%.0f\t%.0f\t\n", r.Workload, r.Target,
			r.CallsPerSec, r.ProvisionsPerSec, ms(r.P50), ms(r.P99), ms(r.P999), r.Errors, r.Refused,
			r.CPUMicrosPerCall, r.DiskBytesPerCall, float64(r.PeakRSSBytes)/(1<<20))
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	var notes []string
	for _, r := range rs {
		if r.EventsPerSec > 0 || r.OutboxLag > 0 {
			notes = append(notes, fmt.Sprintf("%s/%s: %.0f events/s acknowledged, peak outbox lag %.1f ms", r.Workload, r.Target, r.EventsPerSec, ms(r.OutboxLag)))
		}
		if r.CallsPerBatch > 0 {
			n := fmt.Sprintf("%s/%s: %.1f calls per synced batch, %.0f syncs/s", r.Workload, r.Target, r.CallsPerBatch, r.SyncsPerSec)
			if r.SyncCeilingShare > 0 {
				n += fmt.Sprintf(", %.0f %% of callers / (1.5 x sync period)", 100*r.SyncCeilingShare)
			}
			notes = append(notes, n)
		}
		if r.Note != "" {
			notes = append(notes, fmt.Sprintf("%s/%s: %s", r.Workload, r.Target, r.Note))
		}
	}
	sort.Strings(notes)
	for _, n := range notes {
		if _, err := fmt.Fprintln(w, n); err != nil {
			return err
		}
	}
	return nil
}

// WriteJSON prints results as a JSON array.
func WriteJSON(w io.Writer, rs []Result) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(rs)
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

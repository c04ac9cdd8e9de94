package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/quotaledger/quotaledger/bench"
	"github.com/quotaledger/quotaledger/cluster"
	"github.com/quotaledger/quotaledger/events"
)

// TestClusterFigures measures the figures of docs/cluster.md (issue 12),
// when QUOTALEDGER_FIGURES is set; it is a measurement, not a check, and
// is skipped otherwise:
//
//	QUOTALEDGER_FIGURES=1 go test -count=1 -v -run 'TestClusterFigures$' -timeout 30m ./cmd/quotaledger
//
// The load is qlbench's auto-accept over HTTP (bench.Run, one call one
// commission of 4 provisions; QUOTALEDGER_FIGURES_DURATION, 10s, and
// QUOTALEDGER_FIGURES_CLIENTS, 16 callers) on the holdings of 2,000
// holders set through the API: against one node, then against the leader
// of three nodes (R3) and through a follower. During the run on the
// leader, every node's applied sequence (the X-Quotaledger-Applied header
// of a read) is sampled in turn: the replication lag of a follower is the
// leader's applied sequence minus the follower's (records), and the time
// from a sample of the leader until the follower has applied as much
// (time; at most, by a sample's time). The log's size per commission is what the QUOTALEDGER_LOG
// stream grew by over the run, per commission. QUOTALEDGER_FIGURES_SYNC
// is the nodes' --cluster-sync (interval, the default, when unset).
func TestClusterFigures(t *testing.T) {
	if os.Getenv("QUOTALEDGER_FIGURES") == "" {
		t.Skip("QUOTALEDGER_FIGURES=1 measures the cluster's figures")
	}
	const holders = 2000
	cfg := bench.Config{Workload: "auto-accept", Target: "http", Concurrency: 16, Duration: 10 * time.Second, Holders: holders}
	if d, err := time.ParseDuration(os.Getenv("QUOTALEDGER_FIGURES_DURATION")); err == nil && d > 0 {
		cfg.Duration = d
	}
	if _, err := fmt.Sscan(os.Getenv("QUOTALEDGER_FIGURES_CLIENTS"), &cfg.Concurrency); err != nil || cfg.Concurrency <= 0 {
		cfg.Concurrency = 16
	}

	// One node.
	dir := t.TempDir()
	p := startServe(t, nil, "--data", dir)
	cfg.URL, cfg.Token = p.base, figuresSetup(t, p.base, readBootstrap(t, dir).Token, holders)
	cpu0 := cpuOf(t, p.cmd.Process.Pid)
	one := figuresRun(t, cfg)
	// The events not yet published as the run ends are published after
	// it: a relay that falls behind makes a node look faster and cheaper
	// than it is. So the run's CPU and its rate "with the events" count
	// the events' publishing after it too.
	oneBehind, oneDrain := drainEvents(t, p.nats)
	oneCPU := cpuOf(t, p.cmd.Process.Pid) - cpu0
	p.stop()

	// Three nodes, R3.
	profiles := os.Getenv("QUOTALEDGER_FIGURES_PROFILE")
	var extra []string
	if profiles != "" {
		extra = []string{"--pprof", "127.0.0.1:0"}
	}
	if sync := os.Getenv("QUOTALEDGER_FIGURES_SYNC"); sync != "" {
		extra = append(extra, "--cluster-sync", sync)
	}
	c := startCluster(t, 3, extra...)
	leader := c.Leader()
	follower := c.Followers(leader)[0]
	cfg.URL, cfg.Token = leader.Base(), figuresSetup(t, leader.Base(), c.Token, holders)
	c.Converged()
	bytes0, msgs0 := logState(t, leader.NATSURL())
	nodes := append([]*clusterNode{leader}, c.Followers(leader)...)
	cpus := make([]time.Duration, len(nodes))
	for i, nd := range nodes {
		cpus[i] = -cpuOf(t, nd.Pid())
	}
	s := startLagSampler(c, leader)
	profiled := profileNodes(t, profiles, nodes, cfg.Duration)
	three := figuresRun(t, cfg)
	lag := s.stop()
	threeBehind, threeDrain := drainEvents(t, leader.NATSURL())
	profiled()
	for i, nd := range nodes {
		cpus[i] += cpuOf(t, nd.Pid())
	}
	c.Converged()
	bytes1, msgs1 := logState(t, leader.NATSURL())
	cfg.URL = follower.Base()
	forwarded := figuresRun(t, cfg)

	row := func(what string, r bench.Result) string {
		return fmt.Sprintf("%-32s %8.0f commissions/s  p50 %6.1f ms  p99 %6.1f ms  (%d calls, %d errors)", what, r.CallsPerSec,
			ms(r.P50), ms(r.P99), r.Calls, r.Errors)
	}
	t.Logf("auto-accept over HTTP, %d callers, %s each, %d holders, the nodes' flags %q:\n%s\n%s (%.0f %% of one node's)\n%s (%.0f %% of one node's)",
		cfg.Concurrency, cfg.Duration, holders, extra,
		row("one node", one), row("three nodes R3, on the leader", three), 100*three.CallsPerSec/one.CallsPerSec,
		row("three nodes R3, via a follower", forwarded), 100*forwarded.CallsPerSec/one.CallsPerSec)
	withEvents := func(r bench.Result, drain time.Duration) float64 {
		return float64(r.Calls) / (cfg.Duration + drain).Seconds()
	}
	oneEv, threeEv := withEvents(one, oneDrain), withEvents(three, threeDrain)
	t.Logf("with the events published (the run and the events' publishing after it): one node %.0f commissions/s (%d events published after the run, in %s); three nodes, on the leader, %.0f /s (%d, in %s): %.0f %% of one node's",
		oneEv, oneBehind, oneDrain.Round(time.Millisecond), threeEv, threeBehind, threeDrain.Round(time.Millisecond), 100*threeEv/oneEv)
	t.Logf("replication lag under the load on the leader (%d samples of every node, one each %s on average): %s",
		lag.samples, lag.every.Round(100*time.Microsecond), lag)
	perCall := func(d time.Duration, r bench.Result) string {
		return fmt.Sprintf("%.0f µs", float64(d.Microseconds())/float64(max(1, r.Calls)))
	}
	var each []string
	for i, nd := range nodes {
		each = append(each, nd.Name+" "+perCall(cpus[i], three))
	}
	t.Logf("CPU (user and system) of the server processes per commission, the events' publishing after the run included: one node %s; three nodes, the leader first: %s (the load generator, in the test, not counted)",
		perCall(oneCPU, one), strings.Join(each, ", "))
	if three.Calls > 0 {
		t.Logf("the log grew by %d bytes in %d messages for %d commissions: %.0f bytes and %.3f messages per commission",
			bytes1-bytes0, msgs1-msgs0, three.Calls, float64(bytes1-bytes0)/float64(three.Calls), float64(msgs1-msgs0)/float64(three.Calls))
	}
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

// streamAt is the stream name as the NATS server at url serves it; its
// connection closes when the test ends.
func streamAt(t *testing.T, ctx context.Context, url, name string) jetstream.Stream {
	t.Helper()
	nc, err := nats.Connect(url)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	st, err := js.Stream(ctx, name)
	if err != nil {
		t.Fatal(err)
	}
	return st
}

// drainEvents returns how many events the node whose NATS server is at
// natsURL published after the run, and how long that took: until the
// events stream stops growing (for 200 ms). The outbox's depth would not
// do: a single node keeps acknowledged events there two seconds more
// (DeleteDelay).
func drainEvents(t *testing.T, natsURL string) (uint64, time.Duration) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	st := streamAt(t, ctx, natsURL, events.StreamName)
	last := func() uint64 {
		info, err := st.Info(ctx)
		if err != nil {
			t.Fatal(err)
		}
		return info.State.LastSeq
	}
	start := time.Now()
	first := last()
	seq, grew := first, start
	for time.Since(grew) < 200*time.Millisecond {
		if ctx.Err() != nil {
			t.Fatalf("the events stream still grows after %v", time.Since(start))
		}
		time.Sleep(10 * time.Millisecond)
		if s := last(); s != seq {
			seq, grew = s, time.Now()
		}
	}
	return seq - first, grew.Sub(start)
}

// profileNodes takes a CPU profile of each node (started with --pprof) for
// most of d, into dir/<node>.pprof (go tool pprof), when dir is set; the
// function returned waits for them.
func profileNodes(t *testing.T, dir string, nodes []*clusterNode, d time.Duration) func() {
	t.Helper()
	if dir == "" {
		return func() {}
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	for _, nd := range nodes {
		var addr string
		for _, line := range strings.Split(nd.proc.stderr.String(), "\n") {
			var l struct{ Message, Addr string }
			if json.Unmarshal([]byte(line), &l) == nil && l.Message == "pprof listening" {
				addr = l.Addr
			}
		}
		if addr == "" {
			t.Fatalf("%s: no \"pprof listening\" in its log", nd.Name)
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			secs := max(1, int((d-time.Second)/time.Second))
			resp, err := http.Get(fmt.Sprintf("http://%s/debug/pprof/profile?seconds=%d", addr, secs))
			if err != nil {
				t.Errorf("%s: profile: %v", nd.Name, err)
				return
			}
			defer resp.Body.Close()
			data, err := io.ReadAll(resp.Body)
			if err == nil {
				err = os.WriteFile(filepath.Join(dir, nd.Name+".pprof"), data, 0o644)
			}
			if err != nil {
				t.Errorf("%s: profile: %v", nd.Name, err)
			}
		}()
	}
	return wg.Wait
}

// figuresRun runs one bench workload.
func figuresRun(t *testing.T, cfg bench.Config) bench.Result {
	t.Helper()
	r, err := bench.Run(context.Background(), cfg)
	if err != nil {
		t.Fatalf("bench %s on %s: %v", cfg.Workload, cfg.URL, err)
	}
	if r.Errors > 0 {
		t.Logf("bench %s on %s: %d errors", cfg.Workload, cfg.URL, r.Errors)
	}
	return r
}

// figuresSetup makes a service and the holdings of bench's layout of n
// holders (limits 2^50) through the API at base, and returns the
// service's token.
func figuresSetup(t *testing.T, base, admin string, n int) string {
	t.Helper()
	code, data := call(t, http.MethodPost, base+"/account/v1.0/services", admin, `{"name":"cyclades","type":"compute","endpoints":[]}`)
	var svc struct {
		Token string `json:"token"`
	}
	if code != http.StatusCreated || json.Unmarshal(data, &svc) != nil || svc.Token == "" {
		t.Fatalf("POST services: %d %s", code, data)
	}
	type setting struct {
		Holder   string  `json:"holder"`
		Source   *string `json:"source"`
		Resource string  `json:"resource"`
		Limit    int64   `json:"limit"`
	}
	lo := bench.NewLayout(n)
	seen := map[setting]bool{}
	var batch []setting
	flush := func() {
		b, _ := json.Marshal(map[string]any{"holdings": batch})
		if code, data := call(t, http.MethodPost, base+"/account/v1.0/holdings", admin, string(b)); code != http.StatusOK {
			t.Fatalf("POST holdings: %d %s", code, data)
		}
		batch = batch[:0]
	}
	for u := range lo.Users {
		for _, p := range lo.Commission(u, 0) {
			s := setting{Holder: p.Key.Holder, Source: p.Key.Source.Ptr(), Resource: p.Key.Resource, Limit: 1 << 50}
			k := s
			k.Source = nil
			if src := p.Key.Source.Ptr(); src != nil {
				k.Holder += "\x00" + *src
			}
			if seen[k] {
				continue
			}
			seen[k] = true
			batch = append(batch, s)
			if len(batch) == 500 {
				flush()
			}
		}
	}
	if len(batch) > 0 {
		flush()
	}
	return svc.Token
}

// cpuOf is the CPU time (user and system) process pid has used so far.
func cpuOf(t *testing.T, pid int) time.Duration {
	t.Helper()
	raw, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		t.Fatal(err)
	}
	// The fields after the command's name, "(...)": state is the first,
	// utime and stime the 12th and 13th, in clock ticks (USER_HZ, 100).
	f := strings.Fields(string(raw[strings.LastIndexByte(string(raw), ')')+1:]))
	var ut, st int64
	if _, err := fmt.Sscan(f[11]+" "+f[12], &ut, &st); err != nil {
		t.Fatalf("/proc/%d/stat: %v", pid, err)
	}
	return time.Duration(ut+st) * 10 * time.Millisecond
}

// logState is the size of the cluster's log stream: bytes and messages.
func logState(t *testing.T, url string) (bytes, msgs uint64) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	info, err := streamAt(t, ctx, url, cluster.LogStream).Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	return info.State.Bytes, info.State.Msgs
}

// lagSampler reads every node's applied sequence in turn until stopped.
type lagSampler struct {
	leader *clusterNode
	nodes  []*clusterNode
	stopc  chan struct{}
	done   chan struct{}
	// seen[i] are node i's samples.
	seen [][]appliedAt
}

type appliedAt struct {
	at      time.Time
	applied uint64
}

func startLagSampler(c *testCluster, leader *clusterNode) *lagSampler {
	s := &lagSampler{leader: leader, nodes: append([]*clusterNode{leader}, c.Followers(leader)...),
		stopc: make(chan struct{}), done: make(chan struct{})}
	s.seen = make([][]appliedAt, len(s.nodes))
	go func() {
		defer close(s.done)
		for {
			select {
			case <-s.stopc:
				return
			default:
			}
			for i, nd := range s.nodes {
				r, err := nd.call(http.MethodGet, "/account/v1.0/resources", "", "")
				if err == nil {
					s.seen[i] = append(s.seen[i], appliedAt{time.Now(), r.Applied})
				}
			}
			time.Sleep(5 * time.Millisecond)
		}
	}()
	return s
}

// lagFigures are the followers' lag behind the leader.
type lagFigures struct {
	samples       int
	every         time.Duration // between two samples of one node
	records       []uint64
	times         []time.Duration
	neverCaughtUp int // samples of the leader no follower sample reached
}

func (f lagFigures) String() string {
	if len(f.records) == 0 {
		return "no samples"
	}
	slices.Sort(f.records)
	slices.Sort(f.times)
	q := func(n int, p float64) int { return min(n-1, int(float64(n)*p)) }
	var b strings.Builder
	fmt.Fprintf(&b, "records p50 %d, p99 %d, max %d", f.records[q(len(f.records), .5)], f.records[q(len(f.records), .99)],
		f.records[len(f.records)-1])
	if len(f.times) > 0 {
		r := func(d time.Duration) time.Duration { return d.Round(100 * time.Microsecond) }
		fmt.Fprintf(&b, "; time p50 %s, p99 %s, max %s", r(f.times[q(len(f.times), .5)]), r(f.times[q(len(f.times), .99)]),
			r(f.times[len(f.times)-1]))
	}
	if f.neverCaughtUp > 0 {
		fmt.Fprintf(&b, " (%d samples of the leader not reached before the sampling stopped)", f.neverCaughtUp)
	}
	return b.String()
}

func (s *lagSampler) stop() lagFigures {
	close(s.stopc)
	<-s.done
	var f lagFigures
	lead := s.seen[0]
	f.samples = len(lead)
	if len(lead) > 1 {
		f.every = lead[len(lead)-1].at.Sub(lead[0].at) / time.Duration(len(lead)-1)
	}
	for i := 1; i < len(s.nodes); i++ {
		fs := s.seen[i]
		j := 0 // fs[j] is the first sample of the follower after the leader's
		for k, l := range lead {
			// The follower's sample taken right after this one of the
			// leader's: the lag in records.
			for j < len(fs) && fs[j].at.Before(l.at) {
				j++
			}
			if j < len(fs) && (k+1 == len(lead) || fs[j].at.Before(lead[k+1].at)) {
				if fs[j].applied < l.applied {
					f.records = append(f.records, l.applied-fs[j].applied)
				} else {
					f.records = append(f.records, 0)
				}
			}
			// The time until the follower had applied as much: at most
			// until its first sample that shows it (an upper bound, by
			// the time between two samples).
			m := j
			for m < len(fs) && fs[m].applied < l.applied {
				m++
			}
			if m == len(fs) {
				f.neverCaughtUp++
				continue
			}
			f.times = append(f.times, fs[m].at.Sub(l.at))
		}
	}
	return f
}

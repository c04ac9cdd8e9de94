package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"net/http"
	"os"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/quotaledger/quotaledger/cluster"
	"github.com/quotaledger/quotaledger/events"
	"github.com/quotaledger/quotaledger/internal/testkit"
)

// The failures of a cluster (issue 12, docs/cluster.md "Failures") under
// the load of TestCrashUnderLoad: 16 clients issue, accept and reject
// commissions on every node (a follower forwards the writes), and the
// crash harness checks every call against what the nodes hold afterwards.

// bases are the nodes' API URLs.
func bases(nodes []*clusterNode) []string {
	out := make([]string, len(nodes))
	for i, nd := range nodes {
		out[i] = nd.Base()
	}
	return out
}

// checkCluster checks the calls against the ledger as the leader holds it
// (crashHarness.check, the events read through a running node's NATS
// server), once every running node has applied the log to the same record,
// then finds the same ledger on every other running node.
func (h *crashHarness) checkCluster(c *testCluster, calls []*crashCall) crashSummary {
	h.t.Helper()
	c.Converged()
	// A check that fails says what every node holds (a failure on the
	// leader's ledger stops the test before the others are compared).
	h.t.Cleanup(func() {
		if !h.t.Failed() {
			return
		}
		for _, nd := range c.Nodes {
			if !nd.Running() {
				continue
			}
			_, holdings := call(h.t, http.MethodGet, nd.Base()+"/account/v1.0/holdings?holder="+strings.Join(h.holders, ",")+
				"&source="+crashSource+"&resource="+crashResource, h.admin, "")
			_, pending := call(h.t, http.MethodGet, nd.Base()+"/account/v1.0/commissions", h.svc, "")
			_, cl := call(h.t, http.MethodGet, nd.Base()+"/account/v1.0/cluster", h.admin, "")
			h.t.Logf("%s, as the check failed:\nholdings %s\npending %s\ncluster %s", nd.Name, holdings, pending, cl)
		}
	})
	leader := c.Leader()
	h.node = leader.Base()
	sum := h.check(calls, leader.NATSURL())
	for _, nd := range c.Followers(leader) {
		h.sameLedger(nd)
	}
	return sum
}

// sameLedger checks that node nd holds the commissions and holdings of
// the model (the ledger the last check read).
func (h *crashHarness) sameLedger(nd *clusterNode) {
	t := h.t
	t.Helper()
	defer func(node string) { h.node = node }(h.node)
	h.node = nd.Base()
	// The provision log a node's history answers from is built off the
	// critical path (docs/engine.md): a follower that applied the same
	// records may list the last commissions a moment later.
	var led crashLedger
	testkit.CheckFor(t, testkit.Patience, poll, func() error {
		led = h.readLedger()
		if len(led.bySerial) != len(h.model.bySerial) {
			return fmt.Errorf("%s holds %d commissions, the leader %d", nd.Name, len(led.bySerial), len(h.model.bySerial))
		}
		return nil
	})
	for s, m := range h.model.bySerial {
		if c := led.bySerial[s]; c == nil || !reflect.DeepEqual(*c, *m) {
			t.Fatalf("commission %d is %+v on %s, %+v on the leader", s, c, nd.Name, m)
		}
	}
	h.checkUsage(led)
}

// firstWriteSince is how long after at the first write sent after it was
// answered 2xx, if one was.
func (l *crashLoad) firstWriteSince(at time.Time) (time.Duration, bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	var first time.Time
	for _, c := range l.calls {
		switch c.kind {
		case crashKindIssue, crashKindRetry, crashKindResolve, crashKindMany:
		default:
			continue
		}
		if c.status/100 == 2 && c.sent.After(at) && (first.IsZero() || c.done.Before(first)) {
			first = c.done
		}
	}
	return first.Sub(at), !first.IsZero()
}

// raftLeaders says which NATS server leads the Raft group of the log, of
// the lease and of the events stream, as the server at url knows them:
// the write path waits for a new one when its server goes.
func raftLeaders(url string) string {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	nc, err := nats.Connect(url)
	if err != nil {
		return err.Error()
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		return err.Error()
	}
	var out []string
	for _, s := range []struct{ what, stream string }{
		{"log", cluster.LogStream}, {"lease", "KV_" + cluster.LeaseBucket}, {"events", events.StreamName},
	} {
		leader := "?"
		if st, err := js.Stream(ctx, s.stream); err == nil {
			if info, err := st.Info(ctx); err == nil && info.Cluster != nil {
				leader = info.Cluster.Leader
			}
		}
		out = append(out, s.what+" "+leader)
	}
	return strings.Join(out, ", ")
}

// durations says min, median and max of ds.
func durations(ds []time.Duration) string {
	if len(ds) == 0 {
		return "none"
	}
	s := slices.Clone(ds)
	slices.Sort(s)
	r := func(d time.Duration) time.Duration { return d.Round(10 * time.Millisecond) }
	return fmt.Sprintf("min %s, median %s, max %s over %d", r(s[0]), r(s[len(s)/2]), r(s[len(s)-1]), len(s))
}

// TestClusterKillUnderLoad: three nodes take the load of 16 clients, each
// call sent to any node (a follower forwards the writes); the leader is
// killed with SIGKILL at a random moment, again and again. After each
// kill another node leads and answers writes (the time from the kill to
// the first write answered through a survivor is the failover figure of
// docs/cluster.md); the unanswered idempotent issues are sent again; the
// survivors hold every answered call, nothing of a refused one, each
// unanswered one wholly or not at all, no call twice, with the holdings
// adding up, one digest, and every event once and in order on the events
// stream; the killed node restarts, rejoins as a follower and holds the
// same. QUOTALEDGER_SOAK runs 25 kills (or QUOTALEDGER_SOAK_KILLS) after
// 1 to 8 s of load each, instead of 5 after 0.3 to 1.5 s.
func TestClusterKillUnderLoad(t *testing.T) {
	kills, minLoad, maxLoad := 5, 300*time.Millisecond, 1500*time.Millisecond
	if crashSoak() {
		kills, minLoad, maxLoad = 25, time.Second, 8*time.Second
		if n, err := strconv.Atoi(os.Getenv("QUOTALEDGER_SOAK_KILLS")); err == nil && n > 0 {
			kills = n
		}
	}
	c := startCluster(t, 3)
	h := crashStartCluster(t, c, 8, 16, 40)
	var total crashSummary
	var failovers, rejoins []time.Duration
	for round := 1; round <= kills; round++ {
		leader := c.Leader()
		l := h.newLoad(bases(c.Running())...)
		wait := l.start()
		load := minLoad + time.Duration(h.rnd.Int64N(int64(maxLoad-minLoad)))
		time.Sleep(load)
		rafts := raftLeaders(leader.NATSURL())
		killed := time.Now()
		leader.Kill()
		l.aim(bases(c.Running())...)
		var failover time.Duration
		testkit.CheckFor(t, testkit.Patience, poll, func() error {
			var ok bool
			if failover, ok = l.firstWriteSince(killed); !ok {
				return errors.New("no write answered through a survivor since the kill")
			}
			return nil
		})
		wait()
		failovers = append(failovers, failover)
		calls := l.calls

		// The survivors hold every answered call; the unanswered
		// idempotent issues are sent again first.
		c.Leader()
		l = h.newLoad(bases(c.Running())...)
		l.retry(calls)
		calls = append(calls, l.calls...)
		sum := h.checkCluster(c, calls)
		total.add(sum)

		// How often the survivors read the log without a consumer so far
		// (their consumers lost, or not yet made: the meta group's
		// leader gone with the killed server, docs/cluster.md).
		noConsumer := 0
		for _, n := range c.Running() {
			noConsumer += strings.Count(n.proc.stderr.String(), "reading the log without it")
		}

		// The killed node rejoins, as a follower, and holds the same.
		restart := time.Now()
		leader.Restart()
		ready := time.Since(restart)
		st := c.Converged()
		converged := time.Since(restart)
		rejoins = append(rejoins, converged)
		for _, n := range st.Nodes {
			if n.Name == leader.Name && n.Role != "follower" {
				t.Fatalf("%s came back as %s", leader.Name, n.Role)
			}
		}
		checked := time.Now()
		h.sameLedger(leader)
		dropped := strings.Count(leader.proc.stderr.String(), "dropping a journal record the cluster's log does not hold")
		t.Logf("kill %d of %s after %s of load (Raft leaders: %s): writes answered again through a survivor %s after the kill; %s; "+
			"%d commissions in the ledger; %s back (its journal had %d records the log did not): ready in %s, at the others' sequence and digest in %s "+
			"(its ledger read back and checked in %s); "+
			"the survivors read the log without a consumer %d times so far",
			round, leader.Name, load.Round(time.Millisecond), rafts, failover.Round(time.Millisecond), sum,
			len(h.model.bySerial), leader.Name, dropped, ready.Round(time.Millisecond), converged.Round(time.Millisecond),
			time.Since(checked).Round(time.Millisecond), noConsumer)
	}
	t.Logf("after %d kills: %s", kills, total)
	t.Logf("failover (kill -9 of the leader to the first write answered through a survivor): %s", durations(failovers))
	t.Logf("rejoin (the killed node's restart to its being at the others' sequence with their digest): %s", durations(rejoins))
	if total.answered == 0 || total.refused == 0 {
		t.Fatalf("the load made no answered or no refused call: %s", total)
	}
}

// clusterLeaseTTL is the nodes' --lease-ttl (the default).
const clusterLeaseTTL = 3 * time.Second

// TestClusterPause: the leader is stopped with SIGSTOP under the load of
// 16 clients (a partition: it answers nothing and renews nothing) for
// twice the lease. Another node leads and answers writes meanwhile. On
// SIGCONT the old leader's appends are refused (the log moved on under
// the new leader) and the lease is not its own: it steps down, answers the
// calls that were waiting for it (a refused batch's callers 503 with an
// unknown outcome), drops what the log refused and follows. Every node
// then holds the same: every answered call, nothing of a refused one, each
// unanswered one wholly or not at all, and nothing the old leader had not
// committed. The new leader leads on after the resume: the resumed node's
// NATS server disrupts the Raft groups of the log and the lease (their
// leaders step down on its higher term), so some of the new leader's
// appends may be lost or refused then, but it still holds the lease and
// leads again once it has applied the log to its end.
func TestClusterPause(t *testing.T) {
	c := startCluster(t, 3)
	h := crashStartCluster(t, c, 8, 16, 40)
	old := c.Leader()
	others := c.Followers(old)
	l := h.newLoad(bases(c.Nodes)...)
	probe := rand.New(rand.NewPCG(h.rnd.Uint64(), h.rnd.Uint64()))
	wait := l.start()
	time.Sleep(time.Second)

	old.Pause()
	paused := time.Now()
	t.Logf("%s (the leader) stopped", old.Name)
	// The clients learn that it does not answer; those waiting for it
	// wait on.
	l.aim(bases(others)...)
	// The workers may all be waiting for the stopped node (or for a
	// follower that forwarded to it): writes of the test's own, recorded
	// with theirs, each on its own, so that one waiting does not hold up
	// the next.
	var probes sync.WaitGroup
	var mu sync.Mutex
	var direct []*crashCall // the writes sent to the old leader as it resumes
	issueAt := func(target string) {
		is := l.newIssue(probe)
		probes.Add(1)
		go func() {
			defer probes.Done()
			c := l.issueAt(target, crashKindIssue, is)
			if target != "" {
				mu.Lock()
				direct = append(direct, c)
				mu.Unlock()
			}
		}()
	}
	testkit.CheckFor(t, testkit.Patience, poll, func() error {
		if _, ok := l.firstWriteSince(paused); ok {
			return nil
		}
		issueAt("")
		return errors.New("no write answered through the others since the stop")
	})
	failover, _ := l.firstWriteSince(paused)
	leader := c.LeaderOf(others...)
	if leader == old {
		t.Fatal("the stopped node leads")
	}
	t.Logf("%s leads; writes answered through the others %s after the stop (the first sent after it); GET cluster on each of the others names it %s after the stop",
		leader.Name, failover.Round(time.Millisecond), time.Since(paused).Round(time.Millisecond))
	time.Sleep(time.Until(paused.Add(2 * clusterLeaseTTL)))

	// Writes waiting for the old leader when it resumes: it takes them
	// before it learns it lost the lease, or after (then it forwards
	// them); taken, their appends are refused.
	for range 8 {
		issueAt(old.Base())
	}
	old.Cont()
	resumed := time.Now()
	testkit.CheckFor(t, testkit.Patience, poll, func() error {
		if !strings.Contains(old.proc.stderr.String(), `"message":"stepping down"`) {
			return fmt.Errorf("%s has not stepped down since it resumed", old.Name)
		}
		return nil
	})
	l.aim(bases(c.Nodes)...)
	time.Sleep(time.Second) // load on the old leader, a follower now
	wait()
	probes.Wait()
	calls := l.calls

	if now := c.Leader(); now != leader {
		t.Fatalf("%s leads after the resume, %s did", now.Name, leader.Name)
	}
	l = h.newLoad(bases(c.Nodes)...)
	l.retry(calls)
	calls = append(calls, l.calls...)
	sum := h.checkCluster(c, calls)
	st := c.Converged()
	for _, n := range st.Nodes {
		if n.Name == old.Name && n.Role != "follower" {
			t.Fatalf("%s is %s", old.Name, n.Role)
		}
	}

	// What became of the calls that waited for the stopped leader, and of
	// those sent to it as it resumed.
	waited, resuming := map[string]int{}, map[string]int{}
	for _, c := range calls {
		if c.target != old.Base() || !c.sent.Before(resumed) || c.done.Before(paused) || slices.Contains(direct, c) {
			continue
		}
		outcome(waited, c)
	}
	for _, c := range direct {
		outcome(resuming, c)
	}
	stderr := old.proc.stderr.String()
	t.Logf("%s stopped for %s: %s; the calls that waited for it: %v; the writes sent to it as it resumed: %v; it logged %d refused appends; "+
		"%s led again %d times after a refused append; %d commissions in the ledger",
		old.Name, resumed.Sub(paused).Round(time.Millisecond), sum, waited, resuming,
		strings.Count(stderr, `"message":"the log refused an append"`), leader.Name,
		strings.Count(leader.proc.stderr.String(), `"message":"the lease is still this node's: applying the log to its end to lead again"`),
		len(h.model.bySerial))
}

// outcome counts c's answer in m.
func outcome(m map[string]int, c *crashCall) {
	switch {
	case c.status == 0:
		m["no answer"]++
	case c.unknown():
		m["503, outcome unknown"]++
	case c.unavailable():
		m["503, refused"]++
	default:
		m[strconv.Itoa(c.status)]++
	}
}

// logged finds the last JSON log line of stderr whose message is msg, and
// returns its field (a number) named field; ok false when there is none.
func logged(stderr, msg, field string) (v uint64, ok bool) {
	for l := range strings.Lines(stderr) {
		if !strings.Contains(l, `"message":"`+msg+`"`) {
			continue
		}
		var m map[string]any
		if json.Unmarshal([]byte(l), &m) != nil {
			continue
		}
		if f, isNum := m[field].(float64); isNum {
			v, ok = uint64(f), true
		}
	}
	return v, ok
}

// TestClusterWipeRejoin: under the load of 16 clients, the leader is
// stopped (the next leader publishes a checkpoint of the ledger as it is
// then) and comes back; a follower is killed, its data directory wiped,
// and it is started again, the load going on: it restores the checkpoint,
// follows the log from the checkpoint's record, and holds what the others
// hold (one digest; every answered call, as the crash harness checks it).
func TestClusterWipeRejoin(t *testing.T) {
	c := startCluster(t, 3)
	h := crashStartCluster(t, c, 8, 16, 40)
	l := h.newLoad(bases(c.Nodes)...)
	wait := l.start()
	time.Sleep(time.Second)

	// A checkpoint with the load's commissions in it.
	old := c.Leader()
	l.aim(bases(c.Followers(old))...)
	old.Stop()
	leader := c.Leader()
	var checkpoint uint64
	testkit.CheckFor(t, testkit.Patience, poll, func() error {
		var ok bool
		if checkpoint, ok = logged(leader.proc.stderr.String(), "checkpoint published", "applied"); !ok {
			return fmt.Errorf("%s leads and has published no checkpoint", leader.Name)
		}
		return nil
	})
	old.Restart()
	l.aim(bases(c.Nodes)...)
	time.Sleep(time.Second)

	// A follower's disk is lost.
	f := c.Followers(leader)[0]
	f.Kill()
	l.aim(bases(c.Running())...)
	time.Sleep(500 * time.Millisecond)
	f.Wipe()
	f.Restart()
	l.aim(bases(c.Nodes)...)
	time.Sleep(time.Second)
	wait()
	calls := l.calls

	stderr := f.proc.stderr.String()
	if !strings.Contains(stderr, `"message":"restoring the cluster's checkpoint"`) {
		t.Fatalf("%s did not restore the checkpoint:\n%s", f.Name, stderr)
	}
	joined, ok := logged(stderr, "joined the cluster", "applied")
	if !ok || joined < checkpoint || checkpoint < 2 {
		t.Fatalf("%s joined at %d (found: %v), the checkpoint %s published is of %d", f.Name, joined, ok, leader.Name, checkpoint)
	}
	c.Leader()
	l = h.newLoad(bases(c.Nodes)...)
	l.retry(calls)
	calls = append(calls, l.calls...)
	sum := h.checkCluster(c, calls) // f among the followers checked
	st := c.Converged()
	t.Logf("%s wiped: it restored the checkpoint of record %d that %s published, started at %d, and converged with the others at %d (digest %s); %s; %d commissions in the ledger",
		f.Name, checkpoint, leader.Name, joined, st.Nodes[0].Applied, st.Nodes[0].Digest, sum, len(h.model.bySerial))
}

// TestClusterAllKilled: under the load of 16 clients on every node, every
// node is killed with SIGKILL at once, then all are started again: they
// elect a leader from the log, and hold every answered call (nothing of a
// refused one, each unanswered one whole or absent, one ledger, every
// event once and in order); with each --cluster-sync, whose interval
// leaves the last second of the log and the events in the servers' memory
// (the page cache, which a kill -9 does not lose) and the acknowledged
// events in the outbox for two more.
func TestClusterAllKilled(t *testing.T) {
	for _, sync := range []string{"always", "interval"} {
		t.Run(sync, func(t *testing.T) { clusterAllKilled(t, sync) })
	}
}

func clusterAllKilled(t *testing.T, sync string) {
	c := startCluster(t, 3, "--cluster-sync", sync)
	for _, nd := range c.Nodes {
		if want := fmt.Sprintf(`"sync_always":%t`, sync == "always"); !strings.Contains(nd.proc.stderr.String(), want) {
			t.Fatalf("--cluster-sync %s: %s's NATS server did not start with %s:\n%s", sync, nd.Name, want, nd.proc.stderr.String())
		}
	}
	h := crashStartCluster(t, c, 8, 16, 40)
	l := h.newLoad(bases(c.Nodes)...)
	wait := l.start()
	time.Sleep(time.Second + time.Duration(h.rnd.Int64N(int64(time.Second))))
	for _, nd := range c.Nodes { // the signals first, all of them: then the waits
		if err := nd.proc.cmd.Process.Signal(syscall.SIGKILL); err != nil {
			t.Fatal(err)
		}
	}
	for _, nd := range c.Nodes {
		select {
		case <-nd.proc.exited:
		case <-time.After(time.Minute):
			t.Fatalf("%s did not die within a minute of SIGKILL", nd.Name)
		}
	}
	wait()
	calls := l.calls

	for _, nd := range c.Nodes {
		nd.Start()
	}
	for _, nd := range c.Nodes {
		nd.waitUp()
	}
	leader := c.Leader()
	l = h.newLoad(bases(c.Nodes)...)
	l.retry(calls)
	calls = append(calls, l.calls...)
	sum := h.checkCluster(c, calls)
	if sum.answered == 0 {
		t.Fatalf("no call was answered before the kill: %s", sum)
	}
	dropped, given := 0, 0
	for _, nd := range c.Nodes {
		dropped += strings.Count(nd.proc.stderr.String(), "dropping a journal record the cluster's log does not hold")
		given += strings.Count(nd.proc.stderr.String(), "gave the cluster's log again")
	}
	t.Logf("all killed, all back: %s leads; %s; %d commissions in the ledger; the journals had %d records the log did not, and %d times gave the log back records past its end",
		leader.Name, sum, len(h.model.bySerial), dropped, given)
}

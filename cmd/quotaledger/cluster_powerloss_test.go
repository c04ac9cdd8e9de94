package main

import (
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/quotaledger/quotaledger/cluster"
	"github.com/quotaledger/quotaledger/internal/testkit"
)

// waitLogged waits until p's log says what (the log is written every so often).
func waitLogged(t *testing.T, p *proc, what string) {
	t.Helper()
	testkit.CheckFor(t, 10*time.Second, 50*time.Millisecond, func() error {
		if !strings.Contains(p.stderr.String(), what) {
			return fmt.Errorf("%s did not log %q:\n%s", p.base, what, p.stderr.String())
		}
		return nil
	})
}

// TestClusterLogLostTail: a node of a cluster on an external NATS server
// (whose log the test can cut) answers writes and is killed (-9); the log
// then loses its last messages, as the servers of a cluster with
// --cluster-sync interval (the default) can in a power loss of every
// machine. The node, started again, gives the log back what its journal
// synced: every write it answered is there, on it and on a node that joins
// after. With another node started first, which waits for the last leader
// in vain (StartGrace) and writes in the lost places, the old leader's
// state (checkpointed past the log's end: it was stopped, not killed) is
// not the cluster's: it starts from the cluster's checkpoint and shows the
// log as it is.
func TestClusterLogLostTail(t *testing.T) {
	for _, taken := range []bool{false, true} {
		t.Run(fmt.Sprintf("taken=%v", taken), func(t *testing.T) { clusterLogLostTail(t, taken) })
	}
}

func clusterLogLostTail(t *testing.T, taken bool) {
	ns := startNATS(t, t.TempDir(), "")
	env := []string{"QUOTALEDGER_ADMIN_TOKEN=" + clusterAdminToken}
	node := func(name, dir string) *proc {
		p := spawnServe(t, env, "--data", dir, "--node-name", name, "--listen", "127.0.0.1:0",
			"--nats-url", ns.ClientURL(), "--replicas", "1", "--lease-ttl", "1s")
		p.waitListening()
		p.waitReady()
		return p
	}
	limit := func(p *proc, holder string) string {
		t.Helper()
		st, body := call(t, "GET", p.base+"/account/v1.0/holdings?holder="+holder+"&null_source=1", clusterAdminToken, "")
		if st != http.StatusOK {
			t.Fatalf("holdings of %s: %d %s", holder, st, body)
		}
		_, l, _ := strings.Cut(string(body), `"limit":`)
		l, _, _ = strings.Cut(l, ",")
		return l
	}
	set := func(p *proc, holder string, limit int) {
		t.Helper()
		testkit.CheckFor(t, testkit.Patience, 100*time.Millisecond, func() error {
			st, body := call(t, "POST", p.base+"/account/v1.0/holdings", clusterAdminToken,
				fmt.Sprintf(`{"holdings":[{"holder":"%s","source":null,"resource":"compute.vm","limit":%d}]}`, holder, limit))
			if st != http.StatusOK {
				return fmt.Errorf("holdings set: %d %s", st, body) // 503: no leader yet
			}
			return nil
		})
	}

	d1 := t.TempDir()
	n1 := node("n1", d1)
	const writes = 30
	for i := range writes {
		set(n1, fmt.Sprintf("project:p%d", i), 100+i)
	}
	if taken {
		// Stopped: its ledger checkpoints its state at its last record
		// as it closes, as it does every so often while it runs, so
		// that the state itself holds records past the log's end (not
		// only the journal).
		n1.stop()
	} else {
		n1.kill()
	}
	// What a power loss of every NATS server before it synced leaves.
	had := len(testkit.ReadStream(t, ns.ClientURL(), cluster.LogStream))
	testkit.CutStream(t, ns.ClientURL(), cluster.LogStream, had-10)
	t.Logf("the log lost its last 10 messages of %d", had)

	if !taken {
		n1 = node("n1", d1)
		n2 := node("n2", t.TempDir())
		for _, p := range []*proc{n1, n2} {
			testkit.CheckFor(t, testkit.Patience, 100*time.Millisecond, func() error {
				for i := range writes {
					if got, want := limit(p, fmt.Sprintf("project:p%d", i)), fmt.Sprint(100+i); got != want {
						return fmt.Errorf("%s: project:p%d has limit %q, want %s (answered before the log lost it)", p.base, i, got, want)
					}
				}
				return nil
			})
		}
		waitLogged(t, n1, "gave the cluster's log again")
		return
	}

	n2 := node("n2", t.TempDir())
	waitLogged(t, n2, "leaving the lease to the cluster's last leader")
	set(n2, "project:p0", 7)
	n1 = node("n1", d1)
	waitLogged(t, n1, "starting from the cluster's checkpoint")
	testkit.CheckFor(t, testkit.Patience, 100*time.Millisecond, func() error {
		if got := limit(n1, "project:p0"); got != "7" {
			return fmt.Errorf("n1: project:p0 has limit %q, want the log's 7", got)
		}
		if got := limit(n1, fmt.Sprintf("project:p%d", writes-1)); got != "" {
			return fmt.Errorf("n1: project:p%d has limit %q, which the log lost", writes-1, got)
		}
		return nil
	})
}

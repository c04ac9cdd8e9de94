package main

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/quotaledger/quotaledger/api/client"
	"github.com/quotaledger/quotaledger/internal/testkit"
)

// awayReadiness is the answer of /readyz.
type awayReadiness struct {
	code   int
	Status string            `json:"status"`
	Checks map[string]string `json:"checks"`
}

func awayReady(t *testing.T, base string) awayReadiness {
	t.Helper()
	code, body := call(t, http.MethodGet, base+"/readyz", "", "")
	r := awayReadiness{code: code}
	if err := json.Unmarshal(body, &r); err != nil {
		t.Fatalf("/readyz: %d %v: %s", code, err, body)
	}
	return r
}

// allOK reports whether every check of r passed.
func (r awayReadiness) allOK() bool {
	for _, v := range r.Checks {
		if v != "ok" {
			return false
		}
	}
	return r.code == http.StatusOK && r.Status == "ready" && len(r.Checks) > 0
}

// TestNATSAway: the NATS server that serve publishes to (--nats-url) stops
// in the middle of a load of commissions and comes back a while later on
// the same store and port. Meanwhile the API takes every write and read
// (2xx or 4xx, never 5xx, never no answer), /readyz fails as documented
// once the outbox passes --outbox-max-depth, and when NATS is back every
// event of every change reaches the stream exactly once, in outbox order
// (DESIGN.md §4, §8). QUOTALEDGER_SOAK keeps NATS away for a minute.
func TestNATSAway(t *testing.T) {
	if runtime.GOOS == "windows" {
		t.Skip("SIGTERM")
	}
	before, away, after := time.Second, 3*time.Second, time.Second
	if crashSoak() {
		before, away, after = 5*time.Second, time.Minute, 5*time.Second
	}
	const maxDepth = 50
	natsDir := t.TempDir()
	ns := startNATS(t, natsDir, "")
	natsURL := ns.ClientURL()
	u, err := url.Parse(natsURL)
	if err != nil {
		t.Fatal(err)
	}

	h := crashStart(t, 8, 16, 40, "--nats-url", natsURL, "--outbox-max-depth", fmt.Sprint(maxDepth))
	if r := awayReady(t, h.p.base); !r.allOK() {
		t.Fatalf("/readyz with NATS there: %d %+v", r.code, r)
	}
	l := h.newLoad()
	wait := l.start()
	time.Sleep(before)

	ns.Shutdown()
	down := time.Now()
	t.Logf("NATS stopped after %s of load", before)
	// While NATS is away the relay is not connected; once more than
	// maxDepth events wait (the load makes them), /readyz fails and says
	// why, and the process is still alive.
	var notReady awayReadiness
	testkit.CheckFor(t, 10*time.Second, poll, func() error {
		notReady = awayReady(t, h.p.base)
		if notReady.code == http.StatusOK {
			return fmt.Errorf("/readyz still %d %+v with NATS away for %s", notReady.code, notReady, time.Since(down))
		}
		return nil
	})
	if notReady.code != http.StatusServiceUnavailable || notReady.Status != "not ready" ||
		notReady.Checks["nats"] != "not connected" ||
		!strings.Contains(notReady.Checks["outbox"], fmt.Sprintf("more than --outbox-max-depth %d", maxDepth)) ||
		notReady.Checks["ledger"] != "ok" || notReady.Checks["server"] != "ok" {
		t.Fatalf("/readyz with NATS away: %d %+v, want 503 naming NATS and the outbox depth", notReady.code, notReady)
	}
	if code := get(t, h.p.base+"/healthz", ""); code != http.StatusOK {
		t.Fatalf("/healthz with NATS away: %d", code)
	}
	time.Sleep(time.Until(down.Add(away)))

	ns = startNATS(t, natsDir, u.Host)
	up := time.Now()
	if ns.ClientURL() != natsURL {
		t.Fatalf("NATS came back on %s, want %s", ns.ClientURL(), natsURL)
	}
	t.Logf("NATS back after %s away", up.Sub(down).Round(time.Millisecond))
	testkit.CheckFor(t, 15*time.Second, poll, func() error {
		if r := awayReady(t, h.p.base); !r.allOK() {
			return fmt.Errorf("/readyz %d %+v with NATS back for %s", r.code, r, time.Since(up))
		}
		return nil
	})
	time.Sleep(after)
	wait()

	// Every call had its answer, none a 5xx (check fails on those), and
	// writes went on while NATS was away.
	var writesAway, readsAway int
	for _, c := range l.calls {
		if c.status == 0 {
			t.Fatalf("%s call without an answer: %v", c.kind, c.err)
		}
		if c.done.After(down) && c.done.Before(up) && c.status/100 == 2 {
			if c.kind == crashKindRead {
				readsAway++
			} else {
				writesAway++
			}
		}
	}
	if writesAway == 0 || readsAway == 0 {
		t.Fatalf("%d writes and %d reads answered 2xx while NATS was away, want some of each", writesAway, readsAway)
	}
	sum := h.check(l.calls, ns.ClientURL())
	t.Logf("%s; %d writes and %d reads answered 2xx while NATS was away; %d commissions in the ledger",
		sum, writesAway, readsAway, len(h.model.bySerial))
	// The micro service came back with NATS: its connection reconnected
	// and made its subscriptions again.
	testkit.CheckFor(t, 15*time.Second, poll, func() error {
		nc, err := nats.Connect(ns.ClientURL())
		if err != nil {
			return err
		}
		defer nc.Close()
		_, err = client.NewNATS(nc, h.svc, client.NATSOptions{Timeout: 10 * time.Second}).GetPendingCommissions(context.Background())
		return err
	})
	microCalls(t, h.p.base, ns.ClientURL(), h.admin)
	h.p.stop()
}

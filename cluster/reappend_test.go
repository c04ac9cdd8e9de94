package cluster

import (
	"context"
	"strconv"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/quotaledger/quotaledger/holdings"
	"github.com/quotaledger/quotaledger/internal/testkit"
	"github.com/quotaledger/quotaledger/ledger"
)

// logInfo is the log stream and its info.
func logInfo(t *testing.T, js jetstream.JetStream) (jetstream.Stream, *jetstream.StreamInfo) {
	t.Helper()
	ctx := context.Background()
	stream, err := js.Stream(ctx, LogStream)
	if err != nil {
		t.Fatal(err)
	}
	info, err := stream.Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	return stream, info
}

// logMsgs reads every message of the log, from its first.
func logMsgs(t *testing.T, js jetstream.JetStream) []*jetstream.RawStreamMsg {
	t.Helper()
	ctx := context.Background()
	stream, info := logInfo(t, js)
	var msgs []*jetstream.RawStreamMsg
	for s := info.State.FirstSeq; s <= info.State.LastSeq && info.State.Msgs > 0; s++ {
		m, err := stream.GetMsg(ctx, s)
		if err != nil {
			t.Fatal(err)
		}
		msgs = append(msgs, m)
	}
	return msgs
}

// TestLostLogTailGivenBack: the log's servers lose its last messages (a
// power loss of them all, with --cluster-sync interval: they had them only
// in memory), among them a record of several messages cut after its
// first. The leader that wrote them, whose journal synced them before it
// answered their calls, starts again: it gives the log back its records,
// at their places, so that every call it answered is there, on it and on
// the other node. The other node, started first, leaves the lease to it a
// while (late). But once another node has written in their places (it
// waited StartGrace for the last leader in vain), they are not the
// cluster's: the node starts from the cluster's checkpoint and follows the
// log as it is (taken).
func TestLostLogTailGivenBack(t *testing.T) {
	for _, c := range []string{"first", "late", "taken"} {
		t.Run(c, func(t *testing.T) {
			nc, js, _ := oneServerLog(t)
			ctx := context.Background()
			srv := &testServer{t: t, url: nc.ConnectedUrl()}
			opts := Options{Replicas: 1, PartSize: 1024}
			dir := t.TempDir()
			n1 := startNodeIn(t, srv, "n1", dir, opts)
			leaderOf(t, []*testNode{n1})
			k := holdings.Key{Holder: "user:a", Source: holdings.NullSource, Resource: "vm"}
			if err := n1.l.SetHoldings(ctx, []ledger.HoldingSetting{{Key: k, Limit: 1000}}); err != nil {
				t.Fatal(err)
			}
			accepted := func(n int) {
				t.Helper()
				for range n {
					res, err := n1.l.Issue(ctx, ledger.IssueRequest{Client: "c", Provisions: []holdings.Provision{{Key: k, Quantity: 1}}})
					if err != nil {
						t.Fatal(err)
					}
					if err := n1.l.Resolve(ctx, "c", res.Serial, true, ""); err != nil {
						t.Fatal(err)
					}
				}
			}
			accepted(10)
			// A record of several messages: holdings of many users at once.
			var many []ledger.HoldingSetting
			for i := range 200 {
				many = append(many, ledger.HoldingSetting{Key: holdings.Key{Holder: "user:" + strconv.Itoa(i), Source: holdings.NullSource, Resource: "disk"}, Limit: 10})
			}
			if err := n1.l.SetHoldings(ctx, many); err != nil {
				t.Fatal(err)
			}
			accepted(5)
			seq, digest := n1.l.Digest()
			n1.stop()

			msgs := logMsgs(t, js)
			cut := -1 // the big record's first message
			for i, m := range msgs {
				if m.Header.Get(hdrParts) != "1" {
					cut = i
					break
				}
			}
			if cut < 0 {
				t.Fatal("no record of the log took several messages")
			}
			// What a power loss of every NATS server before it synced
			// leaves.
			testkit.CutStream(t, nc.ConnectedUrl(), LogStream, cut+1)

			var n2 *testNode
			switch c {
			case "taken":
				// Another node leads, having waited for n1 in vain, and
				// writes in the lost places.
				o := opts
				o.StartGrace = time.Second
				n2 = startNode(t, srv, "n2", o)
				leaderOf(t, []*testNode{n2})
				if err := n2.l.SetHoldings(ctx, []ledger.HoldingSetting{{Key: k, Limit: 7}}); err != nil {
					t.Fatal(err)
				}
				end := len(logMsgs(t, js))
				n1 = startNodeIn(t, srv, "n1", dir, opts)
				converged(t, []*testNode{n2, n1})
				if got := len(logMsgs(t, js)); got != end {
					t.Fatalf("the log went from %d messages to %d with n1 back: it gave back records in places another node took", end, got)
				}
				if v, _ := n1.l.FindHoldingByKey(k); v.Limit != 7 || v.UsageMin != 10 {
					t.Fatalf("n1 shows %+v, want the log's: limit 7, usage 10", v)
				}
				return
			case "late":
				// The other node starts first and would take the lease in a
				// lease or two (startNode's is a second): it leaves it to
				// n1, the last leader.
				n2 = startNode(t, srv, "n2", opts)
				time.Sleep(3 * time.Second)
				if n2.l.Leading() {
					t.Fatal("n2, started after a power loss, took the lease before the last leader, n1, was back")
				}
			}
			n1 = startNodeIn(t, srv, "n1", dir, opts)
			if s, d := n1.l.Digest(); s != seq || d != digest {
				t.Fatalf("n1 started again at %d %s, want %d %s (as it was before the log lost its tail)", s, d, seq, digest)
			}
			if got := logMsgs(t, js); len(got) != len(msgs) {
				t.Fatalf("the log holds %d messages again, want %d", len(got), len(msgs))
			}
			if n2 == nil {
				n2 = startNode(t, srv, "n2", opts)
			}
			converged(t, []*testNode{n1, n2})
			if v, _ := n2.l.FindHoldingByKey(k); v.UsageMin != 15 {
				t.Fatalf("n2 shows %+v, want usage 15", v)
			}
			// And the cluster writes on.
			leader := leaderOf(t, []*testNode{n1, n2})
			if err := leader.l.SetHoldings(ctx, []ledger.HoldingSetting{{Key: k, Limit: 7}}); err != nil {
				t.Fatal(err)
			}
			converged(t, []*testNode{n1, n2})
		})
	}
}

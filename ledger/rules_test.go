package ledger

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/cockroachdb/datadriven"

	"github.com/quotaledger/quotaledger/failure"
	"github.com/quotaledger/quotaledger/holdings"
	"github.com/quotaledger/quotaledger/internal/testkit"
)

// TestRules replays the ledger's rules written as scripts in testdata/rules.
// Each file starts from an empty ledger on an in-memory filesystem with a
// fake clock at 2026-01-01T00:00:00Z. Commands:
//
//	set-quota                 lines "holder source resource limit"
//	delete-quota              lines "holder source resource"
//	issue client=C [name=N] [force] [auto-accept] [ttl=D] [key=K]
//	                          lines "holder source resource quantity"
//	accept|reject client=C serial=S [reason=R]
//	resolve client=C [accept=1,2] [reject=3] [reason=R]
//	quotas [holder=H]         every holding, or those of H
//	pending client=C
//	commission client=C serial=S
//	log [holder=H] [serial=S] [resource=R] [limit=N]
//	events                    the outbox events written since the last "events"
//	advance D                 moves the clock (D is a Go duration)
//	expire                    rejects what has passed its deadline
//	reopen [default-ttl=D]    closes and reopens the ledger on the same files,
//	                          with Options.DefaultTTL D (none if not given)
//
// A source "-" is null and "" is the empty string.
func TestRules(t *testing.T) {
	datadriven.Walk(t, "testdata/rules", func(t *testing.T, path string) {
		clock := testkit.NewClock(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC))
		opts := memOptions()
		opts.Now = clock.Now
		l := mustOpen(t, opts)
		var lastEvent uint64
		ctx := context.Background()
		datadriven.RunTest(t, path, func(t *testing.T, td *datadriven.TestData) string {
			arg := func(name string) string {
				for _, a := range td.CmdArgs {
					if a.Key == name && len(a.Vals) > 0 {
						return a.Vals[0]
					}
				}
				return ""
			}
			switch td.Cmd {
			case "set-quota":
				var ss []HoldingSetting
				for _, f := range lines(td.Input) {
					ss = append(ss, HoldingSetting{Key: parseKey(t, f[:3]), Limit: parseInt(t, f[3])})
				}
				return result(l.SetHoldings(ctx, ss))
			case "delete-quota":
				var ks []holdings.Key
				for _, f := range lines(td.Input) {
					ks = append(ks, parseKey(t, f))
				}
				return result(l.DeleteHoldings(ctx, ks))
			case "issue":
				req := IssueRequest{Client: arg("client"), Name: arg("name"), Force: td.HasArg("force"),
					AutoAccept: td.HasArg("auto-accept"), IdempotencyKey: arg("key")}
				if d := arg("ttl"); d != "" {
					req.TTL = parseDuration(t, d)
				}
				for _, f := range lines(td.Input) {
					req.Provisions = append(req.Provisions,
						holdings.Provision{Key: parseKey(t, f[:3]), Quantity: parseInt(t, f[3])})
				}
				res, err := l.Issue(ctx, req)
				if err != nil {
					return result(err)
				}
				return fmt.Sprintf("serial=%d accepted=%t replayed=%t", res.Serial, res.Accepted, res.Replayed)
			case "accept", "reject":
				serial := uint64(parseInt(t, arg("serial")))
				return result(l.Resolve(ctx, arg("client"), serial, td.Cmd == "accept", arg("reason")))
			case "resolve":
				res, err := l.ResolveMany(ctx, arg("client"), serials(t, arg("accept")), serials(t, arg("reject")), arg("reason"))
				if err != nil {
					return result(err)
				}
				return fmt.Sprintf("accepted=%v rejected=%v notfound=%v conflicting=%v",
					res.Accepted, res.Rejected, res.NotFound, res.Conflicting)
			case "quotas":
				var f HoldingFilter
				if h := arg("holder"); h != "" {
					f.Holders = []string{h}
				}
				var sb strings.Builder
				for _, h := range l.FindHoldings(f) {
					fmt.Fprintf(&sb, "%s limit=%d min=%d max=%d\n", formatKey(h.Key), h.Limit, h.UsageMin, h.UsageMax)
				}
				return sb.String()
			case "pending":
				return fmt.Sprintf("%v", l.Pending(arg("client")))
			case "commission":
				c, err := l.Commission(arg("client"), uint64(parseInt(t, arg("serial"))))
				if err != nil {
					return result(err)
				}
				var sb strings.Builder
				fmt.Fprintf(&sb, "serial=%d client=%s name=%q issued=%s", c.Serial, c.Client, c.Name, c.IssueTime.Format(time.RFC3339))
				if !c.Deadline.IsZero() {
					fmt.Fprintf(&sb, " deadline=%s", c.Deadline.Format(time.RFC3339))
				}
				sb.WriteString("\n")
				for _, p := range c.Provisions {
					fmt.Fprintf(&sb, "  %s %+d\n", formatKey(p.Key), p.Quantity)
				}
				return sb.String()
			case "log":
				f := LogFilter{Holder: arg("holder"), Resource: arg("resource")}
				if s := arg("serial"); s != "" {
					f.Serial = uint64(parseInt(t, s))
				}
				if n := arg("limit"); n != "" {
					f.Limit = int(parseInt(t, n))
				}
				var sb strings.Builder
				for {
					page, err := l.Log(f)
					if err != nil {
						return result(err)
					}
					for _, e := range page.Entries {
						fmt.Fprintf(&sb, "serial=%d %s %+d -> limit=%d min=%d max=%d reason=%q at=%s\n",
							e.Serial, formatKey(e.Key), e.Quantity, e.After.Limit, e.After.UsageMin, e.After.UsageMax,
							e.Reason, e.LogTime.Format(time.RFC3339))
					}
					if page.Next == "" {
						return sb.String()
					}
					sb.WriteString("-- page --\n")
					f.After = page.Next
				}
			case "events":
				evs, err := l.Outbox(lastEvent, 1000)
				if err != nil {
					return result(err)
				}
				var sb strings.Builder
				for _, e := range evs {
					lastEvent = e.Seq
					fmt.Fprintf(&sb, "%d %s", e.Seq, e.Type)
					if e.Serial != 0 {
						fmt.Fprintf(&sb, " serial=%d client=%s", e.Serial, e.Client)
					}
					if e.Reason != "" {
						fmt.Fprintf(&sb, " reason=%q", e.Reason)
					}
					sb.WriteString("\n")
					for _, h := range e.Holdings {
						fmt.Fprintf(&sb, "  %s %+d -> limit=%d min=%d max=%d\n", formatKey(h.Key), h.Quantity,
							h.After.Limit, h.After.UsageMin, h.After.UsageMax)
					}
				}
				return sb.String()
			case "advance":
				return clock.Advance(parseDuration(t, td.CmdArgs[0].Key)).Format(time.RFC3339)
			case "expire":
				return result(l.ExpireDue(ctx))
			case "reopen":
				if err := l.Close(); err != nil {
					return result(err)
				}
				opts.DefaultTTL = 0
				if d := arg("default-ttl"); d != "" {
					opts.DefaultTTL = parseDuration(t, d)
				}
				l = mustOpen(t, opts)
				st := l.Stats()
				return fmt.Sprintf("holdings=%d pending=%d serial=%d", st.Holdings, st.Pending, st.Serial)
			}
			t.Fatalf("%s: unknown command %q", td.Pos, td.Cmd)
			return ""
		})
	})
}

func lines(input string) [][]string {
	var out [][]string
	for _, line := range strings.Split(input, "\n") {
		if f := strings.Fields(line); len(f) > 0 {
			out = append(out, f)
		}
	}
	return out
}

func parseKey(t *testing.T, f []string) holdings.Key {
	t.Helper()
	if len(f) < 3 {
		t.Fatalf("want holder source resource, got %q", f)
	}
	s := holdings.SourceOf(f[1])
	switch f[1] {
	case "-":
		s = holdings.NullSource
	case `""`:
		s = holdings.SourceOf("")
	}
	return holdings.Key{Holder: f[0], Source: s, Resource: f[2]}
}

func formatKey(k holdings.Key) string {
	s := k.Source.Name()
	switch {
	case k.Source.IsNull():
		s = "-"
	case s == "":
		s = `""`
	}
	return k.Holder + " " + s + " " + k.Resource
}

func parseInt(t *testing.T, s string) int64 {
	t.Helper()
	v, err := strconv.ParseInt(s, 10, 64)
	if err != nil {
		t.Fatalf("bad number %q", s)
	}
	return v
}

func parseDuration(t *testing.T, s string) time.Duration {
	t.Helper()
	d, err := time.ParseDuration(s)
	if err != nil {
		t.Fatalf("bad duration %q", s)
	}
	return d
}

func serials(t *testing.T, s string) []uint64 {
	if s == "" {
		return nil
	}
	var out []uint64
	for _, f := range strings.Split(s, ",") {
		out = append(out, uint64(parseInt(t, f)))
	}
	return out
}

// result renders an error as the lineage names it, with its data, or as
// its failure code and message.
func result(err error) string {
	if err == nil {
		return "ok"
	}
	if q, ok := holdings.AsQuotaLimit(err); ok {
		p, limit, usage := q.QuotaLimit()
		return fmt.Sprintf("%s: %s %+d limit=%d usage=%d", q.Name(), formatKey(p.Key), p.Quantity, limit, usage)
	}
	var nh *holdings.NoHoldingError
	if errors.As(err, &nh) {
		return fmt.Sprintf("%s: %s %+d", nh.Name(), formatKey(nh.Provision.Key), nh.Provision.Quantity)
	}
	return "error: " + string(failure.CodeOf(err)) + ": " + err.Error()
}

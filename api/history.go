package api

import (
	"math"
	"net/http"
	"strings"
	"time"

	"github.com/quotaledger/quotaledger/api/wire"
	"github.com/quotaledger/quotaledger/ledger"
)

// The provision log of holdings: /account/v1.0/history.

// logEntryView is an entry of the provision log as the API shows it.
func logEntryView(e ledger.LogEntry) wire.LogEntry {
	return wire.LogEntry{Serial: int64(e.Serial), Client: e.Client, Name: e.Name,
		IssueTime: wire.TimeOf(e.IssueTime), LogTime: wire.TimeOf(e.LogTime),
		HoldingKey: keyView(e.Key), Quantity: e.Quantity, Limit: e.After.Limit, UsageMin: e.After.UsageMin, UsageMax: e.After.UsageMax,
		Reason: e.Reason}
}

// mayReadHolder reports whether the caller may read the log of holder.
func (c *call) mayReadHolder(holder string) bool {
	if c.canReadAll() || holder == "user:"+c.p.User.UUID {
		return true
	}
	if pid, ok := strings.CutPrefix(holder, "project:"); ok {
		members, err := c.s.id.ProjectMemberRoles(pid)
		if err == nil {
			_, member := members[c.p.User.UUID]
			return member
		}
	}
	return false
}

// history answers a page of the provision log, paged as every list is:
// count is every matching entry, so a page walks the matches to their end
// (docs/api.md: narrow a large log by holder, serial or time).
func (s *Server) history(c *call) error {
	q := c.q
	f := ledger.LogFilter{Holder: q.Get("holder"), Resource: q.Get("resource"), Limit: ledger.MaxLogPage}
	if f.Holder == "" && !c.canReadAll() {
		f.Holder = "user:" + c.p.User.UUID
	}
	if f.Holder != "" && !c.mayReadHolder(f.Holder) {
		return newFault(http.StatusForbidden, "you may read the history of your own holdings and your projects' only")
	}
	var err error
	if v := q.Get("serial"); v != "" {
		if f.Serial, err = parseSerial(v); err != nil {
			return err
		}
	}
	for _, t := range []struct {
		name string
		dst  *time.Time
	}{{"from", &f.From}, {"to", &f.To}} {
		if v := q.Get(t.name); v != "" {
			if *t.dst, err = parseTime(t.name, v); err != nil {
				return err
			}
		}
	}
	p, err := paging(q)
	if err != nil {
		return err
	}
	lo := p.offset()
	hi := lo + min(p.size, math.MaxInt-lo)
	results := make([]wire.LogEntry, 0, p.size)
	count := 0
	for {
		page, err := s.l.Log(f)
		if err != nil {
			return err
		}
		for _, e := range page.Entries {
			if count >= lo && count < hi {
				results = append(results, logEntryView(e))
			}
			count++
		}
		if page.Next == "" {
			break
		}
		if err := c.r.Context().Err(); err != nil {
			return err // the caller is gone
		}
		f.After = page.Next
	}
	return answerPage(c, p, count, results)
}

package api

import (
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/quotaledger/quotaledger/ledger"
)

func logEntryView(e *ledger.LogEntry) map[string]any {
	return map[string]any{
		"serial": e.Serial, "client": e.Client, "name": e.Name,
		"issue_time": rfc3339(e.IssueTime), "log_time": rfc3339(e.LogTime),
		"holder": e.Key.Holder, "source": e.Key.Source.Ptr(), "resource": e.Key.Resource,
		"quantity": e.Quantity, "limit": e.After.Limit, "usage_min": e.After.UsageMin, "usage_max": e.After.UsageMax,
		"reason": e.Reason,
	}
}

// mayReadHolder reports whether the caller may read the log of holder.
func (c *call) mayReadHolder(holder string) bool {
	if c.canReadAll() || holder == "user:"+c.p.User.UUID {
		return true
	}
	if pid, ok := strings.CutPrefix(holder, "project:"); ok {
		members, err := c.s.id.ProjectMembers(pid)
		if err == nil {
			_, member := members[c.p.User.UUID]
			return member
		}
	}
	return false
}

func (s *Server) history(c *call) error {
	q := c.q
	var err error
	f := ledger.LogFilter{Holder: q.Get("holder"), Resource: q.Get("resource"), After: q.Get("after")}
	if f.Holder == "" && !c.canReadAll() {
		f.Holder = "user:" + c.p.User.UUID
	}
	if f.Holder != "" && !c.mayReadHolder(f.Holder) {
		return newFault(http.StatusForbidden, "you may read the history of your own holdings and your projects' only")
	}
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
	if v := q.Get("limit"); v != "" {
		if f.Limit, err = strconv.Atoi(v); err != nil || f.Limit < 1 || f.Limit > ledger.MaxLogPage {
			return badRequest("limit must be an integer from 1 to %d, got %q", ledger.MaxLogPage, v)
		}
	}
	page, err := s.l.Log(f)
	if err != nil {
		return err
	}
	out := make([]any, 0, len(page.Entries))
	for i := range page.Entries {
		out = append(out, logEntryView(&page.Entries[i]))
	}
	var next any
	if page.Next != "" {
		next = page.Next
	}
	return c.json(http.StatusOK, map[string]any{"count": len(out), "next": next, "results": out})
}

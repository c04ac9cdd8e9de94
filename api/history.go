package api

import (
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/quotaledger/quotaledger/api/wire"
	"github.com/quotaledger/quotaledger/ledger"
)

// logEntryView is an entry of the provision log as the API shows it.
func logEntryView(e ledger.LogEntry) wire.LogEntry {
	return wire.LogEntry{Serial: int64(e.Serial), Client: e.Client, Name: e.Name,
		IssueTime: wire.TimeOf(e.IssueTime), LogTime: wire.TimeOf(e.LogTime),
		Holder: e.Key.Holder, Source: e.Key.Source.Ptr(), Resource: e.Key.Resource,
		Quantity: e.Quantity, Limit: e.After.Limit, UsageMin: e.After.UsageMin, UsageMax: e.After.UsageMax,
		Reason: e.Reason}
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
	out := historyAnswer{Count: len(page.Entries), Results: make([]wire.LogEntry, 0, len(page.Entries))}
	for _, e := range page.Entries {
		out.Results = append(out.Results, logEntryView(e))
	}
	if page.Next != "" {
		out.Next = &page.Next
	}
	return c.json(http.StatusOK, out)
}

// historyAnswer is a page of the history, by cursor.
type historyAnswer struct {
	Count   int             `json:"count"`
	Next    *string         `json:"next"`
	Results []wire.LogEntry `json:"results"`
}

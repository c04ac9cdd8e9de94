package console

import (
	"cmp"
	"net/http"
	"slices"
	"strings"

	"github.com/quotaledger/quotaledger/api/client"
	"github.com/quotaledger/quotaledger/api/wire"
)

// The history page (admins and readers): a holder's provision log, newest
// first, a page at a time, and the usage of each of its holdings over
// time as a chart.

// maxHistory bounds the entries the page reads (the latest ones).
const maxHistory = 2000

// historyPerPage is how many entries the table shows at once.
const historyPerPage = 50

type historyChart struct {
	Resource    string
	SourceLabel string
	Chart       chart
	Entries     int
}

type historyPage struct {
	Typed, Resource string
	Holder          holderRef
	Resources       []string
	Errors          fieldErrors
	Count           int // every entry of the log that matches
	Shown           int // the latest ones read
	Entries         []wire.LogEntry
	Units           map[string]string
	Sources         map[string]string // a source's label, by its name (sourceName)
	Charts          []historyChart
	Pager           pager
}

// history shows a holder's provision log.
func (c *Console) history(rq *request) error {
	ctx := rq.context()
	q := rq.r.URL.Query()
	page := historyPage{Typed: q.Get("holder"), Resource: strings.TrimSpace(q.Get("resource")), Errors: fieldErrors{},
		Units: map[string]string{}, Sources: map[string]string{}}
	resources, err := c.api.GetResources(ctx)
	if err != nil {
		return err
	}
	for name, info := range resources {
		page.Resources = append(page.Resources, name)
		page.Units[name] = string(info.Unit)
	}
	slices.Sort(page.Resources)
	status := http.StatusOK
	if strings.TrimSpace(page.Typed) != "" {
		ref, msg := c.resolveHolder(ctx, page.Typed)
		if msg != "" {
			page.Errors["holder"] = msg
			status = http.StatusUnprocessableEntity
		} else {
			page.Holder = ref
			if err := c.readHistory(rq, &page); err != nil {
				return err
			}
		}
	}
	title := "History"
	if page.Holder.Holder != "" {
		title = "History of " + page.Holder.Label
	}
	rq.render(status, "history", title, "history", page)
	return nil
}

// readHistory reads the latest entries of the page's holder (and
// resource), and makes the table's page and the charts of them.
func (c *Console) readHistory(rq *request, page *historyPage) error {
	ctx := rq.context()
	const size = 100
	f := client.HistoryFilter{Holder: page.Holder.Holder, Resource: page.Resource, PageOptions: client.PageOptions{Page: 1, PageSize: size}}
	first, err := c.api.FindHistory(ctx, f)
	if err != nil {
		return err
	}
	page.Count = first.Count
	// The log is in time order: the latest entries are its last pages.
	last := (first.Count + size - 1) / size
	from := max(1, last-maxHistory/size+1)
	var entries []wire.LogEntry
	for p := from; p <= last; p++ {
		if p == 1 {
			entries = append(entries, first.Results...)
			continue
		}
		f.Page = p
		next, err := c.api.FindHistory(ctx, f)
		if err != nil {
			return err
		}
		entries = append(entries, next.Results...)
	}
	page.Shown = len(entries)
	// The charts: a holding's entries in time order.
	type key struct{ source, resource string }
	byKey := map[key][]chartPoint{}
	var keys []key
	sources := map[key]*string{}
	for _, e := range entries {
		k := key{sourceName(e.Source), e.Resource}
		if _, ok := byKey[k]; !ok {
			keys = append(keys, k)
			sources[k] = e.Source
		}
		byKey[k] = append(byKey[k], chartPoint{At: e.LogTime.Time, Min: e.UsageMin, Max: e.UsageMax, Limit: e.Limit})
	}
	slices.SortFunc(keys, func(a, b key) int {
		return cmp.Or(cmp.Compare(a.resource, b.resource), cmp.Compare(a.source, b.source))
	})
	for _, k := range keys {
		label, ok := page.Sources[k.source]
		if !ok {
			label = k.source
			if s := sources[k]; s != nil {
				label = c.holderLabel(ctx, *s)
			}
			page.Sources[k.source] = label
		}
		pts := byKey[k]
		page.Charts = append(page.Charts, historyChart{Resource: k.resource, SourceLabel: label, Entries: len(pts),
			Chart: usageChart(pts, page.Units[k.resource], c.opts.Now())})
	}
	// The table: newest first.
	slices.Reverse(entries)
	pageNo := pageParam(rq.r)
	page.Pager = newPager(rq.r, pageNo, historyPerPage, len(entries))
	lo := min((pageNo-1)*historyPerPage, len(entries))
	page.Entries = entries[lo:min(lo+historyPerPage, len(entries))]
	return nil
}

// outcome says how a commission of the log ended, from its reason:
// ACCEPT: or REJECT: and the resolver's reason, which may be EXPIRED (the
// ledger rejected it at its deadline), ADMIN:<uuid>[:reason] (an admin
// resolved it) or RECONCILE:<service> (a reconciliation rejected it).
func outcome(reason string) string {
	for _, o := range []struct{ prefix, word string }{{"ACCEPT:", "accepted"}, {"REJECT:", "rejected"}} {
		rest, ok := strings.CutPrefix(reason, o.prefix)
		if !ok {
			continue
		}
		rest = strings.TrimSpace(rest)
		switch {
		case rest == "":
			return o.word
		case rest == "EXPIRED":
			return "expired (not resolved in time)"
		case strings.HasPrefix(rest, "ADMIN:"):
			_, why, _ := strings.Cut(strings.TrimPrefix(rest, "ADMIN:"), ":")
			if why = strings.TrimSpace(why); why != "" {
				return o.word + " by an administrator: " + why
			}
			return o.word + " by an administrator"
		case strings.HasPrefix(rest, "RECONCILE:"):
			return o.word + " by a reconciliation of " + strings.TrimPrefix(rest, "RECONCILE:")
		}
		return o.word + ": " + rest
	}
	return reason
}

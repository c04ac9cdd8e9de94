package console

import (
	"context"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/quotaledger/quotaledger/api/client"
	"github.com/quotaledger/quotaledger/api/wire"
)

// The pending commissions page (admins and readers): every service's
// commissions that are still pending, oldest first, with their age and
// what they ask for; an admin accepts or rejects one, with a reason, on a
// page that asks to confirm (the provision log then says
// ADMIN:<the admin's uuid>:<the reason>).

// pendingPerPage is how many commissions a page lists.
const pendingPerPage = 25

// maxReason bounds the reason of an admin's resolve (the API takes 512
// bytes, with its ADMIN:<uuid>: before it).
const maxReason = 400

// stuckAfter is the age past which a pending commission is marked: its
// service has likely lost it (a crash between issue and resolve).
const stuckAfter = time.Hour

// olderThanChoices are the ages the list may be narrowed to.
var olderThanChoices = []struct {
	Value string
	Label string
	Age   time.Duration
}{{"", "any age", 0}, {"60", "a minute", time.Minute}, {"3600", "an hour", time.Hour}, {"86400", "a day", 24 * time.Hour}}

// provisionRow is a provision of a pending commission as the page shows
// it.
type provisionRow struct {
	HolderLabel, SourceLabel, Resource, Quantity string
}

// pendingRow is a pending commission on the page.
type pendingRow struct {
	wire.PendingCommission
	Age        string // "3 minutes"
	Stuck      bool
	Provisions []provisionRow
}

type pendingPage struct {
	Service, OlderThan string
	Services           []string
	OlderThanChoices   any
	Rows               []pendingRow
	Pager              pager
	// Error is why a resolve failed: by its serial when the page lists
	// it, else by "".
	Error map[string]string
	Back  string // this page, where the forms come back to
}

// pendingFilter reads the page's filter from q: the service, and the
// least age as one of olderThanChoices.
func pendingFilter(q url.Values) (client.PendingFilter, string) {
	f := client.PendingFilter{Service: strings.TrimSpace(q.Get("service"))}
	older := q.Get("older_than")
	for _, c := range olderThanChoices {
		if c.Value == older {
			f.OlderThan = c.Age
			return f, older
		}
	}
	return f, ""
}

// pending lists the pending commissions.
func (c *Console) pending(rq *request) error {
	return c.showPending(rq, http.StatusOK, rq.r.URL.Query(), nil)
}

// showPending renders the list of the filter in q, with a resolve that
// failed.
func (c *Console) showPending(rq *request, status int, q url.Values, failed *rowFailure) error {
	ctx := rq.context()
	f, older := pendingFilter(q)
	pageNo := pageParam(rq.r)
	f.PageOptions = client.PageOptions{Page: pageNo, PageSize: pendingPerPage}
	list, err := c.api.FindPendingCommissions(ctx, f)
	if err != nil {
		return err
	}
	resources, err := c.api.GetResources(ctx)
	if err != nil {
		return err
	}
	services, err := c.serviceNames(rq)
	if err != nil {
		return err
	}
	page := pendingPage{Service: f.Service, OlderThan: older, Services: services, OlderThanChoices: olderThanChoices,
		Pager: newPager(rq.r, pageNo, pendingPerPage, list.Count), Back: Prefix + "/admin/pending"}
	if len(q) > 0 {
		page.Back += "?" + q.Encode()
	}
	labels := c.holderLabels(ctx)
	for _, p := range list.Results {
		page.Rows = append(page.Rows, newPendingRow(p, resources, labels))
	}
	page.Error = failed.byRow(func(id string) bool {
		return slices.ContainsFunc(list.Results, func(p wire.PendingCommission) bool { return strconv.FormatInt(p.Serial, 10) == id })
	})
	rq.render(status, "pending", "Pending commissions", "pending", page)
	return nil
}

// newPendingRow is p as a row of the page: its age in words, and its
// provisions with their holders named by label and quantities in their
// units.
func newPendingRow(p wire.PendingCommission, resources map[string]wire.ResourceInfo, label func(string) string) pendingRow {
	age := time.Duration(p.Age) * time.Second
	row := pendingRow{PendingCommission: p, Age: duration(age), Stuck: age >= stuckAfter}
	for _, pv := range p.Provisions {
		src := sourceName(nil)
		if pv.Source != nil {
			src = label(*pv.Source)
		}
		row.Provisions = append(row.Provisions, provisionRow{HolderLabel: label(pv.Holder), SourceLabel: src,
			Resource: pv.Resource, Quantity: amount(string(resources[pv.Resource].Unit), pv.Quantity)})
	}
	return row
}

// holderLabels returns holderLabel, each holder asked once.
func (c *Console) holderLabels(ctx context.Context) func(string) string {
	labels := map[string]string{}
	return func(holder string) string {
		if _, ok := labels[holder]; !ok {
			labels[holder] = c.holderLabel(ctx, holder)
		}
		return labels[holder]
	}
}

// serviceNames are the names of the registered services, sorted.
func (c *Console) serviceNames(rq *request) ([]string, error) {
	var names []string
	for p := 1; p <= maxListPages; p++ {
		page, err := c.api.FindServices(rq.context(), client.ServiceFilter{PageOptions: client.PageOptions{Page: p, PageSize: 100}})
		if err != nil {
			return nil, err
		}
		for _, s := range page.Results {
			names = append(names, s.Name)
		}
		if page.Next == nil {
			break
		}
	}
	slices.Sort(names)
	return names, nil
}

// confirmResolve is the page that asks to confirm a resolve.
type confirmResolve struct {
	Row    pendingRow
	Accept bool
	Reason string
	Errors fieldErrors
	Back   string
}

// resolvePending accepts or rejects a pending commission: the row's
// button asks to confirm, with a reason; the confirmed form calls the
// API.
func (c *Console) resolvePending(rq *request) error {
	ctx := rq.context()
	f := rq.r.PostForm
	serial, err := strconv.ParseInt(f.Get("serial"), 10, 64)
	action := f.Get("action")
	if err != nil || serial <= 0 || (action != "accept" && action != "reject") {
		return rq.badForm()
	}
	back := rq.backTo(Prefix + "/admin/pending")
	backQuery := url.Values{}
	if u, err := url.Parse(back); err == nil {
		backQuery = u.Query()
	}
	id := strconv.FormatInt(serial, 10)
	gone := func() error {
		rq.r.URL.RawQuery = backQuery.Encode() // the list as it was: its filter and page
		return c.showPending(rq, http.StatusUnprocessableEntity, backQuery, &rowFailure{id,
			"Commission " + id + " is no longer pending: its service (or another administrator) has resolved it, or it expired."})
	}
	row, err := c.findPending(rq, f.Get("service"), serial)
	if err != nil {
		return err
	}
	if row == nil {
		return gone()
	}
	page := confirmResolve{Row: *row, Accept: action == "accept", Reason: strings.TrimSpace(f.Get("reason")),
		Errors: fieldErrors{}, Back: back}
	if f.Get("confirm") != "yes" {
		rq.render(http.StatusOK, "confirm-resolve", "Resolve commission "+id+"?", "pending", page)
		return nil
	}
	if len(page.Reason) > maxReason {
		page.Errors["reason"] = "The reason is too long: at most " + strconv.Itoa(maxReason) + " characters."
		rq.render(http.StatusUnprocessableEntity, "confirm-resolve", "Resolve commission "+id+"?", "pending", page)
		return nil
	}
	var accept, reject []int64
	if page.Accept {
		accept = []int64{serial}
	} else {
		reject = []int64{serial}
	}
	res, err := c.api.ResolvePendingCommissions(ctx, accept, reject, page.Reason)
	if err != nil {
		if client.StatusOf(err) == http.StatusBadRequest {
			page.Errors["reason"] = sentence(messageOf(err))
			rq.render(http.StatusUnprocessableEntity, "confirm-resolve", "Resolve commission "+id+"?", "pending", page)
			return nil
		}
		return err
	}
	if len(res.Failed) > 0 {
		if client.StatusOf(res.Failed[0].Err) == http.StatusNotFound {
			return gone()
		}
		return res.Failed[0].Err
	}
	done := "rejected: what it asked for is released"
	if page.Accept {
		done = "accepted: what it asked for is in use"
	}
	return rq.done(back, "Commission "+id+" of "+row.Service+" ("+row.Name+") was "+done+".")
}

// findPending finds the pending commission serial (of service, if
// given), as a row of the page; nil if it is not pending.
func (c *Console) findPending(rq *request, service string, serial int64) (*pendingRow, error) {
	ctx := rq.context()
	resources, err := c.api.GetResources(ctx)
	if err != nil {
		return nil, err
	}
	for p := 1; p <= maxListPages; p++ {
		list, err := c.api.FindPendingCommissions(ctx, client.PendingFilter{Service: service,
			PageOptions: client.PageOptions{Page: p, PageSize: 100}})
		if err != nil {
			return nil, err
		}
		for _, pc := range list.Results {
			if pc.Serial != serial {
				continue
			}
			row := newPendingRow(pc, resources, c.holderLabels(ctx))
			return &row, nil
		}
		if list.Next == nil {
			break
		}
	}
	return nil, nil
}

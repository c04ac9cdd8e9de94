package console

import (
	"cmp"
	"context"
	"net/http"
	"net/url"
	"slices"
	"strings"

	"github.com/quotaledger/quotaledger/api/client"
	"github.com/quotaledger/quotaledger/api/wire"
)

// The holdings page (admins and readers): the holdings of one holder,
// each with its usage and limit; admins set a limit, checked on the page
// and then confirmed on a page of its own that says what changes, before
// the API's POST holdings is called.

// maxHolder bounds a holder's name (holdings.MaxNameLen).
const maxHolder = 512

// holderRef is a holder as a page names it.
type holderRef struct {
	Holder string // as the ledger names it: user:<uuid>, project:<uuid>, ...
	Label  string // for people: "user ada@example.com", "project Physics"
}

// resolveHolder reads the holder a person typed: a holder's name as the
// ledger has it, or a username (an email address), which names that
// user's holder.
func (c *Console) resolveHolder(ctx context.Context, typed string) (holderRef, string) {
	typed = strings.TrimSpace(typed)
	switch {
	case typed == "":
		return holderRef{}, "Enter a holder: user:<uuid>, project:<uuid>, or a username."
	case len(typed) > maxHolder:
		return holderRef{}, "That is too long for a holder (at most 512 bytes)."
	case !strings.Contains(typed, ":") && strings.Contains(typed, "@"):
		uuid, err := c.api.GetUUID(ctx, typed)
		if err != nil {
			return holderRef{}, "There is no user " + typed + "."
		}
		typed = "user:" + uuid
	}
	return holderRef{Holder: typed, Label: c.holderLabel(ctx, typed)}, ""
}

// holderLabel names a holder for people.
func (c *Console) holderLabel(ctx context.Context, holder string) string {
	if uuid, ok := strings.CutPrefix(holder, "user:"); ok {
		if name, err := c.api.GetUsername(ctx, uuid); err == nil {
			return "user " + name
		}
	}
	if uuid, ok := strings.CutPrefix(holder, "project:"); ok {
		if p, err := c.api.FindProjectByID(ctx, uuid); err == nil {
			return "project " + projectName(p)
		}
	}
	return holder
}

// projectName is a project's name for people.
func projectName(p *wire.Project) string {
	if p.Base {
		return strings.TrimPrefix(p.Name, "base:") + "'s personal project"
	}
	return p.Name
}

// holdingRow is one holding on the page, with its form.
type holdingRow struct {
	wire.Holding
	Key         string // the row's key among the page's forms
	Unit        string
	SourceLabel string
	Share       share
	Value       string // the form's limit as typed (after an error)
}

type holdingsPage struct {
	Typed     string // the holder field as typed
	Holder    holderRef
	Rows      []holdingRow
	Resources []string
	Errors    fieldErrors // "holder", a row's key, "new"
	New       struct{ Source, Resource, Limit string }
}

// rowKey is the key of a holding's form: its source and resource.
func rowKey(source *string, resource string) string {
	if source == nil {
		return "-|" + resource
	}
	return "=" + *source + "|" + resource
}

// holdings shows a holder's holdings.
func (c *Console) holdings(rq *request) error {
	return c.showHoldings(rq, http.StatusOK, rq.r.URL.Query().Get("holder"), fieldErrors{}, nil)
}

// showHoldings renders the page of the holder typed, with the errors of
// its forms and, for a form that failed, what was typed in it.
func (c *Console) showHoldings(rq *request, status int, typed string, errs fieldErrors, failed *limitForm) error {
	ctx := rq.context()
	page := holdingsPage{Typed: typed, Errors: errs}
	resources, err := c.api.GetResources(ctx)
	if err != nil {
		return err
	}
	for name := range resources {
		page.Resources = append(page.Resources, name)
	}
	slices.Sort(page.Resources)
	if strings.TrimSpace(typed) != "" {
		ref, msg := c.resolveHolder(ctx, typed)
		if msg != "" {
			errs["holder"] = msg
			status = http.StatusUnprocessableEntity
		} else {
			page.Holder = ref
			hs, err := c.api.FindHoldings(ctx, client.HoldingFilter{Holders: []string{ref.Holder}})
			if err != nil {
				return err
			}
			labels := map[string]string{}
			for _, h := range hs {
				unit := string(resources[h.Resource].Unit)
				row := holdingRow{Holding: h, Key: rowKey(h.Source, h.Resource), Unit: unit,
					Share: newShare(unit, h.UsageMax, h.UsageMax-h.UsageMin, h.Limit), Value: amount(unit, h.Limit)}
				if h.Source == nil {
					row.SourceLabel = sourceName(nil)
				} else {
					if _, ok := labels[*h.Source]; !ok {
						labels[*h.Source] = c.holderLabel(ctx, *h.Source)
					}
					row.SourceLabel = labels[*h.Source]
				}
				if failed != nil && failed.key() == row.Key {
					row.Value = failed.Limit
				}
				page.Rows = append(page.Rows, row)
			}
			slices.SortFunc(page.Rows, func(a, b holdingRow) int {
				return cmp.Or(cmp.Compare(sourceName(a.Source), sourceName(b.Source)), cmp.Compare(a.Resource, b.Resource))
			})
		}
	}
	if failed != nil && failed.New {
		page.New.Source, page.New.Resource, page.New.Limit = failed.sourceText(), failed.Resource, failed.Limit
	}
	// The error of a form whose row the page does not list (made by hand,
	// or of a holding that is not there) is said above the list.
	for key, msg := range errs {
		if key != "" && key != "holder" && key != "new" && !slices.ContainsFunc(page.Rows, func(r holdingRow) bool { return r.Key == key }) {
			delete(errs, key)
			errs[""] = msg
		}
	}
	title := "Holdings"
	if page.Holder.Holder != "" {
		title = "Holdings of " + page.Holder.Label
	}
	rq.render(status, "holdings", title, "holdings", page)
	return nil
}

// limitForm is the form that sets a holding's limit: a row's, or the new
// holding's (New).
type limitForm struct {
	Holder, Resource, Limit string
	Source                  *string
	New                     bool
}

func (f *limitForm) key() string {
	if f.New {
		return "new"
	}
	return rowKey(f.Source, f.Resource)
}

func (f *limitForm) sourceText() string {
	if f.Source == nil {
		return ""
	}
	return *f.Source
}

// confirmLimit is the page that asks to confirm a limit.
type confirmLimit struct {
	Form                limitForm
	HolderLabel         string
	SourceLabel         string
	Unit                string
	Exists              bool
	Old                 wire.Holding
	NewLimit            int64
	BelowUsage, Lowered bool
	Back                string
}

// setLimit sets a holding's limit: it checks the form, asks to confirm,
// and on the confirmed form calls the API.
func (c *Console) setLimit(rq *request) error {
	ctx := rq.context()
	f := rq.r.PostForm
	form := limitForm{Holder: strings.TrimSpace(f.Get("holder")), Resource: strings.TrimSpace(f.Get("resource")),
		Limit: f.Get("limit"), New: f.Get("new") != ""}
	// A row's form names its source as it is (null_source: none); the
	// new holding's takes none for an empty field.
	if form.New {
		if src := strings.TrimSpace(f.Get("source")); src != "" {
			form.Source = &src
		}
	} else if f.Get("null_source") == "" {
		src := f.Get("source")
		form.Source = &src
	}
	errs := fieldErrors{}
	fail := func(msg string) error {
		errs[form.key()] = msg
		return c.showHoldings(rq, http.StatusUnprocessableEntity, form.Holder, errs, &form)
	}
	ref, msg := c.resolveHolder(ctx, form.Holder)
	if msg != "" {
		errs["holder"] = msg
		return c.showHoldings(rq, http.StatusUnprocessableEntity, form.Holder, errs, nil)
	}
	form.Holder = ref.Holder
	resources, err := c.api.GetResources(ctx)
	if err != nil {
		return err
	}
	info, known := resources[form.Resource]
	switch {
	case form.Resource == "":
		return fail("Choose a resource.")
	case !known:
		return fail("There is no resource " + form.Resource + ": choose one from the list.")
	case form.Source != nil && len(*form.Source) > maxHolder:
		return fail("The source is too long (at most 512 bytes).")
	}
	unit := string(info.Unit)
	limit, err := parseAmount(unit, form.Limit)
	if err != nil {
		return fail("The limit is not right: " + err.Error() + ".")
	}
	page := confirmLimit{Form: form, HolderLabel: ref.Label, SourceLabel: sourceName(form.Source), Unit: unit, NewLimit: limit,
		Back: Prefix + "/admin/holdings?holder=" + url.QueryEscape(form.Holder)}
	if form.Source != nil {
		page.SourceLabel = c.holderLabel(ctx, *form.Source)
	}
	hf := client.HoldingFilter{Holders: []string{form.Holder}, Resources: []string{form.Resource}}
	if form.Source == nil {
		hf.NullSource = true
	} else {
		hf.Sources = []string{*form.Source}
	}
	hs, err := c.api.FindHoldings(ctx, hf)
	if err != nil {
		return err
	}
	for _, h := range hs {
		if (h.Source == nil) == (form.Source == nil) && (h.Source == nil || *h.Source == *form.Source) {
			page.Old, page.Exists = h, true
		}
	}
	page.BelowUsage = limit < page.Old.UsageMax
	page.Lowered = page.Exists && limit < page.Old.Limit
	if f.Get("confirm") != "yes" {
		rq.render(http.StatusOK, "confirm-limit", "Set this limit?", "holdings", page)
		return nil
	}
	if _, err := c.api.SetHoldings(ctx, []client.HoldingLimit{{Holder: form.Holder, Source: form.Source,
		Resource: form.Resource, Limit: limit}}); err != nil {
		if client.StatusOf(err) == http.StatusBadRequest {
			return fail(sentence(messageOf(err)))
		}
		return err
	}
	return rq.done(page.Back, "The limit of "+form.Resource+" of "+ref.Label+" ("+page.SourceLabel+") is now "+amount(unit, limit)+".")
}

package console

import (
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/quotaledger/quotaledger/api/client"
	"github.com/quotaledger/quotaledger/api/wire"
)

// The access tokens page: the user's personal access tokens (name,
// created, expires, last used, read-only), a form to make one, whose
// secret is shown once on the page that answers the form (never in a URL,
// never again), and a revoke button on each.

// tokenExpiries are the expiries a new token may have, in days (0:
// never), the first the default.
var tokenExpiries = []struct {
	Days  int
	Label string
}{{30, "30 days"}, {7, "7 days"}, {90, "90 days"}, {365, "1 year"}, {0, "Never"}}

// maxTokenName is the longest token name the form takes (identity's cap).
const maxTokenName = 256

type tokenForm struct {
	Name     string
	Days     int
	ReadOnly bool
	Errors   fieldErrors
}

type tokensPage struct {
	Tokens   []wire.AccessToken
	Pager    pager
	Form     tokenForm
	Expiries any
	// Created is the token just made, with its secret: shown this once.
	Created *wire.AccessToken
	// RevokeError is why a revoke failed: by the token's id when the page
	// lists it, else by "".
	RevokeError map[string]string
}

// tokensPerPage is how many tokens a page lists.
const tokensPerPage = 20

// tokens lists the user's tokens.
func (c *Console) tokens(rq *request) error {
	return c.showTokens(rq, http.StatusOK, tokenForm{Days: tokenExpiries[0].Days}, nil, nil)
}

// showTokens renders the tokens page with form (and its errors), a token
// just created, or a revoke that failed.
func (c *Console) showTokens(rq *request, status int, form tokenForm, created *wire.AccessToken, revoke *rowFailure) error {
	pageNo := pageParam(rq.r)
	list, err := c.api.FindAccessTokens(rq.context(), client.TokenFilter{Sort: "-created",
		PageOptions: client.PageOptions{Page: pageNo, PageSize: tokensPerPage}})
	if err != nil {
		return err
	}
	page := tokensPage{Tokens: list.Results, Pager: newPager(rq.r, pageNo, tokensPerPage, list.Count),
		Form: form, Expiries: tokenExpiries, Created: created}
	page.RevokeError = revoke.byRow(func(id string) bool {
		return slices.ContainsFunc(list.Results, func(t wire.AccessToken) bool { return t.ID == id })
	})
	rq.render(status, "tokens", "Access tokens", "tokens", page)
	return nil
}

// createToken makes a token from the form.
func (c *Console) createToken(rq *request) error {
	f := rq.r.PostForm
	form := tokenForm{Name: strings.TrimSpace(f.Get("name")), ReadOnly: f.Get("read_only") != "", Errors: fieldErrors{}}
	days, err := strconv.Atoi(f.Get("expires"))
	valid := false
	for _, e := range tokenExpiries {
		valid = valid || (err == nil && e.Days == days)
	}
	form.Days = days
	switch {
	case form.Name == "":
		form.Errors["name"] = "Give the token a name, to tell it from your others (say, what script uses it)."
	case utf8.RuneCountInString(form.Name) > maxTokenName:
		form.Errors["name"] = "The name is too long: at most " + strconv.Itoa(maxTokenName) + " characters."
	}
	if !valid {
		form.Errors["expires"] = "Choose when the token expires from the list."
		form.Days = tokenExpiries[0].Days
	}
	if len(form.Errors) > 0 {
		return c.showTokens(rq, http.StatusUnprocessableEntity, form, nil, nil)
	}
	nt := client.NewAccessToken{Name: form.Name, ReadOnly: form.ReadOnly}
	if days > 0 {
		nt.Expires = c.opts.Now().Add(time.Duration(days) * 24 * time.Hour)
	}
	tok, err := c.api.CreateAccessToken(rq.context(), nt)
	if err != nil {
		if client.StatusOf(err) == http.StatusBadRequest || client.StatusOf(err) == http.StatusConflict {
			form.Errors["name"] = sentence(messageOf(err))
			return c.showTokens(rq, http.StatusUnprocessableEntity, form, nil, nil)
		}
		return err
	}
	rq.waitApplied()
	rq.flash = "The token " + strconv.Quote(tok.Name) + " was created."
	return c.showTokens(rq, http.StatusOK, tokenForm{Days: tokenExpiries[0].Days}, tok, nil)
}

// revokeToken revokes a token of the user's.
func (c *Console) revokeToken(rq *request) error {
	id, name := rq.r.PostForm.Get("id"), rq.r.PostForm.Get("name")
	if id == "" {
		return rq.badForm()
	}
	if err := c.api.DeleteAccessToken(rq.context(), id); err != nil {
		var msg string
		switch client.StatusOf(err) {
		case http.StatusNotFound:
			msg = "There is no such token of yours: it was revoked already, or it is not yours."
		case http.StatusForbidden:
			msg = "You may not revoke this token: " + sentence(messageOf(err))
		default:
			return err
		}
		return c.showTokens(rq, http.StatusUnprocessableEntity, tokenForm{Days: tokenExpiries[0].Days}, nil, &rowFailure{id, msg})
	}
	return rq.done(Prefix+"/tokens", "The token "+strconv.Quote(name)+" was revoked: it no longer works.")
}

package console

import (
	"net/http"
	"strconv"
)

// pager is the links to a list's neighbouring pages.
type pager struct {
	Page, Pages, Count int
	Prev, Next         string // "" at the ends
}

// pageParam is the page a list is asked for (?page=, from 1).
func pageParam(r *http.Request) int {
	n, err := strconv.Atoi(r.URL.Query().Get("page"))
	if err != nil || n < 1 || n > 1_000_000 {
		return 1
	}
	return n
}

// newPager is the pager of page of a list of count items, size a page,
// its links keeping the rest of r's query.
func newPager(r *http.Request, page, size, count int) pager {
	p := pager{Page: page, Pages: max((count+size-1)/size, 1), Count: count}
	link := func(n int) string {
		q := r.URL.Query()
		q.Set("page", strconv.Itoa(n))
		return r.URL.Path + "?" + q.Encode()
	}
	if page > 1 {
		p.Prev = link(min(page-1, p.Pages))
	}
	if page < p.Pages {
		p.Next = link(page + 1)
	}
	return p
}

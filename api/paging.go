package api

import (
	"maps"
	"net/http"
	"net/url"
	"strconv"

	"github.com/quotaledger/quotaledger/api/wire"
)

// Every list of the API pages the same way: page and page_size in the
// query (pageQuery), and a wire.Page as the answer, whose count is the
// number of every match and whose next and previous are the URLs of the
// neighbouring pages (null at the ends).

// pageRequest is the page a list call asks for.
type pageRequest struct{ page, size int }

// paging reads page and page_size (defaults 1 and 20, at most 100).
func paging(q url.Values) (pageRequest, error) {
	p := pageRequest{page: 1, size: 20}
	var err error
	if v := q.Get("page"); v != "" {
		if p.page, err = strconv.Atoi(v); err != nil || p.page < 1 || p.page > 1_000_000_000 {
			return p, badRequest("page must be an integer from 1 to 1000000000, got %q", v)
		}
	}
	if v := q.Get("page_size"); v != "" {
		if p.size, err = strconv.Atoi(v); err != nil || p.size < 1 || p.size > 100 {
			return p, badRequest("page_size must be an integer from 1 to 100, got %q", v)
		}
	}
	return p, nil
}

// bounds are the bounds of the page's slice of n items.
func (p pageRequest) bounds(n int) (lo, hi int) {
	if p.page-1 > n/p.size {
		return n, n
	}
	lo = min((p.page-1)*p.size, n)
	return lo, min(lo+p.size, n)
}

// answerPage answers page p of count items: results, and the links to the
// neighbouring pages.
func answerPage[T any](c *call, p pageRequest, count int, results []T) error {
	link := func(page int) *string {
		q := url.Values{}
		maps.Copy(q, c.q)
		q.Set("page", strconv.Itoa(page))
		q.Set("page_size", strconv.Itoa(p.size))
		u := c.baseURL() + c.r.URL.Path + "?" + q.Encode()
		return &u
	}
	out := wire.Page[T]{Count: count, Results: results}
	if out.Results == nil {
		out.Results = []T{}
	}
	if p.page <= count/p.size && p.page*p.size < count {
		out.Next = link(p.page + 1)
	}
	if p.page > 1 {
		out.Previous = link(min(p.page-1, max(1, (count+p.size-1)/p.size)))
	}
	return c.json(http.StatusOK, out)
}

// paginate answers one page of an in-memory list, each item as view shows
// it.
func paginate[T, V any](c *call, all []T, view func(T) V) error {
	p, err := paging(c.q)
	if err != nil {
		return err
	}
	lo, hi := p.bounds(len(all))
	out := make([]V, 0, hi-lo)
	for _, x := range all[lo:hi] {
		out = append(out, view(x))
	}
	return answerPage(c, p, len(all), out)
}

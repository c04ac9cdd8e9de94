package api

import (
	"maps"
	"math"
	"net/http"
	"net/url"
	"strconv"

	"github.com/quotaledger/quotaledger/api/wire"
)

// Every list of the API pages the same way: page and page_size in the
// query (pageQuery), and a wire.Page as the answer, whose count is the
// number of every match and whose next and previous are the URLs of the
// neighbouring pages (null at the ends). This file is the one paging of
// the server: the defaults and caps live here, and a page is handed to
// identity's lists as the window it covers (offset and limit; identity's
// FindXs cut it and count every match).

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

// offset is the index of the page's first item: the window of the page
// is [offset, offset+size). It saturates, so that a page far past any list
// stays past it on every platform.
func (p pageRequest) offset() int {
	if p.page-1 > math.MaxInt/p.size {
		return math.MaxInt
	}
	return (p.page - 1) * p.size
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

// paginate answers the page of a list that the query asks for, each item
// as view shows it: find returns the items of the window it is given
// (identity's FindXs, or inMemory's) and the count of every item.
func paginate[T, V any](c *call, find func(offset, limit int) ([]T, int, error), view func(T) V) error {
	p, err := paging(c.q)
	if err != nil {
		return err
	}
	items, count, err := find(p.offset(), p.size)
	if err != nil {
		return err
	}
	out := make([]V, 0, len(items))
	for _, x := range items {
		out = append(out, view(x))
	}
	return answerPage(c, p, count, out)
}

// inMemory is the find of paginate for a list held whole: the items of
// the window (limit is a page's size, at least 1), and the count of all.
func inMemory[T any](all []T) func(offset, limit int) ([]T, int, error) {
	return func(offset, limit int) ([]T, int, error) {
		lo := min(offset, len(all))
		return all[lo : lo+min(limit, len(all)-lo)], len(all), nil
	}
}

// every is every item of an identity list, for the callers that want them
// all: identity never refuses a zero filter (see Lists in identity.go).
func every[T any](items []T, _ int, _ error) []T { return items }

package api

import (
	"maps"
	"net/http"
	"net/url"
	"strconv"
)

var pageParams = []string{"page", "page_size"}

// paging reads page and page_size (defaults 1 and 20, at most 100).
func paging(q url.Values) (page, size int, err error) {
	page, size = 1, 20
	if v := q.Get("page"); v != "" {
		if page, err = strconv.Atoi(v); err != nil || page < 1 || page > 1_000_000_000 {
			return 0, 0, badRequest("page must be an integer from 1 to 1000000000, got %q", v)
		}
	}
	if v := q.Get("page_size"); v != "" {
		if size, err = strconv.Atoi(v); err != nil || size < 1 || size > 100 {
			return 0, 0, badRequest("page_size must be an integer from 1 to 100, got %q", v)
		}
	}
	return page, size, nil
}

// pageOf is the page of n items: the bounds of its slice.
func pageOf(page, size, n int) (lo, hi int) {
	if page-1 > n/size {
		return n, n
	}
	lo = min((page-1)*size, n)
	return lo, min(lo+size, n)
}

// list answers a page as {count, next, previous, results}, next and
// previous being the URLs of the neighbouring pages (null at the ends).
func (c *call) list(count, page, size int, results any) error {
	link := func(p int) any {
		q := maps.Clone(c.q)
		q.Set("page", strconv.Itoa(p))
		q.Set("page_size", strconv.Itoa(size))
		return c.baseURL() + c.r.URL.Path + "?" + q.Encode()
	}
	var next, prev any
	if page <= count/size && page*size < count {
		next = link(page + 1)
	}
	if page > 1 {
		prev = link(min(page-1, max(1, (count+size-1)/size)))
	}
	return c.json(http.StatusOK, map[string]any{"count": count, "next": next, "previous": prev, "results": results})
}

// paginate answers one page of an in-memory list.
func paginate[T any](c *call, q url.Values, all []T, view func(T) any) error {
	page, size, err := paging(q)
	if err != nil {
		return err
	}
	lo, hi := pageOf(page, size, len(all))
	out := make([]any, 0, hi-lo)
	for _, x := range all[lo:hi] {
		out = append(out, view(x))
	}
	return c.list(len(all), page, size, out)
}

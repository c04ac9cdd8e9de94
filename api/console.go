package api

import (
	"net/http"
	"strings"

	"github.com/quotaledger/quotaledger/api/console"
)

// The web console (DESIGN.md §13, package console) is served under /ui/
// by the same server: its pages are patterns of the server's mux, counted
// and logged as routes are, and its every read and write is a call of
// this server's API, made in process (console's transport), so that the
// routes' access rules, the login rate limits and a follower's forwarding
// of writes apply to it.

// mountConsole registers the console's pages on the mux.
func (s *Server) mountConsole() {
	opts := s.opts.Console
	opts.API, opts.Logger, opts.Applied = s, s.opts.Logger, nil // the server's own
	opts.SecureCookies = opts.SecureCookies || strings.HasPrefix(strings.ToLower(s.opts.PublicURL), "https://")
	if s.cluster != nil {
		opts.Applied = s.l.Applied
	}
	s.console = console.New(opts)
	for _, p := range s.console.Patterns() {
		rt := &Route{metrics: s.metrics.route(p.Pattern)} // its metrics, as a route's
		h := p.Handler
		s.mux.HandleFunc(p.Pattern, func(w http.ResponseWriter, r *http.Request) {
			if sw, ok := w.(*statusWriter); ok {
				sw.route = rt
			}
			h.ServeHTTP(w, r)
		})
	}
}

// consoleNotFound answers a GET of a path under /ui/ that no page (nor
// the Astakos /ui/get_services) takes with the console's page, not a
// cloudFault: a person asked for it.
func (s *Server) consoleNotFound(w http.ResponseWriter, r *http.Request) bool {
	if s.console == nil || r.Method != http.MethodGet || !strings.HasPrefix(r.URL.Path, console.Prefix+"/") {
		return false
	}
	s.console.NotFound(w, r)
	return true
}

package api

import (
	"net/http"

	"github.com/quotaledger/quotaledger/api/wire"
)

// The operational routes: /healthz and /readyz (/metrics is in metrics.go,
// /openapi.json in openapi.go).

// healthz answers whether the process is alive and its storage has not
// failed.
func (s *Server) healthz(c *call) error {
	if err := s.l.Failed(); err != nil {
		return c.json(http.StatusServiceUnavailable, wire.Health{Status: "storage failed", Error: err.Error()})
	}
	return c.json(http.StatusOK, wire.Health{Status: "ok"})
}

// readyz runs the checks of Options.Checks.
func (s *Server) readyz(c *call) error {
	status, code := "ready", http.StatusOK
	checks := map[string]string{}
	if s.opts.Checks != nil {
		for name, err := range s.opts.Checks(c.r.Context()) {
			checks[name] = "ok"
			if err != nil {
				checks[name] = err.Error()
				status, code = "not ready", http.StatusServiceUnavailable
			}
		}
	}
	return c.json(code, wire.Ready{Status: status, Checks: checks})
}

package api

import "net/http"

// healthz answers whether the process is alive and its storage has not
// failed.
func (s *Server) healthz(c *call) error {
	if err := s.l.Failed(); err != nil {
		return c.json(http.StatusServiceUnavailable, map[string]string{"status": "storage failed", "error": err.Error()})
	}
	return c.json(http.StatusOK, map[string]string{"status": "ok"})
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
	return c.json(code, map[string]any{"status": status, "checks": checks})
}

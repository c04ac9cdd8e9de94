package api

import (
	"errors"
	"net/http"
	"time"

	"github.com/quotaledger/quotaledger/backup"
	"github.com/quotaledger/quotaledger/ledger"
)

// backup streams the archive of package backup. Once the first byte is out
// an error cannot become a fault any more: the connection is then aborted,
// so that the client sees a truncated archive (gzip and tar both tell) and
// not a complete-looking one.
func (s *Server) backup(c *call) error {
	started := false
	err := backup.Write(c.w, s.l, func(m backup.Manifest) error {
		// A large archive takes longer than the server's write timeout.
		if err := http.NewResponseController(c.w).SetWriteDeadline(time.Time{}); err != nil {
			s.log.Warn().Err(err).Msg("backup: the write deadline cannot be lifted; a large archive may be cut off by the server's write timeout")
		}
		h := c.w.Header()
		h.Set("Content-Type", "application/gzip")
		h.Set("Content-Disposition", `attachment; filename="quotaledger-`+m.Time.Format("20060102T150405Z")+`.tar.gz"`)
		h.Set("Cache-Control", "no-store")
		c.w.WriteHeader(http.StatusOK)
		started = true
		return nil
	})
	if err == nil {
		return nil
	}
	if started {
		s.log.Error().Err(err).Msg("backup failed while streaming; connection aborted")
		panic(http.ErrAbortHandler)
	}
	if errors.Is(err, ledger.ErrClosed) {
		return newFault(http.StatusServiceUnavailable, "the ledger is closed")
	}
	return err
}

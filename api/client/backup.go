package client

import (
	"context"
	"fmt"
	"io"
	"net/http"
)

// Backup streams a consistent checkpoint of the server's whole ledger,
// taken without stopping its writes, into w (GET /account/v1.0/backup, an
// admin's call): a tar.gz archive that package backup reads and
// `quotaledger restore` rebuilds a data directory from. It returns the
// bytes written. The call is never retried, and the HTTP client's timeout
// does not apply (an archive may take long): cancel ctx to stop it. A
// server that fails midway cuts the stream, which is an error here or, if
// the cut fell between reads, in backup.Read: check what w received before
// trusting it (backup.Save does).
func (c *Client) Backup(ctx context.Context, w io.Writer) (int64, error) {
	rq := &request{method: http.MethodGet, path: accountPrefix + "/backup",
		header: http.Header{"Accept": {"application/gzip"}}}
	req, err := c.httpRequest(ctx, rq, nil, "")
	if err != nil {
		return 0, err
	}
	hc := *c.hc
	hc.Timeout = 0
	resp, err := hc.Do(req)
	if err != nil {
		return 0, fmt.Errorf("quotaledger: %s %s: %w", rq.method, rq.path, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		raw, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
		return 0, answerError(resp.StatusCode, raw, resp.Header.Get("X-Request-Id"))
	}
	n, err := io.Copy(w, resp.Body)
	if err != nil {
		return n, fmt.Errorf("quotaledger: %s %s: receiving the archive: %w", rq.method, rq.path, err)
	}
	return n, nil
}

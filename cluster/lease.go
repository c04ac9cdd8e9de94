package cluster

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// renewEvery is how often the leader renews its lease: a third of the TTL,
// so that a renewal that fails leaves two more periods to retry in before
// the lease can expire.
func (n *Node) renewEvery() time.Duration { return n.opts.LeaseTTL / 3 }

// errLeaseLost is a renewal refused: the lease is not this node's revision
// any more (another node took it after it expired, or it expired).
var errLeaseLost = errors.New("cluster: the lease is no longer this node's")

// renew renews the lease of revision rev, last renewed (or taken) at
// renewed, and returns its new revision. A renewal that is slow or gets no
// answer (the lease's Raft group changing leader, a loaded machine) is
// tried again until the lease would expire (renewed + LeaseTTL): one slow
// renewal does not depose the leader. It returns an error only when the
// lease is refused (errLeaseLost) or could not be renewed within its TTL,
// or ctx ends.
func (n *Node) renew(ctx context.Context, rev uint64, renewed time.Time) (uint64, error) {
	v := n.me()
	v.Role = "leader"
	value := marshal(v)
	deadline := renewed.Add(n.opts.LeaseTTL)
	var lastErr error
	unanswered := false // an attempt went unanswered: it may have been applied
	for attempt := 1; ; attempt++ {
		left := time.Until(deadline)
		if left <= 0 {
			if lastErr == nil {
				return 0, fmt.Errorf("cluster: the lease's renewal came %v after its last, past its TTL", time.Since(renewed).Round(time.Millisecond))
			}
			return 0, fmt.Errorf("cluster: the lease could not be renewed within its TTL (%d attempts): %w", attempt-1, lastErr)
		}
		actx, cancel := context.WithTimeout(ctx, min(left, n.renewEvery()))
		r, err := n.lease.Update(actx, "leader", value, rev)
		cancel()
		switch {
		case err == nil:
			if attempt > 1 {
				n.log.Info().Int("attempts", attempt).Msg("renewed the lease after a retry")
			}
			return r, nil
		case ctx.Err() != nil:
			return 0, ctx.Err()
		case errors.Is(err, jetstream.ErrKeyRevisionMismatch):
			// Refused: unless an earlier attempt that went unanswered
			// renewed it (the lease holds the value this renewal sent), or
			// the stream's new Raft leader refused it on a state it had
			// not caught up with yet (the lease still at this revision).
			gctx, cancel := context.WithTimeout(ctx, min(max(time.Until(deadline), 0), n.renewEvery()))
			e, gerr := getKey(gctx, n.lease, "leader")
			cancel()
			switch {
			case gerr == nil && unanswered && bytes.Equal(e.Value(), value):
				return e.Revision(), nil
			case gerr == nil && e.Revision() == rev:
				n.log.Warn().Err(err).Int("attempt", attempt).Msg("the lease's renewal was refused, but the lease is still this node's; trying again")
			default:
				return 0, fmt.Errorf("%w: %v", errLeaseLost, err)
			}
		}
		unanswered = true
		lastErr = err
		n.renewFails.Add(1)
		n.log.Warn().Err(err).Int("attempt", attempt).Dur("lease_left", time.Until(deadline)).
			Msg("the lease's renewal failed; trying again within its TTL")
		// No responders comes back at once: do not spin.
		sleep(ctx, min(max(time.Until(deadline), 0), n.renewEvery()/10))
	}
}

package cluster

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"
)

// The Raft groups on the write path: a leader appends to the log and renews
// its lease, and neither can be done while the group has no Raft leader.
// When the quotaledger leader's machine goes with its embedded NATS server,
// every group that server led elects a new Raft leader only after
// nats-server's election timeout (4-9 s, not configurable), which would be
// most of a failover (docs/cluster.md, Figures). So the leader moves those
// Raft leaders off its own server (moveRaftLeaders): then losing the
// leader's machine loses no Raft leader on the write path.
var writePath = []string{LogStream, "KV_" + LeaseBucket}

// raftLeader is the name of the NATS server that leads stream's Raft group
// ("" when it has none, or the stream is not replicated), and of a peer
// that could take over: one current with the leader's log and online (""
// if none is).
func (n *Node) raftLeader(ctx context.Context, stream string) (leader, successor string, err error) {
	s, err := n.js.Stream(ctx, stream)
	if err != nil {
		return "", "", err
	}
	info := s.CachedInfo() // as the server just answered
	if info.Cluster == nil {
		return "", "", nil
	}
	for _, p := range info.Cluster.Replicas {
		if p != nil && p.Current && !p.Offline {
			successor = p.Name
			break
		}
	}
	return info.Cluster.Leader, successor, nil
}

// stepdownResponse is the JetStream API's answer to a leader stepdown.
type stepdownResponse struct {
	Success bool `json:"success"`
	Error   *struct {
		Code        int    `json:"code"`
		Description string `json:"description"`
	} `json:"error"`
}

// moveRaftLeader moves the Raft leadership of stream off this node's NATS
// server if that server leads it and a peer is current with it, and waits
// until another server leads it; it reports whether it moved it. The
// stepdown ($JS.API.STREAM.LEADER.STEPDOWN, which nats.go's jetstream
// package has no call for) names that peer as the preferred one (a
// placement nats-server understands since 2.11; an older one picks any
// peer it sees alive). With no such peer (a stream of one replica, the
// others gone or behind) it does nothing: a stepdown would leave the group
// leaderless until an election, which is what this is to avoid.
func (n *Node) moveRaftLeader(ctx context.Context, stream string) (bool, error) {
	me := n.opts.Conn.ConnectedServerName()
	if me == "" {
		return false, nil
	}
	ctx, cancel := context.WithTimeout(ctx, n.opts.LeaseTTL)
	defer cancel()
	leader, successor, err := n.raftLeader(ctx, stream)
	if err != nil || leader != me || successor == "" {
		return false, err
	}
	req := marshal(map[string]any{"placement": map[string]string{"preferred": successor}})
	m, err := n.opts.Conn.RequestWithContext(ctx, "$JS.API.STREAM.LEADER.STEPDOWN."+stream, req)
	if err != nil {
		return false, fmt.Errorf("cluster: the stepdown of %s's Raft leader: %w", stream, err)
	}
	var resp stepdownResponse
	if err := json.Unmarshal(m.Data, &resp); err != nil {
		return false, fmt.Errorf("cluster: the stepdown of %s's Raft leader: %w", stream, err)
	}
	if !resp.Success {
		if resp.Error != nil {
			return false, fmt.Errorf("cluster: the stepdown of %s's Raft leader: %s (%d)", stream, resp.Error.Description, resp.Error.Code)
		}
		return false, fmt.Errorf("cluster: the stepdown of %s's Raft leader failed: %s", stream, m.Data)
	}
	for {
		// A leaderless group's stream answers no request: ask again,
		// until another server leads it.
		pctx, cancel := context.WithTimeout(ctx, 100*time.Millisecond)
		leader, _, err := n.raftLeader(pctx, stream)
		cancel()
		if err == nil && leader != "" && leader != me {
			return true, nil
		}
		if ctx.Err() != nil {
			return false, fmt.Errorf("cluster: %s's Raft group led by %q after the stepdown (%v): %w", stream, leader, err, ctx.Err())
		}
		sleep(ctx, 10*time.Millisecond)
	}
}

// moveRaftLeaders moves the Raft leaders of the write path off this node's
// server (writePath). The lease's is moved between two renewals (the
// caller's); the log's with the appends held (a), so that no append is in
// flight when its Raft group changes leader: one lost in the handover would
// fail the leader's next appends and depose it.
func (n *Node) moveRaftLeaders(ctx context.Context, a *appender) {
	for _, stream := range writePath {
		var moved bool
		var err error
		if stream == LogStream && a != nil {
			// Hold the appends only when this server leads the log.
			lctx, cancel := context.WithTimeout(ctx, n.opts.LeaseTTL)
			leader, _, lerr := n.raftLeader(lctx, stream)
			cancel()
			if lerr != nil || leader != n.opts.Conn.ConnectedServerName() {
				continue
			}
			err = a.hold(ctx, func() error {
				var err error
				moved, err = n.moveRaftLeader(ctx, stream)
				return err
			})
		} else {
			moved, err = n.moveRaftLeader(ctx, stream)
		}
		switch {
		case err != nil && !errors.Is(err, context.Canceled) && ctx.Err() != context.Canceled:
			n.log.Warn().Err(err).Str("stream", stream).Msg("could not move the Raft leader off this node's NATS server")
		case moved:
			n.raftMoves.Add(1)
			n.log.Info().Str("stream", stream).Msg("moved the Raft leader off this node's NATS server")
		}
	}
}

// moveRaftLeadersWithin is moveRaftLeaders within half the lease's TTL, so
// that the lease's next renewal (a third of the TTL after the last) comes
// in time whatever the moves take.
func (n *Node) moveRaftLeadersWithin(ctx context.Context, a *appender) {
	ctx, cancel := context.WithTimeout(ctx, n.opts.LeaseTTL/2)
	defer cancel()
	n.moveRaftLeaders(ctx, a)
}

package cluster

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// The Raft groups on the write path: a leader appends to the log and renews
// its lease, and neither can be done while the group has no Raft leader.
// When the quotaledger leader's machine goes with its embedded NATS server,
// every group that server led elects a new Raft leader only after
// nats-server's election timeout (4-9 s, not configurable), which would be
// most of a failover (docs/cluster.md, Figures). So the leader moves those
// Raft leaders off its own server (moveRaftLeaders): then losing the
// leader's machine loses no Raft leader on the write path.
//
// A move is JetStream's stream leader stepdown with a preferred peer: the
// Raft leader appends a leadership transfer entry naming the peer and
// steps down at once, and the peer campaigns as soon as it stores that
// entry. But the peer acts on it only if the entry extends its log: a
// peer that is behind (catching up, its apply paused, a missed entry)
// ignores it, and then no server campaigns before its election timeout:
// the group is leaderless for 4-9 s, and a lease of 3 s lapses meanwhile.
// So a group is moved only to a peer its Raft leader reports current (its
// log holds every committed entry, no lag) and heard from within a
// heartbeat, only right after a renewal of the lease (moveRaftLeaders'
// caller), and never twice within an election timeout (a move whose
// transfer failed is given the time to elect before another is tried).
var writePath = []string{LogStream, "KV_" + LeaseBucket}

const (
	// electionTimeout is nats-server's longest Raft election timeout: a
	// group whose leader stepped down is led again within it, whatever
	// became of the transfer.
	electionTimeout = 9 * time.Second
	// raftHeartbeat is nats-server's Raft heartbeat: a leader hears from
	// each live follower at least this often.
	raftHeartbeat = time.Second
)

// raftGroup is what stream's Raft leader says of its group: its leader's
// server ("" when it has none, or the stream is not replicated), and a
// peer that could take over safely ("" if none can).
func (n *Node) raftGroup(ctx context.Context, stream string) (leader, successor string, err error) {
	s, err := n.js.Stream(ctx, stream)
	if err != nil {
		return "", "", err
	}
	info := s.CachedInfo() // as the server just answered
	if info.Cluster == nil {
		return "", "", nil
	}
	return info.Cluster.Leader, successorOf(info.Cluster), nil
}

// successorOf picks the peer a Raft leader can hand its group to without
// leaving it leaderless: one current with the leader's log (Current, no
// Lag), a member (not Pending), online, and heard from within two
// heartbeats (Active); the one heard from last if several are. "" if none.
func successorOf(ci *jetstream.ClusterInfo) string {
	best, bestActive := "", time.Duration(0)
	for _, p := range ci.Replicas {
		if p == nil || !p.Current || p.Lag != 0 || p.Offline || p.Pending || p.Active > 2*raftHeartbeat {
			continue
		}
		if best == "" || p.Active < bestActive {
			best, bestActive = p.Name, p.Active
		}
	}
	return best
}

// stepdownResponse is the JetStream API's answer to a leader stepdown.
type stepdownResponse struct {
	Success bool `json:"success"`
	Error   *struct {
		Code        int    `json:"code"`
		Description string `json:"description"`
	} `json:"error"`
}

// errNoSuccessor: the group has no peer it can be handed to safely.
var errNoSuccessor = errors.New("no peer is current with the Raft leader")

// moveRaftLeader moves the Raft leadership of stream off this node's NATS
// server if that server leads it and a peer can take it safely
// (successorOf), and waits until another server leads it; it reports
// whether the move was accepted (even if the wait then fails). The stepdown
// ($JS.API.STREAM.LEADER.STEPDOWN, which nats.go's jetstream package has
// no call for) names that peer as the preferred one.
func (n *Node) moveRaftLeader(ctx context.Context, stream string) (bool, error) {
	me := n.opts.Conn.ConnectedServerName()
	if me == "" {
		return false, nil
	}
	leader, successor, err := n.raftGroup(ctx, stream)
	switch {
	case err != nil || leader != me:
		return false, err
	case successor == "":
		return false, errNoSuccessor
	}
	req := marshal(map[string]any{"placement": map[string]string{"preferred": successor}})
	n.raftMovedAt[stream] = time.Now()
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
	start := time.Now()
	for {
		// A leaderless group's stream answers no request: ask again,
		// until another server leads it.
		pctx, cancel := context.WithTimeout(ctx, 100*time.Millisecond)
		leader, _, err := n.raftGroup(pctx, stream)
		cancel()
		if err == nil && leader != "" && leader != me {
			n.log.Info().Str("stream", stream).Str("from", me).Str("to", leader).Str("preferred", successor).
				Dur("took", time.Since(start)).Msg("moved the Raft leader off this node's NATS server")
			return true, nil
		}
		if ctx.Err() != nil {
			return true, fmt.Errorf("cluster: %s's Raft group led by %q %v after its stepdown to %s (%v): %w",
				stream, leader, time.Since(start).Round(time.Millisecond), successor, err, ctx.Err())
		}
		sleep(ctx, 10*time.Millisecond)
	}
}

// moveRaftLeaders moves the Raft leaders of the write path off this node's
// server (writePath), each at most once per election timeout. Its caller
// calls it right after a renewal of the lease, and it returns within half
// a renewal period: the next renewal is not delayed, and has the rest of
// the lease's TTL to be tried again in (renew). The lease's group
// is moved first, the log's with the appends held (a), so that no append
// is in flight when its Raft group changes leader: one lost in the
// handover (no responders) would fail the leader's next appends and
// depose it.
func (n *Node) moveRaftLeaders(ctx context.Context, a *appender) {
	ctx, cancel := context.WithTimeout(ctx, n.renewEvery()/2)
	defer cancel()
	for _, stream := range []string{"KV_" + LeaseBucket, LogStream} {
		if at, ok := n.raftMovedAt[stream]; ok && time.Since(at) < electionTimeout {
			continue
		}
		var moved bool
		var err error
		if stream == LogStream {
			// Hold the appends only when this server leads the log.
			leader, _, lerr := n.raftGroup(ctx, stream)
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
		if moved {
			n.raftMoves.Add(1)
		}
		switch {
		case errors.Is(err, errNoSuccessor):
			n.log.Debug().Str("stream", stream).Msg("the Raft leader stays on this node's NATS server: no peer is current")
		case err != nil && !errors.Is(err, context.Canceled):
			n.log.Warn().Err(err).Str("stream", stream).Msg("could not move the Raft leader off this node's NATS server")
		}
	}
}

// askAgain is ask with up to three attempts of each: a JetStream request
// that reaches a stream's Raft group while it changes leader (a move, an
// election) gets no answer at all (its servers answer for a leaderless
// group only once they have run for 10 s), and a caller that asked once
// would wait its whole timeout and fail.
func askAgain[T any](ctx context.Context, each time.Duration, fn func(context.Context) (T, error)) (T, error) {
	return ask(ctx, each, 3, fn)
}

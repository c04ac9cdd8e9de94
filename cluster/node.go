package cluster

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/quotaledger/quotaledger/ledger"
)

// ErrBehind is returned when the log no longer holds the records a node
// needs: it must start from a checkpoint (join.go).
var ErrBehind = errors.New("cluster: the log no longer holds the records this node needs")

// run is the node's loop: follow until elected, lead until deposed, again.
func (n *Node) run() {
	defer close(n.done)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() {
		<-n.stop
		cancel()
	}()
	defer func() {
		// Drop out of the status at once, rather than at the TTL.
		dctx, cancel := context.WithTimeout(context.Background(), n.opts.LeaseTTL)
		defer cancel()
		_ = n.lease.Delete(dctx, "node."+n.opts.Name)
	}()
	var held uint64         // the lease, still this node's after a refused append
	var resyncing time.Time // since when it applies the log to lead again
	for ctx.Err() == nil {
		rev, err := n.follow(ctx, held)
		held = 0
		if err != nil {
			if ctx.Err() == nil {
				n.log.Error().Err(err).Msg("following the log")
				sleep(ctx, n.opts.LeaseTTL/5)
			}
			if rev != 0 {
				// The log is unreadable a moment (its Raft group elects a
				// leader, as when the append was lost): try again under
				// the lease while it is still this node's, for as long
				// as an election can take and a lease more (nobody else
				// could read the log meanwhile either).
				if ctx.Err() == nil && time.Since(resyncing) < electionTimeout+n.opts.LeaseTTL {
					if r, err := n.stillHeld(ctx, rev, time.Now().Add(n.opts.LeaseTTL/2)); err == nil {
						held = r
						continue
					}
				}
				n.log.Warn().Msg("could not apply the log to its end under the lease; giving it up")
				n.release(rev)
				n.sawLeader(nil)
			}
			continue
		}
		if held = n.lead(ctx, rev); held != 0 {
			resyncing = time.Now()
		}
	}
}

func sleep(ctx context.Context, d time.Duration) {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
	case <-t.C:
	}
}

// follow applies the log as it grows until this node wins the lease and
// has applied the log to its end; it returns the lease's revision. held is
// the lease's revision when this node still holds it (it led, and the log
// refused an append of its: it applies the log to its end and leads again),
// or 0; if the log fails it then, follow returns the error with the lease's
// revision, still held, for the caller to try again or give it up.
func (n *Node) follow(ctx context.Context, held uint64) (uint64, error) {
	rctx := ctx
	if held != 0 {
		// Under the lease: asked for a renewal period at most, so that
		// the caller renews it before it asks again (the log's Raft
		// group may be electing a leader, and answer nothing for
		// seconds).
		var cancel context.CancelFunc
		rctx, cancel = context.WithTimeout(ctx, n.renewEvery())
		defer cancel()
	}
	start, err := n.resume(rctx)
	if err != nil {
		return held, err
	}
	// The ledger holds the records before start and none after: the
	// acknowledgements of a last term as leader may have been counted for
	// batches the ledger then dropped (their appends were refused), so the
	// stream sequence seen is set again from the ledger, not kept.
	n.streamSeq.Store(start - 1)
	// The consumer is made in the background: its creation goes through
	// JetStream's meta leader, and the meta group may have none for
	// seconds (its leader's server went with the node that led): nothing
	// here waits for it. Meanwhile, and whenever the consumer fails, the
	// log is read message by message on every tick (readOn: its end from
	// the stream's Raft leader, each message by direct get), and the node
	// campaigns all the same.
	cur := n.consume(ctx, start)
	defer func() { cur.close() }()
	var asm assembler
	tick := time.NewTicker(n.opts.LeaseTTL / 5)
	defer tick.Stop()
	var rev uint64  // the lease, once won
	var last uint64 // the log's last sequence when won
	var wonAt time.Time
	lastMsg, checked := time.Now(), time.Now()
	resync := held != 0 // rev is the lease held before: kept on an error
	fail := func(err error) (uint64, error) {
		if rev != 0 {
			if resync {
				return rev, err
			}
			n.release(rev)
		}
		return 0, err
	}
	if held != 0 {
		// The lease renewed before the reads that follow, each asked
		// for a renewal period at most: the caller renews it again
		// before it asks again, so that it does not lapse.
		switch r, err := n.renewOnce(ctx, held); {
		case err == nil:
			held = r
		case errors.Is(err, jetstream.ErrKeyRevisionMismatch):
			return 0, fmt.Errorf("cluster: the lease was lost while the log was applied to its end: %w", err)
		}
		ictx, cancel := context.WithTimeout(ctx, n.renewEvery())
		info, err := n.stream.Info(ictx)
		cancel()
		if err != nil {
			return held, fmt.Errorf("cluster: the log stream: %w", err)
		}
		rev, last, wonAt = held, info.State.LastSeq, time.Now()
		n.log.Info().Uint64("log", last).Uint64("applied", n.streamSeq.Load()).Msg("still holding the lease; applying the log to its end")
		if err := n.catchUpFor(ctx, &asm, last); err != nil {
			n.log.Warn().Err(err).Msg("catching up with the log")
		}
	}
	for {
		if rev != 0 && n.streamSeq.Load() >= last {
			return rev, nil
		}
		select {
		case <-ctx.Done():
			if rev != 0 {
				n.release(rev)
			}
			return 0, ctx.Err()
		case m, ok := <-cur.msgs():
			lastMsg = time.Now()
			if !ok {
				// The consumer could not be made or failed: read the log
				// without it until the next tick makes another.
				n.log.Warn().Err(cur.err()).Msg("the log's consumer stopped; reading the log without it")
				cur.close()
				cur = nil
				continue
			}
			if err := n.apply(&asm, m); err != nil {
				return fail(err)
			}
		case <-tick.C:
			n.publishStatus(ctx, "follower")
			if rev == 0 && cur.isReady() && time.Since(lastMsg) > n.opts.LeaseTTL && time.Since(checked) > n.opts.LeaseTTL {
				// No message for a while: is the consumer stalled (its
				// stream's leader gone) while the log grows?
				checked = time.Now()
				ictx, cancel := context.WithTimeout(ctx, n.opts.LeaseTTL)
				info, err := n.stream.Info(ictx)
				cancel()
				if err == nil && info.State.LastSeq > n.streamSeq.Load() {
					n.log.Warn().Msg("the log's consumer stalled; reading the log without it")
					cur.close()
					cur = nil
				}
			}
			if rev != 0 {
				limit := 2 * n.opts.LeaseTTL
				if resync {
					// Its own term's log: an election of the log's
					// group may be what holds it up.
					limit = electionTimeout + n.opts.LeaseTTL
				}
				if time.Since(wonAt) > limit {
					// The log grows under us: someone else appends.
					n.log.Warn().Uint64("applied", n.streamSeq.Load()).Uint64("log", last).
						Msg("won the lease but could not catch up with the log; giving it up")
					n.release(rev)
					rev, resync = 0, false
					continue
				}
				// Keep the lease while catching up (what it applies
				// waits for the batches of its last term to finish).
				r, err := n.renewOnce(ctx, rev)
				switch {
				case err == nil:
					rev = r
					// Read the rest of the log, not only through the
					// consumer (which may have none to give).
					if err := n.catchUpFor(ctx, &asm, last); err != nil {
						n.log.Warn().Err(err).Msg("catching up with the log")
					}
				case errors.Is(err, jetstream.ErrKeyRevisionMismatch):
					n.log.Warn().Err(err).Msg("lost the lease while catching up with the log")
					rev, resync = 0, false
				}
				continue
			}
			r, err := n.campaign(ctx)
			if err != nil || r == 0 {
				if !cur.isReady() {
					// No consumer delivers (none could be made yet, or
					// it failed): read the log from its stream's Raft
					// leader, and make one again if it is gone.
					n.readOn(ctx, &asm)
					if cur == nil {
						cur = n.consume(ctx, n.streamSeq.Load()+1)
						lastMsg = time.Now()
					}
				}
				continue
			}
			ictx, cancel := context.WithTimeout(ctx, n.renewEvery())
			info, err := n.stream.Info(ictx)
			cancel()
			if err != nil {
				n.release(r)
				continue
			}
			rev, last, wonAt = r, info.State.LastSeq, time.Now()
			n.log.Info().Uint64("log", last).Uint64("applied", n.streamSeq.Load()).Msg("won the lease; applying the log to its end")
			if err := n.catchUpFor(ctx, &asm, last); err != nil {
				n.log.Warn().Err(err).Msg("catching up with the log")
			}
		}
	}
}

// assembler puts the parts of a record together.
type assembler struct {
	seq   uint64
	parts int
	buf   bytes.Buffer
}

// logConsumer is an ordered consumer of the log from a sequence on,
// made and read in the background. A nil *logConsumer is none.
type logConsumer struct {
	in     chan jetstream.Msg // closed when it stops (failed, or closed)
	cancel context.CancelFunc
	ready  atomic.Bool // made: it delivers
	mu     sync.Mutex
	failed error // why it stopped
}

// consume starts a consumer of the log from stream sequence start. Its
// creation needs JetStream's meta leader, and nats.go tries it again while
// it fails: it is made and read in a goroutine of its own, so that no one
// waits for it.
func (n *Node) consume(ctx context.Context, start uint64) *logConsumer {
	cctx, cancel := context.WithCancel(ctx)
	c := &logConsumer{in: make(chan jetstream.Msg, 256), cancel: cancel}
	go func() {
		defer close(c.in)
		err := func() error {
			cons, err := n.stream.OrderedConsumer(cctx, jetstream.OrderedConsumerConfig{
				FilterSubjects: []string{LogSubject},
				DeliverPolicy:  jetstream.DeliverByStartSequencePolicy,
				OptStartSeq:    start,
				// Its creation, and its re-creation when it loses its
				// server, tried a few times, then given up: the follower
				// makes another (follow).
				MaxResetAttempts: 3,
			})
			if err != nil {
				return fmt.Errorf("cluster: a consumer of the log: %w", err)
			}
			msgs, err := cons.Messages()
			if err != nil {
				return fmt.Errorf("cluster: a consumer of the log: %w", err)
			}
			defer msgs.Stop()
			c.ready.Store(true)
			stop := context.AfterFunc(cctx, msgs.Stop)
			defer stop()
			for {
				m, err := msgs.Next()
				if err != nil {
					if errors.Is(err, jetstream.ErrMsgIteratorClosed) {
						return nil
					}
					return fmt.Errorf("cluster: consuming the log: %w", err)
				}
				select {
				case c.in <- m:
				case <-cctx.Done():
					return nil
				}
			}
		}()
		c.mu.Lock()
		c.failed = err
		c.mu.Unlock()
	}()
	return c
}

// msgs is the channel of its messages (nil, which never delivers, for
// none).
func (c *logConsumer) msgs() <-chan jetstream.Msg {
	if c == nil {
		return nil
	}
	return c.in
}

func (c *logConsumer) isReady() bool { return c != nil && c.ready.Load() }

// err is why it stopped.
func (c *logConsumer) err() error {
	if c == nil {
		return nil
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.failed
}

func (c *logConsumer) close() {
	if c != nil {
		c.cancel()
	}
}

// readOn applies the log up to its end as its stream's Raft leader tells
// it, message by message (catchUp): a follower's way to keep up while it
// has no consumer of the log. It reads for a tick at most, and the next
// tick reads on: the follower's loop also watches the lease (campaign),
// and a read that gets no answer (a direct get goes to one replica, and
// one that is catching up answers nothing) must not keep it from seeing
// a new leader, or its writes would still be forwarded to the old one.
func (n *Node) readOn(ctx context.Context, asm *assembler) {
	rctx, cancel := context.WithTimeout(ctx, n.opts.LeaseTTL/5)
	defer cancel()
	info, err := n.stream.Info(rctx)
	if err != nil {
		return
	}
	if err := n.catchUp(rctx, asm, info.State.LastSeq); err != nil && rctx.Err() == nil {
		n.log.Warn().Err(err).Msg("reading the log without a consumer")
	}
}

// apply takes one log message from the consumer.
func (n *Node) apply(asm *assembler, m jetstream.Msg) error {
	md, err := m.Metadata()
	if err != nil {
		return fmt.Errorf("cluster: a log message without metadata: %w", err)
	}
	return n.applyMsg(asm, md.Sequence.Stream, m.Headers(), m.Data())
}

// partOf reads the headers of log message s: the journal record it is a
// part of, which part, and of how many.
func partOf(s uint64, h nats.Header) (seq uint64, part, parts int, err error) {
	seq, err1 := strconv.ParseUint(h.Get(hdrSeq), 10, 64)
	part, err2 := strconv.Atoi(h.Get(hdrPart))
	parts, err3 := strconv.Atoi(h.Get(hdrParts))
	if err := errors.Join(err1, err2, err3); err != nil || part < 1 || part > parts {
		return 0, 0, 0, fmt.Errorf("cluster: log message %d: bad headers %v", s, h)
	}
	return seq, part, parts, nil
}

// applyMsg takes log message s: a record whole, or a part of one.
func (n *Node) applyMsg(asm *assembler, s uint64, h nats.Header, data []byte) error {
	seq, part, parts, err := partOf(s, h)
	if err != nil {
		return err
	}
	if s <= n.streamSeq.Load() {
		return nil // seen already (a consumer resumed, a catch-up)
	}
	if part == 1 {
		asm.seq, asm.parts = seq, parts
		asm.buf.Reset()
	} else if seq != asm.seq || parts != asm.parts {
		// The start of this record was before where this consumer began
		// (it resumed in its middle): skip to the next record.
		return nil
	}
	asm.buf.Write(data)
	if part < parts {
		n.sawStreamSeq(s)
		return nil
	}
	// Asked again after each wait: the last term's batches finishing
	// meanwhile (ErrBusy) may be this very record, acknowledged by the log.
	for seq > n.l.Applied() {
		err := n.l.Follow(seq, bytes.Clone(asm.buf.Bytes()))
		if errors.Is(err, ledger.ErrBusy) {
			time.Sleep(time.Millisecond)
			continue
		}
		if errors.Is(err, ledger.ErrUnchained) {
			// Taken by the log after one it refused: every node skips it.
			n.log.Warn().Err(err).Uint64("stream_seq", s).Msg("skipping a record of the log that is not built on the last one applied")
			break
		}
		if err != nil {
			return fmt.Errorf("cluster: applying record %d: %w", seq, err)
		}
		break
	}
	n.sawStreamSeq(s)
	return nil
}

// catchUpFor is catchUp for a renewal period at most, so that a node
// catching up under the lease renews it in time (follow renews it on each
// tick, then reads on); running out of time is not an error.
func (n *Node) catchUpFor(ctx context.Context, asm *assembler, last uint64) error {
	cctx, cancel := context.WithTimeout(ctx, n.renewEvery())
	defer cancel()
	if err := n.catchUp(cctx, asm, last); err != nil && (cctx.Err() == nil || ctx.Err() != nil) {
		return err
	}
	return nil
}

// catchUp applies the log's messages after the last one applied up to
// last, reading each (not through the consumer, which may be behind or
// broken: its stream's leader may be gone).
func (n *Node) catchUp(ctx context.Context, asm *assembler, last uint64) error {
	for s := n.streamSeq.Load() + 1; s <= last; s++ {
		gctx, cancel := context.WithTimeout(ctx, n.opts.LeaseTTL)
		m, err := getMsg(gctx, n.stream, s)
		cancel()
		if err != nil {
			return fmt.Errorf("cluster: reading log message %d: %w", s, err)
		}
		if err := n.applyMsg(asm, s, m.Header, m.Data); err != nil {
			return err
		}
	}
	return nil
}

// sawStreamSeq notes the stream sequence of a record applied (or appended
// and acknowledged: those come in any order).
func (n *Node) sawStreamSeq(s uint64) {
	for {
		old := n.streamSeq.Load()
		if s <= old || n.streamSeq.CompareAndSwap(old, s) {
			return
		}
	}
}

// heldMsg reads log message s, within the history the stream's Raft
// leader reported. Read by direct get, any replica answers: one that has
// not caught up yet (this node's own server, catching up) says it has no
// such message, which is errNotHeldYet (asked again), not an absence.
func heldMsg(ctx context.Context, stream jetstream.Stream, s uint64) (*jetstream.RawStreamMsg, error) {
	m, err := getMsg(ctx, stream, s)
	if errors.Is(err, jetstream.ErrMsgNotFound) {
		err = fmt.Errorf("%w: %w", errNotHeldYet, err)
	}
	return m, err
}

// resume returns the stream sequence to apply the log from: the first
// message of the last record the ledger applied, when the record names its
// place (ledger.Chain; the consumer skips it and its other parts, applied
// already) and the log still has it; else the first message of the next
// record (seek), ErrBehind if the log's history starts after it.
func (n *Node) resume(ctx context.Context) (uint64, error) {
	seq, pos := n.l.Position()
	if pos == 0 {
		return n.seek(ctx, seq+1)
	}
	info, err := n.stream.Info(ctx)
	if err != nil {
		return 0, fmt.Errorf("cluster: the log stream: %w", err)
	}
	if info.State.Msgs == 0 || pos < info.State.FirstSeq {
		return n.seek(ctx, seq+1) // the record older than the log's history
	}
	return pos, nil
}

// seek returns the stream sequence of the first message of journal record
// target, or the one after the log's last when the log does not reach it
// yet; ErrBehind if the log's history starts after it. The records'
// sequences only grow along the stream, so a binary search finds it.
func (n *Node) seek(ctx context.Context, target uint64) (uint64, error) {
	info, err := n.stream.Info(ctx)
	if err != nil {
		return 0, fmt.Errorf("cluster: the log stream: %w", err)
	}
	first, last := info.State.FirstSeq, info.State.LastSeq
	if info.State.Msgs == 0 {
		// An empty log: new, or every record older than its max age. The
		// leader notes the last record it appended (noteLast).
		if last > 0 && target-1 < n.lastRecord(ctx) {
			return 0, ErrBehind
		}
		return last + 1, nil
	}
	recOf := func(s uint64) (uint64, error) {
		m, err := heldMsg(ctx, n.stream, s)
		if err != nil {
			return 0, err
		}
		return strconv.ParseUint(m.Header.Get(hdrSeq), 10, 64)
	}
	r, err := recOf(first)
	if err != nil {
		return 0, fmt.Errorf("cluster: reading log message %d: %w", first, err)
	}
	if r > target {
		return 0, ErrBehind
	}
	lo, hi := first, last+1 // the answer is in [lo, hi]
	for lo < hi {
		mid := lo + (hi-lo)/2
		r, err := recOf(mid)
		if err != nil {
			return 0, fmt.Errorf("cluster: reading log message %d: %w", mid, err)
		}
		if r >= target {
			hi = mid
		} else {
			lo = mid + 1
		}
	}
	return lo, nil
}

// campaign tries to take the lease when nobody holds it; it returns the
// lease's revision if this node won, and notes who holds it otherwise.
func (n *Node) campaign(ctx context.Context) (uint64, error) {
	ctx, cancel := context.WithTimeout(ctx, n.opts.LeaseTTL)
	defer cancel()
	e, err := getKey(ctx, n.lease, "leader")
	switch {
	case err == nil:
		n.sawLeader(e.Value())
		n.leasePresentAt = time.Now()
		n.sawLeaseRev(e.Revision())
		return 0, nil
	case !errors.Is(err, jetstream.ErrKeyNotFound) && !errors.Is(err, jetstream.ErrKeyDeleted):
		return 0, err
	}
	n.leaderMu.Lock()
	unread := time.Since(n.leaderSeen) > n.opts.LeaseTTL/2
	n.leaderMu.Unlock()
	n.sawLeader(nil)
	// The lease is gone. If its Raft group elected its leader since the
	// lease was last seen, the lease expired for want of a leader to
	// renew it with (its replicas expire it on their own, and answer
	// reads, meanwhile): its holder takes it again the moment the group
	// answers (stillHeld, asking every LeaseTTL/20 up to its timeout of
	// LeaseTTL/2), and the others give it two leases from the election
	// to (the Raft leader's clock against this node's: seconds, against
	// the milliseconds of skew of synchronised clocks).
	ictx, cancel := context.WithTimeout(ctx, n.opts.LeaseTTL/5)
	st, err := n.js.Stream(ictx, "KV_"+LeaseBucket)
	cancel()
	if err != nil {
		return 0, nil // no Raft leader, or no answer: a Create would get none either
	}
	if ci := st.CachedInfo().Cluster; ci != nil && ci.LeaderSince != nil && ci.LeaderSince.After(n.leasePresentAt) && n.leaseChange.Load() > 0 {
		// Elected since the lease was last seen: its holder could not
		// renew it meanwhile. (A Raft leader moved while the holder
		// still renewed, or a cluster that never had a leader, has no
		// holder to wait for.)
		n.holdUntil(ci.LeaderSince.Add(2 * n.opts.LeaseTTL))
	}
	if unread {
		// Nor could the lease be read a while.
		n.holdOff(n.opts.LeaseTTL / 2)
	}
	if time.Now().Before(n.campaignAfter) || n.leaveToLast() {
		return 0, nil
	}
	v := n.me()
	v.Role = "leader"
	rev, err := n.lease.Create(ctx, "leader", marshal(v))
	if err != nil {
		return 0, nil // someone was quicker
	}
	return rev, nil
}

// holdOff keeps this node from taking a lease nobody holds for d.
func (n *Node) holdOff(d time.Duration) { n.holdUntil(time.Now().Add(d)) }

// holdUntil keeps this node from taking a lease nobody holds until t.
func (n *Node) holdUntil(t time.Time) {
	if t.After(n.campaignAfter) {
		n.campaignAfter = t
	}
}

// sawLeader notes the lease's holder (nil: nobody).
func (n *Node) sawLeader(value []byte) {
	var v leaseValue
	if value != nil {
		_ = json.Unmarshal(value, &v)
	}
	n.leaderMu.Lock()
	if v.Name != n.leaderName {
		n.leaseChange.Add(1)
		if n.leaderMoved != nil {
			close(n.leaderMoved)
		}
		n.leaderMoved = make(chan struct{})
	}
	n.leaderName, n.leaderURL = v.Name, v.HTTPURL
	n.leaderSeen = time.Now()
	n.leaderMu.Unlock()
}

// release gives the lease up, if it is still this revision.
func (n *Node) release(rev uint64) {
	ctx, cancel := context.WithTimeout(context.Background(), n.opts.LeaseTTL)
	defer cancel()
	_ = n.lease.Delete(ctx, "leader", jetstream.LastRevision(rev))
}

// lead makes the node the leader until it loses the lease, the log refuses
// an append, or the node stops. It returns the lease's revision when the log
// refused an append but the lease is still this node's (0 otherwise): the
// node then applies the log to its end and leads again, under the same
// lease (follow).
//
// An append is refused, or never acknowledged, for other reasons than
// another leader: a NATS server that comes back after a pause campaigns in
// the Raft groups of the log and the lease with a higher term (NATS Raft
// has no pre-vote), their leaders step down, and a message sent to the log
// as its group changes leader is lost, so that the appends after it expect
// a sequence the log never reached. The lease tells the two apart: its
// update at this node's revision succeeds only if no other node took it
// since, and no other node appends without it.
func (n *Node) lead(ctx context.Context, rev uint64) uint64 {
	// The lease, still this node's? (It may have lapsed while the node
	// applied the log to its end.)
	r, err := n.renewOnce(ctx, rev)
	if err != nil {
		n.log.Warn().Err(err).Msg("the lease is no longer this node's: not leading")
		n.sawLeader(nil)
		return 0
	}
	rev = r
	logEnd := n.streamSeq.Load()
	a := &appender{n: n, last: logEnd, term: newTerm()}
	defer a.close()
	deposed, err := n.l.Lead(a)
	for errors.Is(err, ledger.ErrBusy) && ctx.Err() == nil {
		// The batches of its last term are finishing (their appends
		// refused, or given up on).
		sleep(ctx, time.Millisecond)
		deposed, err = n.l.Lead(a)
	}
	if err != nil {
		n.log.Error().Err(err).Msg("cannot lead")
		n.release(rev)
		return 0
	}
	n.leading.Store(true)
	v := n.me()
	v.Role = "leader"
	n.sawLeader(marshal(v))
	n.publishStatus(ctx, "leader")
	n.log.Info().Uint64("applied", n.l.Applied()).Uint64("log", logEnd).Msg("leading")
	if n.opts.OnLead != nil {
		n.opts.OnLead()
	}
	ckctx, stopCheckpoints := context.WithCancel(ctx)
	ckdone := make(chan struct{})
	go func() {
		defer close(ckdone)
		nctx, cancel := context.WithTimeout(ckctx, n.opts.LeaseTTL)
		n.noteLeader(nctx)
		cancel()
		n.checkpoints(ckctx)
	}()
	defer func() {
		stopCheckpoints()
		<-ckdone
	}()
	tick := time.NewTicker(n.renewEvery())
	defer tick.Stop()
	// The lease was taken (or last renewed) before this: a renewal past
	// its expiry is refused, not applied.
	renewed := time.Now()
	why := ""
	held := uint64(0)
	retake := false // the lease lapsed only for want of a Raft leader to renew it with
	for why == "" {
		select {
		case <-ctx.Done():
			why = "the node stops"
		case <-deposed:
			why = "the log refused an append"
			onTime := time.Since(renewed) <= n.opts.LeaseTTL
			r, err := n.stillHeld(ctx, rev, renewed.Add(2*n.opts.LeaseTTL))
			if err == nil {
				held = r
			}
			// As below: the log's and the lease's groups both without a
			// Raft leader (a resumed server's campaign disrupts all of
			// its groups), this node takes the lease again first.
			retake = err != nil && !errors.Is(err, errLeaseLost) && onTime
		case <-tick.C:
			at := time.Now()
			r, err := n.renew(ctx, rev, renewed) // lease.go
			if err != nil {
				// renew tried again within the lease's TTL (a renewal
				// sent as the lease's Raft group changes leader fails,
				// and the next one succeeds). Refused, the lease is
				// another's. Unanswered for the whole TTL (the lease's
				// group electing a leader: a resumed NATS server
				// disrupts it), it is still this node's if nobody took
				// it meanwhile, which stillHeld finds out (taking it
				// again if it expired); the log's fence covers an
				// append made meanwhile.
				if !errors.Is(err, errLeaseLost) && ctx.Err() == nil {
					r, herr := n.stillHeld(ctx, rev, renewed.Add(2*n.opts.LeaseTTL))
					if herr == nil {
						n.log.Warn().Err(err).Msg("the lease's renewals went unanswered for its TTL, but it is still this node's")
						rev, renewed = r, time.Now()
						break
					}
					// Unanswered to the end, and renewed on time until
					// then (not a node that was stopped, whose lease
					// lapsed long ago): nobody could take the lease
					// either while its group answered nobody, and this
					// node takes it again first once it does.
					retake = !errors.Is(herr, errLeaseLost) && at.Sub(renewed) <= n.opts.LeaseTTL
				}
				why = "the lease could not be renewed: " + err.Error()
				break
			}
			rev, renewed = r, at
			// Right after a renewal: the Raft leaders of the write path
			// off this node's NATS server (placement.go), then the
			// status; all within a renewal period, so that none delays
			// the next renewal past it (a NATS stream without its Raft
			// leader answers nothing until its timeout).
			n.moveRaftLeaders(ctx, a)
			sctx, cancel := context.WithTimeout(ctx, n.renewEvery()/2)
			n.publishStatus(sctx, "leader")
			n.noteLast(sctx)
			cancel()
		}
	}
	n.leading.Store(false)
	_ = n.l.StepDown()
	if n.opts.OnFollow != nil {
		n.opts.OnFollow()
	}
	if held == 0 && retake {
		// Not writing any more, it keeps asking, for nats-server's
		// longest election and a lease more: it takes the lease again
		// the moment the group answers, if nobody else did.
		n.log.Warn().Str("why", why).Msg("the lease's Raft group answers nobody: stopped writing, taking the lease again once it does")
		if r, err := n.stillHeld(ctx, rev, time.Now().Add(electionTimeout+n.opts.LeaseTTL)); err == nil {
			held = r
		}
	}
	if held != 0 {
		n.log.Warn().Str("why", why).Msg("the lease is still this node's: applying the log to its end to lead again")
		return held
	}
	n.log.Warn().Str("why", why).Msg("stepping down")
	n.release(rev)
	n.sawLeader(nil)
	if ctx.Err() == nil {
		// Deposed: another node holds the lease or is taking it.
		n.holdOff(n.opts.LeaseTTL)
	}
	return 0
}

// renewOnce updates the lease at revision rev and returns its new
// revision: one attempt (renew, lease.go, tries again within the TTL).
func (n *Node) renewOnce(ctx context.Context, rev uint64) (uint64, error) {
	v := n.me()
	v.Role = "leader"
	rctx, cancel := context.WithTimeout(ctx, n.opts.LeaseTTL/2)
	defer cancel()
	return n.lease.Update(rctx, "leader", marshal(v), rev)
}

// stillHeld reports whether the lease, at revision rev, is still this
// node's, renewing it: its new revision and nil, or errLeaseLost once
// another node took it, or another error when no renewal succeeded by
// deadline (the lease's Raft group
// may be electing a leader: a renewal that fails for want of one is tried
// again). A lease that expired meanwhile, nobody holding it, is taken
// again: its group may elect its leader later than the lease's TTL after
// the last renewal, and the others wait a tick before they take a lease
// they could not read (campaign).
func (n *Node) stillHeld(ctx context.Context, rev uint64, deadline time.Time) (uint64, error) {
	for ctx.Err() == nil {
		r, err := n.renewOnce(ctx, rev)
		if err == nil {
			return r, nil
		}
		if errors.Is(err, jetstream.ErrKeyRevisionMismatch) {
			r, cerr := n.retake(ctx)
			switch {
			case cerr == nil:
				n.log.Warn().Msg("the lease expired while it could not be renewed; taken again")
				return r, nil
			case !unanswered(cerr):
				n.log.Warn().Err(err).AnErr("take", cerr).Msg("the lease is no longer this node's")
				return 0, fmt.Errorf("%w: %v", errLeaseLost, err)
			}
			err = cerr // asked again below, until the deadline
		}
		if !time.Now().Before(deadline) {
			n.log.Warn().Err(err).Msg("the lease could not be renewed")
			return 0, err
		}
		sleep(ctx, n.opts.LeaseTTL/20)
	}
	return 0, ctx.Err()
}

// retake takes the lease if nobody holds it (Create fails if anyone does).
func (n *Node) retake(ctx context.Context) (uint64, error) {
	rctx, cancel := context.WithTimeout(ctx, n.opts.LeaseTTL/2)
	defer cancel()
	v := n.me()
	v.Role = "leader"
	return n.lease.Create(rctx, "leader", marshal(v))
}

// appender is the leader's ledger.Log: each record goes to the stream as
// one message or several, each expecting the stream's last sequence to be
// the one before it, so that once another node appended, every append of
// this one is refused.
//
// A message can also be lost: sent to the log as its Raft group changes
// leader (a NATS server that was paused and comes back campaigns with a
// higher term: NATS Raft has no pre-vote), it is neither stored nor
// refused, and the messages after it are refused for the sequence it never
// took. So the messages' acknowledgements are settled in order
// (acknowledge), and a message not acknowledged within ackWait, or
// refused while the log does not hold another writer's message in its
// place, is sent again, the same (its Nats-Msg-Id names the term and the
// place: if the first one landed after all, the log answers the copy as a
// duplicate, with its sequence), until two lease periods have passed since
// it was first sent. Only a refusal with another writer's message in its
// place, or that time, ends the term's appends.
type appender struct {
	n    *Node
	term uint64     // this term's (ledger.Chain)
	mu   sync.Mutex // held by Append, by hold, by saw and close, and by a resend
	last uint64     // the stream sequence the next message follows

	// queue holds the messages sent and not yet settled, in order; more
	// says it has grown. The acknowledger (acknowledge) settles them.
	queue   []*sent
	more    chan struct{}
	started sync.Once
	failed  error // the first message that could not be settled

	closed bool // the term ended: acknowledgements no longer count
}

// sent is one message of the log, sent and being settled.
type sent struct {
	m    *nats.Msg
	pos  uint64 // its stream sequence, if the log takes it
	fut  jetstream.PubAckFuture
	at   time.Time     // first sent
	done chan struct{} // closed when settled: err says how
	err  error
}

// hold runs fn with no append in flight: it stops new appends (Append
// waits) and waits for those sent to be acknowledged or refused first.
func (a *appender) hold(ctx context.Context, fn func() error) error {
	a.mu.Lock()
	defer a.mu.Unlock()
	select {
	case <-a.n.js.PublishAsyncComplete():
	case <-ctx.Done():
		return fmt.Errorf("cluster: appends still in flight: %w", ctx.Err())
	}
	return fn()
}

// saw notes the stream sequence of an acknowledged append, while the term
// lasts.
func (a *appender) saw(s uint64) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if !a.closed {
		a.n.sawStreamSeq(s)
	}
}

func (a *appender) close() {
	a.mu.Lock()
	a.closed = true
	a.mu.Unlock()
	a.wake()
}

func (a *appender) isClosed() bool {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.closed
}

func (a *appender) wake() {
	select {
	case a.more <- struct{}{}:
	default:
	}
}

// next returns the oldest message not yet settled, waiting for one; nil
// once the term ended with none left.
func (a *appender) next() *sent {
	for {
		a.mu.Lock()
		if len(a.queue) > 0 {
			s := a.queue[0]
			a.queue = a.queue[1:]
			a.mu.Unlock()
			return s
		}
		closed := a.closed
		a.mu.Unlock()
		if closed {
			return nil
		}
		<-a.more
	}
}

// acknowledge settles the messages sent, in order: each counts only once
// every one before it is in the log, and from the first that cannot be
// settled on every one fails with it at once (the ledger drops every batch
// from the first refused one on).
func (a *appender) acknowledge() {
	for s := a.next(); s != nil; s = a.next() {
		if a.failed == nil {
			a.failed = a.settle(s)
		}
		s.err = a.failed
		close(s.done)
	}
}

// ackWait is how long a message of the log waits for its acknowledgement
// before it is sent again.
func (a *appender) ackWait() time.Duration { return a.n.opts.LeaseTTL / 3 }

// settle waits until the log holds message s at its place (nil), sending
// it again while it is neither acknowledged nor refused for another
// writer's message; or returns why not.
func (a *appender) settle(s *sent) error {
	deadline := s.at.Add(2 * a.n.opts.LeaseTTL)
	// Every send's answer counts, the first one's too: a copy is sent when
	// an answer is late, not lost, and the late one may still come.
	answers := make(chan pubAnswer, 1)
	stop := make(chan struct{})
	defer close(stop)
	watch := func(f jetstream.PubAckFuture) {
		if f == nil {
			return // not sent: as if lost
		}
		go func() {
			var ans pubAnswer
			select {
			case ans.ack = <-f.Ok():
			case ans.err = <-f.Err():
			case <-stop:
				return
			}
			select {
			case answers <- ans:
			case <-stop:
			}
		}()
	}
	watch(s.fut)
	sends, sentAt := 1, s.at
	t := time.NewTimer(a.ackWait())
	defer t.Stop()
	for {
		t.Reset(min(a.ackWait(), max(time.Until(deadline), time.Millisecond)))
		select {
		case ans := <-answers:
			if ans.ack != nil {
				if ans.ack.Sequence != s.pos {
					return fmt.Errorf("log message %s acknowledged at stream sequence %d, want %d", s.m.Header.Get(jetstream.MsgIDHeader), ans.ack.Sequence, s.pos)
				}
				if sends > 1 {
					a.n.log.Info().Uint64("stream_seq", s.pos).Int("sends", sends).Bool("duplicate", ans.ack.Duplicate).
						Msg("a log message sent again was acknowledged")
				}
				a.saw(s.pos)
				return nil
			}
			if wrongLastSequence(ans.err) {
				// Refused: is another writer's message in its place, or
				// this one (a copy's refusal: a single server checks the
				// sequence before the duplicate), or none yet?
				landed, known := a.verify(s, deadline)
				switch {
				case known && landed:
					a.saw(s.pos)
					return nil
				case known:
					return ans.err
				}
			}
		case <-t.C:
		}
		if !time.Now().Before(deadline) {
			return fmt.Errorf("no acknowledgement from the log within %v", 2*a.n.opts.LeaseTTL)
		}
		if a.isClosed() {
			return errors.New("the term ended while a log message was unacknowledged")
		}
		// An answer that came at once (no responders: the group has no
		// Raft leader yet) is not asked again at once.
		if d := a.ackWait()/10 - time.Since(sentAt); d > 0 {
			time.Sleep(d)
		}
		a.mu.Lock()
		f, _ := a.n.js.PublishMsgAsync(s.m)
		a.mu.Unlock()
		watch(f)
		sends, sentAt = sends+1, time.Now()
	}
}

// pubAnswer is the answer to one send of a log message.
type pubAnswer struct {
	ack *jetstream.PubAck
	err error
}

// verify reads the log at message s's place after a refusal: landed if it
// is s there, known false if nothing is there yet (or the log could not
// be read): the refusal came of a message before s lost in flight.
func (a *appender) verify(s *sent, deadline time.Time) (landed, known bool) {
	ctx, cancel := context.WithDeadline(context.Background(), deadline)
	defer cancel()
	stream := a.n.stream
	if stream == nil {
		var err error
		if stream, err = a.n.js.Stream(ctx, LogStream); err != nil {
			return false, false
		}
	}
	info, err := stream.Info(ctx)
	if err != nil || info.State.LastSeq < s.pos {
		return false, false
	}
	m, err := getMsg(ctx, stream, s.pos)
	if err != nil {
		return false, false
	}
	return m.Header.Get(jetstream.MsgIDHeader) == s.m.Header.Get(jetstream.MsgIDHeader), true
}

// logMsg is part i (from 0) of parts of record seq, rec, sent by the
// leader of term to the log's place pos: it is refused unless it follows
// the log's message pos-1, and its id names the term and the place.
func logMsg(seq uint64, rec []byte, i, parts, partSize int, term, pos uint64) *nats.Msg {
	m := nats.NewMsg(LogSubject)
	m.Data = rec[i*partSize : min(len(rec), (i+1)*partSize)]
	m.Header.Set(hdrSeq, strconv.FormatUint(seq, 10))
	m.Header.Set(hdrPart, strconv.Itoa(i+1))
	m.Header.Set(hdrParts, strconv.Itoa(parts))
	m.Header.Set(jetstream.ExpectedLastSeqHeader, strconv.FormatUint(pos-1, 10))
	m.Header.Set(jetstream.ExpectedStreamHeader, LogStream)
	m.Header.Set(jetstream.MsgIDHeader, msgID(term, pos))
	return m
}

// msgID is the id of the log message of term at place pos.
func msgID(term, pos uint64) string { return fmt.Sprintf("%016x.%d", term, pos) }

// wrongLastSequence reports whether err is the log's refusal of a message
// whose expected last sequence is not the stream's.
func wrongLastSequence(err error) bool {
	var apiErr *jetstream.APIError
	return errors.As(err, &apiErr) &&
		(apiErr.ErrorCode == jetstream.JSErrCodeStreamWrongLastSequence || apiErr.ErrorCode == jetstream.JSErrCodeStreamWrongLastSequenceConstant)
}

// newTerm names a leader's term (ledger.Chain): random, so that no two
// terms of any node share one.
func newTerm() uint64 {
	for {
		var b [8]byte
		_, _ = rand.Read(b[:])
		if t := binary.BigEndian.Uint64(b[:]); t != 0 {
			return t
		}
	}
}

// Term implements ledger.Chain.
func (a *appender) Term() uint64 { return a.term }

// Next implements ledger.Chain.
func (a *appender) Next() uint64 {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.last + 1
}

// Span implements ledger.Chain: the messages Append sends for a record of
// size bytes.
func (a *appender) Span(size int) uint64 { return uint64(span(size, a.n.opts.PartSize)) }

// span is how many log messages of partSize bytes a record of size takes.
func span(size, partSize int) int { return max(1, (size+partSize-1)/partSize) }

// Append implements ledger.Log.
func (a *appender) Append(seq uint64, rec []byte) func() error {
	a.started.Do(func() {
		a.more = make(chan struct{}, 1)
		go a.acknowledge()
	})
	a.mu.Lock()
	n := a.n
	size := n.opts.PartSize
	parts := int(a.Span(len(rec)))
	mine := make([]*sent, 0, parts)
	for i := range parts {
		m := logMsg(seq, rec, i, parts, size, a.term, a.last+1)
		s := &sent{m: m, pos: a.last + 1, at: time.Now(), done: make(chan struct{})}
		// A message that could not be sent (nil fut) is sent again by the
		// acknowledger, as a lost one is.
		s.fut, _ = n.js.PublishMsgAsync(m)
		a.last++
		a.queue = append(a.queue, s)
		mine = append(mine, s)
	}
	a.mu.Unlock()
	a.wake()
	return func() error {
		for _, s := range mine {
			<-s.done
			if s.err != nil {
				return s.err
			}
		}
		return nil
	}
}

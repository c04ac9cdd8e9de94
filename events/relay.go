package events

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net/url"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/rs/zerolog"

	"github.com/quotaledger/quotaledger/ledger"
)

// RelayOptions configure a Relay. Zero fields take the defaults of
// withDefaults.
type RelayOptions struct {
	// URL is the NATS server, e.g. Server.ClientURL(). Required unless
	// InProcess is set.
	URL string
	// InProcess, when set, is a NATS server in this process (the embedded
	// *Server) that the relay connects to directly, through a pipe rather
	// than loopback TCP: no socket, no system call per publish. URL is then
	// only named in the log.
	InProcess nats.InProcessConnProvider
	// Credentials for an external server: a token, a user and password, or
	// a credentials file (JWT and nkey seed). Empty ones are not sent.
	Token, User, Password, CredsFile string
	// TLS, when set, makes the connection TLS with this configuration (the
	// CA the server's certificate is checked against, a client
	// certificate); a tls:// URL without it checks the server against the
	// system's roots.
	TLS *tls.Config
	// Stream is the JetStream stream (StreamName).
	Stream string
	// DuplicateWindow is how long the stream remembers message ids to drop
	// a republish (2m). With MaxAge set it must not exceed MaxAge.
	DuplicateWindow time.Duration
	// MaxAge is how long the stream keeps events; 0 keeps them forever.
	MaxAge time.Duration
	// Replicas is how many copies of the stream a NATS cluster keeps (1
	// if 0): a quotaledger cluster's relay asks for as many as its log has.
	Replicas int
	// MaxInFlight caps the publishes waiting for their ack (256).
	MaxInFlight int
	// Batch is how many outbox entries are read at a time (1024).
	Batch int
	// MaxBackoff caps the wait between attempts while NATS is away (2s).
	MaxBackoff time.Duration
	// DeleteDelay keeps acknowledged events in the outbox this long before
	// deleting them; 0 deletes them on the ack, which is safe only if the
	// server syncs before it acknowledges (ServerOptions.SyncAlways). With a
	// server that syncs every SyncInterval, a DeleteDelay above it keeps
	// every event the stream may still lose: after a reconnect or a restart
	// the relay republishes the kept events, and the duplicate window (which
	// must be at least twice DeleteDelay) drops those the stream has.
	DeleteDelay time.Duration
	// Now is the clock of DeleteDelay (time.Now unless set): it stamps each
	// acknowledgement and decides when an acknowledged event may leave the
	// outbox. The relay's pacing (the outbox poll, the backoff, the ack,
	// connect and settle timeouts, the interval between deletes) keeps real
	// time.
	Now    func() time.Time
	Logger zerolog.Logger
}

const (
	defaultDuplicateWindow = 2 * time.Minute
	defaultMaxInFlight     = 256
	defaultBatch           = 1024
	defaultMaxBackoff      = 2 * time.Second

	minBackoff     = 20 * time.Millisecond
	pollInterval   = 10 * time.Millisecond // outbox poll while idle (Notify wakes it sooner)
	deleteInterval = 20 * time.Millisecond // at most one outbox delete (a synced write) per interval while busy
	ackTimeout     = 5 * time.Second       // a publish not acked by then is republished
	connectTimeout = 2 * time.Second
	settleTimeout  = 2 * time.Second // on stop, how long to wait for the acks in flight
)

func (o RelayOptions) withDefaults() RelayOptions {
	if o.Stream == "" {
		o.Stream = StreamName
	}
	if o.DuplicateWindow == 0 {
		o.DuplicateWindow = defaultDuplicateWindow
	}
	if o.MaxInFlight == 0 {
		o.MaxInFlight = defaultMaxInFlight
	}
	if o.Batch == 0 {
		o.Batch = defaultBatch
	}
	if o.MaxBackoff == 0 {
		o.MaxBackoff = defaultMaxBackoff
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	return o
}

// Validate reports the first option that cannot work (after the defaults).
func (o RelayOptions) Validate() error {
	o = o.withDefaults()
	switch {
	case o.URL == "" && o.InProcess == nil:
		return errors.New("events: relay: URL (or InProcess) is required")
	case o.DuplicateWindow < 0 || o.MaxAge < 0 || o.MaxBackoff < 0 || o.DeleteDelay < 0:
		return errors.New("events: relay: durations must not be negative")
	case o.DeleteDelay > o.DuplicateWindow/2:
		return fmt.Errorf("events: relay: delete delay %s exceeds half the duplicate window %s", o.DeleteDelay, o.DuplicateWindow)
	case o.MaxAge > 0 && o.DuplicateWindow > o.MaxAge:
		return fmt.Errorf("events: relay: duplicate window %s exceeds the stream's max age %s", o.DuplicateWindow, o.MaxAge)
	case o.Replicas < 0:
		return errors.New("events: relay: Replicas must not be negative")
	case o.MaxInFlight < 0 || o.Batch < 0:
		return errors.New("events: relay: MaxInFlight and Batch must be positive")
	}
	return nil
}

// Relay publishes the ledger's outbox to JetStream: every event once, in
// order, deleted from the outbox only after its publish ack. Run does the
// work; the other methods are safe to call from any goroutine.
type Relay struct {
	l      *ledger.Ledger
	opts   RelayOptions
	dbID   string
	log    zerolog.Logger
	notify chan struct{}

	running    atomic.Bool
	connected  atomic.Bool
	published  atomic.Uint64
	duplicates atomic.Uint64

	// Run's own state.
	acked      uint64    // every outbox event up to it is acknowledged
	deleted    uint64    // the outbox is deleted up to it
	lastDelete time.Time // real time, for deleteInterval
	ackMarks   []ackMark // with DeleteDelay: when acked reached each value (opts.Now)
	// skipDelete leaves the outbox as it is: tests use it to stand for a
	// crash between the publish ack and the outbox delete.
	skipDelete bool
	// mangle, test-only, sees each message before its publish (seq is its
	// outbox sequence): tests use it to lose a publish in flight, rewriting
	// its subject to one outside the stream, which no stream acknowledges.
	mangle func(seq uint64, m *nats.Msg)
}

// NewRelay returns a relay of l's outbox. Call Run to start it.
func NewRelay(l *ledger.Ledger, opts RelayOptions) *Relay {
	opts = opts.withDefaults()
	return &Relay{
		l:      l,
		opts:   opts,
		dbID:   l.ID(),
		log:    opts.Logger,
		notify: make(chan struct{}, 1),
	}
}

// Notify tells the relay that new events may be in the outbox (call it
// after a commit); without it the relay finds them within 10ms. It never
// blocks.
func (r *Relay) Notify() {
	select {
	case r.notify <- struct{}{}:
	default:
	}
}

// Connected reports whether the relay is connected to NATS with its stream
// in place.
func (r *Relay) Connected() bool { return r.connected.Load() }

// Published returns the number of events acknowledged by JetStream since
// the relay started (republished duplicates included).
func (r *Relay) Published() uint64 { return r.published.Load() }

// Run connects to NATS, creates or updates the stream, and publishes the
// outbox until ctx is done, then returns nil. While NATS is away it retries
// with a capped exponential backoff, keeping every event in the outbox; a
// failed publish is retried from the first event not yet acknowledged, with
// the same ids, so the stream's duplicate window drops what it already has.
// Run returns an error only for invalid options, a second concurrent Run, or
// a closed ledger (ledger.ErrClosed).
func (r *Relay) Run(ctx context.Context) error {
	if r.l == nil {
		return errors.New("events: relay: no ledger")
	}
	if err := r.opts.Validate(); err != nil {
		return err
	}
	if !r.running.CompareAndSwap(false, true) {
		return errors.New("events: relay: already running")
	}
	defer r.running.Store(false)

	backoff, failures := minBackoff, 0
	for {
		connected, err := r.session(ctx)
		if derr := r.deleteAcked(true); err == nil {
			err = derr
		}
		if errors.Is(err, ledger.ErrClosed) {
			return err
		}
		if ctx.Err() != nil {
			return nil
		}
		if connected {
			backoff, failures = minBackoff, 0
		}
		failures++
		ev := r.log.Debug()
		if failures == 1 {
			ev = r.log.Warn()
		}
		msg := "event relay: NATS unavailable, events wait in the outbox"
		if errors.Is(err, ledger.ErrFailed) {
			// Published events cannot leave the outbox until the restart;
			// they are published again then, and the stream drops them.
			msg = "event relay: the ledger's storage failed, acknowledged events stay in the outbox"
		}
		ev.Err(err).Str("url", redactURL(r.opts.URL)).Int("attempt", failures).Dur("retry_in", backoff).Msg(msg)
		t := time.NewTimer(backoff)
		select {
		case <-ctx.Done():
			t.Stop()
			return nil
		case <-t.C:
		}
		backoff = min(2*backoff, r.opts.MaxBackoff)
	}
}

var errConnClosed = errors.New("events: relay: connection closed")

// redactURL hides the credentials of a NATS URL (or a comma-separated list
// of them) for the log.
func redactURL(s string) string {
	parts := strings.Split(s, ",")
	for i, p := range parts {
		if u, err := url.Parse(strings.TrimSpace(p)); err == nil && u.User != nil {
			u.User = url.User("REDACTED")
			parts[i] = u.String()
		}
	}
	return strings.Join(parts, ",")
}

// session runs one connection: it returns when the connection fails (or
// ctx is done), reporting whether the stream was reached.
func (r *Relay) session(ctx context.Context) (connected bool, err error) {
	closed := make(chan struct{})
	opts := []nats.Option{
		nats.Name("quotaledger event relay"),
		nats.NoReconnect(), // Run reconnects, resuming from the outbox
		nats.Timeout(connectTimeout),
		nats.ClosedHandler(func(*nats.Conn) { close(closed) }),
		nats.ErrorHandler(func(_ *nats.Conn, _ *nats.Subscription, err error) {
			r.log.Warn().Err(err).Msg("event relay: NATS error")
		}),
	}
	if r.opts.Token != "" {
		opts = append(opts, nats.Token(r.opts.Token))
	}
	if r.opts.User != "" || r.opts.Password != "" {
		opts = append(opts, nats.UserInfo(r.opts.User, r.opts.Password))
	}
	if r.opts.CredsFile != "" {
		opts = append(opts, nats.UserCredentials(r.opts.CredsFile))
	}
	if r.opts.InProcess != nil {
		opts = append(opts, nats.InProcessServer(r.opts.InProcess))
	}
	if r.opts.TLS != nil {
		opts = append(opts, nats.Secure(r.opts.TLS))
	}
	nc, err := nats.Connect(r.opts.URL, opts...)
	if err != nil {
		return false, fmt.Errorf("events: relay: connect: %w", err)
	}
	defer nc.Close()

	js, err := jetstream.New(nc,
		jetstream.WithPublishAsyncMaxPending(r.opts.MaxInFlight),
		jetstream.WithPublishAsyncTimeout(ackTimeout))
	if err != nil {
		return false, fmt.Errorf("events: relay: %w", err)
	}
	sctx, cancel := context.WithTimeout(ctx, connectTimeout)
	_, err = js.CreateOrUpdateStream(sctx, jetstream.StreamConfig{
		Name:        r.opts.Stream,
		Description: "quotaledger events (DESIGN.md §4)",
		Subjects:    Subjects,
		Storage:     jetstream.FileStorage,
		Retention:   jetstream.LimitsPolicy,
		Duplicates:  r.opts.DuplicateWindow,
		MaxAge:      r.opts.MaxAge,
		Replicas:    r.opts.Replicas,
	})
	cancel()
	if err != nil {
		return false, fmt.Errorf("events: relay: stream %s: %w", r.opts.Stream, err)
	}
	// The stream's last message: the events up to it are in the stream, so
	// their republish (kept by DeleteDelay) need not be fenced (pump).
	sctx, cancel = context.WithTimeout(ctx, connectTimeout)
	held, heldAt, err := lastPublished(sctx, js, r.opts.Stream, r.dbID)
	cancel()
	if err != nil {
		return false, fmt.Errorf("events: relay: %w", err)
	}
	r.connected.Store(true)
	defer r.connected.Store(false)
	keeps := "forever"
	if r.opts.MaxAge > 0 {
		keeps = r.opts.MaxAge.String()
	}
	r.log.Info().Str("url", nc.ConnectedUrlRedacted()).Str("stream", r.opts.Stream).Str("stream_max_age", keeps).
		Msg("event relay connected")
	return true, r.pump(ctx, js, closed, held, heldAt)
}

type ackMark struct {
	seq uint64
	at  time.Time
}

type inflight struct {
	seq    uint64 // outbox sequence
	expect uint64 // the stream sequence it was published behind (0: unfenced)
	fut    jetstream.PubAckFuture
}

// pump publishes the outbox in order, at most MaxInFlight unacknowledged,
// and deletes what is acknowledged. It returns on the first failure; the
// next session starts again with the first event still in the outbox, so
// that events kept by DeleteDelay reach a server that lost them.
//
// The stream must stay the outbox in order even when a publish is lost in
// flight (a Raft proposal dropped, a message the stream's leader never saw)
// while later ones are stored: with only its Nats-Msg-Id, the lost event
// would be republished by the next session after them. So each session
// fences its new events: every publish of an event the stream does not hold
// yet carries Nats-Expected-Last-Sequence, the stream sequence of the event
// before it (S, S+1, ...), so that a publish behind a lost one is refused by
// the server (wrong last sequence); the session ends at the lost one's error
// and the next one republishes from it, in order.
//
// S comes from the stream. The session starts by reading the stream's last
// message (held, at stream sequence heldAt): the events up to held are in
// the stream, and their republish (the events DeleteDelay keeps) is
// pipelined without a fence, each one dropped as a duplicate; the first
// event after held expects heldAt. When the stream's last message is not an
// event of this database (or there is none), the session publishes one
// event at a time, without a fence, until the first ack that is not a
// duplicate: the stream holds the outbox in order, so once one event is new
// every later one is new, and that ack's sequence is S. The README's
// "Exactly once, across crashes" says why the fence holds on a clustered
// stream, and with two relays publishing at once.
func (r *Relay) pump(ctx context.Context, js jetstream.JetStream, closed <-chan struct{}, held, heldAt uint64) error {
	var (
		win  []inflight     // published, not yet acknowledged, in outbox order
		buf  []ledger.Event // read, not yet published
		last = r.deleted    // the last outbox sequence read
		idle = time.NewTimer(pollInterval)
		// fence is the stream sequence the next publish expects to be the
		// last; 0 until known (the first event after held, or the first new
		// ack when held is 0).
		fence uint64
	)
	defer idle.Stop()
	ack := func(a *jetstream.PubAck) error {
		f := win[0]
		if f.expect != 0 && a.Sequence != f.expect+1 {
			// The server checked the expected last sequence (or found a
			// duplicate, which an in-order stream holds at that place):
			// anything else breaks the order; the next session starts over.
			return fmt.Errorf("events: relay: event %d acknowledged at stream sequence %d, want %d",
				f.seq, a.Sequence, f.expect+1)
		}
		r.advance(f.seq)
		win = win[1:]
		r.published.Add(1)
		if a.Duplicate {
			r.duplicates.Add(1)
		} else if fence == 0 && held == 0 {
			fence = a.Sequence
		}
		return nil
	}
	maxInFlight := func() int {
		if fence == 0 && held == 0 {
			return 1 // one at a time until the first new ack
		}
		return r.opts.MaxInFlight
	}
	for {
		if ctx.Err() != nil {
			r.settle(win, closed)
			return ctx.Err()
		}
		if len(buf) == 0 && len(win) < maxInFlight() {
			evs, err := r.l.Outbox(last, r.opts.Batch)
			if err != nil {
				return fmt.Errorf("events: relay: reading the outbox: %w", err)
			}
			buf = evs
		}
		for len(buf) > 0 && len(win) < maxInFlight() {
			subject, id, data := Render(r.dbID, buf[0])
			m := &nats.Msg{
				Subject: subject,
				Header:  nats.Header{jetstream.MsgIDHeader: []string{id}},
				Data:    data,
			}
			if fence == 0 && held != 0 && buf[0].Seq > held {
				fence = heldAt
			}
			if fence != 0 {
				m.Header[jetstream.ExpectedLastSeqHeader] = []string{strconv.FormatUint(fence, 10)}
			}
			if r.mangle != nil {
				r.mangle(buf[0].Seq, m)
			}
			fut, err := js.PublishMsgAsync(m)
			if err != nil {
				return fmt.Errorf("events: relay: publishing %s: %w", id, err)
			}
			win = append(win, inflight{seq: buf[0].Seq, expect: fence, fut: fut})
			if fence != 0 {
				fence++
			}
			last = buf[0].Seq
			buf = buf[1:]
		}

		if len(win) == 0 {
			if err := r.deleteAcked(true); err != nil {
				return err
			}
			idle.Reset(pollInterval)
			select {
			case <-ctx.Done():
			case <-closed:
				return errConnClosed
			case <-r.notify:
			case <-idle.C:
			}
			continue
		}

		select {
		case <-ctx.Done():
			continue
		case <-closed:
			return errConnClosed
		case a := <-win[0].fut.Ok():
			if err := ack(a); err != nil {
				return err
			}
		case err := <-win[0].fut.Err():
			return fmt.Errorf("events: relay: publish of event %d: %w", win[0].seq, err)
		}
	more:
		for len(win) > 0 {
			select {
			case a := <-win[0].fut.Ok():
				if err := ack(a); err != nil {
					return err
				}
			case err := <-win[0].fut.Err():
				return fmt.Errorf("events: relay: publish of event %d: %w", win[0].seq, err)
			default:
				break more
			}
		}
		if err := r.deleteAcked(len(win) == 0 && len(buf) == 0); err != nil {
			return err
		}
	}
}

// settle waits a little for the acks in flight when the relay stops, so
// that a clean stop leaves little to republish.
func (r *Relay) settle(win []inflight, closed <-chan struct{}) {
	t := time.NewTimer(settleTimeout)
	defer t.Stop()
	for _, f := range win {
		select {
		case a := <-f.fut.Ok():
			r.advance(f.seq)
			r.published.Add(1)
			if a.Duplicate {
				r.duplicates.Add(1)
			}
		case <-f.fut.Err():
			return
		case <-closed:
			return
		case <-t.C:
			return
		}
	}
}

// advance records the ack of seq, whose predecessors are all acknowledged
// (a republish may ack an event already acknowledged).
func (r *Relay) advance(seq uint64) {
	if seq <= r.acked {
		return
	}
	r.acked = seq
	if r.opts.DeleteDelay > 0 {
		now := r.opts.Now()
		if n := len(r.ackMarks); n > 0 && now.Sub(r.ackMarks[n-1].at) < time.Millisecond {
			r.ackMarks[n-1].seq = seq // one mark per millisecond is precise enough
		} else {
			r.ackMarks = append(r.ackMarks, ackMark{seq: seq, at: now})
		}
	}
}

// deletable returns the sequence the outbox may be deleted up to.
func (r *Relay) deletable() uint64 {
	if r.opts.DeleteDelay <= 0 {
		return r.acked
	}
	cutoff := r.opts.Now().Add(-r.opts.DeleteDelay)
	i := 0
	for i < len(r.ackMarks) && !r.ackMarks[i].at.After(cutoff) {
		i++
	}
	if i == 0 {
		return r.deleted
	}
	seq := r.ackMarks[i-1].seq
	r.ackMarks = append(r.ackMarks[:0], r.ackMarks[i:]...)
	return max(seq, r.deleted)
}

// deleteAcked deletes the acknowledged events (older than DeleteDelay) from
// the outbox: always if force, else at most once per deleteInterval (each
// delete is a synced write) unless a whole batch is waiting.
func (r *Relay) deleteAcked(force bool) error {
	if r.skipDelete || r.acked <= r.deleted {
		return nil
	}
	if !force && time.Since(r.lastDelete) < deleteInterval &&
		(r.opts.DeleteDelay > 0 || r.acked-r.deleted < uint64(r.opts.Batch)) {
		return nil
	}
	seq := r.deletable()
	if seq <= r.deleted {
		return nil
	}
	if err := r.l.DeleteOutbox(seq); err != nil {
		return fmt.Errorf("events: relay: deleting the outbox up to %d: %w", seq, err)
	}
	r.deleted, r.lastDelete = seq, time.Now()
	return nil
}

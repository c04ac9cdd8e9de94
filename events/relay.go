package events

import (
	"bytes"
	"cmp"
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"slices"
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

	js, err := jetstream.New(nc)
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
	r.connected.Store(true)
	defer r.connected.Store(false)
	keeps := "forever"
	if r.opts.MaxAge > 0 {
		keeps = r.opts.MaxAge.String()
	}
	r.log.Info().Str("url", nc.ConnectedUrlRedacted()).Str("stream", r.opts.Stream).Str("stream_max_age", keeps).
		Msg("event relay connected")
	// The publish acks come to an inbox of the relay's own, one reply
	// subject per event (the inbox, then the outbox sequence), straight
	// into acks: no future, timer or map entry per publish as jetstream's
	// PublishMsgAsync makes. acks has room for every ack in flight (a full
	// channel would drop one: its publish then times out, and the session
	// starts again).
	inbox := nc.NewInbox() + "."
	acks := make(chan *nats.Msg, r.opts.MaxInFlight+16)
	sub, err := nc.ChanSubscribe(inbox+"*", acks)
	if err != nil {
		return true, fmt.Errorf("events: relay: subscribing to the acks: %w", err)
	}
	defer func() { _ = sub.Unsubscribe() }()
	return true, r.pump(ctx, nc, inbox, acks, closed)
}

type ackMark struct {
	seq uint64
	at  time.Time
}

type inflight struct {
	seq  uint64
	sent time.Time // for ackTimeout
	// acked: its ack came (before an earlier event's); dup: it said
	// duplicate.
	acked, dup bool
}

// pubAck is a JetStream publish ack, or its error.
type pubAck struct {
	Stream    string `json:"stream"`
	Duplicate bool   `json:"duplicate"`
	Error     *struct {
		Code        int    `json:"code"`
		ErrCode     int    `json:"err_code"`
		Description string `json:"description"`
	} `json:"error"`
}

// parseAck reads the ack m of a publish: whether it says duplicate, or
// the error it is (a JetStream error; no responders: no stream took the
// publish). The common ack, {"stream":...,"seq":...} and nothing said of
// a duplicate or an error, is taken as it is; any other goes through
// encoding/json.
func parseAck(m *nats.Msg) (dup bool, err error) {
	d := m.Data
	if len(d) == 0 {
		if m.Header.Get("Status") == "503" {
			return false, jetstream.ErrNoStreamResponse
		}
		return false, jetstream.ErrInvalidJSAck
	}
	if bytes.HasPrefix(d, []byte(`{"stream":"`)) && d[len(d)-1] == '}' &&
		!bytes.Contains(d, []byte(`"error"`)) && !bytes.Contains(d, []byte(`"duplicate"`)) {
		return false, nil // the common ack, read without decoding it
	}
	var a pubAck
	if err := json.Unmarshal(d, &a); err != nil {
		return false, jetstream.ErrInvalidJSAck
	}
	if a.Error != nil {
		return false, fmt.Errorf("nats: API error: code=%d err_code=%d description=%s", a.Error.Code, a.Error.ErrCode, a.Error.Description)
	}
	if a.Stream == "" {
		return false, jetstream.ErrInvalidJSAck
	}
	return a.Duplicate, nil
}

// pump publishes the outbox in order, at most MaxInFlight unacknowledged,
// and deletes what is acknowledged. It returns on the first failure (a
// publish refused, or not acknowledged within ackTimeout); the next session
// starts again with the first event still in the outbox, so that events
// kept by DeleteDelay reach a server that lost them.
func (r *Relay) pump(ctx context.Context, nc *nats.Conn, inbox string, acks <-chan *nats.Msg, closed <-chan struct{}) error {
	var (
		win   []inflight     // published, not yet acknowledged, in outbox order
		buf   []ledger.Event // read, not yet published
		last  = r.deleted    // the last outbox sequence read
		idle  = time.NewTimer(pollInterval)
		reply []byte
	)
	defer idle.Stop()
	late := time.NewTimer(ackTimeout)
	defer late.Stop()
	// take records the ack m and acknowledges the front of the window as
	// far as it is acknowledged.
	take := func(m *nats.Msg) error {
		seq, perr := strconv.ParseUint(m.Subject[min(len(inbox), len(m.Subject)):], 10, 64)
		i, found := slices.BinarySearchFunc(win, seq, func(f inflight, seq uint64) int { return cmp.Compare(f.seq, seq) })
		if perr != nil || !found {
			return nil // not in flight (an ack of an earlier session's publish cannot reach this inbox)
		}
		dup, err := parseAck(m)
		if err != nil {
			return fmt.Errorf("events: relay: publish of event %d: %w", seq, err)
		}
		win[i].acked, win[i].dup = true, dup
		for len(win) > 0 && win[0].acked {
			r.advance(win[0].seq)
			r.published.Add(1)
			if win[0].dup {
				r.duplicates.Add(1)
			}
			win = win[1:]
		}
		return nil
	}
	for {
		if ctx.Err() != nil {
			r.settle(&win, acks, take, closed)
			return ctx.Err()
		}
		if len(buf) == 0 && len(win) < r.opts.MaxInFlight {
			evs, err := r.l.Outbox(last, r.opts.Batch)
			if err != nil {
				return fmt.Errorf("events: relay: reading the outbox: %w", err)
			}
			buf = evs
		}
		if len(buf) > 0 && len(win) < r.opts.MaxInFlight {
			now := time.Now()
			for len(buf) > 0 && len(win) < r.opts.MaxInFlight {
				subject, id, data := Render(r.dbID, buf[0])
				reply = strconv.AppendUint(append(reply[:0], inbox...), buf[0].Seq, 10)
				err := nc.PublishMsg(&nats.Msg{
					Subject: subject,
					Reply:   string(reply),
					Header:  nats.Header{jetstream.MsgIDHeader: []string{id}},
					Data:    data,
				})
				if err != nil {
					return fmt.Errorf("events: relay: publishing %s: %w", id, err)
				}
				win = append(win, inflight{seq: buf[0].Seq, sent: now})
				last = buf[0].Seq
				buf = buf[1:]
			}
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

		late.Reset(time.Until(win[0].sent.Add(ackTimeout)))
		select {
		case <-ctx.Done():
			continue
		case <-closed:
			return errConnClosed
		case m := <-acks:
			if err := take(m); err != nil {
				return err
			}
		case <-late.C:
			return fmt.Errorf("events: relay: publish of event %d: %w", win[0].seq, jetstream.ErrAsyncPublishTimeout)
		}
	more:
		for len(win) > 0 {
			select {
			case m := <-acks:
				if err := take(m); err != nil {
					return err
				}
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
func (r *Relay) settle(win *[]inflight, acks <-chan *nats.Msg, take func(*nats.Msg) error, closed <-chan struct{}) {
	t := time.NewTimer(settleTimeout)
	defer t.Stop()
	for len(*win) > 0 {
		select {
		case m := <-acks:
			if take(m) != nil {
				return
			}
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

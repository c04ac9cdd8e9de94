// Package ledger is the engine of quotaledger: it owns the Pebble database,
// keeps holdings and pending commissions in memory, and applies every change
// through one writer goroutine that commits whole batches of requests with a
// single synced WAL write (group commit). A call returns only once its batch
// is durable, and readers see only durable state.
package ledger

import (
	"context"
	"crypto/rand"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/cockroachdb/pebble/v2"
	"github.com/rs/zerolog"

	"github.com/quotaledger/quotaledger/commission"
	"github.com/quotaledger/quotaledger/failure"
)

// Errors of the ledger: each has a failure code (in parentheses), and each
// is returned as is or wrapped, so test for it with errors.Is. A malformed
// request is refused with a failure.Invalid error that says what is wrong
// (no sentinel: failure.CodeOf tells the kind). Domain errors of issue come
// from the holdings package (*holdings.NoHoldingError,
// *holdings.NoCapacityError, *holdings.NoQuantityError, holdings.ErrOverflow).
var (
	// ErrClosed is returned by calls on a closed ledger (Unavailable).
	ErrClosed = failure.New(failure.Unavailable, "the ledger is closed")
	// ErrNotFound is returned for a commission that is not pending for the
	// calling client, whether it never existed, is resolved, or is another
	// client's (NotFound). What is returned wraps it and names the serial.
	ErrNotFound = failure.New(failure.NotFound, "no such pending commission")
	// ErrIdempotencyConflict is returned when an idempotency key comes back
	// with a different request than the one first issued under it
	// (Conflict).
	ErrIdempotencyConflict = failure.New(failure.Conflict, "idempotency key reused with a different request")
	// ErrHoldingInUse is returned when deleting a holding that a pending
	// commission touches (Conflict). What is returned wraps it and names
	// the holding and the commission.
	ErrHoldingInUse = failure.New(failure.Conflict, "holding has pending commissions")
	// ErrNoSpace is returned for writes while the disk is below the
	// free-space floor (Unavailable). Reads go on.
	ErrNoSpace = failure.New(failure.Unavailable, "free disk space below the floor, writes refused")
	// ErrFailed is returned for every write once a commit of the ledger
	// failed (a WAL write or sync): the database cannot take writes until
	// it is reopened, which rebuilds memory from disk (Unavailable). Reads
	// go on from the last durable state. A call refused with ErrFailed left
	// no trace.
	ErrFailed = failure.New(failure.Unavailable, "storage failed, writes refused until restart")
	// ErrWrongID is returned by Open when the database's id is not
	// Options.ID.
	ErrWrongID = failure.New(failure.Conflict, "the database has another id")
	// ErrPastLog is returned by Open when the state holds records past the
	// cluster log's end (Options.KeepJournalTo) that the log could not be
	// given again: it lost them, and another node wrote in their places.
	// The node starts again from the cluster's checkpoint.
	ErrPastLog = failure.New(failure.Conflict, "the state holds records the cluster's log does not")
	// ErrOutcomeUnknown is returned (wrapping ErrFailed) to the calls whose
	// own batch was in flight when the commit failed (Unavailable). Their
	// WAL record may or may not have reached the disk, so after the restart
	// each is either wholly applied or absent: retry it with the same
	// idempotency key.
	ErrOutcomeUnknown = failure.Errorf(failure.Unavailable, "%w; the outcome of this call is unknown: retry it after the restart (an issue with the same idempotency key)", ErrFailed)
)

// Ledger is the engine. Its methods are safe for concurrent use.
type Ledger struct {
	opts Options
	log  zerolog.Logger
	// db is the state database: the checkpointed state, the provision log,
	// identity's records (no WAL of its own: the journal is replayed into
	// it). jdb is the journal database, whose synced WAL makes every batch
	// durable (journal.go).
	db    *pebble.DB
	jdb   *pebble.DB
	id    string
	reqs  chan *request
	quit  chan struct{}
	done  chan struct{}
	close sync.Once

	// dbMu lets readers of Pebble (log and outbox queries) see whether the
	// database is closed: Pebble panics on use after Close.
	dbMu     sync.RWMutex
	dbClosed bool

	// mu guards the published, durable state below: the writer changes it
	// only after a batch is committed, under the write lock.
	mu       sync.RWMutex
	table    table
	pending  map[uint64]*commission.Commission
	byClient map[string]map[uint64]struct{}
	// pubSeq and pubCtr are the journal record and the counters the state
	// under mu is as of.
	pubSeq uint64
	pubCtr counters

	// failed keeps the first commit error; once set, no batch reaches
	// Pebble again (Pebble panics on a write after a failed WAL write).
	failed atomic.Pointer[error]
	failMu sync.Mutex // serialises setFailed
	// stateFailC is closed, with stateErr, once a flush of the state
	// database failed (stateFailed).
	stateFailOnce sync.Once
	stateFailC    chan struct{}
	stateErr      error
	// failedC is closed when failed is set.
	failedC chan struct{}

	durableSeq       atomic.Uint64 // the last durable journal record
	durableOutboxSeq atomic.Uint64 // events after it are not yet durable
	lastSerial       atomic.Uint64 // the last durable serial
	batches          atomic.Uint64 // batches committed
	batchedCalls     atomic.Uint64 // calls in those batches

	// relayed is the last event the relay published (DeleteOutbox): the
	// outbox is what comes after it.
	relayed atomic.Uint64
	// jmu guards jidx, the journal records on disk with the events of each,
	// oldest first, for the outbox reads and the truncation of the journal.
	jmu    sync.Mutex
	jidx   []jentry
	jsince int // bytes of the records after the last checkpoint

	ap *applier
	// controls are functions to run on the writer goroutine (role.go);
	// leading mirrors the writer's role for readers; followHook is
	// OnFollow's function.
	controls   chan controlReq
	leading    atomic.Bool
	followHook atomic.Pointer[func([]RawRecord)]
	// indexedSeq is the last journal record the applier applied to the
	// state database; checkpointSeq, the last one checkpointed.
	indexedSeq    atomic.Uint64
	checkpointSeq atomic.Uint64
	// skipCheckpoints and skipCloseCheckpoint, in benchmarks, leave the
	// journal since the last checkpoint as a crash would.
	skipCheckpoints     atomic.Bool
	skipCloseCheckpoint bool
	// ckptMu keeps the journal from being truncated while a copy of the
	// databases is made (Checkpoint).
	ckptMu sync.Mutex

	w writer // owned by the writer goroutine
	m *metrics
}

// Open opens (creating if needed) the ledger in opts.Dir: it loads the last
// checkpoint of holdings, pending commissions and idempotency records into
// memory, replays the journal records written after it, and starts the
// writer and the applier. The ledger is ready when Open returns.
func Open(opts Options) (*Ledger, error) {
	opts = opts.withDefaults()
	if err := opts.Validate(); err != nil {
		return nil, err
	}
	l := &Ledger{
		opts:       opts,
		log:        opts.Logger.With().Str("component", "ledger").Logger(),
		reqs:       make(chan *request, 4*opts.MaxBatch),
		quit:       make(chan struct{}),
		done:       make(chan struct{}),
		failedC:    make(chan struct{}),
		pending:    make(map[uint64]*commission.Commission),
		byClient:   make(map[string]map[uint64]struct{}),
		stateFailC: make(chan struct{}),
		controls:   make(chan controlReq),
	}
	m, err := newMetrics(l, opts.Metrics)
	if err != nil {
		return nil, err
	}
	l.m = m
	start := time.Now()
	if err := opts.FS.MkdirAll(opts.Dir, 0o755); err != nil {
		return nil, fmt.Errorf("ledger: %w", err)
	}
	cache := pebble.NewCache(opts.CacheSize)
	defer cache.Unref()
	// The state database has no WAL: what it holds is derived from the
	// journal, which Open replays into it after a crash.
	db, err := pebble.Open(opts.Dir, l.pebbleOptions(cache, true))
	if err != nil {
		return nil, fmt.Errorf("ledger: open %s: %w", opts.Dir, err)
	}
	l.db = db
	// The journal's WAL is sized to the volume (Options.JournalMemTableSize):
	// on a small one the WAL files Pebble preallocates and recycles would
	// otherwise keep the disk under the free-space floor after it was
	// cleared.
	var volume uint64
	if u, err := opts.FS.GetDiskUsage(opts.Dir); err == nil {
		volume = u.TotalBytes
	}
	jopts := l.pebbleOptions(cache, false)
	jopts.MemTableSize = opts.journalMemTableSize(volume)
	jdb, err := pebble.Open(journalDir(opts.Dir), jopts)
	if err != nil {
		_ = db.Close()
		return nil, fmt.Errorf("ledger: open the journal: %w", err)
	}
	l.jdb = jdb
	replayed, err := l.load()
	if err != nil {
		_ = jdb.Close()
		_ = db.Close()
		return nil, err
	}
	l.log.Info().Str("dir", opts.Dir).Int("holdings", l.table.n).Int("pending", len(l.pending)).
		Int("replayed", replayed).Uint64("journal_memtable_bytes", jopts.MemTableSize).
		Dur("load_time", time.Since(start)).Msg("ledger open")
	if !opts.Follower {
		l.w.leading = true // a single node: the leader of itself, with no log
		l.w.deposed = make(chan struct{})
		l.leading.Store(true)
	}
	go l.ap.run()
	go l.run()
	// Reject what expired while the ledger was closed before anyone reads.
	// Below the free-space floor that has to wait for room (the writer's
	// deadline timer tries again); the ledger opens anyway, for reads.
	// (A follower leaves that to the leader: the writer's timer does it
	// once it leads.)
	if opts.Follower {
		return l, nil
	}
	if err := l.ExpireDue(context.Background()); err != nil && !errors.Is(err, ErrNoSpace) {
		_ = l.Close()
		return nil, err
	}
	return l, nil
}

// stateL0CompactionThreshold is the state database's L0 sublevels that
// start a compaction into the base level (Pebble's default is 4).
const stateL0CompactionThreshold = 8

// journalDir is the directory of the journal database, inside the state
// database's (Pebble leaves names it does not know alone).
func journalDir(dir string) string { return filepath.Join(dir, "journal") }

func (l *Ledger) pebbleOptions(cache *pebble.Cache, state bool) *pebble.Options {
	o := &pebble.Options{
		FS:                 l.opts.FS,
		Cache:              cache,
		FormatMajorVersion: pebble.FormatNewest,
		MemTableSize:       l.opts.MemTableSize,
		Logger:             pebbleLogger{l.log},
		DisableWAL:         state,
	}
	if state {
		// The state database takes a flush every checkpoint and every
		// log buffer's worth of entries (a few a second at full load),
		// each spread over the whole key space (holdings, log chunks,
		// resolved records), so every L0 compaction rewrites the part of
		// the base level it overlaps, which is most of it. Pebble's
		// default (compacting at 4 L0 sublevels) rewrote 2.7 bytes of the
		// base level per byte flushed; at 8 it is about 1 (docs/engine.md,
		// "Tried, and measured"). Its readers (Log, ScanForeign, Open) read
		// at most about 8 sublevels more; writes stall at 32 (default 12).
		o.L0CompactionThreshold = stateL0CompactionThreshold
		o.L0StopWritesThreshold = 4 * stateL0CompactionThreshold
		// The provision log's values (a holder's chunk of entries, a
		// block of resolved commissions: hundreds of bytes to tens of
		// kilobytes, written once and never changed) go to blob files
		// as they are flushed, so that compactions rewrite their keys
		// only: compactions took 15 % of the engine's CPU at full load,
		// 5 % with it (docs/engine.md). The checkpoint's small records
		// (holdings, pending commissions, idempotency records), which are
		// rewritten and deleted, stay in the tables.
		o.Experimental.ValueSeparationPolicy = func() pebble.ValueSeparationPolicy {
			return pebble.ValueSeparationPolicy{Enabled: true, MinimumSize: 256,
				MaxBlobReferenceDepth: 10, RewriteMinimumAge: 10 * time.Minute, TargetGarbageRatio: 0.2}
		}
		// A flush of the state database that fails is retried by Pebble
		// for ever, and Flush waits for it: the ledger learns of it here
		// (stateFlush).
		o.EventListener = &pebble.EventListener{FlushEnd: func(info pebble.FlushInfo) {
			// "empty table" is Pebble saying a flush wrote nothing (what
			// it held was deleted): not a failure (its own metamorphic
			// test matches the text too, the error is not exported).
			if info.Err != nil && !strings.Contains(info.Err.Error(), "pebble: empty table") {
				l.stateFailed(info.Err)
			}
		}}
	}
	return o
}

// stateFailed records the first failed flush of the state database: the
// ledger cannot checkpoint any more, so it takes no more writes (the
// journal would grow without bound), and it does not close that database
// (Pebble would wait for the flush for ever).
func (l *Ledger) stateFailed(err error) {
	l.stateFailOnce.Do(func() {
		l.stateErr = err
		close(l.stateFailC)
		l.setFailed(fmt.Errorf("ledger: the state database cannot flush: %w", err))
	})
}

// flushState flushes the state database, or fails once one of its flushes
// failed.
func (l *Ledger) flushState() error { return l.readDB(l.flushStateLocked) }

// flushStateLocked is flushState for a caller inside readDB.
func (l *Ledger) flushStateLocked() error {
	select {
	case <-l.stateFailC:
		return fmt.Errorf("ledger: the state database cannot flush: %w", l.stateErr)
	default:
	}
	done, err := l.db.AsyncFlush()
	if err != nil {
		return err
	}
	select {
	case <-done:
		return nil
	case <-l.stateFailC:
		return fmt.Errorf("ledger: the state database cannot flush: %w", l.stateErr)
	}
}

// Close stops the writer, answering queued requests with ErrClosed, lets
// the applier finish and checkpoint (so that the next Open replays
// nothing), and closes the databases. It is safe to call more than once.
func (l *Ledger) Close() error {
	var err error
	l.close.Do(func() {
		close(l.quit)
		<-l.done
		l.ap.stop()
		l.dbMu.Lock()
		l.dbClosed = true
		l.dbMu.Unlock()
		err = l.jdb.Close()
		select {
		case <-l.stateFailC:
			err = errors.Join(err, fmt.Errorf("ledger: the state database was left open: it cannot flush: %w", l.stateErr))
		default:
			err = errors.Join(err, l.db.Close())
		}
	})
	return err
}

// ID is the random identity of this database, made when it was created. With
// an event's sequence it forms the event's id.
func (l *Ledger) ID() string { return l.id }

// setNewID gives the database its id, Options.ID or a new random one, and
// makes it durable.
func (l *Ledger) setNewID() error {
	var b [8]byte
	_, _ = rand.Read(b[:])
	l.id = hex.EncodeToString(b[:])
	if l.opts.ID != "" {
		l.id = l.opts.ID
	}
	if err := l.db.Set(keyMetaID, []byte(l.id), pebble.NoSync); err != nil {
		return fmt.Errorf("ledger: %w", err)
	}
	if err := l.db.Flush(); err != nil {
		return fmt.Errorf("ledger: %w", err)
	}
	return nil
}

// load reads the last checkpoint of the state and replays the journal after
// it; it returns how many journal records it replayed.
func (l *Ledger) load() (int, error) {
	id, closer, err := l.db.Get(keyMetaID)
	switch {
	case err == nil && l.opts.NewID && l.opts.ID == "":
		_ = closer.Close()
		if err := l.setNewID(); err != nil {
			return 0, err
		}
	case err == nil:
		l.id = string(id)
		_ = closer.Close()
		if l.opts.ID != "" && l.opts.ID != l.id {
			return 0, fmt.Errorf("ledger: the database in %s is %s, not %s (the data directory of another cluster, or of a single node): %w",
				l.opts.Dir, l.id, l.opts.ID, ErrWrongID)
		}
	case errors.Is(err, pebble.ErrNotFound):
		if err := l.setNewID(); err != nil {
			return 0, err
		}
	default:
		return 0, fmt.Errorf("ledger: %w", err)
	}

	var ctr counters
	if v, closer, err := l.db.Get(keyMetaState); err == nil {
		ctr, err = decodeCounters(v)
		_ = closer.Close()
		if err != nil {
			return 0, fmt.Errorf("ledger: state record: %w", err)
		}
	} else if !errors.Is(err, pebble.ErrNotFound) {
		return 0, fmt.Errorf("ledger: %w", err)
	}
	ckptSeq, err := l.getSeq(l.db, keyMetaCheckpoint)
	if err != nil {
		return 0, err
	}
	indexSeq, err := l.getSeq(l.db, keyMetaIndexed)
	if err != nil {
		return 0, err
	}

	l.w.init(l, ctr)
	l.table = newTable(int(ctr.Holdings))
	intern := l.w.intern
	var holder string
	if err := l.scan(prefixHolding, func(k, v []byte) error {
		key, err := decodeHoldingKey(k, intern, &holder)
		if err != nil {
			return err
		}
		val, err := decodeHoldingValue(v)
		if err != nil {
			return err
		}
		l.table.load(key, val)
		return nil
	}); err != nil {
		return 0, fmt.Errorf("ledger: loading holdings: %w", err)
	}
	if int64(l.table.n) != ctr.Holdings {
		return 0, fmt.Errorf("ledger: %d holdings on disk, the state record says %d: %w", l.table.n, ctr.Holdings, ErrCorrupt)
	}
	l.table.takeDirty() // as checkpointed: nothing to write again
	if err := l.scan(prefixPending, func(k, v []byte) error {
		client, serial, err := decodePendingKey(k)
		if err != nil {
			return err
		}
		c, err := decodeCommission(serial, v, intern)
		if err != nil {
			return err
		}
		if c.Client != client || serial > ctr.Serial {
			return ErrCorrupt
		}
		l.addPending(c)
		return nil
	}); err != nil {
		return 0, fmt.Errorf("ledger: loading commissions: %w", err)
	}
	if err := l.scan(prefixIdem, func(k, v []byte) error {
		r, err := decodeIdem(v)
		if err != nil {
			return err
		}
		l.w.rememberIdem(string(k), r)
		return nil
	}); err != nil {
		return 0, fmt.Errorf("ledger: loading idempotency keys: %w", err)
	}

	relayed, err := l.getSeq(l.jdb, keyJournalRelay)
	if err != nil {
		return 0, err
	}
	l.relayed.Store(relayed)
	l.ap = newApplier(l, ckptSeq, indexSeq)
	if err := l.migrateOutbox(ctr); err != nil {
		return 0, err
	}
	replayed, err := l.replay(ckptSeq, indexSeq)
	if err != nil {
		return 0, err
	}
	if int64(l.table.n) != l.w.ctr.Holdings {
		return 0, fmt.Errorf("ledger: %d holdings after the replay, the journal says %d: %w", l.table.n, l.w.ctr.Holdings, ErrCorrupt)
	}
	for _, c := range l.pending {
		l.w.scheduleExpiry(c)
	}
	l.checkpointed(ckptSeq)
	l.pubSeq, l.pubCtr = l.w.seq, l.w.ctr
	l.durableSeq.Store(l.w.seq)
	l.durableOutboxSeq.Store(l.w.ctr.OutboxSeq)
	l.lastSerial.Store(l.w.ctr.Serial)
	return replayed, nil
}

// getSeq reads a sequence kept under key in db (0 if absent).
func (l *Ledger) getSeq(db *pebble.DB, key []byte) (uint64, error) {
	v, closer, err := db.Get(key)
	if errors.Is(err, pebble.ErrNotFound) {
		return 0, nil
	}
	if err != nil {
		return 0, fmt.Errorf("ledger: %w", err)
	}
	defer closer.Close()
	if len(v) != 8 {
		return 0, fmt.Errorf("ledger: %q: %w", key, ErrCorrupt)
	}
	return binary.BigEndian.Uint64(v), nil
}

// readDB runs fn unless the database is closed (then ErrClosed).
func (l *Ledger) readDB(fn func() error) error {
	l.dbMu.RLock()
	defer l.dbMu.RUnlock()
	if l.dbClosed {
		return ErrClosed
	}
	return fn()
}

func (l *Ledger) scan(prefix byte, fn func(k, v []byte) error) error {
	return l.scanRange([]byte{prefix}, []byte{prefix + 1}, fn)
}

func (l *Ledger) scanRange(lower, upper []byte, fn func(k, v []byte) error) error {
	it, err := l.db.NewIter(&pebble.IterOptions{LowerBound: lower, UpperBound: upper})
	if err != nil {
		return err
	}
	for it.First(); it.Valid(); it.Next() {
		v, err := it.ValueAndErr()
		if err != nil {
			_ = it.Close()
			return err
		}
		if err := fn(it.Key(), v); err != nil {
			_ = it.Close()
			return err
		}
	}
	return it.Close()
}

func (l *Ledger) addPending(c *commission.Commission) {
	l.pending[c.Serial] = c
	m := l.byClient[c.Client]
	if m == nil {
		m = make(map[uint64]struct{})
		l.byClient[c.Client] = m
	}
	m[c.Serial] = struct{}{}
}

func (l *Ledger) removePending(c *commission.Commission) {
	delete(l.pending, c.Serial)
	if m := l.byClient[c.Client]; m != nil {
		delete(m, c.Serial)
		if len(m) == 0 {
			delete(l.byClient, c.Client)
		}
	}
}

// pebbleLogger routes Pebble's messages into zerolog. Fatalf exits the
// process, as Pebble expects: it calls it when a synchronous commit fails
// (the ledger commits with ApplyNoSyncWait, whose failures come back as
// errors: see Ledger.fail) and on failures of its own files such as the
// MANIFEST; the restarted engine rebuilds from disk.
type pebbleLogger struct{ log zerolog.Logger }

func (p pebbleLogger) Infof(format string, args ...any) {
	p.log.Debug().Str("component", "pebble").Msgf(format, args...)
}
func (p pebbleLogger) Errorf(format string, args ...any) {
	p.log.Error().Str("component", "pebble").Msgf(format, args...)
}
func (p pebbleLogger) Fatalf(format string, args ...any) {
	// WithLevel logs without exiting (and even when the level is disabled
	// nothing is skipped below): the exit must not depend on the logger.
	p.log.WithLevel(zerolog.FatalLevel).Str("component", "pebble").Msgf(format, args...)
	os.Exit(1)
}

// Writable reports whether a write would be taken now: ErrClosed once the
// ledger is closing, ErrFailed after a failed commit, ErrNoSpace below the
// free-space floor, else nil.
func (l *Ledger) Writable() error {
	select {
	case <-l.quit:
		return ErrClosed
	default:
	}
	return l.refusal()
}

// Failed reports the commit error that stopped the ledger taking writes, or
// nil while it is healthy.
func (l *Ledger) Failed() error {
	if p := l.failed.Load(); p != nil {
		return *p
	}
	return nil
}

// FailedC is closed once a commit fails (Failed then says why).
func (l *Ledger) FailedC() <-chan struct{} { return l.failedC }

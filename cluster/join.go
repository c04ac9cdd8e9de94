package cluster

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/quotaledger/quotaledger/backup"
	"github.com/quotaledger/quotaledger/ledger"
)

// A node that is new, or further behind than the log's history, starts
// from a checkpoint: the leader keeps one in a replicated object store
// (CheckpointBucket), the backup archive of section 9 (package backup),
// replaced every Options.CheckpointEvery; a joining node restores it into
// its data directory and follows the log from the record the checkpoint
// holds.

// CheckpointBucket is the object store of the cluster's checkpoints.
const CheckpointBucket = "quotaledger_checkpoints"

// checkpointName is the object of the latest checkpoint.
const checkpointName = "latest"

// publishCheckpoint writes a checkpoint of the ledger to the object store.
func (n *Node) publishCheckpoint(ctx context.Context) error {
	obj, err := n.js.CreateOrUpdateObjectStore(ctx, jetstream.ObjectStoreConfig{
		Bucket: CheckpointBucket, Replicas: n.opts.Replicas, Storage: jetstream.FileStorage,
	})
	if err != nil {
		return fmt.Errorf("cluster: the checkpoint store: %w", err)
	}
	applied := n.l.Applied()
	pr, pw := io.Pipe()
	go func() { pw.CloseWithError(backup.Write(pw, n.l, nil)) }()
	meta := jetstream.ObjectMeta{Name: checkpointName, Headers: nats.Header{}}
	meta.Headers.Set(hdrSeq, strconv.FormatUint(applied, 10))
	if _, err := obj.Put(ctx, meta, pr); err != nil {
		pr.CloseWithError(err)
		return fmt.Errorf("cluster: writing a checkpoint: %w", err)
	}
	n.log.Info().Uint64("applied", applied).Msg("checkpoint published")
	return nil
}

// checkpointRetry is how soon the leader tries again after a checkpoint
// it could not publish (its NATS not ready yet, a store away): a node
// that needs one to join must not wait a whole CheckpointEvery.
const checkpointRetry = 2 * time.Second

// checkpoints publishes a checkpoint now and every CheckpointEvery while
// ctx lasts (the leader's), trying again after checkpointRetry when one
// fails.
func (n *Node) checkpoints(ctx context.Context) {
	for {
		wait := n.opts.CheckpointEvery
		if err := n.publishCheckpoint(ctx); err != nil && ctx.Err() == nil {
			wait = min(wait, checkpointRetry)
			n.log.Error().Err(err).Dur("retry_in", wait).Msg("publishing a checkpoint")
		}
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-t.C:
		}
	}
}

// LogEnd is the sequence of the last journal record of the cluster's log
// (0 for a new cluster). A node opens its ledger with
// ledger.Options.KeepJournalTo set to it: a record of its own journal past
// the log's end was never acknowledged to anyone (the log refused it, or
// the node stopped before the log had it), and goes.
func LogEnd(ctx context.Context, conn *nats.Conn) (uint64, error) {
	return Patiently(ctx, func(ctx context.Context) (uint64, error) { return logEnd(ctx, conn) })
}

func logEnd(ctx context.Context, conn *nats.Conn) (uint64, error) {
	js, err := jetstream.New(conn)
	if err != nil {
		return 0, fmt.Errorf("cluster: %w", err)
	}
	stream, err := js.Stream(ctx, LogStream)
	if err != nil {
		return 0, fmt.Errorf("cluster: the log stream: %w", err)
	}
	info, err := stream.Info(ctx)
	if err != nil {
		return 0, err
	}
	n := &Node{js: js, stream: stream}
	if info.State.Msgs == 0 {
		return n.lastRecord(ctx), nil
	}
	m, err := heldMsg(ctx, stream, info.State.LastSeq)
	if err != nil {
		return 0, fmt.Errorf("cluster: reading the log's last message: %w", err)
	}
	return strconv.ParseUint(m.Header.Get(hdrSeq), 10, 64)
}

// InLog is ledger.Options.InLog for a node's ledger: whether journal
// record seq with the bytes rec is the log's record seq. A node killed
// while it led may hold records of its last batches that no quorum of the
// log acknowledged, while the next leader appended its own records of the
// same sequences: those are not the log's, and the ledger drops them at
// open (LogEnd drops only those past the log's end). A record older than
// the log's history is taken as the log's: a node that far behind starts
// from a checkpoint (NeedsCheckpoint). Each answer reads the log, within
// ctx, asking again while a read goes unanswered (Patiently).
func InLog(ctx context.Context, conn *nats.Conn) (func(seq uint64, rec []byte) (bool, error), error) {
	js, stream, err := openLog(ctx, conn)
	if err != nil {
		return nil, err
	}
	n := &Node{js: js, stream: stream}
	return func(seq uint64, rec []byte) (bool, error) {
		return Patiently(ctx, func(ctx context.Context) (bool, error) { return n.inLog(ctx, seq, rec) })
	}, nil
}

// openLog is the JetStream of conn and the log stream in it, asked again
// while it goes unanswered within ctx (Patiently).
func openLog(ctx context.Context, conn *nats.Conn) (jetstream.JetStream, jetstream.Stream, error) {
	js, err := jetstream.New(conn)
	if err != nil {
		return nil, nil, fmt.Errorf("cluster: %w", err)
	}
	stream, err := Patiently(ctx, func(ctx context.Context) (jetstream.Stream, error) { return js.Stream(ctx, LogStream) })
	if err != nil {
		return nil, nil, fmt.Errorf("cluster: the log stream: %w", err)
	}
	return js, stream, nil
}

// inLog is InLog's answer for one record.
func (n *Node) inLog(ctx context.Context, seq uint64, rec []byte) (bool, error) {
	if _, pos, ok := ledger.RecordPlace(rec); ok {
		return n.inLogAt(ctx, seq, pos, rec)
	}
	s, err := n.seek(ctx, seq)
	if errors.Is(err, ErrBehind) {
		return true, nil
	}
	if err != nil {
		return false, err
	}
	// The record's parts from s on; a part 1 starts it again (a
	// deposed leader's parts may come first).
	var buf []byte
	for ; ; s++ {
		m, err := getMsg(ctx, n.stream, s)
		if errors.Is(err, jetstream.ErrMsgNotFound) {
			return false, nil // past the log's end
		}
		if err != nil {
			return false, fmt.Errorf("cluster: reading log message %d: %w", s, err)
		}
		r, part, parts, err := partOf(s, m.Header)
		switch {
		case err != nil:
			return false, err
		case r != seq:
			return false, nil // the log has no record seq
		case part == 1:
			buf = append(buf[:0], m.Data...)
		case len(buf) == 0:
			return true, nil // the log's history starts inside the record
		default:
			buf = append(buf, m.Data...)
		}
		if part == parts {
			return bytes.Equal(buf, rec), nil
		}
	}
}

// inLogAt is inLog's answer for a record that names its place in the log,
// pos: whether the log holds it there.
func (n *Node) inLogAt(ctx context.Context, seq, pos uint64, rec []byte) (bool, error) {
	info, err := n.stream.Info(ctx)
	if err != nil {
		return false, fmt.Errorf("cluster: the log stream: %w", err)
	}
	switch {
	case pos > info.State.LastSeq:
		return false, nil // past the log's end
	case info.State.Msgs == 0 || pos < info.State.FirstSeq:
		return true, nil // older than the log's history
	}
	var buf []byte
	for s := pos; ; s++ {
		if s > info.State.LastSeq {
			return false, nil // its last parts past the log's end
		}
		m, err := heldMsg(ctx, n.stream, s)
		if err != nil {
			return false, fmt.Errorf("cluster: reading log message %d: %w", s, err)
		}
		r, part, parts, err := partOf(s, m.Header)
		switch {
		case err != nil:
			return false, err
		case r != seq || uint64(part) != s-pos+1:
			return false, nil // another writer's message in its place
		}
		buf = append(buf, m.Data...)
		if part == parts {
			return bytes.Equal(buf, rec), nil
		}
	}
}

// Reappend is ledger.Options.Reappend for a node's ledger: it gives the
// log again a record of the node's journal past the log's end, at the place
// the record names, and says whether the log holds it there now. With
// --cluster-sync interval the log's servers sync every second, so a power
// loss of a majority of them loses the log's last records, answered ones
// among them; the leader that answered them synced them to its journal
// first, and gives them back as it starts again. Each message is fenced as
// the leader's were (it follows the log's message before its place, and
// keeps its id): a record whose place another writer took meanwhile, or
// that would leave a gap, is not appended (false), and the node drops it.
// A record of a leader that was never acknowledged (killed with batches in
// flight) is appended too if its place is free: a call never answered,
// applied whole. Each answer reads and writes the log within ctx, asking
// again while it goes unanswered (Patiently). partSize is Options.PartSize
// (0: its default), as the records were written with.
func Reappend(ctx context.Context, conn *nats.Conn, partSize int) (func(seq uint64, rec []byte) (bool, error), error) {
	js, stream, err := openLog(ctx, conn)
	if err != nil {
		return nil, err
	}
	partSize = Options{PartSize: partSize}.withDefaults().PartSize
	return func(seq uint64, rec []byte) (bool, error) {
		return Patiently(ctx, func(ctx context.Context) (bool, error) { return reappend(ctx, js, stream, partSize, seq, rec) })
	}, nil
}

// reappend is Reappend's answer for one record.
func reappend(ctx context.Context, js jetstream.JetStream, stream jetstream.Stream, partSize int, seq uint64, rec []byte) (bool, error) {
	term, pos, ok := ledger.RecordPlace(rec)
	if !ok {
		return false, nil // a record of the layout before places: not sent again
	}
	parts := span(len(rec), partSize)
	for i := 0; i < parts; {
		at := pos + uint64(i)
		info, err := stream.Info(ctx)
		if err != nil {
			return false, fmt.Errorf("cluster: the log stream: %w", err)
		}
		switch last := info.State.LastSeq; {
		case last >= at:
			// Its place is taken: by this very message (a copy sent
			// before, by this node or another that held it), or another's.
			if info.State.Msgs == 0 || at < info.State.FirstSeq {
				return false, nil
			}
			m, err := heldMsg(ctx, stream, at)
			if err != nil {
				return false, fmt.Errorf("cluster: reading log message %d: %w", at, err)
			}
			if m.Header.Get(jetstream.MsgIDHeader) != msgID(term, at) {
				return false, nil
			}
			i++
			continue
		case last+1 < at:
			return false, nil // the log lost more than this journal holds
		}
		ack, err := js.PublishMsg(ctx, logMsg(seq, rec, i, parts, partSize, term, at))
		switch {
		case wrongLastSequence(err):
			continue // another writer was quicker: its place read again
		case err != nil:
			return false, err
		case ack.Sequence != at:
			return false, fmt.Errorf("cluster: log message %s acknowledged at stream sequence %d, want %d", msgID(term, at), ack.Sequence, at)
		}
		i++
	}
	return true, nil
}

// NeedsCheckpoint reports whether a node whose ledger applied the
// journal up to applied must start from the cluster's checkpoint: its
// ledger is new while the log has records, or is further behind than the
// log's history (then, with no checkpoint to start from, ErrBehind).
func NeedsCheckpoint(ctx context.Context, conn *nats.Conn, applied uint64) (bool, error) {
	return Patiently(ctx, func(ctx context.Context) (bool, error) { return needsCheckpoint(ctx, conn, applied) })
}

func needsCheckpoint(ctx context.Context, conn *nats.Conn, applied uint64) (bool, error) {
	js, err := jetstream.New(conn)
	if err != nil {
		return false, fmt.Errorf("cluster: %w", err)
	}
	stream, err := js.Stream(ctx, LogStream)
	if err != nil {
		return false, fmt.Errorf("cluster: the log stream: %w", err)
	}
	n := &Node{js: js, stream: stream}
	_, err = n.seek(ctx, applied+1)
	behind := errors.Is(err, ErrBehind)
	if err != nil && !behind {
		return false, err
	}
	info, err := stream.Info(ctx)
	if err != nil {
		return false, err
	}
	if !behind && (applied > 0 || info.State.LastSeq == 0) {
		return false, nil
	}
	has, err := hasCheckpoint(ctx, js)
	switch {
	case err != nil:
		return false, err
	case has:
		return true, nil
	case behind:
		return false, fmt.Errorf("%w, and the cluster has no checkpoint yet", ErrBehind)
	}
	return false, nil // a new node, and the log from its first record: follow it
}

func hasCheckpoint(ctx context.Context, js jetstream.JetStream) (bool, error) {
	obj, err := js.ObjectStore(ctx, CheckpointBucket)
	if errors.Is(err, jetstream.ErrBucketNotFound) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("cluster: the checkpoint store: %w", err)
	}
	_, err = obj.GetInfo(ctx, checkpointName)
	if errors.Is(err, jetstream.ErrObjectNotFound) {
		return false, nil
	}
	return err == nil, err
}

// RestoreCheckpoint restores the cluster's latest checkpoint into the data
// directory dataDir of a node whose ledger is closed; a ledger there is
// moved aside first, to dataDir/ledger.behind-<time>.
func RestoreCheckpoint(ctx context.Context, conn *nats.Conn, dataDir string) error {
	js, err := jetstream.New(conn)
	if err != nil {
		return fmt.Errorf("cluster: %w", err)
	}
	obj, err := Patiently(ctx, func(ctx context.Context) (jetstream.ObjectStore, error) {
		return js.ObjectStore(ctx, CheckpointBucket)
	})
	if err != nil {
		return fmt.Errorf("cluster: the checkpoint store: %w", err)
	}
	r, done, err := openCheckpoint(ctx, obj)
	if err != nil {
		return fmt.Errorf("cluster: reading the checkpoint: %w", err)
	}
	defer done()
	dest := filepath.Join(dataDir, backup.LedgerDir)
	if _, err := os.Stat(dest); err == nil {
		aside := dest + ".behind-" + time.Now().UTC().Format("20060102T150405Z")
		if err := os.Rename(dest, aside); err != nil {
			return fmt.Errorf("cluster: moving the ledger aside: %w", err)
		}
	}
	if _, _, err := backup.Restore(r, dataDir); err != nil {
		return fmt.Errorf("cluster: restoring the checkpoint: %w", err)
	}
	return nil
}

// openCheckpoint opens the checkpoint for reading, asking again while the
// opening goes unanswered (its object's info and the consumer of its
// chunks: TestJoinAsksAgain saw the consumer's creation unanswered for the
// whole 2 minutes while the store's Raft leader was stopped): each attempt
// has AskEach to open it; reading it then takes as long as it takes, on
// ctx. done closes it.
func openCheckpoint(ctx context.Context, obj jetstream.ObjectStore) (r jetstream.ObjectResult, done func(), err error) {
	type opened struct {
		r   jetstream.ObjectResult
		err error
	}
	for {
		gctx, cancel := context.WithCancel(ctx)
		ch := make(chan opened, 1)
		go func() {
			r, err := obj.Get(gctx, checkpointName)
			ch <- opened{r, err}
		}()
		t := time.NewTimer(AskEach)
		select {
		case o := <-ch:
			t.Stop()
			if o.err == nil {
				return o.r, func() { _ = o.r.Close(); cancel() }, nil
			}
			cancel()
			if ctx.Err() != nil || !unanswered(o.err) {
				return nil, nil, o.err
			}
		case <-t.C:
			cancel() // given up: close what it opens late
			go func() {
				if o := <-ch; o.err == nil {
					_ = o.r.Close()
				}
			}()
			if ctx.Err() != nil {
				return nil, nil, ctx.Err()
			}
		}
	}
}

// AskEach is how long a starting node waits for one answer of JetStream
// before it asks again (Patiently).
const AskEach = 5 * time.Second

// Patiently calls fn, each attempt within AskEach, again while an attempt
// goes unanswered, until ctx ends. A server that started a moment ago, or
// that is still catching up the streams from the others (a node whose data
// directory was wiped), or a stream whose Raft group is electing a leader,
// may drop a JetStream request, answering nothing at all: a node that asked
// once would wait its whole --join-timeout and give up (TestClusterWipeRejoin:
// "the checkpoint store: context deadline exceeded" after 2 minutes).
// An answer, even a refusal, ends it.
func Patiently[T any](ctx context.Context, fn func(context.Context) (T, error)) (T, error) {
	return ask(ctx, AskEach, 0, fn)
}

// ask calls fn, each attempt within each, again while an attempt goes
// unanswered, until ctx ends or, if attempts is not 0, that many were made.
func ask[T any](ctx context.Context, each time.Duration, attempts int, fn func(context.Context) (T, error)) (T, error) {
	for attempt := 1; ; attempt++ {
		actx, cancel := context.WithTimeout(ctx, each)
		v, err := fn(actx)
		cancel()
		if err == nil || attempt == attempts || ctx.Err() != nil || !unanswered(err) {
			return v, err
		}
		sleep(ctx, 100*time.Millisecond)
	}
}

// direct runs a read that any replica of a stream answers (a direct get:
// a NATS server hands its client's request to one member of the replicas'
// queue group at random, on its own server or another), with a short
// timeout first and one twice as long each time after, until ctx ends. A
// replica that cannot answer (its server stopped, and not yet known gone
// to the others; or catching up) holds a read only for that timeout, and
// the next one most likely goes to another: a stopped node's server
// stays in the queue group until its routes time out, minutes.
func direct[T any](ctx context.Context, fn func(context.Context) (T, error)) (T, error) {
	for each := directWait; ; each = min(2*each, directWaitMax) {
		actx, cancel := context.WithTimeout(ctx, each)
		v, err := fn(actx)
		cancel()
		if err == nil || ctx.Err() != nil || !(errors.Is(err, context.DeadlineExceeded) || errors.Is(err, nats.ErrTimeout)) {
			return v, err
		}
	}
}

// directWait is the first timeout of a direct get (direct): a replica
// answers one in a millisecond or two, from memory or its disk; a loaded
// machine is given up to directWaitMax.
const (
	directWait    = 250 * time.Millisecond
	directWaitMax = time.Second
)

// getMsg reads log message s by direct get (direct).
func getMsg(ctx context.Context, stream jetstream.Stream, s uint64) (*jetstream.RawStreamMsg, error) {
	return direct(ctx, func(ctx context.Context) (*jetstream.RawStreamMsg, error) { return stream.GetMsg(ctx, s) })
}

// getKey reads key of the bucket kv by direct get (direct).
func getKey(ctx context.Context, kv jetstream.KeyValue, key string) (jetstream.KeyValueEntry, error) {
	return direct(ctx, func(ctx context.Context) (jetstream.KeyValueEntry, error) { return kv.Get(ctx, key) })
}

// errNotHeldYet marks a log message within the stream's history, as its
// Raft leader reported it, that the replica answering a direct get does not
// hold yet: ask again.
var errNotHeldYet = errors.New("cluster: a replica of the log that has not caught up answered")

// unanswered reports whether err says that JetStream did not answer (as
// opposed to answering no), or answered from a replica not caught up yet.
func unanswered(err error) bool {
	var api *jetstream.APIError
	return errors.Is(err, errNotHeldYet) || errors.Is(err, context.DeadlineExceeded) || errors.Is(err, nats.ErrTimeout) ||
		errors.Is(err, nats.ErrNoResponders) || errors.Is(err, jetstream.ErrNoStreamResponse) ||
		// "JetStream system temporarily unavailable": no meta leader yet.
		(errors.As(err, &api) && api.Code == 503)
}

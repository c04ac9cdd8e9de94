package ledger

import (
	"errors"
	"fmt"
	"time"

	"github.com/cockroachdb/pebble/v2/vfs"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/rs/zerolog"
)

// Options configure a Ledger. Zero fields take the defaults of withDefaults.
type Options struct {
	// Dir is the directory of the Pebble database. Required.
	Dir string
	// FS is the filesystem; vfs.Default unless set (tests use vfs.NewMem()).
	FS vfs.FS
	// Logger receives the engine's and Pebble's messages.
	Logger zerolog.Logger
	// Follower opens the ledger as a follower of a cluster (role.go): it
	// takes no writes until Lead. False: a single node.
	Follower bool
	// ID, when set, is the id the database must have: a new one takes it,
	// one made with another is refused (a data directory of another
	// cluster). Empty: a new database makes a random one.
	ID string
	// NewID gives a database that has an id a new random one (with ID
	// empty): a restored copy of another ledger, whose events must not take
	// the original's ids (backup.RestoreAsNew). A new database makes a
	// random one anyway.
	NewID bool

	// KeepJournalTo, when set, drops the journal's records after it before
	// the replay (a node of a cluster opens with the log's last record: a
	// record past it was never acknowledged). Zero keeps every record.
	KeepJournalTo uint64
	// InLog, when set, says whether journal record seq, whose bytes are
	// rec, is the cluster log's record seq (rec is only valid during the
	// call). Open asks it of the journal's last records, after
	// KeepJournalTo, from the last back to the first it answers true, and
	// drops those it answered false before the replay: a leader killed with
	// batches in flight kept records that no quorum of the log
	// acknowledged, while another node appended its own records of the
	// same sequences. It is not asked of the records the state holds
	// (only acknowledged ones). An error fails Open.
	InLog func(seq uint64, rec []byte) (bool, error)
	// Reappend, when set, is asked to give the cluster's log again each of
	// the journal's records after KeepJournalTo, in order, before they are
	// dropped: it answers whether the log now holds the record (appended
	// at the place the record names, or found there). Open keeps the
	// records it answered true, up to the first false, and drops the rest.
	// A cluster whose servers all lost their unsynced writes (a power loss
	// of every machine, with --cluster-sync interval) lost records that
	// this node's synced journal holds, answered ones among them. Asked
	// only if the log holds record KeepJournalTo as this journal does. An
	// error fails Open.
	Reappend func(seq uint64, rec []byte) (bool, error)

	// Now is the clock; time.Now unless set.
	Now func() time.Time

	// MaxBatch caps the requests applied and committed together (1024).
	MaxBatch int
	// PipelineDepth is how many batches may wait for their sync (and, on
	// a cluster's leader, for the log's acknowledgement) at once, each
	// building on the ones before it: 1 by default, at most 3. One gives
	// the fewest syncs, each with the most calls, and the least CPU a call
	// on the machines measured (docs/engine.md, "One batch in flight");
	// deeper overlaps the writer's work with a sync, which may pay where a
	// sync or an append takes long against the writer's work.
	PipelineDepth int
	// IdempotencyRetention is how long an idempotency key is remembered (24h).
	IdempotencyRetention time.Duration
	// DefaultTTL is the ttl of a commission issued without one, at most
	// MaxTTL; 0 (the default) means such commissions never expire.
	DefaultTTL time.Duration

	// MinFreeBytes is the free-space floor: while the disk under Dir has less
	// available, writes are refused with ErrNoSpace (128 MiB). Set
	// NoFreeSpaceCheck to turn the check off.
	MinFreeBytes     uint64
	NoFreeSpaceCheck bool
	// DiskFree reports the bytes available under Dir; by default it asks FS.
	// A filesystem that cannot tell (an error) counts as having room.
	DiskFree func() (uint64, error)

	// CheckpointInterval and CheckpointBytes say how often the state is
	// checkpointed (applier.go): after this long (5s) or this many bytes of
	// journal (64 MiB), whichever comes first. The journal written since the
	// last checkpoint is what Open replays.
	CheckpointInterval time.Duration
	CheckpointBytes    int

	// MemTableSize is Pebble's memtable size (64 MiB).
	MemTableSize uint64
	// JournalMemTableSize is the journal database's memtable size, and so
	// the size of each of its WAL files: Pebble preallocates 110% of it for
	// a WAL file and keeps up to three old ones to recycle, so the WAL
	// takes four to seven times it on disk whether or not it holds
	// anything. 0 (the default) sizes it to the volume under Dir: a
	// hundredth of it, between 2 MiB and MemTableSize (64 MiB from a
	// 6.4 GiB volume up), so that the WAL holds at most about 4% of the
	// volume in the steady state, 8% while flushes lag behind.
	JournalMemTableSize uint64
	// CacheSize is Pebble's block cache size (128 MiB).
	CacheSize int64

	// checkpointHook, in tests, is called at each part of a checkpoint.
	checkpointHook func(part int)

	// Metrics, if set, receives the engine's metrics (metrics.go). A
	// registerer takes one ledger: a second Open on it fails.
	Metrics prometheus.Registerer
}

func (o Options) withDefaults() Options {
	if o.FS == nil {
		o.FS = vfs.Default
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.MaxBatch == 0 {
		o.MaxBatch = 1024
	}
	if o.PipelineDepth == 0 {
		o.PipelineDepth = 1
	}
	if o.IdempotencyRetention == 0 {
		o.IdempotencyRetention = 24 * time.Hour
	}
	if o.MinFreeBytes == 0 {
		o.MinFreeBytes = 128 << 20
	}
	if o.DiskFree == nil {
		fs, dir := o.FS, o.Dir
		o.DiskFree = func() (uint64, error) {
			u, err := fs.GetDiskUsage(dir)
			return u.AvailBytes, err
		}
	}
	if o.CheckpointInterval == 0 {
		o.CheckpointInterval = 5 * time.Second
	}
	if o.CheckpointBytes == 0 {
		o.CheckpointBytes = 64 << 20
	}
	if o.MemTableSize == 0 {
		o.MemTableSize = 64 << 20
	}
	if o.CacheSize == 0 {
		o.CacheSize = 128 << 20
	}
	return o
}

// minJournalMemTable is the smallest journal memtable (and WAL file) the
// ledger takes: a batch of more than half of it goes to the journal as a
// memtable of its own, with a flush.
const minJournalMemTable = 2 << 20

// journalMemTableSize is the journal database's memtable size: the
// option's, or a hundredth of the volume of total bytes (0: unknown),
// between minJournalMemTable and MemTableSize.
func (o Options) journalMemTableSize(total uint64) uint64 {
	if o.JournalMemTableSize != 0 {
		return o.JournalMemTableSize
	}
	if total == 0 {
		return o.MemTableSize
	}
	return max(min(total/100, o.MemTableSize), min(minJournalMemTable, o.MemTableSize))
}

// Validate reports the first option that cannot work.
func (o Options) Validate() error {
	switch {
	case o.Dir == "":
		return errors.New("ledger: Options.Dir is required")
	case o.MaxBatch < 1:
		return errors.New("ledger: Options.MaxBatch must be at least 1")
	case o.PipelineDepth < 0 || o.PipelineDepth > maxPipelineDepth:
		return fmt.Errorf("ledger: Options.PipelineDepth must be within 1..%d, not %d", maxPipelineDepth, o.PipelineDepth)
	case o.IdempotencyRetention < 0:
		return errors.New("ledger: Options.IdempotencyRetention must not be negative")
	case o.CheckpointInterval < 0 || o.CheckpointBytes < 0:
		return errors.New("ledger: Options.CheckpointInterval and CheckpointBytes must not be negative")
	case o.DefaultTTL < 0:
		return errors.New("ledger: Options.DefaultTTL must not be negative")
	case o.JournalMemTableSize > 0 && o.JournalMemTableSize < minJournalMemTable:
		return fmt.Errorf("ledger: Options.JournalMemTableSize must be at least %d bytes", minJournalMemTable)
	case o.DefaultTTL > MaxTTL:
		return fmt.Errorf("ledger: Options.DefaultTTL must be at most %v (ten years)", MaxTTL)
	}
	return nil
}

// Package cluster makes quotaledger nodes one service (DESIGN §11): the
// journal records of the ledger (ledger/journal.go) go through a replicated
// JetStream stream, QUOTALEDGER_LOG, whose Raft group keeps them on a
// quorum of nodes; one node, the holder of a lease in a replicated KV
// bucket, leads and appends (fenced: every append names the stream's last
// sequence it expects, so a deposed leader cannot append); every other node
// follows the stream and applies the records in order.
//
// A Node runs one node's part: it follows, campaigns for the lease when
// nobody holds it, leads when it wins (after applying the log to its end),
// renews the lease while it leads and steps down when it cannot, and
// publishes what the node is (its role, applied sequence, HTTP address) for
// the others and for GET /account/v1.0/cluster.
package cluster

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/rs/zerolog"

	"github.com/quotaledger/quotaledger/ledger"
)

// Names of the cluster's JetStream assets.
const (
	// LogStream holds the journal records, in order.
	LogStream = "QUOTALEDGER_LOG"
	// LogSubject is the subject of its messages.
	LogSubject = "quotaledger.log"
	// LeaseBucket holds the lease ("leader") and the nodes' status
	// ("node.<name>"); its keys expire LeaseTTL after their last update.
	LeaseBucket = "quotaledger_lease"
	// InfoBucket holds what does not expire: the cluster's id.
	InfoBucket = "quotaledger_cluster"
)

// Headers of a log message.
const (
	hdrSeq   = "Quotaledger-Seq"   // the journal record's sequence
	hdrPart  = "Quotaledger-Part"  // which part of the record, from 1
	hdrParts = "Quotaledger-Parts" // of how many
)

// Options configure a Node.
type Options struct {
	// Name is the node's name, unique in the cluster. Required.
	Name string
	// Conn is the NATS connection (to the node's embedded server, or an
	// external cluster). Required.
	Conn *nats.Conn
	// Replicas is how many copies the streams and buckets keep (3).
	Replicas int
	// LogMaxAge bounds the log's history (24h): a node further behind
	// starts from a checkpoint.
	LogMaxAge time.Duration
	// LeaseTTL is how long the lease outlives the leader's last renewal
	// (3s); the leader renews it every LeaseTTL/3 (a renewal that fails is
	// tried again until the lease would expire: lease.go), the followers
	// look for it every LeaseTTL/5. A failover after the leader's loss
	// takes the rest of the lease (2/3 to all of it), up to a fifth more
	// for a follower to see it gone, and the new leader's catch-up.
	LeaseTTL time.Duration
	// HTTPURL is where this node's API answers, for the forwarding of
	// writes and the cluster's status.
	HTTPURL string
	// CheckpointEvery is how often the leader replaces the checkpoint a
	// joining node starts from (1h; once when it starts leading, too).
	CheckpointEvery time.Duration
	// PartSize caps a log message (512 KiB): a larger record goes as
	// several, applied whole.
	PartSize int
	// StartGrace is how long a node that starts leaves a lease nobody
	// holds to the cluster's last leader (nats-server's longest election,
	// 9s, and two LeaseTTL): after a power loss of the log's servers, that
	// node's journal holds answered records the log lost (status.go).
	StartGrace time.Duration
	// digestEvery is how often the status' digest is made again under
	// load (digestEvery, the constant, unless a test sets it).
	digestEvery time.Duration
	// OnLead is called when the node starts leading, before it takes
	// writes (the events relay starts there); OnFollow when it stops.
	OnLead, OnFollow func()
	Logger           zerolog.Logger
	// Now is the clock of the status' times (time.Now).
	Now func() time.Time
}

func (o Options) withDefaults() Options {
	if o.Replicas == 0 {
		o.Replicas = 3
	}
	if o.LogMaxAge == 0 {
		o.LogMaxAge = 24 * time.Hour
	}
	if o.LeaseTTL == 0 {
		o.LeaseTTL = 3 * time.Second
	}
	if o.PartSize == 0 {
		o.PartSize = 512 << 10
	}
	if o.digestEvery == 0 {
		o.digestEvery = digestEvery
	}
	if o.StartGrace == 0 {
		o.StartGrace = electionTimeout + 2*o.LeaseTTL
	}
	if o.CheckpointEvery == 0 {
		o.CheckpointEvery = time.Hour
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	return o
}

// Validate reports the first option that cannot work.
func (o Options) Validate() error {
	switch {
	case o.Name == "":
		return errors.New("cluster: Options.Name is required")
	case o.Conn == nil:
		return errors.New("cluster: Options.Conn is required")
	case o.Replicas < 1:
		return errors.New("cluster: Options.Replicas must be at least 1")
	case o.LeaseTTL < 500*time.Millisecond:
		return errors.New("cluster: Options.LeaseTTL must be at least 500ms")
	case o.PartSize < 1024:
		return errors.New("cluster: Options.PartSize must be at least 1 KiB")
	}
	return nil
}

// Node is one node of a cluster.
type Node struct {
	opts   Options
	l      *ledger.Ledger
	log    zerolog.Logger
	js     jetstream.JetStream
	stream jetstream.Stream
	lease  jetstream.KeyValue

	leading    atomic.Bool
	leaderMu   sync.Mutex
	leaderName string // the lease's holder as last seen
	leaderURL  string
	leaderSeen time.Time // when the lease was last read
	// leaderMoved is closed when the lease's holder as seen here changes,
	// and replaced (LeaderWatch; made on first use).
	leaderMoved chan struct{}
	leaseChange atomic.Uint64 // times the lease changed hands, as seen here
	streamSeq   atomic.Uint64 // the stream sequence of the last record applied
	raftMoves   atomic.Uint64 // Raft leaders moved off this node's server (placement.go)
	renewFails  atomic.Uint64 // renewals of the lease that failed and were tried again (lease.go)
	// Who takes a lease nobody holds first (campaign), owned by the
	// node's loop: a node does not try before campaignAfter (it was
	// deposed, or the lease's Raft group elected its leader just now, or
	// it could not read the lease a while).
	campaignAfter  time.Time
	leasePresentAt time.Time // when the lease was last read, held by a node
	// The node that led last before this one started (lastLeader), and
	// when it started: until it sees the lease written since (a lease
	// held when it started may be a dead node's), this node leaves a
	// lease nobody holds to that node for StartGrace (campaign).
	lastLeader   string
	startedAt    time.Time
	firstLease   uint64 // the lease's revision when first seen held
	leaseWritten bool   // seen held at another revision since
	waitedLast   bool   // it said it waits for lastLeader
	// When this node last moved each stream's Raft leader (placement.go),
	// owned by the node's loop.
	raftMovedAt map[string]time.Time

	// The digest of the state the status shows, owned by the node's loop,
	// and the record applied at the last report.
	digest      string
	digestSeq   uint64
	digestAt    time.Time
	reportedSeq uint64

	stop chan struct{}
	done chan struct{}
}

// Setup creates the cluster's stream and buckets if missing, or checks them,
// and returns the cluster's id: the one its first node recorded, or id if
// this node is the first. It is called before the ledger opens, which needs
// the id (ledger.Options.ID).
func Setup(ctx context.Context, opts Options, id string) (string, error) {
	opts = opts.withDefaults()
	if err := opts.Validate(); err != nil {
		return "", err
	}
	js, err := jetstream.New(opts.Conn)
	if err != nil {
		return "", fmt.Errorf("cluster: %w", err)
	}
	if _, err := js.CreateOrUpdateStream(ctx, jetstream.StreamConfig{
		Name:       LogStream,
		Subjects:   []string{LogSubject},
		Replicas:   opts.Replicas,
		MaxAge:     opts.LogMaxAge,
		Storage:    jetstream.FileStorage,
		Discard:    jetstream.DiscardOld,
		DenyDelete: true,
		DenyPurge:  true,
		// Its messages read by direct get ($JS.API.DIRECT.GET, any of
		// its replicas answers): nats-server refuses every
		// $JS.API.STREAM.MSG.GET, even on the stream's own Raft leader,
		// while JetStream's meta group has no leader, and a node takes
		// over by reading the log to its end (catchUp) at just such a
		// time, when the meta leader's server went with the leader. A
		// replica that does not hold a message yet answers that it has
		// none: an error, and the reader reads it again.
		AllowDirect: true,
	}); err != nil {
		return "", fmt.Errorf("cluster: the log stream %s: %w", LogStream, err)
	}
	if _, err := js.CreateOrUpdateKeyValue(ctx, jetstream.KeyValueConfig{
		Bucket: LeaseBucket, TTL: opts.LeaseTTL, Replicas: opts.Replicas, Storage: jetstream.FileStorage,
	}); err != nil {
		return "", fmt.Errorf("cluster: the lease bucket %s: %w", LeaseBucket, err)
	}
	info, err := js.CreateOrUpdateKeyValue(ctx, jetstream.KeyValueConfig{
		Bucket: InfoBucket, Replicas: opts.Replicas, Storage: jetstream.FileStorage,
	})
	if err != nil {
		return "", fmt.Errorf("cluster: the bucket %s: %w", InfoBucket, err)
	}
	if _, err := info.Create(ctx, "id", []byte(id)); err != nil && !errors.Is(err, jetstream.ErrKeyExists) {
		return "", fmt.Errorf("cluster: recording the cluster's id: %w", err)
	}
	e, err := info.Get(ctx, "id")
	if err != nil {
		return "", fmt.Errorf("cluster: reading the cluster's id: %w", err)
	}
	return string(e.Value()), nil
}

// Start runs the node over l, a ledger opened as a follower with the
// cluster's id (Setup). It returns once the node follows the log.
func Start(ctx context.Context, l *ledger.Ledger, opts Options) (*Node, error) {
	opts = opts.withDefaults()
	if err := opts.Validate(); err != nil {
		return nil, err
	}
	// An append lost (its stream's Raft leader changed) fails its wait
	// (appender), and frees the count of appends in flight (hold).
	js, err := jetstream.New(opts.Conn, jetstream.WithPublishAsyncTimeout(2*opts.LeaseTTL))
	if err != nil {
		return nil, fmt.Errorf("cluster: %w", err)
	}
	// A request that meets its stream's Raft group between two leaders
	// gets no answer: ask again (placement.go).
	stream, err := askAgain(ctx, opts.LeaseTTL, func(ctx context.Context) (jetstream.Stream, error) { return js.Stream(ctx, LogStream) })
	if err != nil {
		return nil, fmt.Errorf("cluster: the log stream: %w", err)
	}
	lease, err := askAgain(ctx, opts.LeaseTTL, func(ctx context.Context) (jetstream.KeyValue, error) { return js.KeyValue(ctx, LeaseBucket) })
	if err != nil {
		return nil, fmt.Errorf("cluster: the lease bucket: %w", err)
	}
	n := &Node{opts: opts, l: l, js: js, stream: stream, lease: lease,
		log:  opts.Logger.With().Str("component", "cluster").Str("node", opts.Name).Logger(),
		stop: make(chan struct{}), done: make(chan struct{}), raftMovedAt: map[string]time.Time{},
		startedAt: time.Now()}
	n.lastLeader = n.lastLeaderName(ctx)
	go n.run()
	return n, nil
}

// Close stops the node: a leader steps down and gives the lease up.
func (n *Node) Close() error {
	select {
	case <-n.stop:
	default:
		close(n.stop)
	}
	<-n.done
	return nil
}

// Leading reports whether this node leads.
func (n *Node) Leading() bool { return n.leading.Load() }

// Leader is the name and HTTP address of the node that holds the lease, as
// last seen ("" when none does).
//
// What was seen is forgotten once the lease could not be read for a
// lease's TTL (NATS lost its quorum, this node is cut off): then nobody is
// known to lead, and writes are refused here rather than sent to a node
// that may be gone.
func (n *Node) Leader() (name, httpURL string) {
	name, httpURL, _ = n.LeaderWatch()
	return name, httpURL
}

// LeaderWatch is Leader, and a channel closed once the lease's holder as
// this node sees it changes from the one returned (another node took the
// lease, this node did, or the lease was found expired): a write forwarded
// to that leader is given up then, its outcome unknown, rather than waited
// for (a leader cut off answers nothing; its appends are refused once
// another leads).
func (n *Node) LeaderWatch() (name, httpURL string, moved <-chan struct{}) {
	n.leaderMu.Lock()
	defer n.leaderMu.Unlock()
	if n.leaderMoved == nil {
		n.leaderMoved = make(chan struct{})
	}
	if !n.leading.Load() && time.Since(n.leaderSeen) > n.opts.LeaseTTL {
		return "", "", n.leaderMoved
	}
	return n.leaderName, n.leaderURL, n.leaderMoved
}

// LeaseChanges is how many times this node saw the lease change hands.
func (n *Node) LeaseChanges() uint64 { return n.leaseChange.Load() }

// leaseValue is what the lease and each node's status hold.
type leaseValue struct {
	Name    string    `json:"name"`
	HTTPURL string    `json:"http_url"`
	Role    string    `json:"role,omitempty"`
	Applied uint64    `json:"applied"`
	Digest  string    `json:"digest,omitempty"`
	Time    time.Time `json:"time"`
}

func (n *Node) me() leaseValue {
	return leaseValue{Name: n.opts.Name, HTTPURL: n.opts.HTTPURL, Applied: n.l.Applied(), Time: n.opts.Now().UTC()}
}

func marshal(v any) []byte {
	b, _ := json.Marshal(v)
	return b
}

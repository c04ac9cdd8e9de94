package events

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/quotaledger/quotaledger/ledger"
)

// In a cluster (DESIGN §11) every node's outbox holds every event, and only
// the leader's relay publishes. A node that starts leading first marks as
// published what the stream already holds, so that its relay resumes after
// the last event its predecessor published instead of republishing the
// outbox (the duplicate window drops a republish only within its two
// minutes); a follower does the same every few seconds, so that its outbox,
// and the journal behind it, stay short.

// LastPublished returns the outbox sequence of the last event of the
// database dbID that stream holds, read from the Nats-Msg-Id of its last
// message ("<dbID>-<seq>", MsgID). It is 0 when the stream does not exist,
// holds no message, or its last message is not an event of dbID.
func LastPublished(ctx context.Context, js jetstream.JetStream, stream, dbID string) (uint64, error) {
	seq, _, err := lastPublished(ctx, js, stream, dbID)
	return seq, err
}

// lastPublished is LastPublished, with the stream sequence of that last
// message (0 with an outbox sequence of 0).
func lastPublished(ctx context.Context, js jetstream.JetStream, stream, dbID string) (seq, streamSeq uint64, err error) {
	if stream == "" {
		stream = StreamName
	}
	s, err := js.Stream(ctx, stream)
	if errors.Is(err, jetstream.ErrStreamNotFound) {
		return 0, 0, nil
	}
	if err != nil {
		return 0, 0, fmt.Errorf("events: stream %s: %w", stream, err)
	}
	info, err := s.Info(ctx)
	if err != nil {
		return 0, 0, fmt.Errorf("events: stream %s: %w", stream, err)
	}
	if info.State.Msgs == 0 {
		return 0, 0, nil
	}
	m, err := s.GetMsg(ctx, info.State.LastSeq)
	if errors.Is(err, jetstream.ErrMsgNotFound) {
		return 0, 0, nil // aged out meanwhile
	}
	if err != nil {
		return 0, 0, fmt.Errorf("events: stream %s: its last message: %w", stream, err)
	}
	rest, ok := strings.CutPrefix(m.Header.Get(jetstream.MsgIDHeader), dbID+"-")
	if !ok {
		return 0, 0, nil
	}
	seq, err = strconv.ParseUint(rest, 10, 64)
	if err != nil || seq == 0 {
		return 0, 0, nil
	}
	return seq, m.Sequence, nil
}

// MarkPublished records in l's outbox (ledger.DeleteOutbox) that the events
// stream holds are published: every event up to LastPublished, or up to
// the last event l holds if l is behind the stream. It returns the
// sequence marked (0: nothing).
func MarkPublished(ctx context.Context, js jetstream.JetStream, stream string, l *ledger.Ledger) (uint64, error) {
	last, err := LastPublished(ctx, js, stream, l.ID())
	if err != nil || last == 0 {
		return 0, err
	}
	st, err := l.OutboxStats()
	if err != nil {
		return 0, err
	}
	last = min(last, st.Last)
	if last == 0 {
		return 0, nil
	}
	if err := l.DeleteOutbox(last); err != nil {
		return 0, err
	}
	return last, nil
}

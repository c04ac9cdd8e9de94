package identity

import (
	"context"
	"crypto/rand"
	"encoding/binary"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/quotaledger/quotaledger/events/catalog"
	"github.com/quotaledger/quotaledger/ledger"
)

// MaxFeedback caps each part of a feedback, the message and the data
// (64 KiB).
const MaxFeedback = 64 << 10

// SendFeedback stores a user's feedback, a message and data about the
// client's state, and publishes it (catalog.FeedbackType): the record and
// the event's data are the same catalog.Feedback. The message must not be
// blank; both must be valid UTF-8 of at most MaxFeedback bytes (ErrInvalid).
// An unknown user is ErrNotFound.
func (s *Store) SendFeedback(ctx context.Context, user, message, data string) error {
	switch {
	case strings.TrimSpace(message) == "":
		return invalidf("the feedback message is required")
	case !utf8.ValidString(message) || !utf8.ValidString(data):
		return invalidf("the feedback message and data must be valid UTF-8")
	case len(message) > MaxFeedback || len(data) > MaxFeedback:
		return invalidf("the feedback message and data are at most %d bytes each", MaxFeedback)
	}
	u, err := s.FindUserByID(user)
	if err != nil {
		return err
	}
	now := s.now()
	f := catalog.Feedback{User: u.UUID, Username: u.Username, Message: message, Data: data,
		Time: now.Format(time.RFC3339Nano)}
	// Feedback is written, never read back by the server: its key orders it
	// by time, and the user and a random tail keep two of the same instant
	// apart.
	key := make([]byte, 0, 8+len(u.UUID)+4)
	key = binary.BigEndian.AppendUint64(key, uint64(now.UnixNano()))
	key = append(key, u.UUID...)
	var rnd [4]byte
	_, _ = rand.Read(rnd[:])
	key = append(key, rnd[:]...)
	return s.l.Update(ctx, func(tx *ledger.Tx) error {
		if err := put(tx, prefixFeedback, string(key), &f); err != nil {
			return err
		}
		return emit(tx, catalog.FeedbackType, &f)
	})
}

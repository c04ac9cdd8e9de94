package identity

import (
	"context"
	"slices"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/quotaledger/quotaledger/events/catalog"
	"github.com/quotaledger/quotaledger/ledger"
)

// Sessions are the tokens of logins (KindSession). Each keeps where it was
// made (Origin) besides its times; a user lists and ends their own, an
// admin anyone's. A session also ends when its user's password changes
// (every session but the one the change was made with) or is reset (every
// one): whoever knew the old password may hold a session made with it.

// Origin is where a login came from, as the API saw it.
type Origin struct {
	// Address is the client's address: the host of the connection's
	// remote address (the server trusts no proxy's forwarded-for header).
	Address string
	// UserAgent is the User-Agent header the client sent.
	UserAgent string
}

// Caps of what a session keeps of its Origin, in bytes.
const (
	maxOriginAddress = 64
	maxUserAgent     = 256
)

// clean returns o as a session keeps it: valid UTF-8 without control
// characters, each field cut to its cap at a character boundary.
func (o Origin) clean() Origin {
	return Origin{Address: cutText(o.Address, maxOriginAddress), UserAgent: cutText(o.UserAgent, maxUserAgent)}
}

// cutText makes s valid UTF-8 without control characters, at most max
// bytes long.
func cutText(s string, max int) string {
	s = strings.ToValidUTF8(s, "\uFFFD")
	s = strings.Map(func(r rune) rune {
		if unicode.IsControl(r) {
			return -1
		}
		return r
	}, s)
	if len(s) <= max {
		return s
	}
	i := max
	for i > 0 && !utf8.RuneStart(s[i]) {
		i--
	}
	return s[:i]
}

// expired reports whether t has expired at now.
func expired(t *Token, now time.Time) bool {
	return !t.Expires.IsZero() && !now.Before(t.Expires)
}

// SessionFilter selects sessions, newest first (ties by id); Offset and
// Limit cut a window of them (see Lists in identity.go).
type SessionFilter struct {
	User          string // a user uuid; "" = every user's (for admins)
	Offset, Limit int
}

// FindSessions returns the window of the live sessions f selects, with
// their last use as of now, and the count of all of them. A session past
// its expiry no longer works and is not listed, though FlushLastUsed has
// yet to remove it.
func (s *Store) FindSessions(f SessionFilter) ([]*Token, int, error) {
	if _, _, err := window[*Token](nil, f.Offset, f.Limit); err != nil {
		return nil, 0, err
	}
	now := s.opts.Now()
	s.mu.RLock()
	var all []*Token
	for _, e := range s.tokens {
		t := e.tok
		if t.Kind != KindSession || (f.User != "" && t.Owner != f.User) || expired(t, now) {
			continue
		}
		all = append(all, e.view())
	}
	s.mu.RUnlock()
	slices.SortFunc(all, func(a, b *Token) int {
		if c := b.Created.Compare(a.Created); c != 0 {
			return c
		}
		return strings.Compare(a.ID, b.ID)
	})
	return window(all, f.Offset, f.Limit)
}

// session finds the live session id of owner ("" = anyone's). The caller
// holds s.mu or s.wmu.
func (s *Store) session(owner, id string) (*tokenEntry, error) {
	e := s.tokenByIDLocked(id)
	if e == nil || e.tok.Kind != KindSession || (owner != "" && e.tok.Owner != owner) || expired(e.tok, s.opts.Now()) {
		return nil, notFoundf("no session %q", id)
	}
	return e, nil
}

// FindSessionByID returns the session id of the user owner ("" = anyone's,
// for admins), with its last use as of now. Another user's session, a
// token of another kind and an expired session are failure.NotFound.
func (s *Store) FindSessionByID(owner, id string) (*Token, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	e, err := s.session(owner, id)
	if err != nil {
		return nil, err
	}
	return e.view(), nil
}

// DeleteSessionByID ends the session id of the user owner ("" = anyone's,
// for admins): it stops working at once, and identity.token.revoked tells.
// What FindSessionByID does not find is failure.NotFound.
func (s *Store) DeleteSessionByID(ctx context.Context, owner, id string) error {
	return s.deleteTokenOf(ctx, s.session, owner, id)
}

// sessionsOfLocked returns the sessions of the user owner but the one with
// the id keep ("" keeps none), expired or not. The caller holds s.mu or
// s.wmu.
func (s *Store) sessionsOfLocked(owner, keep string) []*Token {
	return slices.DeleteFunc(s.tokensOfLocked(owner), func(t *Token) bool {
		return t.Kind != KindSession || (keep != "" && t.ID == keep)
	})
}

// stageEndSessions stages the revocation of sessions, each with an
// identity.token.revoked saying why (reason); the caller removes them from
// memory in its apply with s.removeTokenLocked.
func (s *Store) stageEndSessions(tx *ledger.Tx, sessions []*Token, reason string) error {
	for _, t := range sessions {
		if err := tx.Delete(tokenKey(t.Hash)); err != nil {
			return err
		}
		ev := tokenEvent(t)
		ev.Reason = reason
		if err := emit(tx, catalog.TokenRevokedType, ev); err != nil {
			return err
		}
	}
	return nil
}

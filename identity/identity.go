// Package identity keeps who may call quotaledger and what they hold: users,
// services, resources, projects, groups and tokens (DESIGN.md §2). Its
// records live in the ledger's Pebble database, in key spaces of their own,
// and every change goes through ledger.Update, so that a change and the
// holdings it implies (a new user's base-project quotas, a registered
// resource's holdings for everyone) commit in one batch, with their events.
//
// A Store keeps every record in memory, loaded on Open; reads never touch
// disk. Records in memory are immutable: a change replaces the pointer, so a
// reader may keep what it got.
package identity

import (
	"context"
	"encoding/json"
	"fmt"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/rs/zerolog"

	"github.com/quotaledger/quotaledger/failure"
	"github.com/quotaledger/quotaledger/ledger"
)

// Errors: every refusal is a *failure.Error whose code says the kind
// (failure.Invalid, NotFound, Conflict, Unauthorized, Forbidden; test it with
// failure.CodeOf) and whose message says what is wrong, with no prefix
// ("username must be an email address").

func invalidf(format string, args ...any) error {
	return failure.Errorf(failure.Invalid, format, args...)
}

func notFoundf(format string, args ...any) error {
	return failure.Errorf(failure.NotFound, format, args...)
}

func conflictf(format string, args ...any) error {
	return failure.Errorf(failure.Conflict, format, args...)
}

// Lists: every list of the store has one shape, FindXs(XFilter) ([]*X,
// int, error). The filter's fields select, its Offset and Limit cut a
// window of the matches in the list's order (Limit 0: every match from
// Offset on), and the int is the count of every match, not only the
// window's. A negative Offset or Limit is failure.Invalid (and a token
// list's bad sort or filter expression); a zero filter, every record, is
// never refused. Paging (page numbers, their defaults and caps) is the
// API's (api/paging.go): the store only cuts the window it is given.

// window is the window of all that offset and limit select, and the count
// of all (see Lists).
func window[T any](all []T, offset, limit int) ([]T, int, error) {
	if offset < 0 || limit < 0 {
		return nil, 0, invalidf("offset and limit must not be negative, got %d and %d", offset, limit)
	}
	lo, hi := min(offset, len(all)), len(all)
	if limit > 0 && limit < hi-lo {
		hi = lo + limit
	}
	return all[lo:hi], len(all), nil
}

// Key spaces of identity records in the ledger's database (ledger.Update
// leaves 'A'..'Z' to its callers, and identity is its only caller: these
// are every key space outside the ledger's own). Values are JSON: identity records are
// written rarely and read from memory, so a flexible layout costs nothing.
const (
	prefixUser     = 'U' // U uuid
	prefixToken    = 'T' // T sha256(secret)
	prefixService  = 'S' // S name
	prefixResource = 'R' // R name
	prefixProject  = 'P' // P uuid
	prefixGroup    = 'G' // G name
	prefixReset    = 'W' // W sha256(reset id)
	prefixMeta     = 'M' // M name: the store's own settings
	prefixFeedback = 'F' // F time user random: users' feedback (feedback.go)
)

func recordKey(prefix byte, id string) []byte {
	return append([]byte{prefix}, id...)
}

// Options configure a Store. Zero fields take defaults.
type Options struct {
	Logger zerolog.Logger
	Now    func() time.Time
	// SessionTTL is how long a login token lives (24h).
	SessionTTL time.Duration
	// ResetTTL is how long a password reset id stays usable (1h).
	ResetTTL time.Duration
	// Policy is the password policy (DefaultPolicy).
	Policy PasswordPolicy
	// Hash sets the argon2id parameters of new hashes (DefaultHashParams).
	Hash HashParams
	// RequireActivation leaves self-registered users inactive until an admin
	// or the verification step activates them.
	RequireActivation bool
	// Metrics, if set, receives the store's metrics (metrics.go).
	Metrics prometheus.Registerer
}

func (o Options) withDefaults() Options {
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.SessionTTL == 0 {
		o.SessionTTL = 24 * time.Hour
	}
	if o.ResetTTL == 0 {
		o.ResetTTL = time.Hour
	}
	if o.Policy == (PasswordPolicy{}) {
		o.Policy = DefaultPolicy
	}
	if o.Hash == (HashParams{}) {
		o.Hash = DefaultHashParams
	}
	return o
}

// Store is the identity layer. Its methods are safe for concurrent use.
type Store struct {
	l    *ledger.Ledger
	opts Options
	log  zerolog.Logger

	// wmu serialises writes: each checks the state, commits through the
	// ledger, then applies the change to memory, so no two can both pass a
	// uniqueness check. Identity writes are rare next to ledger calls.
	wmu sync.Mutex

	mu        sync.RWMutex // guards the maps below
	users     map[string]*User
	byName    map[string]*User // by folded username
	tokens    map[[32]byte]*tokenEntry
	byTokenID map[string]*tokenEntry // by the token's public id
	services  map[string]*Service
	resources map[string]*Resource
	projects  map[string]*Project
	groups    map[string]*Group
	resets    map[[32]byte]*resetRequest

	dummyOnce sync.Once
	dummy     string // a hash to check wrong logins against, made once
}

// Open loads the identity records from l.
func Open(l *ledger.Ledger, opts Options) (*Store, error) {
	opts = opts.withDefaults()
	s := &Store{
		l:         l,
		opts:      opts,
		log:       opts.Logger.With().Str("component", "identity").Logger(),
		users:     make(map[string]*User),
		byName:    make(map[string]*User),
		tokens:    make(map[[32]byte]*tokenEntry),
		byTokenID: make(map[string]*tokenEntry),
		services:  make(map[string]*Service),
		resources: make(map[string]*Resource),
		projects:  make(map[string]*Project),
		groups:    make(map[string]*Group),
		resets:    make(map[[32]byte]*resetRequest),
	}
	loaders := []struct {
		prefix byte
		load   func(v []byte) error
	}{
		{prefixUser, func(v []byte) error {
			u := new(User)
			if err := json.Unmarshal(v, u); err != nil {
				return err
			}
			s.users[u.UUID] = u
			s.byName[foldName(u.Username)] = u
			return nil
		}},
		{prefixService, func(v []byte) error { return loadInto(v, s.services, func(x *Service) string { return x.Name }) }},
		{prefixResource, func(v []byte) error { return loadInto(v, s.resources, func(x *Resource) string { return x.Name }) }},
		{prefixProject, func(v []byte) error { return loadInto(v, s.projects, func(x *Project) string { return x.UUID }) }},
		{prefixGroup, func(v []byte) error { return loadInto(v, s.groups, func(x *Group) string { return x.Name }) }},
		{prefixToken, func(v []byte) error {
			t := new(Token)
			if err := json.Unmarshal(v, t); err != nil {
				return err
			}
			s.addTokenLocked(t)
			return nil
		}},
		{prefixReset, func(v []byte) error {
			r := new(resetRequest)
			if err := json.Unmarshal(v, r); err != nil {
				return err
			}
			s.resets[r.Hash] = r
			return nil
		}},
	}
	for _, ld := range loaders {
		err := l.ScanForeign([]byte{ld.prefix}, func(_, v []byte) error { return ld.load(v) })
		if err != nil {
			return nil, fmt.Errorf("identity: loading %q records: %w", ld.prefix, err)
		}
	}
	l.OnFollow(s.follow)
	if opts.Metrics != nil {
		if err := opts.Metrics.Register(tokenCollector{s}); err != nil {
			return nil, fmt.Errorf("identity: registering metrics: %w", err)
		}
	}
	return s, nil
}

func loadInto[T any](v []byte, m map[string]*T, id func(*T) string) error {
	x := new(T)
	if err := json.Unmarshal(v, x); err != nil {
		return err
	}
	m[id(x)] = x
	return nil
}

// write commits stage through the ledger and, once it is durable, runs
// apply under the write lock of the in-memory state. Callers hold s.wmu.
func (s *Store) write(ctx context.Context, stage func(tx *ledger.Tx) error, apply func()) error {
	if err := s.l.Update(ctx, stage); err != nil {
		return err
	}
	s.mu.Lock()
	apply()
	s.mu.Unlock()
	return nil
}

// put stages a record as JSON.
func put(tx *ledger.Tx, prefix byte, id string, v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return err
	}
	return tx.Put(recordKey(prefix, id), b)
}

// emit stages an event whose payload is v as JSON.
func emit(tx *ledger.Tx, typ string, v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return err
	}
	tx.Emit(typ, b)
	return nil
}

func (s *Store) now() time.Time { return s.opts.Now().UTC().Truncate(time.Microsecond) }

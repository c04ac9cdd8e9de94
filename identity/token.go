package identity

import (
	"cmp"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/quotaledger/quotaledger/events/catalog"
	"github.com/quotaledger/quotaledger/failure"
	"github.com/quotaledger/quotaledger/ledger"
)

// Token secrets are a per-kind prefix and the unpadded base64url of 32
// random bytes: "qlp_" + 43 characters. The prefix makes a leaked secret
// easy to recognise (secret scanners, logs) and to revoke. Only the SHA-256
// of the whole secret is stored; the secret is shown once, at creation.
const (
	prefixSession  = "qls_"
	prefixPersonal = "qlp_"
	prefixSvc      = "qlk_"

	secretPrefixLen = 4
	secretRandLen   = 43 // base64.RawURLEncoding.EncodedLen(32)
	secretLen       = secretPrefixLen + secretRandLen
)

// b64urlValue maps a byte to its base64url value, or -1.
var b64urlValue = func() (t [256]int8) {
	const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
	for i := range t {
		t[i] = -1
	}
	for i := 0; i < len(alphabet); i++ {
		t[alphabet[i]] = int8(i)
	}
	return t
}()

func secretPrefix(kind TokenKind) (string, bool) {
	switch kind {
	case KindSession:
		return prefixSession, true
	case KindPersonal:
		return prefixPersonal, true
	case KindService:
		return prefixSvc, true
	}
	return "", false
}

// newSecret makes a secret of kind and its hash. kind must be valid.
func newSecret(kind TokenKind) (secret string, hash [32]byte) {
	prefix, ok := secretPrefix(kind)
	if !ok {
		panic(fmt.Sprintf("identity: no secret prefix for token kind %q", kind))
	}
	var b [32]byte
	_, _ = rand.Read(b[:]) // never fails (crypto/rand since Go 1.24)
	secret = prefix + base64.RawURLEncoding.EncodeToString(b[:])
	return secret, sha256.Sum256([]byte(secret))
}

// parseSecret reports the kind of a well-formed secret: a known prefix,
// exactly 43 base64url characters, the last one with no stray bits (the
// canonical encoding of 32 bytes). It does not allocate.
func parseSecret(s string) (TokenKind, bool) {
	if len(s) != secretLen {
		return "", false
	}
	var kind TokenKind
	switch s[:secretPrefixLen] {
	case prefixSession:
		kind = KindSession
	case prefixPersonal:
		kind = KindPersonal
	case prefixSvc:
		kind = KindService
	default:
		return "", false
	}
	for i := secretPrefixLen; i < secretLen; i++ {
		if b64urlValue[s[i]] < 0 {
			return "", false
		}
	}
	// 43 characters carry 258 bits: the last 2 are zero for 32 bytes.
	if b64urlValue[s[secretLen-1]]&3 != 0 {
		return "", false
	}
	return kind, true
}

func tokenID(hash [32]byte) string { return hex.EncodeToString(hash[:8]) }

func tokenKey(hash [32]byte) []byte { return recordKey(prefixToken, string(hash[:])) }

// tokenEvent is the payload of token events: never the secret, nor its hash.
func tokenEvent(t *Token) catalog.Token {
	return catalog.Token{Expires: t.Expires, ID: t.ID, Kind: string(t.Kind), Name: t.Name, Owner: t.Owner,
		ReadOnly: t.ReadOnly}
}

// stageToken makes a token and stages its record and the event
// "identity.token.created". It returns the secret (to show once) and the
// record, which the caller adds to memory in its apply with
// s.addTokenLocked. set, if given, fills the record's other fields (a
// session's origin) before it is staged. The caller holds s.wmu and has
// checked the owner.
func (s *Store) stageToken(tx *ledger.Tx, kind TokenKind, owner, name string, readOnly bool, expires time.Time, set ...func(*Token)) (secret string, t *Token, err error) {
	if _, ok := secretPrefix(kind); !ok {
		return "", nil, invalidf("unknown token kind %q", kind)
	}
	if owner == "" {
		return "", nil, invalidf("a token needs an owner")
	}
	var hash [32]byte
	for {
		secret, hash = newSecret(kind)
		// Ids are 64 bits of the hash: a clash is all but impossible, but
		// an id must name one token.
		if s.tokenByIDLocked(tokenID(hash)) == nil {
			break
		}
	}
	now := s.now()
	if !expires.IsZero() {
		expires = expires.UTC().Truncate(time.Microsecond)
	}
	t = &Token{ID: tokenID(hash), Hash: hash, Kind: kind, Owner: owner, Name: name, ReadOnly: readOnly,
		Expires: expires, Created: now, Updated: now}
	for _, f := range set {
		f(t)
	}
	if err := put(tx, prefixToken, string(hash[:]), t); err != nil {
		return "", nil, err
	}
	if err := emit(tx, catalog.TokenCreatedType, tokenEvent(t)); err != nil {
		return "", nil, err
	}
	return secret, t, nil
}

// stageRevoke stages the removal of t and the event "identity.token.revoked";
// the caller removes it from memory in its apply with s.removeTokenLocked.
func (s *Store) stageRevoke(tx *ledger.Tx, t *Token) error {
	if err := tx.Delete(tokenKey(t.Hash)); err != nil {
		return err
	}
	return emit(tx, catalog.TokenRevokedType, tokenEvent(t))
}

// addTokenLocked adds a staged token to memory. The caller holds s.mu.
func (s *Store) addTokenLocked(t *Token) {
	e := newTokenEntry(t)
	s.tokens[t.Hash] = e
	s.byTokenID[t.ID] = e
}

// removeTokenLocked removes a token from memory. The caller holds s.mu.
func (s *Store) removeTokenLocked(t *Token) {
	delete(s.tokens, t.Hash)
	if e := s.byTokenID[t.ID]; e != nil && e.tok.Hash == t.Hash {
		delete(s.byTokenID, t.ID)
	}
}

// tokensOfLocked returns every token of owner (a user uuid or a service
// name), of any kind, in a new slice. The caller holds s.mu or s.wmu.
func (s *Store) tokensOfLocked(owner string) []*Token {
	var out []*Token
	for _, e := range s.tokens {
		if e.tok.Owner == owner {
			out = append(out, e.tok)
		}
	}
	return out
}

// tokenByIDLocked finds a token by its public id. The caller holds s.mu or
// s.wmu.
func (s *Store) tokenByIDLocked(id string) *tokenEntry {
	return s.byTokenID[id]
}

// view returns a copy of the token with its last use as known in memory.
// The caller holds s.mu.
func (e *tokenEntry) view() *Token {
	t := *e.tok
	if ns := e.lastUsed.Load(); ns > unixNanoOrZero(t.LastUsed) {
		t.LastUsed = time.Unix(0, ns).UTC()
	}
	return &t
}

func (e *tokenEntry) row() tokenRow {
	return tokenRow{t: e.tok, lastUsed: max(e.lastUsed.Load(), unixNanoOrZero(e.tok.LastUsed))}
}

func unixNanoOrZero(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	return t.UnixNano()
}

// Principal is who made a call, as its token tells: a user (session or
// personal access token) or a service.
type Principal struct {
	Kind    TokenKind
	Token   *Token
	User    *User    // for session and personal tokens
	Service *Service // for service tokens
}

// ReadOnly reports whether the principal may not change anything: a
// personal access token made read-only.
func (p Principal) ReadOnly() bool {
	return p.Kind == KindPersonal && p.Token != nil && p.Token.ReadOnly
}

// IsAdmin reports whether the principal is a user with the admin role.
func (p Principal) IsAdmin() bool { return p.User != nil && p.User.Role == RoleAdmin }

// The errors of Authenticate are made once: the hot path does not allocate,
// even on a miss.
var (
	errTokenInvalid   = failure.Errorf(failure.Unauthorized, "invalid token")
	errTokenMalformed = failure.Errorf(failure.Unauthorized, "invalid token") // the caller sees a miss
	errTokenExpired   = failure.Errorf(failure.Unauthorized, "token expired")
	errTokenUser      = failure.Errorf(failure.Unauthorized, "the token's user is inactive or removed")
	errTokenService   = failure.Errorf(failure.Unauthorized, "the token's service was removed or has a newer token")
)

// AuthFailure names why Authenticate refused a secret, for a metric:
// "malformed" (it cannot be a token), "unknown" (no such token: never
// made, revoked, or expired and removed), "expired", "inactive" (its user
// is inactive or removed), "superseded" (its service was removed or has a
// newer token); "" for an error Authenticate does not return. It does not
// allocate.
func AuthFailure(err error) string {
	switch err {
	case errTokenMalformed:
		return "malformed"
	case errTokenInvalid:
		return "unknown"
	case errTokenExpired:
		return "expired"
	case errTokenUser:
		return "inactive"
	case errTokenService:
		return "superseded"
	}
	return ""
}

// lastUsedGrain is how finely last use is tracked: a token used many times
// a second is stored once a second, which keeps its cache line quiet.
const lastUsedGrain = int64(time.Second)

// Authenticate resolves a secret to its principal: one map lookup under a
// read lock, no write (the last use is kept in memory; FlushLastUsed
// stores it). A secret that is not of our making but could have been
// imported (ImportAccessToken) is hashed and looked up the same way. A
// malformed, unknown or expired secret, or one whose user is inactive or
// gone, or whose service has renewed its token, is failure.Unauthorized. It does
// not allocate.
func (s *Store) Authenticate(secret string) (Principal, error) {
	var hash [32]byte
	kind, ok := parseSecret(secret)
	if ok {
		var buf [secretLen]byte
		copy(buf[:], secret)
		hash = sha256.Sum256(buf[:])
	} else {
		// Not one of ours: it may be a secret an operator chose
		// (ImportAccessToken), which can only be a personal token.
		if !importableSecret(secret) {
			return Principal{}, errTokenMalformed
		}
		var buf [maxImportedSecret]byte
		n := copy(buf[:], secret)
		hash = sha256.Sum256(buf[:n])
		kind = KindPersonal
	}
	now := s.opts.Now()

	s.mu.RLock()
	e := s.tokens[hash]
	if e == nil {
		s.mu.RUnlock()
		return Principal{}, errTokenInvalid
	}
	p := Principal{Kind: kind, Token: e.tok}
	switch kind {
	case KindService:
		p.Service = s.services[p.Token.Owner]
	default:
		p.User = s.users[p.Token.Owner]
	}
	s.mu.RUnlock()

	t := p.Token
	if subtle.ConstantTimeCompare(t.Hash[:], hash[:]) != 1 || t.Kind != kind {
		return Principal{}, errTokenInvalid
	}
	if !t.Expires.IsZero() && !now.Before(t.Expires) {
		return Principal{}, errTokenExpired
	}
	switch kind {
	case KindService:
		if p.Service == nil || p.Service.TokenID != t.ID {
			return Principal{}, errTokenService
		}
	default:
		if p.User == nil || !p.User.Active {
			return Principal{}, errTokenUser
		}
	}
	if ns := now.UnixNano(); ns-e.lastUsed.Load() >= lastUsedGrain {
		e.lastUsed.Store(ns)
	}
	return p, nil
}

// FlushLastUsed stores, in one write, the last use of every token used
// since the last flush, and removes the session tokens that have expired.
// The server calls it every minute and on shutdown.
func (s *Store) FlushLastUsed(ctx context.Context) error {
	s.wmu.Lock()
	defer s.wmu.Unlock()
	now := s.opts.Now()
	type change struct {
		e   *tokenEntry
		tok *Token
	}
	var used []change
	var expired []*Token
	s.mu.RLock()
	for _, e := range s.tokens {
		t := e.tok
		if t.Kind == KindSession && !t.Expires.IsZero() && !now.Before(t.Expires) {
			expired = append(expired, t)
			continue
		}
		if ns := e.lastUsed.Load(); ns > unixNanoOrZero(t.LastUsed) {
			nt := *t
			nt.LastUsed = time.Unix(0, ns).UTC()
			used = append(used, change{e, &nt})
		}
	}
	s.mu.RUnlock()
	if len(used) == 0 && len(expired) == 0 {
		return nil
	}
	return s.write(ctx, func(tx *ledger.Tx) error {
		for _, c := range used {
			if err := put(tx, prefixToken, string(c.tok.Hash[:]), c.tok); err != nil {
				return err
			}
		}
		for _, t := range expired {
			if err := tx.Delete(tokenKey(t.Hash)); err != nil {
				return err
			}
			ev := tokenEvent(t)
			ev.Reason = catalog.TokenExpired
			if err := emit(tx, catalog.TokenRevokedType, ev); err != nil {
				return err
			}
		}
		return nil
	}, func() {
		// s.wmu kept every entry in place; an entry's last use may have
		// moved on since, and stays in its atomic for the next flush.
		for _, c := range used {
			c.e.tok = c.tok
		}
		for _, t := range expired {
			s.removeTokenLocked(t)
		}
	})
}

// DeleteSession ends a session (logout): like DeleteAccessToken, it revokes
// the token, which stops working at once. A session already gone (revoked,
// or expired and removed) is not an error.
func (s *Store) DeleteSession(ctx context.Context, t *Token) error {
	s.wmu.Lock()
	defer s.wmu.Unlock()
	s.mu.RLock()
	e := s.tokens[t.Hash]
	s.mu.RUnlock()
	if e == nil {
		return nil
	}
	if e.tok.Kind != KindSession {
		return invalidf("token %s is not a session token", e.tok.ID)
	}
	cur := e.tok
	return s.write(ctx, func(tx *ledger.Tx) error { return s.stageRevoke(tx, cur) },
		func() { s.removeTokenLocked(cur) })
}

// Personal access tokens.

const maxTokenName = 100

func checkTokenName(name string) error {
	if !utf8.ValidString(name) {
		return invalidf("token name must be valid UTF-8")
	}
	n := utf8.RuneCountInString(name)
	if n < 1 || n > maxTokenName || strings.TrimSpace(name) == "" {
		return invalidf("token name must be 1 to %d characters, not all blank", maxTokenName)
	}
	if strings.ContainsFunc(name, unicode.IsControl) {
		return invalidf("token name must not contain control characters")
	}
	return nil
}

// checkExpiry accepts zero (never) or a time after now, within the years
// a record can hold.
func (s *Store) checkExpiry(expires time.Time) error {
	if expires.IsZero() {
		return nil
	}
	if !expires.After(s.opts.Now()) {
		return invalidf("expiry must be in the future")
	}
	if expires.UTC().Year() > 9999 {
		return invalidf("expiry must be before the year 10000")
	}
	return nil
}

// CreateAccessToken makes a personal access token for the user owner (a
// uuid), named name (1 to 100 characters), expiring at expires (zero:
// never; otherwise in the future), read-only if readOnly. It returns the
// secret, shown this once, and the record. An unknown owner is
// failure.NotFound; a bad name or expiry, failure.Invalid.
func (s *Store) CreateAccessToken(ctx context.Context, owner, name string, expires time.Time, readOnly bool) (string, *Token, error) {
	if err := checkTokenName(name); err != nil {
		return "", nil, err
	}
	if err := s.checkExpiry(expires); err != nil {
		return "", nil, err
	}
	s.wmu.Lock()
	defer s.wmu.Unlock()
	s.mu.RLock()
	u := s.users[owner]
	s.mu.RUnlock()
	if u == nil {
		return "", nil, notFoundf("no user %q", owner)
	}
	var secret string
	var tok *Token
	err := s.write(ctx, func(tx *ledger.Tx) error {
		var err error
		secret, tok, err = s.stageToken(tx, KindPersonal, owner, name, readOnly, expires)
		return err
	}, func() { s.addTokenLocked(tok) })
	if err != nil {
		return "", nil, err
	}
	return secret, tok, nil
}

// accessToken finds the personal token id of owner ("" = anyone's).
func (s *Store) accessToken(owner, id string) (*tokenEntry, error) {
	e := s.tokenByIDLocked(id)
	if e == nil || e.tok.Kind != KindPersonal || (owner != "" && e.tok.Owner != owner) {
		return nil, notFoundf("no access token %q", id)
	}
	return e, nil
}

// FindAccessTokenByID returns the personal access token id of the user
// owner, with its last use as of now. Another user's token is
// failure.NotFound, and so is any token for owner "" (an admin's lookup is
// FindAnyAccessTokenByID).
func (s *Store) FindAccessTokenByID(owner, id string) (*Token, error) {
	if owner == "" {
		return nil, notFoundf("no access token %q", id)
	}
	s.mu.RLock()
	defer s.mu.RUnlock()
	e, err := s.accessToken(owner, id)
	if err != nil {
		return nil, err
	}
	return e.view(), nil
}

// FindAnyAccessTokenByID returns any user's personal access token (for
// admins).
func (s *Store) FindAnyAccessTokenByID(id string) (*Token, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	e, err := s.accessToken("", id)
	if err != nil {
		return nil, err
	}
	return e.view(), nil
}

// FindSelfAccessToken returns the personal access token p authenticated
// with, as of now. A principal that did not use a personal access token is
// failure.Forbidden; a token revoked since, failure.NotFound.
func (s *Store) FindSelfAccessToken(p Principal) (*Token, error) {
	if p.Kind != KindPersonal || p.Token == nil {
		return nil, failure.Errorf(failure.Forbidden, "only a personal access token has a self")
	}
	s.mu.RLock()
	defer s.mu.RUnlock()
	e := s.tokens[p.Token.Hash]
	if e == nil {
		return nil, notFoundf("access token %s was revoked", p.Token.ID)
	}
	return e.view(), nil
}

// TokenUpdate changes a personal access token; nil fields stay. A zero
// Expires means never.
type TokenUpdate struct {
	Name     *string
	Expires  *time.Time
	ReadOnly *bool
}

// UpdateAccessToken changes the personal access token id of owner ("" =
// anyone's, for admins) and returns it. Its Updated time changes; an empty
// update changes nothing.
func (s *Store) UpdateAccessToken(ctx context.Context, owner, id string, upd TokenUpdate) (*Token, error) {
	if upd.Name != nil {
		if err := checkTokenName(*upd.Name); err != nil {
			return nil, err
		}
	}
	if upd.Expires != nil {
		if err := s.checkExpiry(*upd.Expires); err != nil {
			return nil, err
		}
	}
	s.wmu.Lock()
	defer s.wmu.Unlock()
	s.mu.RLock()
	e, err := s.accessToken(owner, id)
	var nt *Token
	if err == nil {
		nt = e.view() // carries the last use into the record
	}
	s.mu.RUnlock()
	if err != nil {
		return nil, err
	}
	if upd == (TokenUpdate{}) {
		return nt, nil
	}
	if upd.Name != nil {
		nt.Name = *upd.Name
	}
	if upd.Expires != nil {
		nt.Expires = time.Time{}
		if !upd.Expires.IsZero() {
			nt.Expires = upd.Expires.UTC().Truncate(time.Microsecond)
		}
	}
	if upd.ReadOnly != nil {
		nt.ReadOnly = *upd.ReadOnly
	}
	nt.Updated = s.now()
	err = s.write(ctx, func(tx *ledger.Tx) error {
		if err := put(tx, prefixToken, string(nt.Hash[:]), nt); err != nil {
			return err
		}
		return emit(tx, catalog.TokenUpdatedType, tokenEvent(nt))
	}, func() { e.tok = nt })
	if err != nil {
		return nil, err
	}
	return nt, nil
}

// DeleteAccessToken revokes the personal access token id of owner ("" =
// anyone's, for admins): it stops working at once, its record goes, and
// identity.token.revoked tells. Deleting a token is revoking it; the store
// says Delete (DeleteAccessToken, DeleteSession), as for every other
// record, and the event keeps its lineage's word. What FindAccessTokenByID
// does not find is failure.NotFound here too: a session is ended with
// DeleteSessionByID, and a service token is renewed with its service
// (RenewServiceToken).
func (s *Store) DeleteAccessToken(ctx context.Context, owner, id string) error {
	return s.deleteTokenOf(ctx, s.accessToken, owner, id)
}

// deleteTokenOf revokes the token find finds for owner and id (a session
// or a personal access token: find says which kinds it names), under the
// writer's lock, so that nothing changes it between the lookup and the
// write.
func (s *Store) deleteTokenOf(ctx context.Context, find func(owner, id string) (*tokenEntry, error), owner, id string) error {
	s.wmu.Lock()
	defer s.wmu.Unlock()
	s.mu.RLock()
	e, err := find(owner, id)
	s.mu.RUnlock()
	if err != nil {
		return err
	}
	t := e.tok
	return s.write(ctx, func(tx *ledger.Tx) error { return s.stageRevoke(tx, t) },
		func() { s.removeTokenLocked(t) })
}

// TokenFilter selects personal access tokens, ordered by Sort; Offset and
// Limit cut a window of them (see Lists in identity.go).
type TokenFilter struct {
	Owner  string // user uuid; "" = everyone's (for admins)
	Name   string // exact name
	Search string // case-insensitive substring of the name
	// Sort is a comma-separated list of fields, each descending with a "-"
	// prefix: id, name, owner, kind, read_only, created, updated, expires,
	// last_used (or created_date, updated_date, expiry_date,
	// last_used_date). Default "-created"; ties go by id.
	Sort string
	// Filter is a JSON Logic expression over the same fields (filter.go).
	Filter        json.RawMessage
	Offset, Limit int
}

type sortKey struct {
	f    field
	desc bool
}

func parseSort(spec string) ([]sortKey, error) {
	if strings.TrimSpace(spec) == "" {
		spec = "-created"
	}
	var keys []sortKey
	for part := range strings.SplitSeq(spec, ",") {
		part = strings.TrimSpace(part)
		k := sortKey{}
		if name, ok := strings.CutPrefix(part, "-"); ok {
			part, k.desc = name, true
		}
		f, ok := filterFields[part]
		if !ok {
			return nil, invalidf("cannot sort by %q (fields: id, name, owner, kind, read_only, created, updated, expires, last_used)", part)
		}
		k.f = f
		keys = append(keys, k)
	}
	return keys, nil
}

// compareField orders two rows by f. Unset times: a token that never
// expires sorts after every expiry date; one never used, before every use.
func compareField(f field, a, b *tokenRow) int {
	switch f {
	case fID:
		return strings.Compare(a.t.ID, b.t.ID)
	case fName:
		return strings.Compare(a.t.Name, b.t.Name)
	case fOwner:
		return strings.Compare(a.t.Owner, b.t.Owner)
	case fKind:
		return strings.Compare(string(a.t.Kind), string(b.t.Kind))
	case fReadOnly:
		switch {
		case a.t.ReadOnly == b.t.ReadOnly:
			return 0
		case a.t.ReadOnly:
			return 1
		}
		return -1
	case fCreated:
		return a.t.Created.Compare(b.t.Created)
	case fUpdated:
		return a.t.Updated.Compare(b.t.Updated)
	case fExpires:
		az, bz := a.t.Expires.IsZero(), b.t.Expires.IsZero()
		if az || bz {
			return cmpBool(az, bz)
		}
		return a.t.Expires.Compare(b.t.Expires)
	default:
		return cmp.Compare(a.lastUsed, b.lastUsed)
	}
}

// cmpBool orders false before true.
func cmpBool(a, b bool) int {
	switch {
	case a == b:
		return 0
	case a:
		return 1
	}
	return -1
}

// FindAccessTokens returns the window of the personal access tokens f
// selects, with their last use as of now, and the count of all of them. A
// bad sort, filter, offset or limit is failure.Invalid; a window past the
// last token is empty.
func (s *Store) FindAccessTokens(f TokenFilter) ([]*Token, int, error) {
	keys, err := parseSort(f.Sort)
	if err != nil {
		return nil, 0, err
	}
	filter, err := compileFilter(f.Filter)
	if err != nil {
		return nil, 0, err
	}
	if _, _, err := window[tokenRow](nil, f.Offset, f.Limit); err != nil {
		return nil, 0, err
	}
	search := strings.ToLower(f.Search)

	s.mu.RLock()
	var rows []tokenRow
	for _, e := range s.tokens {
		t := e.tok
		if t.Kind != KindPersonal || (f.Owner != "" && t.Owner != f.Owner) ||
			(f.Name != "" && t.Name != f.Name) ||
			(search != "" && !strings.Contains(strings.ToLower(t.Name), search)) {
			continue
		}
		r := e.row()
		if !filter.match(&r) {
			continue
		}
		rows = append(rows, r)
	}
	s.mu.RUnlock()

	slices.SortFunc(rows, func(a, b tokenRow) int {
		for _, k := range keys {
			c := compareField(k.f, &a, &b)
			if k.desc {
				c = -c
			}
			if c != 0 {
				return c
			}
		}
		return strings.Compare(a.t.ID, b.t.ID)
	})
	win, n, _ := window(rows, f.Offset, f.Limit)
	out := make([]*Token, 0, len(win))
	for _, r := range win {
		t := *r.t
		if r.lastUsed != 0 {
			t.LastUsed = time.Unix(0, r.lastUsed).UTC()
		}
		out = append(out, &t)
	}
	return out, n, nil
}

// Imported secrets: what an operator may choose as a token (the admin token
// of a deployment, QUOTALEDGER_ADMIN_TOKEN). Visible ASCII only, since
// header values are trimmed of spaces; at least 32 bytes, so that a chosen
// secret is no easier to guess than 192 random bits written in base64.
const (
	minImportedSecret = 32
	maxImportedSecret = 256
)

// importableSecret reports whether s may be an imported secret: 32 to 256
// bytes of visible ASCII (0x21 to 0x7e). It does not allocate.
func importableSecret(s string) bool {
	if len(s) < minImportedSecret || len(s) > maxImportedSecret {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < 0x21 || s[i] > 0x7e {
			return false
		}
	}
	return true
}

// CheckImportedSecret reports, as failure.Invalid, why secret cannot be
// imported by ImportAccessToken, or nil if it can (it may still be taken).
func CheckImportedSecret(secret string) error {
	if kind, ours := parseSecret(secret); ours {
		if kind != KindPersonal {
			return invalidf("an imported secret may not have the form of a %s token", kind)
		}
		return nil
	}
	if !importableSecret(secret) {
		return invalidf("an imported secret must be %d to %d bytes of visible ASCII, without spaces",
			minImportedSecret, maxImportedSecret)
	}
	return nil
}

// ImportAccessToken makes secret, which the caller chose rather than the
// store, a personal access token named name of the user owner (a uuid),
// never expiring and not read-only: the way a deployment hands the server
// its admin token. secret must be 32 to 256 bytes of visible ASCII (no
// space), and if it has the form of a secret of ours, that of a personal
// access token. Only its SHA-256 is stored. A secret that is already a
// token is failure.Conflict; an unknown owner, failure.NotFound; a bad secret or name,
// failure.Invalid.
func (s *Store) ImportAccessToken(ctx context.Context, owner, name, secret string) (*Token, error) {
	if err := checkTokenName(name); err != nil {
		return nil, err
	}
	if err := CheckImportedSecret(secret); err != nil {
		return nil, err
	}
	hash := sha256.Sum256([]byte(secret))
	s.wmu.Lock()
	defer s.wmu.Unlock()
	s.mu.RLock()
	u := s.users[owner]
	taken := s.tokens[hash] != nil || s.tokenByIDLocked(tokenID(hash)) != nil
	s.mu.RUnlock()
	if u == nil {
		return nil, notFoundf("no user %q", owner)
	}
	if taken {
		return nil, conflictf("that secret is already a token")
	}
	now := s.now()
	t := &Token{ID: tokenID(hash), Hash: hash, Kind: KindPersonal, Owner: owner, Name: name,
		Created: now, Updated: now}
	err := s.write(ctx, func(tx *ledger.Tx) error {
		if err := put(tx, prefixToken, string(hash[:]), t); err != nil {
			return err
		}
		ev := tokenEvent(t)
		ev.Imported = true
		return emit(tx, catalog.TokenCreatedType, ev)
	}, func() { s.addTokenLocked(t) })
	if err != nil {
		return nil, err
	}
	return t, nil
}

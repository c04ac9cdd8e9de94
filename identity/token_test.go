package identity

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/cockroachdb/pebble/v2/vfs"
	"github.com/rs/zerolog"

	"github.com/quotaledger/quotaledger/failure"
	"github.com/quotaledger/quotaledger/internal/testkit"
	"github.com/quotaledger/quotaledger/ledger"
)

// tokEnv is a store on a ledger on disk or in memory, with a clock for
// expiry and last use.
type tokEnv struct {
	*stores
	tb    testing.TB
	clock *testkit.Clock
}

func newTokEnv(tb testing.TB, onDisk bool) *tokEnv {
	tb.Helper()
	e := &tokEnv{tb: tb, clock: testkit.NewClock(time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC))}
	opts := Options{Logger: zerolog.Nop(), Now: e.clock.Now}
	if onDisk {
		e.stores = openStores(tb, nil, tb.TempDir(), opts)
	} else {
		e.stores = openStores(tb, vfs.NewMem(), "", opts)
	}
	return e
}

const tokPassword = "correct horse battery"

func (e *tokEnv) user(name string, role Role) *User {
	e.tb.Helper()
	u, err := e.s.CreateUser(context.Background(), NewUser{Username: name + "@example.org",
		Password: tokPassword, Role: role, Active: true})
	if err != nil {
		e.tb.Fatal(err)
	}
	return u
}

func (e *tokEnv) pat(owner, name string, expires time.Time, readOnly bool) (string, *Token) {
	e.tb.Helper()
	secret, tok, err := e.s.CreateAccessToken(context.Background(), owner, name, expires, readOnly)
	if err != nil {
		e.tb.Fatal(err)
	}
	return secret, tok
}

// service makes a Service record with a fresh token directly (as the
// service registry would).
func (e *tokEnv) service(name string) (string, *Service) {
	e.tb.Helper()
	s := e.s
	s.wmu.Lock()
	defer s.wmu.Unlock()
	var secret string
	var tok *Token
	svc := &Service{Name: name, Type: "compute", Endpoints: []Endpoint{}, Created: s.now()}
	err := s.write(context.Background(), func(tx *ledger.Tx) error {
		var err error
		if secret, tok, err = s.stageToken(tx, KindService, name, name, false, time.Time{}); err != nil {
			return err
		}
		svc.TokenID = tok.ID
		return put(tx, prefixService, name, svc)
	}, func() {
		s.services[name] = svc
		s.addTokenLocked(tok)
	})
	if err != nil {
		e.tb.Fatal(err)
	}
	return secret, svc
}

// setActive stores a copy of u with its active flag set, as an admin would.
func (e *tokEnv) setActive(u *User, active bool) {
	e.tb.Helper()
	s := e.s
	s.wmu.Lock()
	defer s.wmu.Unlock()
	nu := *s.users[u.UUID]
	nu.Active = active
	err := s.write(context.Background(), func(tx *ledger.Tx) error { return put(tx, prefixUser, nu.UUID, &nu) },
		func() {
			s.users[nu.UUID] = &nu
			s.byName[foldName(nu.Username)] = &nu
		})
	if err != nil {
		e.tb.Fatal(err)
	}
}

func (e *tokEnv) events(typ string) []map[string]any {
	e.tb.Helper()
	evs, err := e.l.Outbox(0, 1<<20)
	if err != nil {
		e.tb.Fatal(err)
	}
	var out []map[string]any
	for _, ev := range evs {
		if ev.Type != typ {
			continue
		}
		var m map[string]any
		if err := json.Unmarshal(ev.Data, &m); err != nil {
			e.tb.Fatal(err)
		}
		out = append(out, m)
	}
	return out
}

// tokWantErr checks that err has the code want ("": no error).
func tokWantErr(tb testing.TB, err error, want failure.Code) {
	tb.Helper()
	if got := failure.CodeOf(err); got != want {
		tb.Fatalf("error %v (%q), want %q", err, got, want)
	}
	if err != nil && strings.HasPrefix(err.Error(), "identity:") {
		tb.Fatalf("message %q names the package", err)
	}
}

func TestParseSecret(t *testing.T) {
	good := prefixPersonal + strings.Repeat("A", 42) + "Q" // Q = 16: low bits clear
	for _, tc := range []struct {
		name   string
		secret string
		kind   TokenKind
		ok     bool
	}{
		{"OK/personal", good, KindPersonal, true},
		{"OK/session", prefixSession + good[4:], KindSession, true},
		{"OK/service", prefixSvc + good[4:], KindService, true},
		{"OK/url-alphabet", prefixPersonal + strings.Repeat("-_", 21) + "w", KindPersonal, true},
		{"Bad/empty", "", "", false},
		{"Bad/short", good[:len(good)-1], "", false},
		{"Bad/long", good + "A", "", false},
		{"Bad/unknown-prefix", "qlx_" + good[4:], "", false},
		{"Bad/upper-prefix", "QLP_" + good[4:], "", false},
		{"Bad/std-alphabet", prefixPersonal + strings.Repeat("+", 42) + "A", "", false},
		{"Bad/padding", prefixPersonal + strings.Repeat("A", 42) + "=", "", false},
		{"Bad/non-canonical-tail", prefixPersonal + strings.Repeat("A", 42) + "R", "", false},
		{"Bad/space", prefixPersonal + strings.Repeat("A", 41) + " A", "", false},
		{"Bad/non-ascii", prefixPersonal + strings.Repeat("A", 41) + "é", "", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			kind, ok := parseSecret(tc.secret)
			if kind != tc.kind || ok != tc.ok {
				t.Fatalf("parseSecret(%q) = %q, %v; want %q, %v", tc.secret, kind, ok, tc.kind, tc.ok)
			}
		})
	}
}

func TestNewSecret(t *testing.T) {
	seen := map[string]bool{}
	for _, kind := range []TokenKind{KindSession, KindPersonal, KindService} {
		for range 100 {
			secret, hash := newSecret(kind)
			if k, ok := parseSecret(secret); !ok || k != kind {
				t.Fatalf("newSecret(%q) = %q, which parses as %q, %v", kind, secret, k, ok)
			}
			if hash != sha256.Sum256([]byte(secret)) {
				t.Fatalf("hash of %q is not its SHA-256", secret)
			}
			if seen[secret[4:]] {
				t.Fatalf("secret %q made twice", secret)
			}
			seen[secret[4:]] = true
		}
	}
	secret := prefixSession + strings.Repeat("A", 43)
	if n := testing.AllocsPerRun(100, func() { parseSecret(secret) }); n != 0 {
		t.Fatalf("parseSecret allocates %v times", n)
	}
}

// FuzzParseSecret checks parseSecret against a strict base64url decoder:
// it accepts exactly a known prefix and the canonical encoding of 32 bytes.
func FuzzParseSecret(f *testing.F) {
	for _, s := range []string{"", "qlp_", prefixPersonal + strings.Repeat("A", 43),
		prefixSession + strings.Repeat("_", 42) + "w", prefixSvc + strings.Repeat("-", 42) + "R",
		"qlp_" + strings.Repeat("=", 43), "Bearer qlp_x", "\xff\xfe"} {
		f.Add(s)
	}
	secret, _ := newSecret(KindPersonal)
	f.Add(secret)
	f.Fuzz(func(t *testing.T, s string) {
		kind, ok := parseSecret(s)
		want := false
		var wantKind TokenKind
		if len(s) >= 4 {
			switch s[:4] {
			case prefixSession:
				wantKind = KindSession
			case prefixPersonal:
				wantKind = KindPersonal
			case prefixSvc:
				wantKind = KindService
			}
			b, err := base64.RawURLEncoding.Strict().DecodeString(s[4:])
			want = wantKind != "" && err == nil && len(b) == 32 &&
				!strings.ContainsAny(s[4:], "\r\n") // the decoder skips newlines
		}
		if ok != want {
			t.Fatalf("parseSecret(%q) ok = %v, want %v", s, ok, want)
		}
		if ok && kind != wantKind {
			t.Fatalf("parseSecret(%q) kind = %q, want %q", s, kind, wantKind)
		}
		if !ok && kind != "" {
			t.Fatalf("parseSecret(%q) refused but gave kind %q", s, kind)
		}
	})
}

func TestAuthenticate(t *testing.T) {
	ctx := context.Background()
	e := newTokEnv(t, false)
	admin := e.user("admin", RoleAdmin)
	alice := e.user("alice", RoleUser)
	bob := e.user("bob", RoleUser)

	pat, patTok := e.pat(alice.UUID, "ci", time.Time{}, false)
	roSecret, _ := e.pat(alice.UUID, "read", time.Time{}, true)
	adminPat, _ := e.pat(admin.UUID, "ops", time.Time{}, false)
	shortLived, _ := e.pat(alice.UUID, "short", e.clock.Now().Add(time.Hour), false)
	bobPat, _ := e.pat(bob.UUID, "bob", time.Time{}, false)
	revoked, revokedTok := e.pat(alice.UUID, "gone", time.Time{}, false)
	tokWantErr(t, e.s.DeleteAccessToken(ctx, alice.UUID, revokedTok.ID), "")
	session, _, _, err := e.s.Login(ctx, alice.Username, tokPassword, Origin{})
	tokWantErr(t, err, "")
	svcSecret, svc := e.service("cyclades")
	// bob is deactivated: his tokens stop working, and come back with him.
	e.setActive(bob, false)
	e.clock.Advance(2 * time.Hour) // shortLived expires

	unknown, _ := newSecret(KindPersonal)
	for _, tc := range []struct {
		name     string
		secret   string
		err      failure.Code
		kind     TokenKind
		user     *User
		readOnly bool
		admin    bool
	}{
		{"OK/personal", pat, "", KindPersonal, alice, false, false},
		{"OK/read-only", roSecret, "", KindPersonal, alice, true, false},
		{"OK/admin", adminPat, "", KindPersonal, admin, false, true},
		{"OK/session", session, "", KindSession, alice, false, false},
		{"OK/service", svcSecret, "", KindService, nil, false, false},
		{"ErrUnauthorized/malformed", "Bearer " + pat, failure.Unauthorized, "", nil, false, false},
		{"ErrUnauthorized/unknown", unknown, failure.Unauthorized, "", nil, false, false},
		{"ErrUnauthorized/other-prefix", prefixSession + pat[4:], failure.Unauthorized, "", nil, false, false},
		{"ErrUnauthorized/expired", shortLived, failure.Unauthorized, "", nil, false, false},
		{"ErrUnauthorized/revoked", revoked, failure.Unauthorized, "", nil, false, false},
		{"ErrUnauthorized/inactive-user", bobPat, failure.Unauthorized, "", nil, false, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p, err := e.s.Authenticate(tc.secret)
			tokWantErr(t, err, tc.err)
			if err != nil {
				if p != (Principal{}) {
					t.Fatalf("principal %+v with an error", p)
				}
				return
			}
			if p.Kind != tc.kind || (p.User == nil) != (tc.user == nil) ||
				p.User != nil && p.User.UUID != tc.user.UUID || p.ReadOnly() != tc.readOnly || p.IsAdmin() != tc.admin {
				t.Fatalf("principal %+v (read-only %v, admin %v)", p, p.ReadOnly(), p.IsAdmin())
			}
			if tc.kind == KindService && p.Service != svc {
				t.Fatalf("service %+v, want %+v", p.Service, svc)
			}
		})
	}
	if _, err := e.s.Authenticate(pat); err != nil || patTok.Kind != KindPersonal {
		t.Fatal(err)
	}

	t.Run("ErrUnauthorized/deleted-user", func(t *testing.T) {
		tokWantErr(t, e.s.DeleteUser(ctx, alice.UUID), "")
		for _, s := range []string{pat, roSecret, session} {
			_, err := e.s.Authenticate(s)
			tokWantErr(t, err, failure.Unauthorized)
		}
		e.s.mu.RLock()
		left := e.s.tokensOfLocked(alice.UUID)
		e.s.mu.RUnlock()
		if len(left) != 0 {
			t.Fatalf("%d tokens of a deleted user are left", len(left))
		}
	})
}

func TestAuthenticateDoesNotAllocate(t *testing.T) {
	e := newTokEnv(t, false)
	u := e.user("alice", RoleUser)
	secret, _ := e.pat(u.UUID, "ci", time.Time{}, false)
	unknown, _ := newSecret(KindPersonal)
	imported := "an-operator's-chosen-secret,32-bytes-or-more"
	if _, err := e.s.ImportAccessToken(context.Background(), u.UUID, "ops", imported); err != nil {
		t.Fatal(err)
	}
	for name, s := range map[string]string{"hit": secret, "miss": unknown, "malformed": "nope",
		"imported": imported, "imported miss": strings.Repeat("x", 40), "too long": strings.Repeat("x", 300)} {
		if n := testing.AllocsPerRun(1000, func() { _, _ = e.s.Authenticate(s) }); n != 0 {
			t.Errorf("Authenticate (%s) allocates %v times", name, n)
		}
	}
}

func TestImportAccessToken(t *testing.T) {
	ctx := context.Background()
	e := newTokEnv(t, true)
	admin := e.user("admin", RoleAdmin)
	const chosen = "0123456789abcdefghijklmnopqrstuvwxyz!#$%&*+-./:;<=>?@^_~" // visible ASCII
	ours, _ := newSecret(KindPersonal)
	svcForm, _ := newSecret(KindService)
	for _, tc := range []struct {
		name, owner, tokName, secret string
		want                         failure.Code
	}{
		{"ErrInvalid/short", admin.UUID, "boot", strings.Repeat("a", 31), failure.Invalid},
		{"ErrInvalid/long", admin.UUID, "boot", strings.Repeat("a", 257), failure.Invalid},
		{"ErrInvalid/space", admin.UUID, "boot", strings.Repeat("a", 20) + " " + strings.Repeat("a", 20), failure.Invalid},
		{"ErrInvalid/control", admin.UUID, "boot", strings.Repeat("a", 40) + "\n", failure.Invalid},
		{"ErrInvalid/non-ASCII", admin.UUID, "boot", strings.Repeat("é", 20), failure.Invalid},
		{"ErrInvalid/service form", admin.UUID, "boot", svcForm, failure.Invalid},
		{"ErrInvalid/name", admin.UUID, "", chosen, failure.Invalid},
		{"ErrNotFound", "no-such-user", "boot", chosen, failure.NotFound},
		{"OK", admin.UUID, "bootstrap", chosen, ""},
		{"ErrConflict", admin.UUID, "again", chosen, failure.Conflict},
		{"OK/our form", admin.UUID, "ours", ours, ""},
		{"OK/minimum", admin.UUID, "min", strings.Repeat("z", 32), ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tok, err := e.s.ImportAccessToken(ctx, tc.owner, tc.tokName, tc.secret)
			tokWantErr(t, err, tc.want)
			if err != nil {
				return
			}
			if tok.Kind != KindPersonal || tok.Owner != tc.owner || tok.Name != tc.tokName || tok.ReadOnly || !tok.Expires.IsZero() {
				t.Fatalf("token %+v", tok)
			}
			if tok.Hash != sha256.Sum256([]byte(tc.secret)) || tok.ID != tokenID(tok.Hash) {
				t.Fatalf("token %+v is not the hash of its secret", tok)
			}
			p, err := e.s.Authenticate(tc.secret)
			tokWantErr(t, err, "")
			if p.Kind != KindPersonal || p.User == nil || p.User.UUID != admin.UUID || !p.IsAdmin() || p.Token.ID != tok.ID {
				t.Fatalf("principal %+v", p)
			}
		})
	}

	// Near misses of an imported secret, and secrets that could never have
	// been imported, are refused.
	for _, s := range []string{chosen[:len(chosen)-1], chosen + "x", " " + chosen, strings.ToUpper(chosen)} {
		_, err := e.s.Authenticate(s)
		tokWantErr(t, err, failure.Unauthorized)
	}

	// The event says it was imported and carries neither secret nor hash.
	var imported int
	for _, ev := range e.events("identity.token.created") {
		if ev["imported"] == true {
			imported++
			if ev["owner"] != admin.UUID {
				t.Fatalf("event %v", ev)
			}
		}
		for k, v := range ev {
			if s, ok := v.(string); ok && (s == chosen || strings.Contains(s, chosen[:16])) || k == "hash" {
				t.Fatalf("event %v holds the secret or its hash", ev)
			}
		}
	}
	if imported != 3 {
		t.Fatalf("%d imported-token events, want 3", imported)
	}

	// An imported token lives like any other: it survives a restart, it is
	// listed, and revoked it stops working.
	e.reopen()
	p, err := e.s.Authenticate(chosen)
	tokWantErr(t, err, "")
	toks, n, err := e.s.FindAccessTokens(TokenFilter{Owner: admin.UUID, Name: "bootstrap"})
	tokWantErr(t, err, "")
	if n != 1 || toks[0].ID != p.Token.ID {
		t.Fatalf("list %+v (count %d)", toks, n)
	}
	tokWantErr(t, e.s.DeleteAccessToken(ctx, admin.UUID, p.Token.ID), "")
	_, err = e.s.Authenticate(chosen)
	tokWantErr(t, err, failure.Unauthorized)
}

func TestServiceTokenRenewal(t *testing.T) {
	e := newTokEnv(t, false)
	old, svc := e.service("pithos")
	p, err := e.s.Authenticate(old)
	tokWantErr(t, err, "")
	if p.Service != svc || p.User != nil || p.ReadOnly() || p.IsAdmin() {
		t.Fatalf("principal %+v", p)
	}

	// Renew: a new token, the service pointing at it; the old record stays
	// on purpose, to show the service's TokenID alone kills it.
	s := e.s
	s.wmu.Lock()
	var fresh string
	var tok *Token
	nsvc := *svc
	err = s.write(context.Background(), func(tx *ledger.Tx) error {
		var err error
		if fresh, tok, err = s.stageToken(tx, KindService, "pithos", "pithos", false, time.Time{}); err != nil {
			return err
		}
		nsvc.TokenID = tok.ID
		return put(tx, prefixService, "pithos", &nsvc)
	}, func() {
		s.services["pithos"] = &nsvc
		s.addTokenLocked(tok)
	})
	s.wmu.Unlock()
	tokWantErr(t, err, "")

	_, err = e.s.Authenticate(old)
	tokWantErr(t, err, failure.Unauthorized)
	p, err = e.s.Authenticate(fresh)
	tokWantErr(t, err, "")
	if p.Service != &nsvc || p.Token.ID != nsvc.TokenID {
		t.Fatalf("principal %+v", p)
	}
	// Service tokens are not revoked through the user API.
	tokWantErr(t, e.s.DeleteAccessToken(context.Background(), "", tok.ID), failure.NotFound)
}

func TestSessionExpiryAndLogout(t *testing.T) {
	ctx := context.Background()
	e := newTokEnv(t, false)
	u := e.user("alice", RoleUser)
	secret, tok, _, err := e.s.Login(ctx, u.Username, tokPassword, Origin{})
	tokWantErr(t, err, "")
	if tok.Kind != KindSession || !strings.HasPrefix(secret, prefixSession) || tok.Expires.IsZero() {
		t.Fatalf("session %+v, secret %.4s...", tok, secret)
	}
	p, err := e.s.Authenticate(secret)
	tokWantErr(t, err, "")
	tokWantErr(t, e.s.DeleteSession(ctx, p.Token), "")
	_, err = e.s.Authenticate(secret)
	tokWantErr(t, err, failure.Unauthorized)
	tokWantErr(t, e.s.DeleteSession(ctx, p.Token), "") // logout twice

	// An expired session is refused at once, and removed by the flush.
	secret, tok, _, err = e.s.Login(ctx, u.Username, tokPassword, Origin{})
	tokWantErr(t, err, "")
	e.clock.Advance(tok.Expires.Sub(e.clock.Now()) - time.Second)
	_, err = e.s.Authenticate(secret)
	tokWantErr(t, err, "")
	e.clock.Advance(time.Second)
	_, err = e.s.Authenticate(secret)
	tokWantErr(t, err, failure.Unauthorized)
	tokWantErr(t, e.s.FlushLastUsed(ctx), "")
	e.s.mu.RLock()
	_, left := e.s.tokens[tok.Hash]
	e.s.mu.RUnlock()
	if left {
		t.Fatal("the flush kept an expired session")
	}
	if evs := e.events("identity.token.revoked"); len(evs) != 2 || evs[1]["reason"] != "expired" {
		t.Fatalf("revoked events %v", evs)
	}

	// A personal token is not a session.
	_, pat := e.pat(u.UUID, "ci", time.Time{}, false)
	tokWantErr(t, e.s.DeleteSession(ctx, pat), failure.Invalid)
}

func TestAccessTokens(t *testing.T) {
	ctx := context.Background()
	e := newTokEnv(t, false)
	alice := e.user("alice", RoleUser)
	bob := e.user("bob", RoleUser)
	now := e.clock.Now()

	t.Run("Create", func(t *testing.T) {
		for _, tc := range []struct {
			name    string
			owner   string
			tname   string
			expires time.Time
			err     failure.Code
		}{
			{"OK", alice.UUID, "ci", time.Time{}, ""},
			{"OK/expiring", alice.UUID, "deploy", now.Add(24 * time.Hour), ""},
			{"OK/100-runes", alice.UUID, strings.Repeat("é", 100), time.Time{}, ""},
			{"ErrInvalid/empty-name", alice.UUID, "", time.Time{}, failure.Invalid},
			{"ErrInvalid/blank-name", alice.UUID, "   ", time.Time{}, failure.Invalid},
			{"ErrInvalid/long-name", alice.UUID, strings.Repeat("a", 101), time.Time{}, failure.Invalid},
			{"ErrInvalid/bad-utf8", alice.UUID, "a\xffb", time.Time{}, failure.Invalid},
			{"ErrInvalid/control", alice.UUID, "a\nb", time.Time{}, failure.Invalid},
			{"ErrInvalid/past-expiry", alice.UUID, "old", now.Add(-time.Second), failure.Invalid},
			{"ErrInvalid/now-expiry", alice.UUID, "old", now, failure.Invalid},
			{"ErrInvalid/year-10000", alice.UUID, "far", time.Date(10000, 1, 1, 0, 0, 0, 0, time.UTC), failure.Invalid},
			{"ErrNotFound/owner", "no-such-user", "ci", time.Time{}, failure.NotFound},
		} {
			t.Run(tc.name, func(t *testing.T) {
				secret, tok, err := e.s.CreateAccessToken(ctx, tc.owner, tc.tname, tc.expires, false)
				tokWantErr(t, err, tc.err)
				if err != nil {
					return
				}
				if !strings.HasPrefix(secret, prefixPersonal) || tok.Kind != KindPersonal || tok.Owner != tc.owner ||
					tok.Name != tc.tname || !tok.Expires.Equal(tc.expires) || !tok.Created.Equal(now) ||
					tok.ID != fmt.Sprintf("%x", sha256.Sum256([]byte(secret)))[:16] {
					t.Fatalf("token %+v", tok)
				}
			})
		}
	})

	_, tok := e.pat(alice.UUID, "laptop", time.Time{}, false)
	secret, _ := e.pat(bob.UUID, "bob", time.Time{}, false)

	t.Run("Get", func(t *testing.T) {
		got, err := e.s.FindAccessTokenByID(alice.UUID, tok.ID)
		tokWantErr(t, err, "")
		if got.ID != tok.ID || got.Name != "laptop" {
			t.Fatalf("got %+v", got)
		}
		_, err = e.s.FindAccessTokenByID(bob.UUID, tok.ID)
		tokWantErr(t, err, failure.NotFound)
		_, err = e.s.FindAccessTokenByID("", tok.ID)
		tokWantErr(t, err, failure.NotFound)
		_, err = e.s.FindAccessTokenByID(alice.UUID, "nonsense")
		tokWantErr(t, err, failure.NotFound)
		_, err = e.s.FindAccessTokenByID(alice.UUID, strings.ToUpper(tok.ID))
		tokWantErr(t, err, failure.NotFound)
		got, err = e.s.FindAnyAccessTokenByID(tok.ID)
		tokWantErr(t, err, "")
		if got.ID != tok.ID {
			t.Fatalf("got %+v", got)
		}
	})

	t.Run("Self", func(t *testing.T) {
		e.clock.Advance(time.Minute)
		p, err := e.s.Authenticate(secret)
		tokWantErr(t, err, "")
		self, err := e.s.FindSelfAccessToken(p)
		tokWantErr(t, err, "")
		if self.Owner != bob.UUID || !self.LastUsed.Equal(e.clock.Now()) {
			t.Fatalf("self %+v", self)
		}
		session, _, _, err := e.s.Login(ctx, bob.Username, tokPassword, Origin{})
		tokWantErr(t, err, "")
		p, err = e.s.Authenticate(session)
		tokWantErr(t, err, "")
		_, err = e.s.FindSelfAccessToken(p)
		tokWantErr(t, err, failure.Forbidden)
	})

	t.Run("Update", func(t *testing.T) {
		e.clock.Advance(time.Minute)
		name, ro, exp := "desk", true, e.clock.Now().Add(time.Hour)
		for _, tc := range []struct {
			name  string
			owner string
			upd   TokenUpdate
			err   failure.Code
		}{
			{"ErrNotFound/other-owner", bob.UUID, TokenUpdate{Name: &name}, failure.NotFound},
			{"ErrInvalid/name", alice.UUID, TokenUpdate{Name: new("")}, failure.Invalid},
			{"ErrInvalid/expiry", alice.UUID, TokenUpdate{Expires: new(e.clock.Now())}, failure.Invalid},
			{"OK", alice.UUID, TokenUpdate{Name: &name, ReadOnly: &ro, Expires: &exp}, ""},
		} {
			t.Run(tc.name, func(t *testing.T) {
				got, err := e.s.UpdateAccessToken(ctx, tc.owner, tok.ID, tc.upd)
				tokWantErr(t, err, tc.err)
				if err != nil {
					return
				}
				if got.Name != name || !got.ReadOnly || !got.Expires.Equal(exp) || !got.Updated.Equal(e.clock.Now()) ||
					!got.Created.Equal(tok.Created) {
					t.Fatalf("updated %+v", got)
				}
			})
		}
		got, err := e.s.FindAccessTokenByID(alice.UUID, tok.ID)
		tokWantErr(t, err, "")
		if got.Name != "desk" || !got.ReadOnly {
			t.Fatalf("after update %+v", got)
		}
		// An admin clears the expiry.
		got, err = e.s.UpdateAccessToken(ctx, "", tok.ID, TokenUpdate{Expires: new(time.Time{})})
		tokWantErr(t, err, "")
		if !got.Expires.IsZero() {
			t.Fatalf("expiry not cleared: %+v", got)
		}
		if evs := e.events("identity.token.updated"); len(evs) != 2 || evs[0]["name"] != "desk" {
			t.Fatalf("updated events %v", evs)
		}
	})

	t.Run("Revoke", func(t *testing.T) {
		tokWantErr(t, e.s.DeleteAccessToken(ctx, bob.UUID, tok.ID), failure.NotFound)
		tokWantErr(t, e.s.DeleteAccessToken(ctx, alice.UUID, tok.ID), "")
		tokWantErr(t, e.s.DeleteAccessToken(ctx, alice.UUID, tok.ID), failure.NotFound)
		_, err := e.s.FindAccessTokenByID(alice.UUID, tok.ID)
		tokWantErr(t, err, failure.NotFound)
		p, err := e.s.Authenticate(secret)
		tokWantErr(t, err, "")
		tokWantErr(t, e.s.DeleteAccessToken(ctx, "", p.Token.ID), "") // admin
		_, err = e.s.Authenticate(secret)
		tokWantErr(t, err, failure.Unauthorized)
		_, err = e.s.FindSelfAccessToken(p)
		tokWantErr(t, err, failure.NotFound)
	})

	for _, ev := range append(e.events("identity.token.created"), e.events("identity.token.revoked")...) {
		for _, k := range []string{"id", "kind", "owner", "read_only"} {
			if _, ok := ev[k]; !ok {
				t.Fatalf("event %v lacks %s", ev, k)
			}
		}
		if _, ok := ev["hash"]; ok {
			t.Fatalf("event %v carries the hash", ev)
		}
	}
}

func TestFindAccessTokens(t *testing.T) {
	ctx := context.Background()
	e := newTokEnv(t, false)
	alice := e.user("alice", RoleUser)
	bob := e.user("bob", RoleUser)
	base := e.clock.Now()
	// Five tokens a minute apart; "b-deploy" is used, "c-Laptop" expires.
	made := map[string]*Token{}
	secrets := map[string]string{}
	for _, n := range []struct {
		owner, name string
		ro          bool
		exp         time.Duration
	}{
		{alice.UUID, "a-ci", false, 0},
		{alice.UUID, "b-deploy", true, 0},
		{alice.UUID, "c-Laptop", false, 48 * time.Hour},
		{bob.UUID, "d-laptop", false, 24 * time.Hour},
		{bob.UUID, "e-ci", true, 0},
	} {
		var exp time.Time
		if n.exp != 0 {
			exp = base.Add(n.exp)
		}
		secrets[n.name], made[n.name] = e.pat(n.owner, n.name, exp, n.ro)
		e.clock.Advance(time.Minute)
	}
	_, _, _, err := e.s.Login(ctx, alice.Username, tokPassword, Origin{}) // sessions are not listed
	tokWantErr(t, err, "")
	e.clock.Advance(time.Minute)
	_, err = e.s.Authenticate(secrets["b-deploy"])
	tokWantErr(t, err, "")
	e.clock.Advance(time.Minute)
	_, err = e.s.Authenticate(secrets["e-ci"])
	tokWantErr(t, err, "")

	for _, tc := range []struct {
		name  string
		q     TokenFilter
		want  []string
		count int // if not len(want)
		err   failure.Code
	}{
		{"OK/all-newest-first", TokenFilter{}, []string{"e-ci", "d-laptop", "c-Laptop", "b-deploy", "a-ci"}, 0, ""},
		{"OK/owner", TokenFilter{Owner: alice.UUID}, []string{"c-Laptop", "b-deploy", "a-ci"}, 0, ""},
		{"OK/name", TokenFilter{Name: "e-ci"}, []string{"e-ci"}, 0, ""},
		{"OK/name-is-exact", TokenFilter{Name: "ci"}, nil, 0, ""},
		{"OK/search-folds-case", TokenFilter{Search: "LAPTOP"}, []string{"d-laptop", "c-Laptop"}, 0, ""},
		{"OK/sort-name", TokenFilter{Sort: "name"}, []string{"a-ci", "b-deploy", "c-Laptop", "d-laptop", "e-ci"}, 0, ""},
		{"OK/sort-expires-never-last", TokenFilter{Sort: "expires,name"}, []string{"d-laptop", "c-Laptop", "a-ci", "b-deploy", "e-ci"}, 0, ""},
		{"OK/sort-last-used-desc", TokenFilter{Sort: "-last_used,name"}, []string{"e-ci", "b-deploy", "a-ci", "c-Laptop", "d-laptop"}, 0, ""},
		{"OK/sort-read-only-then-cvat-name", TokenFilter{Sort: "-read_only,-created_date"}, []string{"e-ci", "b-deploy", "d-laptop", "c-Laptop", "a-ci"}, 0, ""},
		{"OK/window", TokenFilter{Sort: "name", Offset: 2, Limit: 2}, []string{"c-Laptop", "d-laptop"}, 5, ""},
		{"OK/window-past-end", TokenFilter{Offset: 16, Limit: 2}, nil, 5, ""},
		{"OK/filter", TokenFilter{Sort: "name", Filter: json.RawMessage(`{"and":[{"var":"read_only"},{">":[{"var":"last_used"},"2025-03-01T12:00:00Z"]}]}`)},
			[]string{"b-deploy", "e-ci"}, 0, ""},
		{"OK/filter-owner", TokenFilter{Sort: "name", Filter: json.RawMessage(`{"==":[{"var":"owner"},"` + bob.UUID + `"]}`)},
			[]string{"d-laptop", "e-ci"}, 0, ""},
		{"OK/filter-never-expires", TokenFilter{Sort: "name", Owner: alice.UUID, Filter: json.RawMessage(`{"==":[{"var":"expires"},null]}`)},
			[]string{"a-ci", "b-deploy"}, 0, ""},
		{"ErrInvalid/sort-field", TokenFilter{Sort: "secret"}, nil, 0, failure.Invalid},
		{"ErrInvalid/sort-empty-key", TokenFilter{Sort: "name,"}, nil, 0, failure.Invalid},
		{"ErrInvalid/limit", TokenFilter{Limit: -1}, nil, 0, failure.Invalid},
		{"ErrInvalid/offset", TokenFilter{Offset: -1}, nil, 0, failure.Invalid},
		{"ErrInvalid/filter", TokenFilter{Filter: json.RawMessage(`{"substr":[{"var":"name"},1]}`)}, nil, 0, failure.Invalid},
	} {
		t.Run(tc.name, func(t *testing.T) {
			toks, n, err := e.s.FindAccessTokens(tc.q)
			tokWantErr(t, err, tc.err)
			if err != nil {
				return
			}
			var got []string
			for _, tok := range toks {
				got = append(got, tok.Name)
			}
			count := tc.count
			if count == 0 {
				count = len(tc.want)
			}
			if strings.Join(got, " ") != strings.Join(tc.want, " ") || n != count {
				t.Fatalf("got %v (count %d), want %v (count %d)", got, n, tc.want, count)
			}
		})
	}

	toks, _, err := e.s.FindAccessTokens(TokenFilter{Name: "b-deploy"})
	tokWantErr(t, err, "")
	if lu := toks[0].LastUsed; !lu.Equal(base.Add(6 * time.Minute)) {
		t.Fatalf("last used %v, want %v", lu, base.Add(6*time.Minute))
	}
}

// TestTokensNotStoredInClear makes tokens of every kind on disk, closes the
// ledger and reads every file it wrote: no secret may appear.
func TestTokensNotStoredInClear(t *testing.T) {
	ctx := context.Background()
	e := newTokEnv(t, true)
	u := e.user("alice", RoleUser)
	var secrets []string
	for i := range 20 {
		s, _ := e.pat(u.UUID, fmt.Sprintf("marker-%d", i), time.Time{}, i%2 == 0)
		secrets = append(secrets, s)
	}
	session, _, _, err := e.s.Login(ctx, u.Username, tokPassword, Origin{})
	tokWantErr(t, err, "")
	svc, _ := e.service("cyclades")
	secrets = append(secrets, session, svc)
	for _, s := range secrets {
		_, err := e.s.Authenticate(s)
		tokWantErr(t, err, "")
	}
	e.clock.Advance(time.Minute)
	tokWantErr(t, e.s.FlushLastUsed(ctx), "")
	tokWantErr(t, e.l.Close(), "")

	var files int
	var all []byte
	err = filepath.WalkDir(e.dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		files++
		all = append(all, b...)
		for _, s := range secrets {
			if bytes.Contains(b, []byte(s[4:])) || bytes.Contains(b, []byte(s)) {
				t.Errorf("%s holds a secret in clear", path)
			}
		}
		return nil
	})
	tokWantErr(t, err, "")
	// The scan sees the records: their names are there in clear.
	if files == 0 || !bytes.Contains(all, []byte("marker-7")) {
		t.Fatalf("scanned %d files, token records not found: the scan proves nothing", files)
	}
}

func TestTokensSurviveReopen(t *testing.T) {
	ctx := context.Background()
	e := newTokEnv(t, true)
	u := e.user("alice", RoleUser)
	secret, tok := e.pat(u.UUID, "ci", e.clock.Now().Add(time.Hour), true)
	svcSecret, _ := e.service("pithos")

	e.clock.Advance(time.Minute)
	used := e.clock.Now()
	_, err := e.s.Authenticate(secret)
	tokWantErr(t, err, "")
	tokWantErr(t, e.s.FlushLastUsed(ctx), "")
	tokWantErr(t, e.s.FlushLastUsed(ctx), "") // nothing new: no write
	// A use after the last flush is lost on a restart (at most a flush
	// interval's worth).
	e.clock.Advance(time.Minute)
	_, err = e.s.Authenticate(secret)
	tokWantErr(t, err, "")

	e.reopen()
	got, err := e.s.FindAccessTokenByID(u.UUID, tok.ID)
	tokWantErr(t, err, "")
	if !got.LastUsed.Equal(used) || !got.ReadOnly || got.Name != "ci" || !got.Expires.Equal(tok.Expires) || !got.Created.Equal(tok.Created) {
		t.Fatalf("after reopen %+v, want last used %v", got, used)
	}
	for _, s := range []string{secret, svcSecret} {
		p, err := e.s.Authenticate(s)
		tokWantErr(t, err, "")
		if s == secret && (!p.ReadOnly() || p.User.UUID != u.UUID) {
			t.Fatalf("principal %+v", p)
		}
	}
	e.clock.Advance(time.Hour)
	_, err = e.s.Authenticate(secret)
	tokWantErr(t, err, failure.Unauthorized) // expired
}

// TestAuthenticateWhileWriting races lookups against writes to the same
// tokens (run with -race): every lookup resolves its secret to its own
// principal (kind, token, user or service), never to another one, and sees
// the writer's renames in order; the writer reads its own writes.
func TestAuthenticateWhileWriting(t *testing.T) {
	ctx := context.Background()
	e := newTokEnv(t, false)
	alice := e.user("alice", RoleUser)
	bob := e.user("bob", RoleUser)
	secret, tok := e.pat(alice.UUID, "ci", time.Time{}, false)
	bobSecret, bobTok := e.pat(bob.UUID, "bob", time.Time{}, true)
	svcSecret, svc := e.service("cyclades")

	// rank is the position of a name of alice's token in the writer's
	// sequence: "ci", then "ci-0" .. "ci-49".
	const renames = 50
	rank := func(name string) int {
		if name == "ci" {
			return 0
		}
		var i int
		if _, err := fmt.Sscanf(name, "ci-%d", &i); err != nil || name != fmt.Sprintf("ci-%d", i) || i < 0 || i >= renames {
			return -1
		}
		return i + 1
	}
	// check returns what is wrong with the principal of secret, or "".
	check := func(secret string, p Principal) string {
		switch secret {
		case svcSecret:
			if p.Kind != KindService || p.Token == nil || p.Token.ID != svc.TokenID || p.Token.Owner != svc.Name ||
				p.Service == nil || p.Service.Name != svc.Name || p.User != nil {
				return "not the service cyclades"
			}
			return ""
		case bobSecret:
			if p.Kind != KindPersonal || p.Token == nil || p.Token.ID != bobTok.ID || p.Token.Name != "bob" ||
				!p.ReadOnly() || p.User == nil || p.User.UUID != bob.UUID || p.Service != nil {
				return "not bob's read-only token"
			}
			return ""
		}
		if p.Kind != KindPersonal || p.Token == nil || p.Token.ID != tok.ID || p.Token.Owner != alice.UUID ||
			p.Token.Kind != KindPersonal || rank(p.Token.Name) < 0 || p.ReadOnly() ||
			p.User == nil || p.User.UUID != alice.UUID || p.Service != nil {
			return "not alice's token"
		}
		return ""
	}
	describe := func(p Principal) string {
		s := fmt.Sprintf("kind %q", p.Kind)
		if p.Token != nil {
			s += fmt.Sprintf(", token %s %q of %s", p.Token.ID, p.Token.Name, p.Token.Owner)
		}
		if p.User != nil {
			s += ", user " + p.User.UUID
		}
		if p.Service != nil {
			s += ", service " + p.Service.Name
		}
		return s
	}

	stop := make(chan struct{})
	var wg sync.WaitGroup
	for w := range 4 {
		wg.Go(func() {
			seen, seenName := 0, "ci" // the latest rename of alice's token this reader saw
			for i := w; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				// (No session: the readers' clock would outrun its day.)
				s := []string{secret, bobSecret, svcSecret}[i%3]
				p, err := e.s.Authenticate(s)
				if err != nil {
					t.Error(err)
					return
				}
				if what := check(s, p); what != "" {
					t.Errorf("a lookup resolved to %s: %s", describe(p), what)
					return
				}
				if s == secret {
					r := rank(p.Token.Name)
					if r < seen {
						t.Errorf("a lookup saw the token named %q after %q", p.Token.Name, seenName)
						return
					}
					seen, seenName = r, p.Token.Name
				}
				e.clock.Advance(time.Second)
			}
		})
	}
	for i := range renames {
		name := fmt.Sprintf("ci-%d", i)
		if _, err := e.s.UpdateAccessToken(ctx, alice.UUID, tok.ID, TokenUpdate{Name: &name}); err != nil {
			t.Fatal(err)
		}
		// The writer reads its own write.
		p, err := e.s.Authenticate(secret)
		tokWantErr(t, err, "")
		if what := check(secret, p); what != "" || p.Token.Name != name {
			t.Fatalf("after renaming to %q, the token resolves to %s (%s)", name, describe(p), what)
		}
		if err := e.s.FlushLastUsed(ctx); err != nil {
			t.Fatal(err)
		}
		toks, n, err := e.s.FindAccessTokens(TokenFilter{Sort: "-last_used"})
		if err != nil {
			t.Fatal(err)
		}
		var names []string
		for _, r := range toks {
			names = append(names, r.Name)
		}
		if n != 2 || !slices.Contains(names, name) || !slices.Contains(names, "bob") {
			t.Fatalf("after renaming to %q, the list has %d tokens: %q", name, n, names)
		}
	}
	close(stop)
	wg.Wait()
}

// benchTokens makes n personal tokens in one write and returns their
// secrets.
func benchTokens(b *testing.B, n int) (*Store, []string) {
	e := newTokEnv(b, false)
	u := e.user("bench", RoleUser)
	s := e.s
	secrets := make([]string, n)
	toks := make([]*Token, n)
	s.wmu.Lock()
	err := s.write(context.Background(), func(tx *ledger.Tx) error {
		for i := range n {
			var err error
			if secrets[i], toks[i], err = s.stageToken(tx, KindPersonal, u.UUID, fmt.Sprintf("t%d", i), false, time.Time{}); err != nil {
				return err
			}
		}
		return nil
	}, func() {
		for _, t := range toks {
			s.addTokenLocked(t)
		}
	})
	s.wmu.Unlock()
	if err != nil {
		b.Fatal(err)
	}
	s.opts.Now = time.Now // the real clock's cost is part of the lookup
	return s, secrets
}

// BenchmarkTokenLookup resolves a personal token's secret to its principal
// among 10,000 tokens (target: < 1 µs, no allocation):
//
//	go test ./identity -run '^$' -bench BenchmarkTokenLookup -benchmem
func BenchmarkTokenLookup(b *testing.B) {
	s, secrets := benchTokens(b, 10000)
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		if _, err := s.Authenticate(secrets[i%len(secrets)]); err != nil {
			b.Fatal(err)
		}
		i++
	}
}

// BenchmarkTokenLookupParallel is BenchmarkTokenLookup from every core.
func BenchmarkTokenLookupParallel(b *testing.B) {
	s, secrets := benchTokens(b, 10000)
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		i := 0
		for pb.Next() {
			if _, err := s.Authenticate(secrets[i%len(secrets)]); err != nil {
				b.Error(err)
				return
			}
			i += 7
		}
	})
}

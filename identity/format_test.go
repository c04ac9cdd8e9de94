package identity

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/json"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/quotaledger/quotaledger/internal/testkit"
	"github.com/quotaledger/quotaledger/internal/testkit/ledgertest"
	"github.com/quotaledger/quotaledger/ledger"
)

// The stored form of the identity records, pinned. TestFormat holds each
// record kind the identity layer writes to the ledger's Pebble (its key and
// its JSON value) against files committed in testdata/format, both ways:
// put (the one writer of every record) on a real ledger stores exactly the
// golden key and value for a fixed record, and a store opened on a database
// holding the golden bytes loads that record back, field by field, and
// works with it (the password checks, the token secrets authenticate).
//
// A failure means databases on disk would be read differently after the
// upgrade: renaming a JSON field loses that field of every stored record.
// If the change is meant, the loaders must go on reading the old form (a
// test of it beside these), and the golden files are then regenerated,
// explicitly:
//
//	go test ./identity -run TestFormat -update
var update = flag.Bool("update", false, "rewrite the golden files of testdata/format (TestFormat) from today's records")

const formatDir = "testdata/format"

// formatUpdate writes the golden files (a new record kind needs one).
const formatUpdate = "go test ./identity -run TestFormat -update"

// Test-only credentials of the golden records: the password of
// fmtPasswordHash, and the secrets whose SHA-256 are the golden tokens'
// hashes. They open nothing but the databases these tests make.
const (
	fmtPassword        = "test-only format password"
	fmtPasswordHash    = "$argon2id$v=19$m=64,t=1,p=1$6QG+5SAO/UY$4BqJ7EkGuOBAU+T/SrJ9rA"
	fmtPersonalSecret  = "test-only-format-personal-secret-0001"
	fmtServiceSecret   = "qlk_testonly_format_service_secret_not_a_real_A"
	fmtResetID         = "test-only-format-reset-id"
	fmtSessionSecret   = "qls_testonly_format_session_secret_not_realA"
	fmtAlice, fmtBob   = "8d1b6a2e-0d6f-4c4e-9a53-3f2b7c1e9a01", "5f0c2b9d-7e41-4b1a-8c3d-2a9e6f4b7c02"
	fmtProjectUUID     = "c3a7e5d1-9b2f-4e6a-8d4c-1f0b3a5e7d03"
	fmtServiceName     = "compute"
	fmtResourceName    = "compute.vm"
	fmtGroupName       = "ops"
	fmtPersonalTokenID = "22e6c90c4e4a7067" // tokenID(sha256(fmtPersonalSecret))
)

var (
	fmtT1 = time.Date(2025, 1, 2, 3, 4, 5, 123456000, time.UTC)
	fmtT2 = time.Date(2025, 1, 3, 4, 5, 6, 234567000, time.UTC)
	fmtT3 = time.Date(2025, 1, 4, 5, 6, 7, 345678000, time.UTC)
	fmtT4 = time.Date(2030, 6, 7, 8, 9, 10, 456789000, time.UTC)
	// fmtNow is the clock of the store that loads the golden records:
	// before every expiry among them.
	fmtNow = time.Date(2025, 2, 1, 0, 0, 0, 0, time.UTC)
)

func fmtPersonalHash() [32]byte { return sha256.Sum256([]byte(fmtPersonalSecret)) }
func fmtServiceHash() [32]byte  { return sha256.Sum256([]byte(fmtServiceSecret)) }
func fmtResetHash() [32]byte    { return sha256.Sum256([]byte(fmtResetID)) }
func fmtSessionHash() [32]byte  { return sha256.Sum256([]byte(fmtSessionSecret)) }

// Fixed records. Fields of one type hold different values, so that two
// fields swapped in the record's JSON tags fail the load direction too.
func fmtRecords() (alice, bob *User, pat, svcTok, session *Token, svc *Service, res *Resource, proj, base *Project, grp *Group, reset *resetRequest) {
	alice = &User{UUID: fmtAlice, Username: "alice@example.com", DisplayName: "Alice A.", FirstName: "Alice",
		LastName: "Archer", Role: RoleAdmin, Active: true, EmailVerified: false, Data: json.RawMessage(`{"team":"ops","n":1}`),
		Password: fmtPasswordHash, Created: fmtT1, Updated: fmtT2, LastLogin: fmtT3}
	bob = &User{UUID: fmtBob, Username: "bob@example.com", DisplayName: "bob@example.com", Role: RoleReader,
		Active: false, EmailVerified: true, Password: fmtPasswordHash, Created: fmtT2, Updated: fmtT3}
	ph, sh := fmtPersonalHash(), fmtServiceHash()
	xh := fmtSessionHash()
	session = &Token{ID: tokenID(xh), Hash: xh, Kind: KindSession, Owner: fmtBob, Expires: fmtT4, Created: fmtT1,
		Updated: fmtT2, LastUsed: fmtT3, Address: "2001:db8::7", UserAgent: "quotaledger-go-client/1 (linux)"}
	pat = &Token{ID: tokenID(ph), Hash: ph, Kind: KindPersonal, Owner: fmtAlice, Name: "laptop", ReadOnly: true,
		Expires: fmtT4, Created: fmtT1, Updated: fmtT2, LastUsed: fmtT3}
	svcTok = &Token{ID: tokenID(sh), Hash: sh, Kind: KindService, Owner: fmtServiceName, Name: fmtServiceName,
		Created: fmtT2, Updated: fmtT3}
	svc = &Service{Name: fmtServiceName, Type: "compute-api", Endpoints: []Endpoint{
		{PublicURL: "https://compute.example.com/v2", VersionID: "v2", Region: "north"},
		{PublicURL: "https://compute.example.com/v1"},
	}, TokenID: tokenID(sh), Created: fmtT2}
	res = &Resource{Name: fmtResourceName, Unit: "VM", Description: "virtual machines", Service: fmtServiceName,
		AllowInProjects: true, UpLimit: 2, ProjectDefault: 5, Created: fmtT3}
	proj = &Project{UUID: fmtProjectUUID, Name: "alpha", Owner: fmtAlice, State: ProjectActive,
		Policies: map[string]Policy{fmtResourceName: {ProjectCapacity: 10, MemberCapacity: 3}, "compute.ram": {ProjectCapacity: 4096, MemberCapacity: 1024}},
		Members:  []Member{{User: fmtAlice, Role: MemberAdmin}, {Group: fmtGroupName, Role: MemberMember}, {User: fmtBob, Role: MemberReader}},
		Created:  fmtT1, Updated: fmtT3}
	base = &Project{UUID: fmtAlice, Name: "base:alice@example.com", Owner: fmtAlice, State: ProjectActive, Base: true,
		Policies: map[string]Policy{fmtResourceName: {ProjectCapacity: 2, MemberCapacity: 1}},
		Members:  []Member{{User: fmtAlice, Role: MemberAdmin}}, Created: fmtT1, Updated: fmtT2}
	grp = &Group{Name: fmtGroupName, Members: []string{fmtBob, fmtAlice}, Created: fmtT2}
	reset = &resetRequest{Hash: fmtResetHash(), User: fmtBob, Expires: fmtT4}
	return
}

// identityCase is one record kind: where put stores it and what it stores,
// and what a store opened on the golden bytes must hold.
type identityCase struct {
	name   string
	prefix byte
	id     string
	value  any
	check  func(t *testing.T, s *Store)
}

func identityCases() []identityCase {
	alice, bob, pat, svcTok, session, svc, res, proj, base, grp, reset := fmtRecords()
	return []identityCase{
		{"user", prefixUser, fmtAlice, alice, func(t *testing.T, s *Store) {
			u := s.users[fmtAlice]
			checkLoaded(t, u, alice)
			if s.byName["alice@example.com"] != u {
				t.Error("alice is not found by her username")
			}
			if ok, _ := checkPassword(u.Password, fmtPassword, cheapHash); !ok {
				t.Error("the stored password hash no longer checks the password")
			}
		}},
		{"user-minimal", prefixUser, fmtBob, bob, func(t *testing.T, s *Store) {
			checkLoaded(t, s.users[fmtBob], bob)
		}},
		{"token-personal", prefixToken, string(pat.Hash[:]), pat, func(t *testing.T, s *Store) {
			e := s.tokens[pat.Hash]
			if e == nil {
				t.Fatal("the personal token is not loaded")
			}
			checkLoaded(t, e.tok, pat)
			if s.byTokenID[fmtPersonalTokenID] != e {
				t.Errorf("the personal token is not found by its id %s", fmtPersonalTokenID)
			}
			p, err := s.Authenticate(fmtPersonalSecret)
			if err != nil || p.User == nil || p.User.UUID != fmtAlice || p.Kind != KindPersonal || !p.ReadOnly() {
				t.Errorf("the personal secret authenticates as %+v, %v; want alice, read-only", p, err)
			}
		}},
		{"token-service", prefixToken, string(svcTok.Hash[:]), svcTok, func(t *testing.T, s *Store) {
			e := s.tokens[svcTok.Hash]
			if e == nil {
				t.Fatal("the service token is not loaded")
			}
			checkLoaded(t, e.tok, svcTok)
			p, err := s.Authenticate(fmtServiceSecret)
			if err != nil || p.Service == nil || p.Service.Name != fmtServiceName || p.Kind != KindService {
				t.Errorf("the service secret authenticates as %+v, %v; want service %s", p, err, fmtServiceName)
			}
		}},
		{"token-session", prefixToken, string(session.Hash[:]), session, func(t *testing.T, s *Store) {
			e := s.tokens[session.Hash]
			if e == nil {
				t.Fatal("the session is not loaded")
			}
			checkLoaded(t, e.tok, session)
			got, err := s.FindSessionByID(fmtBob, session.ID)
			if err != nil || got.Address != "2001:db8::7" || got.UserAgent != "quotaledger-go-client/1 (linux)" {
				t.Errorf("the session as listed: %+v, %v; want its origin", got, err)
			}
		}},
		{"service", prefixService, fmtServiceName, svc, func(t *testing.T, s *Store) {
			checkLoaded(t, s.services[fmtServiceName], svc)
		}},
		{"resource", prefixResource, fmtResourceName, res, func(t *testing.T, s *Store) {
			checkLoaded(t, s.resources[fmtResourceName], res)
		}},
		{"project", prefixProject, fmtProjectUUID, proj, func(t *testing.T, s *Store) {
			checkLoaded(t, s.projects[fmtProjectUUID], proj)
		}},
		{"project-base", prefixProject, fmtAlice, base, func(t *testing.T, s *Store) {
			checkLoaded(t, s.projects[fmtAlice], base)
		}},
		{"group", prefixGroup, fmtGroupName, grp, func(t *testing.T, s *Store) {
			checkLoaded(t, s.groups[fmtGroupName], grp)
		}},
		{"reset", prefixReset, string(reset.Hash[:]), reset, func(t *testing.T, s *Store) {
			checkLoaded(t, s.resets[reset.Hash], reset)
		}},
	}
}

// TestFormat checks every identity record kind against its golden key and
// value, both ways (see update).
func TestFormat(t *testing.T) {
	ctx := context.Background()
	cases := identityCases()

	// Today's writer: put, as every change stages its records.
	l := ledgertest.Open(t, ledger.Options{})
	for _, c := range cases {
		if err := l.Update(ctx, func(tx *ledger.Tx) error { return put(tx, c.prefix, c.id, c.value) }); err != nil {
			t.Fatalf("%s: %v", c.name, err)
		}
	}
	golden := map[string][2][]byte{} // name: key, value
	names := map[string]bool{}
	for _, c := range cases {
		names[c.name+".key.hex"], names[c.name+".json"] = true, true
		t.Run("write/"+c.name, func(t *testing.T) {
			key := recordKey(c.prefix, c.id)
			var value []byte
			err := l.ScanForeign(key, func(k, v []byte) error {
				if bytes.Equal(k, key) {
					value = bytes.Clone(v)
				}
				return nil
			})
			if err != nil || value == nil {
				t.Fatalf("no record under %x: %v", key, err)
			}
			keyPath, valuePath := filepath.Join(formatDir, c.name+".key.hex"), filepath.Join(formatDir, c.name+".json")
			if *update {
				testkit.WriteHex(t, keyPath, c.name+" key", formatUpdate, key)
				writeFile(t, valuePath, append(bytes.Clone(value), '\n'))
			}
			wantKey, wantValue := testkit.ReadHex(t, keyPath, formatUpdate), readJSON(t, valuePath)
			if !bytes.Equal(key, wantKey) {
				t.Errorf("key changed: existing databases hold %s\n got %x\nwant %x", keyPath, key, wantKey)
			}
			if !bytes.Equal(value, wantValue) {
				t.Errorf("stored JSON changed: existing databases hold %s\n got %s\nwant %s", valuePath, value, wantValue)
			}
		})
	}

	// Today's reader: Open, on a database holding only the golden bytes
	// (whether or not today's writer still makes them).
	for _, c := range cases {
		golden[c.name] = [2][]byte{testkit.ReadHex(t, filepath.Join(formatDir, c.name+".key.hex"), formatUpdate),
			readJSON(t, filepath.Join(formatDir, c.name+".json"))}
	}
	l2 := ledgertest.Open(t, ledger.Options{})
	err := l2.Update(ctx, func(tx *ledger.Tx) error {
		for _, kv := range golden {
			if err := tx.Put(kv[0], kv[1]); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	s, err := Open(l2, Options{Logger: zerolog.Nop(), Now: func() time.Time { return fmtNow }, Hash: cheapHash})
	if err != nil {
		t.Fatalf("open on the golden records: %v", err)
	}
	for _, c := range cases {
		t.Run("read/"+c.name, func(t *testing.T) { c.check(t, s) })
	}

	files, err := os.ReadDir(formatDir)
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range files {
		if !names[f.Name()] {
			t.Errorf("%s/%s is checked by no case of TestFormat", formatDir, f.Name())
		}
	}
}

// TestFormatKeySpaces pins the leading byte of each identity key space, and
// the keys derived from hashes.
func TestFormatKeySpaces(t *testing.T) {
	got := map[string]byte{"user": prefixUser, "token": prefixToken, "service": prefixService, "resource": prefixResource,
		"project": prefixProject, "group": prefixGroup, "reset": prefixReset, "meta": prefixMeta}
	want := map[string]byte{"user": 'U', "token": 'T', "service": 'S', "resource": 'R',
		"project": 'P', "group": 'G', "reset": 'W', "meta": 'M'}
	checkLoaded(t, got, want)
	// Revoking deletes tokenKey; it must be where put stored the token.
	h := fmtPersonalHash()
	if !bytes.Equal(tokenKey(h), recordKey(prefixToken, string(h[:]))) {
		t.Errorf("tokenKey %x is not the key tokens are stored under", tokenKey(h))
	}
	if tokenID(h) != fmtPersonalTokenID {
		t.Errorf("tokenID %s, want %s: the public ids of stored tokens would change", tokenID(h), fmtPersonalTokenID)
	}
	if kind, ok := parseSecret(fmtServiceSecret); !ok || kind != KindService {
		t.Errorf("the test's service secret %q is not a service secret", fmtServiceSecret)
	}
}

func writeFile(t *testing.T, path string, b []byte) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, b, 0o644); err != nil {
		t.Fatal(err)
	}
}

// readJSON reads a golden value: the exact bytes, then one newline.
func readJSON(t *testing.T, path string) []byte {
	t.Helper()
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (a new record kind: go test ./identity -run TestFormat -update, and commit the file)", err)
	}
	b, ok := bytes.CutSuffix(raw, []byte("\n"))
	if !ok {
		t.Fatalf("%s does not end in a newline", path)
	}
	return b
}

// checkLoaded fails t unless got equals want, naming every field that
// differs.
func checkLoaded(t *testing.T, got, want any) {
	t.Helper()
	if diffs := testkit.FieldDiffs(got, want); len(diffs) > 0 {
		t.Errorf("golden bytes load as another value:\n\t%s", strings.Join(diffs, "\n\t"))
	}
}

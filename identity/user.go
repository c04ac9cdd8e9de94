package identity

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"net/mail"
	"slices"
	"strings"
	"unicode/utf8"

	"github.com/google/uuid"

	"github.com/quotaledger/quotaledger/events/catalog"
	"github.com/quotaledger/quotaledger/failure"
	"github.com/quotaledger/quotaledger/holdings"
	"github.com/quotaledger/quotaledger/ledger"
)

// Limits on user fields.
const (
	maxUsername = 254 // an email address
	maxNameLen  = 200
	maxDataLen  = 64 << 10
)

// NewUser is what creating or registering a user takes.
type NewUser struct {
	Username    string // an email address
	Password    string
	FirstName   string
	LastName    string
	DisplayName string // defaults to "First Last", or the username
	Role        Role   // CreateUser only; Register makes users (or the first user admin)
	Active      bool   // CreateUser only
}

func checkUsername(name string) error {
	if name == "" || len(name) > maxUsername || !utf8.ValidString(name) {
		return invalidf("username must be an email address of at most %d bytes", maxUsername)
	}
	a, err := mail.ParseAddress(name)
	if err != nil || a.Address != name || a.Name != "" {
		return invalidf("username must be an email address")
	}
	return nil
}

func checkText(field, v string, max int) error {
	if !utf8.ValidString(v) {
		return invalidf("%s must be valid UTF-8", field)
	}
	if utf8.RuneCountInString(v) > max {
		return invalidf("%s must be at most %d characters", field, max)
	}
	return nil
}

func checkRole(r Role) error {
	switch r {
	case RoleAdmin, RoleUser, RoleReader:
		return nil
	}
	return invalidf("role must be admin, user or reader")
}

// CreateUser creates a user (an admin's call): with the role and active
// flag given, a base project, and the holdings of every registered
// resource in it, at the resource's uplimit, in one batch.
func (s *Store) CreateUser(ctx context.Context, in NewUser) (*User, error) {
	if in.Role == "" {
		in.Role = RoleUser
	}
	return s.createUser(ctx, in, "admin")
}

// Register signs a user up: a user, active at once unless the store
// requires activation (Options.RequireActivation). The first user of an
// empty system becomes an active admin.
func (s *Store) Register(ctx context.Context, in NewUser) (*User, error) {
	in.Role = RoleUser
	in.Active = !s.opts.RequireActivation
	return s.createUser(ctx, in, "self")
}

func (s *Store) createUser(ctx context.Context, in NewUser, by string) (*User, error) {
	in.Username = strings.TrimSpace(in.Username)
	if err := checkUsername(in.Username); err != nil {
		return nil, err
	}
	for _, f := range []struct{ name, v string }{
		{"first_name", in.FirstName}, {"last_name", in.LastName}, {"display_name", in.DisplayName}} {
		if err := checkText(f.name, f.v, maxNameLen); err != nil {
			return nil, err
		}
	}
	if err := checkRole(in.Role); err != nil {
		return nil, err
	}
	if err := s.opts.Policy.Check(in.Username, in.Password); err != nil {
		return nil, err
	}
	hash, err := hashPassword(in.Password, s.opts.Hash)
	if err != nil {
		return nil, err
	}

	s.wmu.Lock()
	defer s.wmu.Unlock()
	s.mu.RLock()
	_, taken := s.byName[foldName(in.Username)]
	first := len(s.users) == 0
	resources := s.resourceList()
	s.mu.RUnlock()
	if taken {
		return nil, conflictf("username %s is taken", in.Username)
	}
	if first && by == "self" {
		in.Role, in.Active = RoleAdmin, true
	}
	now := s.now()
	display := in.DisplayName
	if display == "" {
		display = strings.TrimSpace(in.FirstName + " " + in.LastName)
	}
	if display == "" {
		display = in.Username
	}
	u := &User{UUID: uuid.NewString(), Username: in.Username, DisplayName: display,
		FirstName: in.FirstName, LastName: in.LastName, Role: in.Role, Active: in.Active,
		Password: hash, Created: now, Updated: now}
	base := &Project{UUID: u.UUID, Name: "base:" + u.Username, Owner: u.UUID, State: ProjectActive, Base: true,
		Policies: make(map[string]Policy, len(resources)), Members: []Member{{User: u.UUID, Role: MemberAdmin}},
		Created: now, Updated: now}
	for _, r := range resources {
		base.Policies[r.Name] = Policy{ProjectCapacity: r.UpLimit, MemberCapacity: r.UpLimit}
	}
	err = s.write(ctx, func(tx *ledger.Tx) error {
		if err := put(tx, prefixUser, u.UUID, u); err != nil {
			return err
		}
		if err := put(tx, prefixProject, base.UUID, base); err != nil {
			return err
		}
		if err := tx.SetHoldings(baseHoldings(u.UUID, resources)...); err != nil {
			return err
		}
		return emit(tx, catalog.UserRegisteredType, catalog.UserRegistered{Active: u.Active, By: by,
			Role: string(u.Role), Username: u.Username, UUID: u.UUID})
	}, func() {
		s.users[u.UUID] = u
		s.byName[foldName(u.Username)] = u
		s.projects[base.UUID] = base
	})
	if err != nil {
		return nil, err
	}
	return u, nil
}

// baseHoldings are a user's holdings in their base project: for each
// resource, the member holding (user:U, project:U, r) and the project
// holding (project:U, null, r), both at the resource's uplimit.
func baseHoldings(user string, resources []*Resource) []ledger.HoldingSetting {
	out := make([]ledger.HoldingSetting, 0, 2*len(resources))
	for _, r := range resources {
		out = append(out,
			ledger.HoldingSetting{Key: holdings.Key{Holder: "user:" + user, Source: holdings.SourceOf("project:" + user), Resource: r.Name}, Limit: r.UpLimit},
			ledger.HoldingSetting{Key: holdings.Key{Holder: "project:" + user, Source: holdings.NullSource, Resource: r.Name}, Limit: r.UpLimit})
	}
	return out
}

// userEvent is the payload of user events: never the password hash.
func userEvent(u *User) catalog.User {
	return catalog.User{Active: u.Active, Role: string(u.Role), Username: u.Username, UUID: u.UUID}
}

// FindUserByID returns the user with this uuid.
func (s *Store) FindUserByID(id string) (*User, error) {
	s.mu.RLock()
	u := s.users[id]
	s.mu.RUnlock()
	if u == nil {
		return nil, notFoundf("no user %q", id)
	}
	return u, nil
}

// FindUserByName returns the user with this username, case-insensitively.
func (s *Store) FindUserByName(name string) (*User, error) {
	s.mu.RLock()
	u := s.byName[foldName(strings.TrimSpace(name))]
	s.mu.RUnlock()
	if u == nil {
		return nil, notFoundf("no user %q", name)
	}
	return u, nil
}

// UserFilter selects the users whose username starts with Prefix
// (case-insensitively), ordered by username; Offset and Limit cut a window
// of them (see Lists in identity.go).
type UserFilter struct {
	Prefix        string
	Offset, Limit int
}

// FindUsers returns the window of the users f selects and the count of
// all of them.
func (s *Store) FindUsers(f UserFilter) ([]*User, int, error) {
	prefix := foldName(f.Prefix)
	s.mu.RLock()
	var all []*User
	for name, u := range s.byName {
		if strings.HasPrefix(name, prefix) {
			all = append(all, u)
		}
	}
	s.mu.RUnlock()
	slices.SortFunc(all, func(a, b *User) int { return strings.Compare(foldName(a.Username), foldName(b.Username)) })
	return window(all, f.Offset, f.Limit)
}

// UserUpdate changes a user's profile; nil fields stay.
type UserUpdate struct {
	DisplayName, FirstName, LastName *string
	// Data replaces the custom data: a JSON object, kept as given.
	Data json.RawMessage
}

// UpdateUser changes a user's profile and custom data.
func (s *Store) UpdateUser(ctx context.Context, id string, upd UserUpdate) (*User, error) {
	for _, f := range []struct {
		name string
		v    *string
	}{{"display_name", upd.DisplayName}, {"first_name", upd.FirstName}, {"last_name", upd.LastName}} {
		if f.v != nil {
			if err := checkText(f.name, *f.v, maxNameLen); err != nil {
				return nil, err
			}
		}
	}
	if upd.Data != nil {
		if len(upd.Data) > maxDataLen {
			return nil, invalidf("data must be at most %d bytes", maxDataLen)
		}
		var obj map[string]json.RawMessage
		if err := json.Unmarshal(upd.Data, &obj); err != nil || obj == nil {
			return nil, invalidf("data must be a JSON object")
		}
	}
	return s.changeUser(ctx, id, catalog.UserUpdatedType, func(u *User) error {
		if upd.DisplayName != nil {
			u.DisplayName = *upd.DisplayName
		}
		if upd.FirstName != nil {
			u.FirstName = *upd.FirstName
		}
		if upd.LastName != nil {
			u.LastName = *upd.LastName
		}
		if upd.Data != nil {
			var buf bytes.Buffer
			if err := json.Compact(&buf, upd.Data); err != nil {
				return invalidf("data must be a JSON object")
			}
			u.Data = buf.Bytes()
		}
		return nil
	})
}

// SetUserRole sets a user's role.
func (s *Store) SetUserRole(ctx context.Context, id string, role Role) (*User, error) {
	if err := checkRole(role); err != nil {
		return nil, err
	}
	return s.changeUser(ctx, id, catalog.UserRoleChangedType, func(u *User) error {
		u.Role = role
		return nil
	})
}

// ActivateUser makes a pending user active (an admin's call, or the
// verification step, which also marks the email verified).
func (s *Store) ActivateUser(ctx context.Context, id string, emailVerified bool) (*User, error) {
	return s.changeUser(ctx, id, catalog.UserActivatedType, func(u *User) error {
		u.Active = true
		u.EmailVerified = u.EmailVerified || emailVerified
		return nil
	})
}

// changeUser applies change to a copy of the user and stores it.
func (s *Store) changeUser(ctx context.Context, id, event string, change func(u *User) error) (*User, error) {
	s.wmu.Lock()
	defer s.wmu.Unlock()
	old, err := s.FindUserByID(id)
	if err != nil {
		return nil, err
	}
	u := *old
	if err := change(&u); err != nil {
		return nil, err
	}
	u.Updated = s.now()
	err = s.write(ctx, func(tx *ledger.Tx) error {
		if err := put(tx, prefixUser, u.UUID, &u); err != nil {
			return err
		}
		if event == "" {
			return nil
		}
		return emit(tx, event, userEvent(&u))
	}, func() {
		s.users[u.UUID] = &u
		s.byName[foldName(u.Username)] = &u
	})
	if err != nil {
		return nil, err
	}
	return &u, nil
}

// DeleteUser removes a user and every token of theirs. Their holdings stay
// in the ledger until released (the event says so), as does their base
// project.
func (s *Store) DeleteUser(ctx context.Context, id string) error {
	s.wmu.Lock()
	defer s.wmu.Unlock()
	u, err := s.FindUserByID(id)
	if err != nil {
		return err
	}
	s.mu.RLock()
	toks := slices.DeleteFunc(s.tokensOfLocked(u.UUID), func(t *Token) bool { return t.Kind == KindService })
	s.mu.RUnlock()
	return s.write(ctx, func(tx *ledger.Tx) error {
		if err := tx.Delete(recordKey(prefixUser, u.UUID)); err != nil {
			return err
		}
		for _, t := range toks {
			if err := s.stageRevoke(tx, t); err != nil {
				return err
			}
		}
		return emit(tx, catalog.UserDeletedType, catalog.UserDeleted{Active: u.Active, Holdings: catalog.HoldingsKept,
			Role: string(u.Role), TokensRevoked: len(toks), Username: u.Username, UUID: u.UUID})
	}, func() {
		delete(s.users, u.UUID)
		delete(s.byName, foldName(u.Username))
		for _, t := range toks {
			s.removeTokenLocked(t)
		}
	})
}

// Login checks a username and password and opens a session that keeps
// where it was made (from, see Origin): the secret is shown once. A hash
// made with older parameters is redone. A wrong username or password is
// failure.Unauthorized; an inactive user, failure.Forbidden.
func (s *Store) Login(ctx context.Context, username, password string, from Origin) (string, *Token, *User, error) {
	u, err := s.FindUserByName(username)
	if err != nil {
		// Spend the time a real check takes, so that timing does not tell
		// which usernames exist.
		checkPassword(s.dummyHash(), password, s.opts.Hash)
		return "", nil, nil, badLogin()
	}
	ok, stale := checkPassword(u.Password, password, s.opts.Hash)
	if !ok {
		return "", nil, nil, badLogin()
	}
	if !u.Active {
		return "", nil, nil, failure.Errorf(failure.Forbidden, "user %s is not active", u.Username)
	}
	var rehash string
	if stale {
		if rehash, err = hashPassword(password, s.opts.Hash); err != nil {
			return "", nil, nil, err
		}
	}
	checked := u.Password
	s.wmu.Lock()
	defer s.wmu.Unlock()
	// The user as of now: a password changed or reset since the check ends
	// every session, and must not let this one in.
	if u, err = s.FindUserByID(u.UUID); err != nil || u.Password != checked {
		return "", nil, nil, badLogin()
	}
	nu := *u
	nu.LastLogin = s.now()
	if rehash != "" {
		nu.Password = rehash
	}
	from = from.clean()
	var secret string
	var tok *Token
	err = s.write(ctx, func(tx *ledger.Tx) error {
		var err error
		secret, tok, err = s.stageToken(tx, KindSession, nu.UUID, "", false, nu.LastLogin.Add(s.opts.SessionTTL),
			func(t *Token) { t.Address, t.UserAgent = from.Address, from.UserAgent })
		if err != nil {
			return err
		}
		return put(tx, prefixUser, nu.UUID, &nu)
	}, func() {
		s.users[nu.UUID] = &nu
		s.byName[foldName(nu.Username)] = &nu
		s.addTokenLocked(tok)
	})
	if err != nil {
		return "", nil, nil, err
	}
	return secret, tok, &nu, nil
}

func badLogin() error { return failure.Errorf(failure.Unauthorized, "wrong username or password") }

// dummyHash is a hash to check a password against when the user does not
// exist.
func (s *Store) dummyHash() string {
	s.dummyOnce.Do(func() { s.dummy, _ = hashPassword("not a password of anyone", s.opts.Hash) })
	return s.dummy
}

// ChangePassword sets a new password of the user id after checking the
// old one, and ends every session of the user but the one with the id keep
// (the session the change is made with; "" keeps none), in one batch. A
// wrong old password is failure.Invalid (the caller's token is fine: it is
// not failure.Unauthorized, which clients take for a bad token); a new
// password the policy refuses, or a confirmation that differs, too.
func (s *Store) ChangePassword(ctx context.Context, id, old, newPassword, confirm, keep string) error {
	u, err := s.FindUserByID(id)
	if err != nil {
		return err
	}
	if ok, _ := checkPassword(u.Password, old, s.opts.Hash); !ok {
		return failure.Mark(ErrWrongPassword, "the old password is wrong")
	}
	hash, err := s.newPasswordHash(u, newPassword, confirm)
	if err != nil {
		return err
	}
	s.wmu.Lock()
	defer s.wmu.Unlock()
	return s.storePassword(ctx, u.UUID, u.Password, hash, keep, catalog.UserPasswordChangedType, catalog.TokenPasswordChanged, nil, nil)
}

// ErrWrongPassword is the refusal of a password change whose old password
// is wrong: failure.Invalid, a fault of the request and not of its token.
var ErrWrongPassword = failure.New(failure.Invalid, "the old password is wrong")

// newPasswordHash checks a new password of u against its confirmation and
// the policy, and hashes it.
func (s *Store) newPasswordHash(u *User, newPassword, confirm string) (string, error) {
	if newPassword != confirm {
		return "", invalidf("the new password and its confirmation differ")
	}
	if err := s.opts.Policy.Check(u.Username, newPassword); err != nil {
		return "", err
	}
	return hashPassword(newPassword, s.opts.Hash)
}

// storePassword stores hash as the password of the user id, if it is still
// the one checked (was), with the event typ (its payload the user), and
// ends the user's sessions but keep, each revoked with reason, all in one
// batch; more, if not nil, stages a change of its own first, which
// moreApply applies to memory. A password that changed since it was
// checked is failure.Conflict. The caller holds s.wmu.
func (s *Store) storePassword(ctx context.Context, id, was, hash, keep, typ, reason string,
	more func(tx *ledger.Tx) error, moreApply func()) error {
	s.mu.RLock()
	cur := s.users[id]
	var ended []*Token
	if cur != nil {
		ended = s.sessionsOfLocked(id, keep)
	}
	s.mu.RUnlock()
	switch {
	case cur == nil:
		return notFoundf("no user %q", id)
	case cur.Password != was:
		return conflictf("the password changed meanwhile; try again")
	}
	nu := *cur
	nu.Password, nu.Updated = hash, s.now()
	return s.write(ctx, func(tx *ledger.Tx) error {
		if more != nil {
			if err := more(tx); err != nil {
				return err
			}
		}
		if err := put(tx, prefixUser, nu.UUID, &nu); err != nil {
			return err
		}
		if err := emit(tx, typ, userEvent(&nu)); err != nil {
			return err
		}
		return s.stageEndSessions(tx, ended, reason)
	}, func() {
		s.users[nu.UUID] = &nu
		s.byName[foldName(nu.Username)] = &nu
		for _, t := range ended {
			s.removeTokenLocked(t)
		}
		if moreApply != nil {
			moreApply()
		}
	})
}

// RequestPasswordReset makes a single-use reset id for the user and hands
// it to the event stream only ("identity.password.reset_requested"). It
// answers the same whether or not the user exists.
func (s *Store) RequestPasswordReset(ctx context.Context, username string) error {
	u, err := s.FindUserByName(username)
	if err != nil {
		return nil
	}
	var raw [32]byte
	if _, err := rand.Read(raw[:]); err != nil {
		return err
	}
	id := base64.RawURLEncoding.EncodeToString(raw[:])
	r := &resetRequest{Hash: sha256.Sum256([]byte(id)), User: u.UUID, Expires: s.now().Add(s.opts.ResetTTL)}
	s.wmu.Lock()
	defer s.wmu.Unlock()
	return s.write(ctx, func(tx *ledger.Tx) error {
		if err := put(tx, prefixReset, string(r.Hash[:]), r); err != nil {
			return err
		}
		return emit(tx, catalog.PasswordResetRequestedType, catalog.PasswordResetRequested{
			Expires: r.Expires, ResetID: id, Username: u.Username, UUID: u.UUID})
	}, func() { s.resets[r.Hash] = r })
}

// ResetPassword sets a new password with a reset id, once, before it
// expires, and ends every session of the user, in one batch. An unknown,
// used or expired id is failure.NotFound.
func (s *Store) ResetPassword(ctx context.Context, id, newPassword, confirm string) error {
	h := sha256.Sum256([]byte(id))
	s.mu.RLock()
	r := s.resets[h]
	s.mu.RUnlock()
	if r == nil || !s.now().Before(r.Expires) {
		return failure.Errorf(failure.NotFound, "no such reset request, or it expired")
	}
	u, err := s.FindUserByID(r.User)
	if err != nil {
		return err
	}
	hash, err := s.newPasswordHash(u, newPassword, confirm)
	if err != nil {
		return err
	}
	s.wmu.Lock()
	defer s.wmu.Unlock()
	s.mu.RLock()
	still := s.resets[h] == r
	cur := s.users[r.User]
	s.mu.RUnlock()
	if !still || cur == nil {
		return failure.Errorf(failure.NotFound, "no such reset request, or it expired")
	}
	return s.storePassword(ctx, cur.UUID, cur.Password, hash, "", catalog.PasswordResetType, catalog.TokenPasswordReset,
		func(tx *ledger.Tx) error { return tx.Delete(recordKey(prefixReset, string(h[:]))) },
		func() { delete(s.resets, h) })
}

// Catalogs: uuid -> username and username -> uuid; unknown names are absent.

// Usernames maps the uuids given to usernames; nil lists every user.
func (s *Store) Usernames(uuids []string) map[string]string {
	s.mu.RLock()
	defer s.mu.RUnlock()
	out := make(map[string]string, len(uuids))
	if uuids == nil {
		for id, u := range s.users {
			out[id] = u.Username
		}
		return out
	}
	for _, id := range uuids {
		if u := s.users[id]; u != nil {
			out[id] = u.Username
		}
	}
	return out
}

// UUIDs maps the usernames given to uuids (keys as given); nil lists every
// user.
func (s *Store) UUIDs(names []string) map[string]string {
	s.mu.RLock()
	defer s.mu.RUnlock()
	out := make(map[string]string, len(names))
	if names == nil {
		for _, u := range s.users {
			out[u.Username] = u.UUID
		}
		return out
	}
	for _, n := range names {
		if u := s.byName[foldName(n)]; u != nil {
			out[n] = u.UUID
		}
	}
	return out
}

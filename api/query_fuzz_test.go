package api

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/quotaledger/quotaledger/holdings"
	"github.com/quotaledger/quotaledger/identity"
	"github.com/quotaledger/quotaledger/internal/testkit"
	"github.com/quotaledger/quotaledger/internal/testkit/identitytest"
	"github.com/quotaledger/quotaledger/ledger"
)

// routeFuzz is the fixture of the fuzz targets that reach every route of
// the table (FuzzEveryQuery, FuzzEveryBody): newEnv's admin, user and
// service, over a ledger whose clock stands still (so that no commission
// expires between the two looks at the state a refused call must leave as
// it was), and, for each kind of object a path names, a real one that reads
// may find and a victim that writes may change or delete without breaking
// the fixture (renewing the token of "cyclades" or deleting the user would
// turn every later call into a 401).
type routeFuzz struct {
	*env
	tokens     []fuzzToken
	userToken  *identity.Token // the user's personal token
	serial     uint64          // a pending commission of "cyclades"
	resolved   uint64          // an accepted commission of "cyclades"
	project    string          // a project of the user
	victim     *identity.User  // a user, group member and project member
	victimTok  *identity.Token // the victim's personal token
	victimSer  uint64          // a pending commission of "cyclades"
	victimProj string          // a project of the victim

	// last is the state after the previous call, if it was refused (nil
	// if it was not: a call that succeeded may have changed the state).
	last []byte
	// outbox is the sequence of the last event in the outbox, as of the
	// last look.
	outbox uint64
}

// fuzzToken is a token with the principal it authenticates as.
type fuzzToken struct {
	name, secret string
	p            identity.Principal
}

func newRouteFuzz(tb testing.TB) *routeFuzz {
	tb.Helper()
	ctx := context.Background()
	frozen := time.Now()
	l, id := openStores(tb, ledger.Options{Now: func() time.Time { return frozen }}, zerolog.Nop(), nil)
	must := func(err error) {
		tb.Helper()
		if err != nil {
			tb.Fatal(err)
		}
	}
	pr := identitytest.AddPrincipals(tb, id)
	e := &routeFuzz{env: &env{t: tb, l: l, id: id, admin: pr.AdminToken, service: pr.ServiceToken, userRec: pr.User}}
	_, _, err := id.CreateService(ctx, identity.NewService{Name: "victim", Type: "storage"})
	must(err)
	// A personal token: a session (the principals' UserToken) would end at
	// the first POST auth/logout.
	e.user, e.userToken, err = id.CreateAccessToken(ctx, e.userRec.UUID, "personal", time.Time{}, false)
	must(err)
	e.victim, err = id.CreateUser(ctx, identity.NewUser{Username: "victim@example.com", Password: testPassword, Active: true})
	must(err)
	_, e.victimTok, err = id.CreateAccessToken(ctx, e.victim.UUID, "victim", time.Time{}, false)
	must(err)
	for _, g := range []string{"staff", "victims"} {
		_, err = id.CreateGroup(ctx, g)
		must(err)
		_, err = id.AddGroupMember(ctx, g, e.victim.UUID)
		must(err)
	}
	pol := map[string]identity.Policy{"cyclades.vm": {ProjectCapacity: 10, MemberCapacity: 2}}
	p, err := id.CreateProject(ctx, identity.NewProject{Name: "project", Owner: e.userRec.UUID, Policies: pol})
	must(err)
	e.project = p.UUID
	_, err = id.AddProjectMember(ctx, e.project, identity.Member{User: e.victim.UUID, Role: identity.MemberMember})
	must(err)
	_, err = id.AddProjectMember(ctx, e.project, identity.Member{Group: "staff", Role: identity.MemberReader})
	must(err)
	p, err = id.CreateProject(ctx, identity.NewProject{Name: "victim project", Owner: e.userRec.UUID, Policies: pol})
	must(err)
	e.victimProj = p.UUID
	_, err = id.AddProjectMember(ctx, e.victimProj, identity.Member{User: e.victim.UUID, Role: identity.MemberMember})
	must(err)
	k := holdings.Key{Holder: "user:" + e.userRec.UUID, Source: holdings.SourceOf("project:" + e.userRec.UUID), Resource: "cyclades.ram"}
	for _, s := range []*uint64{&e.serial, &e.victimSer} {
		res, err := l.Issue(ctx, ledger.IssueRequest{Client: "cyclades", Provisions: []holdings.Provision{{Key: k, Quantity: 1}}, TTL: time.Hour})
		must(err)
		*s = res.Serial
	}
	res, err := l.Issue(ctx, ledger.IssueRequest{Client: "cyclades", AutoAccept: true, Provisions: []holdings.Provision{{Key: k, Quantity: 1}}})
	must(err)
	e.resolved = res.Serial
	e.api = New(l, id, Options{Logger: zerolog.Nop()})
	e.srv = httptest.NewServer(e.api)
	tb.Cleanup(e.srv.Close)
	for _, t := range []struct{ name, secret string }{{"admin", e.admin}, {"user", e.user}, {"service", e.service}} {
		p, err := id.Authenticate(t.secret)
		must(err)
		e.tokens = append(e.tokens, fuzzToken{t.name, t.secret, p})
	}
	return e
}

// tokensFor are the tokens allowed on rt ("" alone for a public route).
func (e *routeFuzz) tokensFor(rt Route) []fuzzToken {
	if rt.Access == Public {
		return []fuzzToken{{name: "none"}}
	}
	var out []fuzzToken
	for _, t := range e.tokens {
		if authorise(t.p, rt) == nil {
			out = append(out, t)
		}
	}
	return out
}

// param is a plausible value of the path wildcard name of rt: a real
// object for a read, a victim for a write.
func (e *routeFuzz) param(rt Route, name string) string {
	w := rt.Method != http.MethodGet
	in := func(s string) bool { return strings.Contains(rt.Path, s) }
	switch {
	case name == "uuid" && in("/projects/"):
		return either(w, e.project, e.victimProj)
	case name == "uuid":
		return either(w, e.userRec.UUID, e.victim.UUID)
	case name == "id" && in("/projects/"):
		return e.victim.UUID // a member
	case name == "id":
		return either(w, e.userToken.ID, e.victimTok.ID)
	case name == "serial" && strings.HasSuffix(rt.Path, "/log"):
		return strconv.FormatUint(e.resolved, 10)
	case name == "serial":
		return strconv.FormatUint(either(w, e.serial, e.victimSer), 10)
	case name == "name" && in("/groups/"):
		return either(w, "staff", "victims")
	case name == "name":
		return either(w, "cyclades", "victim")
	case name == "token":
		return e.user
	}
	return "x"
}

// either is victim if write, else real.
func either[T any](write bool, real, victim T) T {
	if write {
		return victim
	}
	return real
}

// path is rt's path with every wildcard filled: by e.param, or by the
// fuzzer's value v (escaped, so that it reaches the handler whole).
func (e *routeFuzz) path(rt Route, fuzz bool, v string) string {
	var b strings.Builder
	for i, seg := range strings.Split(rt.Path, "/") {
		if i > 0 {
			b.WriteByte('/')
		}
		if len(seg) > 2 && seg[0] == '{' && seg[len(seg)-1] == '}' {
			name := strings.TrimSuffix(seg[1:len(seg)-1], "...")
			if fuzz {
				b.WriteString(url.PathEscape(v))
			} else {
				b.WriteString(url.PathEscape(e.param(rt, name)))
			}
			continue
		}
		b.WriteString(seg)
	}
	return b.String()
}

// fuzzState is what a refused call must leave as it was: the ledger's
// holdings and counts, its outbox (no event) and identity's records
// (tokens without their last use, which every authentication moves).
type fuzzState struct {
	Ledger    state
	Outbox    uint64
	Users     int
	UserPage  []*identity.User
	Tokens    int
	TokenPage []identity.Token
	Groups    []*identity.Group
	Projects  []*identity.Project
	Services  []*identity.Service
	Resources []*identity.Resource
}

// fuzzState returns the state as JSON: a copy that a record changed in
// place cannot change, and quick to compare.
func (e *routeFuzz) fuzzState() []byte {
	e.t.Helper()
	st := e.l.Stats()
	st.Batches, st.Calls = 0, 0
	s := fuzzState{Ledger: state{Holdings: e.l.FindHoldings(ledger.HoldingFilter{}), Stats: st},
		Groups: testkit.Items(e.id.FindGroups(identity.GroupFilter{})), Projects: testkit.Items(e.id.FindProjects(identity.ProjectFilter{})), Services: testkit.Items(e.id.FindServices(identity.ServiceFilter{})), Resources: testkit.Items(e.id.FindResources(identity.ResourceFilter{}))}
	for { // read on from the last look: the outbox only grows here
		evs, err := e.l.Outbox(e.outbox, 1000)
		if err != nil {
			e.t.Fatal(err)
		}
		if len(evs) == 0 {
			break
		}
		e.outbox = evs[len(evs)-1].Seq
	}
	s.Outbox = e.outbox
	var err error
	if s.UserPage, s.Users, err = e.id.FindUsers(identity.UserFilter{Limit: 100}); err != nil {
		e.t.Fatal(err)
	}
	toks, n, err := e.id.FindAccessTokens(identity.TokenFilter{Limit: 100, Sort: "id"})
	if err != nil {
		e.t.Fatal(err)
	}
	s.Tokens = n
	for _, t := range toks {
		c := *t
		c.LastUsed = time.Time{}
		s.TokenPage = append(s.TokenPage, c)
	}
	j, err := json.Marshal(s)
	if err != nil {
		e.t.Fatal(err)
	}
	return j
}

// before returns the state before a call: that after the previous call if
// it was refused (a look at the state costs more than most calls).
func (e *routeFuzz) before() []byte {
	if e.last == nil {
		e.last = e.fuzzState()
	}
	return e.last
}

// checkFuzzAnswer fails on what no answer may be: a 5xx, a refusal that
// is not a cloudFault of the status's kind, a JSON answer that is not JSON,
// or a refusal after which the state is not what it was before.
func (e *routeFuzz) checkFuzzAnswer(t *testing.T, what string, w *httptest.ResponseRecorder, before []byte) {
	t.Helper()
	e.last = nil
	st, out := w.Code, w.Body.Bytes()
	if st >= 500 {
		t.Fatalf("%s: %d %s", what, st, out)
	}
	if ct := w.Header().Get("Content-Type"); st != http.StatusNoContent && strings.HasPrefix(ct, "application/json") && !json.Valid(out) {
		t.Fatalf("%s: %d, %s but not JSON: %q", what, st, ct, out)
	}
	if st < 400 {
		return
	}
	var f map[string]*Fault
	if err := json.Unmarshal(out, &f); err != nil || len(f) != 1 {
		t.Fatalf("%s: %d, not a cloudFault: %s", what, st, out)
	}
	for kind, v := range f {
		if v == nil || kind != faultKinds[st] || v.Code != st || v.Message == "" {
			t.Fatalf("%s: %d, bad cloudFault: %s", what, st, out)
		}
	}
	after := e.fuzzState()
	if !bytes.Equal(before, after) {
		t.Fatalf("%s: refused with %d but the state changed:\n%s\n%s", what, st, before, after)
	}
	e.last = after
}

// serve sends raw, a request as it comes on the wire, to the handler, as
// the server would; ok is false if net/http would have refused it itself.
func (e *routeFuzz) serve(raw string) (w *httptest.ResponseRecorder, ok bool) {
	req, err := http.ReadRequest(bufio.NewReader(strings.NewReader(raw)))
	if err != nil {
		return nil, false
	}
	req.RemoteAddr = "192.0.2.1:4321"
	w = httptest.NewRecorder()
	e.api.ServeHTTP(w, req)
	return w, true
}

// wireQuery makes q sendable on a request line: the bytes net/http's
// parser refuses (controls, space) are percent-encoded; the rest, '%'
// junk and invalid UTF-8 included, go as they are.
func wireQuery(q string) string {
	var b strings.Builder
	for i := 0; i < len(q); i++ {
		c := q[i]
		if c <= ' ' || c == 0x7f {
			b.WriteString("%" + strings.ToUpper(strconv.FormatUint(uint64(c)|0x100, 16)[1:]))
			continue
		}
		b.WriteByte(c)
	}
	return b.String()
}

// FuzzEveryQuery sends every route of the server's table an arbitrary
// query string, and its path wildcards either plausible values or an
// arbitrary one, with a token allowed on the route: never a 5xx or a
// panic, JSON where the answer says JSON, and a refusal is a cloudFault
// that changed nothing.
//
// mode picks the token among those allowed (bits 0-1) and whether the
// wildcards take param (bit 2).
func FuzzEveryQuery(f *testing.F) {
	e := newRouteFuzz(f)
	routes := e.api.Routes()
	for _, q := range []string{
		"", "page=1&page_size=20", "page=0", "page=-1", "page_size=101", "page=99999999999999999999999",
		"page=1&page=2&page=x", "limit=9223372036854775808", "limit=-9223372036854775808", "serial=18446744073709551616",
		"usage=1", "usage=true&usage=0", "belongsTo=x", "user=a,b,,c&project=", "project=%ff%fe",
		"holder=user:x&resource=cyclades.vm&source=", "from=2020-01-01T00:00:00Z&to=1970-01-01T00:00:00Z",
		"after=%00%01", "q=\xff\xfe", "%zz=1", "a=%", "a;b=c", "==&&==", "sort=-name,id&filter={\"==\":[1,1]}",
		"filter=[", "search=%E2%82", "name=" + strings.Repeat("x", 600),
	} {
		for i, mode := range []uint8{0, 1, 2, 4} {
			f.Add(uint8(len(q)*7+i*31), mode, "", q)
		}
	}
	for _, p := range []string{"", "0", "-1", "18446744073709551616", "\xff", "..", "a/b", "%zz", "user:x", strings.Repeat("9", 400)} {
		for i := range 4 {
			f.Add(uint8(len(p)*13+i*61), uint8(4), p, "")
		}
	}
	f.Fuzz(func(t *testing.T, which, mode uint8, param, query string) {
		e.t = t
		rt := routes[int(which)%len(routes)]
		toks := e.tokensFor(rt)
		if len(toks) == 0 {
			t.Fatalf("%s %s: no fixture token is allowed on it", rt.Method, rt.Path)
		}
		tok := toks[int(mode&3)%len(toks)]
		target := e.path(rt, mode&4 != 0, param)
		if query != "" {
			target += "?" + wireQuery(query)
		}
		raw := rt.Method + " " + target + " HTTP/1.1\r\nHost: example.com\r\n"
		if tok.secret != "" {
			raw += "X-Auth-Token: " + tok.secret + "\r\n"
		}
		raw += "\r\n"
		before := e.before()
		w, ok := e.serve(raw)
		if !ok {
			return // refused by net/http before any handler
		}
		e.checkFuzzAnswer(t, rt.Method+" "+target+" as "+tok.name, w, before)
	})
}

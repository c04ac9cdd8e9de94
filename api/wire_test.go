package api

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/quotaledger/quotaledger/holdings"
	"github.com/quotaledger/quotaledger/identity"
	"github.com/quotaledger/quotaledger/ledger"
)

// wireFix is newEnv with what the calls of TestWireAnswers need, made
// afresh for each call that uses it up.
type wireFix struct {
	*env
	n        int
	personal string // the user's personal token
	tokenID  string // its id
}

func (f *wireFix) name(prefix string) string {
	f.n++
	return fmt.Sprintf("%s%d", prefix, f.n)
}

func (f *wireFix) must(err error) {
	f.t.Helper()
	if err != nil {
		f.t.Fatal(err)
	}
}

// pending issues a pending commission of cyclades; accepted one already
// accepted (with a log).
func (f *wireFix) commission(accept bool) uint64 {
	f.t.Helper()
	u := f.uuid()
	k := holdings.Key{Holder: "user:" + u, Source: holdings.SourceOf("project:" + u), Resource: "cyclades.vm"}
	res, err := f.l.Issue(context.Background(), ledger.IssueRequest{Client: "cyclades", AutoAccept: accept,
		Provisions: []holdings.Provision{{Key: k, Quantity: 0}}})
	f.must(err)
	return res.Serial
}

func (f *wireFix) newUser() *identity.User {
	f.t.Helper()
	u, err := f.id.CreateUser(context.Background(), identity.NewUser{Username: f.name("u") + "@example.com",
		Password: testPassword, Active: true})
	f.must(err)
	return u
}

func (f *wireFix) group(members ...string) string {
	f.t.Helper()
	g := f.name("g")
	_, err := f.id.CreateGroup(context.Background(), g)
	f.must(err)
	for _, m := range members {
		_, err := f.id.AddGroupMember(context.Background(), g, m)
		f.must(err)
	}
	return g
}

func (f *wireFix) project(members ...string) string {
	f.t.Helper()
	p, err := f.id.CreateProject(context.Background(), identity.NewProject{Name: f.name("p"), Owner: f.uuid(),
		Policies: map[string]identity.Policy{"cyclades.vm": {ProjectCapacity: 2, MemberCapacity: 1}}})
	f.must(err)
	for _, m := range members {
		_, err := f.id.AddProjectMember(context.Background(), p.UUID, identity.Member{User: m, Role: identity.MemberMember})
		f.must(err)
	}
	return p.UUID
}

func (f *wireFix) newService() string {
	f.t.Helper()
	name := f.name("svc")
	_, _, err := f.id.CreateService(context.Background(), identity.NewService{Name: name, Type: "storage"})
	f.must(err)
	return name
}

// resetID requests a password reset of a new user and returns its id,
// from the event stream (a reset ends every session of its user: the
// fixture's user keeps theirs).
func (f *wireFix) resetID() string {
	f.t.Helper()
	f.must(f.id.RequestPasswordReset(context.Background(), f.newUser().Username))
	evs, err := f.l.Outbox(0, 1_000_000)
	f.must(err)
	var id string
	for _, ev := range evs {
		if ev.Type == "identity.password.reset_requested" {
			var d struct {
				ResetID string `json:"reset_id"`
			}
			f.must(json.Unmarshal(ev.Data, &d))
			id = d.ResetID
		}
	}
	return id
}

// wireCall is how TestWireAnswers calls a route: its path (with its
// query), the token and the body.
type wireCall struct {
	path, token string
	body        any
}

// wireCalls are, for every route of the table by method and path, a call
// that succeeds (and uses up nothing another call needs).
func wireCalls(f *wireFix) map[string]func() wireCall {
	const acc = "/account/v1.0/"
	u := f.uuid()
	return map[string]func() wireCall{
		"GET /healthz":      func() wireCall { return wireCall{"/healthz", "", nil} },
		"GET /readyz":       func() wireCall { return wireCall{"/readyz", "", nil} },
		"GET /metrics":      func() wireCall { return wireCall{"/metrics", "", nil} },
		"GET /openapi.json": func() wireCall { return wireCall{"/openapi.json", "", nil} },

		"POST /identity/v2.0/tokens": func() wireCall {
			return wireCall{"/identity/v2.0/tokens", "", map[string]any{"auth": map[string]any{"token": map[string]string{"id": f.user}}}}
		},
		"GET /identity/v2.0/tokens/{token}": func() wireCall {
			return wireCall{"/identity/v2.0/tokens/" + f.user + "?belongsTo=" + u, f.service, nil}
		},
		"GET " + acc + "resources":      func() wireCall { return wireCall{acc + "resources", "", nil} },
		"GET " + acc + "quotas":         func() wireCall { return wireCall{acc + "quotas", f.user, nil} },
		"GET " + acc + "service_quotas": func() wireCall { return wireCall{acc + "service_quotas?user=" + u, f.service, nil} },
		"GET " + acc + "service_project_quotas": func() wireCall {
			return wireCall{acc + "service_project_quotas?project=" + u, f.service, nil}
		},
		"POST " + acc + "commissions": func() wireCall {
			return wireCall{acc + "commissions", f.service, map[string]any{"provisions": []any{map[string]any{
				"holder": "user:" + u, "source": "project:" + u, "resource": "cyclades.vm", "quantity": 0}}}}
		},
		"GET " + acc + "commissions": func() wireCall { f.commission(false); return wireCall{acc + "commissions", f.service, nil} },
		"GET " + acc + "commissions/{serial}": func() wireCall {
			return wireCall{fmt.Sprintf("%scommissions/%d", acc, f.commission(false)), f.service, nil}
		},
		"POST " + acc + "commissions/{serial}/action": func() wireCall {
			return wireCall{fmt.Sprintf("%scommissions/%d/action", acc, f.commission(false)), f.service, `{"accept":""}`}
		},
		"POST " + acc + "commissions/action": func() wireCall {
			return wireCall{acc + "commissions/action", f.service, map[string]any{
				"accept": []uint64{f.commission(false), 999999}, "reject": []uint64{f.commission(false)}}}
		},
		"POST " + acc + "user_catalogs": func() wireCall {
			return wireCall{acc + "user_catalogs", f.user, map[string]any{"uuids": []string{u}, "displaynames": []string{"user@example.com"}}}
		},
		"POST " + acc + "service/user_catalogs": func() wireCall {
			return wireCall{acc + "service/user_catalogs", f.service, map[string]any{"uuids": nil, "displaynames": []string{"nobody"}}}
		},
		"GET " + acc + "authenticate": func() wireCall { return wireCall{acc + "authenticate?usage=1", f.user, nil} },
		"POST " + acc + "feedback":    func() wireCall { return wireCall{acc + "feedback", f.user, "feedback_msg=hi&feedback_data=x"} },
		"GET /ui/get_services":        func() wireCall { return wireCall{"/ui/get_services", "", nil} },

		"POST " + acc + "auth/register": func() wireCall {
			return wireCall{acc + "auth/register", "", map[string]string{"username": f.name("r") + "@example.com", "password": testPassword}}
		},
		"POST " + acc + "auth/login": func() wireCall {
			return wireCall{acc + "auth/login", "", map[string]string{"username": "user@example.com", "password": testPassword}}
		},
		"POST " + acc + "auth/logout": func() wireCall {
			secret, _, _, err := f.id.Login(context.Background(), "user@example.com", testPassword, identity.Origin{})
			f.must(err)
			return wireCall{acc + "auth/logout", secret, nil}
		},
		"GET " + acc + "auth/whoami": func() wireCall { return wireCall{acc + "auth/whoami", f.user, nil} },
		"POST " + acc + "auth/password/change": func() wireCall {
			return wireCall{acc + "auth/password/change", f.user, map[string]string{"old_password": testPassword,
				"new_password": testPassword, "new_password_confirm": testPassword}}
		},
		"POST " + acc + "auth/password/reset": func() wireCall {
			return wireCall{acc + "auth/password/reset", "", map[string]string{"username": "nobody@example.com"}}
		},
		"POST " + acc + "auth/password/reset/confirm": func() wireCall {
			return wireCall{acc + "auth/password/reset/confirm", "", map[string]string{"id": f.resetID(),
				"new_password": testPassword, "new_password_confirm": testPassword}}
		},
		"GET " + acc + "auth/password/policy": func() wireCall { return wireCall{acc + "auth/password/policy", "", nil} },
		"GET " + acc + "auth/rules":           func() wireCall { return wireCall{acc + "auth/rules", "", nil} },

		"POST " + acc + "access_tokens": func() wireCall {
			return wireCall{acc + "access_tokens", f.user, map[string]any{"name": f.name("t"), "expires": time.Now().Add(time.Hour)}}
		},
		"GET " + acc + "access_tokens":      func() wireCall { return wireCall{acc + "access_tokens?page_size=1", f.user, nil} },
		"GET " + acc + "access_tokens/self": func() wireCall { return wireCall{acc + "access_tokens/self", f.personal, nil} },
		"GET " + acc + "access_tokens/{id}": func() wireCall { return wireCall{acc + "access_tokens/" + f.tokenID, f.user, nil} },
		"PATCH " + acc + "access_tokens/{id}": func() wireCall {
			return wireCall{acc + "access_tokens/" + f.tokenID, f.user, map[string]any{"name": "renamed", "expires": nil}}
		},
		"DELETE " + acc + "access_tokens/{id}": func() wireCall {
			_, t, err := f.id.CreateAccessToken(context.Background(), u, f.name("t"), time.Time{}, false)
			f.must(err)
			return wireCall{acc + "access_tokens/" + t.ID, f.user, nil}
		},

		"GET " + acc + "sessions": func() wireCall { return wireCall{acc + "sessions?page_size=1", f.user, nil} },
		"GET " + acc + "sessions/{id}": func() wireCall {
			p, err := f.id.Authenticate(f.user)
			f.must(err)
			return wireCall{acc + "sessions/" + p.Token.ID, f.user, nil}
		},
		"DELETE " + acc + "sessions/{id}": func() wireCall {
			_, t, _, err := f.id.Login(context.Background(), "user@example.com", testPassword, identity.Origin{})
			f.must(err)
			return wireCall{acc + "sessions/" + t.ID, f.user, nil}
		},

		"POST " + acc + "reconcile": func() wireCall {
			f.commission(false)
			return wireCall{acc + "reconcile", f.service, map[string]any{"older_than": 0, "usage": []any{map[string]any{
				"holder": "user:" + u, "source": "project:" + u, "resource": "cyclades.vm", "usage": 1}}}}
		},
		"GET " + acc + "pending_commissions": func() wireCall {
			f.commission(false)
			return wireCall{acc + "pending_commissions?service=cyclades&older_than=0", f.admin, nil}
		},
		"POST " + acc + "pending_commissions/action": func() wireCall {
			return wireCall{acc + "pending_commissions/action", f.admin, map[string]any{"accept": []uint64{f.commission(false)},
				"reject": []int64{-1}}}
		},

		"GET " + acc + "users": func() wireCall { return wireCall{acc + "users?q=user&page=1", f.admin, nil} },
		"POST " + acc + "users": func() wireCall {
			return wireCall{acc + "users", f.admin, map[string]any{"username": f.name("c") + "@example.com", "password": testPassword}}
		},
		"GET " + acc + "users/{uuid}":    func() wireCall { return wireCall{acc + "users/" + u, f.user, nil} },
		"PATCH " + acc + "users/{uuid}":  func() wireCall { return wireCall{acc + "users/" + u, f.user, map[string]any{"first_name": "U"}} },
		"DELETE " + acc + "users/{uuid}": func() wireCall { return wireCall{acc + "users/" + f.newUser().UUID, f.admin, nil} },
		"POST " + acc + "users/{uuid}/activate": func() wireCall {
			return wireCall{acc + "users/" + f.newUser().UUID + "/activate", f.admin, nil}
		},
		"PUT " + acc + "users/{uuid}/role": func() wireCall {
			return wireCall{acc + "users/" + f.newUser().UUID + "/role", f.admin, map[string]string{"role": "reader"}}
		},
		"POST " + acc + "users/{uuid}/role": func() wireCall {
			return wireCall{acc + "users/" + f.newUser().UUID + "/role", f.admin, map[string]string{"role": "user"}}
		},
		"GET " + acc + "users/{uuid}/data": func() wireCall { return wireCall{acc + "users/" + u + "/data", f.user, nil} },
		"PUT " + acc + "users/{uuid}/data": func() wireCall { return wireCall{acc + "users/" + u + "/data", f.user, `{"a":[1,null]}`} },

		"GET " + acc + "groups": func() wireCall { f.group(u); return wireCall{acc + "groups", f.admin, nil} },
		"POST " + acc + "groups": func() wireCall {
			return wireCall{acc + "groups", f.admin, map[string]any{"name": f.name("g"), "members": []string{u}}}
		},
		"GET " + acc + "groups/{name}": func() wireCall { return wireCall{acc + "groups/" + f.group(u), f.admin, nil} },
		"PATCH " + acc + "groups/{name}": func() wireCall {
			return wireCall{acc + "groups/" + f.group(), f.admin, map[string]string{"name": f.name("g")}}
		},
		"DELETE " + acc + "groups/{name}": func() wireCall { return wireCall{acc + "groups/" + f.group(), f.admin, nil} },
		"POST " + acc + "groups/{name}/members": func() wireCall {
			return wireCall{acc + "groups/" + f.group() + "/members", f.admin, map[string]string{"user": u}}
		},
		"DELETE " + acc + "groups/{name}/members/{uuid}": func() wireCall {
			return wireCall{acc + "groups/" + f.group(u) + "/members/" + u, f.admin, nil}
		},

		"GET " + acc + "projects": func() wireCall { f.project(); return wireCall{acc + "projects", f.user, nil} },
		"POST " + acc + "projects": func() wireCall {
			return wireCall{acc + "projects", f.user, map[string]any{"name": f.name("p"),
				"policies": map[string]any{"cyclades.vm": map[string]int{"project_capacity": 1, "member_capacity": 1}}}}
		},
		"GET " + acc + "projects/{uuid}":    func() wireCall { return wireCall{acc + "projects/" + f.project(), f.user, nil} },
		"DELETE " + acc + "projects/{uuid}": func() wireCall { return wireCall{acc + "projects/" + f.project(), f.user, nil} },
		"GET " + acc + "projects/{uuid}/members": func() wireCall {
			return wireCall{acc + "projects/" + f.project(f.newUser().UUID) + "/members", f.user, nil}
		},
		"POST " + acc + "projects/{uuid}/members": func() wireCall {
			return wireCall{acc + "projects/" + f.project() + "/members", f.user, map[string]string{"user": f.newUser().UUID, "role": "member"}}
		},
		"PATCH " + acc + "projects/{uuid}/members/{id}": func() wireCall {
			m := f.newUser().UUID
			return wireCall{acc + "projects/" + f.project(m) + "/members/" + m, f.user, map[string]string{"role": "admin"}}
		},
		"DELETE " + acc + "projects/{uuid}/members/{id}": func() wireCall {
			m := f.newUser().UUID
			return wireCall{acc + "projects/" + f.project(m) + "/members/" + m, f.user, nil}
		},
		"GET " + acc + "projects/{uuid}/policies": func() wireCall {
			return wireCall{acc + "projects/" + f.project() + "/policies", f.user, nil}
		},
		"PUT " + acc + "projects/{uuid}/policies": func() wireCall {
			return wireCall{acc + "projects/" + f.project() + "/policies", f.user,
				map[string]any{"cyclades.ram": map[string]int{"project_capacity": 3, "member_capacity": 2}}}
		},

		"POST " + acc + "resources": func() wireCall {
			return wireCall{acc + "resources", f.admin, map[string]any{"name": "cyclades." + f.name("r"), "service": "cyclades", "unit": "bytes"}}
		},
		"GET " + acc + "services": func() wireCall { return wireCall{acc + "services", f.admin, nil} },
		"POST " + acc + "services": func() wireCall {
			return wireCall{acc + "services", f.admin, map[string]any{"name": f.name("s"), "type": "storage",
				"endpoints": []map[string]string{{"publicURL": "https://s.example.com", "versionId": "v1"}}}}
		},
		"GET " + acc + "services/{name}":    func() wireCall { return wireCall{acc + "services/cyclades", f.admin, nil} },
		"DELETE " + acc + "services/{name}": func() wireCall { return wireCall{acc + "services/" + f.newService(), f.admin, nil} },
		"POST " + acc + "services/{name}/token": func() wireCall {
			return wireCall{acc + "services/" + f.newService() + "/token", f.admin, map[string]any{"expires": time.Now().Add(time.Hour)}}
		},

		"POST " + acc + "holdings": func() wireCall {
			return wireCall{acc + "holdings", f.admin, map[string]any{"holdings": []map[string]any{
				{"holder": "h", "source": nil, "resource": "r", "limit": 3}, {"holder": "h", "source": "s", "resource": "r", "limit": 1}}}}
		},
		"GET " + acc + "holdings": func() wireCall { return wireCall{acc + "holdings?holder=user:" + u + "&null_source=1", f.admin, nil} },
		"DELETE " + acc + "holdings": func() wireCall {
			return wireCall{acc + "holdings", f.admin, map[string]any{"holdings": []map[string]any{{"holder": "x", "source": nil, "resource": "y"}}}}
		},
		"GET " + acc + "commissions/{serial}/log": func() wireCall {
			return wireCall{fmt.Sprintf("%scommissions/%d/log", acc, f.commission(true)), f.service, nil}
		},
		"GET " + acc + "history": func() wireCall { f.commission(true); return wireCall{acc + "history", f.user, nil} },
		"GET " + acc + "backup":  func() wireCall { return wireCall{acc + "backup", f.admin, nil} },
		"GET " + acc + "cluster": func() wireCall { return wireCall{acc + "cluster", f.admin, nil} },
	}
}

// canonicalPath is the path of the route an alias under /astakos/api
// stands for.
func canonicalPath(p string) string {
	rest, ok := strings.CutPrefix(p, "/astakos/api/")
	switch {
	case !ok:
		return p
	case strings.HasPrefix(rest, "tokens"):
		return "/identity/v2.0/" + rest
	case rest == "get_services":
		return "/ui/get_services"
	}
	return "/account/v1.0/" + rest
}

// TestWireAnswers calls every route of the table and decodes its answer
// strictly (unknown fields refused) into the type the table gives, then
// checks that the type renders it back as it came (the same keys, the same
// nulls): the wire types and the answers cannot drift apart.
func TestWireAnswers(t *testing.T) {
	e := newEnv(t)
	f := &wireFix{env: e}
	var err error
	var tok *identity.Token
	f.personal, tok, err = e.id.CreateAccessToken(context.Background(), e.uuid(), "personal", time.Time{}, false)
	f.must(err)
	f.tokenID = tok.ID
	calls := wireCalls(f)
	used := map[string]bool{}
	for _, rt := range e.api.Routes() {
		key := rt.Method + " " + canonicalPath(rt.Path)
		mk, found := calls[key]
		if !found {
			t.Errorf("%s %s: no call in wireCalls; add one that succeeds", rt.Method, rt.Path)
			continue
		}
		used[key] = true
		e.t = t // a subtest had it
		c := mk()
		path := c.path
		if rest, ok := strings.CutPrefix(rt.Path, "/astakos/api/"); ok { // call the alias itself
			prefix := strings.TrimSuffix(canonicalPath(rt.Path), rest)
			path = "/astakos/api/" + strings.TrimPrefix(c.path, prefix)
		}
		t.Run(rt.Method+" "+rt.Path, func(t *testing.T) { checkWireAnswer(t, e, rt, path, c) })
	}
	for key := range calls {
		if !used[key] {
			t.Errorf("wireCalls has %s, which no route serves", key)
		}
	}
}

func checkWireAnswer(t *testing.T, e *env, rt Route, path string, c wireCall) {
	e.t = t
	var body []byte
	switch b := c.body.(type) {
	case nil:
	case string:
		body = []byte(b)
	default:
		var err error
		if body, err = json.Marshal(b); err != nil {
			t.Fatal(err)
		}
	}
	headers := map[string]string{}
	if c.token != "" {
		headers["X-Auth-Token"] = c.token
	}
	status, header, raw := e.send(rt.Method, path, headers, body)
	var ans *Answer
	for i := range rt.Answers {
		if rt.Answers[i].Status == status {
			ans = &rt.Answers[i]
		}
	}
	if ans == nil {
		t.Fatalf("%s %s: %d, not an answer of the route (%+v): %s", rt.Method, path, status, rt.Answers, raw)
	}
	switch {
	case ans.Type != "":
		if ct := header.Get("Content-Type"); !strings.HasPrefix(ct, ans.Type) || len(raw) == 0 {
			t.Fatalf("%s %s: %s with %d bytes, want %s", rt.Method, path, ct, len(raw), ans.Type)
		}
		return
	case ans.Body == nil:
		if len(raw) != 0 {
			t.Fatalf("%s %s: a body where none is due: %s", rt.Method, path, raw)
		}
		return
	}
	if ct := header.Get("Content-Type"); ct != contentType {
		t.Fatalf("%s %s: Content-Type %q", rt.Method, path, ct)
	}
	v := reflect.New(reflect.TypeOf(ans.Body))
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v.Interface()); err != nil {
		t.Fatalf("%s %s: the answer does not decode strictly into %T: %v\n%s", rt.Method, path, ans.Body, err, raw)
	}
	again, err := json.Marshal(v.Interface())
	if err != nil {
		t.Fatal(err)
	}
	var got, want any
	if err := json.Unmarshal(raw, &want); err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(again, &got); err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("%s %s: %T renders the answer otherwise:\nanswer %s\ntype   %s", rt.Method, path, ans.Body, raw, again)
	}
}

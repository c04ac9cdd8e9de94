package client_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/quotaledger/quotaledger/api"
	"github.com/quotaledger/quotaledger/api/client"
	"github.com/quotaledger/quotaledger/identity"
	"github.com/quotaledger/quotaledger/internal/testkit/identitytest"
	"github.com/quotaledger/quotaledger/ledger"
)

// env is a real server (package api over a ledger on an in-memory
// filesystem) on a loopback port, with the usual principals
// (identitytest.AddPrincipals: an admin, a user, a service "cyclades" of
// type compute and two resources of it), and a client for each of them.
type env struct {
	t       *testing.T
	srv     *httptest.Server
	id      *identity.Store
	admin   *client.Client
	user    *client.Client
	service *client.Client
	anon    *client.Client
	userRec *identity.User
	userTok string
	svcTok  string
}

const testPassword = identitytest.Password

func newEnv(t *testing.T) *env {
	t.Helper()
	l, id := identitytest.OpenStores(t, ledger.Options{}, identity.Options{})
	p := identitytest.AddPrincipals(t, id)
	e := &env{t: t, id: id, userRec: p.User, userTok: p.UserToken, svcTok: p.ServiceToken}
	e.srv = httptest.NewServer(unrouted(t, api.New(l, id, api.Options{Logger: zerolog.Nop()})))
	t.Cleanup(e.srv.Close)
	e.anon = e.newClient("", client.Options{})
	e.admin = e.anon.WithToken(p.AdminToken)
	e.user = e.anon.WithToken(e.userTok)
	e.service = e.anon.WithToken(e.svcTok)
	return e
}

func (e *env) newClient(token string, opts client.Options) *client.Client {
	e.t.Helper()
	opts.NoTokenPickup = true
	if opts.HTTPClient == nil {
		opts.HTTPClient = e.srv.Client()
	}
	c, err := client.New(e.srv.URL, token, opts)
	if err != nil {
		e.t.Fatal(err)
	}
	return c
}

// check fails the test on err. A call to a route the server does not
// serve (its fallback's 404 "no route ...", or a 405) is a client that
// calls the wrong method or path: it fails too, naming the route.
func check(t *testing.T, route string, err error) {
	t.Helper()
	if err == nil {
		return
	}
	var ce *client.Error
	if errors.As(err, &ce) && (ce.Status == http.StatusNotFound && strings.HasPrefix(ce.Message, "no route") ||
		ce.Status == http.StatusMethodNotAllowed) {
		t.Fatalf("%s: the client called a route the server does not serve: %v", route, err)
	}
	t.Fatalf("%s: %v", route, err)
}

// unrouted wraps h, the server, and fails t at its end if any request met
// no route (the server's 404 "no route ...") or got a 405. Calls that
// expect an error (wantErr of a NotFound, err != nil) would otherwise
// take a 404 for a wrong path as the answer they wanted.
func unrouted(t *testing.T, h http.Handler) http.Handler {
	var mu sync.Mutex
	var missed []string
	t.Cleanup(func() {
		mu.Lock()
		defer mu.Unlock()
		if len(missed) > 0 {
			t.Errorf("the client called routes the server does not serve: %s", strings.Join(missed, ", "))
		}
	})
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		rec := &faultRecorder{ResponseWriter: w}
		call := r.Method + " " + r.URL.Path
		h.ServeHTTP(rec, r)
		if rec.status == http.StatusMethodNotAllowed ||
			rec.status == http.StatusNotFound && bytes.Contains(rec.head, []byte(`"message":"no route `)) {
			mu.Lock()
			missed = append(missed, call)
			mu.Unlock()
		}
	})
}

// faultRecorder keeps the status and the first bytes of an answer.
type faultRecorder struct {
	http.ResponseWriter
	status int
	head   []byte
}

func (w *faultRecorder) WriteHeader(code int) {
	if w.status == 0 {
		w.status = code
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *faultRecorder) Write(b []byte) (int, error) {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	if n := 512 - len(w.head); n > 0 {
		w.head = append(w.head, b[:min(n, len(b))]...)
	}
	return w.ResponseWriter.Write(b)
}

func (w *faultRecorder) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// wantErr checks that err is a T (and an *Error of status).
func wantErr[T error](t *testing.T, what string, err error, status int) T {
	t.Helper()
	var typed T
	if !errors.As(err, &typed) {
		t.Fatalf("%s: want a %T, got %T %v", what, typed, err, err)
	}
	var ce *client.Error
	if !errors.As(err, &ce) {
		t.Fatalf("%s: %T does not unwrap to *client.Error", what, err)
	}
	if ce.Status != status {
		t.Fatalf("%s: status %d, want %d (%v)", what, ce.Status, status, err)
	}
	return typed
}

func TestNew(t *testing.T) {
	for _, bad := range []string{"", "localhost:8080", "ftp://x", "http://"} {
		if _, err := client.New(bad, "", client.Options{NoTokenPickup: true}); err == nil {
			t.Errorf("New(%q): no error", bad)
		}
	}
	c, err := client.New("http://example.com/ql/", "t", client.Options{})
	if err != nil || c.BaseURL() != "http://example.com/ql" || c.Token() != "t" {
		t.Fatalf("New: %v %v", c, err)
	}
	if c.WithToken("u").Token() != "u" || c.Token() != "t" {
		t.Fatal("WithToken changed the original")
	}
}

func TestUserInfo(t *testing.T) {
	e := newEnv(t)
	ctx := t.Context()
	info, err := e.user.GetUserInfo(ctx, false)
	check(t, "GET /account/v1.0/authenticate", err)
	if info.UUID != e.userRec.UUID || info.DisplayName == "" || len(info.Email) != 1 || info.Usage != nil {
		t.Fatalf("user info: %+v", info)
	}
	if info.AuthTokenCreated.IsZero() || time.Since(info.AuthTokenCreated.Time) > time.Hour {
		t.Fatalf("auth_token_created: %v", info.AuthTokenCreated)
	}
	info, err = e.user.Authenticate(ctx, true)
	check(t, "GET /account/v1.0/authenticate?usage=1", err)
	if len(info.Usage) != 2 {
		t.Fatalf("usage: %+v", info.Usage)
	}
	// The 2013 style: the token on the call.
	info, err = e.anon.WithToken(e.userTok).GetUserInfo(ctx, false)
	if err != nil || info.UUID != e.userRec.UUID {
		t.Fatalf("WithToken: %+v %v", info, err)
	}
	info, err = e.anon.GetUserInfo(client.ContextWithToken(ctx, e.userTok), false)
	if err != nil || info.UUID != e.userRec.UUID {
		t.Fatalf("ContextWithToken: %+v %v", info, err)
	}
	_, err = e.anon.WithToken("qlp_nosuchtoken").GetUserInfo(ctx, false)
	wantErr[*client.Unauthorized](t, "bad token", err, 401)
	_, err = e.anon.GetUserInfo(ctx, false)
	wantErr[*client.Unauthorized](t, "no token", err, 401)
	_, err = e.service.GetUserInfo(ctx, false)
	wantErr[*client.Forbidden](t, "a service's token", err, 403)
}

func TestEndpoints(t *testing.T) {
	e := newEnv(t)
	ctx := t.Context()
	a, err := e.user.GetEndpoints(ctx, "")
	check(t, "POST /identity/v2.0/tokens", err)
	if a.Token == nil || a.Token.ID != e.userTok || a.User == nil || a.User.ID != e.userRec.UUID ||
		a.Token.Tenant.ID != e.userRec.UUID {
		t.Fatalf("access: %+v", a)
	}
	if !slices.Contains(a.User.Projects, e.userRec.UUID) {
		t.Fatalf("projects: %v", a.User.Projects)
	}
	acc, ok := a.Endpoint("account")
	if !ok || acc.PublicURL != e.srv.URL+"/account/v1.0" || acc.VersionID != "v1.0" || acc.UIURL != e.srv.URL+"/ui" {
		t.Fatalf("account endpoint: %+v", acc)
	}
	if cmp, ok := a.Endpoint("compute"); !ok || cmp.PublicURL != "https://cyclades.example.com/compute/v2.0" {
		t.Fatalf("compute endpoint: %+v", cmp)
	}
	if _, err := e.user.GetEndpoints(ctx, e.userRec.UUID); err != nil {
		t.Fatalf("with the user's uuid: %v", err)
	}
	_, err = e.user.GetEndpoints(ctx, "someone-else")
	wantErr[*client.BadRequest](t, "another tenant", err, 400)
	_, err = e.anon.WithToken("qlp_nosuchtoken").GetEndpoints(ctx, "")
	wantErr[*client.Unauthorized](t, "bad token", err, 401)

	cat, err := e.anon.GetServiceCatalog(ctx)
	if err != nil || len(cat) < 3 || cat[0].Name != "astakos_account" {
		t.Fatalf("service catalog: %+v %v", cat, err)
	}

	v, err := e.service.ValidateToken(ctx, e.userTok, e.userRec.UUID)
	check(t, "GET /identity/v2.0/tokens/{token}", err)
	if v.User == nil || v.User.ID != e.userRec.UUID {
		t.Fatalf("validate: %+v", v)
	}
	_, err = e.service.ValidateToken(ctx, e.userTok, "someone-else")
	wantErr[*client.NotFound](t, "validate for another user", err, 404)
}

func TestCatalogs(t *testing.T) {
	e := newEnv(t)
	ctx := t.Context()
	uuid := e.userRec.UUID
	for _, v := range []struct {
		name      string
		c         *client.Client
		usernames func(context.Context, []string) (map[string]string, error)
		username  func(context.Context, string) (string, error)
		uuids     func(context.Context, []string) (map[string]string, error)
		uuid      func(context.Context, string) (string, error)
	}{
		{"user", e.user, e.user.GetUsernames, e.user.GetUsername, e.user.GetUUIDs, e.user.GetUUID},
		{"service", e.service, e.service.ServiceGetUsernames, e.service.ServiceGetUsername, e.service.ServiceGetUUIDs, e.service.ServiceGetUUID},
	} {
		m, err := v.usernames(ctx, []string{uuid, "nope"})
		check(t, v.name+" user_catalogs", err)
		if len(m) != 1 || m[uuid] != "user@example.com" {
			t.Fatalf("%s usernames: %v", v.name, m)
		}
		if n, err := v.username(ctx, uuid); err != nil || n != "user@example.com" {
			t.Fatalf("%s username: %q %v", v.name, n, err)
		}
		_, err = v.username(ctx, "nope")
		if nu := wantErr[*client.NoUserName](t, v.name+" username of nobody", err, 404); nu.UUID != "nope" {
			t.Fatalf("NoUserName: %+v", nu)
		}
		m, err = v.uuids(ctx, []string{"user@example.com", "nobody@example.com"})
		if err != nil || len(m) != 1 || m["user@example.com"] != uuid {
			t.Fatalf("%s uuids: %v %v", v.name, m, err)
		}
		if u, err := v.uuid(ctx, "user@example.com"); err != nil || u != uuid {
			t.Fatalf("%s uuid: %q %v", v.name, u, err)
		}
		_, err = v.uuid(ctx, "nobody@example.com")
		if nu := wantErr[*client.NoUUID](t, v.name+" uuid of nobody", err, 404); nu.Username != "nobody@example.com" {
			t.Fatalf("NoUUID: %+v", nu)
		}
	}
	cat, err := e.user.GetCatalogs(ctx, []string{uuid}, []string{"admin@example.com"})
	if err != nil || cat.UUIDCatalog[uuid] != "user@example.com" || cat.DisplayNameCatalog["admin@example.com"] == "" {
		t.Fatalf("catalogs: %+v %v", cat, err)
	}
	// The service variant with null lists: every user.
	cat, err = e.service.ServiceGetCatalogs(ctx, nil, nil)
	if err != nil || len(cat.UUIDCatalog) != 2 || len(cat.DisplayNameCatalog) != 2 {
		t.Fatalf("service catalogs of everyone: %+v %v", cat, err)
	}
	_, err = e.user.ServiceGetUsernames(ctx, []string{uuid})
	wantErr[*client.Forbidden](t, "user token on the service call", err, 403)
}

func TestQuotas(t *testing.T) {
	e := newEnv(t)
	ctx := t.Context()
	uuid := e.userRec.UUID
	q, err := e.user.GetQuotas(ctx)
	check(t, "GET /account/v1.0/quotas", err)
	if vm := q[uuid]["cyclades.vm"]; vm.Limit != 2 || vm.Usage != 0 || vm.ProjectLimit != 2 {
		t.Fatalf("base project quota: %+v", q)
	}
	if _, err := e.user.IssueUserProjectCommission(ctx, uuid, uuid, map[string]int64{"cyclades.vm": 1}, client.IssueOptions{}); err == nil {
		t.Fatal("a user issued a commission")
	}
	serial, err := e.service.IssueUserProjectCommission(ctx, uuid, uuid, map[string]int64{"cyclades.vm": 1}, client.IssueOptions{})
	check(t, "POST /account/v1.0/commissions", err)
	sq, err := e.service.ServiceGetQuotas(ctx, []string{uuid}, "")
	check(t, "GET /account/v1.0/service_quotas", err)
	if vm := sq[uuid][uuid]["cyclades.vm"]; vm.Limit != 2 || vm.Usage != 1 || vm.Pending != 1 || vm.ProjectUsage != 1 {
		t.Fatalf("service quotas: %+v", sq)
	}
	sq, err = e.service.ServiceGetQuotas(ctx, nil, uuid)
	if err != nil || len(sq) != 1 {
		t.Fatalf("service quotas of a project: %+v %v", sq, err)
	}
	_, err = e.service.ServiceGetQuotas(ctx, []string{"nobody"}, "")
	wantErr[*client.NotFound](t, "service quotas of nobody", err, 404)
	pq, err := e.service.ServiceGetProjectQuotas(ctx, uuid)
	check(t, "GET /account/v1.0/service_project_quotas", err)
	if vm := pq[uuid]["cyclades.vm"]; vm.ProjectLimit != 2 || vm.ProjectUsage != 1 || vm.ProjectPending != 1 {
		t.Fatalf("project quotas: %+v", pq)
	}
	if err := e.service.AcceptCommission(ctx, serial); err != nil {
		t.Fatal(err)
	}
	q, err = e.user.GetQuotas(ctx)
	if vm := q[uuid]["cyclades.vm"]; err != nil || vm.Usage != 1 || vm.Pending != 0 {
		t.Fatalf("quota after accept: %+v %v", q, err)
	}
	_, err = e.user.ServiceGetQuotas(ctx, nil, "")
	wantErr[*client.Forbidden](t, "user token on service quotas", err, 403)
}

func TestCommissions(t *testing.T) {
	e := newEnv(t)
	ctx := t.Context()
	svc := e.service
	if _, err := e.admin.SetHoldings(ctx, []client.HoldingLimit{
		{Holder: "h0", Source: client.String("system"), Resource: "cyclades.vm", Limit: 10},
		{Holder: "h0", Source: nil, Resource: "cyclades.vm", Limit: 5},
	}); err != nil {
		check(t, "POST /account/v1.0/holdings", err)
	}
	s1, err := svc.IssueCommission(ctx, client.Commission{Name: "first", Provisions: []client.Provision{
		{Holder: "h0", Source: client.String("system"), Resource: "cyclades.vm", Quantity: 3}}})
	check(t, "POST /account/v1.0/commissions", err)
	s2, err := svc.IssueOneCommission(ctx, "h0", nil, map[string]int64{"cyclades.vm": 2}, client.IssueOptions{Name: "second"})
	if err != nil || s2 <= s1 {
		t.Fatalf("issue one: %d %v", s2, err)
	}
	pending, err := svc.GetPendingCommissions(ctx)
	check(t, "GET /account/v1.0/commissions", err)
	if !slices.Equal(pending, []int64{s1, s2}) {
		t.Fatalf("pending: %v", pending)
	}
	info, err := svc.GetCommissionInfo(ctx, s2)
	check(t, "GET /account/v1.0/commissions/{serial}", err)
	if info.Serial != s2 || info.Name != "second" || info.IssueTime.IsZero() || len(info.Provisions) != 1 ||
		info.Provisions[0].Source != nil || info.Provisions[0].Quantity != 2 {
		t.Fatalf("info: %+v", info)
	}
	_, err = svc.GetCommissionInfo(ctx, 9999)
	wantErr[*client.NotFound](t, "info of no commission", err, 404)

	// Over the limit: NoCapacityError with the provision, limit and usage.
	_, err = svc.IssueOneCommission(ctx, "h0", client.String("system"), map[string]int64{"cyclades.vm": 8}, client.IssueOptions{})
	ql := wantErr[*client.QuotaLimit](t, "over the limit", err, 413)
	if ql.Name != "NoCapacityError" || ql.Limit != 10 || ql.Usage != 3 || ql.Provision.Holder != "h0" ||
		ql.Provision.Quantity != 8 || ql.Provision.Source == nil || *ql.Provision.Source != "system" {
		t.Fatalf("QuotaLimit: %+v", ql)
	}
	var ce *client.Error
	if !errors.As(err, &ce) || ce.Kind != "overLimit" || ce.Name != "NoCapacityError" {
		t.Fatalf("*Error: %+v", ce)
	}
	// Forced: allowed.
	s3, err := svc.IssueOneCommission(ctx, "h0", client.String("system"), map[string]int64{"cyclades.vm": 8},
		client.IssueOptions{Force: true})
	if err != nil {
		t.Fatalf("forced issue: %v", err)
	}
	// A release below zero: NoQuantityError, even forced.
	_, err = svc.IssueOneCommission(ctx, "h0", nil, map[string]int64{"cyclades.vm": -1}, client.IssueOptions{Force: true})
	if ql := wantErr[*client.QuotaLimit](t, "release below zero", err, 413); ql.Name != "NoQuantityError" {
		t.Fatalf("QuotaLimit: %+v", ql)
	}
	// No such holding.
	_, err = svc.IssueOneCommission(ctx, "nobody", nil, map[string]int64{"cyclades.vm": 1}, client.IssueOptions{})
	nf := wantErr[*client.NotFound](t, "no holding", err, 404)
	if nf.Provision == nil || nf.Provision.Holder != "nobody" || nf.Err.Name != "NoHoldingError" {
		t.Fatalf("NotFound: %+v", nf)
	}
	// A malformed commission.
	_, err = svc.IssueCommission(ctx, client.Commission{Provisions: []client.Provision{{Holder: "", Resource: "x", Quantity: 1}}})
	wantErr[*client.BadRequest](t, "empty holder", err, 400)

	if err := svc.AcceptCommission(ctx, s1); err != nil {
		t.Fatal(err)
	}
	if err := svc.CommissionActionReason(ctx, s2, client.ActionReject, "changed my mind"); err != nil {
		t.Fatal(err)
	}
	err = svc.RejectCommission(ctx, s1)
	wantErr[*client.NotFound](t, "reject an accepted commission", err, 404)
	if err := svc.CommissionAction(ctx, s3, "maybe"); err == nil {
		t.Fatal("action maybe: no error")
	}

	// Resolve many: s3 accepted, s4 rejected, s5 in both, 9999 unknown.
	s4, err := svc.IssueOneCommission(ctx, "h0", nil, map[string]int64{"cyclades.vm": 1}, client.IssueOptions{})
	if err != nil {
		t.Fatal(err)
	}
	s5, err := svc.IssueOneCommission(ctx, "h0", nil, map[string]int64{"cyclades.vm": 1}, client.IssueOptions{})
	if err != nil {
		t.Fatal(err)
	}
	res, err := svc.ResolveCommissions(ctx, []int64{s3, s5, 9999}, []int64{s4, s5})
	check(t, "POST /account/v1.0/commissions/action", err)
	if !slices.Equal(res.Accepted, []int64{s3}) || !slices.Equal(res.Rejected, []int64{s4}) || len(res.Failed) != 2 {
		t.Fatalf("resolve: %+v", res)
	}
	for _, f := range res.Failed {
		switch f.Serial {
		case 9999:
			wantErr[*client.NotFound](t, "failed unknown", f.Err, 404)
		case s5:
			wantErr[*client.BadRequest](t, "failed conflicting", f.Err, 400)
		default:
			t.Fatalf("failed: %+v", f)
		}
	}
	if pending, _ := svc.GetPendingCommissions(ctx); !slices.Equal(pending, []int64{s5}) {
		t.Fatalf("pending after resolve: %v", pending)
	}

	// Auto-accept, and an empty commission.
	s6, err := svc.IssueCommission(ctx, client.Commission{AutoAccept: true, Provisions: []client.Provision{
		{Holder: "h0", Source: nil, Resource: "cyclades.vm", Quantity: 1}}})
	if err != nil {
		t.Fatal(err)
	}
	if pending, _ := svc.GetPendingCommissions(ctx); slices.Contains(pending, s6) {
		t.Fatal("auto-accepted commission pending")
	}
	if _, err := svc.IssueCommission(ctx, client.Commission{}); err != nil {
		t.Fatalf("empty commission: %v", err)
	}

	// The log of a resolved commission, and the history.
	log, err := svc.FindCommissionLog(ctx, client.CommissionLogFilter{Serial: s1})
	check(t, "GET /account/v1.0/commissions/{serial}/log", err)
	if log.Count != 1 || log.Results[0].Serial != s1 || !strings.HasPrefix(log.Results[0].Reason, "ACCEPT") ||
		log.Results[0].UsageMin != 3 {
		t.Fatalf("log: %+v", log)
	}
	h, err := e.admin.FindHistory(ctx, client.HistoryFilter{Holder: "h0", Serial: s2})
	check(t, "GET /account/v1.0/history", err)
	if len(h.Results) != 1 || !strings.Contains(h.Results[0].Reason, "changed my mind") {
		t.Fatalf("history: %+v", h)
	}

	// One service does not see another's commissions.
	other, err := e.admin.CreateService(ctx, client.NewService{Name: "pithos", Type: "storage"})
	check(t, "POST /account/v1.0/services", err)
	_, err = e.anon.WithToken(other.Token).GetCommissionInfo(ctx, s5)
	wantErr[*client.NotFound](t, "another service's commission", err, 404)
}

func TestUserProjectProvisions(t *testing.T) {
	ps := client.UserProjectProvisions("U", "P", map[string]int64{"b": 2, "a": 1})
	want := []client.Provision{
		{Holder: "user:U", Source: client.String("project:P"), Resource: "a", Quantity: 1},
		{Holder: "project:P", Resource: "a", Quantity: 1},
		{Holder: "user:U", Source: client.String("project:P"), Resource: "b", Quantity: 2},
		{Holder: "project:P", Resource: "b", Quantity: 2},
	}
	b1, _ := json.Marshal(ps)
	b2, _ := json.Marshal(want)
	if string(b1) != string(b2) {
		t.Fatalf("provisions:\n%s\nwant\n%s", b1, b2)
	}
}

func TestIdempotentIssue(t *testing.T) {
	e := newEnv(t)
	ctx := t.Context()
	uuid := e.userRec.UUID
	o := client.IssueOptions{IdempotencyKey: "key-1"}
	s1, err := e.service.IssueUserProjectCommission(ctx, uuid, uuid, map[string]int64{"cyclades.vm": 1}, o)
	check(t, "POST /account/v1.0/commissions", err)
	s2, err := e.service.IssueUserProjectCommission(ctx, uuid, uuid, map[string]int64{"cyclades.vm": 1}, o)
	if err != nil || s2 != s1 {
		t.Fatalf("same key: %d %d %v", s1, s2, err)
	}
	pending, _ := e.service.GetPendingCommissions(ctx)
	if len(pending) != 1 {
		t.Fatalf("pending: %v", pending)
	}
	_, err = e.service.IssueUserProjectCommission(ctx, uuid, uuid, map[string]int64{"cyclades.vm": 2}, o)
	wantErr[*client.Conflict](t, "same key, another body", err, 409)
	// With a TTL.
	if _, err := e.service.IssueCommission(ctx, client.Commission{TTL: 60}); err != nil {
		t.Fatalf("ttl: %v", err)
	}
}

func TestResourcesServicesFeedback(t *testing.T) {
	e := newEnv(t)
	ctx := t.Context()
	rs, err := e.anon.GetResources(ctx)
	check(t, "GET /account/v1.0/resources", err)
	if r := rs["cyclades.ram"]; r.Unit != "bytes" || r.Service != "cyclades" || !r.AllowInProjects || r.Description != "memory" {
		t.Fatalf("resources: %+v", rs)
	}
	if rs["cyclades.vm"].Unit != "" {
		t.Fatalf("null unit: %+v", rs["cyclades.vm"])
	}
	svcs, err := e.anon.GetServices(ctx)
	check(t, "GET /ui/get_services", err)
	if len(svcs) != 1 || svcs[0]["name"] != "cyclades" {
		t.Fatalf("services: %v", svcs)
	}
	err = e.user.SendFeedback(ctx, "it works & well", "client=go; a=b")
	check(t, "POST /account/v1.0/feedback", err)
	err = e.user.SendFeedback(ctx, "", "")
	wantErr[*client.BadRequest](t, "empty feedback", err, 400)
	err = e.anon.SendFeedback(ctx, "hi", "")
	wantErr[*client.Unauthorized](t, "anonymous feedback", err, 401)
}

func TestAuthFlow(t *testing.T) {
	e := newEnv(t)
	ctx := t.Context()
	u, err := e.anon.Register(ctx, client.Registration{Username: "new@example.com", Password: testPassword,
		FirstName: "New", LastName: "Comer"})
	check(t, "POST /account/v1.0/auth/register", err)
	if u.UUID == "" || u.Username != "new@example.com" || u.FirstName != "New" {
		t.Fatalf("register: %+v", u)
	}
	_, err = e.anon.Register(ctx, client.Registration{Username: "new@example.com", Password: testPassword})
	wantErr[*client.Conflict](t, "register twice", err, 409)
	if !u.Active {
		if _, err := e.admin.ActivateUser(ctx, u.UUID); err != nil {
			t.Fatal(err)
		}
	}
	s, err := e.anon.Login(ctx, "new@example.com", testPassword)
	check(t, "POST /account/v1.0/auth/login", err)
	if s.Token == "" || s.User.UUID != u.UUID || s.Expires.IsZero() {
		t.Fatalf("login: %+v", s)
	}
	_, err = e.anon.Login(ctx, "new@example.com", "wrong password!")
	wantErr[*client.Unauthorized](t, "wrong password", err, 401)
	me := e.anon.WithToken(s.Token)
	who, err := me.Whoami(ctx)
	check(t, "GET /account/v1.0/auth/whoami", err)
	if who.UUID != u.UUID || who.Auth.Kind != "session" {
		t.Fatalf("whoami: %+v", who)
	}
	pol, err := e.anon.GetPasswordPolicy(ctx)
	check(t, "GET /account/v1.0/auth/password/policy", err)
	if len(pol) == 0 {
		t.Fatal("empty password policy")
	}
	if _, err := e.anon.GetRules(ctx); err != nil {
		check(t, "GET /account/v1.0/auth/rules", err)
	}
	const newPassword = "another horse battery"
	err = me.ChangePassword(ctx, testPassword, newPassword, newPassword)
	check(t, "POST /account/v1.0/auth/password/change", err)
	err = e.anon.RequestPasswordReset(ctx, "nobody@example.com")
	check(t, "POST /account/v1.0/auth/password/reset", err)
	err = e.anon.ResetPassword(ctx, "no-such-id", newPassword, newPassword)
	if client.StatusOf(err) < 400 || client.StatusOf(err) >= 500 {
		t.Fatalf("reset with a bad id: %v", err)
	}
	if s, err = e.anon.Login(ctx, "new@example.com", newPassword); err != nil {
		t.Fatalf("login with the new password: %v", err)
	}
	me = e.anon.WithToken(s.Token)
	err = me.Logout(ctx)
	check(t, "POST /account/v1.0/auth/logout", err)
	_, err = me.Whoami(ctx)
	wantErr[*client.Unauthorized](t, "after logout", err, 401)
}

func TestAccessTokens(t *testing.T) {
	e := newEnv(t)
	ctx := t.Context()
	exp := time.Now().Add(24 * time.Hour).UTC().Truncate(time.Second)
	tok, err := e.user.CreateAccessToken(ctx, client.NewAccessToken{Name: "ci", Expires: exp})
	check(t, "POST /account/v1.0/access_tokens", err)
	if tok.Token == "" || tok.ID == "" || tok.Name != "ci" || !tok.Expires.Equal(exp) || tok.ReadOnly {
		t.Fatalf("create: %+v", tok)
	}
	ro, err := e.user.CreateAccessToken(ctx, client.NewAccessToken{Name: "dashboard", ReadOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	page, err := e.user.FindAccessTokens(ctx, client.TokenFilter{Sort: "name"})
	check(t, "GET /account/v1.0/access_tokens", err)
	if page.Count != 2 || page.Results[0].Name != "ci" || page.Results[1].Name != "dashboard" || page.Results[0].Token != "" {
		t.Fatalf("list: %+v", page)
	}
	page, err = e.user.FindAccessTokens(ctx, client.TokenFilter{Search: "DASH"})
	if err != nil || page.Count != 1 || page.Results[0].ID != ro.ID {
		t.Fatalf("search: %+v %v", page, err)
	}
	page, err = e.user.FindAccessTokens(ctx, client.TokenFilter{Filter: json.RawMessage(`{"==":[{"var":"read_only"},true]}`)})
	if err != nil || page.Count != 1 || page.Results[0].ID != ro.ID {
		t.Fatalf("filter: %+v %v", page, err)
	}
	page, err = e.user.FindAccessTokens(ctx, client.TokenFilter{PageOptions: client.PageOptions{Page: 1, PageSize: 1}})
	if err != nil || page.Count != 2 || len(page.Results) != 1 || page.Next == nil || page.Previous != nil {
		t.Fatalf("page: %+v %v", page, err)
	}
	_, err = e.user.FindAccessTokens(ctx, client.TokenFilter{Sort: "colour"})
	wantErr[*client.BadRequest](t, "bad sort", err, 400)
	got, err := e.user.FindAccessTokenByID(ctx, tok.ID)
	check(t, "GET /account/v1.0/access_tokens/{id}", err)
	if got.Name != "ci" {
		t.Fatalf("get: %+v", got)
	}
	self, err := e.anon.WithToken(tok.Token).FindSelfAccessToken(ctx)
	check(t, "GET /account/v1.0/access_tokens/self", err)
	if self.ID != tok.ID {
		t.Fatalf("self: %+v", self)
	}
	up, err := e.user.UpdateAccessToken(ctx, tok.ID, client.TokenUpdate{Name: client.String("ci-2"),
		Expires: &time.Time{}, ReadOnly: client.Bool(true)})
	check(t, "PATCH /account/v1.0/access_tokens/{id}", err)
	if up.Name != "ci-2" || !up.Expires.IsZero() || !up.ReadOnly {
		t.Fatalf("update: %+v", up)
	}
	// A read-only token changes nothing.
	_, err = e.anon.WithToken(ro.Token).CreateAccessToken(ctx, client.NewAccessToken{Name: "x"})
	wantErr[*client.Forbidden](t, "read-only token", err, 403)
	err = e.user.DeleteAccessToken(ctx, tok.ID)
	check(t, "DELETE /account/v1.0/access_tokens/{id}", err)
	_, err = e.anon.WithToken(tok.Token).Whoami(ctx)
	wantErr[*client.Unauthorized](t, "revoked token", err, 401)
	_, err = e.user.FindAccessTokenByID(ctx, tok.ID)
	wantErr[*client.NotFound](t, "revoked token get", err, 404)
}

func TestUsers(t *testing.T) {
	e := newEnv(t)
	ctx := t.Context()
	u, err := e.admin.CreateUser(ctx, client.NewUser{Username: "ops@example.com", Password: testPassword,
		FirstName: "Op", LastName: "Erator", Role: "reader", Active: client.Bool(false)})
	check(t, "POST /account/v1.0/users", err)
	if u.UUID == "" || u.Active || u.Role != "reader" {
		t.Fatalf("create: %+v", u)
	}
	_, err = e.user.CreateUser(ctx, client.NewUser{Username: "x@example.com", Password: testPassword})
	wantErr[*client.Forbidden](t, "user creates a user", err, 403)
	_, err = e.admin.CreateUser(ctx, client.NewUser{Username: "not an email", Password: testPassword})
	wantErr[*client.BadRequest](t, "bad username", err, 400)
	got, err := e.admin.FindUserByID(ctx, u.UUID)
	check(t, "GET /account/v1.0/users/{uuid}", err)
	if got.Username != "ops@example.com" {
		t.Fatalf("get: %+v", got)
	}
	page, err := e.admin.FindUsers(ctx, client.UserFilter{Prefix: "OPS"})
	check(t, "GET /account/v1.0/users", err)
	if page.Count != 1 || page.Results[0].UUID != u.UUID {
		t.Fatalf("list: %+v", page)
	}
	if page, err = e.admin.FindUsers(ctx, client.UserFilter{PageOptions: client.PageOptions{PageSize: 100}}); err != nil || page.Count != 3 {
		t.Fatalf("list all: %+v %v", page, err)
	}
	act, err := e.admin.ActivateUser(ctx, u.UUID)
	check(t, "POST /account/v1.0/users/{uuid}/activate", err)
	if !act.Active {
		t.Fatalf("activate: %+v", act)
	}
	r, err := e.admin.SetUserRole(ctx, u.UUID, "user")
	check(t, "POST /account/v1.0/users/{uuid}/role", err)
	if r.Role != "user" {
		t.Fatalf("role: %+v", r)
	}
	upd, err := e.user.UpdateUser(ctx, e.userRec.UUID, client.UserUpdate{DisplayName: client.String("Some User")})
	check(t, "PATCH /account/v1.0/users/{uuid}", err)
	if upd.DisplayName != "Some User" {
		t.Fatalf("update: %+v", upd)
	}
	data, err := e.user.SetUserData(ctx, e.userRec.UUID, json.RawMessage(`{"theme":"dark"}`))
	check(t, "PUT /account/v1.0/users/{uuid}/data", err)
	if string(data) != `{"theme":"dark"}` {
		t.Fatalf("data: %s", data)
	}
	if data, err = e.user.GetUserData(ctx, e.userRec.UUID); err != nil || string(data) != `{"theme":"dark"}` {
		t.Fatalf("get data: %s %v", data, err)
	}
	_, err = e.user.FindUserByID(ctx, u.UUID)
	wantErr[*client.Forbidden](t, "another user", err, 403)
	err = e.admin.DeleteUser(ctx, u.UUID)
	check(t, "DELETE /account/v1.0/users/{uuid}", err)
	_, err = e.admin.FindUserByID(ctx, u.UUID)
	wantErr[*client.NotFound](t, "deleted user", err, 404)
}

func TestGroupsProjects(t *testing.T) {
	e := newEnv(t)
	ctx := t.Context()
	uuid := e.userRec.UUID
	g, err := e.admin.CreateGroup(ctx, "devs")
	check(t, "POST /account/v1.0/groups", err)
	if g.Name != "devs" || len(g.Members) != 0 {
		t.Fatalf("group: %+v", g)
	}
	_, err = e.admin.CreateGroup(ctx, "devs")
	wantErr[*client.Conflict](t, "group twice", err, 409)
	g, err = e.admin.AddGroupMember(ctx, "devs", uuid)
	check(t, "POST /account/v1.0/groups/{name}/members", err)
	if len(g.Members) != 1 || g.Members[0].UUID != uuid || g.Members[0].Username != "user@example.com" {
		t.Fatalf("add member: %+v", g)
	}
	users, err := e.admin.GroupUsers(ctx, "devs")
	check(t, "GET /account/v1.0/groups/{name}", err)
	if len(users) != 1 {
		t.Fatalf("group users: %+v", users)
	}
	gp, err := e.admin.FindGroups(ctx, client.GroupFilter{})
	check(t, "GET /account/v1.0/groups", err)
	if gp.Count != 1 {
		t.Fatalf("groups: %+v", gp)
	}
	if g, err = e.admin.RenameGroup(ctx, "devs", "developers"); err != nil || g.Name != "developers" {
		check(t, "PATCH /account/v1.0/groups/{name}", err)
		t.Fatalf("rename: %+v", g)
	}

	p, err := e.user.CreateProject(ctx, client.NewProject{Name: "lab",
		Policies: map[string]client.Policy{"cyclades.vm": {ProjectCapacity: 10, MemberCapacity: 3}}})
	check(t, "POST /account/v1.0/projects", err)
	if p.UUID == "" || p.Owner != uuid || p.Policies["cyclades.vm"].MemberCapacity != 3 {
		t.Fatalf("project: %+v", p)
	}
	got, err := e.user.FindProjectByID(ctx, p.UUID)
	check(t, "GET /account/v1.0/projects/{uuid}", err)
	if got.Name != "lab" {
		t.Fatalf("get project: %+v", got)
	}
	pp, err := e.user.FindProjects(ctx, client.ProjectFilter{})
	check(t, "GET /account/v1.0/projects", err)
	if pp.Count != 2 { // the base project and lab
		t.Fatalf("projects: %+v", pp)
	}
	other, err := e.admin.CreateUser(ctx, client.NewUser{Username: "other@example.com", Password: testPassword})
	if err != nil {
		t.Fatal(err)
	}
	p, err = e.user.AddProjectMember(ctx, p.UUID, client.Member{User: other.UUID, Role: "member"})
	check(t, "POST /account/v1.0/projects/{uuid}/members", err)
	if _, err := e.user.AddProjectMember(ctx, p.UUID, client.Member{Group: "developers", Role: "reader"}); err != nil {
		t.Fatalf("add a group: %v", err)
	}
	ms, err := e.user.FindProjectMembers(ctx, client.ProjectMemberFilter{Project: p.UUID})
	check(t, "GET /account/v1.0/projects/{uuid}/members", err)
	if ms.Count != 3 {
		t.Fatalf("members: %+v", ms)
	}
	if _, err := e.user.SetProjectMemberRole(ctx, p.UUID, other.UUID, "admin"); err != nil {
		check(t, "PATCH /account/v1.0/projects/{uuid}/members/{id}", err)
	}
	// The member holding of the new member, for a service.
	sq, err := e.service.ServiceGetQuotas(ctx, []string{other.UUID}, p.UUID)
	if err != nil || sq[other.UUID][p.UUID]["cyclades.vm"].Limit != 3 || sq[other.UUID][p.UUID]["cyclades.vm"].ProjectLimit != 10 {
		t.Fatalf("member quota: %+v %v", sq, err)
	}
	serial, err := e.service.IssueUserProjectCommission(ctx, other.UUID, p.UUID, map[string]int64{"cyclades.vm": 4}, client.IssueOptions{})
	if ql := wantErr[*client.QuotaLimit](t, "over the member capacity", err, 413); ql.Limit != 3 {
		t.Fatalf("QuotaLimit: %+v (serial %d)", ql, serial)
	}
	pol, err := e.user.SetProjectPolicies(ctx, p.UUID, map[string]client.Policy{"cyclades.vm": {ProjectCapacity: 20, MemberCapacity: 5}})
	check(t, "PUT /account/v1.0/projects/{uuid}/policies", err)
	if pol["cyclades.vm"].ProjectCapacity != 20 {
		t.Fatalf("policies: %+v", pol)
	}
	if pol, err = e.user.GetProjectPolicies(ctx, p.UUID); err != nil || pol["cyclades.vm"].MemberCapacity != 5 {
		check(t, "GET /account/v1.0/projects/{uuid}/policies", err)
		t.Fatalf("get policies: %+v", pol)
	}
	err = e.user.RemoveProjectMember(ctx, p.UUID, "developers")
	check(t, "DELETE /account/v1.0/projects/{uuid}/members/{id}", err)
	_, err = e.anon.WithToken(e.userTok).FindProjectByID(ctx, "no-such-project")
	wantErr[*client.NotFound](t, "no project", err, 404)
	err = e.user.DeleteProject(ctx, p.UUID)
	check(t, "DELETE /account/v1.0/projects/{uuid}", err)

	if g, err = e.admin.RemoveGroupMember(ctx, "developers", uuid); err != nil || len(g.Members) != 0 {
		check(t, "DELETE /account/v1.0/groups/{name}/members/{uuid}", err)
		t.Fatalf("remove member: %+v", g)
	}
	err = e.admin.DeleteGroup(ctx, "developers")
	check(t, "DELETE /account/v1.0/groups/{name}", err)
	_, err = e.admin.FindGroupByName(ctx, "developers")
	wantErr[*client.NotFound](t, "deleted group", err, 404)
}

func TestHoldings(t *testing.T) {
	e := newEnv(t)
	ctx := t.Context()
	hs, err := e.admin.SetHoldings(ctx, []client.HoldingLimit{
		{Holder: "h0", Source: client.String("system"), Resource: "r1", Limit: 10},
		{Holder: "h0", Source: client.String("system"), Resource: "r1", Limit: 12}, // later wins
		{Holder: "h1", Source: nil, Resource: "r1", Limit: 5},
		{Holder: "h1", Source: client.String(""), Resource: "r1", Limit: 6},
	})
	check(t, "POST /account/v1.0/holdings", err)
	if len(hs) != 3 || hs[0].Limit != 12 {
		t.Fatalf("set: %+v", hs)
	}
	got, err := e.admin.FindHoldings(ctx, client.HoldingFilter{Holders: []string{"h0", "h1"}})
	check(t, "GET /account/v1.0/holdings", err)
	if len(got) != 3 {
		t.Fatalf("get: %+v", got)
	}
	got, err = e.admin.FindHoldings(ctx, client.HoldingFilter{Holders: []string{"h1"}, NullSource: true})
	if err != nil || len(got) != 1 || got[0].Source != nil || got[0].Limit != 5 {
		t.Fatalf("null source: %+v %v", got, err)
	}
	got, err = e.admin.FindHoldings(ctx, client.HoldingFilter{Holders: []string{"h1"}, Sources: []string{""}})
	if err != nil || len(got) != 1 || got[0].Source == nil || *got[0].Source != "" || got[0].Limit != 6 {
		t.Fatalf("empty source: %+v %v", got, err)
	}
	// A service sees the holdings of its resources.
	got, err = e.service.FindHoldings(ctx, client.HoldingFilter{Holders: []string{"user:" + e.userRec.UUID}})
	if err != nil || len(got) != 2 {
		t.Fatalf("service holdings: %+v %v", got, err)
	}
	_, err = e.user.SetHoldings(ctx, nil)
	wantErr[*client.Forbidden](t, "a user sets quota", err, 403)
	_, err = e.admin.SetHoldings(ctx, []client.HoldingLimit{{Holder: "h2", Resource: "r1", Limit: -1}})
	wantErr[*client.BadRequest](t, "negative limit", err, 400)

	// Holdings in use can't go; others can.
	serial, err := e.admin.WithToken("").GetPendingCommissions(ctx)
	if err == nil {
		t.Fatalf("pending without a token: %v", serial)
	}
	s, err := e.service.IssueOneCommission(ctx, "h0", client.String("system"), map[string]int64{"r1": 1}, client.IssueOptions{})
	if err != nil {
		t.Fatal(err)
	}
	err = e.admin.DeleteHoldings(ctx, []client.HoldingKey{{Holder: "h0", Source: client.String("system"), Resource: "r1"}})
	wantErr[*client.Conflict](t, "delete a holding in use", err, 409)
	if err := e.service.RejectCommission(ctx, s); err != nil {
		t.Fatal(err)
	}
	err = e.admin.DeleteHoldings(ctx, []client.HoldingKey{{Holder: "h0", Source: client.String("system"), Resource: "r1"}})
	check(t, "DELETE /account/v1.0/holdings", err)
	if got, _ := e.admin.FindHoldings(ctx, client.HoldingFilter{Holders: []string{"h0"}}); len(got) != 0 {
		t.Fatalf("after delete: %+v", got)
	}
}

func TestResourcesAndServicesRegistry(t *testing.T) {
	e := newEnv(t)
	ctx := t.Context()
	svc, err := e.admin.CreateService(ctx, client.NewService{Name: "pithos", Type: "object-store",
		Endpoints: []client.ServiceEndpoint{{PublicURL: "https://pithos.example.com/object-store/v1", VersionID: "v1"}}})
	check(t, "POST /account/v1.0/services", err)
	if svc.Token == "" || svc.Name != "pithos" || len(svc.Endpoints) != 1 {
		t.Fatalf("register service: %+v", svc)
	}
	_, err = e.admin.CreateService(ctx, client.NewService{Name: "pithos", Type: "object-store"})
	wantErr[*client.Conflict](t, "service twice", err, 409)
	r, err := e.admin.CreateResource(ctx, client.NewResource{Name: "pithos.diskspace", Service: "pithos",
		Unit: client.String("bytes"), Description: "disk", AllowInProjects: true, UpLimit: 1 << 30})
	check(t, "POST /account/v1.0/resources", err)
	if r.Name != "pithos.diskspace" || r.UpLimit != 1<<30 {
		t.Fatalf("register resource: %+v", r)
	}
	// The new resource is in every user's base project, and the new
	// service's token issues on it.
	q, err := e.user.GetQuotas(ctx)
	if err != nil || q[e.userRec.UUID]["pithos.diskspace"].Limit != 1<<30 {
		t.Fatalf("quotas: %+v %v", q, err)
	}
	pithos := e.anon.WithToken(svc.Token)
	uuid := e.userRec.UUID
	if _, err := pithos.IssueUserProjectCommission(ctx, uuid, uuid, map[string]int64{"pithos.diskspace": 1 << 20},
		client.IssueOptions{AutoAccept: true}); err != nil {
		t.Fatalf("issue as pithos: %v", err)
	}
	list, err := e.admin.FindServices(ctx, client.ServiceFilter{})
	check(t, "GET /account/v1.0/services", err)
	if list.Count != 2 {
		t.Fatalf("services: %+v", list)
	}
	got, err := e.admin.FindServiceByName(ctx, "pithos")
	check(t, "GET /account/v1.0/services/{name}", err)
	if got.Token != "" || got.Type != "object-store" {
		t.Fatalf("get service: %+v", got)
	}
	exp := time.Now().Add(time.Hour).UTC().Truncate(time.Second)
	renewed, err := e.admin.RenewServiceToken(ctx, "pithos", exp)
	check(t, "POST /account/v1.0/services/{name}/token", err)
	if renewed.Token == "" || renewed.Token == svc.Token || !renewed.TokenExpires.Equal(exp) {
		t.Fatalf("renew: %+v", renewed)
	}
	_, err = pithos.GetPendingCommissions(ctx)
	wantErr[*client.Unauthorized](t, "old service token", err, 401)
	if _, err := e.anon.WithToken(renewed.Token).GetPendingCommissions(ctx); err != nil {
		t.Fatalf("new service token: %v", err)
	}
	// A service that serves resources is not removed (a 409 naming them);
	// one that serves none is.
	err = e.admin.DeleteService(ctx, "pithos")
	wantErr[*client.Conflict](t, "a service with resources", err, 409)
	if !strings.Contains(err.Error(), "pithos.diskspace") {
		t.Fatalf("delete a service with resources: %v", err)
	}
	_, err = e.admin.CreateService(ctx, client.NewService{Name: "spare", Type: "object-store"})
	check(t, "POST /account/v1.0/services", err)
	err = e.admin.DeleteService(ctx, "spare")
	check(t, "DELETE /account/v1.0/services/{name}", err)
	_, err = e.admin.FindServiceByName(ctx, "spare")
	wantErr[*client.NotFound](t, "deleted service", err, 404)
}

// TestRetries: a server that fails twice with 503, then answers.
func TestRetries(t *testing.T) {
	var calls atomic.Int32
	var keys []string
	var keysMu = make(chan struct{}, 1)
	fail := 2
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n := int(calls.Add(1))
		keysMu <- struct{}{}
		keys = append(keys, r.Header.Get("Idempotency-Key"))
		<-keysMu
		if r.Header.Get("X-Auth-Token") != "tok" {
			w.WriteHeader(401)
			_, _ = w.Write([]byte(`{"unauthorized":{"message":"no","code":401,"details":""}}`))
			return
		}
		if n <= fail {
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(503)
			_, _ = w.Write([]byte(`{"serviceUnavailable":{"message":"busy","code":503,"details":""}}`))
			return
		}
		switch r.URL.Path {
		case "/account/v1.0/commissions":
			if r.Method == "GET" {
				_, _ = w.Write([]byte(`[1,2]`))
				return
			}
			w.WriteHeader(201)
			_, _ = w.Write([]byte(`{"serial":7}`))
		default:
			w.WriteHeader(400)
			_, _ = w.Write([]byte(`{"badRequest":{"message":"bad","code":400,"details":""}}`))
		}
	}))
	defer srv.Close()
	ctx := t.Context()
	opts := client.Options{Retries: 3, Backoff: time.Millisecond, MaxBackoff: 5 * time.Millisecond, NoTokenPickup: true}
	c, err := client.New(srv.URL, "tok", opts)
	if err != nil {
		t.Fatal(err)
	}
	reset := func(f int) { calls.Store(0); fail = f; keys = nil }

	// A GET is retried through two 503s.
	reset(2)
	pending, err := c.GetPendingCommissions(ctx)
	if err != nil || !slices.Equal(pending, []int64{1, 2}) || calls.Load() != 3 {
		t.Fatalf("GET: %v %v after %d calls", pending, err, calls.Load())
	}
	// Out of retries: the 503 comes back as ServiceUnavailable.
	reset(10)
	_, err = c.GetPendingCommissions(ctx)
	wantErr[*client.ServiceUnavailable](t, "out of retries", err, 503)
	if calls.Load() != 4 {
		t.Fatalf("calls: %d, want 4", calls.Load())
	}
	// An issue without an idempotency key is not retried.
	reset(2)
	_, err = c.IssueCommission(ctx, client.Commission{})
	wantErr[*client.ServiceUnavailable](t, "issue without a key", err, 503)
	if calls.Load() != 1 {
		t.Fatalf("issue without a key: %d calls", calls.Load())
	}
	// With a key it is, with the same key every time.
	reset(2)
	serial, err := c.IssueCommission(ctx, client.Commission{IdempotencyKey: "k1"})
	if err != nil || serial != 7 || calls.Load() != 3 || !slices.Equal(keys, []string{"k1", "k1", "k1"}) {
		t.Fatalf("issue with a key: %d %v after %d calls, keys %v", serial, err, calls.Load(), keys)
	}
	// Safe retries: the client makes the key.
	safe, _ := client.New(srv.URL, "tok", client.Options{Retries: 3, Backoff: time.Millisecond, SafeRetries: true, NoTokenPickup: true})
	reset(2)
	serial, err = safe.IssueCommission(ctx, client.Commission{})
	if err != nil || serial != 7 || calls.Load() != 3 || keys[0] == "" || keys[0] != keys[1] || keys[1] != keys[2] {
		t.Fatalf("safe retries: %d %v after %d calls, keys %v", serial, err, calls.Load(), keys)
	}
	// A 4xx is never retried.
	reset(0)
	_, err = c.GetResources(ctx)
	wantErr[*client.BadRequest](t, "4xx", err, 400)
	if calls.Load() != 1 {
		t.Fatalf("4xx retried: %d calls", calls.Load())
	}
	reset(0)
	_, err = c.WithToken("other").GetPendingCommissions(ctx)
	wantErr[*client.Unauthorized](t, "401", err, 401)
	if calls.Load() != 1 {
		t.Fatalf("401 retried: %d calls", calls.Load())
	}
	// A context that ends stops the retries.
	reset(100)
	slow, _ := client.New(srv.URL, "tok", client.Options{Retries: 100, Backoff: 50 * time.Millisecond, NoTokenPickup: true})
	cctx, cancel := context.WithTimeout(ctx, 120*time.Millisecond)
	defer cancel()
	_, err = slow.GetPendingCommissions(cctx)
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("cancelled retries: %v", err)
	}
}

// TestConnectionRetries: a call to a port nothing listens on is retried
// (even an issue without an idempotency key: it never reached a server),
// Retries times and no more, then fails with the connection error. The
// dials are counted by the client's own transport.
func TestConnectionRetries(t *testing.T) {
	srv := httptest.NewServer(http.NotFoundHandler())
	url := srv.URL
	addr := srv.Listener.Addr().String()
	srv.Close()
	for _, retries := range []int{0, 2} {
		var dials atomic.Int32
		var d net.Dialer
		tr := &http.Transport{DialContext: func(ctx context.Context, network, a string) (net.Conn, error) {
			if a != addr {
				t.Errorf("dialled %s, want %s", a, addr)
			}
			dials.Add(1)
			return d.DialContext(ctx, network, a)
		}}
		t.Cleanup(tr.CloseIdleConnections)
		c, _ := client.New(url, "tok", client.Options{Retries: retries, Backoff: time.Millisecond,
			HTTPClient: &http.Client{Transport: tr}, NoTokenPickup: true})
		_, err := c.IssueCommission(t.Context(), client.Commission{})
		var ce *client.Error
		var op *net.OpError
		if err == nil || errors.As(err, &ce) || !errors.As(err, &op) || op.Op != "dial" {
			t.Fatalf("retries %d: want a failed dial, got %v", retries, err)
		}
		if n := dials.Load(); n != int32(retries)+1 {
			t.Fatalf("retries %d: %d dials, want %d", retries, n, retries+1)
		}
	}
}

func TestInvalidResponse(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/account/v1.0/quotas":
			w.Header().Set("Content-Type", "text/html")
			_, _ = w.Write([]byte("<html>proxy says hi</html>"))
		case "/account/v1.0/commissions":
			if r.Method == "GET" {
				return // 200, empty
			}
			w.WriteHeader(201)
			_, _ = w.Write([]byte(`{"serial":"seven"}`))
		case "/account/v1.0/resources":
			w.WriteHeader(502)
			_, _ = w.Write([]byte("Bad Gateway"))
		default:
			w.WriteHeader(200)
		}
	}))
	defer srv.Close()
	c, _ := client.New(srv.URL, "tok", client.Options{NoTokenPickup: true})
	ctx := t.Context()
	_, err := c.GetQuotas(ctx)
	ir := wantErr[*client.InvalidResponse](t, "HTML answer", err, 200)
	if !strings.Contains(string(ir.Body), "proxy says hi") {
		t.Fatalf("body: %q", ir.Body)
	}
	_, err = c.IssueCommission(ctx, client.Commission{})
	wantErr[*client.InvalidResponse](t, "bad serial", err, 201)
	_, err = c.GetPendingCommissions(ctx)
	wantErr[*client.InvalidResponse](t, "empty answer", err, 200)
	// A non-JSON error answer is still an *Error of its status.
	_, err = c.GetResources(ctx)
	var ce *client.Error
	if !errors.As(err, &ce) || ce.Status != 502 || ce.Message != "Bad Gateway" {
		t.Fatalf("502: %v", err)
	}
	// An action answered with an empty body is fine.
	if err := c.AcceptCommission(ctx, 1); err != nil {
		t.Fatalf("empty 200: %v", err)
	}
}

func TestTokenFile(t *testing.T) {
	dir := t.TempDir()
	t.Setenv("XDG_CONFIG_HOME", dir)
	t.Setenv("HOME", dir)
	t.Setenv(client.TokenEnv, "")
	if _, err := client.LoadToken(); err == nil {
		t.Fatal("a token from nowhere")
	}
	if err := client.SaveToken("qlp_secret"); err != nil {
		t.Fatal(err)
	}
	p, _ := client.TokenFile()
	if !strings.HasPrefix(p, dir) {
		t.Fatalf("token file %s outside %s", p, dir)
	}
	fi, err := os.Stat(p)
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("token file mode: %v %v", fi.Mode(), err)
	}
	if tok, err := client.LoadToken(); err != nil || tok != "qlp_secret" {
		t.Fatalf("load: %q %v", tok, err)
	}
	c, _ := client.New("http://localhost:1", "", client.Options{})
	if c.Token() != "qlp_secret" {
		t.Fatalf("picked up %q", c.Token())
	}
	t.Setenv(client.TokenEnv, "qlp_fromenv")
	if tok, _ := client.LoadToken(); tok != "qlp_fromenv" {
		t.Fatalf("env: %q", tok)
	}
	c, _ = client.New("http://localhost:1", "", client.Options{NoTokenPickup: true})
	if c.Token() != "" {
		t.Fatalf("NoTokenPickup picked up %q", c.Token())
	}
	if err := client.SaveTokenTo(filepath.Join(dir, "a", "b", "tok"), "x"); err != nil {
		t.Fatal(err)
	}
}

package api

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/quotaledger/quotaledger/events/catalog"
	"github.com/quotaledger/quotaledger/holdings"
	"github.com/quotaledger/quotaledger/identity"
	"github.com/quotaledger/quotaledger/ledger"
)

// send makes a request with headers and returns the status, the headers and
// the raw answer.
func (e *env) send(method, path string, headers map[string]string, body []byte) (int, http.Header, []byte) {
	e.t.Helper()
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequest(method, e.srv.URL+path, rd)
	if err != nil {
		e.t.Fatal(err)
	}
	for k, v := range headers {
		req.Header.Set(k, v)
	}
	resp, err := e.srv.Client().Do(req)
	if err != nil {
		e.t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	if err != nil {
		e.t.Fatal(err)
	}
	return resp.StatusCode, resp.Header, raw
}

// doAny is do for answers that may be any JSON value.
func (e *env) doAny(method, path, token string, body any) (int, any) {
	e.t.Helper()
	st, raw := e.doRaw(method, path, token, body)
	var out any
	if len(raw) > 0 {
		if err := json.Unmarshal(raw, &out); err != nil {
			e.t.Fatalf("%s %s: answer is not JSON: %s", method, path, raw)
		}
	}
	return st, out
}

// jsonOf re-encodes v as canonical JSON, for comparisons.
func jsonOf(t *testing.T, v any) string {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// fault returns the one fault of an error answer, failing unless it has
// the kind and code expected.
func fault(t *testing.T, st int, body map[string]any, code int, kind string) map[string]any {
	t.Helper()
	if st != code {
		t.Fatalf("status %d, want %d: %v", st, code, body)
	}
	f, ok := body[kind].(map[string]any)
	if !ok || len(body) != 1 {
		t.Fatalf("answer is not a %s cloudFault: %v", kind, body)
	}
	if f["code"] != float64(code) || f["message"] == "" || f["message"] == nil {
		t.Fatalf("fault without code %d or message: %v", code, f)
	}
	return f
}

func (e *env) uuid() string { return e.userRec.UUID }

// memberKey and projectKey are the holdings of the user's base project.
func (e *env) memberKey(r string) holdings.Key {
	return holdings.Key{Holder: "user:" + e.uuid(), Source: holdings.SourceOf("project:" + e.uuid()), Resource: r}
}

func (e *env) projectKey(r string) holdings.Key {
	return holdings.Key{Holder: "project:" + e.uuid(), Source: holdings.NullSource, Resource: r}
}

// prov builds a provision in the wire form.
func prov(k holdings.Key, q int64) map[string]any {
	return map[string]any{"holder": k.Holder, "source": k.Source.Ptr(), "resource": k.Resource, "quantity": q}
}

// issue issues a commission as the service with token tok and returns its serial.
func (e *env) issue(tok string, body map[string]any) uint64 {
	e.t.Helper()
	st, out := e.do("POST", "/account/v1.0/commissions", tok, body)
	if st != http.StatusCreated {
		e.t.Fatalf("issue: %d %v", st, out)
	}
	s, ok := out["serial"].(float64)
	if !ok || len(out) != 1 || s <= 0 {
		e.t.Fatalf("issue answer: %v", out)
	}
	return uint64(s)
}

// state is what a refused call must leave unchanged.
type state struct {
	Holdings []holdings.Holding
	Stats    ledger.Stats
}

func (e *env) state() state {
	st := e.l.Stats()
	st.Batches, st.Calls = 0, 0
	return state{Holdings: e.l.Quotas(ledger.QuotaFilter{}), Stats: st}
}

func TestAstakosTokens(t *testing.T) {
	e := newEnv(t)
	check := func(path string) {
		t.Helper()
		// No body: the catalog only, whatever token comes with the call.
		st, hdr, raw := e.send("POST", path, map[string]string{"X-Auth-Token": "garbage", "Content-Type": "application/json"}, nil)
		if st != 200 || !strings.HasPrefix(hdr.Get("Content-Type"), "application/json") {
			t.Fatalf("%s no body: %d %s", path, st, raw)
		}
		var pub map[string]map[string]any
		if err := json.Unmarshal(raw, &pub); err != nil || len(pub) != 1 || len(pub["access"]) != 1 {
			t.Fatalf("%s no body: %s", path, raw)
		}
		var cat []map[string]any
		if err := json.Unmarshal([]byte(jsonOf(t, pub["access"]["serviceCatalog"])), &cat); err != nil {
			t.Fatal(err)
		}
		if len(cat) != 3 || cat[0]["name"] != "astakos_account" || cat[1]["name"] != "astakos_identity" || cat[2]["name"] != "cyclades" {
			t.Fatalf("catalog: %v", cat)
		}
		base := e.srv.URL
		acc := cat[0]["endpoints"].([]any)[0].(map[string]any)
		if cat[0]["type"] != "account" || acc["versionId"] != "v1.0" || acc["publicURL"] != base+"/account/v1.0" || acc["SNF:uiURL"] != base+"/ui" {
			t.Fatalf("astakos_account: %v", cat[0])
		}
		idn := cat[1]["endpoints"].([]any)[0].(map[string]any)
		if cat[1]["type"] != "identity" || idn["versionId"] != "v2.0" || idn["publicURL"] != base+"/identity/v2.0" {
			t.Fatalf("astakos_identity: %v", cat[1])
		}
		cy := cat[2]["endpoints"].([]any)[0].(map[string]any)
		if cat[2]["type"] != "compute" || cy["publicURL"] != "https://cyclades.example.com/compute/v2.0" || cy["versionId"] != "v2.0" {
			t.Fatalf("cyclades: %v", cat[2])
		}

		// The token form, with and without tenantName, and passwordCredentials.
		for _, body := range []any{
			map[string]any{"auth": map[string]any{"token": map[string]any{"id": e.user}}},
			map[string]any{"auth": map[string]any{"token": map[string]any{"id": e.user}, "tenantName": e.uuid()}},
			map[string]any{"auth": map[string]any{"passwordCredentials": map[string]any{"username": e.uuid(), "password": e.user}}},
		} {
			st, out := e.do("POST", path, "", body)
			if st != 200 {
				t.Fatalf("%s %v: %d %v", path, body, st, out)
			}
			acc := out["access"].(map[string]any)
			tok := acc["token"].(map[string]any)
			user := acc["user"].(map[string]any)
			if tok["id"] != e.user || tok["tenant"].(map[string]any)["id"] != e.uuid() {
				t.Fatalf("token: %v", tok)
			}
			if _, err := time.Parse(time.RFC3339, tok["expires"].(string)); err != nil {
				t.Fatalf("expires: %v", tok["expires"])
			}
			if user["id"] != e.uuid() || user["name"] == "" || jsonOf(t, user["roles"]) != "[]" ||
				jsonOf(t, user["roles_links"]) != "[]" || jsonOf(t, user["projects"]) != jsonOf(t, []string{e.uuid()}) {
				t.Fatalf("user: %v", user)
			}
			if len(acc["serviceCatalog"].([]any)) != 3 {
				t.Fatalf("catalog: %v", acc["serviceCatalog"])
			}
		}

		for _, c := range []struct {
			body any
			code int
			kind string
		}{
			{map[string]any{"auth": map[string]any{"token": map[string]any{"id": e.user}, "tenantName": "someone-else"}}, 400, "badRequest"},
			{map[string]any{"auth": map[string]any{"passwordCredentials": map[string]any{"username": "someone-else", "password": e.user}}}, 401, "unauthorized"},
			{map[string]any{"auth": map[string]any{"token": map[string]any{"id": "nope"}}}, 401, "unauthorized"},
			{map[string]any{"auth": map[string]any{"token": map[string]any{"id": e.service}}}, 401, "unauthorized"},
			{map[string]any{"auth": map[string]any{"token": map[string]any{"id": nil}}}, 400, "badRequest"},
			{map[string]any{"auth": map[string]any{}}, 400, "badRequest"},
			{map[string]any{"auth": "x"}, 400, "badRequest"},
			{map[string]any{}, 400, "badRequest"},
			{"{not json", 400, "badRequest"},
			{"[1,2]", 400, "badRequest"},
			{map[string]any{"auth": map[string]any{"token": map[string]any{"id": 42}}}, 400, "badRequest"},
		} {
			st, out := e.do("POST", path, "", c.body)
			fault(t, st, out, c.code, c.kind)
		}
	}
	check("/identity/v2.0/tokens")
	check("/astakos/api/tokens")
}

func TestAstakosValidateToken(t *testing.T) {
	e := newEnv(t)
	for _, path := range []string{"/identity/v2.0/tokens/", "/astakos/api/tokens/"} {
		st, out := e.do("GET", path+e.user+"?belongsTo="+e.uuid(), e.service, nil)
		if st != 200 {
			t.Fatalf("validate: %d %v", st, out)
		}
		acc := out["access"].(map[string]any)
		if acc["token"].(map[string]any)["id"] != e.user || acc["user"].(map[string]any)["id"] != e.uuid() {
			t.Fatalf("validate: %v", out)
		}
		if st, _ := e.do("GET", path+e.user, e.service, nil); st != 200 {
			t.Fatalf("validate without belongsTo: %d", st)
		}
		st, out = e.do("GET", path+e.user+"?belongsTo=other", e.service, nil)
		fault(t, st, out, 404, "itemNotFound")
		st, out = e.do("GET", path+"qlu_unknown", e.service, nil)
		fault(t, st, out, 404, "itemNotFound")
		st, out = e.do("GET", path+e.service, e.service, nil)
		fault(t, st, out, 404, "itemNotFound")
		st, out = e.do("GET", path+e.user, e.user, nil)
		fault(t, st, out, 403, "forbidden")
		st, out = e.do("GET", path+e.user, "", nil)
		fault(t, st, out, 401, "unauthorized")
	}
}

func TestAstakosResourcesAndServices(t *testing.T) {
	e := newEnv(t)
	want := `{"cyclades.ram":{"allow_in_projects":true,"description":"memory","service":"cyclades","unit":"bytes"},` +
		`"cyclades.vm":{"allow_in_projects":true,"description":"virtual machines","service":"cyclades","unit":null}}`
	for _, tok := range []string{"", "garbage", e.user} {
		for _, path := range []string{"/account/v1.0/resources", "/astakos/api/resources"} {
			st, out := e.do("GET", path, tok, nil)
			if st != 200 || jsonOf(t, out) != want {
				t.Fatalf("%s: %d %s", path, st, jsonOf(t, out))
			}
		}
		for _, path := range []string{"/ui/get_services", "/astakos/api/get_services"} {
			st, out := e.doAny("GET", path, tok, nil)
			list, ok := out.([]any)
			if st != 200 || !ok || len(list) != 1 {
				t.Fatalf("%s: %d %v", path, st, out)
			}
			svc := list[0].(map[string]any)
			if svc["name"] != "cyclades" || svc["type"] != "compute" || svc["url"] != "https://cyclades.example.com/compute/v2.0" {
				t.Fatalf("%s: %v", path, svc)
			}
		}
	}
}

// userQuota reads one entry of the caller's quotas.
func (e *env) userQuota(path, resource string) map[string]any {
	e.t.Helper()
	st, out := e.do("GET", path, e.user, nil)
	if st != 200 {
		e.t.Fatalf("quotas: %d %v", st, out)
	}
	src, ok := out[e.uuid()].(map[string]any)
	if !ok {
		e.t.Fatalf("quotas: no base project: %v", out)
	}
	q, ok := src[resource].(map[string]any)
	if !ok {
		e.t.Fatalf("quotas: no %s: %v", resource, out)
	}
	return q
}

func quotaJSON(limit, usage, pending, plimit, pusage, ppending int64) string {
	return fmt.Sprintf(`{"limit":%d,"pending":%d,"project_limit":%d,"project_pending":%d,"project_usage":%d,"usage":%d}`,
		limit, pending, plimit, ppending, pusage, usage)
}

func TestAstakosQuotasRoundTrip(t *testing.T) {
	e := newEnv(t)
	vm := "cyclades.vm"
	checkQuota := func(want string) {
		t.Helper()
		for _, path := range []string{"/account/v1.0/quotas", "/astakos/api/quotas"} {
			if got := jsonOf(t, e.userQuota(path, vm)); got != want {
				t.Fatalf("%s: %s, want %s", path, got, want)
			}
		}
		for _, path := range []string{"/account/v1.0/service_quotas?user=" + e.uuid(), "/astakos/api/service_quotas?user=" + e.uuid()} {
			st, out := e.do("GET", path, e.service, nil)
			if st != 200 || len(out) != 1 {
				t.Fatalf("%s: %d %v", path, st, out)
			}
			got := jsonOf(t, out[e.uuid()].(map[string]any)[e.uuid()].(map[string]any)[vm])
			if got != want {
				t.Fatalf("%s: %s, want %s", path, got, want)
			}
		}
	}
	checkQuota(quotaJSON(2, 0, 0, 2, 0, 0))
	// The whole answer: the base project with both resources.
	st, out := e.do("GET", "/account/v1.0/quotas", e.user, nil)
	if st != 200 || len(out) != 1 || len(out[e.uuid()].(map[string]any)) != 2 {
		t.Fatalf("quotas: %d %v", st, out)
	}

	both := []any{prov(e.memberKey(vm), 1), prov(e.projectKey(vm), 1)}
	s1 := e.issue(e.service, map[string]any{"name": "vm create", "provisions": both})
	checkQuota(quotaJSON(2, 1, 1, 2, 1, 1))

	// The commission as its issuer sees it.
	st, out = e.do("GET", fmt.Sprintf("/account/v1.0/commissions/%d", s1), e.service, nil)
	if st != 200 || out["serial"] != float64(s1) || out["name"] != "vm create" || len(out) != 4 {
		t.Fatalf("commission: %d %v", st, out)
	}
	if _, err := time.Parse(time.RFC3339, out["issue_time"].(string)); err != nil || !strings.HasSuffix(out["issue_time"].(string), "Z") {
		t.Fatalf("issue_time: %v", out["issue_time"])
	}
	if jsonOf(t, out["provisions"]) != jsonOf(t, both) {
		t.Fatalf("provisions: %s", jsonOf(t, out["provisions"]))
	}
	st, list := e.doAny("GET", "/account/v1.0/commissions", e.service, nil)
	if st != 200 || jsonOf(t, list) != fmt.Sprintf("[%d]", s1) {
		t.Fatalf("pending: %d %v", st, list)
	}

	// Accept: committed.
	st, raw := e.doRaw("POST", fmt.Sprintf("/account/v1.0/commissions/%d/action", s1), e.service, map[string]any{"accept": ""})
	if st != 200 || len(raw) != 0 {
		t.Fatalf("accept: %d %s", st, raw)
	}
	checkQuota(quotaJSON(2, 1, 0, 2, 1, 0))
	st, out = e.do("POST", fmt.Sprintf("/account/v1.0/commissions/%d/action", s1), e.service, map[string]any{"accept": ""})
	fault(t, st, out, 404, "itemNotFound")

	// Reject: undone.
	s2 := e.issue(e.service, map[string]any{"provisions": both})
	checkQuota(quotaJSON(2, 2, 1, 2, 2, 1))
	if st, raw := e.doRaw("POST", fmt.Sprintf("/astakos/api/commissions/%d/action", s2), e.service,
		map[string]any{"reject": "", "reason": "no room"}); st != 200 {
		t.Fatalf("reject: %d %s", st, raw)
	}
	checkQuota(quotaJSON(2, 1, 0, 2, 1, 0))

	// A release, then resolve many: accept one, reject one, one unknown,
	// one in both lists.
	s3 := e.issue(e.service, map[string]any{"provisions": []any{prov(e.memberKey(vm), -1)}})
	checkQuota(quotaJSON(2, 1, 1, 2, 1, 0))
	s4 := e.issue(e.service, map[string]any{"provisions": []any{prov(e.projectKey(vm), 1)}})
	s5 := e.issue(e.service, map[string]any{"provisions": []any{}})
	st, out = e.do("POST", "/account/v1.0/commissions/action", e.service,
		map[string]any{"accept": []uint64{s3, 999, s5}, "reject": []uint64{s4, s5}, "reason": "batch"})
	if st != 200 {
		t.Fatalf("resolve many: %d %v", st, out)
	}
	want := fmt.Sprintf(`{"accepted":[%d],"failed":[[999,{"itemNotFound":{"code":404,"details":"","message":"serial 999 does not exist"}}],`+
		`[%d,{"badRequest":{"code":400,"details":"","message":"cannot both accept and reject serial %d"}}]],"rejected":[%d]}`, s3, s5, s5, s4)
	if jsonOf(t, out) != want {
		t.Fatalf("resolve many:\n got %s\nwant %s", jsonOf(t, out), want)
	}
	checkQuota(quotaJSON(2, 0, 0, 2, 1, 0))
	// s5 conflicted: still pending; resolve it with the alias.
	st, out = e.do("POST", "/astakos/api/commissions/action", e.service, map[string]any{"accept": []uint64{s5}})
	if st != 200 || jsonOf(t, out) != fmt.Sprintf(`{"accepted":[%d],"failed":[],"rejected":[]}`, s5) {
		t.Fatalf("resolve many alias: %d %v", st, out)
	}
	st, list = e.doAny("GET", "/astakos/api/commissions", e.service, nil)
	if st != 200 || jsonOf(t, list) != "[]" {
		t.Fatalf("pending: %d %v", st, list)
	}

	// auto_accept: committed at once.
	e.issue(e.service, map[string]any{"provisions": both, "auto_accept": true, "force": false, "name": "x"})
	checkQuota(quotaJSON(2, 1, 0, 2, 2, 0))

	// The provision log of the resolved commissions is there.
	page, err := e.l.Log(ledger.LogFilter{Serial: s2})
	if err != nil || len(page.Entries) != 2 || page.Entries[0].Reason != "REJECT:no room" {
		t.Fatalf("log of %d: %v %+v", s2, err, page)
	}
}

func TestAstakosServiceQuotas(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	other, err := e.id.CreateUser(ctx, identity.NewUser{Username: "other@example.com", Password: testPassword, Active: true})
	if err != nil {
		t.Fatal(err)
	}
	// All users: both, with this service's two resources.
	st, out := e.do("GET", "/account/v1.0/service_quotas", e.service, nil)
	if st != 200 || out[e.uuid()] == nil || out[other.UUID] == nil {
		t.Fatalf("service_quotas: %d %v", st, out)
	}
	if res := out[other.UUID].(map[string]any)[other.UUID].(map[string]any); len(res) != 2 ||
		jsonOf(t, res["cyclades.ram"]) != quotaJSON(4<<30, 0, 0, 4<<30, 0, 0) {
		t.Fatalf("service_quotas of other: %v", res)
	}
	st, out = e.do("GET", "/account/v1.0/service_quotas?user="+other.UUID+"&project="+other.UUID, e.service, nil)
	if st != 200 || len(out) != 1 || len(out[other.UUID].(map[string]any)) != 1 {
		t.Fatalf("service_quotas with project: %d %v", st, out)
	}
	// A named user with nothing in the project: 404.
	st, out = e.do("GET", "/account/v1.0/service_quotas?user="+e.uuid()+","+other.UUID+"&project="+other.UUID, e.service, nil)
	fault(t, st, out, 404, "itemNotFound")
	st, out = e.do("GET", "/account/v1.0/service_quotas?user=nobody", e.service, nil)
	f := fault(t, st, out, 404, "itemNotFound")
	if f["message"] != "No such user 'nobody'" {
		t.Fatalf("message: %v", f["message"])
	}

	// Project quotas.
	st, out = e.do("GET", "/account/v1.0/service_project_quotas?project="+e.uuid(), e.service, nil)
	if st != 200 || len(out) != 1 || jsonOf(t, out[e.uuid()].(map[string]any)["cyclades.vm"]) !=
		`{"project_limit":2,"project_pending":0,"project_usage":0}` {
		t.Fatalf("service_project_quotas: %d %v", st, out)
	}
	st, out = e.do("GET", "/account/v1.0/service_project_quotas", e.service, nil)
	if st != 200 || out[e.uuid()] == nil || out[other.UUID] == nil {
		t.Fatalf("service_project_quotas, all: %d %v", st, out)
	}
	st, out = e.do("GET", "/account/v1.0/service_project_quotas?project=nope", e.service, nil)
	fault(t, st, out, 404, "itemNotFound")

	// A service with no resources sees nothing.
	tok2, _, err := e.id.RegisterService(ctx, identity.NewService{Name: "pithos", Type: "object-store"})
	if err != nil {
		t.Fatal(err)
	}
	if st, out := e.do("GET", "/account/v1.0/service_quotas", tok2, nil); st != 200 || len(out) != 0 {
		t.Fatalf("pithos service_quotas: %d %v", st, out)
	}
	st, out = e.do("GET", "/account/v1.0/service_quotas?user="+e.uuid(), tok2, nil)
	fault(t, st, out, 404, "itemNotFound")
}

func TestAstakosIssueFaults(t *testing.T) {
	e := newEnv(t)
	vm := "cyclades.vm"
	before := e.state()

	// NoCapacity: 413 overLimit with the lineage's data.
	st, out := e.do("POST", "/account/v1.0/commissions", e.service,
		map[string]any{"provisions": []any{prov(e.projectKey(vm), 1), prov(e.memberKey(vm), 2), prov(e.memberKey(vm), 1)}})
	f := fault(t, st, out, 413, "overLimit")
	want := fmt.Sprintf(`{"limit":2,"name":"NoCapacityError","provision":{"holder":"user:%s","quantity":3,"resource":"cyclades.vm","source":"project:%s"},"usage":0}`,
		e.uuid(), e.uuid())
	if jsonOf(t, f["data"]) != want {
		t.Fatalf("NoCapacity data:\n got %s\nwant %s", jsonOf(t, f["data"]), want)
	}
	if f["message"] != "user:"+e.uuid()+" has not enough capacity of cyclades.vm." {
		t.Fatalf("NoCapacity message: %v", f["message"])
	}

	// NoQuantity: force does not waive it.
	st, out = e.do("POST", "/account/v1.0/commissions", e.service,
		map[string]any{"force": true, "provisions": []any{prov(e.memberKey(vm), -1)}})
	f = fault(t, st, out, 413, "overLimit")
	want = fmt.Sprintf(`{"limit":0,"name":"NoQuantityError","provision":{"holder":"user:%s","quantity":-1,"resource":"cyclades.vm","source":"project:%s"},"usage":0}`,
		e.uuid(), e.uuid())
	if jsonOf(t, f["data"]) != want {
		t.Fatalf("NoQuantity data:\n got %s\nwant %s", jsonOf(t, f["data"]), want)
	}
	if f["message"] != "user:"+e.uuid()+" attempts to release more cyclades.vm than it contains." {
		t.Fatalf("NoQuantity message: %v", f["message"])
	}

	// NoHolding: 404 itemNotFound.
	missing := holdings.Key{Holder: "user:" + e.uuid(), Source: holdings.NullSource, Resource: vm}
	st, out = e.do("POST", "/account/v1.0/commissions", e.service,
		map[string]any{"provisions": []any{prov(e.memberKey(vm), 1), prov(missing, 1)}})
	f = fault(t, st, out, 404, "itemNotFound")
	want = fmt.Sprintf(`{"name":"NoHoldingError","provision":{"holder":"user:%s","quantity":1,"resource":"cyclades.vm","source":null}}`, e.uuid())
	if jsonOf(t, f["data"]) != want {
		t.Fatalf("NoHolding data:\n got %s\nwant %s", jsonOf(t, f["data"]), want)
	}
	if f["message"] != fmt.Sprintf(`There is no such holding ("user:%s", None, "cyclades.vm")`, e.uuid()) {
		t.Fatalf("NoHolding message: %v", f["message"])
	}
	if got := e.state(); !reflect.DeepEqual(got, before) {
		t.Fatalf("a refused issue changed the state:\n%+v\n%+v", before, got)
	}

	// force waives the capacity check.
	e.issue(e.service, map[string]any{"force": true, "provisions": []any{prov(e.memberKey(vm), 5)}})
	if q := e.userQuota("/account/v1.0/quotas", vm); q["usage"] != float64(5) || q["limit"] != float64(2) {
		t.Fatalf("forced: %v", q)
	}
}

func TestAstakosServiceIsolation(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	tok2, _, err := e.id.RegisterService(ctx, identity.NewService{Name: "pithos", Type: "object-store"})
	if err != nil {
		t.Fatal(err)
	}
	s := e.issue(e.service, map[string]any{"provisions": []any{prov(e.memberKey("cyclades.vm"), 1)}})
	path := fmt.Sprintf("/account/v1.0/commissions/%d", s)
	st, out := e.do("GET", path, tok2, nil)
	fault(t, st, out, 404, "itemNotFound")
	if st, list := e.doAny("GET", "/account/v1.0/commissions", tok2, nil); st != 200 || jsonOf(t, list) != "[]" {
		t.Fatalf("pithos pending: %d %v", st, list)
	}
	st, out = e.do("POST", path+"/action", tok2, map[string]any{"accept": ""})
	fault(t, st, out, 404, "itemNotFound")
	st, out = e.do("POST", "/account/v1.0/commissions/action", tok2, map[string]any{"accept": []uint64{s}})
	if st != 200 || jsonOf(t, out["accepted"]) != "[]" || len(out["failed"].([]any)) != 1 {
		t.Fatalf("pithos resolve many: %d %v", st, out)
	}
	// Still pending for its issuer, who may resolve it; pithos may issue on
	// any holding (the ledger does not tie holdings to services).
	if st, list := e.doAny("GET", "/account/v1.0/commissions", e.service, nil); st != 200 || jsonOf(t, list) != fmt.Sprintf("[%d]", s) {
		t.Fatalf("cyclades pending: %d %v", st, list)
	}
	if st, raw := e.doRaw("POST", path+"/action", e.service, map[string]any{"accept": ""}); st != 200 {
		t.Fatalf("accept: %d %s", st, raw)
	}
}

func TestAstakosAccess(t *testing.T) {
	e := newEnv(t)
	ro, _, err := e.id.CreateAccessToken(context.Background(), e.uuid(), "ro", time.Time{}, true)
	if err != nil {
		t.Fatal(err)
	}
	service := []struct{ method, path string }{
		{"GET", "/account/v1.0/service_quotas"},
		{"GET", "/account/v1.0/service_project_quotas"},
		{"POST", "/account/v1.0/commissions"},
		{"GET", "/account/v1.0/commissions"},
		{"GET", "/account/v1.0/commissions/1"},
		{"POST", "/account/v1.0/commissions/1/action"},
		{"POST", "/account/v1.0/commissions/action"},
		{"POST", "/account/v1.0/service/user_catalogs"},
		{"GET", "/identity/v2.0/tokens/x"},
		{"POST", "/astakos/api/commissions"},
		{"GET", "/astakos/api/service_quotas"},
	}
	user := []struct{ method, path string }{
		{"GET", "/account/v1.0/quotas"},
		{"POST", "/account/v1.0/user_catalogs"},
		{"GET", "/account/v1.0/authenticate"},
		{"POST", "/account/v1.0/feedback"},
		{"GET", "/astakos/api/authenticate"},
		{"GET", "/astakos/api/quotas"},
	}
	before := e.state()
	for _, r := range service {
		for _, tok := range []string{e.user, e.admin} {
			st, out := e.do(r.method, r.path, tok, `{"provisions":[]}`)
			fault(t, st, out, 403, "forbidden")
		}
		st, out := e.do(r.method, r.path, "", `{"provisions":[]}`)
		fault(t, st, out, 401, "unauthorized")
		st, out = e.do(r.method, r.path, "qls_invalid", `{"provisions":[]}`)
		fault(t, st, out, 401, "unauthorized")
	}
	for _, r := range user {
		st, out := e.do(r.method, r.path, e.service, "feedback_msg=hi")
		fault(t, st, out, 403, "forbidden")
		st, out = e.do(r.method, r.path, "", "feedback_msg=hi")
		fault(t, st, out, 401, "unauthorized")
	}
	// A read-only token reads but does not send feedback.
	if st, _ := e.do("GET", "/account/v1.0/quotas", ro, nil); st != 200 {
		t.Fatalf("read-only quotas: %d", st)
	}
	st, out := e.do("POST", "/account/v1.0/feedback", ro, "feedback_msg=hi")
	fault(t, st, out, 403, "forbidden")
	if got := e.state(); !reflect.DeepEqual(got, before) {
		t.Fatalf("refused calls changed the state")
	}
}

func TestAstakosAliases(t *testing.T) {
	e := newEnv(t)
	s := e.issue(e.service, map[string]any{"provisions": []any{prov(e.memberKey("cyclades.vm"), 1)}})
	for _, c := range []struct {
		method, path, token string
		body                any
	}{
		{"GET", "resources", "", nil},
		{"GET", "quotas", e.user, nil},
		{"GET", "service_quotas", e.service, nil},
		{"GET", "commissions", e.service, nil},
		{"GET", fmt.Sprintf("commissions/%d", s), e.service, nil},
		{"GET", "authenticate", e.user, nil},
		{"POST", "user_catalogs", e.user, map[string]any{"uuids": []string{e.uuid()}, "displaynames": []string{"user@example.com"}}},
		{"POST", "service/user_catalogs", e.service, map[string]any{"uuids": nil}},
	} {
		st1, a := e.doRaw(c.method, "/account/v1.0/"+c.path, c.token, c.body)
		st2, b := e.doRaw(c.method, "/astakos/api/"+c.path, c.token, c.body)
		if st1 != 200 || st1 != st2 || !bytes.Equal(a, b) {
			t.Fatalf("%s: %d %s vs %d %s", c.path, st1, a, st2, b)
		}
	}
	st1, a := e.doRaw("GET", "/ui/get_services", "", nil)
	st2, b := e.doRaw("GET", "/astakos/api/get_services", "", nil)
	if st1 != 200 || st1 != st2 || !bytes.Equal(a, b) {
		t.Fatalf("get_services: %d %s vs %d %s", st1, a, st2, b)
	}
	st1, a = e.doRaw("POST", "/identity/v2.0/tokens", "", nil)
	st2, b = e.doRaw("POST", "/astakos/api/tokens", "", nil)
	if st1 != 200 || st1 != st2 || !bytes.Equal(a, b) {
		t.Fatalf("tokens: %d %s vs %d %s", st1, a, st2, b)
	}
}

func TestAstakosIdempotency(t *testing.T) {
	e := newEnv(t)
	body := []byte(fmt.Sprintf(`{"provisions":[{"holder":"user:%s","source":"project:%s","resource":"cyclades.vm","quantity":1}]}`, e.uuid(), e.uuid()))
	h := map[string]string{"X-Auth-Token": e.service, "Idempotency-Key": "k1", "Content-Type": "application/json"}
	st1, _, a := e.send("POST", "/account/v1.0/commissions", h, body)
	st2, _, b := e.send("POST", "/account/v1.0/commissions", h, body)
	if st1 != 201 || st2 != 201 || !bytes.Equal(a, b) {
		t.Fatalf("replay: %d %s, %d %s", st1, a, st2, b)
	}
	if n := len(e.l.Pending("cyclades")); n != 1 {
		t.Fatalf("%d pending after a replay", n)
	}
	before := e.state()
	other := bytes.Replace(body, []byte(`"quantity":1`), []byte(`"quantity":2`), 1)
	st, _, raw := e.send("POST", "/account/v1.0/commissions", h, other)
	var out map[string]any
	_ = json.Unmarshal(raw, &out)
	fault(t, st, out, 409, "conflict")
	if !reflect.DeepEqual(e.state(), before) {
		t.Fatal("a conflicting replay changed the state")
	}
	// The field works as the header does, and a mismatch is refused.
	withField := bytes.Replace(body, []byte(`{"provisions"`), []byte(`{"idempotency_key":"k1","provisions"`), 1)
	st, _, c := e.send("POST", "/account/v1.0/commissions", map[string]string{"X-Auth-Token": e.service}, withField)
	if st != 201 || !bytes.Equal(c, a) {
		t.Fatalf("field replay: %d %s", st, c)
	}
	h["Idempotency-Key"] = "k2"
	st, _, raw = e.send("POST", "/account/v1.0/commissions", h, withField)
	out = nil
	_ = json.Unmarshal(raw, &out)
	fault(t, st, out, 400, "badRequest")
	// Another service may use the same key for its own commission.
	tok2, _, err := e.id.RegisterService(context.Background(), identity.NewService{Name: "pithos", Type: "object-store"})
	if err != nil {
		t.Fatal(err)
	}
	h = map[string]string{"X-Auth-Token": tok2, "Idempotency-Key": "k1"}
	st, _, d := e.send("POST", "/account/v1.0/commissions", h, body)
	if st != 201 || bytes.Equal(d, a) {
		t.Fatalf("other service, same key: %d %s", st, d)
	}
}

func TestAstakosBadInput(t *testing.T) {
	e := newEnv(t)
	u := e.uuid()
	good := func(q string) string {
		return fmt.Sprintf(`{"holder":"user:%s","source":"project:%s","resource":"cyclades.vm","quantity":%s}`, u, u, q)
	}
	many := make([]string, 1001)
	for i := range many {
		many[i] = good("0")
	}
	long := strings.Repeat("x", 513)
	cases := []struct {
		name, path, body string
		code             int
	}{
		{"empty", "commissions", ``, 400},
		{"malformed", "commissions", `{"provisions":[`, 400},
		{"trailing", "commissions", `{"provisions":[]} {}`, 400},
		{"array", "commissions", `[]`, 400},
		{"null", "commissions", `null`, 400},
		{"string", "commissions", `"x"`, 400},
		{"no provisions", "commissions", `{"name":"x"}`, 400},
		{"null provisions", "commissions", `{"provisions":null}`, 400},
		{"provisions object", "commissions", `{"provisions":{}}`, 400},
		{"provision not object", "commissions", `{"provisions":[1]}`, 400},
		{"holder missing", "commissions", `{"provisions":[{"source":null,"resource":"r","quantity":1}]}`, 400},
		{"source missing", "commissions", `{"provisions":[{"holder":"h","resource":"r","quantity":1}]}`, 400},
		{"holder number", "commissions", `{"provisions":[{"holder":1,"source":null,"resource":"r","quantity":1}]}`, 400},
		{"holder empty", "commissions", `{"provisions":[{"holder":"","source":null,"resource":"r","quantity":1}]}`, 400},
		{"source number", "commissions", `{"provisions":[{"holder":"h","source":5,"resource":"r","quantity":1}]}`, 400},
		{"quantity string", "commissions", `{"provisions":[` + good(`"1"`) + `]}`, 400},
		{"quantity float", "commissions", `{"provisions":[` + good(`1.5`) + `]}`, 400},
		{"quantity exp", "commissions", `{"provisions":[` + good(`1e3`) + `]}`, 400},
		{"quantity huge", "commissions", `{"provisions":[` + good(`1e400`) + `]}`, 400},
		{"quantity int64 overflow", "commissions", `{"provisions":[` + good(`9223372036854775808`) + `]}`, 400},
		{"quantity min int64", "commissions", `{"provisions":[` + good(`-9223372036854775808`) + `]}`, 400},
		{"quantity sum overflow", "commissions", `{"provisions":[` + good(`9223372036854775807`) + `,` + good(`1`) + `]}`, 400},
		{"quantity null", "commissions", `{"provisions":[` + good(`null`) + `]}`, 400},
		{"force string", "commissions", `{"provisions":[],"force":"yes"}`, 400},
		{"auto_accept number", "commissions", `{"provisions":[],"auto_accept":1}`, 400},
		{"name number", "commissions", `{"provisions":[],"name":1}`, 400},
		{"name too long", "commissions", `{"provisions":[],"name":"` + long + `"}`, 400},
		{"holder too long", "commissions", `{"provisions":[{"holder":"` + long + `","source":null,"resource":"r","quantity":1}]}`, 400},
		{"ttl negative", "commissions", `{"provisions":[],"ttl":-1}`, 400},
		{"ttl huge", "commissions", `{"provisions":[],"ttl":99999999999999}`, 400},
		{"ttl string", "commissions", `{"provisions":[],"ttl":"1h"}`, 400},
		{"invalid UTF-8", "commissions", "{\"provisions\":[],\"name\":\"\xff\"}", 400},
		{"too many provisions", "commissions", `{"provisions":[` + strings.Join(many, ",") + `]}`, 400},
		{"resolve not object", "commissions/action", `[1]`, 400},
		{"resolve accept string", "commissions/action", `{"accept":"1"}`, 400},
		{"resolve serial string", "commissions/action", `{"accept":["1"]}`, 400},
		{"resolve serial float", "commissions/action", `{"reject":[1.5]}`, 400},
		{"resolve serial overflow", "commissions/action", `{"accept":[18446744073709551616]}`, 400},
		{"resolve reason number", "commissions/action", `{"accept":[],"reason":1}`, 400},
		{"action both", "commissions/1/action", `{"accept":"","reject":""}`, 400},
		{"action neither", "commissions/1/action", `{}`, 400},
		{"action malformed", "commissions/1/action", `{`, 400},
		{"action serial not a number", "commissions/x/action", `{"accept":""}`, 400},
		{"catalog not json", "service/user_catalogs", `uuids=1`, 400},
		{"catalog uuids string", "service/user_catalogs", `{"uuids":"x"}`, 400},
		{"catalog uuids numbers", "service/user_catalogs", `{"uuids":[1]}`, 400},
	}
	// A pending commission, so that resolve faults have something to spoil.
	s := e.issue(e.service, map[string]any{"provisions": []any{prov(e.memberKey("cyclades.vm"), 1)}})
	before := e.state()
	for _, c := range cases {
		st, out := e.do("POST", "/account/v1.0/"+c.path, e.service, c.body)
		if st != c.code {
			t.Errorf("%s: %d, want %d: %v", c.name, st, c.code, out)
			continue
		}
		f := fault(t, st, out, c.code, faultKinds[c.code])
		t.Logf("%s: %v", c.name, f["message"])
	}
	// A body over the limit.
	big := `{"provisions":[],"name":"` + strings.Repeat("x", 1<<20) + `"}`
	st, out := e.do("POST", "/account/v1.0/commissions", e.service, big)
	fault(t, st, out, 413, "overLimit")
	if got := e.state(); !reflect.DeepEqual(got, before) {
		t.Fatalf("bad input changed the state:\n%+v\n%+v", before, got)
	}
	if p := e.l.Pending("cyclades"); len(p) != 1 || p[0] != s {
		t.Fatalf("pending: %v", p)
	}
	// Unknown keys are ignored, as the lineage did; a commission GET with a
	// bad serial is a 400, a missing one a 404.
	e.issue(e.service, map[string]any{"provisions": []any{}, "comment": "ignored"})
	st, out = e.do("GET", "/account/v1.0/commissions/abc", e.service, nil)
	fault(t, st, out, 400, "badRequest")
	st, out = e.do("GET", "/account/v1.0/commissions/0", e.service, nil)
	fault(t, st, out, 404, "itemNotFound")
	st, out = e.do("GET", "/account/v1.0/commissions/99999999999999999999", e.service, nil)
	fault(t, st, out, 404, "itemNotFound")
	// Zero and negative serials are not found (or conflicting) in resolve many.
	st, out = e.do("POST", "/account/v1.0/commissions/action", e.service, `{"accept":[0,-1],"reject":[-1]}`)
	if st != 200 || len(out["failed"].([]any)) != 2 {
		t.Fatalf("resolve many with bad serials: %d %v", st, out)
	}
}

func TestAstakosCatalogs(t *testing.T) {
	e := newEnv(t)
	for _, path := range []string{"/account/v1.0/user_catalogs", "/astakos/api/user_catalogs"} {
		st, out := e.do("POST", path, e.user, map[string]any{"uuids": []string{e.uuid(), "nope"}, "displaynames": []string{"USER@example.com", "nobody@x"}})
		want := fmt.Sprintf(`{"displayname_catalog":{"USER@example.com":%q},"uuid_catalog":{%q:"user@example.com"}}`, e.uuid(), e.uuid())
		if st != 200 || jsonOf(t, out) != want {
			t.Fatalf("%s: %d %s", path, st, jsonOf(t, out))
		}
		// Null lists are empty for users.
		st, out = e.do("POST", path, e.user, map[string]any{"uuids": nil, "displaynames": nil})
		if st != 200 || jsonOf(t, out) != `{"displayname_catalog":{},"uuid_catalog":{}}` {
			t.Fatalf("%s null: %d %v", path, st, out)
		}
	}
	// Services: null lists every user; missing lists nothing.
	st, out := e.do("POST", "/account/v1.0/service/user_catalogs", e.service, map[string]any{"uuids": nil, "displaynames": nil})
	if st != 200 || len(out["uuid_catalog"].(map[string]any)) != 2 || len(out["displayname_catalog"].(map[string]any)) != 2 {
		t.Fatalf("service null: %d %v", st, out)
	}
	st, out = e.do("POST", "/account/v1.0/service/user_catalogs", e.service, map[string]any{"displaynames": []string{"user@example.com"}})
	if st != 200 || jsonOf(t, out) != fmt.Sprintf(`{"displayname_catalog":{"user@example.com":%q},"uuid_catalog":{}}`, e.uuid()) {
		t.Fatalf("service: %d %v", st, out)
	}
}

func TestAstakosAuthenticate(t *testing.T) {
	e := newEnv(t)
	st, out := e.do("GET", "/account/v1.0/authenticate", e.user, nil)
	if st != 200 || out["uuid"] != e.uuid() || out["displayname"] != "user@example.com" ||
		jsonOf(t, out["email"]) != `["user@example.com"]` || out["name"] == "" || out["usage"] != nil {
		t.Fatalf("authenticate: %d %v", st, out)
	}
	created, ok1 := out["auth_token_created"].(float64)
	expires, ok2 := out["auth_token_expires"].(float64)
	if !ok1 || !ok2 || expires <= created || created < float64(time.Now().Add(-time.Hour).UnixMilli()) {
		t.Fatalf("token times: %v %v", out["auth_token_created"], out["auth_token_expires"])
	}
	st, out = e.do("GET", "/astakos/api/authenticate?usage=1", e.user, nil)
	if st != 200 {
		t.Fatalf("authenticate usage: %d %v", st, out)
	}
	usage := out["usage"].([]any)
	if len(usage) != 2 {
		t.Fatalf("usage: %v", usage)
	}
	for _, u := range usage {
		m := u.(map[string]any)
		if m["name"] == "cyclades.vm" && (m["maxValue"] != float64(2) || m["currValue"] != float64(0)) {
			t.Fatalf("usage: %v", m)
		}
	}
}

func TestAstakosFeedback(t *testing.T) {
	e := newEnv(t)
	for _, path := range []string{"/account/v1.0/feedback", "/astakos/api/feedback"} {
		// The lineage's client sends a form as application/octet-stream.
		st, _, raw := e.send("POST", path, map[string]string{"X-Auth-Token": e.user, "Content-Type": "application/octet-stream"},
			[]byte("feedback_msg=it+works%21&feedback_data=%7B%22vm%22%3A1%7D"))
		if st != 200 || len(raw) != 0 {
			t.Fatalf("%s: %d %s", path, st, raw)
		}
	}
	for _, body := range []string{"", "feedback_data=x", "feedback_msg=%ff", "feedback_msg=%zz"} {
		st, out := e.do("POST", "/account/v1.0/feedback", e.user, body)
		fault(t, st, out, 400, "badRequest")
	}
	// Stored, and its event in the outbox, in the transaction the answer
	// waited for: nothing to wait for here.
	evs, err := e.l.Outbox(0, 10000)
	if err != nil {
		t.Fatal(err)
	}
	var got []map[string]any
	for _, ev := range evs {
		if ev.Type == catalog.FeedbackType {
			var m map[string]any
			if err := json.Unmarshal(ev.Data, &m); err != nil {
				t.Fatal(err)
			}
			got = append(got, m)
		}
	}
	if len(got) != 2 {
		t.Fatalf("feedback events: %v", got)
	}
	for _, m := range got {
		if m["message"] != "it works!" || m["data"] != `{"vm":1}` || m["user"] != e.uuid() {
			t.Fatalf("feedback event: %v", m)
		}
	}
	n := 0
	if err := e.l.ScanForeign([]byte{'F'} /* identity's feedback key space */, func(k, v []byte) error { n++; return nil }); err != nil || n != 2 {
		t.Fatalf("stored feedback: %d %v", n, err)
	}
}

// TestAstakosExpiry issues a commission with a ttl over a ledger whose clock
// the test moves: the commission stays pending until the clock reaches its
// deadline, then the expiry rejects it and releases what it held.
func TestAstakosExpiry(t *testing.T) {
	clock := newTestClock()
	e := newEnvOn(t, zerolog.Nop(), nil, ledger.Options{Now: clock.Now})
	ctx := context.Background()
	s := e.issue(e.service, map[string]any{"ttl": 1, "provisions": []any{prov(e.memberKey("cyclades.vm"), 1)}})
	pending := func() string {
		t.Helper()
		st, list := e.doAny("GET", "/account/v1.0/commissions", e.service, nil)
		if st != 200 {
			t.Fatalf("pending commissions: %d %v", st, list)
		}
		return jsonOf(t, list)
	}
	quota := func() string {
		t.Helper()
		q := e.userQuota("/account/v1.0/quotas", "cyclades.vm")
		return fmt.Sprintf("usage %v, pending %v", q["usage"], q["pending"])
	}
	if got, want := quota(), "usage 1, pending 1"; got != want {
		t.Fatalf("issued: %s, want %s", got, want)
	}
	// A millisecond before the deadline, the expiry leaves it alone.
	clock.Advance(time.Second - time.Millisecond)
	if err := e.l.ExpireDue(ctx); err != nil {
		t.Fatal(err)
	}
	if got, want := pending(), fmt.Sprintf("[%d]", s); got != want {
		t.Fatalf("pending before the ttl ran out: %s, want %s", got, want)
	}
	// At the deadline it expires.
	clock.Advance(time.Millisecond)
	if err := e.l.ExpireDue(ctx); err != nil {
		t.Fatal(err)
	}
	if got := pending(); got != "[]" {
		t.Fatalf("commission %d with ttl 1s still pending once the ledger's clock passed its deadline: %s", s, got)
	}
	if got, want := quota(), "usage 0, pending 0"; got != want {
		t.Fatalf("after expiry: %s, want %s", got, want)
	}
}

package api

import (
	"context"
	"slices"
	"testing"

	"github.com/quotaledger/quotaledger/holdings"
	"github.com/quotaledger/quotaledger/identity"
	"github.com/quotaledger/quotaledger/ledger"
)

// TestServesOneRule checks that the REST holdings route and the Astakos
// service quotas show a service the same resources: those registered to
// it (identity.Store.Serves), not an unregistered one named after it.
func TestServesOneRule(t *testing.T) {
	e := newEnv(t)
	u := e.uuid()
	src := holdings.SourceOf("project:" + u)
	unreg := holdings.Key{Holder: "user:" + u, Source: src, Resource: "cyclades.gpu"}
	if err := e.l.SetHoldings(context.Background(), []ledger.HoldingSetting{{Key: unreg, Limit: 5}}); err != nil {
		t.Fatal(err)
	}
	// The REST route.
	var rest []string
	for _, h := range e.restWant(200, "GET", restBase+"holdings?holder=user:"+u, e.service, nil)["holdings"].([]any) {
		rest = append(rest, h.(map[string]any)["resource"].(string))
	}
	slices.Sort(rest)
	restFault(t, e.restWant(403, "GET", restBase+"holdings?resource=cyclades.gpu", e.service, nil), "forbidden", 403)
	// The Astakos route.
	st, out := e.do("GET", "/account/v1.0/service_quotas?user="+u, e.service, nil)
	if st != 200 {
		t.Fatalf("service_quotas: %d %v", st, out)
	}
	var astakos []string
	for r := range out[u].(map[string]any)[u].(map[string]any) {
		astakos = append(astakos, r)
	}
	slices.Sort(astakos)
	want := []string{"cyclades.ram", "cyclades.vm"}
	if !slices.Equal(rest, want) || !slices.Equal(astakos, want) {
		t.Fatalf("a service sees %q over REST and %q over the Astakos route, want %q", rest, astakos, want)
	}
	// An admin sees the holding.
	if hs := e.restWant(200, "GET", restBase+"holdings?resource=cyclades.gpu", e.admin, nil)["holdings"].([]any); len(hs) != 1 {
		t.Fatalf("admin: %v", hs)
	}
	// A service that serves nothing sees nothing.
	other, _, err := e.id.CreateService(context.Background(), identityService("pithos"))
	if err != nil {
		t.Fatal(err)
	}
	if hs := e.restWant(200, "GET", restBase+"holdings", other, nil)["holdings"].([]any); len(hs) != 0 {
		t.Fatalf("a service without resources sees %v", hs)
	}
}

func identityService(name string) identity.NewService {
	return identity.NewService{Name: name, Type: "storage"}
}

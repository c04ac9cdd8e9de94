package api

import (
	"fmt"
	"net/http"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/rs/zerolog"

	"github.com/quotaledger/quotaledger/failure"
)

// scrape fetches /metrics and parses it with the Prometheus text parser.
func (e *env) scrape() map[string]*dto.MetricFamily {
	e.t.Helper()
	st, raw := e.doRaw("GET", "/metrics", "", nil)
	if st != http.StatusOK {
		e.t.Fatalf("/metrics: %d %s", st, raw)
	}
	var p expfmt.TextParser
	fams, err := p.TextToMetricFamilies(strings.NewReader(string(raw)))
	if err != nil {
		e.t.Fatalf("/metrics does not parse: %v\n%s", err, raw)
	}
	return fams
}

// sample is the value of the series of family name whose labels include
// labels (name=value pairs): a counter's or gauge's value, a histogram's
// count; summed over the series that match. ok is false if none does.
func sample(fams map[string]*dto.MetricFamily, name string, labels ...string) (v float64, ok bool) {
	f := fams[name]
	if f == nil {
		return 0, false
	}
next:
	for _, m := range f.GetMetric() {
		for i := 0; i+1 < len(labels); i += 2 {
			found := false
			for _, lp := range m.GetLabel() {
				if lp.GetName() == labels[i] && lp.GetValue() == labels[i+1] {
					found = true
				}
			}
			if !found {
				continue next
			}
		}
		ok = true
		switch {
		case m.Counter != nil:
			v += m.Counter.GetValue()
		case m.Gauge != nil:
			v += m.Gauge.GetValue()
		case m.Histogram != nil:
			v += float64(m.Histogram.GetSampleCount())
		}
	}
	return v, ok
}

// series is the value of every series of family name, keyed by its labels
// ("name=value" pairs in the exposition's order, joined by commas; "" for
// a family without labels): a counter's or gauge's value, a histogram's
// count. ok is false if the family is missing.
func series(fams map[string]*dto.MetricFamily, name string) (vs map[string]float64, ok bool) {
	f := fams[name]
	if f == nil {
		return nil, false
	}
	vs = make(map[string]float64)
	for _, m := range f.GetMetric() {
		var ls []string
		for _, lp := range m.GetLabel() {
			ls = append(ls, lp.GetName()+"="+lp.GetValue())
		}
		var v float64
		switch {
		case m.Counter != nil:
			v = m.Counter.GetValue()
		case m.Gauge != nil:
			v = m.Gauge.GetValue()
		case m.Histogram != nil:
			v = float64(m.Histogram.GetSampleCount())
		}
		vs[strings.Join(ls, ",")] = v
	}
	return vs, true
}

// TestMetrics scrapes /metrics of a real server over a real ledger and
// checks that every family is there and moves by exactly what the calls
// made between two scrapes account for: every series of each family named
// below, those not named included (they must not move), so that a metric
// counted twice, or under the wrong label, fails.
func TestMetrics(t *testing.T) {
	e := newEnvWith(t, zerolog.Nop(), prometheus.NewRegistry())
	before := e.scrape()

	// An issue and its accept, an issue refused (413), a release refused
	// (413), an issue and its reject, an issue left pending, a route that
	// does not exist (404), a quota set, calls without a token, with an
	// unknown one and with a malformed one (401), and a user's call to a
	// service route (403).
	vm := e.projectKey("cyclades.vm")
	s1 := e.issue(e.service, map[string]any{"provisions": []any{prov(vm, 1)}})
	if st, raw := e.doRaw("POST", fmt.Sprintf("/account/v1.0/commissions/%d/action", s1), e.service, map[string]any{"accept": ""}); st != http.StatusOK {
		t.Fatalf("accept: %d %s", st, raw)
	}
	if st, raw := e.doRaw("POST", "/account/v1.0/commissions", e.service, map[string]any{"provisions": []any{prov(vm, 5)}}); st != http.StatusRequestEntityTooLarge {
		t.Fatalf("issue over the limit: %d %s", st, raw)
	}
	if st, raw := e.doRaw("POST", "/account/v1.0/commissions", e.service, map[string]any{"provisions": []any{prov(vm, -5)}}); st != http.StatusRequestEntityTooLarge {
		t.Fatalf("release below zero: %d %s", st, raw)
	}
	s2 := e.issue(e.service, map[string]any{"provisions": []any{prov(vm, 1)}})
	if st, raw := e.doRaw("POST", fmt.Sprintf("/account/v1.0/commissions/%d/action", s2), e.service, map[string]any{"reject": ""}); st != http.StatusOK {
		t.Fatalf("reject: %d %s", st, raw)
	}
	pending := e.issue(e.service, map[string]any{"provisions": []any{prov(vm, 1)}})
	_ = pending
	if st, _ := e.doRaw("GET", "/no/such/route", "", nil); st != http.StatusNotFound {
		t.Fatalf("unknown route: %d", st)
	}
	e.restWant(200, "POST", restBase+"holdings", e.admin,
		`{"holdings":[{"holder":"h0","source":"system","resource":"metrics.r","limit":10}]}`)
	for _, tok := range []string{"", "", strings.Repeat("x", 40), "x"} {
		if st, raw := e.doRaw("GET", "/account/v1.0/quotas", tok, nil); st != http.StatusUnauthorized {
			t.Fatalf("quotas with token %q: %d %s", tok, st, raw)
		}
	}
	if st, raw := e.doRaw("POST", "/account/v1.0/commissions", e.user, map[string]any{"provisions": []any{prov(vm, 1)}}); st != http.StatusForbidden {
		t.Fatalf("a user issues: %d %s", st, raw)
	}
	after := e.scrape()

	const (
		rIssue    = "route=POST /account/v1.0/commissions"
		rAction   = "route=POST /account/v1.0/commissions/{serial}/action"
		rQuotas   = "route=GET /account/v1.0/quotas"
		rHoldings = "route=POST /account/v1.0/holdings"
	)
	// The exact rise of every series of each family (keyed as series
	// keys them); a series not named must not move, but must exist if
	// named with 0. The scrape before is counted in the one after (a
	// request is counted once answered), the one after is not.
	requests := map[string]float64{
		"code=201," + rIssue:          3,
		"code=413," + rIssue:          2,
		"code=403," + rIssue:          1,
		"code=200," + rAction:         2,
		"code=200," + rHoldings:       1,
		"code=401," + rQuotas:         4,
		"code=404,route=unmatched":    1,
		"code=200,route=GET /metrics": 1,
	}
	// Errors by failure code: every code has its series from the start
	// (a rate over it is 0, not absent, until the first such error).
	errorsByCode := map[string]float64{"code=other": 0}
	for _, c := range failure.Codes {
		errorsByCode["code="+string(c)] = 0
	}
	errorsByCode["code=over_limit"], errorsByCode["code=not_found"] = 2, 1
	errorsByCode["code=unauthorized"], errorsByCode["code=forbidden"] = 4, 1
	for _, tc := range []struct {
		name string
		rise map[string]float64
	}{
		{"quotaledger_commissions_total", map[string]float64{"outcome=issued": 3, "outcome=accepted": 1, "outcome=rejected": 1,
			"outcome=no_capacity": 1, "outcome=no_quantity": 1, "outcome=expired": 0, "outcome=no_holding": 0, "outcome=invalid": 0}},
		{"quotaledger_provisions_total", map[string]float64{"outcome=issued": 3, "outcome=accepted": 1, "outcome=rejected": 1,
			"outcome=no_capacity": 1, "outcome=no_quantity": 1, "outcome=expired": 0, "outcome=no_holding": 0, "outcome=invalid": 0}},
		// Every issue (the refused ones too), every resolve.
		{"quotaledger_issue_duration_seconds", map[string]float64{"": 5}},
		{"quotaledger_resolve_duration_seconds", map[string]float64{"": 2}},
		// The calls are made one after another: a batch each, eight in
		// all (five issues, two resolves, the quota set); the two refused
		// issues write nothing, so six batches reach the WAL.
		{"quotaledger_batch_size", map[string]float64{"": 8}},
		{"quotaledger_batch_commit_duration_seconds", map[string]float64{"": 6}},
		{"quotaledger_wal_sync_duration_seconds", map[string]float64{"": 6}},
		{"quotaledger_batch_failures_total", map[string]float64{"": 0}},
		{"quotaledger_pending_commissions", map[string]float64{"": 1}},
		{"quotaledger_holdings", map[string]float64{"": 1}},
		// An event for each written call: three issues, two resolves,
		// the quota set (nothing relays them here).
		{"quotaledger_outbox_depth", map[string]float64{"": 6}},
		{"quotaledger_resource_limit", map[string]float64{"resource=metrics.r": 10, "resource=cyclades.vm": 0, "resource=cyclades.ram": 0}},
		{"quotaledger_resource_usage", map[string]float64{"resource=cyclades.vm": 2, "resource=metrics.r": 0, "resource=cyclades.ram": 0}},
		{"quotaledger_resource_pending", map[string]float64{"resource=cyclades.vm": 1, "resource=metrics.r": 0, "resource=cyclades.ram": 0}},
		{"quotaledger_resource_holdings_over_limit", map[string]float64{"resource=cyclades.vm": 0, "resource=metrics.r": 0, "resource=cyclades.ram": 0}},
		{"quotaledger_tokens", map[string]float64{"kind=session": 0, "kind=personal": 0, "kind=service": 0}},
		{"quotaledger_http_requests_total", requests},
		{"quotaledger_http_request_duration_seconds", requests},
		{"quotaledger_errors_total", map[string]float64{"kind=overLimit": 2, "kind=itemNotFound": 1, "kind=unauthorized": 4, "kind=forbidden": 1}},
		{"quotaledger_api_errors_total", errorsByCode},
		{"quotaledger_auth_failures_total", map[string]float64{"reason=missing": 2, "reason=unknown": 1, "reason=malformed": 1,
			"reason=expired": 0, "reason=inactive": 0, "reason=superseded": 0}},
		{"promhttp_metric_handler_errors_total", map[string]float64{"cause=encoding": 0, "cause=gathering": 0}},
	} {
		got, ok := series(after, tc.name)
		if !ok {
			t.Errorf("%s: missing", tc.name)
			continue
		}
		was, _ := series(before, tc.name)
		for k, want := range tc.rise {
			if _, ok := got[k]; !ok {
				t.Errorf("%s{%s}: missing", tc.name, k)
			}
			if d := got[k] - was[k]; d != want {
				t.Errorf("%s{%s}: %v -> %v, a rise of %v, want %v", tc.name, k, was[k], got[k], d, want)
			}
		}
		for k := range got {
			if _, named := tc.rise[k]; !named && got[k] != was[k] {
				t.Errorf("%s{%s}: %v -> %v, want no change", tc.name, k, was[k], got[k])
			}
		}
		for k := range was {
			if _, still := got[k]; !still {
				t.Errorf("%s{%s}: gone after the calls", tc.name, k)
			}
		}
	}
	// The batch size's sum: one call per batch.
	if got, was := after["quotaledger_batch_size"].GetMetric()[0].GetHistogram().GetSampleSum(),
		before["quotaledger_batch_size"].GetMetric()[0].GetHistogram().GetSampleSum(); got-was != 8 {
		t.Errorf("quotaledger_batch_size sum: %v -> %v, want a rise of 8 calls", was, got)
	}
	// The outbox is never emptied here: its oldest event only ages.
	if got, ok := sample(after, "quotaledger_outbox_oldest_age_seconds"); !ok {
		t.Errorf("quotaledger_outbox_oldest_age_seconds: missing")
	} else if was, _ := sample(before, "quotaledger_outbox_oldest_age_seconds"); got < was {
		t.Errorf("quotaledger_outbox_oldest_age_seconds: %v -> %v, the oldest event got younger", was, got)
	}
	for kind, want := range map[string]float64{"session": 1, "personal": 1, "service": 1} {
		if n, _ := sample(after, "quotaledger_tokens", "kind", kind); n != want {
			t.Errorf("quotaledger_tokens{kind=%s} = %v, want %v", kind, n, want)
		}
	}
	for name, f := range after {
		if !strings.HasPrefix(name, "quotaledger_") && !strings.HasPrefix(name, "promhttp_") {
			t.Errorf("family %s is outside the namespace", name)
		}
		for _, m := range f.GetMetric() {
			for _, lp := range m.GetLabel() {
				if lp.GetName() == "holder" {
					t.Errorf("%s is labelled by holder: unbounded", name)
				}
			}
		}
	}
}

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

// TestMetrics scrapes /metrics of a real server over a real ledger and
// checks that every family is there and moves as calls are made.
func TestMetrics(t *testing.T) {
	e := newEnvWith(t, zerolog.Nop(), prometheus.NewRegistry())
	before := e.scrape()

	// An issue and its accept, an issue refused (413), a reject, a route
	// that does not exist (404), a quota set.
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
	after := e.scrape()

	for _, tc := range []struct {
		name   string
		labels []string
		delta  float64 // the least it must have moved by; 0: must exist
	}{
		{"quotaledger_commissions_total", []string{"outcome", "issued"}, 3},
		{"quotaledger_commissions_total", []string{"outcome", "accepted"}, 1},
		{"quotaledger_commissions_total", []string{"outcome", "rejected"}, 1},
		{"quotaledger_commissions_total", []string{"outcome", "no_capacity"}, 1},
		{"quotaledger_commissions_total", []string{"outcome", "no_quantity"}, 1},
		{"quotaledger_commissions_total", []string{"outcome", "expired"}, 0},
		{"quotaledger_commissions_total", []string{"outcome", "no_holding"}, 0},
		{"quotaledger_commissions_total", []string{"outcome", "invalid"}, 0},
		{"quotaledger_provisions_total", []string{"outcome", "issued"}, 3},
		{"quotaledger_provisions_total", []string{"outcome", "no_capacity"}, 1},
		{"quotaledger_issue_duration_seconds", nil, 5},
		{"quotaledger_resolve_duration_seconds", nil, 2},
		{"quotaledger_batch_commit_duration_seconds", nil, 1},
		{"quotaledger_wal_sync_duration_seconds", nil, 1},
		{"quotaledger_batch_size", nil, 1},
		{"quotaledger_batch_failures_total", nil, 0},
		{"quotaledger_pending_commissions", nil, 1},
		{"quotaledger_holdings", nil, 1},
		{"quotaledger_outbox_depth", nil, 1},
		{"quotaledger_outbox_oldest_age_seconds", nil, 0},
		{"quotaledger_resource_limit", []string{"resource", "metrics.r"}, 10},
		{"quotaledger_resource_usage", []string{"resource", "cyclades.vm"}, 2},
		{"quotaledger_resource_pending", []string{"resource", "cyclades.vm"}, 1},
		{"quotaledger_resource_holdings_over_limit", []string{"resource", "cyclades.vm"}, 0},
		{"quotaledger_tokens", []string{"kind", "session"}, 0},
		{"quotaledger_tokens", []string{"kind", "personal"}, 0},
		{"quotaledger_tokens", []string{"kind", "service"}, 0},
		{"quotaledger_http_requests_total", []string{"route", "POST /account/v1.0/commissions", "code", "201"}, 3},
		{"quotaledger_http_requests_total", []string{"route", "POST /account/v1.0/commissions", "code", "413"}, 2},
		{"quotaledger_http_requests_total", []string{"route", "unmatched", "code", "404"}, 1},
		{"quotaledger_http_requests_total", []string{"route", "GET /metrics", "code", "200"}, 1},
		{"quotaledger_http_request_duration_seconds", []string{"route", "POST /account/v1.0/commissions/{serial}/action", "code", "200"}, 2},
		{"quotaledger_errors_total", []string{"kind", "overLimit"}, 2},
		{"quotaledger_errors_total", []string{"kind", "itemNotFound"}, 1},
	} {
		got, ok := sample(after, tc.name, tc.labels...)
		if !ok {
			t.Errorf("%s%v: missing", tc.name, tc.labels)
			continue
		}
		was, _ := sample(before, tc.name, tc.labels...)
		if got-was < tc.delta {
			t.Errorf("%s%v: %v -> %v, want a rise of at least %v", tc.name, tc.labels, was, got, tc.delta)
		}
	}
	if n, _ := sample(after, "quotaledger_tokens", "kind", "service"); n < 1 {
		t.Errorf("quotaledger_tokens{kind=service} = %v", n)
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

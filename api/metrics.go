package api

import (
	"context"
	"net/http"
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// metrics are the HTTP layer's instruments, registered together on the
// server's registry.
type metrics struct {
	requests *prometheus.CounterVec   // route, code
	duration *prometheus.HistogramVec // route, code
	faults   *prometheus.CounterVec   // kind
	handler  http.Handler             // /metrics

	// errorsByStatus counts error answers by failure code (the code of
	// their status in faultTable, "other" for a status not in it), each
	// counter resolved once.
	errorsByStatus map[int]prometheus.Counter
	errorsOther    prometheus.Counter

	// authFailures counts the calls refused for their token, by reason
	// (authReasons), each counter resolved once: a flood of bad tokens
	// costs a map lookup and an atomic add each.
	authFailures map[string]prometheus.Counter
}

// authReasons are the reasons of quotaledger_auth_failures_total: no token
// sent, then those of identity.AuthFailure.
var authReasons = []string{"missing", "malformed", "unknown", "expired", "inactive", "superseded"}

func newMetrics(reg *prometheus.Registry, checks func(context.Context) map[string]error) (*metrics, error) {
	m := &metrics{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "quotaledger", Subsystem: "http", Name: "requests_total",
			Help: "HTTP requests by route pattern (\"unmatched\" for none) and status code.",
		}, []string{"route", "code"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Namespace: "quotaledger", Subsystem: "http", Name: "request_duration_seconds",
			Help:    "HTTP request latency by route pattern and status code.",
			Buckets: prometheus.ExponentialBuckets(100e-6, 2.5, 14),
		}, []string{"route", "code"}),
		faults: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "quotaledger", Name: "errors_total",
			Help: "Error answers by application code (the cloudFault kind).",
		}, []string{"kind"}),
		handler: promhttp.HandlerFor(reg, promhttp.HandlerOpts{Registry: reg}),
	}
	authFailures := prometheus.NewCounterVec(prometheus.CounterOpts{
		Namespace: "quotaledger", Name: "auth_failures_total",
		Help: "Calls refused for their token, by reason: missing, malformed, unknown (never made, revoked, or expired and removed), expired, inactive (the user), superseded (the service's token).",
	}, []string{"reason"})
	m.authFailures = make(map[string]prometheus.Counter, len(authReasons))
	for _, r := range authReasons {
		m.authFailures[r] = authFailures.WithLabelValues(r)
	}
	errorsByCode := prometheus.NewCounterVec(prometheus.CounterOpts{
		Namespace: "quotaledger", Subsystem: "api", Name: "errors_total",
		Help: "Error answers (4xx and 5xx) by failure code: invalid, not_found, conflict, unauthorized, forbidden, over_limit, too_many_requests, unavailable, internal; other for a status outside the fault table.",
	}, []string{"code"})
	m.errorsByStatus = make(map[int]prometheus.Counter, len(codeOfStatus))
	for status, code := range codeOfStatus {
		m.errorsByStatus[status] = errorsByCode.WithLabelValues(string(code))
	}
	m.errorsOther = errorsByCode.WithLabelValues("other")
	for _, c := range []prometheus.Collector{m.requests, m.duration, m.faults, errorsByCode, authFailures, readyCollector{checks}} {
		if err := reg.Register(c); err != nil {
			return nil, err
		}
	}
	return m, nil
}

// authFailed counts a call refused for its token (reason "" is counted as
// "unknown").
func (m *metrics) authFailed(reason string) {
	c, ok := m.authFailures[reason]
	if !ok {
		c = m.authFailures["unknown"]
	}
	c.Inc()
}

// observe counts one answered request.
func (m *metrics) observe(route string, status int, d time.Duration) {
	code := strconv.Itoa(status)
	m.requests.WithLabelValues(route, code).Inc()
	m.duration.WithLabelValues(route, code).Observe(d.Seconds())
	if status >= 400 {
		kind := faultKinds[status]
		if kind == "" {
			kind = "other"
		}
		m.faults.WithLabelValues(kind).Inc()
		c, ok := m.errorsByStatus[status]
		if !ok {
			c = m.errorsOther
		}
		c.Inc()
	}
}

var descReady = prometheus.NewDesc("quotaledger_ready",
	"The checks of /readyz at scrape time: 1 passes, 0 fails.", []string{"check"}, nil)

// readyCollector runs the checks of /readyz at scrape time, so that alerts
// need no probe.
type readyCollector struct {
	checks func(context.Context) map[string]error
}

func (c readyCollector) Describe(ch chan<- *prometheus.Desc) { ch <- descReady }

func (c readyCollector) Collect(ch chan<- prometheus.Metric) {
	if c.checks == nil {
		return
	}
	for name, err := range c.checks(context.Background()) {
		v := 1.0
		if err != nil {
			v = 0
		}
		ch <- prometheus.MustNewConstMetric(descReady, prometheus.GaugeValue, v, name)
	}
}

// serveMetrics answers /metrics.
func (s *Server) serveMetrics(c *call) error {
	s.metrics.handler.ServeHTTP(c.w, c.r)
	return nil
}

package api

import (
	"context"
	"net/http"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// metrics are the API's instruments, registered together on the server's
// registry: those of HTTP at New, those of NATS when the micro service
// starts (natsMetrics); the error and authentication counters are both
// wires'.
type metrics struct {
	reg      *prometheus.Registry
	requests *prometheus.CounterVec   // route, code
	duration *prometheus.HistogramVec // route, code
	faults   *prometheus.CounterVec   // kind
	handler  http.Handler             // /metrics

	// natsRequests and natsDuration are the NATS endpoints' (endpoint,
	// code), registered once (natsOnce).
	natsOnce     sync.Once
	natsErr      error
	natsRequests *prometheus.CounterVec
	natsDuration *prometheus.HistogramVec

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
		reg: reg,
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

// natsMetrics registers the NATS endpoints' instruments (once) and
// returns them: quotaledger_nats_requests_total and
// quotaledger_nats_request_duration_seconds by endpoint and code (the
// cloudFault code of a refusal, the HTTP route's status otherwise), beside
// the HTTP ones.
func (m *metrics) natsMetrics() error {
	m.natsOnce.Do(func() {
		m.natsRequests = prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "quotaledger", Subsystem: "nats", Name: "requests_total",
			Help: "NATS micro service requests by endpoint and code (the HTTP status of the route the endpoint mirrors; the cloudFault code of a refusal).",
		}, []string{"endpoint", "code"})
		m.natsDuration = prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Namespace: "quotaledger", Subsystem: "nats", Name: "request_duration_seconds",
			Help:    "NATS micro service request latency, from its arrival to its answer, by endpoint and code.",
			Buckets: prometheus.ExponentialBuckets(100e-6, 2.5, 14),
		}, []string{"endpoint", "code"})
		for _, c := range []prometheus.Collector{m.natsRequests, m.natsDuration} {
			if err := m.reg.Register(c); err != nil {
				m.natsErr = err
				return
			}
		}
	})
	return m.natsErr
}

// natsEndpoint returns the instruments of a NATS endpoint (natsMetrics
// must have succeeded).
func (m *metrics) natsEndpoint(name string) *routeMetrics {
	return &routeMetrics{m: m, route: name, requests: m.natsRequests, duration: m.natsDuration}
}

// routeMetrics are a route's (or a NATS endpoint's) instruments, resolved
// once per status it answers: a request then costs no label hashing nor
// any allocation, only a short scan and the atomic adds.
type routeMetrics struct {
	m        *metrics
	route    string // the label: the route's pattern, or "unmatched"; the endpoint's name
	requests *prometheus.CounterVec
	duration *prometheus.HistogramVec
	// byStatus is copied on write: a status seen for the first time adds
	// its entry under mu.
	byStatus atomic.Pointer[[]statusMetrics]
	mu       sync.Mutex
}

// statusMetrics are the instruments of one route and status.
type statusMetrics struct {
	status   int
	requests prometheus.Counter
	duration prometheus.Observer
	// fault and errors count an error answer (nil below 400).
	fault, errors prometheus.Counter
}

func (m *metrics) route(route string) *routeMetrics {
	return &routeMetrics{m: m, route: route, requests: m.requests, duration: m.duration}
}

// observe counts one answered request.
func (rm *routeMetrics) observe(status int, d time.Duration) {
	sm := rm.of(status)
	sm.requests.Inc()
	sm.duration.Observe(d.Seconds())
	if sm.fault != nil {
		sm.fault.Inc()
		sm.errors.Inc()
	}
}

// of returns the instruments of status, resolving them the first time.
func (rm *routeMetrics) of(status int) *statusMetrics {
	if p := rm.byStatus.Load(); p != nil {
		for i := range *p {
			if (*p)[i].status == status {
				return &(*p)[i]
			}
		}
	}
	rm.mu.Lock()
	defer rm.mu.Unlock()
	var old []statusMetrics
	if p := rm.byStatus.Load(); p != nil {
		old = *p
		for i := range old {
			if old[i].status == status {
				return &old[i]
			}
		}
	}
	m, code := rm.m, strconv.Itoa(status)
	sm := statusMetrics{status: status, requests: rm.requests.WithLabelValues(rm.route, code),
		duration: rm.duration.WithLabelValues(rm.route, code)}
	if status >= 400 {
		kind := faultKinds[status]
		if kind == "" {
			kind = "other"
		}
		sm.fault = m.faults.WithLabelValues(kind)
		var ok bool
		if sm.errors, ok = m.errorsByStatus[status]; !ok {
			sm.errors = m.errorsOther
		}
	}
	all := append(slices.Clip(old), sm)
	rm.byStatus.Store(&all)
	return &all[len(all)-1]
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

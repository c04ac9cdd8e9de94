package api

import (
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
}

func newMetrics(reg *prometheus.Registry) (*metrics, error) {
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
	for _, c := range []prometheus.Collector{m.requests, m.duration, m.faults} {
		if err := reg.Register(c); err != nil {
			return nil, err
		}
	}
	return m, nil
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
	}
}

// registerMetrics adds /metrics.
func (s *Server) registerMetrics() {
	s.handle("GET", "/metrics", Public, "", "Prometheus metrics (text exposition format)", func(c *call) error {
		s.metrics.handler.ServeHTTP(c.w, c.r)
		return nil
	})
}

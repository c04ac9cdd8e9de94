package identity

import (
	"github.com/prometheus/client_golang/prometheus"
)

var descTokens = prometheus.NewDesc("quotaledger_tokens",
	"Unexpired tokens by kind (session, personal, service).", []string{"kind"}, nil)

// tokenCollector counts the tokens at scrape time.
type tokenCollector struct{ s *Store }

func (c tokenCollector) Describe(ch chan<- *prometheus.Desc) { ch <- descTokens }

func (c tokenCollector) Collect(ch chan<- prometheus.Metric) {
	s := c.s
	now := s.opts.Now()
	counts := map[TokenKind]int{KindSession: 0, KindPersonal: 0, KindService: 0}
	s.mu.RLock()
	for _, e := range s.byTokenID {
		if t := e.tok; t.Expires.IsZero() || now.Before(t.Expires) {
			counts[t.Kind]++
		}
	}
	s.mu.RUnlock()
	for k, n := range counts {
		ch <- prometheus.MustNewConstMetric(descTokens, prometheus.GaugeValue, float64(n), string(k))
	}
}

package ledger

import (
	"errors"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/quotaledger/quotaledger/events/catalog"
	"github.com/quotaledger/quotaledger/failure"
	"github.com/quotaledger/quotaledger/holdings"
)

// The outcomes of commissions and provisions, the values of the outcome
// label of quotaledger_commissions_total and quotaledger_provisions_total.
const (
	OutcomeIssued     = "issued"
	OutcomeAccepted   = "accepted"
	OutcomeRejected   = "rejected"
	OutcomeExpired    = "expired"
	OutcomeNoCapacity = "no_capacity"
	OutcomeNoQuantity = "no_quantity"
	OutcomeNoHolding  = "no_holding"
	OutcomeInvalid    = "invalid"
)

var outcomes = []string{OutcomeIssued, OutcomeAccepted, OutcomeRejected, OutcomeExpired,
	OutcomeNoCapacity, OutcomeNoQuantity, OutcomeNoHolding, OutcomeInvalid}

// metrics are the engine's instruments. The hot path only touches
// label-less children resolved here once: no map lookup per call.
type metrics struct {
	commissions, provisions [8]prometheus.Counter // by index in outcomes
	issueSeconds            prometheus.Histogram
	resolveSeconds          prometheus.Histogram
	batchCommitSeconds      prometheus.Histogram
	walSyncSeconds          prometheus.Histogram
	batchSize               prometheus.Histogram
	batchFailures           prometheus.Counter
	checkpointSeconds       prometheus.Histogram
	// refusedNoSpace and refusedFailed count the calls refused with
	// ErrNoSpace and ErrFailed: the service working as designed, logged
	// once per change of state, not once per call.
	refusedNoSpace, refusedFailed prometheus.Counter
}

// The reasons of quotaledger_writes_refused_total.
const (
	RefusedNoSpace = "no_space" // below the free-space floor (ErrNoSpace)
	RefusedFailed  = "failed"   // after a failed commit (ErrFailed)
)

const (
	iIssued = iota
	iAccepted
	iRejected
	iExpired
	iNoCapacity
	iNoQuantity
	iNoHolding
	iInvalid
)

const namespace = "quotaledger"

// latencyBuckets span 50µs to ~3s: group commits take a WAL sync, from
// tens of microseconds on NVMe to tens of milliseconds on spinning disks.
var latencyBuckets = prometheus.ExponentialBuckets(50e-6, 2, 17)

// newMetrics makes the engine's metrics and, with a registerer, registers
// them together with the collectors computed at scrape time from l.
func newMetrics(l *Ledger, reg prometheus.Registerer) (*metrics, error) {
	commissions := prometheus.NewCounterVec(prometheus.CounterOpts{
		Namespace: namespace, Name: "commissions_total",
		Help: "Commissions by outcome: issued, accepted, rejected, expired, or refused (no_capacity, no_quantity, no_holding, invalid).",
	}, []string{"outcome"})
	provisions := prometheus.NewCounterVec(prometheus.CounterOpts{
		Namespace: namespace, Name: "provisions_total",
		Help: "Provisions of commissions by the outcome of their commission.",
	}, []string{"outcome"})
	hist := func(name, help string, buckets []float64) prometheus.Histogram {
		return prometheus.NewHistogram(prometheus.HistogramOpts{Namespace: namespace, Name: name, Help: help, Buckets: buckets})
	}
	m := &metrics{
		issueSeconds:       hist("issue_duration_seconds", "Latency of Issue calls, queueing and group commit included.", latencyBuckets),
		resolveSeconds:     hist("resolve_duration_seconds", "Latency of Resolve and ResolveMany calls, queueing and group commit included.", latencyBuckets),
		batchCommitSeconds: hist("batch_commit_duration_seconds", "Time from handing a batch to Pebble until it is durable (WAL write and sync).", latencyBuckets),
		walSyncSeconds:     hist("wal_sync_duration_seconds", "Time each batch waits for its WAL sync.", latencyBuckets),
		batchSize:          hist("batch_size", "Calls per group-commit batch.", prometheus.ExponentialBuckets(1, 2, 11)),
		checkpointSeconds:  hist("checkpoint_flush_duration_seconds", "Time each checkpoint of the state takes to flush to disk.", latencyBuckets),
		batchFailures: prometheus.NewCounter(prometheus.CounterOpts{Namespace: namespace, Name: "batch_failures_total",
			Help: "Commit failures (a failed WAL write or sync); after one the ledger refuses writes until restart."}),
	}
	refused := prometheus.NewCounterVec(prometheus.CounterOpts{
		Namespace: namespace, Name: "writes_refused_total",
		Help: "Writes refused before they reached the disk, by reason: no_space (free disk space under the floor), failed (after a failed commit).",
	}, []string{"reason"})
	m.refusedNoSpace, m.refusedFailed = refused.WithLabelValues(RefusedNoSpace), refused.WithLabelValues(RefusedFailed)
	for i, o := range outcomes {
		m.commissions[i] = commissions.WithLabelValues(o)
		m.provisions[i] = provisions.WithLabelValues(o)
	}
	if reg == nil {
		return m, nil
	}
	for _, c := range []prometheus.Collector{commissions, provisions, m.issueSeconds, m.resolveSeconds,
		m.batchCommitSeconds, m.walSyncSeconds, m.batchSize, m.batchFailures, m.checkpointSeconds, refused, stateCollector{l}} {
		if err := reg.Register(c); err != nil {
			return nil, errors.Join(errors.New("ledger: registering metrics"), err)
		}
	}
	return m, nil
}

// count adds one commission of n provisions to outcome i.
func (m *metrics) count(i, n int) {
	m.commissions[i].Inc()
	m.provisions[i].Add(float64(n))
}

// countRefused counts the callers' requests of reqs on c: not the
// writer's own expiry, which it tries again by itself.
func (m *metrics) countRefused(c prometheus.Counter, reqs []*request) {
	n := 0
	for _, r := range reqs {
		if _, ok := r.op.(*expireOp); !ok {
			n++
		}
	}
	c.Add(float64(n))
}

// countResolved counts a resolved commission by its event type.
func (m *metrics) countResolved(eventType string, n int) {
	switch eventType {
	case catalog.CommissionAcceptedType:
		m.count(iAccepted, n)
	case catalog.CommissionExpiredType:
		m.count(iExpired, n)
	default:
		m.count(iRejected, n)
	}
}

// refusal is the outcome index of an error of Issue.
func refusal(err error) int {
	var nc *holdings.NoCapacityError
	var nq *holdings.NoQuantityError
	var nh *holdings.NoHoldingError
	switch {
	case errors.As(err, &nc):
		return iNoCapacity
	case errors.As(err, &nq):
		return iNoQuantity
	case errors.As(err, &nh):
		return iNoHolding
	case failure.CodeOf(err) == failure.Invalid:
		return iInvalid
	}
	return -1
}

func since(h prometheus.Histogram, start time.Time) { h.Observe(time.Since(start).Seconds()) }

// stateCollector computes, at scrape time, the gauges of the durable state:
// pending commissions, holdings, the outbox, and the per-resource totals
// (labelled by resource only, so bounded by the number of resources).
type stateCollector struct{ l *Ledger }

var (
	descPending     = prometheus.NewDesc(namespace+"_pending_commissions", "Commissions pending (issued, not yet resolved).", nil, nil)
	descHoldings    = prometheus.NewDesc(namespace+"_holdings", "Holdings (holder, source, resource) in the ledger.", nil, nil)
	descOutboxDepth = prometheus.NewDesc(namespace+"_outbox_depth", "Durable events waiting in the outbox to be published.", nil, nil)
	descOutboxAge   = prometheus.NewDesc(namespace+"_outbox_oldest_age_seconds", "Age of the oldest event waiting in the outbox (0 when empty).", nil, nil)
	descLimit       = prometheus.NewDesc(namespace+"_resource_limit", "Sum of the limits of the holdings of a resource.", []string{"resource"}, nil)
	descUsage       = prometheus.NewDesc(namespace+"_resource_usage", "Sum of the usage (usage_max, as the API shows it, pending included) of the holdings of a resource.", []string{"resource"}, nil)
	descPendingQty  = prometheus.NewDesc(namespace+"_resource_pending", "Sum of the quantity pending (usage_max - usage_min) over the holdings of a resource.", []string{"resource"}, nil)
	descOverLimit   = prometheus.NewDesc(namespace+"_resource_holdings_over_limit", "Holdings of a resource whose usage_max exceeds their limit.", []string{"resource"}, nil)
	descDiskAvail   = prometheus.NewDesc(namespace+"_disk_available_bytes", "Bytes available on the filesystem of the ledger's directory (absent when it cannot tell).", nil, nil)
	descDiskFloor   = prometheus.NewDesc(namespace+"_disk_floor_bytes", "The free-space floor: under it writes are refused (0: no floor).", nil, nil)
)

func (c stateCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{descPending, descHoldings, descOutboxDepth, descOutboxAge,
		descLimit, descUsage, descPendingQty, descOverLimit, descDiskAvail, descDiskFloor} {
		ch <- d
	}
}

func (c stateCollector) Collect(ch chan<- prometheus.Metric) {
	l := c.l
	type totals struct{ limit, usage, pending, over float64 }
	byResource := make(map[string]*totals)
	l.mu.RLock()
	holdingsN, pendingN := l.table.n, len(l.pending)
	l.table.each(nil, func(k holdings.Key, v holdings.Value) bool {
		t := byResource[k.Resource]
		if t == nil {
			t = &totals{}
			byResource[k.Resource] = t
		}
		t.limit += float64(v.Limit)
		t.usage += float64(v.UsageMax)
		t.pending += float64(v.UsageMax - v.UsageMin)
		if v.UsageMax > v.Limit {
			t.over++
		}
		return true
	})
	l.mu.RUnlock()
	floor := float64(l.opts.MinFreeBytes)
	if l.opts.NoFreeSpaceCheck {
		floor = 0
	}
	ch <- prometheus.MustNewConstMetric(descDiskFloor, prometheus.GaugeValue, floor)
	if free, err := l.opts.DiskFree(); err == nil {
		ch <- prometheus.MustNewConstMetric(descDiskAvail, prometheus.GaugeValue, float64(free))
	}
	ch <- prometheus.MustNewConstMetric(descPending, prometheus.GaugeValue, float64(pendingN))
	ch <- prometheus.MustNewConstMetric(descHoldings, prometheus.GaugeValue, float64(holdingsN))
	for r, t := range byResource {
		ch <- prometheus.MustNewConstMetric(descLimit, prometheus.GaugeValue, t.limit, r)
		ch <- prometheus.MustNewConstMetric(descUsage, prometheus.GaugeValue, t.usage, r)
		ch <- prometheus.MustNewConstMetric(descPendingQty, prometheus.GaugeValue, t.pending, r)
		ch <- prometheus.MustNewConstMetric(descOverLimit, prometheus.GaugeValue, t.over, r)
	}
	if st, err := l.OutboxStats(); err == nil {
		age := 0.0
		if st.Depth > 0 {
			age = max(l.opts.Now().Sub(st.Oldest).Seconds(), 0)
		}
		ch <- prometheus.MustNewConstMetric(descOutboxDepth, prometheus.GaugeValue, float64(st.Depth))
		ch <- prometheus.MustNewConstMetric(descOutboxAge, prometheus.GaugeValue, age)
	}
}

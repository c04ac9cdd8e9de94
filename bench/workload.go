package bench

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/rs/zerolog"

	"github.com/quotaledger/quotaledger/events"
	"github.com/quotaledger/quotaledger/ledger"
)

const unlimited = 1 << 50

var workloads = map[string]func(context.Context, Config) (Result, error){
	"issue-accept": func(ctx context.Context, cfg Config) (Result, error) {
		return simple(ctx, cfg, unlimited, func(e *env) op { return issueResolve(e, true, false, 1) })
	},
	"issue-reject": func(ctx context.Context, cfg Config) (Result, error) {
		return simple(ctx, cfg, unlimited, func(e *env) op { return issueResolve(e, false, false, 1) })
	},
	"auto-accept": func(ctx context.Context, cfg Config) (Result, error) {
		return simple(ctx, cfg, unlimited, func(e *env) op {
			return func(ctx context.Context, i int, rec *recorder) error {
				rec.provis += 4
				return rec.call(func() error {
					_, err := e.drv.issue(ctx, e.lo.Commission(i, 1), true)
					return err
				})
			}
		})
	},
	"resolve-many": func(ctx context.Context, cfg Config) (Result, error) {
		return simple(ctx, cfg, unlimited, func(e *env) op { return resolveMany(e) })
	},
	"hot":   hot,
	"mixed": mixed,
	"over-limit": func(ctx context.Context, cfg Config) (Result, error) {
		// Users' holdings have limit 0: odd operations ask 1 and are
		// refused, even ones ask 0 and are issued and accepted.
		return simple(ctx, cfg, 0, func(e *env) op {
			accept := issueResolve(e, true, false, 0)
			return func(ctx context.Context, i int, rec *recorder) error {
				if i%2 == 0 {
					return accept(ctx, i, rec)
				}
				rec.provis += 4
				err := rec.call(func() error {
					_, err := e.drv.issue(ctx, e.lo.Commission(i, 1), false)
					return err
				})
				if isRefusal(err) {
					rec.refused++
					return nil
				}
				if err == nil {
					return fmt.Errorf("over-limit: an issue past the limit was accepted")
				}
				return err
			}
		})
	},
	"open":   open,
	"events": eventsWorkload,
}

// simple sets the target up with users' limits userLimit and runs the op
// that mk makes.
func simple(ctx context.Context, cfg Config, userLimit int64, mk func(*env) op) (Result, error) {
	e, err := setup(ctx, cfg, userLimit, unlimited)
	if err != nil {
		return Result{}, err
	}
	defer e.close()
	return e.drive(ctx, mk(e)), nil
}

// drive runs o on e, adding the ledger's mean batch size when in process.
func (e *env) drive(ctx context.Context, o op) Result {
	if e.l == nil {
		return drive(ctx, e.cfg, o)
	}
	st0 := e.l.Stats()
	start := time.Now()
	res := drive(ctx, e.cfg, o)
	elapsed := time.Since(start)
	st := e.l.Stats()
	if n := st.Batches - st0.Batches; n > 0 {
		res.CallsPerBatch = float64(st.Calls-st0.Calls) / float64(n)
		// Every batch that wrote anything is one synced WAL write.
		res.SyncsPerSec = float64(n) / elapsed.Seconds()
		if e.cfg.Rate == 0 {
			res.SyncCeilingShare = res.CallsPerSec * 1.5 / (float64(e.cfg.Concurrency) * res.SyncsPerSec)
		}
	}
	return res
}

// issueResolve issues user i's 4-provision commission, then accepts or
// rejects it, asking q of each (a hot op also draws from the hot holding).
func issueResolve(e *env, accept, hot bool, q int64) op {
	return func(ctx context.Context, i int, rec *recorder) error {
		ps := e.lo.Commission(i, q)
		if hot {
			ps[1].Key = hotKey // the project holding of the first resource
		}
		rec.provis += 4
		var serial uint64
		if err := rec.call(func() (err error) {
			serial, err = e.drv.issue(ctx, ps, false)
			return err
		}); err != nil {
			return err
		}
		return rec.call(func() error { return e.drv.resolve(ctx, serial, accept) })
	}
}

// resolveMany issues 100 commissions, then accepts them in one call.
func resolveMany(e *env) op {
	const n = 100
	return func(ctx context.Context, i int, rec *recorder) error {
		serials := make([]uint64, 0, n)
		for j := range n {
			var s uint64
			if err := rec.call(func() (err error) {
				s, err = e.drv.issue(ctx, e.lo.Commission(i*n+j, 1), false)
				return err
			}); err != nil {
				if len(serials) > 0 {
					_ = e.drv.resolveMany(context.WithoutCancel(ctx), serials)
				}
				return err
			}
			rec.provis += 4
			serials = append(serials, s)
		}
		return rec.call(func() error { return e.drv.resolveMany(context.WithoutCancel(ctx), serials) })
	}
}

// hot is issue-accept with every commission also drawing from one project
// holding; in process, it checks that the hot holding lost no update.
func hot(ctx context.Context, cfg Config) (Result, error) {
	e, err := setup(ctx, cfg, unlimited, unlimited)
	if err != nil {
		return Result{}, err
	}
	defer e.close()
	var accepted atomic.Int64
	inner := issueResolve(e, true, true, 1)
	res := e.drive(ctx, func(ctx context.Context, i int, rec *recorder) error {
		n := rec.calls
		err := inner(ctx, i, rec)
		if err == nil && rec.calls == n+2 {
			accepted.Add(1)
		}
		return err
	})
	if e.l != nil {
		v, _ := e.l.FindHoldingByKey(hotKey)
		pending := int64(len(e.l.Pending("cyclades")))
		// A commission whose accept was cut off by the end of the run is
		// still pending (usage max) or was accepted unanswered.
		if v.UsageMin < accepted.Load() || v.UsageMax > accepted.Load()+pending+int64(cfg.Concurrency) {
			return res, fmt.Errorf("hot: the hot holding lost updates: %+v after %d accepted commissions", v, accepted.Load())
		}
		res.Note = fmt.Sprintf("hot holding usage %d after %d accepted commissions: no lost update", v.UsageMin, accepted.Load())
	}
	return res, nil
}

// mixed: 80 % reads (quota reads, catalog lookups, token validations in
// turn), 20 % commissions issued and accepted.
func mixed(ctx context.Context, cfg Config) (Result, error) {
	return simple(ctx, cfg, unlimited, func(e *env) op {
		commission := issueResolve(e, true, false, 1)
		return func(ctx context.Context, i int, rec *recorder) error {
			switch i % 5 {
			case 0:
				return commission(ctx, i/5, rec)
			case 1, 4:
				return rec.call(func() error { return e.drv.readQuota(ctx, i) })
			case 2:
				return rec.call(func() error { return e.drv.catalog(ctx) })
			default:
				return rec.call(func() error { return e.drv.validate(ctx) })
			}
		}
	})
}

// open times opening a data directory of cfg.Holders holdings whose log
// holds as many provisions (written by the harness with the ledger API,
// auto-accepted commissions from cfg.Concurrency callers), over and over
// for cfg.Duration; each open is one call.
func open(ctx context.Context, cfg Config) (Result, error) {
	if cfg.Target != "engine" {
		return Result{}, fmt.Errorf("open: only the engine target")
	}
	e := &env{cfg: cfg, lo: NewLayout(cfg.Holders)}
	defer e.close()
	dir, err := e.tempDir("open")
	if err != nil {
		return Result{}, err
	}
	l, err := ledger.Open(ledger.Options{Dir: dir, Logger: zerolog.Nop()})
	if err != nil {
		return Result{}, err
	}
	if err := e.lo.Create(ctx, l, unlimited, unlimited); err != nil {
		l.Close()
		return Result{}, err
	}
	var next atomic.Int64
	var wg sync.WaitGroup
	var failed atomic.Value
	n := int64(max(1, cfg.Holders/4))
	for range cfg.Concurrency {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := next.Add(1) - 1; i < n; i = next.Add(1) - 1 {
				if _, err := l.Issue(ctx, ledger.IssueRequest{Client: "cyclades", AutoAccept: true, Provisions: e.lo.Commission(int(i), 1)}); err != nil {
					failed.Store(err)
					return
				}
			}
		}()
	}
	wg.Wait()
	st := l.Stats()
	if err := l.Close(); err != nil {
		return Result{}, err
	}
	if err, ok := failed.Load().(error); ok {
		return Result{}, err
	}
	one := cfg
	one.Concurrency, one.Rate = 1, 0
	res := drive(ctx, one, func(ctx context.Context, _ int, rec *recorder) error {
		var l *ledger.Ledger
		err := rec.call(func() (err error) {
			l, err = ledger.Open(ledger.Options{Dir: dir, Logger: zerolog.Nop()})
			return err
		})
		if err != nil {
			return err
		}
		return l.Close()
	})
	res.Note = fmt.Sprintf("open of %d holdings, %d logged provisions", st.Holdings, 4*n)
	return res, nil
}

// eventsWorkload is issue-accept with the relay publishing every event to
// an embedded JetStream as serve runs it (the store synced every second,
// acknowledged events kept 2 s, the relay connected in process; over NATS,
// the same server as the micro service's); it reports the events
// acknowledged per second and the peak age of the oldest event not yet
// acknowledged.
func eventsWorkload(ctx context.Context, cfg Config) (Result, error) {
	if cfg.URL != "" {
		return Result{}, fmt.Errorf("events: not against an external server")
	}
	e, err := setup(ctx, cfg, unlimited, unlimited)
	if err != nil {
		return Result{}, err
	}
	defer e.close()
	srv, err := e.natsServer()
	if err != nil {
		return Result{}, err
	}
	relay := events.NewRelay(e.l, events.RelayOptions{URL: srv.ClientURL(), InProcess: srv, DeleteDelay: 2 * time.Second, Logger: zerolog.Nop()})
	rctx, stop := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- relay.Run(rctx) }()
	defer func() { stop(); <-done }()
	// Wait for the relay to catch up with the setup's events.
	st, err := e.l.OutboxStats()
	if err != nil {
		return Result{}, err
	}
	for deadline := time.Now().Add(30 * time.Second); relay.Published() < st.Last; {
		if time.Now().After(deadline) {
			return Result{}, fmt.Errorf("events: the relay did not publish the setup's %d events", st.Last)
		}
		time.Sleep(5 * time.Millisecond)
	}
	var peakLag time.Duration
	sctx, sstop := context.WithCancel(ctx)
	sampled := make(chan struct{})
	go func() {
		defer close(sampled)
		for sctx.Err() == nil {
			if st, err := e.l.OutboxStats(); err == nil {
				if acked := relay.Published(); st.Last > acked {
					if evs, err := e.l.Outbox(acked, 1); err == nil && len(evs) == 1 {
						peakLag = max(peakLag, time.Since(evs[0].Time))
					}
				}
			}
			time.Sleep(time.Millisecond)
		}
	}()
	p0 := relay.Published()
	inner := issueResolve(e, true, false, 1)
	res := e.drive(ctx, func(ctx context.Context, i int, rec *recorder) error {
		err := inner(ctx, i, rec)
		relay.Notify()
		return err
	})
	sstop()
	<-sampled
	res.EventsPerSec = float64(relay.Published()-p0) / res.Elapsed.Seconds()
	res.OutboxLag = peakLag
	return res, nil
}

package bench

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/rs/zerolog"

	"github.com/quotaledger/quotaledger/api"
	"github.com/quotaledger/quotaledger/api/client"
	"github.com/quotaledger/quotaledger/events"
	"github.com/quotaledger/quotaledger/holdings"
	"github.com/quotaledger/quotaledger/identity"
	"github.com/quotaledger/quotaledger/ledger"
)

// The §7 layout (ledger/bench_test.go's): users, each a member of one of
// up to 1,000 projects, each drawing two resources from the project; a
// commission takes the user's and the project's holdings of both resources
// (4 provisions). One more project holding, "project:hot", is the one every
// caller of "hot" draws from.

var resources = [2]string{"cyclades.vm", "cyclades.ram"}

var hotKey = holdings.Key{Holder: "project:hot", Source: holdings.NullSource, Resource: resources[0]}

// Layout names the holdings of n holders' worth of the §7 workload.
type Layout struct {
	Users, Projects int
	// names, from NewLayout, holds the holders' names made once, so that
	// the load generator does not format two names a call (a layout
	// without them formats them).
	names *layoutNames
}

type layoutNames struct {
	users, projects []string
	sources         []holdings.Source // each project's, as a source
}

// NewLayout is the layout of about n holdings.
func NewLayout(n int) Layout {
	projects := max(1, min(1000, n/4))
	lo := Layout{Users: max(1, (n-2*projects)/2), Projects: projects}
	names := &layoutNames{
		users:    make([]string, lo.Users),
		projects: make([]string, lo.Projects),
		sources:  make([]holdings.Source, lo.Projects),
	}
	for u := range names.users {
		names.users[u] = userName(u)
	}
	for p := range names.projects {
		names.projects[p] = projectName(p)
		names.sources[p] = holdings.SourceOf(names.projects[p])
	}
	lo.names = names
	return lo
}

func userName(u int) string    { return fmt.Sprintf("user:%08d", u) }
func projectName(u int) string { return fmt.Sprintf("project:%05d", u) }

// Commission is the 4 provisions of user u's commission of q of each
// resource.
func (lo Layout) Commission(u int, q int64) []holdings.Provision {
	var user, p string
	var src holdings.Source
	if n := lo.names; n != nil {
		pi := u % lo.Users % lo.Projects
		user, p, src = n.users[u%lo.Users], n.projects[pi], n.sources[pi]
	} else {
		user, p = userName(u%lo.Users), projectName(u%lo.Users%lo.Projects)
		src = holdings.SourceOf(p)
	}
	ps := make([]holdings.Provision, 0, 4)
	for _, r := range resources {
		ps = append(ps,
			holdings.Provision{Key: holdings.Key{Holder: user, Source: src, Resource: r}, Quantity: q},
			holdings.Provision{Key: holdings.Key{Holder: p, Source: holdings.NullSource, Resource: r}, Quantity: q})
	}
	return ps
}

// Create sets the layout's quotas in l through the ledger API: users get
// userLimit, projects and the hot holding projectLimit.
func (lo Layout) Create(ctx context.Context, l *ledger.Ledger, userLimit, projectLimit int64) error {
	batch := []ledger.HoldingSetting{{Key: hotKey, Limit: projectLimit}}
	for u := 0; u < lo.Users; u++ {
		for i, p := range lo.Commission(u, 0) {
			limit := userLimit
			if i%2 == 1 {
				if u >= lo.Projects {
					continue
				}
				limit = projectLimit
			}
			batch = append(batch, ledger.HoldingSetting{Key: p.Key, Limit: limit})
		}
		// Small batches: each SetHoldings is one outbox event, and one of
		// 10,000 holdings stalled the relay of "events" (see
		// docs/performance.md).
		if len(batch) >= 500 {
			if err := l.SetHoldings(ctx, batch); err != nil {
				return err
			}
			batch = batch[:0]
		}
	}
	return l.SetHoldings(ctx, batch)
}

// Prepare writes a data directory holding the layout of holders holdings
// (limits 2^50), for a server the "http" target is pointed at:
// quotaledger serve --data dir.
func Prepare(ctx context.Context, dir string, holders int) error {
	l, err := ledger.Open(ledger.Options{Dir: dir, Logger: zerolog.Nop()})
	if err != nil {
		return err
	}
	if err := NewLayout(holders).Create(ctx, l, 1<<50, 1<<50); err != nil {
		l.Close()
		return err
	}
	return l.Close()
}

// driver is a target's way of making the workloads' calls.
type driver interface {
	issue(ctx context.Context, ps []holdings.Provision, auto bool) (uint64, error)
	resolve(ctx context.Context, serial uint64, accept bool) error
	resolveMany(ctx context.Context, accept []uint64) error
	readQuota(ctx context.Context, user int) error
	catalog(ctx context.Context) error
	validate(ctx context.Context) error
}

// env is a target ready to run: its driver, and the ledger when in process.
type env struct {
	cfg    Config
	lo     Layout
	l      *ledger.Ledger // nil against an external server
	drv    driver
	closer []func()
	// ns is the embedded NATS server of an in-process "nats" target (the
	// micro service's, connected in process as serve connects it), nil
	// otherwise; "events" publishes to it too.
	ns *events.Server
}

func (e *env) close() {
	for i := len(e.closer) - 1; i >= 0; i-- {
		e.closer[i]()
	}
}

// tempDir is cfg.Dir/name, or a temporary directory removed on close.
func (e *env) tempDir(name string) (string, error) {
	if e.cfg.Dir != "" {
		d, err := os.MkdirTemp(e.cfg.Dir, name+"-")
		if err != nil {
			return "", err
		}
		e.closer = append(e.closer, func() { os.RemoveAll(d) })
		return d, nil
	}
	d, err := os.MkdirTemp("", "qlbench-"+name+"-")
	if err != nil {
		return "", err
	}
	e.closer = append(e.closer, func() { os.RemoveAll(d) })
	return d, nil
}

// setup opens the target of cfg with the layout's quotas.
func setup(ctx context.Context, cfg Config, userLimit, projectLimit int64) (*env, error) {
	e := &env{cfg: cfg, lo: NewLayout(cfg.Holders)}
	if cfg.Target == "http" && cfg.URL != "" {
		c, err := newClient(cfg.URL, cfg.Token, cfg.Concurrency)
		if err != nil {
			return nil, err
		}
		e.drv = newHTTPDriver(c, cfg.UserToken, "")
		return e, nil
	}
	if cfg.Target == "nats" && cfg.URL != "" {
		nc, err := nats.Connect(cfg.URL, nats.Name("qlbench"))
		if err != nil {
			return nil, fmt.Errorf("bench: NATS at %s: %w", cfg.URL, err)
		}
		e.closer = append(e.closer, nc.Close)
		e.drv = newNATSDriver(client.NewNATS(nc, cfg.Token, client.NATSOptions{}), cfg.UserToken)
		return e, nil
	}
	ok := false
	defer func() {
		if !ok {
			e.close()
		}
	}()
	dir, err := e.tempDir("ledger")
	if err != nil {
		return nil, err
	}
	l, err := ledger.Open(ledger.Options{Dir: dir, Logger: zerolog.Nop()})
	if err != nil {
		return nil, err
	}
	e.l = l
	e.closer = append(e.closer, func() { l.Close() })
	if err := e.lo.Create(ctx, l, userLimit, projectLimit); err != nil {
		return nil, err
	}
	id, err := identity.Open(l, identity.Options{})
	if err != nil {
		return nil, err
	}
	svcToken, _, err := id.CreateService(ctx, identity.NewService{Name: "cyclades", Type: "compute"})
	if err != nil {
		return nil, err
	}
	u, err := id.CreateUser(ctx, identity.NewUser{Username: "bench@example.org", Password: "bench-password-1234", Active: true})
	if err != nil {
		return nil, err
	}
	userToken, _, err := id.CreateAccessToken(ctx, u.UUID, "bench", time.Time{}, true)
	if err != nil {
		return nil, err
	}
	if cfg.Target == "engine" {
		e.drv = &engineDriver{l: l, id: id, lo: e.lo, userToken: userToken}
		ok = true
		return e, nil
	}
	server := api.New(l, id, api.Options{Logger: zerolog.Nop()})
	if cfg.Target == "nats" {
		c, err := e.serveNATS(server, svcToken)
		if err != nil {
			return nil, err
		}
		e.drv = newNATSDriver(c, userToken)
		ok = true
		return e, nil
	}
	srv := httptest.NewServer(server)
	e.closer = append(e.closer, srv.Close)
	c, err := newClient(srv.URL, svcToken, cfg.Concurrency)
	if err != nil {
		return nil, err
	}
	e.drv = newHTTPDriver(c, userToken, u.UUID)

	ok = true
	return e, nil
}

// serveNATS serves the micro service of server as serve does: on an
// embedded NATS server, connected in process; the load generator's client
// connects over TCP, as a service would.
func (e *env) serveNATS(server *api.Server, token string) (*client.NATS, error) {
	ns, err := e.natsServer()
	if err != nil {
		return nil, err
	}
	inproc, err := nats.Connect("", nats.InProcessServer(ns), nats.Name("quotaledger micro service"))
	if err != nil {
		return nil, err
	}
	svc, err := server.ServeNATS(inproc, api.NATSOptions{})
	if err != nil {
		inproc.Close()
		return nil, err
	}
	e.closer = append(e.closer, func() {
		_ = svc.Stop(context.Background())
		inproc.Close()
	})
	nc, err := nats.Connect(ns.ClientURL(), nats.Name("qlbench"))
	if err != nil {
		return nil, err
	}
	e.closer = append(e.closer, nc.Close)
	return client.NewNATS(nc, token, client.NATSOptions{}), nil
}

// natsServer starts the env's embedded NATS server (once), as serve runs
// it: JetStream storing under a temporary directory, synced every second.
func (e *env) natsServer() (*events.Server, error) {
	if e.ns != nil {
		return e.ns, nil
	}
	dir, err := e.tempDir("nats")
	if err != nil {
		return nil, err
	}
	ns, err := events.StartServer(events.ServerOptions{Dir: dir, Listen: "127.0.0.1:-1", SyncInterval: time.Second, Logger: zerolog.Nop()})
	if err != nil {
		return nil, err
	}
	e.ns = ns
	e.closer = append(e.closer, ns.Shutdown)
	return ns, nil
}

func newClient(url, token string, conns int) (*client.Client, error) {
	t := http.DefaultTransport.(*http.Transport).Clone()
	t.MaxIdleConns, t.MaxIdleConnsPerHost = conns, conns
	return client.New(url, token, client.Options{HTTPClient: &http.Client{Transport: t, Timeout: 30 * time.Second}, NoTokenPickup: true})
}

type engineDriver struct {
	l         *ledger.Ledger
	id        *identity.Store
	lo        Layout
	userToken string
}

func (d *engineDriver) issue(ctx context.Context, ps []holdings.Provision, auto bool) (uint64, error) {
	res, err := d.l.Issue(ctx, ledger.IssueRequest{Client: "cyclades", Name: "bench", AutoAccept: auto, Provisions: ps})
	return res.Serial, err
}

func (d *engineDriver) resolve(ctx context.Context, serial uint64, accept bool) error {
	return d.l.Resolve(ctx, "cyclades", serial, accept, "")
}

func (d *engineDriver) resolveMany(ctx context.Context, accept []uint64) error {
	res, err := d.l.ResolveMany(ctx, "cyclades", accept, nil, "")
	if err == nil && len(res.Accepted) != len(accept) {
		err = fmt.Errorf("resolve many: %d of %d accepted", len(res.Accepted), len(accept))
	}
	return err
}

func (d *engineDriver) readQuota(_ context.Context, u int) error {
	if len(d.l.FindHoldings(ledger.HoldingFilter{Holders: []string{userName(u % d.lo.Users)}})) == 0 {
		return errors.New("no quotas for " + userName(u%d.lo.Users))
	}
	return nil
}

func (d *engineDriver) catalog(context.Context) error {
	_, err := d.id.FindServiceByName("cyclades")
	return err
}

func (d *engineDriver) validate(context.Context) error {
	_, err := d.id.Authenticate(d.userToken)
	return err
}

// serviceDriver makes a service's calls on either wire.
type serviceDriver struct {
	c client.ServiceAPI
}

func toClient(ps []holdings.Provision) []client.Provision {
	out := make([]client.Provision, len(ps))
	for i, p := range ps {
		out[i] = client.Provision{Holder: p.Key.Holder, Source: p.Key.Source.Ptr(), Resource: p.Key.Resource, Quantity: p.Quantity}
	}
	return out
}

func (d serviceDriver) issue(ctx context.Context, ps []holdings.Provision, auto bool) (uint64, error) {
	s, err := d.c.IssueCommission(ctx, client.Commission{Name: "bench", AutoAccept: auto, Provisions: toClient(ps)})
	return uint64(s), err
}

func (d serviceDriver) resolve(ctx context.Context, serial uint64, accept bool) error {
	if accept {
		return d.c.AcceptCommission(ctx, int64(serial))
	}
	return d.c.RejectCommission(ctx, int64(serial))
}

func (d serviceDriver) resolveMany(ctx context.Context, accept []uint64) error {
	a := make([]int64, len(accept))
	for i, s := range accept {
		a[i] = int64(s)
	}
	res, err := d.c.ResolveCommissions(ctx, a, nil)
	if err == nil && len(res.Accepted) != len(a) {
		err = fmt.Errorf("resolve many: %d of %d accepted", len(res.Accepted), len(a))
	}
	return err
}

func (d serviceDriver) catalog(ctx context.Context) error {
	_, err := d.c.ServiceGetUsernames(ctx, []string{"bench"})
	return err
}

func newHTTPDriver(c *client.Client, userToken, userUUID string) *httpDriver {
	return &httpDriver{serviceDriver: serviceDriver{c}, hc: c, userToken: userToken, userUUID: userUUID}
}

func newNATSDriver(c *client.NATS, userToken string) *natsDriver {
	return &natsDriver{serviceDriver: serviceDriver{c}, nc: c, userToken: userToken}
}

// httpDriver calls the HTTP API.
type httpDriver struct {
	serviceDriver
	hc        *client.Client
	userToken string
	userUUID  string // the user whose quotas are read ("" against an external server)
}

// readQuota reads a user's quotas: the bench user's in process; against
// an external server the user token's own, or (no user token) every user's
// (in process, the only user is the bench user).
func (d *httpDriver) readQuota(ctx context.Context, _ int) error {
	if d.userUUID == "" && d.userToken != "" {
		_, err := d.hc.WithToken(d.userToken).GetQuotas(ctx)
		return err
	}
	_, err := d.hc.ServiceGetQuotas(ctx, nil, "")
	return err
}

func (d *httpDriver) validate(ctx context.Context) error {
	if d.userToken == "" {
		_, err := d.hc.GetServiceCatalog(ctx)
		return err
	}
	_, err := d.hc.ValidateToken(ctx, d.userToken, "")
	return err
}

// natsDriver calls the micro service over NATS.
type natsDriver struct {
	serviceDriver
	nc        *client.NATS
	userToken string
}

// readQuota reads the service quotas of every user, as httpDriver does
// without a user's token (the micro service has no call of a user's own
// quotas).
func (d *natsDriver) readQuota(ctx context.Context, _ int) error {
	_, err := d.nc.ServiceGetQuotas(ctx, nil, "")
	return err
}

// validate validates the user's token; without one (an external server
// and no -user-token) it looks a username up instead.
func (d *natsDriver) validate(ctx context.Context) error {
	if d.userToken == "" {
		_, err := d.nc.ServiceGetUUIDs(ctx, []string{"bench@example.org"})
		return err
	}
	_, err := d.nc.ValidateToken(ctx, d.userToken, "")
	return err
}

// isRefusal reports whether err is a refusal for capacity (NoCapacity in
// process, 413 overLimit over HTTP).
func isRefusal(err error) bool {
	if _, ok := holdings.AsQuotaLimit(err); ok {
		return true
	}
	var ql *client.QuotaLimit
	return errors.As(err, &ql)
}

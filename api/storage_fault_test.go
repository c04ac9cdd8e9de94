package api

// Disk faults through the HTTP server (DESIGN §8: "a full disk or a failed
// fsync: writes are refused with 503, nothing half-applied"). The ledger's
// own fault tests (ledger/fault_test.go) check the engine in a child
// process; these check what a client of the service sees.

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/cockroachdb/pebble/v2/vfs"
	"github.com/cockroachdb/pebble/v2/vfs/errorfs"
	"github.com/rs/zerolog"

	"github.com/quotaledger/quotaledger/holdings"
	"github.com/quotaledger/quotaledger/ledger"
)

// faultKeys are holdings with room for every commission of these tests.
func faultKeys(t *testing.T, l *ledger.Ledger) []holdings.Key {
	t.Helper()
	var keys []holdings.Key
	var set []ledger.HoldingSetting
	for i := range 4 {
		k := holdings.Key{Holder: fmt.Sprintf("project:fault-%d", i), Source: holdings.NullSource, Resource: "cyclades.vm"}
		keys = append(keys, k)
		set = append(set, ledger.HoldingSetting{Key: k, Limit: 1 << 40})
	}
	if err := l.SetHoldings(context.Background(), set); err != nil {
		t.Fatal(err)
	}
	return keys
}

// faultIssue issues a commission named name on k and returns the status,
// the serial (on 201) and the answer.
func (e *env) faultIssue(k holdings.Key, name string) (int, uint64, map[string]any) {
	st, out := e.do("POST", "/account/v1.0/commissions", e.service,
		map[string]any{"name": name, "provisions": []any{prov(k, 1)}})
	var serial uint64
	if s, ok := out["serial"].(float64); ok && st == http.StatusCreated {
		serial = uint64(s)
	}
	return st, serial, out
}

// faultUnavailable checks that out is a 503 cloudFault whose message
// contains want, and returns the message.
func faultUnavailable(t *testing.T, what string, st int, out map[string]any, want string) string {
	t.Helper()
	f, _ := out["serviceUnavailable"].(map[string]any)
	msg, _ := f["message"].(string)
	if st != http.StatusServiceUnavailable || f["code"] != float64(503) || !strings.Contains(msg, want) {
		t.Fatalf("%s: %d %v, want a 503 serviceUnavailable fault saying %q", what, st, out, want)
	}
	return msg
}

// faultReads reads through the API what a client sees of the ledger, and
// fails the test if any read does not answer 200.
func (e *env) faultReads(t *testing.T, serials []uint64) string {
	t.Helper()
	var b strings.Builder
	for _, path := range []string{"/account/v1.0/commissions", "/account/v1.0/service_quotas"} {
		st, raw := e.doRaw("GET", path, e.service, nil)
		if st != http.StatusOK {
			t.Fatalf("GET %s: %d %s", path, st, raw)
		}
		fmt.Fprintf(&b, "%s %s\n", path, raw)
	}
	for _, s := range serials {
		path := fmt.Sprintf("/account/v1.0/commissions/%d", s)
		st, raw := e.doRaw("GET", path, e.service, nil)
		if st != http.StatusOK {
			t.Fatalf("GET %s: %d %s", path, st, raw)
		}
		fmt.Fprintf(&b, "%s %s\n", path, raw)
	}
	st, raw := e.doRaw("GET", "/account/v1.0/quotas", e.user, nil)
	if st != http.StatusOK {
		t.Fatalf("GET quotas: %d %s", st, raw)
	}
	fmt.Fprintf(&b, "quotas %s\n", raw)
	return b.String()
}

func TestStorageFaultFullDisk(t *testing.T) {
	var free atomic.Uint64
	free.Store(1 << 30)
	e := newEnvOn(t, zerolog.Nop(), nil, ledger.Options{MinFreeBytes: 1 << 20,
		DiskFree: func() (uint64, error) { return free.Load(), nil }})
	keys := faultKeys(t, e.l)
	var serials []uint64
	for i := range 4 {
		st, s, out := e.faultIssue(keys[i], fmt.Sprintf("before-%d", i))
		if st != http.StatusCreated {
			t.Fatalf("issue: %d %v", st, out)
		}
		serials = append(serials, s)
	}
	before, reads := e.state(), e.faultReads(t, serials)

	free.Store(1<<20 - 1)
	const full = "free disk space below the floor"
	for i, k := range keys {
		st, _, out := e.faultIssue(k, fmt.Sprintf("full-%d", i))
		faultUnavailable(t, "issue on a full disk", st, out, full)
	}
	st, out := e.do("POST", fmt.Sprintf("/account/v1.0/commissions/%d/action", serials[0]), e.service, map[string]any{"accept": ""})
	faultUnavailable(t, "accept on a full disk", st, out, full)
	st, out = e.do("POST", "/account/v1.0/commissions/action", e.service, map[string]any{"reject": serials[1:]})
	faultUnavailable(t, "resolve many on a full disk", st, out, full)
	st, out = e.do("POST", restBase+"auth/login", "", map[string]any{"username": "user@example.com", "password": testPassword})
	faultUnavailable(t, "login on a full disk", st, out, full)
	if st, out := e.do("GET", "/healthz", "", nil); st != http.StatusOK {
		t.Fatalf("healthz on a full disk: %d %v, want 200: the process is fine", st, out)
	}
	if got := e.faultReads(t, serials); got != reads {
		t.Fatalf("reads changed on a full disk:\n%s\nwant\n%s", got, reads)
	}
	if after := e.state(); fmt.Sprint(after) != fmt.Sprint(before) {
		t.Fatalf("refused writes changed the state:\n%+v\nwant\n%+v", after, before)
	}

	// Room again: writes are taken at once.
	free.Store(1 << 30)
	if st, _, out := e.faultIssue(keys[0], "after"); st != http.StatusCreated {
		t.Fatalf("issue once there is room again: %d %v", st, out)
	}
	if st, out := e.do("POST", fmt.Sprintf("/account/v1.0/commissions/%d/action", serials[0]), e.service, map[string]any{"accept": ""}); st != http.StatusOK {
		t.Fatalf("accept once there is room again: %d %v", st, out)
	}
}

func TestStorageFaultWALWrite(t *testing.T) { testStorageFault(t, "write") }

func TestStorageFaultWALSync(t *testing.T) { testStorageFault(t, "sync") }

// testStorageFault fails every WAL write (or sync) from a moment on, under
// concurrent load, and checks what clients see: every write answered 201
// before is kept, writes answer 503, reads go on and no longer move,
// /healthz fails, and after a restart on the same files with the fault
// cleared, every answered call is there, every refused one left no trace,
// and writes are taken again.
func testStorageFault(t *testing.T, kind string) {
	mem := vfs.NewMem()
	var armed atomic.Bool
	fs := errorfs.Wrap(mem, errorfs.InjectorFunc(func(op errorfs.Op) error {
		if !armed.Load() || !strings.HasSuffix(op.Path, ".log") {
			return nil
		}
		switch op.Kind {
		case errorfs.OpFileWrite, errorfs.OpFileWriteAt:
			if kind == "write" {
				return errorfs.ErrInjected
			}
		case errorfs.OpFileSync, errorfs.OpFileSyncData, errorfs.OpFileSyncTo:
			if kind == "sync" {
				return errorfs.ErrInjected
			}
		}
		return nil
	}))
	e := newEnvOn(t, zerolog.Nop(), nil, ledger.Options{FS: fs})
	keys := faultKeys(t, e.l)

	// Before the fault: some accepted, some pending.
	answered := map[string]uint64{} // name: serial, answered 201
	var pending []uint64
	for i := range 8 {
		name := fmt.Sprintf("before-%d", i)
		st, s, out := e.faultIssue(keys[i%len(keys)], name)
		if st != http.StatusCreated {
			t.Fatalf("issue: %d %v", st, out)
		}
		answered[name] = s
		if i%2 == 0 {
			if st, out := e.do("POST", fmt.Sprintf("/account/v1.0/commissions/%d/action", s), e.service, map[string]any{"accept": ""}); st != http.StatusOK {
				t.Fatalf("accept: %d %v", st, out)
			}
		} else {
			pending = append(pending, s)
		}
	}

	// The fault, under load from 8 clients.
	armed.Store(true)
	var (
		mu      sync.Mutex
		refused []string // answered "storage failed", not "outcome unknown"
		unknown int
		wg      sync.WaitGroup
	)
	for w := range 8 {
		wg.Go(func() {
			for i := range 25 {
				name := fmt.Sprintf("during-%d-%d", w, i)
				st, s, out := e.faultIssue(keys[w%len(keys)], name)
				mu.Lock()
				switch st {
				case http.StatusCreated:
					answered[name] = s
				case http.StatusServiceUnavailable:
					msg := faultUnavailable(t, "issue after the fault", st, out, "storage failed")
					if strings.Contains(msg, "outcome of this call is unknown") {
						unknown++
					} else {
						refused = append(refused, name)
					}
				default:
					t.Errorf("issue %s after the fault: %d %v", name, st, out)
				}
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	if t.Failed() {
		return
	}
	if len(refused) == 0 {
		t.Fatalf("no issue was refused after the WAL %s failed (unknown outcome: %d)", kind, unknown)
	}

	// Failed: writes refused, reads go on from a state that no longer moves.
	if st, out := e.do("GET", "/healthz", "", nil); st != http.StatusServiceUnavailable || out["status"] != "storage failed" {
		t.Fatalf("healthz after the fault: %d %v", st, out)
	}
	before, reads := e.state(), e.faultReads(t, pending)
	st, out := e.do("POST", fmt.Sprintf("/account/v1.0/commissions/%d/action", pending[0]), e.service, map[string]any{"accept": ""})
	faultUnavailable(t, "accept after the fault", st, out, "storage failed")
	st, out = e.do("POST", restBase+"auth/login", "", map[string]any{"username": "user@example.com", "password": testPassword})
	faultUnavailable(t, "login after the fault", st, out, "storage failed")
	if got := e.faultReads(t, pending); got != reads {
		t.Fatalf("reads moved after the fault:\n%s\nwant\n%s", got, reads)
	}
	if after := e.state(); fmt.Sprint(after) != fmt.Sprint(before) {
		t.Fatalf("the state moved after the fault:\n%+v\nwant\n%+v", after, before)
	}
	t.Logf("WAL %s failed: %d issues answered before it, %d refused, %d of unknown outcome", kind, len(answered), len(refused), unknown)

	// The restart: the fault cleared, the same files reopened.
	done := make(chan error, 1)
	go func() { done <- e.l.Close() }()
	select {
	case err := <-done:
		t.Logf("closing the failed ledger: %v", err)
	case <-time.After(20 * time.Second):
		t.Fatal("closing the failed ledger hangs")
	}
	e.srv.Close()
	armed.Store(false)
	r := reopenEnv(t, e, mem)
	names := map[string]uint64{}
	for _, s := range r.l.Pending("cyclades") {
		c, err := r.l.Commission("cyclades", s)
		if err != nil {
			t.Fatal(err)
		}
		names[c.Name] = s
	}
	page, err := r.l.Log(ledger.LogFilter{Limit: ledger.MaxLogPage})
	if err != nil {
		t.Fatal(err)
	}
	for _, le := range page.Entries {
		names[le.Name] = le.Serial
	}
	for name, s := range answered {
		if names[name] != s {
			t.Errorf("issue %s answered with serial %d is lost after the restart (found %d)", name, s, names[name])
		}
	}
	for _, name := range refused {
		if s, ok := names[name]; ok {
			t.Errorf("issue %s was refused but is there after the restart as serial %d", name, s)
		}
	}
	if st, out := r.do("GET", "/healthz", "", nil); st != http.StatusOK {
		t.Fatalf("healthz after the restart: %d %v", st, out)
	}
	if st, _, out := r.faultIssue(keys[0], "after"); st != http.StatusCreated {
		t.Fatalf("issue after the restart: %d %v", st, out)
	}
	if st, out := r.do("POST", fmt.Sprintf("/account/v1.0/commissions/%d/action", pending[0]), r.service, map[string]any{"accept": ""}); st != http.StatusOK {
		t.Fatalf("accept after the restart: %d %v", st, out)
	}
}

// reopenEnv opens e's ledger files again on fs, as a restarted server
// would, keeping e's tokens.
func reopenEnv(t *testing.T, e *env, fs vfs.FS) *env {
	t.Helper()
	l, id := openStores(t, ledger.Options{FS: fs}, zerolog.Nop(), nil)
	r := &env{t: t, l: l, id: id, admin: e.admin, user: e.user, service: e.service, userRec: e.userRec}
	r.api = New(l, id, Options{Logger: zerolog.Nop()})
	r.srv = httptest.NewServer(r.api)
	t.Cleanup(r.srv.Close)
	return r
}

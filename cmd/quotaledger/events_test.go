package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/rs/zerolog"

	"github.com/quotaledger/quotaledger/api/client"
	"github.com/quotaledger/quotaledger/api/wire"
	"github.com/quotaledger/quotaledger/events"
	"github.com/quotaledger/quotaledger/internal/testkit"
	"github.com/quotaledger/quotaledger/internal/testkit/ledgertest"
	"github.com/quotaledger/quotaledger/ledger"
)

// startNATS starts the product's embedded NATS server (events.StartServer)
// on dir, listening on listen (a random loopback port if ""), and shuts it
// down when the test ends if the test has not.
func startNATS(t *testing.T, dir, listen string) *events.Server {
	t.Helper()
	if listen == "" {
		listen = "127.0.0.1:-1"
	}
	ns, err := events.StartServer(events.ServerOptions{Dir: dir, Listen: listen, Logger: zerolog.Nop()})
	if err != nil {
		t.Fatalf("NATS on %s: %v", listen, err)
	}
	t.Cleanup(ns.Shutdown)
	return ns
}

// call sends method url with token and a JSON body (if any) and returns the
// status and the answer's body.
func call(t *testing.T, method, url, token, body string) (int, []byte) {
	t.Helper()
	var r io.Reader
	if body != "" {
		r = strings.NewReader(body)
	}
	req, err := http.NewRequest(method, url, r)
	if err != nil {
		t.Fatal(err)
	}
	if token != "" {
		req.Header.Set("X-Auth-Token", token)
	}
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := httpClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, url, err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, data
}

// setQuota sets the limit of (holder, system, r1) through the API: one
// holding.changed event.
func setQuota(t *testing.T, base, token, holder string, limit int64) {
	t.Helper()
	body := fmt.Sprintf(`{"holdings":[{"holder":%q,"source":"system","resource":"r1","limit":%d}]}`, holder, limit)
	if code, data := call(t, http.MethodPost, base+"/account/v1.0/holdings", token, body); code != http.StatusOK {
		t.Fatalf("POST holdings: %d %s", code, data)
	}
}

// streamMsg is one message of the stream, as the test reads it.
type streamMsg struct {
	Seq     uint64
	Subject string
	MsgID   string // the Nats-Msg-Id header
	Payload events.Payload
	Raw     []byte
}

// openStream connects to the NATS server at url and returns the stream
// QUOTALEDGER with its state, or nil if there is no such stream yet; done
// disconnects.
func openStream(ctx context.Context, t *testing.T, url string) (stream jetstream.Stream, info *jetstream.StreamInfo, done func()) {
	t.Helper()
	nc, err := nats.Connect(url)
	if err != nil {
		t.Fatalf("nats: %v", err)
	}
	js, err := jetstream.New(nc)
	if err != nil {
		nc.Close()
		t.Fatal(err)
	}
	stream, err = js.Stream(ctx, events.StreamName)
	if errors.Is(err, jetstream.ErrStreamNotFound) {
		return nil, nil, nc.Close
	}
	if err == nil {
		info, err = stream.Info(ctx)
	}
	if err != nil {
		nc.Close()
		t.Fatalf("stream %s: %v", events.StreamName, err)
	}
	return stream, info, nc.Close
}

// readStream reads the whole stream QUOTALEDGER at url as it is now
// (testkit.ReadStream), each message's payload decoded.
func readStream(t *testing.T, url string) []streamMsg {
	t.Helper()
	var msgs []streamMsg
	for _, m := range testkit.ReadStream(t, url, events.StreamName) {
		sm := streamMsg{Seq: m.Seq, Subject: m.Subject, MsgID: m.MsgID, Raw: m.Data}
		if err := json.Unmarshal(m.Data, &sm.Payload); err != nil {
			t.Fatalf("message %d on %s: %v: %s", m.Seq, m.Subject, err, m.Data)
		}
		msgs = append(msgs, sm)
	}
	return msgs
}

// ofType keeps the messages of one event type (without the version prefix).
func ofType(msgs []streamMsg, typ string) []streamMsg {
	var out []streamMsg
	for _, m := range msgs {
		if m.Payload.Type == events.TypePrefix+typ {
			out = append(out, m)
		}
	}
	return out
}

// waitForType waits until the stream at url holds n events of type typ,
// and fails if it holds more.
func waitForType(t *testing.T, url, typ string, n int, d time.Duration) []streamMsg {
	t.Helper()
	var msgs []streamMsg
	testkit.CheckFor(t, d, poll, func() error {
		msgs = readStream(t, url)
		got := len(ofType(msgs, typ))
		if got > n {
			t.Fatalf("%d %s events in the stream, want %d", got, typ, n)
		}
		if got < n {
			return fmt.Errorf("%d %s events in the stream after %s, want %d", got, typ, d, n)
		}
		return nil
	})
	return msgs
}

// checkOnce checks that every message of the stream has a distinct event
// id, which is also its Nats-Msg-Id.
func checkOnce(t *testing.T, msgs []streamMsg) {
	t.Helper()
	seen := map[string]uint64{}
	for _, m := range msgs {
		if m.Payload.ID == "" || m.MsgID != m.Payload.ID {
			t.Fatalf("message %d: id %q, Nats-Msg-Id %q", m.Seq, m.Payload.ID, m.MsgID)
		}
		if prev, ok := seen[m.Payload.ID]; ok {
			t.Fatalf("event %s twice in the stream: messages %d and %d", m.Payload.ID, prev, m.Seq)
		}
		seen[m.Payload.ID] = m.Seq
	}
}

// outboxIDs are the event ids in the outbox of a stopped server's data
// directory.
func outboxIDs(t *testing.T, dir string) []string {
	t.Helper()
	l := ledgertest.Open(t, ledger.Options{Dir: filepath.Join(dir, "ledger")})
	evs, err := l.Outbox(0, 1<<20)
	if err != nil {
		t.Fatal(err)
	}
	ids := make([]string, len(evs))
	for i, e := range evs {
		ids[i] = events.MsgID(l.ID(), e.Seq)
	}
	if err := l.Close(); err != nil { // before serve opens it again
		t.Fatal(err)
	}
	return ids
}

// readStreamAt reads the stream a stopped server left in its NATS
// directory, with a NATS server of its own on it.
func readStreamAt(t *testing.T, dir string) []streamMsg {
	t.Helper()
	ns := startNATS(t, dir, "")
	defer ns.Shutdown() // before serve starts on dir again
	return readStream(t, ns.ClientURL())
}

// kill ends the process with SIGKILL: no shutdown at all.
func (p *proc) kill() {
	p.t.Helper()
	if err := p.cmd.Process.Kill(); err != nil {
		p.t.Fatal(err)
	}
	select {
	case <-p.exited:
	case <-time.After(time.Minute):
		p.t.Fatal("serve did not die within a minute of SIGKILL")
	}
}

// TestServeEvents: serve with its embedded NATS publishes the bootstrap's
// events and each change, once, on the subjects of the README.
func TestServeEvents(t *testing.T) {
	if runtime.GOOS == "windows" {
		t.Skip("SIGTERM")
	}
	dir := t.TempDir()
	p := startServe(t, nil, "--data", dir)
	if !strings.HasPrefix(p.nats, "nats://127.0.0.1:") || strings.HasSuffix(p.nats, ":4222") {
		t.Fatalf("the embedded NATS server listens on %q, want a random loopback port", p.nats)
	}
	b := readBootstrap(t, dir)
	setQuota(t, p.base, b.Token, "h0", 10)
	msgs := waitForType(t, p.nats, "holding.changed", 1, 10*time.Second)
	checkOnce(t, msgs)
	if len(ofType(msgs, "identity.user.registered")) != 1 || len(ofType(msgs, "identity.token.created")) != 1 {
		t.Fatalf("the bootstrap's events are not in the stream: %d messages", len(msgs))
	}
	h := ofType(msgs, "holding.changed")[0]
	if h.Subject != "quota.holding.changed" || len(h.Payload.Holdings) != 1 {
		t.Fatalf("holding.changed on %q: %s", h.Subject, h.Raw)
	}
	if ph := h.Payload.Holdings[0]; ph.Holder != "h0" || ph.Source == nil || *ph.Source != "system" ||
		ph.Resource != "r1" || ph.Limit != 10 {
		t.Fatalf("holding.changed: %s", h.Raw)
	}
	// The stream is bounded by default (7 days), and the start says so
	// (issue 17).
	_, info, done := openStream(t.Context(), t, p.nats)
	done()
	if info == nil || info.Config.MaxAge != 7*24*time.Hour {
		t.Fatalf("the stream's max age by default: %+v", info)
	}
	p.stop()
	log := p.stderr.String()
	if !strings.Contains(log, `"message":"embedded NATS server listening"`) || strings.Contains(log, b.Token) {
		t.Fatalf("the log does not name the embedded NATS server, or shows the token:\n%s", log)
	}
	if !strings.Contains(log, `"stream_max_age":"168h0m0s"`) {
		t.Fatalf("the start does not say how long the stream keeps events:\n%s", log)
	}
}

// TestServeOutboxKill: the server killed with SIGKILL right after changes
// republishes on restart what its outbox still holds, and the stream's
// duplicate window drops what it already has: every event is in the stream
// exactly once, in order. Whether a kill lands between a publish ack and
// its outbox delete is luck, so it kills again (up to killRounds times)
// until one did.
func TestServeOutboxKill(t *testing.T) {
	if runtime.GOOS == "windows" {
		t.Skip("SIGKILL")
	}
	const killRounds = 5
	dir := t.TempDir()
	p := startServe(t, nil, "--data", dir)
	b := readBootstrap(t, dir)
	changes := 0
	change := func(p *proc) {
		changes++
		setQuota(t, p.base, b.Token, fmt.Sprintf("h%03d", changes), int64(changes))
	}
	for range 10 {
		change(p)
	}
	before := waitForType(t, p.nats, "holding.changed", changes, 10*time.Second)
	others := len(before) - changes // the bootstrap's events

	republished := 0
	for round := 1; round <= killRounds && republished == 0; round++ {
		for range 20 {
			change(p)
		}
		p.kill() // each change was answered, so it is in the ledger and its outbox
		inOutbox := outboxIDs(t, dir)
		inStream := map[string]bool{}
		for _, m := range readStreamAt(t, filepath.Join(dir, "nats")) {
			inStream[m.Payload.ID] = true
		}
		// Those in both are acknowledged but not deleted: the restart
		// republishes them, and the stream must drop them.
		for _, id := range inOutbox {
			if inStream[id] {
				republished++
			}
		}
		t.Logf("kill %d: %d events in the outbox, %d of them already in the stream", round, len(inOutbox), republished)
		p = startServe(t, nil, "--data", dir)
	}
	if republished == 0 {
		t.Logf("no kill of %d landed between a publish ack and its outbox delete: only the resume was checked", killRounds)
	}

	waitForType(t, p.nats, "holding.changed", changes, 10*time.Second)
	time.Sleep(200 * time.Millisecond) // room for a late duplicate, which would fail below
	msgs := readStream(t, p.nats)
	checkOnce(t, msgs)
	held := ofType(msgs, "holding.changed")
	if len(held) != changes || len(msgs) != changes+others {
		t.Fatalf("%d holding.changed events of %d changes, %d messages in all, want %d", len(held), changes,
			len(msgs), changes+others)
	}
	for i, m := range held { // in the order of the changes
		if want := fmt.Sprintf("h%03d", i+1); len(m.Payload.Holdings) != 1 || m.Payload.Holdings[0].Holder != want {
			t.Fatalf("holding.changed #%d: %s, want holder %s", i, m.Raw, want)
		}
	}
	p.stop()
}

// TestServeExternalNATS: with --nats-url serve starts no NATS server of its
// own, publishes to the one named, and serves the micro service on it.
func TestServeExternalNATS(t *testing.T) {
	if runtime.GOOS == "windows" {
		t.Skip("SIGTERM")
	}
	ns := startNATS(t, t.TempDir(), "")
	dir := t.TempDir()
	p := startServe(t, nil, "--data", dir, "--nats-url", ns.ClientURL())
	if p.nats != ns.ClientURL() {
		t.Fatalf("serve logs the NATS URL %q, want %q", p.nats, ns.ClientURL())
	}
	b := readBootstrap(t, dir)
	setQuota(t, p.base, b.Token, "h0", 3)
	checkOnce(t, waitForType(t, ns.ClientURL(), "holding.changed", 1, 10*time.Second))
	microCalls(t, p.base, ns.ClientURL(), b.Token)
	p.stop()
	if strings.Contains(p.stderr.String(), "embedded NATS server listening") {
		t.Fatal("serve started its own NATS server with --nats-url")
	}
}

// TestServeReadiness: while NATS is away, /readyz fails once the outbox
// passes --outbox-max-depth or --outbox-max-age, and says which.
func TestServeReadiness(t *testing.T) {
	for _, tc := range []struct {
		name string
		args []string
		want string // in the 503's body; "" for 200
	}{
		{name: "OK/within bounds", args: nil},
		{name: "ErrDepth", args: []string{"--outbox-max-depth", "1"}, want: "--outbox-max-depth 1"},
		{name: "ErrAge", args: []string{"--outbox-max-age", "1ms"}, want: "--outbox-max-age 1ms"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			clearEnv(t)
			m, _, stderr := newTestMain()
			ctx := context.Background()
			args := append([]string{"serve", "--data", t.TempDir(), "--listen", "127.0.0.1:0",
				"--nats-url", "nats://" + testkit.FreeAddr(t)}, tc.args...)
			if err := m.ParseFlags(ctx, args); err != nil {
				t.Fatal(err)
			}
			if err := m.Run(ctx); err != nil {
				t.Fatalf("Run: %v\n%s", err, stderr.String())
			}
			t.Cleanup(func() { _ = m.Close() })
			time.Sleep(10 * time.Millisecond) // older than 1ms
			code, body := call(t, http.MethodGet, "http://"+m.server.addr.String()+"/readyz", "", "")
			if tc.want == "" {
				if code != http.StatusOK {
					t.Fatalf("/readyz: %d %s", code, body)
				}
				return
			}
			var ready struct {
				Status string            `json:"status"`
				Checks map[string]string `json:"checks"`
			}
			if err := json.Unmarshal(body, &ready); err != nil {
				t.Fatalf("/readyz: %v: %s", err, body)
			}
			if code != http.StatusServiceUnavailable || ready.Status != "not ready" ||
				!strings.Contains(ready.Checks["outbox"], tc.want) || ready.Checks["nats"] == "ok" ||
				ready.Checks["ledger"] != "ok" || ready.Checks["server"] != "ok" {
				t.Fatalf("/readyz: %d %s, want 503 with the outbox saying %q", code, body, tc.want)
			}
		})
	}
}

// TestServeInProcessNATS: with its embedded NATS server, serve's own
// connections to it (the events relay, the micro service) go through a
// pipe in the process, not loopback TCP, while consumers and the
// services that call the micro service still connect over TCP.
func TestServeInProcessNATS(t *testing.T) {
	clearEnv(t)
	dir := t.TempDir()
	m, _, stderr := newTestMain()
	ctx := context.Background()
	if err := m.ParseFlags(ctx, []string{"serve", "--data", dir, "--listen", "127.0.0.1:0", "--nats-listen", "127.0.0.1:-1"}); err != nil {
		t.Fatal(err)
	}
	if err := m.Run(ctx); err != nil {
		t.Fatalf("Run: %v\n%s", err, stderr.String())
	}
	t.Cleanup(func() { _ = m.Close() })
	ns := m.server.nats
	want := []string{"quotaledger event relay", "quotaledger micro service"}
	testkit.CheckFor(t, testkit.Patience, poll, func() error {
		conns, err := ns.Conns()
		if err != nil {
			return err
		}
		for _, name := range want {
			i := slices.IndexFunc(conns, func(c events.Conn) bool { return c.Name == name })
			switch {
			case i < 0:
				return fmt.Errorf("no connection %q among %+v", name, conns)
			case !conns[i].InProcess:
				return fmt.Errorf("connection %q is over TCP, want in process: %+v", name, conns)
			}
		}
		return nil
	})
	// A consumer over TCP reads the bootstrap's events, which the relay
	// published in process.
	if msgs := waitForType(t, ns.ClientURL(), "identity.user.registered", 1, 10*time.Second); len(msgs) == 0 {
		t.Fatal("no event in the stream")
	}
	// A service over TCP calls the micro service.
	base := "http://" + m.server.addr.String()
	microCalls(t, base, ns.ClientURL(), readBootstrap(t, dir).Token)
	if err := m.Close(); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(stderr.String(), `"in_process":true`) {
		t.Fatalf("the log does not say the micro service is in process:\n%s", stderr.String())
	}
}

// microCalls registers a service through the HTTP API of the server at
// base (with the admin's token), then issues a commission over the NATS
// at natsURL and sees it pending over HTTP, and accepts it over NATS.
func microCalls(t *testing.T, base, natsURL, admin string) {
	t.Helper()
	code, body := call(t, http.MethodPost, base+"/account/v1.0/services", admin, `{"name":"compute","type":"compute","endpoints":[]}`)
	var svc struct {
		Token string `json:"token"`
	}
	if err := json.Unmarshal(body, &svc); code != http.StatusCreated || err != nil || svc.Token == "" {
		t.Fatalf("register a service: %d %s", code, body)
	}
	setQuota(t, base, admin, "h-micro", 2)
	nc, err := nats.Connect(natsURL)
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	c := client.NewNATS(nc, svc.Token, client.NATSOptions{Timeout: time.Minute})
	ctx := context.Background()
	src := "system"
	serial, err := c.IssueCommission(ctx, client.Commission{Provisions: []client.Provision{{Holder: "h-micro", Source: &src, Resource: "r1", Quantity: 2}}})
	if err != nil {
		t.Fatalf("issue over NATS: %v", err)
	}
	code, body = call(t, http.MethodGet, base+"/account/v1.0/commissions", svc.Token, "")
	if want := fmt.Sprintf("[%d]", serial); code != http.StatusOK || string(body) != want {
		t.Fatalf("pending over HTTP: %d %s, want %s", code, body, want)
	}
	if err := c.AcceptCommission(ctx, serial); err != nil {
		t.Fatalf("accept over NATS: %v", err)
	}
	_, err = c.IssueCommission(ctx, client.Commission{Provisions: []client.Provision{{Holder: "h-micro", Source: &src, Resource: "r1", Quantity: 1}}})
	var ql *client.QuotaLimit
	if !errors.As(err, &ql) || ql.Limit != 2 || ql.Usage != 2 {
		t.Fatalf("past the limit over NATS: %v", err)
	}
}

// TestServeMicroClose: serve with --nats-url, in process: once the micro
// service took a call, Close stops it and closes its connection: the
// external NATS server has no responder left and no connection of serve's.
func TestServeMicroClose(t *testing.T) {
	clearEnv(t)
	ns := startNATS(t, t.TempDir(), "")
	dir := t.TempDir()
	m, _, stderr := newTestMain()
	ctx := context.Background()
	if err := m.ParseFlags(ctx, []string{"serve", "--data", dir, "--listen", "127.0.0.1:0", "--nats-url", ns.ClientURL()}); err != nil {
		t.Fatal(err)
	}
	if err := m.Run(ctx); err != nil {
		t.Fatalf("Run: %v\n%s", err, stderr.String())
	}
	t.Cleanup(func() { _ = m.Close() })
	microCalls(t, "http://"+m.server.addr.String(), ns.ClientURL(), readBootstrap(t, dir).Token)
	if err := m.Close(); err != nil {
		t.Fatal(err)
	}
	nc, err := nats.Connect(ns.ClientURL())
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	// The server sees a connection go a little after the client closed it.
	testkit.CheckFor(t, testkit.Patience, poll, func() error {
		conns, err := ns.Conns()
		if err != nil {
			return err
		}
		for _, c := range conns {
			if strings.HasPrefix(c.Name, "quotaledger ") {
				return fmt.Errorf("after Close, serve's connection %q is still there", c.Name)
			}
		}
		if _, err := nc.Request(wire.NATSPending.Subject("", ""), nil, 10*time.Second); !errors.Is(err, nats.ErrNoResponders) {
			return fmt.Errorf("a request after Close: %v, want no responders", err)
		}
		return nil
	})
}

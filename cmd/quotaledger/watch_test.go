package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"runtime"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/quotaledger/quotaledger/events"
	"github.com/quotaledger/quotaledger/internal/testkit"
)

func TestParseWatchFlags(t *testing.T) {
	defaults := WatchCmd{NatsURL: "nats://127.0.0.1:4222"}
	for _, tc := range []struct {
		name string
		args []string
		env  map[string]string
		want func(c *WatchCmd)
		code int // of the *ExitError, when want is nil
	}{
		{name: "OK/defaults", args: []string{"watch"}, want: func(*WatchCmd) {}},
		{name: "OK/flags", args: []string{"watch", "--nats-url", "nats://n1:4222", "--subject", "quota.commission.>",
			"--subject", "identity.user.*", "--from-start", "--json", "--nats-token", "t"},
			want: func(c *WatchCmd) {
				*c = WatchCmd{NatsURL: "nats://n1:4222", Subject: []string{"quota.commission.>", "identity.user.*"},
					FromStart: true, JSON: true, NatsAuth: NatsAuth{NatsToken: "t"}}
			}},
		{name: "OK/since time", args: []string{"watch", "--since", "2026-11-23T15:04:05Z"},
			want: func(c *WatchCmd) { c.Since = "2026-11-23T15:04:05Z" }},
		{name: "OK/since duration", args: []string{"watch", "--since", "1h30m"},
			want: func(c *WatchCmd) { c.Since = "1h30m" }},
		{name: "OK/environment", args: []string{"watch"},
			env: map[string]string{"QUOTALEDGER_NATS_URL": "tls://n2:4222", "QUOTALEDGER_NATS_USER": "u",
				"QUOTALEDGER_NATS_PASSWORD": "p"},
			want: func(c *WatchCmd) {
				c.NatsURL, c.NatsAuth = "tls://n2:4222", NatsAuth{NatsUser: "u", NatsPassword: "p"}
			}},
		{name: "ErrUsage/from start and since", args: []string{"watch", "--from-start", "--since", "1h"}, code: 2},
		{name: "ErrUsage/since", args: []string{"watch", "--since", "yesterday"}, code: 2},
		{name: "ErrUsage/url", args: []string{"watch", "--nats-url", "http://n1:4222"}, code: 2},
		{name: "ErrUsage/subject", args: []string{"watch", "--subject", "a b"}, code: 2},
		{name: "ErrUsage/credentials", args: []string{"watch", "--nats-token", "t", "--nats-user", "u", "--nats-password", "p"}, code: 2},
		{name: "Help", args: []string{"watch", "--help"}, code: 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			clearEnv(t)
			for k, v := range tc.env {
				t.Setenv(k, v)
			}
			m, _, stderr := newTestMain()
			err := m.ParseFlags(context.Background(), tc.args)
			if tc.want == nil {
				var ee *ExitError
				if !errors.As(err, &ee) || ee.Code != tc.code {
					t.Fatalf("ParseFlags(%q) = %v, want exit code %d", tc.args, err, tc.code)
				}
				return
			}
			if err != nil {
				t.Fatalf("ParseFlags(%q): %v (stderr %q)", tc.args, err, stderr.String())
			}
			want := defaults
			tc.want(&want)
			if commandOf(m) != "watch" || !watchCmdEqual(m.CLI.Watch, want) {
				t.Fatalf("command %q, flags %+v\nwant %+v", commandOf(m), m.CLI.Watch, want)
			}
		})
	}
}

func watchCmdEqual(a, b WatchCmd) bool {
	return slices.Equal(a.Subject, b.Subject) && a.NatsURL == b.NatsURL && a.FromStart == b.FromStart &&
		a.Since == b.Since && a.JSON == b.JSON && a.NatsAuth == b.NatsAuth
}

func TestParseSince(t *testing.T) {
	now := time.Date(2026, 11, 23, 15, 0, 0, 0, time.UTC)
	for in, want := range map[string]time.Time{
		"2026-11-23T15:04:05Z":           time.Date(2026, 11, 23, 15, 4, 5, 0, time.UTC),
		"2026-11-23T15:04:05.5+02:00":    time.Date(2026, 11, 23, 13, 4, 5, 5e8, time.UTC),
		"90m":                            now.Add(-90 * time.Minute),
		"0s":                             now,
		"2026-11-23T15:04:05.123456789Z": time.Date(2026, 11, 23, 15, 4, 5, 123456789, time.UTC),
	} {
		got, err := parseSince(in, now)
		if err != nil || !got.Equal(want) {
			t.Errorf("parseSince(%q) = %v, %v; want %v", in, got, err, want)
		}
	}
	for _, in := range []string{"", "-1h", "2026-11-23", "yesterday"} {
		if _, err := parseSince(in, now); err == nil {
			t.Errorf("parseSince(%q) took it", in)
		}
	}
}

func TestFormatEvent(t *testing.T) {
	for _, tc := range []struct {
		name, subject, payload, want string
	}{
		{name: "OK/commission", subject: "quota.commission.cyclades.accepted",
			payload: `{"id":"db-12","type":"quotaledger.v1.commission.accepted","time":"2026-11-23T15:04:05.123456Z",
				"serial":12,"client":"cyclades","name":"create vm-1","reason":"",
				"holdings":[{"holder":"user:U","source":"project:P","resource":"cyclades.vm","quantity":1,"limit":2,"usage_min":1,"usage_max":1,"usage":1,"pending":0},
				{"holder":"project:P","source":null,"resource":"cyclades.vm","quantity":-1,"limit":5,"usage_min":0,"usage_max":1,"usage":1,"pending":1}]}`,
			want: `2026-11-23T15:04:05Z quotaledger.v1.commission.accepted serial=12 client=cyclades name="create vm-1" ` +
				`user:U/project:P/cyclades.vm +1 (limit 2, usage 1, pending 0) project:P/null/cyclades.vm -1 (limit 5, usage 1, pending 1)`},
		{name: "OK/rejected", subject: "quota.commission.cyclades.rejected",
			payload: `{"id":"db-13","type":"quotaledger.v1.commission.rejected","time":"2026-11-23T15:04:06+01:00","serial":13,"client":"cyclades","reason":"no room"}`,
			want:    `2026-11-23T14:04:06Z quotaledger.v1.commission.rejected serial=13 client=cyclades reason="no room"`},
		{name: "OK/quota set", subject: "quota.holding.changed",
			payload: `{"id":"db-3","type":"quotaledger.v1.holding.changed","time":"2026-11-23T15:04:05Z","holdings":[{"holder":"h0","source":"system","resource":"r1","quantity":0,"limit":10,"usage":0,"pending":0}]}`,
			want:    `2026-11-23T15:04:05Z quotaledger.v1.holding.changed h0/system/r1 (limit 10, usage 0, pending 0)`},
		{name: "OK/quota deleted", subject: "quota.holding.deleted",
			payload: `{"id":"db-4","type":"quotaledger.v1.holding.deleted","time":"2026-11-23T15:04:05Z","holdings":[{"holder":"h0","source":"system","resource":"r1","quantity":0,"limit":0}]}`,
			want:    `2026-11-23T15:04:05Z quotaledger.v1.holding.deleted h0/system/r1`},
		{name: "OK/identity", subject: "identity.user.registered",
			payload: `{"id":"db-1","type":"quotaledger.v1.identity.user.registered","time":"2026-11-23T15:04:05Z","data":{"uuid":"u1", "username":"a@b"}}`,
			want:    `2026-11-23T15:04:05Z quotaledger.v1.identity.user.registered data={"uuid":"u1","username":"a@b"}`},
		{name: "OK/not an event", subject: "quota.other", payload: "plain text\n", want: "quota.other plain text"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := formatEvent(tc.subject, []byte(tc.payload)); got != tc.want {
				t.Fatalf("formatEvent:\n got %s\nwant %s", got, tc.want)
			}
		})
	}
}

// watcher is `quotaledger watch` running in the process.
type watcher struct {
	stdout, stderr *syncBuffer
	cancel         context.CancelFunc
	code           chan int
}

func startWatch(t *testing.T, args ...string) *watcher {
	t.Helper()
	clearEnv(t)
	m, stdout, stderr := newTestMain()
	ctx, cancel := context.WithCancel(context.Background())
	w := &watcher{stdout: stdout, stderr: stderr, cancel: cancel, code: make(chan int, 1)}
	go func() { w.code <- m.Main(ctx, func() {}, append([]string{"watch"}, args...)) }()
	t.Cleanup(func() {
		if code := w.stop(); code != 0 {
			t.Errorf("watch exited %d: %s", code, stderr)
		}
	})
	return w
}

// stop interrupts watch and returns its exit code.
func (w *watcher) stop() int {
	w.cancel()
	select {
	case code := <-w.code:
		w.code <- code // for a second stop
		return code
	case <-time.After(time.Minute): // only a hang
		return -1
	}
}

// lines are watch's output lines so far.
func (w *watcher) lines() []string {
	var out []string
	for line := range strings.Lines(w.stdout.String()) {
		out = append(out, strings.TrimSuffix(line, "\n"))
	}
	return out
}

// jsonLines reads watch --json's lines as payloads.
func (w *watcher) jsonLines(t *testing.T) []events.Payload {
	t.Helper()
	var out []events.Payload
	for _, line := range w.lines() {
		var p events.Payload
		if err := json.Unmarshal([]byte(line), &p); err != nil {
			t.Fatalf("watch --json printed %q: %v", line, err)
		}
		out = append(out, p)
	}
	return out
}

// TestWatch follows the stream of a running serve with watch, in the
// process: --from-start --json, the line for people with --subject, and
// --since.
func TestWatch(t *testing.T) {
	if runtime.GOOS == "windows" {
		t.Skip("SIGTERM")
	}
	dir := t.TempDir()
	p := startServe(t, nil, "--data", dir)
	b := readBootstrap(t, dir)

	all := startWatch(t, "--nats-url", p.nats, "--from-start", "--json")
	setQuota(t, p.base, b.Token, "h0", 10)
	var got []events.Payload
	testkit.CheckFor(t, 10*time.Second, poll, func() error {
		got = all.jsonLines(t)
		for _, e := range got {
			if e.Type == events.TypePrefix+"holding.changed" {
				return nil
			}
		}
		return fmt.Errorf("no holding.changed from watch in 10s: %s", all.stdout)
	})
	if got[0].Type != events.TypePrefix+"identity.user.registered" {
		t.Fatalf("--from-start did not start with the bootstrap's admin: %+v", got[0])
	}
	ids := map[string]bool{}
	for _, e := range got {
		if e.ID == "" || ids[e.ID] {
			t.Fatalf("event id %q empty or twice", e.ID)
		}
		ids[e.ID] = true
		if _, err := time.Parse(time.RFC3339Nano, e.Time); err != nil {
			t.Fatalf("event time %q: %v", e.Time, err)
		}
	}
	e := got[len(got)-1]
	if e.Type != events.TypePrefix+"holding.changed" || len(e.Holdings) != 1 {
		t.Fatalf("last event %+v", e)
	}
	if h := e.Holdings[0]; h.Holder != "h0" || h.Source == nil || *h.Source != "system" || h.Resource != "r1" ||
		h.Limit != 10 || h.Quantity != 0 || h.Usage != 0 || h.Pending != 0 {
		t.Fatalf("holding %+v", h)
	}

	// For people, one subject.
	people := startWatch(t, "--nats-url", p.nats, "--from-start", "--subject", "quota.holding.>")
	testkit.CheckFor(t, 10*time.Second, poll, func() error {
		if lines := people.lines(); len(lines) != 1 {
			return fmt.Errorf("watch --subject quota.holding.> printed %q, want one line", lines)
		}
		return nil
	})
	line := people.lines()[0]
	if !strings.HasSuffix(line, " quotaledger.v1.holding.changed h0/system/r1 (limit 10, usage 0, pending 0)") {
		t.Fatalf("watch printed %q", line)
	}
	if _, err := time.Parse(time.RFC3339, strings.Fields(line)[0]); err != nil {
		t.Fatalf("watch's line %q does not start with the time: %v", line, err)
	}

	// --since: only what was published from then on.
	since := time.Now().UTC().Format(time.RFC3339Nano)
	time.Sleep(10 * time.Millisecond)
	setQuota(t, p.base, b.Token, "h1", 11)
	later := startWatch(t, "--nats-url", p.nats, "--since", since, "--json")
	testkit.CheckFor(t, 10*time.Second, poll, func() error {
		if n := len(later.lines()); n != 1 {
			return fmt.Errorf("watch --since printed %d lines, want 1: %s", n, later.stdout)
		}
		return nil
	})
	if e := later.jsonLines(t)[0]; len(e.Holdings) != 1 || e.Holdings[0].Holder != "h1" {
		t.Fatalf("watch --since printed %+v", e)
	}
	for _, w := range []*watcher{all, people, later} {
		if code := w.stop(); code != 0 {
			t.Fatalf("watch exited %d after an interrupt: %s", code, w.stderr)
		}
	}
	p.stop()
}

// TestWatchWaits: watch started before there is a server waits for it,
// and an interrupt ends it cleanly.
func TestWatchWaits(t *testing.T) {
	w := startWatch(t, "--nats-url", "nats://"+testkit.FreeAddr(t))
	testkit.CheckFor(t, 10*time.Second, poll, func() error {
		if !strings.Contains(w.stderr.String(), "waiting for the stream "+events.StreamName) {
			return fmt.Errorf("watch says %q", w.stderr)
		}
		return nil
	})
	if code := w.stop(); code != 0 || w.stdout.String() != "" {
		t.Fatalf("watch: exit %d, printed %q", code, w.stdout)
	}
}

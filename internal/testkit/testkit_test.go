package testkit_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/rs/zerolog"

	"github.com/quotaledger/quotaledger/events"
	"github.com/quotaledger/quotaledger/failure"
	"github.com/quotaledger/quotaledger/holdings"
	"github.com/quotaledger/quotaledger/internal/testkit"
)

func TestClock(t *testing.T) {
	start := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	c := testkit.NewClock(start)
	if got := c.Now(); !got.Equal(start) {
		t.Fatalf("Now = %v, want %v", got, start)
	}
	if got := c.Advance(90 * time.Second); !got.Equal(start.Add(90*time.Second)) || !c.Now().Equal(got) {
		t.Fatalf("Advance returned %v, Now %v, want %v", got, c.Now(), start.Add(90*time.Second))
	}
	later := start.Add(time.Hour)
	c.Set(later)
	if !c.Now().Equal(later) {
		t.Fatalf("after Set: %v, want %v", c.Now(), later)
	}
	// Safe for concurrent use (the race detector watches).
	var wg sync.WaitGroup
	for range 4 {
		wg.Go(func() {
			for range 100 {
				c.Advance(time.Millisecond)
				_ = c.Now()
			}
		})
	}
	wg.Wait()
	if want := later.Add(400 * time.Millisecond); !c.Now().Equal(want) {
		t.Fatalf("after 400 advances of 1ms: %v, want %v", c.Now(), want)
	}
}

func TestCheckFor(t *testing.T) {
	t.Run("OK", func(t *testing.T) {
		calls := 0
		testkit.CheckFor(t, testkit.Patience, time.Millisecond, func() error {
			if calls++; calls < 3 {
				return errors.New("not yet")
			}
			return nil
		})
		if calls != 3 {
			t.Fatalf("fn called %d times, want 3 (until it returned nil)", calls)
		}
	})
	t.Run("ErrTimeout", func(t *testing.T) {
		var r testkit.Recorder
		calls := 0
		testkit.CheckFor(&r, 20*time.Millisecond, time.Millisecond, func() error {
			calls++
			return fmt.Errorf("try %d", calls)
		})
		if len(r.Fatals()) != 1 || !strings.Contains(r.Fatals()[0], fmt.Sprintf("try %d", calls)) {
			t.Fatalf("fatal %q after %d calls, want one naming the last error", r.Fatals(), calls)
		}
	})
	t.Run("ErrFailed", func(t *testing.T) {
		r := testkit.Recorder{Failing: true}
		calls := 0
		testkit.CheckFor(&r, 5*time.Second, time.Millisecond, func() error {
			calls++
			return errors.New("never")
		})
		if len(r.Fatals()) != 1 || calls != 1 {
			t.Fatalf("a failed test: fatal %q after %d calls, want one at once", r.Fatals(), calls)
		}
	})
}

func TestCheckErr(t *testing.T) {
	errSentinel := failure.New(failure.Conflict, "in use")
	errTwin := failure.New(failure.Conflict, "in use") // equal fields, another sentinel
	k := holdings.Key{Holder: "user:1", Source: holdings.NullSource, Resource: "vm"}
	noCap := func(usage int64) error {
		return &holdings.NoCapacityError{Provision: holdings.Provision{Key: k, Quantity: 2}, Limit: 3, Usage: usage}
	}
	for _, tc := range []struct {
		name      string
		err, want error
		ok        bool
	}{
		{"OK/nil", nil, nil, true},
		{"OK/sentinel", errSentinel, errSentinel, true},
		{"OK/wrapped sentinel", fmt.Errorf("issue: %w", errSentinel), errSentinel, true},
		{"OK/instance", failure.Mark(errSentinel, "holding h1 in use"), errSentinel, true},
		{"OK/data", fmt.Errorf("issue: %w", noCap(2)), noCap(2), true},
		{"ErrNotNil", errSentinel, nil, false},
		{"ErrNil", nil, errSentinel, false},
		{"ErrOtherSentinel", errTwin, errSentinel, false},
		{"ErrOtherData", noCap(1), noCap(2), false},
		{"ErrOtherType", &holdings.NoQuantityError{Limit: 3, Usage: 2}, noCap(2), false},
		{"ErrNilData", nil, noCap(2), false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var r testkit.Recorder
			testkit.CheckErr(&r, tc.err, tc.want)
			if ok := len(r.Fatals()) == 0; ok != tc.ok {
				t.Fatalf("CheckErr(%v, %v): fatal %q, want ok %v", tc.err, tc.want, r.Fatals(), tc.ok)
			}
		})
	}
}

func TestFreeAddr(t *testing.T) {
	addr := testkit.FreeAddr(t)
	if !strings.HasPrefix(addr, "127.0.0.1:") {
		t.Fatalf("FreeAddr = %q, want a loopback address", addr)
	}
	if c, err := net.DialTimeout("tcp", addr, 5*time.Second); err == nil {
		c.Close()
		t.Fatalf("something listens on %s", addr)
	}
}

func TestReadStream(t *testing.T) {
	srv, err := events.StartServer(events.ServerOptions{Dir: t.TempDir(), Listen: "127.0.0.1:-1", Logger: zerolog.Nop()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(srv.Shutdown)
	if msgs := testkit.ReadStream(t, srv.ClientURL(), "S"); msgs != nil {
		t.Fatalf("no stream yet: %v", msgs)
	}
	nc, err := nats.Connect(srv.ClientURL())
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), testkit.Patience)
	defer cancel()
	if _, err := js.CreateStream(ctx, jetstream.StreamConfig{Name: "S", Subjects: []string{"s.>"}}); err != nil {
		t.Fatal(err)
	}
	if msgs := testkit.ReadStream(t, srv.ClientURL(), "S"); msgs != nil {
		t.Fatalf("an empty stream: %v", msgs)
	}
	const n = 2500 // more than one pull
	for i := 1; i <= n; i++ {
		if _, err := js.Publish(ctx, fmt.Sprintf("s.%d", i%3), []byte(fmt.Sprint(i)), jetstream.WithMsgID(fmt.Sprint("id-", i))); err != nil {
			t.Fatal(err)
		}
	}
	msgs := testkit.ReadStream(t, srv.ClientURL(), "S")
	if len(msgs) != n {
		t.Fatalf("read %d messages, want %d", len(msgs), n)
	}
	for i, m := range msgs {
		seq := i + 1
		if m.Seq != uint64(seq) || m.Subject != fmt.Sprintf("s.%d", seq%3) || m.MsgID != fmt.Sprint("id-", seq) || string(m.Data) != fmt.Sprint(seq) {
			t.Fatalf("message %d: %+v", seq, m)
		}
	}
}

// TestReadStreamWithinRestart: every server of a NATS cluster restarts
// (an operator's power cut) while a replicated stream holds messages. The
// servers drop the JetStream API's requests about the stream until its Raft
// group elects a leader again, so a read sent at once gets no answer; read
// again, each attempt's requests bounded by ReadStreamWithin's within, the
// stream is read whole once it leads, well within the patience that one
// request waiting for ever (for Patience, as ReadStream's) would use up.
func TestReadStreamWithinRestart(t *testing.T) {
	const n = 3
	routes, clients, dirs := make([]string, n), make([]string, n), make([]string, n)
	for i := range n {
		routes[i], clients[i], dirs[i] = testkit.FreeAddr(t), testkit.FreeAddr(t), t.TempDir()
	}
	start := func() []*events.Server {
		srvs, errs := make([]*events.Server, n), make([]error, n)
		var wg sync.WaitGroup
		for i := range n {
			wg.Add(1)
			go func() {
				defer wg.Done()
				var others []string
				for j, r := range routes {
					if j != i {
						others = append(others, r)
					}
				}
				srvs[i], errs[i] = events.StartServer(events.ServerOptions{Dir: dirs[i], Listen: clients[i], SyncAlways: true,
					Logger: zerolog.Nop(), Cluster: events.ClusterOptions{Name: "restart", ServerName: fmt.Sprintf("n%d", i+1),
						Listen: routes[i], Routes: others}})
			}()
		}
		wg.Wait()
		for i, s := range srvs {
			if errs[i] != nil {
				t.Fatal(errs[i])
			}
			t.Cleanup(s.Shutdown)
		}
		return srvs
	}
	srvs := start()
	nc, err := nats.Connect(srvs[0].ClientURL())
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	// The cluster's JetStream answers once its servers elected a meta
	// leader: each request on a deadline of its own, as ReadStreamWithin's.
	testkit.CheckFor(t, testkit.Patience, 100*time.Millisecond, func() error {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_, err := js.CreateOrUpdateStream(ctx, jetstream.StreamConfig{Name: "S", Subjects: []string{"s.>"}, Replicas: n})
		return err
	})
	const msgs = 100
	for i := 1; i <= msgs; i++ {
		ctx, cancel := context.WithTimeout(context.Background(), testkit.Patience)
		_, err := js.Publish(ctx, fmt.Sprintf("s.%d", i), []byte(fmt.Sprint(i)))
		cancel()
		if err != nil {
			t.Fatal(err)
		}
	}
	nc.Close()
	for _, s := range srvs {
		s.Shutdown()
	}

	srvs = start()
	var got []testkit.StreamMsg
	attempts := 0
	testkit.CheckFor(t, testkit.Patience, 100*time.Millisecond, func() error {
		attempts++
		rec := new(testkit.Recorder)
		got = testkit.ReadStreamWithin(rec, srvs[0].ClientURL(), "S", 5*time.Second)
		rec.End()
		if f := append(rec.Fatals(), rec.Errors()...); len(f) > 0 {
			return errors.New(f[0])
		}
		return nil
	})
	if len(got) != msgs {
		t.Fatalf("read %d messages after the restart, want %d", len(got), msgs)
	}
	for i, m := range got {
		if m.Seq != uint64(i+1) || string(m.Data) != fmt.Sprint(i+1) {
			t.Fatalf("message %d: %+v", i+1, m)
		}
	}
	t.Logf("read whole after %d attempts", attempts)
}

func TestFieldDiffs(t *testing.T) {
	type inner struct {
		N    int
		When time.Time // unexported fields: compared whole
	}
	type rec struct {
		Name  string
		Tags  []string
		Raw   []byte
		Inner *inner
		ByKey map[string]inner
	}
	at := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	base := func() rec {
		return rec{Name: "a", Tags: []string{"x", "y"}, Raw: []byte{1, 2}, Inner: &inner{N: 1, When: at},
			ByKey: map[string]inner{"k": {N: 2, When: at}}}
	}
	for _, tc := range []struct {
		name   string
		change func(*rec)
		want   []string // substrings of the one diff, nil for none
	}{
		{"OK", func(*rec) {}, nil},
		{"Field", func(r *rec) { r.Name = "b" }, []string{".Name:", `"b"`, `"a"`}},
		{"Element", func(r *rec) { r.Tags[1] = "z" }, []string{".Tags[1]:"}},
		{"Length", func(r *rec) { r.Tags = r.Tags[:1] }, []string{".Tags:", "1 elements", "want 2"}},
		{"NilSlice", func(r *rec) { r.Tags = nil }, []string{".Tags:", "(nil true)"}},
		{"Bytes", func(r *rec) { r.Raw = []byte{1, 3} }, []string{".Raw:"}},
		{"Pointer", func(r *rec) { r.Inner.N = 9 }, []string{".Inner.N:", "9"}},
		{"Time", func(r *rec) { r.Inner.When = at.Add(time.Second) }, []string{".Inner.When:"}},
		{"MapValue", func(r *rec) { r.ByKey["k"] = inner{N: 3, When: at} }, []string{".ByKey[k].N:"}},
		{"MapKey", func(r *rec) { r.ByKey = map[string]inner{"j": {N: 2, When: at}} }, []string{".ByKey:"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, want := base(), base()
			tc.change(&got)
			diffs := testkit.FieldDiffs(got, want)
			if tc.want == nil {
				if len(diffs) != 0 {
					t.Fatalf("equal values: %q", diffs)
				}
				return
			}
			if len(diffs) != 1 {
				t.Fatalf("%q, want one diff with %q", diffs, tc.want)
			}
			for _, w := range tc.want {
				if !strings.Contains(diffs[0], w) {
					t.Fatalf("%q does not say %q", diffs[0], w)
				}
			}
		})
	}
	if d := testkit.FieldDiffs(1, "1"); len(d) != 1 || !strings.Contains(d[0], "type int, want string") {
		t.Fatalf("values of two types: %q", d)
	}
}

func TestFirstLineDiff(t *testing.T) {
	for _, tc := range []struct {
		got, want string
		n         int
		g, w      string
	}{
		{"a\nb\n", "a\nb\n", 0, "", ""},
		{"a\nc\n", "a\nb\n", 2, "c", "b"},
		{"a\n", "a\nb\n", 2, "", "b"},
		{"a\nb\nc", "a\nb", 3, "c", ""},
	} {
		n, g, w := testkit.FirstLineDiff(tc.got, tc.want)
		if n != tc.n || g != tc.g || w != tc.w {
			t.Errorf("FirstLineDiff(%q, %q) = %d %q %q, want %d %q %q", tc.got, tc.want, n, g, w, tc.n, tc.g, tc.w)
		}
	}
}

func TestHex(t *testing.T) {
	b := make([]byte, 70) // more than two lines of 32
	for i := range b {
		b[i] = byte(i * 7)
	}
	path := filepath.Join(t.TempDir(), "sub", "x.hex")
	testkit.WriteHex(t, path, "x", "go test ./x -update", b)
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSuffix(string(raw), "\n"), "\n")
	if len(lines) != 4 || lines[0] != "# x: 70 bytes, written by go test ./x -update" || len(lines[1]) != 64 || len(lines[3]) != 12 {
		t.Fatalf("the golden file:\n%s", raw)
	}
	if got := testkit.ReadHex(t, path, "go test ./x -update"); !bytes.Equal(got, b) {
		t.Fatalf("read back %x, want %x", got, b)
	}
	var r testkit.Recorder
	testkit.ReadHex(&r, filepath.Join(t.TempDir(), "none.hex"), "go test ./x -update")
	if f := r.Fatals(); len(f) != 1 || !strings.Contains(f[0], "(a new golden file: go test ./x -update, and commit it)") {
		t.Fatalf("a missing file: %q, want the command that writes it", f)
	}
}

func TestItems(t *testing.T) {
	if got := testkit.Items([]string{"a", "b"}, 5, nil); len(got) != 2 || got[0] != "a" || got[1] != "b" {
		t.Fatalf("Items = %q, want [a b]", got)
	}
	defer func() {
		if r := recover(); r == nil || !strings.Contains(fmt.Sprint(r), "refused") {
			t.Fatalf("Items of a failed list: recovered %v, want a panic with the error", r)
		}
	}()
	testkit.Items([]string{"a"}, 1, errors.New("refused"))
	t.Fatal("Items of a failed list returned")
}

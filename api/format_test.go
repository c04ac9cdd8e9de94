package api

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/quotaledger/quotaledger/events"
	"github.com/quotaledger/quotaledger/events/catalog"
)

// TestFeedbackFormat pins the record a user's feedback leaves in the
// ledger's Pebble through the API (identity.Store.SendFeedback writes it),
// and the event it publishes: the key is
// 'F', the time (unix ns, big-endian), the user's uuid and 4 random bytes;
// the value and the event's data are the same JSON object, held against
// testdata/format/feedback.json; the event as consumers get it, against
// testdata/format/feedback-event.json. The time, the user's uuid, the
// database id and the event's sequence and time differ from run to run and
// are written there as placeholders. Regenerate with
//
//	go test ./api -run TestFeedbackFormat -update
func TestFeedbackFormat(t *testing.T) {
	e := newEnv(t)
	user := e.uuid()
	before := time.Now().UTC()
	st, _, raw := e.send("POST", "/account/v1.0/feedback", map[string]string{"X-Auth-Token": e.user},
		[]byte("feedback_msg=the+VM+%22web-1%22+will+not+boot&feedback_data=%7B%22vm%22%3A%22web-1%22%7D"))
	if st != 200 {
		t.Fatalf("feedback: %d %s", st, raw)
	}
	after := time.Now().UTC()

	var key, value []byte
	n := 0
	err := e.l.ScanForeign([]byte{'F'} /* identity's feedback key space */, func(k, v []byte) error {
		key, value = bytes.Clone(k), bytes.Clone(v)
		n++
		return nil
	})
	if err != nil || n != 1 {
		t.Fatalf("%d feedback records, want 1: %v", n, err)
	}
	// The key: 'F' time user random.
	if len(key) != 1+8+len(user)+4 || key[0] != 'F' || string(key[9:9+len(user)]) != user {
		t.Fatalf("feedback key %q: want 'F', 8 bytes of time, the uuid %s and 4 bytes", key, user)
	}
	at := time.Unix(0, int64(binary.BigEndian.Uint64(key[1:9]))).UTC()
	if at.Before(before) || at.After(after) {
		t.Errorf("feedback key time %s is not the time of the call (%s to %s)", at, before, after)
	}
	// The value: the golden JSON, with the key's time in it.
	var fields map[string]any
	if err := json.Unmarshal(value, &fields); err != nil {
		t.Fatalf("feedback value %s: %v", value, err)
	}
	if fields["time"] != at.Format(time.RFC3339Nano) {
		t.Errorf("feedback time %v, the key says %s", fields["time"], at.Format(time.RFC3339Nano))
	}
	placeholders := strings.NewReplacer(user, "<user>", `"time":"`+at.Format(time.RFC3339Nano)+`"`, `"time":"<time>"`)
	checkFormatGolden(t, "feedback.json", placeholders.Replace(string(value)))

	// The event: its data is the stored value.
	evs, err := e.l.Outbox(0, 10000)
	if err != nil || len(evs) == 0 {
		t.Fatalf("outbox: %d events, %v", len(evs), err)
	}
	ev := evs[len(evs)-1]
	if ev.Type != catalog.FeedbackType || !bytes.Equal(ev.Data, value) {
		t.Fatalf("last event %s %s, want %s with the stored value %s", ev.Type, ev.Data, catalog.FeedbackType, value)
	}
	subject, msgID, payload := events.Render(e.l.ID(), ev)
	// The envelope's id and time come first, then the data.
	p := strings.Replace(string(payload), `"id":"`+msgID+`"`, `"id":"<db>-<seq>"`, 1)
	p = strings.Replace(p, `"time":"`+ev.Time.UTC().Format(time.RFC3339Nano)+`"`, `"time":"<event-time>"`, 1)
	checkFormatGolden(t, "feedback-event.json", subject+" "+placeholders.Replace(p))
}

// checkFormatGolden compares got with the file name of testdata/format, or
// writes it there with -update.
func checkFormatGolden(t *testing.T, name, got string) {
	t.Helper()
	path := filepath.Join("testdata", "format", name)
	if *update {
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, []byte(got+"\n"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (go test ./api -run TestFeedbackFormat -update, and commit it)", err)
	}
	if got+"\n" != string(want) {
		t.Errorf("%s changed: stored feedback and its consumers read\n%s\ngot\n%s", path, want, got)
	}
}

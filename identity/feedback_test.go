package identity

import (
	"context"
	"encoding/json"
	"strings"
	"testing"

	"github.com/quotaledger/quotaledger/events/catalog"
	"github.com/quotaledger/quotaledger/failure"
)

func TestSendFeedback(t *testing.T) {
	ctx := context.Background()
	f := newProjectFixture(t)
	u := f.user()
	stored := func() []catalog.Feedback {
		t.Helper()
		var out []catalog.Feedback
		if err := f.l.ScanForeign([]byte{prefixFeedback}, func(k, v []byte) error {
			var fb catalog.Feedback
			if err := json.Unmarshal(v, &fb); err != nil {
				return err
			}
			out = append(out, fb)
			return nil
		}); err != nil {
			t.Fatal(err)
		}
		return out
	}
	for _, tc := range []struct {
		name, user, msg, data string
		err                   failure.Code
	}{
		{"ErrInvalidBlank", u, " \t\n", "x", failure.Invalid},
		{"ErrInvalidUTF8Message", u, "hi\xff", "", failure.Invalid},
		{"ErrInvalidUTF8Data", u, "hi", "\xfe", failure.Invalid},
		{"ErrInvalidLongMessage", u, strings.Repeat("m", MaxFeedback+1), "", failure.Invalid},
		{"ErrInvalidLongData", u, "hi", strings.Repeat("d", MaxFeedback+1), failure.Invalid},
		{"ErrNotFound", "no-such-user", "hi", "", failure.NotFound},
		{"OK", u, "it works!", `{"vm":1}`, ""},
		{"OKLongest", u, strings.Repeat("m", MaxFeedback), strings.Repeat("d", MaxFeedback), ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			before := len(stored())
			err := f.s.SendFeedback(ctx, tc.user, tc.msg, tc.data)
			wantErr(t, "send feedback", err, tc.err)
			if err != nil && len(stored()) != before {
				t.Fatal("refused feedback was stored")
			}
		})
	}
	got := stored()
	if len(got) != 2 {
		t.Fatalf("stored feedback: %d, want 2", len(got))
	}
	evs := f.events(catalog.FeedbackType)
	if len(evs) != 2 {
		t.Fatalf("feedback events: %v", evs)
	}
	first := got[0]
	if got[1].Message == "it works!" {
		first = got[1]
	}
	if first.User != u || first.Username != "user1@example.org" || first.Message != "it works!" ||
		first.Data != `{"vm":1}` || first.Time == "" {
		t.Fatalf("stored feedback %+v", first)
	}
	ev := evs[0]
	if ev["user"] != u || ev["username"] != "user1@example.org" || ev["message"] != "it works!" ||
		ev["data"] != `{"vm":1}` || ev["time"] == nil {
		t.Fatalf("feedback event %v", ev)
	}
}

package main

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"
	"unicode"
	"unicode/utf8"
)

// FuzzWatchPayload decodes arbitrary payloads as watch does (issue 17):
// it never panics; a line for people is one line of valid UTF-8 with no
// control character, whatever the payload holds (a newline in a holder's
// name, a raw payload, bytes that are not UTF-8); a line of --json is one
// line holding one valid JSON value, the payload itself when it is JSON.
func FuzzWatchPayload(f *testing.F) {
	for _, s := range []string{
		`{"id":"db-12","type":"quotaledger.v1.commission.accepted","time":"2026-11-23T15:04:05.123456Z","serial":12,"client":"cyclades","name":"create vm-1","reason":"","holdings":[{"holder":"user:U","source":"project:P","resource":"cyclades.vm","quantity":1,"limit":2,"usage":1,"pending":0},{"holder":"project:P","source":null,"resource":"cyclades.vm","quantity":-1,"limit":5,"usage":1,"pending":1}]}`,
		`{"id":"db-4","type":"quotaledger.v1.holding.deleted","time":"2026-11-23T15:04:05Z","holdings":[{"holder":"h0","source":"system","resource":"r1"}]}`,
		`{"id":"db-1","type":"quotaledger.v1.identity.user.registered","time":"2026-11-23T15:04:05Z","data":{"uuid":"u1", "username":"a@b"}}`,
		`{"type":"quotaledger.v1.holding.changed","time":"x","holdings":[{"holder":"h\n2026-01-01T00:00:00Z forged","resource":"r\u001b[2J"}]}`,
		"{\"type\":\"t\",\"client\":\"c\xff\",\"data\":{\n\"a\" : [1,\n2]}}",
		"{\n  \"type\": \"quotaledger.v1.holding.changed\",\n  \"holdings\": []\n}\n",
		"plain text\nsecond line\r\n",
		"\xff\xfe",
		"",
		"  {\"type\":\"t\"}  ",
		"1 2",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		line := formatEvent("quota.holding.changed", data)
		if !utf8.ValidString(line) {
			t.Fatalf("not UTF-8: %q", line)
		}
		if i := strings.IndexFunc(line, func(r rune) bool { return r != ' ' && !unicode.IsPrint(r) }); i >= 0 {
			t.Fatalf("a character that is not printable at %d: %q", i, line)
		}
		j := jsonLine(data)
		if bytes.ContainsAny(j, "\r\n") || !json.Valid(j) {
			t.Fatalf("--json line %q of %q", j, data)
		}
		if json.Valid(data) && utf8.Valid(data) {
			var a, b any
			if json.Unmarshal(data, &a) != nil || json.Unmarshal(j, &b) != nil {
				t.Fatalf("--json of a JSON payload: %q", j)
			}
			if x, y := mustJSON(t, a), mustJSON(t, b); x != y {
				t.Fatalf("--json changed the payload: %s, want %s", y, x)
			}
		}
	})
}

func mustJSON(t *testing.T, v any) string {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

package main

import (
	"strings"
	"testing"
	"time"

	"github.com/rs/zerolog"
)

// TestLogWriter: lines wait in the buffer, whole and in order, until a
// flush (the periodic one, a full buffer, Close); after Close they go
// straight through.
func TestLogWriter(t *testing.T) {
	var out syncBuffer
	lw := newLogWriter(&out, time.Hour) // no periodic flush within the test
	for _, l := range []string{"a\n", "b\n"} {
		if n, err := lw.Write([]byte(l)); n != len(l) || err != nil {
			t.Fatalf("Write(%q) = %d, %v", l, n, err)
		}
	}
	if got := out.String(); got != "" {
		t.Fatalf("written before a flush: %q", got)
	}
	if err := lw.Flush(); err != nil {
		t.Fatal(err)
	}
	if got := out.String(); got != "a\nb\n" {
		t.Fatalf("after Flush: %q", got)
	}
	// A line that does not fit writes out the buffer first; one as large as
	// the buffer goes out at once, after what was buffered.
	big := strings.Repeat("x", logBufferSize-1) + "\n"
	_, _ = lw.Write([]byte("c\n"))
	_, _ = lw.Write([]byte(big))
	if got := out.String(); got != "a\nb\nc\n"+big {
		t.Fatalf("after a large line: %d bytes, want %d", len(got), len("a\nb\nc\n"+big))
	}
	_, _ = lw.Write([]byte("d\n"))
	if err := lw.Close(); err != nil {
		t.Fatal(err)
	}
	if got := out.String(); !strings.HasSuffix(got, big+"d\n") {
		t.Fatalf("Close did not write out the buffer: ...%q", got[max(0, len(got)-10):])
	}
	_, _ = lw.Write([]byte("e\n"))
	if got := out.String(); !strings.HasSuffix(got, "d\ne\n") {
		t.Fatalf("a write after Close is not written at once: ...%q", got[max(0, len(got)-10):])
	}
	if err := lw.Close(); err != nil { // again: nothing
		t.Fatal(err)
	}
}

// TestLogWriterPeriodicFlush: a buffered line is written out by the
// periodic flush, without any further write.
func TestLogWriterPeriodicFlush(t *testing.T) {
	var out syncBuffer
	lw := newLogWriter(&out, time.Millisecond)
	defer lw.Close()
	_, _ = lw.Write([]byte("a\n"))
	deadline := time.Now().Add(30 * time.Second) // only to turn a hang into a failure
	for out.String() != "a\n" {
		if time.Now().After(deadline) {
			t.Fatalf("the periodic flush did not write the line out: %q", out.String())
		}
		time.Sleep(time.Millisecond)
	}
}

// TestLogWriterUrgent: through serve's logger, an info line waits in the
// buffer, an error line (or a fatal one, written just before os.Exit) is
// written out at once with what waited before it, in both formats.
func TestLogWriterUrgent(t *testing.T) {
	for _, format := range []string{"json", "console"} {
		var out syncBuffer
		lw := newLogWriter(&out, time.Hour)
		log, err := newLogger(lw, "info", format)
		if err != nil {
			t.Fatal(err)
		}
		log.Info().Msg("first")
		if got := out.String(); got != "" {
			t.Fatalf("%s: an info line was written at once: %q", format, got)
		}
		log.WithLevel(zerolog.FatalLevel).Msg("fatal")
		if got := out.String(); !strings.Contains(got, "first") || !strings.Contains(got, "fatal") ||
			strings.Index(got, "first") > strings.Index(got, "fatal") {
			t.Fatalf("%s: after a fatal line: %q", format, got)
		}
		log.Warn().Msg("warned")
		if strings.Contains(out.String(), "warned") {
			t.Fatalf("%s: a warning was written at once", format)
		}
		log.Error().Msg("failed")
		if got := out.String(); !strings.Contains(got, "warned") || !strings.Contains(got, "failed") {
			t.Fatalf("%s: after an error line: %q", format, got)
		}
		_ = lw.Close()
	}
}

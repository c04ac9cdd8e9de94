package main

import (
	"strings"
	"testing"
	"time"
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

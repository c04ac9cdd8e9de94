package ledger

import (
	"errors"
	"strings"
	"testing"
	"time"
)

// TestOptionsValidate: Open refuses options that cannot work, with the
// option named, and opens with those at their bounds.
func TestOptionsValidate(t *testing.T) {
	for _, tc := range []struct {
		name   string
		adjust func(*Options)
		msg    string // "" to open
	}{
		{"OK/DefaultTTL-at-MaxTTL", func(o *Options) { o.DefaultTTL = MaxTTL }, ""},
		{"OK/MaxBatch-one", func(o *Options) { o.MaxBatch = 1 }, ""},
		{"OK/PipelineDepth-deepest", func(o *Options) { o.PipelineDepth = 3 }, ""},
		{"ErrInvalid/PipelineDepth-too-deep", func(o *Options) { o.PipelineDepth = 4 }, "Options.PipelineDepth must be within 1..3, not 4"},
		{"ErrInvalid/PipelineDepth-negative", func(o *Options) { o.PipelineDepth = -1 }, "Options.PipelineDepth must be within 1..3, not -1"},
		{"OK/JournalMemTableSize-least", func(o *Options) { o.JournalMemTableSize = 2 << 20 }, ""},
		{"ErrInvalid/JournalMemTableSize-too-small", func(o *Options) { o.JournalMemTableSize = 2<<20 - 1 }, "Options.JournalMemTableSize must be at least 2097152 bytes"},
		{"ErrInvalid/no-Dir", func(o *Options) { o.Dir = "" }, "Options.Dir is required"},
		{"ErrInvalid/MaxBatch-negative", func(o *Options) { o.MaxBatch = -1 }, "Options.MaxBatch must be at least 1"},
		{"ErrInvalid/IdempotencyRetention-negative", func(o *Options) { o.IdempotencyRetention = -time.Second }, "Options.IdempotencyRetention must not be negative"},
		{"ErrInvalid/DefaultTTL-negative", func(o *Options) { o.DefaultTTL = -time.Second }, "Options.DefaultTTL must not be negative"},
		{"ErrInvalid/DefaultTTL-over-MaxTTL", func(o *Options) { o.DefaultTTL = MaxTTL + time.Second }, "Options.DefaultTTL must be at most 87840h0m0s"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			opts := memOptions()
			tc.adjust(&opts)
			l, err := Open(opts)
			if tc.msg == "" {
				if err != nil {
					t.Fatalf("open: %v", err)
				}
				if err := l.Close(); err != nil {
					t.Fatal(err)
				}
				return
			}
			if err == nil {
				_ = l.Close()
				t.Fatalf("open: no error, want %q", tc.msg)
			}
			if !strings.Contains(err.Error(), tc.msg) {
				t.Fatalf("open: %v, want %q", err, tc.msg)
			}
		})
	}
}

// TestJournalMemTableSize: the journal's memtable (and WAL file) is a
// hundredth of the volume, between 2 MiB and MemTableSize, unless set.
func TestJournalMemTableSize(t *testing.T) {
	for _, tc := range []struct {
		name          string
		set, memtable uint64
		volume        uint64
		want          uint64
	}{
		{"unknown volume", 0, 64 << 20, 0, 64 << 20},
		{"tiny volume", 0, 64 << 20, 100 << 20, 2 << 20},
		{"400 MB", 0, 64 << 20, 400e6, 4e6},
		{"large volume", 0, 64 << 20, 1 << 40, 64 << 20},
		{"memtable under the least", 0, 1 << 20, 1 << 40, 1 << 20},
		{"set", 8 << 20, 64 << 20, 100 << 20, 8 << 20},
	} {
		t.Run(tc.name, func(t *testing.T) {
			o := Options{JournalMemTableSize: tc.set, MemTableSize: tc.memtable}
			if got := o.journalMemTableSize(tc.volume); got != tc.want {
				t.Fatalf("journalMemTableSize(%d) = %d, want %d", tc.volume, got, tc.want)
			}
		})
	}
}

// TestNewID: Options.NewID gives a database that has an id a new one, which
// lasts (a restored copy: backup.RestoreAsNew); with Options.ID set, the id
// must be that one, and NewID changes nothing (a cluster's node).
func TestNewID(t *testing.T) {
	opts := memOptions()
	reopen := func(adjust func(*Options)) (string, error) {
		t.Helper()
		o := opts
		adjust(&o)
		l, err := Open(o)
		if err != nil {
			return "", err
		}
		id := l.ID()
		if err := l.Close(); err != nil {
			t.Fatal(err)
		}
		return id, nil
	}
	first, err := reopen(func(*Options) {})
	if err != nil {
		t.Fatal(err)
	}
	renewed, err := reopen(func(o *Options) { o.NewID = true })
	if err != nil || renewed == first || len(renewed) != len(first) {
		t.Fatalf("NewID: %q (was %q) %v", renewed, first, err)
	}
	if again, err := reopen(func(*Options) {}); err != nil || again != renewed {
		t.Fatalf("reopened after NewID: %q, want %q (%v)", again, renewed, err)
	}
	if kept, err := reopen(func(o *Options) { o.ID, o.NewID = renewed, true }); err != nil || kept != renewed {
		t.Fatalf("NewID with ID: %q, want %q (%v)", kept, renewed, err)
	}
	if _, err := reopen(func(o *Options) { o.ID, o.NewID = "another", true }); !errors.Is(err, ErrWrongID) {
		t.Fatalf("NewID with another ID: %v, want ErrWrongID", err)
	}
}

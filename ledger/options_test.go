package ledger

import (
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

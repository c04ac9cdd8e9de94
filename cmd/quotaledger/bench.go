package main

import (
	"context"

	"github.com/quotaledger/quotaledger/bench"
)

// BenchCmd is `quotaledger bench`: the flags of bench/cmd/qlbench, from the
// one definition both commands embed (bench.Flags).
type BenchCmd struct {
	bench.Flags `embed:""`
}

// Run runs the workloads (or, with --prepare, writes a data directory).
func (c *BenchCmd) Run(ctx context.Context, s *streams) error {
	return c.Exec(ctx, s.Stdout, s.Stderr)
}

package main

import "github.com/quotaledger/quotaledger/bench"

// BenchCmd is `quotaledger bench`: the flags of bench/cmd/qlbench, from the
// one definition both commands embed (bench.Flags).
type BenchCmd struct {
	bench.Flags `embed:""`
}

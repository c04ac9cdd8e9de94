GO ?= go
STATICCHECK ?= honnef.co/go/tools/cmd/staticcheck@v0.8.2

.PHONY: run test lint bench bench-go tidy-check soak cluster cluster-figures

## run: build bin/quotaledger and serve with the data under ./data; the first start makes
## the admin and the README's demo setup and prints them (Ctrl-C stops it gracefully)
RUN_FLAGS ?= --log-format console
run:
	$(GO) build -o bin/quotaledger ./cmd/quotaledger
	exec ./bin/quotaledger serve --data ./data --demo $(RUN_FLAGS)

## test: every test, with the race detector
test:
	$(GO) test -race -count=1 ./...

## soak: the long forms of the reliability tests (docs/reliability.md; about 40 minutes, and
## up to an hour more for the cluster's, whose rounds slow down as its stores grow: the
## test reads the whole ledger back after each round; the rejoin itself stays under 1.1 s):
## SIGKILL under load 25 times, NATS away for minutes, the leader of a cluster of three
## killed under load 25 times, the mixed workload for SOAK_DURATION with its bounds on
## memory, goroutines, files, disk and latency, then every fuzz target for FUZZ_TIME each
SOAK_DURATION ?= 10m
FUZZ_TIME ?= 30s
soak:
	QUOTALEDGER_SOAK=1 $(GO) test -count=1 -v -run 'TestCrashUnderLoad|TestNATSAway' -timeout 60m ./cmd/quotaledger
	QUOTALEDGER_SOAK=1 $(GO) test -count=1 -v -run 'TestClusterKillUnderLoad|TestClusterPause' -timeout 120m ./cmd/quotaledger
	QUOTALEDGER_SOAK=1 QUOTALEDGER_SOAK_DURATION=$(SOAK_DURATION) $(GO) test -count=1 -v -run 'TestSoak$$' -timeout 60m ./cmd/quotaledger
	bash scripts/fuzz.sh $(FUZZ_TIME)

## lint: go vet, gofmt and staticcheck
lint:
	$(GO) vet ./...
	@out="$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go'))"; \
	if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi
	$(GO) run $(STATICCHECK) ./...

## tidy-check: go mod tidy leaves no diff
tidy-check:
	$(GO) mod tidy
	git diff --exit-code go.mod go.sum

## bench: the workloads of DESIGN.md §7 (bench/), in process, over HTTP and over NATS, a table each
bench:
	$(GO) run ./bench/cmd/qlbench -workload all -target engine
	$(GO) run ./bench/cmd/qlbench -workload all -target http
	$(GO) run ./bench/cmd/qlbench -workload all -target nats

## bench-go: the go test benchmarks (engine, open, memory, HTTP, token lookup)
bench-go:
	$(GO) test ./ledger -run '^$$' -bench 'IssueAccept|HotHolding|OverLimit' -benchtime 10s -timeout 30m
	$(GO) test ./ledger -run '^$$' -bench 'Open|MemoryPerHolding' -benchtime 1x -timeout 30m
	$(GO) test ./api -run '^$$' -bench 'HTTPIssueAccept' -benchtime 10s -timeout 30m
	$(GO) test ./identity -run '^$$' -bench 'TokenLookup' -benchmem

## cluster: three local nodes of a cluster (scripts/cluster.sh): data under ./data/cluster, their
## ports, pids and the admin token printed; Ctrl-C stops them all (README, "A cluster")
cluster:
	$(GO) build -o bin/quotaledger ./cmd/quotaledger
	exec bash scripts/cluster.sh

## cluster-figures: the figures of docs/cluster.md (about 3 minutes): one node and three over HTTP,
## the replication lag and the log's size per commission (TestClusterFigures), then the failover
## over 10 kills of the leader under load (TestClusterKillUnderLoad)
cluster-figures:
	QUOTALEDGER_FIGURES=1 $(GO) test -count=1 -v -run 'TestClusterFigures$$' -timeout 30m ./cmd/quotaledger
	QUOTALEDGER_SOAK=1 QUOTALEDGER_SOAK_KILLS=10 $(GO) test -count=1 -v -run 'TestClusterKillUnderLoad$$' -timeout 30m ./cmd/quotaledger

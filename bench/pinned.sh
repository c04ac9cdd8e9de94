#!/bin/bash
# pinned.sh measures DESIGN §7's figure of merit over the wires: the server's
# own CPU per commission (issue + accept, events published), with
# `quotaledger serve` (built from this checkout, embedded NATS) pinned to
# core 0 and the load generator (qlbench, -c callers) pinned to core 1, as
# ../shared/peers/compare.sh pins its peers. CPU is utime + stime of the serve
# process over the measured run (/proc/PID/stat), divided by the commissions
# answered. Prints, per target, commissions/s, p99 of a call, the CPU, and
# the ledger's calls per synced batch (its batch size histogram in /metrics).
#
#   bench/pinned.sh [SECONDS] [nats http]     from the repository's root
#
# Environment: HOLDERS (100000: the layout of qlbench -prepare), C (64),
# WORKLOAD (issue-accept; a workload of two calls per commission), KEEP (set:
# keep the work directory and print it), PROFILE (a directory: serve runs
# with --pprof and a CPU profile of each measured run, but its first and last
# second, goes to PROFILE/TARGET.pprof; go tool pprof -top to read it).
set -u
D=${1:-10}
shift || true
targets=${*:-nats http}
HOLDERS=${HOLDERS:-100000}
C=${C:-64}
WORKLOAD=${WORKLOAD:-issue-accept}
work=$(mktemp -d /tmp/qlpinned.XXXXXX)
trap 'kill ${QP:-} 2>/dev/null; wait 2>/dev/null; [ -n "${KEEP:-}" ] && echo "kept $work" || rm -rf "$work"' EXIT
go build -o "$work/quotaledger" ./cmd/quotaledger || exit 1
go build -o "$work/qlbench" ./bench/cmd/qlbench || exit 1
"$work/qlbench" -prepare "$work/data/ledger" -holders "$HOLDERS" || exit 1
free() { python3 -c 'import socket;s=socket.socket();s.bind(("127.0.0.1",0));print(s.getsockname()[1])'; }
port=$(free)
nport=$(free)
admin="qladmin-$(head -c 12 /dev/urandom | od -An -tx1 | tr -d ' \n')"
pprof=()
[ -n "${PROFILE:-}" ] && { mkdir -p "$PROFILE" || exit 1; pport=$(free); pprof=(--pprof "127.0.0.1:$pport"); }
QUOTALEDGER_ADMIN_TOKEN=$admin taskset -c 0 "$work/quotaledger" serve --data "$work/data" \
	--listen "127.0.0.1:$port" --nats-listen "127.0.0.1:$nport" "${pprof[@]}" >"$work/serve.log" 2>&1 &
QP=$!
url=http://127.0.0.1:$port
for _ in $(seq 1 300); do curl -sf "$url/readyz" >/dev/null 2>&1 && break; sleep 0.1; done
tok=$(curl -s -X POST -H "X-Auth-Token: $admin" -H 'Content-Type: application/json' \
	-d '{"name":"cyclades","type":"compute","endpoints":[]}' "$url/account/v1.0/services" |
	python3 -c 'import json,sys;print(json.load(sys.stdin).get("token",""))')
[ -n "$tok" ] || { echo "no service token"; cat "$work/serve.log" | tail -5; exit 1; }
ticks() { awk '{print $14+$15}' "/proc/$QP/stat"; }
# batches: the calls and batches the ledger committed so far (its batch size histogram).
batches() { curl -s "$url/metrics" | awk '/^quotaledger_batch_size_sum/ {s=$2} /^quotaledger_batch_size_count/ {c=$2} END {print s+0, c+0}'; }
lg() { taskset -c 1 "$work/qlbench" -workload "$WORKLOAD" -c "$C" -holders "$HOLDERS" -token "$tok" -json "$@"; }
for t in $targets; do
	case $t in
	nats) u=nats://127.0.0.1:$nport ;;
	http) u=$url ;;
	*) echo "unknown target $t"; continue ;;
	esac
	lg -target "$t" -url "$u" -d 2s >/dev/null # warm up
	b0=$(batches)
	a=$(ticks)
	if [ -n "${PROFILE:-}" ]; then
		(sleep 1; curl -s -o "$PROFILE/$t.pprof" "http://127.0.0.1:$pport/debug/pprof/profile?seconds=$((D > 2 ? D - 2 : 1))") &
		pp=$!
	fi
	out=$(lg -target "$t" -url "$u" -d "${D}s")
	b=$(ticks)
	[ -n "${PROFILE:-}" ] && wait "$pp"
	b1=$(batches)
	python3 - "$t" "$((b - a))" "$out" "$b0" "$b1" <<'PY'
import json, os, sys
t, ticks, out = sys.argv[1], int(sys.argv[2]), sys.argv[3]
(s0, c0), (s1, c1) = [map(float, x.split()) for x in sys.argv[4:6]]
r = json.loads(out)
r = r[0] if isinstance(r, list) else r
commissions = (r["calls"] - r["errors"]) / 2
us = ticks / os.sysconf("SC_CLK_TCK") * 1e6 / max(commissions, 1)
print(f"{t:5s} {commissions / (r['elapsed_ns'] / 1e9):8.0f} commissions/s  p99 {r['p99_ns'] / 1e6:6.1f} ms  "
      f"server CPU {us:6.1f} us/commission  {(s1 - s0) / max(c1 - c0, 1):4.1f} calls/batch  errors {r['errors']}")
PY
done

#!/usr/bin/env bash
# cluster.sh runs a cluster of three quotaledger nodes on this machine
# (DESIGN.md §11, docs/cluster.md), each its own process with its own data
# directory and embedded NATS server, the NATS servers routed to each other:
#
#   scripts/cluster.sh           start n1, n2 and n3, print their ports, pids and
#                                the admin token, and wait; Ctrl-C stops them all
#   scripts/cluster.sh node N    run node N (1, 2 or 3) alone in the foreground:
#                                to bring back a node you killed, in another shell
#
# Data under ./data/cluster/nN, logs in ./data/cluster/nN.log. Fixed ports:
# node N serves HTTP on 127.0.0.1:808N, its NATS clients on 127.0.0.1:423N and
# the other nodes' routes on 127.0.0.1:623N. The admin token is made once,
# kept in ./data/cluster/admin.token (mode 0600), and given to every node as
# QUOTALEDGER_ADMIN_TOKEN: the first leader makes the admin with it, and the
# README's demo setup (--demo), written to its data directory's demo.env.
# `rm -rf data/cluster` starts over.
#
# Environment: QUOTALEDGER_BIN (default bin/quotaledger, which make cluster
# builds); QUOTALEDGER_CLUSTER_DIR (default ./data/cluster).
set -euo pipefail

bin="${QUOTALEDGER_BIN:-bin/quotaledger}"
dir="${QUOTALEDGER_CLUSTER_DIR:-./data/cluster}"
nodes=(1 2 3)

[ -x "$bin" ] || { echo "cluster.sh: $bin not found: run make cluster (or go build -o bin/quotaledger ./cmd/quotaledger)" >&2; exit 2; }
mkdir -p "$dir"
chmod 700 "$dir"

token_file="$dir/admin.token"
if [ ! -s "$token_file" ]; then
	(umask 077; head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n' > "$token_file")
fi
token="$(cat "$token_file")"

http() { echo "127.0.0.1:808$1"; }
nats() { echo "127.0.0.1:423$1"; }
route() { echo "127.0.0.1:623$1"; }

# args N: the serve flags of node N.
args() {
	local n=$1 peers=""
	for m in "${nodes[@]}"; do
		[ "$m" = "$n" ] || peers="${peers:+$peers,}$(route "$m")"
	done
	echo serve --data "$dir/n$n" --listen "$(http "$n")" --nats-listen "$(nats "$n")" \
		--node-name "n$n" --cluster-listen "$(route "$n")" --peers "$peers" --log-format console --demo
}

if [ "${1:-}" = node ]; then
	n="${2:?usage: scripts/cluster.sh node N}"
	echo "node n$n: HTTP http://$(http "$n"), NATS nats://$(nats "$n"), route $(route "$n"), pid $$"
	# shellcheck disable=SC2046
	QUOTALEDGER_ADMIN_TOKEN="$token" exec "$bin" $(args "$n")
fi

# Each node in a process group of its own: Ctrl-C reaches this script
# only, which stops every node once, gracefully (a second signal would
# stop a node at once).
set -m
pids=()
stop() {
	trap - INT TERM
	echo
	echo "stopping the nodes..."
	for p in "${pids[@]}"; do kill -TERM "$p" 2>/dev/null || true; done
	wait || true
	echo "stopped (data kept in $dir)"
	exit 0
}
trap stop INT TERM

for n in "${nodes[@]}"; do
	# shellcheck disable=SC2046
	QUOTALEDGER_ADMIN_TOKEN="$token" "$bin" $(args "$n") >>"$dir/n$n.log" 2>&1 &
	pids+=($!)
done

echo "starting three nodes (each waits for a majority of the cluster's NATS servers)..."
for n in "${nodes[@]}"; do
	for _ in $(seq 1 600); do
		if curl -fsS -o /dev/null "http://$(http "$n")/readyz" 2>/dev/null; then
			break
		fi
		if ! kill -0 "${pids[$((n - 1))]}" 2>/dev/null; then
			echo "node n$n exited; the end of $dir/n$n.log:" >&2
			tail -n 20 "$dir/n$n.log" >&2
			stop
		fi
		sleep 0.2
	done
done

echo
printf '%-5s %-8s %-24s %-24s %-16s %s\n' NODE PID HTTP NATS ROUTE LOG
for n in "${nodes[@]}"; do
	printf '%-5s %-8s %-24s %-24s %-16s %s\n' "n$n" "${pids[$((n - 1))]}" "http://$(http "$n")" "nats://$(nats "$n")" \
		"$(route "$n")" "$dir/n$n.log"
done
echo
echo "admin token (also in $token_file):"
echo "  export QUOTALEDGER_TOKEN=$token"
demo=""
for _ in $(seq 1 100); do
	demo="$(ls "$dir"/n*/demo.env 2>/dev/null | head -n 1)"
	[ -n "$demo" ] && break
	sleep 0.1
done
if [ -n "$demo" ]; then
	echo "the demo setup the first leader made (a service compute, its resources, a user): . $demo"
fi
echo
"$bin" cluster status --url "http://$(http 1)" --token "$token" || true
echo
echo "kill -9 the leader's pid above and watch another take over:"
echo "  $bin cluster status --url http://$(http 1)"
echo "bring a killed node back, in another shell: scripts/cluster.sh node N"
echo "Ctrl-C stops every node this script started."
wait

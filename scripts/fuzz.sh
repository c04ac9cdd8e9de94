#!/usr/bin/env bash
# fuzz.sh runs every native fuzz target of the module, one after the other,
# each for a fixed time, and prints a line per target: its name, package,
# ok or FAIL, and how many inputs it ran. It exits non-zero if any failed.
#
#   scripts/fuzz.sh [DURATION]     DURATION per target, as go test -fuzztime
#                                  takes it (30s, 2m, or 5000x); default 30s
#
# Targets are found by go test -list, so a new Fuzz function is picked up
# without touching this script. A failing input is written by go test to
# <pkg>/testdata/fuzz/<Target>/ (commit it: it becomes a regression test).
#
# Environment: GO (default go); FUZZ_MINIMIZE, the -fuzzminimizetime of
# every run (default 10s: minimising each new interesting input for go
# test's default 60s would eat most of a short run); FUZZ_LOGS, where the
# full output of each run is kept (default a new temporary directory).
set -euo pipefail

duration="${1:-30s}"
go="${GO:-go}"
minimize="${FUZZ_MINIMIZE:-10s}"
cd "$(dirname "$0")/.."
logs="${FUZZ_LOGS:-$(mktemp -d "${TMPDIR:-/tmp}/fuzz.XXXXXX")}"
mkdir -p "$logs"

# seconds converts a Go duration (1h2m3s, 30s, 1m) to whole seconds; it
# prints nothing for a count (5000x) or anything else.
seconds() {
	awk -v d="$1" 'BEGIN {
		if (d !~ /^([0-9.]+(h|m|s|ms))+$/) exit
		t = 0
		while (match(d, /^[0-9.]+(h|ms|m|s)/)) {
			part = substr(d, 1, RLENGTH); d = substr(d, RLENGTH + 1)
			n = part + 0; u = part; sub(/^[0-9.]+/, "", u)
			t += (u == "h") ? n * 3600 : (u == "m") ? n * 60 : (u == "s") ? n : n / 1000
		}
		printf "%d\n", t
	}'
}

# The test binary's timeout covers the fuzzing: give each run its duration
# and ten minutes more for building, the baseline and a minimisation.
secs="$(seconds "$duration")"
if [[ -n "$secs" ]]; then
	timeout="$((secs + 600))s"
else
	timeout="30m"
fi

# Every fuzz target, as "package target" lines: go test -list over the
# packages whose tests declare one (so that packages without any are not
# built), which prints a package's test names and then "ok <package>".
mapfile -t pkgs < <(grep -rlE --include='*_test.go' '^func Fuzz[A-Za-z0-9_]*\(' . |
	grep -v '/testdata/' | xargs -r -n1 dirname | sort -u)
if [[ ${#pkgs[@]} -eq 0 ]]; then
	echo "fuzz.sh: no fuzz targets found" >&2
	exit 1
fi
if ! listing="$("$go" test -list '^Fuzz' "${pkgs[@]}" 2>&1)"; then
	echo "fuzz.sh: listing the fuzz targets failed:" >&2
	echo "$listing" >&2
	exit 1
fi
targets="$(awk '
	/^Fuzz[A-Za-z0-9_]*$/ { names[n++] = $0; next }
	/^ok[ \t]/ { for (i = 0; i < n; i++) print $2, names[i]; n = 0; next }
	{ n = 0 }
' <<<"$listing")"
if [[ -z "$targets" ]]; then
	echo "fuzz.sh: no fuzz targets found" >&2
	exit 1
fi

# spurious tells whether a failed run is Go's own race at the end of a
# timed run (go.dev/issue/75804, fixed in Go 1.27): the target's only
# complaint is "context deadline exceeded", and no failing input was
# written. Anything else is a failure.
spurious() {
	! grep -q 'Failing input written to' "$1" &&
		[[ "$(awk -v t="--- FAIL: $2 " 'index($0, t) == 1 { on = 1; next } on && /^[ \t]/ { print; next } { on = 0 }' "$1" |
			sed -E 's/^[[:space:]]+//')" == "context deadline exceeded" ]]
}

module="$("$go" list -m)"
total=0
failed=0
flaked=0
echo "fuzzing $(wc -l <<<"$targets") targets for $duration each (logs in $logs)"
while read -r pkg name; do
	total=$((total + 1))
	rel="${pkg#"$module"}"
	rel="${rel#/}"
	dir="./$rel"
	[[ -z "$rel" ]] && dir="."
	log="$logs/$(tr '/' '_' <<<"${rel:-root}").$name.log"
	status=ok
	if ! "$go" test -run '^$' -fuzz "^${name}\$" -fuzztime "$duration" -fuzzminimizetime "$minimize" \
		-timeout "$timeout" "$dir" >"$log" 2>&1 </dev/null; then
		if spurious "$log" "$name"; then
			status=ok*
			flaked=$((flaked + 1))
		else
			status=FAIL
			failed=$((failed + 1))
		fi
	fi
	# The last progress line ("fuzz: elapsed: 10s, execs: 12345 (1234/sec),
	# ...") has the count; the rate is over the time since the baseline
	# coverage was gathered ("..., now fuzzing with 2 workers").
	last="$(grep -E '^fuzz: elapsed: .*execs: [0-9]+' "$log" | tail -n 1 || true)"
	execs="$(sed -nE 's/.*execs: ([0-9]+).*/\1/p' <<<"$last")"
	end="$(seconds "$(sed -nE 's/^fuzz: elapsed: ([0-9hms.]+),.*/\1/p' <<<"$last")")"
	start="$(seconds "$(sed -nE 's/^fuzz: elapsed: ([0-9hms.]+),.*now fuzzing.*/\1/p' "$log" | tail -n 1)")"
	rate=""
	if [[ -n "$execs" && -n "$end" ]]; then
		s=$((end - ${start:-0}))
		if [[ "$s" -gt 0 ]]; then
			rate="$((execs / s))/s"
		fi
	fi
	printf '%-28s %-12s %-4s execs %-10s %s\n' "$name" "$dir" "$status" "${execs:--}" "${rate:--}"
	if [[ "$status" == FAIL ]]; then
		grep -E 'Failing input written to|^\s+--- FAIL|panic:' "$log" | sed 's/^/    /' | head -n 5 || true
		echo "    full output: $log"
	fi
done <<<"$targets"

echo "$total targets, $failed failed"
if [[ "$flaked" -gt 0 ]]; then
	echo "ok*: $flaked ended with Go's spurious \"context deadline exceeded\" (go.dev/issue/75804), no failing input"
fi
[[ "$failed" -eq 0 ]]

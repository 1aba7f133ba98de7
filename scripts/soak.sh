#!/usr/bin/env bash
# A long crash soak: kills ssefs with SIGKILL at random moments of a write storm through the
# mount and over S3, many times, checks every file after each restart and runs ssefs fsck
# (integration/crash_test.go, TestCrashStorm), and prints the rounds survived and the
# inconsistencies found. Needs root and /dev/fuse, like scripts/test.sh (run that once first:
# it installs what the tests need).
#
# Usage: scripts/soak.sh [ROUNDS]       (default 200; each round takes a few seconds)
# Env:   SSEFS_IT_SEED=N                replay a run's random choices (the log prints the seed)
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
rounds="${1:-200}"
case "$rounds" in
'' | *[!0-9]*) echo "scripts/soak.sh: ROUNDS must be a number, got '$rounds'" >&2; exit 2 ;;
esac
log=$(mktemp)
trap 'rm -f "$log"' EXIT
echo "soak: $rounds crash rounds (log: go test -v output below on failure)"
start=$(date +%s)
set +e
SSEFS_CRASH_ROUNDS="$rounds" go test -race -count=1 -v -timeout 0 -run '^TestCrashStorm$' ./integration/ >"$log" 2>&1
rc=$?
set -e
elapsed=$(($(date +%s) - start))
summary=$(grep -o '[0-9]* crash rounds survived.*' "$log" | tail -n 1 || true)
if [ "$rc" -eq 0 ] && [ -n "$summary" ]; then
	echo "soak: $summary (${elapsed}s)"
	exit 0
fi
grep -E 'crash_test|harness_test|--- FAIL|panic' "$log" | head -n 40 || true
survived=$(grep -o 'round [0-9]*' "$log" | tail -n 1 | grep -o '[0-9]*' || echo 0)
echo "soak: FAILED in round ${survived:-?} of $rounds after ${elapsed}s: inconsistencies found (see above)"
exit 1

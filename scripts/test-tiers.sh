#!/usr/bin/env bash
# `make test`: both tiers at once. The stack tier at normal priority (its tests wait on real
# Prometheus, Alertmanager and runs, and are timed by them); the fast tier niced, so it runs
# on the CPU the stack tier leaves idle while it waits. Each tier's output is shown when it
# ends; both tiers' times and the total are printed; the exit status fails if either failed.
# Usage: scripts/test-tiers.sh "FAST PYTEST COMMAND" "STACK PYTEST COMMAND"
set -uo pipefail
fast_cmd=$1 stack_cmd=$2
out=$(mktemp -d /tmp/runbook-make-test-XXXXXX)
# one host-wide lock for both sessions (tests/conftest.py HOST_WIDE_GROUPS)
export RUNBOOK_TEST_HOST_LOCK="$out/host.lock"
start=$SECONDS

bash -c "$stack_cmd" >"$out/stack.log" 2>&1 &
stack_pid=$!
nice -n 15 bash -c "$fast_cmd" >"$out/fast.log" 2>&1
fast_rc=$? fast_s=$((SECONDS - start))
echo "== fast tier (-m 'not stack', niced): exit $fast_rc after ${fast_s} s"
cat "$out/fast.log"
wait "$stack_pid"
stack_rc=$? stack_s=$((SECONDS - start))
echo "== stack tier (-m stack): exit $stack_rc after ${stack_s} s"
cat "$out/stack.log"
echo "== make test: both tiers in $((SECONDS - start)) s of pytest (fast exit $fast_rc, stack exit $stack_rc; logs in $out)"
[ "$fast_rc" -eq 0 ] && [ "$stack_rc" -eq 0 ]

#!/bin/bash
# work.sh -- "spool work --exec" end to end: what the command gets (argv
# untouched by any shell, payload, environment, fds 0-2, its own process
# group), what is kept (result, truncation, errors), exit codes, timeouts
# that leave no process behind, graceful and forced shutdown, exclusive
# runs, cron limits.
. "$TESTS_SRCDIR/cli/lib.sh"
CANARY=${CANARY:-$(pwd)/tests/canary}
[ -x "$CANARY" ] || { echo "no canary at $CANARY" >&2; exit 99; }

run init
run queue create w --backoff fixed --backoff-base 50ms --jitter 0 \
    --max-attempts 3 --lease 2s


# What the command is given.
weird=$'semi;colon $(date) `id` *.c ~ "q" \'s\' new\nline --output=/etc/x'
run enqueue w 'the payload {"a":1}'
id=$out
FOO=secret BAR=hidden run work w --until-empty --concurrency 1 \
    --exec "$CANARY" report "$weird" -- ''
check "work: exit 0" test "$rc" -eq 0
check "work: summary" grep -q '^spool work: 1 tasks in .*1 succeeded' <<<"$out"
res=$(sql "SELECT output FROM results WHERE task_id = $id")
check "argv count" grep -qx 'argc=3' <<<"$res"
is "argv untouched by a shell" "$(head -n 5 <<<"$res")" "argc=3
arg=$weird
arg=--
arg="
check "SPOOL_TASK_ID" grep -qx "id=$id" <<<"$res"
check "SPOOL_QUEUE" grep -qx 'queue=w' <<<"$res"
check "SPOOL_ATTEMPT" grep -qx 'attempt=1' <<<"$res"
check "PATH passed" grep -qx 'path=set' <<<"$res"
check "FOO not passed" grep -qx 'foo=' <<<"$res"
check "only fds 0 1 2" grep -qx 'fds=0 1 2 ' <<<"$res"
check "own process group" grep -qx 'leader=1' <<<"$res"
check "payload on stdin" grep -qx 'stdin=the payload {"a":1}' <<<"$res"
run enqueue w x
FOO=secret run work w --until-empty --env FOO,NOPE --exec "$CANARY" report
check "--env passes FOO" grep -qx 'foo=secret' <<<"$(sql "SELECT output FROM results WHERE task_id = $(sql 'SELECT max(id) FROM tasks')")"

# Exit codes: 75 retry later, others fail, signals; the stderr tail.
run enqueue w x
id=$out
run work w --until-empty --exec "$CANARY" exit 75
check "exit 75: work exits 1" test "$rc" -eq 1
is "exit 75: retried" "$(sql "SELECT state || ':' || last_error FROM tasks WHERE id = $id")" "ready:exit 75: retry later: bye"
sleep 0.1
run work w --until-empty --exec "$CANARY" exit 3
is "exit 3: error" "$(sql "SELECT last_error FROM tasks WHERE id = $id")" "exit 3: bye"
sleep 0.1
run work w --until-empty --exec "$CANARY" kill 9
is "signal: dead after 3 attempts" "$(sql "SELECT state || ':' || dead_reason || ':' || attempts FROM tasks WHERE id = $id")" "dead:exhausted:3"
check "signal: named" grep -q 'killed by signal 9' <<<"$(sql "SELECT last_error FROM tasks WHERE id = $id")"
is "history of 3 failed attempts" "$(sql "SELECT count(*) FROM attempts WHERE task_id = $id AND outcome = 'failed'")" 3
run enqueue w x
id=$out
run work w --until-empty --exec /no/such/command
check "missing command: failure, not a crash" test "$rc" -eq 1
check "missing command: named" grep -q 'cannot run /no/such/command' <<<"$(sql "SELECT last_error FROM tasks WHERE id = $id")"
run cancel "$id"

# Output past 1 MiB is cut and the cut recorded.
run enqueue w x
id=$out
run work w --until-empty --exec "$CANARY" spam 3000000
is "result cut at 1 MiB" "$(sql "SELECT length(output) || ':' || truncated FROM results WHERE task_id = $id")" "1048576:1"

# A timeout kills the whole process group, children too.
run enqueue w x
id=$out
start=$(date +%s%N)
run work w --until-empty --timeout 300ms --grace 200ms \
    --exec "$CANARY" family 20000 "$T/child.pid"
elapsed=$((($(date +%s%N) - start) / 1000000))
check "timeout: run ends soon ($elapsed ms)" test "$elapsed" -lt 5000
is "timeout: attempt timed out" "$(sql "SELECT outcome FROM attempts WHERE task_id = $id")" timed_out
check "timeout: error says so" grep -q '^timed out after 300 ms' <<<"$(sql "SELECT error FROM attempts WHERE task_id = $id")"
check "timeout: grandchild started" test -s "$T/child.pid"
check "timeout: grandchild killed" wait_for "! alive $(cat "$T/child.pid" 2>/dev/null || echo 1)"
run cancel "$id"

# SIGTERM ignored: SIGKILL after the grace period.
run enqueue w x
id=$out
start=$(date +%s%N)
run work w --until-empty --timeout 200ms --grace 300ms --exec "$CANARY" stubborn 20000
elapsed=$((($(date +%s%N) - start) / 1000000))
check "stubborn: killed after the grace ($elapsed ms)" test "$elapsed" -ge 450 -a "$elapsed" -lt 5000
check "stubborn: SIGKILL named" grep -q 'SIGTERM, then SIGKILL' <<<"$(sql "SELECT error FROM attempts WHERE task_id = $id")"
run cancel "$id"

# Graceful shutdown: SIGTERM lets running commands finish, hands any
# tasks claimed ahead back unstarted (t-pool-stop checks that), and exits 0.
run queue create g --lease 2s
for i in $(seq 1 10); do "$SPOOL_BIN" enqueue g "g$i" >/dev/null; done
"$SPOOL_BIN" work g --concurrency 2 --prefetch 4 --exec "$CANARY" sleep 700 \
    >"$T/g.out" 2>"$T/g.err" &
wpid=$!
check "graceful: two running" wait_for "[ \"\$(sql \"SELECT count(*) FROM tasks WHERE queue = 'g' AND state = 'running' AND started_ms IS NOT NULL\")\" -ge 2 ]"
kill -TERM "$wpid"
wait "$wpid"
rc=$?
check "graceful: exit 0 (got $rc)" test "$rc" -eq 0
is "graceful: nothing left running" "$(sql "SELECT count(*) FROM tasks WHERE state = 'running'")" 0
is "graceful: two finished" "$(sql "SELECT count(*) FROM tasks WHERE queue = 'g' AND state = 'succeeded'")" 2
is "graceful: the rest ready, attempts unchanged" "$(sql "SELECT count(*) FROM tasks WHERE queue = 'g' AND state = 'ready' AND attempts = 0")" 8
# 700 ms commands: the worker claims none ahead of its two threads
# (--prefetch only caps it), so there is nothing to hand back.
check "graceful: the summary, none claimed ahead" grep -q '^spool work: 2 tasks in .*: 2 succeeded, .* 0 handed back, 0 left under lease$' "$T/g.out"
is "graceful: no workers row left" "$(sql 'SELECT count(*) FROM workers')" 0

# A second signal quits at once, leaves the leases to expire, says how
# many in its summary, and exits 128 + the signal (143 for SIGTERM).
"$SPOOL_BIN" work g --concurrency 2 --prefetch 0 --exec "$CANARY" sleep 20000 \
    >"$T/q.out" 2>"$T/q.err" &
wpid=$!
check "quit: running" wait_for "[ \"\$(sql \"SELECT count(*) FROM tasks WHERE state = 'running' AND started_ms IS NOT NULL\")\" -eq 2 ]"
check "quit: workers row while running" test "$(sql 'SELECT count(*) FROM workers')" -eq 1
start=$(date +%s%N)
kill -TERM "$wpid"
check "quit: the first signal drains" wait_for "grep -q 'signal 15: stopping; waiting up to 30.0 s for 2 running tasks' '$T/q.err'"
kill -TERM "$wpid"
wait "$wpid"
rc=$?
elapsed=$((($(date +%s%N) - start) / 1000000))
check "quit: exit 143 (got $rc)" test "$rc" -eq 143
check "quit: gone within 2 s ($elapsed ms)" test "$elapsed" -lt 2000
check "quit: the summary counts the leases left" grep -q ', 2 left under lease$' "$T/q.out"
check "quit: and the log says so" grep -q 'quit at once: 2 tasks left under lease' "$T/q.err"
is "quit: leases left to expire" "$(sql "SELECT count(*) FROM tasks WHERE state = 'running'")" 2
check "quit: no canary left" test -z "$(pgrep -f "$CANARY sleep 20000" || true)"
sql "UPDATE tasks SET lease_until_ms = 0 WHERE state = 'running'"
is "quit: expired leases read as expired" "$("$SPOOL_BIN" stats g --json | python3 -c 'import json, sys; d = json.load(sys.stdin)[0]; print(d["running"], d["claimed"], d["expired"])')" "0 0 2"
run list --queue g --state expired
is "quit: listed as expired" "$(grep -c ' expired ' <<<"$out")" 2
run list --queue g --state running
is "quit: not listed as running" "$(grep -c ' running ' <<<"$out")" 0

# The shutdown timeout: a command still running when it passes is
# stopped and its task handed back, ready, with no attempt charged.
sd=$("$SPOOL_BIN" enqueue sd stuck)
"$SPOOL_BIN" work sd --concurrency 1 --shutdown-timeout 300ms --grace 200ms \
    --exec "$CANARY" sleep 20000 >"$T/sd.out" 2>"$T/sd.err" &
wpid=$!
check "shutdown timeout: started" wait_for "[ \"\$(sql \"SELECT count(*) FROM tasks WHERE id = $sd AND started_ms IS NOT NULL\")\" -eq 1 ]"
kill -TERM "$wpid"
wait "$wpid"
rc=$?
check "shutdown timeout: exit 0 (got $rc)" test "$rc" -eq 0
is "shutdown timeout: handed back, no attempt charged" "$(sql "SELECT state, attempts, started_ms IS NULL, (SELECT count(*) FROM attempts WHERE task_id = $sd) FROM tasks WHERE id = $sd")" "ready|0|1|0"
check "shutdown timeout: summary" grep -q '1 handed back' "$T/sd.out"
check "shutdown timeout: no canary left" test -z "$(pgrep -f "$CANARY sleep 20000" || true)"

# A cancel reaches a running command within about a second, whatever
# the lease (30 s here: renewals come every 10 s).
run queue create cx --lease 30s
cx=$("$SPOOL_BIN" enqueue cx long)
"$SPOOL_BIN" work cx --concurrency 1 --exec "$CANARY" sleep 20000 \
    >/dev/null 2>"$T/cx.err" &
wpid=$!
check "cancel: started" wait_for "[ \"\$(sql \"SELECT count(*) FROM tasks WHERE id = $cx AND started_ms IS NOT NULL\")\" -eq 1 ]"
start=$(date +%s%N)
run cancel "$cx"
check "cancel: cancelled" wait_for "[ \"\$(sql \"SELECT state FROM tasks WHERE id = $cx\")\" = cancelled ]"
elapsed=$((($(date +%s%N) - start) / 1000000))
check "cancel: within 1.5 s of the request ($elapsed ms)" test "$elapsed" -lt 1500
check "cancel: no canary left" wait_for "test -z \"\$(pgrep -f '^$CANARY sleep 20000' || true)\""
kill -TERM "$wpid"
wait "$wpid"

# Exclusive runs: the second exits 75 and says who holds the lock.
"$SPOOL_BIN" work w --exclusive nightly --concurrency 1 --exec "$CANARY" sleep 3000 \
    >/dev/null 2>&1 &
wpid=$!
check "exclusive: first holds the lock" wait_for "[ \"\$(sql \"SELECT count(*) FROM locks WHERE name = 'nightly'\")\" -eq 1 ]"
run work w --exclusive nightly --until-empty --exec "$CANARY" sleep 1
check "exclusive: second exits 75 (got $rc)" test "$rc" -eq 75
check "exclusive: one line naming the lock" test "$(grep -c . <<<"$err")" -eq 1 -a -n "$(grep 'lock nightly is held' <<<"$err")"
kill -TERM "$wpid"
kill -TERM "$wpid" 2>/dev/null
wait "$wpid"
sql "UPDATE locks SET until_ms = 0"
sql "UPDATE tasks SET lease_until_ms = 0 WHERE state = 'running'"

# Cron limits: --max-tasks, --until-empty, --json.
for i in $(seq 1 6); do "$SPOOL_BIN" enqueue m "m$i" >/dev/null; done
run work m --max-tasks 4 --concurrency 2 --json --exec "$CANARY" sleep 1
check "max-tasks: exit 0" test "$rc" -eq 0
is "max-tasks: 4 claimed" "$(jq_py 'd["claimed"]')" 4
is "max-tasks: 4 succeeded" "$(jq_py 'd["succeeded"]')" 4
run work m --until-empty --exec "$CANARY" sleep 1
is "until-empty: the rest" "$(sql "SELECT count(*) FROM tasks WHERE queue = 'm' AND state = 'succeeded'")" 6
start=$(date +%s%N)
run work m --until-empty --exec "$CANARY" sleep 1
elapsed=$((($(date +%s%N) - start) / 1000000))
check "until-empty: empty queue exits at once ($elapsed ms)" test "$rc" -eq 0 -a "$elapsed" -lt 2000
for i in $(seq 1 20); do "$SPOOL_BIN" enqueue mt "t$i" >/dev/null; done
start=$(date +%s%N)
run work mt --max-time 500ms --concurrency 1 --exec "$CANARY" sleep 200
elapsed=$((($(date +%s%N) - start) / 1000000))
check "max-time: stops claiming ($elapsed ms)" test "$elapsed" -lt 3000
check "max-time: some left" test "$(sql "SELECT count(*) FROM tasks WHERE queue = 'mt' AND state = 'ready'")" -gt 0
finish

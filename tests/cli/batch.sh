#!/bin/bash
# batch.sh -- "spool batch" and "spool enqueue --batch/--wait" end to end:
# create, add, close, status, list and wait with their exit codes; the
# completion hook enqueued once with the right JSON, or not at all with
# --hook-on success and a member that did not succeed; bad input refused
# with one line and no change; a depth limit held exactly by concurrent
# enqueues, and --wait getting room from a worker; then kill -9 chaos
# under batches with hooks, after which every batch must be finished,
# its counters must equal the counts of its members, and exactly one hook
# task must exist for it.  The chaos seed is printed; replay one with
# BATCH_SEED=SEED bash tests/cli/batch.sh
. "$TESTS_SRCDIR/cli/lib.sh"
CANARY=${CANARY:-$(pwd)/tests/canary}
[ -x "$CANARY" ] || { echo "no canary at $CANARY" >&2; exit 99; }

# jv EXPR...: each Python expression on d = json($out), one line each,
# into the array v (empty if $out is not JSON).  One python3 for them all:
# it can take a second to start on a busy machine.
jv() {
	mapfile -t v < <(printf '%s' "$out" | python3 -c '
import json, sys
d = json.load(sys.stdin)
for e in sys.argv[1:]:
    x = eval(e)
    print(json.dumps(x) if isinstance(x, (dict, list, bool)) or x is None else x)
' "$@")
}

# Help, for the group and for each subcommand.
run batch --help
check "batch --help: exit 0" test "$rc" -eq 0
check "batch --help lists the subcommands" test "$(grep -cE '^  (create|add|close|status|list|wait) ' <<<"$out")" -eq 6
run help batch
check "help batch" grep -q '^usage: spool batch SUBCOMMAND' <<<"$out"
for s in create add close status list wait; do
	run batch "$s" --help
	check "batch $s --help" test "$rc" -eq 0
	check "batch $s --help usage line" grep -q "^usage: spool batch $s" <<<"$out"
	check "batch $s --help names --json" grep -q -- '--json' <<<"$out"
	run help batch "$s"
	check "help batch $s" grep -q "^usage: spool batch $s" <<<"$out"
done
run --help
check "spool --help lists batch add" grep -q '^  batch add ' <<<"$out"
run enqueue --help
check "enqueue --help: --batch" grep -q -- '^  --batch ID ' <<<"$out"
check "enqueue --help: --wait" grep -q -- '^  --wait DURATION ' <<<"$out"

# ---- create, add, status, list --------------------------------------------
run init
run batch create --description "nightly import" --hook hooks \
    --hook-payload '{"report":"daily"}'
check "create: exit 0" test "$rc" -eq 0
A=$out
check "create prints an id" grep -qx '[0-9][0-9]*' <<<"$A"
is "create: row" "$(sql "SELECT state, description, hook_queue, hook_payload, hook_on, total FROM batches WHERE id = $A")" 'open|nightly import|hooks|{"report":"daily"}|always|0'
run batch create --json --hook hooks --hook-on success
jv 'd["id"]' 'd["state"]' 'd["hook_on"]' 'd["hook_task_id"]'
B=${v[0]}
is "create --json" "${v[*]:1}" "open success null"
run batch create --hook hooks --hook-on success
C=$out
run batch create
D=$out

# A: three good tasks (operands), one from stdin, one bad task; B and C
# alike with --lines; the bad ones may run once.
run batch add "$A" bq one two three --priority 5
check "add operands: exit 0" test "$rc" -eq 0
check "add operands: summary" grep -q "^added 3 tasks to batch $A: ids" <<<"$out"
is "add: priority applies" "$(sql "SELECT count(*) FROM tasks WHERE batch_id = $A AND priority = 5")" 3
printf 'from stdin' >"$T/p"
run_in "$T/p" batch add "$A" bq -
is "add from stdin" "$(sql "SELECT payload FROM tasks WHERE batch_id = $A ORDER BY id DESC LIMIT 1")" "from stdin"
run batch add "$A" bq-bad doomed --max-attempts 1
printf 'b1\nb2\n\n' >"$T/lines"
run_in "$T/lines" batch add "$B" bq --lines --json
jv 'd["count"]' 'd["batch"]' 'd["last_id"] - d["first_id"]'
is "add --lines --json: count (empty line skipped), batch, contiguous ids" "${v[*]}" "2 $B 1"
run batch add "$B" bq-bad doomed --max-attempts 1
run_in "$T/lines" batch add "$C" bq --lines
run enqueue bq c3 --batch "$C"
check "enqueue --batch: exit 0" test "$rc" -eq 0
is "enqueue --batch joins" "$(sql "SELECT batch_id FROM tasks WHERE id = $out")" "$C"
member=$out
run show "$member"
check "show: the batch" grep -q "^batch: *$C\$" <<<"$out"
run show "$member" --json
is "show --json: batch_id" "$(jq_py 'd["task"]["batch_id"]')" "$C"
run enqueue bq d1 --batch "$D" --key k-d1
k=$out
run enqueue bq d1 --batch "$D" --key k-d1
check "enqueue --batch, key held in the batch: exit 0" test "$rc" -eq 0
is "enqueue --batch, key held in the batch: same id" "$out" "$k"
run enqueue bq d2 --batch "$D"
d2=$out
# D's second member is made dead ('failed') in the sqlite3 shell: the
# counters follow whoever writes.
sql "UPDATE tasks SET state = 'dead', dead_reason = 'failed', finished_ms = 1 WHERE id = $d2"
is "counters: A" "$(sql "SELECT total || ' ' || pending FROM batches WHERE id = $A")" "5 5"
is "counters: B" "$(sql "SELECT total || ' ' || pending FROM batches WHERE id = $B")" "3 3"
is "counters: C" "$(sql "SELECT total || ' ' || pending FROM batches WHERE id = $C")" "3 3"
is "counters: D" "$(sql "SELECT total || ' ' || pending || ' ' || failed FROM batches WHERE id = $D")" "2 1 1"

run batch status "$A"
check "status: exit 0" test "$rc" -eq 0
check "status: state" grep -q '^state: *open$' <<<"$out"
check "status: total" grep -q '^total: *5$' <<<"$out"
check "status: hook" grep -q '^hook: *hooks (always), not enqueued$' <<<"$out"
check "status: description" grep -q '^description: *nightly import$' <<<"$out"
run batch status "$A" --json
jv '[d[k] for k in ("total", "pending", "running", "succeeded", "failed", "dead", "cancelled")]' 'd["hook_payload"]'
is "status --json counters" "${v[0]:-}" "[5, 5, 0, 0, 0, 0, 0]"
is "status --json hook payload" "${v[1]:-}" '{"report":"daily"}'

run batch list
check "list: header and four rows" test "$(grep -c . <<<"$out")" -eq 5
check "list: description shown" grep -q "^$A .*nightly import$" <<<"$out"
run batch list --json --limit 2
jv '[b["id"] for b in d["batches"]]' 'd["next_after"]'
is "list --json page, next_after" "${v[*]}" "[$A, $B] $B"
run batch list --json --after "$B"
jv '[b["id"] for b in d["batches"]]' 'd["next_after"]'
is "list --after" "${v[*]}" "[$C, $D] null"

# The tasks of one batch: spool list --batch, paged as any list.
run list --batch "$B" --json
jv '[t["batch_id"] for t in d["tasks"]]' 'd["next_after"]'
is "list --batch: B's three tasks" "${v[*]}" "[$B, $B, $B] null"
is "list --batch: the rows" "$(sql "SELECT group_concat(id, ' ') FROM (SELECT id FROM tasks WHERE batch_id = $B ORDER BY id)")" \
    "$(python3 -c 'import json,sys; print(" ".join(str(t["id"]) for t in json.load(sys.stdin)["tasks"]))' <<<"$out")"
run list --batch "$A" --desc --limit 2 --json
jv '[t["batch_id"] for t in d["tasks"]]' 'd["next_after"] == d["tasks"][1]["id"]' 'd["tasks"][0]["id"] > d["tasks"][1]["id"]'
is "list --batch --desc, a page" "${v[*]}" "[$A, $A] true true"
run list --batch 99999 --json
jv 'd["tasks"]'
is "list --batch of no batch: none" "${v[*]}" "[]"

# ---- close, wait ----------------------------------------------------------
run batch wait "$A" --timeout 200ms
check "wait on an open batch: exit 75" test "$rc" -eq 75
check "wait timeout: nothing on stdout" test -z "$out"
check "wait timeout: says to close it" grep -q "batch close" <<<"$err"
for b in "$A" "$B" "$C"; do
	run batch close "$b"
	check "close $b: exit 0" test "$rc" -eq 0
done
check "close: says so" grep -q "^closed batch $C: 3 tasks" <<<"$out"
is "close: state" "$(sql "SELECT state FROM batches WHERE id = $A AND closed_ms IS NOT NULL")" closed
run batch close "$A"
check "close twice: exit 0" test "$rc" -eq 0
check "close twice: already" grep -q "was closed already" <<<"$out"
run batch list --state closed --json
jv '[b["id"] for b in d["batches"]]'
is "list --state closed" "${v[*]}" "[$A, $B, $C]"

# Adding to a closed batch is refused and changes nothing.
before=$(sql "SELECT count(*) || ' ' || (SELECT total FROM batches WHERE id = $A) FROM tasks")
run batch add "$A" bq late
check "add to closed: exit 1" test "$rc" -eq 1
check "add to closed: message" grep -q "batch $A is closed: no task may join it" <<<"$err"
check "add to closed: no stdout" test -z "$out"
run enqueue bq late --batch "$A"
check "enqueue --batch closed: exit 1" test "$rc" -eq 1
run_in "$T/lines" enqueue bq --lines --batch "$A"
check "enqueue --lines --batch closed: exit 1" test "$rc" -eq 1
is "add to closed: nothing added" "$(sql "SELECT count(*) || ' ' || (SELECT total FROM batches WHERE id = $A) FROM tasks")" "$before"

# Work them: good tasks succeed, the bad ones die after their one attempt.
run work bq --until-empty --quiet --exec "$CANARY" sleep 1
run work bq-bad --until-empty --quiet --exec "$CANARY" exit 3
run batch wait "$A" --timeout 10s
check "wait A (one dead): exit 1" test "$rc" -eq 1
check "wait A: counters on stdout" grep -q "^batch $A finished: 5 tasks, 4 succeeded, 0 failed, 1 dead, 0 cancelled$" <<<"$out"
check "wait A: one line on stderr" test "$(grep -c '' <<<"$err")" -eq 1 -a -n "$(grep '1 of 5 tasks did not succeed' <<<"$err")"
run batch wait "$C" --json --timeout 10s
check "wait C (all good): exit 0" test "$rc" -eq 0
jv 'd["state"]' 'd["succeeded"]'
is "wait --json" "${v[*]}" "finished 3"

# The hooks: A's (always) once with the right JSON; C's (success, all
# succeeded) once; none for B (success, a member dead).
hooks_of() {
	sql "SELECT count(*) FROM tasks WHERE queue = 'hooks' AND json_extract(payload, '\$.batch') = $1"
}
is "hook A enqueued once" "$(hooks_of "$A")" 1
is "hook A recorded" "$(sql "SELECT hook_task_id FROM batches WHERE id = $A")" \
    "$(sql "SELECT id FROM tasks WHERE queue = 'hooks' AND json_extract(payload, '\$.batch') = $A")"
out=$(sql "SELECT payload FROM tasks WHERE id = (SELECT hook_task_id FROM batches WHERE id = $A)")
jv '[d["batch"], d["description"], d["total"], d["succeeded"], d["failed"], d["dead"], d["cancelled"], d["payload"]]' 'sorted(d)'
is "hook payload" "${v[0]:-}" "[$A, \"nightly import\", 5, 4, 0, 1, 0, {\"report\": \"daily\"}]"
is "hook payload has exactly these keys" "${v[1]:-}" \
    '["batch", "cancelled", "dead", "description", "failed", "payload", "succeeded", "total"]'
is "hook C enqueued once" "$(hooks_of "$C")" 1
run batch wait "$B" --timeout 10s
check "wait B (one dead): exit 1" test "$rc" -eq 1
is "hook on success, a member dead: no hook" "$(hooks_of "$B")" 0
is "hook on success, a member dead: none recorded" "$(sql "SELECT hook_task_id IS NULL FROM batches WHERE id = $B")" 1
run batch status "$B"
check "status: hook not enqueued" grep -q '^hook: *hooks (on success), not enqueued$' <<<"$out"
check "status: finished time" grep -q '^finished: ' <<<"$out"

# Retried until it succeeds, B's last member brings its hook, once.
dead=$(sql "SELECT id FROM tasks WHERE batch_id = $B AND state = 'dead'")
run retry "$dead"
is "retry reopens the batch" "$(sql "SELECT state FROM batches WHERE id = $B")" closed
run batch wait "$B" --timeout 100ms
check "wait on the reopened batch: exit 75" test "$rc" -eq 75
run work bq-bad --until-empty --quiet --exec "$CANARY" sleep 1
run batch wait "$B" --timeout 10s
check "wait B after the retry: exit 0" test "$rc" -eq 0
is "hook B enqueued once, after the retry" "$(hooks_of "$B")" 1
is "hook A still once" "$(hooks_of "$A")" 1

# D: one member failed (the shell write above), the other worked; closing
# it finishes it.  No hook.
is "D's counters" "$(sql "SELECT pending || ' ' || succeeded || ' ' || failed FROM batches WHERE id = $D")" "0 1 1"
run batch close "$D" --json
jv 'd["state"]'
is "close finishes a batch with nothing left" "${v[*]}" finished
run batch wait "$D"
check "wait D (one failed): exit 1" test "$rc" -eq 1
is "no hook, no hook task" "$(sql "SELECT hook_task_id IS NULL FROM batches WHERE id = $D")" 1

# An empty batch finishes when closed, and its hook counts nothing.
run batch create --hook hooks
E=$out
run batch add "$E" bq --lines </dev/null
check "add of no task: exit 0" test "$rc" -eq 0
run batch close "$E"
check "close empty: finished at once" grep -q "^closed batch $E, finished: 0 tasks" <<<"$out"
run batch wait "$E" --timeout 1s
check "wait empty: exit 0" test "$rc" -eq 0
is "empty batch's hook" "$(sql "SELECT json_extract(payload, '\$.total') || json_extract(payload, '\$.succeeded') FROM tasks WHERE queue = 'hooks' AND json_extract(payload, '\$.batch') = $E")" 00
is "every hook once" "$(sql "SELECT count(*) FROM tasks WHERE queue = 'hooks'")" 4

# A key held outside the batch: nothing joins, exit 1.
run batch create
F=$out
run enqueue bq solo --key k-out
run enqueue bq solo --key k-out --batch "$F"
check "key held outside the batch: exit 1" test "$rc" -eq 1
check "key held outside the batch: no stdout" test -z "$out"
is "key held outside the batch: nothing joined" "$(sql "SELECT total FROM batches WHERE id = $F")" 0

# ---- bad input ------------------------------------------------------------
# Each case: its exit code, one line on stderr, nothing on stdout, and the
# database bytes unchanged (no -wal left behind).
run queue create full --max-depth 1
run enqueue full x
run queue create room --max-depth 1
head -c 1048577 /dev/zero | tr '\0' 'x' >"$T/big"
bad_start
bad 64 batch
bad 64 batch frob
bad 64 batch --json list
bad 64 help batch frob
bad 64 batch create extra
bad 64 batch create --hook-payload x
bad 64 batch create --hook-on success
bad 64 batch create --hook hooks --hook-on sometimes
bad 64 batch create --hook=
bad 64 batch create --state open
bad 64 batch add
bad 64 batch add "$F"
bad 64 batch add x bq a
bad 64 batch add 0 bq a
bad 64 batch add -1 bq a
bad 64 batch add "$F" bq a --lines
bad 64 batch add "$F" bq - -
bad 64 batch add "$F" bq a --key k
bad 64 batch add "$F" bq a --priority high
bad 64 batch add "$F" bq a --delay 5s --at @100
bad 64 batch add "$F" bq a --wait 5x
bad 64 batch close
bad 64 batch close "$F" "$A"
bad 64 batch close abc
bad 64 batch status 0
bad 64 batch status 99999999999999999999
bad 64 batch list extra
bad 64 batch list --state running
bad 64 batch list --limit 0
bad 64 list --batch 0
bad 64 list --batch x
bad 64 batch wait "$A" --timeout -1
bad 64 batch wait "$A" --timeout 5x
bad 64 enqueue bq x --batch 0
bad 64 enqueue bq x --batch abc
bad 64 enqueue bq x --wait 5x
bad 64 enqueue bq x --wait 400d
bad 65 batch create --description $'\xff\xfe'
bad 65 batch create --hook $'bad\tname'
bad 65 batch create --hook hooks --hook-payload $'\xff'
bad 65 batch add "$F" '' a
bad 65 "<$T/big" batch add "$F" bq -
bad 66 --db "$T/missing.db" batch list
bad 66 --db "$T/missing.db" batch create
bad 1 batch status 999999
bad 1 batch close 999999
bad 1 batch wait 999999
bad 1 batch add 999999 bq a
bad 1 batch add 999999 bq --lines
bad 1 batch add "$A" bq a
bad 1 enqueue bq x --batch 999999
bad 1 enqueue bq x --batch "$A"
bad 1 "<$T/lines" enqueue bq --lines --batch "$A"
bad 75 enqueue full y
bad 75 enqueue full y --wait 200ms
bad 75 batch add "$F" full y
bad 75 batch add "$F" room y z
bad 75 enqueue full y --batch "$F"
run enqueue full y --wait 200ms
check "the full queue says so" grep -qx 'spool enqueue: queue full is full (limit 1 ready tasks), still after waiting 200 ms' <<<"$err"
echo "$nbad bad-input cases"

# ---- depth limit ----------------------------------------------------------
# Six producers, no worker, 12 enqueues each against a limit of 20: exactly
# 20 succeed, every other one exits 75 saying the queue is full.  (Each
# process has files of its own: stderr is unbuffered, so lines written by
# several processes to one file could mix.)
limit=20
run queue create capped --max-depth "$limit"
pids=""
for p in 1 2 3 4 5 6; do
	(
		for k in $(seq 1 12); do
			"$SPOOL_BIN" enqueue capped "p$p-$k" \
			    >>"$T/depth.out.$p" 2>>"$T/depth.err.$p"
			echo "$?" >>"$T/depth.rc.$p"
		done
	) &
	pids="$pids $!"
done
wait $pids
cat "$T"/depth.rc.* >"$T/depth.rc"
cat "$T"/depth.out.* >"$T/depth.out"
cat "$T"/depth.err.* >"$T/depth.err"
is "depth: every enqueue ran" "$(grep -c '' "$T/depth.rc")" 72
is "depth: successful enqueues" "$(grep -cx 0 "$T/depth.rc")" "$limit"
is "depth: the others exited 75" "$(grep -cx 75 "$T/depth.rc")" $((72 - limit))
is "depth: one id per success" "$(grep -cx '[0-9][0-9]*' "$T/depth.out")" "$limit"
is "depth: every refusal says full" "$(grep -cx 'spool enqueue: queue capped is full (limit 20 ready tasks)' "$T/depth.err")" $((72 - limit))
is "depth: ready tasks" "$(sql "SELECT count(*) FROM tasks WHERE queue = 'capped' AND state = 'ready'")" "$limit"

# --wait: a worker frees room while the enqueue waits.
"$SPOOL_BIN" enqueue capped late --wait 5s >"$T/late.out" 2>"$T/late.err" &
late=$!
sleep 0.4
check "wait: still waiting for room" alive "$late"
run work capped --max-tasks 1 --concurrency 1 --prefetch 1 --quiet \
    --exec "$CANARY" sleep 1
wait "$late"
rc=$?
check "wait: enqueue got room, exit 0 (got $rc)" test "$rc" -eq 0
is "wait: the task is in" "$(sql "SELECT payload FROM tasks WHERE id = $(cat "$T/late.out")")" late
is "wait: still at the limit" "$(sql "SELECT count(*) FROM tasks WHERE queue = 'capped' AND state = 'ready'")" "$limit"

# ---- kill -9 chaos --------------------------------------------------------
# 20 batches of 50 (3 of each will die) with hooks, made while 3 supervised
# workers run and a nemesis SIGKILLs one every 0.2-1 s; a few members are
# cancelled.  Then drain (30 s at most), and check every batch in the
# database.
seed=${BATCH_SEED:-$RANDOM}
echo "chaos seed $seed (replay: BATCH_SEED=$seed)"
RANDOM=$seed
dir="$T/chaos"
mkdir -p "$dir"
export SPOOL_DB="$dir/chaos.db"
"$SPOOL_BIN" init >/dev/null
"$SPOOL_BIN" queue create bw --lease 1s --backoff fixed --backoff-base 100ms \
    --jitter 0 --max-attempts 100 >/dev/null
nbatches=20

# check_batches DB: print what is wrong with the batches of DB, if
# anything, and fail then.
check_batches() {
	sqlite3 -batch "$1" "
SELECT 'batch ' || id || ' is ' || state FROM batches WHERE state != 'finished';
SELECT 'batch ' || b.id || ' counters ' || b.total || ' ' || b.pending ||
    ' ' || b.running || ' ' || b.succeeded || ' ' || b.failed || ' ' ||
    b.dead || ' ' || b.cancelled || ' but members ' || c.total || ' ' ||
    c.pending || ' ' || c.running || ' ' || c.succeeded || ' ' ||
    c.failed || ' ' || c.dead || ' ' || c.cancelled
  FROM batches b JOIN (SELECT bb.id AS id, count(t.id) AS total,
	count(*) FILTER (WHERE t.state = 'ready') AS pending,
	count(*) FILTER (WHERE t.state = 'running') AS running,
	count(*) FILTER (WHERE t.state = 'succeeded') AS succeeded,
	count(*) FILTER (WHERE t.state = 'dead' AND t.dead_reason = 'failed') AS failed,
	count(*) FILTER (WHERE t.state = 'dead' AND t.dead_reason != 'failed') AS dead,
	count(*) FILTER (WHERE t.state = 'cancelled') AS cancelled
      FROM batches bb LEFT JOIN tasks t ON t.batch_id = bb.id GROUP BY bb.id) c
    ON c.id = b.id
 WHERE (b.total, b.pending, b.running, b.succeeded, b.failed, b.dead,
    b.cancelled) IS NOT (c.total, c.pending, c.running, c.succeeded,
    c.failed, c.dead, c.cancelled);
SELECT 'batch ' || b.id || ' has ' || (SELECT count(*) FROM tasks h
    WHERE h.queue = 'hooks' AND json_extract(h.payload, '\$.batch') = b.id) ||
    ' hook tasks'
  FROM batches b WHERE (SELECT count(*) FROM tasks h WHERE h.queue = 'hooks'
    AND json_extract(h.payload, '\$.batch') = b.id) != 1;
SELECT 'batch ' || b.id || ': hook_task_id ' || ifnull(b.hook_task_id, 'NULL') ||
    ' is not its hook task'
  FROM batches b WHERE NOT EXISTS (SELECT 1 FROM tasks h
    WHERE h.id = b.hook_task_id AND h.queue = 'hooks' AND
    json_extract(h.payload, '\$.batch') = b.id);
SELECT 'batch ' || b.id || ': hook payload counts ' || h.payload
  FROM batches b JOIN tasks h ON h.id = b.hook_task_id
 WHERE json_extract(h.payload, '\$.total') IS NOT b.total OR
    json_extract(h.payload, '\$.succeeded') IS NOT b.succeeded OR
    json_extract(h.payload, '\$.failed') IS NOT b.failed OR
    json_extract(h.payload, '\$.dead') IS NOT b.dead OR
    json_extract(h.payload, '\$.cancelled') IS NOT b.cancelled;
SELECT h || ' hook tasks for ' || b || ' batches'
  FROM (SELECT (SELECT count(*) FROM tasks WHERE queue = 'hooks') AS h,
    (SELECT count(*) FROM batches) AS b) WHERE h != b;
SELECT 'only ' || n || ' batches'
  FROM (SELECT count(*) AS n FROM batches) WHERE n != $nbatches;
" >"$T/check.out" 2>&1
	[ $? -eq 0 ] && [ ! -s "$T/check.out" ]
}

# Three supervised workers: each task sleeps 10-40 ms; "bad" ones fail.
: >"$dir/nemesis.log"
sup=""
for i in 1 2 3; do
	(
		while [ ! -e "$dir/stop" ]; do
			"$SPOOL_BIN" work bw --concurrency 3 --quiet --exec /bin/sh -c \
			    'read -r p; sleep 0.0$((SPOOL_TASK_ID % 4 + 1)); case $p in bad*) exit 3;; esac' \
			    >>"$dir/worker.out" 2>>"$dir/worker.err" &
			echo $! >"$dir/w$i.pid"
			wait $!
		done
	) 2>>"$dir/supervisor.err" &
	sup="$sup $!"
done

# The producer: each batch gets 47 good and 3 bad tasks (2 attempts each);
# in every other one, one of the 47 is due in an hour and is cancelled (so
# the cancel never races a worker, as it would under a sanitizer's
# slowness).  Most are closed at once, while
# their members run; every fourth is closed only at the end, when its
# members may all have finished, so that the close finishes it.
(
	late=""
	for b in $(seq 1 $nbatches); do
		id=$("$SPOOL_BIN" batch create --hook hooks --description "chaos $b" \
		    --hook-payload "{\"n\":$b}")
		ngood=$((47 - (b % 2 == 0)))
		seq 1 $ngood | sed "s/^/good $b /" >"$dir/good"
		"$SPOOL_BIN" batch add "$id" bw --lines <"$dir/good" >/dev/null
		"$SPOOL_BIN" batch add "$id" bw "bad $b 1" "bad $b 2" \
		    "bad $b 3" --max-attempts 2 >/dev/null
		if [ $((b % 2)) -eq 0 ]; then
			later=$("$SPOOL_BIN" batch add "$id" bw "later $b" \
			    --delay 1h --json | sed 's/.*"first_id":\([0-9]*\).*/\1/')
			"$SPOOL_BIN" cancel "$later" >/dev/null
		fi
		if [ $((b % 4)) -eq 0 ]; then
			late="$late $id"
		else
			"$SPOOL_BIN" batch close "$id" >/dev/null
		fi
	done
	sleep 1
	for id in $late; do
		"$SPOOL_BIN" batch close "$id" >/dev/null
	done
) >"$dir/producer.out" 2>"$dir/producer.err" &
producer=$!

# The nemesis: while the producer works, for 6 s at least and 25 at most.
start=$(date +%s)
while { alive "$producer" || [ $(($(date +%s) - start)) -lt 6 ]; } &&
    [ $(($(date +%s) - start)) -lt 25 ]; do
	ms=$((200 + RANDOM % 801))	# 0.2 to 1 s
	sleep "$((ms / 1000)).$(printf %03d $((ms % 1000)))"
	i=$((RANDOM % 3 + 1))
	if [ -s "$dir/w$i.pid" ] && kill -9 "$(cat "$dir/w$i.pid")" 2>/dev/null; then
		echo "kill $(cat "$dir/w$i.pid")" >>"$dir/nemesis.log"
	fi
done
wait "$producer"
check "chaos: the producer had no error" test ! -s "$dir/producer.err"
check "chaos: the producer made every batch" test "$(sql "SELECT count(*) FROM batches WHERE state != 'open'")" -eq "$nbatches"

# Stop the workers (by pid; again if a supervisor had just started one),
# then drain until every batch is finished.
touch "$dir/stop"
for k in $(seq 1 100); do
	left=0
	for p in $sup; do
		alive "$p" && left=1
	done
	[ "$left" -eq 0 ] && break
	for i in 1 2 3; do
		kill -TERM "$(cat "$dir/w$i.pid")" 2>/dev/null
	done
	sleep 0.1
done
wait $sup
deadline=$(($(date +%s) + 30))
while [ "$(sql "SELECT count(*) FROM batches WHERE state != 'finished'")" -gt 0 ] &&
    [ "$(date +%s)" -lt "$deadline" ]; do
	"$SPOOL_BIN" work bw --until-empty --concurrency 6 --quiet --exec /bin/sh -c \
	    'read -r p; case $p in bad*) exit 3;; esac' >>"$dir/worker.out" 2>>"$dir/worker.err"
	sleep 0.2
done
for i in 1 2 3; do
	check "chaos: worker $i stopped" test -z "$(alive "$(cat "$dir/w$i.pid")" && echo alive)"
done

echo "chaos: $(grep -c '^kill' "$dir/nemesis.log") kills; $(sql "SELECT count(*) || ' tasks, ' || sum(state = 'succeeded') || ' succeeded, ' || sum(state = 'dead') || ' dead, ' || sum(state = 'cancelled') || ' cancelled' FROM tasks WHERE queue = 'bw'"); $(sql "SELECT count(*) FROM attempts WHERE outcome = 'lease_lost'") leases lost"
check "chaos: the nemesis killed workers" test "$(grep -c '^kill' "$dir/nemesis.log")" -ge 5
check "chaos: every batch finished, counted, hooked once" check_batches "$SPOOL_DB"
[ -s "$T/check.out" ] && sed 's/^/  /' "$T/check.out" | head -20 >&2
is "chaos: dead members" "$(sql "SELECT sum(dead) FROM batches")" $((nbatches * 3))
is "chaos: cancelled members" "$(sql "SELECT sum(cancelled) FROM batches")" $((nbatches / 2))
is "chaos: integrity" "$(sql 'PRAGMA integrity_check')" ok

# The checker can fail: a hook moved to another batch (one missing, one
# doubled), a hook inserted twice, and a counter off by one are caught.
caught() {
	if check_batches "$1"; then echo no; else echo yes; fi
}
cp "$SPOOL_DB" "$T/moved.db"
sqlite3 "$T/moved.db" "UPDATE tasks SET payload = json_set(payload, '\$.batch', 2) WHERE id = (SELECT hook_task_id FROM batches WHERE id = 1)"
is "checker: catches a moved hook" "$(caught "$T/moved.db")" yes
is "checker: one missing, one doubled" "$(grep -cE '^batch (1 has 0|2 has 2) hook tasks$' "$T/check.out")" 2
cp "$SPOOL_DB" "$T/doubled.db"
sqlite3 "$T/doubled.db" "INSERT INTO tasks (queue, state, priority, payload, run_at_ms, max_attempts, created_ms) SELECT queue, 'ready', priority, payload, run_at_ms, max_attempts, created_ms FROM tasks WHERE id = (SELECT hook_task_id FROM batches WHERE id = 3)"
is "checker: catches a doubled hook" "$(caught "$T/doubled.db")" yes
check "checker: names it" grep -qx 'batch 3 has 2 hook tasks' "$T/check.out"
cp "$SPOOL_DB" "$T/counter.db"
sqlite3 "$T/counter.db" "UPDATE batches SET succeeded = succeeded + 1 WHERE id = 4"
is "checker: catches a wrong counter" "$(caught "$T/counter.db")" yes
check "checker: names it" grep -q '^batch 4 counters' "$T/check.out"
finish

#!/bin/bash
# crash.sh -- a process dies at each named crash point (SPOOL_TEST_CRASH,
# src/lib/crash.c), as kill -9 would end it there; then a clean worker
# finishes the rest.  For each point: the process exits 86 and names the
# point, the file is whole, nothing committed is lost, a transaction cut
# short left nothing of itself, and what ran twice ran twice only
# because its outcome had not been committed (counted in the command's
# log and the attempts table).
. "$TESTS_SRCDIR/cli/lib.sh"
CANARY=${CANARY:-$(pwd)/tests/canary}
[ -x "$CANARY" ] || { echo "no canary at $CANARY" >&2; exit 99; }
LOG=$T/effects.log

# A fresh database with queue q: 1 s leases, retries at once.
fresh() {
	rm -f "$SPOOL_DB" "$SPOOL_DB-wal" "$SPOOL_DB-shm"
	: >"$LOG"
	"$SPOOL_BIN" init >/dev/null
	"$SPOOL_BIN" queue create q --lease 1s --backoff fixed \
	    --backoff-base 10ms --jitter 0 --max-attempts 10 >/dev/null
}

# Run spool with SPOOL_TEST_CRASH=$1; the rest are its arguments.
crash() {
	local point=$1
	shift
	SPOOL_TEST_CRASH=$point "$SPOOL_BIN" "$@" >"$T/.out" 2>"$T/.err" \
	    </dev/null
	rc=$?
	out=$(cat "$T/.out")
	err=$(cat "$T/.err")
}

# The crash asked for (POINT, or POINT:N) happened, and the file is whole.
crashed_at() {
	local named=$1
	case $named in *:*) ;; *) named=$named:1 ;; esac
	is "$1: exit 86" "$rc" 86
	check "$1: named on stderr" grep -q "^spool: crash point $named$" "$T/.err"
	is "$1: integrity" "$(sql 'PRAGMA integrity_check')" ok
}

# Work ARGS... (queues or --pipeline NAME, --exec ...) until no task is
# ready or running: leases of the crashed process expire (1 s) and the
# first claim after that reaps them.  Polls the state, at most 20 s.
drain() {
	local i left
	for i in $(seq 1 100); do
		left=$(sql "SELECT count(*) FROM tasks WHERE state IN ('ready', 'running')")
		[ "$left" -eq 0 ] && return 0
		"$SPOOL_BIN" work --until-empty --quiet "$@" >/dev/null \
		    2>>"$T/drain.err"
		sleep 0.2
	done
	return 1
}

starts() { grep -c "^start $1 " "$LOG"; }
outcomes() {
	sql "SELECT group_concat(outcome, ',') FROM (SELECT outcome FROM attempts WHERE task_id = $1 ORDER BY attempt)"
}
work_q() { drain q --concurrency 1 --exec "$CANARY" log "$LOG" 0; }

# enqueued: committed, not acknowledged (no id printed).  A producer that
# retries an enqueue it saw fail should give it a --key.
fresh
crash enqueued enqueue q '{"n":1}'
crashed_at enqueued
is "enqueued: no id printed" "$out" ""
is "enqueued: the task is there" "$(sql 'SELECT count(*) FROM tasks')" 1

# claim: leased, never started; the next worker runs it once.
fresh
id=$("$SPOOL_BIN" enqueue q '{"n":1}')
crash claim work q --concurrency 1 --exec "$CANARY" log "$LOG" 0
crashed_at claim
is "claim: leased" "$(sql "SELECT state FROM tasks WHERE id = $id")" running
is "claim: the command never started" "$(starts "$id")" 0
check "claim: drained" work_q
is "claim: succeeded" "$(sql "SELECT state FROM tasks WHERE id = $id")" succeeded
is "claim: one run" "$(starts "$id")" 1
is "claim: the lost lease, then the success" "$(outcomes "$id")" \
    lease_lost,succeeded

# exited, flush: the command ran, its outcome never committed: it runs
# again, and the attempts say why.
for point in exited flush; do
	fresh
	id=$("$SPOOL_BIN" enqueue q '{"n":1}')
	crash $point work q --concurrency 1 --exec "$CANARY" log "$LOG" 0
	crashed_at $point
	is "$point: ran once" "$(starts "$id")" 1
	is "$point: no outcome committed" \
	    "$(sql "SELECT count(*) FROM attempts WHERE task_id = $id")" 0
	check "$point: drained" work_q
	is "$point: succeeded" "$(sql "SELECT state FROM tasks WHERE id = $id")" \
	    succeeded
	is "$point: ran twice" "$(starts "$id")" 2
	is "$point: the lost lease, then the success" "$(outcomes "$id")" \
	    lease_lost,succeeded
done

# flushed: the outcome is committed; nothing runs again.
fresh
id=$("$SPOOL_BIN" enqueue q '{"n":1}')
crash flushed work q --concurrency 1 --exec "$CANARY" log "$LOG" 0
crashed_at flushed
is "flushed: succeeded" "$(sql "SELECT state FROM tasks WHERE id = $id")" \
    succeeded
check "flushed: drained" work_q
is "flushed: ran once" "$(starts "$id")" 1
is "flushed: one attempt" "$(outcomes "$id")" succeeded

# reap: the reaper read an expired lease and died before writing: the
# lease is still there, and the next reap records it once.
fresh
id=$("$SPOOL_BIN" enqueue q '{"n":1}')
crash claim work q --concurrency 1 --exec "$CANARY" log "$LOG" 0
is "reap: a lease left behind" "$rc" 86
wait_for "[ \"\$(sql \"SELECT lease_until_ms < CAST((julianday('now') - 2440587.5) * 86400000 AS INTEGER) FROM tasks WHERE id = $id\")\" = 1 ]" 100
crash reap work q --concurrency 1 --exec "$CANARY" log "$LOG" 0
crashed_at reap
is "reap: nothing written" "$(sql "SELECT state || ':' || (SELECT count(*) FROM attempts WHERE task_id = $id) FROM tasks WHERE id = $id")" \
    running:0
check "reap: drained" work_q
is "reap: one lost lease, one success" "$(outcomes "$id")" \
    lease_lost,succeeded
is "reap: ran once" "$(starts "$id")" 1

# settle: the member's outcome and its batch's hook are one transaction:
# neither is committed, then both are, the hook once.
fresh
"$SPOOL_BIN" queue create h >/dev/null
b=$("$SPOOL_BIN" batch create --hook h)
"$SPOOL_BIN" batch add "$b" q '{"n":1}' >/dev/null
"$SPOOL_BIN" batch close "$b" >/dev/null
crash settle work q --concurrency 1 --exec "$CANARY" log "$LOG" 0
crashed_at settle
is "settle: no outcome, no hook" \
    "$(sql "SELECT (SELECT count(*) FROM attempts) || ':' || (SELECT count(*) FROM tasks WHERE queue = 'h')")" 0:0
check "settle: drained" drain q h --concurrency 1 --exec "$CANARY" log "$LOG" 0
is "settle: the batch finished" \
    "$(sql "SELECT state FROM batches WHERE id = $b")" finished
is "settle: one hook" "$(sql "SELECT count(*) FROM tasks WHERE queue = 'h'")" 1

# handoff: stage a's outcome and the item's task in stage b are one
# transaction: stage b has no task until stage a's success is committed.
fresh
"$SPOOL_BIN" pipeline create p --stage "a:1=$CANARY log $LOG 0" \
    --stage "b:1=$CANARY log $LOG 0" >/dev/null
run=$("$SPOOL_BIN" pipeline run p x)
crash handoff work --pipeline p --lease 1s
crashed_at handoff
is "handoff: stage a ran, nothing committed" \
    "$(grep -c '^start' "$LOG"):$(sql "SELECT count(*) FROM attempts"):$(sql "SELECT count(*) FROM tasks WHERE queue = 'p/b'")" 1:0:0
check "handoff: drained" drain --pipeline p --lease 1s
is "handoff: the run finished, its item succeeded" \
    "$(sql "SELECT state || ':' || succeeded FROM pipeline_runs WHERE id = $run")" finished:1
is "handoff: one task in stage b" \
    "$(sql "SELECT count(*) FROM tasks WHERE queue = 'p/b'")" 1
is "handoff: stage b ran once" \
    "$(sql "SELECT count(*) FROM attempts a JOIN tasks t ON t.id = a.task_id WHERE t.queue = 'p/b'")" 1

# migrate: a file of schema 1 killed after each migration step is still
# of schema 1, rows and all; the next open migrates it whole.
steps=$(ls "$TESTS_SRCDIR/../sql/schema/"*.sql | wc -l)
for n in $(seq 1 $((steps - 1))); do
	rm -f "$SPOOL_DB" "$SPOOL_DB-wal" "$SPOOL_DB-shm"
	sqlite3 "$SPOOL_DB" <"$TESTS_SRCDIR/fixtures/schema-v1.sql"
	chmod 600 "$SPOOL_DB"
	before=$(sql "SELECT count(*) || ':' || group_concat(id || state, ',') FROM tasks")
	crash "migrate:$n" stats
	crashed_at "migrate:$n"
	is "migrate:$n: still schema 1" "$(sql 'PRAGMA user_version')" 1
	is "migrate:$n: rows as before" \
	    "$(sql "SELECT count(*) || ':' || group_concat(id || state, ',') FROM tasks")" \
	    "$before"
	run stats
	is "migrate:$n: the next open migrates" \
	    "$rc:$(sql 'PRAGMA user_version')" "0:$steps"
done

# A name that is no crash point is refused, not ignored.
crash nosuch enqueue q x
is "unknown point: exit 86" "$rc" 86
check "unknown point: said so" grep -q "no such crash point" "$T/.err"

finish

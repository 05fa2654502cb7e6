#!/bin/bash
# commands.sh -- every CLI command end to end against a real database,
# checking its output, its exit status and what it left in the tables.
. "$TESTS_SRCDIR/cli/lib.sh"

# --version, help.
run --version
check "--version" grep -qx 'spool [0-9.]*' <<<"$out"
run --help
check "--help exits 0" test "$rc" -eq 0
check "--help lists exit codes" grep -q '75  temporary' <<<"$out"
for c in init enqueue list show stats wait cancel retry pause resume purge \
    prune queue demo; do
	run "$c" --help
	check "$c --help" test "$rc" -eq 0
	check "$c --help usage line" grep -q "^usage: spool $c" <<<"$out"
	check "$c --help names --json" grep -q -- '--json' <<<"$out"
	run help "$c"
	check "help $c" grep -q "^usage: spool $c" <<<"$out"
done
run
check "no command: usage, exit 64" test "$rc" -eq 64

# init: mode 0600 whatever the umask, idempotent.
(umask 000; "$SPOOL_BIN" init >/dev/null)
is "init mode" "$(stat -c %a "$SPOOL_DB")" 600
run init
check "init again" test "$rc" -eq 0
is "schema version" "$(sql 'PRAGMA user_version')" "$(ls "$TESTS_SRCDIR"/../sql/schema/*.sql | wc -l)"
is "WAL mode" "$(sql 'PRAGMA journal_mode')" wal
export -n SPOOL_DB
(cd "$T" && "$SPOOL_BIN" init >/dev/null)
check "default database ./spool.db" test -f "$T/spool.db"
export SPOOL_DB="$T/test.db"

# enqueue: options land in the row.
run enqueue reports '{"day":"2026-11-27"}' --priority 7 --max-attempts 2
id=$out
check "enqueue prints an id" grep -qx '[0-9][0-9]*' <<<"$id"
is "payload is JSON text" "$(sql "SELECT json_extract(payload, '\$.day') FROM tasks WHERE id = $id")" 2026-11-27
is "priority" "$(sql "SELECT priority FROM tasks WHERE id = $id")" 7
is "max attempts" "$(sql "SELECT max_attempts FROM tasks WHERE id = $id")" 2
run enqueue reports later --delay 1h
is "delay: due in an hour" "$(sql "SELECT (run_at_ms - created_ms) / 60000 FROM tasks WHERE id = $out")" 60
run enqueue reports dated --at 2030-01-02T03:04:05Z
is "--at" "$(sql "SELECT run_at_ms FROM tasks WHERE id = $out")" 1893553445000
# --deadline counts from when the command read it, before it opened the
# database; the task's created_ms is later by up to the command's run time
# (90 ms under ASan unloaded, more on a busy machine), so the check is
# bounded by that time as measured, not by a fixed slack.
start=$(date +%s%N)
run enqueue reports dl --deadline 10m
took=$((($(date +%s%N) - start) / 1000000))
gap=$(sql "SELECT deadline_ms - created_ms FROM tasks WHERE id = $out")
check "deadline: 10 min from the command ($gap ms, command took $took ms)" \
    test "$gap" -le 600000 -a "$gap" -ge $((600000 - took))
run enqueue reports -- -starts-with-dash
is "payload after --" "$(sql "SELECT payload FROM tasks WHERE id = $out")" -starts-with-dash
run enqueue empty
is "empty payload" "$(sql "SELECT length(payload) FROM tasks WHERE id = $out")" 0

# Idempotency keys.
run enqueue cron x --key day-1
k1=$out
run enqueue cron x --key day-1
is "same key: same id" "$out" "$k1"
check "same key: exit 0" test "$rc" -eq 0
check "same key: says so" grep -q 'held by unfinished task' <<<"$err"
is "same key: one row" "$(sql "SELECT count(*) FROM tasks WHERE idem_key = 'day-1'")" 1
run enqueue other-queue x --key day-1
check "key is per queue" test "$out" != "$k1"

# Binary payload from stdin.
printf 'a\000b\377' >"$T/bin"
run_in "$T/bin" enqueue blobs -
bid=$out
is "binary stored as BLOB" "$(sql "SELECT typeof(payload) || length(payload) FROM tasks WHERE id = $bid")" blob4
is "binary bytes" "$(sql "SELECT hex(payload) FROM tasks WHERE id = $bid")" 610062FF
run show "$bid"
check "show binary" grep -q '<4 bytes>' <<<"$out"

# --lines: one transaction, contiguous ids, empty lines skipped.
printf 'one\ntwo\n\nthree\n' >"$T/in"
run_in "$T/in" enqueue bulk --lines --priority 3
check "--lines summary" grep -q '^enqueued 3 tasks: ids' <<<"$out"
is "--lines rows" "$(sql "SELECT count(*) FROM tasks WHERE queue = 'bulk' AND priority = 3")" 3
is "--lines contiguous" "$(sql "SELECT max(id) - min(id) FROM tasks WHERE queue = 'bulk'")" 2

# list: filters, order, pages.
run list --queue bulk
is "list rows" "$(grep -c . <<<"$out")" 4
check "list header" grep -q '^ID ' <<<"$out"
run list --queue bulk --desc --limit 1
check "list newest first" grep -q 'three' <<<"$out"
first=$(sql "SELECT min(id) FROM tasks WHERE queue = 'bulk'")
run list --queue bulk --after "$first"
is "list --after" "$(grep -c . <<<"$out")" 3
run list --state ready --queue nosuch
is "list empty" "$(grep -c . <<<"$out")" 1

# stats.
run stats bulk
check "stats row" grep -Eq '^bulk +3 +0 +0 +0 +0 +0' <<<"$out"
run stats
check "stats all queues" grep -q '^reports' <<<"$out"
check "stats scheduled column" grep -Eq '^reports +[0-9]+ +2 ' <<<"$out"

# show.
run show "$id"
check "show id" grep -q "^id: *$id" <<<"$out"
check "show state" grep -q '^state: *ready' <<<"$out"
check "show payload" grep -q '2026-11-27' <<<"$out"

# cancel and retry.
run cancel "$id"
check "cancel ready" grep -q "cancelled task $id" <<<"$out"
is "cancelled row" "$(sql "SELECT state FROM tasks WHERE id = $id")" cancelled
run cancel "$id"
check "cancel twice: exit 1" test "$rc" -eq 1
run retry "$id"
is "retried row" "$(sql "SELECT state || attempts FROM tasks WHERE id = $id")" ready0
run retry --queue nosuch
check "retry --queue unknown: exit 1" test "$rc" -eq 1
sql "UPDATE tasks SET state = 'dead', dead_reason = 'failed', finished_ms = 1 WHERE queue = 'bulk'"
run retry --queue bulk
check "retry --queue" grep -q 'retrying 3 dead tasks of bulk' <<<"$out"
is "retry --queue rows" "$(sql "SELECT count(*) FROM tasks WHERE queue = 'bulk' AND state = 'ready'")" 3

# pause, resume.
run pause bulk
is "paused" "$(sql "SELECT paused FROM queues WHERE name = 'bulk'")" 1
run stats bulk
check "stats shows paused" grep -q 'paused$' <<<"$out"
run resume bulk
is "resumed" "$(sql "SELECT paused FROM queues WHERE name = 'bulk'")" 0

# queue create, set, show, list.
run queue create mail --max-attempts 9 --backoff linear --backoff-base 2s \
    --backoff-cap 1m --jitter 0.5 --lease 45s --timeout 2m --max-depth 2 \
    --retention 1d --priority 4
check "queue create" test "$rc" -eq 0
is "queue row" "$(sql "SELECT max_attempts, backoff, backoff_base_ms, backoff_cap_ms, backoff_jitter, lease_ms, timeout_ms, max_depth, retention_ms, priority FROM queues WHERE name = 'mail'")" "9|linear|2000|60000|0.5|45000|120000|2|86400000|4"
run queue set mail --lease 1m
is "queue set changes one field" "$(sql "SELECT lease_ms || '/' || max_attempts FROM queues WHERE name = 'mail'")" 60000/9
run queue show mail
check "queue show" grep -q '^mail priority=4 attempts=9 backoff=linear' <<<"$out"
run queue list
check "queue list" grep -q '^mail ' <<<"$out"
run enqueue mail a
run enqueue mail b
is "new task takes queue priority" "$(sql "SELECT priority FROM tasks WHERE queue = 'mail' LIMIT 1")" 4
run enqueue mail c
check "depth limit: exit 75" test "$rc" -eq 75
check "depth limit: message" grep -q 'full' <<<"$err"
is "depth limit: nothing added" "$(sql "SELECT count(*) FROM tasks WHERE queue = 'mail'")" 2

# purge.
run purge bulk --dry-run
check "purge dry run" grep -q 'would delete 3 ready tasks of bulk' <<<"$out"
is "dry run deletes nothing" "$(sql "SELECT count(*) FROM tasks WHERE queue = 'bulk'")" 3
run purge bulk --yes
is "purged" "$(sql "SELECT count(*) FROM tasks WHERE queue = 'bulk'")" 0

# demo on its own database: the summary agrees with the tables.
DB="$T/demo.db"
run --db "$DB" demo --tasks 300 --fail 20
check "demo exit 0" test "$rc" -eq 0
check "demo summary" grep -q '^summary: 300 tasks in' <<<"$out"
check "demo progress" grep -q '300/300' <<<"$out"
s=$(sed -n 's/^  succeeded  \([0-9]*\).*/\1/p' <<<"$out")
d=$(sed -n 's/^  dead       \([0-9]*\).*/\1/p' <<<"$out")
is "demo succeeded = table" "$(sql "SELECT count(*) FROM tasks WHERE state = 'succeeded'")" "$s"
is "demo dead = table" "$(sql "SELECT count(*) FROM tasks WHERE state = 'dead'")" "$d"
is "demo all final" "$(sql "SELECT count(*) FROM tasks WHERE state IN ('ready', 'running')")" 0
is "demo results" "$(sql "SELECT count(*) FROM results")" "$s"
is "demo history has retries" "$(sql "SELECT count(*) > 0 FROM attempts WHERE outcome = 'failed'")" 1
is "demo integrity" "$(sql 'PRAGMA integrity_check')" ok
(cd "$T" && "$SPOOL_BIN" demo --tasks 20 >/dev/null)
check "demo default file" test -f "$T/spool-demo.db"

# wait: succeeded prints the result; dead exits 1; unfinished times out.
ok_id=$(sql "SELECT min(id) FROM tasks WHERE state = 'succeeded'")
run --db "$DB" wait "$ok_id"
check "wait succeeded: exit 0" test "$rc" -eq 0
is "wait prints the result" "$out" "$(sql "SELECT output FROM results WHERE task_id = $ok_id")"
dead_id=$(sql "SELECT min(id) FROM tasks WHERE state = 'dead'")
run --db "$DB" wait "$dead_id"
check "wait dead: exit 1" test "$rc" -eq 1
check "wait dead: says why" grep -q 'dead (exhausted): poison' <<<"$err"
run enqueue slow x
start=$(date +%s%N)
run wait "$out" --timeout 300ms
elapsed=$((($(date +%s%N) - start) / 1000000))
check "wait timeout: exit 75" test "$rc" -eq 75
check "wait timeout took about 300 ms ($elapsed)" test "$elapsed" -ge 290 -a "$elapsed" -lt 3000

# prune: finished tasks past --older-than go, with results and history.
run --db "$DB" prune --older-than 1h
check "prune recent: nothing" grep -q '^pruned 0 ' <<<"$out"
run --db "$DB" prune --older-than 0
check "prune all finished" grep -q "^pruned 300 " <<<"$out"
is "prune: results gone" "$(sql 'SELECT count(*) FROM results')" 0
is "prune: history gone" "$(sql 'SELECT count(*) FROM attempts')" 0
is "prune: foreign keys hold" "$(sql 'PRAGMA foreign_key_check')" ""

# A closed stdout is an I/O error, not a crash.
"$SPOOL_BIN" list >&- 2>"$T/.err"
rc=$?
check "closed stdout: exit 74 (got $rc)" test "$rc" -eq 74
finish

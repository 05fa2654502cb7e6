#!/bin/bash
# lines.sh -- "spool enqueue --lines" and "spool batch add --lines" stream
# their input into one transaction: the peak RSS of 3,000,000 lines is
# that of 100,000, every line is a task, and a bad line or a refused task
# near the end of a long input leaves nothing committed.  --wait reads
# the input again (a file, or a pipe through a temporary copy) once room
# appears.  LINES_BIG sets the long input's size (3000000).
. "$TESTS_SRCDIR/cli/lib.sh"

big=${LINES_BIG:-3000000}

# Run spool with stdin from a generator (a shell command), the generator
# and spool joined by a pipe; prints "EXIT MAXRSS_KB SECONDS", spool's
# stdout to $T/.out and its stderr to $T/.err.  The RSS is spool's own
# (wait4), not the generator's.
piped() {
	python3 - "$@" <<'EOF'
import os, subprocess, sys, time
gen, args = sys.argv[1], sys.argv[2:]
out = os.environ["T"]
t0 = time.monotonic()
g = subprocess.Popen(["sh", "-c", gen], stdout=subprocess.PIPE)
with open(out + "/.out", "wb") as o, open(out + "/.err", "wb") as e:
    p = subprocess.Popen([os.environ["SPOOL_BIN"]] + args, stdin=g.stdout,
                         stdout=o, stderr=e)
g.stdout.close()
_, status, ru = os.wait4(p.pid, 0)
g.wait()
print(os.waitstatus_to_exitcode(status), ru.ru_maxrss,
      "%.1f" % (time.monotonic() - t0))
EOF
}
export T
# Under AddressSanitizer, freed memory waits in a quarantine of up to
# 256 MB, which would hide what is measured here: no quarantine.
export ASAN_OPTIONS="${ASAN_OPTIONS:+$ASAN_OPTIONS:}quarantine_size_mb=0"

# Enqueue N numbered lines into a fresh database; sets rss and secs.
lines_into() {
	local n=$1 db=$2
	SPOOL_DB=$db "$SPOOL_BIN" init >/dev/null
	read -r rc rss secs < <(SPOOL_DB=$db piped "seq 1 $n" enqueue big --lines)
	out=$(cat "$T/.out")
	err=$(cat "$T/.err")
}

lines_into 100000 "$T/small.db"
check "100,000 lines: exit 0" test "$rc" -eq 0
is "100,000 lines: summary" "$out" "enqueued 100000 tasks: ids 1-100000"
small_rss=$rss
small_secs=$secs
DB=$T/small.db
is "100,000 lines: rows, contiguous ids, payloads" \
    "$(sql "SELECT count(*), max(id) - min(id), sum(CAST(payload AS INTEGER)) FROM tasks WHERE queue = 'big' AND state = 'ready'")" \
    "100000|99999|5000050000"
is "100,000 lines: the enqueued counter" \
    "$(sql "SELECT enqueued FROM spool_counters WHERE queue = 'big'")" 100000
unset DB
rm -f "$T/small.db"*

lines_into "$big" "$T/big.db"
check "$big lines: exit 0" test "$rc" -eq 0
is "$big lines: summary" "$out" "enqueued $big tasks: ids 1-$big"
DB=$T/big.db
is "$big lines: rows, contiguous ids, payloads" \
    "$(sql "SELECT count(*), max(id) - min(id), sum(CAST(payload AS INTEGER)) FROM tasks WHERE queue = 'big'")" \
    "$big|$((big - 1))|$((big * (big + 1) / 2))"
is "$big lines: the enqueued counter" \
    "$(sql "SELECT enqueued FROM spool_counters WHERE queue = 'big'")" "$big"
unset DB
rm -f "$T/big.db"*
# Flat: within 2 MB or 10% of the small run, whichever is more.
slack=$((small_rss / 10 > 2048 ? small_rss / 10 : 2048))
echo "peak RSS: 100,000 lines $small_rss kB (${small_secs}s)," \
    "$big lines $rss kB (${secs}s)"
check "peak RSS of $big lines ($rss kB) within $slack kB of 100,000's ($small_rss kB)" \
    test "$rss" -le $((small_rss + slack))

# A bad line near the end of a long input: nothing is committed.
"$SPOOL_BIN" init >/dev/null
printf 'first\n' | "$SPOOL_BIN" enqueue big --lines >/dev/null
snap() {
	sql "SELECT count(*), max(id), (SELECT seq FROM sqlite_sequence WHERE name = 'tasks'), (SELECT group_concat(queue || ':' || enqueued) FROM spool_counters) FROM tasks"
}
before=$(snap)
read -r rc rss secs < <(piped "seq 1 1000000; head -c 1048577 /dev/zero | tr '\\0' x; echo; seq 1 10" enqueue big --lines)
err=$(cat "$T/.err")
check "bad line 1000001 of 1000011: exit 65" test "$rc" -eq 65
is "bad line: one line on stderr" "$err" \
    "spool enqueue: line 1000001: payload too large (1048577 bytes, at most 1048576)"
is "bad line: no stdout" "$(cat "$T/.out")" ""
is "bad line: nothing committed" "$(snap)" "$before"

# A task refused near the end (the queue's depth limit): nothing either.
"$SPOOL_BIN" queue create capped --max-depth 200000 >/dev/null
before=$(snap)
read -r rc rss secs < <(piped "seq 1 200001" enqueue capped --lines)
err=$(cat "$T/.err")
check "200,001 lines into a queue of 200,000: exit 75" test "$rc" -eq 75
is "full: the task refused" "$err" \
    "spool enqueue: task 200001: queue capped is full (limit 200000 ready tasks)"
is "full: nothing committed" "$(snap)" "$before"
read -r rc rss secs < <(piped "seq 1 200000" enqueue capped --lines)
check "200,000 lines into it: exit 0" test "$rc" -eq 0
is "200,000: all in" "$(sql "SELECT count(*) FROM tasks WHERE queue = 'capped'")" 200000

# batch add --lines streams too: every task joins the batch.
run batch create
B=$out
read -r rc rss secs < <(piped "seq 1 50000" batch add "$B" bq --lines --json)
out=$(cat "$T/.out")
check "batch add 50,000 lines: exit 0" test "$rc" -eq 0
is "batch add: count, contiguous" "$(jq_py '[d["count"], d["last_id"] - d["first_id"], d["batch"]]')" \
    "[50000, 49999, $B]"
is "batch add: the batch's counters" \
    "$(sql "SELECT total, pending FROM batches WHERE id = $B")" "50000|50000"
is "batch add: its members" \
    "$(sql "SELECT count(*) FROM tasks WHERE batch_id = $B")" 50000
run batch close "$B"
run batch close "$B"
before=$(snap)
read -r rc rss secs < <(piped "seq 1 10000" batch add "$B" bq --lines)
check "batch add to a closed batch: exit 1" test "$rc" -eq 1
is "closed batch: nothing committed" "$(snap)" "$before"

# --wait: the input is read again once there is room.  A queue of 3 is
# full; an enqueue of 2 lines waits, from a file, then from a pipe, until
# purge makes room.
"$SPOOL_BIN" queue create room --max-depth 3 >/dev/null
printf 'a\nb\nc\n' | "$SPOOL_BIN" enqueue room --lines >/dev/null
printf 'one\n\ntwo\n' >"$T/two"
"$SPOOL_BIN" enqueue room --lines --wait 10s <"$T/two" >"$T/w.out" 2>"$T/w.err" &
w=$!
sleep 0.3
is "wait (file): nothing in yet" "$(sql "SELECT count(*) FROM tasks WHERE queue = 'room'")" 3
"$SPOOL_BIN" purge room --yes >/dev/null
wait "$w"
rc=$?
check "wait (file): exit 0 (got $rc: $(cat "$T/w.err"))" test "$rc" -eq 0
check "wait (file): summary" grep -q '^enqueued 2 tasks: ids' "$T/w.out"
is "wait (file): the lines" "$(sql "SELECT group_concat(payload, ' ') FROM tasks WHERE queue = 'room'")" "one two"
printf 'x\n' | "$SPOOL_BIN" enqueue room --lines >/dev/null
printf 'three\nfour\n' | "$SPOOL_BIN" enqueue room --lines --wait 10s \
    >"$T/w.out" 2>"$T/w.err" &
w=$!
sleep 0.3
is "wait (pipe): nothing in yet" "$(sql "SELECT count(*) FROM tasks WHERE queue = 'room'")" 3
"$SPOOL_BIN" purge room --yes >/dev/null
wait "$w"
rc=$?
check "wait (pipe): exit 0 (got $rc: $(cat "$T/w.err"))" test "$rc" -eq 0
check "wait (pipe): summary" grep -q '^enqueued 2 tasks: ids' "$T/w.out"
is "wait (pipe): the lines" "$(sql "SELECT group_concat(payload, ' ') FROM tasks WHERE queue = 'room'")" "three four"
printf 'y\n' | "$SPOOL_BIN" enqueue room --lines >/dev/null
run_in "$T/two" enqueue room --lines --wait 200ms
check "wait in vain: exit 75" test "$rc" -eq 75
is "wait in vain: message" "$err" \
    "spool enqueue: task 1: queue room is full (limit 3 ready tasks), still after waiting 200 ms"

finish

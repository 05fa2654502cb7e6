#!/bin/bash
# metrics.sh -- "spool stats" (table, --json, --prometheus) and "spool
# workers" against what the database holds: the counters agree with the
# rows after real work, the Prometheus output parses line by line and
# carries the same numbers, a live worker shows with its pid and a dead
# one's row is marked stale.
. "$TESTS_SRCDIR/cli/lib.sh"

run init
run queue create m --backoff fixed --backoff-base 100ms --jitter 0 --max-attempts 2
for i in $(seq 1 20); do "$SPOOL_BIN" enqueue m "ok $i" >/dev/null; done
for i in 1 2 3; do "$SPOOL_BIN" enqueue m "bad $i" >/dev/null; done
id=$("$SPOOL_BIN" enqueue m later --delay 1h)
"$SPOOL_BIN" cancel "$id" >/dev/null
"$SPOOL_BIN" enqueue m scheduled --delay 1h >/dev/null
"$SPOOL_BIN" enqueue other x >/dev/null
run work m --until-empty --concurrency 4 --quiet --exec /bin/sh -c \
    'read -r p; case $p in bad*) exit 3;; esac; echo "$p"'
sleep 0.3	# the failed ones wait out their 100 ms retry
run work m --until-empty --concurrency 4 --quiet --exec /bin/sh -c \
    'read -r p; case $p in bad*) exit 3;; esac; echo "$p"'

run stats
check "stats: exit 0" test "$rc" -eq 0
check "stats: header" grep -q '^QUEUE .*OK/MIN  *P95 RUN' <<<"$out"
check "stats: row for m" grep -qE '^m +0 +1 +0 +20 +3 +1 ' <<<"$out"

run stats m --json
mapfile -t v < <(printf '%s' "$out" | python3 -c '
import json, sys
d = json.load(sys.stdin)[0]
c = d["counters"]
print(c["enqueued"], c["claimed"], c["succeeded"], c["failed"], c["retried"], c["dead"], c["expired"], c["lease_lost"], c["cancelled"])
print(d["succeeded_last_minute"], d["run_ms"]["p50"] is not None, d["wait_ms"]["p99"] is not None)
')
is "stats --json: counters" "${v[0]}" "25 26 20 6 3 3 0 0 1"
is "stats --json: the counters are the rows'" "${v[0]}" "$(sql "SELECT (SELECT count(*) FROM tasks WHERE queue = 'm') || ' ' ||
    (SELECT count(*) FROM attempts a JOIN tasks t ON t.id = a.task_id WHERE t.queue = 'm') || ' ' ||
    (SELECT count(*) FROM attempts a JOIN tasks t ON t.id = a.task_id WHERE t.queue = 'm' AND outcome = 'succeeded') || ' ' ||
    (SELECT count(*) FROM attempts a JOIN tasks t ON t.id = a.task_id WHERE t.queue = 'm' AND outcome = 'failed') || ' 3 ' ||
    (SELECT count(*) FROM tasks WHERE queue = 'm' AND state = 'dead') || ' 0 0 ' ||
    (SELECT count(*) FROM tasks WHERE queue = 'm' AND state = 'cancelled')")"
is "stats --json: last minute, percentiles" "${v[1]}" "20 True True"
is "counters table" "$(sql "SELECT enqueued FROM spool_counters WHERE queue = 'other'")" 1

# Prometheus: every line a comment or NAME{LABELS} VALUE, each name with
# its HELP and TYPE first; the values are the database's.
run stats --prometheus
check "prometheus: exit 0" test "$rc" -eq 0
printf '%s\n' "$out" >"$T/prom"
python3 - "$T/prom" >"$T/prom.check" 2>&1 <<'PY'
import re, sys
typed, bad = {}, []
sample = re.compile(r'^([a-z_]+)\{((?:[a-z_]+="(?:[^"\\]|\\.)*",?)+)\} (-?[0-9]+(?:\.[0-9]+)?)$')
for n, line in enumerate(open(sys.argv[1]), 1):
    line = line.rstrip("\n")
    if line.startswith("# HELP "):
        continue
    if line.startswith("# TYPE "):
        _, _, name, kind = line.split(" ")
        typed[name] = kind
        continue
    m = sample.match(line)
    if not m:
        bad.append(f"line {n}: {line!r}")
    elif m.group(1) not in typed:
        bad.append(f"line {n}: {m.group(1)} has no TYPE")
    elif typed[m.group(1)] == "counter" and not m.group(1).endswith("_total"):
        bad.append(f"line {n}: counter without _total")
if bad:
    print("\n".join(bad))
sys.exit(1 if bad else 0)
PY
check "prometheus: well formed" test $? -eq 0
[ -s "$T/prom.check" ] && sed 's/^/  /' "$T/prom.check" >&2
check "prometheus: ready gauge" grep -qx 'spool_tasks{queue="m",state="scheduled"} 1' "$T/prom"
check "prometheus: succeeded counter" grep -qx 'spool_succeeded_total{queue="m"} 20' "$T/prom"
check "prometheus: dead counter" grep -qx 'spool_dead_total{queue="m"} 3' "$T/prom"
check "prometheus: other queue" grep -qx 'spool_enqueued_total{queue="other"} 1' "$T/prom"
check "prometheus: quantiles" grep -q '^spool_run_seconds{queue="m",quantile="0.95"} ' "$T/prom"
run queue create 'we"ird\q' >/dev/null
run stats --prometheus
check "prometheus: label escaped" grep -qF 'spool_tasks{queue="we\"ird\\q",state="ready"} 0' <<<"$out"

# Workers: a live one, then a dead one's row.
"$SPOOL_BIN" work m other --quiet --concurrency 3 --exec /bin/cat >/dev/null 2>&1 &
w=$!
check "workers: the row appears" wait_for "[ -n \"\$(sql 'SELECT 1 FROM workers')\" ]"
run workers --json
mapfile -t v < <(printf '%s' "$out" | python3 -c '
import json, sys
d = json.load(sys.stdin)["workers"]
print(len(d), d[0]["pid"], d[0]["queues"], d[0]["concurrency"], d[0]["stale"])
')
is "workers --json" "${v[0]}" "1 $w ['m', 'other'] 3 False"
run workers
check "workers: table" grep -qE "^[^ ]+ +$w +0/3 " <<<"$out"
check "workers: queues as the row holds them" grep -qE " \[\"m\",\"other\"\]$" <<<"$out"
is "workers --json: queues as the row holds them" "$(printf '%s' "$(run workers --json; echo "$out")" | grep -o '"queues":\[[^]]*\]')" "\"queues\":$(sql 'SELECT queues FROM workers')"
run stats m --json
is "stats: the live worker" "$(printf '%s' "$out" | python3 -c 'import json,sys; d=json.load(sys.stdin)[0]; print(d["workers"], d["worker_threads"])')" "1 3"
kill -TERM "$w"
wait "$w"
is "workers: the row goes with its process" "$(sql 'SELECT count(*) FROM workers')" 0
sql "INSERT INTO workers (id, host, pid, queues, concurrency, busy, started_ms, heartbeat_ms) VALUES ('h:9:x', 'h', 9, '[\"m\"]', 2, 1, 1000, 1000)"
run workers
check "workers: a dead process is STALE" grep -qE '^h +9 +1/2 .* STALE' <<<"$out"

# The event log of spool work: one line per event with its level; the
# time first, or a syslog priority when stderr is the journal.
for i in 1 2 3; do "$SPOOL_BIN" enqueue lg "ok $i" >/dev/null; done
"$SPOOL_BIN" enqueue lg bad --max-attempts 2 >/dev/null
"$SPOOL_BIN" work lg --until-empty --quiet --log-level debug --exec /bin/sh -c \
    'read -r p; case $p in bad*) exit 3;; esac' >/dev/null 2>"$T/log"
check "log: every line has a time and a level" test "$(grep -cvE '^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9:.]+Z spool work: (error|warning|notice|info|debug): ' "$T/log")" -eq 0
check "log: started" grep -qE ' info: started: pid [0-9]+, 1 queue' "$T/log"
is "log: a debug line per success" "$(grep -c ' debug: task [0-9]* (lg) attempt 1 succeeded in ' "$T/log")" 3
check "log: the failure, as a warning" grep -q ' warning: task [0-9]* (lg) attempt 1 failed, will be retried: exit 3' "$T/log"
check "log: stopped" grep -q ' info: stopped after ' "$T/log"
"$SPOOL_BIN" enqueue lg2 x >/dev/null
"$SPOOL_BIN" work lg2 --until-empty --quiet --log-level warning --exec /bin/true >/dev/null 2>"$T/log2"
is "log: --log-level warning hides info" "$(wc -l <"$T/log2")" 0
: >"$T/jlog"
"$SPOOL_BIN" enqueue lg2 y >/dev/null
JOURNAL_STREAM=$(stat -c '%d:%i' "$T/jlog") "$SPOOL_BIN" work lg2 --until-empty \
    --quiet --log-level debug --exec /bin/true >/dev/null 2>>"$T/jlog"
check "log: journald priorities" grep -q '^<6>spool work: info: started' "$T/jlog"
check "log: journald debug" grep -q '^<7>spool work: debug: task ' "$T/jlog"
check "log: no time under journald" test "$(grep -c '^<[0-9]>' "$T/jlog")" -eq "$(wc -l <"$T/jlog")"
run work lg2 --until-empty --log-level loud --exec /bin/true
is "log: bad --log-level: exit 64" "$rc" 64

run stats --json --prometheus
is "stats --json --prometheus: exit 64" "$rc" 64
run stats nope
is "stats of a missing queue: exit 1" "$rc" 1
finish

#!/bin/bash
# pipeline.sh -- "spool pipeline" and "spool work --pipeline" end to end:
# define (flags and a file), list, show, versions, delete; runs with
# their results and hook; each error strategy (retry with its delay,
# skip, fail_fast cancelling the rest and stopping a running command);
# a stage timeout killing a stuck command; stages spread over processes;
# status figures against the history rows; bad input refused with one
# line and no change; then kill -9 chaos: 1000 items (PIPE_CHAOS_ITEMS)
# through 3 stages of commands that log every start and side effect while
# workers are killed, after which every item is final, no stage's effect
# happened after that stage committed, and the history matches the log.
# The chaos seed is printed; replay one with PIPE_SEED=SEED.
. "$TESTS_SRCDIR/cli/lib.sh"

jv() {
	mapfile -t v < <(printf '%s' "$out" | python3 -c '
import json, sys
d = json.load(sys.stdin)
for e in sys.argv[1:]:
    x = eval(e)
    print(json.dumps(x) if isinstance(x, (dict, list, bool)) or x is None else x)
' "$@")
}

# drain PIPELINE RUN [WORK-OPTION...]: work the pipeline until the run
# finishes (a worker with --until-empty would stop while items wait out a
# retry delay), then stop the worker by its pid; sets rc as "pipeline
# wait" left it.
drain() {
	local p=$1 r=$2 w
	shift 2
	"$SPOOL_BIN" work --pipeline "$p" --quiet "$@" >"$T/drain.out" \
	    2>"$T/drain.err" &
	w=$!
	run pipeline wait "$r" --timeout 60s
	local wrc=$rc wout=$out
	kill -TERM "$w" 2>/dev/null
	wait "$w"
	rc=$wrc
	out=$wout
}

# Help.
run pipeline --help
check "pipeline --help: exit 0" test "$rc" -eq 0
check "pipeline --help lists the subcommands" test "$(grep -cE '^  (create|list|show|delete|run|runs|status|items|history|wait|cancel) ' <<<"$out")" -eq 11
for s in create list show delete run runs status items history wait cancel; do
	run pipeline "$s" --help
	check "pipeline $s --help" grep -q "^usage: spool pipeline $s" <<<"$out"
done
run pipeline create --help
check "create --help explains a stage" grep -q 'NAME:CONCURRENCY\[:OPTION,...\]=COMMAND' <<<"$out"
run work --help
check "work --help: --pipeline" grep -q -- '^  --pipeline NAME ' <<<"$out"

# ---- define ---------------------------------------------------------------
run init
cat >"$T/up" <<'EOF'
#!/bin/sh
tr a-z A-Z
EOF
chmod +x "$T/up"
run pipeline create text --stage "up:2=$T/up" --stage 'rev:2:skip=rev' \
    --stage 'wrap:1:fail_fast,timeout=5s=sed "s/^/[/;s/$/]/"'
check "create: exit 0" test "$rc" -eq 0
check "create: shows version 1" grep -q '^pipeline text version 1, 3 stages' <<<"$out"
check "create: shows the stages as written" grep -qF '  3 wrap:1:fail_fast,timeout=5s=sed "s/^/[/;s/$/]/"' <<<"$out"
is "create: stage rows" "$(sql "SELECT group_concat(idx || ' ' || name || ' ' || queue || ' ' || concurrency || ' ' || on_error || ' ' || retries || ' ' || retry_delay_ms || ' ' || timeout_ms, ',') FROM pipeline_stages")" \
    "1 up text/up 2 retry 3 1000 0,2 rev text/rev 2 skip 0 0 0,3 wrap text/wrap 1 fail_fast 0 0 5000"
is "create: stage queues" "$(sql "SELECT group_concat(name) FROM (SELECT name FROM queues ORDER BY name)")" "text/rev,text/up,text/wrap"
run pipeline show text --json
jv 'd["version"]' 'd["current"]' 'd["stages"][0]["command"]' 'd["stages"][2]["timeout_ms"]'
is "show --json" "${v[*]}" "1 true $T/up 5000"
cat >"$T/def" <<'EOF'
# a definition file: one stage per line
fetch:3:retry=2,delay=250ms = cat

  parse:2=tr a-z A-Z   
EOF
run pipeline create other --file "$T/def" --json
jv 'd["stages"][0]["retries"]' 'd["stages"][0]["retry_delay_ms"]' 'd["stages"][1]["command"]'
is "create --file" "${v[*]}" "2 250 tr a-z A-Z"
run pipeline list
check "list: both" test "$(grep -cE '^(text|other) ' <<<"$out")" -eq 2
check "list: stage order" grep -q 'up > rev > wrap' <<<"$out"

# ---- a run, its results, its hook -----------------------------------------
printf 'one\ntwo\n\nthree\n' >"$T/lines"
run_in "$T/lines" pipeline run text --lines --hook fin --hook-payload '{"k":1}' --json
jv 'd["run"]' 'len(d["items"])'
R=${v[0]}
is "run --lines: 3 items (blank line skipped)" "${v[1]}" 3
run work --pipeline text --until-empty --quiet
check "work --pipeline: exit 0" test "$rc" -eq 0
check "work --pipeline: summary" grep -q '9 tasks .* 9 succeeded' <<<"$out"
run pipeline wait "$R"
check "wait: exit 0" test "$rc" -eq 0
check "wait: counts" grep -q "^run $R finished: 3 items, 3 succeeded" <<<"$out"
run pipeline items "$R" --json
jv '[i["result"] for i in d["items"]]' '[i["state"] for i in d["items"]]'
is "items: results through the 3 stages" "${v[0]}" '["[ENO]", "[OWT]", "[EERHT]"]'
is "items: states" "${v[1]}" '["succeeded", "succeeded", "succeeded"]'
is "hook: one task with the run's counts" "$(sql "SELECT json_extract(payload, '\$.run') || ' ' || json_extract(payload, '\$.succeeded') || ' ' || json_extract(payload, '\$.payload.k') FROM tasks WHERE queue = 'fin'")" "$R 3 1"
run pipeline status "$R" --json
jv 'd["state"]' '[s["done"] for s in d["stages"]]' 'd["hook_task_id"] is not None'
is "status --json" "${v[*]}" "finished [3, 3, 3] true"
I1=$(sql "SELECT min(id) FROM pipeline_items WHERE run_id = $R")
run pipeline history "$I1" --json
jv '[(a["stage"], a["attempt"], a["outcome"]) for a in d["attempts"]]'
is "history: one attempt per stage" "${v[0]}" '[["up", 1, "succeeded"], ["rev", 1, "succeeded"], ["wrap", 1, "succeeded"]]'
is "history view: same rows" "$(sql "SELECT group_concat(stage || ':' || outcome) FROM (SELECT * FROM spool_stage_history WHERE item = $I1 ORDER BY stage_index)")" "up:succeeded,rev:succeeded,wrap:succeeded"
is "progress view" "$(sql "SELECT group_concat(stage || ':' || done, ',') FROM (SELECT * FROM spool_pipeline_progress WHERE run = $R ORDER BY stage_index)")" "up:3,rev:3,wrap:3"

# ---- versions -------------------------------------------------------------
run pipeline run text a b
R2=$out
run pipeline create text --stage 'up:1=cat'
is "redefine with a run unfinished: exit 1" "$rc" 1
check "redefine: says why" grep -q 'unfinished run' <<<"$err"
run pipeline create text --stage 'up:1=cat' --force
check "redefine --force: version 2" grep -q '^pipeline text version 2, 1 stage$' <<<"$out"
run pipeline run text c
R3=$out
run work --pipeline text --until-empty --quiet
run pipeline items "$R2" --json
jv '[i["result"] for i in d["items"]]'
is "the old run finished under version 1" "${v[0]}" '["[A]", "[B]"]'
run pipeline items "$R3" --json
jv '[i["result"] for i in d["items"]]'
is "the new run under version 2" "${v[0]}" '["c"]'
run pipeline show text --version 1
check "show --version 1: retired" grep -q '^pipeline text version 1 (retired), 3 stages' <<<"$out"
run pipeline runs text --json
jv '[(r["id"], r["version"], r["state"]) for r in d["runs"]]'
is "runs" "${v[0]}" "[[$R, 1, \"finished\"], [$R2, 1, \"finished\"], [$R3, 2, \"finished\"]]"

# ---- strategies -----------------------------------------------------------
# retry: fails twice per item (a counter file per item), 300 ms apart.
cat >"$T/flaky" <<EOF
#!/bin/sh
f="$T/flaky.\$SPOOL_ITEM_ID"
n=\$(cat "\$f" 2>/dev/null || echo 0)
echo \$((n + 1)) >"\$f"
[ "\$n" -ge 2 ] || { echo "flake \$n" >&2; exit 1; }
cat
EOF
chmod +x "$T/flaky"
run pipeline create retry --stage "f:2:retry=2,delay=300ms=$T/flaky"
run pipeline run retry x y
R=$out
drain retry "$R"
is "retry: both succeeded on their third attempt" "$rc" 0
is "retry: attempts per item" "$(sql "SELECT group_concat(n) FROM (SELECT count(*) AS n FROM spool_stage_history h JOIN pipeline_items i ON i.id = h.item WHERE i.run_id = $R GROUP BY h.item)")" "3,3"
is "retry: 300 ms apart at least" "$(sql "SELECT count(*) FROM attempts a JOIN attempts b ON b.task_id = a.task_id AND b.attempt = a.attempt + 1 JOIN tasks t ON t.id = a.task_id JOIN pipeline_items i ON i.id = t.item_id WHERE i.run_id = $R AND b.started_ms - a.finished_ms < 300")" 0
is "retry: the error of a failed attempt" "$(sql "SELECT error FROM spool_stage_history h JOIN pipeline_items i ON i.id = h.item WHERE i.run_id = $R AND h.attempt = 2 LIMIT 1")" "exit 1: flake 1"
# ... and gives up: the item fails after 1 + 2 attempts.
run pipeline create retry --stage 'f:1:retry=2,delay=100ms=false'
run pipeline run retry z
R=$out
drain retry "$R"
is "retry exhausted: wait exits 1" "$rc" 1
is "retry exhausted: item failed after 3 attempts" "$(sql "SELECT i.state || ' ' || (SELECT count(*) FROM attempts WHERE task_id = i.task_id) FROM pipeline_items i WHERE run_id = $R")" "failed 3"

# skip: "bad" inputs are skipped; the others go on.
cat >"$T/picky" <<'EOF'
#!/bin/sh
read -r x
case $x in bad*) echo "refused $x" >&2; exit 1;; esac
echo "ok $x"
EOF
chmod +x "$T/picky"
run pipeline create skip --stage "a:2:skip=$T/picky" --stage 'b:1=cat'
run pipeline run skip good1 bad1 good2 bad2 good3
R=$out
run work --pipeline skip --until-empty --quiet
run pipeline status "$R" --json
jv 'd["succeeded"]' 'd["skipped"]' 'd["stages"][0]["skipped"]' 'd["stages"][1]["done"]' 'd["state"]'
is "skip: 3 through, 2 skipped in stage a" "${v[*]}" "3 2 2 3 finished"
run pipeline items "$R"
check "items: a skipped item shows its error" grep -q 'skipped .* refused bad1' <<<"$out"

# fail_fast: item "boom" fails; waiting items are cancelled; "slow" is
# running a long command, which is told to stop (SIGTERM).
cat >"$T/ff" <<'EOF'
#!/bin/sh
read -r x
case $x in
boom) sleep 0.3; exit 9;;
slow) exec sleep 30.17;;
esac
echo "$x"
EOF
chmod +x "$T/ff"
run pipeline create ff --stage "a:2:fail_fast=$T/ff" --stage 'b:1=cat'
run pipeline run ff slow boom w1 w2 w3 w4 --hook fin --hook-on success
R=$out
start=$(date +%s%N)
run work --pipeline ff --until-empty --quiet
elapsed=$((($(date +%s%N) - start) / 1000000))
# "boom" fails after 0.3 s; the stop reaches "slow" within about a
# second whatever the lease (30 s: renewals come every 10 s).
check "fail_fast: the sleep was stopped promptly (took ${elapsed} ms)" test "$elapsed" -lt 3000
run pipeline status "$R" --json
jv 'd["state"]' 'd["failed"]' 'd["cancelled"]' 'd["succeeded"]' '"boom" in d["error"] or "stage a" in d["error"]' 'd["hook_task_id"]'
is "fail_fast: 1 failed, the other 5 cancelled, no hook" "${v[*]}" "finished 1 5 0 true null"
is "fail_fast: the running one was cancelled" "$(sql "SELECT outcome FROM spool_stage_history h JOIN pipeline_items i ON i.id = h.item WHERE i.run_id = $R AND i.id = (SELECT min(id) FROM pipeline_items WHERE run_id = $R)")" cancelled
# Durations no other test uses: tests run in parallel (make -j).
check "fail_fast: no sleep 30.17 left" test -z "$(pgrep -f 'sleep 30\.17' || true)"

# A stage timeout kills a stuck command; skip applies.
run pipeline create to --stage 'a:2:skip,timeout=500ms=sleep 60.17' --stage 'b:1=cat'
run pipeline run to p q
R=$out
start=$(date +%s)
run work --pipeline to --until-empty --quiet --grace 200ms
elapsed=$(($(date +%s) - start))
check "timeout: killed in time (${elapsed}s)" test "$elapsed" -lt 10
is "timeout: both skipped" "$(sql "SELECT skipped || ' ' || state FROM pipeline_runs WHERE id = $R")" "2 finished"
is "timeout: history says timed_out" "$(sql "SELECT group_concat(outcome) FROM spool_stage_history WHERE run = $R")" "timed_out,timed_out"
check "timeout: no sleep 60.17 left" test -z "$(pgrep -f 'sleep 60\.17' || true)"

# An output cut at 1 MiB is not handed on: the stage fails.
run pipeline create big --stage 'a:1:skip=head -c 2000000 /dev/zero' --stage 'b:1=wc -c'
run pipeline run big x
R=$out
run work --pipeline big --until-empty --quiet
is "truncated output: the item is skipped in stage a" "$(sql "SELECT state || ' ' || stage FROM pipeline_items WHERE run_id = $R")" "skipped 1"
check "truncated output: says why" grep -q 'output larger than 1048576 bytes' <<<"$(sql "SELECT last_error FROM tasks WHERE queue = 'big/a'")"

# Stages spread over processes: b and c in one worker, a in another.
run pipeline create spread --stage 'a:2=cat' --stage 'b:2=cat' --stage 'c:1=cat'
seq 1 40 >"$T/forty"
run_in "$T/forty" pipeline run spread --lines
R=$out
"$SPOOL_BIN" work --pipeline spread --stage b,c --quiet >"$T/bc.out" 2>"$T/bc.err" &
bc=$!
run work --pipeline spread --stage a --until-empty --quiet
is "spread: the a worker ran only a" "$(sql "SELECT count(DISTINCT t.stage_id) FROM attempts a JOIN tasks t ON t.id = a.task_id JOIN pipeline_items i ON i.id = t.item_id WHERE i.run_id = $R AND a.worker = (SELECT worker FROM attempts a2 JOIN tasks t2 ON t2.id = a2.task_id WHERE t2.queue = 'spread/a' LIMIT 1)")" 1
run pipeline wait "$R" --timeout 30s
is "spread: the run finished" "$rc" 0
kill -TERM "$bc"
wait "$bc"
is "spread: the b,c worker stopped cleanly" "$?" 0

# Status figures are the history's.
is "status vs history: done" "$(sql "SELECT count(*) FROM spool_stage_history WHERE run = $R AND stage = 'b' AND outcome = 'succeeded'")" 40
run pipeline status "$R" --json
jv '[s["done"] for s in d["stages"]]' 'd["stages"][1]["attempts"]' 'd["stages"][1]["avg_ms"]'
is "status: done per stage" "${v[0]}" "[40, 40, 40]"
is "status: attempts = history rows" "${v[1]}" "$(sql "SELECT count(*) FROM spool_stage_history WHERE run = $R AND stage = 'b'")"
# The same mean in ms, not rounded two ways (Python rounds half to even,
# SQLite half away from zero: 10.5 ms was 10 against 11).
hist_avg=$(sql "SELECT avg(duration_s) * 1000 FROM spool_stage_history WHERE run = $R AND stage = 'b' AND outcome = 'succeeded'")
check "status: average = history's (${v[2]} vs $hist_avg ms)" python3 -c 'import sys; sys.exit(abs(float(sys.argv[1]) - float(sys.argv[2])) > 0.01)' "${v[2]}" "$hist_avg"

# ---- cancel, delete -------------------------------------------------------
run pipeline run spread x y
R=$out
run pipeline cancel "$R"
check "cancel: exit 0" test "$rc" -eq 0
is "cancel: items cancelled" "$(sql "SELECT cancelled || ' ' || state FROM pipeline_runs WHERE id = $R")" "2 finished"
run pipeline run spread x
run pipeline delete spread
is "delete with a run unfinished: exit 1" "$rc" 1
run pipeline delete spread --force
check "delete --force" grep -q '^deleted pipeline spread' <<<"$out"
run pipeline show spread
is "deleted: show exits 1" "$rc" 1
is "deleted: its run was cancelled" "$(sql "SELECT count(*) FROM pipeline_runs r JOIN pipelines p ON p.id = r.pipeline_id WHERE p.name = 'spread' AND r.state != 'finished'")" 0

# ---- bad input ------------------------------------------------------------
bad_start
printf '\n\n' >"$T/blank"
printf 'a:1=cat\n\0' >"$T/nul"
bad 64 pipeline
bad 64 pipeline frob
bad 64 pipeline create
bad 64 pipeline create p
bad 64 pipeline create p --stage 'a'
bad 64 pipeline create p --stage 'a:1'
bad 64 pipeline create p --stage 'a:x=cat'
bad 64 pipeline create p --stage 'a:0=cat'
bad 64 pipeline create p --stage 'a:1025=cat'
bad 64 pipeline create p --stage 'a:1:=cat'
bad 64 pipeline create p --stage 'a:1:nope=cat'
bad 64 pipeline create p --stage 'a:1:retry=x=cat'
bad 64 pipeline create p --stage 'a:1:delay=5x=cat'
bad 64 pipeline create p --stage 'a:1:delay=-1s=cat'
bad 64 pipeline create p --stage 'a:1:skip,retry=2=cat'
bad 64 pipeline create p --stage 'a:1:fail_fast,delay=1s=cat'
bad 64 pipeline create p --stage 'a:1:timeout=1s'
bad 64 pipeline create p --stage 'a:1=  '
bad 64 pipeline create p --stage 'a:1=cat' --file "$T/def"
bad 65 pipeline create p --stage 'a:1=cat' --stage 'a:1=cat'
bad 65 pipeline create p --stage "a:1=echo 'open"
bad 65 pipeline create p --stage 'a b:1=cat'
bad 65 pipeline create 'p/q' --stage 'a:1=cat'
bad 65 pipeline create "$(printf 'x%.0s' $(seq 1 65))" --stage 'a:1=cat'
bad 66 pipeline create p --file "$T/missing"
bad 64 pipeline create p --file "$T/blank"
bad 65 pipeline create p --file "$T/nul"
bad 1 pipeline show nope
bad 64 pipeline show text --version 0
bad 1 pipeline show text --version 9
bad 64 pipeline run
bad 64 pipeline run text
bad 1 pipeline run nope x
bad 64 pipeline run text x --lines
bad 65 "<$T/blank" pipeline run text --lines
bad 64 pipeline run text x - -
bad 64 pipeline run text x --hook-on success
bad 64 pipeline run text x --hook h --hook-on sometimes
bad 65 pipeline run text x --hook 'a
b'
bad 64 pipeline status
bad 64 pipeline status x
bad 64 pipeline status 0
bad 1 pipeline status 999
bad 64 pipeline history -3
bad 1 pipeline history 999
bad 1 pipeline items 999
bad 64 pipeline items 1 --limit 0
bad 64 pipeline wait 1 --timeout soon
bad 1 pipeline cancel 999
bad 1 pipeline delete nope
bad 64 pipeline delete
bad 64 work --pipeline text extra
bad 64 work --pipeline text --exec cat
bad 64 work --pipeline text --concurrency 2
bad 64 work --pipeline text --timeout 1s
bad 64 work q --stage a --exec cat
bad 64 work --pipeline text --stage up --stage up
bad 64 work
bad 1 work --pipeline nope --until-empty
bad 65 work --pipeline text --stage zz --until-empty

# ---- kill -9 chaos --------------------------------------------------------
# PIPE_CHAOS_ITEMS items (default 1000; CI's sanitizer build runs fewer)
# through 3 stages whose command logs "start" when it begins
# and "effect" when it has done its work, then prints its output; 3
# supervised workers with 1 s leases; a nemesis SIGKILLs one every 0.2 to
# 1 s for 12 s.  Then drain, and check the run, the items and the log
# against the history.
seed=${PIPE_SEED:-$RANDOM}
items=${PIPE_CHAOS_ITEMS:-1000}
echo "chaos seed $seed (replay: PIPE_SEED=$seed)"
RANDOM=$seed
dir="$T/chaos"
mkdir -p "$dir"
export SPOOL_DB="$dir/chaos.db"
LOG="$dir/effects.log"
: >"$LOG"
"$SPOOL_BIN" init >/dev/null
cat >"$dir/stage" <<EOF
#!/bin/bash
echo "start \$SPOOL_ITEM_ID \$SPOOL_STAGE \$SPOOL_TASK_ID \$SPOOL_ATTEMPT" >>"$LOG"
read -r x
sleep 0.0\$((RANDOM % 5))
echo "effect \$SPOOL_ITEM_ID \$SPOOL_STAGE \$SPOOL_TASK_ID \$SPOOL_ATTEMPT" >>"$LOG"
echo "\$x>\$SPOOL_STAGE"
EOF
chmod +x "$dir/stage"
"$SPOOL_BIN" pipeline create chaos --stage "a:4:retry=1000,delay=50ms=$dir/stage" \
    --stage "b:4:retry=1000,delay=50ms=$dir/stage" \
    --stage "c:4:retry=1000,delay=50ms=$dir/stage" >/dev/null
for s in a b c; do
	"$SPOOL_BIN" queue set "chaos/$s" --backoff fixed --backoff-base 100ms \
	    --jitter 0 >/dev/null
done
seq 1 "$items" >"$dir/items"
R=$("$SPOOL_BIN" pipeline run chaos --lines <"$dir/items")
: >"$dir/nemesis.log"
sup=""
for i in 1 2 3; do
	(
		while [ ! -e "$dir/stop" ]; do
			"$SPOOL_BIN" work --pipeline chaos --lease 1s --quiet \
			    >>"$dir/worker.out" 2>>"$dir/worker.err" &
			echo $! >"$dir/w$i.pid"
			wait $!
		done
	) 2>>"$dir/supervisor.err" &
	sup="$sup $!"
done
start=$(date +%s)
while [ $(($(date +%s) - start)) -lt 12 ] &&
    [ "$(sql "SELECT state FROM pipeline_runs WHERE id = $R")" != finished ]; do
	ms=$((200 + RANDOM % 801))
	sleep "$((ms / 1000)).$(printf %03d $((ms % 1000)))"
	i=$((RANDOM % 3 + 1))
	if [ -s "$dir/w$i.pid" ] && kill -9 "$(cat "$dir/w$i.pid")" 2>/dev/null; then
		echo "kill $(cat "$dir/w$i.pid")" >>"$dir/nemesis.log"
	fi
done
run pipeline wait "$R" --timeout 120s
is "chaos: every item succeeded" "$rc" 0
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
# Commands orphaned by a kill may still be writing: let them end.
wait_for '[ -z "$(pgrep -f "$dir/stage" || true)" ]' 100

# check_chaos DB LOG: print what is wrong, and fail then.
check_chaos() {
	python3 - "$1" "$2" "$R" "$items" >"$T/check.out" 2>&1 <<'EOF'
import sqlite3, sys
from collections import defaultdict
db, log, run, items = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
c = sqlite3.connect(db)
bad = []
starts, effects = set(), defaultdict(list)
for line in open(log):
    kind, item, stage, task, attempt = line.split()
    key = (int(task), int(attempt))
    if kind == "start":
        starts.add(key)
    else:
        effects[key].append((int(item), stage))
rows = {}
for task, attempt, outcome, item, stage in c.execute(
        "SELECT a.task_id, a.attempt, a.outcome, t.item_id, s.name "
        "FROM attempts a JOIN tasks t ON t.id = a.task_id "
        "JOIN pipeline_stages s ON s.id = t.stage_id "
        "JOIN pipeline_items i ON i.id = t.item_id WHERE i.run_id = ?", (run,)):
    rows[(task, attempt)] = (outcome, item, stage)
# Every item final; every result went through a, b, c in order.
for iid, state, res in c.execute(
        "SELECT i.id, i.state, r.output FROM pipeline_items i "
        "LEFT JOIN results r ON r.task_id = i.task_id WHERE i.run_id = ?", (run,)):
    if state != "succeeded":
        bad.append(f"item {iid} is {state}")
    elif res is None or not str(res).rstrip("\n").endswith(">a>b>c"):
        bad.append(f"item {iid} result {res!r}")
# Per (item, stage): one succeeded attempt; an effect only from it or
# from an attempt the history shows as lease_lost, never after it.
succ = {}
for (task, attempt), (outcome, item, stage) in rows.items():
    if outcome == "succeeded":
        if (item, stage) in succ:
            bad.append(f"item {item} stage {stage} succeeded twice")
        succ[(item, stage)] = (task, attempt)
for (task, attempt), who in effects.items():
    for item, stage in who:
        r = rows.get((task, attempt))
        if len(who) > 1:
            bad.append(f"task {task} attempt {attempt}: {len(who)} effects")
        if r is None:
            bad.append(f"effect of task {task} attempt {attempt} (item {item} stage {stage}) has no history row")
            continue
        if r[0] not in ("succeeded", "lease_lost"):
            bad.append(f"effect of task {task} attempt {attempt} but history says {r[0]}")
        s = succ.get((item, stage))
        if s is not None and s[0] == task and attempt > s[1]:
            bad.append(f"item {item} stage {stage}: effect at attempt {attempt} after attempt {s[1]} committed")
        if r[0] == "lease_lost" and s is not None and s[0] != task:
            bad.append(f"item {item} stage {stage}: effect of another task {task}")
for (item, stage), key in succ.items():
    if key not in effects:
        bad.append(f"item {item} stage {stage}: succeeded at {key} with no effect logged")
    if key not in starts:
        bad.append(f"item {item} stage {stage}: succeeded at {key} with no start logged")
for key in starts:
    if key not in rows:
        bad.append(f"start of task {key[0]} attempt {key[1]} has no history row")
n = c.execute("SELECT count(*) FROM pipeline_items WHERE run_id = ?", (run,)).fetchone()[0]
if n != items:
    bad.append(f"{n} items, not {items}")
if len(succ) != 3 * n:
    bad.append(f"{len(succ)} stage successes for {n} items")
for b in bad[:20]:
    print(b)
sys.exit(1 if bad else 0)
EOF
}
kills=$(grep -c '^kill' "$dir/nemesis.log")
echo "chaos: $kills kills; $(sql "SELECT count(*) FROM attempts WHERE outcome = 'lease_lost'") leases lost; $(sql "SELECT count(*) FROM attempts") attempts; $(grep -c '^effect' "$LOG") effects logged"
check "chaos: the nemesis killed workers" test "$kills" -ge 3
check "chaos: some leases were lost" test "$(sql "SELECT count(*) FROM attempts WHERE outcome = 'lease_lost'")" -ge 1
check "chaos: items, effects and history agree" check_chaos "$SPOOL_DB" "$LOG"
[ -s "$T/check.out" ] && sed 's/^/  /' "$T/check.out" | head -20 >&2
check "chaos: run counters are the items'" test "$(sql "SELECT succeeded || ' ' || running || ' ' || state FROM pipeline_runs WHERE id = $R")" = "$items 0 finished"
is "chaos: integrity" "$(sql 'PRAGMA integrity_check')" ok

# The checker can fail: an effect logged twice for a committed attempt,
# an effect after the committed attempt, and a history row removed.
caught() {
	if check_chaos "$@"; then echo no; else echo yes; fi
}
line=$(grep -m1 '^effect' "$LOG")
{ cat "$LOG"; echo "$line"; } >"$T/twice.log"
is "checker: catches a doubled effect" "$(caught "$SPOOL_DB" "$T/twice.log")" yes
set -- $line
{ cat "$LOG"; echo "effect $2 $3 $4 $(($5 + 1))"; } >"$T/after.log"
is "checker: catches an effect after the commit" "$(caught "$SPOOL_DB" "$T/after.log")" yes
cp "$SPOOL_DB" "$T/gone.db"
sqlite3 "$T/gone.db" "DELETE FROM attempts WHERE id = (SELECT max(id) FROM attempts WHERE outcome = 'succeeded')"
is "checker: catches a missing history row" "$(caught "$T/gone.db" "$LOG")" yes
finish

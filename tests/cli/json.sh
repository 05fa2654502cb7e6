#!/bin/bash
# json.sh -- every command that prints data has --json, and its output
# parses as JSON (with Python's json module) and carries the right values,
# whatever bytes the database holds.
. "$TESTS_SRCDIR/cli/lib.sh"

parses() {
	printf '%s' "$out" | python3 -c 'import json, sys; json.load(sys.stdin)'
}

run init --json
check "init --json parses" parses
is "init db" "$(jq_py 'd["db"]')" "$SPOOL_DB"

run enqueue --json q '{"a":1}' --key k
check "enqueue --json parses" parses
id=$(jq_py 'd["id"]')
is "enqueue existed false" "$(jq_py 'd["existed"]')" false
run enqueue --json q '{"a":1}' --key k
is "enqueue existed true" "$(jq_py 'd["existed"]')" true
is "enqueue same id" "$(jq_py 'd["id"]')" "$id"

# Nasty bytes: quotes, backslashes, control characters, invalid UTF-8.
printf 'say "hi"\\ \001\t\n\303\251' >"$T/p1"
run_in "$T/p1" enqueue q -
tid=$out
printf '\377\376\000\001binary' >"$T/p2"
run_in "$T/p2" enqueue q -
bid=$out
sql "UPDATE tasks SET last_error = CAST(X'6261640A' || X'FF' AS TEXT) WHERE id = $tid"

run list --json
check "list --json parses" parses
is "list count" "$(jq_py 'len(d["tasks"])')" 3
is "list text payload round-trips" "$(jq_py 'd["tasks"][1]["payload"] == "say \"hi\"\\ \u0001\t\n\u00e9"')" true
is "binary payload is base64" "$(jq_py 'd["tasks"][2]["payload_base64"]')" "//4AAWJpbmFyeQ=="
is "invalid UTF-8 becomes U+FFFD" "$(jq_py 'd["tasks"][1]["last_error"] == "bad\n\ufffd"')" true
is "next_after null on a short page" "$(jq_py 'd["next_after"]')" null
run list --json --limit 2
is "next_after on a full page" "$(jq_py 'd["next_after"]')" "$(sql 'SELECT min(id) + 1 FROM tasks')"

run show --json "$id"
check "show --json parses" parses
is "show state" "$(jq_py 'd["task"]["state"]')" ready
is "show key" "$(jq_py 'd["task"]["key"]')" k
is "show payload" "$(jq_py 'd["task"]["payload"]')" '{"a":1}'
is "show history empty" "$(jq_py 'd["history"]')" "[]"
is "show result null" "$(jq_py 'd["result"]')" null

run stats --json
check "stats --json parses" parses
is "stats ready" "$(jq_py 'd[0]["ready"]')" 3
is "stats queue" "$(jq_py 'd[0]["queue"]')" q
is "stats paused" "$(jq_py 'd[0]["paused"]')" false

run queue --json create mail --lease 45s
check "queue create --json parses" parses
is "queue lease" "$(jq_py 'd["lease_ms"]')" 45000
run queue --json list
is "queue list" "$(jq_py '[x["name"] for x in d]')" '["mail", "q"]'
run queue show mail --json
is "queue show" "$(jq_py 'd["backoff"]')" exponential

run pause --json q
is "pause" "$(jq_py 'd["paused"]')" true
run resume --json q
is "resume" "$(jq_py 'd["paused"]')" false

run cancel --json "$bid"
is "cancel" "$(jq_py 'd["state"]')" cancelled
run retry --json "$bid"
is "retry" "$(jq_py 'd["retried"]')" 1
run retry --json --queue q
is "retry --queue" "$(jq_py 'd["retried"]')" 0

run purge --json q --dry-run
is "purge dry run" "$(jq_py 'd["would_delete"]')" 3
run prune --json
is "prune" "$(jq_py 'd["pruned"]')" 0

printf 'a\nb\n' >"$T/in"
run_in "$T/in" enqueue --json bulk --lines
is "lines count" "$(jq_py 'd["count"]')" 2
is "lines ids" "$(jq_py 'd["last_id"] - d["first_id"]')" 1

# wait --json on a finished task, made by the demo.
DB="$T/demo.db"
run --db "$DB" demo --tasks 50 --fail 0
ok_id=$(sql "SELECT min(id) FROM tasks WHERE state = 'succeeded'")
run --db "$DB" --json wait "$ok_id"
check "wait --json parses" parses
is "wait state" "$(jq_py 'd["state"]')" succeeded
is "wait result" "$(jq_py 'd["result"]')" "$(sql "SELECT output FROM results WHERE task_id = $ok_id")"
run --db "$DB" show --json "$ok_id"
is "show result output" "$(jq_py 'd["result"]["output"]')" "$(sql "SELECT output FROM results WHERE task_id = $ok_id")"
is "show history" "$(jq_py 'd["history"][0]["outcome"]')" succeeded

# Dead reasons print as the database stores them, in JSON and in text.
live_id=$(sql "SELECT max(id) FROM tasks WHERE state = 'succeeded'")
for r in failed exhausted expired; do
	rid=$(sql "SELECT min(id) FROM tasks WHERE state = 'succeeded'")
	sql "UPDATE tasks SET state = 'dead', dead_reason = '$r', finished_ms = 1 WHERE id = $rid"
	run --db "$DB" show --json "$rid"
	is "show dead_reason $r" "$(jq_py 'd["task"]["dead_reason"]')" "$r"
	run --db "$DB" show "$rid"
	check "show text: dead ($r)" grep -qx "state: *dead ($r)" <<<"$out"
	run --db "$DB" list --json --state dead
	is "list dead_reason $r" "$(jq_py "[t['dead_reason'] for t in d['tasks'] if t['id'] == $rid][0]")" "$r"
	run --db "$DB" wait "$rid"
	check "wait text: dead ($r)" grep -q "task $rid is dead ($r)" <<<"$err"
done
run --db "$DB" show --json "$live_id"
is "show dead_reason null" "$(jq_py 'd["task"]["dead_reason"]')" null
finish

#!/bin/bash
# schema.sh -- docs/schema.md against a real database, through the
# sqlite3 shell:
#  - every ```sql block (at least 8) runs without an error while live
#    "spool work" processes run tasks and more are enqueued, and its
#    columns are those of the output the page shows under it;
#  - some answers agree with the CLI: depth per state and the counters
#    with "spool stats --json", batch progress with "spool batch status
#    --json", the running tasks and the worker heartbeats with the pids
#    of the workers started here;
#  - every edit of the page's "Refused edits" table is refused with the
#    message it shows and leaves the database as it was, and the table
#    covers every table with a CHECK, every trigger that refuses, every
#    unique index and the foreign keys;
#  - every ```sql safe block runs, and the edits have their effect.
# sqlite3 and python3 are needed (tools/deps.sh installs them): lib.sh
# makes their absence a hard error (99), not a skip.
. "$TESTS_SRCDIR/cli/lib.sh"

doc=$TESTS_SRCDIR/../docs/schema.md
[ -f "$doc" ] || { echo "no $doc" >&2; exit 99; }
rc= out= err=	# check's failure message shows them; nothing has run yet

# The shell as the page runs it: wait for the workers' locks.
shell() {
	sqlite3 -cmd '.timeout 5000' "$@"
}

# ---- The page's blocks --------------------------------------------------------
#
# $T/q/N.sql       the N-th ```sql block (a query)
# $T/q/N.cols      the column names of the ```text block after it
# $T/safe/N.sql    the N-th ```sql safe block
# $T/refused       one line per row of the refused table: SQL TAB MESSAGE
mkdir "$T/q" "$T/safe"
python3 - "$doc" "$T" <<'PY' || exit 99
import re, sys
doc, t = sys.argv[1], sys.argv[2]
lines = open(doc, encoding="utf-8").read().split("\n")
blocks, i = [], 0
while i < len(lines):
    m = re.match(r"^```(.*)$", lines[i])
    if not m:
        i += 1
        continue
    info, body = m.group(1).strip(), []
    i += 1
    while i < len(lines) and lines[i] != "```":
        body.append(lines[i])
        i += 1
    i += 1
    blocks.append((info, body))
nq = ns = 0
for k, (info, body) in enumerate(blocks):
    text = "\n".join(body) + "\n"
    if info == "sql":
        nq += 1
        open(f"{t}/q/{nq}.sql", "w").write(text)
        nxt = blocks[k + 1] if k + 1 < len(blocks) else None
        cols = nxt[1][0].split() if nxt and nxt[0] == "text" and nxt[1] else []
        open(f"{t}/q/{nq}.cols", "w").write(" ".join(cols) + "\n")
    elif info == "sql safe":
        ns += 1
        open(f"{t}/safe/{ns}.sql", "w").write(text)
with open(f"{t}/refused", "w") as f:
    inside = False
    for line in lines:
        if line.startswith("<!-- refused"):
            inside = True
        elif inside and not line.startswith("|"):
            if line.strip():
                break
        elif inside:
            m = re.match(r"^\| `(.+?)` \| .* \| `(.+)` \|$", line)
            if m:
                f.write(f"{m.group(1)}\t{m.group(2)}\n")
PY
nq=$(ls "$T/q" | grep -c '\.sql$')
nsafe=$(ls "$T/safe" | grep -c '\.sql$')
nref=$(wc -l <"$T/refused")
check "docs/schema.md: at least 8 sql blocks (found $nq)" test "$nq" -ge 8
check "docs/schema.md: safe edits (found $nsafe)" test "$nsafe" -ge 1
check "docs/schema.md: refused edits (found $nref)" test "$nref" -ge 3
for f in "$T"/q/*.cols; do
	check "$(basename "$f" .cols): the page shows its output" test -n "$(cat "$f")"
done

# The query whose first line (a comment) contains TEXT.
query() {
	local f
	for f in "$T"/q/*.sql; do
		head -n 1 "$f" | grep -qiF -- "$1" && { echo "$f"; return 0; }
	done
	echo "FAIL: no sql block in docs/schema.md starts with '-- $1'" >&2
	echo /dev/null
	return 1
}
has_query() {
	query "$1" >/dev/null
}
for name in 'depth per state' 'batch progress' 'counters' 'lease holder' \
    'worker heartbeats' 'pipeline run progress' 'stage history' \
    'failures in the last hour' 'oldest ready'; do
	check "docs/schema.md: a query for '$name'" has_query "$name"
done

# ---- A database with workers running ------------------------------------------

run init
run queue create emails --max-attempts 2 --backoff fixed --backoff-base 100ms --jitter 0
for i in 1 2 3 4; do "$SPOOL_BIN" enqueue emails "mail $i" >/dev/null; done
"$SPOOL_BIN" enqueue emails "bounce 1" >/dev/null
"$SPOOL_BIN" enqueue emails "bounce 2" >/dev/null
due=$("$SPOOL_BIN" enqueue reports '{"day":"2026-11-27"}')
later=$("$SPOOL_BIN" enqueue reports '{"day":"2026-11-28"}' --delay 1h)
b=$("$SPOOL_BIN" batch create --description thumbs --hook thumbs-done)
printf 'img%d.png\n' 1 2 3 4 5 | "$SPOOL_BIN" batch add "$b" thumbs --lines >/dev/null
"$SPOOL_BIN" enqueue thumbs later.png --delay 1h --batch "$b" >/dev/null	# keeps it unfinished
run batch close "$b"
check "batch close" test "$rc" -eq 0
run pipeline create ingest --stage 'fetch:2=tr a-z A-Z' \
    --stage 'parse:2:skip=grep -v DOC3' --stage 'store:1=cat'
check "pipeline create" test "$rc" -eq 0
printf 'doc%d\n' 1 2 3 4 | "$SPOOL_BIN" pipeline run ingest --lines >/dev/null
run pipeline create idle --stage 'one:1=cat'	# a run nobody works
printf 'x\n' | "$SPOOL_BIN" pipeline run idle --lines >/dev/null
run queue create slow --max-attempts 1
"$SPOOL_BIN" enqueue slow 'job 1' >/dev/null
"$SPOOL_BIN" enqueue slow 'job 2' >/dev/null

send='read -r p; case $p in bounce*) echo "550 no such mailbox: $p" >&2; exit 1;; esac; sleep 0.05; echo "sent $p"'
"$SPOOL_BIN" work emails thumbs load --concurrency 4 --quiet \
    --exec sh -c "$send" >/dev/null 2>"$T/w1.err" &
w1=$!
"$SPOOL_BIN" work --pipeline ingest --quiet >/dev/null 2>"$T/w2.err" &
w2=$!
# It holds one task for the whole test; stopped, it gives up on it (dead:
# a single attempt), so nothing of slow is left scheduled.
"$SPOOL_BIN" work slow --concurrency 1 --prefetch 0 --quiet --shutdown-timeout 1s \
    --grace 1s --exec sleep 60 >/dev/null 2>"$T/w3.err" &
w3=$!
check "workers: three rows" wait_for "[ \"\$(sql 'SELECT count(*) FROM workers')\" = 3 ]" 600
check "slow: a task runs" wait_for "[ \"\$(sql \"SELECT count(*) FROM tasks WHERE queue = 'slow' AND state = 'running'\")\" = 1 ]" 600

# Every query, three times over, while more tasks are enqueued.
qfail=0
for pass in 1 2 3; do
	seq 1 20 | sed "s/^/load $pass./" | "$SPOOL_BIN" enqueue load --lines >/dev/null
	for f in "$T"/q/*.sql; do
		shell -header -column "$SPOOL_DB" <"$f" >"$T/qout" 2>"$T/qerr"
		qrc=$?
		if [ "$qrc" -ne 0 ] || [ -s "$T/qerr" ]; then
			qfail=$((qfail + 1))
			echo "FAIL: $(basename "$f") (pass $pass): exit $qrc: $(head -c 300 "$T/qerr")" >&2
			sed 's/^/  /' "$f" >&2
		fi
	done
	"$SPOOL_BIN" enqueue emails "bounce $pass.x" >/dev/null
done
is "every query ran without an error, 3 times, under load" "$qfail" 0

# The columns of each query are those the page shows (even with no rows).
rc= out= err=
python3 - "$SPOOL_DB" "$T/q" >"$T/cols" 2>&1 <<'PY'
import glob, os, sqlite3, sys
db = sqlite3.connect(sys.argv[1], timeout=5)
bad = 0
for f in sorted(glob.glob(os.path.join(sys.argv[2], "*.sql"))):
    want = open(f[:-4] + ".cols").read().split()
    try:
        cur = db.execute(open(f).read())
        got = [d[0] for d in cur.description or []]
        cur.fetchall()
    except sqlite3.Error as e:
        got = [f"error: {e}"]
    if got != want:
        bad += 1
        print(f"{os.path.basename(f)}: columns {got}, the page shows {want}")
sys.exit(1 if bad else 0)
PY
check "every query's columns are the page's" test $? -eq 0
[ -s "$T/cols" ] && sed 's/^/  /' "$T/cols" >&2

# Live answers: the running task and the heartbeats name our workers.
lease=$(query 'lease holder')
running=$(shell -separator ' ' "$SPOOL_DB" <"$lease")
check "running tasks: slow's task, held by pid $w3" grep -qE "^[0-9]+ slow 1 [^ ]+ $w3 " <<<"$running"
beats=$(query 'worker heartbeats')
beat=$(shell -separator ' ' "$SPOOL_DB" <"$beats")
for w in "$w1" "$w2" "$w3"; do
	check "heartbeats: pid $w, fresh" grep -qE "^[^ ]+ $w .* 0\$" <<<"$beat"
done

# Stop the workers we started, and let the rest settle.
for w in "$w1" "$w2" "$w3"; do
	kill -TERM "$w"
done
for w in "$w1" "$w2" "$w3"; do
	wait "$w"
	check "worker $w stopped" test $? -le 1
done
"$SPOOL_BIN" work emails thumbs load --until-empty --quiet \
    --exec sh -c "$send" >/dev/null 2>&1
sleep 0.3	# the last bounce's 100 ms retry
"$SPOOL_BIN" work emails thumbs load --until-empty --quiet \
    --exec sh -c "$send" >/dev/null 2>&1
"$SPOOL_BIN" work --pipeline ingest --until-empty --quiet >/dev/null 2>&1
is "no worker left" "$(sql 'SELECT count(*) FROM workers')" 0

# ---- The page's queries against the CLI -----------------------------------------

run stats --json
printf '%s' "$out" >"$T/stats.json"
check "stats --json" test "$rc" -eq 0
shell -json "$SPOOL_DB" <"$(query 'depth per state')" >"$T/depth.json"
shell -json "$SPOOL_DB" <"$(query 'counters')" >"$T/counters.json"
run batch status "$b" --json
printf '%s' "$out" >"$T/batch.json"
shell -json "$SPOOL_DB" <"$(query 'batch progress')" >"$T/batches.json"
python3 - "$T" >"$T/cmp" 2>&1 <<'PY'
import json, sys
t = sys.argv[1]
stats = {q["queue"]: q for q in json.load(open(f"{t}/stats.json"))}
bad = []
def rows(name):
    s = open(f"{t}/{name}.json").read().strip()
    return json.loads(s) if s else []
depth = rows("depth")
if sorted(r["queue"] for r in depth) != sorted(stats):
    bad.append(f"depth: queues {[r['queue'] for r in depth]} vs {sorted(stats)}")
for r in depth:
    s = stats.get(r["queue"], {})
    for k in ("ready", "scheduled", "running", "succeeded", "dead", "cancelled"):
        if r.get(k) != s.get(k):
            bad.append(f"depth {r['queue']}.{k}: query {r.get(k)}, stats {s.get(k)}")
    if bool(r.get("paused")) != s.get("paused"):
        bad.append(f"depth {r['queue']}.paused")
counters = rows("counters")
if len(counters) != len(stats):
    bad.append(f"counters: {len(counters)} rows for {len(stats)} queues")
for r in counters:
    c = stats.get(r["queue"], {}).get("counters", {})
    for k, v in c.items():
        if r.get(k) != v:
            bad.append(f"counters {r['queue']}.{k}: query {r.get(k)}, stats {v}")
b = json.load(open(f"{t}/batch.json"))
mine = [r for r in rows("batches") if r["id"] == b["id"]]
if len(mine) != 1:
    bad.append(f"batch {b['id']}: {len(mine)} rows")
else:
    for k in ("state", "total", "pending", "running", "succeeded", "failed",
              "dead", "cancelled", "hook_queue", "hook_task_id"):
        if mine[0].get(k) != b.get(k):
            bad.append(f"batch.{k}: query {mine[0].get(k)}, status {b.get(k)}")
if bad:
    print("\n".join(bad))
sys.exit(1 if bad else 0)
PY
check "depth per state, counters and batch progress agree with the CLI" test $? -eq 0
[ -s "$T/cmp" ] && sed 's/^/  /' "$T/cmp" >&2
check "the depth query saw work done" python3 -c '
import json, sys
d = {r["queue"]: r for r in json.load(open(sys.argv[1]))}
sys.exit(0 if d["emails"]["succeeded"] >= 4 and d["emails"]["dead"] >= 2 and d["load"]["succeeded"] == 60 else 1)' "$T/depth.json"

# ---- Refused edits ----------------------------------------------------------------

# What each edit must leave as it was: the whole database, as text.
dump() {
	sqlite3 "$SPOOL_DB" .dump | sha1sum
}
before=$(dump)
n=0
while IFS='	' read -r edit msg; do
	n=$((n + 1))
	shell -cmd 'PRAGMA foreign_keys = ON' "$SPOOL_DB" "$edit" >"$T/rout" 2>"$T/rerr"
	rc=$?
	out=$(cat "$T/rout")
	err=$(tr -s ' \t\n' ' ' <"$T/rerr")
	check "refused $n: exits non-zero: $edit" test "$rc" -ne 0
	check "refused $n: says '$msg'" grep -qF -- "$msg" <<<"$err"
	after=$(dump)
	is "refused $n: the database is unchanged" "$after" "$before"
	before=$after
done <"$T/refused"

# The table covers the three refusals README names (a running task
# without a lease, negative attempts, an unknown state), and every
# constraint of the schema: each table with a CHECK, each trigger that
# refuses, each unique index, and the foreign keys.
python3 - "$SPOOL_DB" "$T/refused" >"$T/cover" 2>&1 <<'PY'
import re, sqlite3, sys
db = sqlite3.connect(sys.argv[1])
rows = [l.rstrip("\n").split("\t") for l in open(sys.argv[2])]
edits = [r[0] for r in rows]
msgs = [r[1] for r in rows]
bad = []
def has(m):
    return any(m in x for x in msgs)
for m in ("(state = 'running') = (lease_token IS NOT NULL",
          "attempts >= 0", "state = 'ready' OR state = 'running'",
          "FOREIGN KEY constraint failed"):
    if not has(m):
        bad.append(f"no refused edit says {m!r}")
for name, sql in db.execute("SELECT name, sql FROM sqlite_master WHERE type = 'table'"):
    if "CHECK" in (sql or "") and not any(
            re.search(rf"\b(UPDATE|INSERT INTO|DELETE FROM) {name}\b", e) for e in edits):
        bad.append(f"table {name} has CHECKs, and no refused edit of it")
for name, sql in db.execute("SELECT name, sql FROM sqlite_master WHERE type = 'trigger'"):
    for m in re.findall(r"RAISE\s*\(\s*ABORT\s*,\s*'((?:[^']|'')*)'", sql):
        if not has(m.replace("''", "'")):
            bad.append(f"trigger {name}: no refused edit says {m!r}")
for name, tbl in db.execute("SELECT name, tbl_name FROM sqlite_master "
                            "WHERE type = 'index' AND sql LIKE 'CREATE UNIQUE INDEX%'"):
    cols = ", ".join(f"{tbl}.{r[2]}" for r in db.execute(f"PRAGMA index_info({name})"))
    if not has(f"UNIQUE constraint failed: {cols}"):
        bad.append(f"unique index {name}: no refused edit says it ({cols})")
if bad:
    print("\n".join(bad))
sys.exit(1 if bad else 0)
PY
check "the refused edits cover the schema's constraints" test $? -eq 0
[ -s "$T/cover" ] && sed 's/^/  /' "$T/cover" >&2

# ---- Safe edits -------------------------------------------------------------------

dead_emails=$(sql "SELECT count(*) FROM tasks WHERE queue = 'emails' AND state = 'dead'")
check "emails has dead tasks to delete" test "$dead_emails" -ge 2
n=0
for f in $(ls "$T"/safe/*.sql | sort -V); do
	n=$((n + 1))
	shell -cmd 'PRAGMA foreign_keys = ON' "$SPOOL_DB" <"$f" >"$T/sout" 2>"$T/serr"
	src=$?
	check "safe edit $n runs: $(head -n 1 "$f")" test "$src" -eq 0 -a ! -s "$T/serr"
	[ -s "$T/serr" ] && sed 's/^/  /' "$T/serr" >&2
done
run queue show reports --json
is "safe: the queue is paused" "$(jq_py 'd["paused"]')" true
run show "$due" --json
is "safe: the due task's priority and state" "$(jq_py '[d["task"]["priority"], d["task"]["state"]]')" '[10, "ready"]'
run show "$later" --json
is "safe: the scheduled task is cancelled" "$(jq_py '[d["task"]["state"], d["task"]["finished_ms"] is not None]')" '["cancelled", true]'
is "safe: dead tasks deleted" "$(sql "SELECT count(*) FROM tasks WHERE queue = 'emails' AND state = 'dead'")" 0
is "safe: their attempts went with them" "$(sql 'SELECT count(*) FROM attempts WHERE task_id NOT IN (SELECT id FROM tasks)')" 0
# Spool takes the edits as its own: a paused queue is not worked.
run work reports --until-empty --max-time 1s --quiet --exec /bin/true
is "safe: a paused queue is not claimed" "$(sql "SELECT state FROM tasks WHERE id = $due")" ready
run resume reports
run work reports --until-empty --quiet --exec /bin/true
is "safe: resumed, it is worked" "$(sql "SELECT state FROM tasks WHERE id = $due")" succeeded
run stats reports --json
is "safe: stats after the edits" "$(jq_py '[d[0]["succeeded"], d[0]["cancelled"], d[0]["ready"]]')" '[1, 1, 0]'
finish

#!/bin/bash
# dashboard.sh -- the dashboard page as a browser renders it: Debian's
# headless Chromium loads / from "spool work --http" over a database
# made with the CLI, runs the page's script for a few refreshes, and the
# DOM it dumps is checked against the JSON views and "spool stats
# --json": a row per queue with its counts (a paused one marked, a name
# with markup shown as text), the running task, the dead tasks' error
# texts (as text, never markup), the newest 20 batches and pipeline runs
# (newest first) with their totals, the worker, the throughput chart
# seeded from the worker's per-second counts, the loaded flag and the
# last refresh's status, and no console message from the page.  Then the
# same from "spool serve" once the worker has stopped: no pool, so a
# chart of the page's own samples, and no worker; and the API's pages of
# batches and runs both ways.  A screenshot is kept as
# tests/cli/dashboard.png in the build directory.  The browser is
# $CHROMIUM (default chromium); without it the test is skipped (exit 77,
# a SKIP in the summary), never passed.
. "$TESTS_SRCDIR/cli/lib.sh"

CHROMIUM=${CHROMIUM:-chromium}
if ! command -v "$CHROMIUM" >/dev/null; then
	echo "SKIP: no '$CHROMIUM' on PATH, so the dashboard page is not" \
	    "checked (Debian: apt-get install --no-install-recommends chromium)" >&2
	exit 77
fi

# Everything started here is stopped by its pid, also on failure.
wrk=
srv=
chrome=
stop_all() {
	local p
	for p in $chrome $wrk $srv; do
		kill -TERM "$p" 2>/dev/null
	done
	for p in $chrome $wrk $srv; do
		wait "$p" 2>/dev/null
	done
	chrome=
	wrk=
	srv=
}
trap 'stop_all; kill $(jobs -p) 2>/dev/null; wait 2>/dev/null; rm -rf "$T"' EXIT

# browser OPTION...: run chromium headless on the dashboard with a private
# profile, at most 120 s; its log, with the page's console messages (none
# expected: an uncaught exception or a refused resource would be one),
# goes to $T/chromium.log.
mkdir -p "$T/home" "$T/run"
chmod 700 "$T/run"
browser() {
	HOME="$T/home" XDG_CONFIG_HOME="$T/home/.config" \
	    XDG_CACHE_HOME="$T/home/.cache" XDG_RUNTIME_DIR="$T/run" \
	    timeout -k 5 120 "$CHROMIUM" --headless --no-sandbox --disable-gpu \
	    --user-data-dir="$T/profile" --no-first-run --disable-extensions \
	    --disable-background-networking --enable-logging=stderr \
	    --virtual-time-budget=8000 \
	    "$@" "$url" 2>>"$T/chromium.log" &
	chrome=$!
	wait "$chrome"
	rc=$?
	chrome=
}

# ---- the database ------------------------------------------------------------
run init
for i in 1 2 3 4 5; do "$SPOOL_BIN" enqueue alpha "a$i" >/dev/null; done
"$SPOOL_BIN" enqueue beta b1 >/dev/null
"$SPOOL_BIN" enqueue beta b2 >/dev/null
"$SPOOL_BIN" enqueue beta later --delay 1h >/dev/null
for i in 1 2 3; do "$SPOOL_BIN" enqueue gamma "g$i" >/dev/null; done
"$SPOOL_BIN" pause gamma >/dev/null
"$SPOOL_BIN" enqueue '<b>q&amp;' x >/dev/null

# Dead tasks, each with its own error: the tail of the command's stderr.
run queue create bad --max-attempts 1
for p in 'disk full' 'no route to host' '<script>alert(1)</script>'; do
	"$SPOOL_BIN" enqueue bad "$p" >/dev/null
done
run work bad --until-empty --quiet --exec /bin/sh -c \
    'read -r p; echo "error: $p" >&2; exit 3'
is "bad: three dead" "$(sql "SELECT count(*) FROM tasks WHERE queue = 'bad' AND state = 'dead'")" 3

# 21 empty batches, then a finished batch (3 succeeded, 1 failed) and an
# open one on alpha: the page shows the newest 20, newest first.
for i in $(seq 1 21); do
	"$SPOOL_BIN" batch create --description "filler $i" >/dev/null
done
run queue create bq --max-attempts 1
b1=$("$SPOOL_BIN" batch create --description 'nightly import')
run batch add "$b1" bq one two three four
run batch close "$b1"
run work bq --until-empty --quiet --exec /bin/sh -c \
    'read -r p; [ "$p" != four ] || { echo "bad row four" >&2; exit 4; }'
b2=$("$SPOOL_BIN" batch create --description 'still open')
run batch add "$b2" alpha x1 x2
run batch status "$b1" --json
is "batch 1 finished" "$(jq_py '[d["state"], d["total"], d["succeeded"], d["failed"] + d["dead"]]')" \
    '["finished", 4, 3, 1]'

# 21 runs of another pipeline, not worked, then a finished run (3
# succeeded, 1 failed) and one not worked: again the newest 20 show.
run pipeline create filler --stage 'f:1=cat'
for i in $(seq 1 21); do
	"$SPOOL_BIN" pipeline run filler "item $i" >/dev/null
done
cat >"$T/up" <<'EOF'
#!/bin/sh
read -r p
[ "$p" != fail ] || { echo "cannot shout $p" >&2; exit 1; }
echo "$p" | tr a-z A-Z
EOF
chmod +x "$T/up"
run pipeline create pp --stage "up:2:retry=0=$T/up" --stage 'len:1=wc -c'
check "pipeline create" test "$rc" -eq 0
r1=$("$SPOOL_BIN" pipeline run pp one two three fail)
"$SPOOL_BIN" work --pipeline pp --quiet >/dev/null 2>"$T/pp.err" &
wrk=$!
run pipeline wait "$r1" --timeout 60s
kill -TERM "$wrk"
wait "$wrk"
wrk=
r2=$("$SPOOL_BIN" pipeline run pp four five)
run pipeline status "$r1" --json
is "run 1 finished" "$(jq_py '[d.get("run", d)[k] for k in ("state", "total", "succeeded", "failed")]')" \
    '["finished", 4, 3, 1]'

# ---- a worker serving the page, 40 tasks done and one running ----------------
for i in $(seq 1 40); do echo "f$i"; done | "$SPOOL_BIN" enqueue flow --lines >/dev/null
"$SPOOL_BIN" enqueue slow slow >/dev/null
"$SPOOL_BIN" work flow slow --quiet --concurrency 4 --http 127.0.0.1:0 \
    --shutdown-timeout 1s --grace 1s --exec /bin/sh -c \
    'read -r p; [ "$p" != slow ] || exec sleep 60; echo "$p"' \
    >/dev/null 2>"$T/work.err" &
wrk=$!
check "work --http: serving" wait_for "grep -q 'serving http://' '$T/work.err'" 600
port=$(sed -n 's|.* spool work: info: serving http://127\.0\.0\.1:\([0-9]*\)/.*|\1|p' "$T/work.err" | head -n 1)
url="http://127.0.0.1:$port/"
# Wait for what the page shows: the slow command started (its start
# written, not merely claimed) and the workers row saying so (it is
# written each second).
check "flow done, slow running" wait_for "[ \"\$(sql \"SELECT (SELECT count(*) FROM tasks WHERE (queue = 'flow' AND state = 'succeeded') OR (queue = 'slow' AND state = 'running' AND started_ms IS NOT NULL)) || ' ' || (SELECT sum(busy) FROM workers)\")\" = '41 1' ]" 1200
slow_id=$(sql "SELECT id FROM tasks WHERE queue = 'slow'")

# The DOM checks, in Python; "PASS desc" or "FAIL desc: ..." per line.
cat >"$T/check.py" <<'PY'
import json, sys
from html.parser import HTMLParser

mode, dom_file, stats_file, before_file, after_file = sys.argv[1:6]
wrk, slow_id, b1, b2, r1, r2 = sys.argv[6:12]
stats = json.load(open(stats_file))
before = json.load(open(before_file))
after = json.load(open(after_file))

class Page(HTMLParser):
    """The tables' body rows as lists of cell texts, the tags met inside
    each table body, the attributes of elements with an id (and of the
    body and the polyline), and the text under each id."""
    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.tables, self.inner, self.attrs, self.texts = {}, {}, {}, {}
        self.table = self.row = self.cell = None
        self.tbody = False
        self.stack = []
    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        self.stack.append(a.get("id"))
        if a.get("id"):
            self.attrs[a["id"]] = a
        if tag in ("body", "polyline"):
            self.attrs[tag] = a
        if tag == "table":
            self.table = a.get("id")
            self.tables[self.table] = []
            self.inner[self.table] = set()
        elif tag == "tbody":
            self.tbody = True
        elif self.tbody and tag == "tr":
            self.row = []
            self.tables[self.table].append(self.row)
        elif self.tbody and tag == "td":
            self.cell = []
            self.row.append(self.cell)
        elif self.tbody:
            self.inner[self.table].add(tag)
    def handle_endtag(self, tag):
        if self.stack:
            self.stack.pop()
        if tag == "tbody":
            self.tbody = False
        elif tag == "table":
            self.table = None
        elif tag == "td" and self.cell is not None:
            self.row[-1] = "".join(self.cell).strip()
            self.cell = None
    def handle_data(self, data):
        if self.cell is not None:
            self.cell.append(data)
        for i in self.stack:
            if i:
                self.texts[i] = self.texts.get(i, "") + data

p = Page()
p.feed(open(dom_file, encoding="utf-8").read())
def check(desc, got, want):
    if got == want:
        print("PASS", mode, desc)
    else:
        print(f"FAIL {mode} {desc}: got {got!r}, want {want!r}")

check("body data-loaded", p.attrs.get("body", {}).get("data-loaded"), "1")
status = p.texts.get("status", "")
check("status: the last refresh worked", (p.attrs.get("status", {}).get("class"),
      "updated ..." if status.startswith("updated ") else status), ("", "updated ..."))
check("status: the worker's pid", f"served by worker pid {wrk}" in status, mode == "work")

# Queues: one row per queue, in the order and with the numbers of spool
# stats --json; the paused one marked; markup in a name is text.
rows = p.tables.get("queues", [])
check("queues: one row per queue", len(rows), len(stats))
for r, s in zip(rows, stats):
    name = s["queue"] + (" (paused)" if s["paused"] else "")
    want = [name] + [str(s[k]) for k in ("ready", "scheduled", "claimed", "running", "expired", "succeeded", "dead", "cancelled")]
    check(f"queues: row {s['queue']}", r[:9], want)
byname = {r[0]: r for r in rows}
for q, want in (("alpha", "7 0 0 0 0 0 0 0"), ("beta", "2 1 0 0 0 0 0 0"),
                ("gamma (paused)", "3 0 0 0 0 0 0 0"), ("<b>q&amp;", "1 0 0 0 0 0 0 0"),
                ("bad", "0 0 0 0 0 0 3 0"), ("bq", "0 0 0 0 0 3 1 0"),
                ("flow", "0 0 0 0 0 40 0 0"), ("pp/up", "2 0 0 0 0 3 1 0"),
                ("slow", "0 0 0 1 0 0 0 0" if mode == "work" else "1 0 0 0 0 0 0 0")):
    check(f"queues: {q} as made", " ".join(byname.get(q, [None])[1:9]), want)
check("queues: workers of flow", byname.get("flow", [""] * 13)[12], "1/4" if mode == "work" else "0/0")
check("queues: no markup in the cells", p.inner.get("queues"), {"span"})

# The running task, and the failures with their error texts.
check("running", [r[:3] for r in p.tables.get("running", [])],
      [[slow_id, "slow", "1"]] if mode == "work" else [["nothing running"]])
fails = p.tables.get("failures", [])
errors = [r[4] for r in fails if len(r) == 5]
for e in ("error: disk full", "error: no route to host",
          "error: <script>alert(1)</script>", "bad row four", "cannot shout fail"):
    check(f"failures: {e!r} shown", any(e in x for x in errors), True)
check("failures: one row per dead task", len(fails), 5)
check("failures: newest first", [r[1] for r in fails][:1], ["pp/up"])
check("failures: no markup in the cells", p.inner.get("failures"), set())

# Batches and runs: the newest 20, newest first, with their totals.
rows = p.tables.get("batches", [])
check("batches: the newest 20", [r[0] for r in rows], [str(i) for i in range(int(b2), int(b2) - 20, -1)])
check("batches: the last two", [r[:7] for r in rows[:2]],
      [[b2, "still open", "open", "2", "0", "0", "0/2"],
       [b1, "nightly import", "finished", "4", "3", "1", "4/4"]])
check("batches: a filler", rows[-1][1:7] if rows else None, ["filler 4", "open", "0", "0", "0", "0/0"])
rows = p.tables.get("runs", [])
check("runs: the newest 20", [r[0] for r in rows], [str(i) for i in range(int(r2), int(r2) - 20, -1)])
check("runs: the last two", [r[:7] for r in rows[:2]],
      [[r2, "pp v1", "running", "2", "0", "0", "0/2"],
       [r1, "pp v1", "finished", "4", "3", "1", "4/4"]])
check("runs: a filler", rows[-1][1:7] if rows else None, ["filler v1", "running", "1", "0", "0", "0/1"])

check("workers", [[r[1], r[2], r[4]] if len(r) == 5 else r for r in p.tables.get("workers", [])],
      [[wrk, "1/4", "flow, slow"]] if mode == "work" else [["no workers"]])

# The chart: its last minute is the queues' (as /api/queues says just
# before and after the page).  From the worker its first minute is
# seeded from the pool's seconds, which saw the 40 tasks: a point above
# the baseline; from serve it has only the page's own samples, one point
# per refresh after the first.
chart = p.attrs.get("chart", {})
lm = [sum(q["succeeded_last_minute"] for q in d["queues"]) for d in (before, after)]
dlm = int(chart.get("data-last-minute", -1))
if lm[0] == lm[1]:
    check("chart: data-last-minute = /api/queues", dlm, lm[1])
else:
    check(f"chart: data-last-minute within /api/queues's {lm}", min(lm) <= dlm <= max(lm), True)
npts = int(chart.get("data-points", 0))
line = p.attrs.get("polyline", {})
check("chart: the polyline", line.get("id"), "chart-line")
pts = [tuple(map(float, xy.split(","))) for xy in line.get("points", "").split()]
check("chart: a vertex per point", len(pts), npts)
if mode == "work":
    check("chart: the pool saw the 40", before["pool"]["succeeded_last_minute"], 40)
    check("chart: seeded with the pool's 60 seconds", npts >= 60, True)
    check("chart: the burst is above the baseline", any(y < 139.5 for x, y in pts), True)
else:
    check("chart: no pool", before["pool"], None)
    check("chart: only the page's samples", 1 <= npts < 10, True)
check("chart: the note", p.texts.get("chart-note", "").startswith(f"{dlm} succeeded in the last minute"), True)
PY

getjson() {	# getjson PATH FILE: a JSON view from the server at $port
	python3 -c '
import sys, urllib.request
with urllib.request.urlopen(sys.argv[1], timeout=10) as r:
    open(sys.argv[2], "wb").write(r.read())
' "http://127.0.0.1:$port$1" "$2"
}

# page MODE: dump the page's DOM after a few refreshes and check it.
page() {
	local mode=$1 t0=$SECONDS verdict rest
	getjson /api/queues "$T/before.json"
	browser --dump-dom >"$T/dom-$mode.html"
	echo "$mode: chromium --dump-dom: $((SECONDS - t0))s, exit $rc"
	check "$mode: chromium --dump-dom: exit 0" test "$rc" -eq 0
	getjson /api/queues "$T/after.json"
	run stats --json
	printf '%s' "$out" >"$T/stats.json"
	python3 "$T/check.py" "$mode" "$T/dom-$mode.html" "$T/stats.json" \
	    "$T/before.json" "$T/after.json" "${wrk:-none}" "$slow_id" \
	    "$b1" "$b2" "$r1" "$r2" >"$T/check-$mode"
	check "$mode: the DOM checks ran" test $? -eq 0
	check "$mode: the DOM checks: all" test "$(wc -l <"$T/check-$mode")" -ge 40
	while read -r verdict rest; do
		if [ "$verdict" = PASS ]; then
			pass=$((pass + 1))
		else
			fail=$((fail + 1))
			echo "FAIL: dashboard: $rest" >&2
		fi
	done <"$T/check-$mode"
}

page work

# ---- the screenshot --------------------------------------------------------------
t0=$SECONDS
browser --hide-scrollbars --window-size=1280,1600 --screenshot="$T/dashboard.png" >/dev/null
echo "chromium --screenshot: $((SECONDS - t0))s, exit $rc"
check "chromium --screenshot: exit 0" test "$rc" -eq 0
is "screenshot: a 1280x1600 PNG" "$(python3 -c '
import struct, sys
b = open(sys.argv[1], "rb").read()
w, h = struct.unpack(">II", b[16:24])
print(b[:8] == b"\x89PNG\r\n\x1a\n" and b[12:16] == b"IHDR" and len(b) > 10000, w, h)
' "$T/dashboard.png" 2>&1)" "True 1280 1600"
mkdir -p tests/cli
cp "$T/dashboard.png" tests/cli/dashboard.png
echo "screenshot: $(pwd)/tests/cli/dashboard.png"

# ---- stop the worker; the same page from spool serve -------------------------------
kill -TERM "$wrk"
wait "$wrk"
wrk=
is "the worker gave the slow task back" "$(sql "SELECT state FROM tasks WHERE id = $slow_id")" ready
"$SPOOL_BIN" serve --http 127.0.0.1:0 >/dev/null 2>"$T/serve.err" &
srv=$!
check "serve: serving" wait_for "grep -q 'serving http://' '$T/serve.err'" 600
port=$(sed -n 's|.* spool serve: info: serving http://127\.0\.0\.1:\([0-9]*\)/ (pid [0-9]*)$|\1|p' "$T/serve.err" | head -n 1)
url="http://127.0.0.1:$port/"
page serve
# The pages behind the tables: order=desc pages to older ids with after.
is "serve: batches and runs, paged both ways" "$(python3 - "http://127.0.0.1:$port" <<'PY'
import json, sys, urllib.request
def walk(path, key):
    ids, after = [], 0
    while True:
        with urllib.request.urlopen(f"{sys.argv[1]}{path}&after={after}", timeout=10) as r:
            d = json.load(r)
        ids += [x["id"] for x in d[key]]
        if d["next_after"] is None:
            return ids
        after = d["next_after"]
b, r = walk("/api/batches?limit=7", "batches"), walk("/api/runs?limit=7", "runs")
print(b == list(range(1, len(b) + 1)), walk("/api/batches?order=desc&limit=7", "batches") == b[::-1],
      walk("/api/batches?order=desc&limit=7&state=finished", "batches"),
      r == list(range(1, len(r) + 1)), walk("/api/runs?order=desc&limit=5", "runs") == r[::-1],
      walk("/api/runs?order=desc&limit=5&pipeline=pp", "runs"))
PY
)" "True True [$b1] True True [$r2, $r1]"
kill -TERM "$srv"
wait "$srv"
is "serve: exit 0 on SIGTERM" "$?" 0
srv=

is "no console messages from the page" "$(grep -c ':CONSOLE' "$T/chromium.log")" 0
grep ':CONSOLE' "$T/chromium.log" | head -n 5 >&2
[ "$fail" -eq 0 ] || { echo "---- chromium's log ----"; grep -v dbus "$T/chromium.log" | tail -n 20; } >&2
finish

#!/bin/bash
# http.sh -- the HTTP server of "spool serve" and "spool work --http",
# for real on a free loopback port: /metrics against the database, the
# pool's histograms against the attempts it ran, /healthz, the JSON
# views and their pages, the dashboard page, the limits (404, 405, 400,
# oversized headers and bodies), writes refused unless --http-write and
# the header, and then done; bad addresses and a port in use.  Every
# server is stopped by its PID.
. "$TESTS_SRCDIR/cli/lib.sh"

# http METHOD PATH [HEADER:VALUE...]: sets $code and $body (and $ctype).
http() {
	local out
	out=$(python3 - "$port" "$@" <<'EOF'
import http.client, sys
port, method, path = int(sys.argv[1]), sys.argv[2], sys.argv[3]
headers = dict(h.split(":", 1) for h in sys.argv[4:])
body = headers.pop("Body", None)
c = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
c.request(method, path, body=body, headers=headers)
r = c.getresponse()
data = r.read().decode("utf-8", "replace")
print(r.status)
print(r.getheader("Content-Type") or "")
print(r.getheader("Allow") or "")
sys.stdout.write(data)
EOF
)
	code=$(sed -n 1p <<<"$out")
	ctype=$(sed -n 2p <<<"$out")
	allow=$(sed -n 3p <<<"$out")
	body=$(sed -n '4,$p' <<<"$out")
}

# start_server LOG ARGS...: run spool ARGS in the background, wait for
# its "serving http://ADDR/" line, set $pid and $port.
start_server() {
	local log=$1
	shift
	"$SPOOL_BIN" "$@" 2>"$log" >/dev/null &
	pid=$!
	wait_for "grep -q 'serving http://' '$log'" 200
	port=$(sed -n 's|.*serving http://127\.0\.0\.1:\([0-9]*\)/.*|\1|p' "$log" | head -n 1)
}

stop_server() {
	kill "$pid" 2>/dev/null
	wait "$pid" 2>/dev/null
	st=$?
}

run init
run queue create mail --max-attempts 1
for i in $(seq 1 30); do echo "ok $i"; done >"$T/ok"
run_in "$T/ok" enqueue mail --lines
for i in 1 2 3; do "$SPOOL_BIN" enqueue mail "bad $i" >/dev/null; done
"$SPOOL_BIN" enqueue 'we"ird\q' x >/dev/null
"$SPOOL_BIN" enqueue later x --delay 1h >/dev/null

# ---- spool work --http: the pool's own figures ---------------------------
start_server "$T/work.log" work mail --http 127.0.0.1:0 --concurrency 3 \
    --until-empty --log-interval 0 --exec /bin/sh -c \
    'read -r p; case $p in bad*) echo "broke on $p" >&2; exit 3;; esac; sleep 0.02'
check "work --http: listening" test -n "$port"
wait_for "! alive $pid" 400
stop_server
is "work --http: exit 1 (some failed)" "$st" 1
check "work --http: it said where" grep -q 'info: serving http://127.0.0.1:[0-9]*/' "$T/work.log"

# A worker that stays up, to scrape while it has run things.
for i in $(seq 1 12); do "$SPOOL_BIN" enqueue fast "f $i" >/dev/null; done
start_server "$T/work2.log" work fast --http :0 --concurrency 2 --exec /bin/sh -c 'sleep 0.01'
wait_for "test \"\$(sql \"SELECT count(*) FROM tasks WHERE queue = 'fast' AND state = 'succeeded'\")\" = 12" 400
sleep 0.1	# the last outcomes are committed before they are counted
http GET /metrics
is "pool /metrics: 200" "$code" 200
is "pool /metrics: content type" "$ctype" "text/plain; version=0.0.4; charset=utf-8"
printf '%s\n' "$body" >"$T/pool.prom"
is "pool: run histogram count = attempts run" "$(sed -n 's/^spool_pool_run_seconds_count //p' "$T/pool.prom")" 12
is "pool: +Inf bucket = count" "$(sed -n 's/^spool_pool_run_seconds_bucket{le="+Inf"} //p' "$T/pool.prom")" 12
is "pool: wait histogram count" "$(sed -n 's/^spool_pool_wait_seconds_count //p' "$T/pool.prom")" 12
is "pool: succeeded in the last minute" "$(sed -n 's/^spool_pool_succeeded_last_minute //p' "$T/pool.prom")" 12
is "pool: commits not blocked" "$(sed -n 's/^spool_pool_commit_blocked //p' "$T/pool.prom")" 0
is "pool: no outcome held" "$(sed -n 's/^spool_pool_outcomes_held //p' "$T/pool.prom")" 0
check "pool: buckets never decrease" python3 - "$T/pool.prom" <<'EOF'
import sys
last = {}
for line in open(sys.argv[1]):
    if "_bucket{" in line:
        name = line.split("{")[0]
        v = int(line.split()[-1])
        assert v >= last.get(name, 0), line
        last[name] = v
assert len(last) == 2
EOF
check "pool: run times of 10 ms or more" python3 - "$T/pool.prom" <<'EOF'
import sys
b = {l.split('le="')[1].split('"')[0]: int(l.split()[-1])
     for l in open(sys.argv[1]) if l.startswith("spool_pool_run_seconds_bucket")}
assert b["0.005"] == 0 and b["+Inf"] == 12, b
EOF
check "pool: process RSS" grep -qE '^process_resident_memory_bytes [1-9][0-9]{5,}$' "$T/pool.prom"
check "pool: process CPU" grep -qE '^process_cpu_seconds_total [0-9]+\.[0-9]+$' "$T/pool.prom"
http GET /api/queues
is "pool /api/queues: pool pid" "$(out=$body jq_py 'd["pool"]["pid"]')" "$pid"
is "pool /api/queues: 60 seconds of counts" "$(out=$body jq_py 'len(d["pool"]["succeeded_per_s"])')" 60
is "pool /api/queues: they add up" "$(out=$body jq_py 'sum(d["pool"]["succeeded_per_s"])')" 12
stop_server
is "work --http: SIGTERM drains, exit 0" "$st" 0

# ---- spool serve: the database's figures ----------------------------------
start_server "$T/serve.log" serve --http 127.0.0.1:0
check "serve: listening" test -n "$port"
check "serve: says its pid" grep -q "(pid $pid)" "$T/serve.log"

http GET /healthz
is "healthz: 200" "$code" 200
is "healthz: ok" "$body" ok

http GET /metrics
is "metrics: 200" "$code" 200
printf '%s\n' "$body" >"$T/serve.prom"
"$SPOOL_BIN" stats --prometheus >"$T/cli.prom"
# The same figures as "spool stats --prometheus" (ages move: drop them).
is "metrics: same as stats --prometheus" \
    "$(grep -v oldest_ready_age "$T/serve.prom" | md5sum)" \
    "$(grep -v oldest_ready_age "$T/cli.prom" | md5sum)"
check "metrics: no pool section without a pool" test "$(grep -c '^spool_pool_' "$T/serve.prom")" -eq 0
is "metrics: succeeded = rows" "$(sed -n 's/^spool_succeeded_total{queue="mail"} //p' "$T/serve.prom")" \
    "$(sql "SELECT count(*) FROM tasks WHERE queue = 'mail' AND state = 'succeeded'")"
is "metrics: dead = rows" "$(sed -n 's/^spool_dead_total{queue="mail"} //p' "$T/serve.prom")" \
    "$(sql "SELECT count(*) FROM tasks WHERE queue = 'mail' AND state = 'dead'")"
is "metrics: scheduled gauge" "$(sed -n 's/^spool_tasks{queue="later",state="scheduled"} //p' "$T/serve.prom")" 1
check "metrics: escaped label" grep -qF 'spool_tasks{queue="we\"ird\\q",state="ready"} 1' "$T/serve.prom"
check "metrics: every sample's family has HELP and TYPE" python3 - "$T/serve.prom" <<'EOF'
import sys, re
typed = set()
for line in open(sys.argv[1]):
    line = line.rstrip("\n")
    m = re.match(r"# TYPE (\S+) (counter|gauge|histogram)$", line)
    if m:
        typed.add(m.group(1)); continue
    if line.startswith("#") or not line:
        continue
    name = re.match(r"[a-zA-Z_:][a-zA-Z0-9_:]*", line).group(0)
    assert name in typed, line
    assert re.match(r'^[a-zA-Z_:][a-zA-Z0-9_:]*(\{.*\})? -?[0-9.e+]+$', line), line
EOF

http GET /api/queues
is "queues: 200 JSON" "$code $ctype" "200 application/json"
is "queues: the queues" "$(out=$body jq_py '[q["queue"] for q in d["queues"]]')" '["fast", "later", "mail", "we\"ird\\q"]'
is "queues: mail succeeded" "$(out=$body jq_py '[q for q in d["queues"] if q["queue"] == "mail"][0]["succeeded"]')" 30
is "queues: no pool" "$(out=$body jq_py 'd["pool"]')" null

http GET '/api/tasks?queue=mail&state=dead'
is "tasks: the dead ones" "$(out=$body jq_py '[t["payload"] for t in d["tasks"]]')" '["bad 1", "bad 2", "bad 3"]'
check "tasks: their errors" grep -q 'broke on bad 2' <<<"$body"
is "tasks: last page" "$(out=$body jq_py 'd["next_after"]')" null
http GET '/api/tasks?queue=mail&limit=10'
is "tasks: a page of 10" "$(out=$body jq_py 'len(d["tasks"])')" 10
after=$(out=$body jq_py 'd["next_after"]')
is "tasks: next_after is the last id" "$after" "$(out=$body jq_py 'd["tasks"][-1]["id"]')"
http GET "/api/tasks?queue=mail&limit=10&after=$after"
is "tasks: the next page starts after it" "$(out=$body jq_py 'd["tasks"][0]["id"]')" $((after + 1))
http GET '/api/tasks?state=succeeded&order=desc&limit=1'
is "tasks: newest first" "$(out=$body jq_py 'd["tasks"][0]["id"]')" "$(sql "SELECT max(id) FROM tasks WHERE state = 'succeeded'")"
http GET /api/tasks/1
is "task: one, with its payload" "$(out=$body jq_py 'd["payload"]')" "ok 1"
http GET /api/tasks/999999
is "task: missing is 404" "$code" 404
for bad in 'limit=0' 'limit=x' 'limit=1001' 'after=-1' 'state=nope' 'order=up' 'batch=0' 'batch=x'; do
	http GET "/api/tasks?$bad"
	is "tasks?$bad: 400" "$code" 400
done
http GET /api/workers
is "workers: 200" "$code" 200
is "workers: none running" "$(out=$body jq_py 'd["workers"]')" '[]'

run batch create --description nightly
bid=$out
run batch add "$bid" mail one
http GET "/api/tasks?batch=$bid"
is "tasks?batch=: the batch's one task" "$(out=$body jq_py '[(t["batch_id"], t["payload"]) for t in d["tasks"]]')" "[[$bid, \"one\"]]"
http GET /api/batches
is "batches: the batch" "$(out=$body jq_py '[(b["id"], b["description"], b["total"]) for b in d["batches"]]')" "[[$bid, \"nightly\", 1]]"
http GET '/api/batches?state=nope'
is "batches: bad state 400" "$code" 400
run pipeline create pp --stage 'a:1=/bin/cat'
printf 'x\ny\n' >"$T/items"
run_in "$T/items" pipeline run pp --lines
rid=$out
http GET /api/runs
is "runs: the run" "$(out=$body jq_py '[(r["id"], r["pipeline"], r["total"]) for r in d["runs"]]')" "[[$rid, \"pp\", 2]]"
http GET '/api/runs?pipeline=none'
is "runs: filter" "$(out=$body jq_py 'd["runs"]')" '[]'
run_in "$T/items" pipeline run pp --lines
rid2=$out
http GET '/api/runs?order=desc&limit=1'
is "runs: newest first" "$(out=$body jq_py '[r["id"] for r in d["runs"]] + [d["next_after"]]')" "[$rid2, $rid2]"
http GET "/api/runs?order=desc&after=$rid2"
is "runs: then older" "$(out=$body jq_py '[r["id"] for r in d["runs"]]')" "[$rid]"
http GET '/api/batches?order=desc&after=1'
is "batches: nothing below the first" "$(out=$body jq_py 'd["batches"]')" '[]'
for bad in 'runs?order=up' 'runs?limit=0' 'batches?after=x' 'batches?order=sideways'; do
	http GET "/api/$bad"
	is "$bad: 400" "$code" 400
done

http GET /
is "dashboard: 200 HTML" "$code $ctype" "200 text/html; charset=utf-8"
check "dashboard: the page" grep -q '<table id="queues">' <<<"$body"
check "dashboard: no external resources" test "$(grep -cE '(src|href)="(https?:)?//' <<<"$body")" -eq 0
http HEAD /healthz
is "HEAD: 200" "$code" 200
is "HEAD: the length GET would send, and no body" "$(python3 - "$port" <<'EOF'
import socket, sys
s = socket.create_connection(("127.0.0.1", int(sys.argv[1])), timeout=10)
s.sendall(b"HEAD /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
data = b""
while True:
    chunk = s.recv(4096)
    if not chunk: break
    data += chunk
head, _, rest = data.partition(b"\r\n\r\n")
print(b"Content-Length: 3" in head, len(rest))
EOF
)" "True 0"

# ---- what the HTTP surface refuses ----------------------------------------
http GET /nope
is "unknown path: 404" "$code" 404
http GET /api/nope
is "unknown api path: 404" "$code" 404
http DELETE /api/tasks/1
is "DELETE: 405" "$code" 405
is "405 says Allow" "$allow" "GET, HEAD"
http GET /api/queues/mail/pause
is "GET of an action: 405" "$code" 405
http PUT /metrics
is "PUT: 405" "$code" 405
sum_before=$(sql "SELECT group_concat(id || state, ',') FROM tasks")
paused_before=$(sql "SELECT group_concat(name || paused, ',') FROM queues")
dead=$(sql "SELECT min(id) FROM tasks WHERE state = 'dead'")
http POST "/api/tasks/$dead/retry" X-Spool-Write:1
is "read-only: POST retry is 403" "$code" 403
http POST /api/queues/mail/pause X-Spool-Write:1
is "read-only: POST pause is 403" "$code" 403
http POST /api/tasks X-Spool-Write:1
is "POST to a list: 405" "$code" 405
is "nothing changed" "$(sql "SELECT group_concat(id || state, ',') FROM tasks") $(sql "SELECT group_concat(name || paused, ',') FROM queues")" "$sum_before $paused_before"
# Limits: 8 KiB of headers, 1 KiB of body.
check "oversized headers are refused" python3 - "$port" <<'EOF'
import socket, sys
s = socket.create_connection(("127.0.0.1", int(sys.argv[1])), timeout=10)
s.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * 20000 + b"\r\n\r\n")
data = b""
try:
    while True:
        chunk = s.recv(4096)
        if not chunk: break
        data += chunk
except (ConnectionResetError, socket.timeout):
    pass
assert not data.startswith(b"HTTP/1.1 200"), data[:100]
EOF
# Only HTTP/1.0 and 1.1: evhttp would answer "HTTP/1.11 200 OK" (a
# major version above 1 it refuses itself, 400).
for v in 1.11:505 0.9:505 2.0:400 9.9:400; do
	want=${v#*:}
	v=${v%:*}
	is "HTTP/$v: $want, in HTTP/1.1" "$(python3 - "$port" "$v" <<'EOF'
import socket, sys
s = socket.create_connection(("127.0.0.1", int(sys.argv[1])), timeout=10)
s.sendall(b"GET /healthz HTTP/" + sys.argv[2].encode() + b"\r\nHost: 127.0.0.1\r\n\r\n")
s.shutdown(socket.SHUT_WR)
data = b""
while True:
    chunk = s.recv(4096)
    if not chunk: break
    data += chunk
print(data.split(b"\r\n")[0].decode()[:12])
EOF
)" "HTTP/1.1 $want"
done
http POST "/api/tasks/$dead/retry" X-Spool-Write:1 "Body:$(head -c 5000 /dev/zero | tr '\0' a)"
check "oversized body is refused (413)" test "$code" = 413
http GET /healthz
is "still serving after all that" "$code" 200
stop_server
is "serve: SIGTERM stops it, exit 0" "$st" 0
check "serve: said it stopped" grep -q 'info: stopped' "$T/serve.log"

# ---- --http-write ----------------------------------------------------------
start_server "$T/serve2.log" serve --http 127.0.0.1:0 --http-write
http POST "/api/tasks/$dead/retry"
is "write: without the header, 403" "$code" 403
# A page of another site cannot write: not through a name it made point
# here (DNS rebinding: its Host), nor from its origin.
http POST "/api/tasks/$dead/retry" X-Spool-Write:1 "Host:evil.example:$port"
is "write: a Host of another site, 403" "$code" 403
check "... says why" grep -q "Host header" <<<"$body"
http POST "/api/tasks/$dead/retry" X-Spool-Write:1 "Host:127.0.0.1:1"
is "write: another port in Host, 403" "$code" 403
http POST "/api/tasks/$dead/retry" X-Spool-Write:1 "Origin:http://evil.example"
is "write: an Origin of another site, 403" "$code" 403
check "... says why" grep -q "another origin" <<<"$body"
is "... nothing changed" "$(sql "SELECT state FROM tasks WHERE id = $dead")" dead
http POST "/api/tasks/$dead/retry" X-Spool-Write:1 "Host:localhost:$port" "Origin:http://127.0.0.1:$port"
is "write: Host localhost and this server's Origin, 200" "$code" 200
http POST "/api/tasks/$dead/cancel" X-Spool-Write:1
http POST "/api/tasks/$dead/retry" X-Spool-Write:1
is "write: retry 200" "$code" 200
is "write: the task is ready again" "$(sql "SELECT state FROM tasks WHERE id = $dead")" ready
http POST "/api/tasks/$dead/cancel" X-Spool-Write:1
is "write: cancel 200" "$code" 200
is "write: the task is cancelled" "$(sql "SELECT state FROM tasks WHERE id = $dead")" cancelled
http POST "/api/tasks/$dead/explode" X-Spool-Write:1
is "write: unknown action 404" "$code" 404
http POST /api/queues/mail/pause X-Spool-Write:1
is "write: pause 200" "$code" 200
is "write: paused" "$(sql "SELECT paused FROM queues WHERE name = 'mail'")" 1
http POST /api/queues/mail/resume X-Spool-Write:1
is "write: resumed" "$(sql "SELECT paused FROM queues WHERE name = 'mail'")" 0
http POST /api/queues/pp%2Fa/pause X-Spool-Write:1
is "write: a stage queue's name, escaped" "$(sql "SELECT paused FROM queues WHERE name = 'pp/a'")" 1
n_queues=$(sql "SELECT count(*) FROM queues")
http POST /api/queues/ghost/pause X-Spool-Write:1
is "write: pausing a missing queue is 404" "$code" 404
is "write: and creates nothing" "$(sql "SELECT count(*) FROM queues")" "$n_queues"
http POST /api/tasks/999999/retry X-Spool-Write:1
is "write: missing task 404" "$code" 404
stop_server

# ---- spool serve reaps: an expired lease is shown as expired, then retried --
run queue create orphan --max-attempts 3
orphan=$("$SPOOL_BIN" enqueue orphan lost)
# A worker that died holding it: the lease as a claim leaves it, expired.
sql "UPDATE tasks SET state = 'running', attempts = 1, lease_owner = 'gone:1:0', lease_token = 7, lease_until_ms = 1000 WHERE id = $orphan"
is "expired: stats says expired, not running" "$("$SPOOL_BIN" stats orphan --json | python3 -c 'import json, sys; d = json.load(sys.stdin)[0]; print(d["running"], d["claimed"], d["expired"])')" "0 0 1"
is "expired: the view too" "$(sql "SELECT running || ' ' || claimed || ' ' || expired FROM spool_queues WHERE queue = 'orphan'")" "0 0 1"
is "expired: spool_leases" "$(sql "SELECT lease_state FROM spool_leases WHERE id = $orphan")" expired
start_server "$T/serve4.log" serve --http 127.0.0.1:0
check "serve: reaps the expired lease" wait_for "[ \"\$(sql \"SELECT state || ' ' || (SELECT outcome FROM attempts WHERE task_id = $orphan) FROM tasks WHERE id = $orphan\")\" = 'ready lease_lost' ]"
check "serve: says so" wait_for "grep -q 'reaped 1 expired lease$' '$T/serve4.log'"
stop_server

# ---- bad command lines ------------------------------------------------------
run serve --http nonsense
is "bad address: exit 64" "$rc" 64
check "bad address: one line" test "$(wc -l <<<"$err")" -eq 1
run serve --http 127.0.0.1:99999
is "bad port: exit 64" "$rc" 64
run work mail --http-write --exec /bin/true
is "--http-write without --http: exit 64" "$rc" 64
run serve --db "$T/missing.db"
is "missing database: exit 66" "$rc" 66
# A port in use: take one, then ask for it.
start_server "$T/serve3.log" serve --http 127.0.0.1:0
run serve --http "127.0.0.1:$port"
is "port in use: exit 75" "$rc" 75
check "port in use: says so" grep -q 'cannot listen' <<<"$err"
stop_server

finish

#!/bin/bash
# top.sh -- "spool top": one plain frame (--once, or stdout not a
# terminal) shows the numbers "spool stats --json" gives, the running
# task with its worker, the failures with their error and the workers,
# within 80x24 (or $COLUMNS x $LINES); the interactive mode, driven
# through a pseudo-terminal, takes the alternate screen, quits at once on
# q, redraws at the new size on SIGWINCH, and gives the terminal back (its
# settings and the main screen) on q, SIGTERM and ^C; bad input is one
# line on stderr and exit 64 or 66.
. "$TESTS_SRCDIR/cli/lib.sh"

run init
long=queue-with-a-name-much-longer-than-its-column
run queue create bad2 --backoff fixed --backoff-base 1h --jitter 0
for i in 1 2 3; do "$SPOOL_BIN" enqueue idle "i$i" >/dev/null; done
"$SPOOL_BIN" enqueue idle later --delay 1h >/dev/null
"$SPOOL_BIN" enqueue "$long" x >/dev/null
for i in 1 2 3 4 5; do "$SPOOL_BIN" enqueue fast "f$i" >/dev/null; done
"$SPOOL_BIN" work fast --until-empty --quiet --exec /bin/cat >/dev/null 2>&1
# Two failures, their error longer than any line: one dead, one that
# waits an hour for its retry.
dead_id=$("$SPOOL_BIN" enqueue bad boom --max-attempts 1)
retry_id=$("$SPOOL_BIN" enqueue bad2 boom2 --max-attempts 3)
"$SPOOL_BIN" work bad bad2 --until-empty --quiet --exec /bin/sh -c \
    'read -r p; echo "$p: the error text of this task is far longer than eighty columns, so top cuts it" >&2; exit 3' \
    >/dev/null 2>&1
is "setup: a dead task" "$(sql "SELECT state FROM tasks WHERE id = $dead_id")" dead
is "setup: a task waiting for its retry" "$(sql "SELECT state || ' ' || attempts FROM tasks WHERE id = $retry_id")" "ready 1"
# A task running under a real worker, and a dead worker's row.
run_id=$("$SPOOL_BIN" enqueue slow s1)
"$SPOOL_BIN" work slow --concurrency 1 --quiet --shutdown-timeout 1s \
    --grace 1s --exec sleep 60 >/dev/null 2>&1 &
w=$!
check "setup: the task runs" wait_for "[ \"\$(sql 'SELECT state FROM tasks WHERE id = $run_id')\" = running ]"
check "setup: the worker is busy" wait_for "[ \"\$(sql 'SELECT busy FROM workers WHERE pid = $w')\" = 1 ]"
sql "INSERT INTO workers (id, host, pid, queues, concurrency, busy, started_ms, heartbeat_ms) VALUES ('gone:9:x', 'gone', 9, '[\"idle\"]', 2, 1, 1000, 1000)"

# ---- One plain frame ---------------------------------------------------------

COLUMNS=80 LINES=24 run top --once
frame=$out
check "once: exit 0" test "$rc" -eq 0
is "once: nothing on stderr" "$err" ""
check "once: no escape characters" test "$(printf '%s' "$frame" | tr -d -c '\033' | wc -c)" -eq 0
check "once: at most 24 lines" test "$(printf '%s\n' "$frame" | wc -l)" -le 24
is "once: no line over 80 columns" "$(printf '%s\n' "$frame" | awk 'length > 80' | head -3)" ""
check "once: some line is cut at 80 exactly" test "$(printf '%s\n' "$frame" | awk 'length == 80' | wc -l)" -ge 1
tail=$(head -1 <<<"$frame" | sed -n 's/.*  workers [0-9]*  \(\.\.\.\)\{0,1\}//p')
check "once: the header ends with the database path (${tail})" test "${#tail}" -ge 6 -a "${SPOOL_DB%"$tail"}" != "$SPOOL_DB"
run stats --json
stats=$out
printf '%s' "$frame" >"$T/frame"
printf '%s' "$stats" >"$T/stats"
# Every queue's row against stats --json: READY RUNNING SCHED DEAD OK/1M
# DEAD/1M, and the header's totals against their sums.
python3 - "$T/frame" "$T/stats" >"$T/cmp" 2>&1 <<'PY'
import json, re, sys
lines = open(sys.argv[1]).read().split("\n")
stats = json.load(open(sys.argv[2]))
bad = []
i = next(k for k, l in enumerate(lines) if l.startswith("QUEUE "))
rows = {}
for l in lines[i + 1:]:
    if l.startswith("RUNNING "):
        break
    f = l.split()
    rows[f[0]] = [int(x) for x in (f[1], f[2], f[3], f[4], f[6], f[7])]
if len(rows) != len(stats):
    bad.append(f"{len(rows)} queue rows, stats has {len(stats)}")
tot = [0] * 5
for s in stats:
    name = s["queue"] if len(s["queue"]) <= 15 else s["queue"][:14] + "~"
    want = [s["ready"], s["running"], s["scheduled"], s["dead"],
            s["succeeded_last_minute"], s["dead_last_minute"]]
    if rows.get(name) != want:
        bad.append(f"{name}: top {rows.get(name)}, stats {want}")
    for k, v in enumerate([s["ready"], s["running"], s["scheduled"], s["dead"], s["succeeded_last_minute"]]):
        tot[k] += v
m = re.search(r"ready (\d+)  running (\d+)  sched (\d+)  dead (\d+)  ok/1m (\d+)", lines[0])
if not m or [int(x) for x in m.groups()] != tot:
    bad.append(f"header {lines[0]!r}, totals {tot}")
if bad:
    print("\n".join(bad))
sys.exit(1 if bad else 0)
PY
check "once: the queues' numbers are stats --json's" test $? -eq 0
[ -s "$T/cmp" ] && sed 's/^/  /' "$T/cmp" >&2
# The same numbers, known independently, so the comparison cannot pass
# on two empty or two wrong outputs.
check "once: idle: 3 ready, 1 scheduled" grep -qE '^idle +3 +0 +1 +0 ' <<<"$frame"
check "once: slow: 1 running" grep -qE '^slow +0 +1 +0 +0 ' <<<"$frame"
check "once: bad: 1 dead, 1 in the last minute" grep -qE '^bad +0 +0 +0 +1 +- +0 +1 ' <<<"$frame"
check "once: fast: 5 succeeded in the last minute" grep -qE '^fast +0 +0 +0 +0 +- +5 +0 +[0-9]+(ms|s) *$' <<<"$frame"
check "once: a long queue name is cut with ~" grep -qE '^queue-with-a-n~ +1 ' <<<"$frame"
check "once: header totals" grep -qE '^[0-9:]{8} UTC  ready 4  running 1  sched 2  dead 1  ok/1m 5  workers 1 ' <<<"$frame"
check "once: the running task, its worker's pid" grep -qE "^$run_id +slow +1/[0-9]+ +[0-9]+(ms|s)  [^ :]+:$w:" <<<"$frame"
check "once: the dead task and its error" grep -qE "^$dead_id +bad +1/1 +[0-9]+(ms|s) dead +exit 3: boom: the error text" <<<"$frame"
check "once: the task waiting for its retry" grep -qE "^$retry_id +bad2 +1/3 +[0-9]+(ms|s) retry +exit 3: boom2: " <<<"$frame"
check "once: the live worker, busy 1 of 1" grep -qE "^[^ ]+ +$w +1/1 +[0-9]+(ms|s) *( |\$)" <<<"$frame"
check "once: the dead worker, STALE" grep -qE '^gone +9 +1/2 +.* STALE  \["idle"\]' <<<"$frame"
for h in 'QUEUE ' 'RUNNING ' 'FAILED ' 'WORKER '; do
	is "once: one '$h' section" "$(grep -c "^$h" <<<"$frame")" 1
done

# Not a terminal, without --once: the same plain frame, 80x24 by default.
"$SPOOL_BIN" top >"$T/pipe" 2>&1 </dev/null
check "pipe: exit 0" test $? -eq 0
check "pipe: one frame" test "$(grep -c '^QUEUE ' "$T/pipe")" -eq 1
check "pipe: 80x24 without COLUMNS" test "$(awk 'length > 80' "$T/pipe" | wc -l)" -eq 0 -a "$(wc -l <"$T/pipe")" -le 24

# A small size: every section still there, what does not fit counted.
COLUMNS=60 LINES=12 run top --once
check "60x12: exit 0" test "$rc" -eq 0
check "60x12: at most 12 lines" test "$(printf '%s\n' "$out" | wc -l)" -le 12
is "60x12: no line over 60 columns" "$(printf '%s\n' "$out" | awk 'length > 60')" ""
check "60x12: the queues left out are counted" grep -qE '^\.\.\. [0-9]+ more queues$' <<<"$out"
for h in 'QUEUE ' 'RUNNING ' 'FAILED ' 'WORKER '; do
	check "60x12: the '$h' section" grep -q "^$h" <<<"$out"
done

# Named queues only; a missing one is exit 1.
run top --once slow bad
is "queues: exit 0" "$rc" 0
is "queues: their rows only" "$(sed -n '/^QUEUE /,/^RUNNING /p' <<<"$out" | sed '1d;$d' | awk '{print $1}' | tr '\n' ' ')" "bad slow "
check "queues: bad's failure, not bad2's" test "$(grep -c "^$dead_id " <<<"$out")" -eq 1 -a "$(grep -c "^$retry_id " <<<"$out")" -eq 0
run top --once slow nope
is "missing queue: exit 1" "$rc" 1
is "missing queue: one line on stderr" "$err" "spool top: no such queue: nope"
is "missing queue: nothing on stdout" "$out" ""

# --iterations: N plain frames, --interval apart.
start=$(date +%s%N)
run top --iterations 3 --interval 200ms
took=$((($(date +%s%N) - start) / 1000000))
is "iterations: exit 0" "$rc" 0
is "iterations: 3 frames" "$(grep -c '^QUEUE ' <<<"$out")" 3
check "iterations: 2 intervals apart (${took} ms)" test "$took" -ge 400

# ---- The interactive mode, through a pseudo-terminal ---------------------------

cat >"$T/pty.py" <<'PY'
# pty.py MODE ARGS...: run spool ARGS on a new pseudo-terminal of 80x24
# (its controlling terminal), then q, SIGTERM, ^C or nothing (MODE), and
# print "PASS what" or "FAIL what: detail" per check.
import fcntl, os, re, select, signal, struct, subprocess, sys, termios, time

mode, args = sys.argv[1], sys.argv[2:]
master, slave = os.openpty()

def setsize(rows, cols):
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", rows, cols, 0, 0))

def ctty():
    fcntl.ioctl(0, termios.TIOCSCTTY, 0)

setsize(24, 80)
before = termios.tcgetattr(slave)
p = subprocess.Popen([os.environ["SPOOL_BIN"]] + args, stdin=slave,
                     stdout=slave, stderr=slave, start_new_session=True,
                     preexec_fn=ctty)
out = b""

def read_for(secs, until=None):
    global out
    end = time.time() + secs
    while time.time() < end:
        r, _, _ = select.select([master], [], [], 0.05)
        if r:
            try:
                out += os.read(master, 65536)
            except OSError:
                return False
        if until is not None and until():
            return True
    return False

def check(what, ok, detail=""):
    print(("PASS " if ok else "FAIL ") + what + ("" if ok else ": " + detail))

ENTER, LEAVE = b"\033[?1049h", b"\033[?1049l"
CSI = re.compile(rb"\033\[[0-9;?]*[A-Za-z]")

def frames(data):
    """The frames drawn: text between home-cursor escapes, escapes removed."""
    res = []
    for chunk in data.split(b"\033[H")[1:]:
        text = CSI.sub(b"", chunk).decode("ascii", "replace")
        res.append([l.rstrip("\r") for l in text.split("\n")])
    return res

def fits(fr, rows, cols):
    return len(fr) <= rows and all(len(l) <= cols for l in fr)

# A frame starts with the cursor home (\033[H) and its last section is
# the workers'.
check("the first frame is drawn", read_for(5, lambda: b"\033[H" in out and b"\ngone " in out.split(b"\033[H")[-1]),
      repr(out[-300:]))
check("the alternate screen is entered", out.startswith(ENTER) or ENTER in out, repr(out[:100]))
raw = termios.tcgetattr(slave)
check("echo and canonical input are off while it runs",
      not raw[3] & (termios.ECHO | termios.ICANON), str(raw[3]))
fr = [f for f in frames(out) if any(l.startswith("QUEUE ") for l in f)]
check("frames fit 80x24", fr and all(fits(f, 24, 80) for f in fr),
      repr([f for f in fr if not fits(f, 24, 80)][:1]))
check("a frame has every section", fr and all(any(l.startswith(h) for l in fr[-1])
      for h in ("QUEUE ", "RUNNING ", "FAILED ", "WORKER ")), repr(fr[-1:] if fr else out[-300:]))

if mode == "q":
    # A new size: the kernel sends SIGWINCH; the next frames fit it.
    mark = len(out)
    setsize(14, 50)
    check("SIGWINCH: redrawn at once (screen cleared)",
          read_for(3, lambda: b"\033[2J" in out[mark:] and b"\ngone " in out[mark:].split(b"\033[2J")[-1]),
          repr(out[mark:][:200]))
    fr = [f for f in frames(out[mark:]) if any(l.startswith("QUEUE ") for l in f)]
    check("SIGWINCH: the frames fit 50x14", fr and all(fits(f, 14, 50) for f in fr),
          repr([f for f in fr if not fits(f, 14, 50)][:1] or out[mark:][:300]))
    t0 = time.time()
    os.write(master, b"q")
    p.wait(timeout=5)
    took = time.time() - t0
    check("q: exit 0", p.returncode == 0, str(p.returncode))
    check("q: gone within 2 s", took < 2, "%.2f s" % took)
elif mode == "term":
    read_for(2, lambda: out.count(b"\033[H") >= 2)	# frames, 200 ms apart
    check("frames follow at the interval", out.count(b"\033[H") >= 2, str(out.count(b"\033[H")))
    p.send_signal(signal.SIGTERM)
    p.wait(timeout=5)
    check("SIGTERM: died of it", p.returncode == -signal.SIGTERM, str(p.returncode))
elif mode == "int":
    os.write(master, b"\003")	# ^C: SIGINT from the terminal
    p.wait(timeout=5)
    check("^C: died of SIGINT", p.returncode == -signal.SIGINT, str(p.returncode))
elif mode == "iter":
    p.wait(timeout=5)
    read_for(0.3)
    check("iterations: exit 0 by itself", p.returncode == 0, str(p.returncode))
    check("iterations: 2 frames", out.count(b"\033[H") == 2, str(out.count(b"\033[H")))
read_for(0.3)
check("the alternate screen is left, last", out.rstrip(b"\r\n").endswith(LEAVE), repr(out[-80:]))
check("the cursor is shown again", b"\033[?25h" in out[out.rfind(b"\033[H"):], repr(out[-80:]))
after = termios.tcgetattr(slave)
check("the terminal settings are restored", after == before, "%s != %s" % (after[3], before[3]))
PY

pty_case() {	# pty_case MODE WANT-CHECKS ARGS...
	local mode=$1 want=$2 n line
	shift 2
	python3 "$T/pty.py" "$mode" "$@" >"$T/pty.out" 2>&1
	n=0
	while IFS= read -r line; do
		case $line in
		PASS*) pass=$((pass + 1)); n=$((n + 1)) ;;
		FAIL*) fail=$((fail + 1)); n=$((n + 1)); echo "FAIL: pty $mode: ${line#FAIL }" >&2 ;;
		*) echo "  pty $mode: $line" >&2 ;;
		esac
	done <"$T/pty.out"
	is "pty $mode: every check ran" "$n" "$want"
}
pty_case q 12 top --interval 200ms
pty_case term 10 top --interval 200ms
pty_case int 9 top slow bad
# The interval leaves time to read the settings while the first frame shows.
pty_case iter 10 top --iterations 2 --interval 1s

# ---- Bad input -----------------------------------------------------------------

# A worker is running, so the database changes under these calls: not
# lib.sh's bad, which checks that it does not.
refused() {	# refused DESC CODE ARGS...
	local desc=$1 code=$2
	shift 2
	run "$@"
	is "$desc: exit $code" "$rc" "$code"
	is "$desc: nothing on stdout" "$out" ""
	is "$desc: one line on stderr" "$(printf '%s\n' "$err" | grep -c .)" 1
}
refused "unknown option" 64 top --once --colour
refused "bad interval" 64 top --once --interval soon
refused "zero interval" 64 top --interval 0s
refused "interval too short" 64 top --interval 10ms
refused "bad iterations" 64 top --iterations 0
refused "--once and --iterations" 64 top --once --iterations 2
refused "--json" 64 top --once --json
refused "missing database" 66 top --once --db "$T/nope.db"
check "missing database: not created" test ! -e "$T/nope.db"

kill -TERM "$w"
wait "$w"
is "the worker stopped" "$(sql "SELECT count(*) FROM workers WHERE pid = $w")" 0
finish

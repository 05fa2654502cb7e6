# tests/cli/lib.sh -- shared by the CLI tests (sourced, bash).
#
# Each script gets a private temporary directory $T (removed at exit), a
# database path in $SPOOL_DB, and these helpers:
#   run ARGS...          run spool; sets $rc, $out (stdout), $err (stderr)
#   run_in FILE ARGS...  the same with stdin from FILE
#   check DESC COND...   count a pass if the command COND succeeds
#   is DESC GOT WANT     count a pass if GOT = WANT (strings)
#   sql QUERY            one value from the database, through sqlite3
#   jq_py EXPR           evaluate a Python expression on d = json($out)
#   wait_for COND [N]    poll a shell condition every 50 ms, N times (200)
#   alive PID            the process runs (a zombie does not)
#   bad_start [FILE...]  begin a table of bad-input cases: take the
#                        snapshot they must leave as it is
#   bad CODE [<FILE] ARGS...  one case (stdin from FILE): spool ARGS exits
#                        CODE, prints one line on stderr starting "spool"
#                        and nothing on stdout, and leaves the snapshot
#                        as it was; $nbad counts the cases
#   snapshot             the hashes of the database and of bad_start's
#                        FILEs, and the names of any -wal or -shm file in
#                        $T (a failed command must not leave one behind)
#   finish               print "N passed, N failed" and exit 0 or 1
# The spool binary is $SPOOL_BIN (set by make check), else ./spool.

set -u
SPOOL_BIN=${SPOOL_BIN:-$(pwd)/spool}
[ -x "$SPOOL_BIN" ] || { echo "no spool binary at $SPOOL_BIN" >&2; exit 99; }
command -v sqlite3 >/dev/null || { echo "sqlite3 shell missing (apt-get install sqlite3)" >&2; exit 99; }
command -v python3 >/dev/null || { echo "python3 missing (apt-get install python3)" >&2; exit 99; }

T=$(mktemp -d "${TMPDIR:-/tmp}/spool-cli.XXXXXX") || exit 99
# On exit, stop whatever the test left running, then remove its files.
trap 'kill $(jobs -p) 2>/dev/null; wait 2>/dev/null; rm -rf "$T"' EXIT
export SPOOL_DB="$T/test.db"
pass=0
fail=0

run() {
	"$SPOOL_BIN" "$@" >"$T/.out" 2>"$T/.err" </dev/null
	rc=$?
	out=$(cat "$T/.out")
	err=$(cat "$T/.err")
}

run_in() {
	local input=$1
	shift
	"$SPOOL_BIN" "$@" >"$T/.out" 2>"$T/.err" <"$input"
	rc=$?
	out=$(cat "$T/.out")
	err=$(cat "$T/.err")
}

check() {
	local desc=$1
	shift
	if "$@"; then
		pass=$((pass + 1))
	else
		fail=$((fail + 1))
		# A check may come before any run: out and err may be unset.
		local o=${out-} e=${err-}
		echo "FAIL: $desc" >&2
		echo "  rc=${rc:-} out=${o:0:300}" >&2
		echo "  err=${e:0:300}" >&2
	fi
}

is() {
	if [ "$2" = "$3" ]; then
		pass=$((pass + 1))
	else
		fail=$((fail + 1))
		echo "FAIL: $1: got '$2', want '$3'" >&2
	fi
}

sql() {
	# A busy timeout: after a kill -9 the next process to open the file
	# recovers the WAL under an exclusive lock, and a read meanwhile
	# would fail with "database is locked" instead of waiting.
	sqlite3 -batch -cmd '.timeout 10000' "${DB:-$SPOOL_DB}" "$1"
}

jq_py() {
	printf '%s' "$out" | python3 -c '
import json, sys
d = json.load(sys.stdin)
v = eval(sys.argv[1])
print(json.dumps(v) if isinstance(v, (dict, list, bool)) or v is None else v)
' "$1"
}

wait_for() {
	local i
	for i in $(seq 1 "${2:-200}"); do
		eval "$1" && return 0
		sleep 0.05
	done
	return 1
}

# Running, that is: a zombie waiting for its parent (or for PID 1, which
# may be slow to reap in a container) is dead already.
alive() {
	local st
	st=$(ps -o stat= -p "$1" 2>/dev/null) || return 1
	[ -n "$st" ] && [ "${st:0:1}" != Z ]
}

snapshot() {
	sha256sum "$SPOOL_DB" ${bad_files[@]+"${bad_files[@]}"} |
	    awk '{ print $1 }'
	ls "$T" | grep -E -- '-(wal|shm)$' || true
}

bad_start() {
	bad_files=("$@")
	bad_before=$(snapshot)
	nbad=0
}

bad() {
	local want=$1 input=/dev/null lines
	shift
	if [ $# -gt 0 ] && [ "${1:0:1}" = "<" ]; then
		input=${1:1}
		shift
	fi
	nbad=$((nbad + 1))
	run_in "$input" "$@"
	lines=$(printf '%s' "$err" | grep -c '' || true)
	check "bad $nbad ($*): exit $rc, want $want" test "$rc" -eq "$want"
	check "bad $nbad ($*): one stderr line, got $lines" test "$lines" -eq 1
	check "bad $nbad ($*): empty stdout" test -z "$out"
	check "bad $nbad ($*): message names spool" grep -q '^spool' <<<"$err"
	check "bad $nbad ($*): database unchanged" \
	    test "$(snapshot)" = "$bad_before"
}

finish() {
	echo "$pass passed, $fail failed"
	[ "$fail" -eq 0 ]
	exit $?
}

#!/bin/bash
# badinput.sh -- the bad-input table: every case must exit with its
# documented code, print exactly one line on stderr and nothing on
# stdout, and leave the database bytes unchanged (no -wal left behind).
. "$TESTS_SRCDIR/cli/lib.sh"

# A database with some state to protect.
run init
run enqueue jobs '{"n":1}'
run enqueue jobs '{"n":2}' --key k1
printf 'a\nb\nc\n' >"$T/lines"
run_in "$T/lines" enqueue other --lines
run pause other
check "setup" test "$rc" -eq 0

# Files that are not spool databases.
printf 'hello\n' >"$T/notes.txt"
sqlite3 "$T/other-app.db" "CREATE TABLE t (x); INSERT INTO t VALUES (1);"
cp "$SPOOL_DB" "$T/newer.db"
sqlite3 "$T/newer.db" "PRAGMA user_version = 99;"
ln -s "$SPOOL_DB" "$T/link.db"
long=$(printf 'q%.0s' $(seq 1 200))
longkey=$(printf 'k%.0s' $(seq 1 300))
head -c 1048577 /dev/zero | tr '\0' 'x' >"$T/big"
{ echo ok; head -c 1048577 /dev/zero | tr '\0' 'y'; echo; } >"$T/bigline"

# The files that are not spool databases must not change either.
bad_start "$T/notes.txt" "$T/other-app.db" "$T/newer.db"

# Unknown commands and options, operands.
bad 64
bad 64 --json
bad 64 help list extra
bad 64 frobnicate
bad 64 list --bogus
bad 64 list -x
bad 64 --bogus list
bad 64 list extra-operand
bad 64 stats a b
bad 64 enqueue
bad 64 enqueue jobs x y
bad 64 --json=1 list
bad 64 list --db
bad 64 --db "$SPOOL_DB" --db "$SPOOL_DB" list
bad 64 list --limit 5 --limit 6
bad 64 enqueue jobs x --key=
# Numbers.
bad 64 list --limit 0
bad 64 list --limit -1
bad 64 list --limit 10x
bad 64 list --limit 9223372036854775808
bad 64 list --after -5
bad 64 enqueue jobs x --priority 1e3
bad 64 enqueue jobs x --priority 2147483648
bad 64 enqueue jobs x --max-attempts 0
bad 64 show abc
bad 64 show 0
bad 64 show -3
bad 64 show 99999999999999999999
# Durations and times.
bad 64 enqueue jobs x --delay -1
bad 64 enqueue jobs x --delay 10x
bad 64 enqueue jobs x --delay '2^63'
bad 64 enqueue jobs x --delay 9999999999999h
bad 64 enqueue jobs x --delay 1e400
bad 64 enqueue jobs x --delay -5m
bad 64 enqueue jobs x --deadline 0
bad 64 enqueue jobs x --at tomorrow
bad 64 enqueue jobs x --at 2026-02-30
bad 64 enqueue jobs x --delay 5s --at @100
bad 64 wait 1 --timeout -1
bad 64 prune --older-than 5x
# Option combinations.
bad 64 enqueue jobs --key k --lines
bad 64 purge jobs
bad 64 purge jobs --yes --dry-run
bad 64 retry
bad 64 retry 5 --queue jobs
bad 64 retry --state dead
bad 64 queue frob
bad 64 queue set jobs
bad 64 queue list jobs
bad 64 queue create q2 --jitter 1.5
bad 64 queue create q2 --lease 0
bad 64 queue create q2 --backoff random
bad 64 demo --tasks 0
# Data: names, keys, payloads.
bad 65 enqueue '' x
bad 65 enqueue $'jobs\tx' x
bad 65 enqueue $'jobs\nx' x
bad 65 enqueue $'\xff\xfe' x
bad 65 enqueue "$long" x
bad 65 enqueue jobs x --key "$longkey"
bad 65 "<$T/big" enqueue jobs -
bad 65 "<$T/bigline" enqueue jobs --lines
bad 65 enqueue jobs x --delay 10m --deadline 1m
bad 65 queue create q2 --backoff-base 1h --backoff-cap 1m
# Databases that are not there or not spool's.
bad 66 --db "$T" list
bad 66 --db "$T/missing.db" list
bad 66 --db "$T/no/such/dir.db" enqueue jobs x
bad 66 --db "$T/no/such/dir.db" init
bad 65 --db "$T/notes.txt" list
bad 65 --db "$T/other-app.db" stats
bad 65 --db "$T/newer.db" list
bad 65 --db "$T/newer.db" init
bad 65 --db "$T/newer.db" enqueue jobs x
bad 65 --db "$T/newer.db" work jobs --until-empty --exec /bin/true
bad 65 --db "$T/link.db" list
# Negative answers.
bad 1 show 999999
bad 1 cancel 999999
bad 1 retry 1
bad 1 pause nosuchqueue
bad 1 stats nosuchqueue
bad 1 purge nosuchqueue --yes
bad 1 queue create jobs
bad 1 retry --queue nosuchqueue
# Work: options checked before anything starts.
bad 64 work jobs
bad 64 work jobs --exec
bad 64 work jobs --exec ''
bad 64 work jobs --env FOO=1 --exec /bin/true
bad 64 work jobs --concurrency 0 --exec /bin/true
bad 64 work jobs --concurrency 2 --max 3 --exec /bin/true
bad 64 work jobs --min 3 --max 2 --exec /bin/true
bad 64 work jobs --strategy bogus --exec /bin/true
bad 64 work jobs other --strategy weighted --weights 1 --exec /bin/true
bad 64 work jobs --weights 1 --exec /bin/true
bad 64 work jobs --cpu-max 150 --exec /bin/true
bad 64 work jobs --lease 0 --exec /bin/true
bad 64 work jobs --timeout 5x --exec /bin/true
bad 65 work '' --exec /bin/true
bad 66 --db "$T/missing.db" work jobs --exec /bin/true

# The newer-schema refusal names both versions and says what to do.
run --db "$T/newer.db" list
check "newer schema message names 99" grep -q '99' <<<"$err"
want="version 99 is newer than this library's ([1-9][0-9]*); upgrade spool"
check "newer schema message: newer than this library's, upgrade" \
    grep -q "$want" <<<"$err"

# A read-only database is a permission error (77).  Root ignores file
# modes, so as root the case runs as the unprivileged user nobody.
cp "$SPOOL_DB" "$T/ro.db"
chmod 0444 "$T/ro.db"
chmod 0755 "$T"
if [ "$(id -u)" -eq 0 ]; then
	setpriv --reuid=nobody --regid=nogroup --clear-groups \
	    "$SPOOL_BIN" --db "$T/ro.db" list >"$T/.out" 2>"$T/.err"
	rc=$?
else
	"$SPOOL_BIN" --db "$T/ro.db" list >"$T/.out" 2>"$T/.err"
	rc=$?
fi
err=$(cat "$T/.err")
out=$(cat "$T/.out")
check "read-only database: exit 77 (got $rc)" test "$rc" -eq 77
check "read-only database: one line" test "$(grep -c '' <<<"$err")" -eq 1
check "read-only database: no stdout" test -z "$out"

echo "$nbad bad-input cases"
check "at least 40 cases" test "$nbad" -ge 40
finish

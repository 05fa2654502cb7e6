#!/bin/bash
# sqlcheck.sh -- a query whose declared shape (-- in:, -- out:) and SQL
# disagree fails the build: tools/sql2c.sh and tools/sql-check.c, run on
# a copy of sql/ with one declaration changed at a time, as the build runs
# them.  The copy as it is passes.
. "$TESTS_SRCDIR/cli/lib.sh"

top=$TESTS_SRCDIR/..
command -v cc >/dev/null || { echo "SKIP: no C compiler (cc)"; exit 77; }
mkdir "$T/sql" "$T/out"
cp -R "$top/sql/." "$T/sql/"
files=$(cd "$T" && ls sql/schema/*.sql sql/views.sql sql/queries/*.sql)
sqlcflags=$(pkg-config --cflags sqlite3 2>/dev/null)
sqllibs=$(pkg-config --libs sqlite3 2>/dev/null || echo -lsqlite3)

# build: generate sql-gen.[ch] from $T/sql, compile the checker against
# them and run it; sets rc and err.
build() {
	# shellcheck disable=SC2086
	sh "$top/tools/sql2c.sh" "$T" "$T/out/sql-gen.h" $files &&
	    sh "$top/tools/sql2c.sh" "$T" "$T/out/sql-gen.c" $files &&
	    sh "$top/tools/sql2c.sh" "$T" "$T/out/query-gen.h" $files &&
	    cc -I"$T/out" $sqlcflags -o "$T/out/sql-check" \
	    "$top/tools/sql-check.c" "$T/out/sql-gen.c" $sqllibs 2>"$T/.err" &&
	    "$T/out/sql-check" "$T/out/stamp" 2>"$T/.err"
	rc=$?
	err=$(cat "$T/.err")
}

# tweak SED-EXPR: apply it to workers.sql's copy, build, restore.
tweak() {
	cp "$T/sql/queries/workers.sql" "$T/workers.sql"
	sed -i "$1" "$T/sql/queries/workers.sql"
	if cmp -s "$T/workers.sql" "$T/sql/queries/workers.sql"; then
		# The line to change is not there: say so, never pass.
		check "tweak $1 changes workers.sql" false
		rc=0 err=
	else
		build
	fi
	cp "$T/workers.sql" "$T/sql/queries/workers.sql"
}

build
check "as it is: the check passes" test "$rc" -eq 0
check "as it is: the stamp is written" test -f "$T/out/stamp"
check "the generated face has the typed query" \
    grep -q 'struct spool__q_lock_holder_row' "$T/out/query-gen.h"

tweak 's/^-- out: owner text, until_ms int$/-- out: holder text, until_ms int/'
check "a column named otherwise: the build fails" test "$rc" -eq 65
check "... saying which" grep -q 'query lock_holder: result column 1 is "owner", declared "holder"' <<<"$err"

tweak 's/^-- out: owner text, until_ms int$/-- out: owner text/'
check "a column too many in the SQL: fails" test "$rc" -eq 65
check "... saying so" grep -q 'query lock_holder: result column 2 is "until_ms", declared ""' <<<"$err"

tweak 's/^-- out: owner text, until_ms int$/-- out: owner text, until_ms int, extra int/'
check "a column the SQL lacks: fails" test "$rc" -eq 65
check "... saying so" grep -q 'query lock_holder declares result columns its SQL does not have: extra' <<<"$err"

tweak 's/^-- in: name text, owner text, until_ms int$/-- in: name text, owner text/'
check "a parameter too few: fails" test "$rc" -eq 65
check "... saying so" grep -q 'query lock_renew declares 2 parameters, its SQL has 3' <<<"$err"

tweak 's/^UPDATE locks SET until_ms = ?3 WHERE name = ?1 AND owner = ?2;$/UPDATE locks SET until_ms = ? WHERE name = ?1 AND owner = ?2;/'
check "a bare ? in a typed query: fails" test "$rc" -eq 65
# (SQLite numbers a bare ? one past the largest number before it, so here
# the count is off; where the count matched, the name would be.)
check "... naming the query" grep -q 'query lock_renew declares 3 parameters, its SQL has 2' <<<"$err"

tweak 's/^SELECT owner, until_ms FROM locks WHERE name = ?1;$/SELECT owner, until_ms FROM lockz WHERE name = ?1;/'
check "SQL that does not prepare: fails" test "$rc" -eq 65
check "... saying so" grep -q 'query lock_holder does not prepare: no such table: lockz' <<<"$err"

tweak 's/^-- in: name text$/-- in: name txt/'
check "an unknown type: sql2c.sh fails" test "$rc" -ne 0
finish

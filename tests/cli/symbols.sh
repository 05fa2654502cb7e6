#!/bin/bash
# symbols.sh -- the shared library exports only spool_* symbols (no
# spool__ internals), and links the system SQLite instead of embedding a
# copy (two SQLites in one process break POSIX locks).
. "$TESTS_SRCDIR/cli/lib.sh"

so=$SPOOL_LIBDIR/libspool.so
check "shared library built" test -f "$so"
syms=$(nm -D --defined-only "$so" | awk '$2 ~ /[TDBR]/ { print $3 }')
count=$(printf '%s\n' "$syms" | grep -c .)
check "exports symbols" test "$count" -gt 40
bad=$(printf '%s\n' "$syms" | grep -v '^spool_[a-z]' || true)
is "only spool_[a-z]* exported" "$bad" ""
check "spool_open exported" grep -qx spool_open <<<"$syms"
check "spool_claim_many exported" grep -qx spool_claim_many <<<"$syms"
check "no internal spool__ symbol" test -z "$(grep '^spool__' <<<"$syms")"
check "links the system libsqlite3" grep -q 'libsqlite3\.so' <(ldd "$so")
check "does not embed SQLite" test -z "$(nm -D --defined-only "$so" | grep -w sqlite3_open_v2)"
check "CLI does not embed SQLite" grep -q 'libsqlite3\.so' <(ldd "$SPOOL_BIN")
finish

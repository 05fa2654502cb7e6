#!/bin/bash
# layers.sh -- the library's layers hold (tools/layers.sh): no object calls
# a function of a higher layer, only the store calls SQLite and only the
# engine libevent, no file outside the store includes sqlite3.h.  The
# checker is first shown to fail on a small archive that breaks each rule.
. "$TESTS_SRCDIR/cli/lib.sh"

top=$TESTS_SRCDIR/..
command -v cc >/dev/null || { echo "SKIP: no C compiler (cc)"; exit 77; }
command -v nm >/dev/null || { echo "SKIP: no nm (binutils)"; exit 77; }
ar=$SPOOL_LIBDIR/libspool-core.a
check "the convenience archive is built" test -r "$ar"

# A store that calls a model function, a queue.c that calls SQLite, a
# file in no layer.
mkdir "$T/bad"
cat >"$T/bad/store.c" <<'C'
void spool__claim_thing(void);
void spool__store_thing(void) { spool__claim_thing(); }
C
cat >"$T/bad/claim.c" <<'C'
void spool__claim_thing(void) {}
C
cat >"$T/bad/queue.c" <<'C'
int sqlite3_step(void *);
int spool__queue_thing(void *st) { return sqlite3_step(st); }
C
cat >"$T/bad/mystery.c" <<'C'
int spool__mystery(void) { return 1; }
C
cat >"$T/bad/cmd-bad.c" <<'C'
int spool__mystery(void);
int cmd_bad(void) { return spool__mystery(); }
C
(cd "$T/bad" && for f in store claim queue mystery cmd-bad; do cc -c "$f.c" || exit 1; done &&
    ar rc bad.a store.o claim.o queue.o mystery.o) ||
    { echo "FAIL: could not build the test archive"; exit 1; }
out=$(sh "$top/tools/layers.sh" "$T/bad/bad.a" "$top" "$T/bad/cmd-bad.o" 2>&1)
rc=$?
is "a broken archive fails" "$rc" 1
check "... naming the upward call" grep -q \
    'store.o (store) calls spool__claim_thing of claim.o (model)' <<<"$out"
check "... the SQLite call outside the store" grep -q \
    'queue.o calls sqlite3_step' <<<"$out"
check "... the file in no layer" grep -q 'mystery.o is in no layer' <<<"$out"
check "... and the CLI's internal call" grep -q \
    'cmd-bad.o (the CLI) calls spool__mystery (internal)' <<<"$out"

# The CLI's own objects, as the build made them.
cli=$(ls "$SPOOL_LIBDIR"/../src/cli/*.o 2>/dev/null)
check "the CLI's objects are built" test -n "$cli"

# shellcheck disable=SC2086
out=$(sh "$top/tools/layers.sh" "$ar" "$top" $cli 2>&1)
rc=$?
is "spool's own layers hold ($out)" "$rc" 0
finish

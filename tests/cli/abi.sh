#!/bin/bash
# abi.sh -- the library's ABI against the baseline kept in abi/libspool.abi
# (tools/abi.sh, with abidw and abidiff from abigail-tools): an exported
# function or variable removed or changed incompatibly fails, unless the
# soname changed too; additions pass.  The checker is first shown to tell
# these apart on a small library built twice with the same soname, so it
# cannot pass by seeing nothing.  Without abidiff this is a skip (77).
. "$TESTS_SRCDIR/cli/lib.sh"

top=$TESTS_SRCDIR/..
abi=$top/tools/abi.sh
command -v abidiff >/dev/null && command -v abidw >/dev/null || {
	echo "SKIP: abidw and abidiff not found (Debian package abigail-tools;" \
	    "sh tools/deps.sh installs it)"
	exit 77
}
command -v cc >/dev/null || { echo "SKIP: no C compiler (cc)"; exit 77; }
command -v readelf >/dev/null || { echo "SKIP: no readelf (binutils)"; exit 77; }

# ---- The checker, on a small library ------------------------------------------

mkdir "$T/tiny"
cat >"$T/tiny/tiny.h" <<'C'
#ifdef WIDER
struct tiny_pair { int a; long inserted; long b; };
#else
struct tiny_pair { int a; long b; };
#endif
#ifdef LONG_ARG
int tiny_add(long x);
#else
int tiny_add(int x);
#endif
int tiny_first(const struct tiny_pair *p);
#ifndef NO_SCALE
int tiny_scale(int x);
#endif
#ifdef EXTRA
int tiny_extra(void);
#endif
C
cat >"$T/tiny/tiny.c" <<'C'
#include "tiny.h"
#ifdef LONG_ARG
int tiny_add(long x) { return (int)x + 1; }
#else
int tiny_add(int x) { return x + 1; }
#endif
int tiny_first(const struct tiny_pair *p) { return p->a; }
#ifndef NO_SCALE
int tiny_scale(int x) { return x * 2; }
#endif
#ifdef EXTRA
int tiny_extra(void) { return 7; }
#endif
C
tiny() {	# tiny NAME SONAME CFLAGS...: build $T/tiny/NAME.so
	local name=$1 soname=$2
	shift 2
	cc -g -O0 -shared -fPIC -Wl,-soname,"$soname" "$@" \
	    -o "$T/tiny/$name.so" "$T/tiny/tiny.c"
}
tiny base libtiny.so.1
tiny same libtiny.so.1
tiny added libtiny.so.1 -DEXTRA
tiny arg libtiny.so.1 -DLONG_ARG
tiny struct libtiny.so.1 -DWIDER
tiny removed libtiny.so.1 -DNO_SCALE
tiny bumped libtiny.so.2 -DLONG_ARG -DNO_SCALE
check "small libraries built" test -f "$T/tiny/bumped.so"

sh "$abi" dump "$T/tiny/base.so" "$T/tiny/tiny.h" "$T/tiny/base.abi"
check "dump the small library" test -s "$T/tiny/base.abi"
check "its baseline has the struct's members" \
    grep -q "name='inserted'\\|name='b'" "$T/tiny/base.abi"

against() {	# against NAME: check NAME.so against the base; sets rc, out
	out=$(sh "$abi" check "$T/tiny/base.abi" "$T/tiny/$1.so" \
	    "$T/tiny/tiny.h" 2>&1)
	rc=$?
	err=
}
against same
is "the same library passes" "$rc" 0
check "  and says so" grep -q "is the baseline's" <<<"$out"
against added
is "a function added passes (compatible)" "$rc" 0
check "  and names it" grep -q "tiny_extra" <<<"$out"
against arg
is "a parameter widened, same soname: fails" "$rc" 1
check "  naming the function" grep -q "tiny_add" <<<"$out"
against struct
is "a struct member inserted, same soname: fails" "$rc" 1
check "  naming the member" grep -q "inserted" <<<"$out"
against removed
is "a function removed, same soname: fails" "$rc" 1
check "  naming it" grep -q "tiny_scale" <<<"$out"
against bumped
is "the same changes with a new soname pass" "$rc" 0
check "  saying to refresh the baseline" \
    grep -q "soname changed from libtiny.so.1 to libtiny.so.2.*make abi-baseline" <<<"$out"

# ---- libspool against abi/libspool.abi ---------------------------------------

so=$SPOOL_LIBDIR/libspool.so
check "shared library built" test -f "$so"
check "the baseline is in the tree" test -s "$top/abi/libspool.abi"
out=$(sh "$abi" check "$top/abi/libspool.abi" "$so" "$top/src/spool.h" 2>&1)
rc=$?
if [ "$rc" -eq 77 ]; then
	echo "SKIP: $out"
	exit 77
fi
printf '%s\n' "$out"
is "libspool's ABI is compatible with abi/libspool.abi" "$rc" 0
# The baseline holds the public structs, not the opaque handles' insides.
check "the baseline has spool_task_info's members" \
    grep -q "<var-decl name='batch_id'" "$top/abi/libspool.abi"
check "the baseline has no internal struct" \
    test -z "$(grep "<class-decl name='spool__" "$top/abi/libspool.abi")"
finish

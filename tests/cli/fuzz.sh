#!/bin/bash
# fuzz.sh -- the libFuzzer harnesses of tests/fuzz/, built here with
# clang under ASan and UBSan and run for FUZZ_SECONDS each (15 by
# default) from their seed corpora in tests/fuzz/corpus/:
#   fuzz-parse  durations, times, integers, fractions, stage specs
#   fuzz-words  a stage command's split into words (and back)
#   fuzz-lines  "spool enqueue Q --lines" on fuzzed stdin, through the
#               CLI's cmd_main: the tasks are the non-empty lines, exactly
#   fuzz-http   the HTTP server of "spool serve --http-write", fed each
#               input over a loopback connection: one HTTP answer each
# A crash, a leak or a broken property fails the test; its input is
# copied to the build directory (NAME-crash-*) and shown in the log, to be
# kept in the corpus as a regression once fixed.  clang and its fuzzer runtime are Debian packages
# (clang, libclang-rt-14-dev; tools/deps.sh installs them): without them
# the test is skipped (77) on a developer's machine, and fails as root,
# which is how CI runs.
. "$TESTS_SRCDIR/cli/lib.sh"

src=$TESTS_SRCDIR/../src
fuzz=$TESTS_SRCDIR/fuzz
seconds=${FUZZ_SECONDS:-15}
cflags="-g -O1 -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=all -I. -Isrc/lib -I$src -I$src/lib -I$src/cli"

if ! command -v clang >/dev/null ||
    ! echo 'int LLVMFuzzerTestOneInput(const char *d, long n) { return 0; }' |
    clang -fsanitize=fuzzer -x c - -o "$T/probe" 2>/dev/null; then
	if [ "$(id -u)" -eq 0 ]; then
		echo "clang with libFuzzer missing (tools/deps.sh installs clang and libclang-rt-14-dev)" >&2
		exit 99
	fi
	echo "SKIP: clang with libFuzzer missing"
	exit 77
fi

build() {	# build NAME SOURCES...
	local name=$1
	shift
	# shellcheck disable=SC2086
	clang $cflags "$fuzz/$name.c" "$@" -o "$T/$name" 2>"$T/$name.cc" ||
	    { cat "$T/$name.cc" >&2; return 1; }
}
check "build fuzz-parse" build fuzz-parse "$src/cli/parse.c"
check "build fuzz-words" build fuzz-words "$src/lib/util.c" "$src/lib/error.c"

# The library and the CLI, compiled once (two at a time)
# for the two harnesses that drive the CLI's own code; the generated
# sources come from the build tree.
objs() {
	local f n=0 ok=0
	mkdir -p "$T/obj"
	for f in "$src"/lib/*.c "$src"/cli/*.c src/lib/sql-gen.c src/lib/query-gen.c \
	    src/cli/dashboard.c; do
		# Once each (the build tree may be the source tree).
		[ -e "$T/obj/$(basename "$f" .c).c" ] && continue
		: >"$T/obj/$(basename "$f" .c).c"
		n=$((n + 1))
		# main.c holds the command table and main(): libFuzzer has
		# the main, so the CLI's is renamed.
		# shellcheck disable=SC2086
		clang ${cflags/fuzzer,/fuzzer-no-link,} -Dmain=spool_cli_main \
		    -c "$f" \
		    -o "$T/obj/$(basename "$f" .c).o" 2>>"$T/obj.cc" &
		[ $((n % 2)) -eq 0 ] && wait
	done
	wait
	ok=$(ls "$T"/obj/*.o 2>/dev/null | wc -l)
	[ "$ok" -eq "$n" ] || { cat "$T/obj.cc" >&2; return 1; }
}
check "build the library and the CLI for the harnesses" objs
libs="-lsqlite3 -levent_core -levent_pthreads -levent -lpthread -lm"
# shellcheck disable=SC2086
check "build fuzz-lines" build fuzz-lines "$T"/obj/*.o $libs
# shellcheck disable=SC2086
check "build fuzz-http" build fuzz-http "$T"/obj/*.o $libs

for name in fuzz-parse fuzz-words fuzz-lines fuzz-http; do
	[ -x "$T/$name" ] || continue
	mkdir -p "$T/$name.corpus"
	# The harnesses that write a database do it on tmpfs when there is one.
	scratch=$T
	[ -d /dev/shm ] && [ -w /dev/shm ] && scratch=/dev/shm
	(cd "$T" && TMPDIR=$scratch ASAN_OPTIONS=detect_leaks=1 "./$name" \
	    -max_total_time="$seconds" -timeout=10 -rss_limit_mb=1024 \
	    -artifact_prefix="$T/$name-" "$T/$name.corpus" \
	    "$fuzz/corpus/$name" >"$T/$name.log" 2>&1)
	frc=$?
	runs=$(sed -n 's/^Done \([0-9]*\) runs.*/\1/p' "$T/$name.log")
	echo "$name: $seconds s, ${runs:-?} runs, exit $frc"
	if [ "$frc" -ne 0 ]; then
		tail -40 "$T/$name.log" >&2
		for a in "$T/$name"-*; do
			[ -f "$a" ] || continue
			cp "$a" . && echo "kept $(basename "$a"): $(od -An -c "$a" | head -3)" >&2
		done
	fi
	is "$name: no crash in $seconds s" "$frc" 0
	# Those that drive the CLI open a database for every input.
	case $name in
	fuzz-lines|fuzz-http) least=100 ;;
	*) least=1000 ;;
	esac
	check "$name: it ran (${runs:-0} runs, at least $least)" \
	    [ "${runs:-0}" -ge $least ]
done
finish

#!/bin/bash
# fuzz.sh -- the libFuzzer harnesses of tests/fuzz/, built here with
# clang under ASan and UBSan and run for FUZZ_SECONDS each (15 by
# default) from their seed corpora in tests/fuzz/corpus/:
#   fuzz-parse  durations, times, integers, fractions, stage specs
#   fuzz-words  a stage command's split into words (and back)
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
cflags="-g -O1 -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=all -I. -Isrc -I$src"

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
check "build fuzz-parse" build fuzz-parse "$src/parse.c"
check "build fuzz-words" build fuzz-words "$src/util.c" "$src/error.c"

for name in fuzz-parse fuzz-words; do
	[ -x "$T/$name" ] || continue
	mkdir -p "$T/$name.corpus"
	(cd "$T" && ASAN_OPTIONS=detect_leaks=1 "./$name" \
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
	check "$name: it ran (${runs:-0} runs)" [ "${runs:-0}" -gt 1000 ]
done
finish

#!/bin/sh
# tools/abi.sh -- the library's ABI as libabigail sees it (Debian package
# abigail-tools: abidw, abidiff).
#
#   abi.sh dump LIB HEADER OUT        write LIB's ABI to OUT (XML)
#   abi.sh check BASELINE LIB HEADER  compare LIB with BASELINE
#
# Only what HEADER (the one installed header, src/spool.h) defines counts:
# it is copied alone into a directory for abidw's --headers-dir, since
# src/lib holds private headers, and --drop-private-types leaves the
# opaque structs (spool, spool_job, spool_pool, spool_producer) as
# declarations, so their insides may change freely; with
# --exported-interfaces-only only the exported functions and what they
# reach are written, and no source locations, so the baseline changes
# only when the ABI does.  Both sides
# of a check are dumped the same way and compared as XML.
#
# check exits 0 when nothing changed, when functions or variables were
# only added (compatible: the soname stays), or when the soname changed
# (anything goes then: refresh the baseline at the release with "make
# abi-baseline"); 1 when an exported function or variable was removed or
# changed (its type, or a type it reaches, such as a public struct),
# with abidiff's report; 77 when the check cannot run here (no abidiff, a
# library without debug information, another architecture than the
# baseline's); 99 when a tool failed.
#
# abidiff's exit status is a bit set: 1 error, 2 usage error, 4 the ABI
# changed, 8 an incompatible change (a removal, or a new soname).  A
# changed parameter or struct is only "changed" (4), so the summary lines
# are read to tell additions from changes.
set -u

usage() {
	echo "usage: abi.sh dump LIB HEADER OUT | check BASELINE LIB HEADER" >&2
	exit 64
}

tmp=$(mktemp -d "${TMPDIR:-/tmp}/spool-abi.XXXXXX") || exit 99
trap 'rm -rf "$tmp"' EXIT

# dump LIB HEADER OUT
dump() {
	if ! readelf -S "$1" 2>/dev/null | grep -q '\.debug_info'; then
		echo "abi.sh: $1 has no debug information (built without -g):" \
		    "abidw cannot see its types" >&2
		return 77
	fi
	mkdir -p "$tmp/include" && cp "$2" "$tmp/include/" || return 99
	abidw --headers-dir "$tmp/include" --drop-private-types \
	    --exported-interfaces-only --no-show-locs --no-corpus-path \
	    --no-comp-dir-path \
	    --out-file "$3" "$1" || {
		echo "abi.sh: abidw failed on $1" >&2
		return 99
	}
}

# attr FILE NAME: attribute NAME of FILE's abi-corpus element.
attr() {
	sed -n "s/^<abi-corpus [^>]*$2='\\([^']*\\)'.*/\\1/p" "$1" | head -n 1
}

# count WHAT REPORT: the number before WHAT on abidiff's summary lines
# (functions and variables, and their symbols), summed.
count() {
	printf '%s\n' "$2" | grep 'changes summary:' |
	    sed -n "s/.* \\([0-9][0-9]*\\) $1.*/\\1/p" |
	    awk '{ n += $1 } END { print n + 0 }'
}

command -v abidw >/dev/null && command -v abidiff >/dev/null || {
	echo "abi.sh: abidw and abidiff not found (install the Debian" \
	    "package abigail-tools: sh tools/deps.sh)" >&2
	exit 77
}

[ $# -ge 1 ] || usage
cmd=$1
shift
case $cmd in
dump)
	[ $# -eq 3 ] || usage
	dump "$1" "$2" "$3"
	exit $?
	;;
check)
	[ $# -eq 3 ] || usage
	base=$1
	[ -r "$base" ] || { echo "abi.sh: no baseline $base" >&2; exit 99; }
	dump "$2" "$3" "$tmp/current.abi" || exit $?
	;;
*)
	usage
	;;
esac

old_arch=$(attr "$base" architecture)
new_arch=$(attr "$tmp/current.abi" architecture)
if [ "$old_arch" != "$new_arch" ]; then
	echo "abi.sh: the baseline is for $old_arch, this library is for" \
	    "$new_arch: not compared" >&2
	exit 77
fi

report=$(abidiff "$base" "$tmp/current.abi" 2>&1)
status=$?
if [ $((status & 3)) -ne 0 ]; then
	printf '%s\n' "$report"
	echo "abi.sh: abidiff failed (exit status $status)" >&2
	exit 99
fi

old_soname=$(attr "$base" soname)
new_soname=$(attr "$tmp/current.abi" soname)
if [ "$old_soname" != "$new_soname" ]; then
	printf '%s\n' "$report"
	echo "abi.sh: the soname changed from $old_soname to $new_soname," \
	    "so incompatible changes are allowed; refresh the baseline at" \
	    "the release (make abi-baseline)"
	exit 0
fi
if [ "$status" -eq 0 ]; then
	echo "abi.sh: the ABI is the baseline's ($new_soname)"
	exit 0
fi

removed=$(count Removed "$report")
changed=$(count Changed "$report")
added=$(count Added "$report")
if [ $((status & 8)) -ne 0 ] || [ "$removed" -ne 0 ] ||
    [ "$changed" -ne 0 ] || [ "$added" -eq 0 ]; then
	printf '%s\n' "$report"
	echo "abi.sh: incompatible ABI change with the same soname" \
	    "$new_soname ($removed removed, $changed changed): bump" \
	    "-version-info in Makefile.am (age 0, a new soname), or undo it" >&2
	exit 1
fi
printf '%s\n' "$report"
echo "abi.sh: $added added, nothing removed or changed: compatible" \
    "(soname $new_soname); refresh the baseline at the release" \
    "(make abi-baseline)"
exit 0

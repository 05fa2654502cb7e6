#!/bin/sh
# tools/layers.sh -- check the library's layers from its object files.
#
#   layers.sh ARCHIVE SRCDIR [CLI_OBJECT...]
#
# ARCHIVE is the convenience library (.libs/libspool-core.a), SRCDIR the
# source tree, and the CLI_OBJECTs the spool CLI's object files.  Each object is in one layer, and may call functions of its
# own layer and the layers below, never above:
#
#   base      util error crash hist: strings, errors, the crash points,
#             histograms
#   store     store store-rows query-gen sql-gen: SQLite, transactions,
#             the typed query face
#   model     the features over the store: tasks, leases, queues, batches,
#             pipelines, counters, reads and actions for the CLI, waits
#   runtime   pools, the engine and its loop, exec handlers, producers,
#             the Prometheus text
#
# The calls are read from the symbols each object defines and leaves
# undefined (nm), so a call through a function pointer the store was given
# (the transaction hooks, open.c) is not one.  It also checks that only
# the store layer calls the SQLite API and only engine files libevent, and
# that no source file outside the store includes sqlite3.h.  Above the
# library, the CLI (src/cli) uses the public API alone: its objects call no
# internal (spool__) function and its sources include none of the
# library's private headers.  A failure prints one line per finding and
# exits 1.
set -eu

if [ $# -lt 2 ]; then
	echo "usage: layers.sh ARCHIVE SRCDIR [CLI_OBJECT...]" >&2
	exit 64
fi
archive=$1
srcdir=$2
shift 2
[ -r "$archive" ] || { echo "layers.sh: cannot read $archive" >&2; exit 66; }

layer_of() {
	case $1 in
	util|error|crash|hist)			echo 0 ;;
	store|store-*|query-gen|sql-gen)	echo 1 ;;
	actions|batch|claim|counters|enqueue|metrics|open|pipeline|\
	inspect|pipeline-read|precommit|queue|retry|wait|workers)	echo 2 ;;
	engine|engine-*|loop|exec|pool|pool-*|pipeline-pool|producer|prometheus)\
						echo 3 ;;
	*)					echo x ;;
	esac
}
name() {
	case $1 in 0) echo base ;; 1) echo store ;; 2) echo model ;;
	3) echo runtime ;; esac
}

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

# "object symbol" lines: defined (global text/data) and undefined.
nm -A --defined-only "$archive" 2>/dev/null |
    awk '$(NF-1) ~ /^[TDBR]$/ { split($1, a, ":"); o = a[2]; sub(/\.o$/, "", o);
	print $NF, o }' | sort -u >"$tmp/defs"
nm -A -u "$archive" 2>/dev/null |
    awk '{ split($1, a, ":"); o = a[2]; sub(/\.o$/, "", o); print o, $NF }' |
    sort -u >"$tmp/uses"

bad=0
for o in $(cut -d' ' -f2 "$tmp/defs" | sort -u) $(cut -d' ' -f1 "$tmp/uses" | sort -u); do
	echo "$o"
done | sort -u >"$tmp/objs"
while read -r o; do
	if [ "$(layer_of "$o")" = x ]; then
		echo "layers: $o.o is in no layer (add it to tools/layers.sh)"
		bad=1
	fi
done <"$tmp/objs"

# Calls into a higher layer.
while read -r o sym; do
	def=$(awk -v s="$sym" '$1 == s { print $2; exit }' "$tmp/defs")
	[ -n "$def" ] && [ "$def" != "$o" ] || continue
	lo=$(layer_of "$o"); ld=$(layer_of "$def")
	[ "$lo" = x ] || [ "$ld" = x ] && continue
	if [ "$ld" -gt "$lo" ]; then
		echo "layers: $o.o ($(name "$lo")) calls $sym of $def.o ($(name "$ld"))"
		bad=1
	fi
done <"$tmp/uses"

# The SQLite API from the store layer only, libevent from the engine only.
while read -r o sym; do
	case $sym in
	sqlite3_*)
		[ "$(layer_of "$o")" = 1 ] ||
		    { echo "layers: $o.o calls $sym (SQLite is the store's)"; bad=1; } ;;
	event_*|evutil_*|evhttp_*|evsignal_*)
		case $o in engine|engine-*|loop) ;;
		*) echo "layers: $o.o calls $sym (libevent is the engine's)"; bad=1 ;;
		esac ;;
	esac
done <"$tmp/uses"

for f in "$srcdir"/src/*.[ch] "$srcdir"/src/lib/*.[ch] "$srcdir"/src/cli/*.[ch]; do
	[ -e "$f" ] || continue
	b=$(basename "$f"); b=${b%.*}
	case $b in store|store-*|query-gen|sql-gen|store-int) continue ;; esac
	if grep -q '^#[ 	]*include[ 	]*<sqlite3\.h>' "$f"; then
		echo "layers: $(basename "$f") includes sqlite3.h (the store's)"
		bad=1
	fi
done

# The CLI: the public API only.
for f in "$srcdir"/src/cli/*.[ch]; do
	[ -e "$f" ] || continue
	if grep -Eq '^#[ 	]*include[ 	]*"(spool-int|store-int|engine-int|query-gen|sql-gen)\.h"' "$f"; then
		echo "layers: src/cli/$(basename "$f") includes a private header of the library"
		bad=1
	fi
done
for o in "$@"; do
	nm -u "$o" 2>/dev/null | awk '{ print $NF }' | grep '^spool__' |
	while read -r sym; do
		echo "layers: $(basename "$o") (the CLI) calls $sym (internal)"
	done | grep . && bad=1
done
exit $bad

#!/bin/bash
# man.sh -- the man pages in man/ are clean for mandoc -T lint (and for
# groff -w all when groff is installed), and they keep up with the code:
#  - every command of "spool --help", and every option of each
#    "spool COMMAND --help", is described under that command in spool.1,
#    and no option is listed there that the command does not have;
#  - every function src/spool.h declares is in libspool.3's SYNOPSIS (and
#    nothing else is), and every SPOOL_E* code is in its ERRORS;
#  - every table and view of a new database, and each of their columns,
#    has its entry in spool-schema.5.
# mandoc is needed (tools/deps.sh installs it): without it this is a hard
# error (99), not a skip.
. "$TESTS_SRCDIR/cli/lib.sh"

man=$TESTS_SRCDIR/../man
header=$TESTS_SRCDIR/../src/spool.h
pages="spool.1 libspool.3 spool-schema.5 spool.7"

command -v mandoc >/dev/null || {
	echo "mandoc missing: install the Debian package mandoc (sh tools/deps.sh)" >&2
	exit 99
}

# ---- Lint -------------------------------------------------------------------

rc= out= err=	# check's failure message shows them; nothing has run yet

for p in $pages; do
	check "man/$p exists" test -f "$man/$p"
	[ -f "$man/$p" ] || continue
	lint=$(mandoc -T lint -W warning "$man/$p" 2>&1)
	lrc=$?
	is "mandoc -T lint -W warning $p: no message" "$lint" ""
	is "mandoc -T lint -W warning $p: exit status" "$lrc" 0
	if command -v groff >/dev/null; then
		gerr=$(groff -w all -mandoc -Tutf8 "$man/$p" 2>&1 >/dev/null)
		is "groff -w all -mandoc $p: no warning" "$gerr" ""
	fi
	# A page must render to text, its name and section in the header.
	head=$(mandoc -Tascii "$man/$p" | head -n 1)
	name=${p%.*}
	check "$p renders" test "${head%%[ ]*}" = "${name^^}(${p##*.})"
done

# ---- spool.1 against the CLI's help ------------------------------------------
#
# The checks below look names up in associative arrays (bash builtins):
# a process per check would load the machine while the timing tests run.

# The lines of "spool COMMAND --help" between a heading ("Options:") and
# the next blank line, first words only.
section_words() {	# section_words HEADING TEXT
	local on=0 line
	while IFS= read -r line; do
		if [ "$on" = 1 ]; then
			[ -z "$line" ] && break
			line=${line#"${line%%[! ]*}"}
			echo "${line%% *}"
		elif [ "$line" = "$1" ]; then
			on=1
		fi
	done <<<"$2"
}

# The commands: the first word of each line of "spool --help"; a word
# whose own help lists subcommands (batch, pipeline) stands for them.
run --help
cmds=()
declare -A seen=()
for w in $(section_words Commands: "$out"); do
	[ -n "${seen[$w]:-}" ] && continue
	seen[$w]=1
	run "$w" --help
	if [[ $out == "usage: spool $w SUBCOMMAND"* ]]; then
		for s in $(section_words Subcommands: "$out"); do
			cmds+=("$w $s")
		done
	else
		cmds+=("$w")
	fi
done
check "spool --help lists the commands (${#cmds[@]})" test "${#cmds[@]}" -ge 30

# Each command's entry in spool.1 is its ".It Cm WORDS ..." line up to the
# next command's (or the next section).  Print "H cmd" per entry, "F cmd
# opt" per "Fl -opt" in it, and "I cmd opt" per ".It Fl -opt" item.
known=$(IFS='|'; echo "${cmds[*]}")
declare -A idx=() items=()
while IFS=$'\t' read -r kind c o; do
	case $kind in
	H) idx[H:$c]=$((${idx[H:$c]:-0} + 1)) ;;
	F) idx[F:$c:$o]=1 ;;
	I) items[$c]="${items[$c]:-} $o" ;;
	esac
done < <(awk -v known="$known" '
BEGIN { n = split(known, a, "|"); for (i = 1; i <= n; i++) k[a[i]] = 1 }
/^\.Sh / { cur = ""; next }
/^\.It Cm / {
	w = ""
	for (i = 3; i <= NF && $i ~ /^[a-z][a-z-]*$/; i++)
		w = (w == "" ? $i : w " " $i)
	if (w in k) { cur = w; print "H\t" w }
}
cur != "" {
	line = $0
	while (match(line, /Fl -[a-z][a-z-]*/)) {
		print "F\t" cur "\t" substr(line, RSTART + 4, RLENGTH - 4)
		line = substr(line, RSTART + RLENGTH)
	}
	if ($1 == ".It" && $2 == "Fl" && $3 ~ /^-[a-z]/)
		print "I\t" cur "\t" substr($3, 2)
}' "$man/spool.1")

for c in "${cmds[@]}"; do
	is "spool.1 has one entry for '$c'" "${idx[H:$c]:-0}" 1
	run $c --help
	opts=$(section_words Options: "$out")
	check "'spool $c --help' lists options" test -n "$opts"
	declare -A has=()
	for o in $opts; do
		o=${o#--}
		has[$o]=1
		case $o in
		db|json|strict|help) continue ;;	# common: checked below
		esac
		check "spool.1: '$c' describes --$o" test -n "${idx[F:$c:$o]:-}"
	done
	# No option in the entry's lists that the command does not have.
	for o in ${items[$c]:-}; do
		check "spool.1: '$c' has no option --$o" test -n "${has[$o]:-}"
	done
	unset has
done
page=$(cat "$man/spool.1")
has_line() {	# has_line TEXT LINE: TEXT has a line that is LINE, or
	# starts with LINE and a space
	[[ $'\n'$1$'\n' == *$'\n'"$2"[$' \n']* ]]
}
for o in db json strict help version; do
	check "spool.1 describes --$o" has_line "$page" ".It Fl -$o"
done
for v in SPOOL_DB SPOOL_TASK_ID SPOOL_QUEUE SPOOL_ATTEMPT SPOOL_ITEM_ID \
    SPOOL_STAGE; do
	check "spool.1 ENVIRONMENT has $v" has_line "$page" ".It Ev $v"
done
for code in 0 1 64 65 66 70 74 75 77; do
	check "spool.1 EXIT STATUS has $code" has_line "$page" ".It $code"
done

# ---- libspool.3 against src/spool.h ------------------------------------------

funcs=$(sed -n 's/^[a-z][^(]*[	 *]\(spool_[a-z0-9_]*\)(.*/\1/p' "$header" | sort -u)
check "spool.h declares functions" test "$(grep -c . <<<"$funcs")" -ge 80
declare -A infuncs=() insyn=()
for f in $funcs; do infuncs[$f]=1; done
for f in $(awk '/^\.Sh SYNOPSIS/ { on = 1; next } /^\.Sh / { on = 0 }
    on && ($1 == ".Fo" || $1 == ".Fn") { print $2 }' "$man/libspool.3"); do
	insyn[$f]=1
done
for f in $funcs; do
	check "libspool.3 SYNOPSIS has $f" test -n "${insyn[$f]:-}"
done
for f in "${!insyn[@]}"; do
	check "libspool.3 SYNOPSIS: $f is in spool.h" test -n "${infuncs[$f]:-}"
done
codes=$(sed -n 's/^#define[	 ]*\(SPOOL_E[A-Z]*\|SPOOL_OK\)[	 ].*/\1/p' "$header")
check "spool.h defines result codes" test "$(grep -c . <<<"$codes")" -ge 15
declare -A inerr=()
for e in $(awk '/^\.Sh ERRORS/ { on = 1; next } /^\.Sh / { on = 0 }
    on && $1 == ".It" && $2 == "Dv" { print $3 }' "$man/libspool.3"); do
	inerr[$e]=1
done
for e in $codes; do
	check "libspool.3 ERRORS has $e" test -n "${inerr[$e]:-}"
done

# ---- spool-schema.5 against a new database -----------------------------------

run init
check "init a database" test "$rc" -eq 0
# Each table or view is a ".Ss NAME" subsection listing ".It Va COLUMN".
declare -A doc=()
while IFS=$'\t' read -r t c; do
	doc[$t:$c]=1
done < <(awk '$1 == ".Ss" { cur = $2; print cur "\t"; next }
    /^\.Sh / { cur = "" }
    cur != "" && $1 == ".It" && $2 == "Va" { print cur "\t" $3 }' \
    "$man/spool-schema.5")
n=0
while IFS=$'\t' read -r type name col; do
	if [ -z "$col" ]; then
		n=$((n + 1))
		check "spool-schema.5 has the $type $name" test -n "${doc[$name:]:-}"
	else
		check "spool-schema.5: $name.$col" test -n "${doc[$name:$col]:-}"
	fi
done < <(sql "SELECT m.type, m.name, '' FROM sqlite_master m
    WHERE (m.type = 'table' OR m.type = 'view') AND m.name NOT LIKE 'sqlite_%'
    UNION ALL
    SELECT m.type, m.name, p.name FROM sqlite_master m, pragma_table_info(m.name) p
    WHERE (m.type = 'table' OR m.type = 'view') AND m.name NOT LIKE 'sqlite_%'
    ORDER BY 2, 3" | tr '|' '\t')
check "the database has tables and views ($n)" test "$n" -ge 15

finish

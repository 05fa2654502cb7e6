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
	# A page must render to text with its name in the header line.
	name=${p%.*}
	check "$p renders" grep -qi "^${name}(" <(mandoc -Tascii "$man/$p" | col -b)
done

# ---- spool.1 against the CLI's help ------------------------------------------

# The commands: the first word of each line of "spool --help"; a word
# whose own help lists subcommands (batch, pipeline) stands for them.
run --help
words=$(awk '/^Commands:/ { on = 1; next } on && /^$/ { exit } on { print $1 }' \
    <<<"$out" | uniq)
cmds=()
for w in $words; do
	run "$w" --help
	if head -n 1 <<<"$out" | grep -q "^usage: spool $w SUBCOMMAND"; then
		for s in $(awk '/^Subcommands:/ { on = 1; next }
		    on && /^$/ { exit } on { print $1 }' <<<"$out"); do
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
index=$(awk -v known="$known" '
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
	n=$(grep -cxF "H	$c" <<<"$index")
	is "spool.1 has one entry for '$c'" "$n" 1
	run $c --help
	opts=$(awk '/^Options:/ { on = 1; next } on && /^  --/ {
	    sub(/^  --/, ""); print $1 }' <<<"$out")
	check "'spool $c --help' lists options" test -n "$opts"
	for o in $opts; do
		case $o in
		db|json|help) continue ;;	# common: checked below
		esac
		check "spool.1: '$c' describes --$o" \
		    grep -qxF "F	$c	$o" <<<"$index"
	done
	# No option in the entry's lists that the command does not have.
	for o in $(awk -F '\t' -v c="$c" '$1 == "I" && $2 == c { print $3 }' \
	    <<<"$index"); do
		check "spool.1: '$c' has no option --$o" \
		    grep -qxF "$o" <<<"$opts"
	done
done
for o in db json help version; do
	check "spool.1 describes --$o" grep -q "^\.It Fl -$o\( \|$\)" "$man/spool.1"
done
for v in SPOOL_DB SPOOL_TASK_ID SPOOL_QUEUE SPOOL_ATTEMPT SPOOL_ITEM_ID \
    SPOOL_STAGE; do
	check "spool.1 ENVIRONMENT has $v" grep -qx "\.It Ev $v" "$man/spool.1"
done
for code in 0 1 64 65 66 70 74 75 77; do
	check "spool.1 EXIT STATUS has $code" grep -qx "\.It $code" "$man/spool.1"
done

# ---- libspool.3 against src/spool.h ------------------------------------------

funcs=$(sed -n 's/^[a-z][^(]*[	 *]\(spool_[a-z0-9_]*\)(.*/\1/p' "$header" | sort -u)
check "spool.h declares functions" test "$(grep -c . <<<"$funcs")" -ge 80
synopsis=$(awk '/^\.Sh SYNOPSIS/ { on = 1; next } /^\.Sh / { on = 0 }
    on && ($1 == ".Fo" || $1 == ".Fn") { print $2 }' "$man/libspool.3" |
    sort -u)
for f in $funcs; do
	check "libspool.3 SYNOPSIS has $f" grep -qxF "$f" <<<"$synopsis"
done
for f in $synopsis; do
	check "libspool.3 SYNOPSIS: $f is in spool.h" grep -qxF "$f" <<<"$funcs"
done
codes=$(sed -n 's/^#define[	 ]*\(SPOOL_E[A-Z]*\|SPOOL_OK\)[	 ].*/\1/p' "$header")
check "spool.h defines result codes" test "$(grep -c . <<<"$codes")" -ge 15
errors=$(awk '/^\.Sh ERRORS/ { on = 1; next } /^\.Sh / { on = 0 }
    on && $1 == ".It" && $2 == "Dv" { print $3 }' "$man/libspool.3")
for e in $codes; do
	check "libspool.3 ERRORS has $e" grep -qxF "$e" <<<"$errors"
done

# ---- spool-schema.5 against a new database -----------------------------------

run init
check "init a database" test "$rc" -eq 0
objs=$(sql "SELECT type || ' ' || name FROM sqlite_master
    WHERE (type = 'table' OR type = 'view') AND name NOT LIKE 'sqlite_%'
    ORDER BY name")
check "the database has tables and views" test "$(grep -c . <<<"$objs")" -ge 15
# Each table or view is a ".Ss NAME" subsection listing ".It Va COLUMN".
while read -r type name; do
	sect=$(awk -v n="$name" '$1 == ".Ss" { on = ($2 == n); next }
	    /^\.Sh / { on = 0 } on' "$man/spool-schema.5")
	check "spool-schema.5 has the $type $name" test -n "$sect"
	for col in $(sql "SELECT name FROM pragma_table_info('$name')"); do
		check "spool-schema.5: $name.$col" \
		    grep -q "^\.It Va $col\( \|$\)" <<<"$sect"
	done
done <<<"$objs"

finish

#!/bin/sh
# tools/sql2c.sh -- compile the SQL in sql/ into C.
#
#   sql2c.sh SRCDIR OUTPUT FILE...
#
# OUTPUT is src/lib/sql-gen.h or src/lib/sql-gen.c (the suffix decides which is
# written); each FILE is relative to SRCDIR and is one of:
#   sql/schema/NNNN-what.sql  a migration to schema version NNNN, kept verbatim
#                             (comments included: they show in .schema)
#   sql/views.sql             the views, recreated after every migration
#   sql/queries/*.sql         named queries: each "-- name: foo" block becomes
#                             SPOOL_SQL_FOO and its text, comments dropped;
#                             a "-- fragment: bar" block is no query but
#                             text that a line "-- use: bar" in any query
#                             stands for (SQL has no other way to share a
#                             common table expression between statements)
#
# A query may declare its shape, its parameters and its result columns,
# on lines before its SQL:
#   -- in: NAME TYPE, NAME TYPE ...    parameter k is ?k, in this order
#   -- out: NAME TYPE, NAME TYPE ...   result column k, named so in the SQL
#   -- out: like QUERY                 the columns (and row type) of an
#                                      earlier typed query
# (several lines of each add up; "-- in: -" declares none).  Types: int
# (int64_t), int0 (int64_t; 0 binds NULL), real (double), text (const
# char *; NULL binds NULL, a NULL column reads NULL), blob (const void *
# and NAME_len; likewise, an empty one reads "").  Parameters only:
# textn (const char * and NAME_len, its length in bytes: text that is
# not NUL-terminated there) and payload (const void * and NAME_len: a
# task's payload or result, stored as TEXT if it is UTF-8 without NUL,
# else as a BLOB; NULL or empty binds "").  Such a
# query is typed: OUTPUT src/lib/query-gen.h and src/lib/query-gen.c get its C
# face (struct spool__q_NAME_in, struct spool__q_NAME_row, functions
# spool__q_NAME and spool__q_NAME_next), and tools/sql-check.c, run by
# the build, fails it when the SQL's parameters or columns disagree.
# The output says it is generated; edit the .sql files instead.
set -eu

if [ $# -lt 3 ]; then
	echo "usage: sql2c.sh SRCDIR OUTPUT FILE..." >&2
	exit 64
fi
srcdir=$1
out=$2
shift 2

case $out in
*query-gen.h)	kind=qh ;;
*query-gen.c)	kind=qc ;;
*.h)	kind=h ;;
*.c)	kind=c ;;
*)	echo "sql2c.sh: OUTPUT must end in .h or .c: $out" >&2; exit 64 ;;
esac

tmp=$out.tmp.$$
trap 'rm -f "$tmp"' EXIT

# Emit one record per input line, tagged with its file's role, then let a
# single awk program build the output.
for f in "$@"; do
	case $f in
	*/schema/*.sql)	role=schema ;;
	*/views.sql)	role=views ;;
	*/queries/*.sql) role=query ;;
	*)		echo "sql2c.sh: unknown SQL file role: $f" >&2; exit 65 ;;
	esac
	[ -r "$srcdir/$f" ] || { echo "sql2c.sh: cannot read $srcdir/$f" >&2; exit 66; }
	# Guarantee a final newline so the last line is not lost.
	{ cat "$srcdir/$f"; echo; } | sed "s|^|$role	$f	|"
done | LC_ALL=C awk -v kind="$kind" -F '\t' '
function cstr(s) {
	gsub(/\\/, "\\\\", s)
	gsub(/"/, "\\\"", s)
	gsub(/\t/, "\\t", s)
	return "\t\"" s "\\n\""
}
function fail(msg) {
	print "sql2c.sh: " msg > "/dev/stderr"
	bad = 1
	exit 65
}
{
	role = $1; file = $2
	line = substr($0, length(role) + length(file) + 3)
}
role == "schema" {
	if (!(file in seen)) {
		seen[file] = 1
		base = file; sub(/.*\//, "", base)
		if (base !~ /^[0-9][0-9][0-9][0-9]-[a-z0-9-]+\.sql$/)
			fail("migration name must be NNNN-what.sql: " file)
		ver = base; sub(/-.*/, "", ver); ver += 0
		if (ver != nmig + 1)
			fail("migrations must be numbered 1, 2, ... in order: " file)
		nmig++
		migfile[nmig] = file
	}
	mig[nmig] = mig[nmig] cstr(line) "\n"
	next
}
role == "views" {
	views = views cstr(line) "\n"
	next
}
role == "query" {
	if (line ~ /^-- name: /) {
		name = line; sub(/^-- name: */, "", name); sub(/[ \t]+$/, "", name)
		if (name !~ /^[a-z][a-z0-9_]*$/)
			fail("bad query name \"" name "\" in " file)
		if (name in qidx)
			fail("query \"" name "\" defined twice")
		nq++
		qname[nq] = name; qidx[name] = nq; qfile[nq] = file
		infrag = ""
		next
	}
	if (line ~ /^-- fragment: /) {
		name = line; sub(/^-- fragment: */, "", name); sub(/[ \t]+$/, "", name)
		if (name !~ /^[a-z][a-z0-9_]*$/ || (name in frag))
			fail("bad or repeated fragment \"" name "\" in " file)
		frag[name] = ""; infrag = name; fragfile = file
		next
	}
	if (line ~ /^[ \t]*-- use: /) {
		name = line; sub(/^[ \t]*-- use: */, "", name); sub(/[ \t]+$/, "", name)
		if (infrag != "" || nq == 0 || qfile[nq] != file)
			fail("\"-- use:\" outside a query in " file)
		q[nq] = q[nq] "@USE:" name "@\n"
		next
	}
	if (line ~ /^-- (in|out):/) {
		if (infrag != "" || nq == 0 || qfile[nq] != file || q[nq] != "")
			fail("\"" substr(line, 1, 7) "\" not at the head of a query in " file)
		dir = line ~ /^-- in:/ ? "in" : "out"
		spec = line; sub(/^-- (in|out):[ \t]*/, "", spec); sub(/[ \t]+$/, "", spec)
		typed[nq] = 1
		if (spec == "-")
			next
		if (dir == "out" && spec ~ /^like [a-z][a-z0-9_]*$/) {
			# The columns of an earlier query, and its row type.
			src = substr(spec, 6)
			if (!(src in qidx) || !typed[qidx[src]] || nout[qidx[src]] == 0 ||
			    nout[nq] > 0)
				fail("query \"" qname[nq] "\": bad \"-- out: " spec "\" in " file)
			j = qidx[src]
			nout[nq] = nout[j]
			for (k = 1; k <= nout[j]; k++) {
				outname[nq, k] = outname[j, k]; outtype[nq, k] = outtype[j, k]
			}
			rowof[nq] = rowof[j] != "" ? rowof[j] : src
			next
		}
		n = split(spec, parts, /,[ \t]*/)
		for (k = 1; k <= n; k++) {
			if (parts[k] == "")
				continue
			if (split(parts[k], nt, /[ \t]+/) != 2 || nt[1] !~ /^[a-z][a-z0-9_]*$/)
				fail("query \"" qname[nq] "\": bad " dir " \"" parts[k] "\" in " file)
			if (dir == "in" && nt[2] !~ /^(int|int0|real|text|textn|blob|payload)$/ ||
			    dir == "out" && nt[2] !~ /^(int|real|text|blob)$/)
				fail("query \"" qname[nq] "\": bad type \"" nt[2] "\" in " file)
			if (dir == "in") {
				nin[nq]++; inname[nq, nin[nq]] = nt[1]; intype[nq, nin[nq]] = nt[2]
			} else {
				nout[nq]++; outname[nq, nout[nq]] = nt[1]; outtype[nq, nout[nq]] = nt[2]
			}
		}
		next
	}
	if (line ~ /^[ \t]*--/ || line ~ /^[ \t]*$/)
		next
	if (infrag != "" && fragfile == file) {
		frag[infrag] = frag[infrag] cstr(line) "\n"
		next
	}
	if (nq == 0 || qfile[nq] != file)
		fail("SQL before the first \"-- name:\" in " file)
	q[nq] = q[nq] cstr(line) "\n"
	next
}
END {
	if (bad)
		exit 65
	if (nmig == 0)
		fail("no migrations given")
	for (i = 1; i <= nq; i++) {
		if (q[i] == "")
			fail("query \"" qname[i] "\" is empty")
		while (match(q[i], /@USE:[a-z0-9_]+@\n/)) {
			name = substr(q[i], RSTART + 5, RLENGTH - 7)
			if (!(name in frag))
				fail("query \"" qname[i] "\" uses an unknown fragment \"" name "\"")
			q[i] = substr(q[i], 1, RSTART - 1) frag[name] \
			    substr(q[i], RSTART + RLENGTH)
		}
	}
	print "/* GENERATED by tools/sql2c.sh from sql/: DO NOT EDIT; edit the .sql files. */"
	if (kind == "qh" || kind == "qc") {
		emit_typed()
		exit 0
	}
	if (kind == "h") {
		print "#ifndef SPOOL_SQL_GEN_H"
		print "#define SPOOL_SQL_GEN_H"
		print ""
		print "/* Named queries, prepared once per handle at open. */"
		print "enum spool_sql {"
		for (i = 1; i <= nq; i++)
			printf "\tSPOOL_SQL_%s,\t/* %s */\n", toupper(qname[i]), qfile[i]
		print "\tSPOOL_SQL__COUNT"
		print "};"
		print ""
		printf "#define SPOOL_SCHEMA_VERSION %d\n", nmig
		print ""
		print "extern const char *const spool__sql_text[SPOOL_SQL__COUNT];"
		print "extern const char *const spool__sql_name[SPOOL_SQL__COUNT];"
		print "/* spool__migrations[v - 1] moves the schema from v - 1 to v. */"
		print "extern const char *const spool__migrations[SPOOL_SCHEMA_VERSION];"
		print "extern const char *const spool__sql_views;"
		print ""
		print "/* The declared shape of each query (-- in:, -- out:): its number"
		print " * of parameters, -1 if it declares none, and the names of its result"
		print " * columns, joined by commas (tools/sql-check.c compares them). */"
		print "extern const int spool__sql_nin[SPOOL_SQL__COUNT];"
		print "extern const char *const spool__sql_out[SPOOL_SQL__COUNT];"
		print ""
		print "#endif"
	} else {
		print "#include \"sql-gen.h\""
		print ""
		print "const char *const spool__sql_text[SPOOL_SQL__COUNT] = {"
		for (i = 1; i <= nq; i++)
			printf "\t/* %s */\n%s,\n", qname[i], q[i]
		print "};"
		print ""
		print "const char *const spool__sql_name[SPOOL_SQL__COUNT] = {"
		for (i = 1; i <= nq; i++)
			printf "\t\"%s\",\n", qname[i]
		print "};"
		print ""
		print "const char *const spool__migrations[SPOOL_SCHEMA_VERSION] = {"
		for (i = 1; i <= nmig; i++)
			printf "\t/* %s */\n%s,\n", migfile[i], mig[i]
		print "};"
		print ""
		print "const char *const spool__sql_views ="
		printf "%s;\n", (views == "" ? "\t\"\"" : views)
		print ""
		print "const int spool__sql_nin[SPOOL_SQL__COUNT] = {"
		for (i = 1; i <= nq; i++)
			printf "\t%d,\t/* %s */\n", typed[i] ? nin[i] + 0 : -1, qname[i]
		print "};"
		print ""
		print "const char *const spool__sql_out[SPOOL_SQL__COUNT] = {"
		for (i = 1; i <= nq; i++) {
			cols = ""
			for (k = 1; k <= nout[i]; k++)
				cols = cols (k > 1 ? "," : "") outname[i, k]
			printf "\t\"%s\",\t/* %s */\n", cols, qname[i]
		}
		print "};"
	}
}

# The C type of a parameter or column of type t, and the field(s).
function ctype(t) {
	if (t == "int" || t == "int0") return "int64_t\t\t "
	if (t == "real") return "double\t\t "
	if (t == "text" || t == "textn") return "const char\t*"
	return "const void\t*"
}
function fn_in(i) {
	return "struct spool__q_" qname[i] "_in"
}
function fn_row(i) {
	return "struct spool__q_" (rowof[i] != "" ? rowof[i] : qname[i]) "_row"
}
function proto(i) {
	if (nout[i] > 0)
		return "spool__q_" qname[i] "(spool *q, struct spool__cur *c" \
		    (nin[i] > 0 ? ",\n    const " fn_in(i) " *in)" : ")")
	return "spool__q_" qname[i] "(spool *q" \
	    (nin[i] > 0 ? ", const " fn_in(i) " *in)" : ")")
}
function emit_typed(    i, k, t, f, any) {
	if (kind == "qh") {
		print "#ifndef SPOOL_QUERY_GEN_H"
		print "#define SPOOL_QUERY_GEN_H"
		print ""
		print "/*"
		print " * The typed face of the queries that declare their shape (-- in:,"
		print " * -- out: in sql/queries).  A query with result columns is opened"
		print " * on a cursor, spool__q_NAME(q, &c, &in), and read with"
		print " * spool__q_NAME_next(&c, &row) until it returns 0 (done) or an"
		print " * error (< 0); the text and blobs of a row are valid until the next"
		print " * call; spool__cur_end(&c) ends it early.  A query without result"
		print " * columns runs to its end in spool__q_NAME(q, &in): SPOOL_OK or an"
		print " * error, recorded on q.  Include after spool-int.h."
		print " */"
		for (i = 1; i <= nq; i++) {
			if (!typed[i])
				continue
			print ""
			printf "/* %s (%s) */\n", qname[i], qfile[i]
			if (nin[i] > 0) {
				print fn_in(i) " {"
				for (k = 1; k <= nin[i]; k++) {
					t = intype[i, k]
					printf "\t%s%s;%s\n", ctype(t), inname[i, k], \
					    t == "int0" ? "\t/* 0: NULL */" : ""
					if (t == "blob" || t == "textn" || t == "payload")
						printf "\tsize_t\t\t %s_len;\n", inname[i, k]
				}
				print "};"
			}
			if (nout[i] > 0 && rowof[i] == "") {
				print fn_row(i) " {"
				for (k = 1; k <= nout[i]; k++) {
					t = outtype[i, k]
					printf "\t%s%s;\n", ctype(t), outname[i, k]
					if (t == "blob")
						printf "\tsize_t\t\t %s_len;\n", outname[i, k]
				}
				print "};"
			}
			printf "int\t%s;\n", proto(i)
			if (nout[i] > 0)
				printf "int\tspool__q_%s_next(struct spool__cur *c, %s *r);\n", \
				    qname[i], fn_row(i)
		}
		print ""
		print "#endif"
		return
	}
	print "#include \"config.h\""
	print ""
	print "#include \"store-int.h\""
	print "#include \"query-gen.h\""
	for (i = 1; i <= nq; i++) {
		if (!typed[i])
			continue
		print ""
		printf "int\n%s\n{\n", proto(i)
		printf "\tsqlite3_stmt\t*st = spool__stmt(q, SPOOL_SQL_%s);\n", toupper(qname[i])
		if (nin[i] > 0)
			print "\tint\t\t rc = SQLITE_OK;"
		print ""
		if (nout[i] > 0)	# ended, should its open fail
			print "\tc->st = NULL;"
		for (k = 1; k <= nin[i]; k++) {
			t = intype[i, k]; f = "in->" inname[i, k]
			if (t == "int")
				printf "\tif (rc == SQLITE_OK)\n\t\trc = sqlite3_bind_int64(st, %d, %s);\n", k, f
			else if (t == "int0")
				printf "\tif (rc == SQLITE_OK && %s != 0)\n\t\trc = sqlite3_bind_int64(st, %d, %s);\n", f, k, f
			else if (t == "real")
				printf "\tif (rc == SQLITE_OK)\n\t\trc = sqlite3_bind_double(st, %d, %s);\n", k, f
			else if (t == "text")
				printf "\tif (rc == SQLITE_OK && %s != NULL)\n\t\trc = sqlite3_bind_text(st, %d, %s, -1, SQLITE_STATIC);\n", f, k, f
			else if (t == "textn")
				printf "\tif (rc == SQLITE_OK && %s != NULL)\n\t\trc = sqlite3_bind_text64(st, %d, %s, %s_len,\n\t\t    SQLITE_STATIC, SQLITE_UTF8);\n", f, k, f, f
			else if (t == "payload")
				printf "\tif (rc == SQLITE_OK)\n\t\trc = spool__bind_payload_ref(st, %d, %s, %s_len);\n", k, f, f
			else
				printf "\tif (rc == SQLITE_OK && %s != NULL)\n\t\trc = sqlite3_bind_blob64(st, %d, %s, %s_len,\n\t\t    SQLITE_STATIC);\n", f, k, f, f
		}
		if (nin[i] > 0) {
			print "\tif (rc != SQLITE_OK)"
			printf "\t\treturn (spool__store_error(q, rc, \"%s\"));\n", qname[i]
		}
		if (nout[i] > 0) {
			printf "\tspool__cur_open(c, q, st, \"%s\");\n", qname[i]
			print "\treturn (SPOOL_OK);"
			print "}"
			print ""
			printf "int\nspool__q_%s_next(struct spool__cur *c, %s *r)\n{\n", qname[i], fn_row(i)
			print "\tsqlite3_stmt\t*st = c->st;"
			print "\tint\t\t rc;"
			print ""
			print "\tif ((rc = spool__cur_step(c)) != 1)"
			print "\t\treturn (rc);"
			for (k = 1; k <= nout[i]; k++) {
				t = outtype[i, k]; f = "r->" outname[i, k]
				if (t == "int")
					printf "\t%s = sqlite3_column_int64(st, %d);\n", f, k - 1
				else if (t == "real")
					printf "\t%s = sqlite3_column_double(st, %d);\n", f, k - 1
				else if (t == "text")
					printf "\t%s = (const char *)sqlite3_column_text(st, %d);\n", f, k - 1
				else {
					# NULL only for NULL: an empty value is "" (for which
					# sqlite3_column_blob returns NULL).
					printf "\tif (sqlite3_column_type(st, %d) == SQLITE_NULL)\n\t\t%s = NULL;\n", k - 1, f
					printf "\telse if ((%s = sqlite3_column_blob(st, %d)) == NULL)\n\t\t%s = \"\";\n", f, k - 1, f
					printf "\t%s_len = (size_t)sqlite3_column_bytes(st, %d);\n", f, k - 1
				}
			}
			print "\treturn (1);"
			print "}"
		} else {
			printf "\treturn (spool__step_done(q, st, \"%s\"));\n", qname[i]
			print "}"
		}
	}
}' >"$tmp"

mv "$tmp" "$out"
trap - EXIT

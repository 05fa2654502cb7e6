#!/usr/bin/env python3
"""chaos_check.py -- the history checker of tests/cli/chaos.sh.

Reads what the producers acknowledged (lines "ok FIRST LAST" for each bulk
enqueue that returned success), what the commands did (the canary's
"start ID ATTEMPT PID" and "effect ID ATTEMPT PID" lines), the nemesis log
("kill PID"), and the final database (read-only), and checks:

  lost          acknowledged task missing, or not succeeded after the drain
  unexpected    task in the database that no acknowledged enqueue made
  stuck         task not final after the drain
  double        more than one successful attempt or result for a task
  unexplained   a task started twice under one attempt number, or started
                again without an earlier attempt of it recorded as lost
  history       attempts counter different from its attempt rows, or the
                succeeded attempt without an effect in the command log
  integrity     integrity_check or foreign_key_check not clean

Prints one summary line and exits 1 if any count other than the explained
duplicates is non-zero.
"""
import collections
import sqlite3
import sys


def main():
    if len(sys.argv) != 5:
        print("usage: chaos_check.py DB PRODUCER_LOG EFFECT_LOG NEMESIS_LOG",
              file=sys.stderr)
        return 64
    db, plog, elog, nlog = sys.argv[1:]

    acked = set()
    with open(plog) as f:
        for line in f:
            w = line.split()
            if w and w[0] == "ok":
                acked.update(range(int(w[1]), int(w[2]) + 1))

    starts = collections.defaultdict(list)   # id -> [attempt, ...]
    effects = set()                           # (id, attempt)
    with open(elog) as f:
        for line in f:
            w = line.split()
            if len(w) != 4:
                continue      # a line cut by a kill: never a whole write
            if w[0] == "start":
                starts[int(w[1])].append(int(w[2]))
            elif w[0] == "effect":
                effects.add((int(w[1]), int(w[2])))
    with open(nlog) as f:
        kills = sum(1 for line in f if line.startswith("kill "))

    con = sqlite3.connect("file:%s?mode=ro" % db, uri=True)
    tasks = {r[0]: r[1:] for r in con.execute(
        "SELECT id, state, attempts FROM tasks")}
    rows = collections.defaultdict(list)
    for tid, attempt, outcome in con.execute(
            "SELECT task_id, attempt, outcome FROM attempts ORDER BY id"):
        rows[tid].append((attempt, outcome))
    results = collections.Counter(r[0] for r in con.execute(
        "SELECT task_id FROM results"))
    integrity = con.execute("PRAGMA integrity_check").fetchone()[0]
    fk = con.execute("PRAGMA foreign_key_check").fetchall()

    bad = collections.Counter()
    explained = 0
    for tid in acked:
        if tid not in tasks or tasks[tid][0] != "succeeded":
            bad["lost"] += 1
    for tid, (state, attempts) in tasks.items():
        if tid not in acked:
            bad["unexpected"] += 1
        if state not in ("succeeded", "dead", "cancelled"):
            bad["stuck"] += 1
        ok = [a for a, o in rows[tid] if o == "succeeded"]
        if len(ok) > 1 or results[tid] > 1:
            bad["double"] += 1
        if len(rows[tid]) != attempts:
            bad["history"] += 1
        if ok and (tid, ok[0]) not in effects:
            bad["history"] += 1
        s = starts.get(tid, [])
        if len(s) != len(set(s)):
            bad["unexplained"] += 1
        if len(s) > 1:
            lost = sum(1 for a, o in rows[tid] if o == "lease_lost")
            if lost >= len(s) - 1:
                explained += len(s) - 1
            else:
                bad["unexplained"] += 1
    if integrity != "ok" or fk:
        bad["integrity"] += 1

    print("acked %d tasks %d kills %d starts %d explained-dups %d "
          "lost %d unexpected %d stuck %d double %d unexplained %d "
          "history %d integrity %s" % (
              len(acked), len(tasks), kills,
              sum(len(v) for v in starts.values()), explained,
              bad["lost"], bad["unexpected"], bad["stuck"], bad["double"],
              bad["unexplained"], bad["history"],
              "ok" if not bad["integrity"] else "BAD"))
    return 1 if sum(bad.values()) else 0


if __name__ == "__main__":
    sys.exit(main())

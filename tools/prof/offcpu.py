#!/usr/bin/env python3
"""Where a cairn thread waits: its off-CPU time by reason, from scheduler
switches recorded machine-wide while the command runs.

    target/profiling/cairn --archive A ingest -q DIR &
    sleep 5   # into the part to look at
    perf record -a -e sched:sched_switch --call-graph dwarf,4096 -o off.data -- sleep 3
    perf script -i off.data -F tid,time,trace,ip,sym > off.txt
    tools/prof/offcpu.py off.txt TID

A wait runs from the switch that takes TID off a CPU to the next switch
that puts it back; it is filed under the stack TID left with: glibc's
arena lock (`__lll_lock_wait_private` under malloc or free), an fsync,
sled's process-wide lock (`concurrency_control`), else a futex wait (a
channel, a lock) or anything else, named by the innermost cairn or sled
function.
"""
import collections
import re
import sys

HEAD = re.compile(r"\s*(\d+)\s+([\d.]+):\s+prev_comm=.* prev_pid=(\d+) .*next_pid=(\d+)")


def switches(path):
    """Yields (time, prev tid, next tid, frames innermost first)."""
    head, stack = None, []
    for line in open(path, errors="replace"):
        line = line.rstrip("\n")
        if line.startswith("\t"):
            parts = line.strip().split(None, 1)
            stack.append(parts[1] if len(parts) > 1 else "?")
            continue
        if head:
            yield head + (stack,)
        m = HEAD.match(line)
        head = (float(m.group(2)), m.group(3), m.group(4)) if m else None
        stack = []
    if head:
        yield head + (stack,)


def reason(stack):
    joined = " | ".join(stack)
    if "lll_lock_wait_private" in joined:
        return "glibc malloc arena lock"
    if "fdatasync" in joined or "fsync" in joined:
        return "fsync"
    if "concurrency_control" in joined:
        return "sled concurrency_control lock"
    named = [f for f in stack if ("cairn::" in f or "sled::" in f) and "closure" not in f and "inlined" not in f]
    kind = "futex" if "futex" in joined else "other"
    return f"{kind}: {named[0] if named else '?'}"


def main():
    if len(sys.argv) != 3:
        sys.exit(__doc__)
    path, tid = sys.argv[1], sys.argv[2]
    waits = collections.Counter()
    first = last = None
    out = None
    for time, prev, nxt, stack in switches(path):
        first = time if first is None else first
        last = time
        if prev == tid:
            out = (time, reason(stack))
        elif nxt == tid and out:
            waits[out[1]] += time - out[0]
            out = None
    span = (last - first) if first is not None else 0.0
    print(f"thread {tid}: {span:.2f} s recorded, {sum(waits.values()):.2f} s off CPU")
    for why, secs in waits.most_common(15):
        print(f"{secs:7.3f} s {100 * secs / max(span, 1e-9):5.1f}%  {why[:140]}")


if __name__ == "__main__":
    main()

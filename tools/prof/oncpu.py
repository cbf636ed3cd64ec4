#!/usr/bin/env python3
"""Where a cairn command's CPU time goes, per thread, from a perf profile.

    cargo build --profile profiling
    perf record -F 200 -e cpu-clock --call-graph dwarf,16384 -o cpu.data \
        target/profiling/cairn --archive A ingest -q DIR
    perf script -i cpu.data -F comm,tid,ip,sym > cpu.txt
    tools/prof/oncpu.py cpu.txt              # samples per thread
    tools/prof/oncpu.py cpu.txt TID [N]      # inclusive share of functions in thread TID
    tools/prof/oncpu.py cpu.txt all [N]      # the same over every thread

Shares are of the samples taken (in one thread, or in all); a function
counts once per sample whatever its depth in the stack.
"""
import collections
import re
import sys


def samples(path):
    """Yields (comm, tid, frames innermost first) per sample."""
    head, stack = None, []
    for line in open(path, errors="replace"):
        line = line.rstrip("\n")
        if not line.strip():
            if head:
                yield head[0], head[1], stack
            head, stack = None, []
        elif not line.startswith("\t") and not line.startswith("  "):
            m = re.match(r"\s*(\S.*?)\s+(\d+)\s*$", line)
            head, stack = ((m.group(1), m.group(2)) if m else (line, "?")), []
        else:
            parts = line.strip().split(None, 1)
            stack.append(re.sub(r"\+0x[0-9a-f]+$", "", parts[1] if len(parts) > 1 else "?"))
    if head:
        yield head[0], head[1], stack


def main():
    if len(sys.argv) < 2:
        sys.exit(__doc__)
    path = sys.argv[1]
    if len(sys.argv) == 2:
        per = collections.Counter()
        names = {}
        for comm, tid, _ in samples(path):
            per[tid] += 1
            names[tid] = comm
        total = sum(per.values())
        for tid, n in per.most_common(20):
            print(f"{100 * n / total:5.1f}%  {n:6d}  {names[tid]} {tid}")
        return
    want, top = sys.argv[2], int(sys.argv[3]) if len(sys.argv) > 3 else 40
    funcs = collections.Counter()
    total = 0
    for _, tid, stack in samples(path):
        if want != "all" and tid != want:
            continue
        total += 1
        for f in set(stack):
            funcs[f] += 1
    print(f"{total} samples")
    for f, n in funcs.most_common(top):
        print(f"{100 * n / max(total, 1):5.1f}%  {f[:150]}")


if __name__ == "__main__":
    main()

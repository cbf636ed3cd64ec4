#!/usr/bin/env python3
"""The script a user would write instead of cairn: parse the same tribune
pages and INSERT OR IGNORE each comment keyed by a content hash, in one
transaction. Used by tools/bench as the baseline.

    python3 tools/bench/sqlite_baseline.py DB DIR [DIR...]

Prints {"pages": N, "comments_seen": M, "comments_stored": K}.
"""
import hashlib
import json
import os
import re
import sqlite3
import sys

TIME = re.compile(r"^[A-Z][a-z]{2} \d{1,2}, \d{4} - \d{1,2}:\d{2}[AP]M$")


def parse(text):
    """Title, published line and (author, time, body) per comment, by the
    same structure cairn reads (bullets, indented time lines, end marker)."""
    lines = text.replace("\r\n", "\n").split("\n")
    title = lines[0].strip() if lines else ""
    comments = []
    current = None
    in_comments = False
    for line in lines:
        line = line.rstrip()
        if line.startswith("Reader Comments ("):
            in_comments = True
            continue
        if not in_comments:
            continue
        if line and not line.startswith(" "):
            break
        stripped = line.strip()
        if stripped.startswith("• "):
            rest = stripped[2:]
            if current:
                comments.append(current)
            current = [None, rest, []] if TIME.match(rest) else [rest, None, []]
        elif current is not None and TIME.match(stripped):
            if current[1] is None and not current[2]:
                current[1] = stripped
            else:
                comments.append(current)
                current = [None, stripped, []]
        elif current is not None:
            current[2].append(stripped)
    if current:
        comments.append(current)
    out = []
    for author, time, body in comments:
        text_body = "\n".join(body).strip()
        if text_body.endswith("Recommend"):
            text_body = text_body[: -len("Recommend")]
        out.append((author, time, text_body))
    return title, out


def main():
    db, dirs = sys.argv[1], sys.argv[2:]
    con = sqlite3.connect(db)
    con.execute("CREATE TABLE IF NOT EXISTS comments (id TEXT PRIMARY KEY, article TEXT, author TEXT, posted_at TEXT, body TEXT)")
    pages = seen = 0
    with con:
        for d in dirs:
            for root, _, files in sorted(os.walk(d)):
                for name in sorted(files):
                    with open(os.path.join(root, name), encoding="utf-8") as f:
                        title, comments = parse(f.read())
                    pages += 1
                    for author, time, body in comments:
                        seen += 1
                        key = hashlib.sha256("\0".join([title, author or "", time or "", body]).encode()).hexdigest()
                        con.execute("INSERT OR IGNORE INTO comments VALUES (?, ?, ?, ?, ?)", (key, title, author, time, body))
    stored = con.execute("SELECT count(*) FROM comments").fetchone()[0]
    print(json.dumps({"pages": pages, "comments_seen": seen, "comments_stored": stored}))


if __name__ == "__main__":
    main()

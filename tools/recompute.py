#!/usr/bin/env python3
"""An independent re-implementation of cairn's canonical encoding
(docs/format.md), for auditors: recomputes every event id, entry hash and the
chain head from `cairn log --json` output, and compares them with what cairn
reports.

    cairn log --json | python3 tools/recompute.py [--head "SEQ HEX"]

Needs the `blake3` package from PyPI (pip install blake3). It shares no code
with cairn: it reads only the JSON fields and docs/format.md's rules.
"""
import json
import sys

import blake3


def u64(n):
    if type(n) is not int or not 0 <= n < 2**64:
        raise ValueError("%r is not an unsigned 64-bit integer" % (n,))
    return n.to_bytes(8, "big")


def s(text):
    if type(text) is not str:
        raise ValueError("%r is not a string" % (text,))
    b = text.encode("utf-8")
    return u64(len(b)) + b


def opt(v, enc):
    return b"\x00" if v is None else b"\x01" + enc(v)


def idb(hexstr):
    # Exactly 32 bytes as 64 lowercase hex digits: ids have no length
    # prefix, so a longer or shorter one would shift the fields after it.
    if type(hexstr) is not str or len(hexstr) != 64 or any(c not in "0123456789abcdef" for c in hexstr):
        raise ValueError("%r is not a 32-byte id in lowercase hex" % (hexstr,))
    return bytes.fromhex(hexstr)


def flag(v):
    if type(v) is not bool:
        raise ValueError("%r is not a boolean" % (v,))
    return b"\x01" if v else b"\x00"


def identity(e):
    k = e["kind"]
    if k == "comment":
        return (s("cairn/v1/comment") + s(e["article"]) + opt(e["author"], s)
                + opt(e["posted_at"], s) + s(e["body"]))
    if k == "article":
        # The id hashes the paragraphs; `body` is them joined by blank lines.
        if type(e["paragraphs"]) is not list or e["body"] != "\n\n".join(map(str, e["paragraphs"])):
            raise ValueError("the article's body is not its paragraphs joined by blank lines")
        body = u64(len(e["paragraphs"])) + b"".join(s(p) for p in e["paragraphs"])
        return (s("cairn/v1/article") + s(e["key"]) + opt(e["url"], s) + opt(e["title"], s)
                + opt(e["published"], s) + opt(e["byline"], s) + body)
    if k == "capture":
        def item(i):
            return idb(i["id"]) + opt(i["parent"], idb) + flag(i["possibly_truncated"])
        items = u64(len(e["articles"])) + b"".join(
            s(a["key"]) + opt(a["article"], item) + u64(len(a["comments"]))
            + b"".join(item(c) for c in a["comments"])
            for a in e["articles"])
        # v2 captures record their gaps (a list, maybe empty); v1 ones have null.
        gaps = e.get("gaps")
        tag = "cairn/v1/capture" if gaps is None else "cairn/v2/capture"
        tail = b"" if gaps is None else u64(len(gaps)) + b"".join(s(g) for g in gaps)
        return (s(tag) + idb(e["blob"]) + opt(e["fetched_at"], s)
                + opt(e["source_url"], s) + opt(e["tz"], s) + s(e["format"]) + u64(e["parser_version"])
                + opt(e["declared_comments"], u64) + items + tail)
    if k == "merge":
        fold = u64(len(e["fold"])) + b"".join(idb(f) for f in e["fold"])
        return s("cairn/v1/merge") + s(e["merge_kind"]) + idb(e["keep"]) + fold + s(e["reason"])
    raise ValueError(f"unknown kind {k}")


def main():
    head = bytes(32)
    seq = 0
    bad = 0
    for line in sys.stdin:
        e = json.loads(line)
        eid = blake3.blake3(identity(e)).hexdigest()
        if eid != e["id"]:
            print(f"seq {e['seq']}: id {e['id']} but the fields hash to {eid}")
            bad += 1
        annotation = e["source"] if e["kind"] == "capture" else None
        entry = (s("cairn/v1/entry") + u64(e["seq"]) + idb(e["id"]) + s(e["recorded_at"])
                 + opt(annotation, s))
        head = blake3.blake3(head + blake3.blake3(entry).digest()).digest()
        if e.get("head") not in (None, head.hex()):
            print(f"seq {e['seq']}: stored head {e['head']} but the chain gives {head.hex()}")
            bad += 1
        seq = e["seq"]
    print(f"{seq} {head.hex()}")
    if len(sys.argv) == 3 and sys.argv[1] == "--head":
        if sys.argv[2] != f"{seq} {head.hex()}":
            print("head differs from", sys.argv[2])
            bad += 1
    sys.exit(1 if bad else 0)


if __name__ == "__main__":
    main()

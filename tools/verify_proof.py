#!/usr/bin/env python3
"""An independent verifier of cairn's signed checkpoints and proofs, written
from docs/transparency.md and docs/format.md alone (it shares no code with
cairn): the C2SP signed note and its Ed25519 signature, the checkpoint's
size and root, the RFC 9162 inclusion or consistency path, and for an
inclusion proof the leaf data (the log entry's canonical bytes), the id in
it (BLAKE3 of event_bytes) and the event's fields (they must encode to
event_bytes, with tools/recompute.py's encoder).

    python3 tools/verify_proof.py PROOF.json --checkpoint NOTE --key VERIFIER-KEY \
        [--old-checkpoint OLD-NOTE]

Exit 0 when every check passes, 1 when one fails (the message says which),
2 on a usage error. Needs hashlib (standard library), the `cryptography`
package for Ed25519 and the `blake3` package (pip install cryptography blake3).
"""
import argparse
import base64
import hashlib
import json
import os
import re
import sys

import blake3
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from recompute import identity  # noqa: E402  (the canonical encoder of events)


class Refused(Exception):
    pass


def leaf_hash(data):
    return hashlib.sha256(b"\x00" + data).digest()


def node_hash(left, right):
    return hashlib.sha256(b"\x01" + left + right).digest()


# --- C2SP signed notes -------------------------------------------------------

def valid_name(name):
    return bool(name) and not any(c.isspace() or c == "+" for c in name)


def uint(v, what):
    """A JSON integer from 0 to 2^63 - 1 (not a boolean, not a float)."""
    if type(v) is not int or not 0 <= v < 2**63:
        raise Refused("%s is not a non-negative integer" % what)
    return v


def parse_verifier(text):
    parts = text.strip().split("+", 2)
    if len(parts) != 3 or not valid_name(parts[0]):
        raise SystemExit("verify_proof: a verifier key is NAME+HASH+KEY")
    name, keyhash, key64 = parts
    key = base64.b64decode(key64, validate=True)
    if len(key) != 33 or key[0] != 1:
        raise SystemExit("verify_proof: not an Ed25519 verifier key")
    want = hashlib.sha256(name.encode() + b"\n" + key).digest()[:4]
    if want.hex() != keyhash:
        raise SystemExit("verify_proof: the verifier key's hash does not match")
    return name, want, Ed25519PublicKey.from_public_bytes(key[1:])


def open_note(msg, verifier):
    name, keyhash, public = verifier
    try:
        text_all = msg.decode("utf-8")
    except UnicodeDecodeError:
        raise Refused("the note is not UTF-8")
    if any(c < " " and c != "\n" for c in text_all):
        raise Refused("the note contains a control character")
    split = msg.rfind(b"\n\n")
    if split < 0:
        raise Refused("the note has no signature block")
    text, sigs = msg[: split + 1], msg[split + 2:]
    if not sigs.endswith(b"\n"):
        raise Refused("the signature block does not end with a newline")
    verified = False
    lines = sigs[:-1].split(b"\n")
    if len(lines) > 100:
        raise Refused("more than 100 signature lines")
    for line in lines:
        prefix = "\u2014 ".encode()
        if not line.startswith(prefix):
            raise Refused("a line of the signature block is not a signature")
        who, _, b64 = line[len(prefix):].decode().partition(" ")
        try:
            sig = base64.b64decode(b64, validate=True)
        except ValueError:
            raise Refused("a signature is not base64")
        if len(sig) < 5 or not valid_name(who):
            raise Refused("a signature line is malformed")
        if who != name or sig[:4] != keyhash:
            continue
        try:
            public.verify(sig[4:], text)
        except InvalidSignature:
            raise Refused("the signature of %s does not verify" % name)
        verified = True
    if not verified:
        raise Refused("the note has no signature by %s" % name)
    return text.decode()


def parse_checkpoint(text):
    lines = text.split("\n")
    if len(lines) < 4 or not lines[0]:
        raise Refused("a checkpoint has an origin, a size and a root line")
    size = lines[1]
    if not re.fullmatch(r"0|[1-9][0-9]{0,18}", size, re.ASCII) or int(size) >= 2**63:
        raise Refused("the checkpoint's size is not a decimal number")
    root = base64.b64decode(lines[2], validate=True)
    if len(root) != 32:
        raise Refused("the checkpoint's root is not 32 bytes")
    return lines[0], int(size), root


# --- RFC 9162 section 2.1.3.2 and 2.1.4.2 -----------------------------------

def check_inclusion(leaf, index, size, path, root):
    if index >= size:
        raise Refused("leaf index not below the tree size")
    fn, sn, r = index, size - 1, leaf
    for p in path:
        if sn == 0:
            raise Refused("inclusion path too long")
        if fn & 1 or fn == sn:
            r = node_hash(p, r)
            while not fn & 1 and fn != 0:
                fn >>= 1
                sn >>= 1
        else:
            r = node_hash(r, p)
        fn >>= 1
        sn >>= 1
    if sn != 0:
        raise Refused("inclusion path too short")
    if r != root:
        raise Refused("the inclusion path does not lead to the root")


def check_consistency(m, n, old, new, path):
    if m == 0:
        raise Refused("old size 0: nothing to prove")
    if m > n:
        raise Refused("old size larger than new size")
    if m == n:
        if path or old != new:
            raise Refused("trees of one size must have one root and an empty path")
        return
    if not path:
        raise Refused("empty consistency path")
    items = ([old] if m & (m - 1) == 0 else []) + path
    fn, sn = m - 1, n - 1
    while fn & 1:
        fn >>= 1
        sn >>= 1
    fr = sr = items[0]
    for c in items[1:]:
        if sn == 0:
            raise Refused("consistency path too long")
        if fn & 1 or fn == sn:
            fr = node_hash(c, fr)
            sr = node_hash(c, sr)
            while not fn & 1 and fn != 0:
                fn >>= 1
                sn >>= 1
        else:
            sr = node_hash(sr, c)
        fn >>= 1
        sn >>= 1
    if sn != 0:
        raise Refused("consistency path too short")
    if fr != old or sr != new:
        raise Refused("the consistency path does not lead to the roots")


# --- the leaf data (docs/format.md, "Log entries and the chain") ------------

def parse_leaf(data):
    at = 0

    def take(n):
        nonlocal at
        if at + n > len(data):
            raise Refused("the leaf data ends inside a field")
        out = data[at: at + n]
        at += n
        return out

    def u64():
        return int.from_bytes(take(8), "big")

    def text():
        return take(u64()).decode("utf-8")

    if text() != "cairn/v1/entry":
        raise Refused("the leaf data is not a cairn log entry")
    seq = u64()
    eid = take(32)
    recorded_at = text()
    flag = take(1)
    annotation = text() if flag == b"\x01" else None
    if flag not in (b"\x00", b"\x01") or at != len(data):
        raise Refused("the leaf data is malformed")
    return seq, eid, recorded_at, annotation


COMMON = {"kind", "seq", "id", "recorded_at"}
KEYS = {
    "comment": COMMON | {"article", "author", "posted_at", "body"},
    "article": COMMON | {"key", "url", "title", "published", "byline", "body", "paragraphs"},
    "capture": COMMON | {"blob", "source", "source_url", "tz", "fetched_at", "format", "parser_version",
                         "declared_comments", "found_comments", "complete", "gaps", "articles"},
    "merge": COMMON | {"merge_kind", "keep", "fold", "reason"},
}


def check_event_shape(e):
    """The event has exactly the fields cairn prints for its kind, and a
    capture's derived fields (found_comments, complete) are what its other
    fields give (docs/tribune.md, partial captures)."""
    if type(e) is not dict or e.get("kind") not in KEYS or set(e) != KEYS[e["kind"]]:
        raise Refused("the event does not have exactly the fields of its kind")
    if e["kind"] != "capture":
        return
    for a in e["articles"]:
        if type(a) is not dict or set(a) != {"key", "article", "comments"} or type(a["comments"]) is not list:
            raise Refused("a capture section does not have exactly its fields")
        items = ([a["article"]] if a["article"] is not None else []) + a["comments"]
        for i in items:
            if type(i) is not dict or set(i) != {"id", "parent", "possibly_truncated"}:
                raise Refused("a capture item does not have exactly its fields")
    found = sum(len(a["comments"]) for a in e["articles"])
    if e["found_comments"] != found or type(e["found_comments"]) is not int:
        raise Refused("the capture's found_comments is not the number of comments it lists")
    if e["gaps"] is not None:
        complete = e["gaps"] == []
    elif e["format"] != "tribune":
        complete = True
    else:
        items = [i for a in e["articles"] for i in ([a["article"]] if a["article"] is not None else []) + a["comments"]]
        truncated = bool(items) and items[-1]["possibly_truncated"] is True
        complete = not truncated and e["declared_comments"] is not None and e["declared_comments"] == found
    if e["complete"] is not complete:
        raise Refused("the capture's complete flag is not what its gaps and counts give")


def hexes(v, what, size=None):
    if not isinstance(v, str) or v != v.lower():
        raise Refused("%s is not lowercase hex" % what)
    b = bytes.fromhex(v)
    if size is not None and len(b) != size:
        raise Refused("%s is not %d bytes" % (what, size))
    return b


INCLUSION_FIELDS = {"leaf_index", "tree_size", "leaf_data", "inclusion_path", "root", "event", "event_bytes"}
CONSISTENCY_FIELDS = {"old_size", "new_size", "old_root", "new_root", "consistency_path"}


def unique_keys(pairs):
    """A JSON object whose keys are all different (json keeps the last of
    a key given twice: a reader keeping the first would see another proof
    than the one checked)."""
    out = {}
    for k, v in pairs:
        if k in out:
            raise Refused("the key %r twice in one object" % k)
        out[k] = v
    return out


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("proof")
    ap.add_argument("--checkpoint", required=True)
    ap.add_argument("--key", required=True, help="NAME+HASH+KEY, or a file holding it")
    ap.add_argument("--old-checkpoint")
    args = ap.parse_args()
    key = args.key
    if os.path.isfile(key):
        key = open(key).read()
    verifier = parse_verifier(key)
    try:
        proof = json.load(open(args.proof), object_pairs_hook=unique_keys)
        if not isinstance(proof, dict):
            raise Refused("a proof is a JSON object")
        fields = INCLUSION_FIELDS if "leaf_index" in proof else CONSISTENCY_FIELDS
        extra = sorted(set(proof) - fields)
        if extra:
            raise Refused("%r is no field of a proof from `cairn prove`" % extra[0])
        origin, size, root = parse_checkpoint(open_note(open(args.checkpoint, "rb").read(), verifier))
        if "leaf_index" in proof:
            if uint(proof["tree_size"], "tree_size") != size or hexes(proof["root"], "root", 32) != root:
                raise Refused("the proof is not for the checkpoint's tree")
            data = hexes(proof["leaf_data"], "leaf_data")
            path = [hexes(h, "inclusion_path", 32) for h in proof["inclusion_path"]]
            index = uint(proof["leaf_index"], "leaf_index")
            check_inclusion(leaf_hash(data), index, size, path, root)
            seq, eid, recorded_at, annotation = parse_leaf(data)
            if seq != index + 1:
                raise Refused("the leaf data's seq is not leaf_index + 1")
            event_bytes = hexes(proof["event_bytes"], "event_bytes")
            if blake3.blake3(event_bytes).digest() != eid:
                raise Refused("BLAKE3(event_bytes) is not the id in the leaf data")
            e = proof["event"]
            check_event_shape(e)
            if (e.get("id") != eid.hex() or type(e.get("seq")) is not int or e.get("seq") != seq or e.get("recorded_at") != recorded_at
                        or e.get("source") != annotation or (annotation is not None) != (e["kind"] == "capture")):
                raise Refused("the event's id, seq, recorded_at or source is not the leaf data's")
            if identity(e) != event_bytes:
                raise Refused("the event's fields do not encode to event_bytes")
            print("ok: entry %d (event %s) is in the tree of %d entries of %r" % (seq, eid.hex(), size, origin))
        elif "old_size" in proof:
            old_size = uint(proof["old_size"], "old_size")
            if uint(proof["new_size"], "new_size") != size or hexes(proof["new_root"], "new_root", 32) != root:
                raise Refused("the proof's new tree is not the checkpoint's")
            old_root = hexes(proof["old_root"], "old_root", 32)
            if args.old_checkpoint:
                o_origin, o_size, o_root = parse_checkpoint(
                    open_note(open(args.old_checkpoint, "rb").read(), verifier))
                if o_origin != origin or o_size != old_size or o_root != old_root:
                    raise Refused("the proof's old tree is not the old checkpoint's")
            path = [hexes(h, "consistency_path", 32) for h in proof["consistency_path"]]
            check_consistency(old_size, size, old_root, root, path)
            print("ok: the tree of %d entries is a prefix of the tree of %d" % (old_size, size))
        else:
            raise Refused("not a proof")
    except Exception as e:  # any malformed proof or note is refused, never accepted
        print("refused: %s" % (e if isinstance(e, Refused) else "%s: %s" % (type(e).__name__, e)))
        sys.exit(1)


if __name__ == "__main__":
    main()

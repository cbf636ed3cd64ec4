#!/usr/bin/env python3
"""Deterministic generator of JSON Lines scrapes, for quick measurements.

    python3 tools/gen_jsonl.py OUT_DIR --articles 2000 --comments 50 --seed 1

Writes one file per article (an article record and its comments, some of them
replies). Prints the counts a correct first ingest must report.
"""
import argparse
import json
import os
import random

WORDS = ("army border talks general nato supply route parliament policy trust "
         "cooperation drone meeting apology dollars pakistan nation media").split()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("out")
    ap.add_argument("--articles", type=int, default=100)
    ap.add_argument("--comments", type=int, default=50)
    ap.add_argument("--seed", type=int, default=1)
    a = ap.parse_args()
    rng = random.Random(a.seed)
    os.makedirs(a.out, exist_ok=True)
    total_bytes = 0
    for i in range(a.articles):
        url = f"https://example.com/story/{i}/slug-{i}"
        lines = [{"type": "article", "id": "a", "url": url, "title": f"Story number {i}",
                  "published": "2012-03-28",
                  "body": [" ".join(rng.choice(WORDS) for _ in range(40)) for _ in range(4)]}]
        for j in range(a.comments):
            c = {"type": "comment", "id": f"c{j}", "article": "a",
                 "author": None if rng.random() < 0.15 else f"user{rng.randrange(5000)}",
                 "posted_at": f"2012-03-{28 + j // 1440:02d}T{(j // 60) % 24:02d}:{j % 60:02d}:00+05:00",
                 "body": " ".join(rng.choice(WORDS) for _ in range(rng.randrange(8, 60)))}
            if j and rng.random() < 0.2:
                c["parent"] = f"c{rng.randrange(j)}"
            lines.append(c)
        text = "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in lines)
        total_bytes += len(text.encode())
        with open(os.path.join(a.out, f"{i:06d}.jsonl"), "w") as f:
            f.write(text)
    print(json.dumps({"inputs": a.articles, "articles": a.articles,
                      "comments": a.articles * a.comments, "captures": a.articles,
                      "bytes": total_bytes}))


if __name__ == "__main__":
    main()

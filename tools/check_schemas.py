#!/usr/bin/env python3
"""Validates cairn's JSON output against the JSON Schemas in docs/schemas/.

usage: check_schemas.py SCHEMA_DIR CASES.json

CASES.json is a list of cases, each
  {"name": "thread", "schema": "thread.schema.json", "file": "out.json",
   "jsonl": false, "expect": "valid"}
where "schema" may name a part of a file ("table.schema.json#/$defs/comments"),
"jsonl" says the file holds one document per line (each is checked), and
"expect" is "valid" or "invalid" (a deliberately broken output that the
schema must reject). Every schema file is registered under its "$id", so
schemas refer to each other as "common.schema.json#/$defs/capture".

Prints one line per case that did not meet its expectation, and every
schema no case used; exits 0 when all cases met theirs, 1 otherwise, 2 on
bad usage, 3 when the Python packages jsonschema and referencing are
missing (pip install jsonschema).
"""

import json
import pathlib
import sys

try:
    from jsonschema import Draft202012Validator
    from referencing import Registry, Resource
except ImportError as e:  # the caller skips, saying so
    print(f"check_schemas: {e}: pip install jsonschema", file=sys.stderr)
    sys.exit(3)

BASE = "https://cairn.invalid/schemas/"


def main(argv):
    if len(argv) != 3:
        print(__doc__.strip().splitlines()[2], file=sys.stderr)
        return 2
    schema_dir = pathlib.Path(argv[1])
    cases = json.loads(pathlib.Path(argv[2]).read_text())
    schemas = {}
    for path in sorted(schema_dir.glob("*.schema.json")):
        schema = json.loads(path.read_text())
        Draft202012Validator.check_schema(schema)
        if schema.get("$id") != BASE + path.name:
            print(f"{path.name}: $id is {schema.get('$id')!r}, not {BASE + path.name!r}")
            return 1
        schemas[path.name] = schema
    registry = Registry().with_resources(
        [(s["$id"], Resource.from_contents(s)) for s in schemas.values()]
    )
    used = set()
    failures = 0
    for case in cases:
        file_name = case["schema"].split("#")[0]
        if file_name not in schemas:
            print(f"{case['name']}: no schema {file_name} in {schema_dir}")
            failures += 1
            continue
        used.add(file_name)
        validator = Draft202012Validator({"$ref": BASE + case["schema"]}, registry=registry)
        text = pathlib.Path(case["file"]).read_text()
        docs = [line for line in text.splitlines() if line.strip()] if case["jsonl"] else [text]
        if not docs:
            print(f"{case['name']}: no output to check")
            failures += 1
            continue
        errors = []
        for i, doc in enumerate(docs):
            for error in validator.iter_errors(json.loads(doc)):
                where = "/".join(str(p) for p in error.absolute_path) or "(top)"
                line = f"line {i + 1}: " if case["jsonl"] else ""
                errors.append(f"{line}{where}: {error.message[:300]}")
        if case["expect"] == "valid" and errors:
            print(f"{case['name']}: does not match {case['schema']}: " + "; ".join(errors[:3]))
            failures += 1
        elif case["expect"] == "invalid" and not errors:
            print(f"{case['name']}: {case['schema']} accepts a broken output")
            failures += 1
    for name in sorted(set(schemas) - used - {"common.schema.json"}):
        print(f"{name}: no case checks it")
        failures += 1
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))

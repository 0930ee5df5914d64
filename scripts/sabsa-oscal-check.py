#!/usr/bin/env python3
"""Check gatehouse OSCAL exports against NIST's OSCAL model (not vendored here).

The NIST model comes from the `oscal` package on PyPI, which ships NIST's OSCAL models,
processed from NIST's metaschema, for every release. Usage:

    pip install oscal            # once; the check skips cleanly without it
    gatehouse export oscal-poam  --pack gatehouse > poam.json
    gatehouse export oscal-ap    --pack gatehouse > ap.json
    scripts/sabsa-oscal-check.py poam.json ap.json

For every object it checks: members the model does not define, required members (min-occurs 1),
allowed values that do not allow others, and the data types uuid, token, uri,
dateTime-with-timezone and positive/non-negative integers. Exit 0 clean, 1 findings.
"""

import importlib.util
import json
import re
import sqlite3
import sys
import tempfile
import zipfile
from pathlib import Path

OSCAL_VERSION = "v1.1.2"
UUID = re.compile(r"^[0-9A-Fa-f]{8}-[0-9A-Fa-f]{4}-[45][0-9A-Fa-f]{3}-[89ABab][0-9A-Fa-f]{3}-[0-9A-Fa-f]{12}$")
# NIST token is `^(\p{L}|_)(\p{L}|\p{N}|[.\-_])*$`; ASCII letters and digits suffice here.
TOKEN = re.compile(r"^[A-Za-z_][A-Za-z0-9.\-_]*$")
DATETIME_TZ = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:\d{2})$")
ABSOLUTE_URI = re.compile(r"^[a-zA-Z][a-zA-Z0-9+\-.]+:")


def load_models():
    # Only the package's data file is used, so it is located, not imported (importing it
    # would need all of its own dependencies).
    spec = importlib.util.find_spec("oscal")
    if spec is None or spec.origin is None:
        print("skipped: python package `oscal` not installed (pip install oscal)")
        sys.exit(0)
    package = Path(spec.origin).parent
    with tempfile.TemporaryDirectory() as tmp:
        with zipfile.ZipFile(package / "data" / "oscal_support.zip") as z:
            z.extractall(tmp)
        db = sqlite3.connect(Path(tmp) / "oscal_support.db")
        rows = db.execute(
            "select s.model, f.content from oscal_support s join filecache f "
            "on f.uuid = s.filecache_uuid where s.version = ?",
            (OSCAL_VERSION,),
        ).fetchall()
        db.close()
    return {model: json.loads(content) for model, content in rows}


def json_key(node):
    return node.get("json-path", "").split("/")[-1]


def members(node):
    """(key, child, required) for each JSON member of `node`, flattening choices."""
    for child in node.get("children", []):
        if child.get("structure-type") == "choice":
            for alternative in child.get("children", []):
                yield json_key(alternative), alternative, False
        else:
            yield json_key(child), child, child.get("min-occurs") not in (None, "0")


OSCAL_NS = "http://csrc.nist.gov/ns/oscal"
NAME_TEST = re.compile(r"@name='([^']*)'")


def constraint_applies(target, parent):
    """Whether an allowed-values constraint targets this value. `.` always does; the
    `has-oscal-namespace(...)` targets apply only to properties in the OSCAL namespace (and to
    the named property); other conditional targets are not evaluated here."""
    if target in (".", None, ""):
        return True
    if "has-oscal-namespace" in target:
        if parent.get("ns", OSCAL_NS) != OSCAL_NS:
            return False
        named = NAME_TEST.search(target)
        return named is None or parent.get("name") == named.group(1)
    return False


def check_scalar(value, node, path, errors, parent=None):
    parent = parent or {}
    datatype = node.get("datatype")
    if isinstance(value, str):
        if datatype == "uuid" and not UUID.match(value):
            errors.append(f"{path}: `{value}` is not a UUID (v4/v5)")
        if datatype == "token" and not TOKEN.match(value):
            errors.append(f"{path}: `{value}` is not a token")
        if datatype == "uri" and not ABSOLUTE_URI.match(value):
            errors.append(f"{path}: `{value}` is not an absolute URI")
        if datatype == "dateTime-with-timezone" and not DATETIME_TZ.match(value):
            errors.append(f"{path}: `{value}` is not dateTime-with-timezone")
        for constraint in node.get("constraints", []):
            if (
                constraint.get("type") == "allowed-values"
                and not constraint.get("allow-other")
                and constraint_applies(constraint.get("target"), parent)
            ):
                allowed = [v.get("value") for v in constraint.get("values", [])]
                if value not in allowed:
                    errors.append(f"{path}: `{value}` not in {allowed}")
    elif datatype in ("positiveInteger", "nonNegativeInteger", "integer"):
        if not isinstance(value, int) or (datatype == "positiveInteger" and value < 1):
            errors.append(f"{path}: `{value}` is not a {datatype}")


def check(value, node, path, errors, parent):
    if node.get("max-occurs") not in (None, "1") and isinstance(value, list):
        if not value:
            errors.append(f"{path}: empty array")
        for i, item in enumerate(value):
            check_one(item, node, f"{path}[{i}]", errors, parent)
    else:
        check_one(value, node, path, errors, parent)


def check_one(value, node, path, errors, parent=None):
    if not isinstance(value, dict):
        check_scalar(value, node, path, errors, parent)
        return
    kids = list(members(node))
    known = {key: (child, required) for key, child, required in kids}
    value_key = node.get("json-value-key")
    for key, (child, required) in known.items():
        if required and key not in value:
            errors.append(f"{path}: missing required `{key}`")
    for key, member in value.items():
        if key in known:
            check(member, known[key][0], f"{path}/{key}", errors, value)
        elif key == value_key:
            check_scalar(member, node, f"{path}/{key}", errors, value)
        else:
            errors.append(f"{path}: `{key}` is not defined by the OSCAL model")


def main(paths):
    models = load_models()
    failed = False
    for path in paths:
        document = json.loads(Path(path).read_text())
        (root_key, root), = document.items()
        model = models.get(root_key)
        if model is None:
            print(f"{path}: unknown OSCAL root `{root_key}`")
            failed = True
            continue
        errors = []
        check_one(root, model["nodes"], f"/{root_key}", errors)
        status = "ok" if not errors else f"{len(errors)} finding(s)"
        print(f"{path}: OSCAL {OSCAL_VERSION} {root_key}: {status}")
        for e in errors:
            print(f"  {e}")
        failed |= bool(errors)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

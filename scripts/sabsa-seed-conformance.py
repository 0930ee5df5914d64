#!/usr/bin/env python3
"""Conformance: how the validator judges a Layer 6 document built from 003_*'s own examples.

Builds a document whose six sections are the "Example format" Markdown of the Layer 6
generation instructions (`../shared/seeds/003_*`), with the rationale fields of its output
schema and the traceability its instructions ask for, then runs
`gatehouse validate sabsa-l6 -` on it. Expected: every checklist item passes except L6-05,
because the 6-3 example shows one playbook (key compromise) while the checklist asks for data
breach and access-control failure too. With section 6-3 removed, L6-01 must fail.

Usage: scripts/sabsa-seed-conformance.py [path/to/gatehouse]   (default target/debug/gatehouse)
Skips (exit 0) when ../shared is absent.
"""

import json
import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SEEDS = ROOT.parent / "shared" / "seeds"

TITLES = {
    "6-1": "Monitoring & Alerting",
    "6-2": "Operational Runbooks",
    "6-3": "Incident Response Playbooks",
    "6-4": "Maintenance Procedures",
    "6-5": "Metrics & Reporting",
    "6-6": "Continuous Improvement",
}
TRACES = {
    "6-1": [("5-1", "derives_from"), ("5-3", "validates")],
    "6-2": [("5-4", "refines"), ("4-5", "implements")],
    "6-3": [("5-5", "implements"), ("4-5", "implements")],
    "6-4": [("5-4", "derives_from")],
    "6-5": [("5-3", "validates"), ("4-2", "derives_from")],
    "6-6": [("6-3", "derives_from"), ("6-5", "derives_from")],
}


def sections_from_seed(text):
    """Example-format Markdown of each section: from the ```markdown line to the line before
    **Framework references:** of the same section (examples nest ``` blocks, so fences cannot
    be matched pairwise)."""
    out = {}
    for sid in TITLES:
        head = text.index(f"### {sid}:")
        start = text.index("```markdown\n", head) + len("```markdown\n")
        end = text.index("**Framework references:**", start)
        body = text[start:end].rstrip()
        body = body[: body.rfind("```")].rstrip()  # the example's own closing fence
        out[sid] = body
    schema = json.loads(re.search(r"## Output Schema\s+```json\n(.*?)\n```", text, re.S).group(1))
    return out, schema["sections"]


def build(seed_text):
    examples, schema = sections_from_seed(seed_text)
    sections = {}
    for sid, title in TITLES.items():
        number = sid.replace("-", ".")
        sections[sid] = {
            "title": title,
            "content": f"## {number} {title}\n\n{examples[sid]}\n",
            "rationale_why": schema[sid]["rationale_why"],
            "rationale_condition": schema[sid]["rationale_condition"],
        }
    traceability = {
        sid: [
            {
                "source": f"POL-2026-001.component.{target}",
                "relationship": rel,
                "description": f"{TITLES[sid]} {rel.replace('_', ' ')} {target}",
            }
            for target, rel in links
        ]
        for sid, links in TRACES.items()
    }
    return {"sections": sections, "traceability": traceability}


def validate(binary, document):
    run = subprocess.run(
        [binary, "validate", "sabsa-l6", "-", "--format", "json"],
        input=json.dumps(document).encode(),
        capture_output=True,
    )
    return run.returncode, json.loads(run.stdout or b"{}")


def main():
    seeds = sorted(SEEDS.glob("003_*")) if SEEDS.is_dir() else []
    if not seeds:
        print("skipped: corpus not present")
        return 0
    binary = sys.argv[1] if len(sys.argv) > 1 else str(ROOT / "target" / "debug" / "gatehouse")
    document = build(seeds[0].read_text())

    code, report = validate(binary, document)
    print(f"seed examples: exit {code}, {len(report.get('findings', []))} finding(s)")
    for finding in report.get("findings", []):
        print(f"  {finding['rule']} {finding['pointer']}: {finding['message']}")
    rules = sorted({f["rule"] for f in report.get("findings", [])})
    ok = code == 1 and rules == ["L6-05"]

    del document["sections"]["6-3"]
    code, report = validate(binary, document)
    rules = sorted({f["rule"] for f in report.get("findings", [])})
    print(f"seed examples without 6-3: exit {code}, rules {rules}")
    ok &= code == 1 and "L6-01" in rules
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())

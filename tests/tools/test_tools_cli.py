"""`refinery tools check|show` as a user runs it: a subprocess, its exit status and what it prints."""

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def refinery(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "pipelines.cli", "tools", *args], cwd=ROOT, capture_output=True,
                          text=True, timeout=300)


def test_check_counts_a_catalog_and_names_a_bad_tool(tmp_path):
    r = refinery("check", "builtin", "bfcl:multiple")
    assert r.returncode == 0 and r.stdout.startswith("ok: ") and "10 run in Python" in r.stdout
    bad = tmp_path / "bad.jsonl"
    bad.write_text(json.dumps({"name": "f", "parameters": {"type": "dict", "properties": {"x": {"type": "decimal"}}}}))
    r = refinery("check", str(bad))
    assert r.returncode == 2 and f"{bad}:1 'f'.parameters.x.type: unknown type 'decimal'" in r.stderr


def test_show_lists_signatures_or_normalised_json():
    r = refinery("show", "builtin", "--limit", "2")
    assert r.returncode == 0 and r.stdout.splitlines()[0].startswith("calculate(expression: string) - ")
    r = refinery("show", "bfcl:simple_python", "--limit", "3", "--json")
    tools = [json.loads(line) for line in r.stdout.splitlines()]
    assert len(tools) == 3 and all(t["function"]["parameters"]["type"] == "object" for t in tools)

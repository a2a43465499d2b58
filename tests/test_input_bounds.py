"""Resource bombs in input: a clear one-line error, at once, and nothing recorded.

Params and metrics files (YAML or JSON) and the values given to the Python API
are bounded: 100 levels of nesting, no value that contains itself, at most
1,000,000 values once YAML aliases are expanded, and 16 MiB a file.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import cmfgit

BILLION_LAUGHS = 'a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]\n' + "".join(
    f"{chr(98 + i)}: &{chr(98 + i)} [{','.join(['*' + chr(97 + i)] * 9)}]\n" for i in range(8)
)


def objects(repo: Path) -> list[Path]:
    return sorted(p for p in (repo / ".cmf" / "objects").rglob("*") if p.is_file())


def nested_json(levels: int) -> str:
    return '{"a": ' + "[" * levels + "1" + "]" * levels + "}"


@pytest.mark.parametrize(
    "name, content, says",
    [
        ("self.yaml", "a: &x [*x]\n", "nested more than 100 levels deep (or contains itself)"),
        ("laughs.yaml", BILLION_LAUGHS, "holds more than 1,000,000 values"),
        ("deep.json", nested_json(10_000), "nested more than 100 levels deep"),
        ("deep.yaml", "a: " + "[" * 500 + "]" * 500 + "\n", "nested more than 100 levels deep"),
        ("deepmap.json", '{"a": ' * 150 + "1" + "}" * 150, "nested more than 100 levels deep"),
        ("bigint.yaml", "a: " + "1" * 5000 + "\n", "Exceeds the limit (4300 digits) for integer string conversion"),
    ],
)
def test_a_params_file_bomb_is_a_one_line_error(repo: Path, name: str, content: str, says: str) -> None:
    (repo / name).write_text(content)
    before = objects(repo)
    proc = cmfgit(repo, "log-run", "-s", "x", "--params-file", name, "--", "touch", "ran", check=False, timeout=60)
    assert proc.returncode == 1, proc.stderr
    lines = proc.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("cmfgit: error: ") and says in lines[0], proc.stderr
    assert name in lines[0] and "internal error" not in lines[0]
    assert not (repo / "ran").exists()  # refused before the command ran
    assert objects(repo) == before


def test_a_params_file_past_the_size_bound_is_refused(repo: Path) -> None:
    (repo / "big.yaml").write_text("a: " + "x" * (16 * 1024 * 1024) + "\n")
    proc = cmfgit(repo, "log-run", "-s", "x", "--params-file", "big.yaml", "--", "true", check=False, timeout=60)
    assert proc.returncode == 1
    assert proc.stderr.strip() == "cmfgit: error: big.yaml: is larger than 16 MiB: not read as params or metrics"


@pytest.mark.parametrize(
    "name, content, says",
    [
        ("m.json", nested_json(10_000), "nested more than 100 levels deep"),
        ("m.yaml", "a: &x [*x]\n", "nested more than 100 levels deep (or contains itself)"),
        ("laughs.yaml", BILLION_LAUGHS, "holds more than 1,000,000 values"),
    ],
)
def test_a_metrics_file_bomb_is_one_warning_and_the_run_is_kept(repo: Path, name: str, content: str, says: str) -> None:
    """The command has run by the time metrics are read: the run is recorded whole,
    without that file's metrics, and one warning says why (as for any unreadable
    metrics file)."""
    (repo / name).write_text(content)
    proc = cmfgit(repo, "log-run", "-s", "x", "-m", name, "--", "true", check=False, timeout=60)
    assert proc.returncode == 0, proc.stderr
    warnings = [line for line in proc.stderr.splitlines() if "warning" in line]
    assert len(warnings) == 1 and f"metrics not read: {name}: {says}" in warnings[0], proc.stderr
    assert "Traceback" not in proc.stderr and "internal error" not in proc.stderr
    runs = json.loads(cmfgit(repo, "log", "--json").stdout)
    assert len(runs) == 1 and runs[0]["metrics"] == {} and runs[0]["exit_code"] == 0


API_CASES = {
    "self_list": "v = []; v.append(v); cmfgit.run(stage='s', params={'a': v})",
    "self_dict": "v = {}; v['k'] = v; cmfgit.run(stage='s', params={'a': v})",
    "deep_list": "v = [1]\nfor _ in range(10_000): v = [v]\ncmfgit.run(stage='s', params={'a': v})",
    "deep_dict": "v = {'x': 1}\nfor _ in range(10_000): v = {'x': v}\ncmfgit.run(stage='s', params=v)",
    "log_params": "v = []; v.append(v)\nwith cmfgit.run(stage='s') as run:\n    run.log_params({'a': v})",
    "log_metrics": "v = {}; v['k'] = v\nwith cmfgit.run(stage='s') as run:\n    run.log_metrics({'m': v})",
    "output_props": "v = []; v.append(v)\nwith cmfgit.run(stage='s') as run:\n    run.log_output('x', note=v)",
}


@pytest.mark.parametrize("case", sorted(API_CASES))
def test_a_value_that_contains_itself_is_a_usage_error_through_the_api(repo: Path, case: str) -> None:
    script = (
        "import sys, cmfgit\n"
        "from cmfgit.errors import UsageError\n"
        "sys.setrecursionlimit(100_000)\n"  # a bound, not the interpreter's stack, must stop it
        "try:\n" + "".join(f"    {line}\n" for line in API_CASES[case].splitlines()) + "except UsageError as exc:\n"
        "    print('UsageError:', exc)\n"
    )
    before = objects(repo)
    proc = subprocess.run(
        [sys.executable, "-c", script], cwd=repo, capture_output=True, text=True, timeout=60, env=os.environ.copy()
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    lines = proc.stdout.splitlines()
    assert len(lines) == 1 and lines[0].startswith("UsageError: "), proc.stdout[-2000:] + proc.stderr[-2000:]
    assert "nested more than 100 levels deep (or contains itself)" in lines[0]
    assert len(lines[0]) < 200
    if case.startswith(("self_", "deep_")):
        assert objects(repo) == before  # refused before the run began: nothing recorded
    else:
        # refused inside the block: the run is recorded whole, as failed, with the reason
        (run,) = json.loads(cmfgit(repo, "log", "--json").stdout)
        assert run["exit_code"] == 1 and "nested more than 100 levels deep" in run["error"]

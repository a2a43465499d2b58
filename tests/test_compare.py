"""`cmfgit compare RUN RUN...` and its core (cmfgit/compare.py, also the UI's /api/compare):
deltas against the first run, changed flags, --only-changed, Markdown, CSV, JSON, the
terminal's width, untrusted values, and the errors a user can make."""

from __future__ import annotations

import csv
import io
import json
import re
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

from conftest import cmfgit, git, make_repo
from qhelp import execution, put
from test_terminal import on_a_terminal

from cmfgit import canonical
from cmfgit.compare import compare
from cmfgit.query import CmfQuery
from cmfgit.repo import open_repo

NOTE = 'a,b "c"\nd'  # a comma, quotes and a newline: CSV must quote it, the terminal escape it

RUNS = textwrap.dedent(
    """
    import sys
    import cmfgit

    runs = [
        ({"lr_2": 0.1, "lr_10": 10, "opt": "adam", "flag": True, "seed": 7, "note": NOTE},
         {"acc": 0.8, "loss": 0.5}, [0.9, 0.5]),
        ({"lr_2": 0.3, "lr_10": 10, "opt": "sgd", "flag": 1, "seed": 7, "note": "plain"},
         {"acc": 0.85, "loss": 0.25, "f1": 0.7}, [0.8, 0.25]),
        ({"lr_2": 0.3, "lr_10": 12, "opt": "sgd", "flag": True, "seed": 7, "note": "plain"},
         {"acc": 0.9, "loss": 0.125}, [0.7, 0.125]),
    ]
    for i, (params, metrics, losses) in enumerate(runs):
        try:
            with cmfgit.run(pipeline="wine", stage="train", params=params) as run:
                run.log_metrics(metrics)
                for step, loss in enumerate(losses):
                    run.log_metric("loss", loss, step=step)
                if i == 2:
                    raise RuntimeError("diverged")
        except RuntimeError:
            pass
        print(run.id)
    """
)


def three_runs(repo: Path) -> list[str]:
    """Three runs of wine/train made with the Python API, oldest first; the last failed."""
    script = repo / "sweep.py"
    script.write_text(f"NOTE = {NOTE!r}\n" + RUNS)
    proc = subprocess.run([sys.executable, str(script)], cwd=repo, capture_output=True, text=True, check=True)
    script.unlink()
    return proc.stdout.split()


def compared(repo: Path, *args: str) -> Any:
    return json.loads(cmfgit(repo, "compare", *args, "--json").stdout)


def test_json_rows_deltas_and_changed_flags(tmp_path: Path) -> None:
    repo = make_repo(tmp_path / "wine")
    a, b, c = three_runs(repo)
    table = compared(repo, "@3", "@2", "train@1")
    assert [r["id"] for r in table["runs"]] == [a, b, c]
    assert set(table) == {"runs", "params", "metrics", "steps"}
    row_keys = {"id", "pipeline", "stage", "started_at", "duration", "status", "exit_code", "site", "code"}
    assert all(set(r) == row_keys | {"params", "metrics"} for r in table["runs"])
    assert all(set(p) == {"key", "values", "changed", "delta"} for p in table["params"] + table["metrics"])
    shown = json.loads(cmfgit(repo, "show", b, "--json").stdout)
    row = table["runs"][1]
    assert {k: row[k] for k in ("pipeline", "stage", "started_at", "exit_code", "site")} == {
        k: shown[k] for k in ("pipeline", "stage", "started_at", "exit_code", "site")
    }
    assert row["params"] == shown["params"] and row["metrics"] == shown["metrics"]
    assert row["code"] == {k: shown["git"][k] for k in ("commit", "dirty", "tree")}
    assert [r["status"] for r in table["runs"]] == ["ok", "ok", "failed"]
    assert table["runs"][2]["exit_code"] == 1
    assert all(isinstance(r["duration"], float) and r["duration"] >= 0 for r in table["runs"])

    params = {p["key"]: p for p in table["params"]}
    assert [p["key"] for p in table["params"]] == ["flag", "lr_2", "lr_10", "note", "opt", "seed"]  # natural order
    assert params["lr_2"] == {"key": "lr_2", "values": [0.1, 0.3, 0.3], "changed": True, "delta": [None, 0.2, 0.2]}
    assert params["lr_10"] == {"key": "lr_10", "values": [10, 10, 12], "changed": True, "delta": [None, 0, 2]}
    assert params["seed"] == {"key": "seed", "values": [7, 7, 7], "changed": False, "delta": [None, 0, 0]}
    # true and 1 are different values, and booleans are not numbers
    assert params["flag"] == {"key": "flag", "values": [True, 1, True], "changed": True, "delta": [None, None, None]}
    assert params["opt"]["delta"] == [None, None, None] and params["opt"]["changed"]
    metrics = {m["key"]: m for m in table["metrics"]}
    assert [m["key"] for m in table["metrics"]] == ["acc", "f1", "loss"]
    assert metrics["acc"]["delta"] == [None, 0.05, 0.1]
    assert metrics["loss"]["delta"] == [None, -0.25, -0.375]
    assert metrics["f1"] == {"key": "f1", "values": [None, 0.7, None], "changed": True, "delta": [None, None, None]}
    assert table["steps"] == {"loss": {a: [[0, 0.9], [1, 0.5]], b: [[0, 0.8], [1, 0.25]], c: [[0, 0.7], [1, 0.125]]}}

    # --json is the core's dict, and the core takes the same refs
    with CmfQuery(open_repo(repo)) as q:
        assert compare(q, [a[:8], b, "@1"]) == table

    only = compared(repo, a, b, c, "--only-changed")
    assert [p["key"] for p in only["params"]] == ["flag", "lr_2", "lr_10", "note", "opt"]
    assert only["runs"] == table["runs"] and only["steps"] == table["steps"]


def test_terminal_markdown_and_csv(tmp_path: Path) -> None:
    repo = make_repo(tmp_path / "wine")
    a, b, c = three_runs(repo)
    text = cmfgit(repo, "compare", a, b, c).stdout
    lines = {line.split()[0]: line for line in text.splitlines() if line.strip()}
    assert lines["params.lr_2"].split() == ["params.lr_2", "0.1", "0.3", "(+0.2)", "0.3", "(+0.2)"]
    assert lines["params.lr_10"].split() == ["params.lr_10", "10", "10", "12", "(+2)"]  # no "(+0)"
    assert lines["metrics.loss"].split() == ["metrics.loss", "0.5", "0.25", "(-0.25)", "0.125", "(-0.375)"]
    assert lines["metrics.f1"].split() == ["metrics.f1", "-", "0.7", "-"]
    assert lines["status"].split() == ["status", "ok", "ok", "failed"]
    assert lines["params.note"].split()[1:3] == ["a,b", '"c"\\nd']  # the newline shown as an escape
    assert text.index("params.lr_2") < text.index("params.lr_10") < text.index("metrics.acc")
    assert "params.seed" in text and "params.seed" not in cmfgit(repo, "compare", a, b, c, "--only-changed").stdout
    coloured = {
        line.split()[0]: line
        for line in on_a_terminal(repo, ["compare", a, b, c], 120, colours=True).splitlines()
        if line.strip()
    }
    yellow = "\x1b[33m"
    assert yellow in coloured["\x1b[33mparams.lr_2\x1b[0m"]  # changed rows are highlighted
    assert "params.seed" in coloured and "\x1b[" not in coloured["params.seed"]  # the others are not
    assert "\x1b[1;31mfailed" in coloured["\x1b[33mstatus\x1b[0m"]  # failed runs stand out

    md = cmfgit(repo, "compare", a, b, c, "--md").stdout.splitlines()
    assert md[0].startswith("| |") and all(f"`{rid[:7]}" in md[0] for rid in (a, b, c))
    assert md[1] == "|---|---|---|---|"
    assert all(len(re.split(r"(?<!\\)\|", line)) == 6 for line in md)  # 4 cells per row, every row
    assert "| **params.lr\\_2** | 0.1 | 0.3 (+0.2) | 0.3 (+0.2) |" in md
    assert "| params.seed | 7 | 7 | 7 |" in md
    assert '| **params.note** | a,b "c"\\\\nd | plain | plain |' in md
    only = cmfgit(repo, "compare", a, b, c, "--md", "--only-changed").stdout
    assert "params.seed" not in only and "params.lr\\_2" in only

    raw = subprocess.run([sys.executable, "-m", "cmfgit", "compare", a, b, c, "--csv"], cwd=repo, capture_output=True)
    out = raw.stdout.decode()
    assert out.count("\r\n") == len(out.splitlines()) - 1  # CRLF ends each record; the quoted note keeps its \n
    table = list(csv.reader(io.StringIO(out, newline="")))
    assert table[0] == ["section", "key", "changed", a, b, c, f"delta {b}", f"delta {c}"]
    by_key = {(r[0], r[1]): r for r in table[1:]}
    assert all(len(r) == 8 for r in table)
    assert by_key[("params", "note")] == ["params", "note", "true", NOTE, "plain", "plain", "", ""]
    assert by_key[("params", "lr_2")] == ["params", "lr_2", "true", "0.1", "0.3", "0.3", "0.2", "0.2"]
    assert by_key[("params", "seed")][2] == "false"
    assert by_key[("params", "flag")][3:] == ["true", "1", "true", "", ""]
    assert by_key[("metrics", "f1")][3:6] == ["", "0.7", ""]
    assert by_key[("run", "status")][3:6] == ["ok", "ok", "failed"]
    assert by_key[("run", "exit_code")][3:6] == ["0", "0", "1"]
    only_rows = list(csv.reader(io.StringIO(cmfgit(repo, "compare", a, b, c, "--csv", "--only-changed").stdout)))
    assert ("params", "seed") not in {(r[0], r[1]) for r in only_rows}


def test_columns_fit_the_terminal_without_cutting_a_token(tmp_path: Path) -> None:
    repo = make_repo(tmp_path / "wine")
    started = [f"2026-01-0{1 + i}T10:0{i}:00.000000Z" for i in range(6)]
    ids = put(
        repo,
        *(
            execution(
                "train",
                params={"learning_rate": 0.001 * (i + 1), "batch_size": 32 << i, "optimizer": "adamw"},
                metrics={"accuracy": 0.9 + i / 100, "val_loss": 1.5 / (i + 1)},
                started_at=started[i],
            )
            for i in range(6)
        ),
    )
    table = compared(repo, *ids)
    tokens = {"2026-01-01", "10:00:00", "adamw"}
    for row in table["params"] + table["metrics"]:
        for value, delta in zip(row["values"], row["delta"]):
            tokens.add(f"{value:.6g}" if isinstance(value, float) else str(value))
            if delta:
                tokens.add(f"({delta:+.6g})" if isinstance(delta, float) else f"({delta:+d})")
    for columns in (60, 200):
        text = on_a_terminal(repo, ["compare", *ids], columns)
        assert all(len(line) <= columns for line in text.splitlines()), (columns, text)
        words = set(text.split())
        assert tokens <= words, (columns, tokens - words, text)
        shown = [w for w in words if re.fullmatch("[0-9a-f]{7,64}", w) and any(r.startswith(w) for r in ids)]
        assert sorted(next(r for r in ids if r.startswith(w)) for w in shown) == sorted(ids)  # every id, whole
        assert all(len(w) >= 7 for w in shown)
        heads = [line for line in text.splitlines() if ids[0][:7] in line]
        if columns == 200:
            assert len(heads) == 1 and all(r[:7] in heads[0] for r in ids)
        else:  # blocks of runs, each beside the first again
            assert len(heads) >= 2
            assert {r[:7] for r in ids[1:]} <= {w[:7] for line in heads for w in line.split()}

    # a name too long to leave room for two runs beside it: names go on a line of their own
    key = "model.encoder.layers.attention_dropout_rate"
    long = put(
        repo,
        *(execution("train", params={key: 0.1 * i}, started_at=f"2026-02-0{i}T00:00:00.000000Z") for i in (1, 2, 3)),
    )
    text = on_a_terminal(repo, ["compare", *long], 60)
    assert all(len(line) <= 60 for line in text.splitlines()), text
    assert f"params.{key}" in text.splitlines()
    assert "0.1" in text.split() and "(+0.1)" in text.split() and "(+0.2)" in text.split(), text
    assert len([line for line in text.splitlines() if long[0][:7] in line]) == 1, text  # still one block


def test_values_from_records_are_not_markup_nor_terminal_controls(tmp_path: Path) -> None:
    repo = make_repo(tmp_path / "wine")
    evil = "\x1b[31mred\x07[/] \u202eabc"
    ids = put(
        repo,
        execution("[bold red]stage[/]", params={"x": evil, "[i]k": "a|b"}, started_at="2026-01-01T00:00:00.000000Z"),
        execution("[bold red]stage[/]", params={"x": "ok", "[i]k": "c"}, started_at="2026-01-02T00:00:00.000000Z"),
    )
    plain = cmfgit(repo, "compare", *ids).stdout
    assert not re.search(r"[\x00-\x09\x0b-\x1f\x7f\u202e]", plain), repr(plain)
    assert "[bold red]stage[/]" in plain and "params.[i]k" in plain
    assert "\\x1b[31mred\\x07[/]" in plain and "\\u202eabc" in plain
    shown = on_a_terminal(repo, ["compare", *ids], 120)
    assert "[bold red]stage[/]" in shown and "\\x1b[31mred\\x07[/]" in shown and "\x07" not in shown
    md = cmfgit(repo, "compare", *ids, "--md").stdout
    assert not re.search(r"[\x00-\x09\x0b-\x1f\x7f\u202e]", md)
    assert "a\\|b" in md and "\\[bold red\\]stage\\[/\\]" in md
    assert all(len(re.split(r"(?<!\\)\|", line)) == 5 for line in md.splitlines())
    back = {(r[0], r[1]): r for r in csv.reader(io.StringIO(cmfgit(repo, "compare", *ids, "--csv").stdout))}
    assert back[("params", "[i]k")][3:5] == ["a|b", "c"]
    assert back[("params", "x")][3] == "\\x1b[31mred\\x07[/] \\u202eabc"
    assert json.loads(cmfgit(repo, "compare", *ids, "--json").stdout)["params"][1]["values"][0] == evil


def _colliding(repo: Path) -> tuple[str, list[str]]:
    """Two runs whose ids share their first 4 hex digits (stored), and that prefix."""
    seen: dict[str, dict[str, Any]] = {}
    for i in range(5000):
        record = execution("train", params={"i": i}, started_at=f"2026-02-01T00:00:{i % 60:02d}.000000Z")
        _, rid = canonical.encode(record)
        if rid[:4] in seen:
            return rid[:4], put(repo, seen[rid[:4]], record)
        seen[rid[:4]] = record
    raise AssertionError("no collision in 5000 ids")


def test_user_errors_are_one_line_with_a_non_zero_exit(tmp_path: Path) -> None:
    repo = make_repo(tmp_path / "wine")
    prefix, (x, y) = _colliding(repo)
    tagged = json.loads(cmfgit(repo, "tag", x, "stage=best", "--json").stdout)["annotation"]
    absent = next(p for p in (f"{n:04x}" for n in range(65536)) if not (x.startswith(p) or y.startswith(p)))
    cases = {
        ("@1",): (2, "compare needs at least 2 runs, got 1"),
        (x, x[:8].upper()): (2, f"'{x}' and '{x[:8].upper()}' are the same run ({x[:12]}); name each run once"),
        ("@1", "@1"): (2, "are the same run"),
        ("@1", absent): (1, f"no record matches '{absent}'"),
        ("@1", prefix): (1, f"prefix '{prefix}' is ambiguous"),
        ("@1", "zz"): (2, "'zz' is not a record id"),
        ("@1", "@9"): (1, "'@9': there are only 2 execution(s)"),
        (x, tagged): (2, f"is record {tagged[:12]}, which is not an execution"),
        (x, y, "--md", "--csv"): (2, "choose one output format: --md or --csv"),
        (): (2, "Missing argument"),
        (x, y, "--ref", "main", "--global"): (2, "choose one scope"),
    }
    for args, (code, message) in cases.items():
        proc = cmfgit(repo, "compare", *args, check=False)
        assert proc.returncode == code, (args, proc.returncode, proc.stderr)
        assert message in proc.stderr, (args, proc.stderr)
        assert "Traceback" not in proc.stderr and len(proc.stderr.strip().splitlines()) == 1, (args, proc.stderr)
        assert proc.stdout == "", (args, proc.stdout)


def test_scopes_as_the_other_read_commands(tmp_path: Path) -> None:
    repo = make_repo(tmp_path / "wine")
    a, b, c = three_runs(repo)
    cmfgit(repo, "log-run", "-s", "extra", "--", "true")  # in the checkout only
    git(repo, "checkout", "-q", "-b", "side")
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "-m", "records")
    git(repo, "checkout", "-q", "main")
    on_side = compared(repo, "--ref", "side", "train@3", "train@1")
    assert [r["id"] for r in on_side["runs"]] == [a, c]
    gone = cmfgit(repo, "compare", "--ref", "main", a, b, check=False)
    assert gone.returncode == 1 and f"no record matches '{a}'" in gone.stderr, gone.stderr


def test_deltas_and_status_at_the_edges() -> None:
    from cmfgit.compare import deltas, status, value_rows

    assert deltas([0.3, 0.1, 0.3]) == [None, -0.2, 0.0]
    assert deltas([0.5, 10**400]) == [None, None]  # no float holds that difference
    assert deltas([1e308, -1e308]) == [None, None]  # nor this one (infinite)
    assert deltas([10**400, 10**400 + 1]) == [None, 1]  # ints are exact
    assert deltas([True, 1, "NaN", None]) == [None, None, None, None]
    row = value_rows([{"a": 1}, {"a": 1.0}, {"a": True}, {}])[0]
    assert row == {"key": "a", "values": [1, 1.0, True, None], "changed": True, "delta": [None, 0.0, None, None]}
    assert not value_rows([{"a": 1}, {"a": 1.0}])[0]["changed"]  # the same number
    assert value_rows([{"a": None}, {}])[0]["changed"]  # a null value is not a missing key
    assert [r["key"] for r in value_rows([{"p_10": 1, "p_2": 1}, {"P_1": 0}])] == ["P_1", "p_2", "p_10"]
    assert status({"exit_code": 0, "ended_at": "x"}) == "ok"
    assert status({"exit_code": None, "ended_at": None}) == "running"
    assert status({"exit_code": None, "ended_at": "x"}) == "failed"  # killed: ended without an exit code
    assert status({"exit_code": -9, "ended_at": "x"}) == "failed"

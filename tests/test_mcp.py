"""``cmfgit mcp``: a real server subprocess, driven by the MCP SDK's own stdio client."""

from __future__ import annotations

import json
import os
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import anyio
import pytest
from conftest import cmfgit, make_repo
from uihelp import CLEAN_2, MODEL, MODEL_BAD, RAW, lineage_repo

mcp = pytest.importorskip("mcp")
from mcp import ClientSession, StdioServerParameters  # noqa: E402
from mcp.client.stdio import stdio_client  # noqa: E402

READ_TOOLS = {"pipelines", "search_runs", "show_run", "lineage", "compare_runs", "artifacts", "artifact", "tags"}


@pytest.fixture
def wine(tmp_path: Path) -> tuple[Path, dict[str, str]]:
    root = make_repo(tmp_path / "wine")
    return root, lineage_repo(root)


@asynccontextmanager
async def session(root: Path, *args: str, cwd: Path | None = None) -> AsyncIterator[ClientSession]:
    # The whole environment (the test's HOME, git identity and PYTHONPATH), not the SDK's safe few.
    params = StdioServerParameters(
        command=sys.executable, args=["-m", "cmfgit", "mcp", *args], env=dict(os.environ), cwd=str(cwd or root)
    )
    with open(root.parent / "mcp-stderr.log", "w") as errlog:
        async with stdio_client(params, errlog=errlog) as (read, write):
            async with ClientSession(read, write) as s:
                await s.initialize()
                yield s


def is_error(result: Any) -> bool:
    return bool(getattr(result, "is_error", None) or getattr(result, "isError", None))


def text(result: Any) -> str:
    return "".join(getattr(c, "text", "") for c in result.content)


async def call(s: ClientSession, name: str, **arguments: Any) -> Any:
    result = await s.call_tool(name, arguments)
    assert not is_error(result), text(result)
    return json.loads(text(result))


def test_tools_search_show_and_lineage(wine: tuple[Path, dict[str, str]]) -> None:
    root, ids = wine

    async def talk() -> dict[str, Any]:
        async with session(root) as s:
            listed = await s.list_tools()
            return {
                "tools": {t.name: t for t in listed.tools},
                "pipelines": await call(s, "pipelines"),
                "small": await call(s, "search_runs", where="params.lr < 0.05"),
                "page": await call(s, "search_runs", where='stage == "train"', sort="-metrics.acc", limit=2),
                "run": await call(s, "show_run", id=ids["train_a"][:12]),
                "up": await call(s, "lineage", target="models/model.pkl", direction="up"),
                "down": await call(s, "lineage", target=ids["prepare2"], direction="down", depth=1),
                "compare": await call(s, "compare_runs", ids=[ids["train_a"], ids["train_b"]]),
                "artifact": await call(s, "artifact", hash=CLEAN_2["hash"][:20]),
                "raw": text(await s.call_tool("search_runs", {"where": "params.lr < 0.05", "limit": 1})),
            }

    got = anyio.run(talk)
    assert set(got["tools"]) == READ_TOOLS  # no tag without --allow-tag
    search = got["tools"]["search_runs"]
    schema = getattr(search, "input_schema", None) or search.inputSchema  # mcp 2 / mcp 1
    assert {"where", "sort", "offset", "limit"} <= set(schema["properties"])
    assert "where" in (got["tools"]["search_runs"].description or "")
    assert [p["name"] for p in got["pipelines"]["pipelines"]] == ["wine"]
    stages = {s["name"]: s["runs"] for s in got["pipelines"]["pipelines"][0]["stages"]}
    assert stages["train"] == 4
    # The UI's payloads: total, rows, paging.
    assert got["small"]["total"] == 2
    assert [r["id"] for r in got["small"]["rows"]] == [ids["train_c"], ids["train_b"]]
    assert got["page"]["total"] == 4 and (got["page"]["offset"], got["page"]["limit"]) == (0, 2)
    assert [r["id"] for r in got["page"]["rows"]] == [ids["train_b"], ids["train_c"]]
    assert got["run"]["run"]["id"] == ids["train_a"] and got["run"]["run"]["stage"] == "train"
    # Lineage up from the model: every version of the path, the training runs and what they read.
    up = {n["id"]: n for n in got["up"]["nodes"]}
    assert sorted(got["up"]["roots"]) == sorted([MODEL["hash"], MODEL_BAD["hash"]])
    assert up[ids["train_failed"]]["status"] == "failed"
    assert up[CLEAN_2["hash"]]["path"] == "data/clean.csv"
    assert (CLEAN_2["hash"], ids["train_a"], "input") in {
        (e["source"], e["target"], e["role"]) for e in got["up"]["edges"]
    }
    # And down from prepare2: its output and the runs that read it, not the earlier prepare.
    down = {n["id"]: n for n in got["down"]["nodes"]}
    assert got["down"]["roots"] == [ids["prepare2"]]
    assert CLEAN_2["hash"] in down and ids["train_a"] in down and ids["prepare1"] not in down
    assert [r["id"] for r in got["compare"]["runs"]] == [ids["train_a"], ids["train_b"]]
    assert got["artifact"]["artifact"]["hash"] == CLEAN_2["hash"]
    assert ids["prepare2"] in {u["execution"] for u in got["artifact"]["used_by"]}
    assert "\n" not in got["raw"] and '","' in got["raw"]  # compact JSON


def test_errors_are_tool_errors(wine: tuple[Path, dict[str, str]]) -> None:
    root, _ids = wine

    async def talk() -> list[Any]:
        async with session(root) as s:
            return [
                await s.call_tool("search_runs", {"where": "params.lr > "}),
                await s.call_tool("show_run", {"id": "ffffffffffff"}),
                await s.call_tool("tag", {"target": "models/model.pkl", "set": {"status": "x"}}),
                await s.call_tool("search_runs", {"limit": 1}),  # the server still answers
            ]

    bad_where, unknown, tag, after = anyio.run(talk)
    assert is_error(bad_where)
    lines = text(bad_where).splitlines()
    assert "--where: expected a value" in lines[0] and lines[1] == "  params.lr > " and lines[2].endswith("^")
    assert "Traceback" not in text(bad_where)
    assert is_error(unknown) and "ffffffffffff" in text(unknown) and "\n" not in text(unknown)
    assert is_error(tag) and "tag" in text(tag)  # not offered without --allow-tag
    assert not is_error(after) and json.loads(text(after))["total"] == 7


def test_tag_with_allow_tag(wine: tuple[Path, dict[str, str]]) -> None:
    root, ids = wine

    async def talk() -> tuple[set[str], Any, Any, Any, Any]:
        # Started elsewhere, as clients do: --repo names the repository, and paths are its own.
        async with session(root, "--allow-tag", "--repo", str(root), cwd=root.parent) as s:
            names = {t.name for t in (await s.list_tools()).tools}
            tagged = await call(s, "tag", target=ids["train_b"][:12], set={"status": "production"})
            model = await call(s, "tag", target="data/raw.csv", set={"stage": "x"})
            found = await call(s, "search_runs", where='tags.status == "production"')
            listed = await call(s, "tags", target=ids["train_b"][:12])
            return names, tagged, found, listed, model

    names, tagged, found, listed, model = anyio.run(talk)
    assert names == READ_TOOLS | {"tag"}
    assert tagged["target"] == ids["train_b"] and tagged["tags"] == {"status": "production"} and tagged["annotation"]
    assert [r["id"] for r in found["rows"]] == [ids["train_b"]]
    assert listed["tags"] == {"status": "production"}
    assert model["target"] == RAW["hash"] and model["tags"] == {"stage": "x"}
    shown = json.loads(cmfgit(root, "tag", ids["train_b"][:12], "--json").stdout)
    assert shown["tags"] == {"status": "production"}

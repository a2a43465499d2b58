"""An un-ignored folder of many untracked files (a venv/, a data dump) next to the code.

``cmfgit log-run -q -- true`` in a repository whose working tree holds
20,000 empty untracked files under ``venv/`` (5,000 with ``--quick``), with
the default settings (untracked files counted, not captured) and with
``snapshot.untracked`` on (at most 1,000 of them captured), interleaved with
log-run in the same repository without the folder and with ``git status
--untracked-files=all`` (git's own listing of the folder: the floor of
counting it). Before this work (tree ed9a2b3) every file went into the
snapshot: 20,000 empty files cost 13.4 s per log-run in issue 9, 16.6 s
(median of 5, load ~6) on this machine.
"""

from __future__ import annotations

import json
import statistics
from pathlib import Path
from typing import Any

import common

NAME = "untracked"
TITLE = "`cmfgit log-run -- true` next to an un-ignored folder of untracked files"


def run(ctx: common.Context) -> dict[str, Any]:
    files = 5_000 if ctx.quick else 20_000
    repeats = 5 if ctx.quick else 15
    bare = ctx.make_repo("untracked-none")
    default = ctx.make_repo("untracked-off")
    capture = ctx.make_repo("untracked-on")
    ctx.run(["git", "config", "cmfgit.snapshot.untracked", "true"], capture)
    for repo in (default, capture):
        venv = repo / "venv" / "lib"
        venv.mkdir(parents=True)
        for i in range(files):
            (venv / f"m{i:05}.py").touch()

    # One interleaved series across the three repositories (a busy spell hits all
    # alike): each command changes directory in a shell that then execs it.
    def there(repo: Path, *argv: str) -> list[str]:
        return ["sh", "-c", 'cd "$0" && exec "$@"', str(repo), *argv]

    lr = [ctx.cmfgit, "log-run", "-q", "-s", "s", "--", "true"]
    status = ["git", "--no-optional-locks", "status", "--porcelain=v2", "-z", "--untracked-files=all"]
    commands = {
        "no folder": there(bare, *lr),
        "default": there(default, *lr),
        "untracked on": there(capture, *lr),
        "git status": there(default, *status),
    }
    samples = common.time_commands(ctx, commands, repeats, bare)
    # What the records say: every file counted, none captured by default, 1,000 with capture on.
    said = {}
    for label, repo in (("default", default), ("untracked on", capture)):
        (last,) = json.loads(ctx.run([ctx.cmfgit, "log", "--json", "-n", "1"], repo).stdout)
        tree = last["git"]["tree"]
        listed = ctx.run(["git", "ls-tree", "-r", "--name-only", tree], repo).stdout.split()
        said[label] = {"skipped": last["git"].get("untracked_skipped", 0), "in_tree": len(listed)}
    if said["default"]["skipped"] != files or said["untracked on"]["skipped"] != files - 1000:
        raise RuntimeError(f"unexpected snapshot: {said}")
    median = {name: statistics.median(xs) for name, xs in samples.items()}
    base = median["no folder"]
    rows = [
        common.row(
            f"log-run, {files:,} untracked files, default (counted, not captured), median of {repeats}",
            common.ms(median["default"]),
            "ms",
            peer=common.ms(base),
            peer_name="log-run without the folder",
            note=f"+{common.ms(median['default'] - base):.0f} ms; git status -uall alone: "
            f"{common.ms(median['git status']):.0f} ms",
        ),
        common.row(
            f"log-run, {files:,} untracked files, `snapshot.untracked` on (1,000 captured)",
            common.ms(median["untracked on"]),
            "ms",
            peer=common.ms(base),
            peer_name="log-run without the folder",
        ),
    ]
    return {
        "rows": rows,
        "raw": {"samples_s": samples, "stats_s": {k: common.stats(v) for k, v in samples.items()}, "said": said},
        "notes": [
            "records: "
            + "; ".join(f"{k} skipped {v['skipped']:,} (tree of {v['in_tree']} files)" for k, v in said.items())
        ],
    }

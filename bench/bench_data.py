"""Artifact data to a local directory remote: push, pull and a no-op push.

Three shapes of data, each pushed from one repository and pulled into a
fresh clone at another path, side by side in the same run with ``dvc push``
/ ``dvc pull`` (each tool to its own local directory remote) and with
``cp`` (the copy floor, file or ``cp -r`` directory, same disk; for the
big file also ``cp`` then ``sync FILE``, since cmfgit makes what it
uploads to a directory remote durable before it says so (an fsync for a
few objects, a syncfs per batch for many) and cp does not; DVC does not
either):

- one big file (1 GiB; 256 MiB with ``--quick``);
- 10,000 × 4 KiB files in one directory (2,000 with ``--quick``);
- a no-op push when the remote already has every object (the small-files
  directory: 10,001 objects with its manifest).

cmfgit: the data is recorded as the output of ``cmfgit log-run -o PATH --
true`` (which also puts it into the cache, untimed, as ``dvc add`` does for
DVC), the records and ``.cmf/config.yaml`` with the remote are committed,
then ``cmfgit artifact push`` is timed; a ``git clone`` of the repository
then times ``cmfgit artifact pull`` (fetch into its cache, verified, and
place at the recorded paths). DVC: ``dvc add`` (untimed), ``dvc push``, a
``git clone`` and ``dvc pull`` (fetch into its cache and checkout). Placed
bytes are compared with the originals. The page cache is warm for everyone
(the data was just written); the remotes are on the same ext4 disk.
"""

from __future__ import annotations

import filecmp
import json
import os
import resource
import shutil
import statistics
import time
from pathlib import Path
from typing import Any

import common
import sshserver

NAME = "data"
TITLE = "artifact push / pull to a local directory remote, and a no-op push, vs dvc push / pull and cp"
KIB = 4


_CPU: dict[str, float] = {}  # the CPU time (user + sys) of the last timed command, by its label


def _children_cpu() -> float:
    used = resource.getrusage(resource.RUSAGE_CHILDREN)
    return used.ru_utime + used.ru_stime


def _timed(
    ctx: common.Context, argv: list[str], cwd: Path, env: dict[str, str] | None = None, cpu: str = ""
) -> tuple[float, str]:
    """Wall time and stdout of a command; its CPU time (it and its children, user + sys)
    goes to ``_CPU[cpu]``: on a busy machine wall time is mostly waiting for a core."""
    c = _children_cpu()
    t = time.perf_counter()
    proc = ctx.run(argv, cwd, env=env or {})
    wall = time.perf_counter() - t
    if cpu:
        _CPU[cpu] = _children_cpu() - c
    return wall, proc.stdout


_LATER: list[Path] = []  # directories of many small files, removed at the end of the run


def _remove(shape: str, *dirs: Path) -> None:
    """Remove a row's directories; those of the small-files shape only at the end: on an
    ext4 without a journal (this machine's), every file created soon after many were
    deleted scans the freed inodes (``recently_deleted``), which would charge one tool's
    clean-up to the next tool's run."""
    if shape == "small":
        _LATER.extend(dirs)
        return
    for d in dirs:
        shutil.rmtree(d, ignore_errors=True)


def _write_data(root: Path, big_mib: int, files: int) -> None:
    chunk = os.urandom(1 << 20)
    with open(root / "big.bin", "wb") as fh:
        for i in range(big_mib):
            # distinct chunks (no dedup tricks) at the cost of one urandom MiB per 64
            if i % 64 == 0:
                chunk = os.urandom(1 << 20)
            fh.write(chunk[i % 64 :] + chunk[: i % 64])
    small = root / "small"
    small.mkdir()
    for i in range(files):
        with open(small / f"f{i:06d}.bin", "wb") as fh:
            fh.write(os.urandom(KIB << 10))


def _same_tree(a: Path, b: Path) -> bool:
    names = sorted(os.listdir(a))
    if names != sorted(os.listdir(b)):
        return False
    _, mismatch, errors = filecmp.cmpfiles(a, b, names, shallow=False)
    return not mismatch and not errors


def _cmfgit(ctx: common.Context, src: Path, shape: str, ssh: str | None = None) -> dict[str, Any]:
    """cmfgit: record, push (timed), no-op push (timed), clone and pull (timed);
    to a directory remote, or over SFTP when ``ssh`` (``user@host:port``) is given."""
    repo = ctx.make_repo(f"cmf-{shape}")
    remote = ctx.mkdtemp(f"cmf-remote-{shape}-")
    url = f"ssh://{ssh}{remote}" if ssh else str(remote)
    path = "big.bin" if shape == "big" else "small"
    if shape == "big":
        shutil.copyfile(src / "big.bin", repo / "big.bin")
    else:
        shutil.copytree(src / "small", repo / "small")
    (repo / ".gitignore").write_text("big.bin\nsmall/\n")
    ctx.run([ctx.cmfgit, "log-run", "-q", "-s", shape, "-o", path, "--", "true"], repo)
    ctx.run([ctx.cmfgit, "remote", "add", "store", url, "--default"], repo)
    ctx.run(["git", "add", "-A"], repo)
    ctx.run(["git", "commit", "-q", "-m", "data"], repo)
    push_s, out = _timed(ctx, [ctx.cmfgit, "artifact", "push", "--json"], repo, cpu="push")
    pushed = json.loads(out)
    noop, noop_cpu = [], []
    for _ in range(3 if ctx.quick else 5):
        t, out = _timed(ctx, [ctx.cmfgit, "artifact", "push", "--json"], repo, cpu="noop")
        noop.append(t)
        noop_cpu.append(_CPU["noop"])
    noop_out = json.loads(out)
    clone = ctx.mkdtemp(f"cmf-clone-{shape}-") / "c"
    ctx.run(["git", "clone", "-q", str(repo), str(clone)], ctx.tmp)
    pull_s, out = _timed(ctx, [ctx.cmfgit, "artifact", "pull", "--json"], clone, cpu="pull")
    pulled = json.loads(out)
    ok = (
        filecmp.cmp(src / "big.bin", clone / "big.bin", shallow=False)
        if shape == "big"
        else _same_tree(src / "small", clone / "small")
    )
    if not ok:
        raise RuntimeError(f"cmfgit artifact pull placed different bytes ({shape})")
    _remove(shape, repo / ".git" / "cmf" / "cache", clone.parent, remote)
    return {
        "push_s": push_s,
        "noop_s": noop,
        "pull_s": pull_s,
        "push_cpu_s": _CPU["push"],
        "pull_cpu_s": _CPU["pull"],
        "noop_cpu_s": noop_cpu,
        "loadavg": os.getloadavg()[0],
        "push": pushed,
        "noop": noop_out,
        "pull": pulled,
    }


def _dvc(ctx: common.Context, dvc: str, src: Path, shape: str, ssh: str | None = None) -> dict[str, Any]:
    """DVC: dvc add (untimed), dvc push (timed), no-op push (timed), clone and dvc pull (timed)."""
    env = {"DVC_NO_ANALYTICS": "1"}
    repo = ctx.mkdtemp(f"dvc-{shape}-") / "r"
    repo.mkdir()
    remote = ctx.mkdtemp(f"dvc-remote-{shape}-")

    def init(where: Path) -> None:
        ctx.run([dvc, "config", "--local", "core.analytics", "false"], where, env=env)
        ctx.run([dvc, "config", "--local", "core.check_update", "false"], where, env=env)
        ctx.run([dvc, "config", "--local", "core.site_cache_dir", str(where / ".site_cache")], where, env=env)

    ctx.run(["git", "init", "-q"], repo)
    ctx.run([dvc, "init", "-q"], repo, env=env)
    init(repo)
    ctx.run([dvc, "remote", "add", "-d", "store", f"ssh://{ssh}{remote}" if ssh else str(remote)], repo, env=env)
    path = "big.bin" if shape == "big" else "small"
    if shape == "big":
        shutil.copyfile(src / "big.bin", repo / "big.bin")
    else:
        shutil.copytree(src / "small", repo / "small")
    ctx.run([dvc, "add", "-q", path], repo, env=env)
    ctx.run(["git", "add", "-A"], repo)
    ctx.run(["git", "commit", "-q", "-m", "data"], repo)
    push_s, _ = _timed(ctx, [dvc, "push", "-q"], repo, env, cpu="push")
    noop, noop_cpu = [], []
    for _ in range(3 if ctx.quick else 5):
        t, _ = _timed(ctx, [dvc, "push", "-q"], repo, env, cpu="noop")
        noop.append(t)
        noop_cpu.append(_CPU["noop"])
    clone = ctx.mkdtemp(f"dvc-clone-{shape}-") / "c"
    ctx.run(["git", "clone", "-q", str(repo), str(clone)], ctx.tmp)
    init(clone)
    pull_s, _ = _timed(ctx, [dvc, "pull", "-q"], clone, env, cpu="pull")
    ok = (
        filecmp.cmp(src / "big.bin", clone / "big.bin", shallow=False)
        if shape == "big"
        else _same_tree(src / "small", clone / "small")
    )
    if not ok:
        raise RuntimeError(f"dvc pull placed different bytes ({shape})")
    _remove(shape, repo.parent, clone.parent, remote)
    return {
        "push_s": push_s,
        "noop_s": noop,
        "pull_s": pull_s,
        "push_cpu_s": _CPU["push"],
        "pull_cpu_s": _CPU["pull"],
        "noop_cpu_s": noop_cpu,
        "loadavg": os.getloadavg()[0],
    }


def _cp(ctx: common.Context, src: Path, shape: str) -> dict[str, Any]:
    """cp to a remote directory (push) and back to a fresh directory (pull)."""
    remote, back = ctx.mkdtemp(f"cp-remote-{shape}-"), ctx.mkdtemp(f"cp-back-{shape}-")
    what = "big.bin" if shape == "big" else "small"
    flag = [] if shape == "big" else ["-r"]
    push_s, _ = _timed(ctx, ["cp", *flag, str(src / what), str(remote / what)], ctx.tmp)
    pull_s, _ = _timed(ctx, ["cp", *flag, str(remote / what), str(back / what)], ctx.tmp)
    sync_s = None
    if shape == "big":  # cp, then the copy flushed to the disk (cmfgit's uploads are durable)
        target = str(remote / "synced.bin")
        sync_s, _ = _timed(ctx, ["sh", "-c", 'cp "$0" "$1" && sync "$1"', str(src / what), target], ctx.tmp)
    _remove(shape, remote, back)
    return {"push_s": push_s, "pull_s": pull_s, "push_sync_s": sync_s}


SFTP_MIB, SFTP_FILES = 256, 1_000  # smaller: SFTP to 127.0.0.1 moves bytes at ssh's pace, objects one by one


def _sftp(ctx: common.Context, src: Path | None, dvc: str | None) -> tuple[dict[str, Any], list[dict[str, Any]], str]:
    """The same shapes over SFTP to an sshd on 127.0.0.1 (cmfgit; DVC when it has dvc-ssh):
    (raw results, rows, a note); no rows, and the note says why, when it cannot run here."""
    import subprocess

    why = sshserver.why_not()
    if why is None and subprocess.run([ctx.python, "-c", "import sshfs"], capture_output=True).returncode:
        why = "the bench venv has no sshfs (pip install 'cmfgit[ssh]' into it)"
    if why:
        return {}, [], f"SFTP rows skipped: {why}."
    dvc_ssh = bool(dvc) and "ssh" in ctx.run([str(dvc), "version"], ctx.tmp).stdout.split("Supports:")[-1]
    if src is None:
        src = ctx.mkdtemp("sftp-src-")
        _write_data(src, SFTP_MIB, SFTP_FILES)
    raw: dict[str, Any] = {}
    with sshserver.sshd(ctx.tmp / "sshd", Path(ctx.env["HOME"])) as where:
        for shape in ("big", "small"):
            raw[f"cmfgit_{shape}"] = _cmfgit(ctx, src, shape, ssh=where)
            if dvc_ssh:
                raw[f"dvc_{shape}"] = _dvc(ctx, str(dvc), src, shape, ssh=where)
    mb = SFTP_MIB * (1 << 20) / 1e6
    rows = []
    for shape, what in (("big", f"one {SFTP_MIB} MiB file"), ("small", f"{SFTP_FILES:,} × {KIB} KiB files")):
        mine, theirs = raw[f"cmfgit_{shape}"], raw.get(f"dvc_{shape}")
        for step in ("push", "pull"):
            note = f"{mb / mine[f'{step}_s']:.0f} MB/s" if shape == "big" else ""
            rows.append(
                common.row(
                    f"SFTP to 127.0.0.1: {step} {what}",
                    round(mine[f"{step}_s"], 3),
                    "s",
                    peer=round(theirs[f"{step}_s"], 3) if theirs else None,
                    peer_name=f"`dvc {step}` (dvc-ssh)" if theirs else "",
                    note=note,
                )
            )
    small, dsmall = raw["cmfgit_small"], raw.get("dvc_small")
    rows.append(
        common.row(
            f"SFTP to 127.0.0.1: no-op push, {SFTP_FILES + 1:,} objects, median of {len(small['noop_s'])}",
            round(statistics.median(small["noop_s"]), 3),
            "s",
            peer=round(statistics.median(dsmall["noop_s"]), 3) if dsmall else None,
            peer_name="`dvc push` (nothing to do)" if dsmall else "",
        )
    )
    note = "SFTP: OpenSSH's sshd on 127.0.0.1 (a throwaway key), cmfgit through sshfs/asyncssh" + (
        "; DVC through dvc-ssh." if dvc_ssh else "; DVC's column is empty: this DVC has no dvc-ssh."
    )
    return raw, rows, note


def _cpu(mine: dict[str, Any], theirs: dict[str, Any] | None, step: str) -> str:
    """CPU seconds (user + sys) of cmfgit's step, and DVC's beside it."""
    text = f"{mine[f'{step}_cpu_s']:.2f} s"
    return text + (f" vs dvc {theirs[f'{step}_cpu_s']:.2f} s" if theirs else "")


def run(ctx: common.Context) -> dict[str, Any]:
    if os.environ.get("CMFGIT_BENCH_DATA_ONLY") == "sftp":  # the SFTP rows alone
        raw, rows, note = _sftp(ctx, None, ctx.peer("dvc"))
        return {"rows": rows, "raw": {"sftp": raw}, "notes": [note]}
    big_mib = 256 if ctx.quick else 1024
    files = 2_000 if ctx.quick else 10_000
    src = ctx.mkdtemp("src-")
    _write_data(src, big_mib, files)
    dvc = ctx.peer("dvc")
    raw: dict[str, Any] = {"big_mib": big_mib, "files": files, "kib": KIB}
    for shape in ("big", "small"):
        # cp first and last around the tools, so a busy spell shows as a cp spread
        raw[f"cp_{shape}"] = [_cp(ctx, src, shape)]
        raw[f"cmfgit_{shape}"] = _cmfgit(ctx, src, shape)
        if dvc:
            raw[f"dvc_{shape}"] = _dvc(ctx, dvc, src, shape)
        raw[f"cp_{shape}"].append(_cp(ctx, src, shape))
    if dvc:
        raw["dvc_version"] = ctx.run([dvc, "--version"], ctx.tmp).stdout.strip()
    for d in _LATER:
        shutil.rmtree(d, ignore_errors=True)
    _LATER.clear()

    mb = big_mib * (1 << 20) / 1e6
    cmf_b, cmf_s = raw["cmfgit_big"], raw["cmfgit_small"]
    dvc_b, dvc_s = raw.get("dvc_big"), raw.get("dvc_small")
    cp_push = min(x["push_s"] for x in raw["cp_big"])
    cp_pull = min(x["pull_s"] for x in raw["cp_big"])
    cps_push = min(x["push_s"] for x in raw["cp_small"])
    cps_pull = min(x["pull_s"] for x in raw["cp_small"])
    noop = statistics.median(cmf_s["noop_s"])
    dvc_name = "`dvc push`" if dvc else ""
    full = not ctx.quick
    rows = [
        common.row(
            f"push one {big_mib} MiB file, throughput",
            round(mb / cmf_b["push_s"], 1),
            "MB/s",
            peer=round(mb / cp_push, 1),
            peer_name="`cp` (best of 2)",
            higher_is_better=True,
            target="≥ 80% of cp" if full else "",
            met=(cmf_b["push_s"] and cp_push / cmf_b["push_s"] >= 0.8) if full else None,
            note=f"{cmf_b['push_s']:.2f} s, CPU {_cpu(cmf_b, dvc_b, 'push')}"
            + (f"; dvc push {dvc_b['push_s']:.2f} s" if dvc_b else ""),
        ),
        common.row(
            f"pull one {big_mib} MiB file (fetch, verify, place), throughput",
            round(mb / cmf_b["pull_s"], 1),
            "MB/s",
            peer=round(mb / cp_pull, 1),
            peer_name="`cp` (best of 2)",
            higher_is_better=True,
            target="≥ 80% of cp" if full else "",
            met=(cp_pull / cmf_b["pull_s"] >= 0.8) if full else None,
            note=f"{cmf_b['pull_s']:.2f} s, CPU {_cpu(cmf_b, dvc_b, 'pull')}"
            + (f"; dvc pull {dvc_b['pull_s']:.2f} s" if dvc_b else ""),
        ),
    ]
    cp_sync = min(x["push_sync_s"] for x in raw["cp_big"])
    rows.append(
        common.row(
            f"push one {big_mib} MiB file, throughput, against a durable copy",
            round(mb / cmf_b["push_s"], 1),
            "MB/s",
            peer=round(mb / cp_sync, 1),
            peer_name="`cp` then `sync FILE` (best of 2)",
            higher_is_better=True,
        )
    )
    if dvc_b:
        rows += [
            common.row(
                f"push one {big_mib} MiB file",
                round(cmf_b["push_s"], 3),
                "s",
                peer=round(dvc_b["push_s"], 3),
                peer_name=dvc_name,
            ),
            common.row(
                f"pull one {big_mib} MiB file",
                round(cmf_b["pull_s"], 3),
                "s",
                peer=round(dvc_b["pull_s"], 3),
                peer_name="`dvc pull`",
            ),
        ]
    small_met = {k: (dvc_s[f"{k}_s"] / cmf_s[f"{k}_s"] >= 10) if (dvc_s and full) else None for k in ("push", "pull")}
    rows += [
        common.row(
            f"push {files:,} × {KIB} KiB files",
            round(cmf_s["push_s"], 3),
            "s",
            peer=round(dvc_s["push_s"], 3) if dvc_s else None,
            peer_name=dvc_name,
            target="≥ 10× faster than dvc" if full else "",
            met=small_met["push"],
            note=f"cp -r {cps_push:.2f} s; CPU {_cpu(cmf_s, dvc_s, 'push')}",
        ),
        common.row(
            f"pull {files:,} × {KIB} KiB files into a fresh clone",
            round(cmf_s["pull_s"], 3),
            "s",
            peer=round(dvc_s["pull_s"], 3) if dvc_s else None,
            peer_name="`dvc pull`" if dvc_s else "",
            target="≥ 10× faster than dvc" if full else "",
            met=small_met["pull"],
            note=f"cp -r {cps_pull:.2f} s; CPU {_cpu(cmf_s, dvc_s, 'pull')}",
        ),
        common.row(
            f"no-op push, {files + 1:,} objects all on the remote, median of {len(cmf_s['noop_s'])}",
            round(noop, 3),
            "s",
            peer=round(statistics.median(dvc_s["noop_s"]), 3) if dvc_s else None,
            peer_name="`dvc push` (nothing to do)" if dvc_s else "",
            target="≤ 0.5 s" if full else "",
            met=(noop <= 0.5) if full else None,
            note=f"CPU {statistics.median(cmf_s['noop_cpu_s']):.2f} s"
            + (f" vs dvc {statistics.median(dvc_s['noop_cpu_s']):.2f} s" if dvc_s else ""),
        ),
    ]
    try:
        if os.environ.get("CMFGIT_BENCH_DATA_SFTP") == "0":
            sftp_raw, sftp_rows, sftp_note = {}, [], "SFTP rows skipped: CMFGIT_BENCH_DATA_SFTP=0."
        else:
            sftp_raw, sftp_rows, sftp_note = _sftp(ctx, None, dvc)
    except Exception as exc:  # the local rows stand without it
        sftp_raw, sftp_rows, sftp_note = {}, [], f"SFTP rows failed: {type(exc).__name__}: {str(exc)[-500:]}"
    raw["sftp"] = sftp_raw
    rows += sftp_rows
    pushed = cmf_s["push"]
    return {
        "rows": rows,
        "raw": raw,
        "notes": [
            sftp_note,
            f"cmfgit's small-files push reported: {json.dumps(pushed)[:300]}",
            f"its no-op push reported: {json.dumps(cmf_s['noop'])[:300]}",
            "Every tool pushes to its own empty directory remote on the same ext4 disk and pulls into a fresh "
            "`git clone`; the placed bytes were compared with the originals. Caches are warm (the data was just "
            "written). Targets are judged on the full sizes only."
            + (f" DVC: {raw['dvc_version']}." if dvc else " DVC not found: its column is empty."),
        ],
    }

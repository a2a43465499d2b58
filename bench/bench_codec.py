"""The canonical codec: records/s of cmfgit's fast path beside libyaml.

Not an index build (that benchmark belongs with the index): this is the
parsing floor under it. DESIGN §10 asks a fresh index build for >= 5,000
records/s and notes that libyaml alone loads ~2,500/s.
"""

from __future__ import annotations

from typing import Any

import common

NAME = "codec"
TITLE = "canonical YAML: fast dump/load vs libyaml (records/s)"


def run(ctx: common.Context) -> dict[str, Any]:
    n = 1000 if ctx.quick else 5000
    out = ctx.worker("codec_worker", str(n))
    s = out["seconds"]
    rate = {k: n / v for k, v in s.items()}
    rows = [
        common.row(
            "load canonical records (canonical.load_fast)",
            round(rate["load_fast"]),
            "records/s",
            peer=round(rate["load_libyaml"]),
            peer_name="libyaml CSafeLoader",
            higher_is_better=True,
            target="(index build ≥ 5,000 records/s)",
            met=rate["load_fast"] >= 5000,
        ),
        common.row(
            "strict decode (load + canonical check), as fsck and the merge driver",
            round(rate["decode_strict"]),
            "records/s",
            peer=round(rate["load_libyaml"]),
            peer_name="libyaml load alone",
            higher_is_better=True,
        ),
        common.row(
            "dump canonical bytes (canonical.dump), byte-identical",
            round(rate["dump_fast"]),
            "records/s",
            peer=round(rate["dump_libyaml"]),
            peer_name="libyaml CSafeDumper",
            higher_is_better=True,
        ),
    ]
    return {
        "rows": rows,
        "raw": out,
        "notes": [f"{n:,} records of {out['avg_bytes']:.0f} bytes on average; best of 3 passes each."],
    }

"""The CmfQuery questions of issue 14, asked of cmflib's CmfQuery or of cmfgit's on set3's data.

Run as a script with cmflib's python to record cmflib's answers::

    V/bin/python tests/cmf_questions.py COPY-OF-tests/fixtures/cmf-set3/mlmd \
        > tests/fixtures/cmf-set3/cmflib-answers.json

(cmflib 0.1.0, ml-metadata 1.15.0, pandas 3.1.1, Python 3.11.7; that is how the recorded
file was made). Only the standard library is imported here, so cmflib's venv can run it.
Every answer is made plain JSON: a data frame as its columns, dtypes and rows; an MLMD
object as id, name, type_id, properties and custom_properties; MLMD ``Value`` messages as
their value; NaN as null.
"""

from __future__ import annotations

import json
import math
import sys
from typing import Any

MODEL = "artifacts/model/model.pkl:a789087abbd266a4d0d1c024f52cd9d8:3"
DATA = "artifacts/data.xml.gz:bb62728245360e7073e87cb66ff9b981"
TRAIN_TSV = "artifacts/parsed/train.tsv:d2a07c70c8fbf4dcd16a5cd771f87445"

# (method, arguments): the questions issue 14 asked of both, and the ones cmflib adds.
CALLS: list[tuple[str, tuple[Any, ...]]] = [
    ("get_pipeline_names", ()),
    ("get_pipeline_id", ("Test-env",)),
    ("get_pipeline_id", ("nope",)),
    ("get_pipeline_stages", ("Test-env",)),
    ("get_all_exe_in_stage", ("Test-env/Train",)),
    ("get_all_executions_in_stage", ("Test-env/Train",)),
    ("get_all_executions_in_stage", ("Train",)),
    ("get_all_executions_by_ids_list", ([1, 3],)),
    ("get_all_artifacts_by_context", ("Test-env",)),
    ("get_all_artifacts_by_ids_list", ([2, 9],)),
    ("get_all_artifacts", ()),
    ("get_artifact", (MODEL,)),
    ("get_all_artifacts_for_execution", (3,)),
    ("get_all_artifact_types", ()),
    ("get_all_executions_for_artifact", (TRAIN_TSV,)),
    ("get_one_hop_child_artifacts", (DATA,)),
    ("get_all_child_artifacts", (DATA,)),
    ("get_one_hop_parent_artifacts", (MODEL,)),
    ("get_all_parent_artifacts", (MODEL,)),
    ("get_all_parent_executions", (MODEL,)),
    ("find_producer_execution", (MODEL,)),
    ("get_one_hop_parent_executions", ([4],)),
    ("get_one_hop_parent_executions_ids", ([4],)),
    ("get_executions_with_execution_ids", ([1, 2],)),
    ("get_all_executions_in_pipeline", ("Test-env",)),
    ("get_all_artifacts_for_executions", ([1, 2],)),
    ("get_all_executions_for_artifact_id", (9,)),
    ("get_one_hop_parent_artifacts_with_id", (9,)),
    ("get_all_parent_executions_by_id", ([4],)),
    ("dumptojson", ("test-execution-update",)),
]


def value(v: Any) -> Any:
    if hasattr(v, "HasField"):  # an MLMD Value message
        if v.HasField("string_value"):
            return v.string_value
        if v.HasField("int_value"):
            return v.int_value
        return v.double_value
    if isinstance(v, float) and math.isnan(v):
        return None
    if hasattr(v, "item"):  # a numpy scalar
        return value(v.item())
    return v


def plain(x: Any) -> Any:
    if hasattr(x, "to_dict") and hasattr(x, "columns"):
        return {
            "columns": list(x.columns),
            "dtypes": [str(t) for t in x.dtypes],
            "rows": [[value(v) for v in row] for row in x.itertuples(index=False)],
        }
    if isinstance(x, (list, tuple)):
        return [plain(i) for i in x]
    if isinstance(x, dict):
        return {k: plain(v) for k, v in x.items()}
    if hasattr(x, "custom_properties"):
        return {
            "id": x.id,
            "name": x.name,
            "type_id": x.type_id,
            "properties": {k: value(v) for k, v in sorted(x.properties.items())},
            "custom_properties": {k: value(v) for k, v in sorted(x.custom_properties.items())},
        }
    return value(x)


def ask(q: Any) -> list[list[Any]]:
    """[method, arguments, answer] for each call (an exception's class name as ``{"error": ...}``)."""
    out: list[list[Any]] = []
    for name, args in CALLS:
        try:
            got = plain(getattr(q, name)(*args))
        except Exception as exc:  # noqa: BLE001  (an error is an answer too)
            got = {"error": type(exc).__name__}
        out.append([name, list(args), got])
    return out


if __name__ == "__main__":
    from cmflib.cmfquery import CmfQuery  # type: ignore[import-not-found]

    print(json.dumps(ask(CmfQuery(sys.argv[1])), indent=1))

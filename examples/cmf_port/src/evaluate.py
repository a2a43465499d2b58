"""Stage 3: score the model on the holdout set and record a data slice (CMF example style)."""

import os
import pickle
import sys

from cmfgit.compat import Cmf


def read_table(path):
    with open(path) as f:
        lines = [line.strip().split(",") for line in f if line.strip()]
    return [[float(x) for x in row] for row in lines[1:]]


def evaluate(model_dir: str, input_dir: str) -> None:
    metawriter = Cmf(filepath="mlmd", pipeline_name="wine-quality")
    _ = metawriter.create_context(pipeline_stage="evaluate")
    _ = metawriter.create_execution(execution_type="Evaluate", custom_properties={"threshold": 0.5})

    model_path = os.path.join(model_dir, "model.pkl")
    test_path = os.path.join(input_dir, "test.csv")
    _ = metawriter.log_model(path=model_path, event="input", model_framework="pure-python")
    _ = metawriter.log_dataset(test_path, "input")
    with open(model_path, "rb") as f:
        weights = pickle.load(f)["weights"]
    rows = read_table(test_path)
    errors = [weights[0] + sum(w * v for w, v in zip(weights[1:], r[:-1])) - r[-1] for r in rows]
    rmse = round((sum(e * e for e in errors) / len(errors)) ** 0.5, 6)

    dataslice = metawriter.create_dataslice("evaluated-files")
    for path in (test_path, os.path.join(input_dir, "train.csv")):
        dataslice.add_data(path=path, custom_properties={"role": os.path.basename(path)[:-4]})
    _ = dataslice.commit(custom_properties={"n_files": 2})
    _ = metawriter.log_execution_metrics("eval_metrics", {"rmse": rmse})
    metawriter.finalize()


if __name__ == "__main__":
    if len(sys.argv) != 3:
        sys.stderr.write("usage: python src/evaluate.py <model dir> <prepared dir>\n")
        sys.exit(1)
    evaluate(sys.argv[1], sys.argv[2])

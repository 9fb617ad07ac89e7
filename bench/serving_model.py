"""What one forward pass of a serving model costs in ONNX Runtime, and what cheaper variants keep of its accuracy.

    .venv/bin/python bench/train_benchmark.py --hold-out --hp '{"time_budget_s": 45}' --save /tmp/first.pt
    .venv/bin/python bench/serving_model.py /tmp/first.pt [--repeat 2000]

For the saved model: float32 as ml_svc serves it (one thread, graph optimisations on), without graph optimisations,
int8 quantised dynamically and statically (ONNX Runtime's quantisation tool, calibrated on 1,000 training digits;
8-bit and 7-bit weights):
microseconds per image at batch 1 and batch 64, and accuracy on the official 10,000-digit MNIST test set.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import onnxruntime
import torch
from onnxruntime import quantization

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(ROOT / "ml_svc"), str(ROOT / "collector_svc")]

from bench import cpu  # noqa: E402
from bench.train_benchmark import idx  # noqa: E402
from collector_svc.sources.mnist5k import Mnist5kSource  # noqa: E402
from ml_svc.architectures import get_architecture  # noqa: E402
from ml_svc.serving import onnx_bytes, onnx_inputs, session_of  # noqa: E402

MNIST_TEST = ROOT.parent / "shared" / "datasets" / "mnist-t10k"


class Calibration(quantization.CalibrationDataReader):
    def __init__(self, images: np.ndarray, batch: int = 50):
        self.batches = iter([{"images": onnx_inputs(images[i:i + batch])} for i in range(0, len(images), batch)])

    def get_next(self):
        return next(self.batches, None)


def variants(model: bytes, calibration: np.ndarray, workdir: Path) -> dict[str, onnxruntime.InferenceSession]:
    fp32 = workdir / "fp32.onnx"
    fp32.write_bytes(model)
    quantization.quant_pre_process(str(fp32), str(workdir / "pre.onnx"))
    quantization.quantize_dynamic(str(workdir / "pre.onnx"), str(workdir / "dynamic.onnx"), weight_type=quantization.QuantType.QInt8)
    # On x86 without VNNI, ONNX Runtime multiplies uint8 activations by int8 weights with 16-bit sums that saturate;
    # 7-bit weights (reduce_range) keep them in range.
    for name, fmt, reduce_range in (("static-qop", quantization.QuantFormat.QOperator, False),
                                    ("static-qop-7", quantization.QuantFormat.QOperator, True),
                                    ("static-qdq-7", quantization.QuantFormat.QDQ, True)):
        quantization.quantize_static(
            str(workdir / "pre.onnx"), str(workdir / f"{name}.onnx"), Calibration(calibration), quant_format=fmt,
            per_channel=True, reduce_range=reduce_range, activation_type=quantization.QuantType.QUInt8,
            weight_type=quantization.QuantType.QInt8,
        )
    return {
        "float32 (as served)": session_of(model),
        "float32, no graph optimisation": session_of(model, optimize=False),
        "int8 dynamic": session_of((workdir / "dynamic.onnx").read_bytes()),
        "int8 static, QOperator, 8-bit weights": session_of((workdir / "static-qop.onnx").read_bytes()),
        "int8 static, QOperator, 7-bit weights": session_of((workdir / "static-qop-7.onnx").read_bytes()),
        "int8 static, QDQ, 7-bit weights": session_of((workdir / "static-qdq-7.onnx").read_bytes()),
    }


def per_image_us(session: onnxruntime.InferenceSession, images: np.ndarray, batch: int, repeat: int) -> float:
    inputs = onnx_inputs(images[:batch])
    for _ in range(20):
        session.run(None, {"images": inputs})
    rounds = max(repeat // batch, 20)
    started = time.perf_counter()
    for _ in range(rounds):
        session.run(None, {"images": inputs})
    return (time.perf_counter() - started) / (rounds * batch) * 1e6


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("model", type=Path, help="a file saved by bench/train_benchmark.py --save")
    parser.add_argument("--repeat", type=int, default=2000, help="images timed per figure")
    args = parser.parse_args()
    torch.set_num_threads(1)
    saved = torch.load(args.model, weights_only=True)
    module = get_architecture(saved["architecture"]).build(saved["hyperparameters"])
    module.load_state_dict(saved["state_dict"])
    test_images = idx(MNIST_TEST / "t10k-images-idx3-ubyte.gz")
    test_labels = idx(MNIST_TEST / "t10k-labels-idx1-ubyte.gz")
    train_images, _ = Mnist5kSource().load_split("train")
    print(f"CPU: {cpu.describe()}")
    print(f"model: {saved['architecture']} {saved['hyperparameters']}")
    print("| variant | µs/image, batch 1 | µs/image, batch 64 | official test accuracy |\n|---|---|---|---|")
    with tempfile.TemporaryDirectory() as workdir:
        for name, session in variants(onnx_bytes(module), train_images[:1000], Path(workdir)).items():
            batch1 = per_image_us(session, test_images, 1, args.repeat)
            batch64 = per_image_us(session, test_images, 64, args.repeat * 4)
            predicted = np.concatenate([session.run(None, {"images": onnx_inputs(test_images[i:i + 500])})[0].argmax(1)
                                        for i in range(0, len(test_images), 500)])
            print(f"| {name} | {batch1:,.0f} | {batch64:,.0f} | {100 * (predicted == test_labels).mean():.2f} % |", flush=True)


if __name__ == "__main__":
    main()

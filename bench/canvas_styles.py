"""Official MNIST test digits re-drawn as a browser canvas delivers them, and how well a model reads them.

    .venv/bin/python bench/train_benchmark.py --hold-out --hp '{"time_budget_s": 45}' --save /tmp/first.pt
    .venv/bin/python bench/canvas_styles.py /tmp/first.pt [--count 3000 --seed 0]

Each digit's strokes are thinned to their centre line and drawn again as a pen draws them on the Recognize page's
280x280 canvas: round caps and joins, a pen 5 %, 11 % (as MNIST's strokes) or 18 % as wide as the digit is high,
anti-aliased edges, at a random place and a random height (a third to all of the canvas), in one of three
backgrounds: transparent ink (`canvas.toDataURL()`), dark ink on white, light ink on black. The same digits as plain
MNIST images are scored beside them, so every figure has its reference from the same run.

Printed: accuracy of the served variants (float32, and int8 as ml_svc quantises it) on the plain digits and per
style, per size band and per stroke width, with the CPU.
"""

from __future__ import annotations

import argparse
import io
import sys
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

ROOT = Path(__file__).resolve().parent.parent

CANVAS = 280
STYLES = ("transparent", "dark on white", "light on black")
# Pen width as a share of the digit's height: thin, as MNIST's, thick.
STROKES = {"thin (5 %)": 0.05, "medium (11 %)": 0.11, "thick (18 %)": 0.18}
SIZE_BANDS = {"small (1/3-1/2)": (1 / 3, 1 / 2), "medium (1/2-3/4)": (1 / 2, 3 / 4), "large (3/4-1)": (3 / 4, 1.0)}
SUPERSAMPLE = 4
INK = 17  # the page's pen colour, #111


@dataclass(frozen=True)
class CanvasDigit:
    png: bytes
    label: int
    style: str
    size_band: str
    stroke: str
    index: int  # position of the digit in the source set


def thinned(digit: np.ndarray, level: int = 96) -> np.ndarray:
    """The centre lines of a 28x28 digit's strokes (Zhang-Suen thinning of its ink above `level`), as a bool map."""
    image = np.pad(digit >= level, 1)
    while True:
        changed = False
        for step in (0, 1):
            p = image
            n = [np.roll(np.roll(p, dy, 0), dx, 1) for dy, dx in
                 ((1, 0), (1, -1), (0, -1), (-1, -1), (-1, 0), (-1, 1), (0, 1), (1, 1))]
            # n[0..7] = P2..P9 clockwise from north (np.roll by +1 brings the north neighbour down).
            count = sum(x.astype(np.int8) for x in n)
            ring = n + [n[0]]
            transitions = sum((~ring[i] & ring[i + 1]).astype(np.int8) for i in range(8))
            if step == 0:
                gone = ~(n[0] & n[2] & n[4]) & ~(n[2] & n[4] & n[6])
            else:
                gone = ~(n[0] & n[2] & n[6]) & ~(n[0] & n[4] & n[6])
            remove = p & (count >= 2) & (count <= 6) & (transitions == 1) & gone
            if remove.any():
                image = p & ~remove
                changed = True
        if not changed:
            return image[1:-1, 1:-1]


def draw(digit: np.ndarray, *, style: str, height_share: float, stroke: float, rng: np.random.Generator) -> bytes:
    """`digit` (28x28, ink bright) drawn with a round pen `stroke` times as wide as its ink is high, the ink
    `height_share` of the canvas high."""
    skeleton = thinned(digit)
    ys, xs = np.nonzero(skeleton)
    if len(ys) == 0:
        ys, xs = np.nonzero(digit >= digit.max() / 2)
    top, left = ys.min(), xs.min()
    span_y, span_x = ys.max() - top + 1, xs.max() - left + 1
    pen = max(3, round(stroke * height_share * CANVAS))
    scale = max(height_share * CANVAS - pen, 8) / span_y
    scale = min(scale, (CANVAS - pen) / span_x)
    width_px, height_px = span_x * scale + pen, span_y * scale + pen
    origin_x = rng.uniform(0, CANVAS - width_px) + pen / 2
    origin_y = rng.uniform(0, CANVAS - height_px) + pen / 2
    s = SUPERSAMPLE
    coverage = Image.new("L", (CANVAS * s, CANVAS * s), 0)
    pencil = ImageDraw.Draw(coverage)

    def at(y: int, x: int) -> tuple[float, float]:
        return ((origin_x + (x - left + 0.5) * scale) * s, (origin_y + (y - top + 0.5) * scale) * s)

    radius = pen * s / 2
    points = set(zip(ys.tolist(), xs.tolist(), strict=True))
    for y, x in points:
        cx, cy = at(y, x)
        pencil.ellipse((cx - radius, cy - radius, cx + radius, cy + radius), fill=255)
        for dy, dx in ((0, 1), (1, 0), (1, 1), (1, -1)):
            if (y + dy, x + dx) in points:
                pencil.line((at(y, x), at(y + dy, x + dx)), fill=255, width=pen * s)
    alpha = np.asarray(coverage.resize((CANVAS, CANVAS), Image.Resampling.BOX), dtype=np.float32) / 255.0
    if style == "transparent":
        rgba = np.zeros((CANVAS, CANVAS, 4), dtype=np.uint8)
        rgba[..., :3] = INK
        rgba[..., 3] = np.round(alpha * 255).astype(np.uint8)
        image = Image.fromarray(rgba, "RGBA")
    elif style == "dark on white":
        image = Image.fromarray(np.round(255 - alpha * (255 - INK)).astype(np.uint8), "L")
    elif style == "light on black":
        image = Image.fromarray(np.round(alpha * 255).astype(np.uint8), "L")
    else:
        raise ValueError(f"unknown style {style!r}")
    out = io.BytesIO()
    image.save(out, format="PNG")
    return out.getvalue()


def canvas_digits(images: np.ndarray, labels: np.ndarray, *, count: int, seed: int = 0) -> list[CanvasDigit]:
    """`count` digits of the set, each drawn once in a style, size band and stroke width chosen in turn (every
    combination equally often), at random places and heights within the band (a fixed seed: the same set each run)."""
    rng = np.random.default_rng(seed)
    chosen = rng.choice(len(images), size=min(count, len(images)), replace=False)
    bands = list(SIZE_BANDS.items())
    drawn = []
    for n, index in enumerate(chosen):
        style = STYLES[n % 3]
        band, (low, high) = bands[(n // 3) % 3]
        stroke, share = list(STROKES.items())[(n // 9) % 3]
        png = draw(images[index], style=style, height_share=rng.uniform(low, high), stroke=share, rng=rng)
        drawn.append(CanvasDigit(png, int(labels[index]), style, band, stroke, int(index)))
    return drawn


def _accuracy(right: list[bool]) -> str:
    return f"{100 * np.mean(right):.2f} %" if right else "-"


def main() -> None:
    sys.path[:0] = [str(ROOT), str(ROOT / "ml_svc"), str(ROOT / "collector_svc")]
    import torch

    from bench import cpu
    from bench.train_benchmark import MNIST_TEST, idx
    from collector_svc.sources.mnist5k import Mnist5kSource
    from kit.preprocessing import canonical_from_bytes, canonical_from_pixels
    from ml_svc.architectures import get_architecture
    from ml_svc.serving import onnx_bytes, quantised, session_of, session_probabilities

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("model", type=Path, help="a file saved by bench/train_benchmark.py --save")
    parser.add_argument("--count", type=int, default=3000, help="digits drawn (a multiple of 27 is balanced)")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    torch.set_num_threads(1)
    saved = torch.load(args.model, weights_only=True)
    module = get_architecture(saved["architecture"]).build(saved["hyperparameters"])
    module.load_state_dict(saved["state_dict"])
    images, labels = idx(MNIST_TEST / "t10k-images-idx3-ubyte.gz"), idx(MNIST_TEST / "t10k-labels-idx1-ubyte.gz")
    digits = canvas_digits(images, labels, count=args.count, seed=args.seed)
    model = onnx_bytes(module)
    variants = {"float32": session_of(model), "int8": session_of(quantised(model, Mnist5kSource().load_split("train")[0][:500]))}
    plain = np.stack([canonical_from_pixels(images[d.index]) for d in digits])
    drawn = np.stack([canonical_from_bytes(d.png) for d in digits])
    truth = np.array([d.label for d in digits])
    print(f"CPU: {cpu.describe()}")
    print(f"model: {saved['architecture']} {saved['hyperparameters']}; {len(digits)} official test digits, seed {args.seed}")
    groups: dict[str, list[int]] = defaultdict(list)
    for n, d in enumerate(digits):
        for key in (f"style: {d.style}", f"size: {d.size_band}", f"pen: {d.stroke}"):
            groups[key].append(n)
    rows: dict[str, list[str]] = {"plain MNIST, the same digits": [], "canvas, all": [],
                                  "canvas, same answer as float32": []}
    rows.update({key: [] for key in sorted(groups)})
    reference = session_probabilities(variants["float32"], drawn).argmax(1)
    for session in variants.values():
        plain_right = session_probabilities(session, plain).argmax(1) == truth
        answers = session_probabilities(session, drawn).argmax(1)
        drawn_right = answers == truth
        rows["canvas, same answer as float32"].append(_accuracy(list(answers == reference)))
        rows["plain MNIST, the same digits"].append(_accuracy(list(plain_right)))
        rows["canvas, all"].append(_accuracy(list(drawn_right)))
        for key, members in groups.items():
            rows[key].append(_accuracy([bool(drawn_right[n]) for n in members]))
    print("| digits | " + " | ".join(variants) + " |\n|---|" + "---|" * len(variants))
    for key, cells in rows.items():
        print(f"| {key} | " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main()

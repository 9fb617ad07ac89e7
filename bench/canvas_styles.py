"""Official MNIST test digits re-drawn as a browser canvas delivers them, and how well a model reads them.

    .venv/bin/python bench/train_benchmark.py --hold-out --hp '{"time_budget_s": 45}' --save /tmp/first.pt
    .venv/bin/python bench/canvas_styles.py /tmp/first.pt [--count 2700 --seed 0 --page-pens 12,16,20,24,28]
    .venv/bin/python bench/canvas_styles.py /tmp/first.pt /tmp/other.pt ... [--sheet /tmp/misread.png]

Each digit is traced as a person tracing it on the Recognize page's 280x280 canvas would: its centre lines (found on
the digit enlarged 4 times, so they are smooth as a pen's path) drawn with a round pen of one width, 5 %, 11 % (as
MNIST's strokes) or 18 % of the digit's height, where the original filled an area (a loop inked solid) the pen
filling it as far as the original's, whatever its width; anti-aliased, at a random place and a random height (a
third to all of the canvas). The tracer is blind: it keeps what its pen made. With `--look` it looks at what it
drew, as a person would: where its pen closed an opening of the digit or filled a loop the original left open (the
tracing has a hole more or fewer than the original, as a 4 turned into a 9), it draws the same strokes again with a
pen 3/4 as wide, up to three times (`looked_at`; its effect and cost: bench/README.md). Each tracing is
sent in the three backgrounds a browser can deliver: transparent ink (`canvas.toDataURL()`), dark ink on white,
light ink on black, so styles are compared on the same drawings. `--page-pens` also traces digits with the page's
pen widths in canvas pixels (at random heights, so a small digit gets a relatively thick stroke; blind, since they
are there to show what each pen does to a digit), to choose the page's default pen.

Printed, with the CPU: accuracy of the served variants (float32, and int8 as ml_svc quantises it) on the same digits
as plain MNIST images, and on the canvas per style, size band, stroke width and page pen, each with its distance in
points from the plain accuracy of the same digits. Given several models (other seeds, data, widths), also the
tracings every one of them reads wrongly, per pen, beside the same digits as plain images, and (`--sheet`) a
picture of them beside their originals: what none of several differently trained models reads is more likely a
limit of the tracing than of one model (a person looking at the picture decides).
"""

from __future__ import annotations

import argparse
import io
import sys
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from PIL import Image, ImageDraw

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(ROOT / "ml_svc"), str(ROOT / "collector_svc")]

from ml_svc.strokes import thin  # noqa: E402

CANVAS = 280
STYLES = ("transparent", "dark on white", "light on black")
# Pen width as a share of the digit's height: thin, as MNIST's, thick.
STROKES = {"thin (5 %)": 0.05, "medium (11 %)": 0.11, "thick (18 %)": 0.18}
SIZE_BANDS = {"small (1/3-1/2)": (1 / 3, 1 / 2), "medium (1/2-3/4)": (1 / 2, 3 / 4), "large (3/4-1)": (3 / 4, 1.0)}
SUPERSAMPLE = 4
UPSCALE = 4
BLOB = 1.6  # a centre line this many times as far from the edge as usual runs through a filled area
INK = 17  # the page's pen colour, #111
SCAN_INK = 96  # a scan's pixel this bright is ink (of 255)
TRACE_INK = 0.5  # a canvas pixel this much covered by the pen is ink
# A tracer who looks (`looked_at`): a tracing changed its digit where it has a hole of at least CLEAR_HOLE of the ink's
# box that the original lacks even at FAINT_HOLE, or the other way round; it then draws again, its pen THINNER times
# as wide each time, up to REDRAWS times.
CLEAR_HOLE, FAINT_HOLE = 0.01, 0.003
THINNER, REDRAWS = 0.75, 3


@dataclass(frozen=True)
class CanvasDigit:
    png: bytes
    label: int
    style: str
    size_band: str
    stroke: str
    index: int  # position of the digit in the source set
    pen_share: float = 1.0  # the pen's width as a share of `stroke`'s: below 1, drawn again thinner (`looked_at`)


def thinned(digit: np.ndarray, level: int = SCAN_INK) -> np.ndarray:
    """The centre lines of a digit's strokes (its ink at least `level`), one pixel wide, as a bool map: the
    training's own thinning (ml_svc/strokes.py)."""
    return thin(torch.from_numpy(np.asarray(digit) >= level)[None])[0].numpy()


def half_widths(ink: np.ndarray, ys: np.ndarray, xs: np.ndarray) -> np.ndarray:
    """How far each centre-line point (ys, xs) lies from the nearest pixel outside `ink`: half the stroke's width."""
    outside = ~ink
    edge = outside & (np.roll(ink, 1, 0) | np.roll(ink, -1, 0) | np.roll(ink, 1, 1) | np.roll(ink, -1, 1))
    ey, ex = np.nonzero(edge)
    if len(ey) == 0:
        return np.ones(len(ys))
    distances = np.empty(len(ys))
    for start in range(0, len(ys), 256):
        dy = ys[start:start + 256, None] - ey[None]
        dx = xs[start:start + 256, None] - ex[None]
        distances[start:start + 256] = np.sqrt(dy * dy + dx * dx).min(1)
    return distances


def enlarged(digit: np.ndarray) -> np.ndarray:
    """A 28x28 digit UPSCALE times as large, smoothly (bicubic): what the tracer follows and compares with."""
    return np.asarray(Image.fromarray(digit).resize((28 * UPSCALE, 28 * UPSCALE), Image.Resampling.BICUBIC))


def holes(ink: np.ndarray) -> list[float]:
    """The holes of a drawing's ink (a bool map): each region of background (4-connected) that cannot be reached
    from outside it, as its share of the ink's bounding box, largest first."""
    ys, xs = np.nonzero(ink)
    if len(ys) == 0:
        return []
    ink = ink[ys.min():ys.max() + 1, xs.min():xs.max() + 1]
    # Background 0, ink 255, with a border of background around the ink from which the outside is filled; what is
    # still 0 lies in holes, each filled in turn, its area what it took from the 0s. (`fromarray` shares the array
    # read-only, and a flood fill writes: the image is copied once.)
    marks = Image.fromarray(np.pad(np.where(ink, 255, 0).astype(np.uint8), 1)).copy()
    ImageDraw.floodfill(marks, (0, 0), 128)
    found = []
    left = int((np.asarray(marks) == 0).sum())
    while left:
        y, x = np.argwhere(np.asarray(marks) == 0)[0]
        ImageDraw.floodfill(marks, (int(x), int(y)), 128)
        now = int((np.asarray(marks) == 0).sum())
        found.append((left - now) / ink.size)
        left = now
    return sorted(found, reverse=True)


def same_holes(original: list[float], traced: list[float]) -> bool:
    """Whether a tracing has the holes of its original (`holes` of each), counted: neither has more clear holes
    (CLEAR_HOLE of its box) than the other has holes at all (FAINT_HOLE and over). A pen that closed a 4 into a 9 or
    filled a 6's loop changed the digit; one that left a loop a little wider or narrower did not. Only the numbers
    are compared: a tracing that closed one loop and filled another passes."""
    def more_clear_holes(a: list[float], b: list[float]) -> bool:
        return sum(h >= CLEAR_HOLE for h in a) > sum(h >= FAINT_HOLE for h in b)
    return not more_clear_holes(original, traced) and not more_clear_holes(traced, original)


def coverage(digit: np.ndarray, *, height_share: float, stroke: float, rng: np.random.Generator) -> np.ndarray:
    """How much of each pixel of the 280x280 canvas a round pen covers (0-1) tracing `digit` (28x28, ink bright)
    `stroke` times as wide as the ink is high, the ink `height_share` of the canvas high, at a random place."""
    return _tracer(enlarged(digit), rng)(height_share, pen_width(height_share, stroke))


def looked_at(digit: np.ndarray, *, height_share: float, stroke: float, rng: np.random.Generator
              ) -> tuple[np.ndarray, float]:
    """`coverage`, by a tracer who looks at the drawing: where the pen closed an opening of the digit or filled a loop
    the original left open (`same_holes`), the same strokes again at the same place with a pen THINNER times as wide,
    up to REDRAWS times (while the pen still gets thinner), as a person seeing a 4 turn into a 9 would draw again;
    the first drawing if none keeps the holes. Returned with the pen's width as a share of the one asked for (1.0:
    the first drawing)."""
    large = enlarged(digit)
    trace = _tracer(large, rng)
    original = holes(large >= SCAN_INK)
    pen = pen_width(height_share, stroke)
    first = trace(height_share, pen)
    # The pens to try, widest first, each once: a pen at its 3 px floor does not get thinner.
    for width in dict.fromkeys(pen_width(height_share, stroke * THINNER ** n) for n in range(REDRAWS + 1)):
        drawing = first if width == pen else trace(height_share, width)
        if same_holes(original, holes(drawing >= TRACE_INK)):
            return drawing, width / pen
    return first, 1.0


def pen_width(height_share: float, stroke: float) -> int:
    """The pen's width in canvas pixels for a drawing `height_share` of the canvas high, `stroke` of its height."""
    return max(3, round(stroke * height_share * CANVAS))


def _tracer(large: np.ndarray, rng: np.random.Generator) -> Callable[[float, int], np.ndarray]:
    """A function (height share, pen width in px) -> coverage drawing the centre lines of a digit `enlarged` as
    `large` on the canvas, its place drawn from `rng` now: drawing again with another pen keeps it where it was."""
    # The centre lines are found on the digit enlarged (smooth, as a pen moves), not on its 28x28 pixels.
    ys, xs = np.nonzero(thinned(large))
    if len(ys) == 0:
        ys, xs = np.nonzero(large >= large.max() / 2)
    widths = half_widths(large >= SCAN_INK, ys, xs)
    # A pen stroke is as wide everywhere, except where the writer filled an area (a loop inked solid): there the
    # pen goes over it until the area is as filled as in the original, whatever the pen's width.
    typical = float(np.median(widths))
    filled = widths > BLOB * typical
    top, left = ys.min(), xs.min()
    span_y, span_x = ys.max() - top + 1, xs.max() - left + 1
    place_x, place_y = rng.random(), rng.random()
    points = set(zip(ys.tolist(), xs.tolist(), strict=True))

    def trace(height_share: float, pen: int) -> np.ndarray:
        scale = max(height_share * CANVAS - pen, 8) / span_y
        scale = min(scale, (CANVAS - pen) / span_x)
        width_px, height_px = span_x * scale + pen, span_y * scale + pen
        origin_x = place_x * (CANVAS - width_px) + pen / 2
        origin_y = place_y * (CANVAS - height_px) + pen / 2
        s = SUPERSAMPLE
        covered = Image.new("L", (CANVAS * s, CANVAS * s), 0)
        pencil = ImageDraw.Draw(covered)

        def at(y: int, x: int) -> tuple[float, float]:
            return ((origin_x + (x - left + 0.5) * scale) * s, (origin_y + (y - top + 0.5) * scale) * s)

        for y, x, width, solid in zip(ys.tolist(), xs.tolist(), widths.tolist(), filled.tolist(), strict=True):
            cx, cy = at(y, x)
            radius = max(pen / 2, width * scale) * s if solid else pen * s / 2
            pencil.ellipse((cx - radius, cy - radius, cx + radius, cy + radius), fill=255)
            for dy, dx in ((0, 1), (1, 0), (1, 1), (1, -1)):
                if (y + dy, x + dx) in points:
                    pencil.line((at(y, x), at(y + dy, x + dx)), fill=255, width=pen * s)
        return np.asarray(covered.resize((CANVAS, CANVAS), Image.Resampling.BOX), dtype=np.float32) / 255.0

    return trace


def encoded(alpha: np.ndarray, style: str) -> bytes:
    """The canvas whose ink covers `alpha`, as the PNG a browser sends in `style`."""
    if style == "transparent":
        rgba = np.zeros((*alpha.shape, 4), dtype=np.uint8)
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


def draw(digit: np.ndarray, *, style: str, height_share: float, stroke: float, rng: np.random.Generator) -> bytes:
    """`digit` traced on the canvas (`coverage`) and sent in `style`."""
    return encoded(coverage(digit, height_share=height_share, stroke=stroke, rng=rng), style)


def canvas_digits(images: np.ndarray, labels: np.ndarray, *, count: int, seed: int = 0, look: bool = False
                  ) -> list[CanvasDigit]:
    """`count` digits of the set, each traced once at a size band and stroke width chosen in turn (every pair
    equally often; a random height within the band, a random place; `look`: by a tracer who looks at its drawing,
    `looked_at`) and sent in each of the three styles, so styles are compared on the same drawings (a fixed seed:
    the same set each run)."""
    rng = np.random.default_rng(seed)
    chosen = rng.choice(len(images), size=min(count, len(images)), replace=False)
    bands = list(SIZE_BANDS.items())
    drawn = []
    for n, index in enumerate(chosen):
        band, (low, high) = bands[n % 3]
        stroke, share = list(STROKES.items())[(n // 3) % 3]
        height_share = rng.uniform(low, high)
        if look:
            alpha, pen_share = looked_at(images[index], height_share=height_share, stroke=share, rng=rng)
        else:
            alpha, pen_share = coverage(images[index], height_share=height_share, stroke=share, rng=rng), 1.0
        drawn.extend(CanvasDigit(encoded(alpha, style), int(labels[index]), style, band, stroke, int(index), pen_share)
                     for style in STYLES)
    return drawn


def _cell(right: np.ndarray, plain_right: np.ndarray) -> str:
    """Accuracy of a group and its gap to the same digits as plain MNIST images, in points."""
    return f"{100 * right.mean():.2f} % ({100 * (right.mean() - plain_right.mean()):+.2f})"


def page_pen_digits(images: np.ndarray, *, pens: list[int], count: int, seed: int
                    ) -> list[tuple[int, int, bytes]]:
    """(pen width in canvas pixels, index, PNG): `count` digits traced with each of the Recognize page's pen widths
    as transparent ink, each at a random height (a third to all of the canvas) and place."""
    rng = np.random.default_rng(seed + 1)
    chosen = rng.choice(len(images), size=min(count, len(images)), replace=False)
    traced = []
    for index in chosen:
        share = rng.uniform(1 / 3, 1.0)
        for pen in pens:
            alpha = coverage(images[index], height_share=share, stroke=pen / (share * CANVAS),
                             rng=np.random.default_rng([seed, int(index)]))
            traced.append((pen, int(index), encoded(alpha, "transparent")))
    return traced


@dataclass(frozen=True)
class PagePens:
    """The digits traced with the page's pen widths (`page_pen_digits`), as canonical input beside their scans."""
    pens: list[int]
    pen: np.ndarray  # each drawing's pen width
    label: np.ndarray
    drawn: np.ndarray
    plain: np.ndarray


def read(path: Path, digits: list[CanvasDigit], plain: np.ndarray, drawn: np.ndarray, page: PagePens | None,
         calibration: np.ndarray, seed: int) -> np.ndarray:
    """Print `path`'s model's table (float32, and int8 quantised on `calibration` as ml_svc does; every group beside
    the same digits as plain MNIST images: `plain` and `drawn` are both as canonical input; `page`: also per page
    pen); return which drawings its float32 variant reads rightly (canvas, then plain: shape (2, len(digits)))."""
    from ml_svc.architectures import get_architecture
    from ml_svc.serving import onnx_bytes, quantised, session_of, session_probabilities

    saved = torch.load(path, weights_only=True)
    module = get_architecture(saved["architecture"]).build(saved["hyperparameters"])
    module.load_state_dict(saved["state_dict"])
    model = onnx_bytes(module)
    variants = {"float32": session_of(model), "int8": session_of(quantised(model, calibration))}
    truth = np.array([d.label for d in digits])
    print(f"\nmodel {path}: {saved['architecture']} {saved['hyperparameters']}; {len(digits) // 3} official test "
          f"digits traced once and sent in 3 styles, seed {seed}. Cells: accuracy (points from the same digits "
          "as plain MNIST images)")
    groups: dict[str, list[int]] = defaultdict(list)
    for n, d in enumerate(digits):
        for key in ("canvas, all", f"style: {d.style}", f"size: {d.size_band}", f"pen: {d.stroke}"):
            groups[key].append(n)
    rows: dict[str, list[str]] = {"plain MNIST, the same digits": []}
    rows.update({key: [] for key in groups})
    read_right = []
    for session in variants.values():
        plain_right = session_probabilities(session, plain).argmax(1) == truth
        drawn_right = session_probabilities(session, drawn).argmax(1) == truth
        read_right.append(np.stack([drawn_right, plain_right]))
        rows["plain MNIST, the same digits"].append(f"{100 * plain_right.mean():.2f} %")
        for key, members in groups.items():
            rows[key].append(_cell(drawn_right[members], plain_right[members]))
    if page is not None:
        for session in variants.values():
            plain_right = session_probabilities(session, page.plain).argmax(1) == page.label
            right = session_probabilities(session, page.drawn).argmax(1) == page.label
            for pen in page.pens:
                members = page.pen == pen
                rows.setdefault(f"page pen {pen} px", []).append(_cell(right[members], plain_right[members]))
    print("| digits | " + " | ".join(variants) + " |\n|---|" + "---|" * len(variants))
    for key, cells in rows.items():
        print(f"| {key} | " + " | ".join(cells) + " |")
    return read_right[0]


SHEET_TILE = 140  # px a side of each original and tracing on the --sheet picture


def every_model_wrong(right: np.ndarray, digits: list[CanvasDigit], images: np.ndarray, sheet: Path | None) -> None:
    """With several models' float32 readings (`right`: models x (canvas, plain) x drawings, each tracing's styles
    side by side as `canvas_digits` lists them): how many tracings every model reads wrongly in every style, per pen,
    beside how many of the same digits every model misreads as plain images; `sheet`: a PNG of the tracings every
    model misreads on the canvas and reads rightly as plain digits, each beside its original, to judge by eye
    whether the tracing is still that digit."""
    from kit.preprocessing import decode_image

    by_tracing = right.reshape(len(right), 2, -1, len(STYLES))
    canvas_wrong = ~by_tracing[:, 0].any(axis=(0, 2))  # no model reads it in any style
    plain_right = by_tracing[:, 1, :, 0]  # a tracing's styles share one scan
    plain_wrong = ~plain_right.any(0)
    traced = digits[::len(STYLES)]
    strokes = np.array([d.stroke for d in traced])
    print(f"\n{len(right)} models (float32): canvas accuracy {100 * right[:, 0].mean(1).min():.2f}-"
          f"{100 * right[:, 0].mean(1).max():.2f} %, the same digits as plain images "
          f"{100 * right[:, 1].mean(1).min():.2f}-{100 * right[:, 1].mean(1).max():.2f} %")
    print("| read wrongly by every model | " + " | ".join(STROKES) + " | all |\n|---|" + "---|" * (len(STROKES) + 1))
    for name, wrong in (("tracings, in every style", canvas_wrong), ("the same digits as plain images", plain_wrong)):
        counts = [int((wrong & (strokes == stroke)).sum()) for stroke in STROKES]
        print(f"| {name} | " + " | ".join(map(str, counts)) + f" | {int(wrong.sum())} of {len(traced)} |")
    if sheet is None:
        return
    shown = [d for d, c, p in zip(traced, canvas_wrong, plain_right.all(0), strict=True) if c and p]
    tile = SHEET_TILE
    page = Image.new("L", (4 * (2 * tile + 12), max(1, (len(shown) + 3) // 4) * (tile + 22)), 40)
    pencil = ImageDraw.Draw(page)
    for n, d in enumerate(shown):
        x, y = (n % 4) * (2 * tile + 12), (n // 4) * (tile + 22)
        drawing = Image.fromarray(np.clip(decode_image(d.png), 0, 255).astype(np.uint8))  # its ink, any style
        page.paste(Image.fromarray(images[d.index]).resize((tile, tile), Image.Resampling.NEAREST), (x, y + 20))
        page.paste(drawing.resize((tile, tile), Image.Resampling.LANCZOS), (x + tile + 2, y + 20))
        pencil.text((x + 2, y + 4), f"a {d.label}, {d.stroke} pen, {d.size_band}", fill=255)
    page.save(sheet)
    print(f"{len(shown)} tracings every model misreads, whose digits every model reads rightly as plain images: "
          f"{sheet}")


def main() -> None:
    from bench import cpu
    from bench.train_benchmark import MNIST_TEST, idx
    from collector_svc.sources.mnist5k import Mnist5kSource
    from kit.preprocessing import canonical_from_bytes, canonical_from_pixels
    from ml_svc.serving import CALIBRATION_IMAGES

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("models", type=Path, nargs="+", help="files saved by bench/train_benchmark.py --save; with "
                        "several, also the tracings every one of them reads wrongly")
    parser.add_argument("--count", type=int, default=2700, help="drawings, each sent in the three styles "
                        "(a multiple of 9 is balanced)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--look", action="store_true", help="the tracer looks at each drawing and draws it again "
                        "with a thinner pen where its pen closed an opening or filled a loop the digit left open (looked_at)")
    parser.add_argument("--page-pens", type=lambda text: [int(v) for v in text.split(",")], default=[],
                        help="also: accuracy with each of these pen widths of the page (canvas pixels), e.g. 12,20,28")
    parser.add_argument("--page-count", type=int, default=600, help="digits traced with each page pen")
    parser.add_argument("--sheet", type=Path, help="with several models: a PNG of the tracings every model reads "
                        "wrongly (and rightly as plain digits), each beside its original")
    args = parser.parse_args()
    if missing := [str(path) for path in args.models if not path.is_file()]:
        parser.error(f"no such model file: {', '.join(missing)}")
    if args.sheet and len(args.models) < 2:
        parser.error("--sheet draws what every one of several models misreads: give two models or more")
    torch.set_num_threads(1)
    images, labels = idx(MNIST_TEST / "t10k-images-idx3-ubyte.gz"), idx(MNIST_TEST / "t10k-labels-idx1-ubyte.gz")
    digits = canvas_digits(images, labels, count=args.count, seed=args.seed, look=args.look)
    plain = np.stack([canonical_from_pixels(images[d.index]) for d in digits])
    drawn = np.stack([canonical_from_bytes(d.png) for d in digits])
    page = None
    if args.page_pens:
        traced = page_pen_digits(images, pens=args.page_pens, count=args.page_count, seed=args.seed)
        indices = np.array([index for _, index, _ in traced])
        page = PagePens(args.page_pens, np.array([pen for pen, _, _ in traced]), labels[indices],
                        np.stack([canonical_from_bytes(png) for _, _, png in traced]),
                        np.stack([canonical_from_pixels(images[i]) for i in indices]))
    calibration = Mnist5kSource().load_split("train")[0][:CALIBRATION_IMAGES]
    print(f"CPU: {cpu.describe()}")
    if args.look:
        traced = digits[::len(STYLES)]
        print("Drawn again with a thinner pen, as the first drawing lost or gained a hole of the digit: " + ", ".join(
            f"{stroke} {sum(d.stroke == stroke and d.pen_share < 1 for d in traced)} of "
            f"{sum(d.stroke == stroke for d in traced)}" for stroke in STROKES))
    right = np.stack([read(path, digits, plain, drawn, page, calibration, args.seed) for path in args.models])
    if len(right) > 1:
        every_model_wrong(right, digits, images, args.sheet)


if __name__ == "__main__":
    main()

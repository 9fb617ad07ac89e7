"""Training digits traced again with a canvas pen (ml_svc/strokes.py): what the augmentation shows the network."""

import numpy as np
import pytest
import torch

from bench.canvas_styles import draw
from bench.train_benchmark import MNIST_TEST, idx
from kit.preprocessing import canonical_from_bytes
from ml_svc import strokes
from ml_svc.preprocessing import to_model_input


@pytest.fixture(scope="module")
def official_digits() -> np.ndarray:
    return idx(MNIST_TEST / "t10k-images-idx3-ubyte.gz")[:64]


def parts(image: np.ndarray, steps=((-1, -1), (-1, 0), (-1, 1), (0, -1), (0, 1), (1, -1), (1, 0), (1, 1))) -> int:
    """Connected pieces of a bool image (8-neighbourhood unless `steps` says otherwise)."""
    seen = np.zeros_like(image, dtype=bool)
    count = 0
    for start in zip(*np.nonzero(image), strict=True):
        if seen[start]:
            continue
        count += 1
        stack = [start]
        seen[start] = True
        while stack:
            y, x = stack.pop()
            for dy, dx in steps:
                ny, nx = y + dy, x + dx
                if 0 <= ny < image.shape[0] and 0 <= nx < image.shape[1] and image[ny, nx] and not seen[ny, nx]:
                    seen[ny, nx] = True
                    stack.append((ny, nx))
    return count


def ring(thickness: float) -> np.ndarray:
    """A zero: a ring `thickness` px wide, 28x28, ink bright."""
    ys, xs = np.indices((28, 28))
    distance = np.hypot((ys - 13.5) / 1.3, xs - 13.5)
    return (np.clip(thickness / 2 + 0.5 - np.abs(distance - 6), 0, 1) * 255).astype(np.uint8)


def test_a_bar_thins_to_its_middle_line_and_a_line_stays_as_it_is():
    bar = torch.zeros((1, 20, 20), dtype=torch.bool)
    bar[0, 3:17, 8:13] = True  # 5 px wide, 14 px high
    line = strokes.thin(bar)[0]
    columns = torch.nonzero(line)[:, 1]
    assert set(columns.tolist()) <= {9, 10, 11} and int(line.sum()) >= 8, "the middle of the bar, most of its height"
    assert torch.equal(strokes.thin(line[None])[0], line), "a centre line has nothing left to remove"


@pytest.mark.parametrize("thickness", [2.0, 4.0, 6.0])
def test_a_centre_line_is_one_closed_pixel_wide_curve_whatever_the_stroke(thickness):
    line = strokes.centre_lines(ring(thickness)[None])[0].numpy()
    assert parts(line) == 1, "the stroke stays one piece"
    # Its background, 4-connected (a diagonal step of the curve is no gap), is the outside and the hole.
    assert parts(~line, steps=((-1, 0), (1, 0), (0, -1), (0, 1))) == 2, "the zero keeps its hole"
    # One pixel wide: no 2x2 square of it is all ink.
    assert not (line[:-1, :-1] & line[1:, :-1] & line[:-1, 1:] & line[1:, 1:]).any()


def test_the_same_digit_thin_or_thick_has_nearly_the_same_centre_line(official_digits):
    """What the pen traces does not depend on how wide the digit's own strokes were."""
    for n, digit in enumerate(official_digits[:16]):
        thin, thick = (canonical_from_bytes(draw(digit, style="light on black", height_share=0.8, stroke=stroke,
                                                 rng=np.random.default_rng(n))) for stroke in (0.05, 0.18))
        lines = strokes.centre_lines(np.stack([thin, thick])).numpy()
        near_thin = torch.nn.functional.max_pool2d(torch.from_numpy(lines[0:1]).float()[None], 9, 1, 4)[0, 0] > 0
        assert (lines[1] & ~near_thin.numpy()).sum() <= 0.1 * lines[1].sum(), f"digit {n}"


def test_traced_digits_are_network_input_with_wider_ink_for_wider_pens(official_digits):
    lines = strokes.centre_lines(official_digits[:32])
    ink = []
    for pen in strokes.PENS:
        original = strokes.PENS
        strokes.PENS = (pen,)
        try:
            x = strokes.traced(lines, torch.Generator().manual_seed(0))
        finally:
            strokes.PENS = original
        assert x.shape == (32, 1, 28, 28)
        assert torch.allclose(x.amin(dim=(1, 2, 3)), to_model_input(np.zeros((1, 28, 28), np.uint8)).min())
        assert torch.allclose(x.amax(dim=(1, 2, 3)), to_model_input(np.full((1, 28, 28), 255, np.uint8)).max())
        ink.append(float(x.mean()))
    assert ink == sorted(ink) and ink[0] < ink[-1], ink


def test_a_retracer_traces_about_half_of_each_batch_and_leaves_the_rest(official_digits, monkeypatch):
    monkeypatch.setattr(strokes, "LIMIT", 20)  # a larger set: only this many digits get centre lines
    digits = official_digits
    generator = torch.Generator().manual_seed(0)
    pen = strokes.Retracer(digits, generator)
    assert len(pen.lines) == 20 and pen.chance == strokes.MOST, "64 digits, 20 traceable: those 3 times in 4"
    index = torch.arange(64)
    batch = to_model_input(digits)
    ever = torch.zeros(64, dtype=torch.bool)
    for _ in range(10):
        ever |= (pen.retrace(batch, index, generator) != batch).flatten(1).any(1)
    assert torch.equal(ever, pen.row >= 0), "exactly the digits with centre lines are ever traced"
    traced = pen.retrace(batch, index, generator)
    changed = (traced != batch).flatten(1).any(1)
    assert torch.equal(batch, to_model_input(digits)), "the training set itself is left as it was"
    assert 10 <= int(changed.sum()) <= 19, "about 3 in 4 of them at a time, never all"
    # Each tracing is of its own digit: it overlaps its original well, and better than the other digits of the
    # batch (but for look-alikes: two 1s overlap as well as a 1 and its tracing).
    ink, originals = traced[:, 0] > 0, batch[:, 0] > 0
    best = 0
    for n in torch.nonzero(changed).flatten().tolist():
        overlap = (ink[n] & originals).flatten(1).sum(1).float() / (ink[n] | originals).flatten(1).sum(1)
        assert overlap[n] >= 0.4, f"digit {n} was traced as another"
        best += int(overlap.argmax()) == n
    assert best >= 0.8 * int(changed.sum())


def test_in_a_small_set_about_half_of_each_batch_is_traced(official_digits):
    generator = torch.Generator().manual_seed(0)
    pen = strokes.Retracer(official_digits, generator)
    batch = to_model_input(official_digits)
    share = np.mean([float((pen.retrace(batch, torch.arange(64), generator) != batch).flatten(1).any(1).float().mean())
                     for _ in range(20)])
    assert 0.4 <= share <= 0.6


def test_a_digit_that_leaves_no_centre_line_is_never_traced_as_a_blank(official_digits):
    speck = np.zeros((28, 28), np.uint8)
    speck[8:20, 13:15] = 80  # a stroke too faint to be ink
    pen = strokes.Retracer(np.stack([speck, official_digits[0]]), torch.Generator().manual_seed(0))
    assert pen.row.tolist() == [-1, 1]
    batch = to_model_input(np.stack([speck, official_digits[0]]))
    assert torch.equal(pen.retrace(batch, torch.arange(2), torch.Generator().manual_seed(0))[0], batch[0])


@pytest.mark.parametrize("stroke", [0.05, 0.11, 0.18])
def test_the_canvas_benchmark_fills_an_area_the_digit_inked_solid_whatever_the_pen(stroke):
    """A 9 whose head is inked solid stays a 9 when the benchmark traces it (bench/canvas_styles.py): the head is
    filled as far as the original's, not only swollen in proportion to the pen (a thin pen left a 1: the head a
    third of the original's ink)."""
    from kit.preprocessing import canonical_from_pixels

    nine = np.zeros((28, 28), dtype=np.uint8)
    rows, cols = np.mgrid[:28, :28]
    nine[(rows - 9) ** 2 + (cols - 13) ** 2 <= 25] = 255
    nine[9:24, 17:20] = 255
    plain = canonical_from_pixels(nine)
    traced = canonical_from_bytes(draw(nine, style="transparent", height_share=0.6, stroke=stroke,
                                       rng=np.random.default_rng(0)))
    assert (traced[:14] >= 128).sum() >= 0.8 * (plain[:14] >= 128).sum()


def test_the_canvas_benchmark_counts_and_draws_the_tracings_every_model_misreads(official_digits, tmp_path, capsys):
    """With several models, the benchmark names the tracings none of them reads (in any style), per pen, beside the
    same digits as scans, and draws those whose scans every model reads beside their originals."""
    from PIL import Image

    from bench.canvas_styles import SHEET_TILE, STROKES, canvas_digits, every_model_wrong

    digits = canvas_digits(official_digits, np.arange(len(official_digits)) % 10, count=6, seed=0)
    right = np.ones((2, 2, len(digits)), dtype=bool)  # models x (canvas, plain) x drawings (6 tracings x 3 styles)
    right[:, 0, 0:3] = False  # tracing 0: every model misreads it in every style; its scan is read rightly
    right[0, 0, 3:6] = False
    right[1, 0, 3:5] = False  # tracing 1: the second model reads one of its styles rightly: not counted
    right[:, :, 6:9] = False  # tracing 2: every model misreads it on the canvas and as a scan: counted, not drawn
    right[:, 0, 9:12] = False  # tracing 3: every model misreads it on the canvas, the first also as a scan:
    right[0, 1, 9:12] = False  # counted on the canvas only, and not drawn (not every model reads its scan)
    every_model_wrong(right, digits, official_digits, tmp_path / "misread.png")
    printed = capsys.readouterr().out
    thin, medium = list(STROKES)[:2]
    assert [d.stroke for d in digits[:12:3]] == [thin, thin, thin, medium]
    assert "| tracings, in every style | 2 | 1 | 0 | 3 of 6 |" in printed
    assert "| the same digits as plain images | 1 | 0 | 0 | 1 of 6 |" in printed
    assert "canvas accuracy 33.33-38.89 %, the same digits as plain images 66.67-83.33 %" in printed
    sheet = np.asarray(Image.open(tmp_path / "misread.png"))
    tile = SHEET_TILE
    assert sheet.shape[0] == tile + 22, "one row: only tracing 0 is drawn"
    row = sheet[20:20 + tile]
    original, drawing = row[:, :tile], row[:, tile + 2:2 * tile + 2]
    assert (original > 128).any() and (drawing > 128).any(), "the original and its tracing are both on the sheet"
    assert not (row[:, 2 * tile + 12:] > 128).any(), "nothing else is drawn"


def test_the_canvas_benchmark_finds_the_holes_of_a_drawing():
    """`holes`: the loops a drawing closes (a 0 one, an 8 two, a C none), as shares of the ink's box; a gap of one
    pixel leaves the loop open. `same_holes`: a clear hole (1 % of the box) the other drawing lacks is a change, one
    the other has even faintly (0.3 %) is not."""
    from bench.canvas_styles import holes, same_holes

    rows, cols = np.mgrid[:60, :60]
    ring = lambda cy, cx, r: np.abs(np.hypot(rows - cy, cols - cx) - r) <= 2.5  # noqa: E731
    zero = ring(30, 30, 20)
    eight = ring(18, 30, 11) | ring(41, 30, 12)
    c = zero & ~((cols > 40) & (np.abs(rows - 30) <= 8))
    nicked = zero & ~((cols > 40) & (rows == 30))
    assert [len(holes(ink)) for ink in (zero, eight, c, nicked)] == [1, 2, 0, 0]
    assert 0.4 < holes(zero)[0] < 0.6, "a ring's hole is about half its box"
    assert holes(np.zeros((5, 5), dtype=bool)) == [] and holes(np.ones((5, 5), dtype=bool)) == []
    assert same_holes(holes(zero), holes(ring(30, 30, 18))), "a loop a little narrower is the same loop"
    assert not same_holes(holes(c), holes(zero)), "closing the C made another shape"
    assert not same_holes(holes(eight), holes(eight | (np.hypot(rows - 41, cols - 30) <= 12))), "a loop filled"
    assert same_holes([0.3], [0.3, 0.005]) and same_holes([0.3, 0.005], [0.3]), "a faint hole is no change"
    assert same_holes([0.3, 0.02], [0.3, 0.005]), "a clear hole that is faint in the other drawing is kept"
    assert not same_holes([0.3, 0.02], [0.3, 0.002]), "a clear hole the other drawing all but lacks"


def test_a_canvas_benchmark_tracer_who_looks_draws_again_thinner_where_its_pen_changed_the_digit(official_digits):
    """The official test set's 48th digit is a 2 with a small loop at its foot. The thick pen (18 % of its height)
    fills the loop; the benchmark's tracer looks (bench/canvas_styles.py `looked_at`) and draws the same strokes at
    the same place with a pen 3/4 as wide, which keeps the loop. A thin pen's tracing is kept as it is."""
    from bench.canvas_styles import SCAN_INK, TRACE_INK, coverage, enlarged, holes, looked_at, same_holes

    two = official_digits[47]
    original = holes(enlarged(two) >= SCAN_INK)
    assert original, "the scan's loop"
    blind = coverage(two, height_share=0.5, stroke=0.18, rng=np.random.default_rng(0))
    seen, pen_share = looked_at(two, height_share=0.5, stroke=0.18, rng=np.random.default_rng(0))
    assert not same_holes(original, holes(blind >= TRACE_INK)) and same_holes(original, holes(seen >= TRACE_INK))
    assert pen_share == 19 / 25, "a 25 px pen, then 19 px"
    ink = lambda alpha, axis: np.flatnonzero((alpha >= TRACE_INK).any(axis))  # noqa: E731
    for axis in (0, 1):
        assert abs(ink(blind, axis)[0] - ink(seen, axis)[0]) <= 3, "the same place"
        assert abs(ink(blind, axis)[-1] - ink(seen, axis)[-1]) <= 3, "the same place"
    thin = coverage(two, height_share=0.5, stroke=0.05, rng=np.random.default_rng(0))
    seen_thin, thin_share = looked_at(two, height_share=0.5, stroke=0.05, rng=np.random.default_rng(0))
    assert thin_share == 1.0 and np.array_equal(thin, seen_thin)


def test_a_tracer_who_looks_keeps_its_first_drawing_when_no_thinner_pen_helps(official_digits, monkeypatch):
    from bench import canvas_styles

    two = official_digits[47]
    monkeypatch.setattr(canvas_styles, "same_holes", lambda original, traced: False)
    drawing, pen_share = canvas_styles.looked_at(two, height_share=0.5, stroke=0.18, rng=np.random.default_rng(0))
    blind = canvas_styles.coverage(two, height_share=0.5, stroke=0.18, rng=np.random.default_rng(0))
    assert pen_share == 1.0 and np.array_equal(drawing, blind)


def test_canvas_digits_traced_by_a_looking_tracer_differ_only_where_it_drew_again(official_digits):
    """The same digits, sizes and places whether the tracer looks or not; only the drawings it made again differ."""
    from bench.canvas_styles import canvas_digits

    labels = np.zeros(len(official_digits), dtype=np.uint8)
    blind = canvas_digits(official_digits, labels, count=27, seed=1)
    looked = canvas_digits(official_digits, labels, count=27, seed=1, look=True)
    assert [(d.index, d.style, d.size_band, d.stroke) for d in blind] == [
        (d.index, d.style, d.size_band, d.stroke) for d in looked]
    assert all(d.pen_share == 1.0 for d in blind)
    again = [b.png != s.png for b, s in zip(blind, looked, strict=True)]
    assert again == [s.pen_share < 1 for s in looked]
    assert sum(again) == 3, "one of these 27 tracings is drawn again (in its three styles)"

"""Training digits traced again as a browser canvas delivers a drawing (issue 23): a digit's centre lines, drawn
with a round pen of one width throughout, thin to thick, anti-aliased.

MNIST's strokes come from scanned pen-and-paper digits: their width swells and thins along the stroke. A digit
drawn on the Recognize page is one width everywhere and smooth, which a network trained on scans reads less well
(bench/canvas_styles.py). `centre_lines` thins a training set's digits (up to LIMIT of them) once, at twice their
resolution; `traced` draws a batch of them again with random pen widths, cheaply enough for every training step.
Only handwriting is traced: a dataset from a source in NOT_HANDWRITING (clothes) is not.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from ml_svc.preprocessing import MNIST_MEAN, MNIST_STD

UPSCALE = 2
INK_LEVEL = 96 / 255  # ink at least this strong is part of a stroke
CHUNK = 1024
SHARE = 0.5  # of a training batch's digits traced with a canvas pen
MOST = 0.75  # at most this share of a traceable digit's appearances traced (a set over LIMIT: fewer than SHARE)
LIMIT = 10_000  # digits of a training set given centre lines (a larger set: this many of them, at random)
# Pen widths, in dilations of the centre line at twice the resolution: 1, 2, 3 draw strokes about 1.5, 2.5 and
# 3.5 px wide in the 28x28 image (MNIST's are 2-3 px); wider ones fill small loops.
PENS = (1, 2, 3)
NOT_HANDWRITING = frozenset({"fashion-mnist"})


def _removable(step: int) -> torch.Tensor:
    """For each of the 256 neighbourhoods of a pixel (bit i set: neighbour P(i+2) is ink, P2 north, clockwise),
    whether Zhang-Suen's sub-iteration `step` removes the pixel."""
    table = torch.zeros(256, dtype=torch.bool)
    for code in range(256):
        p = [bool(code >> i & 1) for i in range(8)]
        count = sum(p)
        transitions = sum(1 for i in range(8) if not p[i] and p[(i + 1) % 8])
        if step == 0:
            keep_shape = not (p[0] and p[2] and p[4]) and not (p[2] and p[4] and p[6])
        else:
            keep_shape = not (p[0] and p[2] and p[6]) and not (p[0] and p[4] and p[6])
        table[code] = 2 <= count <= 6 and transitions == 1 and keep_shape
    return table


_REMOVABLE = (_removable(0), _removable(1))
# Where neighbour P(i+2) sits in the image padded by one: north, then clockwise.
_AT = ((0, 1), (0, 2), (1, 2), (2, 2), (2, 1), (2, 0), (1, 0), (0, 0))


def _codes(image: torch.Tensor) -> torch.Tensor:
    """Every pixel's neighbourhood code (0-255) of a (N, H, W) bool batch."""
    h, w = image.shape[1:]
    padded = F.pad(image.to(torch.uint8), (1, 1, 1, 1))
    code = torch.zeros_like(image, dtype=torch.uint8)
    for bit, (dy, dx) in enumerate(_AT):
        code |= padded[:, dy:dy + h, dx:dx + w] << bit
    return code.long()


def thin(ink: torch.Tensor) -> torch.Tensor:
    """Zhang-Suen thinning of a (N, H, W) bool batch: the strokes' centre lines, one pixel wide, connected."""
    image = ink.clone()
    while True:
        changed = False
        for removable in _REMOVABLE:
            remove = image & removable[_codes(image)]
            if bool(remove.any()):
                image &= ~remove
                changed = True
        if not changed:
            return image


def centre_lines(images: np.ndarray) -> torch.Tensor:
    """The centre lines of canonical uint8 digits (N, 28, 28), at twice their resolution: (N, 56, 56) bool."""
    lines = []
    for start in range(0, len(images), CHUNK):
        x = torch.from_numpy(np.ascontiguousarray(images[start:start + CHUNK], dtype=np.float32) / 255.0)[:, None]
        large = F.interpolate(x, scale_factor=UPSCALE, mode="bilinear", align_corners=False)[:, 0]
        lines.append(thin(large >= INK_LEVEL))
    return torch.cat(lines) if lines else torch.zeros((0, 28 * UPSCALE, 28 * UPSCALE), dtype=torch.bool)


def traced(lines: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """(N, 56, 56) centre lines drawn with a round pen of a random width each, as the network's input
    (N, 1, 28, 28), normalised as `preprocessing.to_model_input` does."""
    x = lines[:, None].float()
    dilations = torch.tensor(PENS)[torch.randint(len(PENS), (len(lines),), generator=generator)]
    drawn = torch.zeros_like(x)
    for done in range(1, max(PENS) + 1):
        # Cross and square dilations in turn grow a round (octagonal) pen.
        x = _cross(x) if done % 2 else F.max_pool2d(x, 3, 1, 1)
        drawn = torch.where((dilations == done)[:, None, None, None], x, drawn)
    small = F.avg_pool2d(drawn, UPSCALE)
    peak = small.amax(dim=(2, 3), keepdim=True).clamp_min(1e-6)
    return (small / peak - MNIST_MEAN) / MNIST_STD


def _cross(x: torch.Tensor) -> torch.Tensor:
    """Dilation of a (N, 1, H, W) batch by the 3x3 cross."""
    padded = F.pad(x, (1, 1, 1, 1))
    h, w = x.shape[2], x.shape[3]
    return torch.stack([padded[:, :, dy:dy + h, dx:dx + w] for dy, dx in ((1, 1), (0, 1), (2, 1), (1, 0), (1, 2))]
                       ).amax(0)


class Retracer:
    """The centre lines of (up to LIMIT of) a training set's digits, to trace SHARE of each batch with a canvas
    pen: in a larger set each digit that has them is traced more often (up to MOST of its appearances, so it is
    still seen as scanned), so that SHARE holds as far as that allows."""

    def __init__(self, images: np.ndarray, generator: torch.Generator):
        chosen = torch.randperm(len(images), generator=generator)[:LIMIT].sort().values
        self.lines = centre_lines(np.asarray(images)[chosen.numpy()])
        self.row = torch.full((len(images),), -1, dtype=torch.long)
        drawn = self.lines.flatten(1).any(1)  # a digit too faint or small to leave a centre line is not traced
        self.row[chosen[drawn]] = torch.arange(len(chosen))[drawn]
        self.chance = min(MOST, SHARE * len(images) / max(int(drawn.sum()), 1))

    def retrace(self, batch: torch.Tensor, index: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        """`batch` (normalised input of the training digits at `index`) with about SHARE of its digits traced
        again."""
        rows = self.row[index]
        picked = (torch.rand(len(index), generator=generator) < self.chance) & (rows >= 0)
        if not bool(picked.any()):
            return batch
        batch = batch.clone()
        batch[picked] = traced(self.lines[rows[picked]], generator)
        return batch

"""The node's image-noise measure (src/measure/blood-and-noise.ts + anatomy-probe.ts `noiseHu`), ported to numpy so
that the denoiser's noise-level input is trained on the same number the node feeds it at run time.

Per slice: boxes of (2h+1) x (2h+1) px, h = max(1, round(3 mm / column spacing)) (6 x 6 mm), on a grid of step 2h+1
starting at h, whose centre lies in the body; a box holding any pixel below -200 HU (air, lung) is an edge and is
dropped; a box whose mean is -150..-50 HU is fat, 20..80 HU soft tissue; its population SD is kept. The volume's
noise is the smaller of the median fat-box SD and the median tissue-box SD (each only with >= 20 boxes).

Differences from the node: the body mask here is simulate.body_mask at full resolution (the node uses its coarse
body mask), and the caller chooses the slices (the node takes one every ~15 mm).
"""
from __future__ import annotations

import numpy as np

FAT_HU = (-150.0, -50.0)
TISSUE_HU = (20.0, 80.0)
AIR_HU = -200.0


def box_grid(shape, column_mm: float):
    h = max(1, int(round(3.0 / column_mm)))
    rows = np.arange(h, shape[0] - h, 2 * h + 1)
    cols = np.arange(h, shape[1] - h, 2 * h + 1)
    return h, rows, cols


def box_stats(img: np.ndarray, h: int, rows, cols):
    """Mean, population SD and min of every (2h+1)^2 box centred on the grid (rows x cols)."""
    n = 2 * h + 1
    sub = img[rows[0] - h: rows[-1] + h + 1, cols[0] - h: cols[-1] + h + 1].astype(np.float64)
    sub = sub[: len(rows) * n, : len(cols) * n].reshape(len(rows), n, len(cols), n)
    mean = sub.mean(axis=(1, 3))
    sd = np.sqrt(np.maximum((sub ** 2).mean(axis=(1, 3)) - mean ** 2, 0))
    return mean, sd, sub.min(axis=(1, 3))


def slice_boxes(hu2d: np.ndarray, body2d: np.ndarray, column_mm: float):
    """The homogeneous boxes of one slice: (kind array 'fat'/'tissue', sd array, box-selection mask info)."""
    h, rows, cols = box_grid(hu2d.shape, column_mm)
    mean, sd, mn = box_stats(hu2d, h, rows, cols)
    inbody = body2d[np.ix_(rows, cols)]
    ok = inbody & (mn >= AIR_HU)
    fat = ok & (mean >= FAT_HU[0]) & (mean <= FAT_HU[1])
    tissue = ok & (mean >= TISSUE_HU[0]) & (mean <= TISSUE_HU[1])
    return fat, tissue, sd


def volume_noise(hu: np.ndarray, body: np.ndarray, column_mm: float, boxes_from: np.ndarray | None = None,
                 min_boxes: int = 20) -> dict:
    """noiseHu of slices hu [Z,H,W] as the node defines it. With `boxes_from` (same shape) the boxes are chosen on that
    image (e.g. the full-dose slice) and the SD is taken on `hu` (e.g. a pure-noise difference image), as the node's
    output check measures an output on the input's boxes."""
    fat_sd, tissue_sd = [], []
    for z in range(hu.shape[0]):
        sel = hu[z] if boxes_from is None else boxes_from[z]
        fat, tissue, sd_sel = slice_boxes(sel, body[z], column_mm)
        if boxes_from is None:
            sd = sd_sel
        else:
            h, rows, cols = box_grid(hu[z].shape, column_mm)
            sd = box_stats(hu[z], h, rows, cols)[1]
        fat_sd.extend(sd[fat].tolist())
        tissue_sd.extend(sd[tissue].tolist())
    fat_m = float(np.median(fat_sd)) if len(fat_sd) >= min_boxes else None
    tis_m = float(np.median(tissue_sd)) if len(tissue_sd) >= min_boxes else None
    vals = [v for v in (fat_m, tis_m) if v is not None]
    return {"noiseHu": min(vals) if vals else None, "fatNoiseHu": fat_m, "tissueNoiseHu": tis_m,
            "fatBoxes": len(fat_sd), "tissueBoxes": len(tissue_sd)}

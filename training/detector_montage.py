"""A montage of detector v2's candidates on one scan, from a detection_froc.py result (the fold that never saw the
scan): axial 64 x 64 mm crops (lung window) through each candidate's centroid; top row the kept findings (classifier
probability >= its threshold, green frame), then the dropped candidates with the highest probabilities (red frame),
last row the readers' reference lesions (yellow frame) with the nearest candidate. A small white dot marks the centre.

  /usr/bin/python3 training/detector_montage.py --froc $CT_CACHE/det2_froc_foldA.json --scan lidc-idri-0002-ncct \
      --out models/nodule-detector-small.png
"""
from __future__ import annotations

import argparse
import json
import os
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from common import DEFAULT_DATA, load_series_hu, window, write_png_gray  # noqa: E402
from detection_froc import Geometry  # noqa: E402

TILE = 96


def tile(hu, k, r, c, ps, colour):
    half = int(round(32 / ps))
    k = int(np.clip(round(k), 0, hu.shape[0] - 1))
    r, c = int(round(r)), int(round(c))
    pad = np.pad(hu[k], half, constant_values=-1000)
    crop = pad[r:r + 2 * half, c:c + 2 * half]
    idx = (np.arange(TILE) * crop.shape[0] / TILE).astype(int)
    g = window(crop[np.ix_(idx, idx)], 1500, -600)
    img = np.stack([g] * 3, -1)
    img[TILE // 2 - 1:TILE // 2 + 1, TILE // 2 - 1:TILE // 2 + 1] = 255
    img[:3], img[-3:], img[:, :3], img[:, -3:] = colour, colour, colour, colour
    return img


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--froc", required=True)
    p.add_argument("--scan", default="lidc-idri-0002-ncct")
    p.add_argument("--data", default=DEFAULT_DATA)
    p.add_argument("--out", required=True)
    p.add_argument("--per-row", type=int, default=8)
    a = p.parse_args()
    rep = json.load(open(a.froc))
    scan = rep["scans"][a.scan]
    thr = rep["classifier"]["threshold"]
    folder = os.path.join(a.data, a.scan)
    hu, _ = load_series_hu(folder)
    geo = Geometry(folder)
    ps = geo.ps[0]
    cands = sorted(scan["candidates"], key=lambda c: -c["score"])
    kept = [c for c in cands if c["score"] >= thr][:a.per_row]
    dropped = [c for c in cands if c["score"] < thr][:a.per_row]
    rows = []
    for group, colour in ((kept, (0, 200, 0)), (dropped, (220, 0, 0))):
        tiles = [tile(hu, *c["voxel"], ps, colour) for c in group]
        rows.append(tiles)
    les = []
    for lesion in scan["lesions"]:
        # the lesion centre in voxels: invert geo.mm on the nearest slice
        centre = np.array(lesion["centreMm"])
        k = int(np.argmin(np.abs(geo.ipp[:, 2] - centre[2])))
        d = centre - geo.ipp[k]
        c = float(np.dot(d, geo.iop[:3]) / geo.ps[1])
        r = float(np.dot(d, geo.iop[3:]) / geo.ps[0])
        les.append(tile(hu, k, r, c, ps, (230, 200, 0)))
    rows.append(les)
    w = a.per_row * (TILE + 4)
    canvas = np.zeros((len(rows) * (TILE + 4), w, 3), np.uint8)
    for i, tiles in enumerate(rows):
        for j, t in enumerate(tiles):
            canvas[i * (TILE + 4):i * (TILE + 4) + TILE, j * (TILE + 4):j * (TILE + 4) + TILE] = t
    write_png_gray(a.out, canvas)
    print(f"wrote {a.out}: {len(kept)} kept (>= {thr}), {len(dropped)} dropped, {len(les)} reader lesions; "
          f"kept scores {[round(c['score'], 3) for c in kept]}, dropped {[round(c['score'], 3) for c in dropped]}")


if __name__ == "__main__":
    main()

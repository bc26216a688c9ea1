"""Held-out evaluation of the nodule detector on synthetic insertions: whole-volume probability maps (slice by
slice, 2.5D, whole 512x512 slices as the service runs them), then the product's finding rule (voxels above the
threshold, 26-connected 3D components, components under 10 mm3 dropped), then matching: an inserted nodule is hit
when a finding's centroid lies within max(5 mm, its radius) of the nodule's centre. Findings within 25 mm of a real
reader-marked nodule (LIDC XML) are not counted as false positives here (the real-read comparison judges them).
"""
from __future__ import annotations

import numpy as np
from scipy import ndimage

from detection_data import det_norm, insert_nodules_volume

THRESHOLDS = [0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 0.95]
MIN_VOLUME_MM3 = 10.0


def predict_volume(model, hu, slices=None, batch=4, context=3):
    """Probability map [Z,H,W] for `slices` (default all) of hu; others are zero."""
    import torch

    Z, H, W = hu.shape
    half = context // 2
    out = np.zeros(hu.shape, np.float32)
    ks = list(range(Z)) if slices is None else sorted(set(slices))
    Hp, Wp = (H + 7) // 8 * 8, (W + 7) // 8 * 8
    model.eval()
    with torch.no_grad():
        for i in range(0, len(ks), batch):
            chunk = ks[i:i + batch]
            x = np.zeros((len(chunk), context, Hp, Wp), np.float32)
            for n, k in enumerate(chunk):
                idx = np.clip(np.arange(k - half, k + half + 1), 0, Z - 1)
                x[n, :, :H, :W] = det_norm(hu[idx])
            y = model(torch.from_numpy(x)).numpy()
            for n, k in enumerate(chunk):
                out[k] = y[n, 0, :H, :W]
    return out


def findings(prob, spacing, threshold):
    """Centroids (voxel zyx) and volumes (mm3) of 26-connected components above threshold, >= MIN_VOLUME_MM3."""
    lab, n = ndimage.label(prob > threshold, structure=np.ones((3, 3, 3), bool))
    if n == 0:
        return []
    voxel = float(np.prod(spacing))
    counts = np.bincount(lab.ravel())[1:]
    cents = ndimage.center_of_mass(np.ones_like(prob), lab, range(1, n + 1))
    return [(np.array(c), counts[i] * voxel) for i, c in enumerate(cents) if counts[i] * voxel >= MIN_VOLUME_MM3]


def score(found, inserted, spacing, real_voxels, real_mm=25.0):
    hit = 0
    fp = 0
    used = set()
    for c, d, _n in inserted:
        tol = max(5.0, d / 2)
        dists = [np.linalg.norm((f[0] - c) * spacing) for f in found]
        ok = [i for i, dd in enumerate(dists) if dd <= tol]
        if ok:
            hit += 1
            used.update(ok)
    for i, f in enumerate(found):
        if i in used:
            continue
        if any(np.linalg.norm((f[0] - np.array(r, float)) * spacing) < real_mm for r in real_voxels):
            continue
        fp += 1
    return hit, fp


def evaluate(model, vol, rounds, per_round, seed, real_voxels=(), context=3, log=print):
    """Per threshold: sensitivity over all inserted nodules and false positives per scan (one scan = one round),
    also split by diameter (< 6 mm, 6-10 mm, >= 10 mm)."""
    rng = np.random.default_rng(seed)
    lo, hi = int(vol.usable_slices.min()), int(vol.usable_slices.max()) + 1
    base = predict_volume(model, vol.hu, slices=range(lo, hi), context=context)
    half = context // 2
    res = {t: {"hits": 0, "n": 0, "fp": 0, "bySize": {"<6": [0, 0], "6-10": [0, 0], ">=10": [0, 0]}} for t in THRESHOLDS}
    for r in range(rounds):
        hu, placed = insert_nodules_volume(vol, per_round, rng, avoid_voxels=real_voxels)
        touched = set()
        for c, d, _n in placed:
            ext = int(np.ceil((d / 2 * 1.4 + 3) / vol.spacing[0])) + half
            touched.update(range(max(0, int(c[0]) - ext), min(hu.shape[0], int(c[0]) + ext + 2)))
        prob = base.copy()
        touched = {k for k in touched if lo <= k < hi}
        upd = predict_volume(model, hu, slices=touched, context=context)
        for k in touched:
            prob[k] = upd[k]
        for t in THRESHOLDS:
            found = findings(prob, vol.spacing, t)
            for c, d, nvox in placed:
                h, _ = score(found, [(c, d, nvox)], vol.spacing, [])
                key = "<6" if d < 6 else ("6-10" if d < 10 else ">=10")
                res[t]["bySize"][key][0] += h
                res[t]["bySize"][key][1] += 1
            h, fp = score(found, placed, vol.spacing, real_voxels)
            res[t]["hits"] += h
            res[t]["n"] += len(placed)
            res[t]["fp"] += fp
        log(f"  {vol.name} round {r + 1}/{rounds}: {len(placed)} inserted; at 0.5: "
            f"{res[0.5]['hits']}/{res[0.5]['n']} hits, {res[0.5]['fp']} FP so far")
    out = {}
    for t in THRESHOLDS:
        v = res[t]
        out[str(t)] = {
            "sensitivity": v["hits"] / max(1, v["n"]),
            "hits": v["hits"],
            "inserted": v["n"],
            "fpPerScan": v["fp"] / rounds,
            "bySize": {k: f"{a}/{b}" for k, (a, b) in v["bySize"].items()},
        }
    return out

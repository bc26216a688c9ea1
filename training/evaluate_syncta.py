#!/usr/bin/env python3
"""Evaluate models/syncta-unet-small.onnx with onnxruntime-node (the service's runtime).

1. Held-out slices of lidc-idri-0001-cect (same split as train_syncta.py): NMAE, PSNR, SSIM of input (simulated
   NCCT) vs target (real CECT) and of output (Syn-CTA) vs target, on whole 512x512 slices and inside the body;
   MAE (HU) inside the de-enhanced voxels and in the rest of the body.
2. The real non-contrast series lidc-idri-0002-ncct: mean HU before/after in a descending-aorta ROI and in muscle,
   fat and lung ROIs (placed by common.find_uniform_roi around fixed coordinates, see ROIS), and the mean absolute
   change over the whole body of the evaluated slices.
3. models/syncta-unet-small.png: slice 130 (of 261) of lidc-idri-0002 before | after, W400/L40.

  /usr/bin/python3 training/evaluate_syncta.py [--data ../shared/data/ct] [--out /tmp/ct-cache/syncta_eval.json]
"""
from __future__ import annotations

import argparse
import json
import os
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import common as C  # noqa: E402
from simulate import body_mask  # noqa: E402
from train_syncta import MODEL_ID, load_pairs, split  # noqa: E402

NCCT = "lidc-idri-0002-ncct"
# name: (search centre (row, col) on the 512x512 slice, search half-width px, ROI radius px, allowed mean HU range)
ROIS = {
    "descending aorta": ((290, 296), 12, 6, (0.0, 100.0)),
    "paraspinal muscle": ((395, 230), 15, 5, (20.0, 90.0)),
    "subcutaneous fat (anterior)": ((110, 200), 25, 5, (-150.0, -50.0)),
    "right lung": ((250, 130), 20, 8, (-950.0, -700.0)),
}
NCCT_SLICES = list(range(120, 191, 5))  # slice indices (inferior->superior) of lidc-idri-0002 evaluated
PNG_SLICE = 130


def run_model(onnx_path, hu):
    x = C.hu_to_net(hu)[:, None]
    return C.net_to_hu(C.ort_run(onnx_path, x)[:, 0])


def main():
    ap = C.data_arg(argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter))
    ap.add_argument("--holdout", type=int, nargs=2, default=[56, 80])
    ap.add_argument("--gap", type=int, default=2)
    ap.add_argument("--out", default=os.path.join(C.CACHE_DIR, "syncta_eval.json"))
    args = ap.parse_args()
    onnx_path = os.path.join(C.MODELS_DIR, f"{MODEL_ID}.onnx")
    res = {"model": MODEL_ID, "sha256": C.sha256_file(onnx_path)}

    # 1. held-out simulated pairs
    hu, sim, core, changed, _ = load_pairs(args.data)
    _, held = split(hu.shape[0], args.holdout[0], args.holdout[1], args.gap)
    tgt = np.clip(hu[held], C.HU_MIN, C.HU_MAX)
    inp = np.clip(sim[held], C.HU_MIN, C.HU_MAX)
    out = run_model(onnx_path, sim[held])
    body = body_mask(hu[held])
    ch = changed[held]
    res["heldout_slices"] = [held[0], held[-1]]
    res["heldout_whole"] = {"input": C.slice_metrics(inp, tgt), "output": C.slice_metrics(out, tgt)}

    def masked(a, b, m):
        return float(np.abs(a - b)[m].mean())

    res["heldout_mae_hu"] = {
        "deenhanced_voxels": {"input": masked(inp, tgt, ch), "output": masked(out, tgt, ch), "n": int(ch.sum())},
        "body_not_deenhanced": {"input": masked(inp, tgt, body & ~ch), "output": masked(out, tgt, body & ~ch)},
        "body": {"input": masked(inp, tgt, body), "output": masked(out, tgt, body)},
    }
    # mean HU in the de-enhanced voxels (target ~ contrast blood)
    res["heldout_mean_hu_deenhanced"] = {"input": float(inp[ch].mean()), "output": float(out[ch].mean()),
                                         "target": float(tgt[ch].mean())}
    # NMAE / PSNR inside the body only (SSIM is a windowed whole-image measure, so only whole-slice values)
    res["heldout_body"] = {
        "input": {"nmae": masked(inp, tgt, body) / C.HU_RANGE,
                  "psnr": float(10 * np.log10(C.HU_RANGE ** 2 / np.mean((inp - tgt)[body] ** 2)))},
        "output": {"nmae": masked(out, tgt, body) / C.HU_RANGE,
                   "psnr": float(10 * np.log10(C.HU_RANGE ** 2 / np.mean((out - tgt)[body] ** 2)))},
    }

    # 2. real NCCT
    nhu, _ = C.load_series_hu(os.path.join(args.data, NCCT))
    sl = NCCT_SLICES
    before = np.clip(nhu[sl], C.HU_MIN, C.HU_MAX)
    after = run_model(onnx_path, nhu[sl])
    rois = {}
    for name, (centre, search, radius, rng) in ROIS.items():
        b_vals, a_vals, centres = [], [], []
        for k, z in enumerate(sl):
            p = C.find_uniform_roi(before[k], centre, search, radius, rng)
            if p is None:
                continue
            m = C.disk(before[k].shape, p, radius)
            b_vals.append(before[k][m])
            a_vals.append(after[k][m])
            centres.append([z, int(p[0]), int(p[1])])
        b, a = np.concatenate(b_vals), np.concatenate(a_vals)
        rois[name] = {"before_mean": float(b.mean()), "after_mean": float(a.mean()), "before_sd": float(b.std()),
                      "after_sd": float(a.std()), "mean_abs_change": float(np.abs(a - b).mean()),
                      "radius_px": radius, "slices_used": len(centres), "centres_z_row_col": centres}
    res["ncct_rois"] = rois
    nbody = body_mask(nhu[sl])
    d = np.abs(after - before)
    res["ncct_body"] = {"slices": [sl[0], sl[-1], 5], "mean_abs_change": float(d[nbody].mean()),
                        "frac_changed_gt_20hu": float((d[nbody] > 20).mean()),
                        "frac_changed_gt_100hu": float((d[nbody] > 100).mean())}

    # 3. PNG
    k = sl.index(PNG_SLICE)
    img = np.concatenate([C.window(before[k]), np.full((512, 4), 255, np.uint8), C.window(after[k])], axis=1)
    C.write_png_gray(os.path.join(C.MODELS_DIR, f"{MODEL_ID}.png"), img)
    res["png"] = {"slice": PNG_SLICE, "window": "W400/L40", "layout": "left = input NCCT, right = Syn-CTA output"}

    os.makedirs(os.path.dirname(args.out), exist_ok=True)
    with open(args.out, "w") as f:
        json.dump(res, f, indent=1)
    print(json.dumps({k: v for k, v in res.items()}, indent=1))


if __name__ == "__main__":
    main()

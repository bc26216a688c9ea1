#!/usr/bin/env python3
"""Evaluate models/denoise-dncnn-small.onnx with onnxruntime-node on the held-out simulated quarter-dose slices of
lidc-idri-0002-ncct (prep_denoise.py HELD): NMAE, PSNR, SSIM (data range 4095 HU, whole slice and inside the body)
of low-dose input vs full-dose and denoised output vs full-dose, and noise SD in uniform ROIs (descending aorta,
paraspinal muscle; placed on the full-dose slice by common.find_uniform_roi).

  /usr/bin/python3 training/evaluate_denoise.py [--data ../shared/data/ct] [--png /tmp/ct-cache/denoise.png]
"""
from __future__ import annotations

import argparse
import json
import os
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import common as C  # noqa: E402
from prep_denoise import cache_path  # noqa: E402
from simulate import body_mask  # noqa: E402
from train_denoise import MODEL_ID  # noqa: E402

ROIS = {
    "descending aorta": ((290, 296), 12, 6, (0.0, 100.0)),
    "paraspinal muscle": ((395, 230), 15, 5, (20.0, 90.0)),
}


def main():
    ap = C.data_arg(argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter))
    ap.add_argument("--dose", type=float, default=0.25)
    ap.add_argument("--out", default=os.path.join(C.CACHE_DIR, "denoise_eval.json"))
    ap.add_argument("--png", default=os.path.join(C.CACHE_DIR, "denoise.png"))
    args = ap.parse_args()
    onnx_path = os.path.join(C.MODELS_DIR, f"{MODEL_ID}.onnx")
    d = np.load(cache_path(args.dose))
    clean = np.clip(d["held_clean"], C.HU_MIN, C.HU_MAX)
    low = np.clip(d["held_low"], C.HU_MIN, C.HU_MAX)
    out = C.net_to_hu(C.ort_run(onnx_path, C.hu_to_net(d["held_low"])[:, None])[:, 0])
    body = body_mask(clean)
    res = {"model": MODEL_ID, "sha256": C.sha256_file(onnx_path), "held_slices": d["held_idx"].tolist(),
           "calib": json.loads(str(d["calib"]))}
    res["whole"] = {"input": C.slice_metrics(low, clean), "output": C.slice_metrics(out, clean)}

    def body_m(a):
        e = (a - clean)[body]
        return {"nmae": float(np.abs(e).mean() / C.HU_RANGE), "psnr": float(10 * np.log10(C.HU_RANGE ** 2 / np.mean(e ** 2))),
                "mae_hu": float(np.abs(e).mean())}

    res["body"] = {"input": body_m(low), "output": body_m(out)}
    rois = {}
    for name, (centre, search, radius, rng) in ROIS.items():
        sds = {"full_dose": [], "low_dose": [], "denoised": []}
        means = {"full_dose": [], "low_dose": [], "denoised": []}
        centres = []
        for k, z in enumerate(res["held_slices"]):
            p = C.find_uniform_roi(clean[k], centre, search, radius, rng)
            if p is None:
                continue
            m = C.disk(clean[k].shape, p, radius)
            centres.append([int(z), int(p[0]), int(p[1])])
            for key, img in (("full_dose", clean), ("low_dose", low), ("denoised", out)):
                sds[key].append(float(img[k][m].std()))
                means[key].append(float(img[k][m].mean()))
        rois[name] = {"mean_sd": {k: float(np.mean(v)) for k, v in sds.items()},
                      "mean_hu": {k: float(np.mean(v)) for k, v in means.items()},
                      "radius_px": radius, "centres_z_row_col": centres}
    res["roi_noise"] = rois
    k = len(clean) // 2
    img = np.concatenate([C.window(low[k]), np.full((512, 4), 255, np.uint8), C.window(out[k]),
                          np.full((512, 4), 255, np.uint8), C.window(clean[k])], axis=1)
    C.write_png_gray(args.png, img)
    res["png"] = {"path": args.png, "slice": int(res["held_slices"][k]), "layout": "low-dose | denoised | full-dose, W400/L40"}
    with open(args.out, "w") as f:
        json.dump(res, f, indent=1)
    print(json.dumps(res, indent=1))


if __name__ == "__main__":
    main()

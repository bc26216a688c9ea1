#!/usr/bin/env python3
"""Evaluate models/denoise-ffdnet-small.onnx with onnxruntime-node on the held-out simulated quarter-dose slices of
lidc-idri-0002-ncct (prep_denoise.py HELD): NMAE, PSNR, SSIM (data range 4095 HU, whole slice and inside the body)
of low-dose input vs full-dose and denoised output vs full-dose, and noise SD in uniform ROIs (descending aorta,
paraspinal muscle; placed on the full-dose slice by common.find_uniform_roi).

Also: mean absolute error in the lung (body voxels whose 9x9 px full-dose mean is below -600 HU), the rest of the
body and the air outside it; and the model's CPU time with onnxruntime-node (training/ort_time.cjs: intraOpNumThreads
2, the manifest's batch size, the 8 held-out 512x512 slices, one warm-up run, then --time-repeats passes over them).
With --compare OTHER.onnx another denoiser (e.g. the previous denoise-dncnn-small, from git history) is evaluated and
timed the same way, right after.

  /usr/bin/python3 training/evaluate_denoise.py [--data ../shared/data/ct] [--png /tmp/ct-cache/denoise.png]
      [--compare /tmp/ct-cache/denoise-dncnn-small.onnx]
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile

import numpy as np
from scipy import ndimage as ndi

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import common as C  # noqa: E402
from prep_denoise import cache_path  # noqa: E402
from simulate import body_mask  # noqa: E402
from train_denoise import MODEL_ID  # noqa: E402

ROIS = {
    "descending aorta": ((290, 296), 12, 6, (0.0, 100.0)),
    "paraspinal muscle": ((395, 230), 15, 5, (20.0, 90.0)),
}


def ort_time(onnx_path: str, x: np.ndarray, threads: int, batch: int, repeats: int) -> dict:
    """CPU time per slice with onnxruntime-node (training/ort_time.cjs) on x [N,1,H,W] float32 (network units)."""
    x = np.ascontiguousarray(x, dtype="<f4")
    n, _, h, w = x.shape
    with tempfile.TemporaryDirectory() as td:
        fin = os.path.join(td, "in.f32")
        x.tofile(fin)
        load_before = os.getloadavg()
        out = subprocess.run(["node", os.path.join(os.path.dirname(__file__), "ort_time.cjs"), onnx_path, str(h), str(w),
                              str(threads), str(batch), str(n), str(repeats), fin],
                             check=True, stdout=subprocess.PIPE, text=True).stdout
    res = json.loads(out)
    res["loadavg1_before_after"] = [round(load_before[0], 2), round(os.getloadavg()[0], 2)]
    res["cpus"] = os.cpu_count()
    return res


def main():
    ap = C.data_arg(argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter))
    ap.add_argument("--dose", type=float, default=0.25)
    ap.add_argument("--out", default=os.path.join(C.CACHE_DIR, "denoise_eval.json"))
    ap.add_argument("--png", default=os.path.join(C.CACHE_DIR, "denoise.png"))
    ap.add_argument("--time-threads", type=int, default=2, help="onnxruntime intraOpNumThreads for the timing")
    ap.add_argument("--time-repeats", type=int, default=3, help="timed passes over the held-out slices")
    ap.add_argument("--compare", default=None,
                    help="another denoiser .onnx (same I/O and intensity mapping) to evaluate and time the same way")
    args = ap.parse_args()
    onnx_path = os.path.join(C.MODELS_DIR, f"{MODEL_ID}.onnx")
    d = np.load(cache_path(args.dose))
    clean = np.clip(d["held_clean"], C.HU_MIN, C.HU_MAX)
    low = np.clip(d["held_low"], C.HU_MIN, C.HU_MAX)
    x = C.hu_to_net(d["held_low"])[:, None]
    out = C.net_to_hu(C.ort_run(onnx_path, x)[:, 0])
    body = body_mask(clean)
    # lung: inside the body where the full-dose slice, averaged over 9x9 px, is below -600 HU
    lung = body & (ndi.uniform_filter(clean, (1, 9, 9)) < -600)
    res = {"model": MODEL_ID, "sha256": C.sha256_file(onnx_path), "held_slices": d["held_idx"].tolist(),
           "calib": json.loads(str(d["calib"]))}
    res["whole"] = {"input": C.slice_metrics(low, clean), "output": C.slice_metrics(out, clean)}

    def body_m(a):
        e = (a - clean)[body]
        return {"nmae": float(np.abs(e).mean() / C.HU_RANGE), "psnr": float(10 * np.log10(C.HU_RANGE ** 2 / np.mean(e ** 2))),
                "mae_hu": float(np.abs(e).mean())}

    def region_mae(a):
        return {"lung": float(np.abs(a - clean)[lung].mean()), "body_not_lung": float(np.abs(a - clean)[body & ~lung].mean()),
                "air_outside_body": float(np.abs(a - clean)[~body].mean())}

    res["body"] = {"input": body_m(low), "output": body_m(out)}
    res["region_mae_hu"] = {"input": region_mae(low), "output": region_mae(out),
                            "voxels": {"lung": int(lung.sum()), "body_not_lung": int((body & ~lung).sum()),
                                       "air_outside_body": int((~body).sum())}}
    rois = {}
    for name, (centre, search, radius, rng) in ROIS.items():
        rois[name] = {"radius_px": radius, "centres_z_row_col": [], "masks": []}
        for k, z in enumerate(res["held_slices"]):
            p = C.find_uniform_roi(clean[k], centre, search, radius, rng)
            if p is not None:
                rois[name]["centres_z_row_col"].append([int(z), int(p[0]), int(p[1])])
                rois[name]["masks"].append((k, C.disk(clean[k].shape, p, radius)))

    def roi_stats(imgs):
        r = {}
        for name, roi in rois.items():
            r[name] = {"mean_sd": {key: float(np.mean([img[k][m].std() for k, m in roi["masks"]])) for key, img in imgs.items()},
                       "mean_hu": {key: float(np.mean([img[k][m].mean() for k, m in roi["masks"]])) for key, img in imgs.items()}}
        return r

    res["roi_noise"] = {name: {**v, "radius_px": rois[name]["radius_px"], "centres_z_row_col": rois[name]["centres_z_row_col"]}
                        for name, v in roi_stats({"full_dose": clean, "low_dose": low, "denoised": out}).items()}
    k = len(clean) // 2
    img = np.concatenate([C.window(low[k]), np.full((512, 4), 255, np.uint8), C.window(out[k]),
                          np.full((512, 4), 255, np.uint8), C.window(clean[k])], axis=1)
    C.write_png_gray(args.png, img)
    with open(os.path.join(C.MODELS_DIR, f"{MODEL_ID}.json")) as fh:
        batch = int(json.load(fh)["batchSize"])
    res["ort_cpu_time"] = {"model": ort_time(onnx_path, x, args.time_threads, batch, args.time_repeats)}
    if args.compare:
        other = C.net_to_hu(C.ort_run(args.compare, x)[:, 0])
        res["compare"] = {"path": args.compare, "sha256": C.sha256_file(args.compare),
                          "whole": {"output": C.slice_metrics(other, clean)}, "body": {"output": body_m(other)},
                          "region_mae_hu": {"output": region_mae(other)},
                          "roi_noise": roi_stats({"denoised": other})}
        res["ort_cpu_time"]["compare"] = ort_time(args.compare, x, args.time_threads, batch, args.time_repeats)
    res["png"] = {"path": args.png, "slice": int(res["held_slices"][k]), "layout": "low-dose | denoised | full-dose, W400/L40"}
    with open(args.out, "w") as f:
        json.dump(res, f, indent=1)
    print(json.dumps(res, indent=1))


if __name__ == "__main__":
    main()

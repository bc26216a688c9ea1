#!/usr/bin/env python3
"""Leave-one-patient-out evaluation of denoise-ffdnet-small v2 beside v1 and the unchanged low-dose input, per dose.

For each fold (a patient left out of that fold's training, train_denoise_v2.py --holdout P), on P's simulated slices
(prep_denoise_v2.py) at each dose fraction, against the full-dose slice, through onnxruntime-node:
- NMAE, PSNR (data range 4095 HU), SSIM (common.ssim: 7x7 uniform window, ct-enhance eval's definition), per slice,
  averaged; HU clipped to [-1024, 3071];
- MAE (HU) by region: lung (body voxels whose 9x9 px full-dose mean is below -600 HU), rest of the body, air outside;
- noise: the node's measure (noise_measure.py) on the full-dose slice's homogeneous fat / soft-tissue boxes, each
  image's box SDs, median ("noise SD in uniform ROIs", the ROIs chosen automatically, as the node does);
- the node's output checks as they would judge it: noise ratio (output over input on the input's boxes, limit 0.9)
  and tissue mean change (mean output - input over body pixels whose 5x5 px input mean is -20..120 HU, limit +-5 HU;
  the node also leaves the blood pool out, this does not).
v2's noise map: the node's measure on that patient's low-dose slices (what the node feeds it). v1 (the shipped 0.1.0,
from git) takes the image alone. Also times both with onnxruntime-node (training/ort_time.cjs, 2 threads, batch 1
as the service runs the CPU) and writes a PNG of a held-out slice at the strongest dose: low-dose | v1 | v2 | full.

  /usr/bin/python3 training/evaluate_denoise_v2.py [--folds ricord-1a,hcc-005] [--v1 $CT_CACHE/denoise2_v1.onnx]
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys

import numpy as np
from scipy import ndimage as ndi

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import common as C  # noqa: E402
from networks import NOISE_MAP_SCALE  # noqa: E402
from noise_measure import box_grid, box_stats, slice_boxes  # noqa: E402
from simulate import body_mask  # noqa: E402
from train_denoise_v2 import MODEL_ID, load_pairs, noise_labels  # noqa: E402

V1_COMMIT = "8ec8a7c"  # the last commit shipping v1 (0.1.0)


def box_sds(img, ref, body, col):
    """SD of img in the homogeneous boxes chosen on ref, over slices: (sds of all boxes)."""
    out = []
    for z in range(img.shape[0]):
        fat, tissue, _ = slice_boxes(ref[z], body[z], col)
        h, rows, cols = box_grid(img[z].shape, col)
        sd = box_stats(img[z], h, rows, cols)[1]
        out.extend(sd[fat | tissue].tolist())
    return np.array(out)


def main():
    ap = C.data_arg(argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter))
    ap.add_argument("--folds", default="ricord-1a,hcc-005")
    ap.add_argument("--shipped-fold", default="ricord-1a", help="the fold whose model is models/denoise-ffdnet-small.onnx")
    ap.add_argument("--v1", default=os.path.join(C.CACHE_DIR, "denoise2_v1.onnx"))
    ap.add_argument("--out", default=os.path.join(C.CACHE_DIR, "denoise2_eval.json"))
    ap.add_argument("--png", default=os.path.join(C.MODELS_DIR, f"{MODEL_ID}.png"))
    ap.add_argument("--time-repeats", type=int, default=2)
    ap.add_argument("--fold-onnx", default=os.path.join(C.CACHE_DIR, "denoise2_fold-{}.onnx"),
                    help="each fold's model ({} = the held-out patient); the shipped fold's is models/<id>.onnx")
    args = ap.parse_args()
    if not os.path.exists(args.v1):
        with open(args.v1, "wb") as fh:
            fh.write(subprocess.run(["git", "show", f"{V1_COMMIT}:models/{MODEL_ID}.onnx"], cwd=C.REPO_ROOT, check=True,
                                    stdout=subprocess.PIPE).stdout)
    d, meta = load_pairs()
    labels = noise_labels(meta)
    patients = [s["patient"] for s in meta["series"]]
    res = {"doses": meta["doses"], "v1": {"path": args.v1, "sha256": C.sha256_file(args.v1), "commit": V1_COMMIT},
           "shipped_fold": args.shipped_fold, "folds": {}}
    for fold in args.folds.split(","):
        onnx_v2 = args.fold_onnx.format(fold)
        idx = np.flatnonzero([patients[s] == fold for s in d["series"]])
        sidx = d["series"][idx]
        clean = np.clip(d["clean"][idx], C.HU_MIN, C.HU_MAX)
        body = body_mask(clean)
        lung = body & (ndi.uniform_filter(clean, (1, 9, 9)) < -600)
        col = meta["series"][int(sidx[0])]["pixelMm"][1]
        fold_res = {"onnx": onnx_v2, "sha256": C.sha256_file(onnx_v2), "slices": int(len(idx)),
                    "series": sorted({meta["series"][int(s)]["series"] for s in sidx}), "doses": {}}
        for di, f in enumerate(meta["doses"]):
            low = np.clip(d["low"][idx, di], C.HU_MIN, C.HU_MAX)
            x = C.hu_to_net(d["low"][idx, di])
            level = labels[sidx, di] * NOISE_MAP_SCALE
            x2 = np.stack([x, np.broadcast_to(level[:, None, None], x.shape)], 1).astype(np.float32)
            out_v2 = C.net_to_hu(C.ort_run(onnx_v2, x2)[:, 0])
            out_v1 = C.net_to_hu(C.ort_run(args.v1, x[:, None].copy())[:, 0])
            imgs = {"input": low, "v1": out_v1, "v2": out_v2}
            tissue = body & (ndi.uniform_filter(low, (1, 5, 5)) >= -20) & (ndi.uniform_filter(low, (1, 5, 5)) <= 120)
            sd_in = box_sds(low, low, body, col)
            r = {"noiseMapHu": sorted({round(float(v), 1) for v in labels[sidx, di]}), "metrics": {}}
            full_sd = float(np.median(box_sds(clean, clean, body, col)))
            r["noiseSdFullDose"] = full_sd
            for name, img in imgs.items():
                e = np.abs(img - clean)
                m = C.slice_metrics(img, clean)
                m.update({"maeLung": float(e[lung].mean()), "maeBodyNotLung": float(e[body & ~lung].mean()),
                          "maeAir": float(e[~body].mean()),
                          "noiseSd": float(np.median(box_sds(img, clean, body, col))),
                          "noiseRatio": float(np.median(box_sds(img, low, body, col)) / np.median(sd_in)),
                          "tissueMeanChangeHu": float((img - low)[tissue].mean()),
                          "tissueMeanVsFullHu": float((img - clean)[tissue].mean())})
                r["metrics"][name] = m
            fold_res["doses"][str(f)] = r
            print(fold, f, json.dumps({k: {kk: round(vv, 4) for kk, vv in v.items()} for k, v in r["metrics"].items()}), flush=True)
            if fold == args.shipped_fold and f == min(meta["doses"]):
                # the held-out slice with the most soft tissue, W400/L40
                k = int(np.argmax(tissue.sum(axis=(1, 2))))
                sep = np.full((clean.shape[1], 4), 255, np.uint8)
                C.write_png_gray(args.png, np.concatenate([C.window(low[k]), sep, C.window(out_v1[k]), sep,
                                                           C.window(out_v2[k]), sep, C.window(clean[k])], axis=1))
                zs = [(si, z) for si, sr in enumerate(meta["series"]) for z in sr["slices"]]  # the npz's order
                si, z = zs[int(idx[k])]
                res["png"] = {"path": os.path.relpath(args.png, C.REPO_ROOT), "fold": fold, "dose": f,
                              "series": meta["series"][si]["series"], "slice": int(z),
                              "layout": "low-dose | v1 | v2 | full dose, W400/L40"}
        res["folds"][fold] = fold_res
    # speed: batch 1 (the service's CPU batch), 2 threads, 8 slices of the shipped fold at the middle dose
    idx = np.flatnonzero([patients[s] == args.shipped_fold for s in d["series"]])[:8]
    x = C.hu_to_net(d["low"][idx, 1])
    x2 = np.stack([x, np.full_like(x, 0.3)], 1)
    res["ortCpuTime"] = {"v2": ort_time2(args.fold_onnx.format(args.shipped_fold), x2, args.time_repeats),
                         "v1": ort_time2(args.v1, x[:, None].copy(), args.time_repeats)}
    with open(args.out, "w") as fh:
        json.dump(res, fh, indent=1)
    print(json.dumps(res["ortCpuTime"], indent=1))


def ort_time2(onnx_path, x, repeats):
    """ort_time.cjs with the input's channel count (batch 1, 2 threads)."""
    import tempfile

    x = np.ascontiguousarray(x, dtype="<f4")
    n, c, h, w = x.shape
    with tempfile.TemporaryDirectory() as td:
        fin = os.path.join(td, "in.f32")
        x.tofile(fin)
        load_before = os.getloadavg()[0]
        out = subprocess.run(["node", os.path.join(os.path.dirname(__file__), "ort_time.cjs"), onnx_path, str(h), str(w),
                              "2", "1", str(n), str(repeats), fin, str(c)], check=True, stdout=subprocess.PIPE, text=True).stdout
    r = json.loads(out)
    r["loadavg1_before_after"] = [round(load_before, 2), round(os.getloadavg()[0], 2)]
    return r


if __name__ == "__main__":
    main()

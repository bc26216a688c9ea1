#!/usr/bin/env python3
"""Evaluate Syn-CTA v2 (and v1 beside it) with onnxruntime-node, the service's runtime.

1. Leave-one-patient-out on the real HCC pairs (syncta_pairs.py): for each patient, the fold model trained without
   that patient (train_syncta.py --holdout) against the registered real arterial phase, beside "unchanged input"
   and v1 (the model at commit b8b9192). Metrics as the CTA-GAN / RegGAN code computes them: per slice, HU clipped
   to [-1024, 3071], NMAE = MAE / 4095, PSNR = 10 log10(4095^2 / MSE), SSIM = scikit-image structural_similarity with
   a 7x7 uniform window (data range 4095) on the whole slice, then the mean over slices; NMAE and PSNR also without
   the background (voxels where the target is <= -1024 HU, as RegGAN's code drops target == -1) and inside the
   body. Regions: the blood pool (the arterial phase's enhanced blood pool, simulate.blood_pool_mask, where the
   non-contrast slice is not already bright: syncta_pairs.iv_blood_pool drops oral contrast and calcification) and the tissue
   outside it (body minus the blood pool dilated 2 px): MAE against the target and mean signed change from input.
2. Tissue preservation on real non-contrast chest CT no model here was trained on (LIDC-IDRI-0002, RICORD) with the
   shipped v2 (trained on all three patients) and v1: per tissue ROI (training/syncta_rois.json: liver, spleen,
   muscle, fat placed by hand away from vessels; aorta) mean change and 95th percentile of |change|; share of body
   voxels changed by more than 100 HU on the ROI slices.
   Volume-wide on the same chests (the ROIs miss what they do not cover): every voxel brightened by more than 100 HU,
   split into 3D components (6-connected) that reach the mediastinum (between the lungs, row by row: the heart,
   aorta and pulmonary arteries, and what the model extends from them) and isolated ones (a brightened muscle, a
   blob in the liver: false enhancements); their volumes in ml, the share of soft tissue (input -20..120 HU, not
   lung) the isolated ones cover, and the soft tissue's mean change outside the mediastinum-connected components;
   and the largest area of soft tissue brightened outside the mediastinum on one slice (cm2), which a false
   enhancement touching a brightened vessel reaches though it counts as connected (round 5's gastric fundus).
3. Kernel consistency: the same chest smoothed (Gaussian sigma 1 px) and sharpened (unsharp mask, amount 1, sigma
   1 px), as a softer and a sharper kernel would reconstruct it: aortic ROI mean after the model, per version.
4. models/syncta-unet-small-unseen.png: per unseen chest, the slice with the largest isolated brightening: input |
   output | brightened (green: connected to the mediastinum, red: isolated), W400/L40.
5. models/syncta-unet-small.png: held-out HCC slice (input | v2 fold | real arterial) and the LIDC-IDRI-0002 ROI slice
   v2 changes most (input | v2 | change), W400/L40.

  /usr/bin/python3 training/evaluate_syncta.py [--v1 /tmp/ct-cache/syncta-v1.onnx]
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
from simulate import body_mask, lungs_and_mediastinum  # noqa: E402
from syncta_pairs import PATIENTS, iv_blood_pool, load_pair  # noqa: E402
from train_syncta import MODEL_ID, unsharp  # noqa: E402

V1_COMMIT = "b8b9192"
NCCT_CHESTS = ["lidc-idri-0002-ncct", "ricord-ncct-jpegls"]
ROI_FILE = os.path.join(os.path.dirname(os.path.abspath(__file__)), "syncta_rois.json")


def run_model(onnx_path, hu):
    return C.net_to_hu(C.ort_run(onnx_path, C.hu_to_net(hu)[:, None])[:, 0])


def v1_onnx(path):
    if not os.path.exists(path):
        with open(path, "wb") as f:
            f.write(subprocess.run(["git", "-C", C.REPO_ROOT, "show", f"{V1_COMMIT}:models/{MODEL_ID}.onnx"],
                                   check=True, stdout=subprocess.PIPE).stdout)
    return path


def pair_metrics(out, tgt, inp, body, pool):
    out, tgt, inp = (np.clip(a, C.HU_MIN, C.HU_MAX).astype(np.float64) for a in (out, tgt, inp))
    per = []
    for o, t, b in zip(out, tgt, body):
        fg = t > C.HU_MIN
        per.append([C.nmae(o, t), C.psnr(o, t), C.ssim(o, t), C.nmae(o[fg], t[fg]), C.psnr(o[fg], t[fg]),
                    C.nmae(o[b], t[b]), C.psnr(o[b], t[b])])
    per = np.array(per)
    tissue = body & ~np.stack([ndi.binary_dilation(p, iterations=2) for p in pool])
    names = ["nmae", "psnr", "ssim", "nmae_foreground", "psnr_foreground", "nmae_body", "psnr_body"]
    res = {n: float(per[:, i].mean()) for i, n in enumerate(names)}
    res["bloodpool"] = {"mae_hu": float(np.abs(out - tgt)[pool].mean()), "mean_hu": float(out[pool].mean()),
                        "target_mean_hu": float(tgt[pool].mean()), "voxels": int(pool.sum())}
    res["tissue"] = {"mae_hu": float(np.abs(out - tgt)[tissue].mean()),
                     "mean_change_from_input_hu": float((out - inp)[tissue].mean()),
                     "p95_abs_change_from_input_hu": float(np.percentile(np.abs(out - inp)[tissue], 95))}
    return res


def leave_one_out(data, v1):
    res, png = {}, None
    for patient in PATIENTS:
        fold = os.path.join(C.CACHE_DIR, f"syncta-v2-fold-{patient}.onnx")
        if not os.path.exists(fold):
            print(f"no fold model {fold}: run train_syncta.py --holdout {patient}", file=sys.stderr)
            continue
        pair = load_pair(data, patient)
        inp, tgt, body, pool = pair["ncct"], pair["arterial"], pair["body"], iv_blood_pool(pair)
        outs = {"unchanged input": inp, "v1": run_model(v1, inp), "v2 (fold without this patient)": run_model(fold, inp)}
        res[patient] = {"slices": int(inp.shape[0]), "thickness_mm": json.loads(str(pair["report"]))["ncct_thickness_mm"],
                        **{k: pair_metrics(o, tgt, inp, body, pool) for k, o in outs.items()}}
        if png is None:
            k = int(np.argmax(pool.sum(axis=(1, 2))))
            png = [inp[k], outs["v2 (fold without this patient)"][k], tgt[k]]
    return res, png


def chest_volume(data, name):
    """(HU volume, ml per voxel, cm2 per pixel)."""
    hu, meta = C.load_series_hu(C.decoded_folder(os.path.join(data, name)))
    dz = abs(float(np.median(np.diff(meta["positions"]))))
    pixel_mm2 = meta["pixelSpacing"][0] * meta["pixelSpacing"][1]
    return hu, pixel_mm2 * dz / 1000.0, pixel_mm2 / 100.0


def whole_volume_output(onnx, name, hu):
    """The model's output on every slice, cached by the model's sha256 (several minutes per chest on 2 cores)."""
    cache = os.path.join(C.CACHE_DIR, f"syncta_out_{name}_{C.sha256_file(onnx)[:12]}.npy")
    if not os.path.exists(cache):
        np.save(cache, run_model(onnx, hu).astype(np.float32))
    return np.load(cache)


def roi_values(img, rois):
    vals = [img[r["slice"]][C.disk(img.shape[1:], (r["row"], r["col"]), r["radius"])] for r in rois]
    return np.concatenate(vals)


def tissue_preservation(data, models, rois):
    res, png, unseen = {}, None, []
    for name in NCCT_CHESTS:
        if name not in rois:
            continue
        hu, voxel_ml, pixel_cm2 = chest_volume(data, name)
        whole = np.clip(hu, C.HU_MIN, C.HU_MAX)
        res[name] = {"volume_wide": {}}
        for label, onnx in models.items():
            out = whole_volume_output(onnx, name, whole)
            res[name]["volume_wide"][label], central, isolated = volume_wide(whole, out, voxel_ml, pixel_cm2)
            if label == "v2":
                row, k = volume_wide_png(whole, out, central, isolated)
                unseen.append(row)
                res[name]["volume_wide"]["png_slice"] = k + 1
        series_rois = {t: v for t, v in rois[name].items() if isinstance(v, list) and v}
        slices = sorted({r["slice"] for v in series_rois.values() for r in v})
        idx = {z: i for i, z in enumerate(slices)}
        before = np.clip(hu[slices], C.HU_MIN, C.HU_MAX)
        body = body_mask(before)
        res[name]["roi_slices"] = len(slices)
        for label, onnx in models.items():
            after = run_model(onnx, before)
            d = after - before
            local = lambda v: [{**r, "slice": idx[r["slice"]]} for r in v]  # noqa: E731
            res[name][label] = {
                "body_changed_gt_100hu_percent": float(100 * (np.abs(d)[body] > 100).mean()),
                **{t: {"mean_before": float(roi_values(before, local(v)).mean()),
                       "mean_change": float(roi_values(d, local(v)).mean()),
                       "p95_abs_change": float(np.percentile(np.abs(roi_values(d, local(v))), 95))}
                   for t, v in series_rois.items()}}
            if label == "v2" and png is None:
                k = int(np.argmax([np.abs(d[i])[body[i]].mean() for i in range(len(slices))]))  # the slice it changes most
                png = [before[k], after[k], slices[k]]
        res[name]["kernel_consistency"] = kernel_consistency(before, models, local(series_rois.get("aorta", [])))
    if unseen:
        C.write_png_gray(os.path.join(C.MODELS_DIR, f"{MODEL_ID}-unseen.png"), np.concatenate(unseen, axis=0)[::2, ::2])
    return res, png



def volume_wide(hu, out, spacing_ml, pixel_cm2=None):
    """With pixel_cm2, also the largest area of soft tissue brightened > 100 HU outside the row-wise mediastinum on
    one slice (as the node's tissueBrightenedSliceCm2, without its 30 mm disk around the aorta): a false enhancement
    that touches a brightened vessel counts as connected to the mediastinum, not as isolated (round 5's gastric fundus)."""
    body = body_mask(hu)
    lungs, mediastinum = lungs_and_mediastinum(hu, body, spacing_ml)
    bright = body & (out - hu > 100)
    comp, n = ndi.label(bright)
    central_ids = np.unique(comp[mediastinum & bright])
    central = np.isin(comp, central_ids[central_ids > 0])
    isolated = bright & ~central
    tissue = body & ~lungs & (hu >= -20) & (hu <= 120)
    sizes = np.sort(ndi.sum(isolated, comp, index=np.arange(1, n + 1)))[::-1]
    outside = tissue & ~ndi.binary_dilation(central, iterations=2)
    return {"brightened_ml": float(bright.sum() * spacing_ml), "connected_to_mediastinum_ml": float(central.sum() * spacing_ml),
            "isolated_ml": float(isolated.sum() * spacing_ml),
            "largest_isolated_ml": [round(float(v * spacing_ml), 1) for v in sizes[:5] if v > 0],
            "isolated_share_of_soft_tissue_percent": float(100 * (isolated & tissue).sum() / max(1, tissue.sum())),
            "soft_tissue_mean_change_outside_connected_hu": float((out - hu)[outside].mean()),
            **({} if pixel_cm2 is None else largest_slice_area(bright & tissue & ~mediastinum, pixel_cm2))}, central, isolated


def largest_slice_area(mask, pixel_cm2):
    per_slice = mask.sum(axis=(1, 2))
    k = int(np.argmax(per_slice))
    return {"largest_slice_area_outside_mediastinum_cm2": round(float(per_slice[k] * pixel_cm2), 1),
            "largest_slice_area_slice": k + 1}


def volume_wide_png(hu, out, central, isolated):
    k = int(np.argmax(isolated.sum(axis=(1, 2))))
    a, b = C.window(hu[k]), C.window(out[k])
    over = np.stack([a, a, a], -1)
    over[central[k]] = [0, 200, 0]
    over[isolated[k]] = [255, 0, 0]
    return np.concatenate([np.stack([a, a, a], -1), np.stack([b, b, b], -1), over], axis=1), k


def kernel_variants(hu):
    """The same slices as reconstructed, smoothed (Gaussian sigma 1 px: a softer kernel) and sharpened (unsharp mask,
    amount 1, sigma 1 px: a sharper one)."""
    return {"original": hu, "smoothed": np.stack([ndi.gaussian_filter(s, 1.0) for s in hu]), "sharpened": unsharp(hu)}


def kernel_consistency(before, models, aorta):
    if not aorta:
        return None
    out = {}
    for label, onnx in models.items():
        means = {k: float(roi_values(run_model(onnx, v), aorta).mean()) for k, v in kernel_variants(before).items()}
        out[label] = {**means, "spread_hu": max(means.values()) - min(means.values())}
    return out


def main():
    ap = C.data_arg(argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter))
    ap.add_argument("--v1", default=os.path.join(C.CACHE_DIR, "syncta-v1.onnx"))
    ap.add_argument("--out", default=os.path.join(C.CACHE_DIR, "syncta_eval.json"))
    args = ap.parse_args()
    v1 = v1_onnx(args.v1)
    v2 = os.path.join(C.MODELS_DIR, f"{MODEL_ID}.onnx")
    with open(ROI_FILE) as f:
        rois = json.load(f)
    res = {"model": MODEL_ID, "sha256": C.sha256_file(v2), "v1_commit": V1_COMMIT,
           "ssim": "skimage structural_similarity, 7x7 uniform window, data_range 4095, per slice"}
    res["leave_one_patient_out"], png_pair = leave_one_out(args.data, v1)
    res["real_ncct_chest"], png_chest = tissue_preservation(args.data, {"v1": v1, "v2": v2}, rois)
    rows = []
    if png_pair is not None:
        rows.append(np.concatenate([C.window(png_pair[0]), C.window(png_pair[1]), C.window(png_pair[2])], axis=1))
    if png_chest is not None:
        rows.append(np.concatenate([C.window(png_chest[0]), C.window(png_chest[1]),
                                    C.window(png_chest[1] - png_chest[0], 400, 0)], axis=1))
    if rows:
        C.write_png_gray(os.path.join(C.MODELS_DIR, f"{MODEL_ID}.png"), np.concatenate(rows, axis=0))
        res["png"] = ("top: held-out HCC patient (first fold evaluated), input | v2 fold model | registered real arterial; "
                      f"bottom: LIDC-IDRI-0002 slice {png_chest[2] + 1 if png_chest else '-'} of 261 (of the ROI slices, the one v2 changes "
                      "most) input | v2 | change (W400/L0); W400/L40")
    with open(args.out, "w") as f:
        json.dump(res, f, indent=1)
    print(json.dumps(res, indent=1))


if __name__ == "__main__":
    main()

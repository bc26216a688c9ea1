"""Detector v2, stage 2: the candidate classifier (false-positive reduction), a small 3D CNN (networks.build_fpr) on
32^3 patches at 1 mm around each candidate of the fold's candidate network (train_detector_v2.py).

Training data, on the fold's training series only (the held-out patient is never touched):
  candidates = the network's probability map over the whole volume (torch, whole slices), 26-connected components
  above the map threshold (0.5), >= 10 mm3, a lung voxel within 15 mm of the centroid (as the node gates them, v2's lungMarginMm);
  positives: candidates on a reader-outlined nodule (inside its mask or within its radius of its centre) and, in
  insertion rounds (synthetic nodules inserted in the real lung, the network rerun on 192 x 192 crops around each),
  candidates within max(5 mm, radius) of an inserted centre, plus a patch at every inserted centre (detected or not);
  negatives: every other candidate, the components between 0.2 and the map threshold (hard negatives), and points
  in the lungs at HU > -500 (vessels, fissures, pleura); candidates within 6 mm of a < 3 mm point mark are left out.
Augmentation: flips of the three axes, in-plane 90-degree turns, shifts of up to 3 mm, kernel (smooth / sharp).
The harvest is saved ($CT_CACHE/det2_<tag>/fpr_patches.npz) and reused while the network is the same.
Balanced batches (half positives), --max-iters iterations (cosine learning rate over them); the threshold 0.5 is fixed beforehand (train_fpr.py does not look at any
held-out figure).

  nice -n 19 /usr/bin/python3 training/train_fpr.py --holdout lidc-idri-0002-ncct
Writes $CT_CACHE/det2_<tag>/fpr.pt, fpr.onnx, fpr_train.json and the fold's manifest (nodule-detector-small.json
with candidateClassifier) beside net.onnx; --ship also writes models/. Not for diagnostic use.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import time

import numpy as np
from scipy import ndimage

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from common import CACHE_DIR, count_params, data_arg, seed_everything, set_threads, sha256_file  # noqa: E402
from detection_data import det_norm, insert_nodules_volume, kernel_augment, lung_gate  # noqa: E402
from fpr_patch import normalise, patch_hu  # noqa: E402
from networks import CONTEXT, FPR_PATCH, build_detector, build_fpr  # noqa: E402
from train_detector_v2 import TAGS, fold_dir, training_volumes  # noqa: E402

MAP_THRESHOLD = 0.5        # the manifest's top-level threshold: candidates of the probability map
CLASSIFIER_THRESHOLD = 0.5  # fixed before any held-out figure was seen (balanced training: the even-odds point)
HARD_THRESHOLD = 0.2
MIN_VOLUME_MM3 = 10.0
LUNG_MARGIN_MM = 15.0  # the manifest's findings.lungMarginMm for v2: half the largest in-scope diameter (30 mm), so a
# nodule that large, lung all around, keeps its centre within the margin (at 5 mm, every solid nodule over ~10 mm was dropped)
MARGIN = 3  # extra voxels (mm) each side of the stored patch: the shift augmentation


def net_map(model, hu, slices=None, rows=None, cols=None, batch=4):
    """Probability map of the 2.5D network on hu[:, rows, cols] (whole slices by default) for `slices`, padded to 8."""
    import torch

    Z = hu.shape[0]
    sub = hu[:, rows or slice(None), cols or slice(None)]
    H, W = sub.shape[1:]
    Hp, Wp = -(-H // 8) * 8, -(-W // 8) * 8
    ks = list(range(Z)) if slices is None else list(slices)
    out = np.zeros((len(ks), H, W), np.float32)
    with torch.no_grad():
        for i in range(0, len(ks), batch):
            chunk = ks[i:i + batch]
            x = np.zeros((len(chunk), CONTEXT, Hp, Wp), np.float32)
            for n, k in enumerate(chunk):
                idx = np.clip(np.arange(k - CONTEXT // 2, k + CONTEXT // 2 + 1), 0, Z - 1)
                x[n, :, :H, :W] = det_norm(sub[idx])
            out[i:i + len(chunk)] = model(torch.from_numpy(x)).numpy()[:, 0, :H, :W]
    return out


def comps(prob, t, spacing):
    """Components above t (26-connected) >= MIN_VOLUME_MM3: list of (centroid voxel, peak p, voxel count)."""
    lab, n = ndimage.label(prob > t, structure=np.ones((3, 3, 3), bool))
    if n == 0:
        return []
    counts = np.bincount(lab.ravel(), minlength=n + 1)[1:]
    keep = [i + 1 for i in range(n) if counts[i] * np.prod(spacing) >= MIN_VOLUME_MM3]
    if not keep:
        return []
    cents = ndimage.center_of_mass(np.ones(prob.shape, np.uint8), lab, keep)
    peaks = ndimage.maximum(prob, lab, keep)
    return [(np.array(c), float(pk), int(counts[i - 1])) for i, c, pk in zip(keep, cents, peaks)]


def gate_of(vol, margin_mm=LUNG_MARGIN_MM):
    """Where the node keeps a candidate: a lung voxel within margin_mm (detection_data.lung_gate)."""
    return lung_gate(vol.lung, vol.spacing, margin_mm)


def stored_patch(hu, centre, spacing):
    return normalise(patch_hu(hu, centre, spacing, p=FPR_PATCH + 2 * MARGIN)).astype(np.float16)


def harvest(model, vol, rng, rounds, per_round, log):
    """(patches [n, P+2M, ...] float16, labels, kinds) from one training volume."""
    t0 = time.time()
    gate = gate_of(vol)
    # the map where the gate can keep a candidate: the slices and the row / column box of the gated lungs (+16 px)
    zz, yy, xx = (np.nonzero(gate.any(axis=a))[0] for a in ((1, 2), (0, 2), (0, 1)))
    H, W = gate.shape[1:]
    rs, cs = slice(max(0, yy[0] - 16), min(H, yy[-1] + 17)), slice(max(0, xx[0] - 16), min(W, xx[-1] + 17))
    prob = np.zeros(vol.hu.shape, np.float32)
    prob[zz[0]:zz[-1] + 1, rs, cs] = net_map(model, vol.hu, range(zz[0], zz[-1] + 1), rs, cs)
    real = getattr(vol, "real", None)
    pts = np.array(getattr(vol, "points", []), float).reshape(-1, 3)
    lesions = []
    if real is not None and real.any():
        lab, n = ndimage.label(real)
        for i in range(1, n + 1):
            vox = np.argwhere(lab == i)
            c = vox.mean(0)
            d = 2 * ((len(vox) * np.prod(vol.spacing)) * 3 / (4 * np.pi)) ** (1 / 3)
            lesions.append((c, d, lab == i))
    patches, labels, kinds = [], [], []

    def near_points(c, mm=6.0):
        return len(pts) and np.min(np.linalg.norm((pts - c) * vol.spacing, axis=1)) < mm

    def on_lesion(c):
        k, r, cc = np.round(c).astype(int)
        for lc, d, m in lesions:
            if m[np.clip(k, 0, m.shape[0] - 1), np.clip(r, 0, m.shape[1] - 1), np.clip(cc, 0, m.shape[2] - 1)] or \
                    np.linalg.norm((c - lc) * vol.spacing) < d / 2:
                return True
        return False

    def add(c, label, kind):
        patches.append(stored_patch(vol.hu if kind != "inserted" else cur_hu, c, vol.spacing))
        labels.append(label)
        kinds.append(kind)

    cur_hu = vol.hu
    n_cand = 0
    for thr, kind in ((MAP_THRESHOLD, "candidate"), (HARD_THRESHOLD, "hard")):
        for c, pk, _n in comps(prob, thr, vol.spacing):
            k, r, cc = np.round(c).astype(int)
            if not gate[np.clip(k, 0, gate.shape[0] - 1), r, cc] or near_points(c):
                continue
            if on_lesion(c):
                if kind == "candidate":
                    add(c, 1, "real")
                continue
            if kind == "hard" and pk > MAP_THRESHOLD:
                continue  # already taken at the map threshold
            add(c, 0, kind)
            n_cand += kind == "candidate"
    for lc, d, _m in lesions:  # the real nodule's own centre, jittered
        for _ in range(12):
            add(lc + rng.normal(0, 1.5, 3) / vol.spacing, 1, "real")
    # vessels, fissures, pleura: points in the gated lung region above -500 HU
    dense = np.argwhere(gate & (vol.hu > -500) & ~ndimage.binary_dilation(vol.real if real is not None else np.zeros(1, bool), iterations=3)
                        if real is not None else gate & (vol.hu > -500))
    for i in rng.choice(len(dense), size=min(150, len(dense)), replace=False):
        c = dense[i].astype(float)
        if not near_points(c):
            add(c, 0, "dense")
    log(f"  {vol.name}: {n_cand} negative candidates at {MAP_THRESHOLD}, {kinds.count('hard')} hard, "
        f"{kinds.count('real')} real-nodule patches, map {time.time() - t0:.0f} s")
    # insertion rounds: the network on crops around each inserted nodule
    hits = tot = 0
    for _r in range(rounds):
        cur_hu, placed = insert_nodules_volume(vol, per_round, rng, avoid_voxels=[lc for lc, _d, _m in lesions] + [tuple(p) for p in pts])
        for c, d, _n in placed:
            ext = int(np.ceil((d / 2 * 1.4 + 3) / vol.spacing[0])) + 1
            k0, k1 = max(0, int(c[0]) - ext), min(vol.hu.shape[0], int(c[0]) + ext + 2)
            r0 = int(np.clip(c[1] - 96, 0, vol.hu.shape[1] - 192))
            c0 = int(np.clip(c[2] - 96, 0, vol.hu.shape[2] - 192))
            local = net_map(model, cur_hu, range(k0, k1), slice(r0, r0 + 192), slice(c0, c0 + 192))
            inner = np.zeros_like(local)
            inner[:, 48:144, 48:144] = local[:, 48:144, 48:144]
            found = False
            for lc, pk, _n in comps(inner, MAP_THRESHOLD, vol.spacing):
                g = lc + np.array([k0, r0, c0])
                if np.linalg.norm((g - c) * vol.spacing) <= max(5.0, d / 2):
                    add(g, 1, "inserted")
                    found = True
            hits += found
            tot += 1
            add(c + rng.normal(0, 1.0, 3) / vol.spacing, 1, "inserted")
    log(f"  {vol.name}: {rounds} rounds, {hits}/{tot} inserted nodules found by the network; {time.time() - t0:.0f} s")
    return patches, labels, kinds


def augment(p, rng):
    """A random 32^3 crop (shift up to MARGIN mm) of a stored patch, flips, an in-plane 90-degree turn, kernel."""
    o = rng.integers(0, 2 * MARGIN + 1, size=3)
    x = p[o[0]:o[0] + FPR_PATCH, o[1]:o[1] + FPR_PATCH, o[2]:o[2] + FPR_PATCH].astype(np.float32)
    for ax in range(3):
        if rng.random() < 0.5:
            x = np.flip(x, ax)
    if rng.random() < 0.5:
        x = np.swapaxes(x, 1, 2)
    if rng.random() < 0.5:
        hu = x * 1400.0 - 1000.0
        x = normalise(kernel_augment(hu, rng, spacing_mm=1.0, p=1.0))
    return np.ascontiguousarray(x)


def main():
    p = data_arg(argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter))
    p.add_argument("--holdout", required=True, choices=list(TAGS))
    p.add_argument("--minutes", type=float, default=30.0, help="wall-clock cap")
    p.add_argument("--max-iters", type=int, default=310, help="iterations (fold B's 4-minute run reached 310)")
    p.add_argument("--rounds", type=int, default=2)
    p.add_argument("--per-round", type=int, default=10)
    p.add_argument("--batch", type=int, default=48)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--ship", action="store_true", help="also write models/nodule-fpr-small.onnx")
    args = p.parse_args()
    import torch
    import torch.nn.functional as F

    seed_everything(0)
    set_threads(args.threads)
    out_dir = fold_dir(args.holdout)
    lines = []

    def log(msg):
        print(msg, flush=True)
        lines.append(msg)

    t0 = time.time()
    net = build_detector(sigmoid=True)
    net.load_state_dict(torch.load(os.path.join(out_dir, "net.pt"))["state"])
    net.eval()
    rng = np.random.default_rng(1)
    cache = os.path.join(out_dir, "fpr_patches.npz")  # the harvest, reused by a rerun of the same network
    net_sha = sha256_file(os.path.join(out_dir, "net.pt"))
    if os.path.exists(cache) and str(np.load(cache)["net"]) == net_sha:
        z = np.load(cache)
        P, L, K = list(z["patches"]), z["labels"], [str(k) for k in z["kinds"]]
        log(f"harvest reused from {cache}")
    else:
        P, L, K = [], [], []
        for v in training_volumes(args.data, args.holdout, log):
            a, b, c = harvest(net, v, rng, args.rounds, args.per_round, log)
            P += a
            L += b
            K += c
        L = np.array(L)
        np.savez(cache, patches=np.stack(P), labels=L, kinds=np.array(K), net=net_sha)
    rng = np.random.default_rng(2)
    counts = {k: int(sum(1 for kk in K if kk == k)) for k in sorted(set(K))}
    log(f"{len(P)} patches ({int(L.sum())} positive): {counts}; harvest {time.time() - t0:.0f} s")
    pos, neg = np.nonzero(L == 1)[0], np.nonzero(L == 0)[0]
    # negatives: half the draws from the network's own candidates (at the map threshold and the hard ones)
    cand = np.array([i for i in neg if K[i] in ("candidate", "hard")])
    dense = np.array([i for i in neg if K[i] == "dense"])
    model = build_fpr(sigmoid=False)
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3, weight_decay=1e-4)
    budget, start, it, losses = args.minutes * 60, time.time(), 0, []
    model.train()
    while time.time() - start < budget and it < args.max_iters:
        frac = it / args.max_iters
        for g in opt.param_groups:
            g["lr"] = 1e-3 * 0.5 * (1 + np.cos(np.pi * min(1.0, frac)))
        h = args.batch // 2
        negs = np.concatenate([rng.choice(cand, h - h // 3), rng.choice(dense, h // 3)]) if len(cand) else rng.choice(dense, h)
        idx = np.concatenate([rng.choice(pos, h), negs])
        x = torch.from_numpy(np.stack([augment(P[i], rng) for i in idx])[:, None])
        y = torch.from_numpy(L[idx].astype(np.float32)[:, None])
        loss = F.binary_cross_entropy_with_logits(model.logits(x), y)
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(float(loss))
        it += 1
        if it % 25 == 0:
            log(f"iter {it} loss {np.mean(losses[-25:]):.4f} ({(time.time() - start) / 60:.1f} min)")
    seconds = time.time() - start
    torch.save({"state": model.state_dict(), "iters": it, "seconds": seconds}, os.path.join(out_dir, "fpr.pt"))
    model.sigmoid = True
    model.eval()
    # training-set separation (not a held-out figure): probabilities of the un-augmented centre crops
    with torch.no_grad():
        crops = np.stack([q[MARGIN:MARGIN + FPR_PATCH, MARGIN:MARGIN + FPR_PATCH, MARGIN:MARGIN + FPR_PATCH].astype(np.float32) for q in P])
        pr = np.concatenate([model(torch.from_numpy(crops[i:i + 64, None])).numpy()[:, 0] for i in range(0, len(crops), 64)])
    train_sep = {k: {"n": int(sum(1 for kk in K if kk == k)),
                     "meanP": round(float(np.mean([pr[i] for i in range(len(K)) if K[i] == k])), 3),
                     "aboveThreshold": int(sum(1 for i in range(len(K)) if K[i] == k and pr[i] >= CLASSIFIER_THRESHOLD))}
                 for k in counts}
    log(f"trained {it} iterations in {seconds / 60:.1f} min; training patches at {CLASSIFIER_THRESHOLD}: {train_sep}")
    onnx_path = os.path.join(out_dir, "fpr.onnx")
    torch.onnx.export(model, torch.zeros(2, 1, FPR_PATCH, FPR_PATCH, FPR_PATCH), onnx_path, input_names=["patch"],
                      output_names=["probability"], opset_version=13,
                      dynamic_axes={"patch": {0: "batch"}, "probability": {0: "batch"}}, do_constant_folding=True)
    import onnx

    onnx.checker.check_model(onnx.load(onnx_path))
    write_fold_manifest(out_dir)
    with open(os.path.join(out_dir, "fpr_train.json"), "w") as f:
        json.dump({"holdout": args.holdout, "params": count_params(model), "iters": it, "trainMinutes": seconds / 60,
                   "harvestSeconds": round(start - t0), "patches": counts, "positives": int(L.sum()),
                   "trainingSeparation": train_sep, "log": lines}, f, indent=1)


def classifier_entry(fpr_file, sha):
    return {"file": fpr_file, "sha256": sha, "input": "patch", "output": "probability", "patchVoxels": FPR_PATCH,
            "spacingMm": 1.0, "intensity": {"huMin": -1000, "huMax": 400, "networkMin": 0, "networkMax": 1},
            "threshold": CLASSIFIER_THRESHOLD}


def write_fold_manifest(out_dir):
    """The fold's manifest beside its net.onnx / fpr.onnx: the shipped manifest's fields with this fold's files."""
    from common import MODELS_DIR

    man = json.load(open(os.path.join(MODELS_DIR, "nodule-detector-small.json")))
    man.pop("fp16", None)
    man["findings"]["lungMarginMm"] = LUNG_MARGIN_MM
    man.update({"file": "net.onnx", "sha256": sha256_file(os.path.join(out_dir, "net.onnx")), "threshold": MAP_THRESHOLD,
                "candidateClassifier": classifier_entry("fpr.onnx", sha256_file(os.path.join(out_dir, "fpr.onnx")))})
    with open(os.path.join(out_dir, "nodule-detector-small.json"), "w") as f:
        json.dump(man, f, indent=2)
        f.write("\n")


if __name__ == "__main__":
    main()

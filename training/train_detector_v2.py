"""Detector v2, stage 1: the candidate network (the same 2.5D U-Net as v1, 3 slices in, per-pixel nodule probability
out, sigmoid inside), retrained from scratch on CPU with
  - synthetic nodules inserted into the real lungs (detection_data.py, as v1),
  - the radiologists' outlined nodules of the read training patient(s) as real targets (LIDC XML; points of nodules
    < 3 mm are left out of the loss, non-nodule marks are background),
  - kernel (smooth / sharp) and slice-thickness augmentation,
  - more series: RICORD-1A (non-contrast, 1.25 mm) and CPTAC C3N-00247 (contrast, 3 mm, B70f sharp kernel) besides
    the LIDC patients.
Leave-one-patient-out: --holdout lidc-idri-0002-ncct (fold A) or --holdout lidc-idri-0001-cect (fold B) trains without
that patient; --holdout none is the shipped run. Stage 2 (the false-positive-reduction classifier): train_fpr.py.

  nice -n 19 /usr/bin/python3 training/train_detector_v2.py --holdout lidc-idri-0002-ncct --minutes 10
Writes $CT_CACHE/det2_<tag>/net.pt, net.onnx, net_train.json. Not for diagnostic use.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import time

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from common import CACHE_DIR, check_onnx_against_torch, count_params, data_arg, decoded_folder, seed_everything, set_threads  # noqa: E402
from detection_data import ReadVolume, det_norm, load_volume, make_training_sample_v2  # noqa: E402
from networks import CONTEXT, build_detector  # noqa: E402

READ = {"lidc-idri-0001-cect": "069.xml", "lidc-idri-0002-ncct": "071.xml"}
OTHER = ["ricord-ncct-jpegls", "cptac-c3n-00247-cect-chest"]
TAGS = {"lidc-idri-0002-ncct": "foldA", "lidc-idri-0001-cect": "foldB", "none": "ship"}


def training_volumes(data, holdout, log=print):
    vols = []
    for name, xml in READ.items():
        if name == holdout:
            continue
        folder = os.path.join(data, name)
        vols.append(ReadVolume(name, folder, os.path.join(folder, xml)))
    for name in OTHER:
        vols.append(load_volume(name, decoded_folder(os.path.join(data, name))))
    for v in vols:
        extra = f", real target voxels {int(v.real.sum())}, <3 mm points {len(v.points)}" if hasattr(v, "real") else ""
        log(f"{v.name}: {v.hu.shape}, spacing {v.spacing.round(3).tolist()} mm, noise {v.noise:.1f} HU{extra}")
    return vols


def fold_dir(holdout):
    return os.path.join(CACHE_DIR, f"det2_{TAGS[holdout]}")


def main():
    p = data_arg(argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter))
    p.add_argument("--holdout", required=True, choices=list(TAGS))
    p.add_argument("--minutes", type=float, default=10.0, help="wall-clock training budget")
    p.add_argument("--max-iters", type=int, default=10 ** 9)
    p.add_argument("--batch", type=int, default=16)
    p.add_argument("--crop", type=int, default=80)
    p.add_argument("--pool", type=int, default=1200)
    p.add_argument("--refresh", type=int, default=4)
    p.add_argument("--threads", type=int, default=1)
    args = p.parse_args()
    import torch
    import torch.nn.functional as F

    seed_everything(0)
    set_threads(args.threads)
    out_dir = fold_dir(args.holdout)
    os.makedirs(out_dir, exist_ok=True)
    lines = []

    def log(msg):
        print(msg, flush=True)
        lines.append(msg)

    t0 = time.time()
    vols = training_volumes(args.data, args.holdout, log)
    # sampling weight per series: the read patients count double (their real nodules and their anatomy)
    w = np.array([2.0 if hasattr(v, "real") else 1.0 for v in vols])
    w /= w.sum()
    rng = np.random.default_rng(0)
    model = build_detector(sigmoid=False)

    def sample():
        return make_training_sample_v2(vols[rng.choice(len(vols), p=w)], rng, crop=args.crop, context=CONTEXT)

    pool = [sample() for _ in range(args.pool)]
    log(f"data and pool of {len(pool)} in {time.time() - t0:.0f} s; {count_params(model)} parameters")
    opt = torch.optim.AdamW(model.parameters(), lr=2e-3, weight_decay=1e-4)
    budget, start, it, losses = args.minutes * 60, time.time(), 0, []
    model.train()
    while it < args.max_iters and time.time() - start < budget:
        frac = (time.time() - start) / budget
        for g in opt.param_groups:
            g["lr"] = 2e-3 * 0.5 * (1 + np.cos(np.pi * min(1.0, frac)))
        for _ in range(args.refresh):
            pool[rng.integers(len(pool))] = sample()
        idx = rng.integers(len(pool), size=args.batch)
        xs = np.stack([pool[i][0] for i in idx])
        ys = np.stack([pool[i][1] for i in idx])[:, None]
        ws = np.stack([pool[i][2] for i in idx])[:, None]
        if rng.random() < 0.5:
            xs, ys, ws = xs[..., ::-1], ys[..., ::-1], ws[..., ::-1]
        if rng.random() < 0.5:
            xs, ys, ws = xs[..., ::-1, :], ys[..., ::-1, :], ws[..., ::-1, :]
        if rng.random() < 0.5:
            xs = xs[:, ::-1]
        x, y, wt = (torch.from_numpy(np.ascontiguousarray(a)) for a in (xs, ys, ws))
        z = model.logits(x)
        bce = (F.binary_cross_entropy_with_logits(z, y, pos_weight=torch.tensor(3.0), reduction="none") * wt).sum() / wt.sum().clamp(min=1)
        pr = torch.sigmoid(z) * wt
        dice = 1 - (2 * (pr * y).sum() + 1) / (pr.sum() + (y * wt).sum() + 1)
        loss = bce + dice
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(float(loss))
        it += 1
        if it % 100 == 0:
            log(f"iter {it} loss {np.mean(losses[-100:]):.4f} ({(time.time() - start) / 60:.1f} min)")
    seconds = time.time() - start
    torch.save({"state": model.state_dict(), "iters": it, "seconds": seconds}, os.path.join(out_dir, "net.pt"))
    log(f"trained {it} iterations in {seconds / 60:.1f} min")
    model.sigmoid = True
    model.eval()
    onnx_path = os.path.join(out_dir, "net.onnx")
    torch.onnx.export(model, torch.zeros(1, CONTEXT, 64, 64), onnx_path, input_names=["input"], output_names=["output"],
                      opset_version=13, dynamic_axes={"input": {0: "batch", 2: "height", 3: "width"},
                                                      "output": {0: "batch", 2: "height", 3: "width"}},
                      do_constant_folding=True)
    v = vols[-1]
    k = v.hu.shape[0] // 2
    parity = check_onnx_against_torch(model, onnx_path, det_norm(v.hu[k - 1:k + 2])[None])
    log(f"onnx vs torch on a whole slice: {parity}")
    with open(os.path.join(out_dir, "net_train.json"), "w") as f:
        json.dump({"holdout": args.holdout, "series": [v.name for v in vols], "params": count_params(model), "iters": it,
                   "trainMinutes": seconds / 60, "batch": args.batch, "crop": args.crop, "onnxParity": parity,
                   "log": lines}, f, indent=1)


if __name__ == "__main__":
    main()

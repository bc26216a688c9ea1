"""Trains nodule-detector-small: a 2.5D (3 slices) fully convolutional U-Net with a sigmoid inside, on synthetic
lung nodules inserted into the real lungs of real CT (see detection_data.py), on CPU.

Data split (by series and slab; every number in the model card comes from the held-out parts):
  train      lidc-idri-0001-cect, minus every slice within 20 mm (z) of a reader-marked nodule in 069.xml
             ricord-ncct-jpegls (decoded with dcmtk), the inferior 70 % of its slices
  validation ricord-ncct-jpegls, the superior 25 % of its slices (a 5 % gap between): threshold choice
  test       lidc-idri-0002-ncct (never seen in training), insertions kept 25 mm away from the real reader marks
Real-read comparison: node dist/tools/lidc-compare.js (the product's own inference and finding code).

  nice -n 10 /usr/bin/python3 training/train_detector.py --minutes 12
Not for diagnostic use.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import time

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from common import CACHE_DIR, MODELS_DIR, check_onnx_against_torch, count_params, data_arg, seed_everything, set_threads, sha256_file  # noqa: E402
from detection_data import DET_HU_MAX, DET_HU_MIN, decode_ricord, load_volume, make_training_sample, real_nodule_voxels  # noqa: E402
from detection_eval import evaluate  # noqa: E402
from intended_use import manifest_fields  # noqa: E402
from networks import CONTEXT, DETECTOR_CHANNELS as CHANNELS, build_detector  # noqa: E402,F401

MODEL_ID = "nodule-detector-small"
def main():
    p = data_arg(argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter))
    p.add_argument("--minutes", type=float, default=12.0, help="wall-clock training budget")
    p.add_argument("--max-iters", type=int, default=10 ** 9)
    p.add_argument("--batch", type=int, default=16)
    p.add_argument("--crop", type=int, default=80)
    p.add_argument("--pool", type=int, default=1500, help="training samples kept in memory, refreshed as it trains")
    p.add_argument("--refresh", type=int, default=4, help="pool samples regenerated per iteration")
    p.add_argument("--threads", type=int, default=1,
                   help="torch threads; on the shared 2-core machine 2 threads ran ~17x slower than 1 (OpenMP contention)")
    p.add_argument("--eval-only", action="store_true", help="load the checkpoint and evaluate/export again")
    args = p.parse_args()
    import torch
    import torch.nn.functional as F

    seed_everything(0)
    set_threads(args.threads)
    os.makedirs(CACHE_DIR, exist_ok=True)
    log_lines = []

    def log(msg):
        print(msg, flush=True)
        log_lines.append(msg)

    t0 = time.time()
    d0001 = os.path.join(args.data, "lidc-idri-0001-cect")
    d0002 = os.path.join(args.data, "lidc-idri-0002-ncct")
    ricord = decode_ricord(args.data)
    cect = load_volume("lidc-idri-0001-cect (train)", d0001, os.path.join(d0001, "069.xml"))
    from common import load_series_hu

    nz = load_series_hu(ricord)[0].shape[0]
    r_train = load_volume("ricord-ncct-jpegls (train)", ricord, slice_range=(0, int(nz * 0.70)))
    r_val = load_volume("ricord-ncct-jpegls (validation)", ricord, slice_range=(int(nz * 0.75), nz))
    train_vols = [cect, r_train]
    for v in train_vols + [r_val]:
        log(f"{v.name}: {v.hu.shape}, spacing {v.spacing.round(3).tolist()} mm, noise {v.noise:.1f} HU, "
            f"{len(v.usable_slices)} usable slices")
    log(f"data ready in {time.time() - t0:.0f} s")

    model = build_detector(sigmoid=False)
    n_params = count_params(model)
    ckpt = os.path.join(CACHE_DIR, "detector_ckpt.pt")
    rng = np.random.default_rng(0)
    train_seconds = 0.0
    it = 0
    if not args.eval_only:
        def sample():
            v = train_vols[rng.integers(len(train_vols))]
            return make_training_sample(v, rng, crop=args.crop, context=CONTEXT)

        pool = [sample() for _ in range(args.pool)]
        log(f"pool of {len(pool)} samples in {time.time() - t0:.0f} s; {n_params} parameters")
        opt = torch.optim.AdamW(model.parameters(), lr=2e-3, weight_decay=1e-4)
        budget = args.minutes * 60
        start = time.time()
        losses = []
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
            if rng.random() < 0.5:
                xs, ys = xs[..., ::-1], ys[..., ::-1]
            if rng.random() < 0.5:
                xs, ys = xs[..., ::-1, :], ys[..., ::-1, :]
            if rng.random() < 0.5:
                xs = xs[:, ::-1]  # reverse slice order (the context is symmetric)
            x = torch.from_numpy(np.ascontiguousarray(xs))
            y = torch.from_numpy(np.ascontiguousarray(ys))
            z = model.logits(x)
            bce = F.binary_cross_entropy_with_logits(z, y, pos_weight=torch.tensor(3.0))
            pr = torch.sigmoid(z)
            dice = 1 - (2 * (pr * y).sum() + 1) / (pr.sum() + y.sum() + 1)
            loss = bce + dice
            opt.zero_grad()
            loss.backward()
            opt.step()
            losses.append(float(loss))
            it += 1
            if it % 100 == 0:
                log(f"iter {it} loss {np.mean(losses[-100:]):.4f} ({(time.time() - start) / 60:.1f} min)")
        train_seconds = time.time() - start
        torch.save({"state": model.state_dict(), "iters": it, "seconds": train_seconds}, ckpt)
        log(f"trained {it} iterations in {train_seconds / 60:.1f} min")
    else:
        saved = torch.load(ckpt)
        model.load_state_dict(saved["state"])
        it, train_seconds = saved["iters"], saved["seconds"]

    model.sigmoid = True
    model.eval()

    # export (opset 13, dynamic N/H/W), check against torch with onnxruntime-node (the service's runtime)
    onnx_path = os.path.join(MODELS_DIR, f"{MODEL_ID}.onnx")
    dummy = torch.zeros(1, CONTEXT, 64, 64)
    torch.onnx.export(model, dummy, onnx_path, input_names=["input"], output_names=["output"], opset_version=13,
                      dynamic_axes={"input": {0: "batch", 2: "height", 3: "width"},
                                    "output": {0: "batch", 2: "height", 3: "width"}}, do_constant_folding=True)
    import onnx

    onnx.checker.check_model(onnx.load(onnx_path))
    from detection_data import det_norm

    k = r_val.hu.shape[0] // 2 + r_val.usable_slices[0] // 2
    xcheck = np.stack([det_norm(r_val.hu[k - 1:k + 2]), det_norm(cect.hu[60:63])])
    parity = check_onnx_against_torch(model, onnx_path, xcheck)
    log(f"onnx vs torch on 2 whole slices: {parity}")

    # threshold on the validation slab, then the test series
    t1 = time.time()
    val = evaluate(model, r_val, rounds=3, per_round=5, seed=1, log=log)
    ok = [(float(t), m) for t, m in val.items() if m["fpPerScan"] <= 4.0]
    if ok:
        threshold = max(ok, key=lambda tm: (tm[1]["sensitivity"], -tm[1]["fpPerScan"]))[0]
    else:
        threshold = min(((float(t), m) for t, m in val.items()), key=lambda tm: tm[1]["fpPerScan"])[0]
    log(f"validation: {json.dumps(val)}\nthreshold {threshold}")
    real0002 = real_nodule_voxels(d0002, os.path.join(d0002, "071.xml"))
    test_vol = load_volume("lidc-idri-0002-ncct (test)", d0002)
    test = evaluate(model, test_vol, rounds=3, per_round=8, seed=2, real_voxels=real0002, log=log)
    log(f"test: {json.dumps(test)}\neval {time.time() - t1:.0f} s")

    man = {
        "id": MODEL_ID,
        "version": "0.1.0",
        "task": "detection",
        "name": "Lung nodule detector small (synthetic-insertion reference model)",
        "file": f"{MODEL_ID}.onnx",
        "sha256": sha256_file(onnx_path),
        "input": {"name": "input", "layout": "NCHW", "contextSlices": CONTEXT, "spatialMultiple": 8},
        "output": {"name": "output", "meaning": "probability-map"},
        "intensity": {"huMin": DET_HU_MIN, "huMax": DET_HU_MAX, "networkMin": 0.0, "networkMax": 1.0},
        "batchSize": 8,
        "threshold": threshold,
        "findings": {
            "code": {"value": "27925004", "scheme": "SCT", "meaning": "Nodule"},
            "site": {"value": "39607008", "scheme": "SCT", "meaning": "Lung"},
            "label": "Nodule",
            "minVolumeMm3": 10,
            "diameterMm": {"min": 3, "max": 30},
            "lungMarginMm": 5,
        },
        "card": f"{MODEL_ID}.md",
        "description": (f"Reference 2.5D U-Net ({n_params // 1000}k params) trained on synthetic nodules inserted into the "
                        "real lungs of two CT series (LIDC-IDRI-0001, RICORD-1A). Demonstration only; not for "
                        "diagnostic use."),
        **manifest_fields(MODEL_ID),
    }
    with open(os.path.join(MODELS_DIR, f"{MODEL_ID}.json"), "w") as f:
        json.dump(man, f, indent=2)
        f.write("\n")
    report = {"params": n_params, "iters": it, "trainMinutes": train_seconds / 60, "batch": args.batch,
              "crop": args.crop, "threshold": threshold, "onnxParity": parity,
              "onnxBytes": os.path.getsize(onnx_path), "validation": val, "test": test, "log": log_lines}
    with open(os.path.join(CACHE_DIR, "detector_train.json"), "w") as f:
        json.dump(report, f, indent=1)
    log(f"wrote {onnx_path} ({os.path.getsize(onnx_path)} bytes) and its manifest; report in "
        f"{os.path.join(CACHE_DIR, 'detector_train.json')}")


if __name__ == "__main__":
    main()

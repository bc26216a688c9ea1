#!/usr/bin/env python3
"""Train denoise-ffdnet-small v2 (FFDNet with its noise-level map) on the multi-patient, multi-dose pairs of
prep_denoise_v2.py, leaving one patient out entirely.

Input [N, 2, H, W]: the low-dose slice in network units (HU [-1024, 3071] -> [-1, 1]) and a constant map = the noise
the node measures on that series at that dose (noise_measure.py, the probe's noiseHu), x NOISE_MAP_SCALE (HU/100),
jittered by a factor U(1 - j, 1 + j) per sample (--jitter) so that the network tolerates the measure's spread.
Output [N, 1, H, W]: the denoised slice. L1 loss in network units on 96x96 crops centred in the body (flips and
90-degree rotations), a dose fraction drawn uniformly per sample, Adam with cosine decay over a wall-clock budget,
the last conv zero-initialised (starts as the identity), seed 0, 1 torch thread.

  /usr/bin/python3 training/train_denoise_v2.py --holdout ricord-1a --minutes 14 --ship   # the shipped model
  /usr/bin/python3 training/train_denoise_v2.py --holdout hcc-005 --minutes 14            # a second fold, a check
Writes $CT_CACHE/denoise2_fold-<holdout>.{pt,onnx,json}; with --ship also models/denoise-ffdnet-small.onnx and its
manifest (version VERSION, input.noiseLevel).
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import common as C  # noqa: E402
from networks import DEPTH, NOISE_MAP_SCALE, NOISE_SCALE, WIDTH, build_ffdnet_noise_map, ffdnet_gmac_per_slice  # noqa: E402
from prep_denoise_v2 import pairs_path  # noqa: E402

MODEL_ID = "denoise-ffdnet-small"
VERSION = "0.2.1"
V1_COMMIT = "8ec8a7c"  # the last commit shipping v1 (0.1.0)
MODEL_NAME = "FFDNet small low-dose CT denoiser with a measured noise-level input (simulated 50/25/10% dose)"


def load_pairs():
    d = np.load(pairs_path())
    with open(pairs_path("json")) as fh:
        meta = json.load(fh)
    return d, meta


def noise_labels(meta) -> np.ndarray:
    """[series, dose] -> the node's noise measure on that series' simulated low-dose slices (HU)."""
    return np.array([[s["noise"][str(f)]["measuredOnLowDose"]["noiseHu"] for f in meta["doses"]] for s in meta["series"]])


def main():
    ap = C.data_arg(argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter))
    ap.add_argument("--holdout", default="ricord-1a", help="patient left out entirely (prep_denoise_v2.SERIES)")
    ap.add_argument("--minutes", type=float, default=14.0)
    ap.add_argument("--max-iters", type=int, default=100000)
    ap.add_argument("--patch", type=int, default=96)
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--lr", type=float, default=1e-3)
    ap.add_argument("--jitter", type=float, default=0.1)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--init-v1", default=None,
                    help="start from v1's weights (its .onnx, BatchNorm folded): the image channels' weights as v1's, the "
                         "noise map's zero, BatchNorm frozen at identity statistics; 'git' = v1 from git (" + V1_COMMIT + ")")
    ap.add_argument("--ship", action="store_true", help="also write models/denoise-ffdnet-small.onnx and its manifest")
    args = ap.parse_args()

    import torch

    C.set_threads(args.threads)
    C.seed_everything(args.seed)
    rng = np.random.default_rng(args.seed)
    d, meta = load_pairs()
    patients = [s["patient"] for s in meta["series"]]
    if args.holdout not in patients:
        raise SystemExit(f"--holdout {args.holdout}: not one of {sorted(set(patients))}")
    series = d["series"]
    train_idx = np.flatnonzero([patients[s] != args.holdout for s in series])
    clean_hu = d["clean"][train_idx]
    low = C.hu_to_net(d["low"][train_idx])  # [n, D, H, W]
    clean = C.hu_to_net(clean_hu)
    labels = noise_labels(meta)
    level = labels[series[train_idx]]  # [n, D] HU
    body_pts = np.argwhere(clean_hu[:, ::4, ::4] > -500) * np.array([1, 4, 4])
    del clean_hu
    P = args.patch
    H, W = clean.shape[1:]
    n_doses = low.shape[1]

    def sample_batch():
        xs, ys = [], []
        for _ in range(args.batch):
            k, cy, cx = body_pts[rng.integers(len(body_pts))]
            di = int(rng.integers(n_doses))
            y0 = int(np.clip(cy - P // 2, 0, H - P))
            x0 = int(np.clip(cx - P // 2, 0, W - P))
            a, b = low[k, di, y0:y0 + P, x0:x0 + P], clean[k, y0:y0 + P, x0:x0 + P]
            r = int(rng.integers(4))
            a, b = np.rot90(a, r), np.rot90(b, r)
            if rng.random() < 0.5:
                a, b = a[:, ::-1], b[:, ::-1]
            sigma = level[k, di] * NOISE_MAP_SCALE * rng.uniform(1 - args.jitter, 1 + args.jitter)
            xs.append(np.stack([a, np.full_like(a, sigma)]))
            ys.append(b[None])
        f = lambda v: torch.from_numpy(np.ascontiguousarray(np.stack(v)).astype(np.float32))  # noqa: E731
        return f(xs), f(ys)

    model = build_ffdnet_noise_map()
    torch.nn.init.zeros_(model.body[-1].weight)
    torch.nn.init.zeros_(model.body[-1].bias)
    if args.init_v1:
        init_from_v1(model, args.init_v1)
    opt = torch.optim.Adam(model.parameters(), lr=args.lr)
    timer = C.Timer()
    log, it = [], 0
    model.train()
    while it < args.max_iters and timer.minutes() < args.minutes:
        frac = min(timer.minutes() / args.minutes, 1.0)
        lr = args.lr * (0.05 + 0.95 * 0.5 * (1 + np.cos(np.pi * frac)))
        for g in opt.param_groups:
            g["lr"] = lr
        xb, yb = sample_batch()
        if args.init_v1:  # BatchNorm keeps v1's folded statistics (identity): batch statistics would undo them
            for mod in model.modules():
                if isinstance(mod, torch.nn.BatchNorm2d):
                    mod.eval()
        loss = (model(xb) - yb).abs().mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
        it += 1
        if it % 100 == 0:
            log.append({"iter": it, "min": round(timer.minutes(), 2), "loss_hu": float(loss) * C.HU_RANGE / 2, "lr": lr})
            print(f"iter {it} {timer.minutes():.1f} min L1 {float(loss) * C.HU_RANGE / 2:.2f} HU lr {lr:.2e}", flush=True)
    train_minutes = timer.minutes()

    model.eval()
    tag = f"denoise2_fold-{args.holdout}"
    torch.save(model.state_dict(), os.path.join(C.CACHE_DIR, f"{tag}.pt"))
    onnx_path = os.path.join(C.CACHE_DIR, f"{tag}.onnx")
    C.export_onnx(model, onnx_path, in_ch=2, opset=13)
    x = np.stack([low[:2, 1], np.full_like(low[:2, 1], level[0, 1] * NOISE_MAP_SCALE)], 1).copy()
    chk = C.check_onnx_against_torch(model, onnx_path, x)
    print("onnx check", chk, flush=True)
    train_levels = labels[sorted({int(s) for s in series[train_idx]})]
    info = {"model": MODEL_ID, "version": VERSION, "holdout": args.holdout, "iters": it, "train_minutes": train_minutes,
            "params": C.count_params(model), "patch": P, "batch": args.batch, "lr": args.lr, "jitter": args.jitter,
            "depth": DEPTH, "width": WIDTH, "noise_scale": NOISE_SCALE, "noise_map_scale": NOISE_MAP_SCALE,
            "gmac_512": ffdnet_gmac_per_slice(DEPTH, WIDTH, in_channels=5), "seed": args.seed, "threads": args.threads,
            "train_slices": int(len(train_idx)), "train_series": sorted({meta["series"][int(s)]["series"] for s in series[train_idx]}),
            "train_noise_hu": [float(train_levels.min()), float(train_levels.max())],
            "onnx_bytes": os.path.getsize(onnx_path), "onnx_ops": C.onnx_ops(onnx_path), "onnx_sha256": C.sha256_file(onnx_path),
            "onnx_check": chk, "log": log, "torch": torch.__version__}
    with open(os.path.join(C.CACHE_DIR, f"{tag}.json"), "w") as fh:
        json.dump(info, fh, indent=1)
    if args.ship:
        shutil.copyfile(onnx_path, os.path.join(C.MODELS_DIR, f"{MODEL_ID}.onnx"))
        write_manifest(info)
    print(json.dumps({k: v for k, v in info.items() if k != "log"}, indent=1))


def init_from_v1(model, source: str) -> None:
    """v2's weights from v1's ONNX (BatchNorm folded into each conv's weight and bias): conv k of v1 -> conv k of v2;
    the first conv's noise-map input weights zero, so the network starts as v1 whatever the map says; each BatchNorm
    at identity (mean 0, var 1 - eps, gamma 1) with the folded bias as its beta."""
    import onnx
    import torch
    from onnx import numpy_helper

    if source == "git":
        source = os.path.join(C.CACHE_DIR, "denoise2_v1.onnx")
        if not os.path.exists(source):
            import subprocess

            with open(source, "wb") as fh:
                fh.write(subprocess.run(["git", "show", f"{V1_COMMIT}:models/{MODEL_ID}.onnx"], cwd=C.REPO_ROOT,
                                        check=True, stdout=subprocess.PIPE).stdout)
    g = onnx.load(source).graph
    init = {i.name: numpy_helper.to_array(i) for i in g.initializer}
    convs = [(init[n.input[1]], init[n.input[2]]) for n in g.node if n.op_type == "Conv"]
    mine = [m for m in model.body if isinstance(m, torch.nn.Conv2d)]
    bns = [m for m in model.body if isinstance(m, torch.nn.BatchNorm2d)]
    if len(convs) != len(mine):
        raise SystemExit(f"{source}: {len(convs)} convs, v2 has {len(mine)}")
    with torch.no_grad():
        for k, ((w, b), conv) in enumerate(zip(convs, mine)):
            w, b = torch.from_numpy(w.copy()), torch.from_numpy(b.copy())
            if k == 0:
                conv.weight.zero_()
                conv.weight[:, :w.shape[1]] = w
                conv.bias.copy_(b)
            elif conv.bias is None:
                conv.weight.copy_(w)
                bn = bns[k - 1]
                bn.running_mean.zero_()
                bn.running_var.fill_(1.0 - bn.eps)
                bn.weight.fill_(1.0)
                bn.bias.copy_(b)
            else:
                conv.weight.copy_(w)
                conv.bias.copy_(b)


def write_manifest(info: dict) -> None:
    C.write_manifest(
        MODEL_ID, version=VERSION, task="denoise", name=MODEL_NAME, context=1, spatial_multiple=2, meaning="hu-image",
        batch_size=8,
        description=f"Reference FFDNet CNN denoiser with a noise-level input ({info['params'] // 1000}k params, "
                    f"half-resolution body, {info['gmac_512']:.1f} GMAC per 512x512 slice) trained on real LIDC-IDRI and "
                    "HCC-TACE-Seg slices with simulated 50/25/10% dose projection noise; the noise map is the measured "
                    "noise of the series. Demonstration only; not for diagnostic use.",
    )
    path = os.path.join(C.MODELS_DIR, f"{MODEL_ID}.json")
    with open(path) as fh:
        man = json.load(fh)
    lo, hi = info["train_noise_hu"]
    from intended_use import DENOISE_MAX_NOISE_HU

    if DENOISE_MAX_NOISE_HU != int(np.ceil(hi)):
        print(f"WARNING: intended_use.DENOISE_MAX_NOISE_HU is {DENOISE_MAX_NOISE_HU}, the trained noise reaches "
              f"{hi:.1f} HU: set it to {int(np.ceil(hi))} and re-run write_manifest", file=sys.stderr)
    man["input"]["noiseLevel"] = {"channel": 1, "source": "measured-noise", "scale": NOISE_MAP_SCALE,
                                  "trainedNoiseHu": {"min": float(np.floor(lo)), "max": float(np.ceil(hi))}}
    with open(path, "w") as fh:
        json.dump(man, fh, indent=2)
        fh.write("\n")


if __name__ == "__main__":
    main()

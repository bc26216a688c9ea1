#!/usr/bin/env python3
"""Train denoise-ffdnet-small on the simulated quarter-dose pairs made by prep_denoise.py (run that first).

FFDNet-style residual denoiser (Zhang, Zuo, Zhang, "FFDNet: Toward a Fast and Flexible Solution for CNN based Image
Denoising", IEEE TIP 27(9):4608-4622, 2018): reversible downsampling (pixel unshuffle by 2, 1xHxW -> 4xH/2xW/2), a
plain conv/BN/ReLU CNN at half resolution, pixel shuffle back to 1xHxW; output = input - predicted noise, in the
CTA-GAN intensity range (HU [-1024, 3071] -> [-1, 1]). Unlike FFDNet there is no noise-level map input (one fixed
simulated dose). Working at half resolution makes it ~4x cheaper per layer than a full-resolution DnCNN of the same
width and doubles the receptive field. BatchNorm is folded at export. H and W must be even (manifest
spatialMultiple 2; the runtime pads odd sizes).

L1 loss on 96x96 random crops inside the body (flips / 90-degree rotations), Adam, cosine learning-rate decay over a
wall-clock budget.

  /usr/bin/python3 training/train_denoise.py [--data ../shared/data/ct] [--minutes 12]
"""
from __future__ import annotations

import argparse
import json
import os
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import common as C  # noqa: E402
from networks import DEPTH, NOISE_SCALE, WIDTH, build_ffdnet  # noqa: E402,F401
from prep_denoise import cache_path  # noqa: E402

MODEL_ID = "denoise-ffdnet-small"
MODEL_NAME = "FFDNet-style small low-dose CT denoiser (simulated quarter dose)"
def gmac_per_slice(depth: int, width: int, h: int = 512, w: int = 512) -> float:
    """Multiply-accumulates of the convolutions for one h x w slice (the shuffles cost no MACs)."""
    per_px = 9 * (4 * width + (depth - 2) * width * width + width * 4)
    return per_px * (h // 2) * (w // 2) / 1e9


def main():
    ap = C.data_arg(argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter))
    ap.add_argument("--dose", type=float, default=0.25)
    ap.add_argument("--minutes", type=float, default=12.0)
    ap.add_argument("--max-iters", type=int, default=100000)
    ap.add_argument("--patch", type=int, default=96)
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--lr", type=float, default=1e-3)
    ap.add_argument("--depth", type=int, default=DEPTH)
    ap.add_argument("--width", type=int, default=WIDTH)
    ap.add_argument("--noise-scale", type=float, default=NOISE_SCALE, help="unit of the last conv's noise estimate")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--threads", type=int, default=1,
                    help="torch threads; 1 is several times faster than 2 on a shared, oversubscribed 2-core machine")
    ap.add_argument("--init", default=None, help="start from this state_dict (.pt)")
    args = ap.parse_args()

    import torch

    C.set_threads(args.threads)
    C.seed_everything(args.seed)
    rng = np.random.default_rng(args.seed)
    d = np.load(cache_path(args.dose))
    low = C.hu_to_net(d["train_low"])
    clean = C.hu_to_net(d["train_clean"])
    body_pts = np.argwhere(d["train_clean"][:, ::4, ::4] > -500) * np.array([1, 4, 4])
    P = args.patch
    if P % 2:
        raise SystemExit("--patch must be even (pixel unshuffle by 2)")
    H, W = low.shape[1:]

    def sample_batch():
        xs, ys = [], []
        for _ in range(args.batch):
            k, cy, cx = body_pts[rng.integers(len(body_pts))]
            y0 = int(np.clip(cy - P // 2, 0, H - P))
            x0 = int(np.clip(cx - P // 2, 0, W - P))
            a, b = low[k, y0:y0 + P, x0:x0 + P], clean[k, y0:y0 + P, x0:x0 + P]
            r = int(rng.integers(4))
            a, b = np.rot90(a, r), np.rot90(b, r)
            if rng.random() < 0.5:
                a, b = a[:, ::-1], b[:, ::-1]
            xs.append(a)
            ys.append(b)
        f = lambda v: torch.from_numpy(np.ascontiguousarray(np.stack(v)[:, None]))  # noqa: E731
        return f(xs), f(ys)

    model = build_ffdnet(depth=args.depth, width=args.width, noise_scale=args.noise_scale)
    torch.nn.init.zeros_(model.body[-1].weight)
    torch.nn.init.zeros_(model.body[-1].bias)
    if args.init:
        model.load_state_dict(torch.load(args.init))
    opt = torch.optim.Adam(model.parameters(), lr=args.lr)
    timer = C.Timer()
    log = []
    it = 0
    model.train()
    while it < args.max_iters and timer.minutes() < args.minutes:
        frac = min(timer.minutes() / args.minutes, 1.0)
        lr = args.lr * (0.05 + 0.95 * 0.5 * (1 + np.cos(np.pi * frac)))
        for g in opt.param_groups:
            g["lr"] = lr
        xb, yb = sample_batch()
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
    torch.save(model.state_dict(), os.path.join(C.CACHE_DIR, f"{MODEL_ID}.pt"))
    onnx_path = os.path.join(C.MODELS_DIR, f"{MODEL_ID}.onnx")
    C.export_onnx(model, onnx_path, in_ch=1, opset=13)
    held_low = C.hu_to_net(d["held_low"])
    chk = C.check_onnx_against_torch(model, onnx_path, held_low[:2][:, None].copy())
    print("onnx check", chk, "ops", onnx_ops(onnx_path))
    C.write_manifest(
        MODEL_ID, version="0.1.0", task="denoise", name=MODEL_NAME,
        context=1, spatial_multiple=2, meaning="hu-image", batch_size=8,
        description=f"Reference FFDNet-style residual CNN denoiser ({C.count_params(model) // 1000}k params, "
                    f"half-resolution body, {gmac_per_slice(args.depth, args.width):.1f} GMAC per 512x512 slice) "
                    "trained on real LIDC-IDRI slices with simulated quarter-dose projection noise. Demonstration only; "
                    "not for diagnostic use.",
    )
    info = {"model": MODEL_ID, "iters": it, "train_minutes": train_minutes, "params": C.count_params(model),
            "patch": P, "batch": args.batch, "lr": args.lr, "depth": args.depth, "width": args.width,
            "arch": "ffdnet", "noise_scale": args.noise_scale, "gmac_512": gmac_per_slice(args.depth, args.width),
            "seed": args.seed, "threads": args.threads, "init": args.init, "train_slices": int(low.shape[0]),
            "onnx_bytes": os.path.getsize(onnx_path), "onnx_ops": onnx_ops(onnx_path),
            "onnx_check": chk, "calib": json.loads(str(d["calib"])), "log": log, "torch": torch.__version__}
    with open(os.path.join(C.CACHE_DIR, "denoise_train.json"), "w") as f:
        json.dump(info, f, indent=1)
    print(json.dumps({k: v for k, v in info.items() if k != "log"}, indent=1))


def onnx_ops(path: str) -> list:
    import onnx

    return sorted({n.op_type for n in onnx.load(path).graph.node})


if __name__ == "__main__":
    main()

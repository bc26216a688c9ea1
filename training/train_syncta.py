#!/usr/bin/env python3
"""Train syncta-unet-small: NCCT -> synthetic CT angiography (Syn-CTA), 2D, 1 slice in, 1 slice out.

Pairs are simulated from the contrast series lidc-idri-0001-cect: input = simulate.de_enhance(CECT) (enhanced blood
pool / vessels set to ~40 HU with the texture kept), target = the real CECT. A contiguous block of slices is held out
(see --holdout) together with a gap of --gap slices on each side. Writes models/syncta-unet-small.{onnx,json} and
/tmp/ct-cache/syncta_train.json (training log); the card and metrics come from evaluate_syncta.py.

  /usr/bin/python3 training/train_syncta.py [--data ../shared/data/ct] [--minutes 12]
"""
from __future__ import annotations

import argparse
import json
import os
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import common as C  # noqa: E402
from networks import SYNCTA_CHANNELS as CHANNELS  # noqa: E402
from simulate import de_enhance  # noqa: E402

MODEL_ID = "syncta-unet-small"
SERIES = "lidc-idri-0001-cect"


def load_pairs(data: str):
    hu, meta = C.load_series_hu(os.path.join(data, SERIES))
    cache = os.path.join(C.CACHE_DIR, f"{SERIES}_deenhanced_v1.npz")
    if os.path.exists(cache):
        z = np.load(cache)
        sim, core, changed = z["sim"], z["core"], z["changed"]
    else:
        sim, core, changed = de_enhance(hu)
        os.makedirs(C.CACHE_DIR, exist_ok=True)
        np.savez(cache, sim=sim, core=core, changed=changed)
    return hu, sim, core, changed, meta


def split(n: int, start: int, end: int, gap: int):
    held = list(range(start, end))
    train = [i for i in range(n) if i < start - gap or i >= end + gap]
    return train, held


def main():
    ap = C.data_arg(argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter))
    ap.add_argument("--minutes", type=float, default=15.0, help="wall-clock training budget")
    ap.add_argument("--max-iters", type=int, default=100000)
    ap.add_argument("--patch", type=int, default=160)
    ap.add_argument("--batch", type=int, default=6)
    ap.add_argument("--lr", type=float, default=2e-3)
    ap.add_argument("--holdout", type=int, nargs=2, default=[56, 80], metavar=("START", "END"),
                    help="held-out slice indices [START, END) in inferior->superior order")
    ap.add_argument("--gap", type=int, default=2)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--threads", type=int, default=1,
                    help="torch threads; 1 is several times faster than 2 on a shared, oversubscribed 2-core machine")
    ap.add_argument("--init", default=None, help="start from this state_dict (.pt) instead of identity")
    ap.add_argument("--vessel-weight", type=float, default=3.0, help="extra L1 weight on de-enhanced voxels")
    ap.add_argument("--vessel-frac", type=float, default=0.5, help="fraction of crops centred on de-enhanced voxels")
    args = ap.parse_args()

    import torch

    C.set_threads(args.threads)
    C.seed_everything(args.seed)
    rng = np.random.default_rng(args.seed)

    hu, sim, core, changed, meta = load_pairs(args.data)
    n = hu.shape[0]
    train_idx, held_idx = split(n, args.holdout[0], args.holdout[1], args.gap)
    x_all = C.hu_to_net(sim)
    y_all = C.hu_to_net(hu)
    from scipy import ndimage as ndi

    wmask = np.stack([ndi.binary_dilation(c, iterations=2) for c in changed]).astype(np.float32)
    from simulate import body_mask

    body = body_mask(hu)

    # sampling centres: --vessel-frac near changed voxels, the rest anywhere in the body (so unchanged tissue is learnt as identity)
    tr = np.array(train_idx)
    vessel_pts = np.argwhere(changed[tr])
    body_pts = np.argwhere(body[tr])
    P = args.patch

    def sample_batch():
        xs, ys, ws = [], [], []
        for _ in range(args.batch):
            pts = vessel_pts if (rng.random() < args.vessel_frac and len(vessel_pts)) else body_pts
            k, cy, cx = pts[rng.integers(len(pts))]
            z = tr[k]
            y0 = int(np.clip(cy - P // 2 + rng.integers(-P // 4, P // 4 + 1), 0, hu.shape[1] - P))
            x0 = int(np.clip(cx - P // 2 + rng.integers(-P // 4, P // 4 + 1), 0, hu.shape[2] - P))
            xs.append(x_all[z, y0:y0 + P, x0:x0 + P])
            ys.append(y_all[z, y0:y0 + P, x0:x0 + P])
            ws.append(1.0 + args.vessel_weight * wmask[z, y0:y0 + P, x0:x0 + P])
        f = lambda a: torch.from_numpy(np.stack(a)[:, None].copy())  # noqa: E731
        return f(xs), f(ys), f(ws)

    model = C.build_unet(channels=CHANNELS, residual=True)
    # start as identity: zero the last conv so output == input at step 0
    torch.nn.init.zeros_(model.outc.weight)
    torch.nn.init.zeros_(model.outc.bias)
    if args.init:
        model.load_state_dict(torch.load(args.init))
    opt = torch.optim.Adam(model.parameters(), lr=args.lr)
    timer = C.Timer()
    log = []
    it = 0
    budget = args.minutes
    model.train()
    while it < args.max_iters and timer.minutes() < budget:
        frac = min(timer.minutes() / budget, 1.0)
        lr = args.lr * (0.05 + 0.95 * 0.5 * (1 + np.cos(np.pi * frac)))  # cosine decay on wall-clock
        for g in opt.param_groups:
            g["lr"] = lr
        xb, yb, wb = sample_batch()
        out = model(xb)
        loss = (wb * (out - yb).abs()).sum() / wb.sum()
        opt.zero_grad()
        loss.backward()
        opt.step()
        it += 1
        if it % 50 == 0:
            log.append({"iter": it, "min": round(timer.minutes(), 2), "loss": float(loss), "lr": lr})
            print(f"iter {it} {timer.minutes():.1f} min loss {float(loss):.5f} lr {lr:.2e}", flush=True)

    train_minutes = timer.minutes()
    model.eval()
    os.makedirs(C.CACHE_DIR, exist_ok=True)
    torch.save(model.state_dict(), os.path.join(C.CACHE_DIR, f"{MODEL_ID}.pt"))
    os.makedirs(C.MODELS_DIR, exist_ok=True)
    onnx_path = os.path.join(C.MODELS_DIR, f"{MODEL_ID}.onnx")
    C.export_onnx(model, onnx_path, in_ch=1, opset=13)
    # PyTorch vs onnxruntime-node on two full 512x512 held-out slices
    chk = C.check_onnx_against_torch(model, onnx_path, x_all[held_idx[:2]][:, None].copy())
    print("onnx check", chk)
    C.write_manifest(
        MODEL_ID, version="0.1.0", task="synthesis", name="Syn-CTA U-Net small (simulated-pair reference model)",
        context=1, spatial_multiple=2 ** (len(CHANNELS) - 1), meaning="hu-image", batch_size=8,
        description=f"Reference NCCT -> synthetic CTA 2D U-Net ({C.count_params(model) // 1000}k params) trained on pairs simulated by "
                    "de-enhancing one contrast chest CT (LIDC-IDRI-0001). Demonstration only; not for diagnostic use.",
    )
    info = {
        "model": MODEL_ID, "series": SERIES, "slices": n, "train_slices": len(train_idx), "held_out": held_idx,
        "gap": args.gap, "iters": it, "train_minutes": train_minutes, "patch": P, "batch": args.batch, "lr": args.lr,
        "vessel_weight": args.vessel_weight, "vessel_frac": args.vessel_frac, "init": args.init, "params": C.count_params(model), "seed": args.seed, "threads": args.threads,
        "onnx_bytes": os.path.getsize(onnx_path), "onnx_check": chk,
        "core_fraction": float(core.mean()), "changed_fraction": float(changed.mean()), "log": log,
        "torch": torch.__version__,
    }
    with open(os.path.join(C.CACHE_DIR, "syncta_train.json"), "w") as f:
        json.dump(info, f, indent=1)
    print(json.dumps({k: v for k, v in info.items() if k not in ("log", "held_out")}, indent=1))


if __name__ == "__main__":
    main()

#!/usr/bin/env python3
"""Train syncta-unet-small v2: NCCT -> synthetic CT angiography (Syn-CTA), 2D, 1 slice in, 1 slice out.

Training pairs (v1, at commit b8b9192, learnt only from one de-enhanced contrast chest and brightened any smooth
soft tissue on real NCCT):
* real pairs (syncta_pairs.py): each HCC-TACE-Seg patient's non-contrast series and its arterial phase, registered
  (rigid, then per-slice z and in-plane TV-L1). Target = the registered arterial phase inside its enhanced blood
  pool (dilated 2 px), the non-contrast slice itself everywhere else: the network learns where the blood pool is on
  a plain CT and how bright it gets, and to leave every other tissue as it was. Registration residue outside the
  blood pool (breathing, bowel) is not taught as "change", and parenchymal arterial enhancement (liver +10-20 HU,
  pancreas) is deliberately not learnt.
* simulated pairs, augmentation only: the contrast series whose blood pool the segmentation finds (LIDC-IDRI-0001
  chest, HCC_005 and HCC_007 arterial; see CONTRAST), de-enhanced in the blood pool only
  (simulate.blood_pool_mask: the aorta and what connects to it thickly, by HU, connectivity and position;
  simulate.de_enhance sets it to 40 HU keeping its texture); target = the real contrast CT. Enhancing organs are not set to literature values
  (not simulated: they stay enhanced in input and target, i.e. taught as identity).
* loss: L1, weighted 1 + vessel_weight in the (dilated) blood pool, plus brightening_weight x the output's excess over
  the target outside it: a false enhancement (a liver blob, a muscle, a kidney brightened) is the error a reader
  could take for a finding, so it costs more than an under-enhanced vessel: the loss is minimised by the
  1 / (2 + brightening_weight) quantile of what the target might be, so a voxel is brightened only where the network
  is more than (1 + w) / (2 + w) sure of it (two-thirds with w = 1). Without it (v2 drafts,
  blood-pool weights 3 and 8) the fold models brightened paraspinal muscle, kidneys and blobs in the liver of unseen
  patients; with weight 4 they learnt nothing (the identity, -0.1 HU everywhere).
* kernel and noise augmentation: the same random Gaussian blur (sigma 0.5-1.2 px) or unsharp mask, and the same
  Gaussian noise (sigma up to 12 HU), applied to input and target.

--holdout PATIENT leaves one HCC patient out of everything (its real pair and its contrast series) and writes the
fold model to $CT_CACHE/syncta-v2-fold-PATIENT.onnx; without it, the model trained on all patients goes to
models/syncta-unet-small.{onnx,json}. Logs: $CT_CACHE/syncta_train[_fold-PATIENT].json.

  /usr/bin/python3 training/syncta_pairs.py
  /usr/bin/python3 training/train_syncta.py --holdout hcc-005 --minutes 18     # one fold (x3)
  /usr/bin/python3 training/train_syncta.py --minutes 18                        # the shipped model
"""
from __future__ import annotations

import argparse
import json
import os
import sys

import numpy as np
from scipy import ndimage as ndi

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import common as C  # noqa: E402
from networks import (  # noqa: E402
    SYNCTA_CHANNELS as CHANNELS, build_syncta, load_syncta, syncta_spatial_multiple, syncta_state_scale,
)
from simulate import blood_pool_mask, body_mask, de_enhance, supra_aortic_arteries  # noqa: E402
from syncta_pairs import PATIENTS, iv_blood_pool, load_axial, load_pair, voxel_ml  # noqa: E402


MODEL_ID = "syncta-unet-small"
VERSION = "0.2.1"
# contrast series de-enhanced for the simulated pairs: (folder, AcquisitionNumber, HCC patient it belongs to)
CONTRAST = [
    ("lidc-idri-0001-cect", None, None),
    ("hcc-005-arterial", None, "hcc-005"),
    ("hcc-007-arterial-portal", 2, "hcc-007"),
]
# Not simulated from (the blood-pool segmentation was looked at on three slices of each series and failed there):
# HCC_007's portal phase (acquisition 3: a kidney and the vertebral marrow taken in), CPTAC C3N-00247 (weak
# enhancement, ~143 HU, under a B70f kernel's noise: the aorta falls apart, the vertebral marrow is taken for it) and
# HCC_009's arterial phase (its vertebral marrow, thinly corticated, passes as the aorta). Each would teach "brighten
# the spine" (or a kidney). HCC_009 still counts through its real pair.
# Identity pairs (target = input, --identity-weight; round 7): contrast series whose blood pool cannot be simulated are
# still real anatomy to leave alone. Their blood pool is already bright in the input, so nothing in them says "darken
# it" or "brighten it"; what they add is tissue no other source shows: the CPTAC chest's shoulder girdle and axillary
# muscles and upper abdomen (round 6 brightened LIDC-IDRI-0002's left shoulder muscles and a blob at its gastric
# fundus), HCC_009's and HCC_007's abdomens in another phase. (folder, AcquisitionNumber, HCC patient it belongs to)
IDENTITY = [
    ("cptac-c3n-00247-cect-chest", None, None),
    ("hcc-009-arterial", None, "hcc-009"),
    ("hcc-007-arterial-portal", 3, "hcc-007"),
]


def simulated_pair(data: str, folder: str, acquisition, supra_aortic: bool = False):
    """(simulated NCCT, contrast CT, changed voxels) of a contrast series, cached; supra_aortic (round 9 on): the
    arteries leaving the arch upward are de-enhanced with the pool (simulate.supra_aortic_arteries)."""
    name = folder + (f"_acq{acquisition}" if acquisition else "")
    cache = os.path.join(C.CACHE_DIR, f"syncta_sim_{'v3' if supra_aortic else 'v2'}_{name}.npz")
    if os.path.exists(cache):
        z = np.load(cache)
        hu, core = z["hu"].astype(np.float32), z["core"]
        if "sim_in_core" not in z.files:
            return z["sim"], hu, core
        sim = hu.copy()  # packed by syncta_pack.py: the simulation differs from the contrast CT only in its core
        sim[core] = z["sim_in_core"]
        return sim, hu, core
    vol = load_axial(os.path.join(data, folder), acquisition)
    hu = vol["hu"]
    core = blood_pool_mask(hu, voxel_ml(vol))
    if supra_aortic:
        core |= supra_aortic_arteries(hu, core, float(vol["spacing"]), slice_mm=float(np.median(np.diff(vol["z"]))))
    sim, _, changed = de_enhance(hu, core=core)
    np.savez(cache, sim=sim, hu=hu, core=changed)
    return sim, hu, changed


def hybrid_target(pair) -> tuple[np.ndarray, np.ndarray]:
    """(target, IV blood pool): the arterial phase inside its blood pool dilated 2 px, the non-contrast slice elsewhere;
    the pool weighted and sampled is the IV-enhanced part (oral contrast is bright in both phases: nothing to learn)."""
    pool = np.stack([ndi.binary_dilation(m, iterations=2) for m in pair["bloodpool"]]) & pair["body"]
    return np.where(pool, pair["arterial"], pair["ncct"]).astype(np.float32), iv_blood_pool(pair)


class Sampler:
    """Crops of (input, target, weight, vessel points) from several sources; half the crops centred on the blood pool."""

    def __init__(self, rng, patch: int, vessel_weight: float, vessel_frac: float, hard_frac: float = 0.0):
        self.rng, self.patch, self.vw, self.vf, self.hf = rng, patch, vessel_weight, vessel_frac, hard_frac
        self.sources = []

    def add(self, name, x_hu, y_hu, pool, weight):
        body = body_mask(x_hu)
        x = x_hu.astype(np.float32, copy=False)  # an identity pair's target is the same array
        self.sources.append({"name": name, "x": x, "y": y_hu.astype(np.float32, copy=False),
                             "w": np.stack([ndi.binary_dilation(p, iterations=2) for p in pool]).astype(np.float32),
                             "body": body, "pool_pts": np.argwhere(pool).astype(np.int16),
                             "body_pts": np.argwhere(body).astype(np.int16), "p": weight})

    def crop(self):
        """(input, target, weight, sharpen): sharpen is True for a crop centred on a false enhancement mined on the
        sharpened source, which the augmentation must then sharpen the same way."""
        hard = np.array([len(s.get("hard_pts", ())) for s in self.sources], np.float64)
        sharpen = False
        if self.hf and hard.sum() and self.rng.random() < self.hf:  # a crop centred on a false enhancement
            s = self.sources[self.rng.choice(len(self.sources), p=hard / hard.sum())]
            i = self.rng.integers(len(s["hard_pts"]))
            (z, cy, cx), sharpen = s["hard_pts"][i], bool(s["hard_sharpened"][i])
        else:
            src_p = np.array([s["p"] for s in self.sources], np.float64)
            s = self.sources[self.rng.choice(len(self.sources), p=src_p / src_p.sum())]
            pts = s["pool_pts"] if (self.rng.random() < self.vf and len(s["pool_pts"])) else s["body_pts"]
            z, cy, cx = pts[self.rng.integers(len(pts))]
        P, H, W = self.patch, s["x"].shape[1], s["x"].shape[2]
        y0 = int(np.clip(cy - P // 2 + self.rng.integers(-P // 4, P // 4 + 1), 0, H - P))
        x0 = int(np.clip(cx - P // 2 + self.rng.integers(-P // 4, P // 4 + 1), 0, W - P))
        x = s["x"][z, y0:y0 + P, x0:x0 + P]
        y = s["y"][z, y0:y0 + P, x0:x0 + P]
        return x, y, 1.0 + self.vw * s["w"][z, y0:y0 + P, x0:x0 + P], sharpen


def unsharp(hu: np.ndarray, amount: float = 1.0) -> np.ndarray:
    """Each slice sharpened as a sharper kernel would reconstruct it: hu + amount (hu - Gaussian(sigma 1 px))."""
    return hu + amount * (hu - np.stack([ndi.gaussian_filter(s, 1.0) for s in hu]))


def mine_false_enhancements(torch, model, sampler, threshold_hu: float, sharpened: bool = False) -> dict:
    """Hard negatives: in every source, the body voxels outside the dilated blood pool that the starting model
    brightens more than threshold_hu above the target (on the training data itself); with sharpened, also on the
    source and its target sharpened alike (unsharp, amount 1). Round 3 centred a share of its crops on them
    (--hard-negative-frac): the round-2 model brightened the shoulder muscles next to LIDC-IDRI-0001's contrast-filled
    subclavian vein, crops the blood-pool and body sampling reached rarely. Round 4 added the sharpened mining: round
    3's verdict on the unseen LIDC-IDRI-0002 flipped to rejected under a sharper kernel. Returns the counts."""
    model.eval()
    dev = next(model.parameters()).device
    counts = {}
    with torch.no_grad():
        for s in sampler.sources:
            pts, flags = [], []
            for sharp in (False, True) if sharpened else (False,):
                xs, ys = (unsharp(s["x"]), unsharp(s["y"])) if sharp else (s["x"], s["y"])
                x = torch.from_numpy(C.hu_to_net(xs)[:, None].astype(np.float32))
                out = torch.cat([model(x[i:i + 4].to(dev)).cpu() for i in range(0, x.shape[0], 4)])
                out = C.net_to_hu(out.numpy()[:, 0])
                hard = (out - np.clip(ys, C.HU_MIN, C.HU_MAX) > threshold_hu) & (s["w"] == 0) & s["body"]
                pts.append(np.argwhere(hard))
                flags.append(np.full(len(pts[-1]), sharp))
                counts[s["name"] + (" sharpened" if sharp else "")] = int(hard.sum())
            s["hard_pts"], s["hard_sharpened"] = np.concatenate(pts), np.concatenate(flags)
    model.train()
    return counts


def gaussian_kernels(torch, sigmas, radius: int = 4):
    """One normalised 1D Gaussian per sample [B, 2 radius + 1]; sigma 0 gives the identity (a delta)."""
    t = torch.arange(-radius, radius + 1, dtype=torch.float32, device=sigmas.device)
    k = torch.exp(-0.5 * (t[None] / sigmas.clamp(min=1e-3)[:, None]) ** 2)
    k = torch.where(sigmas[:, None] > 0, k, (t[None] == 0).float())
    return k / k.sum(dim=1, keepdim=True)


def blur(torch, img, sigmas):
    """Per-sample separable Gaussian blur of img [B, 1, H, W], reflected edges (as scipy.ndimage.gaussian_filter)."""
    import torch.nn.functional as F

    k = gaussian_kernels(torch, sigmas)
    b, r = img.shape[0], k.shape[1] // 2
    x = img.transpose(0, 1)  # [1, B, H, W]: one group per sample
    x = F.conv2d(F.pad(x, (r, r, 0, 0), mode="reflect"), k[:, None, None, :], groups=b)
    x = F.conv2d(F.pad(x, (0, 0, r, r), mode="reflect"), k[:, None, :, None], groups=b)
    return x.transpose(0, 1)


def kernel_and_noise(torch, rng, x, y, sharpen=None):
    """Kernel and noise augmentation of a batch in HU [B, 1, P, P], the same for input and target, on the training
    device: a quarter of the crops blurred (sigma 0.5-1.2 px: a softer kernel), a fifth sharpened (unsharp mask,
    amount 0.3-1.0, sigma 1 px: a sharper one), 40 % given the same Gaussian noise (sigma 2-12 HU). The crops flagged
    in sharpen (centred on a false enhancement mined on the sharpened source) are sharpened with amount 1."""
    b = x.shape[0]
    r = rng.random(b)
    dev = x.device
    forced = np.zeros(b, bool) if sharpen is None else np.asarray(sharpen, bool)
    soft = np.where((r < 0.25) & ~forced, rng.uniform(0.5, 1.2, b), 0.0)
    amount = np.where((r >= 0.25) & (r < 0.45), rng.uniform(0.3, 1.0, b), 0.0)
    amount = torch.tensor(np.where(forced, 1.0, amount), dtype=torch.float32, device=dev)[:, None, None, None]
    sig = torch.tensor(soft, dtype=torch.float32, device=dev)
    one = torch.ones(b, device=dev)
    x = blur(torch, x, sig)
    y = blur(torch, y, sig)
    x = x + amount * (x - blur(torch, x, one))
    y = y + amount * (y - blur(torch, y, one))
    noisy = torch.tensor(rng.random(b) < 0.4, device=dev)[:, None, None, None]
    sd = torch.tensor(rng.uniform(2.0, 12.0, b), dtype=torch.float32, device=dev)[:, None, None, None]
    n = torch.randn_like(x) * sd * noisy
    return x + n, y + n


def build_sampler(data, holdout, rng, args):
    sampler = Sampler(rng, args.patch, args.vessel_weight, args.vessel_frac, args.hard_negative_frac)
    used = []
    for patient in PATIENTS:
        if patient == holdout:
            continue
        pair = load_pair(data, patient)
        target, pool = hybrid_target(pair)
        sampler.add(f"real {patient}", pair["ncct"], target, pool, args.real_weight)
        used.append(f"real pair {patient} ({pair['ncct'].shape[0]} slices)")
    for folder, acq, patient in CONTRAST:
        if patient is not None and patient == holdout:
            continue
        sim, hu, core = simulated_pair(data, folder, acq, args.supra_aortic)
        sampler.add(f"sim {folder}", sim, hu, core, (1.0 - args.real_weight) / 4)
        used.append(f"simulated {folder}{f' acq {acq}' if acq else ''} ({hu.shape[0]} slices)")
    for folder, acq, patient in IDENTITY if args.identity_weight else ():
        if patient is not None and patient == holdout:
            continue
        hu = load_axial(os.path.join(data, folder), acq)["hu"].astype(np.float32)
        sampler.add(f"identity {folder}", hu, hu, np.zeros(hu.shape, bool), args.identity_weight)
        used.append(f"identity {folder}{f' acq {acq}' if acq else ''} ({hu.shape[0]} slices)")
    return sampler, used


def output_names(args) -> tuple[str, str]:
    """(suffix of the cache files, the ONNX path): a fold's model stays in the cache, the all-patient one is shipped."""
    suffix = (f"_{args.tag}" if args.tag else "") + (f"_fold-{args.holdout}" if args.holdout else "")
    if args.holdout or args.tag:
        return suffix, os.path.join(C.CACHE_DIR, f"syncta-v2{suffix.replace('_', '-')}.onnx")
    return suffix, os.path.join(C.MODELS_DIR, f"{MODEL_ID}.onnx")


def hu_to_net_torch(t):
    """common.hu_to_net for a tensor: HU clipped to [HU_MIN, HU_MAX] -> [-1, 1]."""
    return (t.clamp(C.HU_MIN, C.HU_MAX) - C.HU_MIN) / C.HU_RANGE * 2.0 - 1.0


def train(args, sampler, torch):
    dev = torch.device(args.device)
    rng = np.random.default_rng(args.seed + 1)
    model = build_syncta(args.scale, args.fat_gate)
    unet = model.unet if args.scale > 1 else model
    if args.init_state:  # go on from an earlier run of the same fold (a full-resolution one's weights seed the U-Net)
        state = torch.load(args.init_state, map_location="cpu")
        if args.scale > 1 and syncta_state_scale(state)[0] == 1:
            unet.load_state_dict(state)
        else:
            model.load_state_dict(state)
    else:
        torch.nn.init.zeros_(unet.outc.weight)  # start as identity
        torch.nn.init.zeros_(unet.outc.bias)
    model = model.to(dev)
    mined = None
    if args.hard_negative_frac:  # on the training device
        mined = mine_false_enhancements(torch, model, sampler, args.hard_negative_hu, args.hard_negative_sharpened)
        print("false enhancements of the starting model (voxels):", mined, flush=True)
    opt = torch.optim.Adam(model.parameters(), lr=args.lr)
    timer, log, it = C.Timer(), [], 0
    model.train()
    while it < args.max_iters and timer.minutes() < args.minutes:
        frac = max(min(timer.minutes() / args.minutes, 1.0), it / args.max_iters)
        lr = args.lr * (0.05 + 0.95 * 0.5 * (1 + np.cos(np.pi * frac)))
        for g in opt.param_groups:
            g["lr"] = lr
        xs, ys, ws, sharpen = zip(*(sampler.crop() for _ in range(args.batch)))
        f = lambda a: torch.from_numpy(np.stack(a)[:, None].astype(np.float32)).to(dev)  # noqa: E731
        xh, yh = kernel_and_noise(torch, rng, f(xs), f(ys), sharpen)
        xb, yb, wb = hu_to_net_torch(xh), hu_to_net_torch(yh), f(ws)
        out = model(xb)
        outside = (wb == 1.0).float()
        false_enhancement = (torch.relu(out - yb) * outside).sum() / outside.sum().clamp(min=1.0)
        loss = (wb * (out - yb).abs()).sum() / wb.sum() + args.brightening_weight * false_enhancement
        opt.zero_grad()
        loss.backward()
        opt.step()
        it += 1
        if it % 50 == 0:
            log.append({"iter": it, "min": round(timer.minutes(), 2), "loss": float(loss), "lr": lr})
            if it % 500 == 0 or args.device == "cpu":
                print(f"iter {it} {timer.minutes():.1f} min loss {float(loss):.5f} lr {lr:.2e}", flush=True)
    model.eval()
    return model.cpu(), {"iters": it, "train_minutes": timer.minutes(), "log": log, "device": args.device,
                         "hard_negatives_at_start": mined,
                         "device_name": torch.cuda.get_device_name(0) if args.device == "cuda" else "cpu"}


def main():
    ap = C.data_arg(argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter))
    ap.add_argument("--holdout", default=None, choices=list(PATIENTS), help="leave this HCC patient out (a fold)")
    ap.add_argument("--tag", default="", help="name of a configuration being compared (files get _TAG)")
    ap.add_argument("--minutes", type=float, default=18.0, help="wall-clock training budget")
    ap.add_argument("--max-iters", type=int, default=100000)
    ap.add_argument("--patch", type=int, default=160)
    ap.add_argument("--batch", type=int, default=6)
    ap.add_argument("--lr", type=float, default=2e-3)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--device", default="cpu", choices=["cpu", "cuda"])
    ap.add_argument("--real-weight", type=float, default=0.5, help="share of crops from the real pairs")
    ap.add_argument("--vessel-weight", type=float, default=4.0, help="extra L1 weight in the (dilated) blood pool")
    ap.add_argument("--vessel-frac", type=float, default=0.5, help="share of crops centred on the blood pool")
    ap.add_argument("--brightening-weight", type=float, default=1.0,
                    help="extra L1 weight on output above the target outside the blood pool (false enhancement)")
    ap.add_argument("--hard-negative-frac", type=float, default=0.0,
                    help="share of crops centred on the starting model's false enhancements (needs --init-state)")
    ap.add_argument("--hard-negative-hu", type=float, default=60.0,
                    help="a voxel outside the blood pool brightened more than this over the target is a hard negative")
    ap.add_argument("--hard-negative-sharpened", action="store_true",
                    help="mine the hard negatives on the sharpened sources too (round 4)")
    ap.add_argument("--identity-weight", type=float, default=0.0,
                    help="each IDENTITY series' share of the crops (target = input; round 7: 0.1; 0: none)")
    ap.add_argument("--supra-aortic", action="store_true",
                    help="de-enhance the arteries leaving the arch upward too in the simulated pairs (round 9 on)")
    ap.add_argument("--scale", type=int, default=1, choices=[1, 2, 4],
                    help="run the U-Net on the slice averaged scale x scale, its correction upsampled "
                         "(networks.build_syncta; 2: round 5, 4: round 6)")
    ap.add_argument("--half-res", dest="scale", action="store_const", const=2, help="--scale 2 (round 5)")
    ap.add_argument("--fat-gate", action="store_true",
                    help="fade the correction out where the input is below -20 HU (networks.build_syncta)")
    ap.add_argument("--state-only", action="store_true",
                    help="save the weights (.pt) and the log, no ONNX (the GPU machine's torch exports differently)")
    ap.add_argument("--init-state", default=None, help="start from these weights (.pt, with its _train.json)")
    ap.add_argument("--from-state", default=None,
                    help="skip training: export this .pt (and its _train.json log) to ONNX, and the manifest")
    args = ap.parse_args()

    import torch

    C.set_threads(args.threads)
    C.seed_everything(args.seed)
    suffix, onnx_path = output_names(args)
    if args.from_state:
        model, args.scale, args.fat_gate = load_syncta(args.from_state)
        with open(args.from_state[:-3] + "_train.json") as f:
            info = json.load(f)
        probe_hu = load_pair(args.data, list(PATIENTS)[0])["ncct"][:2]
    else:
        rng = np.random.default_rng(args.seed)
        sampler, used = build_sampler(args.data, args.holdout, rng, args)
        print("training on:", "; ".join(used), flush=True)
        model, run = train(args, sampler, torch)
        info = {"model": MODEL_ID, "version": VERSION, "holdout": args.holdout, "tag": args.tag, "data": used,
                **run, "args": {k: v for k, v in vars(args).items() if k != "data"},
                "params": C.count_params(model), "torch": torch.__version__}
        if args.init_state:
            with open(args.init_state[:-3] + "_train.json") as f:
                before = json.load(f)
            info["continued_from"] = {k: before.get(k) for k in ("iters", "train_minutes", "device_name", "args", "torch",
                                                                 "continued_from")}
            info["total_iters"] = run["iters"] + (before.get("total_iters") or before["iters"])
        pt = os.path.join(C.CACHE_DIR, f"syncta_v2{suffix}.pt")
        torch.save(model.state_dict(), pt)
        with open(pt[:-3] + "_train.json", "w") as f:
            json.dump(info, f, indent=1)
        probe_hu = sampler.sources[0]["x"][:2]
        if args.state_only:
            print(json.dumps({k: v for k, v in info.items() if k != "log"}, indent=1))
            return
    C.export_onnx(model, onnx_path, in_ch=1, opset=13)
    chk = C.check_onnx_against_torch(model, onnx_path, C.hu_to_net(probe_hu)[:, None].copy())
    print("onnx check", chk)
    if not (args.holdout or args.tag):
        C.write_manifest(
            MODEL_ID, version=VERSION, task="synthesis", name="Syn-CTA U-Net small v2 (real-pair reference model)",
            context=1, spatial_multiple=syncta_spatial_multiple(args.scale), meaning="hu-image", batch_size=8,
            description=f"Reference NCCT -> synthetic CTA 2D U-Net ({C.count_params(model) // 1000}k params"
                        f"{f', run at 1/{args.scale} resolution, its correction upsampled' if args.scale > 1 else ''}) trained on "
                        "three real non-contrast/arterial pairs (HCC-TACE-Seg, registered) with blood-pool-only "
                        "simulated pairs as augmentation. Demonstration only; not for diagnostic use.",
        )
    info.update({"onnx": onnx_path, "onnx_bytes": os.path.getsize(onnx_path), "onnx_check": chk,
                 "exported_with_torch": torch.__version__})
    with open(os.path.join(C.CACHE_DIR, f"syncta_train{suffix}.json"), "w") as f:
        json.dump(info, f, indent=1)
    print(json.dumps({k: v for k, v in info.items() if k != "log"}, indent=1))


if __name__ == "__main__":
    main()

#!/usr/bin/env python3
"""Precompute simulated low-dose / full-dose slice pairs for denoise-ffdnet-small (cached in /tmp/ct-cache).

Low-dose simulation (simulate.low_dose_sinogram_noise): per 512x512 slice, HU -> mu (mu_water 0.0192/mm), parallel-beam
radon with 720 views over 180 deg, Poisson noise on counts I0*exp(-line integral), filtered back projection (ramp) of
the noise in the line integrals, added to the original slice. The original slice already carries full-dose noise, so
I0 is calibrated for a quarter-dose level: the added noise SD in a descending-aorta ROI must be sqrt(1/f - 1) times
the native noise SD there (f = dose fraction, 0.25 -> sqrt(3)); noise variance scales as 1/I0.

Split on lidc-idri-0002-ncct: held out = slices HELD (block 120..155, every 5th), with no training slice in
[HELD_BLOCK[0] - 5, HELD_BLOCK[1] + 5). Training = every 5th slice of 0002 outside that band + every 6th slice of
lidc-idri-0001-cect.

  /usr/bin/python3 training/prep_denoise.py [--data ../shared/data/ct] [--dose 0.25] [--workers 2]
"""
from __future__ import annotations

import argparse
import json
import os
import sys
from concurrent.futures import ProcessPoolExecutor

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import common as C  # noqa: E402
from simulate import low_dose_sinogram_noise  # noqa: E402

NCCT = "lidc-idri-0002-ncct"
CECT = "lidc-idri-0001-cect"
HELD_BLOCK = (120, 160)
HELD = list(range(120, 160, 5))
AORTA = ((290, 296), 12, 6, (0.0, 100.0))  # search centre, half-width, radius, HU range (see evaluate_syncta.ROIS)
N_ANGLES = 720
CALIB_I0 = 1e5


def split_slices(n_ncct: int, n_cect: int):
    tr_n = [z for z in range(0, n_ncct, 5) if z < HELD_BLOCK[0] - 5 or z >= HELD_BLOCK[1] + 5]
    tr_c = list(range(0, n_cect, 6))
    return tr_n, tr_c, HELD


def aorta_sd(img):
    p = C.find_uniform_roi(img, *AORTA)
    return None if p is None else float(img[C.disk(img.shape, p, AORTA[2])].std()), p


def _job(args):
    series, z, hu_slice, pixel_mm, i0, seed = args
    rng = np.random.default_rng(seed)
    return series, z, low_dose_sinogram_noise(hu_slice, pixel_mm, i0, rng, n_angles=N_ANGLES)


def cache_path(dose):
    return os.path.join(C.CACHE_DIR, f"denoise_pairs_d{dose:g}_v1.npz")


def main():
    ap = C.data_arg(argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter))
    ap.add_argument("--dose", type=float, default=0.25, help="simulated dose fraction of the original")
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    nhu, nmeta = C.load_series_hu(os.path.join(args.data, NCCT))
    chu, cmeta = C.load_series_hu(os.path.join(args.data, CECT))
    tr_n, tr_c, held = split_slices(nhu.shape[0], chu.shape[0])

    # calibration of I0 on the held-out slices' aorta ROI (native noise) and one reference simulation
    native = [aorta_sd(np.clip(nhu[z], -1024, None))[0] for z in held]
    native_sd = float(np.median(native))
    target_added = native_sd * np.sqrt(1.0 / args.dose - 1.0)
    zc = held[len(held) // 2]
    ref = low_dose_sinogram_noise(nhu[zc], nmeta["pixelSpacing"][0], CALIB_I0, np.random.default_rng(12345),
                                  n_angles=N_ANGLES)
    clean = np.clip(nhu[zc], -1024, None)
    sd_c, p = aorta_sd(clean)
    added_ref = float((ref - clean)[C.disk(clean.shape, p, AORTA[2])].std())
    i0 = CALIB_I0 * (added_ref / target_added) ** 2
    calib = {"dose": args.dose, "native_sd_aorta_median": native_sd, "native_sd_per_slice": native,
             "target_added_sd": target_added, "ref_i0": CALIB_I0, "ref_added_sd": added_ref, "ref_slice": zc,
             "i0": i0, "n_angles": N_ANGLES}
    print(json.dumps(calib, indent=1), flush=True)

    jobs = []
    for k, z in enumerate(tr_n):
        jobs.append(("train_ncct", z, nhu[z], nmeta["pixelSpacing"][0], i0, args.seed * 100000 + 1000 + z))
    for k, z in enumerate(tr_c):
        jobs.append(("train_cect", z, chu[z], cmeta["pixelSpacing"][0], i0, args.seed * 100000 + 5000 + z))
    for z in held:
        jobs.append(("held_ncct", z, nhu[z], nmeta["pixelSpacing"][0], i0, args.seed * 100000 + 9000 + z))
    timer = C.Timer()
    results = {}
    with ProcessPoolExecutor(max_workers=args.workers) as ex:
        for i, (series, z, low) in enumerate(ex.map(_job, jobs)):
            results[(series, z)] = low
            if i % 10 == 0:
                print(f"{i + 1}/{len(jobs)} {timer.minutes():.1f} min", flush=True)

    def stack(series, zs, src):
        return (np.stack([results[(series, z)] for z in zs]).astype(np.float32),
                np.stack([np.clip(src[z], -1024, None) for z in zs]).astype(np.float32))

    tl_n, tc_n = stack("train_ncct", tr_n, nhu)
    tl_c, tc_c = stack("train_cect", tr_c, chu)
    hl, hc = stack("held_ncct", held, nhu)
    os.makedirs(C.CACHE_DIR, exist_ok=True)
    np.savez(cache_path(args.dose), train_low=np.concatenate([tl_n, tl_c]), train_clean=np.concatenate([tc_n, tc_c]),
             held_low=hl, held_clean=hc, held_idx=np.array(held), train_ncct_idx=np.array(tr_n),
             train_cect_idx=np.array(tr_c), calib=json.dumps(calib))
    print(f"wrote {cache_path(args.dose)}: {len(tr_n)}+{len(tr_c)} train, {len(held)} held-out slices, "
          f"{timer.minutes():.1f} min")


if __name__ == "__main__":
    main()

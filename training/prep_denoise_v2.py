#!/usr/bin/env python3
"""Simulated low-dose / full-dose pairs for denoise-ffdnet-small v2: several patients, three dose fractions, and the
noise level each low-dose image shows as the node measures it (noise_measure.py = the probe's noiseHu).

Series (patients): LIDC-IDRI-0001 (chest, IV contrast, 2.5 mm), LIDC-IDRI-0002 (chest, non-contrast, 1.25 mm),
MIDRC-RICORD-1A (chest, non-contrast, 1.25 mm), HCC_005 / HCC_007 / HCC_009 (upper abdomen: non-contrast 5-10 mm and
arterial / portal 2.5 mm). Not used: CPTAC C3N-00247 (kernel B70f, a sharp lung kernel: its native noise is ~3x a
standard kernel's and has a sharp kernel's texture, while the simulation adds ramp-filtered noise on top; a model
for standard kernels must not learn that as "full dose").

Per series, SLICES evenly spaced slices where the body is (>= 20% of the series' largest cross-section). Per slice
(simulate.low_dose_sinogram_noise_doses): one parallel-beam forward projection (360 views over 180 deg, inscribed
circle), then per dose fraction f an independent Poisson draw at I0(series, f) and FBP (ramp) of the noise only.

Dose calibration per series: the full-dose image already carries its native noise sigma_n, so the added noise must
have SD sigma_n * sqrt(1/f - 1) (variance adds, noise variance ~ 1/dose). sigma_n = the node's noise measure on the
series' sampled full-dose slices; one reference simulation at I0 = 1e5 on the middle sampled slice gives the added
SD at that count, measured by the same boxes on the difference image; I0(f) = 1e5 * (added_ref / target)^2.

Cache: $CT_CACHE/denoise2_pairs.npz (clean [N,512,512], low [N,D,512,512] float32, per-slice series index) and
$CT_CACHE/denoise2_pairs.json (series, slices, calibration, measured noise per series and dose).

  /usr/bin/python3 training/prep_denoise_v2.py [--data ../shared/data/ct] [--workers 2]
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
from noise_measure import volume_noise  # noqa: E402
from simulate import body_mask, low_dose_sinogram_noise_doses  # noqa: E402

DOSES = (0.5, 0.25, 0.1)
N_ANGLES = 360
REF_I0 = 1e5
# (patient, series folder, slices sampled)
SERIES = [
    ("lidc-idri-0001", "lidc-idri-0001-cect", 14),
    ("lidc-idri-0002", "lidc-idri-0002-ncct", 16),
    ("ricord-1a", "ricord-ncct-jpegls", 16),
    ("hcc-005", "hcc-005-ncct", 8),
    ("hcc-005", "hcc-005-arterial", 8),
    ("hcc-007", "hcc-007-ncct", 8),
    ("hcc-007", "hcc-007-arterial-portal", 8),
    ("hcc-009", "hcc-009-ncct", 8),
    ("hcc-009", "hcc-009-arterial", 8),
]


def pairs_path(ext="npz"):
    return os.path.join(C.CACHE_DIR, f"denoise2_pairs.{ext}")


def load(data: str, folder: str):
    name = os.path.basename(folder)
    cached = os.path.exists(os.path.join(C.CACHE_DIR, f"{name}_hu.npy"))
    # only the shared cache's existing volumes are read; nothing but denoise2_* is written to it
    src = os.path.join(data, folder) if cached else C.decoded_folder(os.path.join(data, folder))
    return C.load_series_hu(src, use_cache=cached)


def sample(hu: np.ndarray, n: int) -> list:
    area = (hu[:, ::4, ::4] > -500).sum(axis=(1, 2))
    ok = np.flatnonzero(area >= 0.2 * area.max())
    return sorted({int(ok[int(round(i))]) for i in np.linspace(0, len(ok) - 1, n)})


def _job(args):
    key, z, hu_slice, pixel_mm, i0s, seed = args
    return key, z, low_dose_sinogram_noise_doses(hu_slice, pixel_mm, i0s, np.random.default_rng(seed), n_angles=N_ANGLES)


def main():
    ap = C.data_arg(argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter))
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    timer = C.Timer()
    vols, info = {}, []
    for si, (patient, folder, n) in enumerate(SERIES):
        hu, meta = load(args.data, folder)
        zs = sample(hu, n)
        clean = np.clip(hu[zs], -1024, None).astype(np.float32)
        vols[si] = clean
        info.append({"patient": patient, "series": folder, "slices": zs, "pixelMm": meta["pixelSpacing"],
                     "sliceThicknessMm": meta["sliceThickness"], "kvp": meta["kvp"], "nSeries": int(hu.shape[0])})
        del hu
    print(f"loaded {len(SERIES)} series in {timer.minutes():.1f} min", flush=True)

    # calibration: native noise (node's measure) and one reference simulation per series
    bodies = {si: body_mask(v) for si, v in vols.items()}
    calib_jobs = []
    for si, v in vols.items():
        m = len(v) // 2
        calib_jobs.append((si, m, v[m], info[si]["pixelMm"][0], [REF_I0], 777 + si))
    with ProcessPoolExecutor(max_workers=args.workers) as ex:
        refs = {si: (m, lows[0]) for si, m, lows in ex.map(_job, calib_jobs)}
    for si, v in vols.items():
        col = info[si]["pixelMm"][1]
        native = volume_noise(v, bodies[si], col)
        m, ref = refs[si]
        # one slice: its boxes alone (fewer than the volume rule's 20 of a kind is fine for a calibration)
        added_ref = volume_noise((ref - v[m])[None], bodies[si][m:m + 1], col, boxes_from=v[m:m + 1], min_boxes=5)
        a_ref = added_ref["noiseHu"]
        i0s = {f: REF_I0 * (a_ref / (native["noiseHu"] * np.sqrt(1 / f - 1))) ** 2 for f in DOSES}
        info[si]["calibration"] = {"nativeNoiseHu": native, "refI0": REF_I0, "refSlice": info[si]["slices"][m],
                                   "addedNoiseHuAtRefI0": a_ref, "i0": {str(f): i0s[f] for f in DOSES}}
        print(info[si]["series"], json.dumps(info[si]["calibration"]), flush=True)
    print(f"calibrated in {timer.minutes():.1f} min", flush=True)

    jobs = []
    for si, v in vols.items():
        i0s = [info[si]["calibration"]["i0"][str(f)] for f in DOSES]
        for k in range(len(v)):
            jobs.append(((si, k), info[si]["slices"][k], v[k], info[si]["pixelMm"][0], i0s,
                         args.seed * 1000003 + si * 10007 + info[si]["slices"][k]))
    lows = {}
    with ProcessPoolExecutor(max_workers=args.workers) as ex:
        for i, (key, z, low) in enumerate(ex.map(_job, jobs)):
            lows[key] = np.stack(low)
            if i % 10 == 0:
                print(f"{i + 1}/{len(jobs)} slices {timer.minutes():.1f} min", flush=True)

    clean_all, low_all, series_of = [], [], []
    for si, v in vols.items():
        low = np.stack([lows[(si, k)] for k in range(len(v))])  # [n, D, H, W]
        col = info[si]["pixelMm"][1]
        measured = {}
        for di, f in enumerate(DOSES):
            on_low = volume_noise(low[:, di], bodies[si], col)
            added = volume_noise(low[:, di] - v, bodies[si], col, boxes_from=v)
            native = info[si]["calibration"]["nativeNoiseHu"]["noiseHu"]
            measured[str(f)] = {
                "measuredOnLowDose": on_low,
                "addedNoiseHu": added["noiseHu"],
                "targetAddedNoiseHu": native * np.sqrt(1 / f - 1),
                # the definition "known simulated noise + native noise", for the agreement check
                "knownNoiseHu": float(np.sqrt(native ** 2 + added["noiseHu"] ** 2)),
            }
        info[si]["noise"] = measured
        print(info[si]["series"], {f: (round(m["measuredOnLowDose"]["noiseHu"], 1), round(m["knownNoiseHu"], 1))
                                   for f, m in measured.items()}, flush=True)
        clean_all.append(v)
        low_all.append(low)
        series_of += [si] * len(v)
    np.savez(pairs_path(), clean=np.concatenate(clean_all), low=np.concatenate(low_all),
             series=np.array(series_of, np.int16))
    out = {"doses": list(DOSES), "nAngles": N_ANGLES, "seed": args.seed, "series": info, "minutes": timer.minutes()}
    with open(pairs_path("json"), "w") as fh:
        json.dump(out, fh, indent=1)
    print(f"wrote {pairs_path()}: {len(series_of)} slices x {len(DOSES)} doses in {timer.minutes():.1f} min")


if __name__ == "__main__":
    main()

#!/usr/bin/env python3
"""Real same-patient Syn-CTA pairs (HCC-TACE-Seg): each non-contrast series registered to its arterial phase.

For every patient P in PATIENTS the arterial series is brought onto the non-contrast series' grid:
1. In-plane: both series share the pixel spacing; the arterial slices are shifted by their ImagePositionPatient
   difference (bilinear), so both start in the scanner's patient coordinates.
2. Slab: every thick non-contrast slice (5 or 10 mm) is compared with the thickness-weighted average of the 2.5 mm
   arterial slices it overlaps (a thick reconstruction of the arterial phase at that position).
3. Rigid: one 3D translation (z in 1.25 mm steps within +-40 mm, then x/y in 1-pixel steps within +-12 px) maximising
   the normalised cross-correlation (NCC) inside the body on HU clipped to [-300, 100] (the clip keeps the enhanced
   blood pool and kidneys from pulling the match: at 100 HU they look like any soft tissue).
4. Deformable, two parts: a z offset per slice (+-10 mm around the rigid one, breathing moves the liver between
   phases; median-filtered over 3 slices) and an in-plane displacement field per slice (TV-L1 optical flow,
   scikit-image defaults, on the same clipped images scaled to [0, 1]), applied to the arterial slab.
Registration quality is reported as NCC and mean |difference| in the body outside the enhanced voxels (arterial
> 150 HU), at DICOM coordinates, after rigid and after deformable. The non-contrast series covers the liver only;
slices whose slab is not fully covered by the arterial series are dropped.

Cached in $CT_CACHE/syncta_pair_<patient>.npz: ncct, arterial (registered, HU), bloodpool (arterial enhanced blood
pool mask on the ncct grid), body, positions; quality in $CT_CACHE/syncta_pairs.json.

  /usr/bin/python3 training/syncta_pairs.py [--data ../shared/data/ct] [--patients hcc-005 hcc-007 hcc-009]
"""
from __future__ import annotations

import argparse
import glob
import json
import os
import sys

import numpy as np
from scipy import ndimage as ndi

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import common as C  # noqa: E402
from simulate import blood_pool_mask, body_mask  # noqa: E402

# patient -> (non-contrast folder, arterial folder, AcquisitionNumber of the arterial phase or None)
PATIENTS = {
    "hcc-005": ("hcc-005-ncct", "hcc-005-arterial", None),
    "hcc-007": ("hcc-007-ncct", "hcc-007-arterial-portal", 2),
    "hcc-009": ("hcc-009-ncct", "hcc-009-arterial", None),
}
CLIP = (-300.0, 100.0)
ENHANCED_HU = 150.0


def load_axial(folder: str, acquisition: int | None = None):
    """HU volume [z,y,x] inferior -> superior of an axial series (optionally one AcquisitionNumber), with the
    in-plane origin (x, y of ImagePositionPatient), z positions, pixel spacing and slice thickness."""
    import pydicom

    name = os.path.basename(os.path.normpath(folder)) + (f"_acq{acquisition}" if acquisition else "")
    cache = os.path.join(C.CACHE_DIR, f"axial_{name}.npz")
    if os.path.exists(cache):
        z = np.load(cache)
        return {k: z[k] for k in z.files}
    rows = []
    for fn in sorted(glob.glob(os.path.join(C.decoded_folder(folder), "*.dcm"))):
        ds = pydicom.dcmread(fn)
        if acquisition is not None and int(ds.get("AcquisitionNumber", -1)) != acquisition:
            continue
        ipp = [float(v) for v in ds.ImagePositionPatient]
        hu = ds.pixel_array.astype(np.float32) * float(ds.get("RescaleSlope", 1)) + float(ds.get("RescaleIntercept", 0))
        rows.append((ipp[2], ipp, hu, float(ds.PixelSpacing[0]), float(ds.SliceThickness)))
    rows.sort(key=lambda r: r[0])
    vol = {"hu": np.stack([r[2] for r in rows]), "z": np.array([r[0] for r in rows]),
           "origin_xy": np.array(rows[0][1][:2]), "spacing": np.array(rows[0][3]), "thickness": np.array(rows[0][4])}
    os.makedirs(C.CACHE_DIR, exist_ok=True)
    np.savez(cache, **vol)
    return vol


def voxel_ml(vol) -> float:
    """One voxel's volume in ml: pixel spacing squared times the slice step (the thickness for a single slice)."""
    step = float(np.median(np.abs(np.diff(vol["z"])))) if len(vol["z"]) > 1 else float(vol["thickness"])
    return float(vol["spacing"]) ** 2 * step / 1000.0


def slab_weights(z_art: np.ndarray, art_thick: float, z: float, thick: float) -> np.ndarray | None:
    """Weights of the arterial slices (each covering z_art +- art_thick/2) in the slab z +- thick/2: their overlap
    fractions, normalised; None when the slab is not fully covered."""
    lo, hi = z - thick / 2, z + thick / 2
    if lo < z_art[0] - art_thick / 2 - 1e-3 or hi > z_art[-1] + art_thick / 2 + 1e-3:
        return None
    w = np.clip(np.minimum(hi, z_art + art_thick / 2) - np.maximum(lo, z_art - art_thick / 2), 0, None)
    return w / w.sum()


def slabs(art: np.ndarray, z_art, art_thick, z_list, thick):
    out, ok = [], []
    for z in z_list:
        w = slab_weights(z_art, art_thick, z, thick)
        ok.append(w is not None)
        out.append(np.tensordot(w, art, axes=1) if w is not None else np.zeros(art.shape[1:], np.float32))
    return np.stack(out).astype(np.float32), np.array(ok)


def ncc(a: np.ndarray, b: np.ndarray, m: np.ndarray) -> float:
    a, b = a[m] - a[m].mean(), b[m] - b[m].mean()
    return float((a * b).sum() / np.sqrt((a * a).sum() * (b * b).sum() + 1e-9))


def quality(ncct, reg, body):
    """NCC and mean |difference| (HU, unclipped) in the body outside the enhanced voxels of the registered arterial."""
    m = body & (reg < ENHANCED_HU)
    return {"ncc": ncc(np.clip(ncct, *CLIP), np.clip(reg, *CLIP), m),
            "mae_hu_outside_enhanced": float(np.abs(ncct - reg)[m].mean())}


def register(ncct_vol, art_vol):
    nc, art = ncct_vol["hu"], art_vol["hu"]
    sp = float(ncct_vol["spacing"])
    shift_px = (art_vol["origin_xy"] - ncct_vol["origin_xy"]) / sp  # (x, y) in pixels
    art = np.stack([ndi.shift(s, (shift_px[1], shift_px[0]), order=1, cval=-1024.0) for s in art])
    thick, athick = float(ncct_vol["thickness"]), float(art_vol["thickness"])
    z_n, z_a = ncct_vol["z"], art_vol["z"]
    body = body_mask(nc)
    small = lambda v: v[:, ::4, ::4]  # noqa: E731
    nc_c = np.clip(nc, *CLIP)

    def score(dz, dy=0, dx=0, sl=None):
        s, ok = slabs(small(art), z_a, athick, z_n + dz, thick)
        ok = ok if sl is None else ok & sl
        if ok.sum() < 3:
            return -1.0
        s = np.roll(np.clip(s, *CLIP), (dy, dx), axis=(1, 2))
        return ncc(small(nc_c)[ok], s[ok], small(body)[ok])

    dz_grid = np.arange(-40.0, 40.01, 1.25)
    dz0 = float(dz_grid[int(np.argmax([score(d) for d in dz_grid]))])
    grid = [(dy, dx) for dy in range(-3, 4) for dx in range(-3, 4)]  # 4 px steps on the quarter grid: +-12 px
    dy0, dx0 = grid[int(np.argmax([score(dz0, dy, dx) for dy, dx in grid]))]
    art = np.roll(art, (4 * dy0, 4 * dx0), axis=(1, 2))
    fine = [(dy, dx) for dy in range(-2, 3) for dx in range(-2, 3)]
    s0, ok0 = slabs(art, z_a, athick, z_n + dz0, thick)
    fy, fx = fine[int(np.argmax([ncc(nc_c[ok0], np.roll(np.clip(s0, *CLIP), (dy, dx), axis=(1, 2))[ok0], body[ok0])
                                 for dy, dx in fine]))]
    art = np.roll(art, (fy, fx), axis=(1, 2))
    rigid, ok = slabs(art, z_a, athick, z_n + dz0, thick)
    at_dicom, ok_dicom = slabs(np.roll(art, (-4 * dy0 - fy, -4 * dx0 - fx), axis=(1, 2)), z_a, athick, z_n, thick)

    # deformable: per-slice z, then in-plane TV-L1 flow
    from skimage.registration import optical_flow_tvl1
    from skimage.transform import warp

    unit = lambda a: (np.clip(a, *CLIP) - CLIP[0]) / (CLIP[1] - CLIP[0])  # noqa: E731  TV-L1's defaults assume [0, 1]

    per_dz = []
    for i, z in enumerate(z_n):
        cands = dz0 + np.arange(-10.0, 10.01, 1.25)
        best, best_s = dz0, -2.0
        for d in cands:
            w = slab_weights(z_a, athick, z + d, thick)
            if w is None:
                continue
            s = ncc(nc_c[i], np.clip(np.tensordot(w, art, axes=1), *CLIP), body[i])
            if s > best_s:
                best, best_s = float(d), s
        per_dz.append(best)
    per_dz = ndi.median_filter(np.array(per_dz), size=3, mode="nearest")
    deformed, okd = [], []
    rr, cc = np.meshgrid(np.arange(nc.shape[1]), np.arange(nc.shape[2]), indexing="ij")
    for i, z in enumerate(z_n):
        w = slab_weights(z_a, athick, z + per_dz[i], thick)
        okd.append(w is not None and ok[i])
        if w is None:
            deformed.append(np.zeros(nc.shape[1:], np.float32))
            continue
        s = np.tensordot(w, art, axes=1).astype(np.float32)
        v, u = optical_flow_tvl1(unit(nc[i]), unit(s))
        deformed.append(warp(s, np.array([rr + v, cc + u]), order=1, mode="edge").astype(np.float32))
    deformed, okd = np.stack(deformed), np.array(okd)
    keep = okd & ok & ok_dicom
    report = {
        "rigid_mm": {"z": dz0, "y": (4 * dy0 + fy) * sp, "x": (4 * dx0 + fx) * sp},
        "per_slice_dz_mm": [float(d) for d in per_dz],
        "slices": int(keep.sum()), "ncct_thickness_mm": thick, "arterial_thickness_mm": athick,
        "dicom": quality(nc[keep], at_dicom[keep], body[keep]),
        "rigid": quality(nc[keep], rigid[keep], body[keep]),
        "deformable": quality(nc[keep], deformed[keep], body[keep]),
    }
    return nc[keep], deformed[keep], body[keep], z_n[keep], report


def load_pair(data: str, patient: str):
    """(ncct, registered arterial, blood pool of the arterial, body) on the non-contrast grid, cached."""
    cache = os.path.join(C.CACHE_DIR, f"syncta_pair_{patient}.npz")
    if os.path.exists(cache):
        z = np.load(cache)  # int16 images where syncta_pack.py packed it for the GPU machine
        return {k: z[k].astype(np.float32) if z[k].dtype == np.int16 else z[k] for k in z.files}
    n_name, a_name, acq = PATIENTS[patient]
    nc_vol = load_axial(os.path.join(data, n_name))
    art_vol = load_axial(os.path.join(data, a_name), acq)
    nc, art, body, z, report = register(nc_vol, art_vol)
    pair = {"ncct": nc, "arterial": art, "bloodpool": blood_pool_mask(art, voxel_ml(nc_vol)), "body": body, "z": z,
            "spacing": nc_vol["spacing"], "report": json.dumps(report)}
    np.savez(cache, **pair)
    return pair


def iv_blood_pool(pair) -> np.ndarray:
    """The arterial phase's blood pool where the non-contrast slice is not already bright (smoothed < 120 HU): what
    the IV contrast enhanced, without oral contrast in the bowel or calcification, which are bright in both phases."""
    plain = np.stack([ndi.gaussian_filter(s, 1.0) for s in pair["ncct"]])
    return pair["bloodpool"] & (plain < 120.0)


def main():
    ap = C.data_arg(argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter))
    ap.add_argument("--patients", nargs="+", default=list(PATIENTS))
    args = ap.parse_args()
    out = {}
    for p in args.patients:
        pair = load_pair(args.data, p)
        out[p] = json.loads(str(pair["report"]))
        out[p]["bloodpool_voxels"] = int(pair["bloodpool"].sum())
        print(p, json.dumps({k: v for k, v in out[p].items() if k != "per_slice_dz_mm"}), flush=True)
    with open(os.path.join(C.CACHE_DIR, "syncta_pairs.json"), "w") as f:
        json.dump(out, f, indent=1)


if __name__ == "__main__":
    main()

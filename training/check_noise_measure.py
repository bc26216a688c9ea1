#!/usr/bin/env python3
"""Does the noise the denoiser's noise-level input was trained on match the noise the node measures at run time?

1. Real full-dose series, whole volumes: the node's probe (training/node_noise.ts: src/measure probeVolume, the
   code the service runs) against noise_measure.py (the numpy port) on the slices the node sampled.
2. The simulated low-dose slices of every series at every dose (prep_denoise_v2.py), stacked as a volume with a 15 mm
   slice spacing so that the node samples every slice: the node's noiseHu against the training label (the port on
   the same slices) and against "known" = sqrt(native^2 + added^2) (native: the port on the full-dose slices; added:
   the port's boxes on the difference image).
Writes $CT_CACHE/denoise2_noise_check.json.

  /usr/bin/python3 training/check_noise_measure.py [--data ../shared/data/ct]
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import common as C  # noqa: E402
from noise_measure import volume_noise  # noqa: E402
from prep_denoise_v2 import load, pairs_path  # noqa: E402
from simulate import body_mask  # noqa: E402

REAL = ["lidc-idri-0002-ncct", "lidc-idri-0001-cect", "ricord-ncct-jpegls", "hcc-005-ncct", "hcc-005-arterial",
        "hcc-007-arterial-portal", "hcc-009-arterial", "cptac-c3n-00247-cect-chest"]


def node_noise(hu: np.ndarray, pixel_mm, spacing_mm: float) -> dict:
    with tempfile.TemporaryDirectory() as td:
        f = os.path.join(td, "vol.f32")
        np.ascontiguousarray(hu, dtype="<f4").tofile(f)
        out = subprocess.run(["npx", "vite-node", os.path.join(os.path.dirname(__file__), "node_noise.ts"), f,
                              *map(str, [hu.shape[0], hu.shape[1], hu.shape[2], pixel_mm[0], pixel_mm[1], spacing_mm])],
                             cwd=C.REPO_ROOT, check=True, stdout=subprocess.PIPE, text=True).stdout
    return json.loads(out.strip().splitlines()[-1])


def main():
    ap = C.data_arg(argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter))
    ap.add_argument("--part", choices=["real", "simulated", "both"], default="both")
    args = ap.parse_args()
    out_path = os.path.join(C.CACHE_DIR, "denoise2_noise_check.json")
    res = {"real": {}, "simulated": []}
    if os.path.exists(out_path):
        with open(out_path) as fh:
            res.update(json.load(fh))
    for name in REAL if args.part != "simulated" else []:
        if name in res["real"]:
            continue  # measured by an earlier run (the file in $CT_CACHE)
        hu, meta = load(args.data, name)
        hu = np.clip(hu, -1024, None)  # as the training pairs (the node's padding value -3024 -> air)
        pos = meta["positions"]
        steps = np.abs(np.diff(pos))
        spacing = float(np.median(steps[steps > 1e-3]))  # hcc-007's two acquisitions share their positions
        node = node_noise(hu, meta["pixelSpacing"], spacing)
        zs = node["noiseSlices"]
        port = volume_noise(hu[zs], body_mask(hu[zs]), meta["pixelSpacing"][1])
        res["real"][name] = {"node": node["noiseHu"], "port": port["noiseHu"], "nodeFat": node["fatNoiseHu"],
                             "nodeTissue": node["tissueNoiseHu"], "portFat": port["fatNoiseHu"],
                             "portTissue": port["tissueNoiseHu"], "slices": len(zs)}
        print(name, res["real"][name], flush=True)
        del hu
    if args.part == "real":
        with open(out_path, "w") as fh:
            json.dump(res, fh, indent=1)
        return
    res["simulated"] = []
    d = np.load(pairs_path())
    with open(pairs_path("json")) as fh:
        meta = json.load(fh)
    for si, s in enumerate(meta["series"]):
        idx = np.flatnonzero(d["series"] == si)
        for di, f in enumerate(meta["doses"]):
            node = node_noise(d["low"][idx, di], s["pixelMm"], 15.0)
            n = s["noise"][str(f)]
            row = {"patient": s["patient"], "series": s["series"], "dose": f, "node": node["noiseHu"],
                   "label": n["measuredOnLowDose"]["noiseHu"], "known": n["knownNoiseHu"],
                   "nodeSlices": len(node["noiseSlices"]), "slices": int(len(idx))}
            res["simulated"].append(row)
            print(row, flush=True)
    rel = [r["node"] / r["label"] - 1 for r in res["simulated"] if r["node"] is not None]
    relk = [r["known"] / r["label"] - 1 for r in res["simulated"] if r["node"] is not None]
    res["summary"] = {"nodeVsLabelRelative": {"median": float(np.median(rel)), "min": float(np.min(rel)), "max": float(np.max(rel))},
                      "knownVsLabelRelative": {"median": float(np.median(relk)), "min": float(np.min(relk)), "max": float(np.max(relk))},
                      "nodeMissing": sum(r["node"] is None for r in res["simulated"])}
    print(json.dumps(res["summary"], indent=1))
    with open(out_path, "w") as fh:
        json.dump(res, fh, indent=1)


if __name__ == "__main__":
    main()

#!/usr/bin/env python3
"""A Syn-CTA model's false enhancement on one unseen chest under three reconstructions (evaluate_syncta.kernel_variants:
as reconstructed, smoothed, sharpened), as evaluate_syncta.py measures it volume-wide: isolated
brightening (> 100 HU, not connected to the mediastinum), its share of soft tissue, how much of it lies in blobs under
0.5 ml (noise-like) and the largest blobs. Answers whether a kernel moves the output checks through noise or through
the model's own false enhancements. onnxruntime-node, as the service runs the model; several minutes per model.

  /usr/bin/python3 training/syncta_kernel_blobs.py models/syncta-unet-small.onnx [--series lidc-idri-0002-ncct]
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
from evaluate_syncta import chest_volume, kernel_variants, run_model, volume_wide  # noqa: E402


def main():
    ap = C.data_arg(argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter))
    ap.add_argument("onnx")
    ap.add_argument("--series", default="lidc-idri-0002-ncct")
    args = ap.parse_args()
    hu, voxel_ml, _ = chest_volume(args.data, args.series)
    hu = np.clip(hu, C.HU_MIN, C.HU_MAX).astype(np.float32)
    res = {"model": os.path.basename(args.onnx), "sha256": C.sha256_file(args.onnx), "series": args.series}
    for name, volume in kernel_variants(hu).items():
        wide, _, isolated = volume_wide(volume, run_model(args.onnx, volume), voxel_ml)
        blobs, n = ndi.label(isolated)
        sizes = ndi.sum(isolated, blobs, index=np.arange(1, n + 1)) * voxel_ml
        res[name] = {"isolated_ml": round(wide["isolated_ml"], 1),
                     "isolated_share_of_soft_tissue_percent": round(wide["isolated_share_of_soft_tissue_percent"], 2),
                     "in_blobs_under_half_ml": round(float(sizes[sizes < 0.5].sum()), 1),
                     "blobs_under_half_ml": int((sizes < 0.5).sum()), "largest_ml": wide["largest_isolated_ml"][:3]}
        print(name, json.dumps(res[name]), flush=True)
    print(json.dumps(res))


if __name__ == "__main__":
    main()

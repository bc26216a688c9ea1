"""A reference for the node's side of the candidate classifier (`candidateClassifier`): for a few candidates of the
shipped detector on LIDC-IDRI-0002 (from detection_froc.py's run), the candidate's centroid (continuous voxel index
in the order of ascending position along the slice normal, i.e. inferior -> superior, and in patient LPS mm), the
mean and a few values of its normalised 32^3 patch (training/fpr_patch.py, the interface's sampling) and the shipped
classifier's probability (onnxruntime-node). A node implementation should reproduce the patch statistics to ~1e-5 and
the probability to ~1e-4 on the same series.

  /usr/bin/python3 training/fpr_reference.py --froc $CT_CACHE/det2_froc_ship_insample.json > tests/fixtures/nodule-fpr-reference.json
"""
from __future__ import annotations

import argparse
import json
import os
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from common import DEFAULT_DATA, MODELS_DIR, load_series_hu, ort_run_nd  # noqa: E402
from detection_froc import Geometry  # noqa: E402
from fpr_patch import normalise, patch_hu  # noqa: E402


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--froc", required=True)
    p.add_argument("--scan", default="lidc-idri-0002-ncct")
    p.add_argument("--n", type=int, default=6)
    a = p.parse_args()
    rep = json.load(open(a.froc))
    man = json.load(open(os.path.join(MODELS_DIR, "nodule-detector-small.json")))
    clf = man["candidateClassifier"]
    folder = os.path.join(DEFAULT_DATA, a.scan)
    hu, _ = load_series_hu(folder)
    geo = Geometry(folder)
    cands = sorted(rep["scans"][a.scan]["candidates"], key=lambda c: -c["score"])[:a.n]
    it = clf["intensity"]
    spacing = (geo.dz, geo.ps[0], geo.ps[1])
    patches = np.stack([normalise(patch_hu(hu, c["voxel"], spacing, clf["patchVoxels"], clf["spacingMm"], it["huMin"]),
                                  it["huMin"], it["huMax"], it["networkMin"], it["networkMax"]) for c in cands])
    prob = ort_run_nd(os.path.join(MODELS_DIR, clf["file"]), patches[:, None])[:, 0]
    out = {"description": __doc__.split("\n\n")[0].replace("\n", " "), "series": a.scan,
           "classifierSha256": clf["sha256"], "sliceSpacingMm": geo.dz, "pixelSpacingMm": list(geo.ps),
           "candidates": [{"voxel": c["voxel"], "centreMm": np.round(geo.mm(*c["voxel"]), 3).tolist(),
                           "patchMean": round(float(q.mean()), 6), "patchCentre": round(float(q[15:17, 15:17, 15:17].mean()), 6),
                           "patchCorner": round(float(q[0, 0, 0]), 6), "probability": round(float(pr), 6)}
                          for c, q, pr in zip(cands, patches, prob)]}
    print(json.dumps(out, indent=1))


if __name__ == "__main__":
    main()

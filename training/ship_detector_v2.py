"""Ships detector v2 from the run trained on everything ($CT_CACHE/det2_ship, train_detector_v2.py and train_fpr.py
with --holdout none): models/nodule-detector-small.onnx (the candidate network, replaced), models/nodule-fpr-small.onnx
(the candidate classifier, new), and the manifest (version 0.2.0, map threshold, candidateClassifier, lungMarginMm).
Then times both with onnxruntime-node on the CPU (2 threads) for a 300-slice 512 x 512 series
($CT_CACHE/det2_timing.json). Not for diagnostic use.

  nice -n 19 /usr/bin/python3 training/ship_detector_v2.py
"""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from common import CACHE_DIR, MODELS_DIR, count_params, sha256_file  # noqa: E402
from networks import build_detector, build_fpr  # noqa: E402
from train_fpr import LUNG_MARGIN_MM, MAP_THRESHOLD, classifier_entry  # noqa: E402

MID, FID = "nodule-detector-small", "nodule-fpr-small"


def main():
    src = os.path.join(CACHE_DIR, "det2_ship")
    shutil.copyfile(os.path.join(src, "net.onnx"), os.path.join(MODELS_DIR, f"{MID}.onnx"))
    shutil.copyfile(os.path.join(src, "fpr.onnx"), os.path.join(MODELS_DIR, f"{FID}.onnx"))
    path = os.path.join(MODELS_DIR, f"{MID}.json")
    man = json.load(open(path))
    man.pop("fp16", None)  # export_fp16.py writes it again for the new network
    n_net, n_fpr = count_params(build_detector()), count_params(build_fpr())
    man["findings"]["lungMarginMm"] = LUNG_MARGIN_MM
    new = {}
    for k, v in man.items():
        new[k] = v
        if k == "threshold":
            new["candidateClassifier"] = classifier_entry(f"{FID}.onnx", sha256_file(os.path.join(MODELS_DIR, f"{FID}.onnx")))
    from intended_use import manifest_fields

    new.update(manifest_fields(MID))
    new.update({
        "version": "0.2.0",
        "name": "Lung nodule detector small v2 (candidate network + 3D false-positive-reduction classifier; reference model)",
        "sha256": sha256_file(os.path.join(MODELS_DIR, f"{MID}.onnx")),
        "threshold": MAP_THRESHOLD,
        "description": (f"Reference detector: a 2.5D U-Net ({n_net // 1000}k params) proposes candidates, a 3D CNN "
                        f"({n_fpr // 1000}k params) on 32 mm patches scores them. Trained on the radiologists' outlined "
                        "nodules of two LIDC-IDRI patients and synthetic nodules inserted into four real chest CTs "
                        "(LIDC-IDRI-0001/0002, RICORD-1A, CPTAC C3N-00247). Demonstration only; not for diagnostic use."),
    })
    with open(path, "w") as f:
        json.dump(new, f, indent=2)
        f.write("\n")
    # timing with onnxruntime-node, 2 threads: the network per slice, the classifier per 50 candidates
    here = os.path.dirname(os.path.abspath(__file__))
    r = subprocess.run(["node", os.path.join(here, "ort_time.cjs"), os.path.join(MODELS_DIR, f"{MID}.onnx"), "512", "512", "2", "8",
                        "32", "2", "-", "3"], check=True, stdout=subprocess.PIPE, text=True)
    net = json.loads(r.stdout.strip().splitlines()[-1])
    from common import ort_run_nd
    import time

    x = np.random.default_rng(0).random((50, 1, 32, 32, 32), dtype=np.float32)
    ort_run_nd(os.path.join(MODELS_DIR, f"{FID}.onnx"), x)
    t = time.time()
    ort_run_nd(os.path.join(MODELS_DIR, f"{FID}.onnx"), x)
    clf_s = time.time() - t
    timing = {"networkMsPerSlice": net, "network300SlicesS": round(net["medianMsPerSlice"] * 300 / 1000, 1)
              if "medianMsPerSlice" in net else None, "classifier50CandidatesS": round(clf_s, 2),
              "note": "onnxruntime-node CPU, 512x512, network 2 threads batch 8; classifier 1 thread incl. node start"}
    with open(os.path.join(CACHE_DIR, "det2_timing.json"), "w") as f:
        json.dump(timing, f, indent=1)
    print(json.dumps(timing))
    print(f"wrote models/{MID}.onnx, models/{FID}.onnx and {path}")


if __name__ == "__main__":
    main()

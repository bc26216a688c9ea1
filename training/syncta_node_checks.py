#!/usr/bin/env python3
"""The Syn-CTA in models/ through ct-enhance's own output checks on the unseen chests (LIDC-IDRI-0002, RICORD), as
reconstructed, smoothed and sharpened (src/tools/output-checks-run.ts: probe, intended use, the model streamed into
the checks, as the runner does; the simulated kernels of src/eval/in-plane-kernel.ts). Needs a built dist (npm run
build). Writes every verdict to --out (the card's round sections read it).

  /usr/bin/python3 training/syncta_node_checks.py --out /tmp/ct-cache/syncta_node_checks_round7.json
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import common as C  # noqa: E402

CHESTS = ("lidc-idri-0002-ncct", "ricord-ncct-jpegls")
KERNELS = (("reconstructed", None), ("smoothed", 0.25), ("sharpened", -0.25))


def main():
    ap = C.data_arg(argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter))
    ap.add_argument("--out", required=True)
    ap.add_argument("--models", default=C.MODELS_DIR)
    args = ap.parse_args()
    tool = os.path.join(C.REPO_ROOT, "dist", "tools", "output-checks-run.js")
    result = {}
    with tempfile.TemporaryDirectory() as td:
        for chest in CHESTS:
            series = C.decoded_folder(os.path.join(args.data, chest))  # dcmjs reads no JPEG Lossless either
            for label, a in KERNELS:
                out = os.path.join(td, "report.json")
                cmd = ["node", tool, "--series", series, "--models", args.models, "--threads", "1", "--json", out]
                subprocess.run(cmd + ([] if a is None else ["--kernel", str(a)]), check=True, stdout=subprocess.DEVNULL)
                with open(out) as fh:
                    report = json.load(fh)
                result.setdefault(chest, {})[label] = report
                verdicts = "; ".join(f"{v['measure']} {v['value']:g} {'passed' if v['passed'] else 'FAILED'}"
                                     for v in report["verdicts"])
                print(f"{chest} {label}: {verdicts or 'outside intended use: ' + '; '.join(report['reasons'])}", flush=True)
    with open(args.out, "w") as fh:
        json.dump(result, fh, indent=1)


if __name__ == "__main__":
    main()

#!/usr/bin/env python3
"""Count the false enhancements of all-patient Syn-CTA models on their own training data: body voxels outside the
dilated blood pool brightened more than the later run's --hard-negative-hu above the target (train_syncta.py's hard
negatives), per source, and on the sharpened sources too when the later run mined those (round 4). Writes
{tag: {source: voxels}} to --out (default $CT_CACHE/syncta_hard_negatives_AFTER.json), for syncta_select.py's keep
rule and the model card.

  /usr/bin/python3 training/syncta_hard_negatives.py --before bw1 --after bw1hn        # round 3
  /usr/bin/python3 training/syncta_hard_negatives.py --before bw1hn --after bw1r4      # round 4
"""
from __future__ import annotations

import argparse
import json
import os
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import common as C  # noqa: E402
import train_syncta as T  # noqa: E402
from networks import load_syncta  # noqa: E402


def main():
    ap = C.data_arg(argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter))
    ap.add_argument("--before", required=True, help="the tag of the round continued from")
    ap.add_argument("--after", required=True, help="the tag of the later round (its sampling and threshold are used)")
    ap.add_argument("--out", default=None)
    args = ap.parse_args()
    import torch

    C.set_threads(2)
    with open(os.path.join(C.CACHE_DIR, f"syncta_v2_{args.after}_train.json")) as f:
        run = argparse.Namespace(**json.load(f)["args"])
    sharpened = getattr(run, "hard_negative_sharpened", False)
    sampler, _ = T.build_sampler(args.data, None, np.random.default_rng(0), run)
    counts = {}
    for tag in (args.before, args.after):
        model = load_syncta(os.path.join(C.CACHE_DIR, f"syncta_v2_{tag}.pt"))[0]
        counts[tag] = T.mine_false_enhancements(torch, model, sampler, run.hard_negative_hu, sharpened)
    out = args.out or os.path.join(C.CACHE_DIR, f"syncta_hard_negatives_{args.after}.json")
    with open(out, "w") as f:
        json.dump(counts, f, indent=1)
    print(json.dumps(counts))


if __name__ == "__main__":
    main()

#!/usr/bin/env python3
"""Count the false enhancements of the all-patient Syn-CTA model before and after round 3 on its own training data:
body voxels outside the dilated blood pool brightened more than the run's --hard-negative-hu above the target (train_syncta.py's hard
negatives), per source. Writes $CT_CACHE/syncta_hard_negatives.json for the model card.

  /usr/bin/python3 training/syncta_hard_negatives.py --before bw1 --after bw1hn
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
from networks import SYNCTA_CHANNELS  # noqa: E402


def main():
    ap = C.data_arg(argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter))
    ap.add_argument("--before", required=True, help="round 2's tag")
    ap.add_argument("--after", required=True, help="round 3's tag")
    args = ap.parse_args()
    import torch

    C.set_threads(2)
    with open(os.path.join(C.CACHE_DIR, f"syncta_v2_{args.after}_train.json")) as f:
        run = argparse.Namespace(**json.load(f)["args"])  # round 3's own sampling and threshold
    sampler, _ = T.build_sampler(args.data, None, np.random.default_rng(0), run)
    counts = {}
    for label, tag in (("round 2", args.before), ("round 3", args.after)):
        model = C.build_unet(channels=SYNCTA_CHANNELS, residual=True)
        model.load_state_dict(torch.load(os.path.join(C.CACHE_DIR, f"syncta_v2_{tag}.pt"), map_location="cpu"))
        counts[label] = T.mine_false_enhancements(torch, model, sampler, run.hard_negative_hu)
    with open(os.path.join(C.CACHE_DIR, "syncta_hard_negatives.json"), "w") as f:
        json.dump(counts, f, indent=1)
    print(json.dumps(counts))


if __name__ == "__main__":
    main()

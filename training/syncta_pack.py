#!/usr/bin/env python3
"""Pack Syn-CTA v2's training data for the GPU machine (device tool), which has no ../shared and takes at most 64 MiB
of files per call: the registered real pairs and the simulated pairs of train_syncta.py, from $CT_CACHE, as
compressed int16 files with the cache's own names, so that train_syncta.py reads them unchanged with CT_CACHE
pointing at the unpacked folder. Two parts, each under the limit with the repository beside it:
  part a: the HCC_005 pair and its simulated pair; part b: the HCC_007 and HCC_009 pairs, the HCC_007 and
  LIDC-IDRI-0001 simulated pairs.
Lossy in two ways, both stated on the card: HU rounded to integers (the registered arterial phase is interpolated),
and the simulated pairs' voxels outside the body (dilated 3 px) set to -1024 HU (air: table and cables removed).

  /usr/bin/python3 training/syncta_pack.py [--out .syncta-pack]
"""
from __future__ import annotations

import argparse
import os
import sys

import numpy as np
from scipy import ndimage as ndi

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import common as C  # noqa: E402
from simulate import body_mask  # noqa: E402
from train_syncta import CONTRAST, simulated_pair  # noqa: E402
from syncta_pairs import load_pair  # noqa: E402

PARTS = {"a": ["pair hcc-005", "sim hcc-005-arterial"],
         "b": ["pair hcc-007", "pair hcc-009", "sim lidc-idri-0001-cect", "sim hcc-007-arterial-portal_acq2"]}


def int16_hu(a):
    return np.clip(np.round(a), C.HU_MIN, C.HU_MAX).astype(np.int16)


def pack_pair(data, patient, out_dir):
    pair = load_pair(data, patient)
    packed = {k: int16_hu(v) if k in ("ncct", "arterial") else v for k, v in pair.items()}
    np.savez_compressed(os.path.join(out_dir, f"syncta_pair_{patient}.npz"), **packed)


def pack_sim(data, name, out_dir):
    folder, acq = next((f, a) for f, a, _ in CONTRAST if f + (f"_acq{a}" if a else "") == name)
    sim, hu, core = simulated_pair(data, folder, acq)
    body = np.stack([ndi.binary_dilation(b, iterations=3) for b in body_mask(hu)])
    np.savez_compressed(os.path.join(out_dir, f"syncta_sim_v2_{name}.npz"), hu=int16_hu(np.where(body, hu, C.HU_MIN)),
                        core=core, sim_in_core=int16_hu(sim[core]))


def main():
    ap = C.data_arg(argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter))
    ap.add_argument("--out", default=os.path.join(C.REPO_ROOT, ".syncta-pack"))
    args = ap.parse_args()
    for part, items in PARTS.items():
        out_dir = os.path.join(args.out, part)
        os.makedirs(out_dir, exist_ok=True)
        for item in items:
            kind, name = item.split(" ")
            (pack_pair if kind == "pair" else pack_sim)(args.data, name, out_dir)
        size = sum(os.path.getsize(os.path.join(out_dir, f)) for f in os.listdir(out_dir))
        print(f"part {part}: {', '.join(items)}: {size / 2**20:.1f} MiB", flush=True)


if __name__ == "__main__":
    main()

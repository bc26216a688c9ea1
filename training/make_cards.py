#!/usr/bin/env python3
"""Write the model cards models/<id>.md from the measured training logs and evaluation results in /tmp/ct-cache
(<name>_train*.json from the training scripts, <name>_eval.json from the evaluation scripts). The prose is here; every
number in a card's tables comes from those files.

  /usr/bin/python3 training/make_cards.py [syncta] [denoise]
"""
from __future__ import annotations

import json
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import common as C  # noqa: E402
from export_fp16 import put_card_section  # noqa: E402
from intended_use import put_use_section  # noqa: E402

CITATIONS = """- LIDC-IDRI: Armato III SG et al. (2015). Data From LIDC-IDRI. The Cancer Imaging Archive.
  doi:10.7937/K9/TCIA.2015.LO9QL9SX; Armato SG III et al., Medical Physics 38:915-931, 2011. Licence CC BY 3.0.
- TCIA: Clark K et al., Journal of Digital Imaging 26(6):1045-1057, 2013."""

CITATIONS_INDENTED = "\n".join("  " + line for line in CITATIONS.splitlines())

NOT_DIAGNOSTIC = ("**Not for diagnostic use.** A demonstration/reference model for exercising the ct-enhance pipeline, "
                  "trained in minutes from a few patients. Its output must never be used for clinical "
                  "decisions, reporting or patient care.")


def load(name):
    with open(os.path.join(C.CACHE_DIR, name)) as f:
        return json.load(f)


def f(x, n=4):
    return f"{x:.{n}f}"


def manifest(model_id):
    with open(os.path.join(C.MODELS_DIR, f"{model_id}.json")) as fh:
        return json.load(fh)


def check_sha(model_id, ev):
    m = manifest(model_id)
    sha = C.sha256_file(os.path.join(C.MODELS_DIR, m["file"]))
    if not (sha == m["sha256"] == ev["sha256"]):
        raise SystemExit(f"{model_id}: sha256 of the file ({sha}), the manifest ({m['sha256']}) and the evaluated model "
                         f"({ev['sha256']}) differ: re-run the evaluation")
    return m, sha


def syncta():
    import card_syncta

    card_syncta.write(load, manifest, check_sha, NOT_DIAGNOSTIC, C_channels())


def denoise():
    """denoise-ffdnet-small v2 (card_denoise.py); v1's card and its generator are in git history (8ec8a7c)."""
    import card_denoise

    card_denoise.write(load, manifest, check_sha)
    put_card_section(card_denoise.MID)  # the fp16 variant's section, when it was measured
    put_use_section(card_denoise.MID, C.MODELS_DIR)  # where ct-enhance runs it: intended use and output checks
    print("wrote", card_denoise.MID)


def C_channels():
    from train_syncta import CHANNELS

    return CHANNELS


if __name__ == "__main__":
    which = sys.argv[1:] or ["syncta", "denoise"]
    if "syncta" in which:
        syncta()
    if "denoise" in which:
        denoise()

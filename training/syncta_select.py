#!/usr/bin/env python3
"""Choose among Syn-CTA v2 training configurations by their leave-one-patient-out results, with a rule written down
before the runs (syncta_gpu.sh trains every configuration's three fold models and its all-patient model):

  1. every fold keeps the held-out patient's tissue outside the blood pool within 10 HU mean change from the input
     (the intended-use check's limit);
  2. among those, the lowest mean NMAE over the three held-out patients (CTA-GAN's definition, whole slice);
  3. if none passes 1, the one with the smallest worst-fold |tissue mean change|.

A later round that trains for something the held-out abdomens barely measure (round 3: fewer false enhancements,
crops centred on them) is judged against the round it continues (--baseline TAG, rule written before its run): it is
kept if it passes 1 and is not worse than the baseline by more than 1 % in mean NMAE nor by more than 5 HU in mean
blood pool MAE; otherwise the baseline stays.

Round 4 (heart seeds in the blood pool, hard negatives mined on sharpened sources too) is judged the same way against
round 3, both measured on the corrected blood pools, and one more condition (--hard-negatives, from
syncta_hard_negatives.py): its all-patient model's false enhancements on its own training data, as reconstructed and
sharpened, summed over the sources, must not exceed round 3's.

The half-resolution network (round 5, train_syncta.py --half-res, rule written 2026-12-01 before its run) is
judged against the shipped 0.2.1 (tag bw1) with --baseline bw1 --min-bloodpool-gain 10: kept if it passes 1, is not
worse by more than 1 % in mean NMAE, and lowers the mean blood pool MAE by at least 10 HU (what it was built for: the
held-out hearts, dark under every full-resolution round). Shipping it needs more than this rule: evaluate_syncta.py's
unseen chests must show no more isolated brightening than 0.2.1's.

The quarter-resolution network (round 6, train_syncta.py --scale 4 --fat-gate, whole 512 px slices, trained from the
identity on the 2-core machine; rule written 2026-12-02 before its run) is judged with --against-shipped: the shipped
0.2.1's fold weights were lost with the machine that trained them, so its figures (the card's, PyTorch, corrected
blood pools: mean NMAE 0.00686, mean blood pool MAE 174.5 HU) stand in for it. Kept if it passes 1, its mean NMAE is
not worse than 0.2.1's by more than 1 %, and its mean blood pool MAE is at least 10 HU lower. Reported beside it, not
part of the rule: on which folds its blood pool MAE beats v1's (125.0, 79.4, 106.6 HU; issue 13's must-show).
Shipping it needs more: the node's output checks on the unseen chests under three kernels, and the images.

Round 7 (round 6's four models trained on with identity pairs, train_syncta.py --identity-weight 0.1, and hard
negatives mined on every source as reconstructed and sharpened; rule written 2026-12-02 before its run) is judged
against round 6 with --baseline qr1, the round-3 rule above: kept if it passes 1 and is not worse than round 6 by more
than 1 % in mean NMAE nor by more than 5 HU in mean blood pool MAE. Shipping it needs more: the node's output checks,
with the connected-region check added for it (largest brightened region not joining the blood pool), passing on both
unseen chests under three kernels, and the images of both showing no false enhancement a reader could take for a
finding.

Round 8 (round 7's recipe again from round 7's models, hard negatives mined afresh; rule written 2026-12-02 before its
run) is judged against round 7 the same way (--baseline qr7), and shipped only if the node's output checks pass on
all six chest runs (two chests, three kernels) and the images show no blob.

Round 9 (round 8's models trained on with the simulated chest's supra-aortic arteries de-enhanced too,
train_syncta.py --supra-aortic; rule written 2026-12-02 before its run, after round 8 was found to pass all six chest
runs once the node stopped processing the neck beyond its slab, and its images at RICORD's thoracic inlet were judged
misreadable) is judged against round 8 the same way (--baseline qr8). It replaces 0.2.1 only if the node's output checks
pass on all six chest runs (with the slab) and the images of every region the checks name, the thoracic inlets and
LIDC-IDRI-0002's left renal hilum among them, show nothing a reader could take for a finding; otherwise neither round
8 nor round 9 ships.

The real NCCT chests (LIDC-IDRI-0002, RICORD) and the kernel test are not used here: they stay an unseen test of the
chosen model (evaluate_syncta.py). Inference here is PyTorch on the training device; the card's figures are
recomputed with onnxruntime-node by evaluate_syncta.py.

  python3 training/syncta_select.py --tags bw05 bw1 bw2 [--device cuda] > select.json
"""
from __future__ import annotations

import argparse
import json
import os
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import common as C  # noqa: E402
from evaluate_syncta import pair_metrics  # noqa: E402
from networks import load_syncta  # noqa: E402
from syncta_pairs import PATIENTS, iv_blood_pool, load_pair  # noqa: E402

TISSUE_LIMIT_HU = 10.0


def run_state(torch, pt, hu, device):
    model = load_syncta(pt)[0].to(device)
    with torch.no_grad():
        x = torch.from_numpy(C.hu_to_net(hu)[:, None]).to(device)
        y = torch.cat([model(x[i:i + 8]) for i in range(0, x.shape[0], 8)]).cpu().numpy()[:, 0]
    return C.net_to_hu(y)


def summary(folds):
    return {"mean_nmae": float(np.mean([f["nmae"] for f in folds.values()])),
            "mean_bloodpool_mae_hu": float(np.mean([f["bloodpool"]["mae_hu"] for f in folds.values()])),
            "worst_tissue_change_hu": float(max(abs(f["tissue"]["mean_change_from_input_hu"]) for f in folds.values()))}


def choose(results):
    scored = {t: r["summary"] for t, r in results.items() if t != "unchanged input"}
    passing = [t for t, s in scored.items() if s["worst_tissue_change_hu"] <= TISSUE_LIMIT_HU]
    if passing:
        return min(passing, key=lambda t: scored[t]["mean_nmae"]), "rule 2: tissue within 10 HU on every fold, lowest NMAE"
    return min(scored, key=lambda t: scored[t]["worst_tissue_change_hu"]), "rule 3: no configuration kept tissue within 10 HU"


def keep_if_not_worse(results, baseline, false_enhancements=None, min_bloodpool_gain=None):
    """false_enhancements: {tag: voxels summed over the training sources}, or None (round 3's rule);
    min_bloodpool_gain: the blood pool MAE must fall by this much (HU) instead of rising by at most 5 HU."""
    base = results[baseline]["summary"]
    bloodpool_limit = base["mean_bloodpool_mae_hu"] + (5.0 if min_bloodpool_gain is None else -min_bloodpool_gain)
    fewer = lambda t: false_enhancements is None or false_enhancements[t] <= false_enhancements[baseline]  # noqa: E731
    for t, r in results.items():
        if t in ("unchanged input", baseline):
            continue
        s = r["summary"]
        if (s["worst_tissue_change_hu"] <= TISSUE_LIMIT_HU and s["mean_nmae"] <= base["mean_nmae"] * 1.01
                and s["mean_bloodpool_mae_hu"] <= bloodpool_limit and fewer(t)):
            extra = ", no more false enhancements on the training data" if false_enhancements else ""
            pool = (f"blood pool MAE at least {min_bloodpool_gain:g} HU lower" if min_bloodpool_gain is not None
                    else "blood pool MAE not worse")
            return t, f"{t} kept: tissue within 10 HU on every fold, NMAE not worse and {pool} than {baseline}'s{extra}"
    pool = f"{min_bloodpool_gain:g} HU lower blood pool MAE" if min_bloodpool_gain is not None else "5 HU"
    return baseline, (f"{baseline} stays: no later round passed the tissue limit and stayed within 1 % NMAE and {pool}"
                      + (" with no more false enhancements on the training data" if false_enhancements else ""))


# 0.2.1's and v1's leave-one-patient-out figures (models/syncta-unet-small.md, PyTorch, corrected blood pools)
SHIPPED_021 = {"mean_nmae": 0.00686, "mean_bloodpool_mae_hu": 174.5}
V1_BLOODPOOL_MAE_HU = {"hcc-005": 125.0, "hcc-007": 79.4, "hcc-009": 106.6}


def keep_against_shipped(results, tag, min_bloodpool_gain=10.0):
    """Round 6's rule (docstring): tag against the shipped 0.2.1's card figures; (chosen, why, folds beating v1)."""
    s = results[tag]["summary"]
    beats_v1 = {p: f["bloodpool"]["mae_hu"] < V1_BLOODPOOL_MAE_HU[p] for p, f in results[tag]["folds"].items()}
    every_fold = set(results[tag]["folds"]) == set(V1_BLOODPOOL_MAE_HU)  # a missing fold model passes nothing
    if (every_fold and s["worst_tissue_change_hu"] <= TISSUE_LIMIT_HU
            and s["mean_nmae"] <= SHIPPED_021["mean_nmae"] * 1.01
            and s["mean_bloodpool_mae_hu"] <= SHIPPED_021["mean_bloodpool_mae_hu"] - min_bloodpool_gain):
        return tag, (f"{tag} kept: tissue within 10 HU on every fold, NMAE not worse and blood pool MAE at least "
                     f"{min_bloodpool_gain:g} HU lower than 0.2.1's"), beats_v1
    return "bw1", (f"0.2.1 stays: {tag} did not pass the tissue limit, stay within 1 % of 0.2.1's NMAE and lower "
                   f"its blood pool MAE by {min_bloodpool_gain:g} HU"), beats_v1


def main():
    ap = C.data_arg(argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter))
    ap.add_argument("--tags", nargs="+", required=True)
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--baseline", default=None, help="the round continued from: the other tag replaces it only if not worse")
    ap.add_argument("--hard-negatives", default=None,
                    help="syncta_hard_negatives.py's JSON: with --baseline, a later round must not have more of them")
    ap.add_argument("--min-bloodpool-gain", type=float, default=None,
                    help="with --baseline: the blood pool MAE must fall by this many HU (round 5's rule)")
    ap.add_argument("--against-shipped", action="store_true",
                    help="round 6's rule: the one tag against 0.2.1's card figures (its fold weights are lost)")
    args = ap.parse_args()
    import torch

    pairs = {p: load_pair(args.data, p) for p in PATIENTS}
    results = {"unchanged input": {"folds": {}}}
    for tag in args.tags:
        results[tag] = {"folds": {}}
        for p, pair in pairs.items():
            pt = os.path.join(C.CACHE_DIR, f"syncta_v2_{tag}_fold-{p}.pt")
            if not os.path.exists(pt):
                print(f"missing {pt}", file=sys.stderr)
                continue
            inp, pool = pair["ncct"], iv_blood_pool(pair)
            metrics = lambda out: pair_metrics(out, pair["arterial"], inp, pair["body"], pool)  # noqa: E731
            results[tag]["folds"][p] = metrics(run_state(torch, pt, inp, args.device))
            if p not in results["unchanged input"]["folds"]:
                results["unchanged input"]["folds"][p] = metrics(inp)
            with open(pt[:-3] + "_train.json") as f:
                results[tag]["folds"][p]["iters"] = json.load(f)["iters"]
    for r in results.values():
        r["summary"] = summary(r["folds"]) if r["folds"] else None
    results = {t: r for t, r in results.items() if r["summary"]}
    false_enhancements = None
    if args.hard_negatives:
        with open(args.hard_negatives) as f:
            false_enhancements = {t: sum(c.values()) for t, c in json.load(f).items()}
    beats_v1 = None
    if args.against_shipped:
        chosen, why, beats_v1 = keep_against_shipped(results, args.tags[0], args.min_bloodpool_gain or 10.0)
    elif args.baseline:
        chosen, why = keep_if_not_worse(results, args.baseline, false_enhancements, args.min_bloodpool_gain)
    else:
        chosen, why = choose(results)
    print(json.dumps({"chosen": chosen, "why": why, "rule": __doc__.split("\n\n")[1], "results": results,
                      "false_enhancements_on_training_data": false_enhancements,
                      "bloodpool_mae_below_v1": beats_v1}, indent=1))


if __name__ == "__main__":
    main()

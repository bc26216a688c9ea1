"""The Syn-CTA card's sections on the training rounds after the shipped one, each trained and measured on the 2-core
machine and kept or not by a rule written before its run (syncta_select.py --baseline). Every number comes from the
cache's *_round3.json / *_round4.json files; a section is left out when its files are missing."""
from __future__ import annotations


# Round 3's weights in the node (not shipped), 2026-12-01: its output checks on LIDC-IDRI-0002 as
# tests/unit/output-checks-kernels.test.ts printed them (body voxels changed > 100 HU %, soft tissue mean change HU,
# soft tissue brightened > 100 HU %; limits 8, +-10, 2), and on RICORD in the demo's Orthanc
ROUND3_NODE_CHECKS = [("LIDC-IDRI-0002 as reconstructed", 2.6, 2.6, 1.7, "passed"),
                      ("LIDC-IDRI-0002 smoothed", 2.4, 2.1, 1.5, "passed"),
                      ("LIDC-IDRI-0002 sharpened", 3.0, 3.5, 2.1, "rejected"),
                      ("RICORD as reconstructed", 1.0, 0.8, 0.8, "passed")]


def round3_section(load, v2, f) -> str:
    """A third round trained and measured but not shipped (its files end _round3 in the cache); empty without them."""
    try:
        ev, sel, mined, run = (load(n) for n in ("syncta_eval_round3.json", "syncta_select_round3.json",
                                                   "syncta_hard_negatives_bw1hn.json", "syncta_train_round3.json"))
    except FileNotFoundError:
        return ""
    lopo = ev["leave_one_patient_out"]
    loo = "; ".join(f"{p} NMAE {f(r[v2]['nmae'])}, blood pool MAE {f(r[v2]['bloodpool']['mae_hu'], 1)} HU, tissue "
                    f"{r[v2]['tissue']['mean_change_from_input_hu']:+.1f} HU" for p, r in lopo.items())
    wide = "; ".join(f"{n}: {c['volume_wide']['v2']['isolated_ml']:.0f} ml isolated "
                     f"({c['volume_wide']['v2']['isolated_share_of_soft_tissue_percent']:.2f}% of soft tissue), kernel "
                     f"spread {c['kernel_consistency']['v2']['spread_hu']:.0f} HU"
                     for n, c in ev["real_ncct_chest"].items())
    checks = "; ".join(f"{n} {b:g}% / {t:+g} HU / {x:g}% ({verdict})" for n, b, t, x, verdict in ROUND3_NODE_CHECKS)
    before, after = (sum(mined[k].values()) for k in ("bw1", "bw1hn"))
    return f"""
## Round 3, trained and not shipped (2026-12-01)
`syncta_all.sh` with `ROUND3=1`: each of the four round-2 models trained on for {run['train_minutes']:.0f} min on the 2-core machine
({run['iters']} iterations for the all-patient model), {int(100 * run['args']['hard_negative_frac'])}% of its crops centred on its own false enhancements
on the training data (train_syncta.py --hard-negative-frac: body voxels outside the dilated blood pool it brightened
more than {run['args']['hard_negative_hu']:g} HU above the target; round 2's all-patient model had {before:,} of them,
{mined['bw1']['sim lidc-idri-0001-cect']:,} in the de-enhanced LIDC-IDRI-0001 chest, the largest share in its upper slices' shoulder muscles
beside the contrast-filled subclavian vein (looked at: slices 111-123 of 133); after round 3, {after:,}). Its keep rule, written
before the run (syncta_select.py --baseline): {sel['why']}. Leave-one-patient-out (fold models, onnxruntime-node; blood pools
as they were before the heart seeds, see round 4 for the corrected ones):
{loo}. On the unseen chests: {wide} (round 2: 265 and 129 ml, 3.32% and 1.86%). So it halves or better the false
enhancement of the arm muscles without losing the blood pool.

**Why it is not shipped**: in the node its output checks (body voxels changed > 100 HU / soft tissue mean change /
soft tissue brightened > 100 HU) measured {checks}. LIDC-IDRI-0002 sits at the 2% limit, and a sharper
reconstruction of the same scan flips it to rejected: the decision would depend on the kernel, which ct-enhance's
kernel test forbids (tests/unit/output-checks-kernels.test.ts). The shipped 0.2.1 is rejected on all three. Spots in
the left arm muscles remain in round 3's output on both chests. The next step is the same recipe on a GPU with more
iterations, or arms-down chests in the training data, and a keep rule that also judges false enhancement on smoothed
and sharpened copies of the training chests (the unseen chests must stay a test). Under a sharper kernel round 3's
isolated brightening on LIDC-IDRI-0002 grows in its large blobs, not in noise-sized ones (training/syncta_kernel_blobs.py).
"""


# Looked at on 2026-12-01 (renders of input | 0.2.1 | round 3 | round 4, W400/L40): the slice with round 4's largest
# isolated brightening in each unseen chest, and the mean change there in those voxels (HU) per model; and HCC_005's
# top slice through the fold models without HCC_005 (blood pool mean HU: input, round 3, round 4, target)
ROUND4_LOOKED = {"lidc-idri-0002-ncct": (175, 173, 111, 237), "ricord-ncct-jpegls": (201, 146, 29, 189)}
ROUND4_HCC005_HEART = (45, 59, 58, 303)


def round4_section(load, v2, f) -> str:
    """Round 4: heart seeds in the blood pool, hard negatives mined on sharpened sources too; empty without its files."""
    try:
        ev, sel, run = (load(n) for n in ("syncta_eval_round4.json", "syncta_select_round4.json", "syncta_train_round4.json"))
    except FileNotFoundError:
        return ""
    base, later = "bw1hn", "bw1r4"
    fe = sel["false_enhancements_on_training_data"]
    rows = []
    for tag, label in (("unchanged input", "unchanged input"), (base, "round 3"), (later, "round 4")):
        r = sel["results"][tag]
        s = r["summary"]
        folds = ", ".join(f"{p} {x['bloodpool']['mae_hu']:.1f} / {x['tissue']['mean_change_from_input_hu']:+.1f}"
                          for p, x in r["folds"].items())
        rows.append(f"| {label} | {f(s['mean_nmae'], 5)} | {f(s['mean_bloodpool_mae_hu'], 1)} | {folds} | "
                    f"{f(s['worst_tissue_change_hu'], 1)} | {f'{fe[tag]:,}' if tag in fe else '-'} |")
    lopo = ev["leave_one_patient_out"]
    loo = "; ".join(f"{p} NMAE {f(r[v2]['nmae'])}, blood pool MAE {f(r[v2]['bloodpool']['mae_hu'], 1)} HU "
                    f"(mean {r[v2]['bloodpool']['mean_hu']:.0f} / target {r[v2]['bloodpool']['target_mean_hu']:.0f}), tissue "
                    f"{r[v2]['tissue']['mean_change_from_input_hu']:+.1f} HU" for p, r in lopo.items())
    wide = "; ".join(f"{n}: {c['volume_wide']['v2']['isolated_ml']:.0f} ml isolated "
                     f"({c['volume_wide']['v2']['isolated_share_of_soft_tissue_percent']:.2f}% of soft tissue), kernel "
                     f"spread {c['kernel_consistency']['v2']['spread_hu']:.0f} HU"
                     for n, c in ev["real_ncct_chest"].items())
    looked = ", ".join(f"{n} slice {k}: {a:+d} / {b:+d} / {c:+d} HU" for n, (k, a, b, c) in ROUND4_LOOKED.items())
    h = ROUND4_HCC005_HEART
    return f"""
## Round 4, trained and not shipped (2026-12-01)
`syncta_all.sh` with `ROUND4=1`: round 3's four models trained on for {run['train_minutes']:.0f} min on the 2-core machine
({run['iters']} iterations for the all-patient model) on the blood pools with the heart seeds, with hard negatives mined
on the training sources as reconstructed and sharpened (train_syncta.py --hard-negative-sharpened; a crop centred on
one found sharpened is sharpened alike). **A slip in this run**: syncta_gpu.sh copied an old GPU pack (written before
the heart seeds) over the cache as the run started, so HCC_007's and HCC_009's real pairs trained with their old
pools: of the hearts the fix adds, only HCC_005's was taught (HCC_007's pool barely changed; HCC_009's heart stayed
"leave unchanged"). The script now copies a pack only where ../shared is absent. Every figure here is measured on
the corrected pools; rounds 2 and 3 are re-measured on them too.

Keep rule, written before the run (syncta_select.py --baseline --hard-negatives): {sel['why']}.
Fold models in PyTorch (blood pool MAE HU / tissue mean change HU per held-out patient); false enhancements: the
all-patient model on its own training data, voxels outside the dilated blood pool more than
{run['args']['hard_negative_hu']:g} HU above the target, as reconstructed plus sharpened, summed over the sources.

| | mean NMAE | mean blood pool MAE HU | per fold | worst fold tissue HU | false enhancements |
|---|---|---|---|---|---|
{chr(10).join(rows)}

Round 4 in onnxruntime-node: {loo}. On the unseen chests: {wide}.

What it shows: HCC_005's heart, taught, lowers the other folds' blood pool error (hcc-007, hcc-009), but the fold
without HCC_005 still learns hearts from HCC_007 ("brighten") against HCC_009 ("leave unchanged", the slip) and
leaves HCC_005's heart dark; hcc-009's tissue rises to {sel['results'][later]['folds']['hcc-009']['tissue']['mean_change_from_input_hu']:+.1f} HU and the mean NMAE by
{100 * (sel['results'][later]['summary']['mean_nmae'] / sel['results'][base]['summary']['mean_nmae'] - 1):.1f}%, and on the unseen chests it is worse than round 3 (LIDC-IDRI-0002's
muscle ROI {ev['real_ncct_chest']['lidc-idri-0002-ncct']['v2']['muscle']['mean_change']:+.1f} HU). Looked at: on the slice with round 4's largest isolated brightening
({looked}; mean change in those voxels for 0.2.1 / round 3 / round 4) all three brighten the axillary and arm
muscles, round 3 least and round 4 most; on HCC_005's top slice both fold models brighten the descending aorta and
leave the heart dark (blood pool mean {h[0]} HU input, {h[1]} round 3, {h[2]} round 4, target {h[3]}). Not kept, not taken to the node. The next run is the same with
the pack fixed (all three hearts taught), longer than 65 min of a 2-core machine allows, or on a GPU.
"""


def later_rounds(load, v2, f) -> str:
    return round3_section(load, v2, f) + round4_section(load, v2, f)

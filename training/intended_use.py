"""Intended use and output checks of the three reference models, written into their manifests by the training
scripts (common.write_manifest, ship_detector_v2.py). What each field means: src/models/manifest.ts. The figures behind
the thresholds are on the model cards and in README.md ("How a series is chosen")."""

COMMON_GEOMETRY = {
    "pixelSpacingMm": {"min": 0.4, "max": 1.0},
    "matrix": {"min": 256, "max": 1024},
    "kvp": {"min": 80, "max": 140},
}

# The highest noise (HU, the probe's measure) denoise-ffdnet-small v2 was trained on, rounded up: the shipped fold's
# input.noiseLevel.trainedNoiseHu.max (train_denoise_v2.py writes it; a test compares the two).
DENOISE_MAX_NOISE_HU = 92
# Low dose by measured noise (no CTDIvol in the header) from here: above the shared full-dose series (at most 30.7 HU).
DENOISE_MIN_NOISE_HU = 32

INTENDED_USE = {
    "syncta-unet-small": {
        "description": "non-contrast CT of the chest and/or upper abdomen, 0.5-10 mm slices: what v2 was trained on "
                       "(real abdominal non-contrast/arterial pairs at 5-10 mm, blood-pool-simulated chest and abdomen "
                       "pairs at 2.5-3 mm); not head, neck or pelvis-only series, not contrast series",
        "modality": "CT",
        "regions": ["chest", "abdomen"],
        "slabMarginMm": 20,
        "sliceThicknessMm": {"min": 0.5, "max": 10},
        **COMMON_GEOMETRY,
        "contrast": "non-contrast",
    },
    "nodule-detector-small": {
        "description": "chest CT covering both lungs from apex to base, with or without contrast, 0.5-2.5 mm slices, "
                       "smooth to sharp kernels (v2: trained on LIDC-IDRI, RICORD and CPTAC chest series)",
        "modality": "CT",
        "regions": ["chest"],
        "lungs": {"minVolumeMl": 1500, "bothSides": True, "apexToBase": True},
        "slabMarginMm": 20,
        "sliceThicknessMm": {"min": 0.5, "max": 2.5},
        **COMMON_GEOMETRY,
        "contrast": "any",
    },
    # v2: what the shipped model was trained on (LIDC-IDRI-0001/0002 chest, HCC-TACE-Seg upper abdomen; RICORD held
    # out): GE-era 120 kV STANDARD-kernel series, 1.25-10 mm slices, 0.68-0.82 mm pixels, with and without IV
    # contrast, simulated 50/25/10% dose. The measured-noise band's floor (used when the header has no CTDIvol) stays
    # above every shared full-dose series of this geometry: chests 20.1-22.8 HU, HCC arterial phases 25.6-30.7 HU
    # (training/check_noise_measure.py); its ceiling is the highest noise level trained (input.noiseLevel).
    "denoise-ffdnet-small": {
        "description": "low-dose CT of the chest and/or upper abdomen (CTDIvol at most 3 mGy, or a measured noise of "
                       f"{DENOISE_MIN_NOISE_HU}-{DENOISE_MAX_NOISE_HU} HU when the header has none), 1.25-10 mm slices, 120 kV, standard "
                       "kernel, with or without IV contrast: trained on simulated 50/25/10% dose of LIDC-IDRI chest and "
                       "HCC-TACE-Seg upper-abdomen series",
        "modality": "CT",
        "regions": ["chest", "abdomen"],
        "slabMarginMm": 20,
        "sliceThicknessMm": {"min": 1.25, "max": 10},
        "pixelSpacingMm": {"min": 0.65, "max": 0.85},
        "matrix": {"min": 512, "max": 512},
        "kvp": {"min": 120, "max": 120},
        "contrast": "any",
        "lowDose": {"ctdiVolMaxMgy": 3, "noiseHu": {"min": DENOISE_MIN_NOISE_HU, "max": DENOISE_MAX_NOISE_HU}},
    },
}

OUTPUT_CHECKS = {
    # A synthetic CTA brightens the blood pool (a few per cent of a chest's body voxels); it must leave liver, spleen,
    # muscle and fat as they were.
    "syncta-unet-small": [
        {"measure": "bodyVoxelsChangedPercent", "overHu": 100, "max": 8},
        {"measure": "tissueMeanChangeHu", "min": -10, "max": 10},
        {"measure": "tissueBrightenedPercent", "overHu": 100, "max": 2},
        # Added 2026-12-01 after round 5's false enhancement at LIDC-IDRI-0002's gastric fundus: 0.8% of the
        # volume's soft tissue, but 17.7 cm2 on one slice (15.7-18.6 across kernels). Measured in the node
        # (tests/unit/output-checks-kernels.test.ts's way): 0.2.1 on its training patients' NCCT, whose Syn-CTAs it
        # stores, 3.3-10.6 cm2 (HCC_005, HCC_007, HCC_009, as reconstructed, smoothed and sharpened); 0.2.1 on
        # LIDC-IDRI-0002, the arm muscles, 32.9 cm2. 15 cm2 is a 4.4 cm disk.
        {"measure": "tissueBrightenedSliceCm2", "overHu": 100, "max": 15},
        # Added 2026-12-02 after round 6's false enhancement of LIDC-IDRI-0002's left shoulder muscles: 7.6 cm2 at most
        # on one slice and 1.2% of the soft tissue, both within their limits, but one region 108 slices tall. Measured
        # in the node (src/tools/output-checks-run.ts) on outputs whose truth is known, as reconstructed, smoothed and
        # sharpened: LIDC-IDRI-0001's real contrast CT against its blood-pool de-enhanced copy 0.0 ml; each HCC
        # patient's registered arterial blood pool on its non-contrast CT (train_syncta.hybrid_target) 0.0-0.2 ml.
        # Models: round 6 47.0 ml on LIDC-IDRI-0002 (the shoulder), 31.6 ml on RICORD; 0.2.1 on HCC_005, a patient it
        # was trained on, 2.1-4.7 ml (its left psoas lit to ~260 HU: looked at). 2 ml is a 16 mm sphere.
        {"measure": "tissueBrightenedRegionMl", "overHu": 100, "max": 2},
    ],
    "nodule-detector-small": [
        {"measure": "findings", "max": 20},
    ],
    # A denoiser keeps the mean HU of tissue and must lower the noise it is run for.
    "denoise-ffdnet-small": [
        {"measure": "tissueMeanChangeHu", "min": -5, "max": 5},
        {"measure": "noiseRatio", "max": 0.9},
    ],
}


def manifest_fields(model_id: str) -> dict:
    return {"intendedUse": INTENDED_USE[model_id], "outputChecks": OUTPUT_CHECKS[model_id]}


def _range(r: dict, unit: str) -> str:
    if "min" in r and "max" in r:
        return f"{r['min']}-{r['max']} {unit}"
    return f"at least {r['min']} {unit}" if "min" in r else f"at most {r['max']} {unit}"


def _check(c: dict) -> str:
    if c["measure"] == "bodyVoxelsChangedPercent":
        return f"at most {c['max']}% of body voxels changed by more than {c['overHu']} HU"
    if c["measure"] == "tissueMeanChangeHu":
        return f"soft tissue outside the blood pool changed by {c['min']}..{c['max']} HU on average"
    if c["measure"] == "tissueBrightenedPercent":
        return f"at most {c['max']}% of that soft tissue brightened by more than {c['overHu']} HU (a false enhancement confined to a blob)"
    if c["measure"] == "tissueBrightenedSliceCm2":
        return (f"at most {c['max']} cm2 of that soft tissue brightened by more than {c['overHu']} HU on any one slice "
                "(a false enhancement a few centimetres tall, which the share of the whole volume dilutes)")
    if c["measure"] == "tissueBrightenedRegionMl":
        return (f"at most {c['max']} ml of that soft tissue brightened by more than {c['overHu']} HU in one connected "
                "region that does not join the blood pool (a muscle lit along its length, a blob in an organ)")
    if c["measure"] == "noiseRatio":
        return f"measured noise of the output at most {c['max']} x the input's"
    return f"at most {c['max']} findings inside the lungs (more: the detector misfired, nothing is stored)"


# What the node did with each shared series and the models as shipped, measured 2026-11-30 with
# `ct-enhance probe <series> --models` and whole jobs (`ct-enhance run`), the 2-core development machine.
MEASURED = {
    "syncta-unet-small": (
        "v2 (0.2.1) is within its intended use on LIDC-IDRI-0002, RICORD and the HCC pre-contrast series (demo run of "
        "2026-11-30). On HCC_009 it passes its checks and the Syn-CTA is stored (the aorta brightened, the rest unchanged; "
        "a patient it was trained on); on HCC_005 it did until 2026-12-02 (below). On the two unseen chests it is **rejected by its own checks**: "
        "4.9% (LIDC-IDRI-0002) and 3.0% (RICORD) of the soft tissue outside the blood pool brightened by more than 100 "
        "HU (limit 2%); the tissue's mean change is within its limit. The per-slice check added on 2026-12-01 rejects "
        "LIDC-IDRI-0002 too: 32.9 cm2 on its slice 195 of 261, the arm muscles (limit 15 cm2). What the checks caught (the card's volume-wide "
        "figures and `syncta-unet-small-unseen.png`): the arm muscles of both chests (arms down at the sides, never in "
        "the training series), a blob in RICORD's liver and a part of LIDC-IDRI-0002's left kidney. (Before the checks "
        "took the mediastinum row by row, the heart's left side counted as tissue too: LIDC-IDRI-0002 +12.1 HU, 6.4%.) "
        "The connected-region check added on 2026-12-02 (`src/tools/output-checks-run.ts`) rejects both chests too "
        "(173.6 ml on LIDC-IDRI-0002, slices 143-221, and 107.2 ml on RICORD, slices 170-246: the arm muscles) and now **rejects "
        "HCC_005 as well**, a patient 0.2.1 was trained on: 3.5 ml (2.1 smoothed, 4.7 sharpened), its left psoas lit "
        "from ~40 to ~260 HU at the kidneys, which the other checks let through (looked at). HCC_009 stays stored (0 ml). "
        "Outside it: "
        "LIDC-IDRI-0001, the CPTAC chest and the HCC arterial phases (contrast measured: blood pool 410, 143, 340, 385 "
        "HU), HCC_007's pre-contrast series (18 slices: below the pipeline's 20-instance rule) and the InVesalius head CT "
        "(no chest, no abdomen)."),
    "nodule-detector-small": (
        "Within its intended use (v1's probe run): LIDC-IDRI-0002 and RICORD; outside it: the CPTAC chest (3 mm slices), "
        "the HCC series (lung bases only, 5-10 mm slices) and the head CT. v2 (0.2.0) in the node (`scripts/demo.sh` "
        "with RICORD sent to its Orthanc, 2026-12-01): LIDC-IDRI-0002 122 candidates in the lungs, 11 kept by the "
        "classifier, SR and SEG stored; RICORD, processed on its chest slab (slices 27-249 of 255), 202 candidates, 10 "
        "kept, stored. Both were training series of the shipped model, so neither is a test of it (the leave-one-"
        "patient-out figures above are). Without the classifier the candidate network alone at 0.5 would be rejected by "
        "the findings check (cap 20; fold A's network: 165 candidates in LIDC-IDRI-0002's lungs); with it, as "
        "training/detection_froc.py runs it, fold A's model (never trained on LIDC-IDRI-0002) keeps 4 findings there (2 "
        "of them on the readers' lesion). v1 (0.1.0) in the node: LIDC-IDRI-0002 rejected by the check (22 findings "
        "inside the lungs), RICORD stored."),
    "denoise-ffdnet-small": (
        "v2 (0.2.0 and 0.2.1 alike: the decision is the probe's, not the weights'), judged from the node's probe on each "
        "whole series (training/check_noise_measure.py), not from whole "
        "jobs: outside its intended use on every shared series. None is low-dose by its measured noise (no CTDIvol in "
        "their headers): the chests measure 20.1-22.8 HU, the HCC arterial phases 25.6-30.7 HU (the band starts at 32 "
        "HU); the CPTAC chest has a CTDIvol (above 3 mGy) and a B70f kernel. Their simulated low doses (the card) measure "
        "19-91 HU; those from 32 HU up would be taken."),
}


def card_section(model_id: str) -> str:
    """The model card's section on where ct-enhance runs the model: its manifest's intended use and output checks."""
    use = INTENDED_USE[model_id]
    lines = [
        "## Where ct-enhance runs it (the manifest's `intendedUse` and `outputChecks`)",
        f"Intended use: {use['description']}. Judged on what the anatomy probe measures in each volume, not on its "
        "headers; a series outside it is skipped with the reasons (README, \"How a series is chosen\").",
        f"- regions: {', '.join(use['regions'])} (a volume covering more is processed on that slab, "
        f"{use['slabMarginMm']} mm beyond it each way)",
    ]
    if "lungs" in use:
        lungs = use["lungs"]
        lines.append(f"- lungs: at least {lungs['minVolumeMl']} ml{', both sides' if lungs['bothSides'] else ''}"
                     f"{', apex to base inside the volume' if lungs['apexToBase'] else ''}")
    lines.append(f"- slice thickness {_range(use['sliceThicknessMm'], 'mm')}; pixel spacing {_range(use['pixelSpacingMm'], 'mm')}; "
                 f"matrix {_range(use['matrix'], 'px')}; {_range(use['kvp'], 'kV')}")
    lines.append(f"- contrast (measured blood pool: >= 110 HU enhanced, < 90 HU not): {use['contrast']}")
    if "lowDose" in use:
        low = use["lowDose"]
        lines.append(f"- low dose: CTDIvol at most {low['ctdiVolMaxMgy']} mGy, or without one a measured noise of "
                     f"{_range(low['noiseHu'], 'HU')}")
    lines.append("")
    lines.append("Output checks, before anything is stored (a failed one rejects the output: nothing stored):")
    lines.extend(f"- {_check(c)}" for c in OUTPUT_CHECKS[model_id])
    lines += ["", f"On the shared series: {MEASURED[model_id]}"]
    return "\n".join(lines) + "\n"


def put_use_section(model_id: str, models_dir: str) -> None:
    """Writes (or replaces) the section of models/<id>.md on where ct-enhance runs the model, before its Intended use."""
    import os

    path = os.path.join(models_dir, f"{model_id}.md")
    with open(path) as fh:
        card = fh.read()
    section = card_section(model_id)
    title = "## Where ct-enhance runs it"
    start = card.find(title)
    if start >= 0:
        end = card.find("\n## ", start + 1)
        card = card[:start] + section + (card[end + 1:] if end >= 0 else "")
    else:
        at = card.find("\n## Intended use")
        at = at + 1 if at >= 0 else len(card)
        card = card[:at] + section + "\n" + card[at:]
    with open(path, "w") as fh:
        fh.write(card)

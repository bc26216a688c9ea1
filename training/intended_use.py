"""Intended use and output checks of the three reference models, written into their manifests by the training
scripts (common.write_manifest, train_detector.py). What each field means: src/models/manifest.ts. The figures behind
the thresholds are on the model cards and in README.md ("How a series is chosen")."""

COMMON_GEOMETRY = {
    "pixelSpacingMm": {"min": 0.4, "max": 1.0},
    "matrix": {"min": 256, "max": 1024},
    "kvp": {"min": 80, "max": 140},
}

INTENDED_USE = {
    "syncta-unet-small": {
        "description": "non-contrast chest CT with both lungs in view, 0.5-3 mm slices: the kind of series it was "
                       "trained on (LIDC-IDRI chest)",
        "modality": "CT",
        "regions": ["chest"],
        "lungs": {"minVolumeMl": 1000, "bothSides": True, "apexToBase": False},
        "slabMarginMm": 20,
        "sliceThicknessMm": {"min": 0.5, "max": 3},
        **COMMON_GEOMETRY,
        "contrast": "non-contrast",
    },
    "nodule-detector-small": {
        "description": "chest CT covering both lungs from apex to base, with or without contrast, 0.5-2.5 mm slices "
                       "(trained on LIDC-IDRI and RICORD chest series)",
        "modality": "CT",
        "regions": ["chest"],
        "lungs": {"minVolumeMl": 1500, "bothSides": True, "apexToBase": True},
        "slabMarginMm": 20,
        "sliceThicknessMm": {"min": 0.5, "max": 2.5},
        **COMMON_GEOMETRY,
        "contrast": "any",
    },
    "denoise-ffdnet-small": {
        "description": "low-dose chest CT (CTDIvol at most 3 mGy, or a measured noise of 28-60 HU when the header has "
                       "none), 0.5-3 mm slices, standard kernel: trained on simulated quarter-dose LIDC-IDRI chest",
        "modality": "CT",
        "regions": ["chest"],
        "slabMarginMm": 20,
        "sliceThicknessMm": {"min": 0.5, "max": 3},
        **COMMON_GEOMETRY,
        "contrast": "any",
        "lowDose": {"ctdiVolMaxMgy": 3, "noiseHu": {"min": 28, "max": 60}},
    },
}

OUTPUT_CHECKS = {
    # A synthetic CTA brightens the blood pool (a few per cent of a chest's body voxels); it must leave liver, spleen,
    # muscle and fat as they were.
    "syncta-unet-small": [
        {"measure": "bodyVoxelsChangedPercent", "overHu": 100, "max": 8},
        {"measure": "tissueMeanChangeHu", "min": -10, "max": 10},
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

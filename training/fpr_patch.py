"""The candidate classifier's patch, exactly as the interface (docs: the manifest's candidateClassifier) defines it:
P^3 points spaced spacingMm along the volume's own slice / row / column axes, centred on the candidate's centroid
(mean voxel index of its component, continuous (slice, row, column)), trilinear, huMin outside the volume, then HU
clipped to [huMin, huMax] and mapped linearly to [networkMin, networkMax]."""
from __future__ import annotations

import numpy as np
from scipy import ndimage

HU_MIN, HU_MAX = -1000.0, 400.0


def patch_hu(hu, centre, spacing_zyx, p=32, spacing_mm=1.0, hu_min=HU_MIN):
    """[p, p, p] HU sampled around centre (k, r, c) voxel index; spacing_zyx = (slice, row, column) spacing mm."""
    offs = (np.arange(p, dtype=np.float64) - (p - 1) / 2) * spacing_mm
    k = centre[0] + offs / spacing_zyx[0]
    r = centre[1] + offs / spacing_zyx[1]
    c = centre[2] + offs / spacing_zyx[2]
    kk, rr, cc = np.meshgrid(k, r, c, indexing="ij")
    return ndimage.map_coordinates(hu, [kk, rr, cc], order=1, mode="constant", cval=hu_min).astype(np.float32)


def normalise(hu, hu_min=HU_MIN, hu_max=HU_MAX, n0=0.0, n1=1.0):
    return (n0 + (np.clip(hu, hu_min, hu_max) - hu_min) * (n1 - n0) / (hu_max - hu_min)).astype(np.float32)

"""Simulations used to build training pairs from real CT (nothing here is a clinical model):

* de_enhance(): contrast-enhanced CT -> simulated non-contrast CT (for the Syn-CTA model).
* low_dose_sinogram_noise(): full-dose slice -> simulated low-dose slice via Poisson noise on projections (denoise model).
* insert_nodules(): synthetic lung nodules into real lung (detection model).
"""
from __future__ import annotations

import numpy as np
from scipy import ndimage as ndi

UNENHANCED_BLOOD_HU = 40.0


def body_mask(hu: np.ndarray) -> np.ndarray:
    """Patient body per slice: HU > -500, largest 2D component, holes filled (lungs included), couch excluded."""
    out = np.zeros(hu.shape, bool)
    for z in range(hu.shape[0]):
        m = ndi.binary_opening(hu[z] > -500, iterations=2)
        lab, n = ndi.label(m)
        if n == 0:
            continue
        sizes = ndi.sum(m, lab, range(1, n + 1))
        out[z] = ndi.binary_fill_holes(lab == (int(np.argmax(sizes)) + 1))
    return out


def fill_small_holes(mask: np.ndarray, max_area: int) -> np.ndarray:
    """2D hole filling restricted to holes smaller than max_area pixels (so a ring of ribs around the whole chest
    does not fill the mediastinum)."""
    holes = ndi.binary_fill_holes(mask) & ~mask
    lab, n = ndi.label(holes)
    if n == 0:
        return mask
    sizes = ndi.sum(holes, lab, range(1, n + 1))
    keep = np.zeros(n + 1, bool)
    keep[1:] = sizes < max_area
    return mask | keep[lab]


def texture_map(hu2d: np.ndarray, size: int = 5, win: int = 9) -> np.ndarray:
    """Local RMS (win x win) of the residual hu - median(hu, size x size). The median keeps edges, so the residual is
    ~noise (about 10 HU here) in blood and at vessel walls, and larger in trabecular bone."""
    h = hu2d.astype(np.float64)
    r = h - ndi.median_filter(h, size=size)
    return np.sqrt(np.maximum(ndi.uniform_filter(r * r, win), 0.0))


def bone_mask(hu: np.ndarray, thr: float = 700.0) -> np.ndarray:
    """Bone incl. marrow enclosed by cortex, per slice: (HU > thr) closed (2 px), holes < 2500 px filled (marrow inside
    a cortical ring), dilated 2 px (cortical partial-volume edge)."""
    out = np.zeros(hu.shape, bool)
    st = ndi.generate_binary_structure(2, 1)
    for z in range(hu.shape[0]):
        b = ndi.binary_closing(hu[z] > thr, structure=st, iterations=2)
        b = fill_small_holes(b, 2500)
        out[z] = ndi.binary_dilation(b, structure=st, iterations=2)
    return out


def enhanced_core(hu: np.ndarray, lo: float = 120.0, hi: float = 600.0, min_voxels: int = 50,
                  comp_tex_thr: float = 26.0):
    """Smooth enhanced voxels of a contrast CT: (core, hs, body, bone), see de_enhance steps 1-2. The texture limit
    rises with the series' own soft-tissue texture (1.5 x its median, at least comp_tex_thr): a sharp kernel (CPTAC's
    B70f: ~82 HU) makes blood as rough as trabecular bone is with a standard kernel (~16-19 HU)."""
    hu = hu.astype(np.float32)
    hs = np.stack([ndi.gaussian_filter(s, 1.0) for s in hu])
    body = body_mask(hu)
    bone = bone_mask(hu)
    comp_tex_thr = max(comp_tex_thr, 1.5 * soft_tissue_texture(hu, body))
    core = (hs > lo) & (hs < hi) & body & ~bone
    for z in range(hu.shape[0]):
        lab, n = ndi.label(core[z])
        if n == 0:
            continue
        idx = np.arange(1, n + 1)
        tex = texture_map(hu[z])
        med = ndi.median(tex, lab, idx)
        area = ndi.sum(core[z], lab, idx)
        keep = np.zeros(n + 1, bool)
        keep[1:] = (np.asarray(med) <= comp_tex_thr) & (np.asarray(area) >= 10)
        core[z] = keep[lab]
    return keep_large_components(core, min_voxels), hs, body, bone


def soft_tissue_texture(hu: np.ndarray, body: np.ndarray) -> float:
    """Median texture_map of body voxels at -50..100 HU on five evenly spaced slices."""
    values = []
    for z in np.linspace(0, hu.shape[0] - 1, 5).astype(int):
        soft = body[z] & (hu[z] > -50) & (hu[z] < 100)
        if soft.any():
            values.append(texture_map(hu[z])[soft])
    return float(np.median(np.concatenate(values))) if values else 0.0


def keep_large_components(mask: np.ndarray, min_voxels: int) -> np.ndarray:
    lab, n = ndi.label(mask, structure=ndi.generate_binary_structure(3, 1))
    if not n:
        return mask
    sizes = ndi.sum(mask, lab, range(1, n + 1))
    keep = np.zeros(n + 1, bool)
    keep[1:] = np.asarray(sizes) >= min_voxels
    return keep[lab]


def blood_pool_mask(hu: np.ndarray, voxel_ml: float, min_voxels: int = 1000, cut_px: int = 5) -> np.ndarray:
    """The enhanced blood pool of a contrast CT (v2): the aorta and what connects to it thickly (heart chambers,
    pulmonary arteries, the large branches), not the enhancing organs (spleen, renal cortex, a hypervascular tumour)
    nor bowel with oral contrast. By HU, connectivity and position:
    1. smooth 150-600 HU non-bone voxels (enhanced_core);
    2. thin connections cut: in-plane erosion by cut_px (a renal or splenic artery is narrower than 2 x cut_px + 1 px);
    3. aorta seeds: per slice, round components (area >= 50 px after erosion, filling >= 55% of the circle over their
       longer side) whose centre lies within 15% of the body's width of its midline and not in its anterior 40%, and
       which bone does not enclose (at most 30% of a 4 px ring around them above 400 HU: vertebral marrow is enclosed
       by cortex): the descending / abdominal aorta in front of the spine;
    4. heart seeds: on slices whose lungs (lungs_mask, air components of 50 ml or more) cover at
       least 15% of the body, components of the eroded core of at least 500 px whose centre has lung on both sides in
       its own row, lies within 20% of the body's width of its midline and in its anterior 60% (not the vertebral
       body, whose marrow passes for blood when its cortex is thin): the heart chambers where the field ends below the aortic
       arch and the heart does not connect to the descending aorta inside it (HCC_005, HCC_009: without these seeds
       their enhanced hearts were taught as "leave unchanged"). A stomach with oral contrast under the diaphragm
       lies below such slices or has lung behind it, not beside it;
    5. the 3D components of the eroded core that hold a seed, grown back by cut_px inside the core; per slice, 2D
       components enclosed by bone dropped (as in 3); 3D components of at least min_voxels."""
    core, _, body, _ = enhanced_core(hu, lo=150.0)
    st = ndi.generate_binary_structure(2, 1)
    eroded = np.stack([ndi.binary_erosion(c, st, iterations=cut_px) for c in core])
    seeds = np.zeros_like(core)
    lungs = lungs_mask(hu, body, voxel_ml, min_ml=50.0)
    chest_slices = lungs.sum(axis=(1, 2)) >= 0.15 * np.maximum(body.sum(axis=(1, 2)), 1)
    for z in range(hu.shape[0]):
        ys, xs = np.nonzero(body[z])
        if len(xs) == 0:
            continue
        lab, n = ndi.label(eroded[z])
        for i, sl in enumerate(ndi.find_objects(lab), start=1):
            comp = lab[sl] == i
            area = int(comp.sum())
            h, w = sl[0].stop - sl[0].start, sl[1].stop - sl[1].start
            cy, cx = ndi.center_of_mass(comp)
            cy, cx = cy + sl[0].start, cx + sl[1].start
            round_enough = area / (np.pi * (max(h, w) / 2) ** 2) >= 0.55
            off_midline = abs(cx - xs.mean()) / np.ptp(xs)
            posterior = cy >= ys.min() + 0.4 * np.ptp(ys)
            aorta = round_enough and off_midline <= 0.15 and posterior
            row = np.flatnonzero(lungs[z, int(round(cy))])
            anterior = cy < ys.min() + 0.6 * np.ptp(ys)
            heart = (chest_slices[z] and area >= 500 and off_midline <= 0.2 and anterior
                     and (row < cx).any() and (row > cx).any())
            if (area >= 50 and aorta) or heart:
                seeds[z][sl] |= comp
    seeds &= ~enclosed_by_bone(seeds, hu)
    lab, n = ndi.label(eroded, structure=ndi.generate_binary_structure(3, 1))
    ids = np.unique(lab[seeds])
    kept = np.isin(lab, ids[ids > 0])
    pool = np.stack([ndi.binary_dilation(k, st, iterations=cut_px) & c for k, c in zip(kept, core)])
    return keep_large_components(pool & ~enclosed_by_bone(pool, hu), min_voxels)


def supra_aortic_arteries(hu: np.ndarray, pool: np.ndarray, pixel_mm: float, arch_mm: float = 30.0,
                          slice_mm: float = 2.5, max_area_mm2: float = 600.0, reach_px: int = 3,
                          min_share: float = 0.6) -> np.ndarray:
    """The arteries leaving the aortic arch upward (brachiocephalic trunk, common carotid and subclavian arteries) in a
    contrast CT hu[z,y,x] ordered inferior -> superior, beside its blood_pool_mask pool: blood_pool_mask's erosion cuts
    them off at their origins, so the simulated LIDC-IDRI-0001 pair taught a de-enhanced stump of the left subclavian
    artery above the arch and left the arteries above it bright in input and target alike (identity): on unseen chests
    the model lit a hazy blob beside the trachea at the thoracic inlet and nothing along the arteries below it.
    Followed slice by slice upward from arch_mm below the pool's most superior slice: the components of 150-600 HU
    (smoothed as enhanced_core does, not bone) outside the pool that touch (within reach_px) the pool or the
    arteries on the slice below, each of 10 px to max_area_mm2 (a vessel cut obliquely where the subclavian artery
    arches over the lung apex), its median at least min_share of the pool's (LIDC-IDRI-0001: arteries 285-400 HU
    against a pool of 394; the thyroid lobes beside the carotids 179-199 HU, which a looser rule took in), not enclosed
    by bone (vertebral marrow). Only where the field reaches at least arch_mm above
    the pool (the arch and its branches inside it); otherwise nothing."""
    out = np.zeros_like(pool)
    zs = np.flatnonzero(pool.any(axis=(1, 2)))
    n_arch = int(round(arch_mm / slice_mm))
    if len(zs) == 0 or zs[-1] + n_arch >= hu.shape[0]:
        return out
    # Not enhanced_core's texture limit: streaks from the dense contrast in the injected arm's veins roughen the
    # arteries at the inlet past it; bone is left out by bone_mask and by the enclosure test below.
    _, hs, body, bone = enhanced_core(hu, lo=150.0)
    core = (hs > 150.0) & (hs < 600.0) & body & ~bone
    pool_hu = float(np.median(hs[pool]))
    st = ndi.generate_binary_structure(2, 1)
    max_px = max_area_mm2 / pixel_mm ** 2
    for z in range(max(1, zs[-1] - n_arch), hu.shape[0]):
        reach = ndi.binary_dilation(pool[z - 1] | out[z - 1] | pool[z], st, iterations=reach_px)
        lab, n = ndi.label(core[z] & ~pool[z])
        ids = np.unique(lab[reach & (lab > 0)])
        if len(ids) == 0:
            continue
        area = np.asarray(ndi.sum(np.ones_like(lab), lab, ids))
        bright = np.asarray(ndi.median(hs[z], lab, ids)) >= min_share * pool_hu
        arteries = np.isin(lab, ids[(area >= 10) & (area <= max_px) & bright])
        out[z] = arteries & ~enclosed_by_bone(arteries[None], hu[z][None])[0]
    return out


def lungs_mask(hu: np.ndarray, body: np.ndarray, voxel_ml: float, min_ml: float = 300.0) -> np.ndarray:
    """Air inside the body (< -400 HU) in 3D components of at least min_ml."""
    air, n = ndi.label(body & (hu < -400))
    sizes = ndi.sum(np.ones_like(hu, dtype=np.float32), air, index=np.arange(1, n + 1))
    return np.isin(air, 1 + np.flatnonzero(sizes >= min_ml / voxel_ml))


def lungs_and_mediastinum(hu: np.ndarray, body: np.ndarray, voxel_ml: float) -> tuple[np.ndarray, np.ndarray]:
    """Lungs: air inside the body in 3D components of at least 300 ml (bowel gas and the trachea stay out, mostly);
    mediastinum: per row, the widest lung-free run between the row's first and last lung voxel, on rows with lung on
    both sides of that run; rows of the slice's lung extent without one take the nearest row's run."""
    lungs = lungs_mask(hu, body, voxel_ml)
    mediastinum = np.zeros_like(lungs)
    for k in range(hu.shape[0]):
        runs = {}
        for r in np.flatnonzero(lungs[k].any(axis=1)):
            cols = np.flatnonzero(lungs[k, r])
            gaps = np.diff(cols)
            if gaps.max(initial=0) > 1:
                i = int(np.argmax(gaps))
                runs[r] = (cols[i] + 1, cols[i + 1] - 1)
        if not runs:
            continue
        rows = np.flatnonzero(lungs[k].any(axis=1))
        have = np.array(sorted(runs))
        for r in range(rows.min(), rows.max() + 1):
            c0, c1 = runs[have[np.argmin(np.abs(have - r))]]
            mediastinum[k, r, c0:c1 + 1] = True
    return lungs, mediastinum & body & ~lungs


def enclosed_by_bone(mask: np.ndarray, hu: np.ndarray, ring_px: int = 4, max_bone: float = 0.3) -> np.ndarray:
    """The 2D components of mask (per slice) whose surrounding ring (ring_px wide) is more than max_bone above 400 HU."""
    out = np.zeros_like(mask)
    st = ndi.generate_binary_structure(2, 1)
    for z in range(mask.shape[0]):
        lab, n = ndi.label(mask[z])
        for i, sl in enumerate(ndi.find_objects(lab), start=1):
            pad = tuple(slice(max(a.start - ring_px - 1, 0), a.stop + ring_px + 1) for a in sl)
            comp = lab[pad] == i
            ring = ndi.binary_dilation(comp, st, iterations=ring_px) & ~comp
            if ring.any() and (hu[z][pad][ring] > 400).mean() > max_bone:
                out[z][pad] |= comp
    return out


def de_enhance(hu: np.ndarray, lo: float = 120.0, hi: float = 600.0, min_voxels: int = 50, rim_px: int = 2,
               blood_hu: float = UNENHANCED_BLOOD_HU, comp_tex_thr: float = 26.0, core: np.ndarray | None = None):
    """Simulated non-contrast CT from a contrast-enhanced volume hu[z,y,x] (HU).

    1. hs = in-plane Gaussian smoothing of HU (sigma 1 px) - used only for decisions and for the enhancement field.
    2. core = lo < hs < hi, inside the body, outside bone_mask(); then per slice 2D components whose median texture
       (texture_map) exceeds comp_tex_thr or whose area is < 10 px are dropped (trabecular bone, noise); then 3D
       connected components smaller than `min_voxels` dropped. (v2 passes its own core: blood_pool_mask.)
    3. In the core, the smooth enhancement D = hs - blood_hu is subtracted: out = blood_hu + (hu - hs), i.e. the
       voxel keeps its own noise/texture around the new mean.
    4. Partial-volume rim (core dilated by rim_px in-plane, not bone): the voxel is treated as a mix of the nearest
       core blood and the local background b (minimum of hs in a 7x7 neighbourhood); fraction
       f = clip((hs - b) / (hs_core - b), 0, 1); out = hu - f * D_core.
    Returns (simulated_ncct, core_mask, changed_mask)."""
    hu = hu.astype(np.float32)
    found, hs, body, bone = enhanced_core(hu, lo, hi, min_voxels, comp_tex_thr)
    core = found if core is None else core
    out = hu.copy()
    d_core = np.where(core, hs - blood_hu, 0.0).astype(np.float32)
    out[core] = blood_hu + (hu[core] - hs[core])
    changed = core.copy()
    st = ndi.generate_binary_structure(2, 1)
    for z in range(hu.shape[0]):
        if not core[z].any():
            continue
        rim = ndi.binary_dilation(core[z], structure=st, iterations=rim_px) & ~core[z] & ~bone[z] & body[z]
        if not rim.any():
            continue
        # nearest core voxel for every pixel
        _, (iy, ix) = ndi.distance_transform_edt(~core[z], return_indices=True)
        hs_core = hs[z][iy, ix]
        dz = d_core[z][iy, ix]
        bg = ndi.minimum_filter(hs[z], size=7)
        f = np.clip((hs[z] - bg) / np.maximum(hs_core - bg, 1.0), 0.0, 1.0)
        out[z][rim] = hu[z][rim] - (f * dz)[rim]
        changed[z] |= rim & (f > 0)
    return out, core, changed


# ----------------------------------------------------------------------------------------------------------------
# low-dose simulation
# ----------------------------------------------------------------------------------------------------------------

MU_WATER_PER_MM = 0.0192  # linear attenuation of water at ~70 keV effective energy (120 kVp), 1/mm


def hu_to_mu(hu):
    return np.clip(MU_WATER_PER_MM * (1.0 + np.asarray(hu, np.float64) / 1000.0), 0.0, None)


def mu_to_hu(mu):
    return (np.asarray(mu, np.float64) / MU_WATER_PER_MM - 1.0) * 1000.0


def low_dose_sinogram_noise(hu_slice: np.ndarray, pixel_mm: float, i0: float, rng: np.random.Generator,
                            n_angles: int = 720, ref_fbp: np.ndarray | None = None):
    """Parallel-beam simulation on one 512x512 slice (HU clipped at -1024 first):
    mu = mu_water*(1+HU/1000) per mm; p = radon(mu)*pixel_mm (line integrals); counts ~ Poisson(i0*exp(-p));
    p_noisy = -log(max(counts,1)/i0); both p and p_noisy go through the same FBP (iradon, ramp filter) and the
    returned low-dose image is clean + (FBP(p_noisy) - FBP(p)), so only noise is added and the FBP's own blur and
    circle cropping do not enter the pair. Returns low-dose HU slice."""
    from skimage.transform import iradon, radon

    img = np.clip(hu_slice, -1024, None)
    mu = hu_to_mu(img)
    theta = np.linspace(0.0, 180.0, n_angles, endpoint=False)
    p = radon(mu, theta=theta, circle=False) * pixel_mm
    counts = rng.poisson(i0 * np.exp(-p)).astype(np.float64)
    p_noisy = -np.log(np.maximum(counts, 1.0) / i0)
    size = hu_slice.shape[0]
    noise_mu = iradon((p_noisy - p) / pixel_mm, theta=theta, filter_name="ramp", circle=False, output_size=size)
    return (img + noise_mu / MU_WATER_PER_MM * 1000.0).astype(np.float32)


def low_dose_sinogram_noise_doses(hu_slice: np.ndarray, pixel_mm: float, i0s, rng: np.random.Generator,
                                  n_angles: int = 360) -> list:
    """As low_dose_sinogram_noise, for several photon counts at once (one forward projection, one independent
    Poisson draw and one FBP per count), with the scanner's field of view as the inscribed circle: mu outside the
    circle of diameter = matrix is set to 0 (air) and radon/iradon run with circle=True, which halves the projection's
    cost against circle=False (the 725-px diagonal). Returns one low-dose HU slice per entry of i0s."""
    from skimage.transform import iradon, radon

    img = np.clip(hu_slice, -1024, None)
    n = img.shape[0]
    yy, xx = np.mgrid[:n, :img.shape[1]]
    inside = (yy - (n - 1) / 2) ** 2 + (xx - (img.shape[1] - 1) / 2) ** 2 <= (n / 2) ** 2
    mu = np.where(inside, hu_to_mu(img), 0.0)
    theta = np.linspace(0.0, 180.0, n_angles, endpoint=False)
    p = radon(mu, theta=theta, circle=True) * pixel_mm
    out = []
    for i0 in i0s:
        counts = rng.poisson(i0 * np.exp(-p)).astype(np.float64)
        p_noisy = -np.log(np.maximum(counts, 1.0) / i0)
        noise_mu = iradon((p_noisy - p) / pixel_mm, theta=theta, filter_name="ramp", circle=True, output_size=n)
        out.append((img + noise_mu / MU_WATER_PER_MM * 1000.0).astype(np.float32))
    return out

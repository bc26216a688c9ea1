"""Data for the reference lung-nodule detector: real CT volumes (HU), a lung mask, and synthetic nodules inserted
into the real lung, with the inserted masks as targets. Also the LIDC XML reads (to keep the real nodules out of
training and out of the synthetic test's false-positive count).

What is simulated: only the nodules. Each is a lobulated ellipsoid (diameter 4-20 mm, log-uniform), solid
soft-tissue density (-100..+60 HU), blurred edge (partial volume, wider along z for thick slices), with noise
whose standard deviation is measured from the series' own soft tissue, blended over the real lung so that vessels
that pass through stay as bright as they were. The background (lung, vessels, airways, chest wall) is real CT.
Nothing here is for diagnostic use.
"""
from __future__ import annotations

import os
import xml.etree.ElementTree as ET

import numpy as np
from scipy import ndimage

from common import DEFAULT_DATA, decoded_folder, load_series_hu

# Network intensity mapping of the detector (a lung window): HU [-1000, 400] -> [0, 1].
DET_HU_MIN, DET_HU_MAX = -1000.0, 400.0


def det_norm(hu: np.ndarray) -> np.ndarray:
    return ((np.clip(hu, DET_HU_MIN, DET_HU_MAX) - DET_HU_MIN) / (DET_HU_MAX - DET_HU_MIN)).astype(np.float32)


def decode_ricord(data_dir: str = DEFAULT_DATA) -> str:
    """The RICORD series decompressed (JPEG Lossless; pydicom here has no decoder for it): common.decoded_folder."""
    return decoded_folder(os.path.join(data_dir, "ricord-ncct-jpegls"))


def series_geometry(folder: str):
    """Per slice (sorted like load_series_hu): ImagePositionPatient and SOPInstanceUID, plus PixelSpacing."""
    import pydicom

    rows = []
    spacing = None
    for name in sorted(os.listdir(folder)):
        if not name.endswith(".dcm"):
            continue
        ds = pydicom.dcmread(os.path.join(folder, name), stop_before_pixels=True)
        iop = np.array([float(v) for v in ds.ImageOrientationPatient])
        ipp = [float(v) for v in ds.ImagePositionPatient]
        rows.append((float(np.dot(np.cross(iop[:3], iop[3:]), ipp)), ipp, str(ds.SOPInstanceUID)))
        spacing = [float(v) for v in ds.PixelSpacing]
    rows.sort(key=lambda r: r[0])
    return [r[1] for r in rows], [r[2] for r in rows], spacing


def lidc_marks(xml_path: str):
    """Every reader mark in a LIDC XML: (kind, reader index, nodule id, sop uid, z, mean x, mean y, n points, max extent px)
    for unblindedReadNodule ROIs (kind 'nodule'; edge-map points of one slice averaged) and nonNodule points."""
    ns = {"l": "http://www.nih.gov"}
    root = ET.parse(xml_path).getroot()
    marks = []
    for reader, session in enumerate(root.findall("l:readingSession", ns)):
        for nod in session.findall("l:unblindedReadNodule", ns):
            nid = nod.findtext("l:noduleID", default="", namespaces=ns).strip()
            for roi in nod.findall("l:roi", ns):
                xs = [int(e.findtext("l:xCoord", namespaces=ns)) for e in roi.findall("l:edgeMap", ns)]
                ys = [int(e.findtext("l:yCoord", namespaces=ns)) for e in roi.findall("l:edgeMap", ns)]
                if not xs:
                    continue
                z = float(roi.findtext("l:imageZposition", namespaces=ns))
                sop = roi.findtext("l:imageSOP_UID", default="", namespaces=ns).strip()
                marks.append(("nodule", reader, nid, sop, z, float(np.mean(xs)), float(np.mean(ys)), len(xs),
                              max(max(xs) - min(xs), max(ys) - min(ys))))
        for non in session.findall("l:nonNodule", ns):
            z = float(non.findtext("l:imageZposition", namespaces=ns))
            sop = non.findtext("l:imageSOP_UID", default="", namespaces=ns).strip()
            x = int(non.find("l:locus", ns).findtext("l:xCoord", namespaces=ns))
            y = int(non.find("l:locus", ns).findtext("l:yCoord", namespaces=ns))
            marks.append(("non-nodule", reader, "", sop, z, float(x), float(y), 1, 0))
    return marks


def real_nodule_voxels(folder: str, xml_path: str):
    """(slice index, row, column) of every reader's nodule mark in the volume's (load_series_hu) order."""
    ipps, sops, _ = series_geometry(folder)
    zs = np.array([p[2] for p in ipps])
    by_sop = {s: i for i, s in enumerate(sops)}
    out = []
    for kind, _reader, _nid, sop, z, x, y, _n, _ext in lidc_marks(xml_path):
        if kind != "nodule":
            continue
        k = by_sop.get(sop, int(np.argmin(np.abs(zs - z))))
        out.append((k, y, x))
    return out


def lung_mask(hu: np.ndarray):
    """(lung, body). Air inside the body: per slice, the body is the filled region of HU > -500; lung = body & HU < -400, keeping
    3D components over 20 cm3-equivalent voxels (drops bowel gas and noise)."""
    body = np.zeros(hu.shape, bool)
    for k in range(hu.shape[0]):
        b = ndimage.binary_opening(hu[k] > -500, iterations=2)
        lab, n = ndimage.label(b)
        if n == 0:
            continue
        sizes = ndimage.sum(b, lab, range(1, n + 1))
        body[k] = ndimage.binary_fill_holes(lab == (int(np.argmax(sizes)) + 1))
    lung = body & (hu < -400)
    lung = ndimage.binary_opening(lung, iterations=1)
    lab, n = ndimage.label(lung)
    if n:
        sizes = ndimage.sum(lung, lab, range(1, n + 1))
        keep = np.zeros(n + 1, bool)
        keep[1:] = sizes > 20000
        lung = keep[lab]
    return lung, body


def soft_tissue_noise(hu: np.ndarray) -> float:
    """Noise standard deviation of the series, HU: std of (image - 3x3 mean) in soft tissue (0..100 HU, away from
    edges), median over a few slices. Used for the inserted nodules' texture."""
    vals = []
    for k in np.linspace(hu.shape[0] * 0.3, hu.shape[0] * 0.7, 6).astype(int):
        s = hu[k]
        tissue = ndimage.binary_erosion((s > 0) & (s < 100), iterations=3)
        if tissue.sum() < 500:
            continue
        hp = s - ndimage.uniform_filter(s, 3)
        vals.append(float(np.std(hp[tissue])) * 1.5)  # 3x3 high-pass keeps ~2/3 of white noise std
    return float(np.median(vals)) if vals else 20.0


class Volume:
    """A real CT volume prepared for insertion: HU, lung mask, placement mask (eroded lung minus excluded slices),
    voxel spacing (z, y, x) mm and the series noise level."""

    def __init__(self, name, hu, spacing_zyx, exclude_slices=(), slice_range=None):
        self.name = name
        self.hu = hu
        self.spacing = np.array(spacing_zyx, float)
        self.lung, body = lung_mask(hu)
        place = ndimage.binary_erosion(self.lung, iterations=2)
        usable = np.zeros(hu.shape[0], bool)
        lo, hi = slice_range if slice_range else (0, hu.shape[0])
        usable[lo:hi] = True
        usable[list(exclude_slices)] = False
        self.usable_slices = np.nonzero(usable)[0]
        place[~usable] = False
        self.place = place
        self.place_idx = np.argwhere(place)
        # negatives from anywhere in the body on the usable slices (abdomen, neck, mediastinum, chest wall too)
        body[~usable] = False
        self.body_idx = np.argwhere(body)[::37]
        self.noise = soft_tissue_noise(hu)


def load_volume(name, folder, spacing_exclude_xml=None, exclude_margin_mm=20.0, slice_range=None):
    hu, meta = load_series_hu(folder)
    pos = np.array(meta["positions"])
    dz = float(np.median(np.diff(pos)))
    exclude = set()
    if spacing_exclude_xml:
        for k, _r, _c in real_nodule_voxels(folder, spacing_exclude_xml):
            m = int(np.ceil(exclude_margin_mm / dz))
            exclude.update(range(max(0, k - m), min(hu.shape[0], k + m + 1)))
    ps = meta["pixelSpacing"]
    return Volume(name, hu, (dz, ps[0], ps[1]), sorted(exclude), slice_range)


def nodule_field(shape, center, radii_mm, spacing, rng, edge_mm):
    """Soft occupancy in [0, 1] of a lobulated ellipsoid on the voxel grid `shape` (a local block), centre in voxel
    coordinates of that block."""
    zz, yy, xx = np.meshgrid(*[np.arange(n, dtype=np.float32) for n in shape], indexing="ij")
    dz = (zz - center[0]) * spacing[0]
    dy = (yy - center[1]) * spacing[1]
    dx = (xx - center[2]) * spacing[2]
    # random rotation in-plane
    a = rng.uniform(0, np.pi)
    ry = np.cos(a) * dy - np.sin(a) * dx
    rx = np.sin(a) * dy + np.cos(a) * dx
    rho = np.sqrt((dz / radii_mm[0]) ** 2 + (ry / radii_mm[1]) ** 2 + (rx / radii_mm[2]) ** 2) + 1e-6
    # lobulation: radius modulated by a few random low-order directional terms
    r_mean = float(np.mean(radii_mm))
    mod = np.ones_like(rho)
    for _ in range(3):
        v = rng.normal(size=3)
        v /= np.linalg.norm(v)
        cosang = (dz * v[0] + ry * v[1] + rx * v[2]) / (rho * r_mean)
        mod += rng.uniform(0.0, 0.12) * np.cos(rng.integers(2, 5) * np.arccos(np.clip(cosang, -1, 1)))
    d_mm = (rho - mod) * r_mean  # signed distance-ish, mm (negative inside)
    # edge width: in-plane edge_mm; slices this thick also blur along z (handled by the caller's z spacing)
    return 1.0 / (1.0 + np.exp(np.clip(d_mm / edge_mm, -50, 50)))


def insert_nodule(hu_block, center, diameter_mm, spacing, noise_sd, rng):
    """Inserts one nodule into `hu_block` (modified in place); returns its target mask (occupancy > 0.5)."""
    r = diameter_mm / 2.0
    radii = r * rng.uniform(0.8, 1.2, size=3)
    edge = rng.uniform(0.25, 0.6) + 0.15 * spacing[0]
    occ = nodule_field(hu_block.shape, center, radii, spacing, rng, edge)
    # partial volume along z: thick slices average the nodule over the slice thickness
    if spacing[0] > 1.5:
        occ = ndimage.gaussian_filter1d(occ, sigma=0.35, axis=0)
    density = rng.uniform(-100.0, 60.0)
    tex = rng.normal(size=hu_block.shape).astype(np.float32)
    tex = ndimage.gaussian_filter(tex, sigma=(0, 0.7, 0.7))
    tex *= noise_sd / (tex.std() + 1e-6)
    nodule_hu = np.maximum(density + tex, hu_block)  # vessels crossing it stay as bright as they were
    hu_block[:] = hu_block * (1 - occ) + nodule_hu * occ
    return occ > 0.5


def sample_diameter(rng):
    return float(np.exp(rng.uniform(np.log(4.0), np.log(20.0))))


def insert_nodules_volume(vol: Volume, n, rng, avoid_voxels=(), avoid_mm=25.0, min_sep_mm=30.0):
    """A copy of the volume with n nodules inserted at placement-mask positions (apart from each other and from
    `avoid_voxels`, e.g. the real nodules); returns (hu, list of (centre voxel zyx, diameter mm, mask voxel count))."""
    hu = vol.hu.copy()
    placed = []
    avoid = [np.array(v, float) for v in avoid_voxels]
    tries = 0
    while len(placed) < n and tries < 5000:
        tries += 1
        c = vol.place_idx[rng.integers(len(vol.place_idx))].astype(float)
        c += rng.uniform(-0.5, 0.5, size=3)
        if any(np.linalg.norm((c - a) * vol.spacing) < avoid_mm for a in avoid):
            continue
        if any(np.linalg.norm((c - p[0]) * vol.spacing) < min_sep_mm for p in placed):
            continue
        d = sample_diameter(rng)
        m = np.ceil((d / 2 * 1.4 + 3) / vol.spacing).astype(int)
        lo = np.maximum(np.floor(c).astype(int) - m, 0)
        hi = np.minimum(np.floor(c).astype(int) + m + 1, hu.shape)
        block = hu[lo[0]:hi[0], lo[1]:hi[1], lo[2]:hi[2]]
        mask = insert_nodule(block, tuple(c - lo), d, vol.spacing, vol.noise, rng)
        placed.append((c, d, int(mask.sum())))
    return hu, placed


# ---------------------------------------------------------------------------------------------------------------
# v2: real reads as targets, kernel and slice-thickness augmentation
# ---------------------------------------------------------------------------------------------------------------

def real_read_targets(folder: str, xml_path: str, shape):
    """The readers' outlined nodules (>= 3 mm) as a voxel mask (union over readers of the included contours, holes
    removed) and the single-point marks of nodules < 3 mm as voxel (k, r, c): the targets of a read training patient.
    Non-nodule marks are ordinary background."""
    from skimage.draw import polygon as fill_polygon

    ns = {"l": "http://www.nih.gov"}
    ipps, sops, _ = series_geometry(folder)
    zs = np.array([p[2] for p in ipps])
    by_sop = {s: i for i, s in enumerate(sops)}
    mask = np.zeros(shape, bool)
    points = []
    for session in ET.parse(xml_path).getroot().findall("l:readingSession", ns):
        for nod in session.findall("l:unblindedReadNodule", ns):
            rois = []
            for roi in nod.findall("l:roi", ns):
                xs = [int(e.findtext("l:xCoord", namespaces=ns)) for e in roi.findall("l:edgeMap", ns)]
                ys = [int(e.findtext("l:yCoord", namespaces=ns)) for e in roi.findall("l:edgeMap", ns)]
                if not xs:
                    continue
                sop = roi.findtext("l:imageSOP_UID", default="", namespaces=ns).strip()
                k = by_sop.get(sop, int(np.argmin(np.abs(zs - float(roi.findtext("l:imageZposition", namespaces=ns))))))
                inc = roi.findtext("l:inclusion", "TRUE", ns).strip().upper() != "FALSE"
                rois.append((k, inc, xs, ys))
            if rois and max(len(r[2]) for r in rois if r[1]) == 1:
                k, _i, xs, ys = next(r for r in rois if r[1])
                points.append((k, ys[0], xs[0]))
                continue
            one = np.zeros(shape, bool)
            for k, inc, xs, ys in sorted(rois, key=lambda r: not r[1]):  # holes after the inclusions
                rr, cc = fill_polygon(np.array(ys), np.array(xs), shape[1:])
                one[k, rr, cc] = inc
            mask |= one
    return mask, points


def kernel_augment(block: np.ndarray, rng, spacing_mm: float = 0.7, p: float = 0.67) -> np.ndarray:
    """A smoother or a sharper reconstruction kernel, approximately: in-plane Gaussian blur (sigma 0.4-1.2 mm) or an
    unsharp mask (amount 0.5-1.5 over a 0.7-1.2 mm Gaussian), which also amplifies the real noise as sharp kernels do.
    `block` [..., H, W] HU; returns a new array."""
    u = rng.random()
    if u > p:
        return block
    sig = np.zeros(block.ndim)
    if u < p / 2:
        sig[-2:] = rng.uniform(0.4, 1.2) / spacing_mm
        return ndimage.gaussian_filter(block, sig)
    sig[-2:] = rng.uniform(0.7, 1.2) / spacing_mm
    amount = rng.uniform(0.5, 1.5)
    return block + amount * (block - ndimage.gaussian_filter(block, sig))


def thickness_augment(block: np.ndarray, dz: float, rng, p: float = 0.3) -> np.ndarray:
    """Thicker slices, approximately: a box average along z over n slices (n = round(U(2.5, 5) mm / dz), at least 2)
    when the series' slices are thinner than 2 mm. `block` [Z, H, W] HU."""
    if dz >= 2.0 or rng.random() > p:
        return block
    n = max(2, int(round(rng.uniform(2.5, 5.0) / dz)))
    return ndimage.uniform_filter1d(block, n, axis=0, mode="nearest")


class ReadVolume(Volume):
    """A training volume with radiologists' reads: the outlined nodules are real targets (and no synthetic nodule is
    placed within 15 mm of any reader mark); points of nodules < 3 mm are not targets and their 6 mm neighbourhood is
    left out of the loss."""

    def __init__(self, name, folder, xml_path, slice_range=None):
        hu, meta = load_series_hu(folder)
        pos = np.array(meta["positions"])
        dz = float(np.median(np.diff(pos)))
        ps = meta["pixelSpacing"]
        super().__init__(name, hu, (dz, ps[0], ps[1]), (), slice_range)
        self.real, self.points = real_read_targets(folder, xml_path, hu.shape)
        self.ignore = np.zeros(hu.shape, bool)
        for k, r, c in self.points:
            self.ignore[int(k), int(r), int(c)] = True
        if self.points:
            dist = ndimage.distance_transform_edt(~self.ignore, sampling=self.spacing)
            self.ignore = dist < 6.0
        marks = self.real | self.ignore
        if marks.any():
            near = ndimage.distance_transform_edt(~marks, sampling=self.spacing) < 15.0
            self.place &= ~near
            self.place_idx = np.argwhere(self.place)
        self.real_idx = np.argwhere(self.real)


def make_training_sample_v2(vol: Volume, rng, crop=80, context=3, p_real=0.15, aug=True):
    """One 2.5D training sample: `context` neighbouring slices (network range), the centre slice's target mask and a
    loss weight. Real reader-outlined nodules are targets (a share p_real of the samples of a read volume is centred
    on one); otherwise, with probability 0.7, 1..3 synthetic nodules are inserted (in 3D, consistent across the context
    slices), the crop centred in or near the lungs, or (half of the nodule-free samples) anywhere in the body, so the
    network also sees the abdomen, neck and mediastinum as background. The weight is 0 near the < 3 mm point marks.
    Kernel / slice-thickness augmentation of the whole block comes after the insertion, so the nodules get it too.
    Returns (x [context, crop, crop] network range, target [crop, crop], weight [crop, crop])."""
    Z, H, W = vol.hu.shape
    half = context // 2
    real = getattr(vol, "real", None)
    on_real = real is not None and len(vol.real_idx) and rng.random() < p_real
    with_nodule = (not on_real) and rng.random() < 0.7
    if on_real:
        k, y, x = vol.real_idx[rng.integers(len(vol.real_idx))]
    else:
        k, y, x = vol.place_idx[rng.integers(len(vol.place_idx))]
        if not with_nodule and rng.random() < 0.5:
            k, y, x = vol.body_idx[rng.integers(len(vol.body_idx))]
        elif rng.random() < 0.3:
            y += rng.integers(-60, 61)
            x += rng.integers(-60, 61)
    jitter = 40 if not on_real else 25
    y0 = int(np.clip(y - crop // 2 + rng.integers(-jitter, jitter + 1), 0, H - crop))
    x0 = int(np.clip(x - crop // 2 + rng.integers(-jitter, jitter + 1), 0, W - crop))
    mz = int(np.ceil(11.0 / vol.spacing[0]))
    ks = np.clip(np.arange(k - half - mz, k + half + mz + 1), 0, Z - 1)
    block = vol.hu[ks][:, y0:y0 + crop, x0:x0 + crop].copy()
    target = np.zeros(block.shape, bool)
    if real is not None:
        target |= real[ks][:, y0:y0 + crop, x0:x0 + crop]
    if with_nodule:
        for _ in range(rng.integers(1, 4)):
            d = sample_diameter(rng)
            for _try in range(20):
                cz = mz + half + rng.uniform(-0.45, 0.45) * d / vol.spacing[0]
                cy = rng.uniform(8, crop - 8)
                cx = rng.uniform(8, crop - 8)
                gk = int(np.clip(ks[int(round(np.clip(cz, 0, len(ks) - 1)))], 0, Z - 1))
                if vol.place[gk, y0 + int(cy), x0 + int(cx)]:
                    target |= insert_nodule(block, (cz, cy, cx), d, vol.spacing, vol.noise, rng)
                    break
    if aug:
        block = thickness_augment(block, vol.spacing[0], rng)
        block = kernel_augment(block, rng, spacing_mm=float(vol.spacing[1]))
    c = mz + half
    weight = np.ones((crop, crop), np.float32)
    if real is not None:
        weight[vol.ignore[ks[c], y0:y0 + crop, x0:x0 + crop]] = 0.0
    return det_norm(block[c - half:c + half + 1]), target[c].astype(np.float32), weight


def lung_gate(lung: np.ndarray, spacing_zyx, margin_mm: float) -> np.ndarray:
    """Where a finding's centroid is kept: a lung voxel within margin_mm along each axis (a box around the centroid,
    as the node's inLungs does on its probe's coarse lung mask)."""
    size = [2 * int(np.ceil(margin_mm / s)) + 1 for s in spacing_zyx]
    return ndimage.maximum_filter(lung.astype(np.uint8), size=size) > 0

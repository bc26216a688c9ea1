"""Shared helpers for ct-enhance reference-model training: DICOM loading to HU, caching, HU <-> network mapping,
metrics (NMAE, PSNR, SSIM), a small 2D U-Net / DnCNN, ONNX export, a minimal PNG writer and manifest writing.

Runs on CPU with /usr/bin/python3 (torch 1.13, onnx 1.12, numpy, pydicom, scipy, scikit-image).
Nothing here is for diagnostic use.
"""
from __future__ import annotations

import glob
import hashlib
import json
import os
import random
import struct
import zlib

import numpy as np

from intended_use import manifest_fields

REPO_ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), ".."))
DEFAULT_DATA = os.path.abspath(os.path.join(REPO_ROOT, "..", "shared", "data", "ct"))
MODELS_DIR = os.path.join(REPO_ROOT, "models")
CACHE_DIR = os.environ.get("CT_CACHE", "/tmp/ct-cache")

# CTA-GAN style intensity mapping: HU [-1024, 3071] -> [-1, 1]
HU_MIN, HU_MAX = -1024.0, 3071.0
HU_RANGE = HU_MAX - HU_MIN  # 4095


def seed_everything(seed: int = 0) -> None:
    import torch

    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def set_threads(n: int = 2) -> None:
    import torch

    torch.set_num_threads(n)
    try:
        torch.set_num_interop_threads(1)
    except RuntimeError:
        pass


# ----------------------------------------------------------------------------------------------------------------
# DICOM
# ----------------------------------------------------------------------------------------------------------------

# dcmtk's decoder for each compressed transfer syntax in the shared series
COMPRESSED = {"1.2.840.10008.1.2.4.80": "dcmdjpls", "1.2.840.10008.1.2.4.81": "dcmdjpls",
              "1.2.840.10008.1.2.4.70": "dcmdjpeg", "1.2.840.10008.1.2.4.57": "dcmdjpeg"}


def decoded_folder(folder: str) -> str:
    """The series in an uncompressed transfer syntax: pydicom here has no JPEG-LS / JPEG Lossless decoder, so
    compressed files are decoded once with dcmtk into $CT_CACHE/decoded/<series> (outside the repository)."""
    import subprocess

    import pydicom

    files = sorted(glob.glob(os.path.join(folder, "*.dcm")))
    ts = str(pydicom.dcmread(files[0], stop_before_pixels=True).file_meta.TransferSyntaxUID)
    if ts not in COMPRESSED:
        return folder
    out = os.path.join(CACHE_DIR, "decoded", os.path.basename(os.path.normpath(folder)))
    os.makedirs(out, exist_ok=True)
    for fn in files:
        dst = os.path.join(out, os.path.basename(fn))
        if not os.path.exists(dst):
            subprocess.run([COMPRESSED[ts], fn, dst], check=True)
    return out


def load_series_hu(folder: str, use_cache: bool = True):
    """Read every .dcm in `folder`, sort by position along the slice normal (ascending: for these axial series,
    index 0 is the most inferior slice), return (hu[z,y,x] float32, meta dict).
    HU = stored * RescaleSlope + RescaleIntercept. Values outside the scan FOV (padding) stay as stored."""
    import pydicom

    name = os.path.basename(os.path.normpath(folder))
    cache_npy = os.path.join(CACHE_DIR, f"{name}_hu.npy")
    cache_meta = os.path.join(CACHE_DIR, f"{name}_meta.json")
    if use_cache and os.path.exists(cache_npy) and os.path.exists(cache_meta):
        with open(cache_meta) as f:
            return np.load(cache_npy), json.load(f)
    files = sorted(glob.glob(os.path.join(folder, "*.dcm")))
    if not files:
        raise FileNotFoundError(f"no .dcm files in {folder}")
    slices = []
    for fn in files:
        ds = pydicom.dcmread(fn)
        if not hasattr(ds, "PixelData"):
            continue
        iop = np.array([float(v) for v in ds.ImageOrientationPatient])
        normal = np.cross(iop[:3], iop[3:])
        pos = float(np.dot(normal, [float(v) for v in ds.ImagePositionPatient]))
        arr = ds.pixel_array.astype(np.float32) * float(ds.get("RescaleSlope", 1)) + float(ds.get("RescaleIntercept", 0))
        slices.append((pos, arr, ds))
    slices.sort(key=lambda t: t[0])
    hu = np.stack([s[1] for s in slices]).astype(np.float32)
    ds0 = slices[0][2]
    meta = {
        "folder": name,
        "n": len(slices),
        "positions": [s[0] for s in slices],
        "pixelSpacing": [float(v) for v in ds0.PixelSpacing],
        "sliceThickness": float(ds0.get("SliceThickness", 0) or 0),
        "kvp": float(ds0.get("KVP", 0) or 0),
        "instanceNumbers": [int(s[2].get("InstanceNumber", 0)) for s in slices],
    }
    if use_cache:
        os.makedirs(CACHE_DIR, exist_ok=True)
        np.save(cache_npy, hu)
        with open(cache_meta, "w") as f:
            json.dump(meta, f)
    return hu, meta


# ----------------------------------------------------------------------------------------------------------------
# intensity mapping
# ----------------------------------------------------------------------------------------------------------------

def hu_to_net(hu, hu_min=HU_MIN, hu_max=HU_MAX, nmin=-1.0, nmax=1.0):
    hu = np.clip(hu, hu_min, hu_max)
    return ((hu - hu_min) / (hu_max - hu_min) * (nmax - nmin) + nmin).astype(np.float32)


def net_to_hu(x, hu_min=HU_MIN, hu_max=HU_MAX, nmin=-1.0, nmax=1.0):
    return ((np.asarray(x, np.float64) - nmin) / (nmax - nmin) * (hu_max - hu_min) + hu_min).astype(np.float32)


# ----------------------------------------------------------------------------------------------------------------
# metrics (all on HU images clipped to [HU_MIN, HU_MAX])
# ----------------------------------------------------------------------------------------------------------------

def nmae(a, b, data_range=HU_RANGE):
    return float(np.mean(np.abs(np.asarray(a, np.float64) - np.asarray(b, np.float64))) / data_range)


def psnr(a, b, data_range=HU_RANGE):
    mse = float(np.mean((np.asarray(a, np.float64) - np.asarray(b, np.float64)) ** 2))
    return float("inf") if mse == 0 else float(10 * np.log10(data_range ** 2 / mse))


def ssim(a, b, data_range=HU_RANGE):
    """SSIM of one 2D slice as `ct-enhance eval` (default --ssim-window uniform7) and the CTA-GAN / RegGAN code compute
    it: scikit-image structural_similarity, 7x7 uniform window, K1=0.01, K2=0.03, on the HU slices clipped to
    [HU_MIN, HU_MAX] and mapped to [-1, 1] (data range 2). `data_range` is kept for the signature: the mapping uses
    the full HU range."""
    from skimage.metrics import structural_similarity

    return float(structural_similarity(hu_to_net(a).astype(np.float64), hu_to_net(b).astype(np.float64), data_range=2.0,
                                       win_size=7, gaussian_weights=False))


def slice_metrics(pred_hu, target_hu, data_range=HU_RANGE):
    """Mean over slices of NMAE, PSNR, SSIM. Inputs [n,H,W] HU."""
    rows = [(nmae(p, t, data_range), psnr(p, t, data_range), ssim(p, t, data_range)) for p, t in zip(pred_hu, target_hu)]
    r = np.array(rows)
    return {"nmae": float(r[:, 0].mean()), "psnr": float(r[:, 1].mean()), "ssim": float(r[:, 2].mean())}


# ----------------------------------------------------------------------------------------------------------------
# networks
# ----------------------------------------------------------------------------------------------------------------

def add_unet_layers(module, chs, in_ch: int, activation) -> None:
    """Gives `module` a 2D U-Net's layers under the names the checkpoints use (inc, downs, pool, ups, upblocks, outc):
    per level two 3x3 conv + BatchNorm + `activation()` blocks, max-pool down, 2x2 transposed conv up, skip
    concatenation, and a 1x1 conv to one channel. `chs` holds the depth + 1 widths."""
    import torch.nn as nn

    def block(cin, cout):
        return nn.Sequential(
            nn.Conv2d(cin, cout, 3, padding=1, bias=False), nn.BatchNorm2d(cout), activation(),
            nn.Conv2d(cout, cout, 3, padding=1, bias=False), nn.BatchNorm2d(cout), activation(),
        )

    depth = len(chs) - 1
    module.inc = block(in_ch, chs[0])
    module.downs = nn.ModuleList([block(chs[i], chs[i + 1]) for i in range(depth)])
    module.pool = nn.MaxPool2d(2)
    module.ups = nn.ModuleList([nn.ConvTranspose2d(chs[i + 1], chs[i], 2, stride=2) for i in reversed(range(depth))])
    module.upblocks = nn.ModuleList([block(chs[i] * 2, chs[i]) for i in reversed(range(depth))])
    module.outc = nn.Conv2d(chs[0], 1, 1)


def unet_output(module, x):
    """The one-channel output of the layers add_unet_layers gave `module`, before any head."""
    import torch

    skips = [module.inc(x)]
    h = skips[0]
    for d in module.downs:
        h = d(module.pool(h))
        skips.append(h)
    h = skips.pop()
    for up, ub in zip(module.ups, module.upblocks):
        h = ub(torch.cat([up(h), skips.pop()], dim=1))
    return module.outc(h)


def build_unet(base: int = 16, depth: int = 3, residual: bool = True, in_ch: int = 1, channels=None):
    """Small 2D U-Net, fully convolutional. Spatial size must be a multiple of 2**depth (the manifest's
    spatialMultiple). BatchNorm (not Group/InstanceNorm) so that the eval-mode network does not depend on the
    whole image's statistics: trained on crops, run on whole slices. With residual=True the network predicts a correction added to the centre input channel and
    the result is clamped to [-1, 1] (the intensity range). `channels` (list of depth+1 widths) overrides base."""
    import torch
    import torch.nn as nn

    chs = list(channels) if channels else [base * 2 ** i for i in range(depth + 1)]

    class UNet(nn.Module):
        def __init__(self):
            super().__init__()
            add_unet_layers(self, chs, in_ch, lambda: nn.LeakyReLU(0.1, inplace=True))
            self.residual = residual
            self.center = in_ch // 2

        def forward(self, x):
            out = unet_output(self, x)
            if self.residual:
                out = out + x[:, self.center:self.center + 1]
            return torch.clamp(out, -1.0, 1.0)

    return UNet()


def build_dncnn(depth: int = 10, width: int = 48, in_ch: int = 1):
    """DnCNN-like residual denoiser: conv+ReLU, (depth-2) x conv+BN+ReLU, conv -> noise estimate, subtracted from
    the centre input channel. BatchNorm is folded at export (eval mode)."""
    import torch
    import torch.nn as nn

    class DnCNN(nn.Module):
        def __init__(self):
            super().__init__()
            layers = [nn.Conv2d(in_ch, width, 3, padding=1), nn.ReLU(inplace=True)]
            for _ in range(depth - 2):
                layers += [nn.Conv2d(width, width, 3, padding=1, bias=False), nn.BatchNorm2d(width), nn.ReLU(inplace=True)]
            layers += [nn.Conv2d(width, 1, 3, padding=1)]
            self.body = nn.Sequential(*layers)
            self.center = in_ch // 2

        def forward(self, x):
            return x[:, self.center:self.center + 1] - self.body(x)

    return DnCNN()


def count_params(model) -> int:
    return int(sum(p.numel() for p in model.parameters()))


def export_onnx(model, path: str, in_ch: int = 1, opset: int = 13, size: int = 64) -> None:
    import torch

    model.eval()
    dummy = torch.zeros(1, in_ch, size, size, dtype=torch.float32)
    torch.onnx.export(
        model, dummy, path, input_names=["input"], output_names=["output"], opset_version=opset,
        dynamic_axes={"input": {0: "batch", 2: "height", 3: "width"}, "output": {0: "batch", 2: "height", 3: "width"}},
        do_constant_folding=True,
    )
    import onnx

    m = onnx.load(path)
    onnx.checker.check_model(m)


def onnx_ops(path: str) -> list:
    """The operator types an ONNX file uses, sorted (for the cards)."""
    import onnx

    return sorted({n.op_type for n in onnx.load(path).graph.node})


def sha256_file(path: str) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def write_manifest(model_id: str, *, version: str, task: str, name: str, context: int, spatial_multiple: int,
                   meaning: str, description: str, batch_size: int = 8, threshold: float | None = None,
                   hu_min=HU_MIN, hu_max=HU_MAX, nmin=-1.0, nmax=1.0) -> dict:
    onnx_path = os.path.join(MODELS_DIR, f"{model_id}.onnx")
    man = {
        "id": model_id,
        "version": version,
        "task": task,
        "name": name,
        "file": f"{model_id}.onnx",
        "sha256": sha256_file(onnx_path),
        "input": {"name": "input", "layout": "NCHW", "contextSlices": context, "spatialMultiple": spatial_multiple},
        "output": {"name": "output", "meaning": meaning},
        "intensity": {"huMin": hu_min, "huMax": hu_max, "networkMin": nmin, "networkMax": nmax},
        "batchSize": batch_size,
        "card": f"{model_id}.md",
        "description": description,
        **manifest_fields(model_id),
    }
    if threshold is not None:
        man["threshold"] = threshold
    with open(os.path.join(MODELS_DIR, f"{model_id}.json"), "w") as f:
        json.dump(man, f, indent=2)
        f.write("\n")
    return man


# ----------------------------------------------------------------------------------------------------------------
# PNG
# ----------------------------------------------------------------------------------------------------------------

def window(hu, width=400.0, level=40.0):
    lo = level - width / 2
    return (np.clip((np.asarray(hu, np.float64) - lo) / width, 0, 1) * 255 + 0.5).astype(np.uint8)


def write_png_gray(path: str, img: np.ndarray) -> None:
    """Minimal 8-bit PNG writer (zlib only): greyscale for H x W, RGB for H x W x 3."""
    img = np.ascontiguousarray(img, dtype=np.uint8)
    h, w = img.shape[:2]
    colour_type = 2 if img.ndim == 3 else 0
    raw = b"".join(b"\x00" + img[y].tobytes() for y in range(h))

    def chunk(tag, data):
        c = struct.pack(">I", len(data)) + tag + data
        return c + struct.pack(">I", zlib.crc32(tag + data) & 0xFFFFFFFF)

    png = b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 8, colour_type, 0, 0, 0))
    png += chunk(b"IDAT", zlib.compress(raw, 9)) + chunk(b"IEND", b"")
    with open(path, "wb") as f:
        f.write(png)


def data_arg(parser):
    parser.add_argument("--data", default=DEFAULT_DATA, help="folder holding the CT series (default ../shared/data/ct)")
    return parser


# ----------------------------------------------------------------------------------------------------------------
# inference with onnxruntime-node (the service's runtime), via training/ort_run.cjs
# ----------------------------------------------------------------------------------------------------------------

def ort_run(onnx_path: str, x: np.ndarray, batch: int = 4) -> np.ndarray:
    """Run an exported model with onnxruntime-node on x [N,C,H,W] float32; returns [N,1,H,W] float32."""
    import subprocess
    import tempfile

    x = np.ascontiguousarray(x, dtype="<f4")
    n, c, h, w = x.shape
    with tempfile.TemporaryDirectory() as td:
        fin, fout = os.path.join(td, "in.f32"), os.path.join(td, "out.f32")
        x.tofile(fin)
        subprocess.run(["node", os.path.join(os.path.dirname(__file__), "ort_run.cjs"), onnx_path, fin, fout,
                        str(n), str(c), str(h), str(w), str(batch)], check=True, stdout=subprocess.PIPE)
        y = np.fromfile(fout, dtype="<f4")
    return y.reshape(n, -1, h, w)


def check_onnx_against_torch(model, onnx_path: str, x: np.ndarray) -> dict:
    """Max/mean abs difference between PyTorch (eval) and onnxruntime-node on x [N,C,H,W]."""
    import torch

    model.eval()
    with torch.no_grad():
        ref = model(torch.from_numpy(x)).numpy()
    got = ort_run(onnx_path, x)
    d = np.abs(ref - got)
    return {"shape": list(got.shape), "maxAbsDiff": float(d.max()), "meanAbsDiff": float(d.mean())}


class Timer:
    def __init__(self):
        import time

        self._t = time.time
        self.t0 = self._t()

    def minutes(self):
        return (self._t() - self.t0) / 60.0


def disk(shape, center, radius):
    yy, xx = np.ogrid[:shape[0], :shape[1]]
    return (yy - center[0]) ** 2 + (xx - center[1]) ** 2 <= radius ** 2


def find_uniform_roi(hu2d, center, search=12, radius=6, hu_range=(-1e9, 1e9)):
    """Centre (row, col) within +-search px of `center` where a disk of `radius` px has the smallest HU SD among
    disks whose mean HU lies in hu_range. Used to place ROIs reproducibly in a named structure."""
    from scipy import ndimage as ndi

    h = hu2d.astype(np.float64)
    k = disk((2 * radius + 1, 2 * radius + 1), (radius, radius), radius).astype(np.float64)
    k /= k.sum()
    m = ndi.convolve(h, k, mode="nearest")
    sd = np.sqrt(np.maximum(ndi.convolve(h * h, k, mode="nearest") - m * m, 0))
    r0, c0 = center
    best = None
    for r in range(r0 - search, r0 + search + 1):
        for c in range(c0 - search, c0 + search + 1):
            if hu_range[0] <= m[r, c] <= hu_range[1] and (best is None or sd[r, c] < best[0]):
                best = (sd[r, c], r, c)
    return None if best is None else (best[1], best[2])


def ort_run_nd(onnx_path: str, x: np.ndarray, batch: int = 16) -> np.ndarray:
    """Run an exported model with onnxruntime-node on x [N, ...] float32 of any rank (training/ort_run_nd.cjs);
    returns [N, ...] float32 (the output's own trailing shape)."""
    import subprocess
    import tempfile

    x = np.ascontiguousarray(x, dtype="<f4")
    with tempfile.TemporaryDirectory() as td:
        fin, fout = os.path.join(td, "in.f32"), os.path.join(td, "out.f32")
        x.tofile(fin)
        r = subprocess.run(["node", os.path.join(os.path.dirname(__file__), "ort_run_nd.cjs"), onnx_path, fin, fout,
                            ",".join(map(str, x.shape)), str(batch)], check=True, stdout=subprocess.PIPE)
        dims = json.loads(r.stdout)["lastDims"]
        y = np.fromfile(fout, dtype="<f4")
    return y.reshape(x.shape[0], *dims[1:])

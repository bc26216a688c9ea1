#!/usr/bin/env python3
"""Export a CTA-GAN / RegGAN generator (PyTorch) to ONNX with a ct-enhance model manifest.

CTA-GAN's and RegGAN's image-to-image generator is the CycleGAN ResNet generator with 9 residual blocks, as in
RegGAN's Model/CycleGan.py (github.com/Kid-Liet/Reg-GAN, class Generator(input_nc, output_nc, n_residual_blocks=9)):

    ReflectionPad2d(3), Conv2d(1, 64, 7), InstanceNorm2d(64), ReLU                        } model_head
    Conv2d(64, 128, 3, stride 2, padding 1), InstanceNorm2d(128), ReLU                    }
    Conv2d(128, 256, 3, stride 2, padding 1), InstanceNorm2d(256), ReLU                   }
    9 x ResidualBlock(256): x + [ReflectionPad2d(1), Conv2d(256, 256, 3), InstanceNorm2d, ReLU,
                                 ReflectionPad2d(1), Conv2d(256, 256, 3), InstanceNorm2d]  model_body
    ConvTranspose2d(256, 128, 3, stride 2, padding 1, output_padding 1), InstanceNorm2d, ReLU   } model_tail
    ConvTranspose2d(128, 64, 3, stride 2, padding 1, output_padding 1), InstanceNorm2d, ReLU    }
    ReflectionPad2d(3), Conv2d(64, 1, 7), Tanh                                                   }

InstanceNorm2d is PyTorch's default (affine=False, no running statistics), so the generator has 11,365,633
parameters (~11.37M), all in convolutions; the module names (model_head / model_body / model_tail, conv_block) are
RegGAN's, so a RegGAN or CTA-GAN checkpoint (torch.save(netG_A2B.state_dict(), 'netG_A2B.pth')) loads with strict
key matching. Input: 1 x 512 x 512 slices, HU clipped to [-1024, 3071] and mapped linearly to [-1, 1]; output the
same range, mapped back to HU by ct-enhance (manifest intensity, output meaning "hu-image").

InstanceNorm precision: onnxruntime's CPU InstanceNormalization (and a ReduceMean over both spatial axes at once)
accumulates the 512 x 512 = 262,144 values of a channel in a way that loses about 1e-3 relative precision in fp32
(see pytorch/pytorch#60582), which after 23 normalisations moves the output by up to ~7 HU (measured: max 6.8 HU,
mean 0.52 HU against PyTorch in float64, on one 512x512 slice). By default (--instance-norm rowwise) each
InstanceNorm2d is exported as the same arithmetic written out - mean over columns, then over rows (512 values each),
centred, variance likewise, divided by sqrt(var + eps) - which onnxruntime computes to within ~0.02 HU of float64.
The weights are untouched (InstanceNorm2d without affine has none); --instance-norm onnx keeps the stock operator.

usage:
  /usr/bin/python3 training/export_ctagan.py --weights netG_A2B.pth --out models/ --id ctagan-ncct2cta --version 1.0.0
  /usr/bin/python3 training/export_ctagan.py --random-weights 0 --out /tmp/ctagan     # a test artifact (~45 MB)

Besides <id>.onnx and <id>.json it writes, unless --no-reference, PyTorch's own output on a reference input (a HU
.npy given with --reference-input, shape [N, 512, 512], or a deterministic phantom) mapped exactly as ct-enhance maps
it: <id>.reference-input-hu.{npy,bin} and <id>.reference-output-hu.{npy,bin} (float32, C order; .bin is raw
little-endian for Node) and <id>.reference.json (shape, timings). A random-weights export is never meant for models/.
"""
import argparse
import copy
import hashlib
import json
import os
import sys
import time

import numpy as np
import torch
import torch.nn as nn

EXPECTED_PARAMETERS = 11_365_633
SIZE = 512
INTENSITY = {"huMin": -1024.0, "huMax": 3071.0, "networkMin": -1.0, "networkMax": 1.0}


class ResidualBlock(nn.Module):
    def __init__(self, features):
        super().__init__()
        self.conv_block = nn.Sequential(
            nn.ReflectionPad2d(1),
            nn.Conv2d(features, features, 3),
            nn.InstanceNorm2d(features),
            nn.ReLU(inplace=True),
            nn.ReflectionPad2d(1),
            nn.Conv2d(features, features, 3),
            nn.InstanceNorm2d(features),
        )

    def forward(self, x):
        return x + self.conv_block(x)


class Generator(nn.Module):
    """RegGAN's (and CTA-GAN's) CycleGAN ResNet generator; layer order and module names as in Model/CycleGan.py."""

    def __init__(self, input_nc=1, output_nc=1, n_residual_blocks=9):
        super().__init__()
        head = [nn.ReflectionPad2d(3), nn.Conv2d(input_nc, 64, 7), nn.InstanceNorm2d(64), nn.ReLU(inplace=True)]
        features = 64
        for _ in range(2):  # downsampling 64 -> 128 -> 256
            head += [nn.Conv2d(features, features * 2, 3, stride=2, padding=1), nn.InstanceNorm2d(features * 2),
                     nn.ReLU(inplace=True)]
            features *= 2
        body = [ResidualBlock(features) for _ in range(n_residual_blocks)]
        tail = []
        for _ in range(2):  # upsampling 256 -> 128 -> 64
            tail += [nn.ConvTranspose2d(features, features // 2, 3, stride=2, padding=1, output_padding=1),
                     nn.InstanceNorm2d(features // 2), nn.ReLU(inplace=True)]
            features //= 2
        tail += [nn.ReflectionPad2d(3), nn.Conv2d(64, output_nc, 7), nn.Tanh()]
        self.model_head = nn.Sequential(*head)
        self.model_body = nn.Sequential(*body)
        self.model_tail = nn.Sequential(*tail)

    def forward(self, x):
        return self.model_tail(self.model_body(self.model_head(x)))


class RowwiseInstanceNorm2d(nn.Module):
    """InstanceNorm2d (affine=False, biased variance, eps inside the square root) with every spatial mean taken over
    one axis at a time, so onnxruntime accumulates 512 values per reduction instead of 262,144."""

    def __init__(self, eps):
        super().__init__()
        self.eps = eps

    @staticmethod
    def spatial_mean(x):
        return x.mean(dim=3, keepdim=True).mean(dim=2, keepdim=True)

    def forward(self, x):
        centred = x - self.spatial_mean(x)
        return centred / torch.sqrt(self.spatial_mean(centred * centred) + self.eps)


def with_rowwise_instance_norm(module):
    """A copy of the module with each InstanceNorm2d replaced by RowwiseInstanceNorm2d (the original is kept)."""
    module = copy.deepcopy(module)

    def replace(parent):
        for name, child in parent.named_children():
            if isinstance(child, nn.InstanceNorm2d):
                if child.affine or child.track_running_stats:
                    fail("InstanceNorm2d with affine weights or running statistics: use --instance-norm onnx")
                setattr(parent, name, RowwiseInstanceNorm2d(child.eps))
            else:
                replace(child)

    replace(module)
    return module


def fail(message):
    print(f"export_ctagan: {message}", file=sys.stderr)
    sys.exit(2)


def load_state_dict(path):
    """A bare state dict, or one inside a training checkpoint ({'state_dict': ...}, {'netG_A2B': ...}); 'module.'
    prefixes from DataParallel are stripped."""
    try:
        checkpoint = torch.load(path, map_location="cpu")
    except Exception as error:  # noqa: BLE001 - the message is what the user needs
        fail(f"cannot read weights {path}: {error}")
    for key in ("state_dict", "netG_A2B", "generator", "model"):
        if isinstance(checkpoint, dict) and isinstance(checkpoint.get(key), dict):
            checkpoint = checkpoint[key]
            break
    if not isinstance(checkpoint, dict):
        fail(f"{path} holds a {type(checkpoint).__name__}, not a state dict; save it with torch.save(netG.state_dict())")
    return {k[len("module."):] if k.startswith("module.") else k: v for k, v in checkpoint.items()}


def build_generator(args):
    if args.random_weights is not None:
        torch.manual_seed(args.random_weights)
        return Generator().eval()
    generator = Generator()
    state = load_state_dict(args.weights)
    missing, unexpected = generator.load_state_dict(state, strict=False)
    if missing or unexpected:
        fail(f"{args.weights} does not fit the RegGAN/CTA-GAN generator (1 -> 1 channel, 9 residual blocks): "
             f"missing {missing[:5]}{'...' if len(missing) > 5 else ''}, "
             f"unexpected {unexpected[:5]}{'...' if len(unexpected) > 5 else ''}")
    return generator.eval()


def sha256_of(path):
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def hu_to_network(hu):
    """As ct-enhance's huToNetwork (src/models/slice-batches.ts): clip, then linear; float64 math, float32 result."""
    lo, hi, a, b = INTENSITY["huMin"], INTENSITY["huMax"], INTENSITY["networkMin"], INTENSITY["networkMax"]
    return (a + (np.clip(hu.astype(np.float64), lo, hi) - lo) * ((b - a) / (hi - lo))).astype(np.float32)


def network_to_hu(value):
    """As ct-enhance's networkToHu: the inverse map, without clipping."""
    lo, hi, a, b = INTENSITY["huMin"], INTENSITY["huMax"], INTENSITY["networkMin"], INTENSITY["networkMax"]
    return (lo + (value.astype(np.float64) - a) * ((hi - lo) / (b - a))).astype(np.float32)


def phantom(slices):
    """A deterministic chest-like HU phantom: air, an elliptic body (40 HU), two lungs (-850 HU), a spine (700 HU)
    and a slice-dependent vessel (300 HU), so every slice differs."""
    r, c = np.mgrid[0:SIZE, 0:SIZE].astype(np.float64)
    out = np.full((slices, SIZE, SIZE), -1000.0)
    for k in range(slices):
        body = ((r - 270) / 170) ** 2 + ((c - 256) / 220) ** 2 <= 1
        lungs = (((r - 240) / 110) ** 2 + ((np.abs(c - 256) - 100) / 70) ** 2) <= 1
        spine = ((r - 390) / 30) ** 2 + ((c - 256) / 30) ** 2 <= 1
        vessel = ((r - 300 + 8 * k) / 18) ** 2 + ((c - 280) / 18) ** 2 <= 1
        s = out[k]
        s[body] = 40 + 30 * np.sin(c[body] / 23.0 + k)
        s[lungs & body] = -850 + 40 * np.cos(r[lungs & body] / 17.0)
        s[spine] = 700
        s[vessel & body & ~lungs] = 300
    return out.astype(np.float32)


def write_reference(generator, args, prefix):
    if args.reference_input:
        hu = np.load(args.reference_input).astype(np.float32)
        if hu.ndim == 2:
            hu = hu[None]
        if hu.ndim != 3 or hu.shape[1:] != (SIZE, SIZE):
            fail(f"{args.reference_input} has shape {hu.shape}; [N, {SIZE}, {SIZE}] HU slices are expected")
    else:
        hu = phantom(args.reference_slices)
    network_input = hu_to_network(hu)[:, None]  # N x 1 x 512 x 512
    started = time.perf_counter()
    with torch.no_grad():
        outputs = [generator(torch.from_numpy(network_input[i:i + 1])).numpy() for i in range(len(network_input))]
    torch_seconds = time.perf_counter() - started
    network_output = np.concatenate(outputs)[:, 0]
    output_hu = network_to_hu(network_output)
    files = {}
    for name, array in (("reference-input-hu", hu), ("reference-output-hu", output_hu)):
        np.save(f"{prefix}.{name}.npy", array)
        np.ascontiguousarray(array, dtype="<f4").tofile(f"{prefix}.{name}.bin")
        files[name] = os.path.basename(f"{prefix}.{name}.bin")
    info = {
        "shape": list(hu.shape),
        "dtype": "float32 little-endian, C order (slices, rows, columns), HU",
        "files": files,
        "input": args.reference_input or f"deterministic phantom, {args.reference_slices} slice(s)",
        "torchSecondsPerSlice": torch_seconds / len(hu),
        "torchThreads": torch.get_num_threads(),
        "networkOutputRange": [float(network_output.min()), float(network_output.max())],
    }
    with open(f"{prefix}.reference.json", "w") as f:
        json.dump(info, f, indent=2)
    return info


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--weights", help="generator state dict (.pth), e.g. RegGAN's netG_A2B.pth")
    source.add_argument("--random-weights", type=int, metavar="SEED", help="PyTorch's default init, seeded (tests)")
    parser.add_argument("--out", required=True, help="output folder (a models folder, or a temporary one for tests)")
    parser.add_argument("--id", default="ctagan-generator", help="model id = manifest and .onnx file name")
    parser.add_argument("--version", default="1.0.0")
    parser.add_argument("--name", default=None, help="human-readable name (DICOM Contributing Equipment)")
    parser.add_argument("--description", default=None)
    parser.add_argument("--regions", default="chest",
                        help="body regions the generator was trained on, comma-separated (head, chest, abdomen): "
                             "ct-enhance runs it only where the volume shows them (review: the manifest's intendedUse)")
    parser.add_argument("--use", default=None, help="intended use in words (model card, API, skip reasons)")
    parser.add_argument("--opset", type=int, default=17, choices=range(13, 18), metavar="13..17")
    parser.add_argument("--batch-size", type=int, default=4, help="slices per inference call in ct-enhance")
    parser.add_argument("--reference-input", help="HU slices (.npy, [N, 512, 512]) for the PyTorch reference output")
    parser.add_argument("--reference-slices", type=int, default=2, help="phantom slices when no --reference-input")
    parser.add_argument("--no-reference", action="store_true", help="skip the PyTorch reference output")
    parser.add_argument("--threads", type=int, default=0, help="PyTorch CPU threads (0 = its default)")
    parser.add_argument("--instance-norm", choices=("rowwise", "onnx"), default="rowwise",
                        help="rowwise: InstanceNorm written out with per-axis means (precise in onnxruntime, the "
                             "default); onnx: the stock InstanceNormalization operator (up to ~7 HU off on CPU)")
    args = parser.parse_args()
    if args.threads > 0:
        torch.set_num_threads(args.threads)

    generator = build_generator(args)
    parameters = sum(p.numel() for p in generator.parameters())
    if parameters != EXPECTED_PARAMETERS:
        fail(f"the generator has {parameters} parameters, RegGAN's has {EXPECTED_PARAMETERS}: the definition drifted")

    os.makedirs(args.out, exist_ok=True)
    prefix = os.path.join(args.out, args.id)
    onnx_path = f"{prefix}.onnx"
    started = time.perf_counter()
    exported = with_rowwise_instance_norm(generator) if args.instance_norm == "rowwise" else generator
    with torch.no_grad():
        torch.onnx.export(
            exported, torch.zeros(1, 1, SIZE, SIZE), onnx_path, opset_version=args.opset,
            input_names=["input"], output_names=["output"],
            dynamic_axes={"input": {0: "N"}, "output": {0: "N"}},
            do_constant_folding=True, training=torch.onnx.TrainingMode.EVAL,
        )
    export_seconds = time.perf_counter() - started
    import onnx  # after the export: only needed to check the file

    onnx.checker.check_model(onnx.load(onnx_path))

    random = args.random_weights is not None
    manifest = {
        "id": args.id,
        "version": args.version,
        "task": "synthesis",
        "name": args.name or ("CTA-GAN generator (random weights: a test artifact)" if random
                              else "CTA-GAN / RegGAN generator"),
        "file": os.path.basename(onnx_path),
        "sha256": sha256_of(onnx_path),
        "input": {"name": "input", "layout": "NCHW", "contextSlices": 1, "size": [SIZE, SIZE], "spatialMultiple": 1},
        "output": {"name": "output", "meaning": "hu-image"},
        "intensity": INTENSITY,
        "batchSize": args.batch_size,
        "description": args.description or (
            f"CycleGAN ResNet-9 generator as in RegGAN / CTA-GAN ({parameters:,} parameters), exported from "
            + (f"random weights (seed {args.random_weights}); not a trained model." if random
               else os.path.basename(args.weights) + ". Not for diagnostic use.")),
    }
    regions = [r.strip() for r in args.regions.split(",") if r.strip()]
    # Where it may run and what its output must satisfy (src/models/manifest.ts): defaults for a 512x512 NCCT -> CTA
    # generator, to be reviewed by whoever deploys it; ct-enhance refuses a manifest without them.
    manifest["intendedUse"] = {
        "description": args.use or f"non-contrast CT of the {' or '.join(regions)}, 512x512 (set at export: review it)",
        "modality": "CT",
        "regions": regions,
        "slabMarginMm": 20,
        "sliceThicknessMm": {"min": 0.5, "max": 5},
        "pixelSpacingMm": {"min": 0.4, "max": 1.0},
        "matrix": {"min": SIZE, "max": SIZE},
        "contrast": "non-contrast",
    }
    manifest["outputChecks"] = [
        {"measure": "bodyVoxelsChangedPercent", "overHu": 100, "max": 8},
        {"measure": "tissueMeanChangeHu", "min": -10, "max": 10},
    ]
    with open(f"{prefix}.json", "w") as f:
        json.dump(manifest, f, indent=2)
        f.write("\n")

    summary = {"onnx": onnx_path, "manifest": f"{prefix}.json", "parameters": parameters, "opset": args.opset,
               "instanceNorm": args.instance_norm, "onnxBytes": os.path.getsize(onnx_path),
               "exportSeconds": export_seconds}
    if not args.no_reference:
        summary["reference"] = write_reference(generator, args, prefix)
    print(json.dumps(summary, indent=2))


if __name__ == "__main__":
    main()

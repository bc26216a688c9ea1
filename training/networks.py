"""The reference networks, defined once: the training scripts build them from here, and torch_time.py times the same
networks in PyTorch beside onnxruntime. Importing this module needs numpy only (torch when a network is built).
"""
from __future__ import annotations

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from common import add_unet_layers, build_unet, unet_output  # noqa: E402

# syncta-unet-small: U-Net widths per level (4 poolings -> spatialMultiple 16), residual output
SYNCTA_CHANNELS = (8, 24, 48, 96, 160)


def build_syncta(scale: int = 1, fat_gate: bool = False):
    """The full-resolution U-Net (0.1.0-0.2.1), or the same U-Net run on the slice averaged scale x scale (2: round 5,
    4: round 6), its correction upsampled (bilinear) and added to the full-resolution slice. scale 2 doubles the
    context in millimetres for the same work (the held-out hearts stayed dark: at 0.7 mm a 192 px crop and the
    ~200 px receptive field hold less than a heart and the lungs on both sides of it); scale 4 sees a whole 512 px
    slice (~800 px of field) at 1/16 of the arithmetic. Upsampling softens an enhancement's edge over about scale px;
    with fat_gate the correction fades out below -20 HU of the input (to nothing at -60 HU), so the fat around a
    vessel, the lung and the air keep their values: no blood pool on a plain CT is below -20 HU. Spatial multiple
    16 x scale."""
    unet = build_unet(channels=SYNCTA_CHANNELS, residual=True)
    if scale == 1:
        return unet
    import torch
    import torch.nn as nn
    import torch.nn.functional as F

    # the gate in network units: HU -60 -> 0, HU -20 -> 1 (hu_to_net: (hu + 1024) / 4095 * 2 - 1)
    gate_lo, gate_span = (-60.0 + 1024.0) / 4095.0 * 2.0 - 1.0, 40.0 / 4095.0 * 2.0

    class LowResSynCTA(nn.Module):
        def __init__(self):
            super().__init__()
            self.unet = unet
            # persistent, unused by forward: the saved weights say which network they belong to
            self.register_buffer("scale", torch.tensor(float(scale)))
            self.register_buffer("fat_gate", torch.tensor(1.0 if fat_gate else 0.0))
            taps = (torch.arange(2 * scale, dtype=torch.float32) + 0.5) / scale
            taps = torch.minimum(taps, 2.0 - taps)
            self.register_buffer("bilinear", torch.outer(taps, taps)[None, None], persistent=False)

        def upsample(self, small):
            """x scale bilinear (align_corners=False, edges clamped), as an edge Pad and a fixed ConvTranspose: the
            same numbers as F.interpolate, and ONNX operators that take float16 (a Resize's scales stay float32)."""
            padded = F.pad(small, (1, 1, 1, 1), mode="replicate")
            return F.conv_transpose2d(padded, self.bilinear, stride=scale, padding=3 * scale // 2)

        def forward(self, x):
            small = F.avg_pool2d(x, scale)
            correction = self.upsample(self.unet(small) - small)
            if fat_gate:
                correction = correction * torch.clamp((x - gate_lo) / gate_span, 0.0, 1.0)
            return torch.clamp(x + correction, -1.0, 1.0)

    return LowResSynCTA()


def syncta_spatial_multiple(scale: int) -> int:
    return 2 ** (len(SYNCTA_CHANNELS) - 1) * scale


def syncta_state_scale(state) -> tuple[int, bool]:
    """(scale, fat_gate) of saved Syn-CTA weights: 1 for the full-resolution U-Net, 2 for round 5's half-resolution
    network (its keys start with 'unet.', no scale buffer), else the saved buffers."""
    if "scale" in state:
        return int(float(state["scale"])), bool(float(state["fat_gate"]))
    return (2 if any(k.startswith("unet.") for k in state) else 1), False


def load_syncta(path: str):
    """A Syn-CTA network from its saved weights (.pt), any architecture, in eval mode on the CPU.
    Returns (model, scale, fat_gate)."""
    import torch

    state = torch.load(path, map_location="cpu")
    scale, fat_gate = syncta_state_scale(state)
    model = build_syncta(scale, fat_gate)
    if scale == 2 and "scale" not in state:  # round 5's weights predate the buffers
        state = {**state, "scale": torch.tensor(2.0), "fat_gate": torch.tensor(0.0)}
    model.load_state_dict(state)
    return model.eval(), scale, fat_gate


# denoise-ffdnet-small
DEPTH, WIDTH = 10, 48  # conv layers at half resolution, channels
# The simulated quarter-dose noise is ~20 HU, i.e. ~0.01 in network units. The last conv predicts the noise in units
# of NOISE_SCALE so that its weights are O(1/sqrt(fan-in)) like the others': with the noise in raw network units they
# must be ~1e-3, the size of one Adam step at lr 1e-3, and training stalled (a width-64 run learned nothing at all).
NOISE_SCALE = 0.01


def ffdnet_body(in_channels: int, depth: int, width: int):
    """FFDNet's body at half resolution: conv+ReLU, (depth-2) x conv+BN+ReLU, conv -> the 4-channel noise estimate."""
    import torch.nn as nn

    layers = [nn.Conv2d(in_channels, width, 3, padding=1), nn.ReLU(inplace=True)]
    for _ in range(depth - 2):
        layers += [nn.Conv2d(width, width, 3, padding=1, bias=False), nn.BatchNorm2d(width), nn.ReLU(inplace=True)]
    return nn.Sequential(*layers, nn.Conv2d(width, 4, 3, padding=1))


def build_ffdnet(depth: int = DEPTH, width: int = WIDTH, noise_scale: float = NOISE_SCALE):
    """FFDNet-style denoiser for one-channel images: PixelUnshuffle(2) -> conv+ReLU, (depth-2) x conv+BN+ReLU,
    conv -> 4-channel noise estimate (x noise_scale) -> PixelShuffle(2); output = input - noise. H and W must be even."""
    import torch.nn as nn

    class FFDNet(nn.Module):
        def __init__(self):
            super().__init__()
            self.down = nn.PixelUnshuffle(2)  # 1 x H x W -> 4 x H/2 x W/2 (ONNX: Reshape/Transpose)
            self.body = ffdnet_body(4, depth, width)
            self.up = nn.PixelShuffle(2)  # 4 x H/2 x W/2 -> 1 x H x W (ONNX: DepthToSpace, CRD)

        def forward(self, x):
            return x - self.up(self.body(self.down(x)) * noise_scale)

    return FFDNet()


# denoise-ffdnet-small v2: the same body with FFDNet's noise-level map as a second input channel
# The map's value: the measured noise (HU, the node's probe measure) x NOISE_MAP_SCALE, i.e. HU/100 (30 HU -> 0.3).
NOISE_MAP_SCALE = 0.01


def build_ffdnet_noise_map(depth: int = DEPTH, width: int = WIDTH, noise_scale: float = NOISE_SCALE):
    """FFDNet with its noise-level map: input [N, 2, H, W] = (image in network units, constant noise map);
    PixelUnshuffle(2) of the image (4 x H/2 x W/2) + the map subsampled to H/2 x W/2 (every 2nd pixel: it is constant)
    -> 5 channels -> conv+ReLU, (depth-2) x conv+BN+ReLU, conv -> 4-channel noise estimate (x noise_scale) ->
    PixelShuffle(2); output [N, 1, H, W] = image - noise. H and W must be even."""
    import torch
    import torch.nn as nn

    class FFDNetNoiseMap(nn.Module):
        def __init__(self):
            super().__init__()
            self.down = nn.PixelUnshuffle(2)
            self.body = ffdnet_body(5, depth, width)
            self.up = nn.PixelShuffle(2)

        def forward(self, x):
            image, level = x[:, :1], x[:, 1:2, ::2, ::2]
            return image - self.up(self.body(torch.cat([self.down(image), level], 1)) * noise_scale)

    return FFDNetNoiseMap()


# nodule-detector-small
CONTEXT = 3
DETECTOR_CHANNELS = [8, 16, 32, 64]  # depth 3 -> spatialMultiple 8


def build_detector(channels=DETECTOR_CHANNELS, in_ch=CONTEXT, sigmoid=True):
    """The detector: the same U-Net layers with ReLU, no residual; a sigmoid inside unless trained on logits."""
    import torch
    import torch.nn as nn

    class Detector(nn.Module):
        def __init__(self):
            super().__init__()
            add_unet_layers(self, list(channels), in_ch, lambda: nn.ReLU(inplace=True))
            self.sigmoid = sigmoid

        def logits(self, x):
            return unet_output(self, x)

        def forward(self, x):
            z = self.logits(x)
            return torch.sigmoid(z) if self.sigmoid else z

    return Detector()


# model id -> (builder, input channels)
NETWORKS = {
    "syncta-unet-small": (build_syncta, 1),
    "denoise-ffdnet-small": (build_ffdnet_noise_map, 2),
    "nodule-detector-small": (build_detector, CONTEXT),
}


def ffdnet_gmac_per_slice(depth: int, width: int, h: int = 512, w: int = 512, in_channels: int = 4) -> float:
    """Multiply-accumulates of the FFDNet convolutions for one h x w slice (the shuffles cost no MACs); in_channels is
    what the first conv sees at half resolution (4 image channels after the unshuffle, + 1 for a noise map)."""
    per_px = 9 * (in_channels * width + (depth - 2) * width * width + width * 4)
    return per_px * (h // 2) * (w // 2) / 1e9



# nodule-fpr-small: the candidate classifier of detector v2 (false-positive reduction), a 3D CNN on 32^3 patches at 1 mm
FPR_PATCH = 32
FPR_CHANNELS = (8, 16, 32, 32)


def build_fpr(channels=FPR_CHANNELS, sigmoid=True):
    """Input [N, 1, 32, 32, 32] (HU clipped to [-1000, 400] -> [0, 1]); three (conv3x3x3 + BN + ReLU, max-pool 2)
    stages (32 -> 16 -> 8 -> 4), one more conv at 4^3, global average and max pooling concatenated, a linear layer;
    output [N, 1], the probability that the candidate is a nodule (sigmoid inside unless trained on logits)."""
    import torch
    import torch.nn as nn

    def block(cin, cout):
        return nn.Sequential(nn.Conv3d(cin, cout, 3, padding=1, bias=False), nn.BatchNorm3d(cout), nn.ReLU(inplace=True))

    class FPR(nn.Module):
        def __init__(self):
            super().__init__()
            c = list(channels)
            self.features = nn.Sequential(block(1, c[0]), nn.MaxPool3d(2), block(c[0], c[1]), nn.MaxPool3d(2),
                                          block(c[1], c[2]), nn.MaxPool3d(2), block(c[2], c[3]))
            self.head = nn.Linear(2 * c[3], 1)
            self.sigmoid = sigmoid

        def logits(self, x):
            h = self.features(x)
            return self.head(torch.cat([h.mean(dim=(2, 3, 4)), h.amax(dim=(2, 3, 4))], 1))

        def forward(self, x):
            z = self.logits(x)
            return torch.sigmoid(z) if self.sigmoid else z

    return FPR()

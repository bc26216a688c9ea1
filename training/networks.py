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


def build_syncta(half_res: bool = False):
    """The full-resolution U-Net (0.1.0-0.2.1), or with half_res the same U-Net run on the slice averaged 2 x 2, its
    correction upsampled (bilinear) and added to the full-resolution slice: twice the context in millimetres for the
    same work (the held-out hearts stayed dark: at 0.7 mm a 192 px crop and the ~200 px receptive field hold less
    than a heart and the lungs on both sides of it), a quarter of the arithmetic per slice, and enhancement edges
    softened over about 2 px. Spatial multiple 32."""
    unet = build_unet(channels=SYNCTA_CHANNELS, residual=True)
    if not half_res:
        return unet
    import torch
    import torch.nn as nn
    import torch.nn.functional as F

    class HalfResSynCTA(nn.Module):
        def __init__(self):
            super().__init__()
            self.unet = unet
            taps = torch.tensor([0.25, 0.75, 0.75, 0.25])
            self.register_buffer("bilinear", torch.outer(taps, taps)[None, None], persistent=False)

        def upsample(self, small):
            """x2 bilinear (align_corners=False, edges clamped), as an edge Pad and a fixed ConvTranspose: the same
            numbers as F.interpolate, and ONNX operators that take float16 (a Resize's scales must stay float32)."""
            return F.conv_transpose2d(F.pad(small, (1, 1, 1, 1), mode="replicate"), self.bilinear, stride=2, padding=3)

        def forward(self, x):
            small = F.avg_pool2d(x, 2)
            return torch.clamp(x + self.upsample(self.unet(small) - small), -1.0, 1.0)

    return HalfResSynCTA()


def syncta_spatial_multiple(half_res: bool) -> int:
    return 2 ** (len(SYNCTA_CHANNELS) - 1) * (2 if half_res else 1)


def is_half_res_state(state) -> bool:
    """Whether saved Syn-CTA weights are the half-resolution network's (its keys start with 'unet.')."""
    return any(k.startswith("unet.") for k in state)


def load_syncta(path: str):
    """A Syn-CTA network from its saved weights (.pt), either architecture, in eval mode on the CPU.
    Returns (model, half_res)."""
    import torch

    state = torch.load(path, map_location="cpu")
    half_res = is_half_res_state(state)
    model = build_syncta(half_res)
    model.load_state_dict(state)
    return model.eval(), half_res


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

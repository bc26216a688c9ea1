#!/usr/bin/env python3
"""Times the reference networks in PyTorch, the yardstick for onnxruntime-node's per-slice time (issue 5: within
1.3x of PyTorch fp16 on the GPU). Same networks as the shipped .onnx (built from networks.py; --weights loads the
training checkpoints and checks the .onnx against them), random weights otherwise: a conv net's run time does not
depend on its weights or on the pixel values.

What is timed matches what onnxruntime-node does per batch in the service: a float32 batch in host memory goes to
the device, the network runs, the output comes back to host memory. fp16 is autocast (weights fp32, convolutions
in fp16 on CUDA); --channels-last also tries the NHWC memory layout. One untimed warm-up pass per setting.

usage: python3 training/torch_time.py [--models a,b] [--device cuda|cpu] [--slices 64] [--batch 8] [--size 512]
                                      [--threads N] [--repeats 3] [--channels-last] [--weights]
Prints one JSON object: per model, ms per slice (median of the repeats) for fp32 and, on CUDA, fp16.
"""
from __future__ import annotations

import argparse
import contextlib
import json
import os
import statistics
import sys
import time

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from networks import NETWORKS  # noqa: E402

CHECKPOINTS = {  # what the training scripts leave in CT_CACHE (for --weights)
    "syncta-unet-small": "syncta-unet-small.pt",
    "denoise-ffdnet-small": "denoise2_fold-ricord-1a.pt",  # v2: the shipped fold (train_denoise_v2.py)
    "nodule-detector-small": "detector_ckpt.pt",
}


def load_weights(model, model_id: str) -> None:
    import torch

    from common import CACHE_DIR
    saved = torch.load(os.path.join(CACHE_DIR, CHECKPOINTS[model_id]), map_location="cpu")
    model.load_state_dict(saved["state"] if "state" in saved else saved, strict=True)


def time_network(model, x_host, batch: int, device: str, fp16: bool, repeats: int, channels_last: bool) -> list:
    import torch

    def one_pass() -> float:
        total = 0.0
        for i in range(0, x_host.shape[0], batch):
            chunk = x_host[i:i + batch]
            if device == "cuda":
                torch.cuda.synchronize()
            t0 = time.perf_counter()
            autocast = torch.autocast(device_type=device, dtype=torch.float16) if fp16 else contextlib.nullcontext()
            with torch.no_grad(), autocast:
                x = chunk.to(device, non_blocking=False)
                if channels_last:
                    x = x.contiguous(memory_format=torch.channels_last)
                y = model(x).float().cpu()
            total += time.perf_counter() - t0
            del y
        return total * 1000 / x_host.shape[0]

    one_pass()  # warm-up: kernel choice, allocations
    return [one_pass() for _ in range(repeats)]


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--models", default=",".join(NETWORKS))
    p.add_argument("--device", default=None, help="cuda when available, else cpu")
    p.add_argument("--slices", type=int, default=64)
    p.add_argument("--batch", type=int, default=8)
    p.add_argument("--size", type=int, default=512)
    p.add_argument("--threads", type=int, default=0, help="CPU threads (0 = PyTorch's default)")
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--channels-last", action="store_true")
    p.add_argument("--weights", action="store_true", help="load the training checkpoints and check the .onnx against them")
    args = p.parse_args()

    import torch
    if args.threads:
        torch.set_num_threads(args.threads)
    device = args.device or ("cuda" if torch.cuda.is_available() else "cpu")
    rng = np.random.default_rng(0)
    result = {"torch": torch.__version__, "device": device, "slices": args.slices, "batch": args.batch, "size": args.size,
              "threads": torch.get_num_threads(), "gpu": torch.cuda.get_device_name(0) if device == "cuda" else None,
              "models": {}}
    for model_id in args.models.split(","):
        build, channels = NETWORKS[model_id]
        model = build().eval()
        entry = {"parameters": sum(p.numel() for p in model.parameters())}
        if args.weights:
            from common import MODELS_DIR, check_onnx_against_torch
            load_weights(model, model_id)
            x = rng.uniform(-1, 1, (2, channels, 64, 64)).astype(np.float32)
            entry["onnxCheck"] = check_onnx_against_torch(model, os.path.join(MODELS_DIR, f"{model_id}.onnx"), x)
        model = model.to(device)
        x_host = torch.from_numpy(rng.uniform(-1, 1, (args.slices, channels, args.size, args.size)).astype(np.float32))
        if device == "cuda":
            x_host = x_host.pin_memory()
        settings = [("fp32", False)] + ([("fp16", True)] if device == "cuda" else [])
        for name, fp16 in settings:
            for layout in (["nchw", "nhwc"] if args.channels_last else ["nchw"]):
                if layout == "nhwc":
                    model = model.to(memory_format=torch.channels_last)
                runs = time_network(model, x_host, args.batch, device, fp16, args.repeats, layout == "nhwc")
                key = name if layout == "nchw" else f"{name}-channels-last"
                entry[key] = {"msPerSlice": round(statistics.median(runs), 3), "runs": [round(r, 3) for r in runs]}
                print(f"[torch_time] {model_id} {key}: {entry[key]['msPerSlice']} ms/slice", file=sys.stderr)
        result["models"][model_id] = entry
    print(json.dumps(result))


if __name__ == "__main__":
    main()

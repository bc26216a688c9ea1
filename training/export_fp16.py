#!/usr/bin/env python3
"""Writes the fp16 variant of a shipped model (models/<id>.fp16.onnx), records it in the manifest (`fp16`: file and
sha256), measures how far it is from the fp32 model on real CT through onnxruntime-node, and puts that in the
model card (a section make_cards.py keeps).

Conversion: every float32 weight and constant becomes float16; the graph's input and output stay float32, with a
Cast at each end (what onnxconverter-common's convert_float_to_float16(keep_io_types=True) does; that package is not
installable on this offline machine, and these graphs use only Conv, ConvTranspose, activations, MaxPool, AveragePool, Pad,
Concat, Slice, Clip, Add/Sub/Mul, Reshape/Transpose/DepthToSpace, all of which take float16). The service runs the
variant on GPU providers (CT_ENHANCE_PRECISION=auto) or wherever it is asked to (fp16).

Measured: onnxruntime CPU, fp16 vs fp32 outputs on 16 slices from the middle of LIDC-IDRI-0002 (an NCCT series; for
the detector the probability map and its thresholded mask), saved to $CT_CACHE/<id>_fp16.json for the model card.

usage: /usr/bin/python3 training/export_fp16.py syncta-unet-small [denoise-ffdnet-small ...]
"""
from __future__ import annotations

import json
import os
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import common as C  # noqa: E402

SERIES = "lidc-idri-0002-ncct"


def to_float16(model):
    """The same graph with float16 weights and arithmetic, float32 at its input and output."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    graph = model.graph
    for init in graph.initializer:
        if init.data_type == TensorProto.FLOAT:
            init.CopyFrom(numpy_helper.from_array(numpy_helper.to_array(init).astype(np.float16), init.name))
    for node in graph.node:
        if node.op_type == "Constant":
            for attr in node.attribute:
                if attr.name == "value" and attr.t.data_type == TensorProto.FLOAT:
                    attr.t.CopyFrom(numpy_helper.from_array(numpy_helper.to_array(attr.t).astype(np.float16), attr.t.name))
        if node.op_type == "Cast":
            for attr in node.attribute:
                if attr.name == "to" and attr.i == TensorProto.FLOAT:
                    attr.i = TensorProto.FLOAT16
    def cast_at_boundary(values, inputs: bool):
        """A Cast between each float32 graph input (output) and the float16 graph; the nodes use the half name."""
        casts = []
        for value in values:
            if value.type.tensor_type.elem_type != TensorProto.FLOAT:
                continue
            half = f"{value.name}_fp16"
            for node in graph.node:
                names = node.input if inputs else node.output
                names[:] = [half if name == value.name else name for name in names]
            casts.append(helper.make_node("Cast", [value.name], [half], to=TensorProto.FLOAT16, name=f"cast_{value.name}_to_fp16")
                         if inputs else
                         helper.make_node("Cast", [half], [value.name], to=TensorProto.FLOAT, name=f"cast_{value.name}_to_fp32"))
        return casts

    casts_in = cast_at_boundary(graph.input, inputs=True)
    casts_out = cast_at_boundary(graph.output, inputs=False)
    nodes = casts_in + list(graph.node) + casts_out
    del graph.node[:]
    graph.node.extend(nodes)
    del graph.value_info[:]  # float32 shapes recorded at export no longer hold; onnxruntime infers them again
    onnx.checker.check_model(model)
    return model


def network_input(manifest: dict, hu: np.ndarray, pixel_mm=(0.7, 0.7)) -> np.ndarray:
    """HU slices -> the network's input [N, context, H, W], as the service builds it (edge slices repeated)."""
    it = manifest["intensity"]
    x = np.clip(hu, it["huMin"], it["huMax"])
    x = (x - it["huMin"]) / (it["huMax"] - it["huMin"]) * (it["networkMax"] - it["networkMin"]) + it["networkMin"]
    context = manifest["input"].get("contextSlices", 1)
    half = context // 2
    n = hu.shape[0]
    out = np.stack([np.stack([x[min(max(k + d, 0), n - 1)] for d in range(-half, half + 1)]) for k in range(n)]).astype(np.float32)
    level = manifest["input"].get("noiseLevel")
    if level:
        # the noise-level channel: the node's noise measure on these slices (noise_measure.py) x scale
        from noise_measure import volume_noise
        from simulate import body_mask

        clipped = np.clip(hu, -1024, None)
        noise = volume_noise(clipped, body_mask(clipped), pixel_mm[1])["noiseHu"]
        out = np.concatenate([out, np.full_like(out[:, :1], noise * level["scale"])], 1)
    return out


def compare(model_id: str, manifest: dict, fp32_path: str, fp16_path: str) -> dict:
    hu, meta = C.load_series_hu(os.path.join(C.DEFAULT_DATA, SERIES))
    middle = hu.shape[0] // 2
    context = manifest["input"].get("contextSlices", 1)
    block = hu[middle - 8 - context // 2: middle + 8 + context // 2]
    x = network_input(manifest, block, meta["pixelSpacing"])[context // 2: context // 2 + 16]
    y32 = C.ort_run(fp32_path, x)
    y16 = C.ort_run(fp16_path, x)
    out = {"model": model_id, "series": SERIES, "slices": [int(middle - 8), int(middle + 7)], "sha256": C.sha256_file(fp16_path)}
    if manifest["output"]["meaning"] == "probability-map":
        threshold = manifest.get("threshold", 0.5)
        d = np.abs(y32 - y16)
        flipped = int(np.count_nonzero((y32 > threshold) != (y16 > threshold)))
        out.update({"maxAbsDiffProbability": float(d.max()), "meanAbsDiffProbability": float(d.mean()),
                    "threshold": threshold, "voxelsAboveThresholdFp32": int(np.count_nonzero(y32 > threshold)),
                    "voxelsWhoseDecisionFlips": flipped})
    else:
        it = manifest["intensity"]
        scale = (it["huMax"] - it["huMin"]) / (it["networkMax"] - it["networkMin"])
        d = np.abs(y32 - y16) * scale
        body = block[context // 2: context // 2 + 16] > -500
        out.update({"maxAbsDiffHu": float(d.max()), "meanAbsDiffHu": float(d.mean()),
                    "meanAbsDiffHuInBody": float(d[:, 0][body].mean()), "p99AbsDiffHu": float(np.percentile(d, 99))})
    return out


def card_section(result: dict, fp16_file: str) -> str:
    """The model card's section on the fp16 variant, from the measured comparison."""
    first, last = result["slices"]
    if "maxAbsDiffProbability" in result:
        measured = (f"probability max |difference| {result['maxAbsDiffProbability']:.2g}, mean {result['meanAbsDiffProbability']:.2g}; "
                    f"of the {result['voxelsAboveThresholdFp32']} voxels above the threshold {result['threshold']} with fp32, "
                    f"{result['voxelsWhoseDecisionFlips']} change side with fp16")
    else:
        measured = (f"max |difference| {result['maxAbsDiffHu']:.2f} HU, 99th percentile {result['p99AbsDiffHu']:.2f} HU, "
                    f"mean {result['meanAbsDiffHu']:.3f} HU ({result['meanAbsDiffHuInBody']:.3f} HU inside the body)")
    return (f"## fp16 variant (`{fp16_file}`)\n\n"
            "Written by `training/export_fp16.py` from the fp32 model: weights and arithmetic in float16, float32 input and "
            "output (a Cast at each end). The service runs it on GPU providers (`CT_ENHANCE_PRECISION=auto`, the default) "
            "or on every provider with `fp16`; it checks the file against the manifest's sha256 and falls back to fp32. "
            f"Measured with onnxruntime-node on the CPU, fp16 against fp32 on slices {first}-{last} of LIDC-IDRI-0002: "
            f"{measured}. On the CPU onnxruntime may run some float16 nodes in float32 behind inserted casts; on CUDA the "
            "arithmetic is float16 throughout, which no session of this project could measure (no GPU was lent).\n")


def put_card_section(model_id: str) -> None:
    """Writes (or replaces) the fp16 section of models/<id>.md from $CT_CACHE/<id>_fp16.json, if that exists."""
    measured = os.path.join(C.CACHE_DIR, f"{model_id}_fp16.json")
    if not os.path.exists(measured):
        return
    with open(measured) as fh:
        result = json.load(fh)
    with open(os.path.join(C.MODELS_DIR, f"{model_id}.json")) as fh:
        manifest = json.load(fh)
    if manifest.get("fp16", {}).get("sha256") != result["sha256"]:
        raise SystemExit(f"{model_id}: the measured fp16 file is not the manifest's: run training/export_fp16.py {model_id}")
    card_path = os.path.join(C.MODELS_DIR, f"{model_id}.md")
    if not os.path.exists(card_path):
        print(f"{model_id}: no model card ({card_path}) to record the fp16 comparison in", file=sys.stderr)
        return
    with open(card_path) as fh:
        card = fh.read()
    section = card_section(result, manifest["fp16"]["file"])
    start = card.find("## fp16 variant")
    if start >= 0:
        end = card.find("\n## ", start + 1)
        card = card[:start] + section + (card[end:] if end >= 0 else "")
    else:
        # before the Reproduce / Intended use sections when there is one, else at the end
        anchors = [i for i in (card.find("\n## Reproduce"), card.find("\n## Intended use")) if i >= 0]
        at = min(anchors) + 1 if anchors else len(card)
        card = card[:at] + section + ("\n" if anchors else "") + card[at:]
    with open(card_path, "w") as fh:
        fh.write(card)


def main() -> None:
    import onnx

    for model_id in sys.argv[1:] or ["syncta-unet-small"]:
        manifest_path = os.path.join(C.MODELS_DIR, f"{model_id}.json")
        with open(manifest_path) as fh:
            manifest = json.load(fh)
        fp32_path = os.path.join(C.MODELS_DIR, manifest["file"])
        fp16_file = manifest["file"].replace(".onnx", ".fp16.onnx")
        fp16_path = os.path.join(C.MODELS_DIR, fp16_file)
        onnx.save(to_float16(onnx.load(fp32_path)), fp16_path)
        manifest["fp16"] = {"file": fp16_file, "sha256": C.sha256_file(fp16_path)}
        with open(manifest_path, "w") as fh:
            fh.write(json.dumps(manifest, indent=2) + "\n")
        result = compare(model_id, manifest, fp32_path, fp16_path)
        os.makedirs(C.CACHE_DIR, exist_ok=True)
        with open(os.path.join(C.CACHE_DIR, f"{model_id}_fp16.json"), "w") as fh:
            json.dump(result, fh, indent=2)
        print(json.dumps(result))
        put_card_section(model_id)


if __name__ == "__main__":
    main()

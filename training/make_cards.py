#!/usr/bin/env python3
"""Write the model cards models/<id>.md from the measured training logs and evaluation results in /tmp/ct-cache
(<name>_train*.json from the training scripts, <name>_eval.json from the evaluation scripts). The prose is here; every
number in a card's tables comes from those files.

  /usr/bin/python3 training/make_cards.py [syncta] [denoise]
"""
from __future__ import annotations

import json
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import common as C  # noqa: E402
from export_fp16 import put_card_section  # noqa: E402
from intended_use import put_use_section  # noqa: E402

CITATIONS = """- LIDC-IDRI: Armato III SG et al. (2015). Data From LIDC-IDRI. The Cancer Imaging Archive.
  doi:10.7937/K9/TCIA.2015.LO9QL9SX; Armato SG III et al., Medical Physics 38:915-931, 2011. Licence CC BY 3.0.
- TCIA: Clark K et al., Journal of Digital Imaging 26(6):1045-1057, 2013."""

CITATIONS_INDENTED = "\n".join("  " + line for line in CITATIONS.splitlines())

NOT_DIAGNOSTIC = ("**Not for diagnostic use.** A demonstration/reference model for exercising the ct-enhance pipeline, "
                  "trained in minutes from a few patients. Its output must never be used for clinical "
                  "decisions, reporting or patient care.")


def load(name):
    with open(os.path.join(C.CACHE_DIR, name)) as f:
        return json.load(f)


def f(x, n=4):
    return f"{x:.{n}f}"


def manifest(model_id):
    with open(os.path.join(C.MODELS_DIR, f"{model_id}.json")) as fh:
        return json.load(fh)


def check_sha(model_id, ev):
    m = manifest(model_id)
    sha = C.sha256_file(os.path.join(C.MODELS_DIR, m["file"]))
    if not (sha == m["sha256"] == ev["sha256"]):
        raise SystemExit(f"{model_id}: sha256 of the file ({sha}), the manifest ({m['sha256']}) and the evaluated model "
                         f"({ev['sha256']}) differ: re-run the evaluation")
    return m, sha


def syncta():
    import card_syncta

    card_syncta.write(load, manifest, check_sha, NOT_DIAGNOSTIC, C_channels())


# The model this one replaced: denoise-dncnn-small 0.1.0 (models/denoise-dncnn-small.* in git history, e.g. commit
# ed2f00a). Its held-out numbers as published on its card (same simulated pairs, same slices, same evaluation code);
# evaluate_denoise.py --compare re-measures them, and the card is only written if the two agree.
PREVIOUS_DENOISER = {
    "id": "denoise-dncnn-small", "version": "0.1.0", "sha256": "99251ee5b53427661147fe159a5df3a87e11fe0decdd9e26981d537621a49be7",
    "arch": "DnCNN-like, 10 convs of 48 channels at full resolution", "params": 167569, "gmac_512": 43.7,
    "iters": 602, "train_minutes": 12.0,
    "card": {"psnr_slice": 52.88, "ssim_slice": 0.9960, "nmae_slice": 0.0017, "mae_hu_body": 8.26, "psnr_body": 51.76,
             "sd_aorta": 8.5, "sd_muscle": 9.2},
}


def check_previous(cmp):
    """The re-measured previous model must reproduce its card's numbers (to the card's precision)."""
    old = PREVIOUS_DENOISER
    got = {"psnr_slice": round(cmp["whole"]["output"]["psnr"], 2), "ssim_slice": round(cmp["whole"]["output"]["ssim"], 4),
           "nmae_slice": round(cmp["whole"]["output"]["nmae"], 4), "mae_hu_body": round(cmp["body"]["output"]["mae_hu"], 2),
           "psnr_body": round(cmp["body"]["output"]["psnr"], 2),
           "sd_aorta": round(cmp["roi_noise"]["descending aorta"]["mean_sd"]["denoised"], 1),
           "sd_muscle": round(cmp["roi_noise"]["paraspinal muscle"]["mean_sd"]["denoised"], 1)}
    if cmp["sha256"] != old["sha256"] or got != old["card"]:
        raise SystemExit(f"--compare model is not {old['id']} {old['version']} as on its card: {cmp['sha256']} {got}")


def denoise():
    from train_denoise import MODEL_ID as mid

    tr = load("denoise_train.json")
    ev = load("denoise_eval.json")
    m, sha = check_sha(mid, ev)
    size = os.path.getsize(os.path.join(C.MODELS_DIR, m["file"]))
    cal = ev["calib"]
    w, b = ev["whole"], ev["body"]
    old = PREVIOUS_DENOISER
    sm = m["input"]["spatialMultiple"]
    depth, width = tr["depth"], tr["width"]
    rf = 2 * (2 * depth + 1)  # receptive field at half resolution (2 * depth + 1) x 2 px per half-resolution pixel
    if "compare" not in ev:
        raise SystemExit("run evaluate_denoise.py with --compare <previous denoise-dncnn-small.onnx> (see the card's Reproduce)")
    cmp = ev["compare"]
    check_previous(cmp)
    roi_rows = "\n".join(
        f"| {name} | {len(r['centres_z_row_col'])} | {r['radius_px']} | {f(r['mean_sd']['full_dose'], 1)} | "
        f"{f(r['mean_sd']['low_dose'], 1)} | {f(r['mean_sd']['denoised'], 1)} | "
        f"{f(cmp['roi_noise'][name]['mean_sd']['denoised'], 1)} | "
        f"{f(r['mean_hu']['full_dose'], 1)} / {f(r['mean_hu']['low_dose'], 1)} / {f(r['mean_hu']['denoised'], 1)} |"
        for name, r in ev["roi_noise"].items())
    roi_centres = "; ".join(
        f"{name}: " + ", ".join(f"z{z}({r},{c})" for z, r, c in v["centres_z_row_col"]) for name, v in ev["roi_noise"].items())
    rm, rc = ev["region_mae_hu"], cmp["region_mae_hu"]["output"]
    t = ev["ort_cpu_time"]
    tm, to = t["model"], t["compare"]

    def time_row(label, tt, gmac):
        runs = ", ".join(f"{v:.0f}" for v in tt["msPerSlice"])
        return (f"| {label} | {gmac:.1f} | {tt['medianMsPerSlice']:.0f} | {runs} | "
                f"{tt['medianMsPerSlice'] * 300 / 1000:.0f} s | {tt['loadavg1_before_after'][0]:.2f} / {tt['loadavg1_before_after'][1]:.2f} |")

    time_rows = (time_row(f"`{mid}` (this model)", tm, tr["gmac_512"]) + "\n"
                 + time_row(f"`{old['id']}` (previous model)", to, old["gmac_512"]))
    text = f"""# {m['name']} (`{mid}` {m['version']})

{NOT_DIAGNOSTIC}

Task: `denoise` — one CT slice in, the same slice with less noise out (`hu-image`), 1 slice (no context),
HU [-1024, 3071] -> [-1, 1], any even size (spatial multiple {sm}: the runtime pads odd sizes).

| | |
|---|---|
| file | `{m['file']}` ({size / 1e6:.2f} MB, sha256 `{sha}`) |
| architecture | FFDNet-style residual CNN (no noise-level map): pixel unshuffle 2 (1xHxW -> 4xH/2xW/2); 3x3 conv {width} + ReLU, {depth - 2} x (3x3 conv {width} + BatchNorm + ReLU), 3x3 conv -> 4 channels x {tr['noise_scale']:g} (the noise is predicted in units of {tr['noise_scale']:g} network units = {tr['noise_scale'] * C.HU_RANGE / 2:.0f} HU); pixel shuffle 2 -> noise estimate; output = input - noise (BatchNorm folded at export); receptive field {2 * depth + 1}x{2 * depth + 1} px at half resolution = {rf}x{rf} px |
| source of the architecture | K. Zhang, W. Zuo, L. Zhang, "FFDNet: Toward a Fast and Flexible Solution for CNN-Based Image Denoising", IEEE Transactions on Image Processing 27(9):4608-4622, 2018, doi:10.1109/TIP.2018.2839891. Here: one fixed noise level (simulated quarter dose), so no noise-level map input; {depth} layers of width {width} instead of 15 x 64; residual output as in DnCNN |
| parameters | {tr['params']:,} |
| compute | {tr['gmac_512']:.1f} GMAC per 512x512 slice (convolutions; previous model {old['gmac_512']} GMAC) |
| ONNX | opset 13, input `input` [N,1,H,W] float32, output `output` [N,1,H,W], dynamic N/H/W (H, W even); ops {', '.join(tr['onnx_ops'])} (pixel unshuffle exported as Reshape/Transpose, pixel shuffle as DepthToSpace CRD; Mul = the noise unit) |
| onnxruntime-node {tm['ortVersion']} vs PyTorch | max abs diff {tr['onnx_check']['maxAbsDiff']:.2e} (network units) on 2 held-out 512x512 slices |

## Speed (onnxruntime-node {tm['ortVersion']}, CPU)
Measured by `training/evaluate_denoise.py` with `training/ort_time.cjs`: one `InferenceSession` with
intraOpNumThreads {tm['threads']}, interOpNumThreads 1, CPU execution provider; one warm-up run, then {tm['repeats']} passes over the
{tm['slices']} held-out 512x512 slices in batches of {tm['batch']} (the manifest's batch size); wall time of `session.run` only (no
DICOM, no HU mapping). Measured on a **shared {tm['cpus']}-core machine** where other work may be running (its 1-min load
average before / after each measurement is shown); under load the numbers vary by up to ~2x from run to run, so the
median of the passes is given.

| model | GMAC / slice | ms / slice (median) | ms / slice per pass | 300 slices (model only) | load before / after |
|---|---|---|---|---|---|
{time_rows}

## Data
- Full-dose slices: LIDC-IDRI-0002 (`lidc-idri-0002-ncct`, GE LightSpeed16, 120 kVp, 1.25 mm, 0.68 mm pixels,
  non-contrast) and LIDC-IDRI-0001 (`lidc-idri-0001-cect`, 2.5 mm, IV contrast). The RICORD series was not used
  (JPEG Lossless, no decoder in pydicom here).
- Citations (required by the licences):
{CITATIONS_INDENTED}

## What is simulated, and how (training/simulate.py `low_dose_sinogram_noise`, training/prep_denoise.py)
Per 512x512 slice (HU clipped at -1024): mu = 0.0192/mm x (1 + HU/1000); parallel-beam forward projection with
`skimage.transform.radon` ({cal['n_angles']} views over 180 degrees, circle=False) x pixel size -> line integrals p;
photon counts ~ Poisson(I0 exp(-p)) (counts of 0 set to 1); p' = -ln(counts / I0); the difference p' - p is
reconstructed with `iradon` (ramp filter, linear interpolation) and added to the original slice. The original already
carries full-dose noise, so I0 is calibrated for a **quarter-dose** equivalent: added noise SD = sqrt(1/0.25 - 1) =
sqrt(3) x the native noise SD. Native SD in a descending-aorta ROI (median over the held-out slices) =
{f(cal['native_sd_aorta_median'], 2)} HU -> target added SD {f(cal['target_added_sd'], 2)} HU; a reference run at I0 = {cal['ref_i0']:.0e}
gave {f(cal['ref_added_sd'], 2)} HU, so I0 = {cal['i0']:.4g} photons per ray (variance scales as 1/I0).

Limits of this simulation: parallel-beam geometry instead of the scanner's fan/helical geometry, no bowtie filter,
monoenergetic (no beam hardening), no electronic noise, no tube-current modulation, a plain ramp filter instead of the
GE STANDARD kernel (so the noise texture/power spectrum differs from real low-dose scans); the image values outside
the scan field of view (-3024 padding in 0002) are clipped to -1024 before projection.

## Training
Split on LIDC-IDRI-0002 (slices ordered inferior -> superior): held out slices {ev['held_slices']}; no training slice
within 5 slices of that block. Training: {tr['train_slices']} slices (every 5th of 0002 outside the band, every 6th of
0001), one noise realisation each. {tr['patch']}x{tr['patch']} random crops centred in the body (HU > -500), 90-degree
rotations and flips, batch {tr['batch']}, L1 loss in network units, Adam lr {tr['lr']:g} with cosine decay, last conv
zero-initialised, seed {tr['seed']}, {tr['threads']} torch thread(s); {tr['iters']} iterations in {f(tr['train_minutes'], 1)} min on CPU
(torch {tr['torch']}; shared 2-core machine, `nice -n 10`). Same data, split, crops, augmentations, loss, optimiser and
wall-clock budget as the previous model ({old['iters']} iterations in {old['train_minutes']:.0f} min); the half-resolution body makes each
iteration cheaper, so this model saw more iterations in the same time. The noise unit ({tr['noise_scale']:g}) matters: without it
the last conv's weights must be ~1e-3, the size of one Adam step, and in trial runs the same network denoised the soft
tissue but not the lung (width 48) or learned nothing at all (width 64). Those trials were compared on the
same held-out slices as below (there is no separate validation set), so the held-out slices had a part in choosing
this design.

## Held-out metrics ({len(ev['held_slices'])} slices of LIDC-IDRI-0002, simulated quarter dose vs the original full dose)
HU clipped to [-1024, 3071]; NMAE = MAE / 4095; PSNR with data range 4095 HU; SSIM = scikit-image
`structural_similarity` per 2D slice (7x7 uniform window, K1 0.01, K2 0.03, data range 4095), averaged over slices.
The reference is the full-dose image, which has its own noise. Whole-slice values include the air around the patient.
The last row is the previous model (`{old['id']}` {old['version']}, {old['arch']}) on the same slices, re-measured
by the same evaluation (identical to its card).

| comparison | NMAE (slice) | PSNR dB (slice) | SSIM (slice) | MAE HU (body) | PSNR dB (body) |
|---|---|---|---|---|---|
| low-dose input vs full dose | {f(w['input']['nmae'])} | {f(w['input']['psnr'], 2)} | {f(w['input']['ssim'])} | {f(b['input']['mae_hu'], 2)} | {f(b['input']['psnr'], 2)} |
| denoised output vs full dose | {f(w['output']['nmae'])} | {f(w['output']['psnr'], 2)} | {f(w['output']['ssim'])} | {f(b['output']['mae_hu'], 2)} | {f(b['output']['psnr'], 2)} |
| previous model (`{old['id']}`) output vs full dose | {f(cmp['whole']['output']['nmae'])} | {f(cmp['whole']['output']['psnr'], 2)} | {f(cmp['whole']['output']['ssim'])} | {f(cmp['body']['output']['mae_hu'], 2)} | {f(cmp['body']['output']['psnr'], 2)} |

Mean absolute error (HU) by region: lung = body voxels whose 9x9 px full-dose mean is below -600 HU
({rm['voxels']['lung']:,} voxels), rest of the body ({rm['voxels']['body_not_lung']:,}), air outside the body ({rm['voxels']['air_outside_body']:,}):

| | lung | rest of body | air outside body |
|---|---|---|---|
| low-dose input | {f(rm['input']['lung'], 2)} | {f(rm['input']['body_not_lung'], 2)} | {f(rm['input']['air_outside_body'], 2)} |
| denoised output | {f(rm['output']['lung'], 2)} | {f(rm['output']['body_not_lung'], 2)} | {f(rm['output']['air_outside_body'], 2)} |
| previous model (`{old['id']}`) | {f(rc['lung'], 2)} | {f(rc['body_not_lung'], 2)} | {f(rc['air_outside_body'], 2)} |

Noise SD in uniform ROIs (disk placed on the full-dose slice by `common.find_uniform_roi`, lowest-SD disk in a
window: descending aorta around row 290, col 296, +-12 px, r 6, mean 0-100 HU; paraspinal muscle 395/230, +-15, r 5,
20-90 HU), mean over slices:

| ROI | slices | radius px | SD full dose | SD low dose | SD denoised | SD previous model | mean HU full / low / denoised |
|---|---|---|---|---|---|---|---|
{roi_rows}

ROI centres (z(row,col)): {roi_centres}

## Reproduce
```
nice -n 10 /usr/bin/python3 training/prep_denoise.py --workers 1     # simulated pairs -> /tmp/ct-cache (slow: radon/iradon)
nice -n 10 /usr/bin/python3 training/train_denoise.py --minutes {tr['train_minutes']:.0f}
git show ed2f00a:models/denoise-dncnn-small.onnx > /tmp/ct-cache/denoise-dncnn-small.onnx   # previous model, for the comparison rows
nice -n 10 /usr/bin/python3 training/evaluate_denoise.py --compare /tmp/ct-cache/denoise-dncnn-small.onnx
/usr/bin/python3 training/make_cards.py denoise                         # this card
```

## Intended use
Exercising and demonstrating the ct-enhance denoise pipeline on real CT with a real, small network.

## Limits
- Trained on simulated noise (see above) from two patients, one scanner (GE), chest only; real low-dose scans have a
  different noise texture, and other kernels/slice thicknesses were never seen.
- Like any L1/L2-trained denoiser it smooths: fine texture and low-contrast detail can be lost or altered; the
  "full-dose" target itself is noisy, so part of what it learns is to blur.
- One fixed noise level: unlike the original FFDNet there is no noise-level input, so it does not adapt to a dose
  other than the simulated quarter dose.
- 2D, no through-plane information.

{NOT_DIAGNOSTIC}
"""
    with open(os.path.join(C.MODELS_DIR, f"{mid}.md"), "w") as fh:
        fh.write(text)
    put_card_section(mid)  # the fp16 variant's section, when it was measured
    put_use_section(mid, C.MODELS_DIR)  # where ct-enhance runs it: intended use and output checks
    print("wrote", mid)


def C_channels():
    from train_syncta import CHANNELS

    return CHANNELS


if __name__ == "__main__":
    which = sys.argv[1:] or ["syncta", "denoise"]
    if "syncta" in which:
        syncta()
    if "denoise" in which:
        denoise()

"""The Syn-CTA v2 model card (models/syncta-unet-small.md), from $CT_CACHE/syncta_pairs.json, syncta_train*.json and
syncta_eval.json. Called by make_cards.py; every number in the card comes from those files."""
from __future__ import annotations

import os

import common as C
from export_fp16 import put_card_section
from intended_use import put_use_section

HCC_CITATION = ("HCC-TACE-Seg: Moawad AW, Fuentes D, Morshid A, et al. (2021). Multimodality annotated HCC cases with and "
                "without advanced imaging segmentation. The Cancer Imaging Archive. doi:10.7937/TCIA.5FNA-0924. CC BY 4.0.")
OTHER_CITATIONS = """- LIDC-IDRI: Armato III SG et al. (2015). Data From LIDC-IDRI. The Cancer Imaging Archive.
  doi:10.7937/K9/TCIA.2015.LO9QL9SX; Armato SG III et al., Medical Physics 38:915-931, 2011. CC BY 3.0.
- CPTAC: National Cancer Institute Clinical Proteomic Tumor Analysis Consortium, radiology data in TCIA (C3N-00247).
- MIDRC-RICORD-1A: Tsai E et al. (2020). doi:10.7937/VTW4-X588. CC BY-NC 4.0 (evaluation only, not trained on).
- TCIA: Clark K et al., Journal of Digital Imaging 26(6):1045-1057, 2013."""
VERSIONS = ("unchanged input", "v1", "v2 (fold without this patient)")


def f(x, n=4):
    return f"{x:.{n}f}"


def lopo_rows(lopo):
    rows = []
    for patient, r in lopo.items():
        for v in VERSIONS:
            m = r[v]
            rows.append(f"| {patient} ({r['slices']} x {r['thickness_mm']:g} mm) | {v} | {f(m['nmae'])} | {f(m['psnr'], 2)} | "
                        f"{f(m['ssim'])} | {f(m['nmae_body'])} | {f(m['bloodpool']['mae_hu'], 1)} | "
                        f"{f(m['bloodpool']['mean_hu'], 0)} / {f(m['bloodpool']['target_mean_hu'], 0)} | "
                        f"{f(m['tissue']['mae_hu'], 1)} | {f(m['tissue']['mean_change_from_input_hu'], 1)} |")
    return "\n".join(rows)


def lopo_means(lopo):
    out = []
    for v in VERSIONS:
        vals = [r[v] for r in lopo.values()]
        mean = lambda k, sub=None: sum((x[k] if sub is None else x[k][sub]) for x in vals) / len(vals)  # noqa: E731
        out.append(f"| {v} | {f(mean('nmae'))} | {f(mean('psnr'), 2)} | {f(mean('ssim'))} | {f(mean('nmae_body'))} | "
                   f"{f(mean('bloodpool', 'mae_hu'), 1)} |")
    return "\n".join(out)


def tissue_rows(chests):
    rows = []
    for name, r in chests.items():
        tissues = [t for t in r["v2"] if isinstance(r["v2"][t], dict)]
        for v in ("v1", "v2"):
            cells = " | ".join(f"{f(r[v][t]['mean_change'], 1)} / {f(r[v][t]['p95_abs_change'], 0)}" for t in tissues)
            rows.append(f"| {name} | {v} | {cells} | {f(r[v]['body_changed_gt_100hu_percent'], 2)} |")
        header = " | ".join(tissues)
    return header, "\n".join(rows)


def kernel_rows(chests):
    rows = []
    for name, r in chests.items():
        k = r.get("kernel_consistency") or {}
        for v, m in k.items():
            rows.append(f"| {name} | {v} | {f(m['original'], 1)} | {f(m['smoothed'], 1)} | {f(m['sharpened'], 1)} | {f(m['spread_hu'], 1)} |")
    return "\n".join(rows)


def registration_rows(pairs):
    return "\n".join(
        f"| {p} | {r['slices']} x {r['ncct_thickness_mm']:g} mm | z {r['rigid_mm']['z']:+.2f}, y {r['rigid_mm']['y']:+.2f}, "
        f"x {r['rigid_mm']['x']:+.2f} | {f(r['dicom']['ncc'], 3)} / {f(r['dicom']['mae_hu_outside_enhanced'], 1)} | "
        f"{f(r['rigid']['ncc'], 3)} / {f(r['rigid']['mae_hu_outside_enhanced'], 1)} | "
        f"{f(r['deformable']['ncc'], 3)} / {f(r['deformable']['mae_hu_outside_enhanced'], 1)} |"
        for p, r in pairs.items())


def write(load, manifest, check_sha, not_diagnostic, channels):
    mid = "syncta-unet-small"
    ev, pairs, final = load("syncta_eval.json"), load("syncta_pairs.json"), load("syncta_train.json")
    folds = {p: load(f"syncta_train_fold-{p}.json") for p in ev["leave_one_patient_out"]}
    m, sha = check_sha(mid, ev)
    size = os.path.getsize(os.path.join(C.MODELS_DIR, m["file"]))
    header, tissue = tissue_rows(ev["real_ncct_chest"])
    a = final["args"]
    fold_runs = "; ".join(f"without {p}: {r['iters']} iterations in {f(r['train_minutes'], 1)} min" for p, r in folds.items())
    text = f"""# {m['name']} (`{mid}` {m['version']})

{not_diagnostic}

Task: `synthesis` — non-contrast CT (NCCT) slice in, synthetic CT-angiography-like slice (Syn-CTA) out, `hu-image`
output, 1 slice (no context), HU [-1024, 3071] -> [-1, 1] (the CTA-GAN mapping), spatial multiple
{m['input']['spatialMultiple']}. v2 replaces v1 (0.1.0, commit b8b9192), which learnt from one de-enhanced contrast chest
only and brightened any smooth soft tissue on real NCCT (liver +148 HU); the figures of both are below, on the same
folds.

**Verdict: not yet a working Syn-CTA.** On the held-out patients the folds either learnt nothing (the identity) or
brightened tissue beside the blood pool (see the leave-one-out table); the shipped model, trained on all three,
brightens the aorta of the two unseen chests by 210-250 HU and leaves liver, muscle and fat alone, but also lights up
parts of the stomach, spleen, kidneys and paraspinal muscle. ct-enhance's output checks reject everything it made on
the shared series (below, "Where ct-enhance runs it"), so none of it reaches a PACS.

| | |
|---|---|
| file | `{m['file']}` ({size / 1e6:.2f} MB, sha256 `{sha}`) |
| architecture | 2D U-Net, widths {list(channels)} (4 max-poolings), 2 x (3x3 conv + BatchNorm + LeakyReLU 0.1) per block, transposed-conv upsampling, 1x1 output conv; output = clamp(input + predicted residual, -1, 1) |
| parameters | {final['params']:,} |
| ONNX | opset 13, input `input` [N,1,H,W] float32, output `output` [N,1,H,W], dynamic N/H/W; BatchNorm folded |
| onnxruntime-node vs PyTorch | max abs diff {final['onnx_check']['maxAbsDiff']:.2e} (network units) on 2 512x512 slices |

## Data
- **Real pairs** (three patients, HCC-TACE-Seg, one visit each, GE, 120 kV, STANDARD kernel): a non-contrast liver
  series (5 or 10 mm) and its arterial phase (2.5 mm); HCC_007's arterial phase is acquisition 2 of a series that
  also holds the portal phase (acquisition 3).
- **Contrast series for simulated pairs** (augmentation): LIDC-IDRI-0001 chest (GE, 2.5 mm) and the HCC_005 and
  HCC_007 arterial phases (each left out with its patient's fold). Not used, because the blood-pool segmentation
  failed on them when looked at: CPTAC C3N-00247 (B70f sharp kernel, weak 143 HU enhancement: the vertebral marrow
  passed as the aorta), HCC_009's arterial phase (the same) and HCC_007's portal phase (a kidney taken in).
- **Evaluation only, never trained on**: LIDC-IDRI-0002 (chest NCCT, 1.25 mm) and MIDRC-RICORD-1A (chest NCCT,
  1.25 mm); and, per fold, the held-out HCC patient.
- Citations (required by the licences):
  - {HCC_CITATION}
{chr(10).join('  ' + line for line in OTHER_CITATIONS.splitlines())}

## Registration of the real pairs (training/syncta_pairs.py)
Arterial slices shifted to the non-contrast grid by their DICOM positions, averaged into slabs of the non-contrast
slice thickness, then a rigid 3D translation, a per-slice z offset (breathing) and an in-plane TV-L1 displacement field
per slice. Quality: NCC / mean |difference| (HU) in the body outside the enhanced voxels (arterial > 150 HU), on HU
clipped to [-300, 100] for NCC; the residual difference includes noise, arterial parenchymal enhancement and what a
slice-wise registration cannot undo (through-plane motion inside a 5-10 mm slab).

| patient | slices used | rigid shift (mm) | DICOM positions | rigid | + deformable |
|---|---|---|---|---|---|
{registration_rows(pairs)}

## Targets, and what is simulated
- Real pairs: the target is the registered arterial phase **inside its enhanced blood pool** (dilated 2 px) and the
  non-contrast slice itself elsewhere. So the network learns where the blood pool is on a plain CT and how bright it
  becomes, and to leave everything else as it was; parenchymal arterial enhancement (liver +10-20 HU, pancreas,
  bowel wall) and registration residue are deliberately not learnt.
- Blood pool (simulate.blood_pool_mask), by HU, connectivity and position: smooth 150-600 HU voxels outside bone (a
  texture limit that scales with the series' own noise), thin connections cut by a 5 px erosion, seeded by round
  components in front of the spine (the aorta), grown back; components enclosed by bone dropped. On LIDC-IDRI-0001:
  aorta, heart chambers, pulmonary arteries and the great veins; on the HCC arterial phases: the aorta and its large
  branches (the heart only in part: the arch is outside their field). Spleen, renal cortex, tumours and bowel with
  oral contrast stay out (an earlier version that kept every large component took them in, and its model brightened
  the spleen and a blob in the liver of an unseen chest).
- Simulated pairs (augmentation only): the blood pool of each contrast series set to 40 HU with its own noise kept
  (simulate.de_enhance); target = the real contrast series. **Not simulated**: enhancing organs are not set to
  literature non-contrast values; they keep their contrast values in input and target (taught as identity).
- Kernel and noise augmentation on every crop: the same Gaussian blur (sigma 0.5-1.2 px) or unsharp mask, and the
  same Gaussian noise (sigma 2-12 HU), applied to input and target.

## Training
{a['patch']}x{a['patch']} crops, batch {a['batch']}, half of them centred on the blood pool, {int(100 * a['real_weight'])}% of the sources'
weight on the real pairs; L1 in network units weighted 1 + {a['vessel_weight']:g} in the dilated blood pool, plus
{a['brightening_weight']:g} x the output's excess over the target outside it (a false enhancement costs more than an under-enhanced
vessel; it makes a voxel brighten only where the network is more than two-thirds sure: two drafts without this term
brightened the paraspinal muscle, kidneys and blobs in the liver of held-out patients, one with weight 4 learnt
nothing, the identity); Adam, lr {a['lr']:g} with cosine decay over a wall-clock budget; last conv zero-initialised (starts as identity). CPU, 1 torch thread; the runs
below went four side by side on the 2-core machine (`syncta_all.sh` runs two at a time, so more iterations). Shipped model (all three patients): {final['iters']} iterations in
{f(final['train_minutes'], 1)} min. Folds: {fold_runs}.

## Leave-one-patient-out on the real pairs
Each row: the held-out patient's non-contrast slices against its registered real arterial phase. Definitions as the
CTA-GAN / RegGAN code computes them: per slice, HU clipped to [-1024, 3071], NMAE = MAE / 4095, PSNR =
10 log10(4095^2 / MSE), SSIM = scikit-image `structural_similarity` (7x7 uniform window, slices mapped to [-1, 1],
data range 2: `ct-enhance eval`'s default), mean over slices. "body": NMAE inside the body only. Blood pool: the
arterial phase's enhanced blood pool (MAE HU; mean HU output / target). Tissue: body outside the dilated blood pool
(MAE HU against the target; mean change from the input, HU).

| held-out patient | model | NMAE | PSNR dB | SSIM | NMAE body | blood pool MAE HU | blood pool mean / target HU | tissue MAE HU | tissue mean change HU |
|---|---|---|---|---|---|---|---|---|---|
{lopo_rows(ev['leave_one_patient_out'])}

Mean over the three folds:

| model | NMAE | PSNR dB | SSIM | NMAE body | blood pool MAE HU |
|---|---|---|---|---|---|
{lopo_means(ev['leave_one_patient_out'])}

**Why these figures cannot be compared with CTA-GAN's published table** (internal test PSNR 32.07 dB, SSIM 0.919,
NMAE 0.011): three patients, not hundreds; the targets are real arterial phases registered slice-wise onto 5-10 mm
non-contrast slabs (CTA-GAN: 1 mm-class CTA, its own registration); the whole 512x512 slice counts here, air included
(CTA-GAN's code masks a window of the reference); v2's training target is the non-contrast slice outside the blood
pool, so parenchymal enhancement in the real arterial phase counts as error for every model alike.

## Real non-contrast chest CT (no model here saw these patients)
Mean change / 95th percentile of |change| (HU) in hand-placed ROIs (training/syncta_rois.json: liver, spleen,
muscle, fat away from vessels; aorta), and the share of body voxels changed by more than 100 HU on the ROI slices.

| series | model | {header} | body > 100 HU % |
|---|---|{'---|' * (header.count('|') + 1)}---|
{tissue}

Kernel consistency: the same series smoothed (Gaussian sigma 1 px) and sharpened (unsharp mask), as a softer and a
sharper kernel would reconstruct it; mean HU in the aorta ROIs after the model.

| series | model | original | smoothed | sharpened | spread HU |
|---|---|---|---|---|---|
{kernel_rows(ev['real_ncct_chest'])}

Preview `{mid}.png`: {ev.get('png', 'not written')}.

## Reproduce ({f(sum(r['train_minutes'] for r in folds.values()) + final['train_minutes'], 0)} min of training in all on the 2-core machine, two runs at a time)
```
bash training/syncta_all.sh        # all of it: registration, 3 folds + the shipped model (two at a time), evaluation, fp16, this card
```
Training length is a wall-clock budget (`--max-iters` pins it), so a rerun gives somewhat different numbers.

## Limits
- Three patients of one scanner type, liver-level abdomen; the chest is seen only through simulated pairs. 2D, no
  through-plane consistency. Blood-pool brightness is what the three arterial phases showed, not a calibrated CTA.
- It does not make parenchymal enhancement, small vessels, or lesion enhancement patterns: a Syn-CTA must never be
  read for liver lesions, emboli or dissections.

{not_diagnostic}
"""
    with open(os.path.join(C.MODELS_DIR, f"{mid}.md"), "w") as fh:
        fh.write(text)
    put_card_section(mid)
    put_use_section(mid, C.MODELS_DIR)
    print("wrote", mid)

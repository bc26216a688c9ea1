"""FROC of a nodule detector on the series with radiologists' reads (LIDC-IDRI), the LUNA16 way.

  nice -n 10 /usr/bin/python3 training/detection_froc.py [--model models/nodule-detector-small.onnx] [--scans NAME ...]

Reference (LIDC XML, up to 4 readers; nodules >= 3 mm outlined per slice, inclusion FALSE = a hole; nodules < 3 mm
and non-nodules one point). An outlined read: centre = area-weighted mean of its contours' (shoelace) centroids, as
src/eval/lidc-xml.ts; diameter = that of the sphere of its volume ((included - hole) polygon areas x pixel area x
slice spacing). Reads of different readers merge (greedy, file order, one read per reader) when their centres are
closer than the sum of their radii, as LUNA16 merged annotations, averaging positions and diameters (Setio et al.,
Med Image Anal 42:1-13, 2017, sect. 2.1): lesion = mean centre, mean diameter, readers (1-4). Two reference sets:
lesions of >= 1 reader, and of >= 3 (LUNA16's standard). The rest are "irrelevant findings"
(luna16.grand-challenge.org/Data): point marks, non-nodules and, for >= 3, the lesions of 1-2 readers.

Candidates: the model over the whole volume as the service runs it (onnxruntime-node via ort_run.cjs; manifest
contextSlices with neighbours clamped at the ends, HU clipped to [huMin, huMax] mapped to the network range, padding
to spatialMultiple with the value of huMin), then the product's finding rule (src/models/probability-findings.ts):
p > t, 26-connected 3D components, those < minVolumeMm3 dropped, centre = mean voxel index in patient mm, score =
peak p (--score mean: mean p). FROC candidates: the components at --candidate-threshold (0.5), the curve sweeping
their score; the operating point at the manifest threshold uses the rule at that threshold. No lung mask (the
service drops findings outside its probe's lungs; lidc-compare.ts does not).

Scoring, as LUNA16's noduleCADEvaluationLUNA16.py: a candidate hits an annotation when its centre lies strictly
inside the sphere of radius diameter/2 (a point: 10 mm diameter, the script's "diameter < 0"). A reference lesion hit
by several candidates is one TP at the highest score, the other hits ignored; hits on irrelevant findings are ignored;
every other candidate is an FP. Sensitivity(s) = TPs scoring >= s / lesions, FPs/scan(s) = FPs scoring >= s / scans;
np.interp of that curve (held at its last value beyond) at 1/8, 1/4, 1/2, 1, 2, 4, 8 FPs/scan; CPM = their mean
(Niemeijer et al., IEEE TMI 30:215-228, 2011). No bootstrap (two scans).

Detector v2 (a manifest with `candidateClassifier`): the candidates are the components at the manifest's (map)
threshold, gated by the lungs, and each one's score is the classifier's probability on its 32^3 patch at 1 mm
(fpr_patch.py, the interface's sampling; onnxruntime-node via ort_run_nd.cjs); the FROC sweeps that probability, the
operating point keeps probability >= candidateClassifier.threshold, as the node does. --lung-gate (on by default with
a classifier; --lung-gate for v1 too) drops candidates whose centroid has no lung voxel (detection_data.lung_mask, air
inside the body, the 3D components over 20 cm3) within findings.lungMarginMm along each axis (a box, as the node's
inLungs in src/pipeline/outputs/findings.ts; --lung-margin overrides), in the node's order
(before the classifier); the node's own mask is its anatomy probe's (coarser voxels), so this is an approximation.

Folds: v1 trained on LIDC-IDRI-0001 (minus slices within 20 mm of a reader's nodule mark), so only LIDC-IDRI-0002 is
an unseen patient. Leave-one-patient-out for v2: train without patient P, run this with that model and --scans P.
Results: $CT_CACHE/detector_froc.json. Not for diagnostic use.
"""
from __future__ import annotations

import argparse
import hashlib
import json
import os
import sys
import time
import xml.etree.ElementTree as ET

import numpy as np
from scipy import ndimage

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from common import CACHE_DIR, DEFAULT_DATA, REPO_ROOT, load_series_hu, ort_run, ort_run_nd  # noqa: E402
from detection_data import lung_gate, lung_mask, series_geometry  # noqa: E402
from fpr_patch import normalise, patch_hu  # noqa: E402

SCANS = {"lidc-idri-0002-ncct": "071.xml", "lidc-idri-0001-cect": "069.xml"}
TRAINED_ON = {"lidc-idri-0001-cect"}  # v1 (train_detector.py, git 6ce4b15); slices within 20 mm of reader marks excluded
FP_RATES = [0.125, 0.25, 0.5, 1, 2, 4, 8]
POINT_DIAMETER_MM = 10.0  # noduleCADEvaluationLUNA16.py: an annotation without a diameter counts as 10 mm
NS = {"l": "http://www.nih.gov"}


class Geometry:
    """Voxel (slice, row, column) of the load_series_hu order -> patient LPS mm, as src/dicom/geometry.ts."""

    def __init__(self, folder):
        import pydicom

        ipp, self.sops, self.ps = series_geometry(folder)
        self.ipp = np.array(ipp)
        first = next(os.path.join(folder, f) for f in sorted(os.listdir(folder)) if f.endswith(".dcm"))
        self.iop = np.array([float(v) for v in pydicom.dcmread(first, stop_before_pixels=True).ImageOrientationPatient])
        along = self.ipp @ np.cross(self.iop[:3], self.iop[3:])
        self.dz = float((along[-1] - along[0]) / (len(along) - 1))
        self.by_sop = {s: i for i, s in enumerate(self.sops)}

    def slice_of(self, el):
        """The slice a mark was drawn on: by SOP Instance UID, else the nearest in z."""
        z = float(el.findtext("l:imageZposition", namespaces=NS))
        return self.by_sop.get(el.findtext("l:imageSOP_UID", "", NS).strip(), int(np.argmin(np.abs(self.ipp[:, 2] - z))))

    def mm(self, k, r, c):
        lo = int(np.clip(np.floor(k), 0, len(self.ipp) - 1))
        hi = min(lo + 1, len(self.ipp) - 1)
        o = self.ipp[lo] + (self.ipp[hi] - self.ipp[lo]) * (k - lo)
        return o + c * self.ps[1] * self.iop[:3] + r * self.ps[0] * self.iop[3:]


def polygon(xs, ys):
    """(area px, centroid column, centroid row) of a closed contour; a point or degenerate contour: area 0, mean."""
    x, y = np.asarray(xs, float), np.asarray(ys, float)
    cross = x * np.roll(y, -1) - np.roll(x, -1) * y
    a = cross.sum() / 2
    if len(x) < 3 or abs(a) < 1e-9:
        return 0.0, x.mean(), y.mean()
    return abs(a), ((x + np.roll(x, -1)) * cross).sum() / (6 * a), ((y + np.roll(y, -1)) * cross).sum() / (6 * a)


def reader_marks(xml_path, geo):
    """Outlined reads {reader, centre mm, equivalent diameter mm} and point marks (kind, reader, centre mm)."""
    reads, points = [], []
    xy = lambda el: ([int(e.findtext("l:xCoord", namespaces=NS)) for e in el], [int(e.findtext("l:yCoord", namespaces=NS)) for e in el])  # noqa: E731
    for reader, session in enumerate(ET.parse(xml_path).getroot().findall("l:readingSession", NS)):
        for nod in session.findall("l:unblindedReadNodule", NS):
            rois = [(geo.slice_of(roi), roi.findtext("l:inclusion", "TRUE", NS).strip().upper() != "FALSE", len(xs)) + polygon(xs, ys)
                    for roi in nod.findall("l:roi", NS) for xs, ys in [xy(roi.findall("l:edgeMap", NS))] if xs]
            inc = [r for r in rois if r[1]]  # (slice, inclusion, points, area, column, row)
            if inc and max(r[2] for r in inc) == 1:  # a nodule < 3 mm: one point
                points.append(("nodule<3mm", reader, geo.mm(inc[0][0], inc[0][5], inc[0][4])))
            elif inc:
                w = np.array([max(r[3], 1e-6) for r in inc])
                kk, rr, cc = (np.dot(w, [r[j] for r in inc]) / w.sum() for j in (0, 5, 4))
                vol = (sum(r[3] for r in inc) - sum(r[3] for r in rois if not r[1])) * geo.ps[0] * geo.ps[1] * geo.dz
                reads.append({"reader": reader, "centre": geo.mm(kk, rr, cc), "diameter": (6 * max(vol, 0) / np.pi) ** (1 / 3)})
        for non in session.findall("l:nonNodule", NS):
            (x,), (y,) = xy([non.find("l:locus", NS)])
            points.append(("non-nodule", reader, geo.mm(geo.slice_of(non), y, x)))
    return reads, points


def cluster(reads, rule="sum"):
    """Merge reads of different readers whose centres are closer than the sum (or the larger) of their radii."""
    lesions = []
    for rd in reads:
        lim = lambda les: (les["diameter"] + rd["diameter"]) / 2 if rule == "sum" else max(les["diameter"], rd["diameter"]) / 2  # noqa: E731
        near = [(float(np.linalg.norm(les["centre"] - rd["centre"])), i) for i, les in enumerate(lesions) if rd["reader"] not in les["readers"]]
        near = [(d, i) for d, i in near if d < lim(lesions[i])]
        if not near:
            lesions.append({"reads": [], "readers": []})
        les = lesions[min(near)[1]] if near else lesions[-1]
        les["reads"].append(rd)
        les["readers"].append(rd["reader"])
        les["centre"] = np.mean([r["centre"] for r in les["reads"]], axis=0)
        les["diameter"] = float(np.mean([r["diameter"] for r in les["reads"]]))
    return lesions


def prob_map(hu, model, man, cache):
    """Whole-volume probability map [Z,H,W], run as src/models/slice-batches.ts prepares it; cached per model sha256."""
    if os.path.exists(cache):
        return np.load(cache)
    it, inp = man["intensity"], man["input"]
    lo, hi, n0, n1 = it["huMin"], it["huMax"], it["networkMin"], it["networkMax"]
    Z, H, W = hu.shape
    C, m = inp["contextSlices"], inp.get("spatialMultiple", 1)
    Hp, Wp = -(-H // m) * m, -(-W // m) * m
    out = np.zeros(hu.shape, np.float32)
    for s in range(0, Z, 16):
        ks = range(s, min(Z, s + 16))
        x = np.full((len(ks), C, Hp, Wp), n0, np.float32)
        for n, k in enumerate(ks):
            idx = np.clip(np.arange(k - C // 2, k + C // 2 + 1), 0, Z - 1)
            x[n, :, :H, :W] = n0 + (np.clip(hu[idx], lo, hi) - lo) * (n1 - n0) / (hi - lo)
        out[s:s + len(ks)] = ort_run(model, x, batch=man.get("batchSize", 8))[:, 0, :H, :W]
    np.save(cache, out)
    return out


def components(prob, t, geo, min_mm3, score="peak"):
    """The product's finding rule at threshold t: [(score = peak (or mean) p, centre mm, volume mm3, centre voxel)]."""
    lab, n = ndimage.label(prob > t, structure=np.ones((3, 3, 3), bool))
    vox = geo.ps[0] * geo.ps[1] * geo.dz
    counts = np.bincount(lab.ravel(), minlength=n + 1)[1:]
    keep = [i + 1 for i in range(n) if counts[i] * vox >= min_mm3]
    peaks = (ndimage.maximum if score == "peak" else ndimage.mean)(prob, lab, keep)
    cents = ndimage.center_of_mass(np.ones(prob.shape, np.uint8), lab, keep)
    return [(float(p), geo.mm(*c), counts[i - 1] * vox, c) for i, p, c in zip(keep, peaks, cents)]


def classify(cands, hu, geo, clf, path):
    """The candidates rescored by the classifier: (classifier probability, centre mm, volume, centre voxel, map peak)."""
    if not cands:
        return []
    it, pv = clf["intensity"], clf["patchVoxels"]
    x = np.stack([normalise(patch_hu(hu, c[3], (geo.dz, geo.ps[0], geo.ps[1]), pv, clf["spacingMm"], it["huMin"]),
                            it["huMin"], it["huMax"], it["networkMin"], it["networkMax"]) for c in cands])[:, None]
    p = ort_run_nd(path, x)[:, 0]
    return [(float(q), c[1], c[2], c[3], c[0]) for q, c in zip(p, cands)]


def judge(cands, ref, irrelevant):
    """LUNA16 scoring of one scan: (TP scores of hit lesions, FP scores, labels per candidate)."""
    labels, tps = ["FP"] * len(cands), []
    inside = lambda c, centre, diam: np.linalg.norm(c[1] - centre) < diam / 2  # noqa: E731
    for j, (centre, diam) in enumerate(ref):
        hits = [i for i, c in enumerate(cands) if inside(c, centre, diam)]
        tps += [max(cands[i][0] for i in hits)] if hits else []
        labels = [f"TP lesion {j + 1}" if i in hits else lab for i, lab in enumerate(labels)]
    for centre, diam in irrelevant:
        labels = ["irrelevant" if lab == "FP" and inside(c, centre, diam) else lab for c, lab in zip(cands, labels)]
    return tps, [c[0] for c, lab in zip(cands, labels) if lab == "FP"], labels


def froc(tps, fps, n_lesions, n_scans):
    """Sensitivities at FP_RATES and the CPM (LUNA16's interpolation); None without reference lesions."""
    s = np.array(sorted(set(tps) | set(fps), reverse=True))
    tp, fp = np.array(tps), np.array(fps)
    fpr = np.concatenate([[0], [(fp >= v).sum() / n_scans for v in s]])
    sens = np.concatenate([[0], [(tp >= v).sum() / max(n_lesions, 1) for v in s]])
    if n_lesions == 0:
        return {"sensitivity": None, "cpm": None, "maxFpPerScan": float(fpr[-1])}
    at = np.interp(FP_RATES, fpr, sens)
    return {"sensitivity": dict(zip(map(str, FP_RATES), at.round(4).tolist())), "cpm": round(float(at.mean()), 4),
            "maxFpPerScan": float(fpr[-1]), "maxSensitivity": float(sens[-1])}


def evaluate_scan(name, a, man, sha, pooled):
    """Reference lesions, candidates and LUNA16 scoring of one scan; adds its TP/FP scores to `pooled`."""
    folder = os.path.join(a.data, name)
    geo = Geometry(folder)
    reads, points = reader_marks(os.path.join(folder, SCANS[name]), geo)
    lesions = cluster(reads, a.merge)
    t1, cache = time.time(), os.path.join(CACHE_DIR, f"froc_prob_{name}_{sha[:12]}.npy")
    cached = os.path.exists(cache)
    hu, _meta = load_series_hu(folder)
    prob = prob_map(hu, a.model, man, cache)
    thr, min_mm3 = man.get("threshold", 0.5), man["findings"]["minVolumeMm3"]
    cands, shipped = components(prob, a.candidate_threshold, geo, min_mm3, a.score), components(prob, thr, geo, min_mm3)
    n_raw = len(cands)
    if a.lung_gate:
        lung, _body = lung_mask(hu)
        gate = lung_gate(lung, (geo.dz, geo.ps[0], geo.ps[1]), a.lung_margin if a.lung_margin is not None else man["findings"].get("lungMarginMm", 5))
        inside = lambda c: gate[tuple(np.clip(np.round(c[3]).astype(int), 0, np.array(gate.shape) - 1))]  # noqa: E731
        cands, shipped = [c for c in cands if inside(c)], [c for c in shipped if inside(c)]
    clf = man.get("candidateClassifier") if a.classifier == "auto" else None
    if clf:
        cands = classify(cands, hu, geo, clf, os.path.join(os.path.dirname(a.manifest_path), clf["file"]))
        shipped = cands if thr == a.candidate_threshold else classify(shipped, hu, geo, clf, os.path.join(os.path.dirname(a.manifest_path), clf["file"]))
        shipped = [c for c in shipped if c[0] >= clf["threshold"]]
    scan = {"trainedOn": name in TRAINED_ON, "slices": int(hu.shape[0]), "mapSeconds": round(time.time() - t1, 1), "mapCached": cached,
            "candidatesBeforeGate": n_raw, "candidatesAfterGate": len(cands),
            "readsOutlined": len(reads), "pointMarks": {k: sum(q[0] == k for q in points) for k in ("nodule<3mm", "non-nodule")},
            "lesions": [{"id": i + 1, "readers": len(les["readers"]), "centreMm": les["centre"].round(1).tolist(),
                         "diameterMm": round(les["diameter"], 1), "readerDiametersMm": [round(r["diameter"], 1) for r in les["reads"]],
                         "nearestCandidateMm": round(min((float(np.linalg.norm(c[1] - les["centre"])) for c in cands), default=-1), 1)}
                        for i, les in enumerate(lesions)],
            "candidates": [{"score": round(c[0], 5), "centreMm": c[1].round(1).tolist(), "volumeMm3": round(c[2], 1),
                            "voxel": np.round(c[3], 1).tolist(), **({"mapPeak": round(c[4], 5)} if len(c) > 4 else {})} for c in cands]}
    for k in (1, 3):
        ref = [(les["centre"], les["diameter"]) for les in lesions if len(les["readers"]) >= k]
        irr = [(les["centre"], les["diameter"]) for les in lesions if len(les["readers"]) < k]
        irr += [(q[2], POINT_DIAMETER_MM) for q in points]
        tps, fps, labels = judge(cands, ref, irr)
        stp, sfp, _ = judge(shipped, ref, irr)
        for c, lab in zip(scan["candidates"], labels):
            c[f">={k}"] = lab
        scan[f">={k}"] = summary(tps, fps, len(ref), 1, len(stp), len(sfp))
        scan[f">={k}"]["atThreshold"]["findings"] = len(shipped)
        for key, v in (("tps", tps), ("fps", fps), ("n", len(ref)), ("tp@", len(stp)), ("fp@", len(sfp))):
            pooled[k][key] += v  # LUNA16 pools candidates over scans: a scan without reference lesions still adds FPs
    return scan


def summary(tps, fps, n_lesions, n_scans, tp_at, fp_at):
    return {"lesions": n_lesions, "froc": froc(tps, fps, n_lesions, n_scans),
            "atThreshold": {"hits": tp_at, "sensitivity": tp_at / n_lesions if n_lesions else None, "fpPerScan": fp_at / n_scans}}


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", default=os.path.join(REPO_ROOT, "models", "nodule-detector-small.onnx"))
    p.add_argument("--manifest", help="default: the model's .json beside it")
    p.add_argument("--data", default=DEFAULT_DATA)
    p.add_argument("--scans", nargs="+", default=list(SCANS), choices=list(SCANS))
    p.add_argument("--candidate-threshold", type=float, default=0.5, help="components at this p form the FROC candidates")
    p.add_argument("--score", choices=["peak", "mean"], default="peak", help="candidate score: peak (the product's) or mean p")
    p.add_argument("--merge", choices=["sum", "max"], default="sum", help="merge reads closer than the sum / larger of radii")
    p.add_argument("--classifier", choices=["auto", "none"], default="auto",
                   help="auto: score with the manifest's candidateClassifier when it has one; none: map peaks only")
    p.add_argument("--lung-gate", action=argparse.BooleanOptionalAction, default=None,
                   help="drop candidates outside the dilated lungs (default: on with a classifier, off without)")
    p.add_argument("--lung-margin", type=float, help="mm; default the manifest's findings.lungMarginMm")
    p.add_argument("--trained-on", nargs="*", default=sorted(TRAINED_ON), help="the scans the model trained on (labels only)")
    p.add_argument("--out", default=os.path.join(CACHE_DIR, "detector_froc.json"))
    a = p.parse_args()
    t0 = time.time()
    a.manifest_path = a.manifest or os.path.splitext(a.model)[0] + ".json"
    man = json.load(open(a.manifest_path))
    if a.lung_gate is None:
        a.lung_gate = a.classifier == "auto" and "candidateClassifier" in man
    TRAINED_ON.clear()
    TRAINED_ON.update(a.trained_on)
    sha = hashlib.sha256(open(a.model, "rb").read()).hexdigest()
    thr = man.get("threshold", 0.5)
    os.makedirs(CACHE_DIR, exist_ok=True)
    pooled = {k: {"tps": [], "fps": [], "n": 0, "tp@": 0, "fp@": 0} for k in (1, 3)}
    scans = {name: evaluate_scan(name, a, man, sha, pooled) for name in a.scans}
    n = len(scans)
    clf = man.get("candidateClassifier") if a.classifier == "auto" else None
    report = {"model": os.path.relpath(os.path.abspath(a.model), REPO_ROOT), "sha256": sha, "threshold": thr,
              "classifier": clf, "lungGate": a.lung_gate, "trainedOn": sorted(TRAINED_ON),
              "candidateThreshold": a.candidate_threshold, "score": a.score, "merge": a.merge, "fpRates": FP_RATES,
              "pooled": {f">={k}": summary(v["tps"], v["fps"], v["n"], n, v["tp@"], v["fp@"]) for k, v in pooled.items()},
              "scans": scans, "seconds": round(time.time() - t0, 1),
              "note": "v1 trained on LIDC-IDRI-0001 (minus slices within 20 mm of reader-marked nodules), tested on LIDC-IDRI-0002: "
                      "only LIDC-IDRI-0002 is an unseen patient. Leave-one-patient-out folds for v2: train without the patient, "
                      "test on it."}
    out = a.out
    with open(out, "w") as f:
        json.dump(report, f, indent=1)
    fmt = lambda v: "-" if v is None else f"{v:.2f}"  # noqa: E731
    print(f"{report['model']} ({sha[:12]}): candidates = components at p > {a.candidate_threshold}"
          + (", in the dilated lungs" if a.lung_gate else "")
          + (f", score = the classifier's probability; operating point = map {thr} then classifier >= {clf['threshold']}" if clf else
             f", score = {a.score} p; operating point = the product rule at the manifest threshold {thr}"))
    print(f"{'scan':<38}{'set':>4}{'les':>4}" + "".join(f"{r:>6}" for r in ["1/8", "1/4", "1/2", "1", "2", "4", "8"])
          + f"{'CPM':>6}{'maxFP':>7} | @{thr}: sens FP/scan")
    rows = [(nm + (" (train patient)" if nm in TRAINED_ON else ""), s) for nm, s in scans.items()]
    for label, s in rows + [(f"pooled ({n} scans)", report["pooled"])]:
        for k in (1, 3):
            r = s[f">={k}"]
            sens = r["froc"]["sensitivity"] or {}
            print(f"{label:<38}{'>=' + str(k):>4}{r['lesions']:>4}" + "".join(f"{fmt(sens.get(str(x))):>6}" for x in FP_RATES)
                  + f"{fmt(r['froc']['cpm']):>6}{r['froc']['maxFpPerScan']:7.1f} | {fmt(r['atThreshold']['sensitivity']):>10}"
                  f"{r['atThreshold']['fpPerScan']:8.1f}")
    print(f"{report['note']}\nwrote {out} in {report['seconds']} s")


if __name__ == "__main__":
    main()

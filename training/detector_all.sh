#!/usr/bin/env bash
# nodule-detector-small v2 in one command: the candidate network and the candidate classifier for the two
# leave-one-patient-out folds and the shipped run, the FROC of v1 and v2 on the same folds, the export, the montage and
# the model card. Two jobs at a time (the machine has 2 cores); ~75 min on the shared 2-core machine.
#   bash training/detector_all.sh
# Not for diagnostic use.
set -euo pipefail
cd "$(dirname "$0")/.."
PY="nice -n 19 /usr/bin/python3"
C=${CT_CACHE:-/tmp/ct-cache}
A=lidc-idri-0002-ncct   # fold A: trained without LIDC-IDRI-0002, scored on it
B=lidc-idri-0001-cect   # fold B: trained without LIDC-IDRI-0001, scored on it
ITERS=912               # the iterations fold A reached in its 10-minute budget (fold B: 851); the shipped run is capped there
# stage 1: candidate networks (fold B ran with --minutes 10, 851 iterations; --max-iters makes a rerun iteration-exact)
$PY training/train_detector_v2.py --holdout $A --minutes 10 &
$PY training/train_detector_v2.py --holdout $B --minutes 10 &
wait
# stage 2: candidate classifiers of the folds, and the shipped network
$PY training/train_fpr.py --holdout $A &
$PY training/train_detector_v2.py --holdout none --minutes 60 --max-iters $ITERS &
wait
$PY training/train_fpr.py --holdout $B &
$PY training/train_fpr.py --holdout none &
wait
# FROC, the LUNA16 way, on the held-out patient of each fold: v2 (network + lung gate + classifier), v2's network alone,
# v1 as shipped (no gate, threshold 0.95) and v1 with v2's lung gate
# v1 = the shipped 0.1.0 (its manifest: threshold 0.95, the network alone is scored with it too)
git show 6ce4b15:models/nodule-detector-small.onnx > $C/det2_v1.onnx
git show 6ce4b15:models/nodule-detector-small.json > $C/det2_v1.json
for f in A B; do
  s=$([ $f = A ] && echo $A || echo $B)
  $PY training/detection_froc.py --model $C/det2_fold$f/net.onnx --manifest $C/det2_fold$f/nodule-detector-small.json --scans $s \
    --trained-on --out $C/det2_froc_fold$f.json
  $PY training/detection_froc.py --model $C/det2_fold$f/net.onnx --manifest $C/det2_v1.json --classifier none \
    --lung-gate --lung-margin 15 --scans $s --trained-on --out $C/det2_froc_fold${f}_netonly.json
done
$PY training/detection_froc.py --model $C/det2_v1.onnx --out $C/det2_froc_v1.json
$PY training/detection_froc.py --model $C/det2_v1.onnx --lung-gate --lung-margin 15 --out $C/det2_froc_v1_gated15.json
# ship: models/nodule-detector-small.onnx (network), models/nodule-fpr-small.onnx (classifier), manifest; fp16; card
$PY training/ship_detector_v2.py
$PY training/export_fp16.py nodule-detector-small
# the shipped model on both read patients (in-sample: it trained on both), and the node-side reference
$PY training/detection_froc.py --trained-on $A $B --out $C/det2_froc_ship_insample.json
$PY training/fpr_reference.py --froc $C/det2_froc_ship_insample.json > tests/fixtures/nodule-fpr-reference.json
/usr/bin/python3 training/detector_montage.py --froc $C/det2_froc_foldA.json --scan $A --out models/nodule-detector-small.png
/usr/bin/python3 training/card_detector.py

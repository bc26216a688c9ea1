#!/usr/bin/env bash
# Syn-CTA v2 from scratch in one command, the shipped recipe: register the real pairs; round 1 trains three
# configurations (false-enhancement weight 0.5, 1, 2) x (three leave-one-patient-out folds + the all-patient model)
# and syncta_select.py picks one by its written rule; round 2 trains the chosen configuration's four models further;
# then ONNX export, evaluation beside the unchanged input and v1 (onnxruntime-node), fp16, the model card.
# The shipped run was made on one H200 (device tool; 5.5 + 4 min of training, ~1,500 + ~3,300 iterations per model,
# 12 then 4 processes sharing the GPU); the iteration counts are pinned here so that a CPU run does the same work.
# On the 2-core machine that is 2.7 s per iteration per process, two processes side by side (batch 24, 192 px; 40
# iterations in 1.8 min, measured on a quiet machine 2026-12-01), and 12 x 1,500 + 4 x 3,300 iterations: about 12 h;
# use a GPU (DEVICE=cuda is picked automatically) or lower ROUND1_ITERS / ROUND2_ITERS and say so. Round 3 (ROUND3=1) was
# run on the 2-core machine itself: 4 processes side by side, 55 min, ~700 iterations each (4.7 s per iteration each).
set -euo pipefail
cd "$(dirname "$0")/.."
py=${PY:-/usr/bin/python3}
cache=${CT_CACHE:-/tmp/ct-cache}
nice -n 10 $py training/syncta_pairs.py
PY=$py MINUTES=100000 ITERS=${ROUND1_ITERS:-1500} OUT=  nice -n 10 bash training/syncta_gpu.sh
chosen=$($py -c "import json,sys; print(json.load(open(sys.argv[1]))['chosen'])" "$cache/syncta-round/select.json")
cp "$cache/syncta-round/select.json" "$cache/syncta_select_round1.json"
mkdir -p "$cache/syncta-round1" && cp "$cache"/syncta_v2_"$chosen"[._]* "$cache/syncta-round1/"
weight=$($py -c "import json,sys; print(json.load(open(sys.argv[1]))['args']['brightening_weight'])" "$cache/syncta_v2_${chosen}_train.json")
PY=$py MINUTES=100000 ITERS=${ROUND2_ITERS:-3300} CONFIGS="$chosen:$weight" INIT_DIR="$cache/syncta-round1" OUT= \
  nice -n 10 bash training/syncta_gpu.sh
cp "$cache/syncta-round/select.json" "$cache/syncta_select_round2.json"
# A later round goes on from an earlier one's four models: copy_as FROM TO DIR puts FROM's weights and logs in DIR under
# TO's names; export_round TAG N exports TAG's models and evaluates them into the cache's *_roundN.json (the shipped
# model is exported again at the end).
copy_as() {
  mkdir -p "$3" && for f in "$cache"/syncta_v2_"$1"[._]*; do b=$(basename "$f"); cp "$f" "$3/${b/syncta_v2_$1/syncta_v2_$2}"; done
}
export_round() {
  for h in hcc-005 hcc-007 hcc-009; do
    $py training/train_syncta.py --from-state "$cache/syncta_v2_$1_fold-$h.pt" --holdout "$h"
  done
  $py training/train_syncta.py --from-state "$cache/syncta_v2_$1.pt"
  cp "$cache/syncta_train.json" "$cache/syncta_train_round$2.json"
  nice -n 10 $py training/evaluate_syncta.py --out "$cache/syncta_eval_round$2.json"
}
# Round 3 (ROUND3=1; run on the CPU 2026-12-01, measured and not shipped: see the card): the chosen configuration's
# four models again, 30 % of the crops centred on their own false enhancements on the training data
# (train_syncta.py --hard-negative-frac), its keep rule (syncta_select.py --baseline), exported and evaluated into the
# cache's *_round3.json; the shipped model stays round 2's.
if [ "${ROUND3:-0}" = 1 ]; then
  copy_as "$chosen" "${chosen}hn" "$cache/syncta-round2"
  PY=$py MINUTES=100000 ITERS=${ROUND3_ITERS:-700} CONFIGS="${chosen}hn:$weight" INIT_DIR="$cache/syncta-round2" OUT= \
    EXTRA="--lr 0.001 --hard-negative-frac 0.3" THREADS=1 nice -n 10 bash training/syncta_gpu.sh
  $py training/syncta_select.py --tags "$chosen" "${chosen}hn" --baseline "$chosen" >"$cache/syncta_select_round3.json"
  $py training/syncta_hard_negatives.py --before "$chosen" --after "${chosen}hn"
  export_round "${chosen}hn" 3
fi
# Round 4 (ROUND4=1, after ROUND3=1; run on the CPU 2026-12-01): round 3's four models again on the corrected blood
# pools (heart seeds: HCC_005's and HCC_009's enhanced hearts had been taught as "leave unchanged"), the hard negatives
# mined on the sharpened sources too (train_syncta.py --hard-negative-sharpened), 65 min of 4 processes side by side;
# kept by syncta_select.py --baseline with --hard-negatives (rule in its docstring), into the cache's *_round4.json.
if [ "${ROUND4:-0}" = 1 ]; then
  copy_as "${chosen}hn" "${chosen}r4" "$cache/syncta-round3w"
  PY=$py MINUTES=${ROUND4_MINUTES:-65} ITERS=${ROUND4_ITERS:-100000} CONFIGS="${chosen}r4:$weight" \
    INIT_DIR="$cache/syncta-round3w" OUT= EXTRA="--lr 0.001 --hard-negative-frac 0.3 --hard-negative-sharpened" \
    THREADS=1 nice -n 10 bash training/syncta_gpu.sh
  $py training/syncta_hard_negatives.py --before "${chosen}hn" --after "${chosen}r4"
  $py training/syncta_select.py --tags "${chosen}hn" "${chosen}r4" --baseline "${chosen}hn" \
    --hard-negatives "$cache/syncta_hard_negatives_${chosen}r4.json" >"$cache/syncta_select_round4.json"
  export_round "${chosen}r4" 4
fi
# Round 5 (ROUND5=1, after ROUND3=1; run on the CPU 2026-12-01): the half-resolution network (train_syncta.py
# --half-res, 384 px crops), started from round 3's four models, 70 min of 4 processes side by side; kept or not
# against the shipped round 2 by syncta_select.py --baseline --min-bloodpool-gain 10, into the cache's *_round5.json.
if [ "${ROUND5:-0}" = 1 ]; then
  copy_as "${chosen}hn" hr1 "$cache/syncta-round5-init"
  PY=$py MINUTES=${ROUND5_MINUTES:-70} ITERS=${ROUND5_ITERS:-100000} CONFIGS="hr1:$weight" PATCH=384 \
    INIT_DIR="$cache/syncta-round5-init" OUT= EXTRA="--lr 0.001 --hard-negative-frac 0.3 --half-res" \
    THREADS=1 nice -n 10 bash training/syncta_gpu.sh
  $py training/syncta_select.py --tags "$chosen" hr1 --baseline "$chosen" --min-bloodpool-gain 10 \
    >"$cache/syncta_select_round5.json"
  export_round hr1 5
  cp "$cache/syncta_v2_hr1_train.json" "$cache/syncta_train_round5.json"
fi
# Round 6 (ROUND6=1, after round 2; rule in syncta_select.py, committed 2026-12-02 before any run): the U-Net at
# quarter resolution with the fat gate (train_syncta.py --scale 4 --fat-gate) on whole 512 px slices, from the identity,
# four processes side by side; judged against 0.2.1's card figures (--against-shipped), into the cache's *_round6.json.
# Run on the 2-core machine 2026-12-02 (65 min, ~1,600 iterations each, 2.2 min per 50): kept by its rule, not shipped
# (the card says why); on a machine whose earlier rounds' files are lost, `card_syncta_rounds.py` puts its section in.
if [ "${ROUND6:-0}" = 1 ]; then
  PY=$py MINUTES=${ROUND6_MINUTES:-65} ITERS=${ROUND6_ITERS:-100000} CONFIGS="qr1:$weight" PATCH=512 BATCH=16 OUT= \
    EXTRA="--scale 4 --fat-gate" THREADS=1 nice -n 10 bash training/syncta_gpu.sh
  $py training/syncta_select.py --tags qr1 --against-shipped >"$cache/syncta_select_round6.json"
  export_round qr1 6
fi
# Round 7 (ROUND7=1, after ROUND6=1; rule in syncta_select.py, committed 2026-12-02 before its run): round 6's four
# models trained on with the identity pairs (train_syncta.py IDENTITY: the CPTAC chest, HCC_009's arterial and HCC_007's
# portal phase as "leave unchanged") and 30 % of the crops on their own false enhancements, mined on every source as
# reconstructed and sharpened; judged against round 6, into the cache's *_round7.json, then through the node's output
# checks on the unseen chests. Run on the 2-core machine 2026-12-02 (50 min, ~1,000 iterations each, 4 processes):
# kept by its rule, not shipped (the region check rejects 3 of its 6 chest runs; the card says why); its section goes
# in with `card_syncta_rounds.py 7`.
if [ "${ROUND7:-0}" = 1 ]; then
  copy_as qr1 qr7 "$cache/syncta-round6"
  PY=$py MINUTES=${ROUND7_MINUTES:-50} ITERS=${ROUND7_ITERS:-100000} CONFIGS="qr7:$weight" PATCH=512 BATCH=16 \
    INIT_DIR="$cache/syncta-round6" OUT= THREADS=1 EXTRA="--scale 4 --fat-gate --lr 0.001 --identity-weight 0.1 \
    --hard-negative-frac 0.3 --hard-negative-sharpened" nice -n 10 bash training/syncta_gpu.sh
  $py training/syncta_select.py --tags qr1 qr7 --baseline qr1 >"$cache/syncta_select_round7.json"
  export_round qr7 7
  npm run build >/dev/null && $py training/syncta_node_checks.py --out "$cache/syncta_node_checks_round7.json"
fi
# Round 8 (ROUND8=1, after ROUND7=1; rule written 2026-12-02 before its run): round 7's recipe once more from round 7's
# four models, the hard negatives mined afresh from them (what round 7 still lights on the training series, the top of
# the chests among them); judged against round 7 by the same rule (syncta_select.py --baseline qr7), then the node's
# output checks on the unseen chests; shipped only if all six chest runs pass every check and the images show no blob.
# Run 2026-12-02 (45 min): kept by its rule, not shipped (2 of 6 chest runs fail the region check); `card_syncta_rounds.py 8`.
if [ "${ROUND8:-0}" = 1 ]; then
  copy_as qr7 qr8 "$cache/syncta-round7"
  PY=$py MINUTES=${ROUND8_MINUTES:-45} ITERS=${ROUND8_ITERS:-100000} CONFIGS="qr8:$weight" PATCH=512 BATCH=16 \
    INIT_DIR="$cache/syncta-round7" OUT= THREADS=1 EXTRA="--scale 4 --fat-gate --lr 0.0005 --identity-weight 0.1 \
    --hard-negative-frac 0.3 --hard-negative-sharpened" nice -n 10 bash training/syncta_gpu.sh
  $py training/syncta_select.py --tags qr7 qr8 --baseline qr7 >"$cache/syncta_select_round8.json"
  export_round qr8 8
  npm run build >/dev/null && $py training/syncta_node_checks.py --out "$cache/syncta_node_checks_round8.json"
fi
# Round 9 (ROUND9=1, after ROUND8=1; rule written 2026-12-02 before its run): round 8's four models trained on with the
# simulated LIDC-IDRI-0001 pair's supra-aortic arteries de-enhanced too (train_syncta.py --supra-aortic,
# simulate.supra_aortic_arteries: until now the pair taught a de-enhanced stump of the left subclavian artery above the
# arch and left the arteries above it bright in input and target, where rounds 7 and 8 light a blob at the unseen
# chests' thoracic inlets); judged against round 8 by the same rule (syncta_select.py --baseline qr8), then the node's
# output checks on the unseen chests (with the intended-use slab: nothing beyond 20 mm above the lungs); shipped only
# if all six chest runs pass every check and the images of every region the checks name show nothing a reader could
# take for a finding.
if [ "${ROUND9:-0}" = 1 ]; then
  copy_as qr8 qr9 "$cache/syncta-round8"
  PY=$py MINUTES=${ROUND9_MINUTES:-45} ITERS=${ROUND9_ITERS:-100000} CONFIGS="qr9:$weight" PATCH=512 BATCH=16 \
    INIT_DIR="$cache/syncta-round8" OUT= THREADS=1 EXTRA="--scale 4 --fat-gate --lr 0.0005 --identity-weight 0.1 \
    --hard-negative-frac 0.3 --hard-negative-sharpened --supra-aortic" nice -n 10 bash training/syncta_gpu.sh
  $py training/syncta_select.py --tags qr8 qr9 --baseline qr8 >"$cache/syncta_select_round9.json"
  export_round qr9 9
  npm run build >/dev/null && $py training/syncta_node_checks.py --out "$cache/syncta_node_checks_round9.json"
fi
for h in hcc-005 hcc-007 hcc-009; do
  $py training/train_syncta.py --from-state "$cache/syncta_v2_${chosen}_fold-$h.pt" --holdout "$h"
done
$py training/train_syncta.py --from-state "$cache/syncta_v2_$chosen.pt"
nice -n 10 $py training/evaluate_syncta.py
$py training/export_fp16.py syncta-unet-small
$py training/make_cards.py syncta

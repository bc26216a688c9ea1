#!/usr/bin/env bash
# Syn-CTA v2 from scratch in one command (~50 min on the 2-core machine): register the real pairs, train the three
# leave-one-patient-out folds and the shipped model (two runs at a time, one torch thread each), evaluate beside the
# unchanged input and v1, write the fp16 variant and the model card. Run from the repository root.
set -euo pipefail
cd "$(dirname "$0")/.."
py=/usr/bin/python3
minutes=${MINUTES:-18}
nice -n 10 $py training/syncta_pairs.py
nice -n 10 $py training/train_syncta.py --holdout hcc-005 --minutes "$minutes" &
nice -n 10 $py training/train_syncta.py --holdout hcc-007 --minutes "$minutes" &
wait
nice -n 10 $py training/train_syncta.py --holdout hcc-009 --minutes "$minutes" &
nice -n 10 $py training/train_syncta.py --minutes "$minutes" &
wait
nice -n 10 $py training/evaluate_syncta.py
$py training/export_fp16.py syncta-unet-small
$py training/make_cards.py syncta

#!/usr/bin/env bash
# One round of Syn-CTA v2 training: every configuration's three leave-one-patient-out fold models and its
# all-patient model side by side (one process each), then syncta_select.py's choice among them (select.json).
#   CONFIGS  "tag:brightening-weight ..." (default "bw05:0.5 bw1:1 bw2:2")
#   MINUTES / ITERS  wall-clock budget / iteration cap per run (defaults 5.5 / 100000); BATCH / PATCH (24 / 192)
#   INIT_DIR  go on from earlier weights of the same names (the second and third rounds)
#   EXTRA    more train_syncta.py arguments for every run (the third round: --lr 0.001 --hard-negative-frac 0.3)
#   DEVICE   cuda or cpu (default: cuda when PyTorch sees one);  DATA  ../shared/data/ct (or a packed cache)
#   OUT      where select.json goes; on the GPU machine also the chosen weights (chosen.tar), the others in fp16 and
#            the logs, exported to ONNX on the 2-core machine (train_syncta.py --from-state).
# On the GPU machine (device tool; no ../shared there, 64 MiB per call): training/syncta_pack.py writes two parts;
#   call 1: mkdir -p /tmp/syncta-pack && cp .syncta-pack/a/* /tmp/syncta-pack/      (carry .syncta-pack/a)
#   call 2: CT_CACHE=/tmp/syncta-pack bash training/syncta_gpu.sh                     (carry .syncta-pack/b)
set -euo pipefail
cd "$(dirname "$0")/.."
export CT_CACHE=${CT_CACHE:-/tmp/ct-cache} PYTHONUNBUFFERED=1
out=${OUT:-$CT_CACHE/syncta-round}
py=${PY:-python3}
data=${DATA:-../shared/data/ct}
device=${DEVICE:-$($py -c "import torch; print('cuda' if torch.cuda.is_available() else 'cpu')")}
mkdir -p "$CT_CACHE" "$out"
# the pack stands in for ../shared on the GPU machine only: here it would overwrite newer caches (on 2026-12-01 a
# pack written before the heart seeds put HCC_007's and HCC_009's old blood pools back under round 4)
[ -d "$data" ] || [ ! -d .syncta-pack/b ] || cp .syncta-pack/b/* "$CT_CACHE/"
for f in syncta_pair_hcc-005 syncta_sim_v2_lidc-idri-0001-cect; do
  [ -d "$data" ] || [ -f "$CT_CACHE/$f.npz" ] || { echo "no $data and no $CT_CACHE/$f.npz: stage the pack first"; exit 3; }
done
configs=${CONFIGS:-"bw05:0.5 bw1:1 bw2:2"}
common=(--data "$data" --device "$device" --state-only --minutes "${MINUTES:-5.5}" --max-iters "${ITERS:-100000}"
        --batch "${BATCH:-24}" --patch "${PATCH:-192}" --threads "${THREADS:-1}" ${EXTRA:-})
tags=()
for c in $configs; do
  tag=${c%%:*}; bw=${c#*:}; tags+=("$tag")
  for h in hcc-005 hcc-007 hcc-009 all; do
    hold=(); [ "$h" = all ] || hold=(--holdout "$h")
    init=(); [ -z "${INIT_DIR:-}" ] || init=(--init-state "$INIT_DIR/syncta_v2_${tag}$([ "$h" = all ] || echo "_fold-$h").pt")
    $py training/train_syncta.py "${common[@]}" --tag "$tag" --brightening-weight "$bw" "${hold[@]}" "${init[@]}" \
      >"$CT_CACHE/log_${tag}_$h.txt" 2>&1 &
  done
done
wait
tail -n 3 "$CT_CACHE"/log_*.txt
$py training/syncta_select.py --data "$data" --device "$device" --tags "${tags[@]}" >"$out/select.json"
chosen=$($py -c "import json,sys; print(json.load(open(sys.argv[1]))['chosen'])" "$out/select.json")
echo "chosen: $chosen"
[ -n "${OUT:-}" ] || exit 0
(cd "$CT_CACHE" && tar cf "$out/chosen.tar" syncta_v2_"$chosen"[._]*)
(cd "$CT_CACHE" && tar czf "$out/logs.tgz" log_*.txt syncta_v2_*_train.json)
$py - "$CT_CACHE" "$chosen" "$out/others-fp16.tar" <<'PY'
import os, sys, tarfile, tempfile, torch
cache, chosen, dest = sys.argv[1:]
with tempfile.TemporaryDirectory() as td, tarfile.open(dest, "w") as tar:
    for f in sorted(os.listdir(cache)):
        if f.endswith(".pt") and not f.startswith((f"syncta_v2_{chosen}_", f"syncta_v2_{chosen}.")):
            sd = {k: v.half() if v.is_floating_point() else v for k, v in torch.load(os.path.join(cache, f)).items()}
            torch.save(sd, os.path.join(td, f)); tar.add(os.path.join(td, f), arcname=f)
PY
ls -la "$out"

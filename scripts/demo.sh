#!/usr/bin/env bash
# The main job on an embedded default, from a fresh Debian/Ubuntu machine:
#   Orthanc (OS packages, started from orthanc-config/ on loopback) + ct-enhance serving, a real CT series sent in,
#   and what each pipeline made of it by itself: the derived series it stored, or why it skipped the series (outside
#   the model's intended use, measured) or rejected the model's output (its checks, with the figures). Both keep
#   running so you can look; `scripts/demo.sh stop` ends them.
# The series: ../shared/data/ct/lidc-idri-0002-ncct when present, else the real head CT that Debian's
# invesalius-examples ships, converted to a DICOM series.
# Ports (override with the variables): Orthanc HTTP 8042, DICOM 4242, ct-enhance API 8190.
# The OHIF Viewer (@ohif/app's prebuilt dist from the npm registry, 50 MB once, kept in .ohif/) is served by Orthanc's
# plugin at /ohif/ under the same login; the demo ends with the OHIF link of the processed study (CT_ENHANCE_OHIF=0:
# no OHIF).
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)
state="$root/.demo"
ORTHANC_HTTP_PORT=${ORTHANC_HTTP_PORT:-8042}
ORTHANC_DICOM_PORT=${ORTHANC_DICOM_PORT:-4242}
CT_ENHANCE_PORT=${CT_ENHANCE_PORT:-8190}
orthanc_url="http://127.0.0.1:$ORTHANC_HTTP_PORT"
api_url="http://127.0.0.1:$CT_ENHANCE_PORT"

stop() {
  for name in ct-enhance orthanc; do
    if [ -f "$state/$name.pid" ]; then kill "$(cat "$state/$name.pid")" 2>/dev/null || true; rm -f "$state/$name.pid"; fi
  done
}
if [ "${1:-}" = "stop" ]; then stop; echo "demo stopped (its Orthanc and ledger are kept in $state until the next run)"; exit 0; fi

series_dir="$root/../shared/data/ct/lidc-idri-0002-ncct"
bash scripts/install-system-deps.sh
command -v curl >/dev/null || { echo "curl is needed" >&2; exit 1; }
# as in scripts/test.sh: onnxruntime-node's install skipped even if npm stops passing .npmrc's setting to it
[ -d node_modules ] || ONNXRUNTIME_NODE_INSTALL=${ONNXRUNTIME_NODE_INSTALL:-skip} npm ci --no-audit --no-fund
npm run build --silent
ohif_dir=""
if [ "${CT_ENHANCE_OHIF:-1}" != "0" ]; then ohif_dir=$(node dist/tools/ohif-prepare.js); fi

stop
# Each run starts from an empty Orthanc and an empty job ledger: a series processed by an earlier run (an older model,
# older code) would otherwise show that run's jobs, since ct-enhance never processes a series twice by itself.
rm -rf "$state/orthanc-db" "$state/ct-enhance"
mkdir -p "$state/orthanc-db"
[ -f "$state/credentials" ] || echo "demo:$(head -c 12 /dev/urandom | od -An -tx1 | tr -d ' \n')" > "$state/credentials"
creds=$(cat "$state/credentials")
token_file="$state/api-token"
[ -f "$token_file" ] || head -c 16 /dev/urandom | od -An -tx1 | tr -d ' \n' > "$token_file"
token=$(cat "$token_file")

ORTHANC_HTTP_PORT=$ORTHANC_HTTP_PORT ORTHANC_DICOM_PORT=$ORTHANC_DICOM_PORT ORTHANC_STORAGE_DIR="$state/orthanc-db" \
ORTHANC_USERNAME=${creds%%:*} ORTHANC_PASSWORD=${creds#*:} ORTHANC_STABLE_AGE=5 ORTHANC_REMOTE_ACCESS=false \
ORTHANC_PYTHON_SCRIPT="$root/orthanc-config/ct-enhance-explorer.py" CT_ENHANCE_OHIF_DIR="$ohif_dir" CT_ENHANCE_API_URL="$api_url" CT_ENHANCE_API_TOKEN="$token" \
  setsid Orthanc "$root/orthanc-config/orthanc.json" > "$state/orthanc.log" 2>&1 < /dev/null &
echo $! > "$state/orthanc.pid"
for _ in $(seq 1 60); do curl -sf -u "$creds" "$orthanc_url/system" >/dev/null && break; sleep 0.5; done
curl -sf -u "$creds" "$orthanc_url/system" >/dev/null || { echo "Orthanc did not start; see $state/orthanc.log" >&2; exit 1; }

CT_ENHANCE_ORTHANC_URL=$orthanc_url CT_ENHANCE_ORTHANC_USERNAME=${creds%%:*} CT_ENHANCE_ORTHANC_PASSWORD=${creds#*:} \
CT_ENHANCE_DATA_DIR="$state/ct-enhance" CT_ENHANCE_PORT=$CT_ENHANCE_PORT CT_ENHANCE_API_TOKEN="$token" \
CT_ENHANCE_STABLE_AGE_SECONDS=5 \
  setsid node dist/cli.js serve > "$state/ct-enhance.log" 2>&1 < /dev/null &
echo $! > "$state/ct-enhance.pid"
for _ in $(seq 1 120); do curl -sf "$api_url/health" >/dev/null && break; sleep 0.5; done
curl -sf "$api_url/health" >/dev/null || { echo "ct-enhance did not start; see $state/ct-enhance.log" >&2; exit 1; }

if [ ! -d "$series_dir" ]; then
  series_dir="$state/invesalius-head-ct"
  [ -d "$series_dir" ] || node dist/tools/invesalius-series.js --out "$series_dir"
fi
echo "sending $(ls "$series_dir"/*.dcm | wc -l) instances of $(basename "$series_dir") to Orthanc..."
source_series=$(ls "$series_dir"/*.dcm | xargs -P 4 -I{} curl -sf -u "$creds" -X POST --data-binary @{} "$orthanc_url/instances" \
  | sed -n 's/.*"ParentSeries" *: *"\([^"]*\)".*/\1/p' | sort -u | head -1)
source_uid=$(curl -sf -u "$creds" "$orthanc_url/series/$source_series" | sed -n 's/.*"SeriesInstanceUID" *: *"\([^"]*\)".*/\1/p')
echo "source series: $orthanc_url/app/explorer.html#series?uuid=$source_series"
echo "waiting for ct-enhance to process it by itself (stable after 5 s, then fetch, probe, model, checks, store)..."
settled='const j = JSON.parse(require("fs").readFileSync(0, "utf8")); process.exit(j.length > 0 && j.every((x) => ["done", "failed", "skipped", "rejected"].includes(x.state)) ? 0 : 1)'
for _ in $(seq 1 900); do
  jobs=$(curl -sf -H "Authorization: Bearer $token" "$api_url/jobs?series=$source_uid" || echo '[]')
  echo "$jobs" | node -e "$settled" && break
  sleep 1
done
echo "Orthanc login: $creds (in $state/credentials); API: $api_url (token in $token_file)"
echo "logs: $state/orthanc.log, $state/ct-enhance.log; stop with: bash scripts/demo.sh stop"
if [ -n "$ohif_dir" ]; then
  study_uid=$(curl -sf -u "$creds" "$orthanc_url/series/$source_series/study" | sed -n 's/.*"StudyInstanceUID" *: *"\([^"]*\)".*/\1/p' | head -1)
  echo "OHIF, source and output side by side (Orthanc login): $orthanc_url/ohif/viewer?StudyInstanceUIDs=$study_uid&hangingProtocolId=ct-enhance-side-by-side"
fi
echo "$jobs" | ORTHANC_URL="$orthanc_url" ORTHANC_AUTH="$creds" API_URL="$api_url" API_TOKEN="$token" PREVIEWS="$state/ct-enhance/previews" \
  node scripts/demo-summary.mjs

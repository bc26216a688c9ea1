#!/usr/bin/env bash
# Installs what ct-enhance needs from the OS packages (Debian/Ubuntu): Orthanc with its DICOMweb, Python, Web Viewer
# and PostgreSQL plugins, PostgreSQL (the scale-out PACS test starts its own cluster), Debian's docker-compose (checks
# the compose file), Chromium (the browser test of the Orthanc Explorer panel), and the DICOM validators the tests
# judge our output with. Idempotent; uses sudo when not root.
set -euo pipefail
# python3-torch/-onnx/-numpy: the CTA-GAN generator export and its parity test (~230 MB download, ~1 GB installed).
# python3-skimage: the image-metric tests compare our SSIM/PSNR with scikit-image's, live (~27 MB download).
# python3-pydicom: the training scripts read the shared series (training/README.md; ~1 MB).
# postgresql + orthanc-postgresql: Orthanc with its index and storage in PostgreSQL (tests/helpers/postgresql.ts makes a
# throw-away cluster in a temp folder; the package's own cluster and service are not used and are stopped below).
# docker-compose: Debian's Compose 1.29 (Python; no engine, which is only recommended) resolves and validates
# docker-compose.yml in tests/unit/site-containers.test.ts; nothing is run in containers here.
# invesalius-examples: a real head CT (~19 MB), the demo's series without ../shared and the tests' non-chest anatomy.
# redis-server: the distributed mode's queue (README "Scaling out"); its test starts one on loopback (~1.5 MB).
packages=(orthanc orthanc-dicomweb orthanc-python orthanc-webviewer dcmtk dicom3tools chromium python3-torch python3-onnx python3-numpy python3-skimage python3-pydicom invesalius-examples postgresql orthanc-postgresql docker-compose redis-server)
missing=()
for p in "${packages[@]}"; do dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p"); done
[ ${#missing[@]} -eq 0 ] && exit 0
sudo=""; [ "$(id -u)" -eq 0 ] || sudo="sudo"
echo "installing: ${missing[*]}" >&2
$sudo apt-get update -qq
# The packages' own service is not wanted (ct-enhance starts Orthanc from orthanc-config/ on its own ports).
DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
# Where an init system runs, postgresql's package starts a cluster on port 5432 that nothing here uses: stop it and keep
# it from starting at boot (in containers policy-rc.d usually stops the package from starting it in the first place).
if command -v systemctl >/dev/null 2>&1 && [ -d /run/systemd/system ]; then
  $sudo systemctl disable --now postgresql.service >/dev/null 2>&1 || true
elif command -v pg_ctlcluster >/dev/null 2>&1; then
  for cluster in $(pg_lsclusters -h 2>/dev/null | awk '$4 == "online" {print $1 "/" $2}'); do
    $sudo pg_ctlcluster "${cluster%/*}" "${cluster#*/}" stop || true
  done
fi

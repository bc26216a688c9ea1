#!/usr/bin/env bash
# Installs what ct-enhance needs from the OS packages (Debian/Ubuntu): Orthanc with its DICOMweb and Python plugins,
# and the DICOM validators the tests judge our output with. Idempotent; uses sudo when not root.
set -euo pipefail
packages=(orthanc orthanc-dicomweb orthanc-python dcmtk dicom3tools)
[ "${1:-}" = "--with-demo-data" ] && packages+=(invesalius-examples)
missing=()
for p in "${packages[@]}"; do dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p"); done
[ ${#missing[@]} -eq 0 ] && exit 0
sudo=""; [ "$(id -u)" -eq 0 ] || sudo="sudo"
echo "installing: ${missing[*]}" >&2
$sudo apt-get update -qq
# The packages' own service is not wanted (ct-enhance starts Orthanc from orthanc-config/ on its own ports).
DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null

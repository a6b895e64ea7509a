#!/usr/bin/env bash
# Install the system packages sedtk needs, from Debian/Ubuntu's archive:
#   espeak-ng            speech synthesis for the synthetic demo corpus (sedtk data synth)
#   ffmpeg               audio extraction from MELD's mp4 clips
#   default-jre-headless a Java runtime for METEOR/PTB tokenizer/SPICE (pycocoevalcap)
# Packages already on PATH are left alone, so this works without root where they are present.
# Without root and with something missing it prints the apt-get line to run and exits 1.
set -euo pipefail

declare -A provides=([espeak-ng]=espeak-ng [ffmpeg]=ffmpeg [java]=default-jre-headless)
missing=()
for cmd in espeak-ng ffmpeg java; do
  command -v "$cmd" >/dev/null 2>&1 || missing+=("${provides[$cmd]}")
done
if [ ${#missing[@]} -eq 0 ]; then
  echo "install_deps: espeak-ng, ffmpeg and java are present"
  exit 0
fi
echo "install_deps: installing ${missing[*]}"
if [ "$(id -u)" -eq 0 ]; then
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
elif command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then
  sudo apt-get update -qq
  sudo DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
else
  echo "install_deps: not root; please run:  sudo apt-get install ${missing[*]}" >&2
  exit 1
fi
echo "install_deps: done"

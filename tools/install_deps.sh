#!/usr/bin/env bash
# Install the system packages sedtk needs, from Debian/Ubuntu's archive:
#   espeak-ng            speech synthesis for the synthetic demo corpus (sedtk data synth)
#   ffmpeg               audio extraction from MELD's mp4 clips
#   default-jre-headless a Java runtime for METEOR/PTB tokenizer/SPICE (pycocoevalcap)
#   chromium             only when asked (--browser or SEDTK_BROWSER=1): the headless browser of
#                        tests/report/test_report_browser.py and bench/bench_report.py
# Packages already on PATH are left alone, so this works without root where they are present.
# Without root and with something missing it prints the apt-get line to run and exits 1.
set -euo pipefail

browser=${SEDTK_BROWSER:-0}
for arg in "$@"; do
  case $arg in
    --browser) browser=1 ;;
    *) echo "usage: $0 [--browser]   (or SEDTK_BROWSER=1 $0)" >&2; exit 2 ;;
  esac
done

declare -A provides=([espeak-ng]=espeak-ng [ffmpeg]=ffmpeg [java]=default-jre-headless [chromium]=chromium)
cmds=(espeak-ng ffmpeg java)
[ "$browser" = 1 ] && cmds+=(chromium)
missing=()
for cmd in "${cmds[@]}"; do
  command -v "$cmd" >/dev/null 2>&1 || missing+=("${provides[$cmd]}")
done
if [ ${#missing[@]} -eq 0 ]; then
  echo "install_deps: ${cmds[*]} are present"
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

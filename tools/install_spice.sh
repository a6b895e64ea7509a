#!/usr/bin/env bash
# Install the Stanford CoreNLP 3.6.0 jars that SPICE (pycocoevalcap) needs, so that `sedtk score`
# reports the "S" column of the paper's Table 1.
#
# pycocoevalcap's Spice downloads them itself on first use; that cannot work offline, so sedtk
# never triggers it and reports `spice: null` instead.  Run this once where there is internet, or
# download the zip elsewhere and pass it with --zip.
#
#   tools/install_spice.sh                     # download (~390 MB) and install
#   tools/install_spice.sh --zip FILE.zip      # install from an already downloaded zip
#   PYTHON=/path/to/venv/bin/python tools/install_spice.sh   # the Python whose pycocoevalcap to complete
#   SPICE_CORENLP_URL=<mirror of stanford-corenlp-full-2015-12-09.zip> tools/install_spice.sh
#
# It extracts stanford-corenlp-3.6.0.jar and stanford-corenlp-3.6.0-models.jar into
# <site-packages>/pycocoevalcap/spice/lib (which must be writable), checks both jars, and does
# nothing when they are already there.  SPICE 1.0 itself needs Java 8 or 11: on Java >= 16 its
# cache fails with InaccessibleObjectException (sedtk then reports spice: null with that error).
set -euo pipefail

URL="${SPICE_CORENLP_URL:-https://nlp.stanford.edu/software/stanford-corenlp-full-2015-12-09.zip}"
CORENLP="stanford-corenlp-full-2015-12-09"
JARS=(stanford-corenlp-3.6.0.jar stanford-corenlp-3.6.0-models.jar)
PYTHON="${PYTHON:-python3}"
ZIP=""

log() { echo "install_spice: $*" >&2; }
die() { log "error: $*"; exit 1; }

while [ $# -gt 0 ]; do
  case "$1" in
    --zip) [ $# -ge 2 ] || die "--zip needs a file"; ZIP="$2"; shift 2 ;;
    -h|--help) sed -n '2,17p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) die "unknown argument $1 (see --help)" ;;
  esac
done

LIB="$("$PYTHON" -c 'import os, pycocoevalcap.spice as s; print(os.path.join(os.path.dirname(s.__file__), "lib"))')" \
  || die "$PYTHON cannot import pycocoevalcap (pip install pycocoevalcap, or set PYTHON=)"
[ -d "$LIB" ] || die "$LIB does not exist (is pycocoevalcap complete?)"

if [ -s "$LIB/${JARS[0]}" ] && [ -s "$LIB/${JARS[1]}" ]; then
  log "already installed in $LIB"
  exit 0
fi
[ -w "$LIB" ] || die "$LIB is not writable; run as its owner (e.g. the account that installed the environment)"

WORK="$(mktemp -d "${TMPDIR:-/tmp}/install_spice.XXXXXX")"
trap 'rm -rf "$WORK"' EXIT

if [ -z "$ZIP" ]; then
  ZIP="$WORK/$CORENLP.zip"
  log "downloading $URL"
  if command -v curl >/dev/null 2>&1; then
    curl -fL --retry 3 -o "$ZIP" "$URL" || die "download failed; fetch $URL elsewhere and use --zip"
  elif command -v wget >/dev/null 2>&1; then
    wget -O "$ZIP" "$URL" || die "download failed; fetch $URL elsewhere and use --zip"
  else
    die "neither curl nor wget found; fetch $URL elsewhere and use --zip"
  fi
fi
[ -f "$ZIP" ] || die "$ZIP: file not found"

# Extract and verify with Python's zipfile (no unzip needed); copy into place only when both are good.
"$PYTHON" - "$ZIP" "$WORK" "$CORENLP" "${JARS[@]}" <<'PY' || die "could not extract the jars from $ZIP"
import sys, zipfile
zip_path, work, top, *jars = sys.argv[1:]
with zipfile.ZipFile(zip_path) as z:
    for jar in jars:
        member = f"{top}/{jar}"
        if member not in z.namelist():
            sys.exit(f"{zip_path}: {member} not in the archive")
        with z.open(member) as src, open(f"{work}/{jar}", "wb") as dst:
            while chunk := src.read(1 << 20):
                dst.write(chunk)
        with zipfile.ZipFile(f"{work}/{jar}") as j:
            bad = j.testzip()
            if bad is not None:
                sys.exit(f"{jar}: corrupt entry {bad}")
PY

for jar in "${JARS[@]}"; do
  cp "$WORK/$jar" "$LIB/.$jar.tmp"
  mv "$LIB/.$jar.tmp" "$LIB/$jar"
done
log "installed ${JARS[*]} into $LIB"

if command -v java >/dev/null 2>&1; then
  ver="$(java -version 2>&1 | sed -n 's/.*version "\([0-9]*\)\(\.[0-9]*\)*.*/\1/p' | head -1)"
  [ "$ver" = "1" ] && ver=8
  if [ -n "$ver" ] && [ "$ver" -ge 16 ] 2>/dev/null; then
    log "warning: java is version $ver; SPICE 1.0 needs Java 8 or 11 (put one first on PATH when scoring)"
  fi
else
  log "warning: no java on PATH; SPICE, METEOR and the PTB tokenizer need one (tools/install_deps.sh)"
fi

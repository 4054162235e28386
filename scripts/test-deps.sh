#!/usr/bin/env bash
# Finds, or installs from Debian's packages, the programs kubesim's tests run
# beside it: a headless Chromium that loads the HTML report, and for live
# mode's tests (tests/live_containerd.rs, as root) containerd, runc and
# busybox-static (the /bin/busybox live images are built from). Installing needs
# root (or sudo) and a package mirror; without them it says what to install.
set -euo pipefail

# program -> Debian package that provides it
needs=(
  "chromium-headless-shell chromium-headless-shell"
  "containerd containerd"
  "runc runc"
  "/bin/busybox busybox-static"
)

have_any() {
  case "$1" in
    chromium-headless-shell) command -v chromium-headless-shell >/dev/null 2>&1 || command -v chromium >/dev/null 2>&1 ;;
    /*) [ -x "$1" ] ;;
    *) command -v "$1" >/dev/null 2>&1 ;;
  esac
}

missing=()
for entry in "${needs[@]}"; do
  read -r program package <<<"$entry"
  have_any "$program" || missing+=("$package")
done
[ ${#missing[@]} -eq 0 ] && exit 0

if [ "$(id -u)" -eq 0 ]; then
  sudo=()
elif command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then
  sudo=(sudo -n)
else
  echo "kubesim's tests need: ${missing[*]} (Debian packages); install them as root:" >&2
  echo "  apt-get install --no-install-recommends ${missing[*]}" >&2
  exit 1
fi
if ! command -v apt-get >/dev/null 2>&1; then
  echo "kubesim's tests need: ${missing[*]}; this machine has no apt-get, install them with its package manager" >&2
  exit 1
fi
echo "installing ${missing[*]} (needed by the tests)" >&2
export DEBIAN_FRONTEND=noninteractive
"${sudo[@]}" apt-get update -qq
"${sudo[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null

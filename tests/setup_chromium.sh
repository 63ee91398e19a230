#!/usr/bin/env bash
# Install Debian's headless-capable `chromium` for the report rendering test, when it can be installed.
# Exits 0 when /usr/bin/chromium is there afterwards, 1 when it is not (the test then skips with a reason).
set -u
[[ -x /usr/bin/chromium ]] && exit 0
if ! command -v apt-get >/dev/null 2>&1; then
  echo "setup_chromium: no apt-get on this machine; cannot install chromium" >&2; exit 1
fi
SUDO=""
if [[ $(id -u) -ne 0 ]]; then
  if command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then SUDO="sudo -n"; else
    echo "setup_chromium: not root and no passwordless sudo; cannot install chromium" >&2; exit 1
  fi
fi
if ! apt-cache show chromium >/dev/null 2>&1; then
  $SUDO apt-get update -qq >/dev/null 2>&1 || true
fi
if ! apt-cache show chromium >/dev/null 2>&1; then
  echo "setup_chromium: the package 'chromium' is not available from the configured apt sources" >&2; exit 1
fi
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends chromium >/dev/null 2>&1 \
  || { echo "setup_chromium: apt-get install -y chromium failed" >&2; exit 1; }
[[ -x /usr/bin/chromium ]] || { echo "setup_chromium: installed, but /usr/bin/chromium is missing" >&2; exit 1; }

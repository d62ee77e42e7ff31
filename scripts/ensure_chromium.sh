#!/usr/bin/env bash
# Install Debian's headless-capable Chromium when it is missing (used by the report's rendering test).
# Idempotent and non-interactive; needs root (or sudo) only when it has to install.
set -euo pipefail

if command -v chromium >/dev/null 2>&1; then
    exit 0
fi

export DEBIAN_FRONTEND=noninteractive
SUDO=""
if [ "$(id -u)" -ne 0 ]; then
    if command -v sudo >/dev/null 2>&1; then
        SUDO="sudo -E"
    else
        echo "ensure_chromium: chromium is missing and this user cannot install it (not root, no sudo)" >&2
        exit 1
    fi
fi

$SUDO apt-get update -qq
$SUDO apt-get install -y -qq chromium >/dev/null
command -v chromium >/dev/null 2>&1 || { echo "ensure_chromium: chromium still not on PATH" >&2; exit 1; }

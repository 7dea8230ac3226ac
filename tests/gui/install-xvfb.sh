#!/usr/bin/env bash
# A virtual X display for the napari tests (tests/unit/test_napari.py), Debian/Ubuntu, needs root:
# Xvfb, Mesa's software OpenGL and the xcb libraries Qt's xcb platform plugin loads.
# pytest-xvfb (the test extra) starts Xvfb for the test session when it is installed.
set -euo pipefail

PACKAGES=(xvfb libgl1-mesa-dri libegl1 libxkbcommon-x11-0 libxcb-cursor0 libxcb-icccm4
    libxcb-image0 libxcb-keysyms1 libxcb-randr0 libxcb-render-util0 libxcb-shape0
    libxcb-xfixes0 libxcb-xinerama0 libxcb-xkb1 libfontconfig1 libdbus-1-3)

missing=()
for p in "${PACKAGES[@]}"; do
    dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
    if [ "$(id -u)" -ne 0 ]; then
        echo "install-xvfb.sh: needs root to install ${missing[*]}" >&2
        exit 1
    fi
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
command -v Xvfb >/dev/null

#!/usr/bin/env bash
# Installs the Debian 12 packages batchgate needs to build, test and demo,
# and only those that are missing. Safe to run again; needs root (or sudo)
# only when something has to be installed.
set -euo pipefail

packages=(
  # build
  cmake g++ make pkg-config
  libboost1.81-dev libboost-test1.81-dev libboost-json1.81-dev libboost-url1.81-dev
  libboost-program-options1.81-dev libnghttp2-dev libexpat1-dev libyaml-cpp-dev libssl-dev
  # tests and demo
  curl libxml2-utils
  # benchmarks
  wrk nghttp2-client
)

missing=()
for p in "${packages[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$p")
  fi
done

if [ ${#missing[@]} -eq 0 ]; then
  echo "setup: all ${#packages[@]} packages already installed"
  exit 0
fi

# libboost-all-dev (1.74) conflicts with the 1.81 packages.
if dpkg-query -W -f='${Status}' libboost1.74-dev 2>/dev/null | grep -q "install ok installed"; then
  echo "setup: libboost1.74-dev is installed and conflicts with Boost 1.81; remove it first" >&2
  exit 1
fi

sudo=""
if [ "$(id -u)" -ne 0 ]; then sudo="sudo"; fi
echo "setup: installing ${missing[*]}"
$sudo apt-get update -qq
DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}"
echo "setup: done"

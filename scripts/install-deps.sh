#!/usr/bin/env bash
# Installs the Debian packages edgeline needs to build, test and run the demo, if missing
# (faketime: the clock-jump test; openssl: test certificates for the TLS tests; clang-14 and its
# runtime: the libFuzzer targets of scripts/fuzz.sh; dpkg-dev, groff-base and lintian:
# scripts/package.sh and the package test, which checks the man page and runs lintian).
set -euo pipefail
PACKAGES=(
  build-essential cmake pkg-config git
  libsqlite3-dev sqlite3 libcurl4-openssl-dev curl
  libpaho-mqttpp-dev libpaho-mqtt-dev nlohmann-json3-dev libzstd-dev zlib1g-dev
  googletest libgtest-dev
  librdkafka-dev kcat libcpp-httplib-dev
  jq bc
  clang-14 libclang-rt-14-dev
  faketime openssl
  dpkg-dev groff-base lintian
  mosquitto mosquitto-clients influxdb influxdb-client
)
missing=()
for p in "${PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
  echo "installing: ${missing[*]}"
  SUDO=""
  if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi
  $SUDO apt-get update -qq
  # Package scripts must not start system-wide mosquitto/influxd services: tests start their own.
  DEBIAN_FRONTEND=noninteractive RUNLEVEL=1 $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

#!/usr/bin/env bash
# The test command: installs what a fresh Debian 12 machine lacks for the tests, then runs every test.
set -euo pipefail
cd "$(dirname "$0")"
if [[ "${BT_SKIP_APT:-0}" != "1" ]] && command -v apt-get >/dev/null 2>&1 && [[ "$(id -u)" == "0" ]]; then
  need=()
  for pkg in python3-grpcio python3-msgpack-numpy python3-numpy fortunes-min; do
    dpkg -s "$pkg" >/dev/null 2>&1 || need+=("$pkg")
  done
  if (( ${#need[@]} )); then
    echo "test.sh: installing ${need[*]} (Python peers for interop tests; fortunes-min text corpus, docs/corpus.md)"
    (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}") >/dev/null \
      || echo "test.sh: apt-get failed; Python interop tests will report it"
  fi
fi
dotnet test Bittensor.Actors.sln -c Release "$@"

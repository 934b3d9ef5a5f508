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
# The whole output streams as it comes; a failed run then repeats each failed test's name and the start of its
# message at the very end, where a CI that keeps only the tail of the output still shows what failed.
log="$(mktemp)"
trap 'rm -f "$log"' EXIT
set +e
dotnet test Bittensor.Actors.sln -c Release "$@" 2>&1 | tee "$log"
rc=${PIPESTATUS[0]}
set -e
if (( rc != 0 )); then
  # A test's name may hold spaces (a theory's arguments), so a failed line is "  Failed <anything> [<duration>]".
  export failed='^  Failed [A-Za-z_].* \[[^]]*\]$'
  echo
  echo "test.sh: dotnet test exited with $rc. The start of each failed test's message:"
  awk '$0 ~ ENVIRON["failed"] { p = 1; n = 0 }
       p && /^  (Stack Trace|Standard Output Messages):/ { p = 0 }
       p && n < 8 { print substr($0, 1, 240); n++ }' "$log"
  echo "test.sh: each test assembly's result:"
  grep -E "^(Test Run (Successful|Failed|Aborted)\.|Total tests: |     (Passed|Failed): )|\.dll \(\.NETCoreApp" "$log" \
    | sed -E 's/^Test run for .*\/([^/]+\.dll) .*/\1/' | paste -sd' ' | sed -E 's/ (Bittensor)/\n\1/g' | cut -c1-200 || true
  echo "test.sh: aborts, crashes and build errors:"
  grep -E "Test Run Aborted|test run was aborted|Test host process crashed|[Cc]atastrophic failure|: error [A-Z]+[0-9]+|Build FAILED" "$log" \
    | sort -u | head -20 | cut -c1-300 || true
  echo "test.sh: the failed tests:"
  grep -E "$failed" "$log" | sort -u || echo "  (none named: the run failed outside a test; see above)"
fi
exit "$rc"

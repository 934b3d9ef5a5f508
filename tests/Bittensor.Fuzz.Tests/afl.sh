#!/usr/bin/env bash
# Coverage-guided fuzzing with AFL++ through SharpFuzz 2.3.0 (docs/fuzzing.md): publishes the fuzz project, instruments
# the assemblies each target exercises, runs afl-fuzz on each target for a bounded time and prints what it did
# (executions, paths, crashes, hangs) from afl-fuzz's own fuzzer_stats. Not part of CI (needs afl++ and the sharpfuzz
# tool); CI runs the same targets through the seeded driver (FuzzTests).
#
# Usage:
#   apt-get install -y afl++ && dotnet tool install --global SharpFuzz.CommandLine --version 2.3.0
#   SECONDS_PER_TARGET=600 TARGETS="tensor jsonrpc" nice -n 10 tests/Bittensor.Fuzz.Tests/afl.sh
# Environment: TARGETS (default "tensor msgpack jsonrpc"), SECONDS_PER_TARGET (default 300), WORK (default a temp
# folder, kept: the findings are in $WORK/findings-TARGET/default/{crashes,hangs}/), SKIP_PUBLISH=1 (reuse $WORK/app).
# A crash: replay it with `dotnet $WORK/app/Bittensor.Fuzz.Tests.dll repro TARGET FILE`, then add it to
# Corpus/TARGET/regressions/ and a test in FuzzRegressionTests.cs.
set -euo pipefail
cd "$(dirname "$0")/../.."

TARGETS=${TARGETS:-tensor msgpack jsonrpc}
SECONDS_PER_TARGET=${SECONDS_PER_TARGET:-300}
WORK=${WORK:-$(mktemp -d /tmp/afl.XXXXXX)}
export PATH="$PATH:$HOME/.dotnet/tools"
command -v afl-fuzz >/dev/null || { echo "afl.sh: afl-fuzz not found (apt-get install -y afl++)" >&2; exit 2; }
command -v sharpfuzz >/dev/null || { echo "afl.sh: sharpfuzz not found (dotnet tool install --global SharpFuzz.CommandLine --version 2.3.0)" >&2; exit 2; }

# The assemblies whose code a target runs (instrumented: their branches feed afl's coverage map).
assemblies() {
  case "$1" in
    tensor|msgpack|h2|h2client) echo Bittensor.Protocol.dll ;;
    axon) echo Bittensor.Protocol.dll Bittensor.Actors.dll ;;
    scale|metadata) echo Bittensor.Core.dll Bittensor.Chain.dll ;;
    keyfile) echo Bittensor.Wallet.dll ;;
    jsonrpc) echo Bittensor.Chain.Node.dll ;;
    hocon) echo Bittensor.Actors.dll ;;
    cli) echo btcli.dll ;;
    *) echo "afl.sh: unknown target $1" >&2; exit 2 ;;
  esac
}

app="$WORK/app"
if [[ "${SKIP_PUBLISH:-0}" != "1" ]]; then
  rm -rf "$app"
  dotnet publish tests/Bittensor.Fuzz.Tests/Bittensor.Fuzz.Tests.csproj -c Release -o "$app" -v q -nologo >/dev/null
  # sharpfuzz refuses an assembly it already instrumented; a fresh publish has none.
  for a in $(for t in $TARGETS; do assemblies "$t"; done | tr ' ' '\n' | sort -u); do sharpfuzz "$app/$a"; done
fi

# afl-fuzz's checks of the host (core_pattern, CPU governor, affinity) are for a dedicated box; this one is shared.
export AFL_SKIP_BIN_CHECK=1 AFL_I_DONT_CARE_ABOUT_MISSING_CRASHES=1 AFL_SKIP_CPUFREQ=1 AFL_NO_AFFINITY=1 AFL_NO_UI=1

echo "# afl.sh: $(date -u '+%Y-%m-%d %H:%M:%S UTC'), afl-fuzz $({ afl-fuzz -h 2>&1 || true; } | grep -m1 -oE '\+\+[0-9.a-z]+'), load average $(cut -d' ' -f1-3 /proc/loadavg), work $WORK"
echo "| target | seconds | executions | execs/s | corpus (paths) | edges found | stability | crashes | hangs |"
echo "|---|---:|---:|---:|---:|---:|---:|---:|---:|"
for t in $TARGETS; do
  out="$WORK/findings-$t"
  rm -rf "$out"
  # -V: stop after the time; -t 5000: a .NET start and the first JIT of a target take a few 100 ms on a loaded box.
  # The target's tokens (FuzzTargets.cs) as an afl dictionary; targets without tokens run without one.
  dict=()
  dotnet "$app/Bittensor.Fuzz.Tests.dll" dict "$t" "$WORK/$t.dict"
  [[ -s "$WORK/$t.dict" ]] && dict=(-x "$WORK/$t.dict")
  afl-fuzz -i "tests/Bittensor.Fuzz.Tests/Corpus/$t" -o "$out" "${dict[@]}" -t 5000 -m none -V "$SECONDS_PER_TARGET" \
    -- dotnet "$app/Bittensor.Fuzz.Tests.dll" afl "$t" >"$WORK/afl-$t.log" 2>&1 || { echo "afl.sh: afl-fuzz failed on $t:" >&2; tail -20 "$WORK/afl-$t.log" >&2; exit 1; }
  s="$out/default/fuzzer_stats"
  v() { awk -F': *' -v k="$1" '$1 ~ "^"k" *$" { print $2 }' "$s"; }
  echo "| $t | $(v run_time) | $(v execs_done) | $(v execs_per_sec) | $(v corpus_count) | $(v edges_found) | $(v stability) | $(v saved_crashes) | $(v saved_hangs) |"
done
echo "# done: $(date -u '+%Y-%m-%d %H:%M:%S UTC'), load average $(cut -d' ' -f1-3 /proc/loadavg); findings under $WORK/findings-*/default/{crashes,hangs}"

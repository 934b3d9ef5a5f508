#!/usr/bin/env bash
# The market verdict of `btcli demo` in process and as processes (`--processes`: node, servers, a cluster server of
# 1 front + 2 workers, validator as OS processes), side by side for several seeds (docs/cluster.md, issue 10 "Done
# when": --processes ends with the same verdict as the in-process demo).
#
#   SEEDS="1 2 3" EPOCHS=3 BUSY=2 benchmarks/demo-verdicts.sh
#
# BUSY=N runs N `yes >/dev/null` beside the demos (N = 2 keeps both cores of the project's box busy).
# BTCLI: the command that runs btcli (default: dotnet on the Release build of this checkout).
# Prints one line per seed and mode (market_worked, paid servers, incentive of each server, wall time, load) and a
# final line saying whether every seed agreed. Exit 0 when every pair agrees, 1 otherwise, 2 when a demo failed.
set -u
here=$(cd "$(dirname "$0")/.." && pwd)
SEEDS=${SEEDS:-"1 2 3"}
EPOCHS=${EPOCHS:-3}
BUSY=${BUSY:-0}
BTCLI=${BTCLI:-"dotnet $here/src/Bittensor.Cli/bin/Release/net10.0/btcli.dll"}
out=$(mktemp -d /tmp/demo-verdicts.XXXXXX)
busy=()
cleanup() { for p in "${busy[@]}"; do kill "$p" 2>/dev/null; done; }
trap cleanup EXIT
for _ in $(seq 1 "$BUSY"); do yes >/dev/null & busy+=($!); done
echo "# demo verdicts: $(date -u '+%F %T') UTC, $(nproc) cpus, BUSY=$BUSY, epochs $EPOCHS, $(uptime | sed 's/.*load/load/'), output in $out"
agree=1
failed=0
summary() {
  python3 - "$1" <<'PY'
import json, sys
r = json.load(open(sys.argv[1]))
servers = [n for n in r["neurons"] if n["role"] in ("server", "bad_server")]
paid = [f'{n["uid"]}{"(" + n["kind"] + ")" if n.get("kind") else ""}{"[cluster]" if n.get("cluster") else ""}={n["incentive"]:.4f}' for n in servers]
useful_paid = sorted(n["uid"] for n in servers if not n.get("kind") and n["incentive"] > 0)
print(f'{str(r["market_worked"]).lower()}\t{",".join(map(str, useful_paid))}\t{" ".join(paid)}\t{r["wall_time_s"]} s')
PY
}
for seed in $SEEDS; do
  declare -A verdict=()
  for mode in inproc processes; do
    flags=()
    [ "$mode" = processes ] && flags=(--processes)
    file="$out/seed$seed-$mode.json"
    # shellcheck disable=SC2086
    if HOME="$out/home" $BTCLI demo "${flags[@]}" --epochs "$EPOCHS" --json --seed "$seed" >"$file" 2>"$out/seed$seed-$mode.err"; then
      line=$(summary "$file")
      verdict[$mode]=$(cut -f1 <<<"$line")
      echo "seed $seed $mode: market_worked=$(cut -f1 <<<"$line") useful_paid=[$(cut -f2 <<<"$line")] incentive: $(cut -f3 <<<"$line"), wall $(cut -f4 <<<"$line"), $(uptime | sed 's/.*load/load/')"
    else
      echo "seed $seed $mode: FAILED (exit $?): $(tail -n 3 "$out/seed$seed-$mode.err" | tr '\n' ' ')"
      failed=1
    fi
  done
  if [ -n "${verdict[inproc]:-}" ] && [ -n "${verdict[processes]:-}" ]; then
    if [ "${verdict[inproc]}" = "${verdict[processes]}" ]; then echo "seed $seed: same verdict"; else echo "seed $seed: DIFFERENT verdicts"; agree=0; fi
  fi
  unset verdict
done
echo "# done: $(date -u '+%F %T') UTC, $(uptime | sed 's/.*load/load/')"
[ $failed = 1 ] && exit 2
[ $agree = 1 ] && exit 0 || exit 1

#!/usr/bin/env bash
# Chaos (issue 13 C): a small network of real processes on loopback, then kill -9 of its parts.
#   node       btcli localnet run --localnet.path W/localnet --rpc.port P --block_time 1
#   servers    btcli run server --wallet.name sK --netuid 1 --axon.ip 127.0.0.2 --axon.port 0 --metrics.port 0 ... (SERVERS of them)
#   validator  btcli run validator --wallet.name v --netuid 1 --stake 100 --metrics.port 0 --report_batches ...
# every role with --subtensor.chain_endpoint ws://127.0.0.1:P and the demo's small model (bittensor.demo.server_model).
# Phases:
#   (b) kill -9 of server 1 while the validator runs; DOWN seconds later it is started again (same wallet, same state
#       folder, a new port announced on chain). Sampled every SAMPLE s from the validator's /metrics: its batches, its
#       dendrite calls to the killed server by code (Backoff = answered locally, no packet sent), the circuit's opens,
#       and the server's score (pipeline.peer.score, by uid).
#   (c) kill -9 of the node while every role runs; NODE_DOWN seconds later it is started again on the same port and
#       folder. Checked: the roles are still running, their chain clients reconnected (bittensor_chain_reconnects_total),
#       the chain's block number and neurons are those from before the kill (nothing lost), and blocks go on.
# Usage (after `dotnet build -c Release src/Bittensor.Cli`):  nice -n 10 benchmarks/chaos.sh
# Environment: SERVERS (2), DOWN (60), NODE_DOWN (10), SAMPLE (10), BTCLI, KEEP (1: keep the work folder).
set -euo pipefail
cd "$(dirname "$0")/.."

SERVERS=${SERVERS:-2}
DOWN=${DOWN:-60}
NODE_DOWN=${NODE_DOWN:-10}
SAMPLE=${SAMPLE:-10}
BTCLI=${BTCLI:-src/Bittensor.Cli/bin/Release/net10.0/btcli.dll}
KEEP=${KEEP:-0}
[[ -f "$BTCLI" ]] || { echo "chaos.sh: $BTCLI not found; build first: dotnet build -c Release src/Bittensor.Cli" >&2; exit 2; }

W=$(mktemp -d)
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill -TERM "$p" 2>/dev/null || true; done
  for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
  if [[ "$KEEP" == "1" ]]; then echo "# work folder kept: $W"; else rm -rf "$W"; fi
}
trap cleanup EXIT

ts() { date -u '+%H:%M:%S'; }
log() { echo "# $(ts) $*"; }
bt() { dotnet "$BTCLI" "$@"; }
# wait_line FILE REGEX SECONDS: prints the first matching line, fails when it does not come.
wait_line() {
  for _ in $(seq 1 $(($3 * 10))); do
    if grep -m1 -E "$2" "$1" 2>/dev/null; then return 0; fi
    sleep 0.1
  done
  echo "chaos.sh: no line /$2/ in $1 within $3 s:" >&2; tail -20 "$1" >&2; return 1
}
metrics_url() { grep -m1 -oE 'metrics on http://[^ ]+' "$1" | cut -d' ' -f3; }
# sum_metric URL NAME [LABEL...]: sum of the samples of NAME holding every given label (e.g. 'code="Success"').
sum_metric() {
  local url=$1 name=$2; shift 2
  curl -s "$url" | awk -v n="$name{" -v f="$(IFS=$'\x01'; echo "$*")" 'BEGIN { k = split(f, want, "\001") }
    index($0, n) == 1 { for (i = 1; i <= k; i++) if (want[i] != "" && !index($0, want[i])) next; s += $NF } END { printf "%.0f", s }'
}

port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
endpoint="ws://127.0.0.1:$port"
start_node() {
  dotnet "$BTCLI" localnet run --localnet.path "$W/localnet" --rpc.port "$port" --block_time 1 >>"$W/node.log" 2>&1 &
  node_pid=$!; pids+=("$node_pid")
}
cat >"$W/role.conf" <<'EOF'
akka.loglevel = WARNING
bittensor.metagraph.save = off
bittensor.model { d_model = 64, layers = 1, heads = 2, feed_forward = 128, max_sequence = 64, dropout = 0, threads = 1, max_delay = 2ms, checkpoint.every_steps = 0 }
bittensor.validator.pipeline { batch_size = 4, sequence_length = 16 }
EOF

echo "# chaos: $(date -u '+%Y-%m-%d %H:%M:%S UTC'), $(nproc) cpus, load average $(cut -d' ' -f1-3 /proc/loadavg); btcli $BTCLI; node $endpoint"
start_node
wait_line "$W/node.log" '^rpc: ' 120 >/dev/null
over=(--subtensor.chain_endpoint "$endpoint")
names=(v); for i in $(seq 1 "$SERVERS"); do names+=("s$i"); done
for n in "${names[@]}"; do
  bt wallet new_coldkey --wallet.name "$n" --wallet.path "$W/wallets" --n_words 12 --no_password >/dev/null
  bt wallet new_hotkey --wallet.name "$n" --wallet.path "$W/wallets" --n_words 12 --no_password >/dev/null
  bt localnet faucet --wallet.name "$n" --wallet.path "$W/wallets" --amount 5000 "${over[@]}" >/dev/null
done
bt subnets create --wallet.name v --wallet.path "$W/wallets" "${over[@]}" >"$W/subnet.log" 2>&1 || { cat "$W/subnet.log" >&2; exit 1; }
log "wallets funded, subnet created: $(tail -1 "$W/subnet.log")"

start_server() {
  dotnet "$BTCLI" run server --wallet.name "s$1" --wallet.path "$W/wallets" --netuid 1 --axon.ip 127.0.0.2 --axon.port 0 --metrics.port 0 \
    --neuron.full_path "$W/state-s$1" --config "$W/role.conf" "${over[@]}" >>"$W/s$1.log" 2>&1 &
  eval "s$1_pid=$!"; pids+=("$!")
}
# One at a time: the subnet admits one registration per block (TooManyRegistrationsThisBlock).
for i in $(seq 1 "$SERVERS"); do start_server "$i"; log "$(wait_line "$W/s$i.log" 'server running on subnet' 300)"; done
dotnet "$BTCLI" run validator --wallet.name v --wallet.path "$W/wallets" --netuid 1 --stake 100 --metrics.port 0 --report_batches \
  --neuron.full_path "$W/state-v" --config "$W/role.conf" "${over[@]}" >"$W/v.log" 2>&1 &
v_pid=$!; pids+=("$v_pid")
log "$(wait_line "$W/v.log" 'validator running on subnet' 300)"
wait_line "$W/v.log" '^batch ' 300 >/dev/null
vm=$(metrics_url "$W/v.log")
s1_hot=$(python3 -c "import json,sys; print(json.load(open('$W/wallets/s1/hotkeys/default'))['ss58Address'])")
s1_uid=$(bt metagraph --netuid 1 "${over[@]}" --json 2>/dev/null | python3 -c "
import json,sys
m = json.load(sys.stdin)
ns = m.get('neurons', m) if isinstance(m, dict) else m
for n in ns:
    if n.get('hotkey') == '$s1_hot': print(n.get('uid')); break
" || true)
log "validator metrics $vm; server 1 = $s1_hot (uid ${s1_uid:-?})"

row() {
  local batches calls ok backoff other opens score
  batches=$(grep -c '^batch ' "$W/v.log" || true)
  ok=$(sum_metric "$vm" bittensor_dendrite_calls_total "peer=\"$s1_hot\"" 'method="Forward"' 'code="Success"')
  backoff=$(sum_metric "$vm" bittensor_dendrite_calls_total "peer=\"$s1_hot\"" 'method="Forward"' 'code="Backoff"')
  calls=$(sum_metric "$vm" bittensor_dendrite_calls_total "peer=\"$s1_hot\"" 'method="Forward"')
  other=$((calls - ok - backoff))
  opens=$(sum_metric "$vm" bittensor_dendrite_backoffs_total "peer=\"$s1_hot\"")
  scores=$(curl -s "$vm" | awk -v u="uid=\"${s1_uid:-x}\"" 'index($0, "bittensor_pipeline_peer_score{") == 1 {
      if (index($0, u)) mine = $NF; else { other += $NF; n++ } }
    END { printf "%s | %s", (mine == "" ? "-" : sprintf("%.4f", mine)), (n == 0 ? "-" : sprintf("%.4f", other / n)) }')
  echo "| $(ts) | $1 | $batches | $ok | $other | $backoff | $opens | $scores |"
}
echo
echo "## (b) kill -9 of server 1 while the validator runs"
echo
echo "| time | phase | validator batches | Forward to s1: Success | other codes (reached the wire or failed to) | Backoff (answered locally, not sent) | circuit opens | s1 score | other servers' mean score |"
echo "|---|---|---:|---:|---:|---:|---:|---:|---:|"
for _ in 1 2 3; do row "up"; sleep "$SAMPLE"; done
s1=$(eval echo "\$s1_pid"); kill -9 "$s1"; wait "$s1" 2>/dev/null || true
log "kill -9 server 1 (pid $s1)" >&2
t_end=$(( $(date +%s) + DOWN ))
while (( $(date +%s) < t_end )); do row "down"; sleep "$SAMPLE"; done
mv "$W/s1.log" "$W/s1.before-kill.log"
start_server 1
log "server 1 restarted: $(wait_line "$W/s1.log" 'server running on subnet' 300 | tail -1)" >&2
for _ in $(seq 1 9); do row "back"; sleep "$SAMPLE"; done
kill -0 "$v_pid" || { echo "chaos.sh: the validator died" >&2; tail -30 "$W/v.log" >&2; exit 1; }

echo
echo "## (c) kill -9 of the node while every role runs"
echo
block() { curl -s -H 'content-type: application/json' -d '{"jsonrpc":"2.0","id":1,"method":"chain_getHeader","params":[]}' "http://127.0.0.1:$port" \
  | python3 -c 'import json,sys; print(int(json.load(sys.stdin)["result"]["number"], 16))' 2>/dev/null || echo "-"; }
neurons() { bt metagraph --netuid 1 "${over[@]}" 2>/dev/null | grep -m1 -oE 'n = [0-9]+' | cut -d' ' -f3 || true; }
b0=$(block); n0=$(neurons); r0=$(sum_metric "$vm" bittensor_chain_reconnects_total); batches0=$(grep -c '^batch ' "$W/v.log")
log "before: block $b0, neurons listed $n0, validator reconnects $r0, batches $batches0"
kill -9 "$node_pid"; wait "$node_pid" 2>/dev/null || true
log "kill -9 node (pid $node_pid); down for $NODE_DOWN s"
sleep "$NODE_DOWN"
alive=0; for p in "$v_pid" "$(eval echo "\$s1_pid")" $(for i in $(seq 2 "$SERVERS"); do eval echo "\$s${i}_pid"; done); do kill -0 "$p" 2>/dev/null && alive=$((alive + 1)); done
log "roles still running while the node is down: $alive of $((SERVERS + 1)); validator batches meanwhile: $(( $(grep -c '^batch ' "$W/v.log") - batches0 ))"
start_node
wait_line "$W/node.log" '^rpc: ' 120 >/dev/null
b1=$(block)
log "node restarted: block $b1 (before the kill: $b0)"
sleep $((SAMPLE * 3))
b2=$(block); n2=$(neurons); r2=$(sum_metric "$vm" bittensor_chain_reconnects_total)
log "$((SAMPLE * 3)) s later: block $b2, neurons listed $n2, validator reconnects $r2 (before $r0), batches $(grep -c '^batch ' "$W/v.log")"
for i in $(seq 1 "$SERVERS"); do log "server $i: $(grep -ciE 'reconnect|connection (lost|closed)' "$W/s$i.log" || true) reconnect lines; last: $(tail -1 "$W/s$i.log")"; done
log "validator: last: $(grep -v '^batch ' "$W/v.log" | tail -1)"
alive=0; for p in "$v_pid" "$(eval echo "\$s1_pid")" $(for i in $(seq 2 "$SERVERS"); do eval echo "\$s${i}_pid"; done); do kill -0 "$p" 2>/dev/null && alive=$((alive + 1)); done
log "roles running at the end: $alive of $((SERVERS + 1))"
echo "# errors/warnings in the roles' logs:"; grep -hiE 'error|exception|warn' "$W"/s*.log "$W/v.log" | sort | uniq -c | sort -rn | head -15 || true
echo "# done: $(date -u '+%Y-%m-%d %H:%M:%S UTC'), load average $(cut -d' ' -f1-3 /proc/loadavg)"

#!/usr/bin/env python3
"""Runs the real 2021 dendrite (bittensor 1.5.0: bittensor/_dendrite, _receptor, _serializer, utils/stats) for
benchmarks/fanout.sh: one forward_text round to N axons at a time, the anchor for our dendrite's fan-out.

The bittensor sources are NOT part of this repository: pass a checkout of bittensor 1.5.0 with --src (as for
axon2021.py). Only the dendrite, receptor, receptor pool, serializer and stats modules are loaded from it; the
package's own __init__ (wallet, subtensor, wandb, dataset, ...) is not run. What stands in for the rest:
  - bittensor.proto / bittensor.grpc: the checkout's own message definitions (as axon2021.py) and a client stub for
    the `Bittensor` service's Forward/Backward over the same channel the receptor makes (grpc.insecure_channel).
  - the wallet: only its hotkey; its sign() returns a zero signature without signing, so the anchor is an upper
    bound for the 2021 dendrite (the 2021 client signs every call with sr25519) and the axons must run with
    verification off.
  - bittensor.logging: no-ops (2021's default: rpc logging off); bittensor.utils.networking: get_external_ip fails
    (the receptor then dials the endpoint's ip as given).
  - endpoints: plain objects with the fields the receptor reads (ip, port, hotkey, uid), hotkeys axon-<i>.

Usage: dendrite2021.py --src DIR --targets FILE (one host:port per line) [--axons 16,64] [--rounds 50] [--warmup 5]
                       [--shape 1,16] [--network_dim 1024] [--timeout 30]
Prints one markdown row per count, as the `fanout` harness does: round p50/p99, rounds/s, answers ok, this process's
CPU (time.process_time: all threads) per answered request over the measured rounds.
Needs Debian's python3-grpcio python3-protobuf python3-msgpack python3-msgpack-numpy python3-torch python3-loguru.
"""
import argparse
import ast
import importlib
import os
import sys
import time
import types


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--src", required=True, help="a bittensor 1.5.0 checkout (the folder holding bittensor/)")
    p.add_argument("--targets", required=True, help="file with one host:port per line")
    p.add_argument("--axons", default="")
    p.add_argument("--rounds", type=int, default=50)
    p.add_argument("--warmup", type=int, default=5)
    p.add_argument("--shape", default="1,16")
    p.add_argument("--network_dim", type=int, default=1024)
    p.add_argument("--timeout", type=float, default=30)
    p.add_argument("--pids", default="", help="processes serving the axons: their CPU over the measured rounds, per call")
    args = p.parse_args()

    pkg = os.path.join(args.src, "bittensor")
    if not os.path.isfile(os.path.join(pkg, "_dendrite", "dendrite_impl.py")):
        print(f"dendrite2021: {pkg}/_dendrite/dendrite_impl.py not found (pass a bittensor 1.5.0 checkout with --src)", file=sys.stderr)
        return 2
    try:
        targets = []
        with open(args.targets, encoding="utf-8") as f:
            for line in f:
                line = line.strip()
                if not line:
                    continue
                host, _, port = line.rpartition(":")
                if not host or not port.isdigit() or not 1 <= int(port) <= 65535:
                    raise ValueError(f"'{line}' is not host:port")
                targets.append((host, int(port)))
        if not targets:
            raise ValueError("no host:port given")
        counts = [int(x) for x in (args.axons or str(len(targets))).split(",")]
        if any(n < 1 or n > len(targets) for n in counts):
            raise ValueError(f"--axons must lie between 1 and the {len(targets)} targets")
        shape = [int(x) for x in args.shape.split(",")]
        pids = [int(x) for x in args.pids.split(",") if x]
    except (OSError, ValueError) as e:
        print(f"dendrite2021: {e}", file=sys.stderr)
        return 2

    import logging
    logging.basicConfig(level=logging.WARNING)
    import grpc
    import torch
    torch.set_num_threads(1)
    from google.protobuf import descriptor_pb2, descriptor_pool, message_factory

    generated = open(os.path.join(pkg, "_proto", "bittensor_pb2.py"), encoding="utf-8").read()
    serialized = None
    for node in ast.walk(ast.parse(generated)):
        if isinstance(node, ast.keyword) and node.arg == "serialized_pb" and isinstance(node.value, ast.Constant):
            serialized = node.value.value
            break
    if serialized is None:
        print("dendrite2021: no serialized_pb in bittensor/_proto/bittensor_pb2.py", file=sys.stderr)
        return 2
    fdp = descriptor_pb2.FileDescriptorProto.FromString(serialized)
    pool = descriptor_pool.DescriptorPool()
    pool.Add(fdp)
    file_desc = pool.FindFileByName(fdp.name)

    def message_class(name):
        desc = pool.FindMessageTypeByName(name)
        if hasattr(message_factory, "GetMessageClass"):
            return message_factory.GetMessageClass(desc)
        return message_factory.MessageFactory(pool).GetPrototype(desc)

    Tensor, TensorMessage = message_class("Tensor"), message_class("TensorMessage")

    bt = types.ModuleType("bittensor")
    bt.__path__ = [pkg]
    sys.modules["bittensor"] = bt
    bt.__version_as_int__ = 150
    bt.__blocktime__ = 12
    bt.__network_dim__ = args.network_dim
    proto = types.ModuleType("bittensor.proto")
    proto.Tensor = Tensor
    proto.TensorMessage = TensorMessage
    for name, enum in file_desc.enum_types_by_name.items():
        setattr(proto, name, types.SimpleNamespace(**{v.name: v.number for v in enum.values}))
    bt.proto = proto

    class BittensorStub:
        def __init__(self, channel):
            self.Forward = channel.unary_unary("/Bittensor/Forward", request_serializer=TensorMessage.SerializeToString,
                                               response_deserializer=TensorMessage.FromString)
            self.Backward = channel.unary_unary("/Bittensor/Backward", request_serializer=TensorMessage.SerializeToString,
                                                response_deserializer=TensorMessage.FromString)

    bt.grpc = types.SimpleNamespace(BittensorStub=BittensorStub)
    failures = {}

    def rpc_log(*_, **k):
        code = k.get("code")
        if k.get("is_response") and code not in (None, proto.ReturnCode.Success):
            failures[f"{code}: {k.get('message')}"] = failures.get(f"{code}: {k.get('message')}", 0) + 1

    noop = lambda *a, **k: None  # noqa: E731
    bt.logging = types.SimpleNamespace(rpc_log=rpc_log, create_receptor_log=noop, update_receptor_log=noop,
                                       destroy_receptor_log=noop, success=noop)
    utils = types.ModuleType("bittensor.utils")
    utils.__path__ = [os.path.join(pkg, "utils")]
    sys.modules["bittensor.utils"] = utils
    bt.utils = utils
    networking = types.ModuleType("bittensor.utils.networking")

    def no_external_ip():
        raise RuntimeError("no external ip in the benchmark")

    networking.get_external_ip = no_external_ip
    sys.modules["bittensor.utils.networking"] = networking
    utils.networking = networking

    class Endpoint:
        def __init__(self, uid, hotkey, ip, port):
            self.version, self.uid, self.hotkey, self.ip, self.port = 150, uid, hotkey, ip, port
            self.ip_type, self.modality, self.coldkey = 4, 0, ""

    bt.Endpoint = Endpoint
    bt.serializer = importlib.import_module("bittensor._serializer").serializer
    receptor_impl = importlib.import_module("bittensor._receptor.receptor_impl")
    pool_impl = importlib.import_module("bittensor._receptor.receptor_pool_impl")
    bt.Receptor = receptor_impl.Receptor
    bt.ReceptorPool = pool_impl.ReceptorPool
    receptor_pkg = importlib.import_module("bittensor._receptor")
    bt.receptor = receptor_pkg.receptor
    bt.receptor_pool = receptor_pkg.receptor_pool
    dendrite_impl = importlib.import_module("bittensor._dendrite.dendrite_impl")

    hotkey = types.SimpleNamespace(ss58_address="5GrwvaEF5zXb26Fz9rcQpDWS57CtERHpNehXCPcNoHGKutQY",  # //Alice
                                   sign=lambda message: "0x" + "00" * 64)  # not signed: see the module doc
    wallet = types.SimpleNamespace(hotkey=hotkey)
    config = types.SimpleNamespace(dendrite=types.SimpleNamespace(timeout=args.timeout, requires_grad=False))
    dendrite = dendrite_impl.Dendrite(config=config, wallet=wallet, receptor_pool=bt.receptor_pool(wallet=wallet))
    endpoints = [Endpoint(i, f"axon-{i}", host, port) for i, (host, port) in enumerate(targets)]
    tokens = torch.arange(1, shape[0] * shape[1] + 1, dtype=torch.int64).view(shape[0], shape[1])
    success = proto.ReturnCode.Success

    print(f"# dendrite2021 (bittensor 1.5.0 from {args.src}) rounds={args.rounds} warmup={args.warmup} shape=[{args.shape}] "
          f"answer=[{shape[0]},{shape[1]},{args.network_dim}] {len(targets)} targets, load average {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    print("| axons | p50 round ms | p99 round ms | rounds/s | answers ok | client CPU µs per answer | n/a | n/a | axon processes' CPU µs per call |")
    print("|---:|---:|---:|---:|---:|---:|---:|---:|---:|")

    def servers_ticks():
        total = 0
        for pid in pids:
            with open(f"/proc/{pid}/stat", encoding="ascii") as f:
                fields = f.read().rsplit(")", 1)[1].split()
            total += int(fields[11]) + int(fields[12])
        return total
    for n in counts:
        chosen = endpoints[:n]
        for _ in range(args.warmup):
            dendrite.forward_text(endpoints=chosen, inputs=tokens)
        times, ok = [], 0
        s0, cpu0, wall0 = servers_ticks(), time.process_time(), time.perf_counter()
        for _ in range(args.rounds):
            t0 = time.perf_counter()
            _, codes, _ = dendrite.forward_text(endpoints=chosen, inputs=tokens)
            times.append((time.perf_counter() - t0) * 1e3)
            ok += int((codes == success).sum())
        cpu, wall = time.process_time() - cpu0, time.perf_counter() - wall0
        servers = f"{(servers_ticks() - s0) * 1e6 / os.sysconf('SC_CLK_TCK') / (args.rounds * n):.1f}" if pids else "n/a"
        times.sort()
        p = lambda q: times[min(len(times) - 1, int(q * len(times)))]  # noqa: E731
        per = f"{cpu * 1e6 / ok:.1f}" if ok else "n/a"
        print(f"| {n} | {p(0.5):.2f} | {p(0.99):.2f} | {args.rounds / wall:.1f} | {ok}/{args.rounds * n} | {per} | n/a | n/a | {servers} |", flush=True)
        if failures:
            print(f"# {n} axons, not Success: {', '.join(f'{k}={v}' for k, v in failures.items())}", flush=True)
            failures.clear()
    return 0


if __name__ == "__main__":
    sys.exit(main())

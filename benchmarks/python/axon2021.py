#!/usr/bin/env python3
"""Runs the real 2021 axon (bittensor 1.5.0: bittensor/_axon, _serializer, _threadpool, utils/stats) for benchmarks/race.sh.

The bittensor sources are NOT part of this repository: pass a checkout of bittensor 1.5.0 (e.g. commit 619cbbd09
of github.com/opentensor/bittensor, `__version__ = '1.5.0'`) with --src. Only the axon, serializer, thread-pool and
stats modules are loaded from it; the package's own __init__ (wallet, subtensor, wandb, dataset, ...) is not run.
What stands in for the rest, and why:
  - bittensor.proto / bittensor.grpc: the checkout's own message definitions (the FileDescriptorProto serialized in
    its bittensor_pb2.py, loaded into a fresh descriptor pool: the generated module itself needs protobuf 3.x and
    Debian has 4.21), and a generic gRPC handler for the `Bittensor` service's Forward/Backward.
  - substrateinterface.Keypair: its verify() always answers True, so the signature check is stubbed out (the
    issue's anchor: an upper bound for the 2021 axon); the interceptor's header order, version and 1 ms nonce
    rules still run.
  - bittensor.logging.rpc_log: a no-op (2021's default: rpc logging off).
  - the wallet: only its hotkey address.
The served model is the same echo as `btcli axon serve --model echo`: TEXT [b, s] -> float32 [b, s, dim] with
value token * 1e-3 + d * 1e-6. No priority function (the 2021 default axon without a priority thread pool).

Usage: axon2021.py --src DIR [--ip 127.0.0.1] [--port 0] [--network_dim 1024] [--max_workers 10]
                   [--maximum_concurrent_rpcs 400]
Prints "serving on IP:PORT" on stderr, then serves until SIGTERM/SIGINT.
Needs Debian's python3-grpcio python3-protobuf python3-msgpack python3-msgpack-numpy python3-torch python3-loguru.
"""
import argparse
import importlib
import os
import signal
import sys
import threading
import types
from concurrent import futures


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--src", required=True, help="a bittensor 1.5.0 checkout (the folder holding bittensor/)")
    p.add_argument("--ip", default="127.0.0.1")
    p.add_argument("--port", type=int, default=0)
    p.add_argument("--network_dim", type=int, default=1024)
    p.add_argument("--max_workers", type=int, default=10)
    p.add_argument("--maximum_concurrent_rpcs", type=int, default=400)
    args = p.parse_args()

    pkg = os.path.join(args.src, "bittensor")
    if not os.path.isfile(os.path.join(pkg, "_axon", "axon_impl.py")):
        print(f"axon2021: {pkg}/_axon/axon_impl.py not found (pass a bittensor 1.5.0 checkout with --src)", file=sys.stderr)
        return 2

    import logging
    logging.basicConfig(level=logging.WARNING)  # grpcio logs a handler's exception here
    import grpc
    import torch
    torch.set_num_threads(1)

    # The checkout's own messages: the FileDescriptorProto its generated bittensor_pb2.py carries (serialized_pb),
    # loaded into a fresh pool (the generated module itself needs protobuf 3.x; Debian has 4.21).
    import ast
    from google.protobuf import descriptor_pb2, descriptor_pool, message_factory
    generated = open(os.path.join(pkg, "_proto", "bittensor_pb2.py"), encoding="utf-8").read()
    serialized = None
    for node in ast.walk(ast.parse(generated)):
        if isinstance(node, ast.keyword) and node.arg == "serialized_pb" and isinstance(node.value, ast.Constant):
            serialized = node.value.value
            break
    if serialized is None:
        print("axon2021: no serialized_pb in bittensor/_proto/bittensor_pb2.py", file=sys.stderr)
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

    # The package object: its submodules (_axon, _serializer, ...) load from the checkout; its __init__ does not run.
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

    class BittensorServicer:
        def Forward(self, request, context):
            context.abort(grpc.StatusCode.UNIMPLEMENTED, "Forward")

        def Backward(self, request, context):
            context.abort(grpc.StatusCode.UNIMPLEMENTED, "Backward")

    def add_servicer(servicer, server):
        handlers = {
            name: grpc.unary_unary_rpc_method_handler(getattr(servicer, name), request_deserializer=TensorMessage.FromString,
                                                      response_serializer=TensorMessage.SerializeToString)
            for name in ("Forward", "Backward")
        }
        server.add_generic_rpc_handlers((grpc.method_handlers_generic_handler("Bittensor", handlers),))

    bt.grpc = types.SimpleNamespace(BittensorServicer=BittensorServicer, add_BittensorServicer_to_server=add_servicer)
    def rpc_log(*_, **k):  # 2021's default is off; AXON2021_DEBUG=1 prints the failures
        if os.environ.get("AXON2021_DEBUG") and k.get("code") not in (None, proto.ReturnCode.Success):
            print(f"axon2021: code {k.get('code')}: {k.get('message')}", file=sys.stderr, flush=True)

    bt.logging = types.SimpleNamespace(rpc_log=rpc_log, success=lambda *a, **k: None)

    class Keypair:  # the stub: every signature verifies
        def __init__(self, ss58_address=None, **_):
            self.ss58_address = ss58_address

        def verify(self, data, signature):
            return True

    sys.modules["substrateinterface"] = types.SimpleNamespace(Keypair=Keypair)

    bt.serializer = importlib.import_module("bittensor._serializer").serializer
    threadpool = importlib.import_module("bittensor._threadpool")
    bt.prioritythreadpool = threadpool.prioritythreadpool
    axon_pkg = importlib.import_module("bittensor._axon")
    bt.axon = axon_pkg.axon
    axon_impl = importlib.import_module("bittensor._axon.axon_impl")

    dim = args.network_dim
    offsets = torch.arange(dim, dtype=torch.float64) * 1e-6

    def forward_text(inputs_x, pubkey=None):  # 1.5.0 before 2021-10-07 also passes the caller's pubkey
        return (inputs_x.to(torch.float64).unsqueeze(-1) * 1e-3 + offsets).to(torch.float32)

    wallet = types.SimpleNamespace(hotkey=types.SimpleNamespace(ss58_address="5FHneW46xGXgs5mUiveU4sbTyGBzmstUspZC92UhjJM694ty"))
    pool = futures.ThreadPoolExecutor(max_workers=args.max_workers)
    server = grpc.server(pool, interceptors=(axon_pkg.AuthInterceptor(blacklist=None),),
                         maximum_concurrent_rpcs=args.maximum_concurrent_rpcs)
    axon = axon_impl.Axon(wallet=wallet, server=server, ip=args.ip, port=args.port,
                          forwards=[forward_text, None, None], backwards=[None, None, None])
    add_servicer(axon, server)
    port = server.add_insecure_port(f"{args.ip}:{args.port}")
    server.start()
    print(f"axon2021 (bittensor 1.5.0 from {args.src}) serving on {args.ip}:{port}", file=sys.stderr, flush=True)

    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    stop.wait()
    server.stop(0)
    return 0


if __name__ == "__main__":
    sys.exit(main())

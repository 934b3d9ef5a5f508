#!/usr/bin/env python3
"""A gRPC server (Debian python3-grpcio) that answers /Bittensor/Forward with the request metadata keys it
sees, in order, as TensorMessage.message (JSON list). Shows what a Python axon's interceptor receives in
handler_call_details.invocation_metadata. Prints "PORT <n>" once listening; stops when stdin closes.

Usage: metadata_probe_server.py
"""
import json
import sys
from concurrent import futures

try:
    import grpc
except ImportError as e:
    print(f"missing Python module: {e.name} (install python3-grpcio)", file=sys.stderr)
    sys.exit(2)


def varint(n):
    out = bytearray()
    while True:
        b = n & 0x7F
        n >>= 7
        if n:
            out.append(b | 0x80)
        else:
            out.append(b)
            return bytes(out)


def tensor_message(version, message):
    body = message.encode()
    # field 1 version (varint), field 7 message (bytes)
    return b"\x08" + varint(version) + b"\x3a" + varint(len(body)) + body


class Recorder(grpc.ServerInterceptor):
    def __init__(self):
        self.last = []

    def intercept_service(self, continuation, handler_call_details):
        self.last = [m.key for m in handler_call_details.invocation_metadata]
        return continuation(handler_call_details)


def main():
    recorder = Recorder()

    def forward(request, context):
        return tensor_message(150, json.dumps({"interceptor": recorder.last,
                                               "context": [m.key for m in context.invocation_metadata()],
                                               "grpc": grpc.__version__}))

    handler = grpc.method_handlers_generic_handler("Bittensor", {
        "Forward": grpc.unary_unary_rpc_method_handler(forward, request_deserializer=None, response_serializer=None),
    })
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=2), interceptors=[recorder])
    server.add_generic_rpc_handlers((handler,))
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    print(f"PORT {port}", flush=True)
    sys.stdin.read()
    server.stop(0)


if __name__ == "__main__":
    main()

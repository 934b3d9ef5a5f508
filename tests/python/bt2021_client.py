#!/usr/bin/env python3
"""A minimal 2021-style bittensor client (grpcio + protobuf + msgpack-numpy, as bittensor 1.5.0 sent it).

Sends one Forward with TEXT int64 token ids [1, n] and the three metadata headers in order
(rpc-auth-header, bittensor-signature, bittensor-version). The message classes are built at run time from
the field list in shared/PROTOCOL.md §1 (no protoc needed). Python has no sr25519 here, so the caller
passes the signature header value (made by our C# RequestAuth for --hotkey).

Usage: bt2021_client.py --endpoint HOST:PORT --hotkey SS58 --signature HEADER [--version 150]
                        [--tokens 1,2,3] [--timeout 10] [--calls 1]
Prints one JSON line: {"grpc_status", "details", "code", "message", "shape", "dtype", "head", "sha256"} (sha256: of the
first answer tensor's values, as bytes in their dtype). With --calls N the same call is made N times, one after the
other on one channel (one connection), and the line holds the last answer's fields plus "answers": every answer's
{"grpc_status", "sha256"}.
Exit 0 when the call completed (any status), 2 when a module is missing.
"""
import argparse
import hashlib
import json
import sys

try:
    import grpc
    import msgpack
    import msgpack_numpy
    import numpy as np
    from google.protobuf import descriptor_pb2, descriptor_pool, message_factory
except ImportError as e:
    print(f"missing Python module: {e.name} (install python3-grpcio python3-protobuf python3-msgpack-numpy)", file=sys.stderr)
    sys.exit(2)

F = descriptor_pb2.FieldDescriptorProto


def build_classes():
    fdp = descriptor_pb2.FileDescriptorProto(name="bittensor2021.proto", syntax="proto3")

    def enum(name, values):
        e = fdp.enum_type.add(name=name)
        for i, v in enumerate(values):
            e.value.add(name=v, number=i)

    enum("ReturnCode", ["Success", "Timeout", "Backoff", "Unavailable", "NotImplemented", "EmptyRequest",
                        "EmptyResponse", "InvalidResponse", "InvalidRequest", "RequestShapeException",
                        "ResponseShapeException", "RequestSerializationException", "ResponseSerializationException",
                        "RequestDeserializationException", "ResponseDeserializationException", "NotServingNucleus",
                        "NucleusTimeout", "NucleusFull", "RequestIncompatibleVersion", "ResponseIncompatibleVersion",
                        "SenderUnknown", "UnknownException", "Unauthenticated"])
    enum("Serializer", ["MSGPACK"])
    enum("TensorType", ["TORCH", "TENSORFLOW", "NUMPY"])
    enum("DataType", ["UNKNOWN", "FLOAT32", "FLOAT64", "INT32", "INT64", "UTF8"])
    enum("Modality", ["TEXT", "IMAGE", "TENSOR"])

    def field(msg, name, number, ftype, type_name=None, repeated=False):
        f = msg.field.add(name=name, number=number, type=ftype,
                          label=F.LABEL_REPEATED if repeated else F.LABEL_OPTIONAL)
        if type_name:
            f.type_name = type_name

    t = fdp.message_type.add(name="Tensor")
    field(t, "version", 1, F.TYPE_INT32)
    field(t, "buffer", 2, F.TYPE_BYTES)
    field(t, "shape", 3, F.TYPE_INT64, repeated=True)
    field(t, "serializer", 4, F.TYPE_ENUM, ".Serializer")
    field(t, "tensor_type", 5, F.TYPE_ENUM, ".TensorType")
    field(t, "dtype", 6, F.TYPE_ENUM, ".DataType")
    field(t, "modality", 7, F.TYPE_ENUM, ".Modality")
    field(t, "requires_grad", 8, F.TYPE_BOOL)
    m = fdp.message_type.add(name="TensorMessage")
    field(m, "version", 1, F.TYPE_INT32)
    field(m, "hotkey", 2, F.TYPE_STRING)
    field(m, "tensors", 5, F.TYPE_MESSAGE, ".Tensor", repeated=True)
    field(m, "return_code", 6, F.TYPE_ENUM, ".ReturnCode")
    field(m, "message", 7, F.TYPE_STRING)

    pool = descriptor_pool.DescriptorPool()
    pool.AddSerializedFile(fdp.SerializeToString())

    def cls(name):
        desc = pool.FindMessageTypeByName(name)
        if hasattr(message_factory, "GetMessageClass"):
            return message_factory.GetMessageClass(desc)
        return message_factory.MessageFactory(pool).GetPrototype(desc)

    return cls("Tensor"), cls("TensorMessage")


def call(forward, request, a):
    out = {"grpc_status": "OK", "details": "", "code": None, "message": "", "shape": [], "dtype": "", "head": [], "sha256": ""}
    try:
        response = forward(request, timeout=a.timeout, metadata=(
            ("rpc-auth-header", "Bittensor"),
            ("bittensor-signature", a.signature),
            ("bittensor-version", a.version),
        ))
        out["code"] = int(response.return_code)
        out["message"] = response.message
        if response.tensors:
            arr = msgpack.unpackb(response.tensors[0].buffer, object_hook=msgpack_numpy.decode)
            out["shape"] = list(arr.shape)
            out["dtype"] = arr.dtype.str
            out["head"] = [float(x) for x in arr.reshape(-1)[:4]]
            out["sha256"] = hashlib.sha256(np.ascontiguousarray(arr).tobytes()).hexdigest()
    except grpc.RpcError as e:
        out["grpc_status"] = e.code().name
        out["details"] = e.details() or ""
    return out


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--endpoint", required=True)
    p.add_argument("--hotkey", required=True)
    p.add_argument("--signature", required=True)
    p.add_argument("--version", default="150")
    p.add_argument("--tokens", default="1,2,3")
    p.add_argument("--timeout", type=float, default=10)
    p.add_argument("--calls", type=int, default=1)
    a = p.parse_args()

    Tensor, TensorMessage = build_classes()
    tokens = np.array([[int(x) for x in a.tokens.split(",")]], dtype=np.int64)
    tensor = Tensor(version=int(a.version), buffer=msgpack.packb(tokens, default=msgpack_numpy.encode),
                    shape=list(tokens.shape), serializer=0, tensor_type=0, dtype=4, modality=0, requires_grad=False)
    request = TensorMessage(version=int(a.version), hotkey=a.hotkey, tensors=[tensor])

    channel = grpc.insecure_channel(a.endpoint)
    forward = channel.unary_unary("/Bittensor/Forward", request_serializer=TensorMessage.SerializeToString,
                                  response_deserializer=TensorMessage.FromString)
    answers = []
    try:
        for _ in range(a.calls):
            out = call(forward, request, a)
            answers.append({"grpc_status": out["grpc_status"], "sha256": out["sha256"]})
    finally:
        channel.close()
    if a.calls > 1:
        out["answers"] = answers
    print(json.dumps(out))
    return 0


if __name__ == "__main__":
    sys.exit(main())

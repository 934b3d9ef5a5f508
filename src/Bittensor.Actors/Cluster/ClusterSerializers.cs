using System.Buffers.Binary;
using System.Runtime.InteropServices;
using System.Runtime.Serialization;
using System.Text;
using Akka.Actor;
using Akka.Serialization;
using Bittensor.Actors.Cluster.Proto;
using Bittensor.Protocol;
using Bittensor.Protocol.Wire;
using Google.Protobuf;

namespace Bittensor.Actors.Cluster;

/// <summary>
/// The serializer of the messages that carry tensors between cluster nodes (<see cref="WorkerCall"/>,
/// <see cref="WorkerReply"/>): a fixed little-endian header and the tensors' elements as raw bytes. Writing sizes the
/// output exactly and copies each float/int64 span once into it; reading copies each span once into a fresh array.
/// Never JSON, never a type name from the wire: the manifest is one of two fixed strings. Decoding is bounded (rank ≤
/// 8, element counts checked against the bytes present) and throws <see cref="SerializationException"/> on anything
/// malformed; Akka.Remote then drops that message and logs it.
/// </summary>
/// <remarks>
/// Layout (all little-endian): WorkerCall = u8 version(1), i64 id, u8 flags (1 = backward, 2 = has grads), i32 priority,
/// i64 deadline ticks (UTC), f64 stake, str hotkey, u8 modality, tensor inputs [, tensor grads];
/// WorkerReply = u8 version(1), i64 id, i32 code, str message, u8 has-outputs [, tensor outputs];
/// ReplicaParameters / AveragedParameters (version 2): see WriteParameters — one chunk of a parameter vector;
/// str = i32 byte length + UTF-8; tensor = u8 dtype (1 float32, 2 int64), u8 rank, i64 × rank shape, raw elements.
/// </remarks>
public sealed class ClusterTensorSerializer : SerializerWithStringManifest
{
    /// <summary>The serializer id registered in <c>akka.actor.serialization-identifiers</c>.</summary>
    public const int Id = 7310;

    /// <summary>Manifest of <see cref="WorkerCall"/>.</summary>
    public const string CallManifest = "WC";

    /// <summary>Manifest of <see cref="WorkerReply"/>.</summary>
    public const string ReplyManifest = "WR";

    /// <summary>Manifest of <see cref="ReplicaParameters"/>.</summary>
    public const string ParametersManifest = "RP";

    /// <summary>Manifest of <see cref="AveragedParameters"/>.</summary>
    public const string AveragedManifest = "AP";

    private const byte Version = 1;
    // Parameters travel in chunks since version 2 (offset and total added); a version-1 node's whole vector is refused.
    private const byte ParametersVersion = 2;
    private const int MaxRank = 8;
    private const int MaxString = 64 * 1024;

    /// <summary>Created by Akka from the <c>akka.actor.serializers</c> binding.</summary>
    public ClusterTensorSerializer(ExtendedActorSystem system) : base(system)
    {
        if (!BitConverter.IsLittleEndian) throw new PlatformNotSupportedException("the cluster tensor serializer needs a little-endian machine");
    }

    /// <inheritdoc />
    public override int Identifier => Id;

    /// <inheritdoc />
    public override string Manifest(object o) => o switch
    {
        WorkerCall => CallManifest,
        WorkerReply => ReplyManifest,
        ReplicaParameters => ParametersManifest,
        AveragedParameters => AveragedManifest,
        _ => throw new ArgumentException($"{GetType().Name} cannot serialize {o?.GetType().Name ?? "null"}", nameof(o)),
    };

    /// <inheritdoc />
    public override byte[] ToBinary(object obj) => obj switch
    {
        WorkerCall c => Write(c),
        WorkerReply r => Write(r),
        ReplicaParameters p => WriteParameters(p.Round, null, p.Offset, p.Total, p.Values),
        AveragedParameters a => WriteParameters(a.Round, (a.Exact, a.Replicas), a.Offset, a.Total, a.Values),
        _ => throw new ArgumentException($"{GetType().Name} cannot serialize {obj?.GetType().Name ?? "null"}", nameof(obj)),
    };

    /// <inheritdoc />
    public override object FromBinary(byte[] bytes, string manifest)
    {
        ArgumentNullException.ThrowIfNull(bytes);
        return Read(bytes, manifest);
    }

    private static object Read(ReadOnlySpan<byte> bytes, string manifest)
    {
        var r = new Reader(bytes);
        var version = r.U8();
        if (version != (manifest is ParametersManifest or AveragedManifest ? ParametersVersion : Version))
            throw new SerializationException("cluster tensor message: unknown version");
        object result = manifest switch
        {
            CallManifest => ReadCall(ref r),
            ReplyManifest => ReadReply(ref r),
            ParametersManifest => ReadParameters(ref r, averaged: false),
            AveragedManifest => ReadParameters(ref r, averaged: true),
            _ => throw new SerializationException($"cluster tensor message: unknown manifest '{manifest}'"),
        };
        if (!r.AtEnd) throw new SerializationException("cluster tensor message: trailing bytes");
        return result;
    }

    /// <summary>Bytes of <paramref name="c"/> as this serializer writes it (exact).</summary>
    public static int SizeOf(WorkerCall c)
    {
        ArgumentNullException.ThrowIfNull(c);
        return checked(1 + 8 + 1 + 4 + 8 + 8 + 4 + Encoding.UTF8.GetByteCount(c.CallerHotkey) + 1 + TensorSize(c.Inputs) + (c.Grads is null ? 0 : TensorSize(c.Grads)));
    }

    /// <summary>Bytes of <paramref name="reply"/> as this serializer writes it (exact).</summary>
    public static int SizeOf(WorkerReply reply)
    {
        ArgumentNullException.ThrowIfNull(reply);
        return checked(1 + 8 + 4 + 4 + Encoding.UTF8.GetByteCount(reply.Message) + 1 + (reply.Outputs is null ? 0 : TensorSize(reply.Outputs)));
    }

    /// <summary>Bytes of one <see cref="AveragedParameters"/> chunk as this serializer writes it (exact).</summary>
    public static int SizeOf(AveragedParameters a)
    {
        ArgumentNullException.ThrowIfNull(a);
        return checked(1 + 8 + 1 + 4 + 4 + 4 + 4 + (4 * a.Values.Length));
    }

    /// <summary>
    /// Writes <paramref name="message"/> (a <see cref="WorkerCall"/>, <see cref="WorkerReply"/> or
    /// <see cref="AveragedParameters"/>) into <paramref name="destination"/>, exactly <see cref="SizeOf(WorkerCall)"/> bytes
    /// long (the data plane writes it so into a pooled frame buffer, docs/cluster.md "Data plane").
    /// </summary>
    public static void Write(object message, Span<byte> destination)
    {
        var w = new Writer(destination);
        switch (message)
        {
            case WorkerCall c: WriteTo(ref w, c); break;
            case WorkerReply r: WriteTo(ref w, r); break;
            case AveragedParameters a: WriteParametersTo(ref w, a.Round, (a.Exact, a.Replicas), a.Offset, a.Total, a.Values); break;
            default: throw new ArgumentException($"{nameof(ClusterTensorSerializer)} cannot write {message?.GetType().Name ?? "null"}", nameof(message));
        }
        w.Done();
    }

    /// <summary>Reads a <see cref="WorkerCall"/> from exactly <paramref name="bytes"/>; <see cref="SerializationException"/> when malformed.</summary>
    public static WorkerCall ReadCall(ReadOnlySpan<byte> bytes) => (WorkerCall)Read(bytes, CallManifest);

    /// <summary>Reads a <see cref="WorkerReply"/> from exactly <paramref name="bytes"/>; <see cref="SerializationException"/> when malformed.</summary>
    public static WorkerReply ReadReply(ReadOnlySpan<byte> bytes) => (WorkerReply)Read(bytes, ReplyManifest);

    /// <summary>Reads one <see cref="AveragedParameters"/> chunk from exactly <paramref name="bytes"/>; <see cref="SerializationException"/> when malformed.</summary>
    public static AveragedParameters ReadAveraged(ReadOnlySpan<byte> bytes) => (AveragedParameters)Read(bytes, AveragedManifest);

    private static byte[] Write(WorkerCall c)
    {
        var buffer = new byte[SizeOf(c)];
        var w = new Writer(buffer);
        WriteTo(ref w, c);
        w.Done();
        return buffer;
    }

    private static void WriteTo(ref Writer w, WorkerCall c)
    {
        w.U8(Version);
        w.I64(c.RequestId);
        w.U8((byte)((c.IsBackward ? 1 : 0) | (c.Grads is null ? 0 : 2)));
        w.I32(c.Priority);
        w.I64(c.DeadlineUtc.ToUniversalTime().Ticks);
        w.F64(c.CallerStake);
        w.Str(c.CallerHotkey, Encoding.UTF8.GetByteCount(c.CallerHotkey));
        w.U8((byte)c.Modality);
        w.Tensor(c.Inputs);
        if (c.Grads is not null) w.Tensor(c.Grads);
    }

    private static byte[] Write(WorkerReply reply)
    {
        var buffer = new byte[SizeOf(reply)];
        var w = new Writer(buffer);
        WriteTo(ref w, reply);
        w.Done();
        return buffer;
    }

    private static void WriteTo(ref Writer w, WorkerReply reply)
    {
        w.U8(Version);
        w.I64(reply.RequestId);
        w.I32((int)reply.Code);
        w.Str(reply.Message, Encoding.UTF8.GetByteCount(reply.Message));
        w.U8(reply.Outputs is null ? (byte)0 : (byte)1);
        if (reply.Outputs is not null) w.Tensor(reply.Outputs);
    }

    private static WorkerCall ReadCall(ref Reader r)
    {
        var id = r.I64();
        var flags = r.U8();
        if ((flags & ~3) != 0) throw new SerializationException("cluster tensor message: unknown flags");
        var priority = r.I32();
        var ticks = r.I64();
        if (ticks < DateTime.MinValue.Ticks || ticks > DateTime.MaxValue.Ticks) throw new SerializationException("cluster tensor message: deadline out of range");
        var stake = r.F64();
        var hotkey = r.Str();
        var modality = r.U8();
        if (modality > (byte)Modality.Tensor) throw new SerializationException("cluster tensor message: unknown modality");
        var inputs = r.Tensor();
        var grads = (flags & 2) != 0 ? r.Tensor() : null;
        return new WorkerCall(id, (flags & 1) != 0, hotkey, stake, (Modality)modality, inputs, grads, priority, new DateTime(ticks, DateTimeKind.Utc));
    }

    private static WorkerReply ReadReply(ref Reader r)
    {
        var id = r.I64();
        var code = r.I32();
        var message = r.Str();
        var has = r.U8();
        if (has > 1) throw new SerializationException("cluster tensor message: bad outputs flag");
        return new WorkerReply(id, (ReturnCode)code, message, has == 1 ? r.Tensor() : null);
    }

    // ReplicaParameters = u8 version, i64 round, i32 offset, i32 total, i32 count, raw floats; AveragedParameters =
    // u8 version, i64 round, u8 exact, i32 replicas, i32 offset, i32 total, i32 count, raw floats. One chunk of a
    // vector of `total` floats: elements [offset, offset + count).
    private static byte[] WriteParameters(long round, (bool Exact, int Replicas)? averaged, int offset, int total, ReadOnlyMemory<float> values)
    {
        var size = checked(1 + 8 + (averaged is null ? 0 : 1 + 4) + 4 + 4 + 4 + (4 * values.Length));
        if (size > BittensorCluster.MaxFrameBytes)
            throw new SerializationException($"cluster parameters: a chunk of {values.Length} floats exceeds the cluster's frame limit ({BittensorCluster.MaxFrameBytes} bytes)");
        var buffer = new byte[size];
        var w = new Writer(buffer);
        WriteParametersTo(ref w, round, averaged, offset, total, values);
        w.Done();
        return buffer;
    }

    private static void WriteParametersTo(ref Writer w, long round, (bool Exact, int Replicas)? averaged, int offset, int total, ReadOnlyMemory<float> values)
    {
        w.U8(ParametersVersion);
        w.I64(round);
        if (averaged is { } a)
        {
            w.U8(a.Exact ? (byte)1 : (byte)0);
            w.I32(a.Replicas);
        }
        w.I32(offset);
        w.I32(total);
        w.Floats(values.Span);
    }

    private static object ReadParameters(ref Reader r, bool averaged)
    {
        var round = r.I64();
        if (round < 1) throw new SerializationException("cluster parameters: round must be positive");
        var (exact, replicas) = (false, 0);
        if (averaged)
        {
            var e = r.U8();
            if (e > 1) throw new SerializationException("cluster parameters: bad exact flag");
            exact = e == 1;
            replicas = r.I32();
            if (replicas < 0) throw new SerializationException("cluster parameters: negative replica count");
        }
        var offset = r.I32();
        var total = r.I32();
        if (total is < 1 or > BittensorCluster.MaxAveragedParameters) throw new SerializationException("cluster parameters: bad total count");
        if (offset < 0 || offset >= total) throw new SerializationException("cluster parameters: chunk offset out of range");
        var values = r.Floats();
        if (values.Length == 0 || values.Length > total - offset) throw new SerializationException("cluster parameters: chunk does not fit its vector");
        return averaged
            ? new AveragedParameters(round, exact, replicas, offset, total, values)
            : new ReplicaParameters(round, offset, total, values);
    }

    private static int TensorSize(DenseTensor t) =>
        checked(1 + 1 + (8 * t.Rank) + (t.DataType == DataType.Float32 ? 4 * t.Floats!.Length : 8 * t.Longs!.Length));

    private ref struct Writer(Span<byte> buffer)
    {
        private readonly Span<byte> _buffer = buffer;
        private int _at;

        public void U8(byte v) => _buffer[_at++] = v;

        public void I32(int v)
        {
            BinaryPrimitives.WriteInt32LittleEndian(_buffer[_at..], v);
            _at += 4;
        }

        public void I64(long v)
        {
            BinaryPrimitives.WriteInt64LittleEndian(_buffer[_at..], v);
            _at += 8;
        }

        public void F64(double v)
        {
            BinaryPrimitives.WriteDoubleLittleEndian(_buffer[_at..], v);
            _at += 8;
        }

        public void Str(string s, int byteCount)
        {
            I32(byteCount);
            _at += Encoding.UTF8.GetBytes(s, _buffer[_at..]);
        }

        public void Tensor(DenseTensor t)
        {
            if (t.Rank > MaxRank) throw new SerializationException($"cluster tensor message: rank {t.Rank} exceeds {MaxRank}");
            U8(t.DataType switch
            {
                DataType.Float32 => 1,
                DataType.Int64 => 2,
                _ => throw new SerializationException($"cluster tensor message: dtype {t.DataType} is not carried"),
            });
            U8((byte)t.Rank);
            foreach (var d in t.Shape) I64(d);
            // The one copy of the elements: straight from the tensor's array into the message.
            var bytes = t.DataType == DataType.Float32 ? MemoryMarshal.AsBytes(t.Floats.AsSpan()) : MemoryMarshal.AsBytes(t.Longs.AsSpan());
            bytes.CopyTo(_buffer[_at..]);
            _at += bytes.Length;
        }

        public void Floats(ReadOnlySpan<float> values)
        {
            I32(values.Length);
            var bytes = MemoryMarshal.AsBytes(values);
            bytes.CopyTo(_buffer[_at..]);
            _at += bytes.Length;
        }

        public readonly void Done()
        {
            if (_at != _buffer.Length) throw new InvalidOperationException($"cluster tensor message: sized {_buffer.Length} bytes, wrote {_at}");
        }
    }

    private ref struct Reader(ReadOnlySpan<byte> bytes)
    {
        private readonly ReadOnlySpan<byte> _span = bytes;
        private int _at;

        public readonly bool AtEnd => _at == _span.Length;

        private ReadOnlySpan<byte> Take(int n)
        {
            if (n < 0 || n > _span.Length - _at) throw new SerializationException("cluster tensor message: truncated");
            var s = _span.Slice(_at, n);
            _at += n;
            return s;
        }

        public byte U8() => Take(1)[0];

        public int I32() => BinaryPrimitives.ReadInt32LittleEndian(Take(4));

        public long I64() => BinaryPrimitives.ReadInt64LittleEndian(Take(8));

        public double F64() => BinaryPrimitives.ReadDoubleLittleEndian(Take(8));

        public string Str()
        {
            var n = I32();
            if (n is < 0 or > MaxString) throw new SerializationException("cluster tensor message: string too long");
            try
            {
                return new UTF8Encoding(false, true).GetString(Take(n));
            }
            catch (DecoderFallbackException)
            {
                throw new SerializationException("cluster tensor message: string is not UTF-8");
            }
        }

        public float[] Floats()
        {
            var count = I32();
            // Bounded: the elements must be in the bytes we hold.
            if (count < 0 || count > (_span.Length - _at) / 4) throw new SerializationException("cluster parameters: elements truncated");
            var values = GC.AllocateUninitializedArray<float>(count);
            Take(count * 4).CopyTo(MemoryMarshal.AsBytes(values.AsSpan()));
            return values;
        }

        public DenseTensor Tensor()
        {
            var dtype = U8();
            if (dtype is not (1 or 2)) throw new SerializationException("cluster tensor message: unknown dtype");
            var rank = U8();
            if (rank is 0 or > MaxRank) throw new SerializationException("cluster tensor message: bad rank");
            var shape = new long[rank];
            long count = 1;
            for (var i = 0; i < rank; i++)
            {
                shape[i] = I64();
                if (shape[i] is < 0 or > int.MaxValue) throw new SerializationException("cluster tensor message: bad dimension");
                // Dimensions ≤ 2^31 and rank ≤ 8: the product is saturated, never wraps.
                count = count == 0 || shape[i] == 0 ? 0 : count > long.MaxValue / shape[i] ? long.MaxValue : count * shape[i];
            }
            var width = dtype == 1 ? 4 : 8;
            // Bounded: the elements must be in the bytes we hold, so no count can make us allocate more than the message.
            if (count > (_span.Length - _at) / width) throw new SerializationException("cluster tensor message: elements truncated");
            var raw = Take((int)count * width);
            if (dtype == 1)
            {
                var floats = GC.AllocateUninitializedArray<float>((int)count);
                raw.CopyTo(MemoryMarshal.AsBytes(floats.AsSpan()));
                return DenseTensor.Float32(shape, floats);
            }
            var longs = GC.AllocateUninitializedArray<long>((int)count);
            raw.CopyTo(MemoryMarshal.AsBytes(longs.AsSpan()));
            return DenseTensor.Int64(shape, longs);
        }
    }
}

/// <summary>
/// The serializer of the cluster's control messages (<see cref="IClusterControlMessage"/>): protobuf (cluster.proto),
/// chosen over Hyperion because it writes no .NET type names on the wire (a peer cannot make this node build an
/// arbitrary type), its field numbers give a compatibility rule between node versions, and Google.Protobuf is already
/// a dependency (the 2021 wire). The manifest is a fixed short name per message.
/// </summary>
public sealed class ClusterControlSerializer : SerializerWithStringManifest
{
    /// <summary>The serializer id registered in <c>akka.actor.serialization-identifiers</c>.</summary>
    public const int Id = 7311;

    /// <summary>Created by Akka from the <c>akka.actor.serializers</c> binding.</summary>
    public ClusterControlSerializer(ExtendedActorSystem system) : base(system)
    {
    }

    /// <inheritdoc />
    public override int Identifier => Id;

    /// <inheritdoc />
    public override string Manifest(object o) => o switch
    {
        RegisterWorker => "RW",
        WorkerRegistered => "RA",
        WorkerDraining => "DR",
        DrainAck => "DA",
        CollectParameters => "CP",
        SendCheckpoint => "SC",
        ParameterChunkAck => "PA",
        _ => throw new ArgumentException($"{GetType().Name} cannot serialize {o?.GetType().Name ?? "null"}", nameof(o)),
    };

    /// <inheritdoc />
    public override byte[] ToBinary(object obj) => obj switch
    {
        RegisterWorker r => new RegisterWorkerProto
        {
            Capacity = r.Capacity, Draining = r.Draining, Replica = r.Replica, ParameterCount = r.ParameterCount, AveragedRound = r.AveragedRound,
            DataPort = r.DataPort,
        }.ToByteArray(),
        CollectParameters c => new CollectParametersProto { Round = c.Round }.ToByteArray(),
        SendCheckpoint c => new SendCheckpointProto { Round = c.Round }.ToByteArray(),
        ParameterChunkAck a => new ParameterChunkAckProto { Round = a.Round, Offset = a.Offset }.ToByteArray(),
        WorkerRegistered r => new WorkerRegisteredProto { Workers = r.Workers }.ToByteArray(),
        WorkerDraining => new WorkerDrainingProto().ToByteArray(),
        DrainAck => new DrainAckProto().ToByteArray(),
        _ => throw new ArgumentException($"{GetType().Name} cannot serialize {obj?.GetType().Name ?? "null"}", nameof(obj)),
    };

    /// <inheritdoc />
    public override object FromBinary(byte[] bytes, string manifest)
    {
        try
        {
            switch (manifest)
            {
                case "RW":
                    var r = RegisterWorkerProto.Parser.ParseFrom(bytes);
                    if (r.Capacity < 1) throw new SerializationException("RegisterWorker: capacity must be positive");
                    if (r.Replica.Length > 1024) throw new SerializationException("RegisterWorker: replica name too long");
                    if (r.ParameterCount < 0) throw new SerializationException("RegisterWorker: negative parameter count");
                    if (r.AveragedRound < 0) throw new SerializationException("RegisterWorker: negative averaged round");
                    if (r.DataPort is < 0 or > 65535) throw new SerializationException("RegisterWorker: data port out of range");
                    return new RegisterWorker(r.Capacity, r.Draining, r.Replica, r.ParameterCount, r.AveragedRound, r.DataPort);
                case "CP":
                    var c = CollectParametersProto.Parser.ParseFrom(bytes);
                    if (c.Round < 1) throw new SerializationException("CollectParameters: round must be positive");
                    return new CollectParameters(c.Round);
                case "SC":
                    var sc = SendCheckpointProto.Parser.ParseFrom(bytes);
                    if (sc.Round < 1) throw new SerializationException("SendCheckpoint: round must be positive");
                    return new SendCheckpoint(sc.Round);
                case "PA":
                    var pa = ParameterChunkAckProto.Parser.ParseFrom(bytes);
                    if (pa.Round < 0 || pa.Offset < 0) throw new SerializationException("ParameterChunkAck: negative round or offset");
                    return new ParameterChunkAck(pa.Round, pa.Offset);
                case "RA":
                    return new WorkerRegistered(WorkerRegisteredProto.Parser.ParseFrom(bytes).Workers);
                case "DR":
                    WorkerDrainingProto.Parser.ParseFrom(bytes);
                    return WorkerDraining.Instance;
                case "DA":
                    DrainAckProto.Parser.ParseFrom(bytes);
                    return DrainAck.Instance;
                default:
                    throw new SerializationException($"cluster control message: unknown manifest '{manifest}'");
            }
        }
        catch (InvalidProtocolBufferException e)
        {
            throw new SerializationException($"cluster control message {manifest}: {e.Message}");
        }
    }
}

using Bittensor.Protocol.Wire;
using FsCheck.Xunit;

namespace Bittensor.Protocol.Tests;

public sealed class TensorCodecProperties
{
    private static readonly DataType[] Types = [DataType.Float32, DataType.Float64, DataType.Int32, DataType.Int64];

    private static (DataType Type, long[] Shape, byte[] Encoded, byte[] RawValues) RandomTensor(int seed)
    {
        var rng = new Random(seed);
        var type = Types[rng.Next(Types.Length)];
        var rank = rng.Next(0, TensorCodec.MaxRank + 1);
        var shape = new long[rank];
        long count = 1;
        for (var i = 0; i < rank; i++)
        {
            // Mostly small dims, sometimes 0 and sometimes past the uint8/uint16 boundaries (if the count allows).
            var d = rng.Next(10) switch { 0 => 0, 1 when count < 64 => rng.Next(128, 300), 2 when count < 2 => rng.Next(256, 70_000), _ => rng.Next(1, 5) };
            if (count * d > 100_000) d = 1;
            shape[i] = d;
            count *= d;
        }
        var itemSize = TensorCodec.ItemSize(type);
        var raw = new byte[count * itemSize];
        rng.NextBytes(raw);
        var encoded = type switch
        {
            DataType.Float32 => TensorCodec.EncodeToArray(System.Runtime.InteropServices.MemoryMarshal.Cast<byte, float>(raw), shape),
            DataType.Float64 => TensorCodec.EncodeToArray(System.Runtime.InteropServices.MemoryMarshal.Cast<byte, double>(raw), shape),
            DataType.Int32 => TensorCodec.EncodeToArray(System.Runtime.InteropServices.MemoryMarshal.Cast<byte, int>(raw), shape),
            _ => TensorCodec.EncodeToArray(System.Runtime.InteropServices.MemoryMarshal.Cast<byte, long>(raw), shape),
        };
        return (type, shape, encoded, raw);
    }

    [Property(MaxTest = 300)]
    public bool Any_tensor_round_trips_through_the_codec_bit_for_bit(int seed)
    {
        var (type, shape, encoded, raw) = RandomTensor(seed);
        var r = TensorCodec.DecodeBuffer(encoded);
        return r.IsSuccess
            && r.Tensor.DataType == type
            && r.Tensor.Shape.SequenceEqual(shape)
            && r.Tensor.Data.Span.SequenceEqual(raw)
            && encoded.Length == TensorCodec.GetEncodedLength(type, shape);
    }

    [Property(MaxTest = 300)]
    public bool A_truncated_buffer_never_decodes(int seed, int cut)
    {
        var (_, _, encoded, _) = RandomTensor(seed);
        var n = (int)((uint)cut % (uint)encoded.Length);
        return !TensorCodec.DecodeBuffer(encoded.AsMemory(0, n)).IsSuccess;
    }

    [Property(MaxTest = 500)]
    public bool Random_garbage_never_throws_and_any_success_is_self_consistent(byte[] garbage)
    {
        var r = TensorCodec.DecodeBuffer(garbage ?? []);
        return Consistent(r, garbage?.Length ?? 0);
    }

    [Property(MaxTest = 500)]
    public bool Corrupted_valid_buffers_never_throw_and_any_success_is_self_consistent(int seed, int position, byte value)
    {
        var (_, _, encoded, _) = RandomTensor(seed);
        var corrupted = (byte[])encoded.Clone();
        corrupted[(int)((uint)position % (uint)corrupted.Length)] = value;
        return Consistent(TensorCodec.DecodeBuffer(corrupted), corrupted.Length);
    }

    private static bool Consistent(TensorDecodeResult r, int inputLength)
    {
        if (!r.IsSuccess) return r.Message.Length > 0 && r.Tensor.Data.IsEmpty;
        long product = 1;
        foreach (var d in r.Tensor.Shape) product *= d;
        return r.Tensor.Rank <= TensorCodec.MaxRank
            && product == r.Tensor.ElementCount
            && r.Tensor.Data.Length == product * r.Tensor.ItemSize
            && r.Tensor.Data.Length <= inputLength;
    }
}

using Bittensor.Protocol.Lean;
using Bittensor.Protocol.Wire;
using Google.Protobuf;

namespace Bittensor.Protocol.Tests.Lean;

/// <summary>
/// The lean client's zero-copy <see cref="TensorMessageReader"/> against the generated parser: the same message for
/// random messages, for every prefix of them (both refuse, or both give the same shorter message), and for random
/// bytes; unknown fields are skipped.
/// </summary>
public sealed class TensorMessageReaderTests
{
    private static TensorMessage Random(Random rng)
    {
        var m = new TensorMessage
        {
            Version = rng.Next(-5, 300),
            Hotkey = rng.Next(3) == 0 ? "" : "5Grw" + new string('é', rng.Next(0, 4)),
            ReturnCode = (ReturnCode)rng.Next(0, 40),
            Message = rng.Next(2) == 0 ? "" : "m" + rng.Next(),
        };
        for (var i = rng.Next(0, 3); i > 0; i--)
        {
            var t = new Tensor
            {
                Version = rng.Next(0, 200),
                Buffer = ByteString.CopyFrom(Enumerable.Range(0, rng.Next(0, 300)).Select(_ => (byte)rng.Next(256)).ToArray()),
                Serializer = (Serializer)rng.Next(0, 3),
                TensorType = (TensorType)rng.Next(0, 3),
                Dtype = (DataType)rng.Next(0, 9),
                Modality = (Modality)rng.Next(0, 3),
                RequiresGrad = rng.Next(2) == 0,
            };
            for (var d = rng.Next(0, 4); d > 0; d--) t.Shape.Add(rng.Next(2) == 0 ? rng.Next(0, 2000) : -rng.NextInt64());
            m.Tensors.Add(t);
        }
        return m;
    }

    private static TensorMessage? Generated(byte[] bytes, int length)
    {
        try
        {
            return TensorMessage.Parser.ParseFrom(bytes, 0, length);
        }
        catch (InvalidProtocolBufferException)
        {
            return null;
        }
    }

    private static TensorMessage? Ours(byte[] bytes, int length)
    {
        try
        {
            return TensorMessageReader.Parse(bytes, length);
        }
        catch (InvalidDataException)
        {
            return null;
        }
    }

    [Fact]
    public void Random_messages_and_every_prefix_of_them_parse_as_the_generated_parser_parses_them()
    {
        var rng = new Random(11);
        for (var i = 0; i < 300; i++)
        {
            var bytes = Random(rng).ToByteArray();
            for (var length = bytes.Length; length >= 0; length -= length > 64 ? 17 : 1)
            {
                var expected = Generated(bytes, length);
                var actual = Ours(bytes, length);
                Assert.True((expected is null) == (actual is null), $"message {i}, prefix {length}: generated {(expected is null ? "refused" : "parsed")}, ours {(actual is null ? "refused" : "parsed")}");
                Assert.Equal(expected, actual);
            }
        }
    }

    [Fact]
    public void Unknown_fields_are_skipped_and_the_known_ones_kept()
    {
        var known = new TensorMessage { Version = 150, Message = "ok" };
        known.Tensors.Add(new Tensor { Buffer = ByteString.CopyFromUtf8("abc"), Shape = { 1, 2, 3 } });
        var bytes = known.ToByteArray();
        // field 9 varint, field 10 fixed64, field 11 bytes, field 12 fixed32 appended
        byte[] extra = [0x48, 0x96, 0x01, 0x51, 1, 2, 3, 4, 5, 6, 7, 8, 0x5A, 2, 0xAA, 0xBB, 0x65, 1, 2, 3, 4];
        var withUnknown = bytes.Concat(extra).ToArray();

        Assert.Equal(known, TensorMessageReader.Parse(withUnknown, withUnknown.Length));
    }

    [Fact]
    public void Random_bytes_never_throw_anything_but_InvalidDataException()
    {
        var rng = new Random(5);
        var buffer = new byte[200];
        for (var i = 0; i < 20_000; i++)
        {
            rng.NextBytes(buffer);
            var length = rng.Next(0, buffer.Length);
            try
            {
                TensorMessageReader.Parse(buffer, length);
            }
            catch (InvalidDataException)
            {
            }
        }
    }
}

using System.Buffers.Binary;
using System.Runtime.InteropServices;
using Bittensor.Protocol.Lean;
using Bittensor.Protocol.Wire;
using Google.Protobuf;

namespace Bittensor.Protocol.Tests.Lean;

/// <summary>
/// The lean client's landing (<see cref="AnswerLanding"/>): an answer's tensor data taken into the caller's float array
/// instead of a transport buffer. One stream's message is fed as the read loop feeds it — bytes from the connection's
/// buffer (<c>Feed</c>) or received straight into the stream's target (<c>BodyTarget</c> + <c>Advance</c>) — split at
/// every byte of the head and the tail and at a stride through the data, and in random pieces; whatever the split, a
/// 2021 answer lands whole and anything else is left whole for the general decoder. The head scan (<c>FindGap</c>)
/// never throws on hostile bytes and never points outside the message.
/// </summary>
[Collection(AnswerPoolCollection.Name)]
public sealed class AnswerLandingTests
{
    private static readonly long[] Shape = [1, 16, 1024];
    private static readonly Float32AnswerShape Expected = new(Shape);

    private static float[] Floats(int seed)
    {
        var values = new float[16 * 1024];
        for (var i = 0; i < values.Length; i++) values[i] = (i * 0.5f) - seed;
        return values;
    }

    private static TensorMessage Answer(float[] values, long[]? shape = null)
    {
        var m = new TensorMessage { Version = 150, Hotkey = "5FHneW46xGXgs5mUiveU4sbTyGBzmstUspZC92UhjJM694ty", ReturnCode = ReturnCode.Success, Message = "Success" };
        m.Tensors.Add(TensorCodec.ToTensor(values, shape ?? Shape, Modality.Tensor));
        return m;
    }

    private static byte[] Grpc(TensorMessage m)
    {
        var body = m.ToByteArray();
        var g = new byte[5 + body.Length];
        BinaryPrimitives.WriteInt32BigEndian(g.AsSpan(1), body.Length);
        body.CopyTo(g, 5);
        return g;
    }

    private sealed record Received(bool Took, float[] Values, byte[] Message, int GapStart);

    // Feeds the gRPC message in the given pieces, as the read loop does: when the stream offers a target for the next
    // bytes (direct), the piece is "received" into it (at most its length), otherwise fed from the buffer.
    private static Received Receive(byte[] grpc, IEnumerable<int> pieces, bool direct, Float32AnswerShape? expected = null)
    {
        var landing = new AnswerLanding(expected ?? Expected);
        Array.Fill(landing.Values, float.NaN);
        var s = new H2ClientConnection.ClientStream(null!, CancellationToken.None, int.MaxValue) { Reader = a => a, Landing = landing };
        var at = 0;
        using var sizes = pieces.GetEnumerator();
        while (at < grpc.Length)
        {
            var n = Math.Min(sizes.MoveNext() ? sizes.Current : grpc.Length, grpc.Length - at);
            if (direct)
            {
                var target = s.BodyTarget(n);
                if (target.Length > 0)
                {
                    grpc.AsSpan(at, target.Length).CopyTo(target.Span);
                    s.Advance(target.Length);
                    at += target.Length;
                    continue;
                }
            }
            Assert.True(s.Feed(grpc.AsSpan(at, n), out var failure, out _), failure.Detail);
            at += n;
        }
        Assert.True(s.MessageComplete);
        s.MarkLanded();
        var answer = TensorMessageReader.Parse(s.Message, s.MessageLength);
        var took = landing.TryTake(answer.Tensors[0]);
        var bytes = answer.ToByteArray(); // the buffer as it lies (stale where the data landed)
        landing.Release();
        s.Message.AsSpan().Fill(0xEE); // what the next answer would find in the pooled array
        s.ReturnMessage();
        return new Received(took, landing.Values, bytes, s.GapStart);
    }

    private static IEnumerable<int> SplitPoints(int length, int gapStart, int gapEnd)
    {
        for (var i = 1; i < Math.Min(length, gapStart + 300); i++) yield return i; // the head, every byte
        for (var i = gapStart + 300; i < gapEnd - 300; i += 61) yield return i; // the data, a stride
        for (var i = Math.Max(1, gapEnd - 300); i < length; i++) yield return i; // the end of the data and the tail, every byte
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public void A_2021_answer_lands_whole_whatever_byte_it_is_split_at(bool direct)
    {
        var values = Floats(1);
        var grpc = Grpc(Answer(values));
        var whole = Receive(grpc, [grpc.Length], direct);
        Assert.True(whole.Took);
        Assert.Equal(values, whole.Values);
        var gapStart = 5 + whole.GapStart;
        var gapEnd = gapStart + (values.Length * 4);
        Assert.Equal(values, MemoryMarshal.Cast<byte, float>(grpc.AsSpan(gapStart, values.Length * 4)).ToArray()); // where the floats lie on the wire

        foreach (var split in SplitPoints(grpc.Length, gapStart, gapEnd))
        {
            var r = Receive(grpc, [split, grpc.Length], direct);
            Assert.True(r.Took, $"split at {split}");
            Assert.True(values.AsSpan().SequenceEqual(r.Values), $"split at {split}: the landed floats differ");
        }
    }

    [Theory]
    [InlineData(false, 7)]
    [InlineData(true, 7)]
    [InlineData(true, 1)]
    public void A_2021_answer_lands_whole_in_random_pieces(bool direct, int seed)
    {
        var rng = new Random(seed);
        var values = Floats(seed);
        var grpc = Grpc(Answer(values));
        for (var round = 0; round < 100; round++)
        {
            var max = round % 3 == 0 ? 8 : round % 3 == 1 ? 300 : 9000;
            var pieces = Enumerable.Range(0, 1 << 20).Select(_ => rng.Next(1, max + 1));
            var r = Receive(grpc, pieces, direct);
            Assert.True(r.Took, $"round {round}");
            Assert.True(values.AsSpan().SequenceEqual(r.Values), $"round {round}: the landed floats differ");
        }
    }

    public static TheoryData<string> NotTheExpectedAnswer => new()
    {
        "float64 of the same byte count", "int32 of the same shape", "a longer shape", "float32 of another shape", "a second buffer field wins",
        "the buffer in the second tensor", "no tensor", "a raw float buffer",
    };

    // Answers the landing does not take: whatever happened to their bytes, the message the reader sees is the one sent.
    [Theory]
    [MemberData(nameof(NotTheExpectedAnswer))]
    public void An_answer_that_is_not_the_expected_one_is_left_whole_for_the_general_decoder(string kind)
    {
        var values = Floats(3);
        var body = kind switch
        {
            "float64 of the same byte count" => WithTensor(TensorCodec.ToTensor(values.Take(8 * 1024).Select(v => (double)v).ToArray(), [1, 16, 512], Modality.Tensor)),
            "int32 of the same shape" => WithTensor(TensorCodec.ToTensor(values.Select(v => (int)v).ToArray(), Shape, Modality.Tensor)),
            "a longer shape" => Answer([.. values, .. values], [2, 16, 1024]).ToByteArray(),
            "float32 of another shape" => Answer(values, [1, 1024, 16]).ToByteArray(),
            "a second buffer field wins" => SecondBuffer(values),
            "the buffer in the second tensor" => SecondTensor(values),
            "no tensor" => new TensorMessage { Version = 150, Hotkey = "5Grw", Message = new string('x', 70_000) }.ToByteArray(),
            "a raw float buffer" => WithTensor(new Tensor { Buffer = ByteString.CopyFrom(MemoryMarshal.AsBytes(values.AsSpan())), Dtype = DataType.Float32, Serializer = Serializer.Msgpack, Shape = { Shape } }),
            _ => throw new ArgumentOutOfRangeException(nameof(kind)),
        };
        var sent = TensorMessage.Parser.ParseFrom(body);
        var grpc = new byte[5 + body.Length];
        BinaryPrimitives.WriteInt32BigEndian(grpc.AsSpan(1), body.Length);
        body.CopyTo(grpc, 5);
        foreach (var direct in new[] { false, true })
        {
            foreach (var pieces in new[] { new[] { grpc.Length }, [100, 1, 70, 4000, grpc.Length] })
            {
                var landing = new AnswerLanding(Expected);
                var s = new H2ClientConnection.ClientStream(null!, CancellationToken.None, int.MaxValue) { Reader = a => a, Landing = landing };
                var at = 0;
                var i = 0;
                while (at < grpc.Length)
                {
                    var n = Math.Min(pieces[Math.Min(i++, pieces.Length - 1)], grpc.Length - at);
                    var target = direct ? s.BodyTarget(n) : Memory<byte>.Empty;
                    if (target.Length > 0)
                    {
                        grpc.AsSpan(at, target.Length).CopyTo(target.Span);
                        s.Advance(target.Length);
                        at += target.Length;
                        continue;
                    }
                    Assert.True(s.Feed(grpc.AsSpan(at, n), out _, out _));
                    at += n;
                }
                s.MarkLanded();
                var answer = TensorMessageReader.Parse(s.Message, s.MessageLength);
                if (answer.Tensors.Count > 0) Assert.False(landing.TryTake(answer.Tensors[0]), kind);
                Assert.False(landing.IsLanded);
                Assert.Equal(sent, answer); // whole again (or never landed)
                s.ReturnMessage();
            }
        }
    }

    private static byte[] WithTensor(Tensor t)
    {
        var m = new TensorMessage { Version = 150, Hotkey = "5Grw", ReturnCode = ReturnCode.Success };
        m.Tensors.Add(t);
        return m.ToByteArray();
    }

    // A tensor whose buffer field appears twice (protobuf: the last one wins): the landed first one is not the answer.
    private static byte[] SecondBuffer(float[] values)
    {
        var good = TensorCodec.ToTensor(values, Shape, Modality.Tensor);
        var other = TensorCodec.ToTensor(values.Select(v => v + 1).ToArray(), Shape, Modality.Tensor);
        var tensor = good.ToByteArray().Concat(new Tensor { Buffer = other.Buffer }.ToByteArray()).ToArray();
        Assert.Equal(other.Buffer, Tensor.Parser.ParseFrom(tensor).Buffer); // what the sender meant: the second buffer
        var field = new CodedOutputStreamBytes();
        field.Tag(42, tensor);
        return [.. new TensorMessage { Version = 150, Hotkey = "5Grw" }.ToByteArray(), .. field.Bytes];
    }

    // The first tensor has no buffer; the second one is a full answer.
    private static byte[] SecondTensor(float[] values)
    {
        var m = new TensorMessage { Version = 150, Hotkey = "5Grw", ReturnCode = ReturnCode.Success };
        m.Tensors.Add(new Tensor { Dtype = DataType.Float32, Shape = { Shape } });
        m.Tensors.Add(TensorCodec.ToTensor(values, Shape, Modality.Tensor));
        return m.ToByteArray();
    }

    private sealed class CodedOutputStreamBytes
    {
        public List<byte> Bytes { get; } = [];

        public void Tag(int tag, byte[] payload)
        {
            Varint((ulong)tag);
            Varint((ulong)payload.Length);
            Bytes.AddRange(payload);
        }

        private void Varint(ulong v)
        {
            while (v >= 0x80)
            {
                Bytes.Add((byte)(v | 0x80));
                v >>= 7;
            }
            Bytes.Add((byte)v);
        }
    }

    [Fact]
    public void The_head_scan_finds_the_first_tensors_data_and_says_so_for_every_prefix()
    {
        var body = Answer(Floats(2)).ToByteArray();
        var full = H2ClientConnection.ClientStream.FindGap(body, body.Length, 65536);
        Assert.True(full > 0 && full + 65536 <= body.Length);
        Assert.Equal(Floats(2), MemoryMarshal.Cast<byte, float>(body.AsSpan(full, 65536)).ToArray());
        for (var n = 0; n < full; n++)
        {
            var r = H2ClientConnection.ClientStream.FindGap(body.AsSpan(0, n), body.Length, 65536);
            Assert.True(r == -1 || r == full, $"prefix {n}: {r}"); // not enough yet, or already the same answer
        }
        Assert.Equal(-2, H2ClientConnection.ClientStream.FindGap(body, body.Length, 65537 + full)); // the buffer is shorter than that
    }

    public static TheoryData<string, byte[], int> HostileHeads => new()
    {
        { "a varint of 11 bytes", [8, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 1], 100 },
        { "field number 0", [0x02, 1, 0], 100 },
        { "wire type 3 (group)", [0x0B, 0], 100 },
        { "wire type 7", [0x0F, 0], 100 },
        { "a tensor longer than the message", [42, 0xE8, 0x07, 18, 4], 100 },
        { "a buffer longer than its tensor", [42, 4, 18, 0x7F, 0, 0], 100 },
        { "a buffer length of 2^63", [42, 12, 18, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x01], 100 },
        { "a hotkey longer than the message", [18, 0xFF, 0xFF, 0xFF, 0xFF, 0x0F], 100 },
        { "an empty first tensor", [42, 0, 42, 8, 18, 6, 1, 2, 3, 4, 5, 6], 12 },
    };

    [Theory]
    [MemberData(nameof(HostileHeads))]
    public void A_hostile_head_is_not_landed_and_never_throws(string kind, byte[] head, int messageLength)
    {
        var r = H2ClientConnection.ClientStream.FindGap(head, messageLength, 4);
        Assert.True(r == -2, $"{kind}: {r}");
    }

    [Fact]
    public void Random_heads_never_throw_and_never_point_outside_the_message()
    {
        var rng = new Random(11);
        var buffer = new byte[600];
        for (var i = 0; i < 20_000; i++)
        {
            var n = rng.Next(0, buffer.Length);
            rng.NextBytes(buffer.AsSpan(0, n));
            if (rng.Next(2) == 0 && n > 2) buffer[0] = 42; // often a tensor first
            var messageLength = rng.Next(n, 5000);
            var dataLength = rng.Next(1, 300);
            var r = H2ClientConnection.ClientStream.FindGap(buffer.AsSpan(0, n), messageLength, dataLength);
            Assert.True(r is -1 or -2 || (r >= 0 && r + dataLength <= messageLength), $"case {i}: {r}");
        }
    }
}

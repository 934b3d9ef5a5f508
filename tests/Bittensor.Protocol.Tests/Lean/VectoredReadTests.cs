using System.Buffers.Binary;
using Bittensor.Protocol.Lean;
using Bittensor.Protocol.Wire;
using Google.Protobuf;
using Grpc.Core;

namespace Bittensor.Protocol.Tests.Lean;

/// <summary>
/// The lean client's one-call receive of a message body and what follows it (<c>TryReceiveVectored</c>: the answer's
/// floats into the caller's landing array and, in the same call, the message's tail and the trailers into the read
/// buffer). Run through the socket-free read loop (<see cref="H2ClientConnection.Feed"/>: the same code, where each
/// "read" spans the target and the buffer as <c>recvmsg</c> with two iovecs does), with the reads cut at every byte of
/// the answer's head and tail and at a stride through its floats: every answer lands whole, the calls after it on the
/// same connection read right, hostile lengths end the call with the client's status, and a call cancelled in the middle
/// of its answer neither hangs nor spoils the next one.
/// </summary>
[Collection(AnswerPoolCollection.Name)]
public sealed class VectoredReadTests
{
    private static readonly TimeSpan Wait = TimeSpan.FromSeconds(30);
    private static readonly Float32AnswerShape Shape = new([1, 16, 1024]);
    private static readonly Metadata Headers = new() { { "bittensor-auth", "test" } };

    private static byte[] Frame(byte type, byte flags, int stream, byte[] payload)
    {
        var f = new byte[9 + payload.Length];
        H2Output.WriteFrameHeader(f, payload.Length, type, flags, stream);
        payload.CopyTo(f, 9);
        return f;
    }

    private static float[] Floats(int seed)
    {
        var values = new float[16 * 1024];
        for (var i = 0; i < values.Length; i++) values[i] = (i * 0.25f) + seed;
        return values;
    }

    private static byte[] Grpc(float[] values, string message)
    {
        var m = new TensorMessage { Version = 150, Hotkey = "5FHneW46xGXgs5mUiveU4sbTyGBzmstUspZC92UhjJM694ty", ReturnCode = ReturnCode.Success, Message = message };
        m.Tensors.Add(TensorCodec.ToTensor(values, [1, 16, 1024], Modality.Tensor));
        var body = m.ToByteArray();
        var g = new byte[5 + body.Length];
        BinaryPrimitives.WriteInt32BigEndian(g.AsSpan(1), body.Length);
        body.CopyTo(g, 5);
        return g;
    }

    // An answer as the lean server writes it: HEADERS, the message in one DATA frame, the trailers.
    private static byte[] Whole(int stream, byte[] grpc) =>
        [.. Frame(H2.Headers, H2.EndHeaders, stream, H2Blocks.ResponseHeaders), .. Frame(H2.Data, 0, stream, grpc),
            .. Frame(H2.Headers, H2.EndHeaders | H2.EndStream, stream, H2Blocks.OkTrailers)];

    private sealed record Got(bool Took, string Message);

    private static Task<Got> LandingCall(H2ClientConnection conn, AnswerLanding landing, CancellationToken token = default) =>
        conn.CallAsync(BittensorMethod.Forward, new TensorMessage { Version = 150, Hotkey = "5Grw" }, Headers, DateTime.MaxValue, token,
            a => new Got(a.Tensors.Count > 0 && landing.TryTake(a.Tensors[0]), a.Message), landing);

    // Where the first answer's floats begin and end in the fed bytes (SETTINGS first, then stream 1's answer).
    private static (int FloatsAt, int FloatsEnd, int Total) Layout(byte[] first)
    {
        var settings = 9;
        var headers = 9 + H2Blocks.ResponseHeaders.Length;
        var gap = H2ClientConnection.ClientStream.FindGap(first.AsSpan(5), first.Length - 5, Shape.ElementCount * 4);
        var floatsAt = settings + headers + 9 + 5 + gap;
        return (floatsAt, floatsAt + (Shape.ElementCount * 4), settings + headers + 9 + first.Length + 9 + H2Blocks.OkTrailers.Length);
    }

    // Three landing calls; the bytes cut so that read 0 ends at `cut` and the rest come `rest` at a time.
    private static async Task<H2ClientConnection> ThreeAnswers(int cut, int rest)
    {
        var conn = H2ClientConnection.ForFeed(BittensorChannelOptions.Default);
        var landings = new[] { new AnswerLanding(Shape), new AnswerLanding(Shape), new AnswerLanding(Shape) };
        foreach (var l in landings) Array.Fill(l.Values, float.NaN);
        var calls = landings.Select(l => LandingCall(conn, l)).ToArray();
        var grpc = new[] { Grpc(Floats(1), "one"), Grpc(Floats(2), "two"), Grpc(Floats(3), "three") };

        var loop = conn.Feed([.. Frame(H2.Settings, 0, 0, []), .. Whole(1, grpc[0]), .. Whole(3, grpc[1]), .. Whole(5, grpc[2])], i => i == 0 ? cut : rest);

        Assert.True(loop.IsCompleted);
        Assert.Null(conn.Bug);
        Assert.Equal(new Got(true, "one"), await calls[0].WaitAsync(Wait));
        Assert.Equal(new Got(true, "two"), await calls[1].WaitAsync(Wait));
        Assert.Equal(new Got(true, "three"), await calls[2].WaitAsync(Wait));
        for (var i = 0; i < 3; i++) Assert.Equal(Floats(i + 1), landings[i].Values);
        Assert.Equal(0, conn.OpenStreams);
        return conn;
    }

    [Fact]
    public async Task Answers_land_whole_with_the_first_read_cut_at_every_byte_of_the_head_and_the_tail()
    {
        var (floatsAt, floatsEnd, total) = Layout(Grpc(Floats(1), "one"));
        var cuts = Enumerable.Range(1, floatsAt + 8).Concat(Enumerable.Range(floatsAt + 8, floatsEnd - floatsAt - 8).Where(c => c % 997 == 0))
            .Concat(Enumerable.Range(floatsEnd - 8, total - floatsEnd + 16));
        long vectored = 0;
        foreach (var cut in cuts)
        {
            // The rest in one read (what a socket gives when everything is there), then in reads of 4 KiB.
            vectored += (await ThreeAnswers(cut, int.MaxValue)).VectoredReads;
            vectored += (await ThreeAnswers(cut, 4096)).VectoredReads;
        }
        Assert.True(vectored > 0, "no answer took the one-call receive");
    }

    [Theory]
    [InlineData(1)]
    [InlineData(7)]
    [InlineData(100)]
    [InlineData(65_536)]
    [InlineData(65_600)]
    [InlineData(200_000)]
    public async Task Answers_land_whole_in_reads_of_any_size(int size)
    {
        var conn = await ThreeAnswers(size, size);
        Assert.True(conn.VectoredReads > 0, $"reads of {size}: no answer took the one-call receive");
    }

    [Fact]
    public async Task A_landing_holds_no_array_until_its_answer_arrives()
    {
        var conn = H2ClientConnection.ForFeed(BittensorChannelOptions.Default);
        var (first, second) = (new AnswerLanding(Shape), new AnswerLanding(Shape));
        var a = LandingCall(conn, first);
        var b = LandingCall(conn, second);
        Assert.False(first.IsAllocated); // calls out, no answer yet: nothing for a collection to promote
        Assert.False(second.IsAllocated);

        // Only the first call is answered; the second's stream ends at once, without a message (nor a :status).
        var loop = conn.Feed([.. Frame(H2.Settings, 0, 0, []), .. Whole(1, Grpc(Floats(1), "one")),
            .. Frame(H2.Headers, H2.EndHeaders | H2.EndStream, 3, H2Blocks.OkTrailers)], _ => 4096);

        Assert.True(loop.IsCompleted);
        Assert.Equal(new Got(true, "one"), await a.WaitAsync(Wait));
        Assert.Equal(Floats(1), first.Values);
        await Assert.ThrowsAsync<RpcException>(() => b.WaitAsync(Wait));
        Assert.False(second.IsAllocated);
    }

    [Fact]
    public async Task A_message_shorter_than_its_length_prefix_ends_Internal_and_the_next_call_still_lands()
    {
        var conn = H2ClientConnection.ForFeed(BittensorChannelOptions.Default);
        var first = new AnswerLanding(Shape);
        var second = new AnswerLanding(Shape);
        var a = LandingCall(conn, first);
        var b = LandingCall(conn, second);
        var good = Grpc(Floats(1), "good");
        var hostile = Grpc(Floats(2), "short");
        BinaryPrimitives.WriteInt32BigEndian(hostile.AsSpan(1), hostile.Length - 5 + 4096); // announces 4 KiB more than it sends

        var loop = conn.Feed([.. Frame(H2.Settings, 0, 0, []), .. Whole(1, good), .. Whole(3, hostile)], _ => int.MaxValue);

        Assert.True(loop.IsCompleted);
        Assert.Null(conn.Bug);
        Assert.Equal(new Got(true, "good"), await a.WaitAsync(Wait));
        var e = await Assert.ThrowsAsync<RpcException>(() => b.WaitAsync(Wait));
        Assert.Equal(StatusCode.Internal, e.StatusCode);
        Assert.Contains("middle of its message", e.Status.Detail);
    }

    [Fact]
    public async Task A_message_longer_than_its_frame_continued_in_the_next_frame_lands_whole()
    {
        // The message split over two DATA frames inside the floats: the one-call receive stops at the frame's end (the
        // target is no longer than the frame's data), the next frame header is read from the buffer.
        var conn = H2ClientConnection.ForFeed(BittensorChannelOptions.Default);
        var first = new AnswerLanding(Shape);
        var second = new AnswerLanding(Shape);
        var a = LandingCall(conn, first);
        var b = LandingCall(conn, second);
        var one = Grpc(Floats(1), "one");
        var two = Grpc(Floats(2), "two");
        var half = two.Length / 2;
        byte[] split = [.. Frame(H2.Headers, H2.EndHeaders, 3, H2Blocks.ResponseHeaders), .. Frame(H2.Data, 0, 3, two[..half]),
            .. Frame(H2.Data, 0, 3, two[half..]), .. Frame(H2.Headers, H2.EndHeaders | H2.EndStream, 3, H2Blocks.OkTrailers)];

        var loop = conn.Feed([.. Frame(H2.Settings, 0, 0, []), .. Whole(1, one), .. split], _ => int.MaxValue);

        Assert.True(loop.IsCompleted);
        Assert.Null(conn.Bug);
        Assert.Equal(new Got(true, "one"), await a.WaitAsync(Wait));
        Assert.Equal(new Got(true, "two"), await b.WaitAsync(Wait));
        Assert.Equal(Floats(2), second.Values);
    }

    [Theory]
    [InlineData(0)]
    [InlineData(60)]
    [InlineData(130)]
    [InlineData(200)]
    [InlineData(40_000)]
    [InlineData(64_000)]
    [InlineData(65_700)]
    public async Task A_call_cancelled_in_the_middle_of_its_answer_ends_Cancelled_and_the_next_answer_lands(int into)
    {
        var conn = H2ClientConnection.ForFeed(BittensorChannelOptions.Default);
        using var cancel = new CancellationTokenSource();
        var landings = new[] { new AnswerLanding(Shape), new AnswerLanding(Shape), new AnswerLanding(Shape) };
        var first = LandingCall(conn, landings[0]);
        var gone = LandingCall(conn, landings[1], cancel.Token);
        var last = LandingCall(conn, landings[2]);
        var one = Whole(1, Grpc(Floats(1), "one"));
        var two = Whole(3, Grpc(Floats(2), "two"));
        var at = 9 + one.Length + Math.Min(into, two.Length - 1_001); // a byte of the second answer (stream 3), a read before its end

        // Reads of 1,000 bytes; the caller gives up before the first read that starts past `at` (inside its answer: its
        // head, its floats, its tail; at least a read before its trailers end), so the read loop is in the middle of it.
        var loop = conn.Feed([.. Frame(H2.Settings, 0, 0, []), .. one, .. two, .. Whole(5, Grpc(Floats(3), "three"))], _ =>
        {
            if (conn.FedBytes > at) cancel.Cancel();
            return 1_000;
        });

        Assert.True(loop.IsCompleted);
        Assert.Null(conn.Bug);
        Assert.Equal(new Got(true, "one"), await first.WaitAsync(Wait));
        Assert.Equal(StatusCode.Cancelled, (await Assert.ThrowsAsync<RpcException>(() => gone.WaitAsync(Wait))).StatusCode);
        Assert.Equal(new Got(true, "three"), await last.WaitAsync(Wait));
        Assert.Equal(Floats(3), landings[2].Values);
        Assert.Equal(0, conn.OpenStreams);
    }

    // ---------------------------------------------------------------- one receive per answer (TryReceiveHead)

    // Calls on one connection, answered in `order` (stream i answers message i), the first read `first` bytes long and
    // the rest cut by `rest`; every answer lands whole (or, with a head unlike the others', is read whole all the same).
    private static async Task<H2ClientConnection> Answers(string[] messages, int[] order, int first, Func<int, int> rest)
    {
        var conn = H2ClientConnection.ForFeed(BittensorChannelOptions.Default);
        var landings = messages.Select(_ => new AnswerLanding(Shape)).ToArray();
        foreach (var l in landings) Array.Fill(l.Values, float.NaN);
        var calls = landings.Select(l => LandingCall(conn, l)).ToArray();
        byte[] bytes = [.. Frame(H2.Settings, 0, 0, []), .. order.SelectMany(i => Whole((2 * i) + 1, Grpc(Floats(i + 1), messages[i])))];

        var loop = conn.Feed(bytes, i => i == 0 ? first : rest(i));

        Assert.True(loop.IsCompleted);
        Assert.Null(conn.Bug);
        for (var i = 0; i < messages.Length; i++)
        {
            Assert.Equal(new Got(true, messages[i]), await calls[i].WaitAsync(Wait));
            Assert.Equal(Floats(i + 1), landings[i].Values);
        }
        Assert.Equal(0, conn.OpenStreams);
        return conn;
    }

    private static int AnswerLength(string message) => 9 + H2Blocks.ResponseHeaders.Length + 9 + Grpc(Floats(1), message).Length + 9 + H2Blocks.OkTrailers.Length;

    [Fact]
    public async Task An_answer_whose_head_floats_and_tail_come_in_one_receive_lands_whole_cut_anywhere()
    {
        // After the first answer (which tells where the floats begin), each answer is received at its frame start into
        // [head | the call's array | tail]: reads of exactly one answer, and reads that end at every byte of the next
        // answer's head, of its floats at a stride, of its tail and of the answer after it.
        string[] alike = ["one", "two", "six", "ten"];
        var size = AnswerLength("one");
        var settingsAndFirst = 9 + size;
        var (floatsAt, floatsEnd, _) = Layout(Grpc(Floats(1), "one"));
        var head = floatsAt - 9; // bytes of an answer before its floats
        var tail = floatsEnd - 9; // where an answer's floats end
        var ends = Enumerable.Range(1, head + 8).Concat(Enumerable.Range(head, tail - head).Where(c => c % 509 == 0))
            .Concat(Enumerable.Range(tail - 8, size + head + 16 - tail));
        long headReads = 0;
        foreach (var end in ends)
        {
            headReads += (await Answers(alike, [0, 1, 2, 3], settingsAndFirst, _ => end)).HeadReads;
        }
        headReads += (await Answers(alike, [0, 1, 2, 3], settingsAndFirst, _ => size)).HeadReads;
        headReads += (await Answers(alike, [0, 1, 2, 3], settingsAndFirst, _ => int.MaxValue)).HeadReads;
        Assert.True(headReads > 0, "no answer took the one receive at its frame start");
    }

    [Fact]
    public async Task An_answer_of_exactly_one_read_each_takes_one_receive_and_lands_whole()
    {
        // The fan-out's case: each answer arrives alone, whole, as the axon wrote it; after the first, one receive each.
        string[] alike = ["one", "two", "six", "ten"];
        var size = AnswerLength("one");
        var conn = await Answers(alike, [0, 1, 2, 3], 9, _ => size); // the peer's SETTINGS alone, then one answer per read
        Assert.Equal(3, conn.HeadReads);
        Assert.Equal(3L * Shape.ElementCount * 4, conn.BytesLandedDirectly);
    }

    [Theory]
    [InlineData(new[] { 0, 1, 2, 3 }, "one", "two", "sixty-six", "x")] // heads longer and shorter than the first's
    [InlineData(new[] { 0, 2, 1, 3 }, "one", "two", "six", "ten")] // another call's answer than the one next in line
    [InlineData(new[] { 0, 3, 2, 1 }, "one", "a longer one", "x", "ten")]
    public async Task An_answer_not_as_the_head_read_expected_still_lands_whole(int[] order, string a, string b, string c, string d)
    {
        // The head read guessed the call (the lowest open stream) and the head's length (the last answer's): a head of
        // another length or another call's answer moves the received bytes back and is read as after one ordinary read.
        string[] messages = [a, b, c, d];
        var first = 9 + AnswerLength(messages[order[0]]);
        foreach (var rest in new Func<int, int>[] { i => AnswerLength(messages[order[Math.Min(i, 3)]]), _ => int.MaxValue, _ => 4096, _ => 100 })
        {
            await Answers(messages, order, first, rest);
        }
    }

    [Fact]
    public async Task An_error_answer_in_a_head_read_fails_its_call_and_the_next_answer_lands()
    {
        // The call next in line is answered with a trailers-only error (no message) as short as a head, the next call's
        // whole answer behind it in the same receive: the first fails with the peer's status, the second lands whole.
        var conn = H2ClientConnection.ForFeed(BittensorChannelOptions.Default);
        var landings = new[] { new AnswerLanding(Shape), new AnswerLanding(Shape), new AnswerLanding(Shape) };
        var calls = landings.Select(l => LandingCall(conn, l)).ToArray();
        var one = Whole(1, Grpc(Floats(1), "one"));
        var error = Frame(H2.Headers, H2.EndHeaders | H2.EndStream, 3, H2Blocks.Build(200, StatusCode.ResourceExhausted, "busy"));
        var three = Whole(5, Grpc(Floats(3), "three"));

        var loop = conn.Feed([.. Frame(H2.Settings, 0, 0, []), .. one, .. error, .. three], i => i == 0 ? 9 + one.Length : int.MaxValue);

        Assert.True(loop.IsCompleted);
        Assert.Null(conn.Bug);
        Assert.Equal(new Got(true, "one"), await calls[0].WaitAsync(Wait));
        Assert.Equal(StatusCode.ResourceExhausted, (await Assert.ThrowsAsync<RpcException>(() => calls[1].WaitAsync(Wait))).StatusCode);
        Assert.Equal(new Got(true, "three"), await calls[2].WaitAsync(Wait));
        Assert.Equal(Floats(3), landings[2].Values);
        Assert.Equal(1, conn.HeadReads);
    }

    // ---------------------------------------------------------------- answers in 16 KB DATA frames (Kestrel, grpcio)

    // An answer as Kestrel writes it: HEADERS, the message cut into DATA frames of `frame` bytes (the last one shorter),
    // the trailers; `firstFrame` (when given) is the first DATA frame's length instead (a peer that sends the prefix alone).
    private static byte[] Framed(int stream, byte[] grpc, int frame, int? firstFrame = null)
    {
        var bytes = new List<byte>(Frame(H2.Headers, H2.EndHeaders, stream, H2Blocks.ResponseHeaders));
        var at = 0;
        for (var i = 0; at < grpc.Length; i++)
        {
            var k = Math.Min(i == 0 && firstFrame is { } f ? f : frame, grpc.Length - at);
            bytes.AddRange(Frame(H2.Data, 0, stream, grpc[at..(at + k)]));
            at += k;
        }
        bytes.AddRange(Frame(H2.Headers, H2.EndHeaders | H2.EndStream, stream, H2Blocks.OkTrailers));
        return [.. bytes];
    }

    // Landing calls on one connection answered in order, answer i framed by frames(i); reads: the peer's SETTINGS alone,
    // then `read(i, answer length)` bytes at a time. Every answer's values are checked.
    private static async Task<H2ClientConnection> FramedAnswers(int count, Func<int, byte[]> answer, Func<int, int> read)
    {
        var conn = H2ClientConnection.ForFeed(BittensorChannelOptions.Default);
        var landings = Enumerable.Range(0, count).Select(_ => new AnswerLanding(Shape)).ToArray();
        foreach (var l in landings) Array.Fill(l.Values, float.NaN);
        var calls = landings.Select(l => LandingCall(conn, l)).ToArray();
        byte[] bytes = [.. Frame(H2.Settings, 0, 0, []), .. Enumerable.Range(0, count).SelectMany(answer)];

        var loop = conn.Feed(bytes, i => i == 0 ? 9 : read(i));

        Assert.True(loop.IsCompleted);
        Assert.Null(conn.Bug);
        for (var i = 0; i < count; i++)
        {
            Assert.Equal(new Got(true, "m" + i), await calls[i].WaitAsync(Wait));
            Assert.Equal(Floats(i + 1), landings[i].Values);
        }
        Assert.Equal(0, conn.OpenStreams);
        return conn;
    }

    [Theory]
    [InlineData(16_384)] // Kestrel's and grpcio's frames
    [InlineData(8_192)]
    [InlineData(30_000)]
    public async Task Answers_in_DATA_frames_of_16_KB_land_whole_after_the_first(int frame)
    {
        // The fan-out's case against Kestrel: each answer arrives alone, whole, in five 16 KB DATA frames. The first tells
        // where the floats begin and how the peer frames an answer; each answer after it lands all its floats: into
        // [head | floats of frame 1 | frame 2's header | floats of frame 2 | … | tail] in one receive. (Before, a head read
        // that found the floats split over frames moved them all back and copied them: 0 bytes landed.)
        const int Count = 4;
        var size = Framed(1, Grpc(Floats(1), "m0"), frame).Length;
        var conn = await FramedAnswers(Count, i => Framed((2 * i) + 1, Grpc(Floats(i + 1), "m" + i), frame), _ => size);
        Assert.Equal((Count - 1L) * Shape.ElementCount * 4, conn.BytesLandedDirectly);
        Assert.Equal(Count - 1, conn.HeadReads);
        Assert.Equal(frame, conn.SplitFrame);
    }

    [Fact]
    public async Task Answers_in_16_KB_frames_land_whole_with_the_reads_cut_anywhere()
    {
        // Reads that end at every byte of the second answer's head and of its frame headers, and at a stride through its
        // floats: each answer's values are right; most of the floats land (what a read cut leaves for the next read
        // lands there, the next frames' floats with it).
        const int Frame16 = 16_384;
        var size = Framed(1, Grpc(Floats(1), "m0"), Frame16).Length;
        var grpc = Grpc(Floats(1), "m0");
        var head = 9 + H2Blocks.ResponseHeaders.Length + 9 + 5 + H2ClientConnection.ClientStream.FindGap(grpc.AsSpan(5), grpc.Length - 5, Shape.ElementCount * 4);
        var headers = Enumerable.Range(1, 4).Select(k => 9 + H2Blocks.ResponseHeaders.Length + (k * (9 + Frame16)));
        var cuts = Enumerable.Range(1, head + 8)
            .Concat(headers.SelectMany(h => Enumerable.Range(h - 4, 18)))
            .Concat(Enumerable.Range(head, size - head).Where(c => c % 1021 == 0))
            .Concat(Enumerable.Range(size - 40, 48));
        long landed = 0;
        foreach (var cut in cuts)
        {
            // Answer 0 alone (learned from), answer 1 cut at `cut`, the rest as it comes; then reads of `cut` throughout.
            landed += (await FramedAnswers(3, i => Framed((2 * i) + 1, Grpc(Floats(i + 1), "m" + i), Frame16),
                i => i == 1 ? size : i == 2 ? cut : int.MaxValue)).BytesLandedDirectly;
            await FramedAnswers(3, i => Framed((2 * i) + 1, Grpc(Floats(i + 1), "m" + i), Frame16), _ => cut);
        }
        Assert.True(landed > 0, "no float landed");
    }

    [Fact]
    public async Task Answers_whose_framing_changes_from_one_to_the_next_still_read_right()
    {
        // The plan follows the last answer's framing; an answer framed otherwise (one frame, smaller frames, the prefix
        // alone in the first frame, frames of 1 KB) moves what was received back and is read as after an ordinary read.
        Func<int, byte[]>[] framings =
        [
            i => Framed((2 * i) + 1, Grpc(Floats(i + 1), "m" + i), 16_384),
            i => Whole((2 * i) + 1, Grpc(Floats(i + 1), "m" + i)),
            i => Framed((2 * i) + 1, Grpc(Floats(i + 1), "m" + i), 16_384, firstFrame: 5),
            i => Framed((2 * i) + 1, Grpc(Floats(i + 1), "m" + i), 10_000),
            i => Framed((2 * i) + 1, Grpc(Floats(i + 1), "m" + i), 1_024),
            i => Framed((2 * i) + 1, Grpc(Floats(i + 1), "m" + i), 16_384),
        ];
        var order = new[] { 0, 1, 0, 2, 0, 3, 3, 4, 0, 5, 0 };
        var sizes = order.Select((f, i) => framings[f](i).Length).ToArray();
        foreach (var read in new Func<int, int>[] { i => sizes[Math.Min(i - 1, sizes.Length - 1)], _ => int.MaxValue, _ => 4096, _ => 16_393, _ => 333 })
        {
            await FramedAnswers(order.Length, i => framings[order[i]](i), read);
        }
    }
}

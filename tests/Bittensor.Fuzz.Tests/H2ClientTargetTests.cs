using Bittensor.Protocol;
using Bittensor.Protocol.Lean;
using Bittensor.Protocol.Wire;
using Google.Protobuf;
using Grpc.Core;

namespace Bittensor.Fuzz.Tests;

/// <summary>
/// The <c>h2client</c> target's socket-free path (<see cref="H2ClientConnection.Feed"/>) gives the answers the socket path
/// gives: a whole answer, cut into reads every way the target cuts them, is the call's result (so the target's oracle
/// is not met by failing everything), and hostile answers end their calls with the client's statuses.
/// </summary>
public sealed class H2ClientTargetTests
{
    private static byte[] Frame(byte type, byte flags, int stream, byte[] payload)
    {
        var f = new byte[9 + payload.Length];
        H2Output.WriteFrameHeader(f, payload.Length, type, flags, stream);
        payload.CopyTo(f, 9);
        return f;
    }

    private static byte[] Message(TensorMessage m)
    {
        var body = m.ToByteArray();
        return [0, (byte)(body.Length >> 24), (byte)(body.Length >> 16), (byte)(body.Length >> 8), (byte)body.Length, .. body];
    }

    private static TensorMessage Answer()
    {
        var m = new TensorMessage { Version = 150, Message = "ok", ReturnCode = ReturnCode.Success };
        m.Tensors.Add(TensorCodec.ToTensor(new float[] { 1, 2, 3, 4, 5, 6 }, [1, 2, 3], Modality.Tensor));
        return m;
    }

    private static byte[] Whole(int stream, byte[] message) =>
        [.. Frame(H2.Headers, H2.EndHeaders, stream, H2Blocks.ResponseHeaders), .. Frame(H2.Data, 0, stream, message),
            .. Frame(H2.Headers, H2.EndHeaders | H2.EndStream, stream, H2Blocks.OkTrailers)];

    private static readonly Metadata Headers = new() { { "bittensor-auth", "test" } };

    private static readonly TimeSpan Wait = TimeSpan.FromSeconds(30);

    [Theory]
    [InlineData(0)]
    [InlineData(1)]
    [InlineData(2)]
    [InlineData(3)]
    [InlineData(4)]
    [InlineData(5)]
    [InlineData(6)]
    [InlineData(7)]
    public async Task A_whole_answer_cut_into_reads_any_way_is_the_calls_result_read_in_place_or_returned(int cut)
    {
        var conn = H2ClientConnection.ForFeed(BittensorChannelOptions.Default);
        var plain = conn.CallAsync(BittensorMethod.Forward, new TensorMessage { Hotkey = "a" }, Headers, DateTime.MaxValue, CancellationToken.None);
        var read = conn.CallAsync(BittensorMethod.Forward, new TensorMessage { Hotkey = "b" }, Headers, DateTime.MaxValue, CancellationToken.None,
            a => TensorMessage.Parser.ParseFrom(a.ToByteArray())); // a deep copy: the answer's buffers are the transport's
        var message = Message(Answer());

        var loop = conn.Feed([.. Frame(H2.Settings, 0, 0, []), .. Whole(3, message), .. Whole(1, message)], H2ClientTarget.ReadSizes((byte)(cut << 5), 7));

        Assert.True(loop.IsCompleted);
        Assert.Null(conn.Bug);
        // Answered by the read loop (on a test thread with xUnit's context the awaiting continuations run on the pool).
        Assert.Equal(Answer(), await plain.WaitAsync(Wait));
        Assert.Equal(Answer(), await read.WaitAsync(Wait));
        Assert.Equal(0, conn.OpenStreams);
        // Both read paths are reached however the bytes are cut: the reader call's message (one DATA frame) is buffered
        // whole and read in place; the plain call's goes into its own array (straight from a read when nothing is buffered).
        Assert.Equal(1, conn.ReadsInPlace);
    }

    [Fact]
    public async Task Hostile_answers_end_their_calls_with_the_clients_statuses_and_the_end_of_input_ends_the_rest()
    {
        var conn = H2ClientConnection.ForFeed(BittensorChannelOptions.Default with { MaxReceiveMessageSize = 1 << 20 });
        Task<TensorMessage> Call() => conn.CallAsync(BittensorMethod.Forward, new TensorMessage(), Headers, DateTime.MaxValue, CancellationToken.None);
        var (tooLarge, compressed, cutShort) = (Call(), Call(), Call());

        var loop = conn.Feed(
            [.. Frame(H2.Headers, H2.EndHeaders, 1, H2Blocks.ResponseHeaders), .. Frame(H2.Data, 0, 1, [0, 0x7f, 0xff, 0xff, 0xff]),
                .. Frame(H2.Headers, H2.EndHeaders, 3, H2Blocks.ResponseHeaders), .. Frame(H2.Data, 0, 3, [1, 0, 0, 0, 1, 0]),
                .. Frame(H2.Headers, H2.EndHeaders, 5, H2Blocks.ResponseHeaders), .. Frame(H2.Data, 0, 5, [0, 0, 0x0f, 0, 0, 1, 2, 3])],
            _ => 3);

        Assert.True(loop.IsCompleted);
        Assert.Null(conn.Bug);
        Assert.Equal(StatusCode.ResourceExhausted, (await Assert.ThrowsAsync<RpcException>(() => tooLarge.WaitAsync(Wait))).StatusCode);
        Assert.Equal(StatusCode.Internal, (await Assert.ThrowsAsync<RpcException>(() => compressed.WaitAsync(Wait))).StatusCode);
        Assert.Equal(StatusCode.Unavailable, (await Assert.ThrowsAsync<RpcException>(() => cutShort.WaitAsync(Wait))).StatusCode);
        Assert.False(conn.IsUsable);
    }

    [Fact]
    public async Task A_call_cancelled_while_the_read_loop_receives_ends_Cancelled_and_its_late_answer_is_dropped()
    {
        var conn = H2ClientConnection.ForFeed(BittensorChannelOptions.Default);
        using var cancel = new CancellationTokenSource();
        var first = conn.CallAsync(BittensorMethod.Forward, new TensorMessage(), Headers, DateTime.MaxValue, CancellationToken.None);
        var gone = conn.CallAsync(BittensorMethod.Forward, new TensorMessage(), Headers, DateTime.MaxValue, cancel.Token);
        var last = conn.CallAsync(BittensorMethod.Forward, new TensorMessage(), Headers, DateTime.MaxValue, CancellationToken.None);
        var message = Message(Answer());

        // 9-byte reads; the second caller gives up at the 3rd (inside stream 1's answer), before its own answer comes.
        var loop = conn.Feed([.. Whole(1, message), .. Whole(3, message), .. Whole(5, message)], read =>
        {
            if (read == 2) cancel.Cancel();
            return 9;
        });

        Assert.True(loop.IsCompleted);
        Assert.Null(conn.Bug);
        Assert.Equal(StatusCode.Cancelled, (await Assert.ThrowsAsync<RpcException>(() => gone.WaitAsync(Wait))).StatusCode);
        Assert.Equal(Answer(), await first.WaitAsync(Wait));
        Assert.Equal(Answer(), await last.WaitAsync(Wait));
    }

    [Theory]
    [InlineData("answer-landed", true)]
    [InlineData("three-split-landed", true)]
    [InlineData("hostile-landed", false)]
    public async Task The_landing_seeds_reach_the_landing_the_target_compares(string seed, bool takes)
    {
        // The seed's own calls (byte 0) and bytes, with every reader call landing as the target makes them: the first
        // call's reader finds its floats in its array (the answer is the expected [1, 2, 16]), or, for a tensor of
        // another shape, not (the buffer whole again, decoded as before).
        var input = File.ReadAllBytes(Path.Combine(AppContext.BaseDirectory, "Corpus", "h2client", seed));
        Assert.Equal(0x40, input[1] & 0xC0);
        var conn = H2ClientConnection.ForFeed(BittensorChannelOptions.Default);
        var landing = new AnswerLanding(new Float32AnswerShape([1, 2, 16]));
        var took = conn.CallAsync(BittensorMethod.Forward, new TensorMessage(), Headers, DateTime.MaxValue, CancellationToken.None,
            a => (object)landing.TryTake(a.Tensors[0]), landing);
        var others = Enumerable.Range(1, (input[0] & 3) % 3).Select(_ => conn.CallAsync(BittensorMethod.Forward, new TensorMessage(), Headers,
            DateTime.MaxValue, CancellationToken.None)).ToArray();

        var loop = conn.Feed(input[2..], H2ClientTarget.ReadSizes(input[0], input[1]));

        Assert.True(loop.IsCompleted);
        Assert.Null(conn.Bug);
        Assert.Equal(takes, (bool)await took.WaitAsync(Wait));
        if (takes) Assert.All(landing.Values, v => Assert.Equal(0f, v)); // the seeds' answer: 32 zeros
        foreach (var o in others)
        {
            try
            {
                await o.WaitAsync(Wait);
            }
            catch (RpcException)
            {
                // the hostile seed's other streams fail with a status
            }
        }
    }

    [Fact]
    public void Every_h2client_seed_passes_the_targets_oracle()
    {
        var seeds = FuzzDriver.Corpus("h2client");
        Assert.True(seeds.Count >= 8, $"{seeds.Count} seeds");
        foreach (var seed in seeds) H2ClientTarget.Run(seed);
    }
}

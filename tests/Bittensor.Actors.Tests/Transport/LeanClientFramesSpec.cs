using Bittensor.Actors.Axon;
using Bittensor.Actors.Tests.Axon;
using Bittensor.Core.Crypto;
using Bittensor.Neurons.Demo;
using Bittensor.Protocol;
using Bittensor.Protocol.Wire;

namespace Bittensor.Actors.Tests.Transport;

/// <summary>
/// The lean client announces a 1 MiB SETTINGS_MAX_FRAME_SIZE, so a full 2021 answer (<c>[1, 16, 1024]</c> float32,
/// 65.7 KB) comes from the lean server as one DATA frame (grpc-dotnet's client announces nothing: 16 KB frames, five per
/// answer). Kestrel keeps sending 16 KB DATA frames whatever the client announces (25 frames for 5 answers when this
/// was written), so against Kestrel only the answers are checked. Counted by the client's connection.
/// </summary>
public sealed class LeanClientFramesSpec(Xunit.Abstractions.ITestOutputHelper output) : AxonTestBase(output)
{
    private readonly Xunit.Abstractions.ITestOutputHelper _output = output;

    [Theory]
    [InlineData("kestrel")]
    [InlineData("lean")]
    public async Task A_full_answer_arrives_in_one_DATA_frame_from_the_lean_server(string server)
    {
        var options = new AxonOptions { Transport = server == "lean" ? new LeanServerTransport() : new KestrelServerTransport() };
        var (_, port) = await StartAxon(Loopback(networkDim: 1024), DemoModels.Echo(1024), options);
        using var connection = LeanClientTransport.Instance.Connect("127.0.0.1", port, TestChannel.Options);
        var auth = new RequestAuth(new KeyPairRequestSigner(Alice));
        const int Calls = 5;

        for (var i = 0; i < Calls; i++)
        {
            var request = new TensorMessage { Version = ProtocolVersion.Current, Hotkey = Alice.ToSs58() };
            request.Tensors.Add(TensorCodec.ToTensor(Enumerable.Range(1, 16).Select(t => (long)t).ToArray(), [1, 16], Modality.Text));
            var answer = await connection.CallAsync(BittensorMethod.Forward, request, await auth.CreateHeadersAsync(), DateTime.UtcNow.AddSeconds(30),
                CancellationToken.None);
            Assert.Equal(ReturnCode.Success, answer.ReturnCode);
            Assert.True(answer.Tensors[0].Buffer.Length > 64 * 1024, $"answer buffer {answer.Tensors[0].Buffer.Length} bytes");
        }

        var frames = ((LeanPeerConnection)connection).Current!.DataFramesReceived;
        _output.WriteLine($"{server}: {frames} DATA frames for {Calls} answers");
        if (server == "lean") Assert.Equal(Calls, frames);
        else Assert.True(frames >= Calls, $"{frames} DATA frames for {Calls} answers");
    }

    /// <summary>
    /// The dendrite's fan-out (what <c>btcli run validator</c> queries peers with) over the lean client: each answer's
    /// floats are received from the socket straight into its result's array (<see cref="AnswerLanding"/>), and the
    /// results are the axon's answers, value for value, from the lean server and from Kestrel (16 KB DATA frames: the
    /// floats of one answer in five frames, received into the array around the frames' headers).
    /// </summary>
    [Theory]
    [InlineData("kestrel")]
    [InlineData("lean")]
    public async Task A_dendrite_round_receives_each_answer_straight_into_its_results_array(string server)
    {
        const int Answer = 16 * 1024 * 4; // one answer's float bytes
        var options = new AxonOptions { Transport = server == "lean" ? new LeanServerTransport() : new KestrelServerTransport() };
        var (_, port) = await StartAxon(Loopback(networkDim: 1024), DemoModels.Echo(1024), options);
        var dendrite = new Bittensor.Actors.Dendrite.Dendrite(Sys, new KeyPairRequestSigner(Alice),
            Bittensor.Actors.Dendrite.DendriteSettings.Default with { NetworkDim = 1024, Timeout = TimeSpan.FromSeconds(30) });
        var tokens = new long[1, 16];
        for (var i = 0; i < 16; i++) tokens[0, i] = i + 1;
        var expected = DemoModels.EchoForward(DenseTensor.Int64([1, 16], [.. Enumerable.Range(1, 16).Select(t => (long)t)]), 1024).Floats;
        float[]? previous = null;
        // BytesLandedFrom counts by port number for the whole process: an earlier test's server may have had this
        // ephemeral port, so only the change over this test's rounds is this test's.
        var landedBefore = LeanClientTransport.BytesLandedFrom(port);

        for (var round = 0; round < 4; round++)
        {
            var result = (await dendrite.ForwardText([new Bittensor.Core.Domain.EndpointInfo(Bob.ToSs58(), "127.0.0.1", port)], tokens))[0];
            Assert.Equal(ReturnCode.Success, result.Code);
            Assert.Equal(expected, result.Tensor.Floats);
            Assert.NotSame(previous, result.Tensor.Floats); // each result owns its array
            previous = result.Tensor.Floats;
        }

        var landed = LeanClientTransport.BytesLandedFrom(port) - landedBefore;
        _output.WriteLine($"{server}: {landed} answer bytes received straight into results' arrays over 4 rounds");
        // The first round tells the connection where an answer's floats begin and how the server frames it; the rounds
        // after it land. Against Kestrel's 16 KB frames this landed 0 or ~95 bytes over 4 rounds before session 19 (the
        // read loop planned the floats as one run and moved them back when a frame header came in between).
        Assert.True(landed >= Answer, $"{landed} answer bytes were received straight into a result's array during this test's rounds (one answer's floats: {Answer})");
    }

    /// <summary>
    /// A dendrite's rounds one after the other to a lean axon, as `btcli run validator` makes them: between two rounds the
    /// connection has no call open, and its read loop waits for the next answer without receiving, so that answer comes in
    /// one receive (head, floats into the result's array, tail) once its round's call is made.
    /// </summary>
    [Fact]
    public async Task Rounds_one_after_another_take_each_answer_in_one_receive_head_floats_and_tail()
    {
        var (_, port) = await StartAxon(Loopback(networkDim: 1024), DemoModels.Echo(1024), new AxonOptions { Transport = new LeanServerTransport() });
        var dendrite = new Bittensor.Actors.Dendrite.Dendrite(Sys, new KeyPairRequestSigner(Alice),
            Bittensor.Actors.Dendrite.DendriteSettings.Default with { NetworkDim = 1024, Timeout = TimeSpan.FromSeconds(30) });
        var tokens = new long[1, 16];
        for (var i = 0; i < 16; i++) tokens[0, i] = i + 1;
        var expected = DemoModels.EchoForward(DenseTensor.Int64([1, 16], [.. Enumerable.Range(1, 16).Select(t => (long)t)]), 1024).Floats;
        var endpoint = new Bittensor.Core.Domain.EndpointInfo(Bob.ToSs58(), "127.0.0.1", port);
        // Two rounds first: the first answer tells where an answer's floats begin (the read loop learns the head's length).
        for (var round = 0; round < 2; round++) Assert.Equal(ReturnCode.Success, (await dendrite.ForwardText([endpoint], tokens))[0].Code);
        var headsBefore = LeanClientTransport.HeadReadsFrom(port); // process-wide by port: only this test's change counts

        for (var round = 0; round < 6; round++)
        {
            var result = (await dendrite.ForwardText([endpoint], tokens))[0];
            Assert.Equal(ReturnCode.Success, result.Code);
            Assert.Equal(expected, result.Tensor.Floats);
        }

        var heads = LeanClientTransport.HeadReadsFrom(port) - headsBefore;
        _output.WriteLine($"{heads} of 6 answers came in one receive with their head");
        // Before, a connection with no call open posted a receive of the head alone, so no answer of a round made after
        // the last one was answered ever came this way.
        Assert.True(heads >= 1, "no answer of a round came in one receive with its head");
    }
}

using System.Net;
using System.Net.Sockets;
using Akka.Actor;
using Bittensor.Actors.Axon;
using Bittensor.Actors.Dendrite;
using Bittensor.Actors.Tests.Axon;
using Bittensor.Protocol;
using Bittensor.Protocol.Wire;
using DendriteClient = Bittensor.Actors.Dendrite.Dendrite;

namespace Bittensor.Actors.Tests.Dendrite;

public sealed class DendriteSpec(Xunit.Abstractions.ITestOutputHelper output) : AxonTestBase(output)
{
    private const int Dim = 8;

    /// <summary>A clock the test moves by hand (backoff windows, queue deadlines).</summary>
    private sealed class ManualClock : TimeProvider
    {
        private DateTimeOffset _now = DateTimeOffset.UtcNow;

        public override DateTimeOffset GetUtcNow() => _now;

        public void Advance(TimeSpan by) => _now += by;
    }

    private DendriteClient NewDendrite(DendriteSettings? settings = null, TimeProvider? clock = null) =>
        new(Sys, new KeyPairRequestSigner(Alice), settings ?? DendriteSettings.Default with { NetworkDim = Dim, Timeout = TimeSpan.FromSeconds(20) },
            new DendriteOptions { Time = clock, Random = () => new BackoffPolicySpec.FixedRandom(0.5) });

    private static EndpointInfo Endpoint(int port, string? hotkey = null) => new(hotkey ?? Bob.ToSs58(), "127.0.0.1", port);

    private static int FreePort()
    {
        var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        var port = ((IPEndPoint)listener.LocalEndpoint).Port;
        listener.Stop();
        return port;
    }

    [Fact]
    public async Task Forward_text_returns_each_endpoints_echo_representation_and_latency()
    {
        var (_, port) = await StartAxon(Loopback(networkDim: Dim), DemoModels.Echo(Dim));
        var dendrite = NewDendrite();

        var results = await dendrite.ForwardText([Endpoint(port)], new long[,] { { 3, 4 } });

        var r = Assert.Single(results);
        Assert.Equal(ReturnCode.Success, r.Code);
        Assert.True(r.Tensor.HasShape(1, 2, Dim));
        Assert.Equal((float)((4 * 1e-3) + (5 * 1e-6)), r.Tensor.Floats![Dim + 5]);
        Assert.True(r.Latency > TimeSpan.Zero);
    }

    [Fact]
    public async Task Forward_of_strings_uses_the_byte_level_fallback_tokenizer()
    {
        var (_, port) = await StartAxon(Loopback(networkDim: Dim), DemoModels.Echo(Dim));
        var dendrite = NewDendrite();

        var r = (await dendrite.ForwardText([Endpoint(port)], ["Hi"]))[0];

        Assert.Equal(ReturnCode.Success, r.Code);
        Assert.Equal((float)('i' * 1e-3), r.Tensor.Floats![Dim]);
    }

    [Fact]
    public async Task Backward_returns_a_float_tensor_shaped_like_the_inputs()
    {
        var (_, port) = await StartAxon(Loopback(networkDim: Dim), DemoModels.Echo(Dim));
        var dendrite = NewDendrite();
        var grads = DenseTensor.Float32([1, 2, Dim], Enumerable.Repeat(0.25f, 2 * Dim).ToArray());

        var r = (await dendrite.Backward([Endpoint(port)], DenseTensor.FromTokens(new long[,] { { 1, 2 } }), [grads]))[0];

        Assert.Equal(ReturnCode.Success, r.Code);
        Assert.True(r.Tensor.HasShape(1, 2));
        Assert.Equal([Dim * 0.25f, Dim * 0.25f], r.Tensor.Floats!);
    }

    [Fact]
    public async Task A_dead_endpoint_is_backed_off_not_retried_in_a_loop_and_recovers_after_the_delay()
    {
        var clock = new ManualClock();
        var dendrite = NewDendrite(DendriteSettings.Default with
        {
            NetworkDim = Dim, BackoffMin = TimeSpan.FromSeconds(1), BackoffMax = TimeSpan.FromSeconds(8), Timeout = TimeSpan.FromSeconds(20),
        }, clock);
        var port = FreePort();
        var endpoint = Endpoint(port);
        long[,] tokens = { { 1 } };

        var down = (await dendrite.ForwardText([endpoint], tokens))[0];
        var backedOff = (await dendrite.ForwardText([endpoint], tokens))[0];

        Assert.Equal(ReturnCode.Unavailable, down.Code);
        Assert.Equal(new float[Dim], down.Tensor.Floats);
        Assert.Equal(ReturnCode.Backoff, backedOff.Code);
        var stats = await dendrite.Actor.Ask<EndpointStats>(new DendriteActor.GetEndpointStats(endpoint.Hotkey), Wait);
        Assert.Equal(1, stats.Calls); // the backed-off call never reached the network
        Assert.Equal(1, stats.ConsecutiveFailures);

        await StartAxon(Loopback(networkDim: Dim) with { Port = port }, DemoModels.Echo(Dim));
        clock.Advance(TimeSpan.FromMilliseconds(499)); // fixed jitter 0.5 of a 1 s ceiling: still inside the window
        Assert.Equal(ReturnCode.Backoff, (await dendrite.ForwardText([endpoint], tokens))[0].Code);
        clock.Advance(TimeSpan.FromMilliseconds(2));
        var recovered = (await dendrite.ForwardText([endpoint], tokens))[0];

        Assert.True(recovered.Code == ReturnCode.Success, recovered.Message);
        var after = await dendrite.Actor.Ask<EndpointStats>(new DendriteActor.GetEndpointStats(endpoint.Hotkey), Wait);
        Assert.Equal(0, after.ConsecutiveFailures);
        Assert.Null(after.BackedOffUntil);
    }

    [Fact]
    public async Task A_model_slower_than_the_callers_deadline_yields_Timeout_and_zeros()
    {
        var model = new GatedModel();
        var (_, port) = await StartAxon(Loopback(networkDim: Dim), model.Handlers(Dim));
        var dendrite = NewDendrite();

        var r = (await dendrite.ForwardText([Endpoint(port)], new long[,] { { 1, 2 } }, TimeSpan.FromMilliseconds(300)))[0];

        Assert.Equal(ReturnCode.Timeout, r.Code);
        Assert.True(r.Tensor.HasShape(1, 2, Dim));
        Assert.All(r.Tensor.Floats!, v => Assert.Equal(0f, v));
        model.Open();
    }

    [Fact]
    public async Task A_request_over_the_peers_4_MiB_limit_fails_fast_without_being_sent()
    {
        var (axon, port) = await StartAxon(Loopback(networkDim: Dim), DemoModels.Echo(Dim));
        var dendrite = NewDendrite();
        var tokens = new long[1, 600_000]; // 4.8 MB of int64

        var r = (await dendrite.ForwardText([Endpoint(port)], tokens))[0];

        Assert.Equal(ReturnCode.RequestSerializationException, r.Code);
        Assert.Contains("request exceeds peer's 4 MiB limit", r.Message, StringComparison.Ordinal);
        Assert.Equal(0, (await axon.Ask<AxonStatsSnapshot>(AxonActor.GetStats.Instance, Wait)).TotalCalls);
    }

    [Fact]
    public async Task An_answer_of_the_wrong_shape_is_a_ResponseShapeException_with_zeros()
    {
        var (_, port) = await StartAxon(Loopback(networkDim: 4), DemoModels.Echo(4));
        var dendrite = NewDendrite();

        var r = (await dendrite.ForwardText([Endpoint(port)], new long[,] { { 1 } }))[0];

        Assert.Equal(ReturnCode.ResponseShapeException, r.Code);
        Assert.True(r.Tensor.HasShape(1, 1, Dim));
    }

    [Fact]
    public async Task With_k_min_the_round_returns_once_k_answered_and_the_grace_period_ended()
    {
        var slow = new GatedModel();
        var (_, fast1) = await StartAxon(Loopback(networkDim: Dim), DemoModels.Echo(Dim));
        var (_, fast2) = await StartAxon(Loopback(networkDim: Dim), DemoModels.Echo(Dim));
        var (_, blocked) = await StartAxon(Loopback(networkDim: Dim), slow.Handlers(Dim));
        var dendrite = NewDendrite();
        EndpointInfo[] endpoints = [Endpoint(fast1, Bob.ToSs58()), Endpoint(blocked, Charlie.ToSs58()), Endpoint(fast2, Dave.ToSs58())];

        var results = await dendrite.ForwardText(endpoints, new long[,] { { 7 } }, TimeSpan.FromSeconds(30), new FanOutOptions(2, TimeSpan.FromMilliseconds(50)));

        Assert.Equal([ReturnCode.Success, ReturnCode.Timeout, ReturnCode.Success], results.Select(r => r.Code));
        Assert.Equal(endpoints, results.Select(r => r.Endpoint));
        Assert.True(results[1].Tensor.HasShape(1, 1, Dim));
        slow.Open();
    }

    [Fact]
    public async Task The_number_of_endpoint_actors_is_bounded_by_evicting_idle_ones()
    {
        var (_, port) = await StartAxon(Loopback(networkDim: Dim), DemoModels.Echo(Dim));
        var dendrite = NewDendrite(DendriteSettings.Default with { NetworkDim = Dim, MaxEndpoints = 2 });

        foreach (var key in new[] { Bob, Charlie, Dave, Eve })
            Assert.Equal(ReturnCode.Success, (await dendrite.ForwardText([Endpoint(port, key.ToSs58())], new long[,] { { 1 } }))[0].Code);

        await AwaitAssertAsync(async () => Assert.True(await dendrite.Actor.Ask<int>(DendriteActor.GetEndpointCount.Instance, Wait) <= 2));
    }
}

using Bittensor.Core.Domain;
using System.Net;
using System.Net.Sockets;
using Akka.Actor;
using Bittensor.Actors.Axon;
using Bittensor.Actors.Dendrite;
using Bittensor.Actors.Tests.Axon;
using Bittensor.Protocol;
using Bittensor.Protocol.Wire;
using DendriteClient = Bittensor.Actors.Dendrite.Dendrite;
using Bittensor.Neurons.Demo;

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
            new DendriteOptions { Time = clock, Random = () => new FixedRandom(0.5) });

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
    public async Task Forward_of_strings_uses_the_dendrite_s_tokenizer_and_needs_one()
    {
        var (_, port) = await StartAxon(Loopback(networkDim: Dim), DemoModels.Echo(Dim));
        var bytes = new DendriteClient(Sys, new KeyPairRequestSigner(Alice), DendriteSettings.Default with { NetworkDim = Dim }, tokenizer: t => [.. System.Text.Encoding.UTF8.GetBytes(t).Select(b => (long)b)]);

        var r = (await bytes.ForwardText([Endpoint(port)], ["Hi"]))[0];

        Assert.Equal(ReturnCode.Success, r.Code);
        Assert.Equal((float)('i' * 1e-3), r.Tensor.Floats![Dim]);
        var none = NewDendrite();
        await Assert.ThrowsAsync<InvalidOperationException>(() => none.ForwardText([Endpoint(port)], ["Hi"]));
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
    public async Task A_model_slower_than_the_callers_deadline_yields_a_timeout_code_and_zeros()
    {
        var model = new GatedModel();
        var (_, port) = await StartAxon(Loopback(networkDim: Dim), model.Handlers(Dim));
        var dendrite = NewDendrite();

        var r = (await dendrite.ForwardText([Endpoint(port)], new long[,] { { 1, 2 } }, TimeSpan.FromMilliseconds(300)))[0];

        // The axon budgets the call to the caller's deadline, so which side notices first is a race the
        // protocol allows: the client's DEADLINE_EXCEEDED (Timeout) or the axon's own NucleusTimeout answer.
        // Either way the model never answered and the caller gets zeros.
        Assert.Contains(r.Code, new[] { ReturnCode.Timeout, ReturnCode.NucleusTimeout });
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

    [Fact]
    public async Task Forward_of_a_tensor_uses_the_TENSOR_modality_and_the_first_feature()
    {
        var (_, port) = await StartAxon(Loopback(networkDim: Dim), DemoModels.Echo(Dim));
        var dendrite = NewDendrite();

        var r = (await dendrite.ForwardTensor([Endpoint(port)], DenseTensor.Float32([1, 2, 3], [1, 9, 9, 2, 9, 9])))[0];

        Assert.Equal(ReturnCode.Success, r.Code);
        Assert.Equal((float)(2 * 1e-3), r.Tensor.Floats![Dim]);
    }

    /// <summary>Stands in for the wallet's signer actor: answers a sign request with the signature of its key.</summary>
    private sealed class SignerActor : ReceiveActor
    {
        public sealed record SignThis(byte[] Payload);

        public SignerActor(Bittensor.Core.Crypto.Sr25519KeyPair key) => Receive<SignThis>(m => Sender.Tell(key.Sign(m.Payload)));
    }

    [Fact]
    public async Task Requests_can_be_signed_by_an_actor_through_an_ask()
    {
        var (_, port) = await StartAxon(Loopback(networkDim: Dim), DemoModels.Echo(Dim));
        var signerActor = Sys.ActorOf(Props.Create(() => new SignerActor(Charlie)));
        var signer = ActorRequestSigner.Create(signerActor, Charlie.ToSs58(), bytes => new SignerActor.SignThis(bytes), reply => (byte[])reply, Wait);
        var dendrite = new DendriteClient(Sys, signer, DendriteSettings.Default with { NetworkDim = Dim });

        var r = (await dendrite.ForwardText([Endpoint(port)], new long[,] { { 1 } }))[0];

        Assert.Equal(ReturnCode.Success, r.Code);
    }

    [Fact]
    public async Task Calls_beyond_an_endpoints_queue_are_shed_with_Backoff()
    {
        var model = new GatedModel();
        var (_, port) = await StartAxon(Loopback(networkDim: Dim), model.Handlers(Dim));
        var dendrite = NewDendrite(DendriteSettings.Default with { NetworkDim = Dim, EndpointMaxInFlight = 1, EndpointQueueCapacity = 1, Timeout = TimeSpan.FromSeconds(20) });
        var endpoint = Endpoint(port);
        var running = dendrite.ForwardText([endpoint], new long[,] { { 1 } });
        await model.FirstEntered.WaitAsync(Wait);
        var queued = dendrite.ForwardText([endpoint], new long[,] { { 2 } });

        await AwaitAssertAsync(async () => Assert.Equal(1, (await dendrite.Actor.Ask<EndpointStats>(new DendriteActor.GetEndpointStats(endpoint.Hotkey), Wait)).Queued));

        var shed = (await dendrite.ForwardText([endpoint], new long[,] { { 3 } }))[0];

        Assert.Equal(ReturnCode.Backoff, shed.Code);
        Assert.Contains("queue is full", shed.Message, StringComparison.Ordinal);
        model.Open();
        Assert.Equal(ReturnCode.Success, (await running)[0].Code);
        Assert.Equal(ReturnCode.Success, (await queued)[0].Code);
    }

    [Fact]
    public async Task A_round_that_lists_one_endpoint_twice_answers_both_when_the_second_call_waits_for_the_first()
    {
        // One call in flight per endpoint: the second call of the round queues behind the first, and starts only when
        // the endpoint actor learns the first one's outcome, which the round must not hold back until it completes.
        var (_, port) = await StartAxon(Loopback(networkDim: Dim), DemoModels.Echo(Dim));
        var dendrite = NewDendrite(DendriteSettings.Default with { NetworkDim = Dim, EndpointMaxInFlight = 1, EndpointQueueCapacity = 4, Timeout = TimeSpan.FromSeconds(20) });
        var endpoint = Endpoint(port);

        var results = await dendrite.ForwardText([endpoint, endpoint], new long[,] { { 1, 2 } }).WaitAsync(Wait);

        Assert.All(results, r => Assert.True(r.Code == ReturnCode.Success, $"{r.Code}: {r.Message}"));
        var stats = await dendrite.Actor.Ask<EndpointStats>(new DendriteActor.GetEndpointStats(endpoint.Hotkey), Wait);
        Assert.Equal(2, stats.Successes);
        Assert.Equal(0, stats.InFlight);
    }

    [Fact]
    public async Task After_a_round_every_endpoint_actor_has_its_outcome_in_its_stats()
    {
        // The outcomes are held by the round and told when it completes, before its task does: asked right after the
        // round, each endpoint actor has counted its call and has nothing in flight.
        var endpoints = new List<EndpointInfo>();
        for (var i = 0; i < 4; i++)
        {
            var (_, port) = await StartAxon(Loopback(networkDim: Dim), DemoModels.Echo(Dim));
            endpoints.Add(Endpoint(port, $"axon-{i}"));
        }
        var dendrite = NewDendrite();

        for (var round = 1; round <= 2; round++)
        {
            var results = await dendrite.ForwardText(endpoints, new long[,] { { 1 } }).WaitAsync(Wait);
            Assert.All(results, r => Assert.True(r.Code == ReturnCode.Success, $"{r.Code}: {r.Message}"));
            foreach (var e in endpoints)
            {
                var stats = await dendrite.Actor.Ask<EndpointStats>(new DendriteActor.GetEndpointStats(e.Hotkey), Wait);
                Assert.Equal(((long)round, (long)round, 0), (stats.Calls, stats.Successes, stats.InFlight));
            }
        }
    }

    [Fact]
    public async Task A_round_s_outcomes_reach_each_endpoint_actor_with_its_next_round_call()
    {
        // The dendrite holds a round's outcomes (an hour here: only the next round or an explicit flush ends the hold) and
        // hands each to its endpoint actor inside that actor's next RoundCall: one mailbox run for both. Stats asked
        // through the dendrite flush first, so they always count the last round.
        var endpoints = new List<EndpointInfo>();
        for (var i = 0; i < 4; i++) endpoints.Add(Endpoint((await StartAxon(Loopback(networkDim: Dim), DemoModels.Echo(Dim))).Port, $"axon-{i}"));
        var dendrite = new DendriteClient(Sys, new KeyPairRequestSigner(Alice), DendriteSettings.Default with { NetworkDim = Dim, Timeout = TimeSpan.FromSeconds(20) },
            new DendriteOptions { OutcomeHold = TimeSpan.FromHours(1) });

        Assert.All(await dendrite.ForwardText(endpoints, new long[,] { { 1 } }).WaitAsync(Wait), r => Assert.Equal(ReturnCode.Success, r.Code));
        var afterFirst = await dendrite.Actor.Ask<DendriteActor.HeldOutcomeStats>(DendriteActor.GetHeldOutcomes.Instance, Wait);
        Assert.All(await dendrite.ForwardText(endpoints, new long[,] { { 1 } }).WaitAsync(Wait), r => Assert.Equal(ReturnCode.Success, r.Code));
        var afterSecond = await dendrite.Actor.Ask<DendriteActor.HeldOutcomeStats>(DendriteActor.GetHeldOutcomes.Instance, Wait);
        var stats = new List<EndpointStats>();
        foreach (var e in endpoints) stats.Add(await dendrite.Actor.Ask<EndpointStats>(new DendriteActor.GetEndpointStats(e.Hotkey), Wait));
        var afterStats = await dendrite.Actor.Ask<DendriteActor.HeldOutcomeStats>(DendriteActor.GetHeldOutcomes.Instance, Wait);

        Assert.Equal(new DendriteActor.HeldOutcomeStats(4, 0, 0), afterFirst);
        Assert.Equal(new DendriteActor.HeldOutcomeStats(4, 4, 0), afterSecond); // round 1's four went with round 2's calls
        Assert.All(stats, s => Assert.Equal((2L, 2L, 0), (s.Calls, s.Successes, s.InFlight)));
        Assert.Equal(new DendriteActor.HeldOutcomeStats(0, 4, 4), afterStats);
    }

    [Fact]
    public async Task Held_outcomes_are_told_alone_when_the_hold_ends_without_a_next_round()
    {
        var (_, port) = await StartAxon(Loopback(networkDim: Dim), DemoModels.Echo(Dim));
        var dendrite = new DendriteClient(Sys, new KeyPairRequestSigner(Alice), DendriteSettings.Default with { NetworkDim = Dim, Timeout = TimeSpan.FromSeconds(20) },
            new DendriteOptions { OutcomeHold = TimeSpan.FromHours(1) });
        Assert.All(await dendrite.ForwardText([Endpoint(port)], new long[,] { { 1 } }).WaitAsync(Wait), r => Assert.Equal(ReturnCode.Success, r.Code));
        var endpointActor = await Sys.ActorSelection(dendrite.Actor.Path / "endpoint-0").ResolveOne(Wait);
        var held = await endpointActor.Ask<EndpointStats>(EndpointActor.GetStats.Instance, Wait); // asked directly: no flush

        dendrite.Actor.Tell(DendriteActor.FlushOutcomes.Instance); // the hold's timer, driven by hand
        var flushed = await dendrite.Actor.Ask<DendriteActor.HeldOutcomeStats>(DendriteActor.GetHeldOutcomes.Instance, Wait);
        var told = await endpointActor.Ask<EndpointStats>(EndpointActor.GetStats.Instance, Wait);

        Assert.Equal((1L, 0L, 1), (held.Calls, held.Successes, held.InFlight)); // its outcome was still with the dendrite
        Assert.Equal(new DendriteActor.HeldOutcomeStats(0, 0, 1), flushed);
        Assert.Equal((1L, 1L, 0), (told.Calls, told.Successes, told.InFlight));
    }

    [Fact]
    public async Task Verifying_axons_accept_signatures_shared_across_a_round_and_the_next_round_too()
    {
        // Three axons with sr25519 verification and nonce stores on: whatever share of the round's calls reuses one
        // signed value, every axon must accept it, and the next round (each endpoint's nonce ≥ 1 ms newer) too.
        // sign_ahead is off here: with it on, each round's last request starts one more signing in the background (the
        // next round's value, taken or dropped), so the count could reach 8 (seen once: 7). The value signed ahead has
        // its own test below (Rounds_back_to_back_take_a_value_signed_ahead_and_verifying_axons_accept_it).
        var ports = new List<int>();
        for (var i = 0; i < 3; i++) ports.Add((await StartAxon(Loopback(networkDim: Dim), DemoModels.Echo(Dim))).Port);
        var signatures = 0;
        var signer = new DelegateRequestSigner(Alice.ToSs58(), (m, _) =>
        {
            Interlocked.Increment(ref signatures);
            return ValueTask.FromResult(Alice.Sign(m.Span));
        });
        var dendrite = new DendriteClient(Sys, signer, DendriteSettings.Default with { NetworkDim = Dim, Timeout = TimeSpan.FromSeconds(20), SignatureReuse = TimeSpan.FromSeconds(1), SignAhead = false });
        var endpoints = ports.Select((p, i) => Endpoint(p, $"axon-{i}")).ToArray();

        var first = await dendrite.ForwardText(endpoints, new long[,] { { 3, 4 } });
        var second = await dendrite.ForwardText(endpoints, new long[,] { { 3, 4 } });

        Assert.All(first.Concat(second), r => Assert.Equal(ReturnCode.Success, r.Code));
        Assert.InRange(Volatile.Read(ref signatures), 1, 6);
    }

    [Fact]
    public async Task Rounds_back_to_back_take_a_value_signed_ahead_and_verifying_axons_accept_it()
    {
        // sign_ahead (the default): once a round's last request is out, a round back to back with the one before has the
        // next round's value signed in the background (held here and run by hand between rounds 2 and 3); round 3 takes
        // it instead of signing. Three axons verify every sr25519 signature and keep nonce stores: they must accept it.
        var ports = new List<int>();
        for (var i = 0; i < 3; i++) ports.Add((await StartAxon(Loopback(networkDim: Dim), DemoModels.Echo(Dim))).Port);
        var held = new System.Collections.Concurrent.ConcurrentQueue<Func<Task>>();
        var queued = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        // The widest reuse window (1 s): rounds on a busy machine still count as back to back.
        var settings = DendriteSettings.Default with { NetworkDim = Dim, Timeout = TimeSpan.FromSeconds(20), SignatureReuse = TimeSpan.FromSeconds(1) };
        Assert.True(settings.SignAhead);
        var dendrite = new DendriteClient(Sys, new KeyPairRequestSigner(Alice), settings, new DendriteOptions
        {
            SignAheadRunner = work =>
            {
                held.Enqueue(work);
                queued.TrySetResult();
            },
        });
        var endpoints = ports.Select((p, i) => Endpoint(p, $"axon-{i}")).ToArray();

        var results = new List<EndpointResult>();
        results.AddRange(await dendrite.ForwardText(endpoints, new long[,] { { 3, 4 } }).WaitAsync(Wait));
        results.AddRange(await dendrite.ForwardText(endpoints, new long[,] { { 3, 4 } }).WaitAsync(Wait));
        await queued.Task.WaitAsync(Wait); // round 2 (or round 1's later calls) armed it; its last request started it
        var before = await dendrite.Actor.Ask<DendriteActor.SigningStats>(DendriteActor.GetSigningStats.Instance, Wait);
        while (held.TryDequeue(out var work)) await work().WaitAsync(Wait);
        var signedAhead = await dendrite.Actor.Ask<DendriteActor.SigningStats>(DendriteActor.GetSigningStats.Instance, Wait);
        results.AddRange(await dendrite.ForwardText(endpoints, new long[,] { { 3, 4 } }).WaitAsync(Wait));
        var after = await dendrite.Actor.Ask<DendriteActor.SigningStats>(DendriteActor.GetSigningStats.Instance, Wait);

        Assert.All(results, r => Assert.True(r.Code == ReturnCode.Success, $"{r.Code}: {r.Message}"));
        Assert.Equal(0, before.TakenAhead);
        Assert.True(signedAhead.Signed > before.Signed, "the held work signed");
        Assert.Equal(1, after.TakenAhead);
        Assert.Equal(signedAhead.Signed, after.Signed); // round 3 signed nothing itself (a signing ahead it armed is held)
    }

    [Fact]
    public async Task With_sign_ahead_off_every_round_signs_its_own_value()
    {
        var (_, port) = await StartAxon(Loopback(networkDim: Dim), DemoModels.Echo(Dim));
        var dendrite = new DendriteClient(Sys, new KeyPairRequestSigner(Alice),
            DendriteSettings.Default with { NetworkDim = Dim, Timeout = TimeSpan.FromSeconds(20), SignatureReuse = TimeSpan.FromSeconds(1), SignAhead = false });

        for (var round = 0; round < 3; round++)
            Assert.All(await dendrite.ForwardText([Endpoint(port)], new long[,] { { 3, 4 } }).WaitAsync(Wait), r => Assert.Equal(ReturnCode.Success, r.Code));
        var stats = await dendrite.Actor.Ask<DendriteActor.SigningStats>(DendriteActor.GetSigningStats.Instance, Wait);

        Assert.Equal(new DendriteActor.SigningStats(3, 0), stats);
    }

    [Fact]
    public async Task An_answer_with_NaN_or_infinity_is_refused_as_an_invalid_response()
    {
        var nanModel = new AxonHandlers((r, _) =>
        {
            var data = new float[r.Inputs.Shape[0] * r.Inputs.Shape[1] * Dim];
            for (var i = 0; i < data.Length; i++) data[i] = r.Inputs.Longs![0] == 1 ? (i % 2 == 0 ? float.NaN : 1f) : (i == 3 ? float.NegativeInfinity : 1f);
            return Task.FromResult(ModelResponse.Ok(DenseTensor.Float32([r.Inputs.Shape[0], r.Inputs.Shape[1], Dim], data)));
        });
        var (_, port) = await StartAxon(Loopback(networkDim: Dim), nanModel);
        var dendrite = NewDendrite();

        var nan = (await dendrite.ForwardText([Endpoint(port)], new long[,] { { 1 } }))[0];
        var inf = (await dendrite.ForwardText([Endpoint(port)], new long[,] { { 2 } }))[0];

        Assert.Equal((ReturnCode.InvalidResponse, ReturnCode.InvalidResponse), (nan.Code, inf.Code));
        Assert.Contains("4 non-finite", nan.Message, StringComparison.Ordinal);
        Assert.Contains("1 non-finite", inf.Message, StringComparison.Ordinal);
        Assert.All(nan.Tensor.Floats!, x => Assert.Equal(0f, x));
        // A refused answer's array goes straight back to the dendrite's pool (the caller never sees it): the second
        // call lands in the first one's array, and neither result carries one.
        var pool = dendrite.AnswerPools.Single();
        Assert.Equal((1L, 1L, 2L), (pool.Allocated, pool.Reused, pool.Returned));
        Assert.False(nan.IsPooled || inf.IsPooled);
    }

    [Fact]
    public async Task An_idle_check_within_the_idle_timeout_of_the_last_call_leaves_the_endpoint_actor_running()
    {
        var (_, port) = await StartAxon(Loopback(networkDim: Dim), DemoModels.Echo(Dim));
        var dendrite = NewDendrite(DendriteSettings.Default with { NetworkDim = Dim, IdleTimeout = TimeSpan.FromMinutes(10) });
        var endpoint = Endpoint(port);
        Assert.Equal(ReturnCode.Success, (await dendrite.ForwardText([endpoint], new long[,] { { 1 } }))[0].Code);
        var actor = await Sys.ActorSelection(dendrite.Actor.Path / "endpoint-0").ResolveOne(Wait);
        Watch(actor);

        // The check comes early (the test tells it): 10 minutes have not passed since the call, so the actor stays, and
        // a check while it is busy or right after it is told again leaves it too.
        actor.Tell(EndpointActor.IdleCheck.Instance);
        actor.Tell(EndpointActor.IdleCheck.Instance);
        var stats = await dendrite.Actor.Ask<EndpointStats>(new DendriteActor.GetEndpointStats(endpoint.Hotkey), Wait); // after both checks (one mailbox)
        Assert.Equal(1, stats.Calls);
        Assert.Equal(1, await dendrite.Actor.Ask<int>(DendriteActor.GetEndpointCount.Instance, Wait));
        Assert.Equal(ReturnCode.Success, (await dendrite.ForwardText([endpoint], new long[,] { { 1 } }))[0].Code);
        await ExpectNoMsgAsync(TimeSpan.Zero); // no Terminated
    }

    [Fact]
    public async Task Idle_endpoint_actors_stop_themselves()
    {
        var (_, port) = await StartAxon(Loopback(networkDim: Dim), DemoModels.Echo(Dim));
        var dendrite = NewDendrite(DendriteSettings.Default with { NetworkDim = Dim, IdleTimeout = TimeSpan.FromMilliseconds(200) });
        Assert.Equal(ReturnCode.Success, (await dendrite.ForwardText([Endpoint(port)], new long[,] { { 1 } }))[0].Code);

        await AwaitAssertAsync(async () => Assert.Equal(0, await dendrite.Actor.Ask<int>(DendriteActor.GetEndpointCount.Instance, Wait)),
            TimeSpan.FromSeconds(20), TimeSpan.FromMilliseconds(100));
    }
}

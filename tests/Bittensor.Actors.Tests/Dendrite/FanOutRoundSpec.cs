using System.Net;
using System.Net.Sockets;
using Akka.Actor;
using Bittensor.Actors.Axon;
using Bittensor.Actors.Dendrite;
using Bittensor.Core.Crypto;
using Bittensor.Core.Domain;
using Bittensor.Protocol;
using Bittensor.Protocol.Wire;

namespace Bittensor.Actors.Tests.Dendrite;

/// <summary>
/// The dendrite's fan-out round (<see cref="FanOutRound"/>): its slots are filled by whoever answers first — the
/// transport's completion, the endpoint actor, the round's guard — each exactly once; it keeps at most the parallelism
/// out; a lost reply ends as Timeout, never a hang. A probe stands in for the dendrite actor where the test is about the
/// round's own logic; the exactly-once test runs a real endpoint actor with the lean client over a real socket.
/// </summary>
public sealed class FanOutRoundSpec() : Akka.TestKit.Xunit2.TestKit("akka.loglevel = WARNING"), IDisposable
{
    private static readonly TimeSpan Wait = TimeSpan.FromSeconds(30);
    private static readonly long[] Shape = [1, 1, 4];
    private readonly Sr25519KeyPair _alice = SecretUri.ToSr25519("//Alice");

    void IDisposable.Dispose() => _alice.Dispose();

    private static EndpointInfo[] Endpoints(int n, int port = 1) =>
        [.. Enumerable.Range(0, n).Select(i => new EndpointInfo($"axon-{i}", "127.0.0.1", port))];

    private static EndpointCall Call(TimeSpan timeout) => new(false, [TensorCodec.ToTensor(new long[] { 1 }, [1, 1], Modality.Text)], timeout);

    private FanOutRound Round(EndpointInfo[] endpoints, IActorRef dendrite, int parallelism, TimeSpan timeout)
    {
        var call = Call(timeout);
        return new FanOutRound(endpoints, _ => call, Shape, AxonSeams.CreateCodec(null), dendrite, parallelism, timeout, null, TimeProvider.System);
    }

    private static EndpointResult Ok(EndpointInfo e, float value) =>
        new(e, DenseTensor.Float32(Shape, [value, value, value, value]), ReturnCode.Success, "", TimeSpan.FromMilliseconds(1));

    [Fact]
    public async Task A_round_keeps_at_most_its_parallelism_out_and_starts_the_next_endpoint_as_each_slot_fills()
    {
        var dendrite = CreateTestProbe();
        var endpoints = Endpoints(5);
        var round = Round(endpoints, dendrite.Ref, parallelism: 2, Wait);

        var task = round.Start();

        var first = await dendrite.ExpectMsgAsync<DendriteActor.RoundCalls>(Wait);
        Assert.Equal((0, 2), (first.From, first.Count));
        await dendrite.ExpectNoMsgAsync(TimeSpan.Zero); // started synchronously: nothing else went out
        foreach (var (slot, next) in new[] { (1, 2), (0, 3), (2, 4) })
        {
            Assert.True(round.TryComplete(slot, Ok(endpoints[slot], slot)));
            var more = await dendrite.ExpectMsgAsync<DendriteActor.RoundCalls>(Wait);
            Assert.Equal((next, 1), (more.From, more.Count));
        }
        Assert.True(round.TryComplete(3, Ok(endpoints[3], 3)));
        await dendrite.ExpectNoMsgAsync(TimeSpan.Zero); // every endpoint has been started
        Assert.False(task.IsCompleted);
        Assert.False(round.TryComplete(3, Ok(endpoints[3], 99))); // a second answer for a slot is dropped
        Assert.True(round.TryComplete(4, Ok(endpoints[4], 4)));

        var results = await task.WaitAsync(Wait);
        Assert.Equal(endpoints, results.Select(r => r.Endpoint));
        Assert.Equal([0f, 1f, 2f, 3f, 4f], results.Select(r => r.Tensor.Floats![0]));
    }

    [Fact]
    public void A_rounds_calls_share_one_request_message_per_call_and_hotkey()
    {
        var round = Round(Endpoints(3), CreateTestProbe().Ref, parallelism: 3, Wait);
        var call = round.CallFor(0);
        var (request, size) = round.RequestFor(call, "5Alice");

        Assert.Equal(size, request.CalculateSize());
        Assert.Equal((ProtocolVersion.Current, "5Alice"), (request.Version, request.Hotkey));
        Assert.Equal(call.Tensors, request.Tensors.ToArray());
        // The round's other endpoints get the same message (forward: one call for all), built once.
        Assert.Same(request, round.RequestFor(round.CallFor(1), "5Alice").Request);
        Assert.Same(request, round.RequestFor(round.CallFor(2), "5Alice").Request);
        // Another call (a backward round's per-endpoint gradient) or another hotkey gets its own message.
        var other = Call(Wait);
        var (forOther, _) = round.RequestFor(other, "5Alice");
        Assert.NotSame(request, forOther);
        Assert.Equal(other.Tensors, forOther.Tensors.ToArray());
        Assert.Equal("5Bob", round.RequestFor(other, "5Bob").Request.Hotkey);
    }

    [Fact]
    public async Task Endpoint_actors_outcomes_are_held_until_the_last_slot_fills_then_told_to_the_dendrite_in_one_message_and_a_late_one_is_told_at_once()
    {
        var dendrite = CreateTestProbe();
        var endpoints = Endpoints(2);
        var round = Round(endpoints, dendrite.Ref, parallelism: 2, Wait);
        var first = CreateTestProbe();
        var second = CreateTestProbe();

        var task = round.Start();
        await dendrite.ExpectMsgAsync<DendriteActor.RoundCalls>(Wait);
        round.Report(0, first.Ref, "outcome-0");
        Assert.True(round.TryComplete(0, Ok(endpoints[0], 0)));

        Assert.Equal(1, round.HeldOutcomes); // held, not told: the round is still open
        Assert.False(task.IsCompleted);
        round.Report(1, second.Ref, "outcome-1");
        Assert.Equal(2, round.HeldOutcomes);
        Assert.True(round.TryComplete(1, Ok(endpoints[1], 1)));

        Assert.Equal(0, round.HeldOutcomes); // the last slot told every held outcome
        Assert.True(task.IsCompleted);
        // One message to the dendrite actor, which hands each to its endpoint actor with its next round call.
        var told = await dendrite.ExpectMsgAsync<DendriteActor.RoundOutcomes>(Wait);
        Assert.Equal([(first.Ref, (object)"outcome-0"), (second.Ref, "outcome-1")], told.Outcomes);
        await first.ExpectNoMsgAsync(TimeSpan.Zero);
        round.Report(0, first.Ref, "late"); // e.g. a call the k_min grace gave up on, answered after the round
        Assert.Equal(0, round.HeldOutcomes);
        await first.ExpectMsgAsync("late", Wait);
    }

    [Fact]
    public async Task A_round_that_lists_one_endpoint_twice_tells_its_outcomes_at_once()
    {
        var dendrite = CreateTestProbe();
        var twice = new EndpointInfo("axon-0", "127.0.0.1", 1);
        var round = Round([twice, twice], dendrite.Ref, parallelism: 2, Wait);
        var actor = CreateTestProbe();

        _ = round.Start();
        await dendrite.ExpectMsgAsync<DendriteActor.RoundCalls>(Wait);
        round.Report(0, actor.Ref, "outcome-0");

        Assert.Equal(0, round.HeldOutcomes); // its second call may be queued behind this outcome
        await actor.ExpectMsgAsync("outcome-0", Wait);
    }

    [Fact]
    public async Task A_round_whose_answers_never_come_ends_with_Timeout_and_zeros_at_its_guard()
    {
        var dendrite = CreateTestProbe(); // takes the calls and never answers: an endpoint actor that lost them
        var endpoints = Endpoints(3);
        var round = Round(endpoints, dendrite.Ref, parallelism: 2, TimeSpan.FromMilliseconds(100));

        var task = round.Start();
        await dendrite.ExpectMsgAsync<DendriteActor.RoundCalls>(Wait);
        var results = await task.WaitAsync(Wait);

        Assert.All(results, r =>
        {
            Assert.Equal(ReturnCode.Timeout, r.Code);
            Assert.Equal("no answer from the endpoint actor", r.Message);
            Assert.True(r.Tensor.HasShape(Shape));
            Assert.All(r.Tensor.Floats!, v => Assert.Equal(0f, v));
        });
        await dendrite.ExpectNoMsgAsync(TimeSpan.Zero); // the guard closed the round: the third endpoint never started
    }

    [Fact]
    public async Task A_round_slot_is_answered_once_when_its_endpoint_actor_restarts_with_the_call_in_flight()
    {
        // A real peer that accepts the lean client's connection and never answers: the call stays in flight.
        var silent = new TcpListener(IPAddress.Loopback, 0);
        silent.Start();
        try
        {
            var port = ((IPEndPoint)silent.LocalEndpoint).Port;
            var settings = DendriteSettings.Default with { Timeout = TimeSpan.FromMinutes(5) };
            var info = new EndpointInfo(_alice.ToSs58(), "127.0.0.1", port);
            var endpoint = Sys.ActorOf(EndpointActor.Props(info, settings, new KeyPairRequestSigner(_alice), TimeProvider.System, new Random(1),
                LeanClientTransport.Instance));
            var dendrite = CreateTestProbe();
            var dropped = CreateTestProbe();
            Sys.EventStream.Subscribe(dropped, typeof(EndpointActor.StaleCompletionDropped));
            var round = Round([info], dendrite.Ref, parallelism: 4, settings.Timeout);

            var task = round.Start();
            var calls = await dendrite.ExpectMsgAsync<DendriteActor.RoundCalls>(Wait);
            endpoint.Tell(new EndpointActor.RoundCall(round.CallFor(calls.From), round, calls.From));
            await AwaitAssertAsync(async () => Assert.Equal(1, (await endpoint.Ask<EndpointStats>(EndpointActor.GetStats.Instance, Wait)).InFlight), Wait);
            endpoint.Tell(new EndpointActor.Fail("test")); // restarted by the user guardian: the call is answered by the failure

            var result = Assert.Single(await task.WaitAsync(Wait));
            Assert.Equal(ReturnCode.UnknownException, result.Code);
            Assert.Contains("endpoint actor failed", result.Message, StringComparison.Ordinal);
            // The cancelled call's completion reaches the restarted instance, which drops it; the slot keeps the first answer.
            await dropped.ExpectMsgAsync<EndpointActor.StaleCompletionDropped>(Wait);
            Assert.Same(result, (await task)[0]);
            Assert.False(round.TryComplete(0, Ok(info, 1)));
        }
        finally
        {
            silent.Stop();
        }
    }
}

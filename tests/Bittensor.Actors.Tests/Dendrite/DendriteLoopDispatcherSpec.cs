using System.Net;
using System.Net.Sockets;
using Akka.Actor;
using Akka.Configuration;
using Bittensor.Actors.Dendrite;
using Bittensor.Actors.Tests.Axon;
using Bittensor.Core.Domain;
using Bittensor.Neurons.Demo;
using Bittensor.Protocol;
using Bittensor.Protocol.Lean;
using Bittensor.Protocol.Wire;
using DendriteClient = Bittensor.Actors.Dendrite.Dendrite;

namespace Bittensor.Actors.Tests.Dendrite;

/// <summary>
/// <c>bittensor.dendrite.dispatcher = loop</c> (issue 11, session 24): with the lean connections on the client's I/O loop
/// (<c>io = loop</c>), the dendrite's actors run their mailboxes on the loop's thread, so the thread that reads a round's
/// answers also runs the endpoint actors that write the next round's requests — and every call keeps its deadline and
/// backoff, and work on the loop never holds the connections' reads for good. Real axons over loopback.
/// </summary>
public sealed class DendriteLoopDispatcherSpec(Xunit.Abstractions.ITestOutputHelper output) : AxonTestBase(output)
{
    private const int Dim = 8;

    private static DendriteSettings FromHocon(string hocon) =>
        DendriteSettings.Create(BittensorRuntime.Section(ConfigurationFactory.ParseString(hocon).WithFallback(BittensorRuntime.ReferenceConfig),
            DendriteSettings.SectionPath)) with
        {
            NetworkDim = Dim,
            Timeout = TimeSpan.FromSeconds(30),
        };

    // Every call signs alone and at once (no value shared or signed ahead on the pool), so each endpoint actor writes its
    // request in its own mailbox run: the thread that runs the actor is the thread that writes.
    private static DendriteSettings SignEachCall(DendriteSettings s) => s with { SignatureReuse = TimeSpan.Zero, SignAhead = false };

    [Theory]
    [InlineData("loop", true)]
    [InlineData("pool", false)]
    public async Task A_rounds_requests_are_written_by_the_io_loops_own_thread_only_on_the_loop_dispatcher(string dispatcher, bool onLoop)
    {
        var settings = SignEachCall(FromHocon($"bittensor.dendrite.io = loop\nbittensor.dendrite.dispatcher = {dispatcher}"));
        var (_, a) = await StartAxon(Loopback(networkDim: Dim), DemoModels.Echo(Dim));
        var (_, b) = await StartAxon(Loopback(networkDim: Dim), DemoModels.Echo(Dim));
        var endpoints = new[] { new EndpointInfo(Bob.ToSs58(), "127.0.0.1", a), new EndpointInfo(Charlie.ToSs58(), "127.0.0.1", b) };
        var dendrite = new DendriteClient(Sys, new KeyPairRequestSigner(Alice), settings);
        // Connected first: a call that waits for its connection writes from the connect's continuation, on the loop's
        // thread whatever the dispatcher.
        DendriteClient.Release(await dendrite.ForwardText(endpoints, new long[,] { { 1, 2, 3 } }));
        var before = (LeanClientTransport.LoopThreadRequestsTo(a), LeanClientTransport.LoopThreadRequestsTo(b));

        for (var round = 0; round < 3; round++)
        {
            var results = await dendrite.ForwardText(endpoints, new long[,] { { 1, 2, round } });
            Assert.All(results, r => Assert.Equal(ReturnCode.Success, r.Code));
            DendriteClient.Release(results);
        }

        // Each round's two requests: written by the loop's thread (the endpoint actors ran there), or never by it (the pool).
        var expected = onLoop && ClientIoLoop.Supported ? 3 : 0; // elsewhere io = loop falls back to .NET's sockets
        Assert.Equal((expected, expected),
            ((int)(LeanClientTransport.LoopThreadRequestsTo(a) - before.Item1), (int)(LeanClientTransport.LoopThreadRequestsTo(b) - before.Item2)));
    }

    [Fact]
    public async Task On_the_loop_a_call_to_an_axon_that_never_answers_ends_at_its_deadline_the_other_is_answered_and_the_endpoint_then_backs_off()
    {
        var settings = SignEachCall(FromHocon("bittensor.dendrite.io = loop\nbittensor.dendrite.dispatcher = loop")) with
        {
            // The live axon's first call (a new connection) must come back within it on a busy machine too; the silent
            // peer's call ends there.
            Timeout = TimeSpan.FromSeconds(3),
            FailuresBeforeBackoff = 1,
            BackoffMin = TimeSpan.FromMinutes(10),
            BackoffMax = TimeSpan.FromMinutes(10),
        };
        var (_, live) = await StartAxon(Loopback(networkDim: Dim), DemoModels.Echo(Dim));
        // A peer that accepts the connection and reads everything, and never sends a byte (no SETTINGS, no answer).
        using var silent = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
        silent.Bind(new IPEndPoint(IPAddress.Loopback, 0));
        silent.Listen(4);
        var accepted = new List<Socket>();
        using var stop = new CancellationTokenSource();
        var swallow = Task.Run(async () =>
        {
            var buffer = new byte[64 * 1024];
            var peer = await silent.AcceptAsync(stop.Token);
            lock (accepted) accepted.Add(peer);
            while (await peer.ReceiveAsync(buffer, SocketFlags.None, stop.Token) > 0)
            {
            }
        });
        var endpoints = new[]
        {
            new EndpointInfo(Bob.ToSs58(), "127.0.0.1", live),
            new EndpointInfo(Charlie.ToSs58(), "127.0.0.1", ((IPEndPoint)silent.LocalEndPoint!).Port),
        };
        var dendrite = new DendriteClient(Sys, new KeyPairRequestSigner(Alice), settings);
        try
        {
            // The silent peer's call ends at its own deadline (the connection's timer), not the round's guard.
            var first = await dendrite.ForwardText(endpoints, new long[,] { { 1, 2, 3 } }).WaitAsync(Wait);
            Assert.Equal([ReturnCode.Success, ReturnCode.Timeout], first.Select(r => r.Code));
            Assert.DoesNotContain("no answer from the endpoint actor", first[1].Message);
            DendriteClient.Release(first);

            // Its endpoint actor (on the loop) took the Timeout: backed off, it refuses the next call without sending.
            var second = await dendrite.ForwardText(endpoints, new long[,] { { 4, 5, 6 } }).WaitAsync(Wait);
            Assert.Equal([ReturnCode.Success, ReturnCode.Backoff], second.Select(r => r.Code));
            DendriteClient.Release(second);
        }
        finally
        {
            await stop.CancelAsync();
            try
            {
                await swallow;
            }
            catch (OperationCanceledException)
            {
            }
            lock (accepted)
                foreach (var s in accepted) s.Dispose();
        }
    }

    [Fact]
    public async Task An_actor_on_the_loop_that_never_stops_telling_itself_does_not_stop_the_loops_reads()
    {
        var settings = SignEachCall(FromHocon("bittensor.dendrite.io = loop\nbittensor.dendrite.dispatcher = loop"));
        var (_, port) = await StartAxon(Loopback(networkDim: Dim), DemoModels.Echo(Dim));
        var dendrite = new DendriteClient(Sys, new KeyPairRequestSigner(Alice), settings);
        var endpoints = new[] { new EndpointInfo(Bob.ToSs58(), "127.0.0.1", port) };
        Assert.Equal(ReturnCode.Success, (await dendrite.ForwardText(endpoints, new long[,] { { 1, 2, 3 } }))[0].Code); // connected

        // Busy work on the loop's thread for as long as the round takes: the loop must still read the answer (it runs
        // at most RunsPerTurn posted runs before it looks at its sockets again).
        var runs = ClientIoLoop.Supported ? ClientIoLoop.Shared.Runs : 0;
        var cut = ClientIoLoop.Supported ? ClientIoLoop.Shared.RunTurnsCut : 0;
        var spinner = Sys.ActorOf(Props.Create(() => new Spinner()).WithDispatcher(DendriteDispatcher.LoopId));
        spinner.Tell(Spinner.Spin.Instance);
        try
        {
            // The spinner holds the loop before the round starts (the event: the loop cut a turn short for it), and it
            // never stops until told, so the round runs while it spins.
            if (ClientIoLoop.Supported)
                await AwaitConditionAsync(() => Task.FromResult(ClientIoLoop.Shared.RunTurnsCut > cut), Wait, message: "the loop never had to cut a turn: the spinner did not run on it");
            var results = await dendrite.ForwardText(endpoints, new long[,] { { 4, 5, 6 } }).WaitAsync(Wait);
            Assert.Equal(ReturnCode.Success, results[0].Code);
        }
        finally
        {
            spinner.Tell(Spinner.Stop.Instance);
        }
        Assert.True(!ClientIoLoop.Supported || ClientIoLoop.Shared.Runs > runs);
    }

    // Tells itself one message after another until told to stop: its mailbox is never empty, so the dispatcher schedules
    // a run of it again after every run.
    private sealed class Spinner : ReceiveActor
    {
        public Spinner()
        {
            var spinning = false;
            Receive<Spin>(_ =>
            {
                if (!spinning && !ReferenceEquals(Sender, Self)) spinning = true;
                if (spinning) Self.Tell(Spin.Instance, Self);
            });
            Receive<Stop>(_ => spinning = false);
        }

        public sealed record Spin
        {
            public static readonly Spin Instance = new();
        }

        public sealed record Stop
        {
            public static readonly Stop Instance = new();
        }
    }
}

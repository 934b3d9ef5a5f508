using Bittensor.Core.Domain;
using System.Net;
using System.Net.Sockets;
using Akka.Actor;
using Akka.TestKit;
using Bittensor.Actors.Dendrite;
using Bittensor.Core.Crypto;
using Bittensor.Protocol;
using Bittensor.Protocol.Wire;

namespace Bittensor.Actors.Tests.Dendrite;

/// <summary>
/// An endpoint actor that dies or restarts owes every caller exactly one answer: queued and in-flight calls are answered
/// UnknownException, and a transport completion arriving afterwards is dropped, never delivered as a second answer.
/// </summary>
public sealed class EndpointActorFailureSpec() : Akka.TestKit.Xunit2.TestKit("akka.loglevel = WARNING\n" + TestKitWaits.Hocon), IDisposable
{
    // A real TCP peer that accepts connections and never answers: calls stay in flight until their (long) deadline.
    private readonly TcpListener _silent = StartSilent();
    private readonly Sr25519KeyPair _alice = SecretUri.ToSr25519("//Alice");

    private static TcpListener StartSilent()
    {
        var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        return listener;
    }

    void IDisposable.Dispose()
    {
        _silent.Stop();
        _alice.Dispose();
    }

    private IActorRef Endpoint()
    {
        var settings = DendriteSettings.Default with { EndpointMaxInFlight = 2, EndpointQueueCapacity = 8, Timeout = TimeSpan.FromMinutes(5) };
        var info = new EndpointInfo("5FHneW46xGXgs5mUiveU4sbTyGBzmstUspZC92UhjJM694ty", "127.0.0.1", ((IPEndPoint)_silent.LocalEndpoint).Port);
        return Sys.ActorOf(EndpointActor.Props(info, settings, new KeyPairRequestSigner(_alice), TimeProvider.System, new Random(1), Bittensor.Protocol.GrpcClientTransport.Instance));
    }

    private static EndpointCall Call() => new(false, [TensorCodec.ToTensor(new long[] { 1, 2 }, [1, 2], Modality.Text)], TimeSpan.FromMinutes(5));

    /// <summary>Sends 2 calls that go in flight and 3 that queue; waits until the actor reports them so.</summary>
    private async Task<TestProbe[]> Load(IActorRef endpoint)
    {
        var callers = Enumerable.Range(0, 5).Select(_ => CreateTestProbe()).ToArray();
        foreach (var c in callers) endpoint.Tell(Call(), c.Ref);
        await AwaitAssertAsync(async () =>
        {
            var stats = await endpoint.Ask<EndpointStats>(EndpointActor.GetStats.Instance, TimeSpan.FromSeconds(20));
            Assert.Equal((2, 3), (stats.InFlight, stats.Queued));
        }, TimeSpan.FromSeconds(30));
        return callers;
    }

    [Fact]
    public async Task A_restarted_endpoint_answers_every_queued_and_in_flight_call_exactly_once()
    {
        var endpoint = Endpoint();
        var callers = await Load(endpoint);
        var dropped = CreateTestProbe();
        Sys.EventStream.Subscribe(dropped, typeof(EndpointActor.StaleCompletionDropped));

        endpoint.Tell(new EndpointActor.Fail("test")); // the user guardian restarts it

        foreach (var c in callers)
        {
            var reply = await c.ExpectMsgAsync<EndpointReply>(TimeSpan.FromSeconds(30));
            Assert.Equal(ReturnCode.UnknownException, reply.Code);
            Assert.Contains("endpoint actor failed", reply.Message, StringComparison.Ordinal);
        }
        // The two cancelled in-flight calls complete into the restarted instance, which drops them; the answer it would
        // have sent is told before the event is published, so an empty mailbox now means no second answer.
        await dropped.ExpectMsgAsync<EndpointActor.StaleCompletionDropped>(TimeSpan.FromSeconds(30));
        await dropped.ExpectMsgAsync<EndpointActor.StaleCompletionDropped>(TimeSpan.FromSeconds(30));
        foreach (var c in callers) await c.ExpectNoMsgAsync(TimeSpan.Zero);

        // The restarted instance serves again (and counts from zero).
        var stats = await endpoint.Ask<EndpointStats>(EndpointActor.GetStats.Instance, TimeSpan.FromSeconds(20));
        Assert.Equal((0, 0), (stats.InFlight, stats.Queued));
    }

    [Fact]
    public async Task A_stopped_endpoint_answers_every_queued_and_in_flight_call_exactly_once()
    {
        var endpoint = Endpoint();
        var callers = await Load(endpoint);
        Watch(endpoint);

        Sys.Stop(endpoint);
        await ExpectTerminatedAsync(endpoint);

        foreach (var c in callers)
        {
            var reply = await c.ExpectMsgAsync<EndpointReply>(TimeSpan.FromSeconds(30));
            Assert.Equal(ReturnCode.UnknownException, reply.Code);
            Assert.Contains("stopped", reply.Message, StringComparison.Ordinal);
            await c.ExpectNoMsgAsync(TimeSpan.Zero);
        }
    }
}

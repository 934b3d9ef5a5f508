using System.Buffers.Binary;
using System.Net;
using System.Net.Sockets;
using System.Threading.Channels;
using Akka.Actor;
using Bittensor.Actors.Cluster;
using Bittensor.Neurons.Demo;
using Bittensor.Protocol;
using Bittensor.Protocol.Wire;

namespace Bittensor.Actors.Tests.Cluster;

/// <summary>
/// The front's calls on the workers' data connections, in a cluster in this process (every node its own ActorSystem,
/// <c>serialize-messages = on</c>, real signed gRPC calls into the front's axon): real workers, and a stand-in worker
/// whose data plane is a raw socket of the test, to drop the connection mid-call or answer with a broken frame.
/// </summary>
[Collection(ClusterTestBase.Nodes)]
public sealed class DataPlaneClusterSpec(Xunit.Abstractions.ITestOutputHelper output) : ClusterTestBase(output)
{
    [Fact]
    public async Task Calls_travel_on_each_workers_data_connection_and_with_the_data_plane_off_over_Akka()
    {
        var (front, router, port) = await StartFront();
        var worker = StartWorker(front, DemoModels.Echo(Dim));
        StartWorker(front, DemoModels.Echo(Dim));
        await AwaitWorkers(router, 2);
        // The front node's scheduler ticks at front.scheduler_tick (its idle cost, docs/cluster.md "Idle cost"), the
        // cluster's periodic tasks on it; a worker keeps Akka's 10 ms (its model host's batching wait).
        Assert.Equal(ClusterSettings.Default.FrontSchedulerTick, front.Settings.Config.GetTimeSpan("akka.scheduler.tick-duration"));
        Assert.Equal(ClusterSettings.Default.FrontSchedulerTick, front.Settings.Config.GetTimeSpan("akka.cluster.scheduler.tick-duration"));
        Assert.Equal(TimeSpan.FromMilliseconds(10), worker.Settings.Config.GetTimeSpan("akka.scheduler.tick-duration"));
        var client = RawClient(port);
        for (var i = 1; i <= 6; i++) AssertEcho(await Forward(client, Alice, Row(i)), i);
        var status = await Status(router);
        Assert.All(status.Workers, w =>
        {
            Assert.NotNull(w.DataPlane);
            Assert.StartsWith("127.0.0.1:", w.DataPlane);
            Assert.True(w.Served > 0, $"worker {w.Replica} served nothing");
        });

        // A front with the data plane off routes the same workers' calls over Akka.Remote.
        var (off, offEvents) = StartFrontNode(adjust: s => s with { DataPlane = false });
        var offFront = await Activated(offEvents, Wait);
        var settings = Settings(Akka.Cluster.Cluster.Get(off).SelfAddress.ToString());
        StartWorker(settings, Bittensor.Actors.ModelHost.ModelHostActor.ForHandlers(DemoModels.Echo(Dim), 4, 16, Wait), 20);
        await AwaitWorkers(offFront.Router, 1);
        var offClient = RawClient(offFront.Endpoint.Port);
        AssertEcho(await Forward(offClient, Bob, Row(7, Bob)), 7);
        var offStatus = await Status(offFront.Router);
        Assert.Null(Assert.Single(offStatus.Workers).DataPlane);
        Assert.Equal(1, offStatus.Workers[0].Served);
    }

    /// <summary>
    /// A worker node whose worker actor is the test's: it registers with the front announcing <see cref="Port"/>, a raw
    /// listener of the test that answers the handshake as a worker does and then hands each connection to the test.
    /// </summary>
    private sealed class StandIn : IDisposable
    {
        private readonly Socket _listener = new(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);

        public StandIn(ActorSystem node)
        {
            _listener.Bind(new IPEndPoint(IPAddress.Loopback, 0));
            _listener.Listen(4);
            Name = Akka.Cluster.Cluster.Get(node).SelfAddress.ToString();
            _ = AcceptAsync();
        }

        public string Name { get; }

        public int Port => ((IPEndPoint)_listener.LocalEndPoint!).Port;

        public Channel<Socket> Connections { get; } = Channel.CreateUnbounded<Socket>();

        private async Task AcceptAsync()
        {
            while (true)
            {
                Socket s;
                try
                {
                    s = await _listener.AcceptAsync();
                }
                catch (Exception e) when (e is ObjectDisposedException or SocketException)
                {
                    return;
                }
                await DataPlaneConnection.ReadHandshakeAsync(s, DataPlaneFrames.Hello, CancellationToken.None);
                await DataPlaneConnection.SendHandshakeAsync(s, DataPlaneFrames.HelloAck, Name, CancellationToken.None);
                Connections.Writer.TryWrite(s);
            }
        }

        public void Dispose() => _listener.Dispose();
    }

    private sealed class StandInWorker : ReceiveActor
    {
        public StandInWorker(ActorSelection router, int dataPort)
        {
            ReceiveAny(_ => { });
            router.Tell(new RegisterWorker(4, false, "stand-in", 0, 0, dataPort));
        }
    }

    private StandIn StartStandIn(ActorSystem front, IActorRef router)
    {
        var node = BittensorCluster.CreateSystem(Settings(Akka.Cluster.Cluster.Get(front).SelfAddress.ToString()), ClusterSettings.WorkerRole, overrides: TestOverrides);
        Track(node);
        var standIn = new StandIn(node);
        var selection = node.ActorSelection(router.Path.ToStringWithAddress(Akka.Cluster.Cluster.Get(front).SelfAddress));
        node.ActorOf(Props.Create(() => new StandInWorker(selection, standIn.Port)), ClusterSettings.WorkerName);
        return standIn;
    }

    // One whole frame from the front (the call it routed to the stand-in).
    private static async Task<(byte Kind, byte[] Payload)> ReadFrame(Socket s)
    {
        var header = new byte[DataPlaneFrames.HeaderBytes];
        Assert.Equal(header.Length, await DataPlaneConnection.ReadAsync(s, header, header.Length, CancellationToken.None).AsTask().WaitAsync(Wait));
        var payload = new byte[BinaryPrimitives.ReadUInt32LittleEndian(header)];
        Assert.Equal(payload.Length, await DataPlaneConnection.ReadAsync(s, payload, payload.Length, CancellationToken.None).AsTask().WaitAsync(Wait));
        return (header[4], payload);
    }

    private static TensorMessage BackwardRow(long first)
    {
        var backward = Row(first);
        backward.Tensors.Add(TensorCodec.ToTensor(Enumerable.Repeat(1f, 3 * Dim).ToArray(), [1, 3, Dim], Modality.Tensor));
        return backward;
    }

    [Fact]
    public async Task A_data_connection_that_drops_mid_call_has_its_forward_answered_by_another_worker_and_the_front_connects_again()
    {
        var (front, router, port) = await StartFront();
        using var standIn = StartStandIn(front, router);
        await AwaitWorkers(router, 1);
        var connection = await standIn.Connections.Reader.ReadAsync().AsTask().WaitAsync(Wait);
        var client = RawClient(port);

        var call = client.ForwardAsync(Row(1, Alice), await Signed(Alice), DateTime.UtcNow.AddSeconds(120)).ResponseAsync;
        var (kind, payload) = await ReadFrame(connection);
        Assert.Equal(DataPlaneFrames.Call, kind);
        Assert.False(ClusterTensorSerializer.ReadCall(payload).IsBackward);
        // A real worker joins, then the stand-in's connection drops with the call at it.
        StartWorker(front, DemoModels.Echo(Dim));
        await AwaitWorkers(router, 2);
        connection.Close();

        AssertEcho(await call.WaitAsync(Wait), 1);
        var status = await Status(router);
        Assert.Equal(1, status.Rerouted);
        Assert.Equal(0, status.Pending);
        // The front connects to the stand-in's data plane again (it is still a member), and routes to it once more.
        var again = await standIn.Connections.Reader.ReadAsync().AsTask().WaitAsync(Wait);
        await AwaitAssertAsync(async () => Assert.All((await Status(router)).Workers, w => Assert.NotNull(w.DataPlane)), Wait, TimeSpan.FromMilliseconds(100));
        again.Close();
    }

    [Theory]
    [InlineData("connection lost", false, "its data connection closed (the peer closed the connection)")]
    [InlineData("connection lost", true, "its data connection closed (the peer closed the connection) during this backward")]
    [InlineData("malformed reply", false, "a malformed frame (cluster tensor message: unknown version)")]
    [InlineData("oversized frame", false, "an oversized frame (4294967295 bytes")]
    [InlineData("unexpected kind", true, "a worker sent frame kind 3; only replies are expected")]
    public async Task A_worker_whose_connection_breaks_mid_call_has_its_call_answered_NotServingNucleus_with_the_reason(string what, bool backward,
        string reason)
    {
        var (front, router, port) = await StartFront();
        using var standIn = StartStandIn(front, router);
        await AwaitWorkers(router, 1);
        var connection = await standIn.Connections.Reader.ReadAsync().AsTask().WaitAsync(Wait);
        var client = RawClient(port);

        var request = backward ? BackwardRow(1) : Row(1);
        var call = backward
            ? client.BackwardAsync(request, await Signed(Alice), DateTime.UtcNow.AddSeconds(120)).ResponseAsync
            : client.ForwardAsync(request, await Signed(Alice), DateTime.UtcNow.AddSeconds(120)).ResponseAsync;
        var (kind, payload) = await ReadFrame(connection);
        Assert.Equal(DataPlaneFrames.Call, kind);
        var routed = ClusterTensorSerializer.ReadCall(payload);
        Assert.Equal(backward, routed.IsBackward);
        byte[] header(uint length, byte k)
        {
            var h = new byte[DataPlaneFrames.HeaderBytes];
            BinaryPrimitives.WriteUInt32LittleEndian(h, length);
            h[4] = k;
            return h;
        }
        switch (what)
        {
            case "connection lost":
                connection.Close();
                break;
            case "malformed reply":
                byte[] malformed = [.. header(9, DataPlaneFrames.Reply), 9, .. BitConverter.GetBytes(routed.RequestId)];
                await connection.SendAsync(malformed, SocketFlags.None);
                break;
            case "oversized frame":
                await connection.SendAsync(header(uint.MaxValue, DataPlaneFrames.Reply), SocketFlags.None);
                break;
            case "unexpected kind":
                byte[] unexpected = [.. header((uint)payload.Length, DataPlaneFrames.Call), .. payload];
                await connection.SendAsync(unexpected, SocketFlags.None);
                break;
        }

        var answer = await call.WaitAsync(Wait);
        Assert.Equal(ReturnCode.NotServingNucleus, answer.ReturnCode);
        Assert.Contains(reason, answer.Message);
        var status = await Status(router);
        Assert.Equal(0, status.Pending);
        connection.Dispose();
    }
}

using Akka.Actor;
using Bittensor.Actors.Chain;
using Bittensor.Chain;
using Bittensor.Chain.Rpc;
using Bittensor.Chain.Tests.Rpc;
using Bittensor.Core.Resilience;

namespace Bittensor.Actors.Tests.Chain;

/// <summary>
/// The chain actor on a real node client (<see cref="SubstrateChainBackend"/> over a WebSocket to a Substrate JSON-RPC
/// node on loopback) says in its log when the node's runtime changes, with the spec version before and after.
/// </summary>
public sealed class ChainRuntimeChangeSpec() : Akka.TestKit.Xunit2.TestKit("akka.loglevel = INFO\n" + TestKitWaits.Hocon), IAsyncLifetime
{
    private static readonly TimeSpan Wait = TimeSpan.FromSeconds(60);
    private readonly FakeSubstrateNode _node = new("local-148-metadata.hex", 148);

    public Task InitializeAsync()
    {
        _node.Start();
        return Task.CompletedTask;
    }

    public async Task DisposeAsync() => await _node.DisposeAsync();

    private SubstrateBackendOptions Options => new()
    {
        Rpc = new JsonRpcOptions
        {
            Endpoint = _node.Endpoint,
            RequestTimeout = Wait,
            KeepAliveInterval = TimeSpan.FromMinutes(5),
            Reconnect = new BackoffPolicy(TimeSpan.FromMilliseconds(20), TimeSpan.FromMilliseconds(200)),
            Random = () => 0.5,
        },
    };

    [Fact]
    public async Task A_runtime_upgrade_read_by_the_node_client_is_logged_with_the_spec_version_before_and_after()
    {
        var connected = CreateTestProbe();
        Sys.EventStream.Subscribe(connected.Ref, typeof(ChainConnected));
        var options = Options;
        Sys.ActorOf(ChainActor.Props(async ct => await SubstrateChainBackend.ConnectAsync(options, ct), SubtensorSettings.Default, () => 0.5));
        await connected.ExpectMsgAsync<ChainConnected>(Wait);

        // The node comes back with another runtime: the client reads it again on its reconnect and the actor says so, once.
        await EventFilter.Info(contains: "chain runtime changed: spec version 148 -> 149").ExpectOneAsync(Wait, () =>
        {
            _node.SpecVersion = 149;
            _node.DropAll();
            return Task.CompletedTask;
        });
    }
}

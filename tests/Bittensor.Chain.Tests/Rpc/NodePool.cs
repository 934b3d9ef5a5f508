using System.Text.Json;
using Bittensor.Chain.Rpc;

namespace Bittensor.Chain.Tests.Rpc;

/// <summary>
/// Our node's transaction pool as events (<c>dev_subscribePendingExtrinsics</c>, docs/chain-rpc.md "Our node"): the
/// number of calls ready for the next block, first at once and then at every change, in the order of the changes, so
/// the last notification received is the pool's size. Instead of polling <c>author_pendingExtrinsics</c>, a test
/// waits for the pool to hold calls, or seals a block (<c>dev_newBlock</c>) whenever it does. Also compiled into
/// Bittensor.Cli.Tests (linked).
/// </summary>
internal sealed class NodePool : IAsyncDisposable
{
    private readonly JsonRpcClient _client;
    private readonly RpcSubscription _subscription;
    // The last size the node sent; -1 until the first notification (and again after a reconnect: the resubscription's
    // first notification tells).
    private int _ready = -1;

    private NodePool(JsonRpcClient client, RpcSubscription subscription)
    {
        _client = client;
        _subscription = subscription;
    }

    /// <summary>Subscribes through <paramref name="client"/>; while the node restarts, once it is back (the client reconnects).</summary>
    public static async Task<NodePool> SubscribeAsync(JsonRpcClient client, CancellationToken ct)
    {
        while (true)
        {
            try
            {
                return new NodePool(client, await client.SubscribeAsync("dev_subscribePendingExtrinsics", "dev_unsubscribePendingExtrinsics", [],
                    resubscribe: true, null, ct).ConfigureAwait(false));
            }
            catch (ChainUnavailableException) when (!ct.IsCancellationRequested)
            {
                // The connection dropped under the request (the node was killed): the next attempt waits for the reconnect.
            }
        }
    }

    /// <summary>Completes when the pool holds at least <paramref name="count"/> ready calls.</summary>
    public async Task WaitForAsync(int count, CancellationToken ct)
    {
        while (_ready < count) await NextAsync(ct).ConfigureAwait(false);
    }

    /// <summary>Until <paramref name="until"/> completes: a block whenever the pool holds a call.</summary>
    public async Task SealWhilePendingAsync(Task until, CancellationToken ct)
    {
        using var stop = CancellationTokenSource.CreateLinkedTokenSource(ct);
        while (!until.IsCompleted)
        {
            // A block changes the pool, so its notification follows (stale ones queued before it may come first:
            // the next one is taken with every one already there).
            if (_ready > 0) await _client.RequestAsync("dev_newBlock", [new Dictionary<string, object?> { ["count"] = 1 }], null, ct).ConfigureAwait(false);
            var next = NextAsync(stop.Token);
            if (await Task.WhenAny(next, until).ConfigureAwait(false) == next)
            {
                await next.ConfigureAwait(false);
                continue;
            }
            await stop.CancelAsync().ConfigureAwait(false);
            try
            {
                await next.ConfigureAwait(false);
            }
            catch (OperationCanceledException) when (!ct.IsCancellationRequested)
            {
            }
        }
    }

    // The next notification, and every one already received after it (the last one is the pool's size).
    private async Task NextAsync(CancellationToken ct)
    {
        Apply(await _subscription.Items.ReadAsync(ct).ConfigureAwait(false));
        while (_subscription.Items.TryRead(out var item)) Apply(item);
    }

    private void Apply(SubscriptionItem item)
    {
        if (item.Signal == SubscriptionSignal.Notification && item.Value.ValueKind == JsonValueKind.Number) _ready = item.Value.GetInt32();
        else if (item.Signal != SubscriptionSignal.Notification) _ready = -1; // reconnected: the node may have restarted with another pool
    }

    public ValueTask DisposeAsync() => _subscription.DisposeAsync();
}

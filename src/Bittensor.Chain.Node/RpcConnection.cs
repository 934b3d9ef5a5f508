using System.Buffers;
using System.Net.WebSockets;
using System.Security.Cryptography;
using System.Threading.Channels;
using Bittensor.Chain.Local;

namespace Bittensor.Chain.Node;

/// <summary>What a subscription listens to.</summary>
internal enum SubscriptionKind
{
    NewHeads,
    AllHeads,
    FinalizedHeads,
    RuntimeVersion,
    Storage,
    Extrinsic,
    Pool,
}

/// <summary>One subscription of a connection.</summary>
internal sealed record Subscription(string Id, SubscriptionKind Kind, string Method, byte[][]? Keys = null);

/// <summary>
/// One WebSocket client: requests are handled in arrival order; responses and notifications go through one bounded
/// queue drained by a writer task. When the queue is full the client is not reading: it is disconnected (its
/// subscriptions end) and nothing else waits for it.
/// </summary>
internal sealed class RpcConnection
{
    private readonly LocalnetNode _node;
    private readonly WebSocket _socket;
    private readonly LocalnetNodeOptions _options;
    private readonly Channel<byte[]> _outbound;
    private readonly Dictionary<string, Subscription> _subscriptions = new(StringComparer.Ordinal);
    private readonly CancellationTokenSource _closed = new();
    private int _dropped;

    public RpcConnection(LocalnetNode node, WebSocket socket, LocalnetNodeOptions options)
    {
        _node = node;
        _socket = socket;
        _options = options;
        _outbound = Channel.CreateBounded<byte[]>(new BoundedChannelOptions(options.MaxQueuedMessagesPerConnection)
        {
            FullMode = BoundedChannelFullMode.Wait,
            SingleReader = true,
        });
    }

    public async Task RunAsync(CancellationToken stop)
    {
        using var linked = CancellationTokenSource.CreateLinkedTokenSource(stop, _closed.Token);
        var writer = Task.Run(() => WriteLoopAsync(linked.Token));
        try
        {
            await ReadLoopAsync(linked.Token).ConfigureAwait(false);
        }
        catch (Exception e) when (e is OperationCanceledException or WebSocketException or ObjectDisposedException)
        {
        }
        finally
        {
            _outbound.Writer.TryComplete();
            try
            {
                if (_closeStatus is { } status)
                {
                    // Let the queued answer (the reason) go out first, then close with the status.
                    await writer.ConfigureAwait(false);
                    await _socket.CloseOutputAsync(status, "message too big", CancellationToken.None).ConfigureAwait(false);
                    // Wait (bounded) for the client's close frame, so that closing the socket does not reset the
                    // connection before the client has read the reason.
                    using var grace = new CancellationTokenSource(TimeSpan.FromSeconds(10));
                    var sink = new byte[4096];
                    while ((await _socket.ReceiveAsync(sink.AsMemory(), grace.Token).ConfigureAwait(false)).MessageType != WebSocketMessageType.Close)
                    {
                    }
                }
                _closed.Cancel();
                await writer.ConfigureAwait(false);
            }
            catch (Exception e) when (e is OperationCanceledException or WebSocketException or ObjectDisposedException)
            {
            }
        }
    }

    private WebSocketCloseStatus? _closeStatus;

    private async Task ReadLoopAsync(CancellationToken ct)
    {
        var buffer = new ArrayBufferWriter<byte>(4096);
        while (!ct.IsCancellationRequested && _socket.State == WebSocketState.Open)
        {
            buffer.ResetWrittenCount();
            ValueWebSocketReceiveResult result;
            var tooBig = false;
            do
            {
                result = await _socket.ReceiveAsync(buffer.GetMemory(16 * 1024), ct).ConfigureAwait(false);
                if (result.MessageType == WebSocketMessageType.Close)
                {
                    if (_socket.State == WebSocketState.CloseReceived)
                        await _socket.CloseOutputAsync(WebSocketCloseStatus.NormalClosure, null, CancellationToken.None).ConfigureAwait(false);
                    return;
                }
                buffer.Advance(result.Count);
                if (buffer.WrittenCount > _options.MaxRequestBytes) tooBig = true;
                if (tooBig) buffer.ResetWrittenCount();
            }
            while (!result.EndOfMessage);
            if (tooBig)
            {
                // The request cannot be answered by id (it was not read); say why and close.
                Send(RpcJson.Error(null, RpcErrors.InvalidRequest, "Invalid request", $"message exceeds the limit of {_options.MaxRequestBytes} bytes"));
                _closeStatus = WebSocketCloseStatus.MessageTooBig;
                return;
            }
            var response = await _node.Methods.HandleMessageAsync(this, buffer.WrittenSpan.ToArray()).ConfigureAwait(false);
            if (response is not null) Send(response);
            FlushAfterResponse();
        }
    }

    private async Task WriteLoopAsync(CancellationToken ct)
    {
        while (await _outbound.Reader.WaitToReadAsync(ct).ConfigureAwait(false))
        {
            while (_outbound.Reader.TryRead(out var message))
                await _socket.SendAsync(message, WebSocketMessageType.Text, true, ct).ConfigureAwait(false);
        }
    }

    /// <summary>Queues a message; a full queue disconnects the client (it is not reading).</summary>
    public void Send(byte[] message)
    {
        if (_outbound.Writer.TryWrite(message)) return;
        Overflow();
    }

    private void Overflow()
    {
        if (Interlocked.Exchange(ref _dropped, 1) != 0) return;
        _node.Dropped(this);
        Close();
    }

    /// <summary>Ends the connection without waiting for anything.</summary>
    public void Close()
    {
        _outbound.Writer.TryComplete();
        try
        {
            _closed.Cancel();
        }
        catch (ObjectDisposedException)
        {
        }
        _socket.Abort();
    }

    // ---- subscriptions ----------------------------------------------------------------------------------

    private readonly List<Action> _afterResponse = [];

    // Subscriptions made by the request being handled: their id has not gone out yet. A notification for one (a block the
    // dispatcher delivers between the subscribe and its response) is held and sent after the response, behind the
    // subscription's initial notifications, as a Substrate node does; before, it went out first and the client, not
    // knowing the id yet, dropped it.
    private readonly HashSet<string> _unanswered = new(StringComparer.Ordinal);
    private readonly List<byte[]> _held = [];
    private readonly List<byte[]> _initial = [];

    [ThreadStatic]
    private static RpcConnection? t_flushing;

    /// <summary>Runs <paramref name="action"/> once the response being built is queued (initial notifications follow their subscription id).</summary>
    public void AfterResponse(Action action)
    {
        lock (_subscriptions) _afterResponse.Add(action);
    }

    private void FlushAfterResponse()
    {
        Action[] actions;
        lock (_subscriptions)
        {
            if (_afterResponse.Count == 0 && _unanswered.Count == 0) return;
            actions = [.. _afterResponse];
            _afterResponse.Clear();
        }
        // The actions run outside the lock (they may wait on the chain, whose completions notify under its own lock);
        // what they notify for a subscription of this request goes first.
        t_flushing = this;
        try
        {
            foreach (var a in actions) a();
        }
        finally
        {
            t_flushing = null;
        }
        lock (_subscriptions)
        {
            // Sent under the lock, so no notification of a block after these overtakes them.
            foreach (var m in _initial) Send(m);
            foreach (var m in _held) Send(m);
            _initial.Clear();
            _held.Clear();
            _unanswered.Clear();
        }
    }

    public Subscription Subscribe(SubscriptionKind kind, string method, byte[][]? keys = null)
    {
        lock (_subscriptions)
        {
            if (_subscriptions.Count >= _options.MaxSubscriptionsPerConnection)
                throw new RpcException(RpcErrors.LimitExceeded, $"a connection may hold at most {_options.MaxSubscriptionsPerConnection} subscriptions");
            var sub = new Subscription(Convert.ToHexString(RandomNumberGenerator.GetBytes(8)).ToLowerInvariant(), kind, method, keys);
            _subscriptions[sub.Id] = sub;
            _unanswered.Add(sub.Id);
            return sub;
        }
    }

    public bool Unsubscribe(string id, SubscriptionKind kind)
    {
        lock (_subscriptions)
        {
            if (!_subscriptions.TryGetValue(id, out var sub) || sub.Kind != kind) return false;
            _subscriptions.Remove(id);
            return true;
        }
    }

    public bool IsSubscribed(string id)
    {
        lock (_subscriptions) return _subscriptions.ContainsKey(id);
    }

    public void Notify(Subscription sub, Action<System.Text.Json.Utf8JsonWriter> result)
    {
        lock (_subscriptions)
        {
            if (!_subscriptions.ContainsKey(sub.Id)) return;
            if (_unanswered.Contains(sub.Id))
            {
                var held = t_flushing == this ? _initial : _held;
                if (_initial.Count + _held.Count >= _options.MaxQueuedMessagesPerConnection)
                {
                    // As with a full queue: the client is not keeping up.
                    Overflow();
                    return;
                }
                held.Add(RpcJson.Notification(sub.Method, sub.Id, result));
                return;
            }
        }
        Send(RpcJson.Notification(sub.Method, sub.Id, result));
    }

    /// <summary>Called by the node's dispatcher for every new block (never blocks).</summary>
    public void OnBlock(LocalnetBlock block, LocalnetStorage storage, LocalnetStorage? previous)
    {
        Subscription[] subs;
        lock (_subscriptions) subs = [.. _subscriptions.Values];
        foreach (var sub in subs)
        {
            switch (sub.Kind)
            {
                case SubscriptionKind.NewHeads or SubscriptionKind.AllHeads or SubscriptionKind.FinalizedHeads:
                    Notify(sub, w => RpcJson.Header(w, block));
                    break;
                case SubscriptionKind.Storage:
                {
                    var changes = new List<(byte[] Key, byte[]? Value)>();
                    foreach (var key in sub.Keys!)
                    {
                        var now = storage.Get(key);
                        var before = previous?.Get(key);
                        if (previous is null || !SameValue(before, now)) changes.Add((key, now));
                    }
                    if (changes.Count > 0) Notify(sub, w => RpcJson.StorageChangeSet(w, storage.BlockHash, changes));
                    break;
                }
            }
        }
    }

    /// <summary>Called by the node's dispatcher when the calls ready for the next block changed (never blocks).</summary>
    public void OnPool(int ready)
    {
        Subscription[] subs;
        lock (_subscriptions) subs = [.. _subscriptions.Values.Where(s => s.Kind == SubscriptionKind.Pool)];
        foreach (var sub in subs) Notify(sub, w => w.WriteNumberValue(ready));
    }

    private static bool SameValue(byte[]? a, byte[]? b) => a is null ? b is null : b is not null && a.AsSpan().SequenceEqual(b);
}

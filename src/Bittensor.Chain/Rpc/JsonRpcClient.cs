using System.Buffers;
using System.Collections.Concurrent;
using System.Globalization;
using System.Net.WebSockets;
using System.Text;
using System.Text.Json;
using System.Threading.Channels;
using Bittensor.Core.Resilience;

namespace Bittensor.Chain.Rpc;

/// <summary>How a <see cref="JsonRpcClient"/> connects, waits and bounds what it receives.</summary>
public sealed record JsonRpcOptions
{
    /// <summary>The node's WebSocket endpoint (<c>ws://</c> or <c>wss://</c>).</summary>
    public required Uri Endpoint { get; init; }

    /// <summary>Deadline of a request that names none: from the call until its answer (waiting for a reconnect included).</summary>
    public TimeSpan RequestTimeout { get; init; } = TimeSpan.FromSeconds(30);

    /// <summary>Deadline of one connection attempt (TCP + WebSocket handshake).</summary>
    public TimeSpan ConnectTimeout { get; init; } = TimeSpan.FromSeconds(10);

    /// <summary>
    /// Keepalive: after this long without any message from the node a <c>system_health</c> probe is sent (and the
    /// connection dropped and re-opened when the probe gets no answer within <see cref="KeepAliveTimeout"/>). WebSocket
    /// ping frames go this often as well.
    /// </summary>
    public TimeSpan KeepAliveInterval { get; init; } = TimeSpan.FromSeconds(20);

    /// <summary>
    /// How long a keepalive probe (and a WebSocket ping's pong) may stay unanswered before the connection is dropped
    /// and re-opened. Separate from <see cref="KeepAliveInterval"/>: a link that must be checked often can still give
    /// a slow node, or a busy machine, time to answer.
    /// </summary>
    public TimeSpan KeepAliveTimeout { get; init; } = TimeSpan.FromSeconds(20);

    /// <summary>Largest message accepted from the node; a larger one drops the connection (it is never buffered).</summary>
    public int MaxMessageBytes { get; init; } = 64 << 20;

    /// <summary>Bound on requests awaiting an answer; beyond it a request fails at once.</summary>
    public int MaxPendingRequests { get; init; } = 4096;

    /// <summary>Buffered notifications per subscription; a consumer that falls behind loses the oldest.</summary>
    public int SubscriptionBuffer { get; init; } = 1024;

    /// <summary>Reconnect delays (the runtime's one backoff policy).</summary>
    public BackoffPolicy Reconnect { get; init; } = new(TimeSpan.FromMilliseconds(200), TimeSpan.FromSeconds(30), 0.2);

    /// <summary>Uniform random numbers in [0, 1) for the backoff jitter (inject a constant in tests).</summary>
    public Func<double> Random { get; init; } = System.Random.Shared.NextDouble;

    /// <summary>Throws <see cref="ArgumentException"/> for unusable values.</summary>
    public JsonRpcOptions Validate()
    {
        ArgumentNullException.ThrowIfNull(Endpoint);
        if (Endpoint.Scheme is not ("ws" or "wss")) throw new ArgumentException($"endpoint {Endpoint} must be ws:// or wss://");
        if (RequestTimeout <= TimeSpan.Zero || ConnectTimeout <= TimeSpan.Zero || KeepAliveInterval <= TimeSpan.Zero
            || KeepAliveTimeout <= TimeSpan.Zero)
            throw new ArgumentException("timeouts must be positive");
        if (MaxMessageBytes < 1024) throw new ArgumentException("max message size must be at least 1 KiB");
        if (MaxPendingRequests < 1 || SubscriptionBuffer < 1) throw new ArgumentException("bounds must be positive");
        Reconnect.Validate();
        return this;
    }
}

/// <summary>A JSON-RPC error object returned by the node (<c>code</c>, <c>message</c>, optional <c>data</c>).</summary>
public sealed class JsonRpcException : Exception
{
    /// <summary>Creates the exception.</summary>
    public JsonRpcException(string method, int code, string rpcMessage, string? data)
        : base($"{method}: error {code.ToString(CultureInfo.InvariantCulture)}: {rpcMessage}{(data is null ? "" : $" ({data})")}")
    {
        Method = method;
        Code = code;
        RpcMessage = rpcMessage;
        ErrorData = data;
    }

    /// <summary>The method that failed.</summary>
    public string Method { get; }

    /// <summary>JSON-RPC error code (e.g. 1010 invalid transaction, 1014 priority too low, -32601 unknown method).</summary>
    public int Code { get; }

    /// <summary>The error's message.</summary>
    public string RpcMessage { get; }

    /// <summary>The error's data as text (a JSON string's value, or raw JSON), if any.</summary>
    public string? ErrorData { get; }
}

/// <summary>What a subscription consumer receives.</summary>
public enum SubscriptionSignal
{
    /// <summary>A notification; <see cref="SubscriptionItem.Value"/> is its <c>params.result</c>.</summary>
    Notification,

    /// <summary>The connection was lost and the subscription was made again on the new one: notifications may have been missed.</summary>
    Resubscribed,

    /// <summary>The connection was lost and this subscription is not renewed (one-shot subscriptions such as extrinsic watches). The stream ends.</summary>
    Lost,
}

/// <summary>One item of a subscription stream.</summary>
/// <param name="Signal">What happened.</param>
/// <param name="Value">The notification's result (for <see cref="SubscriptionSignal.Notification"/>).</param>
public readonly record struct SubscriptionItem(SubscriptionSignal Signal, JsonElement Value);

/// <summary>
/// A live subscription. Read <see cref="Items"/>; dispose to unsubscribe. With <c>resubscribe</c> it survives
/// reconnects (a <see cref="SubscriptionSignal.Resubscribed"/> item marks the gap); otherwise it ends with
/// <see cref="SubscriptionSignal.Lost"/> when the connection drops.
/// </summary>
public sealed class RpcSubscription : IAsyncDisposable
{
    private readonly JsonRpcClient _client;
    private readonly Channel<SubscriptionItem> _channel;
    private int _disposed;

    internal RpcSubscription(JsonRpcClient client, string method, string unsubscribeMethod, object?[] parameters, bool resubscribe, int buffer)
    {
        _client = client;
        Method = method;
        UnsubscribeMethod = unsubscribeMethod;
        Parameters = parameters;
        Resubscribe = resubscribe;
        _channel = Channel.CreateBounded<SubscriptionItem>(new BoundedChannelOptions(buffer)
        {
            FullMode = BoundedChannelFullMode.DropOldest,
            SingleReader = true,
            SingleWriter = true,
        });
    }

    /// <summary>The subscribe method, e.g. <c>chain_subscribeNewHeads</c>.</summary>
    public string Method { get; }

    internal string UnsubscribeMethod { get; }

    internal object?[] Parameters { get; }

    internal bool Resubscribe { get; }

    /// <summary>The node's id of this subscription on the current connection.</summary>
    public string? Id { get; internal set; }

    internal int Generation { get; set; }

    /// <summary>Notifications and signals, in arrival order; completes when the subscription ends.</summary>
    public ChannelReader<SubscriptionItem> Items => _channel.Reader;

    internal void Post(SubscriptionItem item) => _channel.Writer.TryWrite(item);

    internal void Complete(Exception? error = null) => _channel.Writer.TryComplete(error);

    /// <inheritdoc />
    public async ValueTask DisposeAsync()
    {
        if (Interlocked.Exchange(ref _disposed, 1) != 0) return;
        Complete();
        await _client.UnsubscribeAsync(this).ConfigureAwait(false);
    }
}

/// <summary>Connection state changes of a <see cref="JsonRpcClient"/>.</summary>
/// <param name="Connected">True when a connection was (re-)established.</param>
/// <param name="Reason">Why the connection was lost, or null when connected.</param>
/// <param name="Attempt">0-based retry number of the next attempt (when disconnected).</param>
/// <param name="RetryIn">Delay before the next attempt (when disconnected).</param>
public sealed record RpcConnectionChanged(bool Connected, string? Reason, int Attempt, TimeSpan RetryIn);

/// <summary>
/// JSON-RPC 2.0 over one WebSocket (System.Net.WebSockets) to a Substrate node: every request has a deadline
/// (waiting for a reconnect counts against it), a keepalive probe drops a silent connection, the connection is
/// re-opened with capped exponential backoff and renewable subscriptions are made again. Received messages are
/// bounded by <see cref="JsonRpcOptions.MaxMessageBytes"/>; pending requests and subscription buffers are bounded.
/// Thread-safe.
/// </summary>
public sealed class JsonRpcClient : IAsyncDisposable
{
    private readonly JsonRpcOptions _options;
    private readonly CancellationTokenSource _stop = new();
    private readonly ConcurrentDictionary<RpcSubscription, byte> _subscriptions = new();
    private readonly object _gate = new();
    private TaskCompletionSource<Connection> _connected = NewConnectedSource();
    private Connection? _current;
    private Task? _loop;
    private long _nextId;
    private int _generation;

    private JsonRpcClient(JsonRpcOptions options) => _options = options.Validate();

    /// <summary>Raised (on a pool thread) when the connection is established or lost.</summary>
    public event Action<RpcConnectionChanged>? ConnectionChanged;

    /// <summary>The endpoint.</summary>
    public Uri Endpoint => _options.Endpoint;

    /// <summary>True while a connection is open.</summary>
    public bool IsConnected => Volatile.Read(ref _current) is not null;

    /// <summary>Connections opened so far (1 after the first connect; grows with each reconnect).</summary>
    public int Generation => Volatile.Read(ref _generation);

    /// <summary>
    /// Opens the first connection (failing with <see cref="ChainUnavailableException"/> if the node does not answer
    /// within the connect timeout) and keeps it open until disposed.
    /// </summary>
    public static async Task<JsonRpcClient> ConnectAsync(JsonRpcOptions options, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(options);
        var client = new JsonRpcClient(options);
        try
        {
            var first = await client.OpenAsync(cancellationToken).ConfigureAwait(false);
            client.Install(first);
            client._loop = Task.Run(() => client.RunAsync(first));
            return client;
        }
        catch
        {
            client._stop.Cancel();
            throw;
        }
    }

    private static TaskCompletionSource<Connection> NewConnectedSource() => new(TaskCreationOptions.RunContinuationsAsynchronously);

    private async Task<Connection> OpenAsync(CancellationToken ct)
    {
        using var cts = CancellationTokenSource.CreateLinkedTokenSource(ct, _stop.Token);
        cts.CancelAfter(_options.ConnectTimeout);
        var ws = new ClientWebSocket();
        ws.Options.KeepAliveInterval = _options.KeepAliveInterval;
        ws.Options.KeepAliveTimeout = _options.KeepAliveTimeout;
        try
        {
            await ws.ConnectAsync(_options.Endpoint, cts.Token).ConfigureAwait(false);
        }
        catch (Exception e) when (e is WebSocketException or OperationCanceledException or HttpRequestException or IOException)
        {
            ws.Dispose();
            ct.ThrowIfCancellationRequested();
            throw new ChainUnavailableException(e is OperationCanceledException
                ? $"no WebSocket connection to {_options.Endpoint} within {_options.ConnectTimeout}"
                : $"cannot connect to {_options.Endpoint}: {e.Message}", e);
        }
        return new Connection(ws, Interlocked.Increment(ref _generation), _options);
    }

    private void Install(Connection connection)
    {
        lock (_gate)
        {
            _current = connection;
            connection.Receiving = Task.Run(() => ReceiveLoopAsync(connection));
            connection.KeepAlive = Task.Run(() => KeepAliveLoopAsync(connection));
        }
    }

    private async Task RunAsync(Connection first)
    {
        var connection = first;
        var attempt = 0;
        while (!_stop.IsCancellationRequested)
        {
            if (connection is not null)
            {
                await ResubscribeAsync(connection).ConfigureAwait(false);
                bool live;
                lock (_gate)
                {
                    // A connection lost while its subscriptions were being made again is never handed to the requests
                    // waiting for one (they would fail on it at once): they keep waiting for the next.
                    live = connection.AbortReason is null;
                    if (live) _connected.TrySetResult(connection);
                }
                if (live)
                {
                    attempt = 0;
                    Raise(new RpcConnectionChanged(true, null, 0, TimeSpan.Zero));
                }
                else
                {
                    attempt++;
                }
                var reason = await connection.Closed.Task.ConfigureAwait(false);
                lock (_gate)
                {
                    _current = null;
                    if (_connected.Task.IsCompleted) _connected = NewConnectedSource();
                }
                connection.FailPending(new ChainUnavailableException($"connection to {_options.Endpoint} lost: {reason}"));
                foreach (var s in _subscriptions.Keys.Where(s => s.Generation == connection.Generation))
                {
                    if (s.Resubscribe) continue;
                    s.Post(new SubscriptionItem(SubscriptionSignal.Lost, default));
                    s.Complete();
                    _subscriptions.TryRemove(s, out _);
                }
                await connection.DisposeAsync().ConfigureAwait(false);
                connection = null;
                if (_stop.IsCancellationRequested) break;
                var delay0 = _options.Reconnect.Delay(attempt, _options.Random());
                Raise(new RpcConnectionChanged(false, reason, attempt, delay0));
                if (!await DelayAsync(delay0).ConfigureAwait(false)) break;
            }
            try
            {
                connection = await OpenAsync(CancellationToken.None).ConfigureAwait(false);
                Install(connection);
            }
            catch (Exception e) when (!_stop.IsCancellationRequested)
            {
                attempt++;
                var delay = _options.Reconnect.Delay(attempt, _options.Random());
                Raise(new RpcConnectionChanged(false, e.Message, attempt, delay));
                if (!await DelayAsync(delay).ConfigureAwait(false)) break;
            }
            catch (Exception)
            {
                break;
            }
        }
        lock (_gate) _connected.TrySetException(new ChainUnavailableException("the JSON-RPC client was disposed"));
    }

    private async Task<bool> DelayAsync(TimeSpan delay)
    {
        try
        {
            await Task.Delay(delay, _stop.Token).ConfigureAwait(false);
            return true;
        }
        catch (OperationCanceledException)
        {
            return false;
        }
    }

    private void Raise(RpcConnectionChanged change)
    {
        try
        {
            ConnectionChanged?.Invoke(change);
        }
        catch
        {
            // A listener's failure must not stop the connection loop.
        }
    }

    private async Task ResubscribeAsync(Connection connection)
    {
        foreach (var s in _subscriptions.Keys)
        {
            if (s.Generation == connection.Generation || !s.Resubscribe) continue;
            try
            {
                await SubscribeOnAsync(connection, s, CancellationToken.None).ConfigureAwait(false);
                s.Post(new SubscriptionItem(SubscriptionSignal.Resubscribed, default));
            }
            catch (Exception e) when (e is ChainUnavailableException or JsonRpcException)
            {
                if (e is JsonRpcException)
                {
                    // The node refuses the subscription now: end it with the reason instead of retrying forever.
                    _subscriptions.TryRemove(s, out _);
                    s.Complete(e);
                }
                // Otherwise the connection broke again; the next connection retries.
            }
        }
    }

    private async Task<Connection> WaitConnectedAsync(CancellationToken ct)
    {
        while (true)
        {
            Task<Connection> wait;
            lock (_gate)
            {
                if (_current is { } c && _connected.Task.IsCompletedSuccessfully)
                {
                    if (c.AbortReason is null) return c;
                    // Lost, but the connection loop has not seen it yet: wait for the next connection instead of failing
                    // on the dead one (the loop keeps this fresh source; it only replaces a completed one).
                    _current = null;
                    _connected = NewConnectedSource();
                }
                wait = _connected.Task;
            }
            var connection = await wait.WaitAsync(ct).ConfigureAwait(false);
            // Lost between being handed out and this continuation running: look again (the next round waits).
            if (connection.AbortReason is null) return connection;
        }
    }

    /// <summary>
    /// Calls <paramref name="method"/> and returns its <c>result</c> (a detached copy). Fails with
    /// <see cref="ChainUnavailableException"/> when no answer arrives within <paramref name="timeout"/> (default
    /// <see cref="JsonRpcOptions.RequestTimeout"/>; time spent waiting for a reconnect counts) or the connection is
    /// lost meanwhile, and with <see cref="JsonRpcException"/> when the node answers with an error.
    /// </summary>
    public async Task<JsonElement> RequestAsync(string method, object?[]? parameters = null, TimeSpan? timeout = null,
        CancellationToken cancellationToken = default)
    {
        ArgumentException.ThrowIfNullOrEmpty(method);
        var deadline = timeout ?? _options.RequestTimeout;
        using var cts = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken, _stop.Token);
        cts.CancelAfter(deadline);
        try
        {
            var connection = await WaitConnectedAsync(cts.Token).ConfigureAwait(false);
            return await connection.CallAsync(method, parameters ?? [], Interlocked.Increment(ref _nextId), null, cts.Token).ConfigureAwait(false);
        }
        catch (OperationCanceledException) when (!cancellationToken.IsCancellationRequested)
        {
            throw new ChainUnavailableException(_stop.IsCancellationRequested
                ? "the JSON-RPC client was disposed"
                : $"{method}: no answer from {_options.Endpoint} within {deadline}");
        }
    }

    /// <summary>
    /// Subscribes with <paramref name="method"/>; notifications are delivered to the returned subscription. With
    /// <paramref name="resubscribe"/> the subscription is made again after a reconnect; otherwise it ends with
    /// <see cref="SubscriptionSignal.Lost"/>.
    /// </summary>
    public async Task<RpcSubscription> SubscribeAsync(string method, string unsubscribeMethod, object?[]? parameters, bool resubscribe,
        TimeSpan? timeout = null, CancellationToken cancellationToken = default)
    {
        var sub = new RpcSubscription(this, method, unsubscribeMethod, parameters ?? [], resubscribe, _options.SubscriptionBuffer);
        var deadline = timeout ?? _options.RequestTimeout;
        using var cts = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken, _stop.Token);
        cts.CancelAfter(deadline);
        try
        {
            var connection = await WaitConnectedAsync(cts.Token).ConfigureAwait(false);
            _subscriptions[sub] = 0;
            await SubscribeOnAsync(connection, sub, cts.Token).ConfigureAwait(false);
            return sub;
        }
        catch (Exception e)
        {
            _subscriptions.TryRemove(sub, out _);
            sub.Complete();
            if (e is OperationCanceledException && !cancellationToken.IsCancellationRequested)
                throw new ChainUnavailableException($"{method}: no answer from {_options.Endpoint} within {deadline}");
            throw;
        }
    }

    private async Task SubscribeOnAsync(Connection connection, RpcSubscription sub, CancellationToken ct)
    {
        using var cts = CancellationTokenSource.CreateLinkedTokenSource(ct, _stop.Token);
        cts.CancelAfter(_options.RequestTimeout);
        try
        {
            await connection.CallAsync(sub.Method, sub.Parameters, Interlocked.Increment(ref _nextId), sub, cts.Token).ConfigureAwait(false);
        }
        catch (OperationCanceledException) when (!ct.IsCancellationRequested)
        {
            throw new ChainUnavailableException($"{sub.Method}: no answer from {_options.Endpoint} within {_options.RequestTimeout}");
        }
    }

    internal async Task UnsubscribeAsync(RpcSubscription sub)
    {
        _subscriptions.TryRemove(sub, out _);
        var connection = Volatile.Read(ref _current);
        if (connection is null || sub.Id is not { } id || sub.Generation != connection.Generation) return;
        connection.Forget(id);
        try
        {
            using var cts = new CancellationTokenSource(_options.RequestTimeout);
            await connection.CallAsync(sub.UnsubscribeMethod, [id], Interlocked.Increment(ref _nextId), null, cts.Token).ConfigureAwait(false);
        }
        catch (Exception e) when (e is ChainUnavailableException or JsonRpcException or OperationCanceledException or ObjectDisposedException)
        {
            // Best effort: the node drops a connection's subscriptions when it closes.
        }
    }

    /// <summary>Drops the current connection as if the network failed (the client reconnects). For tests and operators.</summary>
    public void DropConnection(string reason) => Volatile.Read(ref _current)?.Abort(reason);

    private async Task ReceiveLoopAsync(Connection c)
    {
        var buffer = ArrayPool<byte>.Shared.Rent(64 * 1024);
        try
        {
            while (true)
            {
                var length = 0;
                ValueWebSocketReceiveResult r;
                do
                {
                    if (length == buffer.Length)
                    {
                        if (buffer.Length >= _options.MaxMessageBytes)
                        {
                            c.Abort($"a message from the node exceeds {_options.MaxMessageBytes} bytes");
                            return;
                        }
                        var bigger = ArrayPool<byte>.Shared.Rent((int)Math.Min((long)buffer.Length * 2, _options.MaxMessageBytes));
                        buffer.AsSpan(0, length).CopyTo(bigger);
                        ArrayPool<byte>.Shared.Return(buffer);
                        buffer = bigger;
                    }
                    var room = Math.Min(buffer.Length, _options.MaxMessageBytes) - length;
                    r = await c.Socket.ReceiveAsync(buffer.AsMemory(length, room), c.Stopping.Token).ConfigureAwait(false);
                    if (r.MessageType == WebSocketMessageType.Close)
                    {
                        c.Abort($"the node closed the connection ({c.Socket.CloseStatus} {c.Socket.CloseStatusDescription})");
                        return;
                    }
                    length += r.Count;
                    if (!r.EndOfMessage && length >= _options.MaxMessageBytes)
                    {
                        c.Abort($"a message from the node exceeds {_options.MaxMessageBytes} bytes");
                        return;
                    }
                }
                while (!r.EndOfMessage);
                c.LastReceived = Environment.TickCount64;
                Dispatch(c, buffer.AsSpan(0, length));
            }
        }
        catch (Exception e) when (e is WebSocketException or OperationCanceledException or IOException or ObjectDisposedException)
        {
            c.Abort(e is OperationCanceledException ? c.AbortReason ?? "stopped" : e.Message);
        }
        finally
        {
            ArrayPool<byte>.Shared.Return(buffer);
        }
    }

    private void Dispatch(Connection c, ReadOnlySpan<byte> message)
    {
        JsonDocument doc;
        try
        {
            doc = JsonDocument.Parse(message.ToArray(), new JsonDocumentOptions { MaxDepth = 256 });
        }
        catch (JsonException)
        {
            c.Abort("the node sent a message that is not JSON");
            return;
        }
        using (doc)
        {
            var root = doc.RootElement;
            if (root.ValueKind == JsonValueKind.Array)
            {
                foreach (var item in root.EnumerateArray()) DispatchOne(c, item);
                return;
            }
            DispatchOne(c, root);
        }
    }

    private void DispatchOne(Connection c, JsonElement m)
    {
        if (m.ValueKind != JsonValueKind.Object) return;
        if (m.TryGetProperty("id", out var idEl) && idEl.ValueKind == JsonValueKind.Number && idEl.TryGetInt64(out var id))
        {
            if (!c.Pending.TryRemove(id, out var pending)) return;
            if (m.TryGetProperty("error", out var err) && err.ValueKind == JsonValueKind.Object)
            {
                var code = err.TryGetProperty("code", out var ce) && ce.TryGetInt32(out var ci) ? ci : 0;
                var msg = err.TryGetProperty("message", out var me) && me.ValueKind == JsonValueKind.String ? me.GetString() ?? "" : "";
                string? data = err.TryGetProperty("data", out var de)
                    ? de.ValueKind == JsonValueKind.String ? de.GetString() : de.GetRawText()
                    : null;
                pending.Completion.TrySetException(new JsonRpcException(pending.Method, code, msg, data));
                return;
            }
            var result = m.TryGetProperty("result", out var re) ? re.Clone() : default;
            if (pending.Subscription is { } sub)
            {
                // Register here, on the receive loop, so a notification right behind this answer finds its subscription.
                var subId = result.ValueKind == JsonValueKind.String ? result.GetString() : result.ValueKind == JsonValueKind.Number ? result.GetRawText() : null;
                if (subId is null)
                {
                    pending.Completion.TrySetException(new JsonRpcException(pending.Method, 0, "the subscription id is not a string or number", null));
                    return;
                }
                sub.Id = subId;
                sub.Generation = c.Generation;
                c.Subscriptions[subId] = sub;
            }
            pending.Completion.TrySetResult(result);
            return;
        }
        if (m.TryGetProperty("params", out var p) && p.ValueKind == JsonValueKind.Object && p.TryGetProperty("subscription", out var se))
        {
            var subId = se.ValueKind == JsonValueKind.String ? se.GetString() : se.GetRawText();
            if (subId is not null && c.Subscriptions.TryGetValue(subId, out var sub) && p.TryGetProperty("result", out var value))
                sub.Post(new SubscriptionItem(SubscriptionSignal.Notification, value.Clone()));
        }
    }

    private async Task KeepAliveLoopAsync(Connection c)
    {
        var interval = _options.KeepAliveInterval;
        try
        {
            while (!c.Stopping.IsCancellationRequested)
            {
                await Task.Delay(interval, c.Stopping.Token).ConfigureAwait(false);
                if (Environment.TickCount64 - c.LastReceived < (long)interval.TotalMilliseconds) continue;
                using var cts = CancellationTokenSource.CreateLinkedTokenSource(c.Stopping.Token);
                cts.CancelAfter(_options.KeepAliveTimeout);
                try
                {
                    await c.CallAsync("system_health", [], Interlocked.Increment(ref _nextId), null, cts.Token).ConfigureAwait(false);
                }
                catch (JsonRpcException)
                {
                    // Any answer, even an error, proves the connection is alive.
                }
                catch (OperationCanceledException) when (!c.Stopping.IsCancellationRequested)
                {
                    c.Abort($"keepalive: no answer within {_options.KeepAliveTimeout}");
                    return;
                }
            }
        }
        catch (Exception e) when (e is OperationCanceledException or ChainUnavailableException or ObjectDisposedException)
        {
            // The connection is closing.
        }
    }

    /// <inheritdoc />
    public async ValueTask DisposeAsync()
    {
        if (_stop.IsCancellationRequested) return;
        _stop.Cancel();
        Volatile.Read(ref _current)?.Abort("client disposed");
        foreach (var s in _subscriptions.Keys) s.Complete();
        _subscriptions.Clear();
        if (_loop is { } loop)
        {
            try
            {
                await loop.ConfigureAwait(false);
            }
            catch
            {
                // Shutting down.
            }
        }
        _stop.Dispose();
    }

    private sealed record PendingCall(string Method, TaskCompletionSource<JsonElement> Completion, RpcSubscription? Subscription);

    private sealed class Connection : IAsyncDisposable
    {
        private readonly SemaphoreSlim _send = new(1, 1);
        private readonly JsonRpcOptions _options;

        public Connection(ClientWebSocket socket, int generation, JsonRpcOptions options)
        {
            Socket = socket;
            Generation = generation;
            _options = options;
            LastReceived = Environment.TickCount64;
        }

        public ClientWebSocket Socket { get; }

        public int Generation { get; }

        public ConcurrentDictionary<long, PendingCall> Pending { get; } = new();

        public ConcurrentDictionary<string, RpcSubscription> Subscriptions { get; } = new(StringComparer.Ordinal);

        public CancellationTokenSource Stopping { get; } = new();

        public TaskCompletionSource<string> Closed { get; } = new(TaskCreationOptions.RunContinuationsAsynchronously);

        public string? AbortReason { get; private set; }

        public long LastReceived { get; set; }

        public Task? Receiving { get; set; }

        public Task? KeepAlive { get; set; }

        public void Abort(string reason)
        {
            lock (Closed)
            {
                if (AbortReason is not null) return;
                AbortReason = reason;
            }
            try
            {
                Stopping.Cancel();
            }
            catch (ObjectDisposedException)
            {
            }
            Socket.Abort();
            // The calls waiting for an answer fail now, not at their deadlines: the connection loop, which fails them
            // too once it sees the loss, may itself be waiting on one of them (a subscription made again on this
            // connection) and would see the loss only after that call's deadline.
            FailPending(new ChainUnavailableException($"connection to {_options.Endpoint} lost: {reason}"));
            Closed.TrySetResult(reason);
        }

        public void Forget(string subscriptionId) => Subscriptions.TryRemove(subscriptionId, out _);

        public void FailPending(Exception error)
        {
            foreach (var id in Pending.Keys)
            {
                if (Pending.TryRemove(id, out var p)) p.Completion.TrySetException(error);
            }
        }

        public async Task<JsonElement> CallAsync(string method, object?[] parameters, long id, RpcSubscription? subscription, CancellationToken ct)
        {
            if (AbortReason is { } why) throw new ChainUnavailableException($"connection lost: {why}");
            if (Pending.Count >= _options.MaxPendingRequests)
                throw new ChainUnavailableException($"{Pending.Count} requests already wait for an answer (bound {_options.MaxPendingRequests})");
            var pending = new PendingCall(method, new TaskCompletionSource<JsonElement>(TaskCreationOptions.RunContinuationsAsynchronously), subscription);
            Pending[id] = pending;
            try
            {
                var bytes = Serialize(method, parameters, id);
                await _send.WaitAsync(ct).ConfigureAwait(false);
                try
                {
                    await Socket.SendAsync(bytes, WebSocketMessageType.Text, true, ct).ConfigureAwait(false);
                }
                finally
                {
                    _send.Release();
                }
                if (AbortReason is { } lost) pending.Completion.TrySetException(new ChainUnavailableException($"connection lost: {lost}"));
                return await pending.Completion.Task.WaitAsync(ct).ConfigureAwait(false);
            }
            catch (Exception e) when (e is WebSocketException or IOException or ObjectDisposedException)
            {
                Abort(e.Message);
                throw new ChainUnavailableException($"{method}: connection lost: {e.Message}", e);
            }
            catch (OperationCanceledException) when (Socket.State != WebSocketState.Open && !ct.IsCancellationRequested)
            {
                throw new ChainUnavailableException($"{method}: connection lost: {AbortReason}");
            }
            finally
            {
                Pending.TryRemove(id, out _);
            }
        }

        private static byte[] Serialize(string method, object?[] parameters, long id)
        {
            var buffer = new ArrayBufferWriter<byte>(128);
            using (var w = new Utf8JsonWriter(buffer))
            {
                w.WriteStartObject();
                w.WriteString("jsonrpc", "2.0");
                w.WriteNumber("id", id);
                w.WriteString("method", method);
                w.WritePropertyName("params");
                WriteValue(w, parameters);
                w.WriteEndObject();
            }
            return buffer.WrittenSpan.ToArray();
        }

        private static void WriteValue(Utf8JsonWriter w, object? value)
        {
            switch (value)
            {
                case null: w.WriteNullValue(); break;
                case string s: w.WriteStringValue(s); break;
                case bool b: w.WriteBooleanValue(b); break;
                case int i: w.WriteNumberValue(i); break;
                case uint u: w.WriteNumberValue(u); break;
                case long l: w.WriteNumberValue(l); break;
                case ulong ul: w.WriteNumberValue(ul); break;
                case JsonElement e: e.WriteTo(w); break;
                case System.Collections.IDictionary d:
                    w.WriteStartObject();
                    foreach (System.Collections.DictionaryEntry kv in d)
                    {
                        w.WritePropertyName(Convert.ToString(kv.Key, CultureInfo.InvariantCulture) ?? "");
                        WriteValue(w, kv.Value);
                    }
                    w.WriteEndObject();
                    break;
                case System.Collections.IEnumerable items:
                    w.WriteStartArray();
                    foreach (var item in items) WriteValue(w, item);
                    w.WriteEndArray();
                    break;
                default: throw new ArgumentException($"cannot send a {value.GetType().Name} as a JSON-RPC parameter");
            }
        }

        public async ValueTask DisposeAsync()
        {
            Abort("disposed");
            foreach (var t in new[] { Receiving, KeepAlive })
            {
                if (t is null) continue;
                try
                {
                    await t.ConfigureAwait(false);
                }
                catch
                {
                    // Ending.
                }
            }
            Socket.Dispose();
            Stopping.Dispose();
            _send.Dispose();
        }
    }
}

/// <summary>Hex helpers for JSON-RPC values.</summary>
public static class RpcHex
{
    /// <summary><c>0x</c>-prefixed lower-case hex.</summary>
    public static string Encode(ReadOnlySpan<byte> bytes) => "0x" + Convert.ToHexStringLower(bytes);

    /// <summary>Decodes <c>0x…</c> hex (the prefix is optional); throws <see cref="FormatException"/> for bad input.</summary>
    public static byte[] Decode(string hex)
    {
        ArgumentNullException.ThrowIfNull(hex);
        var s = hex.StartsWith("0x", StringComparison.OrdinalIgnoreCase) ? hex.AsSpan(2) : hex.AsSpan();
        return Convert.FromHexString(s);
    }

    /// <summary>A JSON string holding hex, decoded; null for JSON null.</summary>
    public static byte[]? FromJson(JsonElement e) => e.ValueKind switch
    {
        JsonValueKind.Null or JsonValueKind.Undefined => null,
        JsonValueKind.String => Decode(e.GetString()!),
        _ => throw new FormatException($"expected a hex string, got {e.ValueKind}"),
    };

    /// <summary>A block number given as a hex string (<c>"0x1a"</c>) or a JSON number.</summary>
    public static ulong Number(JsonElement e) => e.ValueKind switch
    {
        JsonValueKind.Number => e.GetUInt64(),
        JsonValueKind.String when e.GetString() is { } s && s.StartsWith("0x", StringComparison.OrdinalIgnoreCase) =>
            ulong.Parse(s.AsSpan(2), NumberStyles.HexNumber, CultureInfo.InvariantCulture),
        JsonValueKind.String => ulong.Parse(e.GetString()!, CultureInfo.InvariantCulture),
        _ => throw new FormatException($"expected a number, got {e.ValueKind}"),
    };

    internal static string Utf8(ReadOnlySpan<byte> b) => Encoding.UTF8.GetString(b);
}

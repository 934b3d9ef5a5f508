using System.Buffers;
using System.Collections.Concurrent;
using System.Net;
using System.Net.WebSockets;
using System.Text.Json;
using System.Threading.Channels;
using Bittensor.Chain.Local;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Hosting.Server.Features;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Http.Features;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;

namespace Bittensor.Chain.Node;

/// <summary>
/// The localnet as a Substrate node: JSON-RPC 2.0 over WebSocket and HTTP POST on one port (Kestrel), the methods
/// polkadot-js <c>ApiPromise.create</c> and the bittensor SDK call (see <c>rpc_methods</c> and docs/chain-rpc.md),
/// subscriptions per connection with bounded queues (a subscriber that does not read is disconnected; block
/// production never waits for the network), request size and batch limits, JSON-RPC error codes. Blocks come from
/// whoever drives the <see cref="Localnet"/> (a <see cref="LocalnetBlockProducer"/>, or <c>dev_newBlock</c>).
/// </summary>
public sealed partial class LocalnetNode : IAsyncDisposable
{
    private readonly WebApplication _app;
    private readonly Localnet _chain;
    private readonly LocalnetNodeOptions _options;
    private readonly ConcurrentDictionary<RpcConnection, byte> _connections = new();
    // Blocks and pool changes, in the order they happened, for the dispatcher (never blocks the chain).
    private readonly Channel<Notice> _blocks;
    private readonly object _viewsLock = new();
    private readonly LinkedList<LocalnetStorage> _views = new();
    private readonly LocalnetStorageTracker _tracker = new();
    private readonly CancellationTokenSource _stop = new();
    private readonly Task _dispatcher;
    private long _dropped;
    private int _disposed;
    private readonly ILogger _log;

    private LocalnetNode(Localnet chain, LocalnetNodeOptions options, WebApplication app)
    {
        _chain = chain;
        _options = options;
        _app = app;
        _log = options.LoggerFactory?.CreateLogger<LocalnetNode>() ?? (ILogger)Microsoft.Extensions.Logging.Abstractions.NullLogger.Instance;
        Methods = new RpcMethods(chain, this, options);
        _blocks = Channel.CreateBounded<Notice>(new BoundedChannelOptions(1024)
        {
            FullMode = BoundedChannelFullMode.DropOldest,
            SingleReader = true,
        });
        // The current state is the first view (built in full); then one per block, updated under the chain's lock as
        // it commits with only the keys that block changed (views share everything else).
        chain.Read(s =>
        {
            AddView(_tracker.Next(s, chain.BestBlockUnlocked(s), chain.Options));
            chain.BlockCommitted += OnBlockCommitted;
            chain.PoolChanged += ready => _blocks.Writer.TryWrite(new PoolNotice(ready));
            return 0;
        });
        _dispatcher = Task.Run(DispatchAsync);
    }

    internal RpcMethods Methods { get; }

    /// <summary>The WebSocket endpoint, e.g. <c>ws://127.0.0.1:9944</c> (HTTP POST is served on the same port).</summary>
    public Uri Endpoint { get; private set; } = null!;

    /// <summary>The HTTP endpoint of the same port.</summary>
    public Uri HttpEndpoint => new UriBuilder(Endpoint) { Scheme = "http" }.Uri;

    /// <summary>Open WebSocket connections.</summary>
    public int ConnectionCount => _connections.Count;

    /// <summary>WebSocket connections closed because their queue was full (slow subscribers).</summary>
    public long DroppedConnections => Interlocked.Read(ref _dropped);

    /// <summary>Starts serving <paramref name="chain"/>; returns when the port is bound.</summary>
    public static async Task<LocalnetNode> StartAsync(Localnet chain, LocalnetNodeOptions? options = null, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(chain);
        options = (options ?? new LocalnetNodeOptions()).Validate();
        var builder = WebApplication.CreateSlimBuilder();
        builder.Logging.ClearProviders();
        if (options.LoggerFactory is { } logs)
        {
            // The process's factory decides what is logged (its levels); the host passes everything to it.
            builder.Logging.SetMinimumLevel(LogLevel.Trace);
            builder.Logging.AddProvider(new FactoryProvider(logs));
        }
        builder.WebHost.ConfigureKestrel(k =>
        {
            // The body limit is enforced while reading (an oversized body is drained up to 4× the limit so the client
            // reads a 413 instead of a reset); beyond that the connection is dropped.
            k.Limits.MaxRequestBodySize = 4L * options.MaxRequestBytes;
            k.Limits.MaxConcurrentConnections = options.MaxConnections;
            k.Limits.MaxConcurrentUpgradedConnections = options.MaxConnections;
            k.AddServerHeader = false;
            if (IPAddress.TryParse(options.Host, out var ip)) k.Listen(ip, options.Port);
            else if (string.Equals(options.Host, "localhost", StringComparison.OrdinalIgnoreCase)) k.ListenLocalhost(options.Port);
            else throw new ArgumentException($"rpc host '{options.Host}' is not an IP address or 'localhost'");
        });
        var app = builder.Build();
        app.UseWebSockets(new WebSocketOptions { KeepAliveInterval = TimeSpan.FromSeconds(30) });
        LocalnetNode? node = null;
        app.Run(context => node!.HandleAsync(context));
        node = new LocalnetNode(chain, options, app);
        try
        {
            await app.StartAsync(cancellationToken).ConfigureAwait(false);
        }
        catch
        {
            await node.DisposeAsync().ConfigureAwait(false);
            throw;
        }
        var address = app.Services.GetRequiredService<IServer>().Features.GetRequiredFeature<IServerAddressesFeature>().Addresses.First();
        var bound = new Uri(address);
        node.Endpoint = new UriBuilder("ws", bound.Host, bound.Port).Uri;
        return node;
    }

    // ---- state views ------------------------------------------------------------------------------------

    private void OnBlockCommitted(LocalnetState state, LocalnetBlock block)
    {
        var storage = _tracker.Next(state, block, _chain.Options);
        AddView(storage);
        _blocks.Writer.TryWrite(new BlockNotice(block, storage));
    }

    /// <summary>
    /// Sends <paramref name="subscription"/> (a pool subscription of <paramref name="connection"/>, after its id went out)
    /// the pool's size through the dispatcher, so it is not overtaken by an older change's notification: the last
    /// notification a subscriber gets is always the pool's current size.
    /// </summary>
    internal void SendPoolSize(RpcConnection connection, Subscription subscription) =>
        _blocks.Writer.TryWrite(new PoolSnapshot(connection, subscription));

    private abstract record Notice;

    private sealed record BlockNotice(LocalnetBlock Block, LocalnetStorage Storage) : Notice;

    private sealed record PoolNotice(int Ready) : Notice;

    private sealed record PoolSnapshot(RpcConnection Connection, Subscription Subscription) : Notice;

    private void AddView(LocalnetStorage storage)
    {
        lock (_viewsLock)
        {
            _views.AddLast(storage);
            while (_views.Count > _options.StateHistory) _views.RemoveFirst();
        }
    }

    /// <summary>The newest state view.</summary>
    internal LocalnetStorage BestView
    {
        get { lock (_viewsLock) return _views.Last!.Value; }
    }

    /// <summary>The state at <paramref name="hash"/> if kept, else null.</summary>
    internal LocalnetStorage? ViewAt(ReadOnlySpan<byte> hash)
    {
        lock (_viewsLock)
        {
            for (var n = _views.Last; n is not null; n = n.Previous)
                if (n.Value.BlockHash.AsSpan().SequenceEqual(hash)) return n.Value;
        }
        return null;
    }

    /// <summary>The view before <paramref name="view"/>, or null.</summary>
    private LocalnetStorage? ViewBefore(LocalnetStorage view)
    {
        lock (_viewsLock)
        {
            var n = _views.Find(view);
            return n?.Previous?.Value;
        }
    }

    // ---- notifications ----------------------------------------------------------------------------------

    /// <summary>Test seam: raised on the dispatcher once a block's notifications went to every connection.</summary>
    internal event Action<LocalnetBlock>? BlockDispatchedForTests;

    private async Task DispatchAsync()
    {
        try
        {
            while (await _blocks.Reader.WaitToReadAsync(_stop.Token).ConfigureAwait(false))
            {
                while (_blocks.Reader.TryRead(out var notice))
                {
                    switch (notice)
                    {
                        case BlockNotice item:
                        {
                            var previous = ViewBefore(item.Storage);
                            foreach (var connection in _connections.Keys) connection.OnBlock(item.Block, item.Storage, previous);
                            BlockDispatchedForTests?.Invoke(item.Block);
                            break;
                        }
                        case PoolNotice pool:
                            foreach (var connection in _connections.Keys) connection.OnPool(pool.Ready);
                            break;
                        case PoolSnapshot snapshot:
                        {
                            var ready = _chain.PendingCount;
                            snapshot.Connection.Notify(snapshot.Subscription, w => w.WriteNumberValue(ready));
                            break;
                        }
                    }
                }
            }
        }
        catch (OperationCanceledException)
        {
        }
    }

    internal void Dropped(RpcConnection connection)
    {
        Interlocked.Increment(ref _dropped);
        _connections.TryRemove(connection, out _);
        Log.SlowSubscriberDropped(_log, _options.MaxQueuedMessagesPerConnection);
    }

    // ---- transports -------------------------------------------------------------------------------------

    private async Task HandleAsync(HttpContext context)
    {
        if (context.WebSockets.IsWebSocketRequest)
        {
            using var socket = await context.WebSockets.AcceptWebSocketAsync().ConfigureAwait(false);
            var connection = new RpcConnection(this, socket, _options);
            _connections[connection] = 0;
            Log.Connected(_log, context.Connection.RemoteIpAddress, context.Connection.RemotePort, _connections.Count);
            try
            {
                await connection.RunAsync(_stop.Token).ConfigureAwait(false);
            }
            finally
            {
                _connections.TryRemove(connection, out _);
                connection.Close();
                Log.Disconnected(_log, context.Connection.RemoteIpAddress, context.Connection.RemotePort, _connections.Count);
            }
            return;
        }
        if (!HttpMethods.IsPost(context.Request.Method))
        {
            context.Response.StatusCode = StatusCodes.Status405MethodNotAllowed;
            context.Response.Headers.Allow = "POST";
            await context.Response.WriteAsync("JSON-RPC: POST a request, or open a WebSocket\n").ConfigureAwait(false);
            return;
        }
        var max = _options.MaxRequestBytes;
        byte[] body;
        try
        {
            body = await ReadBodyAsync(context.Request.Body, max, context.RequestAborted).ConfigureAwait(false);
        }
        catch (InvalidDataException e)
        {
            await WriteHttp(context, StatusCodes.Status413PayloadTooLarge, RpcJson.Error(null, RpcErrors.InvalidRequest, "Invalid request", e.Message)).ConfigureAwait(false);
            return;
        }
        catch (BadHttpRequestException e)
        {
            await WriteHttp(context, e.StatusCode, RpcJson.Error(null, RpcErrors.InvalidRequest, "Invalid request", e.Message)).ConfigureAwait(false);
            return;
        }
        var response = await Methods.HandleMessageAsync(null, body).ConfigureAwait(false);
        await WriteHttp(context, StatusCodes.Status200OK, response ?? []).ConfigureAwait(false);
    }

    private static async Task WriteHttp(HttpContext context, int status, byte[] body)
    {
        context.Response.StatusCode = status;
        context.Response.ContentType = "application/json; charset=utf-8";
        context.Response.ContentLength = body.Length;
        await context.Response.Body.WriteAsync(body).ConfigureAwait(false);
    }

    private static async Task<byte[]> ReadBodyAsync(Stream body, int max, CancellationToken ct)
    {
        var buffer = new ArrayBufferWriter<byte>(4096);
        var total = 0L;
        var scratch = new byte[8192];
        while (true)
        {
            if (total <= max)
            {
                var memory = buffer.GetMemory(8192);
                var n = await body.ReadAsync(memory, ct).ConfigureAwait(false);
                if (n == 0) return buffer.WrittenSpan.ToArray();
                buffer.Advance(n);
                total += n;
            }
            else
            {
                // Too large: drain what the client sends (Kestrel bounds it) and refuse.
                var n = await body.ReadAsync(scratch, ct).ConfigureAwait(false);
                if (n == 0) throw new InvalidDataException($"request of {total} bytes exceeds the limit of {max}");
                total += n;
            }
        }
    }

    /// <summary>Stops serving: closes every connection and unhooks the chain (the chain itself stays open).</summary>
    public async ValueTask DisposeAsync()
    {
        if (Interlocked.Exchange(ref _disposed, 1) != 0) return;
        _chain.BlockCommitted -= OnBlockCommitted;
        _stop.Cancel();
        foreach (var c in _connections.Keys) c.Close();
        try
        {
            await _app.StopAsync(CancellationToken.None).ConfigureAwait(false);
        }
        catch (ObjectDisposedException)
        {
        }
        await _app.DisposeAsync().ConfigureAwait(false);
        _blocks.Writer.TryComplete();
        try
        {
            await _dispatcher.ConfigureAwait(false);
        }
        catch (OperationCanceledException)
        {
        }
        _stop.Dispose();
    }

    /// <summary>Hands the web host's loggers to the process's factory, so its levels and console apply.</summary>
    private sealed class FactoryProvider(ILoggerFactory factory) : ILoggerProvider
    {
        public ILogger CreateLogger(string categoryName) => factory.CreateLogger(categoryName);

        public void Dispose()
        {
            // the factory belongs to the caller
        }
    }

    private static partial class Log
    {
        [LoggerMessage(EventId = 1, Level = LogLevel.Debug, Message = "WebSocket connection from {Address}:{Port} ({Open} open)")]
        public static partial void Connected(ILogger logger, IPAddress? address, int port, int open);

        [LoggerMessage(EventId = 2, Level = LogLevel.Debug, Message = "WebSocket connection from {Address}:{Port} closed ({Open} open)")]
        public static partial void Disconnected(ILogger logger, IPAddress? address, int port, int open);

        [LoggerMessage(EventId = 3, Level = LogLevel.Warning, Message = "a subscriber fell more than {Queued} messages behind; its connection was closed")]
        public static partial void SlowSubscriberDropped(ILogger logger, int queued);
    }
}

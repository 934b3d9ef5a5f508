using System.Collections.Concurrent;
using System.Net;
using System.Net.Sockets;
using System.Net.WebSockets;
using System.Security.Cryptography;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using Bittensor.Chain.Rpc;
using Bittensor.Chain.Substrate;
using Bittensor.Core.Crypto;
using Bittensor.Core.Scale;

namespace Bittensor.Chain.Tests.Rpc;

/// <summary>
/// A small Substrate JSON-RPC server for client tests: a real WebSocket server (TcpListener on 127.0.0.1 port 0, the
/// RFC 6455 handshake, <see cref="WebSocket.CreateFromStream(Stream, WebSocketCreationOptions)"/>), serving recorded
/// runtime data (spec-148 or spec-218 metadata from the fixtures) and an in-memory chain the test drives: storage,
/// blocks with extrinsics and their recorded <c>System.Events</c>, heads pushed to subscribers. Tests can replace
/// any method's handler, drop every connection, or stop answering.
/// </summary>
internal sealed class FakeSubstrateNode : IAsyncDisposable
{
    private readonly TcpListener _listener = new(IPAddress.Loopback, 0);
    private readonly CancellationTokenSource _stop = new();
    private readonly ConcurrentDictionary<Conn, byte> _connections = new();
    private readonly object _chainLock = new();
    private readonly List<Block> _blocks = [];
    private int _nextSub;
    private Task? _accept;

    public FakeSubstrateNode(string metadataHexFile, uint specVersion)
    {
        MetadataHex = File.ReadAllText(Path.Combine(AppContext.BaseDirectory, "Fixtures", metadataHexFile)).Trim();
        if (!MetadataHex.StartsWith("0x", StringComparison.Ordinal)) MetadataHex = "0x" + MetadataHex;
        Metadata = RuntimeMetadata.Decode(RpcHex.Decode(MetadataHex));
        SpecVersion = specVersion;
        var fixture = JsonDocument.Parse(File.ReadAllText(Path.Combine(AppContext.BaseDirectory, "Fixtures", "local-148.json"))).RootElement;
        EventsRaw = RpcHex.Decode(fixture.GetProperty("events_raw").GetString()!);
        AddBlock([]); // genesis
    }

    public string MetadataHex { get; }

    public RuntimeMetadata Metadata { get; }

    public uint SpecVersion { get; set; }

    /// <summary>Recorded spec-148 <c>System.Events</c>: extrinsic 1 succeeded, extrinsic 2 failed with <c>SubtensorModule.TooManyUids</c>.</summary>
    public byte[] EventsRaw { get; }

    public Uri Endpoint => new($"ws://127.0.0.1:{((IPEndPoint)_listener.LocalEndpoint).Port}");

    public ConcurrentDictionary<string, string> Storage { get; } = new(StringComparer.OrdinalIgnoreCase);

    /// <summary>Per-method overrides: return a result (JsonNode), throw <see cref="RpcError"/>, or return <see cref="NoAnswer"/>.</summary>
    public ConcurrentDictionary<string, Func<JsonElement, Conn, object?>> Handlers { get; } = new();

    public static readonly object NoAnswer = new();

    /// <summary>Every <c>author_submit*</c> payload received, in order.</summary>
    public ConcurrentQueue<string> Submissions { get; } = new();

    /// <summary>Every method called, in order.</summary>
    public ConcurrentQueue<string> Calls { get; } = new();

    private readonly List<(string Method, int Times, TaskCompletionSource Done)> _callWaits = [];

    /// <summary>Completes once <paramref name="method"/> has been called <paramref name="times"/> times in all (counting the calls before).</summary>
    public Task WhenCalled(string method, int times)
    {
        var done = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        lock (_callWaits)
        {
            if (Calls.Count(c => c == method) >= times) done.TrySetResult();
            else _callWaits.Add((method, times, done));
        }
        return done.Task;
    }

    private void Called(string method)
    {
        lock (_callWaits)
        {
            Calls.Enqueue(method);
            if (_callWaits.Count == 0) return;
            var count = Calls.Count(c => c == method);
            foreach (var w in _callWaits.Where(w => w.Method == method && count >= w.Times).ToList())
            {
                w.Done.TrySetResult();
                _callWaits.Remove(w);
            }
        }
    }

    /// <summary>What happens to a watched extrinsic: include it (at extrinsic index 1 = success, 2 = failure) or do nothing.</summary>
    public Func<string, SubmitPlan> OnSubmit { get; set; } = _ => SubmitPlan.IncludeSuccess;

    /// <summary>When false the node reads requests but never answers (a hung node with an open socket).</summary>
    public volatile bool Answering = true;

    /// <summary>Connections accepted up to this count (1 = the first) read requests but never answer; later ones answer.</summary>
    public int SilentUpTo
    {
        get => Volatile.Read(ref _silentUpTo);
        set => Volatile.Write(ref _silentUpTo, value);
    }

    private int _silentUpTo;

    public int Connections => _connections.Count;

    public int Accepted;

    public uint AccountNonce { get; set; }

    public byte[] Genesis
    {
        get
        {
            lock (_chainLock) return _blocks[0].Hash;
        }
    }

    public void Start()
    {
        _listener.Start();
        _accept = Task.Run(AcceptLoopAsync);
    }

    public ulong Best
    {
        get
        {
            lock (_chainLock) return (ulong)_blocks.Count - 1;
        }
    }

    /// <summary>A block; <see cref="Header"/> is a fresh copy on every read (JsonNode trees are not safe to share between threads).</summary>
    public sealed record Block(ulong Number, byte[] Hash, string HeaderJson, List<string> Extrinsics)
    {
        public JsonNode Header => JsonNode.Parse(HeaderJson)!;
    }

    public enum SubmitPlan
    {
        IncludeSuccess,
        IncludeFailure,
        Nothing,
    }

    /// <summary>Appends a block holding <paramref name="extrinsics"/> (hex), pushes its head to subscribers.</summary>
    public Block AddBlock(IReadOnlyList<string> extrinsics)
    {
        Block block;
        lock (_chainLock)
        {
            var number = (ulong)_blocks.Count;
            var parent = number == 0 ? new byte[32] : _blocks[^1].Hash;
            var state = SHA256.HashData(BitConverter.GetBytes(number));
            var header = new JsonObject
            {
                ["parentHash"] = RpcHex.Encode(parent),
                ["number"] = "0x" + number.ToString("x"),
                ["stateRoot"] = RpcHex.Encode(state),
                ["extrinsicsRoot"] = RpcHex.Encode(new byte[32]),
                ["digest"] = new JsonObject { ["logs"] = new JsonArray() },
            };
            var hash = SubstrateChainBackend.HeaderHash(JsonDocument.Parse(header.ToJsonString()).RootElement);
            block = new Block(number, hash, header.ToJsonString(), [.. extrinsics]);
            _blocks.Add(block);
            if (extrinsics.Count > 0) Storage[EventsKeyAt(hash)] = RpcHex.Encode(EventsRaw);
        }
        foreach (var c in _connections.Keys) c.Notify("chain_newHead", "newHeads", block.Header);
        foreach (var c in _connections.Keys) c.Notify("chain_finalizedHead", "finalizedHeads", block.Header);
        return block;
    }

    /// <summary>A block with filler at index 0 and <paramref name="hex"/> at <paramref name="index"/> (1 = success, 2 = failure in the recorded events).</summary>
    public Block Include(string hex, int index)
    {
        var list = new List<string> { "0x0400", "0x0401" };
        if (index == 1) list.Insert(1, hex);
        else list.Add(hex);
        AccountNonce++;
        return AddBlock(list);
    }

    private string EventsKeyAt(byte[] blockHash) => $"{RpcHex.Encode(StorageKeys.Key(Metadata, "System", "Events"))}@{RpcHex.Encode(blockHash)}";

    public void DropAll()
    {
        foreach (var c in _connections.Keys) c.Kill();
    }

    private async Task AcceptLoopAsync()
    {
        while (!_stop.IsCancellationRequested)
        {
            TcpClient tcp;
            try
            {
                tcp = await _listener.AcceptTcpClientAsync(_stop.Token);
            }
            catch (Exception)
            {
                return;
            }
            _ = Task.Run(() => ServeAsync(tcp));
        }
    }

    private async Task ServeAsync(TcpClient tcp)
    {
        using var owned = tcp;
        var stream = tcp.GetStream();
        var request = new StringBuilder();
        var buf = new byte[1];
        while (!request.ToString().EndsWith("\r\n\r\n", StringComparison.Ordinal))
        {
            if (await stream.ReadAsync(buf) == 0) return;
            request.Append((char)buf[0]);
            if (request.Length > 16384) return;
        }
        var key = request.ToString().Split("\r\n").First(l => l.StartsWith("Sec-WebSocket-Key:", StringComparison.OrdinalIgnoreCase))[18..].Trim();
        var accept = Convert.ToBase64String(SHA1.HashData(Encoding.ASCII.GetBytes(key + "258EAFA5-E914-47DA-95CA-C5AB0DC85B11")));
        await stream.WriteAsync(Encoding.ASCII.GetBytes(
            $"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: {accept}\r\n\r\n"));
        using var ws = WebSocket.CreateFromStream(stream, new WebSocketCreationOptions { IsServer = true, KeepAliveInterval = TimeSpan.Zero });
        var conn = new Conn(this, ws, tcp, Interlocked.Increment(ref Accepted));
        _connections[conn] = 0;
        try
        {
            await conn.RunAsync(_stop.Token);
        }
        catch (Exception)
        {
            // Connection ended.
        }
        finally
        {
            _connections.TryRemove(conn, out _);
        }
    }

    internal sealed class RpcError(int code, string message, string? data = null) : Exception(message)
    {
        public int Code { get; } = code;

        public string? ErrorData { get; } = data;
    }

    internal sealed class Conn(FakeSubstrateNode node, WebSocket ws, TcpClient tcp, int index)
    {
        private readonly SemaphoreSlim _send = new(1, 1);
        private readonly ConcurrentDictionary<string, string> _subs = new(); // sub id → kind

        public void Kill()
        {
            try
            {
                tcp.Client.Close(0);
            }
            catch (Exception)
            {
            }
            ws.Abort();
        }

        public async Task RunAsync(CancellationToken ct)
        {
            var buffer = new byte[1 << 20];
            while (ws.State == WebSocketState.Open)
            {
                var len = 0;
                ValueWebSocketReceiveResult r;
                do
                {
                    r = await ws.ReceiveAsync(buffer.AsMemory(len), ct);
                    if (r.MessageType == WebSocketMessageType.Close) return;
                    len += r.Count;
                }
                while (!r.EndOfMessage);
                // Copied out of the receive buffer here, before the next message overwrites it: JsonDocument.Parse over
                // memory does not copy, so a copy made later on the pool thread could read the next request's bytes and
                // that request would never be answered (a 20 s wait in SubstrateClientTests, seen in session 13's CI).
                JsonElement message;
                using (var doc = JsonDocument.Parse(buffer.AsMemory(0, len))) message = doc.RootElement.Clone();
                _ = Task.Run(() => HandleAsync(message));
            }
        }

        private async Task HandleAsync(JsonElement m)
        {
            var id = m.GetProperty("id").GetInt64();
            var method = m.GetProperty("method").GetString()!;
            var p = m.GetProperty("params");
            node.Called(method);
            if (!node.Answering || index <= node.SilentUpTo) return;
            object? result;
            try
            {
                result = node.Handlers.TryGetValue(method, out var h) ? h(p, this) : Default(method, p);
            }
            catch (Exception x) when (x is not RpcError)
            {
                await SendAsync(new JsonObject { ["jsonrpc"] = "2.0", ["id"] = id, ["error"] = new JsonObject { ["code"] = -32603, ["message"] = x.ToString() } });
                return;
            }
            catch (RpcError e)
            {
                var err = new JsonObject { ["code"] = e.Code, ["message"] = e.Message };
                if (e.ErrorData is not null) err["data"] = e.ErrorData;
                await SendAsync(new JsonObject { ["jsonrpc"] = "2.0", ["id"] = id, ["error"] = err });
                return;
            }
            if (ReferenceEquals(result, NoAnswer)) return;
            if (result is string raw && raw.StartsWith("RAW:", StringComparison.Ordinal))
            {
                await SendRawAsync(Encoding.UTF8.GetBytes(raw[4..].Replace("$ID", id.ToString(), StringComparison.Ordinal)));
                return;
            }
            await SendAsync(new JsonObject { ["jsonrpc"] = "2.0", ["id"] = id, ["result"] = ToNode(result) });
            if (method == "author_submitAndWatchExtrinsic" && result is string subId) await AfterSubmitAsync(subId, p[0].GetString()!);
        }

        private async Task AfterSubmitAsync(string subId, string hex)
        {
            var plan = node.OnSubmit(hex);
            if (plan == SubmitPlan.Nothing) return;
            await NotifyAsync("author_extrinsicUpdate", subId, JsonValue.Create("ready"));
            var block = node.Include(hex, plan == SubmitPlan.IncludeSuccess ? 1 : 2);
            await NotifyAsync("author_extrinsicUpdate", subId, new JsonObject { ["inBlock"] = RpcHex.Encode(block.Hash) });
            await NotifyAsync("author_extrinsicUpdate", subId, new JsonObject { ["finalized"] = RpcHex.Encode(block.Hash) });
        }

        private static JsonNode? ToNode(object? v) => v switch
        {
            null => null,
            JsonNode n => n,
            string s => JsonValue.Create(s),
            ulong u => JsonValue.Create(u),
            uint u => JsonValue.Create(u),
            int i => JsonValue.Create(i),
            bool b => JsonValue.Create(b),
            _ => throw new InvalidOperationException(v.GetType().Name),
        };

        private object? Default(string method, JsonElement p)
        {
            switch (method)
            {
                case "chain_getBlockHash":
                {
                    var n = p.GetArrayLength() == 0 || p[0].ValueKind == JsonValueKind.Null ? node.Best : RpcHex.Number(p[0]);
                    lock (node._chainLock) return n < (ulong)node._blocks.Count ? RpcHex.Encode(node._blocks[(int)n].Hash) : null;
                }
                case "system_chain": return "fake";
                case "system_health": return new JsonObject { ["peers"] = 0, ["isSyncing"] = false, ["shouldHavePeers"] = false };
                case "state_getRuntimeVersion":
                    return new JsonObject { ["specName"] = "node-subtensor", ["specVersion"] = node.SpecVersion, ["transactionVersion"] = 1, ["apis"] = new JsonArray() };
                case "state_getMetadata": return node.MetadataHex;
                case "state_call":
                {
                    var fn = p[0].GetString();
                    if (fn == "AccountNonceApi_account_nonce") return RpcHex.Encode(BitConverter.GetBytes(node.AccountNonce));
                    throw new RpcError(-32603, "Internal Error: Function to start was not found.");
                }
                case "system_accountNextIndex": return node.AccountNonce;
                case "chain_getHeader":
                {
                    lock (node._chainLock)
                    {
                        var b = p.GetArrayLength() > 0 && p[0].ValueKind == JsonValueKind.String
                            ? node._blocks.First(x => RpcHex.Encode(x.Hash) == p[0].GetString())
                            : node._blocks[^1];
                        return b.Header;
                    }
                }
                case "chain_getFinalizedHead":
                    lock (node._chainLock) return RpcHex.Encode(node._blocks[^1].Hash);
                case "chain_getBlock":
                {
                    lock (node._chainLock)
                    {
                        var b = node._blocks.FirstOrDefault(x => RpcHex.Encode(x.Hash) == p[0].GetString());
                        if (b is null) return null;
                        return new JsonObject
                        {
                            ["block"] = new JsonObject
                            {
                                ["header"] = b.Header,
                                ["extrinsics"] = new JsonArray([.. b.Extrinsics.Select(x => (JsonNode)JsonValue.Create(x)!)]),
                            },
                        };
                    }
                }
                case "state_getStorage":
                {
                    var key = p[0].GetString()!;
                    if (p.GetArrayLength() > 1 && p[1].ValueKind == JsonValueKind.String && node.Storage.TryGetValue($"{key}@{p[1].GetString()}", out var atBlock))
                        return atBlock;
                    return node.Storage.TryGetValue(key, out var v) ? v : null;
                }
                case "state_queryStorageAt":
                {
                    var changes = new JsonArray();
                    foreach (var k in p[0].EnumerateArray())
                    {
                        var key = k.GetString()!;
                        changes.Add(new JsonArray(key, node.Storage.TryGetValue(key, out var v) ? v : null));
                    }
                    return new JsonArray(new JsonObject { ["block"] = p.GetArrayLength() > 1 ? p[1].GetString() : null, ["changes"] = changes });
                }
                case "state_getKeysPaged":
                {
                    var prefix = p[0].GetString()!;
                    var count = p[1].GetInt32();
                    var start = p.GetArrayLength() > 2 && p[2].ValueKind == JsonValueKind.String ? p[2].GetString() : null;
                    var keys = node.Storage.Keys.Where(k => !k.Contains('@') && k.StartsWith(prefix, StringComparison.OrdinalIgnoreCase))
                        .Order(StringComparer.OrdinalIgnoreCase)
                        .Where(k => start is null || string.Compare(k, start, StringComparison.OrdinalIgnoreCase) > 0)
                        .Take(count);
                    return new JsonArray([.. keys.Select(k => (JsonNode)JsonValue.Create(k)!)]);
                }
                case "chain_subscribeNewHeads": return Subscribe("newHeads");
                case "chain_subscribeFinalizedHeads": return Subscribe("finalizedHeads");
                case "state_subscribeRuntimeVersion": return Subscribe("runtimeVersion");
                case "author_submitAndWatchExtrinsic":
                    node.Submissions.Enqueue(p[0].GetString()!);
                    return Subscribe("extrinsic");
                case "author_submitExtrinsic":
                    node.Submissions.Enqueue(p[0].GetString()!);
                    return RpcHex.Encode(Blake2b.Hash256(RpcHex.Decode(p[0].GetString()!)));
                case "chain_unsubscribeNewHeads" or "chain_unsubscribeFinalizedHeads" or "state_unsubscribeRuntimeVersion" or "author_unwatchExtrinsic":
                    return _subs.TryRemove(p[0].GetString()!, out _);
                default:
                    throw new RpcError(-32601, $"Method not found: {method}");
            }
        }

        private string Subscribe(string kind)
        {
            var id = $"s{Interlocked.Increment(ref node._nextSub)}";
            _subs[id] = kind;
            return id;
        }

        public void Notify(string method, string kind, JsonNode value)
        {
            foreach (var (id, k) in _subs)
            {
                if (k == kind) _ = NotifyAsync(method, id, JsonNode.Parse(value.ToJsonString()));
            }
        }

        public Task NotifyAsync(string method, string subId, JsonNode? value) =>
            SendAsync(new JsonObject
            {
                ["jsonrpc"] = "2.0",
                ["method"] = method,
                ["params"] = new JsonObject { ["subscription"] = subId, ["result"] = value },
            });

        private Task SendAsync(JsonObject message) => SendRawAsync(Encoding.UTF8.GetBytes(message.ToJsonString()));

        public async Task SendRawAsync(byte[] bytes)
        {
            await _send.WaitAsync();
            try
            {
                if (ws.State == WebSocketState.Open) await ws.SendAsync(bytes, WebSocketMessageType.Text, true, CancellationToken.None);
            }
            catch (Exception)
            {
                // The peer went away.
            }
            finally
            {
                _send.Release();
            }
        }
    }

    public async ValueTask DisposeAsync()
    {
        _stop.Cancel();
        _listener.Stop();
        DropAll();
        if (_accept is not null) await _accept;
    }
}

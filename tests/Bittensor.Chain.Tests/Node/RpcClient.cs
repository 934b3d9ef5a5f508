using System.Net.WebSockets;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using System.Threading.Channels;

namespace Bittensor.Chain.Tests.Node;

/// <summary>A minimal JSON-RPC WebSocket client for the node tests: requests by id, notifications in a queue per subscription.</summary>
internal sealed class RpcClient : IAsyncDisposable
{
    private static readonly TimeSpan Guard = TimeSpan.FromMinutes(2); // hang guard only; nothing is timed
    private readonly ClientWebSocket _ws = new();
    private readonly Dictionary<long, TaskCompletionSource<JsonElement>> _pending = [];
    private readonly Dictionary<string, Channel<JsonElement>> _subs = [];
    private readonly CancellationTokenSource _cts = new();
    private Task _reader = Task.CompletedTask;
    private long _next;

    public static async Task<RpcClient> ConnectAsync(Uri endpoint)
    {
        var c = new RpcClient();
        await c._ws.ConnectAsync(endpoint, CancellationToken.None).WaitAsync(Guard);
        c._reader = Task.Run(c.ReadLoop);
        return c;
    }

    /// <summary>The full response object (with result or error).</summary>
    public async Task<JsonElement> CallRaw(string method, params object?[] ps)
    {
        var id = Interlocked.Increment(ref _next);
        var tcs = new TaskCompletionSource<JsonElement>(TaskCreationOptions.RunContinuationsAsynchronously);
        lock (_pending) _pending[id] = tcs;
        var msg = JsonSerializer.SerializeToUtf8Bytes(new Dictionary<string, object?> { ["jsonrpc"] = "2.0", ["id"] = id, ["method"] = method, ["params"] = ps });
        await _ws.SendAsync(msg, WebSocketMessageType.Text, true, CancellationToken.None).WaitAsync(Guard);
        return await tcs.Task.WaitAsync(Guard);
    }

    public async Task<JsonElement> Call(string method, params object?[] ps)
    {
        var r = await CallRaw(method, ps);
        if (r.TryGetProperty("error", out var e)) throw new InvalidOperationException($"{method}: {e}");
        return r.GetProperty("result");
    }

    /// <summary>Subscribes; notifications are read with <see cref="Next"/>.</summary>
    public async Task<string> Subscribe(string method, params object?[] ps)
    {
        var id = (await Call(method, ps)).GetString()!;
        lock (_subs) Queue(id);
        return id;
    }

    public async Task<JsonElement> Next(string subscription)
    {
        Channel<JsonElement> ch;
        lock (_subs) ch = Queue(subscription);
        return await ch.Reader.ReadAsync().AsTask().WaitAsync(Guard);
    }

    public bool TryNext(string subscription, out JsonElement result)
    {
        Channel<JsonElement> ch;
        lock (_subs) ch = Queue(subscription);
        return ch.Reader.TryRead(out result);
    }

    private Channel<JsonElement> Queue(string id)
    {
        if (!_subs.TryGetValue(id, out var ch)) _subs[id] = ch = Channel.CreateUnbounded<JsonElement>();
        return ch;
    }

    private async Task ReadLoop()
    {
        var buffer = new byte[1 << 16];
        var ms = new MemoryStream();
        try
        {
            while (!_cts.IsCancellationRequested)
            {
                ms.SetLength(0);
                WebSocketReceiveResult r;
                do
                {
                    r = await _ws.ReceiveAsync(buffer, _cts.Token);
                    if (r.MessageType == WebSocketMessageType.Close) return;
                    ms.Write(buffer, 0, r.Count);
                }
                while (!r.EndOfMessage);
                var doc = JsonDocument.Parse(ms.ToArray()).RootElement.Clone();
                if (doc.TryGetProperty("id", out var idEl) && idEl.ValueKind == JsonValueKind.Number)
                {
                    TaskCompletionSource<JsonElement>? tcs;
                    lock (_pending) _pending.Remove(idEl.GetInt64(), out tcs);
                    tcs?.TrySetResult(doc);
                }
                else if (doc.TryGetProperty("params", out var p))
                {
                    var sub = p.GetProperty("subscription").GetString()!;
                    Channel<JsonElement> ch;
                    lock (_subs) ch = Queue(sub);
                    ch.Writer.TryWrite(p.GetProperty("result"));
                }
            }
        }
        catch (Exception) when (_cts.IsCancellationRequested || _ws.State != WebSocketState.Open)
        {
        }
    }

    public async ValueTask DisposeAsync()
    {
        _cts.Cancel();
        _ws.Abort();
        try { await _reader; } catch (Exception) { }
        _ws.Dispose();
    }

    /// <summary>One HTTP POST.</summary>
    public static async Task<(int Status, JsonNode? Body)> Post(HttpClient http, Uri endpoint, string body)
    {
        using var content = new StringContent(body, Encoding.UTF8, "application/json");
        using var r = await http.PostAsync(endpoint, content).WaitAsync(Guard);
        var text = await r.Content.ReadAsStringAsync();
        return ((int)r.StatusCode, text.Length == 0 ? null : JsonNode.Parse(text));
    }
}

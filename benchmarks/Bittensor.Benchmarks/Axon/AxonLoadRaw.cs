using System.Buffers.Binary;
using System.Diagnostics;
using System.Globalization;
using System.Net.Sockets;
using System.Text;
using Bittensor.Core.Crypto;
using Bittensor.Protocol;
using Bittensor.Protocol.Wire;
using Google.Protobuf;

namespace Bittensor.Benchmarks.Axon;

/// <summary>
/// A lean load generator for the unsigned race (issue 11): <c>axon-load-raw --target host:port [--concurrency 16,128]
/// [--seconds 8] [--shape 1,16] [--network_dim 1024] [--channels 4]</c>. It speaks h2c over raw sockets: one request
/// message encoded once, per call a HEADERS frame (HPACK literals, no Huffman, no dynamic table) with a fresh
/// unsigned <c>bittensor-signature</c> (zero signature, verification-off axons only) and one DATA frame; answers are
/// counted, not decoded: a call is OK when its trailers carry <c>grpc-status: 0</c> and its DATA held at least the
/// full answer's tensor bytes. Grpc.Net.Client spends 0.4–1.6 ms of CPU per call on one core, which caps any
/// process-separated run near 2.5k req/s; this one exists so the axon, not the generator, is the limit. Prints the
/// same row as <c>axon-load</c>.
/// </summary>
internal static class AxonLoadRaw
{
    public static async Task<int> Run(string[] args)
    {
        var opts = Args.Parse(args);
        var seconds = double.Parse(opts.Get("seconds", "8"), CultureInfo.InvariantCulture);
        var concurrency = opts.Get("concurrency", "16").Split(',').Select(s => int.Parse(s, CultureInfo.InvariantCulture)).ToArray();
        var shape = opts.Get("shape", "1,16").Split(',').Select(s => long.Parse(s, CultureInfo.InvariantCulture)).ToArray();
        var dim = int.Parse(opts.Get("network_dim", "1024"), CultureInfo.InvariantCulture);
        var channels = int.Parse(opts.Get("channels", "4"), CultureInfo.InvariantCulture);
        var target = opts.Get("target", "");
        if (target.Length == 0)
        {
            Console.Error.WriteLine("axon-load-raw: --target host:port is required");
            return 2;
        }
        var colon = target.LastIndexOf(':');
        var host = target[..colon];
        var port = int.Parse(target[(colon + 1)..], CultureInfo.InvariantCulture);

        var tokens = Enumerable.Range(0, (int)(shape[0] * shape[1])).Select(i => (long)(i % 50000)).ToArray();
        var hotkeys = Enumerable.Range(0, 256).Select(i => SecretUri.ToSr25519($"//bench/{i}").ToSs58()).ToArray();
        var minAnswerBytes = shape[0] * shape[1] * dim * 4;
        Console.WriteLine($"# axon-load-raw target={target} shape=[{string.Join(",", shape)}] answer=[{shape[0]},{shape[1]},{dim}] seconds={seconds} " +
            $"connections={channels} cores={Environment.ProcessorCount}");
        Console.WriteLine("| callers | req/s | p50 ms | p99 ms | ok | errors | calls |");
        Console.WriteLine("|---:|---:|---:|---:|---:|---|");
        foreach (var callers in concurrency)
        {
            var connections = new Connection[channels];
            for (var i = 0; i < channels; i++) connections[i] = await Connection.Open(host, port);
            try
            {
                await RunLevel(callers, seconds, connections, hotkeys, tokens, shape, minAnswerBytes, $"{host}:{port}");
            }
            finally
            {
                foreach (var c in connections) c.Dispose();
            }
        }
        return 0;
    }

    private static async Task RunLevel(int callers, double seconds, Connection[] connections, string[] hotkeys, long[] tokens, long[] shape,
        long minAnswerBytes, string authority)
    {
        var stop = Stopwatch.StartNew();
        var deadline = TimeSpan.FromSeconds(seconds);
        var warmup = TimeSpan.FromSeconds(Math.Min(1, seconds / 5));
        var latencies = new List<double>[callers];
        var errors = new Dictionary<string, int>[callers];
        long answered = 0;
        var keysPerCaller = Math.Max(1, Math.Min(16, hotkeys.Length / callers));
        var tasks = Enumerable.Range(0, callers).Select(c => Task.Run(async () =>
        {
            var connection = connections[c % connections.Length];
            var lat = latencies[c] = new List<double>(1 << 14);
            var err = errors[c] = new Dictionary<string, int>(StringComparer.Ordinal);
            var bodies = new Dictionary<string, byte[]>(StringComparer.Ordinal);
            var i = 0;
            while (stop.Elapsed < deadline)
            {
                var hotkey = hotkeys[((c * keysPerCaller) + (i++ % keysPerCaller)) % hotkeys.Length];
                if (!bodies.TryGetValue(hotkey, out var body)) bodies[hotkey] = body = Body(hotkey, tokens, shape);
                var t0 = Stopwatch.GetTimestamp();
                var outcome = await connection.Call(authority, hotkey, body);
                Interlocked.Increment(ref answered);
                if (stop.Elapsed < warmup) continue;
                var code = outcome.Error ?? (outcome.Status != "0" ? $"grpc-status {outcome.Status}" : outcome.DataBytes < minAnswerBytes ? "short answer" : null);
                if (code is null) lat.Add(Stopwatch.GetElapsedTime(t0).TotalMilliseconds);
                else err[code] = err.GetValueOrDefault(code) + 1;
            }
        })).ToArray();
        await Task.WhenAll(tasks);
        var measured = (stop.Elapsed - warmup).TotalSeconds;
        var all = latencies.SelectMany(l => l).Order().ToArray();
        var errorText = string.Join(", ", errors.SelectMany(e => e).GroupBy(e => e.Key).Select(g => $"{g.Key}={g.Sum(x => x.Value)}"));
        Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
            $"| {callers} | {all.Length / measured:F0} | {AxonLoad.Percentile(all, 0.50):F2} | {AxonLoad.Percentile(all, 0.99):F2} | {all.Length} | {(errorText.Length == 0 ? "none" : errorText)} | {Interlocked.Read(ref answered)} |"));
    }

    // The gRPC message (5-byte prefix + protobuf), encoded once per hotkey.
    private static byte[] Body(string hotkey, long[] tokens, long[] shape)
    {
        var request = new TensorMessage { Version = ProtocolVersion.Current, Hotkey = hotkey };
        request.Tensors.Add(TensorCodec.ToTensor(tokens, shape, Modality.Text));
        var size = request.CalculateSize();
        var body = new byte[5 + size];
        BinaryPrimitives.WriteUInt32BigEndian(body.AsSpan(1), (uint)size);
        request.WriteTo(body.AsSpan(5));
        return body;
    }

    private readonly record struct Outcome(string? Status, long DataBytes, string? Error);

    private sealed class Pending
    {
        public readonly TaskCompletionSource<Outcome> Done = new(TaskCreationOptions.RunContinuationsAsynchronously);
        public long DataBytes;
        public string? Status;
    }

    /// <summary>One h2c connection: callers write frames under a lock; one reader loop completes the streams.</summary>
    private sealed class Connection : IDisposable
    {
        private const int Window = 16 * 1024 * 1024;
        private readonly Socket _socket;
        private readonly NetworkStream _stream;
        private readonly SemaphoreSlim _write = new(1, 1);
        private readonly Dictionary<int, Pending> _pending = [];
        private readonly SemaphoreSlim _sendWindowGrew = new(0, int.MaxValue);
        private long _sendWindow = 65535; // the connection-level window for our DATA (the server grows it)
        private int _nextStream = 1;
        private long _received; // DATA bytes since our last connection WINDOW_UPDATE

        private Connection(Socket socket)
        {
            _socket = socket;
            _stream = new NetworkStream(socket, ownsSocket: false);
        }

        public static async Task<Connection> Open(string host, int port)
        {
            var socket = new Socket(SocketType.Stream, ProtocolType.Tcp) { NoDelay = true };
            await socket.ConnectAsync(host, port);
            var c = new Connection(socket);
            var hello = new List<byte>();
            hello.AddRange("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"u8.ToArray());
            // SETTINGS: HEADER_TABLE_SIZE 0 (no dynamic table: trailers decode from literals), ENABLE_PUSH 0, INITIAL_WINDOW_SIZE 16 MiB.
            hello.AddRange(Frame(4, 0, 0, [0, 1, 0, 0, 0, 0, 0, 2, 0, 0, 0, 0, 0, 4, 0x01, 0, 0, 0]));
            hello.AddRange(Frame(8, 0, 0, BigEndian(Window - 65535)));
            await c._stream.WriteAsync(hello.ToArray());
            _ = Task.Run(c.ReadLoop);
            return c;
        }

        public async Task<Outcome> Call(string authority, string hotkey, byte[] body)
        {
            var pending = new Pending();
            var signature = RequestNonce.Format(DateTime.Now) + AuthHeaders.Separator + hotkey + AuthHeaders.Separator + "0x" + new string('0', 128);
            var block = new List<byte>(400) { 0x83, 0x86 }; // :method POST, :scheme http (static table)
            Literal(block, 4, "/Bittensor/Forward"); // :path
            Literal(block, 1, authority); // :authority
            Literal(block, AuthHeaders.AuthName, AuthHeaders.AuthValue);
            Literal(block, AuthHeaders.SignatureName, signature);
            Literal(block, AuthHeaders.VersionName, ProtocolVersion.Current.ToString(CultureInfo.InvariantCulture));
            Literal(block, 31, "application/grpc"); // content-type
            Literal(block, "te", "trailers");
            while (true)
            {
                await _write.WaitAsync();
                if (Interlocked.Read(ref _sendWindow) >= body.Length) break;
                _write.Release();
                await _sendWindowGrew.WaitAsync(5);
            }
            try
            {
                var id = _nextStream;
                _nextStream += 2;
                lock (_pending) _pending[id] = pending;
                Interlocked.Add(ref _sendWindow, -body.Length);
                var frames = new byte[9 + block.Count + 9 + body.Length];
                Frame(1, 0x4, id, block.ToArray()).CopyTo(frames, 0); // HEADERS, END_HEADERS
                Frame(0, 0x1, id, body).CopyTo(frames, 9 + block.Count); // DATA, END_STREAM
                await _stream.WriteAsync(frames);
            }
            catch (Exception e)
            {
                pending.Done.TrySetResult(new Outcome(null, 0, e.GetType().Name));
            }
            finally
            {
                _write.Release();
            }
            return await pending.Done.Task;
        }

        private async Task ReadLoop()
        {
            var header = new byte[9];
            var payload = new byte[64 * 1024];
            try
            {
                while (true)
                {
                    await _stream.ReadExactlyAsync(header);
                    var length = (header[0] << 16) | (header[1] << 8) | header[2];
                    var type = header[3];
                    var flags = header[4];
                    var id = BinaryPrimitives.ReadInt32BigEndian(header.AsSpan(5)) & 0x7FFFFFFF;
                    if (length > payload.Length) payload = new byte[length];
                    await _stream.ReadExactlyAsync(payload.AsMemory(0, length));
                    switch (type)
                    {
                        case 0: // DATA
                            if (Find(id) is { } p) p.DataBytes += length;
                            _received += length;
                            if (_received > Window / 2)
                            {
                                await Send(Frame(8, 0, 0, BigEndian((int)_received)));
                                _received = 0;
                            }
                            if ((flags & 0x1) != 0) Complete(id, null);
                            break;
                        case 1: // HEADERS: response headers, or trailers (END_STREAM)
                            if (Find(id) is { } h && GrpcStatus(payload.AsSpan(0, length), flags) is { } status) h.Status = status;
                            if ((flags & 0x1) != 0) Complete(id, null);
                            break;
                        case 3: // RST_STREAM
                            Complete(id, "RST_STREAM");
                            break;
                        case 4: // SETTINGS
                            if ((flags & 0x1) == 0) await Send(Frame(4, 0x1, 0, []));
                            break;
                        case 6: // PING
                            if ((flags & 0x1) == 0) await Send(Frame(6, 0x1, 0, payload.AsSpan(0, length).ToArray()));
                            break;
                        case 7: // GOAWAY
                            throw new IOException("GOAWAY");
                        case 8: // WINDOW_UPDATE
                            if (id == 0)
                            {
                                Interlocked.Add(ref _sendWindow, BinaryPrimitives.ReadInt32BigEndian(payload) & 0x7FFFFFFF);
                                _sendWindowGrew.Release();
                            }
                            break;
                    }
                }
            }
            catch (Exception e)
            {
                lock (_pending)
                {
                    foreach (var p in _pending.Values) p.Done.TrySetResult(new Outcome(null, 0, e is IOException ? "connection lost" : e.GetType().Name));
                    _pending.Clear();
                }
            }
        }

        private Pending? Find(int id)
        {
            lock (_pending) return _pending.GetValueOrDefault(id);
        }

        private void Complete(int id, string? error)
        {
            Pending? p;
            lock (_pending)
            {
                if (!_pending.Remove(id, out p)) return;
            }
            p.Done.TrySetResult(new Outcome(p.Status, p.DataBytes, error ?? (p.Status is null ? "no grpc-status" : null)));
        }

        private async Task Send(byte[] frame)
        {
            await _write.WaitAsync();
            try
            {
                await _stream.WriteAsync(frame);
            }
            finally
            {
                _write.Release();
            }
        }

        // grpc-status from a header block (HPACK literals; the dynamic table is off, so no indexed non-static entry).
        private static string? GrpcStatus(ReadOnlySpan<byte> block, byte flags)
        {
            var pos = 0;
            if ((flags & 0x8) != 0) pos = 1; // PADDED (pad length byte; padding at the end is never parsed as a field here)
            if ((flags & 0x20) != 0) pos += 5; // PRIORITY
            string? status = null;
            while (pos < block.Length)
            {
                var b = block[pos];
                if ((b & 0x80) != 0) { ReadInt(block, ref pos, 7); continue; } // indexed (static table only)
                if ((b & 0xE0) == 0x20) { ReadInt(block, ref pos, 5); continue; } // dynamic table size update
                var prefix = (b & 0xC0) == 0x40 ? 6 : 4; // with incremental indexing, or without / never indexed
                var nameIndex = ReadInt(block, ref pos, prefix);
                var name = nameIndex == 0 ? ReadString(block, ref pos) : "";
                var value = ReadString(block, ref pos);
                if (name == "grpc-status") status = value;
            }
            return status;
        }

        private static int ReadInt(ReadOnlySpan<byte> s, ref int pos, int prefixBits)
        {
            var max = (1 << prefixBits) - 1;
            var value = s[pos++] & max;
            if (value < max) return value;
            var shift = 0;
            while (true)
            {
                var b = s[pos++];
                value += (b & 0x7F) << shift;
                shift += 7;
                if ((b & 0x80) == 0) return value;
            }
        }

        private static string ReadString(ReadOnlySpan<byte> s, ref int pos)
        {
            var huffman = (s[pos] & 0x80) != 0;
            var length = ReadInt(s, ref pos, 7);
            var text = huffman ? "<huffman>" : Encoding.ASCII.GetString(s.Slice(pos, length));
            pos += length;
            return text;
        }

        public void Dispose()
        {
            _socket.Dispose();
            _stream.Dispose();
        }
    }

    private static byte[] Frame(byte type, byte flags, int stream, byte[] payload)
    {
        var f = new byte[9 + payload.Length];
        f[0] = (byte)(payload.Length >> 16);
        f[1] = (byte)(payload.Length >> 8);
        f[2] = (byte)payload.Length;
        f[3] = type;
        f[4] = flags;
        BinaryPrimitives.WriteInt32BigEndian(f.AsSpan(5), stream);
        payload.CopyTo(f, 9);
        return f;
    }

    private static byte[] BigEndian(int value)
    {
        var b = new byte[4];
        BinaryPrimitives.WriteInt32BigEndian(b, value);
        return b;
    }

    // Literal header field without indexing, indexed name (4-bit prefix).
    private static void Literal(List<byte> block, int nameIndex, string value)
    {
        Int(block, nameIndex, 4, 0x00);
        Str(block, value);
    }

    // Literal header field without indexing, new name.
    private static void Literal(List<byte> block, string name, string value)
    {
        block.Add(0x00);
        Str(block, name);
        Str(block, value);
    }

    private static void Str(List<byte> block, string s)
    {
        var bytes = Encoding.ASCII.GetBytes(s);
        Int(block, bytes.Length, 7, 0x00);
        block.AddRange(bytes);
    }

    private static void Int(List<byte> block, int value, int prefixBits, byte first)
    {
        var max = (1 << prefixBits) - 1;
        if (value < max)
        {
            block.Add((byte)(first | value));
            return;
        }
        block.Add((byte)(first | max));
        value -= max;
        while (value >= 0x80)
        {
            block.Add((byte)((value & 0x7F) | 0x80));
            value >>= 7;
        }
        block.Add((byte)value);
    }
}

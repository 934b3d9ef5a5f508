using System.Buffers.Binary;
using System.Diagnostics;
using System.Globalization;
using System.Net.Sockets;
using System.Runtime.InteropServices;
using System.Text;
using Bittensor.Core.Crypto;
using Bittensor.Protocol;
using Bittensor.Protocol.Wire;
using Google.Protobuf;

namespace Bittensor.Benchmarks.Axon;

/// <summary>
/// A lean load generator for the unsigned race (issue 11): <c>axon-load-raw --target host:port [--concurrency 16,128]
/// [--seconds 8] [--shape 1,16] [--network_dim 1024] [--channels 4]</c>. It speaks h2c over raw sockets, closed loop:
/// each connection carries its share of the callers; one loop per connection reads what the server sent, and every
/// call that ended there (trailers with <c>grpc-status: 0</c> and at least the full answer's tensor bytes = OK) is
/// followed at once by that caller's next call. A call is a HEADERS frame (HPACK literals, no Huffman, no dynamic
/// table; a template per hotkey with a fresh nonce patched into its unsigned <c>bittensor-signature</c>, zero
/// signature: verification-off axons only) and a DATA frame with the request message encoded once; all frames a read
/// produced go out in one write, from one thread per connection with blocking socket calls. Answers are counted, not decoded. It announces a 16 MiB stream window and 1 MiB
/// frames, so a 64 KiB answer can come as one DATA frame. It reads at most 16 KiB at a time, and the rest of a DATA
/// frame of 4 KiB or more is taken off the socket with <c>recv(MSG_TRUNC)</c>: dropped in the kernel, never copied (a
/// full answer's first bytes and every short answer are read as before). At 1,024 callers the generator's core is the
/// bottleneck (session 11: ~19–21 µs of core 1 per call at ~51k calls/s), so every byte it does not copy is throughput
/// it measures of the server. No task, lock or allocation per call besides the nonce's
/// text: it costs far less CPU per call than the axon it loads (Grpc.Net.Client spends 0.4–1.6 ms per call on one
/// core, which caps any process-separated run near 2.5k req/s). Prints the same row as <c>axon-load</c>.
/// With <c>--presign N</c> (verification-on axons) N real sr25519 signature headers are made per level before its
/// clock starts, each caller's for its own hotkeys in the order it will use them (nonces 1 ms apart per key); a caller
/// stops when its share is used up, and the level's time ends with the last call. Signed runs derive one hotkey per
/// caller at least (//bench/0 … //bench/N-1 for N callers, 256 at least), so every caller's nonces are its own.
/// <c>--presign_rate R</c> presigns at least R calls per second of the level (so no caller runs out before it ends; a
/// warning names how many did). <c>--per_second</c> prints the full answers in each second from the level's start (a fresh
/// server's first seconds: benchmarks/first-seconds.sh). <c>--watch_pid PID</c> reads the server's CPU, RSS, threads, context switches and
/// run-queue wait from /proc at the level's start (after presigning and connecting) and end, and prints them.
/// <para>A call answered without the full answer (shed: a NucleusFull return code in a short answer, a gRPC error
/// status, a reset) is followed by that caller's next call only after a pause drawn uniformly in [0, <c>--shed_pause</c>]
/// ms (default 200), as real clients behave: the 2021 receptor and our dendrite hand the shed call back to their
/// validator (zeros and the code) and never retry it; the validator asks that server again in a later round, after
/// its other peers answered and its training step ran. 200 ms is our dendrite's <c>backoff.min</c>, the range its
/// breaker draws the first delay from after Unavailable/Timeout. <c>--shed_pause 0</c> re-sends at once (a client
/// that ignores the answer). A fully answered call is followed at once (closed loop), as before.</para>
/// <para><c>--stamps FILE</c> (benchmarks/shed-probe.sh): every shed call after the warm-up is appended to FILE with its times on
/// the machine's monotonic clock — appended, its send returned, its answer's arrival in this socket (the kernel's
/// <c>SO_TIMESTAMPNS</c> of the receive that completed it, read with <c>recvmsg</c>) and its parse — to be joined with the
/// server's ShedProbe on (port, stream id). Off by default (plain <c>recv</c>).</para>
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
        var presign = int.Parse(opts.Get("presign", "0"), CultureInfo.InvariantCulture);
        // Signed levels: at least this many calls per second of the level are presigned (spread over the callers), so no
        // caller runs out before the level's end at any rate up to it; 0 = --presign alone decides.
        if (!double.TryParse(opts.Get("presign_rate", "0"), NumberStyles.Float, CultureInfo.InvariantCulture, out var presignRate) || presignRate < 0 || presignRate > 1e6)
        {
            Console.Error.WriteLine("axon-load-raw: --presign_rate must be calls per second in 0..1000000");
            return 2;
        }
        // The server's process (its pid): its CPU, RSS, context switches and run-queue wait are read from /proc at the
        // level's start (after presigning and connecting) and end, so "cores busy" covers the level alone.
        var watchPid = int.Parse(opts.Get("watch_pid", "0"), CultureInfo.InvariantCulture);
        if (watchPid != 0 && ProcStat.Read(watchPid) is null)
        {
            Console.Error.WriteLine($"axon-load-raw: --watch_pid {watchPid}: no such process (or /proc unreadable)");
            return 2;
        }
        if (!double.TryParse(opts.Get("shed_pause", "200"), NumberStyles.Float, CultureInfo.InvariantCulture, out var shedPauseMs) || shedPauseMs < 0 || shedPauseMs > 60_000)
        {
            Console.Error.WriteLine("axon-load-raw: --shed_pause must be milliseconds in 0..60000");
            return 2;
        }
        var target = opts.Get("target", "");
        if (target.Length == 0)
        {
            Console.Error.WriteLine("axon-load-raw: --target host:port is required");
            return 2;
        }
        var colon = target.LastIndexOf(':');
        if (colon <= 0 || !int.TryParse(target.AsSpan(colon + 1), NumberStyles.None, CultureInfo.InvariantCulture, out var port) || port is < 1 or > 65535)
        {
            Console.Error.WriteLine($"axon-load-raw: --target must be host:port, got '{target}'");
            return 2;
        }
        var host = target[..colon];
        // --stamps FILE (benchmarks/shed-probe.sh): every shed call after the warm-up is appended to FILE with its times on the
        // machine's monotonic clock (shared with the server's ShedProbe): appended, sent, its answer's arrival in this
        // socket (the kernel's SO_TIMESTAMPNS of the receive that brought it) and its parse.
        var stampsPath = opts.Get("stamps", "");

        var tokens = Enumerable.Range(0, (int)(shape[0] * shape[1])).Select(i => (long)(i % 50000)).ToArray();
        // Signed levels: at least one hotkey per caller, so no two callers share a key and their presigned nonces never
        // collide (with 256 keys, 1,024 callers shared each key four ways and a quarter of their calls were replays).
        var keyCount = presign > 0 ? Math.Max(256, concurrency.Max()) : 256;
        var pairs = Enumerable.Range(0, keyCount).Select(i => SecretUri.ToSr25519($"//bench/{i}")).ToArray();
        var hotkeys = pairs.Select(p => p.ToSs58()).ToArray();
        var minAnswerBytes = shape[0] * shape[1] * dim * 4;
        var requests = hotkeys.Select(h => new Request(h, $"{host}:{port}", Body(h, tokens, shape))).ToArray();
        Console.WriteLine($"# axon-load-raw target={target} shape=[{string.Join(",", shape)}] answer=[{shape[0]},{shape[1]},{dim}] seconds={seconds} " +
            $"connections={channels} presigned={presign} shed_pause=[0,{shedPauseMs.ToString(CultureInfo.InvariantCulture)}]ms cores={Environment.ProcessorCount}");
        Console.WriteLine("| callers | req/s | p50 ms | p99 ms | ok | errors | calls |");
        Console.WriteLine("|---:|---:|---:|---:|---:|---|");
        foreach (var callers in concurrency)
        {
            var count = Math.Max(1, Math.Min(channels, callers));
            var keysPerCaller = Math.Max(1, Math.Min(16, hotkeys.Length / callers));
            var total = presign > 0 ? (int)Math.Min(50_000_000, Math.Max(presign, Math.Ceiling(presignRate * seconds))) : 0;
            var signStarted = Stopwatch.GetTimestamp();
            var signed = presign > 0 ? Presign(total, callers, keysPerCaller, pairs, hotkeys) : null;
            if (signed is not null)
                Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
                    $"# presigned {signed.Sum(x => x.Length)} calls ({signed[0].Length} per caller) in {Stopwatch.GetElapsedTime(signStarted).TotalSeconds:F1} s, before the level's clock"));
            var stop = Stopwatch.StartNew();
            var deadline = TimeSpan.FromSeconds(seconds);
            var warmup = TimeSpan.FromSeconds(Math.Min(1, seconds / 5));
            var connections = new Connection[count];
            for (var i = 0; i < count; i++)
            {
                // Callers c = i, i + count, … ride connection i; each cycles through its own keysPerCaller hotkeys.
                var mine = Enumerable.Range(0, callers).Where(c => c % count == i)
                    .Select(c => new Caller(Enumerable.Range(0, keysPerCaller).Select(k => requests[((c * keysPerCaller) + k) % requests.Length]).ToArray(),
                        signed?[c])).ToArray();
                try
                {
                    connections[i] = await Connection.Open(host, port, mine, stop, deadline, warmup, minAnswerBytes, shedPauseMs, seed: i);
                    if (stampsPath.Length > 0) connections[i].EnableStamps();
                }
                catch (SocketException e)
                {
                    Console.Error.WriteLine($"axon-load-raw: cannot connect to {target}: {e.SocketErrorCode}");
                    foreach (var c in connections) c?.Dispose();
                    return 1;
                }
            }
            var cpu0 = Process.GetCurrentProcess().TotalProcessorTime;
            var server0 = watchPid != 0 ? ProcStat.Read(watchPid) : null;
            var wall0 = Stopwatch.GetTimestamp();
            try
            {
                await Task.WhenAll(connections.Select(c => c.Run()));
            }
            finally
            {
                foreach (var c in connections) c.Dispose();
            }
            var server1 = watchPid != 0 ? ProcStat.Read(watchPid) : null;
            var wall = Stopwatch.GetElapsedTime(wall0).TotalSeconds;
            var measured = (stop.Elapsed - warmup).TotalSeconds;
            if (opts.Has("per_second"))
            {
                var seconds1 = (int)Math.Ceiling(stop.Elapsed.TotalSeconds);
                // From the level's clock start (the warm-up second included): full answers in each second.
                Console.WriteLine($"# per second from the first call (full answers): {string.Join(" ", Enumerable.Range(0, Math.Min(seconds1, 3600)).Select(i => connections.Sum(c => c.PerSecond[i])))}");
            }
            var all = connections.SelectMany(c => c.Latencies).Order().ToArray();
            var errors = connections.SelectMany(c => c.Errors).GroupBy(e => e.Key).Select(g => $"{g.Key}={g.Sum(x => x.Value)}");
            // Calls answered without the full answer (a shed or refused call: NucleusFull, RESOURCE_EXHAUSTED, a reset):
            // how fast the server said no (overload runs, LEVELS=1024).
            var shed = connections.SelectMany(c => c.ErrorLatencies).Order().ToArray();
            if (shed.Length > 0)
            {
                Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
                    $"# not admitted: {shed.Length} calls ({shed.Length / measured:F0}/s), answered in p50 {AxonLoad.Percentile(shed, 0.50):F3} ms, p99 {AxonLoad.Percentile(shed, 0.99):F3} ms, max {shed[^1]:F3} ms"));
                // Every call, admitted or not, as its caller saw it (the pauses after a shed call are not in any latency).
                var every = all.Concat(shed).Order().ToArray();
                Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
                    $"# all calls: {every.Length} ({every.Length / measured:F0}/s), p50 {AxonLoad.Percentile(every, 0.50):F3} ms, p99 {AxonLoad.Percentile(every, 0.99):F3} ms; admitted {100.0 * all.Length / every.Length:F1} %"));
            }
            if (connections.Length > 1)
            {
                // How evenly the server served its connections: a connection starved for the whole level has few
                // latencies, and calls never answered are in no percentile (session 12, "Read turns").
                var per = connections.Select(c => c.Latencies.Count).Order().ToArray();
                Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
                    $"# per connection ({per.Length}): admitted calls min {per[0]} / median {per[per.Length / 2]} / max {per[^1]}"));
            }
            if (stampsPath.Length > 0)
            {
                var text = new StringBuilder();
                text.Append(CultureInfo.InvariantCulture, $"# level {callers}\n");
                foreach (var c in connections)
                    foreach (var r in c.Stamps)
                        text.Append(CultureInfo.InvariantCulture, $"{r.Port} {r.Stream} {r.Started} {r.Sent} {r.Arrived} {r.Ended} {r.Receives}\n");
                File.AppendAllText(stampsPath, text.ToString());
            }
            var ranOut = connections.Sum(c => c.RanOut);
            if (ranOut > 0)
                Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
                    $"# WARNING: {ranOut} callers used up their presigned calls before the level's end (first after {connections.Where(c => c.RanOut > 0).Min(c => c.FirstRanOut.TotalSeconds):F1} s): raise --presign / --presign_rate"));
            if (server0 is { } a && server1 is { } b)
            {
                var calls = connections.Sum(c => c.Answered);
                Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
                    $"# server over the level: {(b.CpuSeconds - a.CpuSeconds) / wall:F2} cores busy ({b.CpuSeconds - a.CpuSeconds:F2} s CPU in {wall:F2} s), " +
                    $"{(calls > 0 ? (b.CpuSeconds - a.CpuSeconds) * 1e6 / calls : double.NaN):F0} us CPU per call answered, run-queue wait {(b.RunQueueSeconds - a.RunQueueSeconds) / wall:F2}, " +
                    $"RSS {a.RssMb:F0} -> {b.RssMb:F0} MB, {b.Threads} threads, {(calls > 0 ? (double)(b.ContextSwitches - a.ContextSwitches) / calls : double.NaN):F1} context switches per call"));
            }
            var errorText = string.Join(", ", errors);
            // This process's CPU over the level alone (no start-up, key derivation or JIT of the first calls' warm-up
            // before it), per answered call: what the generator costs per call in steady state.
            var levelCpu = Process.GetCurrentProcess().TotalProcessorTime - cpu0;
            var answered = connections.Sum(c => c.Answered);
            Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
                $"# generator CPU per call over the level: {(answered > 0 ? levelCpu.TotalMicroseconds / answered : double.NaN):F1} us"));
            Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
                $"| {callers} | {all.Length / measured:F0} | {AxonLoad.Percentile(all, 0.50):F2} | {AxonLoad.Percentile(all, 0.99):F2} | {all.Length} | {(errorText.Length == 0 ? "none" : errorText)} | {connections.Sum(c => c.Answered)} |"));
        }
        return 0;
    }

    /// <summary>
    /// Per caller, its share of <paramref name="total"/> signature header values in the order it sends: call i uses
    /// hotkey (c·keysPerCaller + i mod keysPerCaller) mod 256 (as the callers' request rotation), nonce start + ⌊i / keysPerCaller⌋ ms.
    /// Same length as the unsigned template's value, so it is copied over it in place.
    /// </summary>
    private static byte[][][] Presign(int total, int callers, int keysPerCaller, Sr25519KeyPair[] pairs, string[] hotkeys)
    {
        var perCaller = (total + callers - 1) / callers;
        var start = DateTime.Now;
        var signed = Enumerable.Range(0, callers).Select(_ => new byte[perCaller][]).ToArray();
        Parallel.For(0, callers * perCaller, n =>
        {
            var c = n / perCaller;
            var i = n % perCaller;
            var k = ((c * keysPerCaller) + (i % keysPerCaller)) % hotkeys.Length;
            var nonce = RequestNonce.Format(start.AddMilliseconds(i / keysPerCaller));
            var signature = pairs[k].Sign(Encoding.UTF8.GetBytes(nonce + hotkeys[k]));
            signed[c][i] = Encoding.ASCII.GetBytes(nonce + AuthHeaders.Separator + hotkeys[k] + AuthHeaders.Separator + "0x" + Convert.ToHexStringLower(signature));
        });
        return signed;
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

    /// <summary>One hotkey's call as frames: HEADERS (END_HEADERS) + DATA (END_STREAM), with the stream id and nonce patched per call.</summary>
    private sealed class Request
    {
        public Request(string hotkey, string authority, byte[] body)
        {
            var block = new List<byte> { 0x83, 0x86 }; // :method POST, :scheme http (static table)
            Literal(block, 4, "/Bittensor/Forward"); // :path
            Literal(block, 1, authority); // :authority
            Literal(block, AuthHeaders.AuthName, AuthHeaders.AuthValue);
            var signature = new string('0', RequestNonce.Length) + AuthHeaders.Separator + hotkey + AuthHeaders.Separator + "0x" + new string('0', 128);
            block.Add(0x00);
            Str(block, AuthHeaders.SignatureName);
            Int(block, signature.Length, 7, 0x00);
            NonceOffset = 9 + block.Count;
            block.AddRange(Encoding.ASCII.GetBytes(signature));
            Literal(block, AuthHeaders.VersionName, ProtocolVersion.Current.ToString(CultureInfo.InvariantCulture));
            Literal(block, 31, "application/grpc"); // content-type
            Literal(block, "te", "trailers");
            Frames = new byte[9 + block.Count + 9 + body.Length];
            Frame(1, 0x4, 0, [.. block]).CopyTo(Frames, 0); // HEADERS, END_HEADERS
            DataOffset = 9 + block.Count;
            Frame(0, 0x1, 0, body).CopyTo(Frames, DataOffset); // DATA, END_STREAM
            BodyLength = body.Length;
        }

        public byte[] Frames { get; }

        public int NonceOffset { get; }

        public int DataOffset { get; }

        public int BodyLength { get; }
    }

    /// <summary>One caller: its hotkeys' requests, the stream it waits on and what came back on it.</summary>
    private sealed class Caller(Request[] requests, byte[][]? signed)
    {
        public Request[] Requests { get; } = requests;
        public byte[][]? Signed { get; } = signed; // presigned header values in sending order; null: unsigned
        public int SignedNext;
        public int Next;
        public int Stream;
        public long Started;
        public long DataBytes;
        public string? Status;
        public readonly byte[] Small = new byte[256]; // the first bytes of the answer's DATA: a short answer's return code
        public long Due; // Stopwatch timestamp at which a paused caller sends its next call
        public long Sent; // --stamps: when the send that carried its call returned
    }

    /// <summary>One h2c connection and the callers on it: a single loop reads, completes and sends, in that order.</summary>
    private sealed class Connection : IDisposable
    {
        private const int Window = 16 * 1024 * 1024;
        private const int MaxFrame = 1024 * 1024;
        private readonly Socket _socket;
        private readonly Caller[] _callers;
        private readonly Dictionary<int, Caller> _open = [];
        private readonly Queue<Caller> _blocked = new(); // waiting for the connection's send window
        private readonly PriorityQueue<Caller, long> _paused = new(); // after a shed call: waiting for their pause to end
        private readonly double _shedPauseMs;
        private readonly Random _random;
        private readonly Stopwatch _clock;
        private readonly TimeSpan _deadline;
        private readonly TimeSpan _warmup;
        private readonly long _minAnswerBytes;
        private readonly TimeSpan _localOffset = TimeZoneInfo.Local.GetUtcOffset(DateTime.UtcNow);
        private byte[] _in = new byte[4 * MaxFrame];
        private byte[] _out = new byte[256 * 1024];
        private int _outLength;
        private long _sendWindow = 65535; // the connection-level window for our DATA (the server grows it)
        private long _received; // DATA bytes since our last connection WINDOW_UPDATE
        private int _nextStream = 1;
        private const int ReadAtMost = 16 * 1024;
        private const int SkipAbove = 4096;
        private const int MsgTrunc = 0x20;
        private long _skip; // bytes of a large DATA frame's payload still to drop
        private int _skipId;
        private byte _skipFlags;

        [DllImport("libc", EntryPoint = "recv", SetLastError = true)]
        private static extern nint Recv(nint socket, byte[] buffer, nint length, int flags);

        public List<double> Latencies { get; } = new(1 << 16);

        /// <summary>--stamps: the shed calls after the warm-up (Stopwatch timestamps).</summary>
        public List<(int Port, int Stream, long Started, long Sent, long Arrived, long Ended, long Receives)> Stamps { get; } = [];

        private bool _stamps;
        private readonly List<Caller> _unsent = [];
        private long _arrived; // the kernel's receive timestamp of the last receive, on the monotonic clock
        private long _receives;
        private long _realtimeOffset; // CLOCK_REALTIME - CLOCK_MONOTONIC, ns
        private int _localPort;

        /// <summary>--stamps: the kernel stamps every received packet (SO_TIMESTAMPNS), read with recvmsg.</summary>
        public void EnableStamps()
        {
            _stamps = true;
            _localPort = ((System.Net.IPEndPoint)_socket.LocalEndPoint!).Port;
            _socket.SetRawSocketOption(1, 35, BitConverter.GetBytes(1)); // SOL_SOCKET, SO_TIMESTAMPNS
            var best = long.MaxValue;
            for (var i = 0; i < 9; i++)
            {
                var m0 = Stopwatch.GetTimestamp();
                ClockGetTime(0, out var rt);
                var m1 = Stopwatch.GetTimestamp();
                if (m1 - m0 < best)
                {
                    best = m1 - m0;
                    _realtimeOffset = (rt.Sec * 1_000_000_000L) + rt.Nsec - ToNs((m0 + m1) / 2);
                }
            }
        }

        private static long ToNs(long ticks) => (long)(ticks * (1e9 / Stopwatch.Frequency));

        private static long FromNs(long ns) => (long)(ns * (Stopwatch.Frequency / 1e9));

        [StructLayout(LayoutKind.Sequential)]
        private struct Timespec
        {
            public long Sec;
            public long Nsec;
        }

        [StructLayout(LayoutKind.Sequential)]
        private struct IoVec
        {
            public nint Base;
            public nint Length;
        }

        [StructLayout(LayoutKind.Sequential)]
        private struct MsgHdr
        {
            public nint Name;
            public int NameLength;
            public nint Iov;
            public nint IovLength;
            public nint Control;
            public nint ControlLength;
            public int Flags;
        }

        [DllImport("libc", EntryPoint = "clock_gettime")]
        private static extern int ClockGetTime(int clock, out Timespec time);

        [DllImport("libc", EntryPoint = "recvmsg", SetLastError = true)]
        private static extern unsafe nint RecvMsg(nint socket, MsgHdr* message, int flags);

        // recv(2) through recvmsg with the kernel's receive timestamp (SO_TIMESTAMPNS, CLOCK_REALTIME) kept in _arrived.
        private unsafe int ReceiveStamped(int offset, int count)
        {
            var control = stackalloc byte[64];
            fixed (byte* buffer = _in)
            {
                var iov = new IoVec { Base = (nint)(buffer + offset), Length = count };
                var message = new MsgHdr { Iov = (nint)(&iov), IovLength = 1, Control = (nint)control, ControlLength = 64 };
                var n = RecvMsg(_socket.Handle, &message, 0);
                if (n < 0) throw new IOException($"recvmsg: errno {Marshal.GetLastPInvokeError()}");
                _receives++;
                // cmsghdr: size_t len, int level, int type, then the timespec (at 16 on 64-bit Linux).
                if (message.ControlLength >= 32 && *(int*)(control + 8) == 1 && *(int*)(control + 12) == 35)
                {
                    var ts = (Timespec*)(control + 16);
                    _arrived = FromNs((ts->Sec * 1_000_000_000L) + ts->Nsec - _realtimeOffset);
                }
                return (int)n;
            }
        }

        /// <summary>Latencies of calls that ended without a full answer (after the warm-up).</summary>
        public List<double> ErrorLatencies { get; } = [];

        public Dictionary<string, int> Errors { get; } = new(StringComparer.Ordinal);

        public long Answered { get; private set; }

        /// <summary>Full answers per second of the level's clock (warm-up second included): <c>--per_second</c>.</summary>
        public int[] PerSecond { get; } = new int[3600];

        /// <summary>Callers whose presigned calls were used up before the level's end, and when the first one was.</summary>
        public int RanOut { get; private set; }

        public TimeSpan FirstRanOut { get; private set; }

        private Connection(Socket socket, Caller[] callers, Stopwatch clock, TimeSpan deadline, TimeSpan warmup, long minAnswerBytes, double shedPauseMs, int seed)
        {
            _shedPauseMs = shedPauseMs;
            _random = new Random(seed);
            _socket = socket;
            _callers = callers;
            _clock = clock;
            _deadline = deadline;
            _warmup = warmup;
            _minAnswerBytes = minAnswerBytes;
        }

        public static Task<Connection> Open(string host, int port, Caller[] callers, Stopwatch clock, TimeSpan deadline, TimeSpan warmup,
            long minAnswerBytes, double shedPauseMs, int seed)
        {
            // A synchronous connect keeps the socket in the kernel's blocking mode (an async operation would switch it
            // to non-blocking for good, and every later synchronous call would go through .NET's epoll emulation).
            // A server that stops answering ends the level ("connection lost") after 30 s instead of hanging it.
            var socket = new Socket(SocketType.Stream, ProtocolType.Tcp) { NoDelay = true, ReceiveTimeout = 30_000, SendTimeout = 30_000 };
            socket.Connect(host, port);
            return Task.FromResult(new Connection(socket, callers, clock, deadline, warmup, minAnswerBytes, shedPauseMs, seed));
        }

        /// <summary>
        /// Runs the connection's loop on its own thread with blocking send/recv: the kernel wakes that thread when the
        /// server's bytes arrive (no epoll thread, no thread-pool hop per read, no idle pool workers spinning).
        /// </summary>
        public Task Run()
        {
            var done = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
            var thread = new Thread(() =>
            {
                try
                {
                    Loop();
                    done.SetResult();
                }
                catch (Exception e)
                {
                    done.SetException(e);
                }
            })
            { IsBackground = true, Name = "axon-load-raw connection" };
            thread.Start();
            return done.Task;
        }

        private void Loop()
        {
            Append("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"u8);
            // SETTINGS: HEADER_TABLE_SIZE 0 (no dynamic table: trailers decode from literals), ENABLE_PUSH 0,
            // INITIAL_WINDOW_SIZE 16 MiB, MAX_FRAME_SIZE 1 MiB.
            AppendFrame(4, 0, 0, [0, 1, 0, 0, 0, 0, 0, 2, 0, 0, 0, 0, 0, 4, 0x01, 0, 0, 0, 0, 5, 0, 0x10, 0, 0]);
            AppendFrame(8, 0, 0, BigEndian(Window - 65535));
            foreach (var c in _callers) Start(c);
            var filled = 0;
            try
            {
                while (true)
                {
                    for (var sent = 0; sent < _outLength;)
                        sent += _socket.Send(_out, sent, _outLength - sent, SocketFlags.None);
                    _outLength = 0;
                    if (_stamps && _unsent.Count > 0)
                    {
                        var at = Stopwatch.GetTimestamp();
                        foreach (var c in _unsent) c.Sent = at;
                        _unsent.Clear();
                    }
                    if (_open.Count == 0 && _blocked.Count == 0 && _paused.Count == 0) break;
                    if (_paused.Count > 0)
                    {
                        // Paused callers: wait for the server's bytes only until the first pause ends, then send. poll()
                        // counts whole milliseconds (Socket.Poll truncates microseconds to them): a wait under 1 ms was a
                        // poll with timeout 0, and with hundreds of callers paused one was nearly always due within 1 ms,
                        // so the loop spun on poll() (session 10's 53 µs of generator CPU per call at 1,024 callers). Now
                        // it sleeps whole milliseconds and Resume starts every caller due within the next one.
                        _paused.TryPeek(out _, out var due);
                        var waitMs = Math.Ceiling(Stopwatch.GetElapsedTime(Stopwatch.GetTimestamp(), due).TotalMilliseconds);
                        if (waitMs <= 0 || !_socket.Poll((int)Math.Min(int.MaxValue / 1000, waitMs) * 1000, SelectMode.SelectRead))
                        {
                            Resume();
                            continue;
                        }
                    }
                    if (_skip > 0)
                    {
                        // The rest of a large DATA frame's payload: dropped in the kernel, never copied (MSG_TRUNC).
                        var dropped = Discard((int)Math.Min(_skip, _in.Length));
                        _skip -= dropped;
                        Count(_skipId, dropped);
                        if (_skip == 0 && (_skipFlags & 0x1) != 0) End(_skipId, null);
                        continue;
                    }
                    // Small reads: a frame header and the start of a large DATA frame come in; the rest of it is dropped above.
                    var n = _stamps ? ReceiveStamped(filled, Math.Min(ReadAtMost, _in.Length - filled))
                        : _socket.Receive(_in, filled, Math.Min(ReadAtMost, _in.Length - filled), SocketFlags.None);
                    if (n == 0) throw new IOException("connection closed");
                    filled += n;
                    var used = Parse(_in.AsSpan(0, filled));
                    if (used > 0)
                    {
                        _in.AsSpan(used, filled - used).CopyTo(_in);
                        filled -= used;
                    }
                    if (filled == _in.Length) Array.Resize(ref _in, _in.Length * 2);
                }
            }
            catch (Exception e)
            {
                var why = e is IOException or SocketException ? "connection lost" : e.GetType().Name;
                foreach (var c in _open.Values) Fail(why);
                _open.Clear();
            }
        }

        // Parses the complete frames at the start of data; returns the bytes consumed.
        private int Parse(ReadOnlySpan<byte> data)
        {
            var pos = 0;
            while (data.Length - pos >= 9)
            {
                var length = (data[pos] << 16) | (data[pos + 1] << 8) | data[pos + 2];
                var type = data[pos + 3];
                var flags = data[pos + 4];
                var id = BinaryPrimitives.ReadInt32BigEndian(data[(pos + 5)..]) & 0x7FFFFFFF;
                if (type == 0 && length >= SkipAbove && data.Length - pos - 9 < length)
                {
                    // A large DATA frame (a full answer) only partly read: what is here counts, the rest is dropped unread.
                    var here = data.Length - pos - 9;
                    Keep(id, data.Slice(pos + 9, here));
                    Count(id, here);
                    (_skip, _skipId, _skipFlags) = (length - here, id, flags);
                    return data.Length;
                }
                if (data.Length - pos - 9 < length) break;
                var payload = data.Slice(pos + 9, length);
                pos += 9 + length;
                switch (type)
                {
                    case 0: // DATA
                        Keep(id, payload);
                        Count(id, length);
                        if ((flags & 0x1) != 0) End(id, null);
                        break;
                    case 1: // HEADERS: response headers, or trailers (END_STREAM)
                        if (_open.TryGetValue(id, out var h) && GrpcStatus(payload, flags) is { } status) h.Status = status;
                        if ((flags & 0x1) != 0) End(id, null);
                        break;
                    case 3: // RST_STREAM
                        End(id, "RST_STREAM");
                        break;
                    case 4: // SETTINGS
                        if ((flags & 0x1) == 0) AppendFrame(4, 0x1, 0, []);
                        break;
                    case 6: // PING
                        if ((flags & 0x1) == 0) AppendFrame(6, 0x1, 0, payload);
                        break;
                    case 7: // GOAWAY
                        throw new IOException("GOAWAY");
                    case 8: // WINDOW_UPDATE
                        if (id == 0)
                        {
                            _sendWindow += BinaryPrimitives.ReadInt32BigEndian(payload) & 0x7FFFFFFF;
                            while (_blocked.Count > 0 && Start(_blocked.Peek(), fromQueue: true)) _blocked.Dequeue();
                        }
                        break;
                }
            }
            return pos;
        }

        // The start of an answer's DATA (a shed answer is a few dozen bytes: its return code is read at the end).
        private void Keep(int id, ReadOnlySpan<byte> payload)
        {
            if (!_open.TryGetValue(id, out var d) || d.DataBytes >= d.Small.Length) return;
            payload[..(int)Math.Min(payload.Length, d.Small.Length - d.DataBytes)].CopyTo(d.Small.AsSpan((int)d.DataBytes));
        }

        // DATA payload bytes received on a stream (read or dropped): the answer's size, and the connection window given back.
        private void Count(int id, long bytes)
        {
            if (_open.TryGetValue(id, out var d)) d.DataBytes += bytes;
            _received += bytes;
            if (_received > Window / 2)
            {
                AppendFrame(8, 0, 0, BigEndian((int)_received));
                _received = 0;
            }
        }

        // recv(2) with MSG_TRUNC on a TCP socket: up to `bytes` bytes are taken off the socket and thrown away in the kernel.
        private int Discard(int bytes)
        {
            var n = Recv(_socket.Handle, _in, bytes, MsgTrunc);
            if (n < 0) throw new IOException($"recv: errno {Marshal.GetLastPInvokeError()}");
            if (n == 0) throw new IOException("connection closed");
            return (int)n;
        }

        private void End(int id, string? error)
        {
            if (!_open.Remove(id, out var c)) return;
            Answered++;
            var now = _clock.Elapsed;
            if (error is null && c.Status == "0" && c.DataBytes >= _minAnswerBytes && (int)now.TotalSeconds is var second && second < PerSecond.Length)
                PerSecond[second]++;
            if (now >= _warmup)
            {
                var code = error ?? (c.Status is null ? "no grpc-status" : c.Status != "0" ? $"grpc-status {c.Status}"
                    : c.DataBytes < _minAnswerBytes ? ShortAnswer(c) : null);
                var ms = Stopwatch.GetElapsedTime(c.Started).TotalMilliseconds;
                if (code is null)
                {
                    Latencies.Add(ms);
                }
                else
                {
                    Fail(code);
                    ErrorLatencies.Add(ms);
                    if (_stamps) Stamps.Add((_localPort, id, c.Started, c.Sent, _arrived, Stopwatch.GetTimestamp(), _receives));
                }
            }
            if (now >= _deadline) return;
            var shed = error is not null || c.Status != "0" || c.DataBytes < _minAnswerBytes;
            if (shed && _shedPauseMs > 0)
            {
                // A real client does not call this server again at once after a shed answer (see the class summary).
                c.Due = Stopwatch.GetTimestamp() + (long)(_random.NextDouble() * _shedPauseMs * Stopwatch.Frequency / 1000);
                _paused.Enqueue(c, c.Due);
                return;
            }
            Start(c);
        }

        // Callers whose pause has ended send their next call (unless the level is over).
        private void Resume()
        {
            // Up to 1 ms early (poll's granularity): a pause drawn from [0, shed_pause] ms, resumed in batches.
            var now = Stopwatch.GetTimestamp() + (Stopwatch.Frequency / 1000);
            while (_paused.TryPeek(out var c, out var due) && due <= now)
            {
                _paused.Dequeue();
                if (_clock.Elapsed < _deadline) Start(c);
            }
            if (_clock.Elapsed >= _deadline) _paused.Clear();
        }

        // The return code of an answer shorter than a full one: "NucleusFull" etc., or "short answer" when it does not parse.
        private static string ShortAnswer(Caller c)
        {
            if (c.DataBytes < 5 || c.DataBytes > c.Small.Length) return "short answer";
            var length = (int)BinaryPrimitives.ReadUInt32BigEndian(c.Small.AsSpan(1));
            if (length + 5 != c.DataBytes) return "short answer";
            try
            {
                var message = TensorMessage.Parser.ParseFrom(c.Small.AsSpan(5, length));
                return message.ReturnCode == ReturnCode.Success ? "short answer" : message.ReturnCode.ToString();
            }
            catch (InvalidProtocolBufferException)
            {
                return "short answer";
            }
        }

        private void Fail(string code) => Errors[code] = Errors.GetValueOrDefault(code) + 1;

        // Appends the caller's next call; false (and nothing appended) when the connection's send window is too small.
        private bool Start(Caller c, bool fromQueue = false)
        {
            if (c.Signed is not null && c.SignedNext == c.Signed.Length)
            {
                // Its presigned calls are used up: done (before the deadline, the level lost a caller: reported).
                if (RanOut++ == 0) FirstRanOut = _clock.Elapsed;
                return true;
            }
            var request = c.Requests[c.Next];
            if (_sendWindow < request.BodyLength || (!fromQueue && _blocked.Count > 0))
            {
                if (!fromQueue) _blocked.Enqueue(c);
                return false;
            }
            c.Next = (c.Next + 1) % c.Requests.Length;
            _sendWindow -= request.BodyLength;
            var id = _nextStream;
            _nextStream += 2;
            c.Stream = id;
            c.DataBytes = 0;
            c.Status = null;
            c.Started = Stopwatch.GetTimestamp();
            if (_stamps) _unsent.Add(c);
            _open[id] = c;
            var frames = request.Frames;
            var at = _outLength;
            Append(frames);
            var o = _out.AsSpan(at);
            BinaryPrimitives.WriteInt32BigEndian(o[5..], id);
            BinaryPrimitives.WriteInt32BigEndian(o[(request.DataOffset + 5)..], id);
            if (c.Signed is not null)
            {
                var value = c.Signed[c.SignedNext++];
                value.CopyTo(o.Slice(request.NonceOffset, value.Length));
            }
            else
            {
                WriteNonce(o.Slice(request.NonceOffset, RequestNonce.Length), DateTime.UtcNow + _localOffset);
            }
            return true;
        }

        // MMddyyyyHHmmss + microseconds (6 digits), as RequestNonce.Format, in ASCII.
        private static void WriteNonce(Span<byte> into, DateTime t)
        {
            var micros = (int)(t.Ticks % TimeSpan.TicksPerSecond / 10);
            Two(into, 0, t.Month);
            Two(into, 2, t.Day);
            Two(into, 4, t.Year / 100);
            Two(into, 6, t.Year % 100);
            Two(into, 8, t.Hour);
            Two(into, 10, t.Minute);
            Two(into, 12, t.Second);
            for (var i = 19; i >= 14; i--)
            {
                into[i] = (byte)('0' + (micros % 10));
                micros /= 10;
            }

            static void Two(Span<byte> s, int at, int v)
            {
                s[at] = (byte)('0' + (v / 10));
                s[at + 1] = (byte)('0' + (v % 10));
            }
        }

        private void Append(ReadOnlySpan<byte> bytes)
        {
            if (_outLength + bytes.Length > _out.Length) Array.Resize(ref _out, Math.Max(_out.Length * 2, _outLength + bytes.Length));
            bytes.CopyTo(_out.AsSpan(_outLength));
            _outLength += bytes.Length;
        }

        private void AppendFrame(byte type, byte flags, int stream, ReadOnlySpan<byte> payload)
        {
            Span<byte> header = stackalloc byte[9];
            header[0] = (byte)(payload.Length >> 16);
            header[1] = (byte)(payload.Length >> 8);
            header[2] = (byte)payload.Length;
            header[3] = type;
            header[4] = flags;
            BinaryPrimitives.WriteInt32BigEndian(header[5..], stream);
            Append(header);
            Append(payload);
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
                var isStatus = nameIndex == 0 && ReadString(block, ref pos).SequenceEqual("grpc-status"u8);
                var value = ReadString(block, ref pos);
                if (isStatus) status = value.Length == 1 && value[0] == (byte)'0' ? "0" : Encoding.ASCII.GetString(value);
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

        private static ReadOnlySpan<byte> ReadString(ReadOnlySpan<byte> s, ref int pos)
        {
            var huffman = (s[pos] & 0x80) != 0;
            var length = ReadInt(s, ref pos, 7);
            var text = huffman ? "<huffman>"u8 : s.Slice(pos, length);
            pos += length;
            return text;
        }

        public void Dispose() => _socket.Dispose();
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

/// <summary>
/// What /proc tells about another process (Linux): CPU (utime + stime of every thread, dead ones included, in
/// USER_HZ = 100 ticks a second, as on every Linux build), RSS, threads, and summed over its live threads the context
/// switches and the time spent runnable but off a core (run-queue wait, the machine's load). Null when unreadable.
/// </summary>
internal sealed record ProcStat(double CpuSeconds, double RssMb, int Threads, long ContextSwitches, double RunQueueSeconds)
{
    private const double TicksPerSecond = 100;

    public static ProcStat? Read(int pid)
    {
        try
        {
            var stat = File.ReadAllText($"/proc/{pid}/stat");
            // Fields after the command name (which may hold spaces), in parentheses: state is field 3, utime 14, stime 15.
            var fields = stat[(stat.LastIndexOf(')') + 2)..].Split(' ');
            var cpu = (long.Parse(fields[11], CultureInfo.InvariantCulture) + long.Parse(fields[12], CultureInfo.InvariantCulture)) / TicksPerSecond;
            double rss = 0;
            var threads = 0;
            foreach (var line in File.ReadLines($"/proc/{pid}/status"))
            {
                if (line.StartsWith("VmRSS:", StringComparison.Ordinal)) rss = long.Parse(line.AsSpan(6).Trim()[..^3], CultureInfo.InvariantCulture) / 1024.0;
                else if (line.StartsWith("Threads:", StringComparison.Ordinal)) threads = int.Parse(line.AsSpan(8).Trim(), CultureInfo.InvariantCulture);
            }
            long switches = 0;
            double runq = 0;
            foreach (var task in Directory.EnumerateDirectories($"/proc/{pid}/task"))
            {
                try
                {
                    foreach (var line in File.ReadLines(Path.Combine(task, "status")))
                        if (line.StartsWith("voluntary_ctxt_switches:", StringComparison.Ordinal) || line.StartsWith("nonvoluntary_ctxt_switches:", StringComparison.Ordinal))
                            switches += long.Parse(line.AsSpan(line.IndexOf(':') + 1).Trim(), CultureInfo.InvariantCulture);
                    var sched = File.ReadAllText(Path.Combine(task, "schedstat")).Split(' ');
                    runq += long.Parse(sched[1], CultureInfo.InvariantCulture) / 1e9;
                }
                catch (IOException)
                {
                    // The thread ended while being read.
                }
            }
            return new ProcStat(cpu, rss, threads, switches, runq);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException or FormatException or IndexOutOfRangeException)
        {
            return null;
        }
    }
}

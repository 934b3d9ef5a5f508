using System.Diagnostics;
using System.Globalization;
using System.Net;
using System.Net.Sockets;
using System.Runtime.InteropServices;

namespace Bittensor.Benchmarks.Axon;

/// <summary>
/// The kernel's floor for the dendrite's fan-out (issue 11: "the client spends ≤ 30 µs CPU per answered request"):
/// what one 64 KiB answer over loopback TCP costs a client that does nothing but move the bytes. No HTTP/2, no
/// protobuf, no signing, no actors: the same shape as <c>fanout</c> (N connections, one small request per connection
/// per round, then one answer read from each) with plain sockets. Three parts (<c>benchmarks/socket-floor.sh</c> runs
/// them pinned as <c>fanout.sh</c> pins the axons and the dendrite):
/// <list type="bullet">
/// <item><c>socket-floor server [--ip 127.0.0.1] [--port 0] [--request 512] [--answer 65536] [--sndbuf B]</c>: one
/// listener; per accepted connection a thread that reads exactly <c>--request</c> bytes and answers them with one
/// <c>send</c> of <c>--answer</c> bytes (a preallocated buffer), until the peer closes. Prints <c>serving on IP:PORT</c>
/// on stderr.</item>
/// <item><c>socket-floor client --target IP:PORT [--connections 16,64] [--rounds 2000] [--warmup 200] [--request 512]
/// [--answer 65536] [--mode blocking|async] [--read 65536] [--rcvbuf B] [--sndbuf B] [--nodelay 1] [--quickack]
/// [--waitall] [--pids p,…] [--label text]</c> (<c>--mode epoll|epoll_handoff</c>: <see cref="EpollLoop"/>): per count N, N connections; each round sends the request on every
/// connection, then reads the answer of each into that connection's own preallocated array (N × 64 KiB: the
/// results' memory, as a round's result arrays are). <c>blocking</c>: one thread, sequential blocking
/// <c>recv</c> calls of at most <c>--read</c> bytes (<c>--waitall</c>: libc <c>recv(MSG_WAITALL)</c>, one call per
/// answer); <c>async</c>: <c>Socket.ReceiveAsync</c> per connection, all awaited together (what .NET's socket engine
/// adds: epoll, the completion, the continuation; run it with DOTNET_SYSTEM_NET_SOCKETS_INLINE_COMPLETIONS=1 as btcli
/// does). <c>--quickack</c> sets TCP_QUICKACK before every read (Linux clears it by itself). Prints one markdown row
/// per count: round p50/p99, this process's CPU per answer (utime + stime from /proc/self/stat, and the user / system
/// split), context switches per answer (/proc/self/status, all threads), and with <c>--pids</c> those processes' CPU
/// per answer.</item>
/// <item><c>socket-floor memcpy [--size 65536] [--buffers 128] [--copies 20000]</c>: user-space copy of one answer, hot
/// (the same two buffers every time) and cold (walking through <c>--buffers</c> source and destination arrays, more
/// than the caches hold), ns per copy, median of 5 runs.</item>
/// </list>
/// Timings live in benchmarks/results/axon.md and benchmarks/RESULTS.md, never in tests.
/// </summary>
internal static partial class SocketFloor
{
    private const int MsgWaitAll = 0x100;
    private const int TcpQuickAck = 12;

    [LibraryImport("libc", EntryPoint = "recv", SetLastError = true)]
    private static unsafe partial nint Recv(nint fd, byte* buffer, nuint length, int flags);

    [LibraryImport("libc", EntryPoint = "send", SetLastError = true)]
    private static unsafe partial nint SendRaw(nint fd, byte* buffer, nuint length, int flags);

    [LibraryImport("libc", EntryPoint = "epoll_create1", SetLastError = true)]
    private static partial int EpollCreate1(int flags);

    [LibraryImport("libc", EntryPoint = "epoll_ctl", SetLastError = true)]
    private static unsafe partial int EpollCtl(int epfd, int op, int fd, EpollEvent* ev);

    [LibraryImport("libc", EntryPoint = "epoll_wait", SetLastError = true)]
    private static unsafe partial int EpollWait(int epfd, EpollEvent* events, int max, int timeout);

    [LibraryImport("libc", EntryPoint = "eventfd", SetLastError = true)]
    private static partial int EventFd(uint initval, int flags);

    [LibraryImport("libc", EntryPoint = "read", SetLastError = true)]
    private static unsafe partial nint ReadRaw(int fd, void* buffer, nuint length);

    [LibraryImport("libc", EntryPoint = "write", SetLastError = true)]
    private static unsafe partial nint WriteRaw(int fd, void* buffer, nuint length);

    [LibraryImport("libc", EntryPoint = "close", SetLastError = true)]
    private static partial int CloseRaw(int fd);

    // struct epoll_event is packed on x86-64 (4-byte events, 8-byte data: 12 bytes); the epoll variants refuse other
    // architectures rather than guess the layout.
    [StructLayout(LayoutKind.Sequential, Pack = 1)]
    private struct EpollEvent
    {
        public uint Events;
        public ulong Data;
    }

    private const int MsgDontWait = 0x40;
    private const int MsgNoSignal = 0x4000;
    private const uint EpollIn = 0x001;
    private const int EpollCtlAdd = 1;
    private const int EAgain = 11;
    private const int EIntr = 4;

    public static async Task<int> Run(string[] args)
    {
        var role = args.FirstOrDefault();
        var opts = Args.Parse(args.Length > 1 ? args[1..] : []);
        try
        {
            return role switch
            {
                "server" => Server(opts),
                "client" => await Client(opts),
                "memcpy" => Memcpy(opts),
                _ => Usage($"the first argument is server, client or memcpy, not '{role ?? "(none)"}'"),
            };
        }
        catch (FormatException e)
        {
            return Usage(e.Message);
        }
    }

    private static int Usage(string why)
    {
        Console.Error.WriteLine($"socket-floor: {why}");
        Console.Error.WriteLine("usage: socket-floor server [--ip 127.0.0.1] [--port 0] [--request 512] [--answer 65536] [--sndbuf B]");
        Console.Error.WriteLine("       socket-floor client --target IP:PORT [--connections 16,64] [--rounds 2000] [--warmup 200] [--request 512] [--answer 65536]");
        Console.Error.WriteLine("                           [--mode blocking|async|epoll|epoll_handoff] [--read 65536] [--rcvbuf B] [--sndbuf B] [--nodelay 1] [--quickack] [--waitall] [--pids p,...] [--label text]");
        Console.Error.WriteLine("       socket-floor memcpy [--size 65536] [--buffers 128] [--copies 20000]");
        return 2;
    }

    private static int Int(Args opts, string name, string fallback, int min, int max)
    {
        var text = opts.Get(name, fallback);
        if (!int.TryParse(text, NumberStyles.None, CultureInfo.InvariantCulture, out var v) || v < min || v > max)
            throw new FormatException($"--{name} must be an integer from {min} to {max}, got '{text}'");
        return v;
    }

    // ---------------------------------------------------------------- server

    private static int Server(Args opts)
    {
        var ip = IPAddress.TryParse(opts.Get("ip", "127.0.0.1"), out var a) ? a : throw new FormatException("--ip is not an IP address");
        var port = Int(opts, "port", "0", 0, 65535);
        var request = Int(opts, "request", "512", 1, 1 << 20);
        var answer = Int(opts, "answer", "65536", 1, 64 << 20);
        var sndbuf = Int(opts, "sndbuf", "0", 0, 1 << 30);
        using var listener = new Socket(SocketType.Stream, ProtocolType.Tcp);
        listener.Bind(new IPEndPoint(ip, port));
        listener.Listen(1024);
        Console.Error.WriteLine($"socket-floor: serving on {ip}:{((IPEndPoint)listener.LocalEndPoint!).Port}");
        var payload = new byte[answer];
        Random.Shared.NextBytes(payload);
        while (true)
        {
            Socket s;
            try
            {
                s = listener.Accept();
            }
            catch (SocketException)
            {
                return 0;
            }
            s.NoDelay = true;
            if (sndbuf > 0) s.SendBufferSize = sndbuf;
            new Thread(() => Serve(s, request, payload)) { IsBackground = true, Name = "floor-conn" }.Start();
        }
    }

    private static void Serve(Socket s, int request, byte[] payload)
    {
        var input = new byte[request];
        try
        {
            while (true)
            {
                var got = 0;
                while (got < request)
                {
                    var n = s.Receive(input, got, request - got, SocketFlags.None);
                    if (n == 0) return;
                    got += n;
                }
                var sent = 0;
                while (sent < payload.Length) sent += s.Send(payload, sent, payload.Length - sent, SocketFlags.None);
            }
        }
        catch (Exception e) when (e is SocketException or ObjectDisposedException)
        {
        }
        finally
        {
            s.Dispose();
        }
    }

    // ---------------------------------------------------------------- client

    private sealed record ClientOptions(IPEndPoint Target, int Request, int Answer, string Mode, int Read, int RcvBuf, int SndBuf,
        bool NoDelay, bool QuickAck, bool WaitAll);

    private static async Task<int> Client(Args opts)
    {
        var target = opts.Get("target", "");
        var colon = target.LastIndexOf(':');
        if (colon <= 0 || !IPAddress.TryParse(target[..colon], out var ip)
            || !int.TryParse(target.AsSpan(colon + 1), NumberStyles.None, CultureInfo.InvariantCulture, out var port) || port is < 1 or > 65535)
            throw new FormatException($"--target must be IP:PORT, got '{target}'");
        var counts = opts.Get("connections", "16,64").Split(',')
            .Select(x => int.TryParse(x, NumberStyles.None, CultureInfo.InvariantCulture, out var n) && n is >= 1 and <= 4096 ? n
                : throw new FormatException($"--connections takes integers from 1 to 4096, got '{x}'")).ToArray();
        var rounds = Int(opts, "rounds", "2000", 1, 10_000_000);
        var warmup = Int(opts, "warmup", "200", 0, 10_000_000);
        var mode = opts.Get("mode", "blocking");
        if (mode is not ("blocking" or "async" or "epoll" or "epoll_handoff" or "epoll_reader" or "async_reader"))
            throw new FormatException($"--mode is blocking, async, async_reader, epoll, epoll_handoff or epoll_reader, not '{mode}'");
        if ((mode.StartsWith("epoll", StringComparison.Ordinal) || mode == "async_reader") && (!OperatingSystem.IsLinux() || RuntimeInformation.ProcessArchitecture != Architecture.X64))
            throw new FormatException("--mode epoll and epoll_handoff need Linux on x86-64");
        var o = new ClientOptions(new IPEndPoint(ip, port), Int(opts, "request", "512", 1, 1 << 20), Int(opts, "answer", "65536", 1, 64 << 20), mode,
            Int(opts, "read", "65536", 1, 64 << 20), Int(opts, "rcvbuf", "0", 0, 1 << 30), Int(opts, "sndbuf", "0", 0, 1 << 30),
            Int(opts, "nodelay", "1", 0, 1) == 1, opts.Has("quickack"), opts.Has("waitall"));
        if (o.WaitAll && mode != "blocking") throw new FormatException("--waitall needs --mode blocking");
        var pids = opts.Get("pids", "").Split(',', StringSplitOptions.RemoveEmptyEntries)
            .Select(x => int.TryParse(x, NumberStyles.None, CultureInfo.InvariantCulture, out var p) ? p : throw new FormatException($"--pids: '{x}' is not a pid")).ToArray();
        var label = opts.Get("label", $"{mode}{(o.WaitAll ? " waitall" : "")}");
        Console.WriteLine($"# socket-floor client {label}: {string.Join(' ', Environment.GetCommandLineArgs().Skip(1))}; cores={Environment.ProcessorCount} load average {FanOutLoad.LoadAverage()}");
        Console.WriteLine("| client | connections | p50 round ms | p99 round ms | answers | client CPU µs/answer | user µs | system µs | context switches/answer | server CPU µs/answer | load before / after |");
        Console.WriteLine("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|");
        var request = new byte[o.Request];
        Random.Shared.NextBytes(request);
        foreach (var n in counts)
        {
            var sockets = new Socket[n];
            var buffers = new byte[n][];
            try
            {
                for (var i = 0; i < n; i++)
                {
                    var s = new Socket(SocketType.Stream, ProtocolType.Tcp) { NoDelay = o.NoDelay };
                    if (o.RcvBuf > 0) s.ReceiveBufferSize = o.RcvBuf; // before connect: the window scale is chosen from it
                    if (o.SndBuf > 0) s.SendBufferSize = o.SndBuf;
                    sockets[i] = s;
                    s.Connect(o.Target);
                    buffers[i] = GC.AllocateUninitializedArray<byte>(o.Answer, pinned: true);
                }
                using var loop = mode.StartsWith("epoll", StringComparison.Ordinal) || mode == "async_reader" ? new EpollLoop(sockets, buffers, request, mode) : null;
                var before = FanOutLoad.LoadAverage();
                for (var r = 0; r < warmup; r++) await RoundOf(loop, sockets, buffers, request, o);
                var times = new double[rounds];
                var cpu0 = Cpu(Environment.ProcessId);
                var switches0 = ContextSwitches();
                var servers0 = pids.Sum(p => Cpu(p).Total);
                for (var r = 0; r < rounds; r++)
                {
                    var t0 = Stopwatch.GetTimestamp();
                    await RoundOf(loop, sockets, buffers, request, o);
                    times[r] = Stopwatch.GetElapsedTime(t0).TotalMilliseconds;
                }
                var cpu1 = Cpu(Environment.ProcessId);
                var switches = ContextSwitches() - switches0;
                var servers = pids.Length == 0 ? double.NaN : pids.Sum(p => Cpu(p).Total) - servers0;
                double answers = (double)rounds * n;
                Array.Sort(times);
                Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
                    $"| {label} | {n} | {AxonLoad.Percentile(times, 0.5):F3} | {AxonLoad.Percentile(times, 0.99):F3} | {rounds * n} | " +
                    $"**{(cpu1.Total - cpu0.Total) / answers:F1}** | {(cpu1.User - cpu0.User) / answers:F1} | {(cpu1.System - cpu0.System) / answers:F1} | " +
                    $"{switches / answers:F2} | {(double.IsNaN(servers) ? "n/a" : (servers / answers).ToString("F1", CultureInfo.InvariantCulture))} | {before} / {FanOutLoad.LoadAverage()} |"));
            }
            catch (SocketException e)
            {
                Console.Error.WriteLine($"socket-floor: {n} connections to {o.Target}: {e.SocketErrorCode}");
                return 1;
            }
            finally
            {
                foreach (var s in sockets) s?.Dispose();
            }
        }
        return 0;
    }

    private static ValueTask RoundOf(EpollLoop? loop, Socket[] sockets, byte[][] buffers, byte[] request, ClientOptions o)
    {
        if (loop is null) return Round(sockets, buffers, request, o);
        loop.Round();
        return ValueTask.CompletedTask;
    }

    private static async Task ReceiveThenCount(EpollLoop loop, Socket socket, byte[] buffer)
    {
        Exception? failure = null;
        try
        {
            var got = 0;
            while (got < buffer.Length)
            {
                var n = await socket.ReceiveAsync(buffer.AsMemory(got), SocketFlags.None).ConfigureAwait(false);
                if (n == 0) throw new SocketException((int)SocketError.ConnectionReset);
                got += n;
            }
        }
        catch (Exception e)
        {
            failure = e;
        }
        loop.Answered(failure);
    }

    /// <summary>
    /// Issue 11's "client-owned event loop" prototype (session 18): the connections' sends and receives on one thread
    /// with its own epoll (level-triggered EPOLLIN on every connection), raw <c>send</c>/<c>recv</c> with
    /// MSG_DONTWAIT, outside .NET's socket engine. Per round: the request on every connection, then
    /// <c>epoll_wait</c> over all of them and one <c>recv</c> of what is still missing per ready connection, until every
    /// answer is whole. <c>epoll</c>: the round runs on the calling thread itself (the loop's lower bound: one thread,
    /// as the blocking floor). <c>epoll_handoff</c>: a loop thread of its own runs the rounds; the caller hands each
    /// round over through an eventfd the loop's epoll watches and waits for its end on a second eventfd (a blocking
    /// read): the least a transport whose callers are other threads (the endpoint actors) pays, two wake-ups per round.
    /// </summary>
    private sealed unsafe class EpollLoop : IDisposable
    {
        private readonly int _epoll;
        private readonly int[] _fds;
        private readonly byte[][] _buffers;
        private readonly int[] _got;
        private readonly byte[] _request;
        private readonly int _submit = -1, _done = -1;
        private Thread? _thread;
        private readonly EpollEvent[] _events;
        private volatile bool _stop;
        private Exception? _failure;

        private readonly string _mode;
        private readonly Socket[] _sockets;
        private int _left;

        public EpollLoop(Socket[] sockets, byte[][] buffers, byte[] request, string mode)
        {
            _mode = mode;
            _sockets = sockets;
            _fds = sockets.Select(s => (int)s.Handle).ToArray();
            _buffers = buffers;
            _got = new int[sockets.Length];
            _request = request;
            _events = new EpollEvent[Math.Max(64, sockets.Length + 1)];
            _epoll = EpollCreate1(0x80000); // EPOLL_CLOEXEC
            if (_epoll < 0) throw new SocketException(Marshal.GetLastPInvokeError());
            if (mode != "async_reader") for (var i = 0; i < _fds.Length; i++) Add(_fds[i], (ulong)i);
            if (mode == "epoll") return;
            _submit = EventFd(0, 0x80000);
            _done = EventFd(0, 0x80000);
            if (_submit < 0 || _done < 0) throw new SocketException(Marshal.GetLastPInvokeError());
            if (mode != "epoll_handoff") return; // epoll_reader: the caller sends, the loop thread only receives
            Add(_submit, ulong.MaxValue);
            _thread = new Thread(Run) { IsBackground = true, Name = "floor-epoll" };
            _thread.Start();
        }

        private void Add(int fd, ulong data)
        {
            var ev = new EpollEvent { Events = EpollIn, Data = data };
            if (EpollCtl(_epoll, EpollCtlAdd, fd, &ev) != 0) throw new SocketException(Marshal.GetLastPInvokeError());
        }

        public void Round()
        {
            if (_mode == "epoll")
            {
                RunRound(waitForSubmit: false);
                return;
            }
            ulong one = 1;
            if (_mode == "epoll_handoff")
            {
                if (WriteRaw(_submit, &one, 8) != 8) throw new SocketException(Marshal.GetLastPInvokeError());
            }
            else
            {
                // epoll_reader / async_reader: this thread sends (as the endpoint actors do), another receives.
                Array.Clear(_got);
                _left = _fds.Length;
                if (_mode == "epoll_reader" && _thread is null)
                {
                    _thread = new Thread(ReadForever) { IsBackground = true, Name = "floor-epoll-reader" };
                    _thread.Start();
                }
                if (_mode == "async_reader") for (var i = 0; i < _sockets.Length; i++) _ = ReadAsyncThenCount(i);
                SendAll();
            }
            ulong value;
            while (ReadRaw(_done, &value, 8) != 8)
            {
                if (Marshal.GetLastPInvokeError() != EIntr) throw new SocketException(Marshal.GetLastPInvokeError());
            }
            if (_failure is { } e) throw new IOException("the epoll loop failed", e);
        }

        // async_reader: .NET's socket engine receives (inline completions: on its epoll thread), the last answer signals.
        private Task ReadAsyncThenCount(int i) => ReceiveThenCount(this, _sockets[i], _buffers[i]);

        public void Answered(Exception? failure)
        {
            if (failure is not null) _failure = failure;
            if (Interlocked.Decrement(ref _left) == 0 || failure is not null)
            {
                ulong one = 1;
                WriteRaw(_done, &one, 8);
            }
        }

        // epoll_reader: the loop thread only receives; each round's last answer signals the caller.
        private void ReadForever()
        {
            try
            {
                while (!_stop)
                {
                    if (ReceiveReady() && Volatile.Read(ref _left) == 0)
                    {
                        ulong one = 1;
                        WriteRaw(_done, &one, 8);
                    }
                }
            }
            catch (Exception e)
            {
                _failure = e;
                ulong one = 1;
                WriteRaw(_done, &one, 8);
            }
        }

        // One epoll_wait and one recv per ready connection; true when an answer was completed by it.
        private bool ReceiveReady()
        {
            var n = EpollWaitRetry(-1);
            var completed = false;
            for (var k = 0; k < n; k++)
            {
                var data = _events[k].Data;
                if (data == ulong.MaxValue) continue;
                var i = (int)data;
                var buffer = _buffers[i];
                var got = _got[i];
                if (got == buffer.Length) continue;
                nint r;
                fixed (byte* p = &buffer[got]) r = Recv(_fds[i], p, (nuint)(buffer.Length - got), MsgDontWait);
                if (r == 0) throw new SocketException((int)SocketError.ConnectionReset);
                if (r < 0)
                {
                    if (Marshal.GetLastPInvokeError() == EAgain) continue;
                    throw new SocketException(Marshal.GetLastPInvokeError());
                }
                _got[i] = got + (int)r;
                if (_got[i] == buffer.Length)
                {
                    Interlocked.Decrement(ref _left);
                    completed = true;
                }
            }
            return completed;
        }

        private void SendAll()
        {
            fixed (byte* req = _request)
            {
                foreach (var fd in _fds)
                {
                    var sent = 0;
                    while (sent < _request.Length)
                    {
                        var r = SendRaw(fd, req + sent, (nuint)(_request.Length - sent), MsgDontWait | MsgNoSignal);
                        if (r < 0) throw new SocketException(Marshal.GetLastPInvokeError()); // 512 B into an empty send buffer
                        sent += (int)r;
                    }
                }
            }
        }

        private void Run()
        {
            try
            {
                while (!_stop)
                {
                    // Wait for a round to be handed over (the eventfd), then run it.
                    var n = EpollWaitRetry(-1);
                    var submitted = false;
                    for (var k = 0; k < n; k++) submitted |= _events[k].Data == ulong.MaxValue;
                    if (!submitted || _stop) continue;
                    ulong value;
                    ReadRaw(_submit, &value, 8);
                    RunRound(waitForSubmit: true);
                    ulong one = 1;
                    WriteRaw(_done, &one, 8);
                }
            }
            catch (Exception e)
            {
                _failure = e;
                ulong one = 1;
                WriteRaw(_done, &one, 8);
            }
        }

        private int EpollWaitRetry(int timeout)
        {
            while (true)
            {
                fixed (EpollEvent* events = _events)
                {
                    var n = EpollWait(_epoll, events, _events.Length, timeout);
                    if (n >= 0) return n;
                    if (Marshal.GetLastPInvokeError() != EIntr) throw new SocketException(Marshal.GetLastPInvokeError());
                }
            }
        }

        private void RunRound(bool waitForSubmit)
        {
            Array.Clear(_got);
            _left = _fds.Length;
            SendAll();
            while (Volatile.Read(ref _left) > 0) ReceiveReady();
        }

        public void Dispose()
        {
            if (_mode == "epoll_handoff")
            {
                _stop = true;
                ulong one = 1;
                WriteRaw(_submit, &one, 8);
                _thread!.Join();
            }
            else if (_mode == "epoll_reader" && _thread is not null)
            {
                _stop = true;
                foreach (var s in _sockets) s.Shutdown(SocketShutdown.Both); // the reader's epoll_wait ends with an error or EOF
                _thread.Join();
            }
            if (_submit >= 0) CloseRaw(_submit);
            if (_done >= 0) CloseRaw(_done);
            CloseRaw(_epoll);
        }
    }

    private static async ValueTask Round(Socket[] sockets, byte[][] buffers, byte[] request, ClientOptions o)
    {
        foreach (var s in sockets)
        {
            var sent = 0;
            while (sent < request.Length) sent += s.Send(request, sent, request.Length - sent, SocketFlags.None);
        }
        if (o.Mode == "blocking")
        {
            for (var i = 0; i < sockets.Length; i++) ReadBlocking(sockets[i], buffers[i], o);
            return;
        }
        var reads = new Task[sockets.Length];
        for (var i = 0; i < sockets.Length; i++) reads[i] = ReadAsync(sockets[i], buffers[i], o).AsTask();
        await Task.WhenAll(reads).ConfigureAwait(false);
    }

    private static unsafe void ReadBlocking(Socket s, byte[] buffer, ClientOptions o)
    {
        var got = 0;
        while (got < buffer.Length)
        {
            if (o.QuickAck) s.SetRawSocketOption(6, TcpQuickAck, [1, 0, 0, 0]);
            int n;
            if (o.WaitAll)
            {
                fixed (byte* p = &buffer[got])
                {
                    var r = Recv(s.Handle, p, (nuint)(buffer.Length - got), MsgWaitAll);
                    if (r < 0) throw new SocketException(Marshal.GetLastPInvokeError());
                    n = (int)r;
                }
            }
            else
            {
                n = s.Receive(buffer.AsSpan(got, Math.Min(o.Read, buffer.Length - got)), SocketFlags.None);
            }
            if (n == 0) throw new SocketException((int)SocketError.ConnectionReset);
            got += n;
        }
    }

    private static async ValueTask ReadAsync(Socket s, byte[] buffer, ClientOptions o)
    {
        var got = 0;
        while (got < buffer.Length)
        {
            if (o.QuickAck) s.SetRawSocketOption(6, TcpQuickAck, [1, 0, 0, 0]);
            var n = await s.ReceiveAsync(buffer.AsMemory(got, Math.Min(o.Read, buffer.Length - got)), SocketFlags.None).ConfigureAwait(false);
            if (n == 0) throw new SocketException((int)SocketError.ConnectionReset);
            got += n;
        }
    }

    private readonly record struct CpuUs(double User, double System)
    {
        public double Total => User + System;
    }

    // utime and stime (fields 14 and 15 of /proc/<pid>/stat, clock ticks of 1/100 s), in µs.
    private static CpuUs Cpu(int pid)
    {
        var stat = File.ReadAllText($"/proc/{pid}/stat");
        var fields = stat[(stat.LastIndexOf(')') + 2)..].Split(' ');
        return new CpuUs(long.Parse(fields[11], CultureInfo.InvariantCulture) * 1e4, long.Parse(fields[12], CultureInfo.InvariantCulture) * 1e4);
    }

    // Voluntary + involuntary context switches of every thread of this process.
    internal static long ContextSwitches()
    {
        long sum = 0;
        foreach (var dir in Directory.EnumerateDirectories("/proc/self/task"))
        {
            try
            {
                foreach (var line in File.ReadLines(Path.Combine(dir, "status")))
                {
                    if (line.StartsWith("voluntary_ctxt_switches:", StringComparison.Ordinal) || line.StartsWith("nonvoluntary_ctxt_switches:", StringComparison.Ordinal))
                        sum += long.Parse(line[(line.IndexOf(':') + 1)..].Trim(), CultureInfo.InvariantCulture);
                }
            }
            catch (IOException)
            {
                // a thread that ended meanwhile
            }
        }
        return sum;
    }

    // ---------------------------------------------------------------- memcpy anchor

    private static int Memcpy(Args opts)
    {
        var size = Int(opts, "size", "65536", 1, 64 << 20);
        var count = Int(opts, "buffers", "128", 2, 1 << 16);
        var copies = Int(opts, "copies", "20000", 1, 100_000_000);
        var src = new byte[count][];
        var dst = new byte[count][];
        for (var i = 0; i < count; i++)
        {
            src[i] = new byte[size];
            dst[i] = new byte[size];
            Random.Shared.NextBytes(src[i]);
        }
        double Measure(bool hot)
        {
            var samples = new double[5];
            for (var r = 0; r < samples.Length; r++)
            {
                var t0 = Stopwatch.GetTimestamp();
                for (var c = 0; c < copies; c++)
                {
                    var k = hot ? 0 : c % count;
                    src[k].AsSpan().CopyTo(dst[k]);
                }
                samples[r] = Stopwatch.GetElapsedTime(t0).TotalNanoseconds / copies;
            }
            Array.Sort(samples);
            return samples[2];
        }
        Measure(true);
        Measure(false);
        var hot = Measure(true);
        var cold = Measure(false);
        Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
            $"| memcpy {size} B | hot (same buffers): {hot / 1000:F2} µs ({size / hot:F1} GB/s) | cold ({count} × 2 × {size / 1024} KiB walked): {cold / 1000:F2} µs ({size / cold:F1} GB/s) | load {FanOutLoad.LoadAverage()} |"));
        return 0;
    }
}

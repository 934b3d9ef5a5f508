using System.Buffers;
using System.Buffers.Binary;
using System.Net;
using System.Net.Sockets;
using System.Runtime.Serialization;
using System.Text;

namespace Bittensor.Actors.Cluster;

/// <summary>
/// The data plane between a cluster's front and one worker (docs/cluster.md "Data plane"): one TCP connection per
/// (front, worker), opened by the front to the port the worker announced in its registration, carrying length-prefixed
/// frames. Frame = u32 little-endian payload length, u8 kind, payload. Payloads of calls, replies and averaged
/// parameters are the <see cref="ClusterTensorSerializer"/>'s bytes; the handshake (first frame each way) is
/// "BTDP", u8 version, i32 length + UTF-8 name of the node (its cluster address).
/// </summary>
public static class DataPlaneFrames
{
    /// <summary>front → worker, first frame: magic, version, the front node's cluster address.</summary>
    public const byte Hello = 1;

    /// <summary>worker → front, answer to <see cref="Hello"/>: magic, version, the worker node's cluster address.</summary>
    public const byte HelloAck = 2;

    /// <summary>front → worker: a <see cref="WorkerCall"/>.</summary>
    public const byte Call = 3;

    /// <summary>worker → front: a <see cref="WorkerReply"/>.</summary>
    public const byte Reply = 4;

    /// <summary>front → worker: one chunk of <see cref="AveragedParameters"/> (kept in order with the calls).</summary>
    public const byte Averaged = 5;

    /// <summary>front → worker: <see cref="DrainAck"/> (no call follows it on this connection). Empty payload.</summary>
    public const byte DrainAck = 6;

    /// <summary>Bytes before a frame's payload.</summary>
    public const int HeaderBytes = 5;

    /// <summary>Largest handshake frame.</summary>
    public const int MaxHandshakeBytes = 4096;

    /// <summary>Largest frame (the cluster's frame limit).</summary>
    public const int MaxFrameBytes = BittensorCluster.MaxFrameBytes;

    /// <summary>The protocol version this node speaks.</summary>
    public const byte Version = 1;

    /// <summary>Bytes that open every handshake.</summary>
    public static ReadOnlySpan<byte> Magic => "BTDP"u8;
}

/// <summary>A data plane connection failed or its peer broke the protocol; the message says how.</summary>
public sealed class DataPlaneException(string message) : Exception(message);

/// <summary>What <see cref="DataPlaneConnection.Send"/> did with a frame.</summary>
public enum DataPlaneSend
{
    /// <summary>Written or queued behind the frames being written.</summary>
    Sent,

    /// <summary>The connection is closed; nothing was sent (its owner learns of the close through its callback).</summary>
    Closed,

    /// <summary>Too many calls or replies are queued behind a peer that does not read; nothing was sent.</summary>
    Backlogged,
}

/// <summary>
/// One data plane connection (after its handshake). Writes: <see cref="Send"/> serializes a call or reply at once into
/// a pooled buffer and writes it on the caller's thread when no write is in progress (the frames behind a pending
/// write are queued, at most <c>maxQueued</c> calls/replies; more answer <see cref="DataPlaneSend.Backlogged"/>);
/// one writer at a time. Reads: one loop per connection, each frame into a pooled buffer of its size (bounded by
/// <see cref="DataPlaneFrames.MaxFrameBytes"/>: a larger claimed length closes the connection before anything is
/// allocated), handed to the frame handler, which decodes it (bounded, <see cref="ClusterTensorSerializer"/>). Any
/// protocol error closes the connection with a reason; the owner's close callback runs exactly once.
/// </summary>
public sealed class DataPlaneConnection : IDisposable
{
    /// <summary>Handles one frame (runs on the connection's read loop; the payload is valid only during the call).</summary>
    public delegate void FrameHandler(DataPlaneConnection connection, byte kind, ReadOnlySpan<byte> payload);

    private readonly Socket _socket;
    private readonly object _gate = new();
    private readonly Queue<(byte[]? Buffer, int Length, object? Lazy, bool Counted)> _queue = new();
    private readonly int _maxQueued;
    private int _queued;
    private bool _writing;
    private int _closed;
    private int _started;
    private FrameHandler? _onFrame;
    private Action<DataPlaneConnection, string>? _onClosed;

    internal DataPlaneConnection(Socket socket, string peer, string remote, int maxQueued)
    {
        _socket = socket;
        Peer = peer;
        Remote = remote;
        _maxQueued = maxQueued;
    }

    /// <summary>The peer's name from the handshake (its cluster node address).</summary>
    public string Peer { get; }

    /// <summary>The peer's endpoint, host:port.</summary>
    public string Remote { get; }

    /// <summary>True once closed (by either side or an error).</summary>
    public bool IsClosed => Volatile.Read(ref _closed) != 0;

    /// <summary>Why the connection closed (null while open).</summary>
    public string? CloseReason { get; private set; }

    /// <summary>Starts reading frames; <paramref name="onClosed"/> runs once when the connection closes, with the reason.</summary>
    public void Start(FrameHandler onFrame, Action<DataPlaneConnection, string> onClosed)
    {
        ArgumentNullException.ThrowIfNull(onFrame);
        ArgumentNullException.ThrowIfNull(onClosed);
        if (Interlocked.Exchange(ref _started, 1) != 0) throw new InvalidOperationException("the data plane connection is started already");
        _onFrame = onFrame;
        _onClosed = onClosed;
        if (IsClosed)
        {
            onClosed(this, CloseReason ?? "closed");
            return;
        }
        _ = ReadLoopAsync();
    }

    /// <summary>
    /// Sends one frame: <see cref="DataPlaneFrames.Call"/> (<see cref="WorkerCall"/>), <see cref="DataPlaneFrames.Reply"/>
    /// (<see cref="WorkerReply"/>), <see cref="DataPlaneFrames.Averaged"/> (<see cref="AveragedParameters"/>, serialized
    /// when its turn comes, not counted in the bound) or <see cref="DataPlaneFrames.DrainAck"/> (null).
    /// </summary>
    /// <exception cref="SerializationException">The message cannot be written (e.g. a tensor of rank above 8, a frame above the limit); nothing was sent.</exception>
    public DataPlaneSend Send(byte kind, object? message)
    {
        var counted = kind is DataPlaneFrames.Call or DataPlaneFrames.Reply;
        byte[]? buffer = null;
        var length = 0;
        if (kind != DataPlaneFrames.Averaged)
        {
            if (IsClosed) return DataPlaneSend.Closed;
            length = Frame(kind, message, out buffer);
        }
        lock (_gate)
        {
            if (_closed == 0)
            {
                if (!_writing)
                {
                    _writing = true;
                }
                else if (counted && _queued >= _maxQueued)
                {
                    Return(buffer);
                    return DataPlaneSend.Backlogged;
                }
                else
                {
                    _queue.Enqueue((buffer, length, buffer is null ? message : null, counted));
                    if (counted) _queued++;
                    return DataPlaneSend.Sent;
                }
            }
            else
            {
                Return(buffer);
                return DataPlaneSend.Closed;
            }
        }
        _ = PumpAsync(buffer, length, buffer is null ? message : null);
        return DataPlaneSend.Sent;
    }

    // Runs on the sender's thread until a write does not complete at once; then on the socket's completion.
    private async Task PumpAsync(byte[]? buffer, int length, object? lazy)
    {
        while (true)
        {
            try
            {
                if (buffer is null) length = Frame(DataPlaneFrames.Averaged, lazy, out buffer);
                var sent = 0;
                while (sent < length) sent += await _socket.SendAsync(buffer.AsMemory(sent, length - sent), SocketFlags.None).ConfigureAwait(false);
            }
            catch (Exception e) when (e is SocketException or IOException or ObjectDisposedException or SerializationException)
            {
                Return(buffer);
                Close(e is SerializationException ? $"a frame could not be written ({e.Message})" : $"writing failed ({Describe(e)})");
                return;
            }
            Return(buffer);
            lock (_gate)
            {
                if (_queue.Count == 0 || _closed != 0)
                {
                    _writing = false;
                    return;
                }
                var next = _queue.Dequeue();
                if (next.Counted) _queued--;
                (buffer, length, lazy) = (next.Buffer, next.Length, next.Lazy);
            }
        }
    }

    private static int Frame(byte kind, object? message, out byte[] buffer)
    {
        var size = (kind, message) switch
        {
            (DataPlaneFrames.Call, WorkerCall c) => ClusterTensorSerializer.SizeOf(c),
            (DataPlaneFrames.Reply, WorkerReply r) => ClusterTensorSerializer.SizeOf(r),
            (DataPlaneFrames.Averaged, AveragedParameters a) => ClusterTensorSerializer.SizeOf(a),
            (DataPlaneFrames.DrainAck, null) => 0,
            _ => throw new SerializationException($"data plane: frame kind {kind} cannot carry {message?.GetType().Name ?? "nothing"}"),
        };
        if (size > DataPlaneFrames.MaxFrameBytes)
            throw new SerializationException($"data plane: a frame of {size} bytes exceeds the limit ({DataPlaneFrames.MaxFrameBytes} bytes)");
        buffer = ArrayPool<byte>.Shared.Rent(DataPlaneFrames.HeaderBytes + size);
        try
        {
            BinaryPrimitives.WriteUInt32LittleEndian(buffer, (uint)size);
            buffer[4] = kind;
            if (message is not null) ClusterTensorSerializer.Write(message, buffer.AsSpan(DataPlaneFrames.HeaderBytes, size));
        }
        catch
        {
            ArrayPool<byte>.Shared.Return(buffer);
            throw;
        }
        return DataPlaneFrames.HeaderBytes + size;
    }

    private static void Return(byte[]? buffer)
    {
        if (buffer is not null) ArrayPool<byte>.Shared.Return(buffer);
    }

    private async Task ReadLoopAsync()
    {
        var header = new byte[DataPlaneFrames.HeaderBytes];
        string reason;
        try
        {
            while (true)
            {
                var got = await ReadAsync(_socket, header, DataPlaneFrames.HeaderBytes, CancellationToken.None).ConfigureAwait(false);
                if (got == 0)
                {
                    reason = "the peer closed the connection";
                    break;
                }
                if (got < DataPlaneFrames.HeaderBytes)
                {
                    reason = "the peer closed the connection in the middle of a frame header";
                    break;
                }
                var length = BinaryPrimitives.ReadUInt32LittleEndian(header);
                var kind = header[4];
                if (length > DataPlaneFrames.MaxFrameBytes)
                {
                    reason = $"an oversized frame ({length} bytes; the limit is {DataPlaneFrames.MaxFrameBytes})";
                    break;
                }
                var buffer = ArrayPool<byte>.Shared.Rent((int)Math.Max(length, 1));
                try
                {
                    if (await ReadAsync(_socket, buffer, (int)length, CancellationToken.None).ConfigureAwait(false) < length)
                    {
                        reason = "the peer closed the connection in the middle of a frame";
                        break;
                    }
                    _onFrame!(this, kind, buffer.AsSpan(0, (int)length));
                }
                finally
                {
                    ArrayPool<byte>.Shared.Return(buffer);
                }
            }
        }
        catch (DataPlaneException e)
        {
            reason = e.Message;
        }
        catch (SerializationException e)
        {
            reason = $"a malformed frame ({e.Message})";
        }
        catch (Exception e) when (e is SocketException or IOException or ObjectDisposedException)
        {
            reason = $"reading failed ({Describe(e)})";
        }
        Close(reason);
    }

    /// <summary>Closes the connection with <paramref name="reason"/> (once; later calls do nothing).</summary>
    public void Close(string reason)
    {
        if (Interlocked.Exchange(ref _closed, 1) != 0) return;
        CloseReason = reason;
        try
        {
            _socket.Shutdown(SocketShutdown.Both);
        }
        catch (Exception e) when (e is SocketException or ObjectDisposedException)
        {
            // Already gone.
        }
        _socket.Dispose();
        lock (_gate)
        {
            while (_queue.Count > 0) Return(_queue.Dequeue().Buffer);
            _queued = 0;
        }
        if (Volatile.Read(ref _started) != 0) _onClosed?.Invoke(this, reason);
    }

    /// <inheritdoc />
    public void Dispose() => Close("closed by this node");

    internal static string Describe(Exception e) => e is SocketException s ? s.SocketErrorCode.ToString() : e.GetType().Name;

    /// <summary>Reads up to <paramref name="count"/> bytes (fewer only when the peer closed): how many arrived.</summary>
    internal static async ValueTask<int> ReadAsync(Socket socket, byte[] buffer, int count, CancellationToken ct)
    {
        var read = 0;
        while (read < count)
        {
            var n = await socket.ReceiveAsync(buffer.AsMemory(read, count - read), SocketFlags.None, ct).ConfigureAwait(false);
            if (n == 0) break;
            read += n;
        }
        return read;
    }

    // ---- handshake ----

    internal static async Task SendHandshakeAsync(Socket socket, byte kind, string name, CancellationToken ct)
    {
        var nameBytes = Encoding.UTF8.GetBytes(name);
        var size = DataPlaneFrames.Magic.Length + 1 + 4 + nameBytes.Length;
        if (size > DataPlaneFrames.MaxHandshakeBytes) throw new DataPlaneException("data plane: this node's name is too long for the handshake");
        var frame = new byte[DataPlaneFrames.HeaderBytes + size];
        BinaryPrimitives.WriteUInt32LittleEndian(frame, (uint)size);
        frame[4] = kind;
        DataPlaneFrames.Magic.CopyTo(frame.AsSpan(5));
        frame[9] = DataPlaneFrames.Version;
        BinaryPrimitives.WriteInt32LittleEndian(frame.AsSpan(10), nameBytes.Length);
        nameBytes.CopyTo(frame.AsSpan(14));
        var sent = 0;
        while (sent < frame.Length) sent += await socket.SendAsync(frame.AsMemory(sent), SocketFlags.None, ct).ConfigureAwait(false);
    }

    /// <summary>Reads the peer's handshake frame of <paramref name="kind"/>: its name. Bounded (<see cref="DataPlaneFrames.MaxHandshakeBytes"/>).</summary>
    internal static async Task<string> ReadHandshakeAsync(Socket socket, byte kind, CancellationToken ct)
    {
        var header = new byte[DataPlaneFrames.HeaderBytes];
        if (await ReadAsync(socket, header, header.Length, ct).ConfigureAwait(false) < header.Length)
            throw new DataPlaneException("data plane: the peer closed the connection during the handshake");
        var length = BinaryPrimitives.ReadUInt32LittleEndian(header);
        if (header[4] != kind) throw new DataPlaneException($"data plane: expected handshake frame kind {kind}, got {header[4]}");
        if (length > DataPlaneFrames.MaxHandshakeBytes || length < DataPlaneFrames.Magic.Length + 1 + 4)
            throw new DataPlaneException($"data plane: a handshake frame of {length} bytes (expected {DataPlaneFrames.Magic.Length + 5}..{DataPlaneFrames.MaxHandshakeBytes})");
        var payload = new byte[length];
        if (await ReadAsync(socket, payload, payload.Length, ct).ConfigureAwait(false) < payload.Length)
            throw new DataPlaneException("data plane: the peer closed the connection during the handshake");
        if (!payload.AsSpan(0, 4).SequenceEqual(DataPlaneFrames.Magic)) throw new DataPlaneException("data plane: the peer is not a Bittensor cluster data plane (bad magic)");
        if (payload[4] != DataPlaneFrames.Version)
            throw new DataPlaneException($"data plane: the peer speaks version {payload[4]}; this node speaks {DataPlaneFrames.Version}");
        var n = BinaryPrimitives.ReadInt32LittleEndian(payload.AsSpan(5));
        if (n < 0 || n != payload.Length - 9) throw new DataPlaneException("data plane: the handshake's name length does not match its frame");
        try
        {
            return new UTF8Encoding(false, true).GetString(payload, 9, n);
        }
        catch (DecoderFallbackException)
        {
            throw new DataPlaneException("data plane: the handshake's name is not UTF-8");
        }
    }

    /// <summary>
    /// Front side: connects to a worker's data plane at <paramref name="host"/>:<paramref name="port"/>, sends the hello
    /// with <paramref name="self"/> (this node's cluster address) and reads the worker's answer; the connection is not
    /// reading yet (<see cref="Start"/>). Throws <see cref="DataPlaneException"/> with the reason when it fails.
    /// </summary>
    public static async Task<DataPlaneConnection> ConnectAsync(string host, int port, string self, TimeSpan timeout, int maxQueued, CancellationToken ct)
    {
        ArgumentNullException.ThrowIfNull(host);
        using var cts = CancellationTokenSource.CreateLinkedTokenSource(ct);
        cts.CancelAfter(timeout);
        var socket = new Socket(SocketType.Stream, ProtocolType.Tcp) { NoDelay = true };
        try
        {
            await socket.ConnectAsync(host, port, cts.Token).ConfigureAwait(false);
            await SendHandshakeAsync(socket, DataPlaneFrames.Hello, self, cts.Token).ConfigureAwait(false);
            var peer = await ReadHandshakeAsync(socket, DataPlaneFrames.HelloAck, cts.Token).ConfigureAwait(false);
            return new DataPlaneConnection(socket, peer, $"{host}:{port}", maxQueued);
        }
        catch (OperationCanceledException) when (!ct.IsCancellationRequested)
        {
            socket.Dispose();
            throw new DataPlaneException($"data plane: no handshake from {host}:{port} within {timeout.TotalSeconds:0.#} s");
        }
        catch (Exception e) when (e is SocketException or IOException)
        {
            socket.Dispose();
            throw new DataPlaneException($"data plane: cannot connect to {host}:{port} ({Describe(e)})");
        }
        catch
        {
            socket.Dispose();
            throw;
        }
    }

    internal static DataPlaneConnection Accepted(Socket socket, string peer, int maxQueued) =>
        new(socket, peer, socket.RemoteEndPoint?.ToString() ?? "?", maxQueued);
}

/// <summary>
/// A worker's data plane listener: binds its cluster hostname at once (so a port in use is an error at start), then
/// accepts fronts' connections: each must send its hello within <see cref="HandshakeTimeout"/>; at most
/// <see cref="MaxConnections"/> are open at once (more are closed at once). Disposing it closes every connection.
/// </summary>
public sealed class DataPlaneListener : IDisposable
{
    private readonly Socket _listener;
    private readonly string _self;
    private readonly int _maxQueued;
    private readonly Action<string> _log;
    private readonly HashSet<DataPlaneConnection> _open = [];
    private readonly CancellationTokenSource _stop = new();
    private int _handshaking;

    /// <summary>Connections open at once (fronts: the active one, and a new one during a take-over).</summary>
    public const int MaxConnections = 4;

    /// <summary>Longest a connection may take to send its hello.</summary>
    public static TimeSpan HandshakeTimeout { get; } = TimeSpan.FromSeconds(10);

    private DataPlaneListener(Socket listener, string self, int maxQueued, Action<string> log)
    {
        _listener = listener;
        _self = self;
        _maxQueued = maxQueued;
        _log = log;
        Port = ((IPEndPoint)listener.LocalEndPoint!).Port;
    }

    /// <summary>The port it listens on.</summary>
    public int Port { get; }

    /// <summary>
    /// Binds <paramref name="hostname"/>:<paramref name="port"/> (0 = any free port) and listens.
    /// </summary>
    /// <param name="hostname">The worker's cluster hostname (an IP address or a name that resolves).</param>
    /// <param name="port">The port.</param>
    /// <param name="self">This node's cluster address (sent in the handshake).</param>
    /// <param name="maxQueued">Replies queued behind a front that does not read before its connection is closed.</param>
    /// <param name="log">Where rejected connections and closes are reported.</param>
    /// <exception cref="DataPlaneException">The address cannot be bound; the message says which and why.</exception>
    public static DataPlaneListener Bind(string hostname, int port, string self, int maxQueued, Action<string> log)
    {
        ArgumentNullException.ThrowIfNull(hostname);
        ArgumentNullException.ThrowIfNull(log);
        IPAddress address;
        try
        {
            address = IPAddress.TryParse(hostname, out var ip) ? ip : Dns.GetHostAddresses(hostname).First();
        }
        catch (Exception e) when (e is SocketException or InvalidOperationException or ArgumentException)
        {
            throw new DataPlaneException($"bittensor.cluster.hostname: '{hostname}' does not resolve for the data plane ({e.Message})");
        }
        var socket = new Socket(address.AddressFamily, SocketType.Stream, ProtocolType.Tcp);
        try
        {
            socket.Bind(new IPEndPoint(address, port));
            socket.Listen(16);
        }
        catch (SocketException e)
        {
            socket.Dispose();
            throw new DataPlaneException($"bittensor.cluster.worker.data_port: cannot listen on {hostname}:{port} ({e.SocketErrorCode})");
        }
        return new DataPlaneListener(socket, self, maxQueued, log);
    }

    /// <summary>Starts accepting; <paramref name="onOpened"/> gets each connection after its handshake (and must <see cref="DataPlaneConnection.Start"/> it).</summary>
    public void Start(Action<DataPlaneConnection> onOpened)
    {
        ArgumentNullException.ThrowIfNull(onOpened);
        _ = AcceptLoopAsync(onOpened);
    }

    /// <summary>Connections open now.</summary>
    public int OpenConnections
    {
        get
        {
            lock (_open) return _open.Count;
        }
    }

    private async Task AcceptLoopAsync(Action<DataPlaneConnection> onOpened)
    {
        while (!_stop.IsCancellationRequested)
        {
            Socket socket;
            try
            {
                socket = await _listener.AcceptAsync(_stop.Token).ConfigureAwait(false);
            }
            catch (Exception e) when (e is OperationCanceledException or ObjectDisposedException)
            {
                return;
            }
            catch (SocketException e)
            {
                _log($"cluster worker: data plane accept failed ({e.SocketErrorCode})");
                continue;
            }
            int busy;
            lock (_open) busy = _open.Count + _handshaking;
            if (busy >= MaxConnections)
            {
                _log($"cluster worker: data plane connection from {socket.RemoteEndPoint} refused ({MaxConnections} open already)");
                socket.Dispose();
                continue;
            }
            Interlocked.Increment(ref _handshaking);
            _ = HandshakeAsync(socket, onOpened);
        }
    }

    private async Task HandshakeAsync(Socket socket, Action<DataPlaneConnection> onOpened)
    {
        var remote = socket.RemoteEndPoint?.ToString() ?? "?";
        try
        {
            socket.NoDelay = true;
            using var cts = CancellationTokenSource.CreateLinkedTokenSource(_stop.Token);
            cts.CancelAfter(HandshakeTimeout);
            string front;
            try
            {
                front = await DataPlaneConnection.ReadHandshakeAsync(socket, DataPlaneFrames.Hello, cts.Token).ConfigureAwait(false);
                await DataPlaneConnection.SendHandshakeAsync(socket, DataPlaneFrames.HelloAck, _self, cts.Token).ConfigureAwait(false);
            }
            catch (OperationCanceledException)
            {
                throw new DataPlaneException($"data plane: no hello within {HandshakeTimeout.TotalSeconds:0} s");
            }
            var connection = DataPlaneConnection.Accepted(socket, front, _maxQueued);
            lock (_open)
            {
                if (_stop.IsCancellationRequested)
                {
                    connection.Dispose();
                    return;
                }
                _open.Add(connection);
            }
            onOpened(connection);
        }
        catch (Exception e) when (e is DataPlaneException or SocketException or IOException or ObjectDisposedException)
        {
            _log($"cluster worker: data plane connection from {remote} refused: {(e is DataPlaneException ? e.Message : DataPlaneConnection.Describe(e))}");
            socket.Dispose();
        }
        finally
        {
            Interlocked.Decrement(ref _handshaking);
        }
    }

    /// <summary>Forgets a closed connection (called from its close callback).</summary>
    public void Closed(DataPlaneConnection connection)
    {
        lock (_open) _open.Remove(connection);
    }

    /// <inheritdoc />
    public void Dispose()
    {
        if (_stop.IsCancellationRequested) return;
        _stop.Cancel();
        _listener.Dispose();
        List<DataPlaneConnection> open;
        lock (_open)
        {
            open = [.. _open];
            _open.Clear();
        }
        foreach (var c in open) c.Close("the worker's data plane stopped");
    }
}

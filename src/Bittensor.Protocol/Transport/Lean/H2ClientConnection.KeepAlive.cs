using System.Buffers.Binary;
using Grpc.Core;

namespace Bittensor.Protocol.Lean;

/// <summary>
/// When the lean client pings (SocketsHttpHandler's KeepAlivePingDelay / KeepAlivePingTimeout / KeepAlivePingPolicy
/// semantics, gRPC's keepalive_time / keepalive_timeout / keepalive_permit_without_calls): a PING goes once nothing
/// (no frame) has come from the peer for <see cref="Time"/> and a call is open (or always, with
/// <see cref="WithoutCalls"/>); a PING whose ACK has not come within <see cref="Timeout"/> closes the connection (every
/// open call answers Unavailable; the next call connects anew). <see cref="Time"/> of <see cref="System.Threading.Timeout.InfiniteTimeSpan"/> or zero: no pings.
/// </summary>
internal sealed record KeepAlivePolicy(TimeSpan Time, TimeSpan Timeout, bool WithoutCalls, TimeProvider Clock)
{
    public bool Enabled => Time > TimeSpan.Zero && Time != System.Threading.Timeout.InfiniteTimeSpan && Timeout > TimeSpan.Zero;

    /// <summary>How often a connection looks at its clock: a quarter of the shorter interval, between 10 ms and 1 s.</summary>
    public TimeSpan Tick => TimeSpan.FromTicks(Math.Clamp(Math.Min(Time.Ticks, Timeout.Ticks) / 4, TimeSpan.TicksPerMillisecond * 10, TimeSpan.TicksPerSecond));

    /// <summary>
    /// The next connection's interval after the peer sent GOAWAY ENHANCE_YOUR_CALM "too_many_pings" (what a gRPC server
    /// answers pings more frequent than its policy allows): doubled, as gRPC clients do, up to a day.
    /// </summary>
    public KeepAlivePolicy Calmer() => this with { Time = TimeSpan.FromTicks(Math.Min(Time.Ticks * 2, TimeSpan.TicksPerDay)) };
}

internal sealed partial class H2ClientConnection
{
    private KeepAlivePolicy? _keepAlive;
    private ITimer? _keepAliveTimer;
    private long _lastFrameAt; // the clock's timestamp of the last frame read (the read loop writes it)
    private long _pingSentAt = -1; // under _lock: the outstanding PING's time, -1 when none is outstanding
    private ulong _pingPayload; // under _lock: the outstanding PING's opaque data
    private long _pingsSent;
    private long _pingAcks;
    private bool _tooManyPings; // under _lock
    private TaskCompletionSource? _pingSettled; // under _lock: tests wait for an ACK or a GOAWAY

    /// <summary>
    /// Completes once <paramref name="acks"/> PINGs have been acknowledged or the peer sent GOAWAY (tests: the event a
    /// step waits for before the clock moves on).
    /// </summary>
    internal Task PingAnsweredOrGoAway(long acks)
    {
        lock (_lock)
        {
            if (Interlocked.Read(ref _pingAcks) >= acks || _goingAway || _closed) return Task.CompletedTask;
            return (_pingSettled ??= new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously)).Task;
        }
    }

    private void PingSettledLocked()
    {
        _pingSettled?.TrySetResult();
        _pingSettled = null;
    }

    /// <summary>Keep-alive PINGs this side sent (tests).</summary>
    internal long PingsSent => Interlocked.Read(ref _pingsSent);

    /// <summary>ACKs of this side's keep-alive PINGs received (tests).</summary>
    internal long PingAcks => Interlocked.Read(ref _pingAcks);

    /// <summary>The keep-alive this connection runs (null: none).</summary>
    internal KeepAlivePolicy? KeepAlive => _keepAlive;

    /// <summary>The peer sent GOAWAY ENHANCE_YOUR_CALM "too_many_pings": the next connection pings less often.</summary>
    internal bool TooManyPings
    {
        get
        {
            lock (_lock) return _tooManyPings;
        }
    }

    private void StartKeepAlive(KeepAlivePolicy? policy)
    {
        if (policy is not { Enabled: true }) return;
        _keepAlive = policy;
        _lastFrameAt = policy.Clock.GetTimestamp();
        _keepAliveTimer = policy.Clock.CreateTimer(static o => ((H2ClientConnection)o!).KeepAliveTick(), this, policy.Tick, policy.Tick);
    }

    // The read loop, after each frame header (only with a keep-alive).
    private void FrameArrived() => Volatile.Write(ref _lastFrameAt, _keepAlive!.Clock.GetTimestamp());

    private void KeepAliveTick()
    {
        var policy = _keepAlive!;
        var clock = policy.Clock;
        var now = clock.GetTimestamp();
        byte[]? ping = null;
        lock (_lock)
        {
            if (_closed)
            {
                _keepAliveTimer?.Dispose();
                return;
            }
            if (_pingSentAt >= 0)
            {
                if (clock.GetElapsedTime(_pingSentAt, now) < policy.Timeout) return;
            }
            else
            {
                if (clock.GetElapsedTime(Volatile.Read(ref _lastFrameAt), now) < policy.Time) return;
                if (_streams.Count == 0 && !policy.WithoutCalls) return;
                _pingSentAt = now;
                _pingPayload++;
                ping = new byte[17];
                H2Output.WriteFrameHeader(ping, 8, H2.Ping, 0, 0);
                BinaryPrimitives.WriteUInt64BigEndian(ping.AsSpan(9), _pingPayload);
            }
        }
        if (ping is not null)
        {
            Interlocked.Increment(ref _pingsSent);
            SendControl(ping);
            return;
        }
        _keepAliveTimer?.Dispose();
        Close($"peer did not answer a keepalive PING within {policy.Timeout.TotalSeconds:0.###} s (connection presumed dead)", StatusCode.Unavailable);
    }

    // A PING ACK (read loop): the outstanding PING is answered when the opaque data is its own.
    private void OnPingAck(ReadOnlySpan<byte> payload)
    {
        lock (_lock)
        {
            if (_pingSentAt < 0 || BinaryPrimitives.ReadUInt64BigEndian(payload) != _pingPayload) return;
            _pingSentAt = -1;
            Interlocked.Increment(ref _pingAcks);
            PingSettledLocked();
        }
    }

    // Under _lock, from OnGoAway: gRPC servers say "too_many_pings" in the debug data of ENHANCE_YOUR_CALM.
    private void NoteGoAwayLocked(uint code, ReadOnlySpan<byte> debug)
    {
        if (code == H2.EnhanceYourCalm && debug.SequenceEqual("too_many_pings"u8)) _tooManyPings = true;
        PingSettledLocked();
    }
}

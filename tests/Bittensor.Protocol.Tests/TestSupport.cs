using System.Security.Cryptography;
using System.Text;

namespace Bittensor.Protocol.Tests;

/// <summary>A clock the test moves by hand; timers fire when <see cref="Advance"/> passes their due time.</summary>
internal sealed class ManualClock : TimeProvider
{
    private readonly List<ManualTimer> _timers = [];
    private DateTimeOffset _now;

    public ManualClock(DateTimeOffset start, TimeZoneInfo? zone = null)
    {
        _now = start;
        LocalTimeZone = zone ?? TimeZoneInfo.Utc;
    }

    public override TimeZoneInfo LocalTimeZone { get; }

    public override DateTimeOffset GetUtcNow() => _now;

    public void Advance(TimeSpan by)
    {
        _now += by;
        foreach (var t in _timers.ToArray()) t.FireIfDue(_now);
    }

    public override ITimer CreateTimer(TimerCallback callback, object? state, TimeSpan dueTime, TimeSpan period)
    {
        var timer = new ManualTimer(this, callback, state, _now + dueTime, period);
        _timers.Add(timer);
        return timer;
    }

    private sealed class ManualTimer(ManualClock clock, TimerCallback callback, object? state, DateTimeOffset due, TimeSpan period) : ITimer
    {
        private DateTimeOffset _due = due;

        public void FireIfDue(DateTimeOffset now)
        {
            while (_due <= now)
            {
                callback(state);
                if (period <= TimeSpan.Zero) { Dispose(); return; }
                _due += period;
            }
        }

        public bool Change(TimeSpan dueTime, TimeSpan period) => throw new NotSupportedException();

        public void Dispose() => clock._timers.Remove(this);

        public ValueTask DisposeAsync()
        {
            Dispose();
            return ValueTask.CompletedTask;
        }
    }
}

/// <summary>
/// A stand-in signature scheme for the verifier's logic tests (the sr25519 check itself is tested in Core):
/// signature = SHA-512(ss58 ‖ message). Only the holder of the test key table can produce it.
/// </summary>
internal sealed class FakeSignatures : ISignatureVerifier
{
    public int Calls;

    public static byte[] Sign(string ss58, ReadOnlySpan<byte> message)
    {
        var input = new byte[Encoding.UTF8.GetByteCount(ss58) + message.Length];
        var n = Encoding.UTF8.GetBytes(ss58, input);
        message.CopyTo(input.AsSpan(n));
        return SHA512.HashData(input);
    }

    public static IRequestSigner Signer(string ss58)
        => new DelegateRequestSigner(ss58, (m, _) => ValueTask.FromResult(Sign(ss58, m.Span)));

    public bool Verify(string ss58Address, ReadOnlySpan<byte> message, ReadOnlySpan<byte> signature)
    {
        Interlocked.Increment(ref Calls);
        return signature.SequenceEqual(Sign(ss58Address, message));
    }
}

internal static class TempDir
{
    public static string Create()
    {
        var path = Path.Combine(Path.GetTempPath(), "bt-protocol-tests-" + Guid.NewGuid().ToString("N"));
        Directory.CreateDirectory(path);
        return path;
    }
}

/// <summary>
/// The client options of tests that connect over loopback: the defaults with a 30 s connect timeout. A loopback connect
/// is immediate; the default 5 s only guards against a dead host, and a starved test process's first connection (a
/// thread to start, the client's I/O loop to be scheduled, code to compile) took longer on one core at load ~60 (the
/// client then gave up, closed the socket it had connected, and the test failed).
/// </summary>
internal static class TestChannel
{
    public static BittensorChannelOptions Options { get; } = BittensorChannelOptions.Default with { ConnectTimeout = TimeSpan.FromSeconds(30) };
}

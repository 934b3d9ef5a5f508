using System.Globalization;
using System.Text;
using Bittensor.Protocol;
using Grpc.Core;

namespace Bittensor.Actors.Dendrite;

/// <summary>
/// The request headers of one dendrite's endpoint actors, signed once and shared across endpoints. A 2021
/// <c>bittensor-signature</c> signs only the nonce and the caller's hotkey — not the body, not the target axon
/// (PROTOCOL.md) — and each axon keeps its own last nonce per caller, so one signed value is valid at every axon whose
/// last nonce from us is at least 1 ms older. A fan-out round to N axons thus signs once instead of N times.
/// Per target axon (its ip:port) the nonces still rise by at least 1 ms per call: a target whose floor the latest value
/// does not clear, or a latest value older than <c>reuse</c>, gets a freshly signed one.
/// With <c>reuse</c> zero every call is signed alone (the 2021 dendrite's behaviour).
/// Replay exposure is unchanged: a peer that got our header could already replay it to another axon within the same
/// round (nonces of one round lie within a millisecond, so a replay beats our own call there either way).
/// Thread-safe: one signing at a time behind an async gate (no thread blocks while a wallet signer actor answers).
/// <para>
/// Signing ahead (<c>signAhead</c>): when calls need a new value back to back (within <c>reuse</c> of the last need, as
/// rounds that follow each other do), the value for the next need — this one's nonce + 1 ms, or the clock if that is later
/// when the signing runs — is signed in the background once <see cref="SignAheadIfArmed"/> is called (a fan-out round
/// calls it when its last request is out, so the signing runs while the round's answers are awaited, not between its
/// sends), and the next need takes it instead of signing on its critical path.
/// It is taken only under the rules a reused value meets: at or above the target's floor + 1 ms and at most <c>reuse</c>
/// older than the clock; otherwise it is dropped and the need signs as before. A caller whose rounds are further apart than
/// <c>reuse</c> never signs ahead (no signature is wasted).
/// </para>
/// <para>
/// Pacing: the protocol lets a caller send one axon at most one nonce per millisecond, so calls to one target faster than
/// that push its nonces ahead of the clock (rounds of 16 back to back every ~0.4 ms ran them ahead ~1.3 s per second, and an
/// axon refuses nonces more than its <c>clock_skew</c>, 30 s by default, in the future). A call whose nonce would lie more
/// than <see cref="MaxAhead"/> ahead of the clock waits (without holding the gate, so calls to other targets go on) until
/// it would not: bursts run at full speed, a sustained rate to one axon settles at one call per millisecond.
/// </para>
/// </summary>
internal sealed class SharedRequestSignatures
{
    private static readonly long OneMillisecond = TimeSpan.TicksPerMillisecond;
    private readonly IRequestSigner _signer;
    private readonly TimeProvider _clock;
    private readonly long _reuseTicks;
    private readonly string _version;
    private readonly SemaphoreSlim _gate = new(1, 1);
    private readonly Dictionary<string, long> _floors = new(StringComparer.Ordinal); // target → last nonce sent there; under _gate
    private long _latestTicks = long.MinValue;
    private Metadata? _latestHeaders; // the latest signed value's headers, shared by the calls that reuse it (transports only read them)
    private readonly bool _signAhead;
    private readonly Action<Func<Task>> _background;
    private long _lastNeedTicks = long.MinValue; // under _gate: when a call last needed a value it could not reuse
    private long _aheadTicks;                    // under _gate: the nonce of the value signed ahead
    private Metadata? _aheadHeaders;             // under _gate: that value's headers, or null
    private long _armed;                         // the nonce a signing ahead would start from (0: none armed); Interlocked
    private long _signed;
    private long _aheadTaken;
    private readonly long _maxAheadTicks;
    private long _paced;

    /// <summary>How far ahead of the clock a nonce may run before the call waits (see the class remarks).</summary>
    public static readonly TimeSpan MaxAhead = TimeSpan.FromSeconds(1);

    /// <summary>Signs with <paramref name="signer"/>; a signed value is shared for at most <paramref name="reuse"/> (zero: never).</summary>
    /// <param name="signer">Signs the nonce and hotkey.</param>
    /// <param name="reuse">How long a signed value may serve other targets (zero: every call signs alone, nothing is signed ahead).</param>
    /// <param name="clock">The nonce clock (tests: a manual one).</param>
    /// <param name="version">The <c>bittensor-version</c> header.</param>
    /// <param name="signAhead">Sign the next need's value in the background when needs come back to back (see the class remarks).</param>
    /// <param name="background">Runs a signing ahead (default: a thread-pool work item on the global queue); tests run it by hand.</param>
    /// <param name="maxAhead">How far ahead of the clock a nonce may run (default <see cref="MaxAhead"/>; tests: shorter).</param>
    public SharedRequestSignatures(IRequestSigner signer, TimeSpan reuse, TimeProvider? clock = null, int version = ProtocolVersion.Current,
        bool signAhead = false, Action<Func<Task>>? background = null, TimeSpan? maxAhead = null)
    {
        ArgumentNullException.ThrowIfNull(signer);
        ArgumentOutOfRangeException.ThrowIfLessThan(reuse, TimeSpan.Zero);
        _signer = signer;
        _reuseTicks = reuse.Ticks;
        _clock = clock ?? TimeProvider.System;
        _version = version.ToString(CultureInfo.InvariantCulture);
        _signAhead = signAhead && reuse > TimeSpan.Zero;
        _background = background ?? (static work => ThreadPool.UnsafeQueueUserWorkItem(static w => _ = w(), work, preferLocal: false));
        _maxAheadTicks = (maxAhead ?? MaxAhead).Ticks;
        ArgumentOutOfRangeException.ThrowIfLessThan(_maxAheadTicks, OneMillisecond, nameof(maxAhead));
    }

    /// <summary>Calls that waited because their target's nonce ran more than the allowed time ahead of the clock (stats, tests).</summary>
    public long Paced => Interlocked.Read(ref _paced);

    /// <summary>The caller's SS58 address.</summary>
    public string Hotkey => _signer.Ss58Address;

    /// <summary>Signatures made so far, those made ahead included (tests and stats).</summary>
    public long Signed => Interlocked.Read(ref _signed);

    /// <summary>Needs served by a value signed ahead (tests and stats).</summary>
    public long AheadTaken => Interlocked.Read(ref _aheadTaken);

    /// <summary>The key of an axon's nonce floor: its address, whatever hotkey the metagraph lists there.</summary>
    public static string Target(Bittensor.Core.Domain.EndpointInfo endpoint)
    {
        ArgumentNullException.ThrowIfNull(endpoint);
        return string.Create(CultureInfo.InvariantCulture, $"{endpoint.Ip}:{endpoint.Port}");
    }

    /// <summary>Targets with a floor on record (tests).</summary>
    internal int Floors
    {
        get
        {
            _gate.Wait();
            try
            {
                return _floors.Count;
            }
            finally
            {
                _gate.Release();
            }
        }
    }

    /// <summary>Targets whose floors are kept (beyond it, floors over a second old are dropped: any new nonce clears them).</summary>
    internal const int MaxFloors = 16_384;

    /// <summary>
    /// The three headers in wire order for the next call to the axon at <paramref name="target"/> (see
    /// <see cref="Target"/>). The floor is the target's, not the endpoint actor's: two endpoint actors for one address
    /// (two hotkeys listed at one ip:port, or an evicted endpoint's successor) never send it the same nonce or two
    /// nonces less than 1 ms apart. A target with no floor on record starts from now.
    /// </summary>
    public async ValueTask<Metadata> CreateHeadersAsync(string target, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(target);
        while (true)
        {
            var (headers, wait) = await TryCreateHeadersAsync(target, cancellationToken).ConfigureAwait(false);
            if (headers is not null) return headers;
            // The target's next nonce would run too far ahead of the clock: wait for the clock (gate released meanwhile).
            Interlocked.Increment(ref _paced);
            await Task.Delay(wait, _clock, cancellationToken).ConfigureAwait(false);
        }
    }

    // The headers, or null and how long to wait when the target's next nonce lies more than _maxAheadTicks ahead of the clock.
    private async ValueTask<(Metadata? Headers, TimeSpan Wait)> TryCreateHeadersAsync(string target, CancellationToken cancellationToken)
    {
        await _gate.WaitAsync(cancellationToken).ConfigureAwait(false);
        try
        {
            // Microsecond precision is all the nonce carries; truncate before comparing.
            var now = _clock.GetLocalNow().DateTime.Ticks / 10 * 10;
            var min = (_floors.TryGetValue(target, out var last) ? last : now) + OneMillisecond;
            if (min - now > _maxAheadTicks) return (null, TimeSpan.FromTicks(min - now - _maxAheadTicks));
            Metadata headers;
            long sent;
            if (_latestHeaders is not null && _latestTicks >= min && _reuseTicks > 0 && now - _latestTicks <= _reuseTicks)
            {
                headers = _latestHeaders;
                sent = _latestTicks;
            }
            else
            {
                // A need: no value to reuse here. Back to back with the last need (rounds that follow each other), the
                // next one's value is signed ahead once this one is settled.
                var backToBack = _signAhead && _lastNeedTicks != long.MinValue && now - _lastNeedTicks <= _reuseTicks;
                _lastNeedTicks = now;
                if (_aheadHeaders is not null && _aheadTicks >= min && now - _aheadTicks <= _reuseTicks)
                {
                    headers = _aheadHeaders;
                    sent = _aheadTicks;
                    Interlocked.Increment(ref _aheadTaken);
                }
                else
                {
                    sent = Math.Max(now, min);
                    headers = Headers(await SignAsync(sent, cancellationToken).ConfigureAwait(false));
                }
                _aheadHeaders = null; // taken, or not usable any more (too old, or below a floor this need raised)
                if (sent >= _latestTicks)
                {
                    _latestTicks = sent;
                    _latestHeaders = headers;
                }
                // Armed, not started: the round starts it when its last request is out (SignAheadIfArmed).
                Volatile.Write(ref _armed, backToBack ? sent + OneMillisecond : 0);
            }
            _floors[target] = sent;
            if (_floors.Count > MaxFloors) DropOldFloors(now);
            return (headers, TimeSpan.Zero);
        }
        finally
        {
            _gate.Release();
        }
    }

    private Metadata Headers(string value) => new()
    {
        { AuthHeaders.AuthName, AuthHeaders.AuthValue },
        { AuthHeaders.SignatureName, value },
        { AuthHeaders.VersionName, _version },
    };

    /// <summary>
    /// Starts the signing ahead that the last need armed (back to back with the one before), once: a fan-out round calls
    /// it when its last request is out. Does nothing when none is armed (signing ahead off, needs further apart than the
    /// reuse window, or started already).
    /// </summary>
    public void SignAheadIfArmed()
    {
        var next = Interlocked.Exchange(ref _armed, 0);
        if (next != 0) _background(() => SignAheadAsync(next));
    }

    // The value for the next need, signed in the background: nonce `next` (the last need's + 1 ms), or the clock if that is
    // later by now, and at least 1 ms above the latest value. Under the gate, so a need that comes meanwhile waits for it (no longer than signing itself) and takes
    // it. A failure here is dropped: the next need signs itself and reports its own.
    private async Task SignAheadAsync(long next)
    {
        var entered = false;
        try
        {
            await _gate.WaitAsync().ConfigureAwait(false);
            entered = true;
            // At least 1 ms above every value sent so far, so it clears every target's floor.
            var ticks = Math.Max(Math.Max(next, _clock.GetLocalNow().DateTime.Ticks / 10 * 10), _latestTicks + OneMillisecond);
            var headers = Headers(await SignAsync(ticks, CancellationToken.None).ConfigureAwait(false));
            _aheadTicks = ticks;
            _aheadHeaders = headers;
        }
        catch (Exception)
        {
            _aheadHeaders = null;
        }
        finally
        {
            if (entered) _gate.Release();
        }
    }

    // Under _gate. A floor over a second old constrains nothing (every new nonce is at least now): drop those.
    private void DropOldFloors(long now)
    {
        var stale = now - TimeSpan.TicksPerSecond;
        foreach (var (target, last) in _floors)
            if (last < stale) _floors.Remove(target);
    }

    private async ValueTask<string> SignAsync(long ticks, CancellationToken cancellationToken)
    {
        var nonce = RequestNonce.Format(new DateTime(ticks, DateTimeKind.Unspecified));
        var ss58 = _signer.Ss58Address;
        var signature = await _signer.SignAsync(Encoding.UTF8.GetBytes(nonce + ss58), cancellationToken).ConfigureAwait(false);
        if (signature is not { Length: 64 })
            throw new InvalidOperationException($"the signer returned {signature?.Length ?? 0} bytes, an sr25519 signature has 64");
        Interlocked.Increment(ref _signed);
        return string.Concat(nonce, AuthHeaders.Separator, ss58, AuthHeaders.Separator, "0x", Convert.ToHexStringLower(signature));
    }
}

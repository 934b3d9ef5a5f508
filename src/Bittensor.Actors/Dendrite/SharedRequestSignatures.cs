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

    /// <summary>Signs with <paramref name="signer"/>; a signed value is shared for at most <paramref name="reuse"/> (zero: never).</summary>
    public SharedRequestSignatures(IRequestSigner signer, TimeSpan reuse, TimeProvider? clock = null, int version = ProtocolVersion.Current)
    {
        ArgumentNullException.ThrowIfNull(signer);
        ArgumentOutOfRangeException.ThrowIfLessThan(reuse, TimeSpan.Zero);
        _signer = signer;
        _reuseTicks = reuse.Ticks;
        _clock = clock ?? TimeProvider.System;
        _version = version.ToString(CultureInfo.InvariantCulture);
    }

    /// <summary>The caller's SS58 address.</summary>
    public string Hotkey => _signer.Ss58Address;

    /// <summary>Signatures made so far (tests and stats).</summary>
    public long Signed { get; private set; }

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
        await _gate.WaitAsync(cancellationToken).ConfigureAwait(false);
        try
        {
            // Microsecond precision is all the nonce carries; truncate before comparing.
            var now = _clock.GetLocalNow().DateTime.Ticks / 10 * 10;
            var min = (_floors.TryGetValue(target, out var last) ? last : now) + OneMillisecond;
            Metadata headers;
            long sent;
            if (_latestHeaders is not null && _latestTicks >= min && _reuseTicks > 0 && now - _latestTicks <= _reuseTicks)
            {
                headers = _latestHeaders;
                sent = _latestTicks;
            }
            else
            {
                sent = Math.Max(now, min);
                var value = await SignAsync(sent, cancellationToken).ConfigureAwait(false);
                headers = new Metadata
                {
                    { AuthHeaders.AuthName, AuthHeaders.AuthValue },
                    { AuthHeaders.SignatureName, value },
                    { AuthHeaders.VersionName, _version },
                };
                if (sent >= _latestTicks)
                {
                    _latestTicks = sent;
                    _latestHeaders = headers;
                }
            }
            _floors[target] = sent;
            if (_floors.Count > MaxFloors) DropOldFloors(now);
            return headers;
        }
        finally
        {
            _gate.Release();
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
        Signed++;
        return string.Concat(nonce, AuthHeaders.Separator, ss58, AuthHeaders.Separator, "0x", Convert.ToHexStringLower(signature));
    }
}

using System.Globalization;
using System.Text;
using Grpc.Core;

namespace Bittensor.Protocol;

/// <summary>
/// Builds the three 2021 request headers for one hotkey: <c>rpc-auth-header</c>, <c>bittensor-signature</c>,
/// <c>bittensor-version</c>, in that order. Nonces come from the injected clock's local wall-clock time and are
/// kept strictly increasing, at least 1 ms apart, per instance: use one instance per target axon, since the
/// axon rejects a nonce less than 1 ms newer than the last it accepted from the same hotkey. Thread-safe.
/// </summary>
public sealed class RequestAuth
{
    private static readonly long OneMillisecond = TimeSpan.TicksPerMillisecond;

    private readonly IRequestSigner _signer;
    private readonly TimeProvider _clock;
    private readonly string _version;
    private readonly Lock _gate = new();
    private long _lastNonceTicks;

    /// <summary>Creates headers signed by <paramref name="signer"/> with nonces from <paramref name="clock"/> (system clock by default).</summary>
    public RequestAuth(IRequestSigner signer, TimeProvider? clock = null, int version = ProtocolVersion.Current)
    {
        ArgumentNullException.ThrowIfNull(signer);
        _signer = signer;
        _clock = clock ?? TimeProvider.System;
        _version = version.ToString(CultureInfo.InvariantCulture);
    }

    /// <summary>The caller's SS58 address (put it in <c>TensorMessage.hotkey</c> too).</summary>
    public string Hotkey => _signer.Ss58Address;

    /// <summary>Signs a fresh nonce and returns the three headers in wire order.</summary>
    public async ValueTask<Metadata> CreateHeadersAsync(CancellationToken cancellationToken = default)
    {
        var signature = await CreateSignatureHeaderAsync(cancellationToken).ConfigureAwait(false);
        return new Metadata
        {
            { AuthHeaders.AuthName, AuthHeaders.AuthValue },
            { AuthHeaders.SignatureName, signature },
            { AuthHeaders.VersionName, _version },
        };
    }

    /// <summary>Signs a fresh nonce and returns the <c>bittensor-signature</c> value.</summary>
    public async ValueTask<string> CreateSignatureHeaderAsync(CancellationToken cancellationToken = default)
    {
        var nonce = RequestNonce.Format(NextNonceTime());
        var ss58 = _signer.Ss58Address;
        var message = Encoding.UTF8.GetBytes(nonce + ss58);
        var signature = await _signer.SignAsync(message, cancellationToken).ConfigureAwait(false);
        if (signature is not { Length: 64 })
            throw new InvalidOperationException($"the signer returned {signature?.Length ?? 0} bytes, an sr25519 signature has 64");
        return string.Concat(nonce, AuthHeaders.Separator, ss58, AuthHeaders.Separator, "0x", Convert.ToHexStringLower(signature));
    }

    private DateTime NextNonceTime()
    {
        // Microsecond precision is all the nonce carries; truncate before comparing.
        var now = _clock.GetLocalNow().DateTime.Ticks / 10 * 10;
        lock (_gate)
        {
            var next = Math.Max(now, _lastNonceTicks + OneMillisecond);
            _lastNonceTicks = next;
            return new DateTime(next, DateTimeKind.Unspecified);
        }
    }
}

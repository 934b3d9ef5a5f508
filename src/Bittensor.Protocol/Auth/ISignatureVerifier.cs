using Bittensor.Core.Crypto;

namespace Bittensor.Protocol;

/// <summary>Checks a request signature made by the holder of an SS58 address.</summary>
public interface ISignatureVerifier
{
    /// <summary>True only when <paramref name="signature"/> is a valid signature of <paramref name="message"/> by <paramref name="ss58Address"/>'s key.</summary>
    bool Verify(string ss58Address, ReadOnlySpan<byte> message, ReadOnlySpan<byte> signature);
}

/// <summary>The real check: <see cref="Ss58.TryDecode"/> then sr25519 verification with context <c>substrate</c>.</summary>
public sealed class Sr25519SignatureVerifier : ISignatureVerifier
{
    /// <summary>The shared instance (stateless).</summary>
    public static Sr25519SignatureVerifier Instance { get; } = new();

    private Sr25519SignatureVerifier()
    {
    }

    /// <inheritdoc />
    public bool Verify(string ss58Address, ReadOnlySpan<byte> message, ReadOnlySpan<byte> signature)
    {
        if (!HotkeyCache.TryGet(ss58Address, out var publicKey)) return false;
        return Sr25519.Verify(publicKey, message, signature);
    }
}

using Bittensor.Core.Crypto;

namespace Bittensor.Protocol;

/// <summary>
/// Signs request nonces for one hotkey. The actors route this through the wallet signer actor so the
/// secret stays in one place; tests use <see cref="DelegateRequestSigner"/>.
/// </summary>
public interface IRequestSigner
{
    /// <summary>The hotkey's SS58 address, sent in the signature header and in <c>TensorMessage.hotkey</c>.</summary>
    string Ss58Address { get; }

    /// <summary>Returns the 64-byte sr25519 signature (context <c>substrate</c>) of <paramref name="message"/>.</summary>
    ValueTask<byte[]> SignAsync(ReadOnlyMemory<byte> message, CancellationToken cancellationToken);
}

/// <summary>An <see cref="IRequestSigner"/> over a delegate (e.g. an Ask to the wallet signer actor).</summary>
public sealed class DelegateRequestSigner : IRequestSigner
{
    private readonly Func<ReadOnlyMemory<byte>, CancellationToken, ValueTask<byte[]>> _sign;

    /// <summary>Creates a signer for <paramref name="ss58Address"/> that calls <paramref name="sign"/>.</summary>
    public DelegateRequestSigner(string ss58Address, Func<ReadOnlyMemory<byte>, CancellationToken, ValueTask<byte[]>> sign)
    {
        ArgumentException.ThrowIfNullOrEmpty(ss58Address);
        ArgumentNullException.ThrowIfNull(sign);
        Ss58Address = ss58Address;
        _sign = sign;
    }

    /// <inheritdoc />
    public string Ss58Address { get; }

    /// <inheritdoc />
    public ValueTask<byte[]> SignAsync(ReadOnlyMemory<byte> message, CancellationToken cancellationToken) => _sign(message, cancellationToken);
}

/// <summary>An <see cref="IRequestSigner"/> holding a key pair in process (CLI one-shots and tests). Does not own the pair.</summary>
public sealed class KeyPairRequestSigner : IRequestSigner
{
    private readonly Sr25519KeyPair _keyPair;

    /// <summary>Signs with <paramref name="keyPair"/>; the caller keeps ownership and disposes it.</summary>
    public KeyPairRequestSigner(Sr25519KeyPair keyPair)
    {
        ArgumentNullException.ThrowIfNull(keyPair);
        _keyPair = keyPair;
        Ss58Address = keyPair.ToSs58();
    }

    /// <inheritdoc />
    public string Ss58Address { get; }

    /// <inheritdoc />
    public ValueTask<byte[]> SignAsync(ReadOnlyMemory<byte> message, CancellationToken cancellationToken)
        => ValueTask.FromResult(_keyPair.Sign(message.Span));
}

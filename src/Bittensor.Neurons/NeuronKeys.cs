using Bittensor.Actors.Chain;
using Bittensor.Chain;
using Bittensor.Core.Crypto;
using Bittensor.Core.Domain;
using Bittensor.Protocol;
using Bittensor.Wallet;

namespace Bittensor.Neurons;

/// <summary>
/// The keys a neuron acts with: its hotkey (signs axon requests, <c>serve_axon</c>, <c>set_weights</c>) and, when the
/// neuron registers or stakes itself, its coldkey. Secrets stay inside the signers; nothing here prints them.
/// </summary>
public sealed class NeuronKeys
{
    private NeuronKeys(ICallSigner hotkey, ICallSigner? coldkey, IRequestSigner requests)
    {
        Hotkey = hotkey;
        Coldkey = coldkey;
        Requests = requests;
    }

    /// <summary>Signs hotkey calls (<c>serve_axon</c>, <c>set_weights</c>).</summary>
    public ICallSigner Hotkey { get; }

    /// <summary>Signs coldkey calls (<c>burned_register</c>, <c>add_stake</c>); null when only the hotkey is unlocked.</summary>
    public ICallSigner? Coldkey { get; }

    /// <summary>Signs outgoing dendrite requests with the hotkey.</summary>
    public IRequestSigner Requests { get; }

    /// <summary>The hotkey's account.</summary>
    public AccountId HotkeyAccount => Hotkey.Account;

    /// <summary>The hotkey's SS58 address.</summary>
    public string HotkeySs58 => Hotkey.Account.ToSs58();

    /// <summary>Keys held in memory (demo, tests). The caller keeps ownership of the pairs.</summary>
    public static NeuronKeys FromPairs(Sr25519KeyPair hotkey, Sr25519KeyPair? coldkey)
    {
        ArgumentNullException.ThrowIfNull(hotkey);
        return new NeuronKeys(new KeyPairSigner(hotkey), coldkey is null ? null : new KeyPairSigner(coldkey), new KeyPairRequestSigner(hotkey));
    }

    /// <summary>Keys from an opened wallet: the hotkey must hold its secret; the coldkey may be null.</summary>
    public static NeuronKeys FromWallet(WalletKey hotkey, WalletKey? coldkey)
    {
        ArgumentNullException.ThrowIfNull(hotkey);
        if (!hotkey.HasSecret) throw new ArgumentException("the hotkey has no secret (public key only)", nameof(hotkey));
        var hot = new WalletKeySigner(hotkey);
        var requests = new DelegateRequestSigner(hotkey.Ss58Address, (m, _) => ValueTask.FromResult(hotkey.Sign(m.Span)));
        return new NeuronKeys(hot, coldkey is { HasSecret: true } ? new WalletKeySigner(coldkey) : null, requests);
    }

    private sealed class WalletKeySigner(WalletKey key) : ICallSigner
    {
        public AccountId Account { get; } = new(key.PublicKey.Span);

        public Task<SignedCall> SignAsync(ChainCall call, uint nonce, ChainIdentity chain, CancellationToken cancellationToken)
        {
            var bytes = call.ToBytes();
            var signature = key.Sign(SignedCall.SigningPayload(bytes, nonce, chain));
            return Task.FromResult(new SignedCall(bytes, Account, nonce, signature));
        }

        public Task<byte[]> SignPayloadAsync(ChainCall call, ReadOnlyMemory<byte> payload, CancellationToken cancellationToken) =>
            Task.FromResult(key.Sign(payload.Span));
    }
}

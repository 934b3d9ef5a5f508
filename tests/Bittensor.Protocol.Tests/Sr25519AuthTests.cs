using Bittensor.Core.Crypto;
using Bittensor.Protocol.Wire;
using Grpc.Core;

namespace Bittensor.Protocol.Tests;

/// <summary>Request authentication with real sr25519 keys (vectors from polkadot-js, shared/vectors/keys.json).</summary>
public sealed class Sr25519AuthTests
{
    // mnemonics[0] of keys.json: its mini secret and sr25519 public key.
    private static readonly byte[] MiniSecret = Convert.FromHexString("a5d0134527f5846c5f5b95ba0b71dfc968b5d7144273433cded2e97e3f1e98ef");
    private static readonly byte[] PublicKey = Convert.FromHexString("40e349e57f49b11612e3d4b07c820d99a310fae4c915bfce1302439252d8b94e");

    [Fact]
    public async Task Headers_signed_with_a_real_hotkey_verify_with_sr25519_and_a_replay_does_not()
    {
        using var key = Sr25519KeyPair.FromMiniSecret(MiniSecret);
        Assert.Equal(PublicKey, key.PublicKey.ToArray());
        var auth = new RequestAuth(new KeyPairRequestSigner(key));
        using var verifier = new RequestVerifier();

        var headers = await auth.CreateHeadersAsync();
        var result = verifier.Verify(headers);
        Assert.True(result.IsAccepted, result.Reason);
        Assert.Equal(Ss58.Encode(PublicKey), result.Hotkey);
        Assert.False(verifier.Verify(headers).IsAccepted);
        Assert.True(verifier.Verify(await auth.CreateHeadersAsync()).IsAccepted);
    }

    [Fact]
    public async Task A_signature_moved_to_another_hotkey_or_altered_does_not_verify()
    {
        using var key = Sr25519KeyPair.FromMiniSecret(MiniSecret);
        using var other = Sr25519KeyPair.FromMiniSecret(new byte[32]);
        var auth = new RequestAuth(new KeyPairRequestSigner(key));
        using var verifier = new RequestVerifier();
        var signature = await auth.CreateSignatureHeaderAsync();
        var parts = signature.Split("bitxx");

        var stolen = $"{parts[0]}bitxx{other.ToSs58()}bitxx{parts[2]}";
        var r1 = verifier.Verify(new Metadata { { "rpc-auth-header", "Bittensor" }, { "bittensor-signature", stolen }, { "bittensor-version", "150" } });
        Assert.False(r1.IsAccepted);
        Assert.Equal(ReturnCode.Unauthenticated, r1.Code);

        var flipped = parts[2][..^1] + (parts[2][^1] == '0' ? '1' : '0');
        var altered = $"{parts[0]}bitxx{parts[1]}bitxx{flipped}";
        Assert.False(verifier.Verify("Bittensor", altered, "150").IsAccepted);

        Assert.False(verifier.Verify("Bittensor", $"{parts[0]}bitxx5NotAnAddressbitxx{parts[2]}", "150").IsAccepted);
        Assert.True(verifier.Verify("Bittensor", signature, "150").IsAccepted);
    }

    [Fact]
    public void The_default_verifier_accepts_a_polkadot_js_signature_and_rejects_the_tampered_one()
    {
        var ss58 = Ss58.Encode(PublicKey);
        var signature = Convert.FromHexString("50c9029461d40cc89ad34ee35d66154323913cf7afa80d7ad80399839c9878488579f50110acc04054986ca49963fbd4f39d6db78512596470d9ccb483d20088");
        var tampered = Convert.FromHexString("50c9029461d40cc89ad34ee35d66154323913cf7afa80d7ad80399839c9878488579f50110acc04055986ca49963fbd4f39d6db78512596470d9ccb483d20088");
        Assert.True(Sr25519SignatureVerifier.Instance.Verify(ss58, [0x6c], signature));
        Assert.False(Sr25519SignatureVerifier.Instance.Verify(ss58, [0x6c], tampered));
    }
}

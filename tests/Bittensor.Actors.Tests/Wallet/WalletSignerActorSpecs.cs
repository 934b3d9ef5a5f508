using System.Collections.Immutable;
using Akka.Actor;
using Akka.TestKit.Xunit2;
using Bittensor.Actors.Wallet;
using Bittensor.Core.Crypto;
using Bittensor.Wallet;

namespace Bittensor.Actors.Tests.Wallet;

public sealed class WalletSignerActorSpecs() : TestKit(TestKitWaits.Hocon), IDisposable
{
    private const string HotkeyAddress = "5DXnSWV9XZ9vmC13BTNK6XKyiHmdWo8EJNFweudRNECHGpMq";
    private const string ColdkeyAddress = "5CPBWwf3QyFjLkaCzwUVtyj8rbve7demcJffZkPrF91tMYbR";

    // A hang guard, not a timing assertion: one $NACL unlock is Argon2i with 512 MiB (5.6 s on a quiet core, over a
    // minute when both cores are busy), so the guard is generous enough that a loaded machine does not fail the test.
    private static readonly TimeSpan Unlocking = TimeSpan.FromMinutes(5);

    private readonly string _root = Path.Combine(Path.GetTempPath(), "bt-signer-tests", Guid.NewGuid().ToString("N"));

    private LocalWallet MakeWallet()
    {
        var wallet = new LocalWallet("signer", "default", _root);
        var fixtures = Path.Combine(AppContext.BaseDirectory, "Fixtures", "wallet");
        Directory.CreateDirectory(Path.Combine(wallet.Directory, "hotkeys"));
        File.Copy(Path.Combine(fixtures, "key0.plain"), wallet.HotkeyPath);
        File.Copy(Path.Combine(fixtures, "key1.nacl"), wallet.ColdkeyPath);
        using (var pub = WalletKey.FromSs58(ColdkeyAddress)) wallet.CreateColdkeyPub(pub, overwrite: false);
        File.WriteAllText(Path.Combine(_root, "pw"), "correct horse battery staple\n");
        return wallet;
    }

    [Fact]
    public async Task The_signer_signs_with_unlocked_keys_only_and_refuses_a_locked_coldkey()
    {
        var signer = Sys.ActorOf(WalletSignerActor.Props(MakeWallet()));
        var payload = ImmutableArray.Create("hello bittensor"u8.ToArray());

        signer.Tell(GetPublicKeys.Instance);
        var keys = await ExpectMsgAsync<PublicKeys>();
        Assert.Equal(new PublicKeys("signer", ColdkeyAddress, HotkeyAddress, false, false), keys);

        signer.Tell(new Sign("r1", payload, KeyRole.Coldkey));
        var refused = await ExpectMsgAsync<SignFailed>();
        Assert.Equal("r1", refused.RequestId);
        Assert.Contains("locked", refused.Reason, StringComparison.Ordinal);

        signer.Tell(new Unlock(KeyRole.Hotkey));
        Assert.Equal(new Unlocked(KeyRole.Hotkey, HotkeyAddress), await ExpectMsgAsync<Unlocked>(Unlocking));
        signer.Tell(new Sign("r2", payload, KeyRole.Hotkey));
        var hotSigned = await ExpectMsgAsync<Signed>();
        Assert.Equal("r2", hotSigned.RequestId);
        Assert.Equal(64, hotSigned.Signature.Length);
        Assert.True(Sr25519.Verify(Ss58.Decode(HotkeyAddress), payload.AsSpan(), hotSigned.Signature.AsSpan()));

        signer.Tell(new Unlock(KeyRole.Coldkey, PasswordSource.FromCallback(_ => "wrong password")));
        var failed = await ExpectMsgAsync<UnlockFailed>(Unlocking);
        Assert.Contains("wrong password", failed.Reason, StringComparison.Ordinal);
        Assert.DoesNotContain("correct horse", failed.Reason, StringComparison.Ordinal);

        signer.Tell(new Unlock(KeyRole.Coldkey, PasswordSource.FromFile(Path.Combine(_root, "pw"))));
        Assert.Equal(new Unlocked(KeyRole.Coldkey, ColdkeyAddress), await ExpectMsgAsync<Unlocked>(Unlocking));
        signer.Tell(new Sign("r3", payload, KeyRole.Coldkey));
        var coldSigned = await ExpectMsgAsync<Signed>();
        Assert.True(Sr25519.Verify(Ss58.Decode(ColdkeyAddress), payload.AsSpan(), coldSigned.Signature.AsSpan()));
        Assert.Equal(Ss58.Decode(ColdkeyAddress), coldSigned.PublicKey.ToArray());

        signer.Tell(new LockKey(KeyRole.Coldkey));
        await ExpectMsgAsync(new KeyLocked(KeyRole.Coldkey));
        signer.Tell(new Sign("r4", payload, KeyRole.Coldkey));
        Assert.Equal("r4", (await ExpectMsgAsync<SignFailed>()).RequestId);
    }

    [Fact]
    public void An_unlock_message_prints_its_password_source_never_a_password()
    {
        var text = new Unlock(KeyRole.Coldkey, PasswordSource.FromCallback(_ => "s3cr3t", "terminal prompt")).ToString();
        Assert.Contains("terminal prompt", text, StringComparison.Ordinal);
        Assert.DoesNotContain("s3cr3t", text, StringComparison.Ordinal);
    }

    protected override void Dispose(bool disposing)
    {
        base.Dispose(disposing);
        if (disposing && Directory.Exists(_root)) Directory.Delete(_root, recursive: true);
    }
}

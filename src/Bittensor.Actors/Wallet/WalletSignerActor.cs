using System.Collections.Immutable;
using Akka.Actor;
using Akka.Event;
using Bittensor.Wallet;

namespace Bittensor.Actors.Wallet;

/// <summary>
/// Holds the unlocked keys of one btcli wallet and signs on request. Keys are opened only by an explicit
/// <see cref="Unlock"/> (decryption runs off the actor thread: Argon2i takes ~2 s and 512 MiB) and are zeroed on
/// <see cref="LockKey"/> and when the actor stops. No message and no log line carries a secret.
/// </summary>
public sealed class WalletSignerActor : ReceiveActor
{
    private readonly LocalWallet _wallet;
    private readonly ILoggingAdapter _log = Context.GetLogger();
    private WalletKey? _coldkey;
    private WalletKey? _hotkey;
    private string? _coldkeyPub;
    private string? _hotkeyPub;

    /// <summary>Creates the actor for <paramref name="wallet"/>; nothing is unlocked yet.</summary>
    public WalletSignerActor(LocalWallet wallet)
    {
        _wallet = wallet;
        Receive<Unlock>(HandleUnlock);
        Receive<KeyLoaded>(HandleLoaded);
        Receive<KeyLoadFailed>(f =>
        {
            _log.Warning("wallet {0}: {1} unlock failed: {2}", _wallet.Name, f.Role, f.Reason);
            f.ReplyTo.Tell(new UnlockFailed(f.Role, f.Reason));
        });
        Receive<Sign>(HandleSign);
        Receive<LockKey>(l =>
        {
            Forget(l.Role);
            Sender.Tell(new KeyLocked(l.Role));
        });
        Receive<GetPublicKeys>(_ => Sender.Tell(new PublicKeys(
            _wallet.Name,
            _coldkey?.Ss58Address ?? _coldkeyPub,
            _hotkey?.Ss58Address ?? _hotkeyPub,
            _coldkey is not null,
            _hotkey is not null)));
    }

    /// <summary>Props for the signer of <paramref name="wallet"/>.</summary>
    public static Props Props(LocalWallet wallet)
    {
        ArgumentNullException.ThrowIfNull(wallet);
        return Akka.Actor.Props.Create(() => new WalletSignerActor(wallet));
    }

    /// <summary>Props for the wallet named by <paramref name="settings"/>.</summary>
    public static Props Props(WalletSettings settings)
    {
        ArgumentNullException.ThrowIfNull(settings);
        return Props(settings.ToWallet());
    }

    /// <inheritdoc />
    protected override void PreStart()
    {
        // Public files are a few hundred bytes: reading them here is cheaper than a round trip through PipeTo.
        _coldkeyPub = TryReadPublic(_wallet.LoadColdkeyPub);
        _hotkeyPub = TryReadPublic(_wallet.LoadHotkeyPub);
        _log.Info("wallet {0}: coldkey {1}, hotkey {2} ({3})", _wallet.Name, _coldkeyPub ?? "unknown", _hotkeyPub ?? "unknown", _wallet.Hotkey);
    }

    /// <inheritdoc />
    protected override void PostStop()
    {
        Forget(KeyRole.Coldkey);
        Forget(KeyRole.Hotkey);
    }

    private void HandleUnlock(Unlock unlock)
    {
        var replyTo = Sender;
        var role = unlock.Role;
        var wallet = _wallet;
        var password = unlock.Password;
        Task.Run(() => role == KeyRole.Coldkey ? wallet.LoadColdkey(password) : wallet.LoadHotkey(password))
            .PipeTo(Self,
                success: key => new KeyLoaded(role, key, replyTo),
                failure: e => new KeyLoadFailed(role, Describe(e), replyTo));
    }

    private void HandleLoaded(KeyLoaded loaded)
    {
        if (!loaded.Key.HasSecret)
        {
            loaded.Key.Dispose();
            loaded.ReplyTo.Tell(new UnlockFailed(loaded.Role, $"{loaded.Role} file of wallet '{_wallet.Name}' holds only a public key"));
            return;
        }
        Forget(loaded.Role);
        if (loaded.Role == KeyRole.Coldkey) _coldkey = loaded.Key;
        else _hotkey = loaded.Key;
        _log.Info("wallet {0}: {1} {2} unlocked", _wallet.Name, loaded.Role, loaded.Key.Ss58Address);
        loaded.ReplyTo.Tell(new Unlocked(loaded.Role, loaded.Key.Ss58Address));
    }

    private void HandleSign(Sign sign)
    {
        var key = sign.Role == KeyRole.Coldkey ? _coldkey : _hotkey;
        if (key is null)
        {
            Sender.Tell(new SignFailed(sign.RequestId,
                $"{sign.Role.ToString().ToLowerInvariant()} of wallet '{_wallet.Name}' is locked; send Unlock({sign.Role}) first"));
            return;
        }
        var signature = key.Sign(sign.Payload.AsSpan());
        Sender.Tell(new Signed(sign.RequestId, ImmutableArray.Create(signature), ImmutableArray.Create(key.PublicKey.Span)));
    }

    private void Forget(KeyRole role)
    {
        if (role == KeyRole.Coldkey)
        {
            _coldkey?.Dispose();
            _coldkey = null;
        }
        else
        {
            _hotkey?.Dispose();
            _hotkey = null;
        }
    }

    private static string? TryReadPublic(Func<WalletKey> read)
    {
        try
        {
            using var key = read();
            return key.Ss58Address;
        }
        catch (KeyfileException)
        {
            return null;
        }
    }

    private static string Describe(Exception e)
    {
        var inner = e is AggregateException { InnerException: { } i } ? i : e;
        return inner is KeyfileException ? inner.Message : $"{inner.GetType().Name}: {inner.Message}";
    }

    // Sent only to Self: carries the opened key from the background task into the actor.
    private sealed record KeyLoaded(KeyRole Role, WalletKey Key, IActorRef ReplyTo);

    private sealed record KeyLoadFailed(KeyRole Role, string Reason, IActorRef ReplyTo);
}

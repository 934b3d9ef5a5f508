using System.Collections.Immutable;
using Bittensor.Wallet;

namespace Bittensor.Actors.Wallet;

/// <summary>Which key of the wallet a request concerns.</summary>
public enum KeyRole
{
    /// <summary>The hotkey: signs peer traffic, serve_axon and set_weights. Normally unencrypted.</summary>
    Hotkey,

    /// <summary>The coldkey: signs stake and transfer calls. Normally encrypted; unlock it explicitly.</summary>
    Coldkey,
}

/// <summary>
/// Opens a key of the wallet. The password is never in the message: <paramref name="Password"/> is where to
/// get it (a file, a descriptor, a variable, a prompt), consulted only while the key is decrypted. Null is
/// fine for unencrypted keys. Answered with <see cref="Unlocked"/> or <see cref="UnlockFailed"/>.
/// </summary>
public sealed record Unlock(KeyRole Role, PasswordSource? Password = null);

/// <summary>The key is open; signing with it now works.</summary>
public sealed record Unlocked(KeyRole Role, string Ss58Address);

/// <summary>The key could not be opened; <paramref name="Reason"/> names the file and the cause, never a secret.</summary>
public sealed record UnlockFailed(KeyRole Role, string Reason);

/// <summary>Forgets (and zeroes) an unlocked key. Answered with <see cref="KeyLocked"/>.</summary>
public sealed record LockKey(KeyRole Role);

/// <summary>The key is no longer held.</summary>
public sealed record KeyLocked(KeyRole Role);

/// <summary>
/// Signs <paramref name="Payload"/> (sr25519, context <c>substrate</c>) with an unlocked key.
/// Answered with <see cref="Signed"/> or <see cref="SignFailed"/> carrying the same <paramref name="RequestId"/>.
/// </summary>
public sealed record Sign(string RequestId, ImmutableArray<byte> Payload, KeyRole Role);

/// <summary>A 64-byte signature and the public key that verifies it.</summary>
public sealed record Signed(string RequestId, ImmutableArray<byte> Signature, ImmutableArray<byte> PublicKey);

/// <summary>Signing was refused (e.g. the key is locked).</summary>
public sealed record SignFailed(string RequestId, string Reason);

/// <summary>Asks for the wallet's public keys. Answered with <see cref="PublicKeys"/>.</summary>
public sealed record GetPublicKeys
{
    /// <summary>The single instance.</summary>
    public static readonly GetPublicKeys Instance = new();

    private GetPublicKeys() { }
}

/// <summary>
/// The wallet's addresses: from the unlocked keys, else from <c>coldkeypub.txt</c> and the hotkey's public file;
/// null when unknown.
/// </summary>
public sealed record PublicKeys(string WalletName, string? ColdkeySs58, string? HotkeySs58, bool ColdkeyUnlocked, bool HotkeyUnlocked);

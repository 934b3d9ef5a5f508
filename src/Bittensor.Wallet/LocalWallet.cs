using System.Security.Cryptography;
using Bittensor.Wallet.Internal;

namespace Bittensor.Wallet;

/// <summary>
/// A btcli wallet on disk: <c>&lt;path&gt;/&lt;name&gt;/coldkey</c>, <c>coldkeypub.txt</c>,
/// <c>hotkeys/&lt;hotkey&gt;</c> and <c>hotkeys/&lt;hotkey&gt;pub.txt</c>.
/// </summary>
public sealed class LocalWallet
{
    /// <summary>btcli's default wallet folder.</summary>
    public const string DefaultPath = "~/.bittensor/wallets/";

    /// <summary>btcli's default wallet and hotkey name.</summary>
    public const string DefaultName = "default";

    /// <summary>Environment variable overriding the wallet folder.</summary>
    public const string PathVariable = "BT_WALLET_PATH";

    /// <summary>Environment variable overriding the wallet name.</summary>
    public const string NameVariable = "BT_WALLET_NAME";

    /// <summary>Environment variable overriding the hotkey name.</summary>
    public const string HotkeyVariable = "BT_WALLET_HOTKEY";

    /// <summary>Creates the wallet handle (nothing is read or written yet).</summary>
    public LocalWallet(string name, string hotkey, string path)
    {
        Name = ValidateName(name, "wallet name");
        Hotkey = ValidateName(hotkey, "hotkey name");
        Path = System.IO.Path.GetFullPath(ExpandHome(path));
    }

    /// <summary>
    /// The wallet named by explicit values, else by <c>BT_WALLET_NAME</c>, <c>BT_WALLET_HOTKEY</c>,
    /// <c>BT_WALLET_PATH</c>, else by the given fallbacks (btcli's defaults when null).
    /// </summary>
    public static LocalWallet Resolve(string? name, string? hotkey, string? path,
        string? fallbackName = null, string? fallbackHotkey = null, string? fallbackPath = null) =>
        new(
            FirstNonEmpty(name, Environment.GetEnvironmentVariable(NameVariable), fallbackName, DefaultName),
            FirstNonEmpty(hotkey, Environment.GetEnvironmentVariable(HotkeyVariable), fallbackHotkey, DefaultName),
            FirstNonEmpty(path, Environment.GetEnvironmentVariable(PathVariable), fallbackPath, DefaultPath));

    /// <summary>The wallet's name (its folder).</summary>
    public string Name { get; }

    /// <summary>The selected hotkey's name.</summary>
    public string Hotkey { get; }

    /// <summary>The absolute folder that holds all wallets.</summary>
    public string Path { get; }

    /// <summary><c>&lt;path&gt;/&lt;name&gt;</c>.</summary>
    public string Directory => System.IO.Path.Combine(Path, Name);

    /// <summary>The coldkey file (normally encrypted).</summary>
    public string ColdkeyPath => System.IO.Path.Combine(Directory, "coldkey");

    /// <summary>The coldkey's public file.</summary>
    public string ColdkeyPubPath => System.IO.Path.Combine(Directory, "coldkeypub.txt");

    /// <summary>The selected hotkey file (normally plain).</summary>
    public string HotkeyPath => HotkeyFile(Hotkey);

    /// <summary>The selected hotkey's public file (btwallet 4.x).</summary>
    public string HotkeyPubPath => HotkeyFile(Hotkey) + "pub.txt";

    /// <summary>The path of hotkey <paramref name="hotkey"/> in this wallet.</summary>
    public string HotkeyFile(string hotkey) => System.IO.Path.Combine(Directory, "hotkeys", ValidateName(hotkey, "hotkey name"));

    /// <summary>
    /// Writes <c>coldkey</c> (encrypted with <paramref name="password"/>, or plain when null) and
    /// <c>coldkeypub.txt</c>. Refuses when either exists, unless <paramref name="overwrite"/> — or unless
    /// <c>coldkeypub.txt</c> already holds this same key. <paramref name="beforeCommit"/>, when given, runs once both
    /// files are written to their temporary names and flushed (a full disk has failed by then) and before either is
    /// renamed into place; if it throws, neither file changes (a new key's mnemonic is shown there, so no key is kept
    /// whose mnemonic could not be shown).
    /// </summary>
    public void CreateColdkey(WalletKey key, PasswordSource? password, bool overwrite, Action? beforeCommit = null)
    {
        ArgumentNullException.ThrowIfNull(key);
        if (!key.HasSecret) throw new ArgumentException("a coldkey needs its secret", nameof(key));
        if (!overwrite) RefuseExisting(ColdkeyPath);
        var pubOverwrite = overwrite || SamePublicKey(ColdkeyPubPath, key);
        if (!pubOverwrite) RefuseExisting(ColdkeyPubPath);
        WriteWithPublic(ColdkeyPath, ColdkeyPubPath, key, password, overwrite, beforeCommit);
    }

    /// <summary>Writes only <c>coldkeypub.txt</c> (btcli <c>regen_coldkeypub</c>).</summary>
    public void CreateColdkeyPub(WalletKey key, bool overwrite)
    {
        ArgumentNullException.ThrowIfNull(key);
        Keyfile.WritePublic(ColdkeyPubPath, key, overwrite || SamePublicKey(ColdkeyPubPath, key));
    }

    /// <summary>
    /// Writes the selected hotkey (plain unless <paramref name="password"/>) and its <c>pub.txt</c>;
    /// <paramref name="beforeCommit"/> as in <see cref="CreateColdkey"/>.
    /// </summary>
    public void CreateHotkey(WalletKey key, PasswordSource? password, bool overwrite, Action? beforeCommit = null)
    {
        ArgumentNullException.ThrowIfNull(key);
        if (!key.HasSecret) throw new ArgumentException("a hotkey needs its secret", nameof(key));
        if (!overwrite) RefuseExisting(HotkeyPath);
        var pubOverwrite = overwrite || SamePublicKey(HotkeyPubPath, key);
        if (!pubOverwrite) RefuseExisting(HotkeyPubPath);
        WriteWithPublic(HotkeyPath, HotkeyPubPath, key, password, overwrite, beforeCommit);
    }

    // The key and its public file are written together (AtomicFile.WriteAll): on a full disk neither changes, so a
    // wallet never holds a coldkey whose coldkeypub.txt is another key's.
    private static void WriteWithPublic(string path, string pubPath, WalletKey key, PasswordSource? password, bool overwrite, Action? beforeCommit)
    {
        var secret = Keyfile.Encode(path, key, password);
        try
        {
            AtomicFile.WriteAll([new(path, secret, overwrite), new(pubPath, Keyfile.EncodePublic(key), Overwrite: true)], beforeCommit);
        }
        finally
        {
            CryptographicOperations.ZeroMemory(secret);
        }
    }

    /// <summary>Opens the coldkey (asks <paramref name="password"/> only when the file is encrypted).</summary>
    public WalletKey LoadColdkey(PasswordSource? password) => Keyfile.Read(ColdkeyPath, password);

    /// <summary>The coldkey's public key from <c>coldkeypub.txt</c> (JSON or the 2021 bare hex).</summary>
    public WalletKey LoadColdkeyPub() => Keyfile.Read(ColdkeyPubPath);

    /// <summary>Opens the selected hotkey.</summary>
    public WalletKey LoadHotkey(PasswordSource? password) => Keyfile.Read(HotkeyPath, password);

    /// <summary>
    /// The selected hotkey's public key: from <c>&lt;hotkey&gt;pub.txt</c> when present, else from the hotkey file
    /// itself when it is plain JSON (the secret is dropped at once).
    /// </summary>
    public WalletKey LoadHotkeyPub()
    {
        if (File.Exists(HotkeyPubPath)) return Keyfile.Read(HotkeyPubPath);
        using var full = Keyfile.Read(HotkeyPath);
        return full.ToPublic();
    }

    /// <summary>Names of the hotkeys in this wallet (files under <c>hotkeys/</c> not ending in <c>pub.txt</c>), sorted.</summary>
    public IReadOnlyList<string> HotkeyNames()
    {
        var folder = System.IO.Path.Combine(Directory, "hotkeys");
        if (!System.IO.Directory.Exists(folder)) return [];
        return System.IO.Directory.EnumerateFiles(folder)
            .Select(System.IO.Path.GetFileName)
            .OfType<string>()
            .Where(n => !n.EndsWith("pub.txt", StringComparison.Ordinal) && !n.StartsWith('.'))
            .Order(StringComparer.Ordinal)
            .ToList();
    }

    /// <summary>Names of the wallets under <paramref name="path"/>, sorted.</summary>
    public static IReadOnlyList<string> List(string path)
    {
        var full = System.IO.Path.GetFullPath(ExpandHome(path));
        if (!System.IO.Directory.Exists(full)) return [];
        return System.IO.Directory.EnumerateDirectories(full)
            .Select(System.IO.Path.GetFileName)
            .OfType<string>()
            .Where(n => !n.StartsWith('.'))
            .Order(StringComparer.Ordinal)
            .ToList();
    }

    /// <summary>Expands a leading <c>~</c> to the user's home folder.</summary>
    public static string ExpandHome(string path)
    {
        ArgumentNullException.ThrowIfNull(path);
        if (path == "~" || path.StartsWith("~/", StringComparison.Ordinal))
            return System.IO.Path.Join(Environment.GetFolderPath(Environment.SpecialFolder.UserProfile), path[1..].TrimStart('/'));
        return path;
    }

    /// <inheritdoc />
    public override string ToString() => $"wallet '{Name}' (hotkey '{Hotkey}', path {Path})";

    private static void RefuseExisting(string path)
    {
        if (File.Exists(path))
            throw new KeyfileException(path, KeyfileError.AlreadyExists, "already exists (use overwrite to replace it)");
    }

    private static bool SamePublicKey(string path, WalletKey key)
    {
        if (!File.Exists(path)) return false;
        try
        {
            using var existing = Keyfile.Read(path);
            return existing.PublicKey.Span.SequenceEqual(key.PublicKey.Span);
        }
        catch (KeyfileException)
        {
            return false;
        }
    }

    private static string ValidateName(string name, string what)
    {
        ArgumentNullException.ThrowIfNull(name);
        if (name.Length == 0 || name is "." or ".." || name.IndexOfAny(['/', '\\', '\0']) >= 0)
            throw new ArgumentException($"{what} '{name}' is not a valid file name", nameof(name));
        return name;
    }

    private static string FirstNonEmpty(params string?[] values) => values.First(v => !string.IsNullOrEmpty(v))!;
}

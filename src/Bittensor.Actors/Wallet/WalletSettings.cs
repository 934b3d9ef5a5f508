using Akka.Configuration;
using Bittensor.Wallet;

namespace Bittensor.Actors.Wallet;

/// <summary>
/// The <c>bittensor.wallet { name, hotkey, path }</c> section: which btcli wallet this process uses.
/// Read once at start; command-line flags override it (see <see cref="WithOverrides"/>).
/// </summary>
/// <param name="Name">Wallet name (folder under <paramref name="Path"/>).</param>
/// <param name="Hotkey">Hotkey name (file under <c>hotkeys/</c>).</param>
/// <param name="Path">Folder holding all wallets; <c>~</c> is expanded when the wallet is opened.</param>
public sealed record WalletSettings(string Name, string Hotkey, string Path)
{
    /// <summary>The name of the embedded reference configuration resource.</summary>
    public const string ReferenceResource = "Bittensor.Actors.bittensor.conf";

    /// <summary>The settings of the embedded reference configuration (environment overrides applied).</summary>
    public static WalletSettings Default => Create(ReferenceConfig());

    /// <summary>
    /// Reads <c>bittensor.wallet</c> from <paramref name="config"/>; the btcli variables <c>BT_WALLET_NAME</c>,
    /// <c>BT_WALLET_HOTKEY</c> and <c>BT_WALLET_PATH</c>, when set, take precedence (as in btcli). Validated.
    /// </summary>
    public static WalletSettings Create(Config config)
    {
        ArgumentNullException.ThrowIfNull(config);
        var section = config.GetConfig("bittensor.wallet");
        if (section is null || section.IsEmpty)
            throw new ConfigurationException("missing HOCON section bittensor.wallet { name, hotkey, path }");
        // Done here rather than with HOCON ${?VAR}: Akka's HOCON resolves an unset optional variable to "".
        return new WalletSettings(
            Env(LocalWallet.NameVariable) ?? section.GetString("name", LocalWallet.DefaultName),
            Env(LocalWallet.HotkeyVariable) ?? section.GetString("hotkey", LocalWallet.DefaultName),
            Env(LocalWallet.PathVariable) ?? section.GetString("path", LocalWallet.DefaultPath)).Validate();
    }

    private static string? Env(string name) => Environment.GetEnvironmentVariable(name) is { Length: > 0 } v ? v : null;

    /// <summary>Throws <see cref="ConfigurationException"/> when a value cannot name a wallet file.</summary>
    public WalletSettings Validate()
    {
        CheckName(Name, "bittensor.wallet.name");
        CheckName(Hotkey, "bittensor.wallet.hotkey");
        if (string.IsNullOrWhiteSpace(Path)) throw new ConfigurationException("bittensor.wallet.path must not be empty");
        return this;
    }

    /// <summary>These settings with any non-empty command-line values taking precedence.</summary>
    public WalletSettings WithOverrides(string? name, string? hotkey, string? path) =>
        new WalletSettings(
            string.IsNullOrEmpty(name) ? Name : name,
            string.IsNullOrEmpty(hotkey) ? Hotkey : hotkey,
            string.IsNullOrEmpty(path) ? Path : path).Validate();

    /// <summary>The wallet these settings name.</summary>
    public LocalWallet ToWallet() => new(Name, Hotkey, Path);

    /// <summary>The embedded <c>hocon/bittensor.conf</c>.</summary>
    public static Config ReferenceConfig()
    {
        using var stream = typeof(WalletSettings).Assembly.GetManifestResourceStream(ReferenceResource)
            ?? throw new ConfigurationException($"embedded resource {ReferenceResource} is missing");
        using var reader = new StreamReader(stream);
        return ConfigurationFactory.ParseString(reader.ReadToEnd());
    }

    private static void CheckName(string value, string key)
    {
        if (string.IsNullOrWhiteSpace(value) || value is "." or ".." || value.IndexOfAny(['/', '\\', '\0']) >= 0)
            throw new ConfigurationException($"{key} = '{value}' is not a valid file name");
    }
}

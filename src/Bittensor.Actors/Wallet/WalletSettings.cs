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
    /// <summary>HOCON path of the section these settings are read from.</summary>
    public const string SectionPath = "bittensor.wallet";

    /// <summary>The reference configuration's values with the btcli environment variables applied.</summary>
    public static WalletSettings Default => Create(BittensorRuntime.Section(BittensorRuntime.ReferenceConfig, SectionPath));

    /// <summary>
    /// Reads the <c>bittensor.wallet</c> section (every key required); the btcli variables <c>BT_WALLET_NAME</c>,
    /// <c>BT_WALLET_HOTKEY</c> and <c>BT_WALLET_PATH</c>, when set, take precedence (as in btcli). Validated.
    /// </summary>
    /// <exception cref="ConfigurationException">A key is missing or invalid; the message names it.</exception>
    public static WalletSettings Create(Config section)
    {
        var c = new HoconSection(section, SectionPath);
        // Done here rather than with HOCON ${?VAR}: Akka's HOCON resolves an unset optional variable to "".
        return new WalletSettings(
            Env(LocalWallet.NameVariable) ?? c.String("name"),
            Env(LocalWallet.HotkeyVariable) ?? c.String("hotkey"),
            Env(LocalWallet.PathVariable) ?? c.String("path")).Validate();
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

    private static void CheckName(string value, string key)
    {
        if (string.IsNullOrWhiteSpace(value) || value is "." or ".." || value.IndexOfAny(['/', '\\', '\0']) >= 0)
            throw new ConfigurationException($"{key} = '{value}' is not a valid file name");
    }
}

using System.CommandLine;
using System.Text;
using Bittensor.Actors.Chain;
using Bittensor.Actors.Wallet;
using Bittensor.Core.Domain;
using Bittensor.Wallet;

namespace Bittensor.Cli.Chain;

/// <summary>
/// The dotted flags chain verbs share (<c>--subtensor.network</c>, <c>--localnet.path</c>, <c>--wallet.*</c>,
/// <c>--password-file</c>, <c>--no_password</c>). Each verb gets its own instances, added explicitly.
/// </summary>
internal sealed class ChainOptions
{
    public Option<string?> Network { get; } = new("--subtensor.network")
    {
        Description = "Chain: local (a node at ws://127.0.0.1:9944 when one answers, else the embedded localnet at --localnet.path), finney, test, or a custom name with --subtensor.chain_endpoint (default bittensor.subtensor.network: local)",
    };

    public Option<string?> ChainEndpoint { get; } = new("--subtensor.chain_endpoint")
    {
        Description = "WebSocket JSON-RPC endpoint of a Substrate node, e.g. ws://127.0.0.1:9944 (a node of our localnet or a subtensor)",
    };

    public Option<string?> LocalnetPath { get; } = new("--localnet.path")
    {
        Description = "Localnet state folder (default bittensor.localnet.path: ~/.bittensor/localnet/default)",
    };

    public Option<FileInfo?> Config { get; private set; } = null!;

    public Option<string?> WalletName { get; } = new("--wallet.name", "--wallet-name", "--wallet_name") { Description = "Wallet name (default: default)" };

    public Option<string?> WalletHotkey { get; } = new("--wallet.hotkey", "--wallet-hotkey", "--wallet_hotkey") { Description = "Hotkey name (default: default)" };

    public Option<string?> WalletPath { get; } = new("--wallet.path", "--wallet-path", "--wallet_path") { Description = "Wallets folder (default: ~/.bittensor/wallets/)" };

    public Option<FileInfo?> PasswordFile { get; } = new("--password-file", "--password_file")
    {
        Description = "Read the coldkey password from this file (first line) instead of prompting",
    };

    public Option<bool> NoPassword { get; } = new("--no_password", "--no-password")
    {
        Description = "Never prompt for a password (the keyfile must be unencrypted or the password given otherwise)",
    };

    /// <summary>Adds the chain flags (and the wallet flags when <paramref name="wallet"/>) to <paramref name="command"/>.</summary>
    public Command AddTo(Command command, bool wallet)
    {
        command.Options.Add(Network);
        command.Options.Add(ChainEndpoint);
        command.Options.Add(LocalnetPath);
        Config = CliConfig.AddTo(command);
        if (wallet)
        {
            command.Options.Add(WalletName);
            command.Options.Add(WalletHotkey);
            command.Options.Add(WalletPath);
            command.Options.Add(PasswordFile);
            command.Options.Add(NoPassword);
        }
        return command;
    }

    /// <summary>The layered configuration of this verb: chain and wallet flags over --config over the reference.</summary>
    public Akka.Configuration.Config Hocon(ParseResult p) => CliConfig.Load(p, Config,
    [
        ("bittensor.subtensor.network", p.GetValue(Network)),
        ("bittensor.subtensor.chain_endpoint", p.GetValue(ChainEndpoint)),
        ("bittensor.localnet.path", p.GetValue(LocalnetPath)),
    ]);

    public Task<ChainSession> OpenChainAsync(ParseResult p, CancellationToken ct)
    {
        var hocon = Hocon(p);
        return ChainSession.OpenAsync(
            CliConfig.Settings(hocon, SubtensorSettings.SectionPath, SubtensorSettings.Create),
            CliConfig.Settings(hocon, LocalnetSettings.SectionPath, LocalnetSettings.Create), ct);
    }

    public string LocalnetFolder(ParseResult p)
    {
        var hocon = Hocon(p);
        var network = CliConfig.Settings(hocon, SubtensorSettings.SectionPath, SubtensorSettings.Create);
        if (!network.IsLocal) throw new CliException($"this verb works on the localnet only, not on '{network.Network}'");
        return CliConfig.Settings(hocon, LocalnetSettings.SectionPath, LocalnetSettings.Create).Path;
    }

    public Bittensor.Wallet.LocalWallet Wallet(ParseResult p) =>
        // Flags beat BT_WALLET_* beat --config beat the reference (btcli's order for wallets).
        CliConfig.Settings(Hocon(p), WalletSettings.SectionPath, WalletSettings.Create)
            .WithOverrides(p.GetValue(WalletName), p.GetValue(WalletHotkey), p.GetValue(WalletPath)).ToWallet();

    /// <summary>The coldkey's public key (from <c>coldkeypub.txt</c>; no password needed).</summary>
    public AccountId ColdkeyPub(ParseResult p)
    {
        var wallet = Wallet(p);
        using var key = Load(() => wallet.LoadColdkeyPub(), $"coldkeypub of {wallet}");
        return new AccountId(key.PublicKey.Span);
    }

    /// <summary>The selected hotkey's public key.</summary>
    public AccountId HotkeyPub(ParseResult p)
    {
        var wallet = Wallet(p);
        using var key = Load(() => wallet.LoadHotkeyPub(), $"hotkey of {wallet}");
        return new AccountId(key.PublicKey.Span);
    }

    /// <summary>The coldkey with its secret (decrypting it with the password source the flags name). Dispose it.</summary>
    public WalletKey Coldkey(ParseResult p)
    {
        var wallet = Wallet(p);
        return Load(() => wallet.LoadColdkey(Passwords(p)), $"coldkey of {wallet}");
    }

    /// <summary>The hotkey with its secret. Dispose it.</summary>
    public WalletKey Hotkey(ParseResult p)
    {
        var wallet = Wallet(p);
        return Load(() => wallet.LoadHotkey(Passwords(p)), $"hotkey of {wallet}");
    }

    private PasswordSource? Passwords(ParseResult p)
    {
        if (p.GetValue(PasswordFile) is { } file) return PasswordSource.FromFile(file.FullName);
        var env = PasswordSource.ForColdkey();
        if (p.GetValue(NoPassword) || Console.IsInputRedirected) return env;
        return PasswordSource.FirstOf(env, PasswordSource.FromCallback(Prompt, "terminal prompt"));
    }

    private static string? Prompt(string keyfilePath)
    {
        Console.Error.Write($"Password for {keyfilePath}: ");
        var sb = new StringBuilder();
        while (true)
        {
            var k = Console.ReadKey(intercept: true);
            if (k.Key == ConsoleKey.Enter) break;
            if (k.Key == ConsoleKey.Backspace)
            {
                if (sb.Length > 0) sb.Length--;
                continue;
            }
            sb.Append(k.KeyChar);
        }
        Console.Error.WriteLine();
        return sb.ToString();
    }

    private static WalletKey Load(Func<WalletKey> load, string what)
    {
        try
        {
            return load();
        }
        catch (KeyfileException e)
        {
            throw new CliException($"cannot read the {what}: {e.Message}");
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException or FormatException or ArgumentException)
        {
            throw new CliException($"cannot read the {what}: {e.Message}");
        }
    }
}

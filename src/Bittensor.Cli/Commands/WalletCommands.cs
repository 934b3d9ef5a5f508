using System.CommandLine;
using System.Security.Cryptography;
using System.Text;
using System.Text.Json;
using Akka.Configuration;
using Bittensor.Actors.Wallet;
using Bittensor.Core;
using Bittensor.Core.Crypto;
using Bittensor.Wallet;
using Spectre.Console;

namespace Bittensor.Cli.Commands;

/// <summary>
/// <c>btcli wallet ...</c> verbs: create, restore, list, inspect, sign and verify with btcli-compatible wallets.
/// Today's btcli names (<c>new_coldkey</c>, <c>regen_coldkey</c> …) with the hyphenated spellings as aliases.
/// </summary>
internal static class WalletCommands
{
    private static readonly Option<string?> WalletName = new("--wallet.name", "--wallet-name", "--wallet_name")
    {
        Description = "Wallet name (folder under --wallet.path); default from bittensor.wallet.name / BT_WALLET_NAME, else \"default\"",
        Recursive = true,
    };

    private static readonly Option<string?> WalletHotkey = new("--wallet.hotkey", "--wallet-hotkey", "--wallet_hotkey")
    {
        Description = "Hotkey name (file under hotkeys/); default from bittensor.wallet.hotkey / BT_WALLET_HOTKEY, else \"default\"",
        Recursive = true,
    };

    private static readonly Option<string?> WalletPath = new("--wallet.path", "--wallet-path", "--wallet_path")
    {
        Description = "Folder holding the wallets; default from bittensor.wallet.path / BT_WALLET_PATH, else ~/.bittensor/wallets/",
        Recursive = true,
    };

    private static readonly Option<FileInfo?> Config = new("--config")
    {
        Description = "HOCON file with a bittensor { } section (keys as in hocon/bittensor.conf); flags override it",
        Recursive = true,
    };

    private static readonly Option<bool> NoPassword = new("--no_password", "--no-password")
    {
        Description = "Write the coldkey unencrypted (for scripts and tests)",
        Recursive = true,
    };

    private static readonly Option<bool> Overwrite = new("--overwrite")
    {
        Description = "Replace existing key files",
        Recursive = true,
    };

    private static readonly Option<string?> PasswordFile = new("--password-file", "--password_file")
    {
        Description = "Read the coldkey password from this file (one trailing newline ignored)",
        Recursive = true,
    };

    private static readonly Option<int?> PasswordFd = new("--password-fd", "--password_fd")
    {
        Description = "Read the coldkey password from this open file descriptor (e.g. 3 with 3<secret)",
        Recursive = true,
    };

    private static readonly Option<int> Words = new("--n_words", "--n-words")
    {
        Description = "Words in the new mnemonic: 12, 15, 18, 21 or 24",
        DefaultValueFactory = _ => 12,
    };

    /// <summary>Adds the <c>wallet</c> command and its verbs to <paramref name="root"/>.</summary>
    public static void Register(RootCommand root)
    {
        var wallet = new Command("wallet", "Create, restore, list and use btcli-compatible wallets");
        wallet.Aliases.Add("w");
        foreach (var option in new Option[] { WalletName, WalletHotkey, WalletPath, Config, NoPassword, Overwrite, PasswordFile, PasswordFd })
            wallet.Options.Add(option);

        wallet.Subcommands.Add(NewKey("new_coldkey", "new-coldkey", "Create a new coldkey (encrypted unless --no_password); shows its mnemonic once", cold: true));
        wallet.Subcommands.Add(NewKey("new_hotkey", "new-hotkey", "Create a new hotkey (unencrypted, as btcli does); shows its mnemonic once", cold: false));
        wallet.Subcommands.Add(Create());
        wallet.Subcommands.Add(RegenKey("regen_coldkey", "regen-coldkey", "Restore a coldkey from --mnemonic, --seed or --uri", cold: true));
        wallet.Subcommands.Add(RegenKey("regen_hotkey", "regen-hotkey", "Restore a hotkey from --mnemonic, --seed or --uri", cold: false));
        wallet.Subcommands.Add(RegenColdkeyPub());
        wallet.Subcommands.Add(List());
        wallet.Subcommands.Add(Inspect());
        wallet.Subcommands.Add(SignCommand());
        wallet.Subcommands.Add(VerifyCommand());
        root.Subcommands.Add(wallet);
    }

    private static Command NewKey(string name, string alias, string description, bool cold)
    {
        var command = new Command(name, description) { Words };
        command.Aliases.Add(alias);
        command.SetAction(result => Run(() =>
        {
            var words = result.GetValue(Words);
            if (words is not (12 or 15 or 18 or 21 or 24))
                throw new CliException($"--n_words must be 12, 15, 18, 21 or 24 (got {words})");
            var wallet = ResolveWallet(result);
            using var key = WalletKey.Generate(words);
            var output = result.InvocationConfiguration.Output;
            var label = cold ? "coldkey" : "hotkey";
            // The mnemonic is shown between staging the files and renaming them into place: no key is kept whose
            // mnemonic could not be shown, and none is shown for a key a full disk kept from being written.
            Store(result, wallet, key, cold, () => ShowMnemonic(output, label, key));
            output.WriteLine($"{label} {key.Ss58Address} written to {(cold ? wallet.ColdkeyPath : wallet.HotkeyPath)}");
            return 0;
        }));
        return command;
    }

    /// <summary>
    /// <c>wallet create</c> (bittensor-cli's verb): a new coldkey and a new hotkey in one go, each with its mnemonic
    /// shown once. An existing coldkey is kept (only the hotkey is created) unless <c>--overwrite</c>.
    /// </summary>
    private static Command Create()
    {
        var command = new Command("create", "Create a new coldkey (encrypted unless --no_password) and a new hotkey; shows both mnemonics once") { Words };
        command.SetAction(result => Run(() =>
        {
            var words = result.GetValue(Words);
            if (words is not (12 or 15 or 18 or 21 or 24))
                throw new CliException($"--n_words must be 12, 15, 18, 21 or 24 (got {words})");
            var wallet = ResolveWallet(result);
            var output = result.InvocationConfiguration.Output;
            if (File.Exists(wallet.ColdkeyPath) && !result.GetValue(Overwrite))
            {
                output.WriteLine($"coldkey kept: {wallet.ColdkeyPath} exists (--overwrite replaces it)");
            }
            else
            {
                using var cold = WalletKey.Generate(words);
                Store(result, wallet, cold, cold: true, () => ShowMnemonic(output, "coldkey", cold));
                output.WriteLine($"coldkey {cold.Ss58Address} written to {wallet.ColdkeyPath}");
            }
            using var hot = WalletKey.Generate(words);
            try
            {
                Store(result, wallet, hot, cold: false, () => ShowMnemonic(output, "hotkey", hot));
            }
            catch (KeyfileException e) when (e.Error == KeyfileError.Io)
            {
                // The coldkey (if one was written above) stays: its mnemonic has been shown; say how to finish.
                throw new CliException($"{e.Message}; the coldkey is in place, `btcli wallet new_hotkey` adds the hotkey once the disk has room");
            }
            output.WriteLine($"hotkey {hot.Ss58Address} written to {wallet.HotkeyPath}");
            return 0;
        }));
        return command;
    }

    private static Command RegenKey(string name, string alias, string description, bool cold)
    {
        var mnemonic = new Option<string[]>("--mnemonic") { Description = "The mnemonic words (quoted, or as separate words)", AllowMultipleArgumentsPerToken = true };
        var seed = new Option<string?>("--seed") { Description = "The 32-byte seed (secretSeed) as 0x + 64 hex digits" };
        var uri = new Option<string?>("--uri") { Description = "A Substrate secret URI, e.g. //Alice or \"<mnemonic>//hard/soft\"" };
        var command = new Command(name, description) { mnemonic, seed, uri };
        command.Aliases.Add(alias);
        command.SetAction(result => Run(() =>
        {
            var words = result.GetValue(mnemonic);
            var phrase = words is { Length: > 0 } ? string.Join(' ', words) : null;
            var seedHex = result.GetValue(seed);
            var suri = result.GetValue(uri);
            var given = (phrase is null ? 0 : 1) + (seedHex is null ? 0 : 1) + (suri is null ? 0 : 1);
            if (given != 1) throw new CliException("give exactly one of --mnemonic, --seed or --uri");

            var wallet = ResolveWallet(result);
            using var key = phrase is not null ? FromMnemonic(phrase) : seedHex is not null ? FromSeed(seedHex) : FromUri(suri!);
            Store(result, wallet, key, cold);
            result.InvocationConfiguration.Output.WriteLine(
                $"{(cold ? "coldkey" : "hotkey")} {key.Ss58Address} written to {(cold ? wallet.ColdkeyPath : wallet.HotkeyPath)}");
            return 0;
        }));
        return command;
    }

    private static Command RegenColdkeyPub()
    {
        var ss58 = new Option<string?>("--ss58", "--ss58_address", "--ss58-address") { Description = "The coldkey's SS58 address" };
        var publicKey = new Option<string?>("--public_key", "--public-key", "--pubkey") { Description = "The coldkey's public key as 0x + 64 hex digits" };
        var command = new Command("regen_coldkeypub", "Write coldkeypub.txt from an SS58 address or public key") { ss58, publicKey };
        command.Aliases.Add("regen-coldkeypub");
        command.SetAction(result => Run(() =>
        {
            var address = result.GetValue(ss58);
            var hex = result.GetValue(publicKey);
            if ((address is null) == (hex is null)) throw new CliException("give exactly one of --ss58 or --public_key");
            using var key = address is not null ? WalletKey.FromSs58(address) : FromPublicHex(hex!);
            var wallet = ResolveWallet(result);
            wallet.CreateColdkeyPub(key, result.GetValue(Overwrite));
            result.InvocationConfiguration.Output.WriteLine($"coldkeypub {key.Ss58Address} written to {wallet.ColdkeyPubPath}");
            return 0;
        }));
        return command;
    }

    private static Command List()
    {
        var command = new Command("list", "Show every wallet under --wallet.path with its coldkey address and hotkeys");
        command.SetAction(result => Run(() =>
        {
            var path = ResolveWallet(result).Path;
            var wallets = LocalWallet.List(path).Select(name => Describe(new LocalWallet(name, LocalWallet.DefaultName, path))).ToList();
            var output = result.InvocationConfiguration.Output;
            if (result.GetValue(CliApp.Json))
            {
                output.WriteLine(JsonSerializer.Serialize(new { path, wallets }, CliApp.JsonOptions));
                return 0;
            }
            var tree = new Tree(Markup.Escape($"Wallets ({path})"));
            foreach (var w in wallets)
            {
                var node = tree.AddNode(Markup.Escape($"{w.name} (coldkeypub {w.coldkeypub ?? "?"})"));
                foreach (var h in w.hotkeys) node.AddNode(Markup.Escape($"{h.name} ({h.ss58 ?? "encrypted, no pub file"})"));
            }
            if (wallets.Count == 0) tree.AddNode("(no wallets)");
            ConsoleFor(output).Write(tree);
            return 0;
        }));
        return command;
    }

    private static Command Inspect()
    {
        var command = new Command("inspect", "Show the selected wallet: files, formats and addresses (no secrets)");
        command.SetAction(result => Run(() =>
        {
            var wallet = ResolveWallet(result);
            if (!Directory.Exists(wallet.Directory)) throw new CliException($"wallet '{wallet.Name}' does not exist under {wallet.Path}");
            var info = Describe(wallet);
            var format = File.Exists(wallet.ColdkeyPath) ? Keyfile.DetectFormat(wallet.ColdkeyPath) : (KeyfileFormat?)null;
            var coldkeyFormat = format switch
            {
                null => null,
                KeyfileFormat.Json => "plain JSON (unencrypted)",
                KeyfileFormat.Nacl => "$NACL (Argon2i + XSalsa20-Poly1305)",
                KeyfileFormat.AnsibleVault => "Ansible Vault (legacy)",
                KeyfileFormat.Fernet => "Fernet (legacy)",
                KeyfileFormat.PublicKeyHex => "public key only",
                _ => "unknown format",
            };
            var output = result.InvocationConfiguration.Output;
            if (result.GetValue(CliApp.Json))
            {
                output.WriteLine(JsonSerializer.Serialize(new
                {
                    info.name,
                    path = wallet.Directory,
                    info.coldkeypub,
                    coldkey = coldkeyFormat,
                    coldkey_encrypted = format?.IsEncrypted() ?? false,
                    info.hotkeys,
                }, CliApp.JsonOptions));
                return 0;
            }
            var table = new Table().AddColumn("key").AddColumn("address").AddColumn("file");
            table.AddRow("coldkey", Markup.Escape(info.coldkeypub ?? "?"), Markup.Escape($"{wallet.ColdkeyPath} ({coldkeyFormat ?? "missing"})"));
            foreach (var h in info.hotkeys)
                table.AddRow(Markup.Escape($"hotkey {h.name}"), Markup.Escape(h.ss58 ?? "?"), Markup.Escape(wallet.HotkeyFile(h.name)));
            ConsoleFor(output).Write(table);
            return 0;
        }));
        return command;
    }

    private static Command SignCommand()
    {
        var message = new Option<string>("--message") { Description = "The text to sign (its UTF-8 bytes)", Required = true };
        var useHotkey = new Option<bool>("--use_hotkey", "--use-hotkey") { Description = "Sign with the hotkey instead of the coldkey" };
        var command = new Command("sign", "Sign a message with the coldkey (or --use_hotkey); prints the sr25519 signature as 0x-hex") { message, useHotkey };
        command.SetAction(result => Run(() =>
        {
            var wallet = ResolveWallet(result);
            var hot = result.GetValue(useHotkey);
            using var key = hot ? wallet.LoadHotkey(ReadPassword(result, hotkey: true)) : wallet.LoadColdkey(ReadPassword(result, hotkey: false));
            var signature = key.Sign(Encoding.UTF8.GetBytes(result.GetValue(message)!));
            result.InvocationConfiguration.Output.WriteLine(Hex.Encode(signature));
            return 0;
        }));
        return command;
    }

    private static Command VerifyCommand()
    {
        var message = new Option<string>("--message") { Description = "The signed text", Required = true };
        var signature = new Option<string>("--signature") { Description = "The signature, 0x + 128 hex digits", Required = true };
        var ss58 = new Option<string?>("--ss58", "--address") { Description = "The signer's SS58 address (default: the selected wallet's coldkey)" };
        var publicKey = new Option<string?>("--public_key", "--public-key") { Description = "The signer's public key as 0x + 64 hex digits" };
        var command = new Command("verify", "Verify an sr25519 signature; exit code 0 only when it is valid") { message, signature, ss58, publicKey };
        command.SetAction(result => Run(() =>
        {
            if (!Hex.TryDecode(result.GetValue(signature), out var sig) || sig.Length != 64)
                throw new CliException("--signature must be 0x + 128 hex digits");
            var address = result.GetValue(ss58);
            var hex = result.GetValue(publicKey);
            if (address is not null && hex is not null) throw new CliException("give --ss58 or --public_key, not both");
            using var key = address is not null ? WalletKey.FromSs58(address)
                : hex is not null ? FromPublicHex(hex)
                : ResolveWallet(result).LoadColdkeyPub();
            var text = Encoding.UTF8.GetBytes(result.GetValue(message)!);
            // btcli (btwallet Keypair.verify) also accepts polkadot-js signRaw signatures over <Bytes>message</Bytes>.
            var wrapped = Encoding.UTF8.GetBytes($"<Bytes>{result.GetValue(message)}</Bytes>");
            var valid = key.Verify(text, sig) || key.Verify(wrapped, sig);
            var output = result.InvocationConfiguration.Output;
            if (result.GetValue(CliApp.Json))
                output.WriteLine(JsonSerializer.Serialize(new { valid, ss58 = key.Ss58Address }, CliApp.JsonOptions));
            else
                output.WriteLine(valid ? $"valid signature by {key.Ss58Address}" : $"INVALID signature for {key.Ss58Address}");
            return valid ? 0 : CliApp.UserError;
        }));
        return command;
    }

    // ---- helpers ----

    private sealed record HotkeyInfo(string name, string? ss58);

    private sealed record WalletInfo(string name, string? coldkeypub, IReadOnlyList<HotkeyInfo> hotkeys);

    private static WalletInfo Describe(LocalWallet wallet)
    {
        var hotkeys = wallet.HotkeyNames()
            .Select(h => new HotkeyInfo(h, TryAddress(() => new LocalWallet(wallet.Name, h, wallet.Path).LoadHotkeyPub())))
            .ToList();
        return new WalletInfo(wallet.Name, TryAddress(wallet.LoadColdkeyPub), hotkeys);
    }

    private static string? TryAddress(Func<WalletKey> read)
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

    private static LocalWallet ResolveWallet(ParseResult result)
    {
        try
        {
            // Flags beat BT_WALLET_* beat --config beat the reference (btcli's order for wallets).
            return CliConfig.Settings(CliConfig.Load(result, Config, []), WalletSettings.SectionPath, WalletSettings.Create)
                .WithOverrides(result.GetValue(WalletName), result.GetValue(WalletHotkey), result.GetValue(WalletPath))
                .ToWallet();
        }
        catch (ConfigurationException e)
        {
            throw new CliException(e.Message);
        }
    }

    private static void Store(ParseResult result, LocalWallet wallet, WalletKey key, bool cold, Action? beforeCommit = null)
    {
        var overwrite = result.GetValue(Overwrite);
        if (cold)
        {
            var password = result.GetValue(NoPassword) ? null : NewPassword(result);
            wallet.CreateColdkey(key, password, overwrite, beforeCommit);
        }
        else
        {
            // Hotkeys are unencrypted, as btcli writes them: the peer must sign without a human present.
            wallet.CreateHotkey(key, null, overwrite, beforeCommit);
        }
    }

    /// <summary>
    /// Shows a new key's mnemonic, once, on purpose: it is the only way to restore the key; it is never logged. Runs
    /// before the key's files are renamed into place: when standard output cannot take it (a full disk, a closed pipe),
    /// the key is not written (exit 74).
    /// </summary>
    private static void ShowMnemonic(TextWriter output, string label, WalletKey key)
    {
        try
        {
            output.WriteLine($"The mnemonic below restores {label} {key.Ss58Address}. Write it down and keep it secret; it is not shown again:");
            output.WriteLine($"  {key.RevealMnemonic()}");
            output.Flush();
        }
        catch (Exception e) when (e is IOException or ArgumentOutOfRangeException or ObjectDisposedException)
        {
            // .NET reports EFBIG as ArgumentOutOfRangeException; the exception's text never holds what was being written.
            throw new CliException($"the new {label}'s mnemonic could not be shown (standard output: " +
                $"{(e is ArgumentOutOfRangeException ? "file too large" : e.Message)}); the {label} was not written", CliApp.OutputError);
        }
    }

    /// <summary>Explicit flags, then BT_COLDKEY_PASSWORD, then an interactive prompt asked twice.</summary>
    private static PasswordSource NewPassword(ParseResult result)
    {
        if (ExplicitPassword(result) is { } explicitSource) return explicitSource;
        var fromEnv = PasswordSource.FromEnvironment(PasswordSource.ColdkeyPasswordVariable);
        if (!Interactive(result)) return PasswordSource.FirstOf(fromEnv, NoSource("encrypt the coldkey"));
        return PasswordSource.FirstOf(fromEnv, PasswordSource.FromCallback(path =>
        {
            var first = AnsiConsole.Prompt(new TextPrompt<string>($"Password to encrypt {Markup.Escape(path)}:").Secret());
            var second = AnsiConsole.Prompt(new TextPrompt<string>("Repeat the password:").Secret());
            if (first != second) throw new CliException("the passwords do not match");
            return first;
        }, "terminal prompt"));
    }

    /// <summary>Explicit flags, then BT_COLDKEY_PASSWORD / BT_HOTKEY_PASSWORD, then btwallet's BT_PW_*, then a prompt.</summary>
    private static PasswordSource ReadPassword(ParseResult result, bool hotkey)
    {
        if (ExplicitPassword(result) is { } explicitSource) return explicitSource;
        var fromEnv = hotkey ? PasswordSource.ForHotkey() : PasswordSource.ForColdkey();
        if (!Interactive(result)) return PasswordSource.FirstOf(fromEnv, NoSource("open the key"));
        return PasswordSource.FirstOf(fromEnv, PasswordSource.FromCallback(
            path => AnsiConsole.Prompt(new TextPrompt<string>($"Password for {Markup.Escape(path)}:").Secret()), "terminal prompt"));
    }

    private static PasswordSource? ExplicitPassword(ParseResult result)
    {
        var file = result.GetValue(PasswordFile);
        var fd = result.GetValue(PasswordFd);
        if (file is not null && fd is not null) throw new CliException("give --password-file or --password-fd, not both");
        return file is not null ? PasswordSource.FromFile(file) : fd is not null ? PasswordSource.FromFileDescriptor(fd.Value) : null;
    }

    private static PasswordSource NoSource(string purpose) => PasswordSource.FromCallback(_ => throw new CliException(
        $"a password is needed to {purpose}: give --password-file or --password-fd, set {PasswordSource.ColdkeyPasswordVariable}, run in a terminal, or use --no_password"),
        "no interactive terminal");

    private static bool Interactive(ParseResult result) =>
        ReferenceEquals(result.InvocationConfiguration.Output, Console.Out) && !Console.IsInputRedirected && !Console.IsOutputRedirected;

    private static IAnsiConsole ConsoleFor(TextWriter output)
    {
        if (ReferenceEquals(output, Console.Out) && !Console.IsOutputRedirected) return AnsiConsole.Console;
        var console = AnsiConsole.Create(new AnsiConsoleSettings
        {
            Ansi = AnsiSupport.No,
            ColorSystem = ColorSystemSupport.NoColors,
            Interactive = InteractionSupport.No,
            Out = new AnsiConsoleOutput(output),
        });
        console.Profile.Width = 200;
        return console;
    }

    private static WalletKey FromMnemonic(string phrase)
    {
        try { return WalletKey.FromMnemonic(phrase); }
        catch (FormatException e) { throw new CliException($"--mnemonic is not a valid BIP39 mnemonic: {e.Message}"); }
    }

    private static WalletKey FromSeed(string hex)
    {
        if (!Hex.TryDecode(hex, out var bytes) || bytes.Length != 32) throw new CliException("--seed must be 0x + 64 hex digits");
        try { return WalletKey.FromMiniSecret(bytes); }
        finally { CryptographicOperations.ZeroMemory(bytes); }
    }

    private static WalletKey FromUri(string uri)
    {
        try { return WalletKey.FromUri(uri); }
        catch (FormatException e) { throw new CliException($"--uri is not a valid secret URI: {e.Message}"); }
    }

    private static WalletKey FromPublicHex(string hex)
    {
        if (!Hex.TryDecode(hex, out var bytes) || bytes.Length != 32) throw new CliException("--public_key must be 0x + 64 hex digits");
        return WalletKey.FromPublicKey(bytes);
    }

    /// <summary>Runs a verb, turning wallet and input errors into one readable line with exit code 1.</summary>
    private static int Run(Func<int> action)
    {
        try
        {
            return action();
        }
        catch (KeyfileException e)
        {
            throw new CliException(e.Message);
        }
        catch (FormatException e)
        {
            throw new CliException(e.Message);
        }
        catch (ArgumentException e)
        {
            throw new CliException(e.Message);
        }
        catch (InvalidDataException e)
        {
            throw new CliException(e.Message);
        }
    }
}

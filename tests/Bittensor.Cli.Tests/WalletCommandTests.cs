using System.CommandLine;
using System.Text.Json;
using Bittensor.Cli.Commands;
using Bittensor.Core.Crypto;

[assembly: System.Runtime.Versioning.UnsupportedOSPlatform("windows")] // file modes are checked on Linux (CI is Debian)

namespace Bittensor.Cli.Tests;

/// <summary>The <c>btcli wallet</c> verbs run in-process against a temporary wallet folder.</summary>
// Runs btcli verbs (and their actor systems) in this process: Akka's start-up/shutdown logger writes to Console.Error,
// which the console-capturing tests of this collection redirect process-wide, so they must not run beside them.
[Collection(Bittensor.Cli.Tests.Chain.ConsoleCollection.Name)]
public sealed class WalletCommandTests : IDisposable
{
    private const string Alice = "5GrwvaEF5zXb26Fz9rcQpDWS57CtERHpNehXCPcNoHGKutQY";
    private readonly string _root = Path.Combine(Path.GetTempPath(), "bt-cli-wallet-" + Guid.NewGuid().ToString("N"));

    public WalletCommandTests() => Directory.CreateDirectory(_root);

    public void Dispose()
    {
        if (Directory.Exists(_root)) Directory.Delete(_root, recursive: true);
    }

    private string W => Path.Combine(_root, "w");

    private sealed record Vector(string mnemonic, string mini_secret, string @public, string ss58);

    private static Vector[] Vectors() =>
        JsonSerializer.Deserialize<Vector[]>(File.ReadAllText(Path.Combine(AppContext.BaseDirectory, "Fixtures", "wallet-mnemonics.json")))!;

    private static async Task<(int Code, string Out, string Err)> Btcli(params string[] args)
    {
        var root = new RootCommand("test");
        CliApp.AddCommonOptions(root);
        WalletCommands.Register(root);
        using var output = new StringWriter();
        using var error = new StringWriter();
        var code = await CliApp.RunAsync(root, args, output, error);
        return (code, output.ToString(), error.ToString());
    }

    private static void AssertOneErrorLine((int Code, string Out, string Err) result, string contains)
    {
        Assert.Equal(1, result.Code);
        var lines = result.Err.Split('\n', StringSplitOptions.RemoveEmptyEntries);
        Assert.Single(lines);
        Assert.StartsWith("error: ", lines[0], StringComparison.Ordinal);
        Assert.Contains(contains, lines[0], StringComparison.Ordinal);
    }

    [Fact]
    public async Task Regen_coldkey_from_a_polkadot_js_mnemonic_then_list_prints_the_polkadot_js_address()
    {
        var v = Vectors()[0];
        var regen = await Btcli("wallet", "regen_coldkey", "--mnemonic", v.mnemonic, "--no_password", "--wallet.path", W, "--wallet.name", "a");
        Assert.Equal(0, regen.Code);
        Assert.Contains(v.ss58, regen.Out, StringComparison.Ordinal);

        var json = await Btcli("wallet", "list", "--wallet.path", W, "--json");
        Assert.Equal(0, json.Code);
        using var doc = JsonDocument.Parse(json.Out);
        var wallet = Assert.Single(doc.RootElement.GetProperty("wallets").EnumerateArray());
        Assert.Equal("a", wallet.GetProperty("name").GetString());
        Assert.Equal(v.ss58, wallet.GetProperty("coldkeypub").GetString());

        var tree = await Btcli("wallet", "list", "--wallet.path", W);
        Assert.Equal(0, tree.Code);
        Assert.Contains(v.ss58, tree.Out, StringComparison.Ordinal);
        Assert.DoesNotContain(v.mnemonic.Split(' ')[0] + " " + v.mnemonic.Split(' ')[1], tree.Out, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Written_key_files_are_0600_and_created_folders_0700()
    {
        var v = Vectors()[1];
        Assert.Equal(0, (await Btcli("wallet", "regen_coldkey", "--mnemonic", v.mnemonic, "--no_password", "--wallet.path", W, "--wallet.name", "a")).Code);
        Assert.Equal(0, (await Btcli("wallet", "regen_hotkey", "--uri", "//Alice", "--wallet.path", W, "--wallet.name", "a", "--wallet.hotkey", "h")).Code);
        const UnixFileMode rw = UnixFileMode.UserRead | UnixFileMode.UserWrite;
        const UnixFileMode rwx = rw | UnixFileMode.UserExecute;
        foreach (var file in new[] { "a/coldkey", "a/coldkeypub.txt", "a/hotkeys/h", "a/hotkeys/hpub.txt" })
            Assert.Equal(rw, File.GetUnixFileMode(Path.Combine(W, file)));
        foreach (var dir in new[] { "", "a", "a/hotkeys" })
            Assert.Equal(rwx, File.GetUnixFileMode(Path.Combine(W, dir)));
    }

    [Fact]
    public async Task A_coldkey_signature_verifies_with_exit_0_and_a_changed_message_fails_with_exit_1()
    {
        var v = Vectors()[0];
        await Btcli("wallet", "regen_coldkey", "--seed", v.mini_secret, "--no_password", "--wallet.path", W, "--wallet.name", "a");
        var sign = await Btcli("wallet", "sign", "--message", "hello world", "--wallet.path", W, "--wallet.name", "a");
        Assert.Equal(0, sign.Code);
        var signature = sign.Out.Trim();
        Assert.Matches("^0x[0-9a-f]{128}$", signature);
        Assert.True(Sr25519.Verify(Convert.FromHexString(v.@public[2..]), "hello world"u8, Convert.FromHexString(signature[2..])));

        var ok = await Btcli("wallet", "verify", "--message", "hello world", "--signature", signature, "--ss58", v.ss58);
        Assert.Equal(0, ok.Code);
        var bad = await Btcli("wallet", "verify", "--message", "hello world!", "--signature", signature, "--ss58", v.ss58);
        Assert.Equal(1, bad.Code);
        Assert.Contains("INVALID", bad.Out, StringComparison.Ordinal);
        var other = await Btcli("wallet", "verify", "--message", "hello world", "--signature", signature, "--ss58", Alice);
        Assert.Equal(1, other.Code);
        var fromWallet = await Btcli("wallet", "verify", "--message", "hello world", "--signature", signature, "--wallet.path", W, "--wallet.name", "a", "--json");
        Assert.Equal(0, fromWallet.Code);
        Assert.True(JsonDocument.Parse(fromWallet.Out).RootElement.GetProperty("valid").GetBoolean());
    }

    [Fact]
    public async Task A_hotkey_from_a_dev_uri_signs_for_alice_with_use_hotkey()
    {
        Assert.Equal(0, (await Btcli("wallet", "regen_hotkey", "--uri", "//Alice", "--wallet.path", W, "--wallet.name", "a")).Code);
        var sign = await Btcli("wallet", "sign", "--use_hotkey", "--message", "m", "--wallet.path", W, "--wallet.name", "a");
        Assert.Equal(0, sign.Code);
        Assert.Equal(0, (await Btcli("wallet", "verify", "--message", "m", "--signature", sign.Out.Trim(), "--ss58", Alice)).Code);

        var inspect = await Btcli("wallet", "inspect", "--wallet.path", W, "--wallet.name", "a", "--json");
        Assert.Equal(0, inspect.Code);
        var hotkey = Assert.Single(JsonDocument.Parse(inspect.Out).RootElement.GetProperty("hotkeys").EnumerateArray());
        Assert.Equal(Alice, hotkey.GetProperty("ss58").GetString());
    }

    [Fact]
    public async Task An_encrypted_coldkey_opens_with_its_password_file_or_descriptor_and_a_wrong_one_is_one_error_line()
    {
        var v = Vectors()[0];
        var good = Path.Combine(_root, "pw");
        var wrong = Path.Combine(_root, "wrong");
        await File.WriteAllTextAsync(good, "a long passphrase\n");
        await File.WriteAllTextAsync(wrong, "not it\n");
        Assert.Equal(0, (await Btcli("wallet", "regen_coldkey", "--seed", v.mini_secret, "--password-file", good, "--wallet.path", W, "--wallet.name", "e")).Code);
        Assert.StartsWith("$NACL", await File.ReadAllTextAsync(Path.Combine(W, "e", "coldkey")), StringComparison.Ordinal);

        var inspect = await Btcli("wallet", "inspect", "--wallet.path", W, "--wallet.name", "e", "--json");
        Assert.True(JsonDocument.Parse(inspect.Out).RootElement.GetProperty("coldkey_encrypted").GetBoolean());

        AssertOneErrorLine(await Btcli("wallet", "sign", "--message", "m", "--password-file", wrong, "--wallet.path", W, "--wallet.name", "e"), "wrong password");
        var noSource = await Btcli("wallet", "sign", "--message", "m", "--wallet.path", W, "--wallet.name", "e");
        AssertOneErrorLine(noSource, "password");
        using var handle = File.OpenHandle(good);
        var fd = ((int)handle.DangerousGetHandle()).ToString(System.Globalization.CultureInfo.InvariantCulture);
        var sign = await Btcli("wallet", "sign", "--message", "m", "--password-fd", fd, "--wallet.path", W, "--wallet.name", "e");
        Assert.Equal(0, sign.Code);
        Assert.Equal(0, (await Btcli("wallet", "verify", "--message", "m", "--signature", sign.Out.Trim(), "--ss58", v.ss58)).Code);
    }

    [Fact]
    public async Task An_existing_coldkey_is_kept_unless_overwrite_is_given()
    {
        var vs = Vectors();
        await Btcli("wallet", "regen_coldkey", "--mnemonic", vs[0].mnemonic, "--no_password", "--wallet.path", W, "--wallet.name", "a");
        AssertOneErrorLine(await Btcli("wallet", "regen_coldkey", "--mnemonic", vs[1].mnemonic, "--no_password", "--wallet.path", W, "--wallet.name", "a"), "already exists");
        Assert.Contains(vs[0].ss58, (await Btcli("wallet", "list", "--wallet.path", W, "--json")).Out, StringComparison.Ordinal);
        Assert.Equal(0, (await Btcli("wallet", "regen_coldkey", "--mnemonic", vs[1].mnemonic, "--no_password", "--overwrite", "--wallet.path", W, "--wallet.name", "a")).Code);
        Assert.Contains(vs[1].ss58, (await Btcli("wallet", "list", "--wallet.path", W, "--json")).Out, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Wallet_create_writes_a_coldkey_and_a_hotkey_whose_mnemonics_restore_them_and_keeps_an_existing_coldkey()
    {
        string[] at = ["--no_password", "--wallet.path", W, "--wallet.name", "c"];
        var created = await Btcli(["wallet", "create", "--n_words", "12", "--wallet.hotkey", "h1", .. at]);
        Assert.Equal(0, created.Code);
        var lines = created.Out.Split('\n').Select(l => l.Trim()).ToList();
        var cold = lines.Single(l => l.StartsWith("coldkey ", StringComparison.Ordinal)).Split(' ')[1];
        var hot = lines.Single(l => l.StartsWith("hotkey ", StringComparison.Ordinal)).Split(' ')[1];
        var mnemonics = lines.Where(l => l.Split(' ').Length == 12 && Bip39.IsValid(l)).ToList();
        Assert.Equal(2, mnemonics.Count);
        Assert.Contains(cold, (await Btcli("wallet", "regen_coldkey", "--mnemonic", mnemonics[0], "--no_password", "--wallet.path", W, "--wallet.name", "r")).Out,
            StringComparison.Ordinal);
        Assert.Contains(hot, (await Btcli("wallet", "regen_hotkey", "--mnemonic", mnemonics[1], "--wallet.path", W, "--wallet.name", "r", "--wallet.hotkey", "h1")).Out,
            StringComparison.Ordinal);

        // A second create on the same wallet adds a hotkey and keeps the coldkey (a wallet's money is never replaced by accident).
        var again = await Btcli(["wallet", "create", "--n_words", "12", "--wallet.hotkey", "h2", .. at]);
        Assert.Equal(0, again.Code);
        Assert.Contains("coldkey kept", again.Out, StringComparison.Ordinal);
        using var doc = JsonDocument.Parse((await Btcli("wallet", "list", "--wallet.path", W, "--json")).Out);
        var c = doc.RootElement.GetProperty("wallets").EnumerateArray().Single(w => w.GetProperty("name").GetString() == "c");
        Assert.Equal(cold, c.GetProperty("coldkeypub").GetString());
        Assert.True(File.Exists(Path.Combine(W, "c", "hotkeys", "h2")));
    }

    [Fact]
    public async Task A_new_coldkey_shows_a_mnemonic_of_the_asked_length_that_restores_the_same_address()
    {
        var created = await Btcli("wallet", "new_coldkey", "--n_words", "15", "--no_password", "--wallet.path", W, "--wallet.name", "n");
        Assert.Equal(0, created.Code);
        var mnemonic = created.Out.Split('\n').Select(l => l.Trim()).Single(l => l.Split(' ').Length == 15);
        Assert.True(Bip39.IsValid(mnemonic));
        Assert.Equal(0, (await Btcli("wallet", "regen_coldkey", "--mnemonic", mnemonic, "--no_password", "--wallet.path", W, "--wallet.name", "r")).Code);
        using var doc = JsonDocument.Parse((await Btcli("wallet", "list", "--wallet.path", W, "--json")).Out);
        var addresses = doc.RootElement.GetProperty("wallets").EnumerateArray().Select(w => w.GetProperty("coldkeypub").GetString()).ToList();
        Assert.Equal(2, addresses.Count);
        Assert.Equal(addresses[0], addresses[1]);
    }

    [Fact]
    public async Task Regen_coldkeypub_gives_a_watch_only_wallet_that_lists_but_cannot_sign()
    {
        Assert.Equal(0, (await Btcli("wallet", "regen_coldkeypub", "--ss58", Alice, "--wallet.path", W, "--wallet.name", "watch")).Code);
        Assert.Contains(Alice, (await Btcli("wallet", "list", "--wallet.path", W)).Out, StringComparison.Ordinal);
        AssertOneErrorLine(await Btcli("wallet", "sign", "--message", "m", "--no_password", "--wallet.path", W, "--wallet.name", "watch"), "does not exist");
    }

    [Fact]
    public async Task The_2021_flat_verb_name_is_accepted()
    {
        var v = Vectors()[0];
        Assert.Equal(0, (await Btcli("regen_coldkey", "--mnemonic", v.mnemonic, "--no_password", "--wallet.path", W, "--wallet.name", "old")).Code);
        Assert.Contains(v.ss58, (await Btcli("list", "--wallet.path", W, "--json")).Out, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Bad_inputs_give_one_error_line_and_exit_code_1()
    {
        AssertOneErrorLine(await Btcli("wallet", "regen_coldkey", "--mnemonic", "abandon abandon abandon", "--no_password", "--wallet.path", W), "mnemonic");
        AssertOneErrorLine(await Btcli("wallet", "regen_coldkey", "--mnemonic", Vectors()[0].mnemonic, "--seed", "0x00", "--no_password", "--wallet.path", W), "exactly one");
        AssertOneErrorLine(await Btcli("wallet", "regen_hotkey", "--seed", "0xnothex", "--wallet.path", W), "--seed");
        AssertOneErrorLine(await Btcli("wallet", "regen_hotkey", "--uri", "//Alice/", "--wallet.path", W), "--uri");
        AssertOneErrorLine(await Btcli("wallet", "new_hotkey", "--n_words", "13", "--wallet.path", W), "--n_words");
        AssertOneErrorLine(await Btcli("wallet", "regen_coldkeypub", "--ss58", "5notAnAddress", "--wallet.path", W), "");
        AssertOneErrorLine(await Btcli("wallet", "verify", "--message", "m", "--signature", "0x1234", "--ss58", Alice), "--signature");
        AssertOneErrorLine(await Btcli("wallet", "sign", "--message", "m", "--wallet.path", W, "--wallet.name", "missing"), "does not exist");
        AssertOneErrorLine(await Btcli("wallet", "inspect", "--wallet.path", W, "--wallet.name", "missing"), "does not exist");
        AssertOneErrorLine(await Btcli("wallet", "list", "--wallet.path", W, "--wallet.name", "../evil"), "not a valid file name");
        Assert.False(Directory.Exists(W) && Directory.EnumerateFileSystemEntries(W).Any(), "no failed command may leave files behind");
    }
}

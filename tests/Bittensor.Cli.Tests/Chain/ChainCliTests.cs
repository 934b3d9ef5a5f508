using System.Text.Json;
using Bittensor.Chain.Local;
using Bittensor.Wallet;

namespace Bittensor.Cli.Tests.Chain;

[Collection(ConsoleCollection.Name)]
public sealed class ChainCliTests : IDisposable
{
    private readonly string _dir = Path.Combine(Path.GetTempPath(), "bt-cli-" + Guid.NewGuid().ToString("N"));

    public ChainCliTests()
    {
        var owner = new Bittensor.Wallet.LocalWallet("owner", "h1", WalletPath);
        using (var cold = WalletKey.Generate()) owner.CreateColdkey(cold, password: null, overwrite: false);
        using (var h1 = WalletKey.Generate()) owner.CreateHotkey(h1, password: null, overwrite: false);
        using (var h2 = WalletKey.Generate()) new Bittensor.Wallet.LocalWallet("owner", "h2", WalletPath).CreateHotkey(h2, password: null, overwrite: false);
    }

    public void Dispose()
    {
        if (Directory.Exists(_dir)) Directory.Delete(_dir, recursive: true);
    }

    private string WalletPath => Path.Combine(_dir, "wallets");

    private string LocalnetPath => Path.Combine(_dir, "localnet");

    private Task<(int Code, string Out, string Err)> Btcli(params string[] args) =>
        CliHarness.RunAsync([.. args, "--localnet.path", LocalnetPath]);

    private Task<(int Code, string Out, string Err)> AsOwner(string hotkey, params string[] args) =>
        Btcli([.. args, "--wallet.path", WalletPath, "--wallet.name", "owner", "--wallet.hotkey", hotkey, "--no_password"]);

    private static JsonElement Ok((int Code, string Out, string Err) r)
    {
        Assert.True(r.Code == 0, $"exit {r.Code}: {r.Err}{r.Out}");
        return JsonDocument.Parse(r.Out).RootElement;
    }

    private static void Ran((int Code, string Out, string Err) r) => Assert.True(r.Code == 0, $"exit {r.Code}: {r.Err}");

    private static string Fails((int Code, string Out, string Err) r)
    {
        Assert.True(r.Code != 0, $"expected a failure, got: {r.Out}");
        Assert.StartsWith("error: ", r.Err, StringComparison.Ordinal);
        Assert.Single(r.Err.Trim().Split('\n'));
        return r.Err;
    }

    [Fact]
    public async Task Create_register_serve_stake_weights_and_run_past_an_epoch_changes_the_metagraph()
    {
        Ok(await AsOwner("h1", "localnet", "faucet", "--amount", "5000", "--json"));
        var created = Ok(await AsOwner("h1", "subnets", "create", "--json"));
        var netuid = created.GetProperty("netuid").GetInt32().ToString(System.Globalization.CultureInfo.InvariantCulture);
        Assert.Equal(0, Ok(await AsOwner("h1", "register", "--netuid", netuid, "--json")).GetProperty("uid").GetInt32());
        Assert.Equal(1, Ok(await AsOwner("h2", "register", "--netuid", netuid, "--json")).GetProperty("uid").GetInt32());
        Ok(await AsOwner("h1", "serve", "--netuid", netuid, "--axon.ip", "10.0.0.1", "--axon.port", "8091", "--json"));
        Ok(await AsOwner("h2", "serve", "--netuid", netuid, "--axon.ip", "10.0.0.2", "--axon.port", "8092", "--json"));
        Ok(await AsOwner("h1", "stake", "add", "--amount", "100", "--json"));

        var before = Ok(await Btcli("metagraph", "--netuid", netuid, "--json"));
        Assert.All(before.GetProperty("neurons").EnumerateArray(), n => Assert.Equal(0.0, n.GetProperty("incentive").GetDouble()));

        // A validator needs a permit (handed out by an epoch) to weight others; tempo is 360 blocks on a new subnet.
        Ran(await Btcli("localnet", "run", "--no_rpc", "--blocks", "362", "--block_time", "0.001"));
        var set = Ok(await AsOwner("h1", "weights", "set", "--netuid", netuid, "--uids", "0,1", "--weights", "0.5,0.5", "--json"));
        Assert.Equal(new[] { 65535, 65535 }, set.GetProperty("weights").EnumerateArray().Select(e => e.GetInt32()));
        Ran(await Btcli("localnet", "run", "--no_rpc", "--blocks", "362", "--block_time", "0.001"));

        var after = Ok(await Btcli("metagraph", "--netuid", netuid, "--json"));
        var neurons = after.GetProperty("neurons").EnumerateArray().ToArray();
        Assert.Equal(2, after.GetProperty("n").GetInt32());
        Assert.Equal("10.0.0.1:8091", neurons[0].GetProperty("axon").GetString());
        Assert.True(neurons[0].GetProperty("stake").GetDouble() >= 100);
        Assert.True(neurons[0].GetProperty("validator_permit").GetBoolean());
        Assert.True(neurons[1].GetProperty("incentive").GetDouble() > 0, after.ToString());
        Assert.True(neurons[0].GetProperty("dividends").GetDouble() > 0, after.ToString());

        // --plot: a real PNG with the bars drawn in the series' colours (stake share, incentive and dividends are > 0 here).
        var png = Path.Combine(_dir, "metagraph.png");
        Ok(await Btcli("metagraph", "--netuid", netuid, "--plot", png, "--json"));
        using (var image = SkiaSharp.SKBitmap.Decode(png))
        {
            Assert.NotNull(image);
            Assert.Equal((1200, 600), (image.Width, image.Height));
            var colours = image.Pixels.Select(c => (c.Red, c.Green, c.Blue)).ToHashSet();
            Assert.Contains(((byte)70, (byte)130, (byte)180), colours);   // SteelBlue: stake share
            Assert.Contains(((byte)255, (byte)140, (byte)0), colours);    // DarkOrange: incentive
            Assert.Contains(((byte)46, (byte)139, (byte)87), colours);    // SeaGreen: dividends
        }
        Assert.Empty(Directory.GetFiles(_dir, ".metagraph.png.*")); // no temporary file left
        Assert.Contains("--plot", Fails(await Btcli("metagraph", "--netuid", netuid, "--plot", Path.Combine(_dir, "no-such-folder", "m.png"))), StringComparison.Ordinal);

        var table = await Btcli("metagraph", "--netuid", netuid);
        Assert.Equal(0, table.Code);
        Assert.Contains("INCENTIVE", table.Out, StringComparison.Ordinal);
        Assert.Contains("10.0.0.2:8092", table.Out, StringComparison.Ordinal);

        var overview = Ok(await AsOwner("h1", "overview", "--json"));
        Assert.Equal(2, overview.GetProperty("neurons").GetArrayLength());
        var balance = Ok(await AsOwner("h1", "balance", "--json"));
        Assert.True(balance.GetProperty("staked").GetDouble() >= 100);
        Assert.Single(Ok(await Btcli("subnets", "list", "--json")).EnumerateArray());
    }

    [Fact]
    public async Task Transfer_moves_tao_and_stake_remove_returns_it()
    {
        Ok(await AsOwner("h1", "localnet", "faucet", "--amount", "5000", "--json"));
        var netuid = Ok(await AsOwner("h1", "subnets", "create", "--json")).GetProperty("netuid").GetInt32().ToString(System.Globalization.CultureInfo.InvariantCulture);
        Ok(await AsOwner("h1", "register", "--netuid", netuid, "--json"));
        // With --netuid, as on a dynamic-TAO runtime: the localnet keeps one stake per hotkey and drops it.
        Ok(await AsOwner("h1", "stake", "add", "--amount", "10", "--netuid", netuid, "--json"));
        Ran(await Btcli("localnet", "run", "--no_rpc", "--blocks", "361", "--block_time", "0.001")); // one stake operation per 360 blocks
        var freeBefore = Ok(await AsOwner("h1", "balance", "--json")).GetProperty("free_rao").GetUInt64();
        var removed = Ok(await AsOwner("h1", "stake", "remove", "--amount", "4", "--json"));
        Assert.Equal(4_000_000_000UL, removed.GetProperty("amount_rao").GetUInt64());
        // At least the 4 TAO come back (the coldkey also owns the subnet, so its owner cut keeps arriving).
        Assert.InRange(Ok(await AsOwner("h1", "balance", "--json")).GetProperty("free_rao").GetUInt64(), freeBefore + 4_000_000_000UL, freeBefore + 5_000_000_000UL);

        var bob = DevAccounts.Bob.ToSs58();
        var sent = Ok(await AsOwner("h1", "transfer", "--dest", bob, "--amount", "1.5", "--json"));
        Assert.Equal(1_500_000_000UL, sent.GetProperty("amount_rao").GetUInt64());
        Assert.InRange(sent.GetProperty("balance_rao").GetUInt64(), freeBefore + 2_500_000_000UL, freeBefore + 3_500_000_000UL);
    }

    [Fact]
    public async Task Bad_input_and_chain_refusals_print_one_error_line_and_exit_non_zero()
    {
        Ok(await AsOwner("h1", "localnet", "faucet", "--json"));
        Assert.Contains("subnet 99 does not exist", Fails(await AsOwner("h1", "register", "--netuid", "99")), StringComparison.Ordinal);
        Assert.Contains("--dest", Fails(await AsOwner("h1", "transfer", "--dest", "not-an-address", "--amount", "1")), StringComparison.Ordinal);
        Assert.Contains("--amount", Fails(await AsOwner("h1", "transfer", "--dest", DevAccounts.Bob.ToSs58(), "--amount", "-3")), StringComparison.Ordinal);
        Assert.Contains("no well-known endpoint", Fails(await AsOwner("h1", "balance", "--subtensor.network", "mynet")), StringComparison.Ordinal);
        // A node that is not there: a closed loopback port (bound, then released) is one clear line, not a hang.
        var listener = new System.Net.Sockets.TcpListener(System.Net.IPAddress.Loopback, 0);
        listener.Start();
        var closedPort = ((System.Net.IPEndPoint)listener.LocalEndpoint).Port;
        listener.Stop();
        Assert.Contains("cannot use the node at ws://127.0.0.1:",
            Fails(await AsOwner("h1", "balance", "--subtensor.chain_endpoint", $"ws://127.0.0.1:{closedPort}")), StringComparison.Ordinal);
        Assert.Contains("--axon.ip", Fails(await AsOwner("h1", "serve", "--netuid", "1", "--axon.ip", "300.1.1.1", "--axon.port", "1")), StringComparison.Ordinal);
        Assert.Contains("--uids has 2 entries", Fails(await AsOwner("h1", "weights", "set", "--netuid", "1", "--uids", "0,1", "--weights", "1")), StringComparison.Ordinal);
        Assert.Contains("wallet", Fails(await Btcli("balance", "--wallet.path", WalletPath, "--wallet.name", "nobody")), StringComparison.Ordinal);

        // A refusal by the chain names the runtime's error.
        var netuid = Ok(await AsOwner("h1", "subnets", "create", "--json")).GetProperty("netuid").GetInt32().ToString(System.Globalization.CultureInfo.InvariantCulture);
        Ok(await AsOwner("h1", "register", "--netuid", netuid, "--json"));
        var refused = Fails(await AsOwner("h2", "weights", "set", "--netuid", netuid, "--uids", "0", "--weights", "1"));
        Assert.Contains("set_weights failed: NotRegistered", refused, StringComparison.Ordinal);
        Assert.Contains("uid 5 is not on a subnet of 1", Fails(await AsOwner("h1", "weights", "set", "--netuid", netuid, "--uids", "5", "--weights", "1")),
            StringComparison.Ordinal);
    }

    [Fact]
    public async Task A_localnet_held_by_another_owner_is_reported_as_in_use()
    {
        await using var held = Localnet.Open(new LocalnetOptions { Path = LocalnetPath }, YumaEpochRunner.Instance);
        var err = Fails(await AsOwner("h1", "balance"));
        Assert.Contains("in use by PID", err, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Verbs_see_the_blocks_localnet_run_made_and_a_reset_starts_again_at_genesis()
    {
        Ran(await Btcli("localnet", "run", "--no_rpc", "--blocks", "3", "--block_time", "0.001"));
        Assert.Equal(3UL, Ok(await AsOwner("h1", "overview", "--json")).GetProperty("block").GetUInt64());
        Ran(await Btcli("localnet", "reset"));
        Assert.Equal(0UL, Ok(await AsOwner("h1", "overview", "--json")).GetProperty("block").GetUInt64());
    }
}

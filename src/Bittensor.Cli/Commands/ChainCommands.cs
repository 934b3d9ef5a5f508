using System.CommandLine;
using System.Globalization;
using Bittensor.Actors.Metagraph;
using Bittensor.Chain;
using Bittensor.Cli.Chain;
using Bittensor.Core.Domain;
using Bittensor.Core.Weights;
using Bittensor.Wallet;
using Spectre.Console;

namespace Bittensor.Cli.Commands;

/// <summary>
/// Chain verbs: <c>overview</c>, <c>metagraph</c>, <c>subnets create|list</c>, <c>register</c>, <c>serve</c>,
/// <c>stake add|remove</c>, <c>transfer</c>, <c>weights set</c>, <c>balance</c>; <c>localnet faucet</c> is registered by
/// <see cref="LocalnetFaucetCommands"/>.
/// On the localnet (the default network) every write verb produces the block that includes its call.
/// </summary>
internal static class ChainCommands
{
    /// <summary>Protocol tag the Python SDK writes in serve_axon.</summary>
    private const byte AxonProtocol = 4;

    public static void Register(RootCommand root)
    {
        root.Subcommands.Add(Overview());
        root.Subcommands.Add(Metagraph());
        var subnets = new Command("subnets", "List and create subnets");
        subnets.Subcommands.Add(SubnetsList());
        subnets.Subcommands.Add(SubnetsCreate());
        root.Subcommands.Add(subnets);
        root.Subcommands.Add(RegisterVerb());
        root.Subcommands.Add(Serve());
        var stake = new Command("stake", "Add or remove stake on a hotkey");
        stake.Subcommands.Add(Stake(add: true));
        stake.Subcommands.Add(Stake(add: false));
        root.Subcommands.Add(stake);
        root.Subcommands.Add(Transfer());
        var weights = new Command("weights", "Set weights as a validator");
        weights.Subcommands.Add(WeightsSet());
        root.Subcommands.Add(weights);
        root.Subcommands.Add(Balance());
    }

    /// <summary>Adds <c>localnet faucet</c> to the <c>localnet</c> group (run, reset and epoch are the localnet area's).</summary>
    internal static void AddLocalnetVerbs(Command localnet) => localnet.Subcommands.Add(LocalnetFaucet());

    private static bool Json(ParseResult p) => p.GetValue(CliApp.Json);

    private static Option<int> Netuid(bool required = true) => new("--netuid")
    {
        Description = "Subnet id",
        Required = required,
    };

    private static ushort GetNetuid(ParseResult p, Option<int> o)
    {
        var v = p.GetValue(o);
        if (v is < 0 or > ushort.MaxValue) throw new CliException($"--netuid {v} is outside 0..65535");
        return (ushort)v;
    }

    private static Balance ParseAmount(string? text, string flag)
    {
        if (string.IsNullOrWhiteSpace(text)) throw new CliException($"{flag} is required");
        try
        {
            var b = Bittensor.Core.Domain.Balance.Parse(text);
            if (b.Rao == 0) throw new CliException($"{flag} must be more than zero");
            return b;
        }
        catch (FormatException e)
        {
            throw new CliException($"{flag}: {e.Message}");
        }
    }

    private static AccountId ParseAccount(string text, string flag)
    {
        try
        {
            return AccountId.Parse(text.Trim());
        }
        catch (FormatException e)
        {
            throw new CliException($"{flag} '{text}' is not an SS58 address: {e.Message}");
        }
    }

    private static void Done(ParseResult p, string message, object json)
    {
        if (Json(p)) CliApp.WriteJson(json);
        else Console.Out.WriteLine(message);
    }

    private static Command Overview()
    {
        var o = new ChainOptions();
        var cmd = o.AddTo(new Command("overview", "Your coldkey's balance and every neuron its hotkeys run"), wallet: true);
        cmd.SetAction(async (p, ct) =>
        {
            var coldkey = o.ColdkeyPub(p);
            await using var chain = await o.OpenChainAsync(p, ct);
            var block = await chain.Backend.GetCurrentBlockAsync(ct);
            var free = await chain.Backend.GetBalanceAsync(coldkey, ct);
            var staked = await StakedAsync(chain, coldkey, ct);
            var rows = new List<(int Netuid, NeuronView View)>();
            foreach (var subnet in await chain.Backend.GetSubnetsAsync(ct))
            {
                var neurons = await chain.Backend.GetNeuronsAsync(subnet.Netuid, ct);
                if (!neurons.Any(n => n.Coldkey == coldkey)) continue;
                var s = MetagraphSnapshot.FromNeurons(chain.Network, subnet.Netuid, block.Number, neurons);
                foreach (var n in neurons.Where(n => n.Coldkey == coldkey)) rows.Add((subnet.Netuid, NeuronView.From(s, n.Uid)));
            }
            if (Json(p))
            {
                CliApp.WriteJson(new
                {
                    network = chain.Network,
                    block = block.Number,
                    coldkey = coldkey.ToSs58(),
                    balance = (double)free.Tao,
                    balance_rao = free.Rao,
                    stake = (double?)staked?.Tao,
                    stake_rao = staked?.Rao,
                    neurons = rows.Select(r => new { netuid = r.Netuid, neuron = r.View }),
                });
                return 0;
            }
            var console = ChainTables.Console();
            console.MarkupLine(Markup.Escape($"Coldkey {coldkey.ToSs58()} on {chain.Network} at block {block.Number}"));
            console.MarkupLine(Markup.Escape(staked is { } st
                ? $"Balance {free}   Staked {st}   Total {free + st}"
                : $"Balance {free}   Staked: per subnet on this chain (dynamic TAO), see each subnet's metagraph"));
            if (rows.Count == 0) console.MarkupLine("No registered hotkeys (btcli register --netuid N).");
            else console.Write(ChainTables.Neurons(rows.Select(r => r.View), withNetuid: true, rows.Select(r => r.Netuid).ToArray()));
            return 0;
        });
        return cmd;
    }

    private static Command Metagraph()
    {
        var o = new ChainOptions();
        var netuid = Netuid();
        var cmd = o.AddTo(new Command("metagraph", "Every neuron of a subnet: stake, rank, trust, consensus, incentive, dividends, emission, axon"), wallet: false);
        cmd.Options.Add(netuid);
        var plot = new Option<string?>("--plot") { Description = "Also draw stake share, incentive, dividends and trust per uid into this PNG file" };
        cmd.Options.Add(plot);
        cmd.SetAction(async (p, ct) =>
        {
            var id = GetNetuid(p, netuid);
            var plotPath = p.GetValue(plot);
            if (plotPath is not null) MetagraphPlot.CheckPath(plotPath);
            await using var chain = await o.OpenChainAsync(p, ct);
            await chain.RequireSubnetAsync(id, ct);
            var block = await chain.Backend.GetCurrentBlockAsync(ct);
            var snapshot = MetagraphSnapshot.FromNeurons(chain.Network, id, block.Number, await chain.Backend.GetNeuronsAsync(id, ct));
            var view = MetagraphView.From(snapshot);
            if (plotPath is not null) MetagraphPlot.Write(snapshot, plotPath);
            if (Json(p))
            {
                CliApp.WriteJson(view);
                return 0;
            }
            var console = ChainTables.Console();
            console.MarkupLine(Markup.Escape($"Metagraph of subnet {id} on {chain.Network}: n = {snapshot.N}, block {snapshot.Block}, " +
                $"stake {ChainTables.Tao(snapshot.S.Sum())}, emission {ChainTables.Tao(snapshot.E.Sum())}"));
            console.Write(ChainTables.Neurons(view.Neurons));
            if (plotPath is not null) console.MarkupLine(Markup.Escape($"plot written to {Path.GetFullPath(plotPath)}"));
            return 0;
        });
        return cmd;
    }

    private static Command SubnetsList()
    {
        var o = new ChainOptions();
        var cmd = o.AddTo(new Command("list", "All subnets with their size, tempo, emission and burn"), wallet: false);
        cmd.SetAction(async (p, ct) =>
        {
            await using var chain = await o.OpenChainAsync(p, ct);
            var subnets = await chain.Backend.GetSubnetsAsync(ct);
            if (Json(p))
            {
                CliApp.WriteJson(subnets.Select(s => new
                {
                    netuid = s.Netuid,
                    n = s.N,
                    max_n = s.Hyperparameters.MaxAllowedUids,
                    tempo = s.Hyperparameters.Tempo,
                    owner = s.Owner.ToSs58(),
                    registered_at = s.RegisteredAt,
                    emission_per_block_rao = s.EmissionPerBlock.Rao,
                    burn_rao = s.Hyperparameters.Burn,
                    min_allowed_weights = s.Hyperparameters.MinAllowedWeights,
                    max_weights_limit = s.Hyperparameters.MaxWeightsLimit,
                }));
                return 0;
            }
            var console = ChainTables.Console();
            if (subnets.Count == 0) console.MarkupLine("No subnets yet (btcli subnets create).");
            else console.Write(ChainTables.Subnets(subnets));
            return 0;
        });
        return cmd;
    }

    private static Command SubnetsCreate()
    {
        var o = new ChainOptions();
        var cmd = o.AddTo(new Command("create", "Create a subnet owned by your coldkey (locks the network lock cost)"), wallet: true);
        cmd.SetAction(async (p, ct) =>
        {
            using var coldkey = o.Coldkey(p);
            await using var chain = await o.OpenChainAsync(p, ct);
            var before = (await chain.Backend.GetSubnetsAsync(ct)).Select(s => s.Netuid).ToHashSet();
            Core.Domain.Balance? estimate;
            try
            {
                estimate = await chain.Backend.GetNetworkLockCostAsync(ct);
            }
            catch (ChainNotSupportedException)
            {
                estimate = null; // the node does not expose what the cost is computed from; the locked amount is read after
            }
            // Runtimes with register_network(hotkey, mechid) get the wallet's hotkey when it has one (spec 148 takes none).
            var wallet = o.Wallet(p);
            AccountId? subnetHotkey = File.Exists(wallet.HotkeyPath) || File.Exists(wallet.HotkeyPubPath) ? o.HotkeyPub(p) : null;
            var ok = await chain.SubmitAsync(new RegisterNetwork { Hotkey = subnetHotkey }, coldkey, ct);
            var subnets = await chain.Backend.GetSubnetsAsync(ct);
            var created = subnets.Where(s => !before.Contains(s.Netuid)).ToArray();
            var netuid = created.Length == 1 ? created[0].Netuid : -1;
            var cost = created.Length == 1 ? created[0].LockedBalance : estimate ?? Core.Domain.Balance.Zero;
            Done(p, $"Created subnet {netuid} (lock cost {cost}) in block {ok.Block}", new { netuid, block = ok.Block, lock_cost_rao = cost.Rao });
            return 0;
        });
        return cmd;
    }

    private static Command RegisterVerb()
    {
        var o = new ChainOptions();
        var netuid = Netuid();
        var cmd = o.AddTo(new Command("register", "Register your hotkey on a subnet by burning the registration cost (coldkey pays)"), wallet: true);
        cmd.Options.Add(netuid);
        cmd.SetAction(async (p, ct) =>
        {
            var id = GetNetuid(p, netuid);
            var hotkey = o.HotkeyPub(p);
            using var coldkey = o.Coldkey(p);
            await using var chain = await o.OpenChainAsync(p, ct);
            var subnet = await chain.RequireSubnetAsync(id, ct);
            var ok = await chain.SubmitAsync(new BurnedRegister(id, hotkey), coldkey, ct);
            // The uid from SubtensorModule.Uids on a node (any runtime), from the neuron list on the embedded localnet.
            var uid = chain.Node is { } node
                ? (await node.ReadStorageAsync("SubtensorModule", "Uids", [Bittensor.Chain.Substrate.ScaleValue.Int(id), Bittensor.Chain.Substrate.ScaleValue.Account(hotkey)], ct))?.AsU16()
                : (await chain.Backend.GetNeuronsAsync(id, ct)).FirstOrDefault(n => n.Hotkey == hotkey)?.Uid;
            Done(p, $"Registered {hotkey.ToSs58()} on subnet {id} as uid {uid} in block {ok.Block} (burned {new Balance(subnet.Hyperparameters.Burn)})",
                new { netuid = id, uid, hotkey = hotkey.ToSs58(), block = ok.Block });
            return 0;
        });
        return cmd;
    }

    private static Command Serve()
    {
        var o = new ChainOptions();
        var netuid = Netuid();
        var ip = new Option<string>("--axon.ip", "--axon.external_ip") { Description = "Public IPv4 or IPv6 address of your axon", Required = true };
        var port = new Option<int>("--axon.port", "--axon.external_port") { Description = "Axon port", Required = true };
        var cmd = o.AddTo(new Command("serve", "Announce your axon's address on a subnet (hotkey signs)"), wallet: true);
        cmd.Options.Add(netuid);
        cmd.Options.Add(ip);
        cmd.Options.Add(port);
        cmd.SetAction(async (p, ct) =>
        {
            var id = GetNetuid(p, netuid);
            var portValue = p.GetValue(port);
            if (portValue is < 1 or > 65535) throw new CliException($"--axon.port {portValue} is outside 1..65535");
            (UInt128 Ip, byte IpType) addr;
            try
            {
                addr = AxonInfo.ParseIp(p.GetValue(ip) ?? "");
            }
            catch (FormatException e)
            {
                throw new CliException($"--axon.ip: {e.Message}");
            }
            using var hotkey = o.Hotkey(p);
            await using var chain = await o.OpenChainAsync(p, ct);
            await chain.RequireSubnetAsync(id, ct);
            var ok = await chain.SubmitAsync(new ServeAxon(id, ClientVersion(), addr.Ip, (ushort)portValue, addr.IpType, AxonProtocol), hotkey, ct);
            var endpoint = new AxonInfo(ok.Block, 0, addr.Ip, (ushort)portValue, addr.IpType, AxonProtocol).Endpoint;
            Done(p, $"Serving {endpoint} on subnet {id} (block {ok.Block})", new { netuid = id, axon = endpoint, block = ok.Block });
            return 0;
        });
        return cmd;
    }

    private static Command Stake(bool add)
    {
        var o = new ChainOptions();
        var amount = new Option<string>("--amount") { Description = "Amount in TAO, e.g. 10 or 0.5", Required = true };
        var hotkeySs58 = new Option<string?>("--hotkey-ss58", "--hotkey_ss58", "--wallet.hotkey_ss58")
        {
            Description = "Stake on this hotkey address instead of the wallet's hotkey",
        };
        var cmd = o.AddTo(new Command(add ? "add" : "remove", add ? "Stake TAO from your coldkey on a hotkey" : "Unstake TAO from a hotkey back to your coldkey"),
            wallet: true);
        var netuidOption = new Option<int?>("--netuid")
        {
            Description = "The subnet to stake on: required by chains that keep stake per subnet (dynamic TAO, e.g. subtensor spec 218); " +
                          "one stake per hotkey (the localnet, spec 148) counts on every subnet",
        };
        cmd.Options.Add(amount);
        cmd.Options.Add(hotkeySs58);
        cmd.Options.Add(netuidOption);
        cmd.SetAction(async (p, ct) =>
        {
            var value = ParseAmount(p.GetValue(amount), "--amount");
            ushort? netuid = p.GetValue(netuidOption) is { } n
                ? n is < 0 or > ushort.MaxValue ? throw new CliException($"--netuid {n} is outside 0..65535") : (ushort)n
                : null;
            var hotkey = p.GetValue(hotkeySs58) is { Length: > 0 } text ? ParseAccount(text, "--hotkey-ss58") : o.HotkeyPub(p);
            using var coldkey = o.Coldkey(p);
            await using var chain = await o.OpenChainAsync(p, ct);
            if (netuid is null && chain.Node is { StakePerSubnet: true } node)
                throw new CliException($"this chain (spec {node.SpecVersion}) keeps stake per subnet: give the subnet with --netuid N");
            if (netuid is { } subnet && await chain.Backend.GetSubnetAsync(subnet, ct) is null)
                throw new CliException($"subnet {subnet} does not exist (see btcli subnets list)");
            var ok = await chain.SubmitAsync(add ? new AddStake(hotkey, value, netuid) : new RemoveStake(hotkey, value, netuid), coldkey, ct);
            var total = netuid is { } on
                ? await chain.Backend.GetStakeForHotkeyOnSubnetAsync(hotkey, on, ct)
                : await chain.Backend.GetTotalStakeForHotkeyAsync(hotkey, ct);
            var where = netuid is { } w && chain.Node is { StakePerSubnet: true } ? $" on subnet {w} (its alpha)" : "";
            Done(p, $"{(add ? "Staked" : "Unstaked")} {value} {(add ? "on" : "from")} {hotkey.ToSs58()} in block {ok.Block}; its stake{where} is now {total}",
                new { hotkey = hotkey.ToSs58(), netuid, amount_rao = value.Rao, stake_rao = total.Rao, block = ok.Block });
            return 0;
        });
        return cmd;
    }

    private static Command Transfer()
    {
        var o = new ChainOptions();
        var dest = new Option<string>("--dest") { Description = "Destination SS58 address", Required = true };
        var amount = new Option<string>("--amount") { Description = "Amount in TAO", Required = true };
        var cmd = o.AddTo(new Command("transfer", "Send TAO from your coldkey to another address"), wallet: true);
        cmd.Options.Add(dest);
        cmd.Options.Add(amount);
        cmd.SetAction(async (p, ct) =>
        {
            var to = ParseAccount(p.GetValue(dest) ?? "", "--dest");
            var value = ParseAmount(p.GetValue(amount), "--amount");
            using var coldkey = o.Coldkey(p);
            await using var chain = await o.OpenChainAsync(p, ct);
            var ok = await chain.SubmitAsync(new Bittensor.Core.Domain.Transfer(to, value), coldkey, ct);
            var left = await chain.Backend.GetBalanceAsync(new AccountId(coldkey.PublicKey.Span), ct);
            Done(p, $"Sent {value} to {to.ToSs58()} in block {ok.Block}; your balance is {left}",
                new { dest = to.ToSs58(), amount_rao = value.Rao, balance_rao = left.Rao, block = ok.Block });
            return 0;
        });
        return cmd;
    }

    private static Command WeightsSet()
    {
        var o = new ChainOptions();
        var netuid = Netuid();
        var uids = new Option<string>("--uids") { Description = "Comma-separated uids, e.g. 0,1,2", Required = true };
        var weights = new Option<string>("--weights") { Description = "Comma-separated non-negative weights, e.g. 0.5,0.25,0.25", Required = true };
        var cmd = o.AddTo(new Command("set", "Set your hotkey's weights on a subnet (normalised as the chain expects)"), wallet: true);
        cmd.Options.Add(netuid);
        cmd.Options.Add(uids);
        cmd.Options.Add(weights);
        cmd.SetAction(async (p, ct) =>
        {
            var id = GetNetuid(p, netuid);
            var uidList = ParseList(p.GetValue(uids), "--uids", s => long.Parse(s, NumberStyles.None, CultureInfo.InvariantCulture));
            var weightList = ParseList(p.GetValue(weights), "--weights", s => double.Parse(s, NumberStyles.Float, CultureInfo.InvariantCulture));
            if (uidList.Length != weightList.Length)
                throw new CliException($"--uids has {uidList.Length} entries but --weights has {weightList.Length}");
            if (uidList.Distinct().Count() != uidList.Length) throw new CliException("--uids has duplicates");
            using var hotkey = o.Hotkey(p);
            await using var chain = await o.OpenChainAsync(p, ct);
            var subnet = await chain.RequireSubnetAsync(id, ct);
            var h = subnet.Hyperparameters;
            ushort[] dests, values;
            try
            {
                var (procUids, procWeights) = WeightUtils.ProcessWeightsForNetuid(uidList, weightList, subnet.N, h.MinAllowedWeights, h.MaxWeightsLimit);
                (dests, values) = WeightUtils.ConvertWeightsAndUidsForEmit(procUids, procWeights);
            }
            catch (ArgumentException e)
            {
                throw new CliException(e.Message);
            }
            var ok = await chain.SubmitAsync(new SetWeights(id, [.. dests], [.. values], h.WeightsVersionKey), hotkey, ct);
            Done(p, $"Set weights on subnet {id} in block {ok.Block}: " + string.Join(", ", dests.Zip(values, (u, v) => $"{u}:{v}")),
                new { netuid = id, uids = dests, weights = values, block = ok.Block });
            return 0;
        });
        return cmd;
    }

    private static Command Balance()
    {
        var o = new ChainOptions();
        var cmd = o.AddTo(new Command("balance", "Your coldkey's free and staked TAO"), wallet: true);
        cmd.SetAction(async (p, ct) =>
        {
            var coldkey = o.ColdkeyPub(p);
            await using var chain = await o.OpenChainAsync(p, ct);
            var free = await chain.Backend.GetBalanceAsync(coldkey, ct);
            var staked = await StakedAsync(chain, coldkey, ct);
            if (Json(p))
            {
                CliApp.WriteJson(new
                {
                    coldkey = coldkey.ToSs58(),
                    free = (double)free.Tao,
                    free_rao = free.Rao,
                    staked = (double?)staked?.Tao,
                    staked_rao = staked?.Rao,
                    total_rao = staked is { } st ? (free + st).Rao : (ulong?)null,
                });
                return 0;
            }
            Console.Out.WriteLine(staked is { } total
                ? $"{coldkey.ToSs58()}  free {free}  staked {total}  total {free + total}"
                : $"{coldkey.ToSs58()}  free {free}  staked: per subnet on this chain (dynamic TAO), see each subnet's metagraph");
            return 0;
        });
        return cmd;
    }

    /// <summary>
    /// The coldkey's stake in TAO, or null on a chain that keeps stake per subnet (dynamic TAO): there it is alpha of
    /// each subnet, with no one total in TAO this client computes yet.
    /// </summary>
    private static async Task<Balance?> StakedAsync(ChainSession chain, AccountId coldkey, CancellationToken ct)
    {
        if (chain.Node is { StakePerSubnet: true }) return null;
        var stakes = await chain.Backend.GetStakesForColdkeyAsync(coldkey, ct);
        return new Balance(stakes.Aggregate(0UL, (a, s) => checked(a + s.Stake.Rao)));
    }

    private static Command LocalnetFaucet()
    {
        var o = new ChainOptions();
        var amount = new Option<string>("--amount") { Description = "TAO to mint into the wallet's coldkey (default 10000)" };
        var cmd = o.AddTo(new Command("faucet", "Mint TAO into your coldkey on the localnet"), wallet: true);
        cmd.Options.Add(amount);
        cmd.SetAction(async (p, ct) =>
        {
            o.LocalnetFolder(p);
            var value = ParseAmount(p.GetValue(amount) ?? "10000", "--amount");
            var coldkey = o.ColdkeyPub(p);
            await using var chain = await o.OpenChainAsync(p, ct);
            BlockInfo block;
            if (chain.Localnet is { } localnet)
            {
                localnet.Fund(coldkey, value);
                block = await localnet.ProduceBlockAsync(ct);
            }
            else if (chain.Node is { } dev && await dev.TryDevMintAsync(coldkey, value, ct))
            {
                // chopsticks (a real runtime forked offline): its dev_setStorage writes the new balance at the head.
                block = await chain.Backend.GetCurrentBlockAsync(ct);
            }
            else
            {
                // A node (our localnet served over JSON-RPC, or a dev chain): the dev account //Alice pays.
                using var alice = WalletKey.FromUri("//Alice");
                var included = await chain.SubmitAsync(new Transfer(coldkey, value), alice, ct);
                block = new BlockInfo(included.Block, ReadOnlyMemory<byte>.Empty, DateTimeOffset.UtcNow);
            }
            var balance = await chain.Backend.GetBalanceAsync(coldkey, ct);
            Done(p, $"Minted {value} into {coldkey.ToSs58()} (block {block.Number}); balance {balance}",
                new { coldkey = coldkey.ToSs58(), amount_rao = value.Rao, balance_rao = balance.Rao, block = block.Number });
            return 0;
        });
        return cmd;
    }

    private static T[] ParseList<T>(string? text, string flag, Func<string, T> parse)
    {
        if (string.IsNullOrWhiteSpace(text)) throw new CliException($"{flag} is required");
        var parts = text.Split(',', StringSplitOptions.TrimEntries);
        if (parts.Length > 65_536) throw new CliException($"{flag} has more than 65536 entries");
        var result = new T[parts.Length];
        for (var i = 0; i < parts.Length; i++)
        {
            try
            {
                result[i] = parse(parts[i]);
            }
            catch (Exception e) when (e is FormatException or OverflowException)
            {
                throw new CliException($"{flag}: '{parts[i]}' is not a valid number");
            }
        }
        return result;
    }

    /// <summary>This client's version as serve_axon encodes it: major·10^6 + minor·10^3 + patch.</summary>
    private static uint ClientVersion()
    {
        var v = typeof(ChainCommands).Assembly.GetName().Version ?? new Version(0, 1, 0);
        return (uint)(Math.Max(0, v.Major) * 1_000_000 + Math.Max(0, v.Minor) * 1_000 + Math.Max(0, v.Build));
    }
}

using System.CommandLine;
using System.Globalization;
using Bittensor.Actors.Chain;
using Bittensor.Chain;
using Bittensor.Chain.Local;
using Bittensor.Chain.Node;
using Bittensor.Core;

namespace Bittensor.Cli.Commands;

/// <summary><c>btcli localnet run</c> and <c>btcli localnet reset</c>: the embedded chain's verbs.</summary>
internal static class LocalnetChainCommands
{
    /// <summary><c>--localnet.path</c>: the state folder (default bittensor.localnet.path).</summary>
    private static Option<string?> PathOption() => new("--localnet.path")
    {
        Description = "Localnet state folder (default bittensor.localnet.path: ~/.bittensor/localnet/default, or ~/.bittensor/localnet/<name>)",
    };

    /// <summary><c>--localnet.name</c>: a named localnet under ~/.bittensor/localnet/ (when no path is given).</summary>
    private static Option<string?> NameOption() => new("--localnet.name")
    {
        Description = "Localnet name: the folder ~/.bittensor/localnet/<name> when --localnet.path is not given, and the chain identity",
    };

    /// <summary>The localnet settings from --localnet.path / --localnet.name (and --block_time) over --config over the reference.</summary>
    private static LocalnetSettings Settings(ParseResult parse, Option<FileInfo?> config, Option<string?> path, Option<string?> name, TimeSpan? blockTime) =>
        Load(parse, config, path, name, blockTime, []).Settings;

    private static (LocalnetSettings Settings, Akka.Configuration.Config Hocon) Load(ParseResult parse, Option<FileInfo?> config, Option<string?> path,
        Option<string?> name, TimeSpan? blockTime, IEnumerable<(string Key, object? Value)> more)
    {
        var folder = parse.GetValue(path) is { Length: > 0 } p ? p : parse.GetValue(name) is { Length: > 0 } n ? LocalnetOptions.DefaultPath(n) : null;
        var hocon = CliConfig.Load(parse, config, [("bittensor.localnet.path", folder), ("bittensor.localnet.block_time", blockTime), .. more]);
        return (CliConfig.Settings(hocon, LocalnetSettings.SectionPath, LocalnetSettings.Create), hocon);
    }

    /// <summary>Adds <c>localnet run [--blocks N] [--block_time S] [--localnet.path P] [--localnet.name N]</c>.</summary>
    public static void AddRun(Command localnet)
    {
        var blocks = new Option<ulong?>("--blocks") { Description = "Stop after producing this many blocks (default: run until Ctrl-C)" };
        var blockTime = new Option<double?>("--block_time", "--localnet.block_time")
        {
            Description = "Seconds between blocks (default bittensor.localnet.block_time: 1s; the real network makes one every 12; 0 = back to back)",
        };
        var path = PathOption();
        var name = NameOption();
        var rpcPort = new Option<int?>("--rpc.port")
        {
            Description = "Serve JSON-RPC (WebSocket and HTTP POST) on this port (default 9944; 0 = any free port, printed at start)",
        };
        var rpcHost = new Option<string?>("--rpc.host") { Description = "Address to serve JSON-RPC on (default 127.0.0.1)" };
        var noRpc = new Option<bool>("--no_rpc") { Description = "Do not serve JSON-RPC" };
        var manual = new Option<bool>("--manual_seal")
        {
            Description = "Produce blocks only on request (JSON-RPC dev_newBlock), not on a timer",
        };
        var run = new Command("run", "Run the embedded localnet as a node: serve JSON-RPC and produce blocks until --blocks more exist or until stopped");
        run.Options.Add(blocks);
        run.Options.Add(blockTime);
        run.Options.Add(rpcPort);
        run.Options.Add(rpcHost);
        run.Options.Add(noRpc);
        run.Options.Add(manual);
        run.Options.Add(path);
        run.Options.Add(name);
        var config = CliConfig.AddTo(run);
        var logging = CliLogging.AddFlags(run);
        run.SetAction(async (parse, cancellationToken) =>
        {
            if (parse.GetValue(blockTime) is { } seconds && (!(seconds >= 0) || seconds > 3600)) throw new CliException("--block_time must be between 0 and 3600 seconds");
            var (settings, hocon) = Load(parse, config, path, name, parse.GetValue(blockTime) is { } t ? TimeSpan.FromSeconds(t) : null, logging(parse));
            using var logs = CliLogging.Start(hocon);
            if (parse.GetValue(rpcPort) is { } port && port is < 0 or > 65535) throw new CliException("--rpc.port must be between 0 and 65535");
            var rpc = parse.GetValue(noRpc)
                ? null
                : new RpcSettings(new LocalnetNodeOptions
                {
                    Host = parse.GetValue(rpcHost) is { Length: > 0 } h ? h : "127.0.0.1",
                    Port = parse.GetValue(rpcPort) ?? LocalnetNodeOptions.DefaultPort,
                    LoggerFactory = logs.Factory,
                }, Explicit: parse.GetValue(rpcPort) is not null || parse.GetValue(rpcHost) is not null);
            var produced = await RunAsync(settings.Path, parse.GetValue(name) ?? settings.Name, settings.BlockTime, parse.GetValue(blocks), cancellationToken,
                rpc, parse.GetValue(manual)).ConfigureAwait(false);
            await Console.Out.WriteLineAsync(string.Create(CultureInfo.InvariantCulture, $"stopped after {produced} block(s)")).ConfigureAwait(false);
            return 0;
        });
        localnet.Subcommands.Add(run);
    }

    /// <summary>Opens the folder, prints where it is, produces blocks and prints each one.</summary>
    internal static async Task<ulong> RunAsync(string folder, string name, TimeSpan blockTime, ulong? blocks, CancellationToken cancellationToken,
        RpcSettings? rpc = null, bool manualSeal = false)
    {
        Localnet chain;
        try
        {
            chain = Localnet.Open(new LocalnetOptions { Name = name, Path = folder }, YumaEpochRunner.Instance);
        }
        catch (LocalnetException e)
        {
            throw new CliException(e.Message);
        }
        await using (chain.ConfigureAwait(false))
        {
            if (chain.RecoveryWarning is { } warning) await Console.Error.WriteLineAsync("warning: " + warning).ConfigureAwait(false);
            await Console.Out.WriteLineAsync(string.Create(CultureInfo.InvariantCulture,
                $"localnet '{name}' at {folder}: block {chain.BlockNumber}, genesis {Hex.Encode(chain.Identity.GenesisHash.Span)}")).ConfigureAwait(false);
            LocalnetNode? node = null;
            if (rpc is not null)
            {
                try
                {
                    node = await LocalnetNode.StartAsync(chain, rpc.Options, cancellationToken).ConfigureAwait(false);
                    await Console.Out.WriteLineAsync($"rpc: {node.Endpoint.ToString().TrimEnd('/')} (JSON-RPC 2.0 over WebSocket; HTTP POST on the same port)").ConfigureAwait(false);
                }
                catch (IOException e) when (!rpc.Explicit)
                {
                    // The default port is taken (another node, or a test): the chain still runs; say how to serve.
                    await Console.Error.WriteLineAsync($"warning: not serving JSON-RPC: {rpc.Options.Host}:{rpc.Options.Port} is unavailable ({e.Message}); pass --rpc.port 0 for any free port").ConfigureAwait(false);
                }
                catch (IOException e)
                {
                    throw new CliException($"cannot serve JSON-RPC on {rpc.Options.Host}:{rpc.Options.Port}: {e.Message}");
                }
            }
            using var printer = new CancellationTokenSource();
            var printing = PrintBlocksAsync(chain, printer.Token);
            try
            {
                if (manualSeal)
                {
                    // Blocks come from dev_newBlock only; run until stopped (or until --blocks more exist).
                    var start = chain.BlockNumber;
                    await foreach (var b in chain.SubscribeBlocksAsync(cancellationToken).ConfigureAwait(false))
                        if (blocks is { } max && b.Number - start >= max) return b.Number - start;
                    return chain.BlockNumber - start;
                }
                return await new LocalnetBlockProducer(chain, blockTime).RunAsync(blocks, cancellationToken).ConfigureAwait(false);
            }
            catch (OperationCanceledException) when (cancellationToken.IsCancellationRequested)
            {
                return 0;
            }
            catch (ChainUnavailableException e)
            {
                throw new CliException(e.Message);
            }
            finally
            {
                await printer.CancelAsync().ConfigureAwait(false);
                try { await printing.ConfigureAwait(false); }
                catch (OperationCanceledException) { }
                if (node is not null) await node.DisposeAsync().ConfigureAwait(false);
            }
        }
    }

    private static async Task PrintBlocksAsync(Localnet chain, CancellationToken cancellationToken)
    {
        await foreach (var block in chain.SubscribeBlocksAsync(cancellationToken).ConfigureAwait(false))
            await Console.Out.WriteLineAsync(string.Create(CultureInfo.InvariantCulture, $"#{block.Number} {Hex.Encode(block.Hash.Span)}")).ConfigureAwait(false);
    }

    /// <summary>Adds <c>localnet reset [--localnet.path P] [--localnet.name N]</c>.</summary>
    public static void AddReset(Command localnet)
    {
        var path = PathOption();
        var name = NameOption();
        var reset = new Command("reset", "Delete the localnet's state; the next run starts a new genesis");
        reset.Options.Add(path);
        reset.Options.Add(name);
        var config = CliConfig.AddTo(reset);
        reset.SetAction(parse =>
        {
            var folder = Settings(parse, config, path, name, null).Path;
            if (!Directory.Exists(folder)) throw new CliException($"no localnet at {folder}");
            try
            {
                Localnet.Reset(folder);
            }
            catch (LocalnetException e)
            {
                throw new CliException(e.Message);
            }
            Console.Out.WriteLine($"localnet at {folder} reset");
            return 0;
        });
        localnet.Subcommands.Add(reset);
    }

    /// <summary>Where to serve JSON-RPC; <paramref name="Explicit"/> when the user chose the address (a bind failure is then an error).</summary>
    internal sealed record RpcSettings(LocalnetNodeOptions Options, bool Explicit);
}

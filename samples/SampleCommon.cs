using Akka.Actor;
using Akka.Configuration;
using Bittensor.Core.Crypto;
using Bittensor.Core.Domain;
using Bittensor.Models;
using Bittensor.Neurons;
using Bittensor.Wallet;
using Bittensor.Actors.ModelHost;

namespace Bittensor.Samples;

/// <summary>What every sample needs: where the wallets and the local chain are (or a chain shared in-process).</summary>
/// <param name="WalletPath">Folder of the wallets (created when missing).</param>
/// <param name="WalletName">Wallet to use (created, unencrypted, when missing: local testing only).</param>
/// <param name="LocalnetPath">Localnet folder, used when <paramref name="Shared"/> is null.</param>
/// <param name="Shared">A localnet another part of this process owns and drives (tests run several samples on one chain).</param>
/// <param name="NeuronPath">The neuron's state folder (<c>--neuron.full_path</c>); null: ~/.bittensor/miners/&lt;wallet&gt;/default/netuid&lt;N&gt;/&lt;role&gt;.</param>
internal sealed record SampleOptions(string WalletPath, string WalletName, string LocalnetPath, Bittensor.Chain.Local.Localnet? Shared = null, string? NeuronPath = null)
{
    /// <summary>The neuron's state folder (its axon's nonce store lives there).</summary>
    public string StateFolder(ushort netuid, string role) => NeuronPath ?? Bittensor.Neurons.NeuronPaths.Default(WalletName, "default", netuid, role);

    /// <summary>Parses <c>--wallet.path P --wallet.name N --localnet.path L --neuron.full_path F</c> with defaults under the user's home.</summary>
    public static SampleOptions Parse(string[] args, string defaultName)
    {
        string Get(string flag, string fallback)
        {
            var i = Array.IndexOf(args, flag);
            return i >= 0 && i + 1 < args.Length ? args[i + 1] : fallback;
        }
        var home = Environment.GetFolderPath(Environment.SpecialFolder.UserProfile);
        var neuron = Get("--neuron.full_path", "");
        return new SampleOptions(Get("--wallet.path", Path.Combine(home, ".bittensor", "wallets")), Get("--wallet.name", defaultName),
            Get("--localnet.path", Path.Combine(home, ".bittensor", "localnet", "samples")), NeuronPath: neuron.Length == 0 ? null : neuron);
    }
}

/// <summary>Helpers the samples share (kept out of the snippets so they read like the seed's).</summary>
internal static class SampleHost
{
    /// <summary>An actor system with the reference configuration (model dispatcher, axon mailbox); the samples keep no metagraph snapshots.</summary>
    public static ActorSystem CreateSystem(string name) =>
        ActorSystem.Create(name, ConfigurationFactory.ParseString("akka.loglevel = WARNING\nbittensor.metagraph.save = off").WithFallback(Bittensor.Actors.BittensorRuntime.ReferenceConfig));

    /// <summary>The chain: the shared localnet, or the one in <see cref="SampleOptions.LocalnetPath"/> with a block every 250 ms.</summary>
    public static LocalChainHost Chain(ActorSystem system, SampleOptions options) =>
        options.Shared is { } shared ? LocalChainHost.Borrow(system, shared) : LocalChainHost.Open(system, options.LocalnetPath, TimeSpan.FromMilliseconds(250));

    /// <summary>
    /// Opens the wallet's coldkey and hotkey, creating both (unencrypted) when missing — fine for a local chain, not for
    /// real funds — and tops the coldkey up on the local chain.
    /// </summary>
    public static async Task<NeuronKeys> WalletAsync(SampleOptions options, LocalChainHost chain, CancellationToken cancellationToken)
    {
        var wallet = new LocalWallet(options.WalletName, "default", options.WalletPath);
        if (!File.Exists(wallet.ColdkeyPath))
        {
            using var cold = WalletKey.Generate();
            using var hot = WalletKey.Generate();
            wallet.CreateColdkey(cold, password: null, overwrite: false);
            wallet.CreateHotkey(hot, password: null, overwrite: false);
        }
        var coldkey = wallet.LoadColdkey(null);
        var hotkey = wallet.LoadHotkey(null);
        await chain.FaucetAsync(new AccountId(coldkey.PublicKey.Span), Balance.FromTao(10_000m), cancellationToken);
        return NeuronKeys.FromWallet(hotkey, coldkey);
    }
}

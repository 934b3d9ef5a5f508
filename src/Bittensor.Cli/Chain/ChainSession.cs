using Bittensor.Actors.Chain;
using Bittensor.Chain;
using Bittensor.Chain.Local;
using Bittensor.Core.Domain;
using Bittensor.Wallet;

namespace Bittensor.Cli.Chain;

/// <summary>
/// One btcli verb's connection to the chain. On <c>--subtensor.network local</c> (the default) it opens the localnet
/// folder directly — a localnet has one owner at a time, so while a <c>btcli localnet run</c> holds it, other verbs
/// report "in use by PID n" (a known limitation until the localnet is served over JSON-RPC). Because nobody else
/// produces blocks then, <see cref="SubmitAsync"/> produces the block that includes the call (block on demand).
/// </summary>
internal sealed class ChainSession : IAsyncDisposable
{
    private ChainSession(string network, IChainBackend backend, Localnet? localnet)
    {
        Network = network;
        Backend = backend;
        Localnet = localnet;
    }

    /// <summary>Network name (<c>local</c>, …).</summary>
    public string Network { get; }

    /// <summary>The backend every read goes through.</summary>
    public IChainBackend Backend { get; }

    /// <summary>The localnet when the network is local, else null.</summary>
    public Localnet? Localnet { get; }

    /// <summary>Opens the chain the settings name; user errors become <see cref="CliException"/>.</summary>
    public static ChainSession Open(SubtensorSettings subtensor, LocalnetSettings localnetSettings)
    {
        if (!subtensor.IsLocal)
        {
            var endpoint = subtensor.ResolvedEndpoint;
            throw new CliException($"network '{subtensor.Network}'{(endpoint.Length > 0 ? $" ({endpoint})" : "")} needs the Substrate client, " +
                "which is not available yet; use --subtensor.network local (the embedded localnet)");
        }
        var path = localnetSettings.Path;
        try
        {
            var localnet = Localnet.Open(new LocalnetOptions { Name = localnetSettings.Name, Path = path }, YumaEpochRunner.Instance);
            if (localnet.RecoveryWarning is { } warning) Console.Error.WriteLine($"warning: {warning}");
            return new ChainSession(subtensor.Network, localnet, localnet);
        }
        catch (LocalnetException e)
        {
            throw new CliException(e.Message.Contains("in use", StringComparison.Ordinal)
                ? $"{e.Message}; stop that process first (one-shot verbs open the localnet directly until it is served over JSON-RPC)"
                : e.Message);
        }
        catch (UnauthorizedAccessException e)
        {
            throw new CliException($"cannot open the localnet at {path}: {e.Message}");
        }
    }

    /// <summary>
    /// Signs <paramref name="call"/> with <paramref name="key"/> at the account's next nonce, submits it and — on the
    /// localnet — produces the block that includes it. Returns the including block; a refusal becomes
    /// <see cref="CliException"/> naming the chain's error.
    /// </summary>
    public async Task<CallResult.InBlock> SubmitAsync(ChainCall call, WalletKey key, CancellationToken ct)
    {
        var account = new AccountId(key.PublicKey.Span);
        var identity = await Backend.GetIdentityAsync(ct).ConfigureAwait(false);
        var nonce = await Backend.GetNonceAsync(account, ct).ConfigureAwait(false);
        var callBytes = call.ToBytes();
        var signature = key.Sign(SignedCall.SigningPayload(callBytes, nonce, identity));
        var pending = Backend.SubmitAsync(new SignedCall(callBytes, account, nonce, signature), ct);
        if (Localnet is not null && !pending.IsCompleted) await Localnet.ProduceBlockAsync(ct).ConfigureAwait(false);
        return await pending.ConfigureAwait(false) switch
        {
            CallResult.InBlock ok => ok,
            CallResult.Failed f => throw new CliException($"{call.Name} failed: {f.Error}: {f.Message}"),
            var other => throw new CliException($"{call.Name}: unexpected result {other}"),
        };
    }

    /// <summary>The subnet's parameters; a missing subnet is a <see cref="CliException"/>.</summary>
    public async Task<SubnetInfo> RequireSubnetAsync(ushort netuid, CancellationToken ct) =>
        await Backend.GetSubnetAsync(netuid, ct).ConfigureAwait(false)
        ?? throw new CliException($"subnet {netuid} does not exist (see btcli subnets list)");

    /// <inheritdoc />
    public ValueTask DisposeAsync() => Backend.DisposeAsync();
}

using Bittensor.Actors.Chain;
using Bittensor.Chain;
using Bittensor.Chain.Local;
using Bittensor.Chain.Rpc;
using Bittensor.Chain.Substrate;
using Bittensor.Core.Scale;
using Bittensor.Core.Domain;
using Bittensor.Wallet;

namespace Bittensor.Cli.Chain;

/// <summary>
/// One btcli verb's connection to the chain: a Substrate node over JSON-RPC (<see cref="SubstrateChainBackend"/>), or,
/// on <c>--subtensor.network local</c> with no node answering, the localnet folder opened directly — a localnet has
/// one owner at a time, and because nobody else produces blocks then, <see cref="SubmitAsync"/> produces the block
/// that includes the call (block on demand).
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

    /// <summary>The Substrate node when the session talks to one, else null.</summary>
    public SubstrateChainBackend? Node => Backend as SubstrateChainBackend;

    /// <summary>
    /// Opens the chain the settings name: a Substrate node at <c>--subtensor.chain_endpoint</c> (or the network's
    /// well-known endpoint); for <c>local</c> without an endpoint, the node at <c>bittensor.subtensor.local_endpoint</c>
    /// when one answers, else the embedded localnet folder. User errors become <see cref="CliException"/>.
    /// </summary>
    public static async Task<ChainSession> OpenAsync(SubtensorSettings subtensor, LocalnetSettings localnetSettings, CancellationToken ct)
    {
        var endpoint = subtensor.ResolvedEndpoint;
        if (endpoint.Length > 0)
        {
            try
            {
                var node = await SubstrateChainBackend.ConnectAsync(subtensor.BackendOptions(endpoint), ct).ConfigureAwait(false);
                return new ChainSession(subtensor.Network, node, null);
            }
            catch (Exception e) when (e is ChainUnavailableException or JsonRpcException or MetadataException or ScaleException)
            {
                throw new CliException($"cannot use the node at {endpoint} (network '{subtensor.Network}'): {e.Message}");
            }
        }
        if (!subtensor.IsLocal)
            throw new CliException($"network '{subtensor.Network}' has no well-known endpoint; give --subtensor.chain_endpoint ws://host:port");
        if (subtensor.LocalEndpoint.Length > 0)
        {
            var probe = subtensor with { RequestTimeout = TimeSpan.FromSeconds(5) };
            var options = probe.BackendOptions(subtensor.LocalEndpoint);
            options = options with { Rpc = options.Rpc with { ConnectTimeout = TimeSpan.FromSeconds(2) } };
            try
            {
                var node = await SubstrateChainBackend.ConnectAsync(options, ct).ConfigureAwait(false);
                return new ChainSession(subtensor.Network, node, null);
            }
            catch (Exception e) when (e is ChainUnavailableException or JsonRpcException)
            {
                // Nobody serves there: open the embedded localnet, as before nodes existed.
            }
            catch (Exception e) when (e is MetadataException or ScaleException or KeyNotFoundException or InvalidOperationException)
            {
                throw new CliException($"{subtensor.LocalEndpoint} answers but is not a Substrate node this client can use: {e.Message}");
            }
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
                ? $"{e.Message}; stop that process first, or serve it with btcli localnet run --rpc.port P and pass --subtensor.chain_endpoint ws://127.0.0.1:P"
                : e.Message);
        }
        catch (UnauthorizedAccessException e)
        {
            throw new CliException($"cannot open the localnet at {path}: {e.Message}");
        }
    }

    /// <summary>
    /// Signs <paramref name="call"/> with <paramref name="key"/> at the account's next nonce, submits it and — on the
    /// embedded localnet — produces the block that includes it. On a node the call is encoded from the runtime's
    /// metadata and signed with a mortal era; the answer comes at inclusion (or finality with
    /// <paramref name="waitForFinalization"/>). Returns the including block; a refusal becomes
    /// <see cref="CliException"/> naming the chain's error.
    /// </summary>
    public async Task<CallResult.InBlock> SubmitAsync(ChainCall call, WalletKey key, CancellationToken ct, bool waitForFinalization = false)
    {
        var account = new AccountId(key.PublicKey.Span);
        CallResult result;
        try
        {
            var nonce = await Backend.GetNonceAsync(account, ct).ConfigureAwait(false);
            if (Backend is IRemoteChainBackend remote)
            {
                var prepared = await remote.PrepareAsync(call, account, nonce, ct).ConfigureAwait(false);
                var signature = key.Sign(prepared.Payload.Span);
                result = await remote.SubmitAsync(prepared, signature, waitForFinalization, ct).ConfigureAwait(false);
            }
            else
            {
                var identity = await Backend.GetIdentityAsync(ct).ConfigureAwait(false);
                var callBytes = Backend.ForRuntime(call).ToBytes();
                var signature = key.Sign(SignedCall.SigningPayload(callBytes, nonce, identity));
                var pending = Backend.SubmitAsync(new SignedCall(callBytes, account, nonce, signature), ct);
                if (Localnet is not null && !pending.IsCompleted) await Localnet.ProduceBlockAsync(ct).ConfigureAwait(false);
                result = await pending.ConfigureAwait(false);
            }
        }
        catch (ChainNotSupportedException e)
        {
            throw new CliException($"{call.Name}: {e.Message}");
        }
        catch (ChainUnavailableException e)
        {
            throw new CliException($"{call.Name}: the chain is unavailable: {e.Message}");
        }
        return result switch
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

using Akka.Actor;
using Bittensor.Actors.Chain;
using Bittensor.Chain;
using Bittensor.Core.Domain;

namespace Bittensor.Neurons.Roles;

/// <summary>Small request/response helpers over a ChainActor shared by the roles.</summary>
public static class ChainOps
{
    /// <summary>Longest wait for a submission's typed result (the ChainActor's own timeout answers first).</summary>
    public static readonly TimeSpan SubmitWait = TimeSpan.FromSeconds(90);

    /// <summary>Submits <paramref name="call"/> signed by <paramref name="signer"/> and waits for inclusion or refusal.</summary>
    public static Task<SubmitResult> SubmitAsync(IActorRef chain, ChainCall call, ICallSigner signer, CancellationToken cancellationToken) =>
        chain.Ask<SubmitResult>(new Submit(call, signer), SubmitWait, cancellationToken);

    /// <summary>Submits and throws <see cref="NeuronException"/> with the runtime's error when the call fails.</summary>
    public static async Task<SubmitResult> SubmitOrThrowAsync(IActorRef chain, ChainCall call, ICallSigner signer, CancellationToken cancellationToken)
    {
        var result = await SubmitAsync(chain, call, signer, cancellationToken);
        if (!result.IsSuccess) throw new NeuronException($"{call.Name} failed: {result.Result}");
        return result;
    }

    /// <summary>Runs a read against the chain actor's backend.</summary>
    /// <remarks>
    /// The ChainActor answers reads with <see cref="ChainUnavailableException"/> while it (re)connects, e.g. right after it
    /// was created; such reads are retried with a growing pause for up to about 30 seconds.
    /// </remarks>
    public static async Task<T> ReadAsync<T>(IActorRef chain, Func<IChainBackend, CancellationToken, Task<T>> read, CancellationToken cancellationToken)
    {
        var pause = TimeSpan.FromMilliseconds(25);
        for (var attempt = 0; ; attempt++)
        {
            try
            {
                return await chain.Ask<T>(new ChainRead<T>(read), TimeSpan.FromSeconds(30), cancellationToken);
            }
            catch (ChainUnavailableException) when (attempt < 30)
            {
                await Task.Delay(pause, cancellationToken);
                pause = TimeSpan.FromMilliseconds(Math.Min(2000, pause.TotalMilliseconds * 2));
            }
        }
    }

    /// <summary>The uid of <paramref name="hotkey"/> on <paramref name="netuid"/>, or null when it is not registered.</summary>
    public static async Task<ushort?> FindUidAsync(IActorRef chain, ushort netuid, AccountId hotkey, CancellationToken cancellationToken)
    {
        var neurons = await ReadAsync(chain, async (b, ct) => await b.GetNeuronsAsync(netuid, ct), cancellationToken);
        foreach (var n in neurons)
            if (n.Hotkey == hotkey) return n.Uid;
        return null;
    }

    /// <summary>The subnet's hyperparameters; throws <see cref="NeuronException"/> when the subnet does not exist.</summary>
    public static async Task<SubnetHyperparameters> HyperparametersAsync(IActorRef chain, ushort netuid, CancellationToken cancellationToken) =>
        await ReadAsync(chain, async (b, ct) => await b.GetHyperparametersAsync(netuid, ct), cancellationToken)
        ?? throw new NeuronException($"subnet {netuid} does not exist");

    /// <summary>How many blocks in a row a registration may lose to others' (<c>TooManyRegistrationsThisBlock</c>) before the role gives up.</summary>
    public const int RegistrationBlockAttempts = 16;

    /// <summary>
    /// Registers <paramref name="keys"/>' hotkey on <paramref name="netuid"/> with a burned registration unless it already is;
    /// returns its uid. Needs the coldkey. A registration refused with <c>TooManyRegistrationsThisBlock</c> (neurons
    /// started together on a subnet that admits fewer per block) is submitted again: its retry can only land in a
    /// later block, so each round at least one of the racers gets in; after <see cref="RegistrationBlockAttempts"/>
    /// such refusals the error is thrown. Other refusals are thrown at once.
    /// </summary>
    public static async Task<ushort> EnsureRegisteredAsync(IActorRef chain, ushort netuid, NeuronKeys keys, CancellationToken cancellationToken)
    {
        if (await FindUidAsync(chain, netuid, keys.HotkeyAccount, cancellationToken) is { } uid) return uid;
        var coldkey = keys.Coldkey ?? throw new NeuronException($"hotkey {keys.HotkeySs58} is not registered on subnet {netuid} and no coldkey is unlocked to register it");
        var call = new BurnedRegister(netuid, keys.HotkeyAccount);
        for (var attempt = 1; ; attempt++)
        {
            var result = await SubmitAsync(chain, call, coldkey, cancellationToken);
            if (result.IsSuccess) break;
            if (result.Result is CallResult.Failed { Error: "TooManyRegistrationsThisBlock", Block: not null } && attempt < RegistrationBlockAttempts) continue;
            throw new NeuronException($"{call.Name} failed: {result.Result}");
        }
        return await FindUidAsync(chain, netuid, keys.HotkeyAccount, cancellationToken)
            ?? throw new NeuronException($"hotkey {keys.HotkeySs58} was registered but has no uid on subnet {netuid}");
    }

    /// <summary>Announces the axon at <paramref name="ip"/>:<paramref name="port"/> on chain (<c>serve_axon</c>, hotkey-signed).</summary>
    public static Task ServeAxonAsync(IActorRef chain, ushort netuid, NeuronKeys keys, string ip, int port, CancellationToken cancellationToken)
    {
        var (address, type) = AxonInfo.ParseIp(ip);
        var call = new ServeAxon(netuid, (uint)Bittensor.Protocol.ProtocolVersion.Current, address, checked((ushort)port), type, 4);
        return SubmitOrThrowAsync(chain, call, keys.Hotkey, cancellationToken);
    }
}

/// <summary>A role could not start or act: the message says which chain call or setting failed (never a secret).</summary>
public sealed class NeuronException(string message) : Exception(message);

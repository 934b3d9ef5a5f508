using Bittensor.Chain;
using Bittensor.Core.Domain;

namespace Bittensor.Actors.Chain;

/// <summary>
/// Submit a call signed by <paramref name="Signer"/>. The ChainActor assigns the nonce, signs, submits and answers
/// the sender with a <see cref="SubmitResult"/> once the call is in a block (or final, per <paramref name="WaitFor"/>),
/// or refused.
/// </summary>
/// <param name="Call">The call to submit.</param>
/// <param name="Signer">Who signs; its account's nonce is tracked.</param>
/// <param name="WaitFor">Inclusion or finalization; null = <see cref="SubtensorSettings.WaitFor"/>.</param>
/// <param name="Id">Correlation id echoed in the result.</param>
public sealed record Submit(ChainCall Call, ICallSigner Signer, WaitFor? WaitFor = null, string? Id = null);

/// <summary>
/// The answer to <see cref="Submit"/>. <paramref name="Result"/> is <see cref="CallResult.InBlock"/> or
/// <see cref="CallResult.Failed"/> with the runtime's error name, a pool reason, or one of the actor's own:
/// <c>QueueFull</c>, <c>Timeout</c>, <c>ChainUnavailable</c>, <c>SignerFailed</c>.
/// </summary>
/// <param name="Id">The submission's correlation id.</param>
/// <param name="CallName">The call's runtime name, e.g. <c>set_weights</c>.</param>
/// <param name="Signer">Signing account.</param>
/// <param name="Nonce">The nonce used, or null when the call was never signed.</param>
/// <param name="Result">Typed outcome.</param>
public sealed record SubmitResult(string? Id, string CallName, AccountId Signer, uint? Nonce, CallResult Result)
{
    /// <summary>True when the call was included and succeeded.</summary>
    public bool IsSuccess => Result.IsSuccess;
}

/// <summary>Published on the EventStream for every new block the chain reports, in increasing order.</summary>
/// <param name="Number">Block number.</param>
public sealed record NewBlock(ulong Number);

/// <summary>Published on the EventStream when the ChainActor has a working backend (after start or a reconnect).</summary>
/// <param name="Block">Best block at connection.</param>
public sealed record ChainConnected(ulong Block);

/// <summary>Published on the EventStream when a connection attempt failed or the backend broke.</summary>
/// <param name="Reason">Exception type and message.</param>
/// <param name="Attempt">Retry number (0-based) the next attempt will be.</param>
/// <param name="RetryIn">Delay before the next attempt.</param>
public sealed record ChainDisconnected(string Reason, int Attempt, TimeSpan RetryIn);

/// <summary>
/// A read against the current backend, answered with the value (or <c>Status.Failure</c>). Fails fast with
/// <see cref="ChainUnavailableException"/> while the actor is reconnecting. Local-only (carries a delegate).
/// </summary>
public abstract record ChainRead
{
    private protected ChainRead()
    {
    }

    internal abstract Task<object?> RunAsync(IChainBackend backend, CancellationToken cancellationToken);
}

/// <summary>A typed <see cref="ChainRead"/>: the sender receives the <typeparamref name="T"/> the delegate returns.</summary>
/// <param name="Read">What to read.</param>
public sealed record ChainRead<T>(Func<IChainBackend, CancellationToken, Task<T>> Read) : ChainRead
{
    internal override async Task<object?> RunAsync(IChainBackend backend, CancellationToken cancellationToken) =>
        await Read(backend, cancellationToken);
}

/// <summary>Ask the ChainActor for its connection state; answered with <see cref="ChainStatus"/>.</summary>
public sealed record GetChainStatus
{
    /// <summary>The single instance.</summary>
    public static GetChainStatus Instance { get; } = new();
}

/// <summary>The ChainActor's connection state.</summary>
/// <param name="Connected">True when a backend is ready.</param>
/// <param name="LastBlock">Last block published, if any.</param>
/// <param name="QueuedSubmissions">Submissions waiting (all keys).</param>
public sealed record ChainStatus(bool Connected, ulong? LastBlock, int QueuedSubmissions);

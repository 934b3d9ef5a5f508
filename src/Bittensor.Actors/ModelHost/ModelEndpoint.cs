using Akka.Actor;

namespace Bittensor.Actors.ModelHost;

/// <summary>
/// The hosted model as an axon (or any other caller outside the actor system) sees it: plain arrays in, arrays
/// and a <see cref="ModelReturnCode"/> out. Never throws for model-side failures: a crash, a timeout or a full
/// queue come back as codes.
/// </summary>
public interface IModelEndpoint
{
    /// <summary>Representations of <paramref name="tokens"/> ([batch, seq] row-major): [batch, seq, network_dim] on success.</summary>
    Task<ModelForwardResult> ForwardAsync(long[] tokens, int batch, int seq, CancellationToken cancellationToken);

    /// <summary>One optimizer step from <paramref name="grads"/>, the gradient w.r.t. the outputs for <paramref name="tokens"/>.</summary>
    Task<ModelBackwardResult> BackwardAsync(long[] tokens, float[] grads, int batch, int seq, CancellationToken cancellationToken);
}

/// <summary>
/// <see cref="IModelEndpoint"/> over a <see cref="ModelSupervisor"/> (Ask with a deadline). The delegates
/// <see cref="Forward"/> and <see cref="Backward"/> plug into callback-style hosts such as the axon's handlers.
/// </summary>
public sealed class ModelSupervisorEndpoint : IModelEndpoint
{
    private readonly IActorRef _supervisor;
    private readonly TimeSpan _timeout;
    private long _nextRequestId;

    /// <summary>Calls <paramref name="supervisor"/>; a call not answered within <paramref name="timeout"/> gives NucleusTimeout.</summary>
    public ModelSupervisorEndpoint(IActorRef supervisor, TimeSpan timeout)
    {
        ArgumentNullException.ThrowIfNull(supervisor);
        ArgumentOutOfRangeException.ThrowIfLessThanOrEqual(timeout, TimeSpan.Zero);
        _supervisor = supervisor;
        _timeout = timeout;
    }

    /// <summary><see cref="ForwardAsync"/> as a delegate.</summary>
    public Func<long[], int, int, CancellationToken, Task<ModelForwardResult>> Forward => ForwardAsync;

    /// <summary><see cref="BackwardAsync"/> as a delegate.</summary>
    public Func<long[], float[], int, int, CancellationToken, Task<ModelBackwardResult>> Backward => BackwardAsync;

    /// <inheritdoc />
    public async Task<ModelForwardResult> ForwardAsync(long[] tokens, int batch, int seq, CancellationToken cancellationToken)
    {
        var id = Interlocked.Increment(ref _nextRequestId);
        try
        {
            return await _supervisor.Ask<ModelForwardResult>(new ModelForward(id, tokens, batch, seq), _timeout, cancellationToken).ConfigureAwait(false);
        }
        catch (Exception e) when (e is AskTimeoutException or TaskCanceledException or OperationCanceledException)
        {
            return new ModelForwardResult(id, [], [], ModelReturnCode.NucleusTimeout, "the model did not answer in time");
        }
    }

    /// <inheritdoc />
    public async Task<ModelBackwardResult> BackwardAsync(long[] tokens, float[] grads, int batch, int seq, CancellationToken cancellationToken)
    {
        var id = Interlocked.Increment(ref _nextRequestId);
        try
        {
            return await _supervisor.Ask<ModelBackwardResult>(new ModelBackward(id, tokens, grads, batch, seq), _timeout, cancellationToken).ConfigureAwait(false);
        }
        catch (Exception e) when (e is AskTimeoutException or TaskCanceledException or OperationCanceledException)
        {
            return new ModelBackwardResult(id, ModelReturnCode.NucleusTimeout, 0, "the model did not answer in time");
        }
    }
}

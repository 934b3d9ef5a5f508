namespace Bittensor.Neurons.Demo;

/// <summary>
/// Produces the demo's blocks: a localnet's in-process, a node's over JSON-RPC (<c>dev_newBlock</c>) with
/// <c>demo --processes</c>; <c>produce</c> makes one block and answers its number. With a block time, a block follows the clock; with none, a
/// block is produced when there is something to include (a call was submitted) or to train on (a batch completed),
/// so tests drive the chain by events, never by sleeping. Once <see cref="Lockstep"/> is on, each block also waits
/// for <c>stepsPerBlock</c> validator batches, so every epoch sees the same training however busy the machine is;
/// a stalled pipeline cannot stop the chain: after <c>stallTimeout</c> the block is produced anyway.
/// </summary>
internal sealed class BlockDriver(Func<CancellationToken, Task<ulong>> produce, TimeSpan blockTime, int stepsPerBlock, TimeSpan stallTimeout)
{
    private readonly SemaphoreSlim _work = new(0, int.MaxValue);
    private readonly SemaphoreSlim _batches = new(0, int.MaxValue);

    /// <summary>A driver of an in-process localnet's blocks.</summary>
    public static BlockDriver Of(Bittensor.Chain.Local.Localnet chain, TimeSpan blockTime, int stepsPerBlock, TimeSpan stallTimeout) =>
        new(async ct => (await chain.ProduceBlockAsync(ct)).Number, blockTime, stepsPerBlock, stallTimeout);

    /// <summary>True once blocks wait for validator batches.</summary>
    public volatile bool Lockstep;

    /// <summary>
    /// Set by the network when it knows the validator's weight schedule: true for a block at which the validator sets its
    /// weights (subtensor's blocks-until-epoch equals its <c>weights_lead_blocks</c>). In lockstep the block after it then
    /// also waits (at most <c>stallTimeout</c>) until <see cref="WeightsSubmitted"/>: the weights are in the pool (or the
    /// validator said it sets none), so the next block includes them. Without this hold a validator batch completing
    /// before the weights reached the pool let that block go without them, the weights landed in the epoch's own block,
    /// and the epoch (run before the block's calls) never counted them (a CI failure on a busy machine, session 15).
    /// </summary>
    public Func<ulong, bool>? SetsWeightsAt;

    private TaskCompletionSource? _weights;
    private ulong _last;

    /// <summary>Test seam: raised when the driver starts holding a block for the validator's weights.</summary>
    internal event Action? HoldingForWeights;

    /// <summary>The validator's weights for the held block are in the pool, or it reported that it sets none.</summary>
    public void WeightsSubmitted() => Volatile.Read(ref _weights)?.TrySetResult();

    /// <summary>A call entered the pool: the next block should include it.</summary>
    public void Submitted() => _work.Release();

    /// <summary>The validator completed a batch.</summary>
    public void BatchDone()
    {
        _batches.Release();
        _work.Release();
    }

    /// <summary>
    /// Forgets the validator batches completed so far: the next blocks wait for fresh ones (after the chain was held,
    /// the batches done meanwhile would otherwise let the next blocks through at once).
    /// </summary>
    public void DropBankedBatches()
    {
        while (_batches.Wait(0))
        {
        }
    }

    /// <summary>Produces blocks until cancelled, calling <paramref name="onBlock"/> after each; it returns false to stop.</summary>
    public async Task RunAsync(Func<ulong, Task<bool>> onBlock, CancellationToken cancellationToken)
    {
        while (!cancellationToken.IsCancellationRequested)
        {
            if (blockTime > TimeSpan.Zero) await Task.Delay(blockTime, cancellationToken);
            else await _work.WaitAsync(cancellationToken);
            if (Lockstep)
                for (var i = 0; i < stepsPerBlock; i++)
                    if (!await _batches.WaitAsync(stallTimeout, cancellationToken)) break;
            if (Volatile.Read(ref _weights) is { } weights)
            {
                HoldingForWeights?.Invoke();
                try
                {
                    await weights.Task.WaitAsync(stallTimeout, cancellationToken);
                }
                catch (TimeoutException)
                {
                    // A stalled validator cannot stop the chain.
                }
                // Kept until here, so that WeightsSubmitted finds it while the block waits.
                Interlocked.CompareExchange(ref _weights, null, weights);
            }
            // Armed before the block is made: the validator cannot act on a block before it exists, so no report is missed.
            if (Lockstep && _last > 0 && SetsWeightsAt is { } setsWeights && setsWeights(_last + 1))
                Volatile.Write(ref _weights, new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously));
            var block = await produce(cancellationToken);
            _last = block;
            if (!await onBlock(block)) return;
        }
    }
}

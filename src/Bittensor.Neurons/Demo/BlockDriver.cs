using Bittensor.Chain.Local;

namespace Bittensor.Neurons.Demo;

/// <summary>
/// Produces localnet blocks for an in-process network. With a block time, a block follows the clock; with none, a
/// block is produced when there is something to include (a call was submitted) or to train on (a batch completed),
/// so tests drive the chain by events, never by sleeping. Once <see cref="Lockstep"/> is on, each block also waits
/// for <c>stepsPerBlock</c> validator batches, so every epoch sees the same training however busy the machine is;
/// a stalled pipeline cannot stop the chain: after <c>stallTimeout</c> the block is produced anyway.
/// </summary>
internal sealed class BlockDriver(Localnet chain, TimeSpan blockTime, int stepsPerBlock, TimeSpan stallTimeout)
{
    private readonly SemaphoreSlim _work = new(0, int.MaxValue);
    private readonly SemaphoreSlim _batches = new(0, int.MaxValue);

    /// <summary>True once blocks wait for validator batches.</summary>
    public volatile bool Lockstep;

    /// <summary>A call entered the pool: the next block should include it.</summary>
    public void Submitted() => _work.Release();

    /// <summary>The validator completed a batch.</summary>
    public void BatchDone()
    {
        _batches.Release();
        _work.Release();
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
            var block = await chain.ProduceBlockAsync(cancellationToken);
            if (!await onBlock(block.Number)) return;
        }
    }
}

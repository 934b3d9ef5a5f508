namespace Bittensor.Chain.Local;

/// <summary>
/// Produces localnet blocks on a timer (default 1 s; the real network makes one every 12 s). Kept apart from
/// <see cref="Localnet"/> so tests produce blocks explicitly and never wait for a clock.
/// </summary>
public sealed class LocalnetBlockProducer
{
    private readonly Localnet _chain;
    private readonly TimeSpan _blockTime;
    private readonly TimeProvider _time;

    /// <summary>Default block time of the localnet.</summary>
    public static readonly TimeSpan DefaultBlockTime = TimeSpan.FromSeconds(1);

    /// <summary>
    /// Creates a producer; <paramref name="blockTime"/> must not be negative. Zero produces blocks back to back
    /// (each one still committed atomically), for passing an epoch quickly.
    /// </summary>
    public LocalnetBlockProducer(Localnet chain, TimeSpan blockTime, TimeProvider? time = null)
    {
        ArgumentNullException.ThrowIfNull(chain);
        if (blockTime < TimeSpan.Zero) throw new ArgumentOutOfRangeException(nameof(blockTime), "block time must not be negative");
        _chain = chain;
        _blockTime = blockTime;
        _time = time ?? TimeProvider.System;
    }

    /// <summary>
    /// Produces one block per tick until <paramref name="blocks"/> more exist (null = until cancelled). Returns the
    /// number of blocks produced; cancellation ends it quietly after the block in progress is committed.
    /// </summary>
    public async Task<ulong> RunAsync(ulong? blocks, CancellationToken cancellationToken)
    {
        ulong produced = 0;
        using var timer = _blockTime > TimeSpan.Zero ? new PeriodicTimer(_blockTime, _time) : null;
        try
        {
            while (blocks is null || produced < blocks)
            {
                if (timer is null) cancellationToken.ThrowIfCancellationRequested();
                else if (!await timer.WaitForNextTickAsync(cancellationToken).ConfigureAwait(false)) break;
                await _chain.ProduceBlockAsync(CancellationToken.None).ConfigureAwait(false);
                produced++;
            }
        }
        catch (OperationCanceledException) when (cancellationToken.IsCancellationRequested)
        {
        }
        return produced;
    }
}

using System.Threading.Channels;
using Bittensor.Neurons.Demo;

namespace Bittensor.Neurons.Tests;

/// <summary>The demo's block driver: in lockstep the block after the validator's weights block waits for the weights.</summary>
public sealed class BlockDriverTests
{
    private static readonly TimeSpan Guard = TimeSpan.FromMinutes(2); // hang guard only; nothing is timed

    [Fact]
    public async Task In_lockstep_the_block_after_the_weights_block_is_made_only_once_the_weights_are_submitted()
    {
        var next = 0UL;
        var weightsSent = false;
        var producedEarly = new List<ulong>();
        var made = Channel.CreateUnbounded<ulong>();
        var driver = new BlockDriver(_ =>
        {
            var b = ++next;
            if (b == 4 && !Volatile.Read(ref weightsSent)) producedEarly.Add(b);
            return Task.FromResult(b);
        }, TimeSpan.Zero, 1, TimeSpan.FromMinutes(5)) { Lockstep = true, SetsWeightsAt = b => b == 3 };
        var holding = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var holds = 0;
        driver.HoldingForWeights += () =>
        {
            Interlocked.Increment(ref holds);
            holding.TrySetResult();
        };
        using var stop = new CancellationTokenSource();
        var run = driver.RunAsync(b =>
        {
            made.Writer.TryWrite(b);
            return Task.FromResult(b < 6);
        }, stop.Token);

        for (var expected = 1UL; expected <= 3; expected++)
        {
            driver.BatchDone();
            Assert.Equal(expected, await made.Reader.ReadAsync().AsTask().WaitAsync(Guard));
        }
        // Block 3 is the validator's weights block: a batch alone does not let block 4 go.
        driver.BatchDone();
        await holding.Task.WaitAsync(Guard);
        Assert.False(made.Reader.TryRead(out var early), $"block {early} was made while held");
        Volatile.Write(ref weightsSent, true);
        driver.WeightsSubmitted();
        Assert.Equal(4UL, await made.Reader.ReadAsync().AsTask().WaitAsync(Guard));
        // Only that block is held: the next ones need only their batch.
        for (var expected = 5UL; expected <= 6; expected++)
        {
            driver.BatchDone();
            Assert.Equal(expected, await made.Reader.ReadAsync().AsTask().WaitAsync(Guard));
        }
        await run.WaitAsync(Guard);
        Assert.Empty(producedEarly);
        Assert.Equal(1, holds);
    }

    [Fact]
    public async Task Without_lockstep_no_block_is_held_for_weights()
    {
        var next = 0UL;
        var made = Channel.CreateUnbounded<ulong>();
        var driver = new BlockDriver(_ => Task.FromResult(++next), TimeSpan.Zero, 1, TimeSpan.FromMinutes(5)) { SetsWeightsAt = _ => true };
        var holds = 0;
        driver.HoldingForWeights += () => Interlocked.Increment(ref holds);
        var run = driver.RunAsync(b =>
        {
            made.Writer.TryWrite(b);
            return Task.FromResult(b < 4);
        }, CancellationToken.None);
        for (var expected = 1UL; expected <= 4; expected++)
        {
            driver.Submitted();
            Assert.Equal(expected, await made.Reader.ReadAsync().AsTask().WaitAsync(Guard));
        }
        await run.WaitAsync(Guard);
        Assert.Equal(0, holds);
    }
}

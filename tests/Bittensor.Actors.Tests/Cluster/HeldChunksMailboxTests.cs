using Akka.Actor;
using Bittensor.Actors.Cluster;

namespace Bittensor.Actors.Tests.Cluster;

/// <summary>
/// The test hook of <see cref="ClusterChunkedAveragingSpec"/> (<see cref="HeldChunksMailbox"/>) must not reorder what it
/// holds. On a busy machine the worker had not taken the checkpoint's first chunk yet when the test opened the gate, and
/// the released second chunk was taken before it: the joiner dropped the checkpoint ("a chunk … arrived without its
/// start", then "the average of round 1 was incomplete … when round 2 began") and sent its starting weights into round 2
/// (the spec failed once in a full run under load). Here the actor is kept busy by an explicit block, not by load.
/// </summary>
public sealed class HeldChunksMailboxTests
{
    private sealed record Block(ManualResetEventSlim Release, TaskCompletionSource Running);

    private sealed record Wake;

    private sealed class Recorder : ReceiveActor
    {
        public Recorder(List<string> taken, TaskCompletionSource woken)
        {
            Receive<Block>(b =>
            {
                b.Running.TrySetResult();
                if (!b.Release.Wait(TimeSpan.FromSeconds(60))) throw new TimeoutException("the test never released the block");
            });
            Receive<AveragedParameters>(a =>
            {
                lock (taken) taken.Add($"round {a.Round} at {a.Offset}");
            });
            Receive<Wake>(_ =>
            {
                lock (taken) taken.Add("wake");
                woken.TrySetResult();
            });
        }
    }

    private static AveragedParameters Chunk(int offset) => new(1, true, 2, offset, 20, new float[10]);

    [Fact]
    public async Task A_held_chunk_released_while_the_chunk_before_it_waits_in_the_mailbox_is_taken_after_it()
    {
        using var gate = new ChunkGate();
        using var system = ActorSystem.Create("held-chunks-" + Guid.NewGuid().ToString("N"), HeldChunksMailbox.For(gate)
            .WithFallback(Akka.Configuration.ConfigurationFactory.ParseString("akka.loglevel = WARNING")));
        try
        {
            var taken = new List<string>();
            var woken = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
            var worker = system.ActorOf(Props.Create(() => new Recorder(taken, woken)), ClusterSettings.WorkerName);
            using var release = new ManualResetEventSlim();
            var running = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
            worker.Tell(new Block(release, running));
            await running.Task.WaitAsync(TimeSpan.FromSeconds(60)); // the actor is busy: what comes next waits in its mailbox

            worker.Tell(Chunk(0));
            worker.Tell(Chunk(10)); // held
            await gate.Holding.Task.WaitAsync(TimeSpan.FromSeconds(60));
            gate.Open(); // the first chunk is still in the mailbox, not taken
            worker.Tell(new Wake());
            release.Set();
            await woken.Task.WaitAsync(TimeSpan.FromSeconds(60));

            lock (taken) Assert.Equal(["round 1 at 0", "round 1 at 10", "wake"], taken);
        }
        finally
        {
            await system.Terminate();
        }
    }
}

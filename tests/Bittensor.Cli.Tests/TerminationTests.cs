using System.Runtime.InteropServices;

namespace Bittensor.Cli.Tests;

/// <summary>
/// btcli's handling of SIGINT / SIGTERM (<see cref="Termination"/>), driven in-process without real signals and with the
/// process's ending replaced by a recorder. The real signals on real processes: <c>ClusterProcessTests</c>'
/// <c>A_worker_stopped_with_SIGINT_…</c> and <c>A_second_SIGINT_…</c>.
/// </summary>
public sealed class TerminationTests
{
    [Fact]
    public void The_first_signal_cancels_the_verb_and_the_second_ends_the_process_at_once()
    {
        var ended = new List<PosixSignal>();
        using var error = new StringWriter();
        using var termination = new Termination(error, ended.Add, () => TimeSpan.FromHours(1), register: false);

        var first = new PosixSignalContext(PosixSignal.SIGINT);
        termination.OnSignal(first);
        Assert.True(first.Cancel); // the runtime must not end the process: the verb stops by itself
        Assert.True(termination.Token.IsCancellationRequested);
        Assert.Empty(ended);

        var second = new PosixSignalContext(PosixSignal.SIGTERM);
        termination.OnSignal(second);
        Assert.Equal([PosixSignal.SIGTERM], ended);
        Assert.False(second.Cancel);
        Assert.Contains("btcli: SIGINT: stopping (ended regardless after 3600 s)", error.ToString(), StringComparison.Ordinal);
        Assert.Contains("btcli: SIGTERM again: ending now", error.ToString(), StringComparison.Ordinal);
    }

    /// <summary>The backstop: a verb that does not return after the signal (a hang) is ended once the bound has passed.</summary>
    [Fact]
    public async Task A_verb_still_running_at_the_bound_after_the_signal_is_ended()
    {
        var ended = new TaskCompletionSource<PosixSignal>(TaskCreationOptions.RunContinuationsAsynchronously);
        using var error = new StringWriter();
        using var termination = new Termination(TextWriter.Synchronized(error), s => ended.TrySetResult(s), () => TimeSpan.FromMilliseconds(1), register: false);

        termination.OnSignal(new PosixSignalContext(PosixSignal.SIGTERM));

        Assert.Equal(PosixSignal.SIGTERM, await ended.Task.WaitAsync(TimeSpan.FromMinutes(1)));
        Assert.Contains("btcli: still running 0 s after SIGTERM: ending now", error.ToString(), StringComparison.Ordinal);
    }
}

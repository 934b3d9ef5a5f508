using System.Runtime.InteropServices;
using Akka.Actor;

namespace Bittensor.Cli;

/// <summary>
/// How btcli stops on Ctrl-C (SIGINT) and SIGTERM (docs/cluster.md, "Stopping a node"). The first signal cancels the
/// verb's token and the verb stops in its own way, within its own bounds (<c>axon worker</c>: drains the calls it holds,
/// at most <c>drain_timeout</c>, then leaves; <c>axon serve</c>: CoordinatedShutdown unbinds and stops). A second SIGINT
/// or SIGTERM ends the process at once, as if nobody handled the signal (it dies of it: exit status 130 / 143, no
/// cleanup). A verb still running <see cref="Bound"/> after the first signal is ended the same way: a backstop against a
/// hang, longer than any verb's own shutdown.
/// </summary>
/// <remarks>
/// Replaces System.CommandLine's own handling (its <c>ProcessTerminationTimeout</c>, 2 s by default, is switched off in
/// <see cref="CliApp.RunAsync(System.CommandLine.RootCommand, string[], TextWriter, TextWriter, CancellationToken)"/>):
/// that ended the process 2 s after the signal whatever the verb was doing (a worker's drain, with its calls, cut short)
/// and ignored a second signal.
/// </remarks>
internal sealed partial class Termination : IDisposable
{
    /// <summary>The backstop when no running actor system asks for more (<see cref="Allow(ActorSystem)"/>).</summary>
    public static readonly TimeSpan DefaultBound = TimeSpan.FromSeconds(60);

    /// <summary>What a verb does after its actor system has terminated (its last line, the logs' flush): added to the system's bound.</summary>
    public static readonly TimeSpan AfterSystem = TimeSpan.FromSeconds(10);

    private static readonly Lock Gate = new();
    private static readonly List<ActorSystem> Systems = [];

    private readonly CancellationTokenSource _stop = new();
    private readonly TextWriter _error;
    private readonly Action<PosixSignal> _end;
    private readonly Func<TimeSpan> _bound;
    private readonly PosixSignalRegistration? _sigInt;
    private readonly PosixSignalRegistration? _sigTerm;
    private int _signals;

    internal Termination(TextWriter error, Action<PosixSignal> end, Func<TimeSpan> bound, bool register)
    {
        _error = error;
        _end = end;
        _bound = bound;
        if (!register) return;
        _sigInt = PosixSignalRegistration.Create(PosixSignal.SIGINT, OnSignal);
        _sigTerm = PosixSignalRegistration.Create(PosixSignal.SIGTERM, OnSignal);
    }

    /// <summary>Handles SIGINT and SIGTERM for this process until disposed; the first one cancels <see cref="Token"/>.</summary>
    public static Termination Register(TextWriter error) => new(error, DieOf, () => Bound, register: true);

    /// <summary>Cancelled by the first SIGINT or SIGTERM.</summary>
    public CancellationToken Token => _stop.Token;

    /// <summary>
    /// How long after the first signal the process may still run: the longest of <see cref="DefaultBound"/> and each
    /// running actor system's CoordinatedShutdown total (the sum of the timeouts of its phases that have tasks: a worker's
    /// includes its drain phase, <c>drain_timeout</c> + 5 s) plus <see cref="AfterSystem"/>.
    /// </summary>
    public static TimeSpan Bound
    {
        get
        {
            lock (Gate)
            {
                var bound = DefaultBound;
                foreach (var system in Systems)
                {
                    if (system.WhenTerminated.IsCompleted) continue;
                    var total = CoordinatedShutdown.Get(system).TotalTimeout + AfterSystem;
                    if (total > bound) bound = total;
                }
                return bound;
            }
        }
    }

    /// <summary>
    /// An actor system the verb stops after the signal: <see cref="Bound"/> covers its CoordinatedShutdown, read at the
    /// signal (tasks added later count), until it has terminated.
    /// </summary>
    public static ActorSystem Allow(ActorSystem system)
    {
        lock (Gate)
        {
            Systems.Add(system);
        }
        system.WhenTerminated.ContinueWith(_ =>
        {
            lock (Gate) Systems.Remove(system);
        }, CancellationToken.None, TaskContinuationOptions.ExecuteSynchronously, TaskScheduler.Default);
        return system;
    }

    /// <summary>One SIGINT or SIGTERM (tests call it directly).</summary>
    internal void OnSignal(PosixSignalContext context)
    {
        var signal = context.Signal;
        if (Interlocked.Increment(ref _signals) > 1)
        {
            // The user asked twice: no more waiting for the verb.
            context.Cancel = false;
            Say($"btcli: {Name(signal)} again: ending now");
            _end(signal);
            return;
        }
        context.Cancel = true;
        var bound = _bound();
        Say($"btcli: {Name(signal)}: stopping (ended regardless after {bound.TotalSeconds:0} s); Ctrl-C or SIGTERM again ends it now");
        // A thread of its own, not a timer on the pool: a hang that starves the pool must not hold the backstop back.
        new Thread(() =>
        {
            Thread.Sleep(bound); // the bound itself is what this waits for
            Say($"btcli: still running {bound.TotalSeconds:0} s after {Name(signal)}: ending now");
            _end(signal);
        })
        { IsBackground = true, Name = "termination-backstop" }.Start();
        try
        {
            _stop.Cancel();
        }
        catch (AggregateException e)
        {
            // A verb's cancellation callback threw; the verb still sees the token and its own error path reports.
            Say($"btcli: stopping: {e.InnerException?.Message}");
        }
    }

    private void Say(string line)
    {
        try
        {
            _error.WriteLine(line);
        }
        catch (Exception e) when (e is IOException or ObjectDisposedException or ArgumentOutOfRangeException)
        {
            // Standard error is gone (a closed pipe, a full disk): stopping matters more than saying so.
        }
    }

    private static string Name(PosixSignal signal) => signal == PosixSignal.SIGINT ? "SIGINT" : "SIGTERM";

    /// <summary>Ends the process as the signal's default action would (no handlers, no cleanup): killed by it.</summary>
    private static void DieOf(PosixSignal signal)
    {
        var number = signal == PosixSignal.SIGINT ? 2 : 15;
        if (!OperatingSystem.IsWindows())
        {
            // The runtime's handler stays installed while any registration exists (ASP.NET Core's ConsoleLifetime makes
            // one when a WebApplication starts, and cancels every signal): the default action is set back first.
            SetSignal(number, 0); // SIG_DFL
            Kill(Environment.ProcessId, number);
        }
        Environment.Exit(128 + number);
    }

    [LibraryImport("libc", EntryPoint = "signal")]
    private static partial nint SetSignal(int signal, nint handler);

    [LibraryImport("libc", EntryPoint = "kill")]
    private static partial int Kill(int pid, int signal);

    /// <summary>
    /// Stops handling signals (the verb has returned): a later one gets the runtime's default. The backstop, if started,
    /// stays: a process that does not exit after its verb returned is ended by it too. The token's source is not disposed:
    /// a signal already being handled may still cancel it.
    /// </summary>
    public void Dispose()
    {
        _sigInt?.Dispose();
        _sigTerm?.Dispose();
    }
}

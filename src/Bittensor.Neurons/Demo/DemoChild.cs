using System.Diagnostics;
using System.Globalization;

namespace Bittensor.Neurons.Demo;

/// <summary>How to start btcli itself as a child process: the program and the arguments before the verb.</summary>
/// <param name="FileName">The executable (the apphost <c>btcli</c>, or <c>dotnet</c>).</param>
/// <param name="Prefix">Arguments before the verb (<c>btcli.dll</c> when run through <c>dotnet</c>).</param>
public sealed record BtcliCommand(string FileName, IReadOnlyList<string> Prefix)
{
    /// <summary>
    /// This process again: its apphost, or <c>dotnet</c> with the entry assembly when it runs as <c>dotnet btcli.dll</c>
    /// (a tool installed with <c>dotnet tool install</c> runs that way).
    /// </summary>
    public static BtcliCommand Self()
    {
        var process = Environment.ProcessPath ?? throw new InvalidOperationException("the path of this process is unknown");
        var entry = System.Reflection.Assembly.GetEntryAssembly()?.Location;
        var name = Path.GetFileNameWithoutExtension(process);
        return string.Equals(name, "dotnet", StringComparison.OrdinalIgnoreCase) && !string.IsNullOrEmpty(entry)
            ? new BtcliCommand(process, [entry])
            : new BtcliCommand(process, []);
    }
}

/// <summary>
/// One child process of <c>btcli demo --processes</c> (the node, a server, the validator). Its standard input is a pipe
/// this process keeps open: the child runs with <c>BITTENSOR_EXIT_WITH_STDIN=1</c>, so it stops when the pipe closes —
/// when <see cref="StopAsync"/> closes it, or when this process dies, even by kill -9. Its output is read line by line:
/// <see cref="Line"/> waits for a line, <see cref="Lines"/> sees every one, the last lines are kept for error messages.
/// </summary>
internal sealed class DemoChild : IAsyncDisposable
{
    /// <summary>The variable btcli reads (CliApp.ExitWithStdinVariable).</summary>
    public const string ExitWithStdinVariable = "BITTENSOR_EXIT_WITH_STDIN";

    private const int TailLines = 40;
    private readonly Process _process;
    private readonly Queue<string> _tail = new();
    private readonly List<(string Prefix, TaskCompletionSource<string> Line)> _watches = [];
    private readonly TaskCompletionSource<int> _exited = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private readonly TaskCompletionSource _outputDone = new(TaskCreationOptions.RunContinuationsAsynchronously);

    private DemoChild(string name, Process process)
    {
        Name = name;
        _process = process;
    }

    /// <summary>The child's name in messages (node, server1, bad1, validator).</summary>
    public string Name { get; }

    /// <summary>When it is stopped at the end: stage 0 first (validator, servers, cluster workers), then 1 (cluster fronts), then 2 (the node).</summary>
    public int StopStage { get; init; }

    /// <summary>The operating system's process id.</summary>
    public int Pid { get; private set; }

    /// <summary>Completes with the exit code when the process has exited.</summary>
    public Task<int> Exited => _exited.Task;

    /// <summary>Every line of standard output, on the reader's thread, in order.</summary>
    public event Action<string>? Lines;

    /// <summary>Starts <c>btcli args…</c>.</summary>
    public static DemoChild Start(BtcliCommand btcli, string name, IEnumerable<string> args, string workingDirectory, int stopStage = 0)
    {
        var info = new ProcessStartInfo(btcli.FileName)
        {
            RedirectStandardInput = true,
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
            WorkingDirectory = workingDirectory,
        };
        foreach (var a in btcli.Prefix) info.ArgumentList.Add(a);
        foreach (var a in args) info.ArgumentList.Add(a);
        info.Environment[ExitWithStdinVariable] = "1";
        var process = new Process { StartInfo = info, EnableRaisingEvents = true };
        var child = new DemoChild(name, process) { StopStage = stopStage };
        var open = 2;
        void Closed()
        {
            if (Interlocked.Decrement(ref open) == 0) child._outputDone.TrySetResult();
        }
        process.OutputDataReceived += (_, e) =>
        {
            if (e.Data is null) Closed();
            else child.OnLine(e.Data, stdout: true);
        };
        process.ErrorDataReceived += (_, e) =>
        {
            if (e.Data is null) Closed();
            else child.OnLine(e.Data, stdout: false);
        };
        process.Exited += (_, _) => _ = child.OnExitedAsync();
        process.Start();
        child.Pid = process.Id;
        process.BeginOutputReadLine();
        process.BeginErrorReadLine();
        return child;
    }

    private async Task OnExitedAsync()
    {
        // The last lines (its error message) arrive after the exit event: wait for both pipes to close.
        await _outputDone.Task.WaitAsync(TimeSpan.FromSeconds(10)).ContinueWith(_ => { }, TaskScheduler.Default).ConfigureAwait(false);
        int code;
        try
        {
            code = _process.ExitCode;
        }
        catch (InvalidOperationException)
        {
            code = -1;
        }
        lock (_tail)
        {
            foreach (var (_, line) in _watches)
                line.TrySetException(new DemoChildExitedException(this, code));
        }
        _exited.TrySetResult(code);
    }

    private void OnLine(string line, bool stdout)
    {
        lock (_tail)
        {
            _tail.Enqueue(line.Length > 2000 ? line[..2000] + "…" : line);
            while (_tail.Count > TailLines) _tail.Dequeue();
            foreach (var (prefix, tcs) in _watches)
                if (line.StartsWith(prefix, StringComparison.Ordinal)) tcs.TrySetResult(line);
        }
        if (stdout) Lines?.Invoke(line);
    }

    /// <summary>The first line (standard output or error) from now on that starts with <paramref name="prefix"/>; fails when the child exits first.</summary>
    public Task<string> Line(string prefix)
    {
        var tcs = new TaskCompletionSource<string>(TaskCreationOptions.RunContinuationsAsynchronously);
        lock (_tail)
        {
            if (_exited.Task.IsCompleted) tcs.TrySetException(new DemoChildExitedException(this, _exited.Task.Result));
            else _watches.Add((prefix, tcs));
        }
        return tcs.Task;
    }

    /// <summary>Its last lines of output (both streams), for an error message.</summary>
    public string Tail()
    {
        lock (_tail) return string.Join(Environment.NewLine, _tail.Select(l => "  " + l));
    }

    /// <summary>
    /// Stops it: closes its standard input (it stops as on Ctrl-C), waits up to <paramref name="grace"/>, then kills
    /// its process tree. Completes when the process has exited.
    /// </summary>
    public async Task StopAsync(TimeSpan grace)
    {
        if (!_exited.Task.IsCompleted)
        {
            try
            {
                _process.StandardInput.Close();
            }
            catch (Exception e) when (e is IOException or InvalidOperationException)
            {
            }
            try
            {
                await _exited.Task.WaitAsync(grace).ConfigureAwait(false);
            }
            catch (TimeoutException)
            {
                try
                {
                    _process.Kill(entireProcessTree: true);
                }
                catch (InvalidOperationException)
                {
                }
            }
        }
        await _process.WaitForExitAsync().ConfigureAwait(false);
        await _exited.Task.ConfigureAwait(false);
    }

    /// <summary>Kills the process with SIGKILL (no clean-up of its own, as <c>kill -9</c>); <see cref="Exited"/> completes after.</summary>
    public void Kill()
    {
        try
        {
            _process.Kill(entireProcessTree: false);
        }
        catch (InvalidOperationException)
        {
            // Exited already.
        }
    }

    public async ValueTask DisposeAsync()
    {
        await StopAsync(TimeSpan.FromSeconds(20)).ConfigureAwait(false);
        _process.Dispose();
    }

    public override string ToString() => string.Create(CultureInfo.InvariantCulture, $"{Name} (pid {Pid})");
}

/// <summary>A demo child exited before the demo was done with it.</summary>
internal sealed class DemoChildExitedException(DemoChild child, int code)
    : Exception(string.Create(CultureInfo.InvariantCulture, $"{child} exited with code {code}; its last lines:{Environment.NewLine}{child.Tail()}"))
{
    public DemoChild Child { get; } = child;
}

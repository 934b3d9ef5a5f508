using System.Diagnostics;
using System.Reflection;
using System.Text;
using Bittensor.Cli.Tests.Shipped;

namespace Bittensor.Cli.Tests.Commands;

/// <summary>
/// btcli turns on inline socket completions for itself before it opens a socket (docs/axon.md, "Socket completions
/// inline"), and a value the user set wins: a real <c>btcli axon serve</c> process says which on its "serving on" line.
/// </summary>
public sealed class SocketCompletionsTests : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("bt-inline-").FullName;

    public void Dispose()
    {
        if (Directory.Exists(_dir)) Directory.Delete(_dir, recursive: true);
    }

    private static string BtcliDll => typeof(SocketCompletionsTests).Assembly.GetCustomAttributes<AssemblyMetadataAttribute>()
        .Single(a => a.Key == "BtcliDll").Value!;

    [Theory]
    [InlineData(null, "(h2c, lean, socket completions inline)")]
    [InlineData("0", "(h2c, lean, socket completions on the thread pool)")]
    public async Task Axon_serve_runs_socket_completions_inline_unless_the_environment_says_otherwise(string? variable, string expected)
    {
        using var guard = new CancellationTokenSource(TimeSpan.FromMinutes(3)); // a hang guard, not a timing assertion
        var psi = new ProcessStartInfo(CliProcess.Dotnet) { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        foreach (var a in new[] { BtcliDll, "axon", "serve", "--uri", "//Bob", "--axon.ip", "127.0.0.1", "--axon.port", "0",
                     "--axon.state_path", Path.Combine(_dir, variable ?? "unset") })
            psi.ArgumentList.Add(a);
        psi.Environment.Remove("DOTNET_SYSTEM_NET_SOCKETS_INLINE_COMPLETIONS");
        if (variable is not null) psi.Environment["DOTNET_SYSTEM_NET_SOCKETS_INLINE_COMPLETIONS"] = variable;
        using var process = Process.Start(psi)!;
        var output = new StringBuilder();
        var serving = new TaskCompletionSource<string>(TaskCreationOptions.RunContinuationsAsynchronously);
        void OnLine(string? line)
        {
            if (line is null) return;
            lock (output) output.AppendLine(line);
            if (line.Contains(" serving on ", StringComparison.Ordinal)) serving.TrySetResult(line);
        }
        process.OutputDataReceived += (_, e) => OnLine(e.Data);
        process.ErrorDataReceived += (_, e) => OnLine(e.Data);
        process.BeginOutputReadLine();
        process.BeginErrorReadLine();
        try
        {
            var exited = process.WaitForExitAsync(guard.Token);
            if (await Task.WhenAny(serving.Task, exited) != serving.Task)
            {
                await exited;
                lock (output) Assert.Fail($"btcli axon serve exited with {process.ExitCode} before serving: {output}");
            }
            Assert.Contains(expected, await serving.Task, StringComparison.Ordinal);
        }
        finally
        {
            if (!process.HasExited)
            {
                process.Kill(entireProcessTree: true);
                await process.WaitForExitAsync(CancellationToken.None);
            }
        }
    }
}

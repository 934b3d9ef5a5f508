using System.Diagnostics;
using System.Reflection;
using System.Text.RegularExpressions;
using Bittensor.Core.Crypto;
using Bittensor.Protocol;
using Bittensor.Protocol.Wire;

namespace Bittensor.Cli.Tests.Commands;

/// <summary>
/// <c>btcli axon serve</c> as a real process with the runtime's JIT log on (<c>DOTNET_JitDisasmSummary</c>: one line per
/// method compiled, in order): with the warm-up (the default) the serving path's methods — the lean server's frame loop,
/// HPACK, the header check, the signature check, the nonce journal, the service's serve step — are compiled before the
/// "serving on" line is built (the first compile of <c>AxonCommands.DescribeAdmission</c>), so the first real call finds
/// them compiled; with <c>--axon.warm_up false</c> they are compiled after it, by that call. With the warm-up the shed
/// path (the at-read budget's and calls_in_flight's answers) is compiled before the serving line too; without it one call
/// never compiles it.
/// </summary>
public sealed partial class AxonWarmUpProcessTests : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("bt-axon-warmjit-").FullName;

    public void Dispose()
    {
        if (Directory.Exists(_dir)) Directory.Delete(_dir, recursive: true);
    }

    private static string BtcliDll => typeof(AxonWarmUpProcessTests).Assembly.GetCustomAttributes<AssemblyMetadataAttribute>()
        .Single(a => a.Key == "BtcliDll").Value!;

    [GeneratedRegex(@"serving on [^ ]*:(\d+) ")]
    private static partial Regex ServingLine();

    // Methods every verified Forward runs on the server (none runs before the first call without the warm-up).
    private static readonly string[] ServingPath =
    [
        "Bittensor.Protocol.Lean.HpackDecoder:Decode(",
        "Bittensor.Protocol.RequestVerifier:Conclude(",
        "Bittensor.Protocol.NonceJournal:Append(",
        "Bittensor.Actors.Axon.AxonService:Serve(",
        "Bittensor.Actors.Axon.AxonService:ServeInto(",
    ];

    // The shed path a real overload takes (session 24: the warm-up sheds two calls of its own through it): without the
    // warm-up none of it runs until the axon's first overload, so one call never compiles it.
    private static readonly string[] ShedPath =
    [
        "Bittensor.Protocol.Lean.H2Connection:AnswerShedding(",
        "Bittensor.Protocol.Lean.H2Connection:DelayedAnswer(",
        "Bittensor.Protocol.Lean.H2Connection:AnswerOverloaded(",
        "Bittensor.Protocol.Lean.H2Connection:OverloadAnswer(",
        "Bittensor.Actors.Axon.AxonService:Delayed(",
        "Bittensor.Actors.Axon.AxonService:Overloaded(",
    ];

    private const string Marker = "Bittensor.Cli.Commands.AxonCommands:DescribeAdmission(";

    [Fact]
    public async Task The_first_real_call_finds_the_serving_path_compiled_before_the_serving_line_and_not_without_the_warm_up()
    {
        using var timeout = new CancellationTokenSource(TimeSpan.FromMinutes(4));
        var warm = await Serve("on", [], timeout.Token);
        var cold = await Serve("off", ["--axon.warm_up", "false"], timeout.Token);

        var marker = FirstIndex(warm, Marker);
        Assert.True(marker >= 0, $"no compile of {Marker} in the JIT log");
        foreach (var method in ServingPath)
        {
            var at = FirstIndex(warm, method);
            Assert.True(at >= 0 && at < marker, $"with the warm-up {method} was compiled at line {at}, the serving line's at {marker} (-1: never)");
        }
        foreach (var method in ShedPath)
        {
            var at = FirstIndex(warm, method);
            Assert.True(at >= 0 && at < marker, $"with the warm-up the shed path's {method} was compiled at line {at}, the serving line's at {marker} (-1: never)");
        }

        var coldMarker = FirstIndex(cold, Marker);
        Assert.True(coldMarker >= 0, $"no compile of {Marker} in the JIT log");
        foreach (var method in ServingPath)
        {
            var at = FirstIndex(cold, method);
            Assert.True(at > coldMarker, $"without the warm-up {method} was compiled at line {at}, the serving line's at {coldMarker} (-1: never)");
        }
        foreach (var method in ShedPath)
            Assert.True(FirstIndex(cold, method) < 0, $"without the warm-up (one call, no overload) {method} was compiled");
    }

    private static int FirstIndex(string[] lines, string method) => Array.FindIndex(lines, l => l.Contains(" JIT compiled " + method, StringComparison.Ordinal));

    // Starts the axon with the JIT log on, makes one signed call once it prints its serving line, stops it with SIGTERM
    // (the log is complete once the process has exited) and returns the log's lines.
    private async Task<string[]> Serve(string name, string[] more, CancellationToken cancellationToken)
    {
        Assert.True(File.Exists(BtcliDll), $"btcli is not built at {BtcliDll}");
        var jit = Path.Combine(_dir, name + ".jit");
        var psi = new ProcessStartInfo("dotnet") { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        foreach (var a in (string[])[BtcliDll, "axon", "serve", "--uri", "//Alice", "--axon.ip", "127.0.0.1", "--axon.port", "0",
            "--axon.state_path", Path.Combine(_dir, name), .. more])
            psi.ArgumentList.Add(a);
        psi.Environment["DOTNET_JitDisasmSummary"] = "1";
        psi.Environment["DOTNET_JitStdOutFile"] = jit;
        using var process = Process.Start(psi)!;
        var output = new System.Text.StringBuilder();
        var port = new TaskCompletionSource<int>(TaskCreationOptions.RunContinuationsAsynchronously);
        void OnLine(string? line)
        {
            if (line is null) return;
            lock (output) output.AppendLine(line);
            if (ServingLine().Match(line) is { Success: true } m) port.TrySetResult(int.Parse(m.Groups[1].Value, System.Globalization.CultureInfo.InvariantCulture));
        }
        process.OutputDataReceived += (_, e) => OnLine(e.Data);
        process.ErrorDataReceived += (_, e) => OnLine(e.Data);
        process.BeginOutputReadLine();
        process.BeginErrorReadLine();
        try
        {
            var exited = process.WaitForExitAsync(cancellationToken);
            if (await Task.WhenAny(port.Task, exited) != port.Task)
            {
                await exited;
                lock (output) Assert.Fail($"btcli axon serve exited with {process.ExitCode} before serving: {output}");
            }
            using var bob = SecretUri.ToSr25519("//Bob");
            var request = new TensorMessage { Version = ProtocolVersion.Current, Hotkey = bob.ToSs58() };
            request.Tensors.Add(TensorCodec.ToTensor(new long[] { 104, 105 }, [1, 2], Modality.Text));
            using (var connection = LeanClientTransport.Instance.Connect("127.0.0.1", await port.Task,
                // A loopback connect is immediate; the default 5 s connect timeout only guards against a dead host, and a
                // starved test process's first connection can take longer (Protocol tests' TestChannel).
                BittensorChannelOptions.Default with { ConnectTimeout = TimeSpan.FromSeconds(60) }))
            {
                var answer = await connection.CallAsync(BittensorMethod.Forward, request, await new RequestAuth(new KeyPairRequestSigner(bob)).CreateHeadersAsync(),
                    DateTime.UtcNow.AddSeconds(60), cancellationToken);
                Assert.Equal(ReturnCode.Success, answer.ReturnCode);
            }
            using (var term = Process.Start("kill", ["-TERM", process.Id.ToString(System.Globalization.CultureInfo.InvariantCulture)]))
                await term.WaitForExitAsync(cancellationToken);
            await process.WaitForExitAsync(cancellationToken);
            lock (output) Assert.True(process.ExitCode == 0, $"btcli axon serve exited with {process.ExitCode}: {output}");
        }
        finally
        {
            if (!process.HasExited) process.Kill();
        }
        return await File.ReadAllLinesAsync(jit, cancellationToken);
    }
}

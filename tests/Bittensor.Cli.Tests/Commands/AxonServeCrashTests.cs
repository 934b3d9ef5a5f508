using System.Diagnostics;
using System.Reflection;
using System.Text;
using System.Text.RegularExpressions;
using Bittensor.Core.Crypto;
using Bittensor.Protocol;
using Bittensor.Protocol.Wire;
using Grpc.Core;
using Grpc.Net.Client;
using WireClient = Bittensor.Protocol.Wire.Bittensor.BittensorClient;

namespace Bittensor.Cli.Tests.Commands;

/// <summary>
/// <c>btcli axon serve</c> as a real child process, killed with SIGKILL: a request it accepted before the kill is refused
/// after the restart (its nonce was journaled before the Accept).
/// </summary>
public sealed partial class AxonServeCrashTests : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("bt-axon-kill9-").FullName;

    public void Dispose()
    {
        if (Directory.Exists(_dir)) Directory.Delete(_dir, recursive: true);
    }

    private static string BtcliDll => typeof(AxonServeCrashTests).Assembly.GetCustomAttributes<AssemblyMetadataAttribute>()
        .Single(a => a.Key == "BtcliDll").Value!;

    [GeneratedRegex(@"serving on [^ ]*:(\d+) ")]
    private static partial Regex ServingLine();

    [Fact]
    public async Task A_request_accepted_before_kill_9_is_refused_after_the_restart()
    {
        using var timeout = new CancellationTokenSource(TimeSpan.FromMinutes(3));
        using (var dave = Bittensor.Wallet.WalletKey.FromUri("//Dave"))
            new Bittensor.Wallet.LocalWallet("w", "h", _dir).CreateHotkey(dave, null, overwrite: false);
        string[] args = [BtcliDll, "axon", "serve", "--wallet.path", _dir, "--wallet.name", "w", "--wallet.hotkey", "h", "--axon.port", "0"];

        using var alice = SecretUri.ToSr25519("//Alice");
        TensorMessage request;
        Metadata headers;
        Metadata unsynced;
        using (var first = await Serve(args, timeout.Token))
        {
            // Signed 20 s ahead (inside the 30 s clock_skew): the replay after the restart stays inside the 60 s max_age
            // window even on a slow machine, so only the nonce store can refuse it.
            var auth = new RequestAuth(new KeyPairRequestSigner(alice), new ShiftedClock(TimeSpan.FromSeconds(20)));
            headers = await auth.CreateHeadersAsync();
            // The second call's headers are signed now, a millisecond after the first's: its nonce lies inside the 10 s
            // reservation the first call writes however long that call takes (signed after it, at load 15-34 it fell
            // outside and made a second reservation).
            unsynced = await auth.CreateHeadersAsync();
            request = new TensorMessage { Version = ProtocolVersion.Current, Hotkey = alice.ToSs58() };
            request.Tensors.Add(TensorCodec.ToTensor(new long[] { 104, 105 }, [1, 2], Modality.Text));
            var response = await Client(first.Port).ForwardAsync(request, headers, DateTime.UtcNow.AddSeconds(60), timeout.Token);
            Assert.Equal(ReturnCode.Success, response.ReturnCode);
            // The second call lies inside the reservation the first one fsynced: its line is written, not fsynced.
            Assert.Equal(ReturnCode.Success, (await Client(first.Port).ForwardAsync(request, unsynced, DateTime.UtcNow.AddSeconds(60), timeout.Token)).ReturnCode);
            first.Kill(); // SIGKILL: no Dispose, no compaction, no shutdown hook
        }

        var journal = Path.Combine(_dir, "w", "axon", "h", "nonces.journal");
        Assert.True(File.Exists(journal), $"no nonce journal at {journal}");
        if (!OperatingSystem.IsWindows())
            Assert.Equal(UnixFileMode.UserRead | UnixFileMode.UserWrite, File.GetUnixFileMode(journal));
        var lines = File.ReadAllLines(journal);
        Assert.Single(lines, l => l.StartsWith($"r {alice.ToSs58()} ", StringComparison.Ordinal)); // one reservation, fsynced
        Assert.Equal(2, lines.Count(l => l.StartsWith($"{alice.ToSs58()} ", StringComparison.Ordinal))); // both nonces written
        if (OperatingSystem.IsLinux())
            Assert.Contains($"boot {File.ReadAllText("/proc/sys/kernel/random/boot_id").Trim()}", lines);

        using var second = await Serve(args, timeout.Token);
        foreach (var replayed in new[] { headers, unsynced })
        {
            var error = await Assert.ThrowsAsync<RpcException>(() =>
                Client(second.Port).ForwardAsync(request, replayed, DateTime.UtcNow.AddSeconds(60), timeout.Token).ResponseAsync);
            Assert.Equal(StatusCode.Unauthenticated, error.StatusCode);
            Assert.Contains("replay", error.Status.Detail, StringComparison.Ordinal);
        }

        // A fresh request from the same caller still passes (inside its reservation: on the same boot reservations do not
        // count, every written line is there): the restarted axon refuses replays, not the caller.
        var fresh = await new RequestAuth(new KeyPairRequestSigner(alice), new ShiftedClock(TimeSpan.FromSeconds(21))).CreateHeadersAsync();
        Assert.Equal(ReturnCode.Success, (await Client(second.Port).ForwardAsync(request, fresh, DateTime.UtcNow.AddSeconds(60), timeout.Token)).ReturnCode);
    }

    [Fact]
    public async Task The_serving_line_names_the_overload_rules_from_the_reference_config_a_flag_or_a_file()
    {
        // What reaches the serving axon: the reference config's limits (calls_in_flight, target_wait, admit_per_read), a
        // flag that sets target_wait, a config file's values; Kestrel does not apply admission by waiting. The lean
        // transport's side of it: LeanCheapChecksSpec.The_reference_configs_at_read_budget_…
        using var timeout = new CancellationTokenSource(TimeSpan.FromMinutes(3));
        string[] Args(string name, params string[] more) =>
            [BtcliDll, "axon", "serve", "--uri", "//Alice", "--axon.port", "0", "--axon.state_path", Path.Combine(_dir, name), .. more];
        var reference = Bittensor.Actors.Axon.AxonSettings.Default;
        var referenceWait = reference.TargetWait > TimeSpan.Zero
            ? string.Create(System.Globalization.CultureInfo.InvariantCulture, $"target_wait {reference.TargetWait.TotalMilliseconds:0.###}ms, admit_per_read {reference.AdmitPerRead};")
            : "target_wait off;";

        // On by default since session 18: 2 ms with the at-read budget of 12.
        Assert.Equal("target_wait 2ms, admit_per_read 12;", referenceWait);
        using (var byDefault = await Serve(Args("default"), timeout.Token))
            Assert.Contains($") with calls_in_flight {reference.CallsInFlight}, {referenceWait}", byDefault.Output, StringComparison.Ordinal);
        using (var on = await Serve(Args("on", "--axon.limits.target_wait", "2ms"), timeout.Token))
            Assert.Contains("target_wait 2ms, admit_per_read 12;", on.Output, StringComparison.Ordinal);
        using (var off = await Serve(Args("off", "--axon.limits.target_wait", "0"), timeout.Token))
            Assert.Contains("target_wait off;", off.Output, StringComparison.Ordinal);
        var file = Path.Combine(_dir, "wait.conf");
        await File.WriteAllTextAsync(file, "bittensor.axon.limits { calls_in_flight = 0, target_wait = 5ms, admit_per_read = 16 }", timeout.Token);
        using (var filed = await Serve(Args("file", "--config", file), timeout.Token))
            Assert.Contains(") with calls_in_flight no limit, target_wait 5ms, admit_per_read 16;", filed.Output, StringComparison.Ordinal);
        using (var kestrel = await Serve(Args("kestrel", "--axon.transport", "kestrel", "--axon.limits.target_wait", "2ms"), timeout.Token))
            Assert.Contains("target_wait not applied on kestrel;", kestrel.Output, StringComparison.Ordinal);
    }

    private static WireClient Client(int port) => new(GrpcChannel.ForAddress($"http://127.0.0.1:{port}"));

    private static async Task<Child> Serve(string[] args, CancellationToken cancellationToken)
    {
        Assert.True(File.Exists(args[0]), $"btcli is not built at {args[0]}");
        var psi = new ProcessStartInfo("dotnet") { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        foreach (var a in args) psi.ArgumentList.Add(a);
        var process = System.Diagnostics.Process.Start(psi)!;
        var child = new Child(process);
        var port = new TaskCompletionSource<int>(TaskCreationOptions.RunContinuationsAsynchronously);
        void OnLine(string? line)
        {
            if (line is null) return;
            child.Log(line);
            if (ServingLine().Match(line) is { Success: true } m) port.TrySetResult(int.Parse(m.Groups[1].Value, System.Globalization.CultureInfo.InvariantCulture));
        }
        process.OutputDataReceived += (_, e) => OnLine(e.Data);
        process.ErrorDataReceived += (_, e) => OnLine(e.Data);
        process.BeginOutputReadLine();
        process.BeginErrorReadLine();
        var exited = process.WaitForExitAsync(cancellationToken);
        if (await Task.WhenAny(port.Task, exited) != port.Task)
        {
            await exited;
            Assert.Fail($"btcli axon serve exited with {process.ExitCode} before serving: {child.Output}");
        }
        child.Port = await port.Task;
        return child;
    }

    private sealed class Child(System.Diagnostics.Process process) : IDisposable
    {
        private readonly StringBuilder _output = new();

        public int Port { get; set; }

        public string Output
        {
            get { lock (_output) return _output.ToString(); }
        }

        public void Log(string line)
        {
            lock (_output) _output.AppendLine(line);
        }

        public void Kill()
        {
            process.Kill(); // SIGKILL on Unix
            process.WaitForExit();
        }

        public void Dispose()
        {
            if (!process.HasExited) Kill();
            process.Dispose();
        }
    }

    private sealed class ShiftedClock(TimeSpan shift) : TimeProvider
    {
        public override DateTimeOffset GetUtcNow() => System.GetUtcNow() + shift;
    }
}

using System.Diagnostics;
using System.Globalization;
using System.Reflection;
using System.Text;
using System.Text.RegularExpressions;
using Bittensor.Core.Crypto;
using Bittensor.Protocol;
using Bittensor.Protocol.Wire;
using Grpc.Core;
using Grpc.Net.Client;
using Xunit.Abstractions;
using WireClient = Bittensor.Protocol.Wire.Bittensor.BittensorClient;

namespace Bittensor.Cli.Tests.Commands;

/// <summary>
/// Disk full (issue 13 C), deterministically: btcli as a real child process under a file-size limit (<c>ulimit -f</c>,
/// RLIMIT_FSIZE, with SIGXFSZ ignored), so a write past the limit fails with EFBIG the way a write to a full disk fails
/// with ENOSPC — at a point fixed by the file's size, not by what else is on the disk. The same runs against a real full
/// tmpfs are in benchmarks/results/reliability.md. What must hold: a clear error, no crash, no corrupt or stray file, and
/// what was written before the failure is intact after a restart.
/// </summary>
public sealed partial class DiskFullTests(ITestOutputHelper output) : IDisposable
{
    /// <summary>
    /// The hang guard of one child process (its start, its run, its serving line), not of a whole test: a test runs up to
    /// nine children, and a btcli start took 13 s at load 50 on 2 cores (20:18 UTC, session 15), so one 3-minute bound
    /// shared by all of them was a bound on the machine's load. A mid-session CI at load 44-60 ran out of it at the
    /// axon's restart, the test's second child, after the first child's phase had used the rest.
    /// </summary>
    private static readonly TimeSpan ChildBound = TimeSpan.FromMinutes(3);

    private readonly string _dir = Directory.CreateTempSubdirectory("bt-diskfull-").FullName;

    public void Dispose()
    {
        if (Directory.Exists(_dir)) Directory.Delete(_dir, recursive: true);
    }

    private static string BtcliDll => typeof(DiskFullTests).Assembly.GetCustomAttributes<AssemblyMetadataAttribute>()
        .Single(a => a.Key == "BtcliDll").Value!;

    [GeneratedRegex(@"serving on [^ ]*:(\d+) ")]
    private static partial Regex ServingLine();

    [GeneratedRegex(@"^#(\d+) 0x", RegexOptions.Multiline)]
    private static partial Regex BlockLine();

    [Fact]
    public async Task The_localnet_on_a_full_disk_stops_with_a_clear_error_and_restarts_from_its_last_block()
    {
        var folder = Path.Combine(_dir, "ln");
        // 2 KiB: genesis and the first blocks fit, the state outgrows it after a few blocks.
        var run = await RunToEnd(Start(2, "localnet", "run", "--localnet.path", folder, "--blocks", "500", "--block_time", "0", "--no_rpc"));
        Assert.Equal(1, run.ExitCode);
        Assert.Contains("localnet block production failed", run.Output, StringComparison.Ordinal);
        Assert.Contains("file too large", run.Output, StringComparison.Ordinal);
        Assert.Contains("the state on disk is unchanged", run.Output, StringComparison.Ordinal);
        Assert.DoesNotContain("Unhandled exception", run.Output, StringComparison.Ordinal);
        var blocks = BlockLine().Matches(run.Output);
        Assert.NotEmpty(blocks);
        var last = ulong.Parse(blocks[^1].Groups[1].Value, CultureInfo.InvariantCulture);
        Assert.False(File.Exists(Path.Combine(folder, "state.bin.tmp")), "a part-written state.bin.tmp was left behind");

        // Space back (no limit): the node opens its folder at the last block it announced and goes on.
        var again = await RunToEnd(Start(null, "localnet", "run", "--localnet.path", folder, "--blocks", "1", "--block_time", "0", "--no_rpc"));
        Assert.True(again.ExitCode == 0, again.Output);
        Assert.Contains($": block {last}, genesis", again.Output, StringComparison.Ordinal);
        Assert.Contains($"#{last + 1} 0x", again.Output, StringComparison.Ordinal);
        Assert.DoesNotContain("state.bin.prev", again.Output, StringComparison.Ordinal); // state.bin itself was whole
    }

    [Fact]
    public async Task The_axon_refuses_calls_while_its_nonce_journal_cannot_be_written_and_loses_no_nonce()
    {
        using var firstBound = new CancellationTokenSource(ChildBound); // the first child's calls; the restart gets its own
        var state = Path.Combine(_dir, "state");
        // max_age 10 minutes (60 s by default): the replay after the restart must be refused by the nonce store, never as
        // stale, however long the restart takes on a busy machine (a start took 13 s at load 50, and the first phase runs
        // ~30 calls and a kill before it).
        var config = Path.Combine(_dir, "axon.conf");
        File.WriteAllText(config, "bittensor.axon.auth.max_age = 10m\n");
        string[] serve = ["axon", "serve", "--uri", "//Bob", "--axon.ip", "127.0.0.1", "--axon.port", "0", "--axon.state_path", state, "--config", config];
        using var alice = SecretUri.ToSr25519("//Alice");
        var request = new TensorMessage { Version = ProtocolVersion.Current, Hotkey = alice.ToSs58() };
        request.Tensors.Add(TensorCodec.ToTensor(new long[] { 104, 105 }, [1, 2], Modality.Text));
        // Signed 20 s ahead (inside the 30 s clock_skew), as AxonServeCrashTests does.
        var auth = new RequestAuth(new KeyPairRequestSigner(alice), new ShiftedClock(TimeSpan.FromSeconds(20)));

        Metadata? accepted = null;
        using (var limited = await Serve(Start(2, serve)))
        {
            var warned = limited.WaitFor("cannot be written");
            var client = Client(limited.Port);
            TensorMessage? refused = null;
            // Each accepted call appends one line (~70 bytes) to the journal: the 2 KiB limit is reached within ~30.
            for (var i = 0; i < 200 && refused is null; i++)
            {
                var headers = await auth.CreateHeadersAsync();
                var answer = await client.ForwardAsync(request, headers, DateTime.UtcNow.AddSeconds(60), firstBound.Token);
                if (answer.ReturnCode == ReturnCode.Success) accepted = headers;
                else refused = answer;
            }
            Assert.NotNull(accepted);
            Assert.NotNull(refused);
            Assert.Equal(ReturnCode.UnknownException, refused.ReturnCode);
            Assert.Contains("nonce store not writable", refused.Message, StringComparison.Ordinal);

            // The operator is told once, in the log, why; the axon keeps serving (refusing) rather than dying.
            var line = await warned.WaitAsync(firstBound.Token);
            Assert.Contains("file too large", line, StringComparison.Ordinal);
            var next = await client.ForwardAsync(request, await auth.CreateHeadersAsync(), DateTime.UtcNow.AddSeconds(60), firstBound.Token);
            Assert.Equal(ReturnCode.UnknownException, next.ReturnCode);
            Assert.False(limited.HasExited, limited.Output);
            Assert.DoesNotContain("Unhandled exception", limited.Output, StringComparison.Ordinal);
            limited.Kill(); // SIGKILL: what is on disk is what the journal wrote
        }
        using var restartBound = new CancellationTokenSource(ChildBound);

        // Restarted without the limit on the same files: they load (nothing corrupt), the last accepted request is
        // refused as a replay (its nonce was on disk before it was answered), a fresh one passes.
        using var restarted = await Serve(Start(null, serve));
        var again = Client(restarted.Port);
        var replay = await Assert.ThrowsAsync<RpcException>(() =>
            again.ForwardAsync(request, accepted, DateTime.UtcNow.AddSeconds(60), restartBound.Token).ResponseAsync);
        Assert.Equal(StatusCode.Unauthenticated, replay.StatusCode);
        Assert.Contains("replay", replay.Status.Detail, StringComparison.Ordinal);
        var fresh = await again.ForwardAsync(request, await auth.CreateHeadersAsync(), DateTime.UtcNow.AddSeconds(60), restartBound.Token);
        Assert.Equal(ReturnCode.Success, fresh.ReturnCode);
    }

    [Fact]
    public async Task Wallet_writes_on_a_full_disk_fail_with_a_clear_error_and_change_no_keyfile()
    {
        var path = Path.Combine(_dir, "wallets");
        string[] at = ["--wallet.path", path, "--wallet.name", "a", "--no_password"];

        // No room at all (ulimit -f 0: every byte written fails with EFBIG): nothing is created.
        var create = await RunToEnd(Start(0, ["wallet", "create", .. at]));
        AssertDiskError(create, "coldkey");
        Assert.Empty(Directory.Exists(path) ? Directory.GetFiles(path, "*", SearchOption.AllDirectories) : []);

        // Room again: the same command makes the wallet (nothing in the way was left behind).
        var made = await RunToEnd(Start(null, ["wallet", "create", .. at]));
        Assert.True(made.ExitCode == 0, made.Output);
        var before = Snapshot(path);
        Assert.Equal(4, before.Count); // coldkey, coldkeypub.txt, hotkeys/default, hotkeys/defaultpub.txt

        // Every write verb over the existing wallet, disk full: exit 1, one error line naming the file and EFBIG, and
        // every keyfile byte-identical afterwards, no temp file, no new file.
        (string[] Args, string Names)[] verbs =
        [
            (["wallet", "regen_coldkey", "--uri", "//Alice", "--overwrite"], "coldkey"),
            (["wallet", "new_coldkey", "--overwrite"], "coldkey"),
            (["wallet", "regen_hotkey", "--uri", "//Alice//hot", "--overwrite"], "hotkeys/default"),
            (["wallet", "new_hotkey", "--wallet.hotkey", "h2"], "hotkeys/h2"),
            (["wallet", "regen_coldkeypub", "--ss58", "5GrwvaEF5zXb26Fz9rcQpDWS57CtERHpNehXCPcNoHGKutQY", "--overwrite"], "coldkeypub.txt"),
            (["wallet", "create", "--overwrite"], "coldkey"),
        ];
        foreach (var (args, names) in verbs)
        {
            var run = await RunToEnd(Start(0, [.. args, .. at]));
            AssertDiskError(run, names);
            Assert.Equal(before, Snapshot(path));
        }

        // And the wallet still opens.
        var inspect = await RunToEnd(Start(null, ["wallet", "inspect", "--json", .. at]));
        Assert.True(inspect.ExitCode == 0, inspect.Output);
        Assert.Contains("plain JSON", inspect.Output, StringComparison.Ordinal);
    }

    [Fact]
    public async Task A_new_key_whose_mnemonic_cannot_be_shown_is_not_written()
    {
        var path = Path.Combine(_dir, "wallets");
        string[] at = ["--wallet.path", path, "--wallet.name", "a", "--no_password"];
        Assert.True(File.Exists("/dev/full"), "/dev/full is needed: a device every write to fails with ENOSPC");
        // Standard output is /dev/full (every write fails: ENOSPC), standard error the test's pipe; the wallet's folder has room.
        static ProcessStartInfo ToFull(params string[] args)
        {
            var psi = Start(null, args);
            psi.ArgumentList[1] = "exec dotnet \"$@\" >/dev/full";
            return psi;
        }

        // The mnemonic is the only way to restore a key: a key whose mnemonic was not shown must not be kept.
        var create = await RunToEnd(ToFull(["wallet", "create", .. at]));
        Assert.True(create.ExitCode == 74, $"exit {create.ExitCode}: {create.Output}");
        Assert.Contains("error: the new coldkey's mnemonic could not be shown", create.Output, StringComparison.Ordinal);
        Assert.Contains("the coldkey was not written", create.Output, StringComparison.Ordinal);
        Assert.Empty(Directory.Exists(path) ? Directory.GetFiles(path, "*", SearchOption.AllDirectories) : []); // temp files included

        // With a working stdout the same command makes the wallet, each mnemonic shown before its key is reported written.
        var made = await RunToEnd(Start(null, ["wallet", "create", .. at]));
        Assert.True(made.ExitCode == 0, made.Output);
        var lines = made.Output.Split('\n');
        foreach (var label in new[] { "coldkey", "hotkey" })
        {
            var shown = Array.FindIndex(lines, l => l.StartsWith($"The mnemonic below restores {label} ", StringComparison.Ordinal));
            var written = Array.FindIndex(lines, l => l.StartsWith($"{label} ", StringComparison.Ordinal) && l.Contains(" written to ", StringComparison.Ordinal));
            Assert.True(shown >= 0 && written > shown, made.Output);
            Assert.Equal(12, lines[shown + 1].Trim().Split(' ').Length);
        }
        var before = Snapshot(path);
        Assert.Equal(4, before.Count);

        // Every verb that makes a new key, over the existing wallet: exit 74, and every file byte-identical, none added.
        foreach (var args in new[]
                 {
                     new[] { "wallet", "new_coldkey", "--overwrite" }, ["wallet", "new_hotkey", "--overwrite"],
                     ["wallet", "new_hotkey", "--wallet.hotkey", "h2"], ["wallet", "create", "--overwrite"],
                 })
        {
            var run = await RunToEnd(ToFull([.. args, .. at]));
            Assert.True(run.ExitCode == 74, $"{string.Join(' ', args)}: exit {run.ExitCode}: {run.Output}");
            Assert.Contains("mnemonic could not be shown", run.Output, StringComparison.Ordinal);
            Assert.DoesNotContain("Unhandled exception", run.Output, StringComparison.Ordinal);
            Assert.Equal(before, Snapshot(path));
        }
    }

    [Fact]
    public async Task Btcli_whose_output_goes_to_a_full_disk_exits_with_a_code_instead_of_aborting()
    {
        // stdout and stderr are files under the limit: printing fails (EFBIG), and so does printing the error about it.
        var psi = Start(0, "--version");
        var output = Path.Combine(_dir, "out.txt");
        psi.ArgumentList[1] = $"trap '' XFSZ; ulimit -f 0; exec dotnet \"$@\" >'{output}' 2>&1";
        var run = await RunToEnd(psi);
        Assert.Equal(74, run.ExitCode); // EX_IOERR; the runtime's abort on the unhandled exception was 134
        Assert.Equal(0, new FileInfo(output).Length);
    }

    private static void AssertDiskError((int ExitCode, string Output) run, string file)
    {
        Assert.True(run.ExitCode == 1, $"exit {run.ExitCode}: {run.Output}");
        var errors = run.Output.Split('\n', StringSplitOptions.RemoveEmptyEntries).Where(l => l.StartsWith("error: ", StringComparison.Ordinal)).ToList();
        var error = Assert.Single(errors);
        Assert.Contains($"/{file}: cannot write: file too large", error, StringComparison.Ordinal);
        Assert.Contains("EFBIG", error, StringComparison.Ordinal);
        Assert.DoesNotContain("Unhandled exception", run.Output, StringComparison.Ordinal);
        Assert.DoesNotContain("mnemonic", run.Output, StringComparison.OrdinalIgnoreCase); // no key shown that was not kept
    }

    /// <summary>Every file under <paramref name="path"/> (relative name → bytes as hex), temp files included.</summary>
    private static SortedDictionary<string, string> Snapshot(string path) => new(
        Directory.GetFiles(path, "*", SearchOption.AllDirectories)
            .ToDictionary(f => Path.GetRelativePath(path, f), f => Convert.ToHexString(File.ReadAllBytes(f))),
        StringComparer.Ordinal);

    /// <summary>
    /// btcli with a file-size limit of <paramref name="limitKiB"/> KiB (none when null). SIGXFSZ is ignored so an
    /// over-limit write fails with EFBIG instead of killing the process; the runtime's W^X double mapping (a memfd
    /// sized with ftruncate, which the limit also caps) is off so the runtime itself starts under a small limit.
    /// </summary>
    private static ProcessStartInfo Start(int? limitKiB, params string[] args)
    {
        Assert.True(File.Exists(BtcliDll), $"btcli is not built at {BtcliDll}");
        var psi = new ProcessStartInfo("bash") { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        psi.ArgumentList.Add("-c");
        psi.ArgumentList.Add(limitKiB is null ? "exec dotnet \"$@\"" : "trap '' XFSZ; ulimit -f " + limitKiB.Value.ToString(CultureInfo.InvariantCulture) + "; exec dotnet \"$@\"");
        psi.ArgumentList.Add("btcli");
        psi.ArgumentList.Add(BtcliDll);
        foreach (var a in args) psi.ArgumentList.Add(a);
        psi.Environment["DOTNET_EnableWriteXorExecute"] = "0";
        return psi;
    }

    private async Task<(int ExitCode, string Output)> RunToEnd(ProcessStartInfo psi)
    {
        using var bound = new CancellationTokenSource(ChildBound);
        using var child = Child.Start(psi);
        await child.WaitForExitAsync(bound.Token);
        Log(child, $"exited {child.ExitCode}");
        return (child.ExitCode, child.Output);
    }

    /// <summary>How long each child took, in the test's output: what a failure at a busy CI's bound needs to be read.</summary>
    private void Log(Child child, string what) =>
        output.WriteLine(string.Create(CultureInfo.InvariantCulture,
            $"{string.Join(' ', child.Arguments.Skip(4).Take(2))}: {what} after {(DateTime.UtcNow - child.StartedAt).TotalSeconds:F1} s (load {File.ReadAllText("/proc/loadavg").Split(' ')[0]})"));

    private async Task<Child> Serve(ProcessStartInfo psi)
    {
        using var bound = new CancellationTokenSource(ChildBound);
        var child = Child.Start(psi);
        var serving = child.WaitFor("serving on ");
        var exited = child.WaitForExitAsync(bound.Token);
        if (await Task.WhenAny(serving, exited) != serving)
        {
            if (exited.IsCanceled)
            {
                // The test's bound ran out before the child served: say how long it had been running and what it printed
                // (a fresh-clone CI at load 50 once timed out here with nothing else to go on).
                var ran = DateTime.UtcNow - child.StartedAt;
                child.Dispose();
                Assert.Fail($"btcli axon serve printed no serving line in {ran.TotalSeconds:F0} s, before the test's time ran out; its output: {child.Output}");
            }
            await exited;
            child.Dispose();
            Assert.Fail($"btcli axon serve exited with {child.ExitCode} before serving: {child.Output}");
        }
        child.Port = int.Parse(ServingLine().Match(await serving).Groups[1].Value, CultureInfo.InvariantCulture);
        Log(child, "serving");
        return child;
    }

    private static WireClient Client(int port) => new(GrpcChannel.ForAddress($"http://127.0.0.1:{port}"));

    private sealed class ShiftedClock(TimeSpan shift) : TimeProvider
    {
        public override DateTimeOffset GetUtcNow() => System.GetUtcNow() + shift;
    }

    private sealed class Child : IDisposable
    {
        private readonly Process _process;
        private readonly StringBuilder _output = new();
        private readonly List<(string Text, TaskCompletionSource<string> Seen)> _waits = [];

        private Child(Process process, IReadOnlyList<string> arguments)
        {
            _process = process;
            Arguments = arguments;
        }

        /// <summary>The command line (bash -c script, $0, btcli.dll, the verb and its arguments).</summary>
        public IReadOnlyList<string> Arguments { get; }

        /// <summary>When the child was started (for failure messages).</summary>
        public DateTime StartedAt { get; } = DateTime.UtcNow;

        public static Child Start(ProcessStartInfo psi)
        {
            var child = new Child(Process.Start(psi)!, [.. psi.ArgumentList]);
            child._process.OutputDataReceived += (_, e) => child.OnLine(e.Data);
            child._process.ErrorDataReceived += (_, e) => child.OnLine(e.Data);
            child._process.BeginOutputReadLine();
            child._process.BeginErrorReadLine();
            return child;
        }

        public int Port { get; set; }

        public bool HasExited => _process.HasExited;

        public int ExitCode => _process.ExitCode;

        public string Output
        {
            get { lock (_output) return _output.ToString(); }
        }

        /// <summary>Completes with the first output line (stdout or stderr, past or future) containing <paramref name="text"/>.</summary>
        public Task<string> WaitFor(string text)
        {
            var seen = new TaskCompletionSource<string>(TaskCreationOptions.RunContinuationsAsynchronously);
            lock (_output)
            {
                var earlier = _output.ToString().Split('\n').FirstOrDefault(l => l.Contains(text, StringComparison.Ordinal));
                if (earlier is not null) seen.TrySetResult(earlier);
                else _waits.Add((text, seen));
            }
            return seen.Task;
        }

        public async Task WaitForExitAsync(CancellationToken cancellationToken)
        {
            await _process.WaitForExitAsync(cancellationToken);
            _process.WaitForExit(); // drains the redirected output
        }

        public void Kill()
        {
            _process.Kill(entireProcessTree: true);
            _process.WaitForExit();
        }

        public void Dispose()
        {
            if (!_process.HasExited) Kill();
            _process.Dispose();
        }

        private void OnLine(string? line)
        {
            if (line is null) return;
            lock (_output)
            {
                _output.AppendLine(line);
                foreach (var w in _waits.Where(w => line.Contains(w.Text, StringComparison.Ordinal)).ToList())
                {
                    w.Seen.TrySetResult(line);
                    _waits.Remove(w);
                }
            }
        }
    }
}

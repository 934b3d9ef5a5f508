using System.Diagnostics;
using System.Text;
using System.Text.Json;
using System.Text.RegularExpressions;
using Xunit.Abstractions;

namespace Bittensor.Cli.Tests.Shipped;

/// <summary>
/// The shipped form (issue 14): `dotnet pack` the btcli tool into a temp folder, `dotnet tool install --tool-path`
/// it from there, and run the INSTALLED copy: --version, a wallet round trip and a short demo, whose model path needs
/// TorchSharp's native library to load from the package (it failed before the publish-time ELF patch). Sources: the
/// local pack folder plus the machine's normal NuGet configuration. Each step's wall time goes to the test output and
/// into every failure message, so a run that comes close to a guard on a busy machine names the slow step.
/// </summary>
[Trait("Category", "Shipped")]
public sealed partial class InstalledToolTests(ITestOutputHelper output) : IDisposable
{
    private static readonly TimeSpan PackGuard = TimeSpan.FromMinutes(20);
    private static readonly TimeSpan InstallGuard = TimeSpan.FromMinutes(5);
    private static readonly TimeSpan CommandGuard = TimeSpan.FromMinutes(2);
    private static readonly TimeSpan DemoGuard = TimeSpan.FromMinutes(10);

    private readonly string _dir = Directory.CreateTempSubdirectory("bt-shipped-").FullName;
    private readonly StringBuilder _steps = new();

    /// <summary>Runs one step's process and records its wall time (a hang guard's expiry names the step and the times so far).</summary>
    private async Task<ProcessResult> Step(string name, string fileName, IEnumerable<string> args, TimeSpan guard, string? workingDirectory = null)
    {
        var clock = Stopwatch.StartNew();
        try
        {
            var result = await CliProcess.RunAsync(fileName, args, workingDirectory ?? _dir, guard);
            Record($"{name}: {clock.Elapsed.TotalSeconds:0.0} s (guard {guard.TotalSeconds:0} s), exit {result.ExitCode}");
            return result;
        }
        catch (TimeoutException e)
        {
            Record($"{name}: over its {guard.TotalSeconds:0} s guard after {clock.Elapsed.TotalSeconds:0.0} s");
            throw new TimeoutException($"step times:\n{_steps}{e.Message}", e);
        }
    }

    private void Record(string line)
    {
        _steps.AppendLine(line);
        output.WriteLine(line);
    }

    /// <summary>A failure message: the step times so far, then the process's result.</summary>
    private string Failed(string what, ProcessResult result) => $"{what}\nstep times:\n{_steps}{result}";

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    [Fact]
    public async Task The_packed_tool_installs_and_its_installed_copy_runs_version_wallet_and_demo()
    {
        var root = CliProcess.RepositoryRoot();
        var feed = Path.Combine(_dir, "nupkg");
        var tools = Path.Combine(_dir, "tools");

        // --no-restore: the solution restore already has the tool's RID (RuntimeIdentifiers in the project), and the
        // test must not rewrite obj/ under other test hosts. --disable-build-servers: no MSBuild/compiler server
        // outlives the command (it would hold our output pipes open).
        var pack = await Step("dotnet pack", CliProcess.Dotnet,
            ["pack", Path.Combine(root, "src", "Bittensor.Cli", "Bittensor.Cli.csproj"), "-c", CliProcess.Configuration, "-o", feed,
             "--no-restore", "--disable-build-servers", "-nologo", "-v:m"],
            PackGuard, root);
        Assert.True(pack.ExitCode == 0, Failed("dotnet pack failed", pack));
        var pointer = Directory.GetFiles(feed, "btcli.*.nupkg").Select(Path.GetFileName).OfType<string>()
            .Select(n => PointerPackage().Match(n)).SingleOrDefault(m => m.Success);
        Assert.True(pointer is not null, $"no btcli.<version>.nupkg in {string.Join(", ", Directory.GetFiles(feed).Select(Path.GetFileName))}");
        var version = pointer.Groups[1].Value;

        var install = await Step("dotnet tool install", CliProcess.Dotnet,
            ["tool", "install", "--tool-path", tools, "--add-source", feed, "--version", version, "btcli"], InstallGuard);
        Assert.True(install.ExitCode == 0, Failed("dotnet tool install failed", install));
        var btcli = Path.Combine(tools, OperatingSystem.IsWindows() ? "btcli.exe" : "btcli");
        Assert.True(File.Exists(btcli), $"no {btcli} after install: {install}");

        var ver = await Step("btcli --version", btcli, ["--version"], CommandGuard);
        Assert.True(ver.ExitCode == 0, Failed("btcli --version failed", ver));
        Assert.StartsWith(version, ver.Stdout.Trim(), StringComparison.Ordinal);

        // Wallet round trip: a coldkey made by the installed tool is listed by it with the same address.
        var wallets = Path.Combine(_dir, "wallets");
        var created = await Step("btcli wallet new_coldkey", btcli,
            ["wallet", "new_coldkey", "--wallet.path", wallets, "--wallet.name", "shipped", "--no_password"], CommandGuard);
        Assert.True(created.ExitCode == 0, Failed("btcli wallet new_coldkey failed", created));
        var ss58 = Ss58Written().Match(created.Stdout);
        Assert.True(ss58.Success, created.ToString());
        var list = await Step("btcli wallet list", btcli, ["wallet", "list", "--wallet.path", wallets, "--json"], CommandGuard);
        Assert.True(list.ExitCode == 0, Failed("btcli wallet list failed", list));
        using (var doc = JsonDocument.Parse(list.Stdout))
        {
            var listed = doc.RootElement.GetProperty("wallets").EnumerateArray().Single();
            Assert.Equal("shipped", listed.GetProperty("name").GetString());
            Assert.Equal(ss58.Groups[1].Value, listed.GetProperty("coldkeypub").GetString());
        }

        // The main job from the installed copy: servers load TorchSharp models from the package's native files.
        var demo = await Step("btcli demo", btcli, ["demo", "--epochs", "2", "--block_time", "0", "--json"], DemoGuard);
        Assert.True(demo.ExitCode == 0, Failed("installed btcli demo failed", demo));
        // The summary is the indented JSON object that ends stdout; a log line before it must not hide it.
        var start = demo.Stdout.IndexOf("\n{", StringComparison.Ordinal) is var i and >= 0 ? i + 1 : demo.Stdout.IndexOf('{', StringComparison.Ordinal);
        Assert.True(start >= 0, $"no JSON summary on stdout: {demo}");
        using var summary = JsonDocument.Parse(demo.Stdout[start..]);
        Assert.True(summary.RootElement.TryGetProperty("market_worked", out var worked), demo.Stdout);
        Assert.True(worked.ValueKind is JsonValueKind.True or JsonValueKind.False, demo.Stdout);
    }

    [GeneratedRegex(@"^btcli\.(\d+\.\d+\.\d+(?:-[0-9A-Za-z.-]+)?)\.nupkg$")]
    private static partial Regex PointerPackage();

    [GeneratedRegex(@"coldkey (5[1-9A-HJ-NP-Za-km-z]{47}) written to")]
    private static partial Regex Ss58Written();
}

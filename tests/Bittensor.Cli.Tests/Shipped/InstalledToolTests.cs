using System.Text.Json;
using System.Text.RegularExpressions;

namespace Bittensor.Cli.Tests.Shipped;

/// <summary>
/// The shipped form (issue 14): `dotnet pack` the btcli tool into a temp folder, `dotnet tool install --tool-path`
/// it from there, and run the INSTALLED copy: --version, a wallet round trip and a short demo, whose model path needs
/// TorchSharp's native library to load from the package (it failed before the publish-time ELF patch). Sources: the
/// local pack folder plus the machine's normal NuGet configuration.
/// </summary>
[Trait("Category", "Shipped")]
public sealed partial class InstalledToolTests : IDisposable
{
    private static readonly TimeSpan PackGuard = TimeSpan.FromMinutes(20);
    private static readonly TimeSpan InstallGuard = TimeSpan.FromMinutes(5);
    private static readonly TimeSpan CommandGuard = TimeSpan.FromMinutes(2);
    private static readonly TimeSpan DemoGuard = TimeSpan.FromMinutes(10);

    private readonly string _dir = Directory.CreateTempSubdirectory("bt-shipped-").FullName;

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
        var pack = await CliProcess.RunAsync(CliProcess.Dotnet,
            ["pack", Path.Combine(root, "src", "Bittensor.Cli", "Bittensor.Cli.csproj"), "-c", CliProcess.Configuration, "-o", feed,
             "--no-restore", "--disable-build-servers", "-nologo", "-v:m"],
            root, PackGuard);
        Assert.True(pack.ExitCode == 0, $"dotnet pack failed: {pack}");
        var pointer = Directory.GetFiles(feed, "btcli.*.nupkg").Select(Path.GetFileName).OfType<string>()
            .Select(n => PointerPackage().Match(n)).SingleOrDefault(m => m.Success);
        Assert.True(pointer is not null, $"no btcli.<version>.nupkg in {string.Join(", ", Directory.GetFiles(feed).Select(Path.GetFileName))}");
        var version = pointer.Groups[1].Value;

        var install = await CliProcess.RunAsync(CliProcess.Dotnet,
            ["tool", "install", "--tool-path", tools, "--add-source", feed, "--version", version, "btcli"], _dir, InstallGuard);
        Assert.True(install.ExitCode == 0, $"dotnet tool install failed: {install}");
        var btcli = Path.Combine(tools, OperatingSystem.IsWindows() ? "btcli.exe" : "btcli");
        Assert.True(File.Exists(btcli), $"no {btcli} after install: {install}");

        var ver = await CliProcess.RunAsync(btcli, ["--version"], _dir, CommandGuard);
        Assert.True(ver.ExitCode == 0, ver.ToString());
        Assert.StartsWith(version, ver.Stdout.Trim(), StringComparison.Ordinal);

        // Wallet round trip: a coldkey made by the installed tool is listed by it with the same address.
        var wallets = Path.Combine(_dir, "wallets");
        var created = await CliProcess.RunAsync(btcli,
            ["wallet", "new_coldkey", "--wallet.path", wallets, "--wallet.name", "shipped", "--no_password"], _dir, CommandGuard);
        Assert.True(created.ExitCode == 0, created.ToString());
        var ss58 = Ss58Written().Match(created.Stdout);
        Assert.True(ss58.Success, created.ToString());
        var list = await CliProcess.RunAsync(btcli, ["wallet", "list", "--wallet.path", wallets, "--json"], _dir, CommandGuard);
        Assert.True(list.ExitCode == 0, list.ToString());
        using (var doc = JsonDocument.Parse(list.Stdout))
        {
            var listed = doc.RootElement.GetProperty("wallets").EnumerateArray().Single();
            Assert.Equal("shipped", listed.GetProperty("name").GetString());
            Assert.Equal(ss58.Groups[1].Value, listed.GetProperty("coldkeypub").GetString());
        }

        // The main job from the installed copy: servers load TorchSharp models from the package's native files.
        var demo = await CliProcess.RunAsync(btcli, ["demo", "--epochs", "2", "--block_time", "0", "--json"], _dir, DemoGuard);
        Assert.True(demo.ExitCode == 0, $"installed btcli demo failed: {demo}");
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

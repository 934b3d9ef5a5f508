namespace Bittensor.Cli.Tests.Shipped;

/// <summary>
/// A model that cannot load fails fast and says so (issue 14): the real btcli process, run from a copy of its build
/// output whose libLibTorchSharp.so is broken on purpose, stops `demo` with one line naming the library and a
/// non-zero exit code, instead of restarting model actors forever. The copy holds the managed files and symbolic
/// links to the native ones (nothing large is copied), with that one library replaced.
/// </summary>
[System.Runtime.Versioning.UnsupportedOSPlatform("windows")]
public sealed class UnloadableTorchTests : IDisposable
{
    // A guard against a hang, not a speed assertion: the check runs before the demo starts anything.
    private static readonly TimeSpan Guard = TimeSpan.FromMinutes(2);

    private readonly string _dir = Directory.CreateTempSubdirectory("bt-notorch-").FullName;

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    [Fact]
    public async Task Demo_with_an_unloadable_torchsharp_library_exits_non_zero_with_one_line_naming_it()
    {
        var build = Path.Combine(CliProcess.RepositoryRoot(), "src", "Bittensor.Cli", "bin", CliProcess.Configuration, "net10.0");
        Assert.True(File.Exists(Path.Combine(build, "btcli.dll")), $"no btcli build output in {build}");
        var app = Path.Combine(_dir, "app");
        var broken = 0;
        foreach (var file in Directory.EnumerateFiles(build, "*", SearchOption.AllDirectories))
        {
            var relative = Path.GetRelativePath(build, file);
            if (relative.StartsWith("publish" + Path.DirectorySeparatorChar, StringComparison.Ordinal) ||
                relative.StartsWith("linux-", StringComparison.Ordinal)) continue; // other shipped forms, not this app
            var target = Path.Combine(app, relative);
            Directory.CreateDirectory(Path.GetDirectoryName(target)!);
            if (Path.GetFileName(file) == "libLibTorchSharp.so")
            {
                File.WriteAllText(target, "not a shared library\n");
                broken++;
            }
            else if (relative.StartsWith("runtimes" + Path.DirectorySeparatorChar, StringComparison.Ordinal))
            {
                File.CreateSymbolicLink(target, file); // the natives (libtorch is ~500 MB): linked, not copied
            }
            else
            {
                // The host resolves the app folder through links (realpath), so the app's own files are real copies.
                File.Copy(file, target);
            }
        }
        Assert.True(broken > 0, $"no libLibTorchSharp.so under {build}");

        var result = await CliProcess.RunAsync(CliProcess.Dotnet,
            [Path.Combine(app, "btcli.dll"), "demo", "--epochs", "2", "--block_time", "0", "--json"], _dir, Guard);

        Assert.True(result.ExitCode != 0, result.ToString());
        var lines = result.Stderr.Split('\n', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries);
        Assert.True(lines.Length == 1, result.ToString());
        Assert.Contains("libLibTorchSharp.so", lines[0], StringComparison.Ordinal);
        Assert.Contains("cannot be loaded", lines[0], StringComparison.Ordinal);
        Assert.Equal("", result.Stdout.Trim());
    }
}

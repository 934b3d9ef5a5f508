using System.Text.Json;

[assembly: System.Runtime.Versioning.UnsupportedOSPlatform("windows")] // file modes are checked on Linux (CI is Debian)

namespace Bittensor.Wallet.Tests;

/// <summary>The vector keyfiles in Fixtures/keyfiles and a scratch folder per test.</summary>
internal static class TestFiles
{
    public const string VectorPassword = "correct horse battery staple";

    public static string VectorDir => Path.Combine(AppContext.BaseDirectory, "Fixtures", "keyfiles");

    public static string Vector(string file) => Path.Combine(VectorDir, file);

    public sealed record VectorEntry(string File, string Format, string? Password, string Ss58, string Public);

    public static IReadOnlyList<VectorEntry> Index()
    {
        using var doc = JsonDocument.Parse(System.IO.File.ReadAllBytes(Vector("index.json")));
        return doc.RootElement.EnumerateArray()
            .Select(e => new VectorEntry(
                e.GetProperty("file").GetString()!,
                e.GetProperty("format").GetString()!,
                e.GetProperty("password").GetString(),
                e.GetProperty("ss58").GetString()!,
                e.GetProperty("public").GetString()!))
            .ToList();
    }

    public static string NewTempDir()
    {
        var dir = Path.Combine(Path.GetTempPath(), "bt-wallet-tests", Guid.NewGuid().ToString("N"));
        Directory.CreateDirectory(dir);
        return dir;
    }

    public static UnixFileMode Mode(string path) => File.GetUnixFileMode(path);
}

/// <summary>Deletes a scratch folder at the end of a test.</summary>
internal sealed class TempDir : IDisposable
{
    public TempDir() => Path = TestFiles.NewTempDir();

    public string Path { get; }

    public string File(string name) => System.IO.Path.Combine(Path, name);

    public void Dispose()
    {
        try { Directory.Delete(Path, recursive: true); }
        catch (IOException) { }
    }
}

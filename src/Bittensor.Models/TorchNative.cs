using System.Runtime.InteropServices;
using TorchSharp;

namespace Bittensor.Models;

/// <summary>
/// Checks, once per process, that TorchSharp's native libraries load, before a role or the demo starts model
/// hosts. When they do not (a missing or broken <c>libLibTorchSharp.so</c>, or one needing a newer libstdc++ than
/// the system has), TorchSharp's type initializer throws on every use, so a model host would fail to start again
/// and again; callers use <see cref="Check"/> to stop at once with one line naming the cause instead.
/// </summary>
public static class TorchNative
{
    private static readonly Lazy<string?> Result = new(Probe, LazyThreadSafetyMode.ExecutionAndPublication);

    /// <summary>Null when TorchSharp works in this process; otherwise one line saying why it cannot.</summary>
    public static string? Check() => Result.Value;

    /// <summary>The full exception behind a failed <see cref="Check"/> (for the log), or null.</summary>
    public static Exception? Failure { get; private set; }

    private static string? Probe()
    {
        // First the app's own copy, through the loader directly: when it is broken, TorchSharp would go on to copy
        // libtorch (~500 MB) out of the NuGet cache next to the app and print its search trace on stdout.
        if (OwnLibrary() is { } path)
        {
            try
            {
                NativeLibrary.Load(path); // kept loaded: TorchSharp loads this same file next
            }
            catch (Exception e) when (e is DllNotFoundException or BadImageFormatException)
            {
                Failure = e;
                return $"TorchSharp's native library cannot be loaded ({Path.GetFileName(path)}: {LoaderReason(e, path)}); the models cannot start";
            }
        }
        try
        {
            using var probe = torch.zeros(1);
            return null;
        }
        catch (Exception e) when (e is TypeInitializationException or DllNotFoundException or NotSupportedException or EntryPointNotFoundException or BadImageFormatException)
        {
            Failure = e;
            return $"TorchSharp's native library cannot be loaded ({e.GetBaseException().GetType().Name}); the models cannot start";
        }
    }

    /// <summary>The TorchSharp native library shipped next to the app (flat, RID-specific layout, or under runtimes/), or null.</summary>
    private static string? OwnLibrary()
    {
        var name = OperatingSystem.IsWindows() ? "LibTorchSharp.dll" : OperatingSystem.IsMacOS() ? "libLibTorchSharp.dylib" : "libLibTorchSharp.so";
        var arch = RuntimeInformation.ProcessArchitecture.ToString().ToLowerInvariant();
        var os = OperatingSystem.IsWindows() ? "win" : OperatingSystem.IsMacOS() ? "osx" : "linux";
        string[] candidates =
        [
            Path.Combine(AppContext.BaseDirectory, name),
            Path.Combine(AppContext.BaseDirectory, "runtimes", RuntimeInformation.RuntimeIdentifier, "native", name),
            Path.Combine(AppContext.BaseDirectory, "runtimes", $"{os}-{arch}", "native", name),
        ];
        return candidates.FirstOrDefault(File.Exists);
    }

    /// <summary>The dynamic loader's own words (dlerror), e.g. "invalid ELF header" or "version `GLIBCXX_3.4.32' not found".</summary>
    private static string LoaderReason(Exception e, string path)
    {
        var text = e.Message.ReplaceLineEndings(" ").Trim();
        var cut = text.LastIndexOf(path, StringComparison.Ordinal);
        var reason = cut >= 0 ? text[(cut + path.Length)..].TrimStart(':', ' ') : text;
        return reason.Length > 200 ? reason[..200] + "…" : reason;
    }
}

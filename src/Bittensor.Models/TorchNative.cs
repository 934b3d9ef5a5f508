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
        try
        {
            using var probe = torch.zeros(1);
            return null;
        }
        catch (Exception e) when (e is TypeInitializationException or DllNotFoundException or NotSupportedException or EntryPointNotFoundException or BadImageFormatException)
        {
            Failure = e;
            return $"TorchSharp's native library cannot be loaded{LoaderReason()}; the models cannot start";
        }
    }

    /// <summary>The dynamic loader's own words for the first TorchSharp library next to the app that fails to load.</summary>
    private static string LoaderReason()
    {
        var name = OperatingSystem.IsWindows() ? "LibTorchSharp.dll" : OperatingSystem.IsMacOS() ? "libLibTorchSharp.dylib" : "libLibTorchSharp.so";
        var rid = RuntimeInformation.RuntimeIdentifier;
        var arch = RuntimeInformation.ProcessArchitecture.ToString().ToLowerInvariant();
        var os = OperatingSystem.IsWindows() ? "win" : OperatingSystem.IsMacOS() ? "osx" : "linux";
        var candidates = new[]
        {
            Path.Combine(AppContext.BaseDirectory, name),
            Path.Combine(AppContext.BaseDirectory, "runtimes", rid, "native", name),
            Path.Combine(AppContext.BaseDirectory, "runtimes", $"{os}-{arch}", "native", name),
        };
        var path = candidates.FirstOrDefault(File.Exists);
        if (path is null) return $" ({name} is not next to the program)";
        try
        {
            // Already loaded (or loadable) means the failure is elsewhere: TorchSharp's message is in the log.
            NativeLibrary.Free(NativeLibrary.Load(path));
            return "";
        }
        catch (DllNotFoundException e)
        {
            // The message ends with dlerror()'s text, e.g. "...: invalid ELF header" or "version `GLIBCXX_3.4.32' not found".
            var text = e.Message.ReplaceLineEndings(" ").Trim();
            var cut = text.LastIndexOf(path, StringComparison.Ordinal);
            var reason = cut >= 0 ? text[(cut + path.Length)..].TrimStart(':', ' ') : text;
            return $" ({name}: {(reason.Length > 200 ? reason[..200] + "…" : reason)})";
        }
        catch (BadImageFormatException e)
        {
            return $" ({name}: {e.Message})";
        }
    }
}

namespace Bittensor.Build.ElfPatch;

/// <summary>
/// elfpatch: marks one symbol-version need of a shared library weak, so the loader accepts a system library that
/// lacks that version. Used by build/TorchSharp.targets for libLibTorchSharp.so (GLIBCXX_3.4.32 on Debian 12).
/// </summary>
internal static class Program
{
    /// <summary>Exit codes; the MSBuild target reports anything but Ok as an error.</summary>
    internal enum Exit
    {
        Ok = 0,
        Usage = 1,
        BadElf = 2,
        Io = 3,
        Refused = 4,
        Missing = 5,
    }

    internal const string DefaultVersion = "GLIBCXX_3.4.32";
    internal const string DefaultSoname = "libstdc++.so.6";

    // GCC 13 makes every object that includes <iostream> reference this symbol as a link marker; nothing calls
    // it, so its version need may safely be weak. Any other symbol on the version means real code needs it.
    internal static readonly string[] DefaultAllowedSymbols = ["_ZSt21ios_base_library_initv"];

    private const string UsageText = """
        usage:
          elfpatch patch-if-needed <lib.so> [--version V] [--libstdcxx PATH] [--allow-symbol S]... [--force] [--unconditional]
              mark the need for V (default GLIBCXX_3.4.32) weak unless the system libstdc++ defines V;
              --unconditional: also when it does (for files that ship to other machines: publish, pack)
          elfpatch patch <lib.so> [--version V]     mark the need weak unconditionally
          elfpatch show <lib.so>                    list version needs (file, version, flags, symbols)
          elfpatch defines <lib.so> <V>             exit 0 when the library defines version V, 5 when not
          elfpatch find-libstdcxx                   print the libstdc++.so.6 the loader would use
        exit codes: 0 ok, 1 usage, 2 not a valid ELF64 LE file, 3 I/O error, 4 refused, 5 version not defined
        """;

    public static int Main(string[] args) => (int)Run(args, Console.Out, Console.Error);

    internal static Exit Run(string[] args, TextWriter stdout, TextWriter stderr)
    {
        try
        {
            return Dispatch(args, stdout, stderr);
        }
        catch (UsageException e)
        {
            stderr.WriteLine($"elfpatch: {e.Message}");
            stderr.WriteLine(UsageText);
            return Exit.Usage;
        }
        catch (ElfFormatException e)
        {
            stderr.WriteLine($"elfpatch: error: {e.Message}");
            return Exit.BadElf;
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            stderr.WriteLine($"elfpatch: error: {e.Message}");
            return Exit.Io;
        }
    }

    private static Exit Dispatch(string[] args, TextWriter stdout, TextWriter stderr)
    {
        if (args.Length == 0) throw new UsageException("no command given");
        var options = Options.Parse(args[1..]);
        switch (args[0])
        {
            case "patch-if-needed":
                return PatchIfNeeded(options.Single("library path"), options, stdout, stderr);
            case "patch":
            {
                var lib = options.Single("library path");
                var outcome = ElfPatcher.MarkNeedWeak(lib, options.Version);
                stdout.WriteLine($"elfpatch: {lib}: {Describe(outcome, options.Version)}");
                return Exit.Ok;
            }
            case "show":
            {
                var elf = ElfImage.Read(options.Single("library path"));
                foreach (var need in ElfVersions.ReadNeeds(elf))
                {
                    var symbols = ElfVersions.SymbolsWithVersion(elf, need.Index);
                    stdout.WriteLine($"{need.File}\t{need.Version}\tflags=0x{need.Flags:x}\tindex={need.Index}\tsymbols={symbols.Count}");
                }
                return Exit.Ok;
            }
            case "defines":
            {
                if (options.Positional.Count != 2) throw new UsageException("defines takes <lib.so> <version>");
                var defined = ElfVersions.ReadDefinitions(ElfImage.Read(options.Positional[0])).Contains(options.Positional[1], StringComparer.Ordinal);
                stdout.WriteLine($"elfpatch: {options.Positional[0]} {(defined ? "defines" : "does not define")} {options.Positional[1]}");
                return defined ? Exit.Ok : Exit.Missing;
            }
            case "find-libstdcxx":
            {
                const ushort x8664 = 62, aarch64 = 183;
                var machine = System.Runtime.InteropServices.RuntimeInformation.ProcessArchitecture == System.Runtime.InteropServices.Architecture.Arm64 ? aarch64 : x8664;
                var path = LibraryLocator.Find(DefaultSoname, machine);
                if (path is null)
                {
                    stderr.WriteLine($"elfpatch: no {DefaultSoname} found");
                    return Exit.Missing;
                }
                stdout.WriteLine(path);
                return Exit.Ok;
            }
            default:
                throw new UsageException($"unknown command '{args[0]}'");
        }
    }

    private static Exit PatchIfNeeded(string lib, Options options, TextWriter stdout, TextWriter stderr)
    {
        var elf = ElfImage.Read(lib);
        var needs = ElfVersions.ReadNeeds(elf).Where(n => string.Equals(n.Version, options.Version, StringComparison.Ordinal)).ToList();
        if (needs.Count == 0)
        {
            stdout.WriteLine($"elfpatch: {lib} does not need {options.Version}; nothing to do");
            return Exit.Ok;
        }
        if (needs.All(n => n.IsWeak))
        {
            stdout.WriteLine($"elfpatch: {lib}: the need for {options.Version} is already weak");
            return Exit.Ok;
        }

        var soname = needs[0].File;
        // A file that ships elsewhere (publish folder, tool package) must load on machines older than this one, so the
        // build machine's libstdc++ says nothing about it: --unconditional skips this check (a weak need is harmless
        // where the version exists: the loader binds the symbol to it as before). The symbol check below still runs.
        var system = options.Unconditional ? null : options.LibStdCxx ?? LibraryLocator.Find(soname, elf.Machine);
        if (system is not null && ElfVersions.ReadDefinitions(ElfImage.Read(system)).Contains(options.Version, StringComparer.Ordinal))
        {
            stdout.WriteLine($"elfpatch: {system} defines {options.Version}; {lib} loads as shipped, not patching");
            return Exit.Ok;
        }

        var allowed = options.AllowedSymbols.Count > 0 ? options.AllowedSymbols : DefaultAllowedSymbols.ToList();
        var users = needs.SelectMany(n => ElfVersions.SymbolsWithVersion(elf, n.Index)).Distinct(StringComparer.Ordinal).ToList();
        var unexpected = users.Where(s => !allowed.Contains(s, StringComparer.Ordinal)).ToList();
        if (unexpected.Count > 0 && !options.Force)
        {
            stderr.WriteLine($"elfpatch: error: refusing to weaken {options.Version} in {lib}: symbols other than the link marker use it " +
                             $"({string.Join(", ", unexpected.Take(5))}{(unexpected.Count > 5 ? ", ..." : "")}); a newer libstdc++ is needed, or pass --force");
            return Exit.Refused;
        }

        var outcome = ElfPatcher.MarkNeedWeak(lib, options.Version);
        var reason = options.Unconditional ? "unconditional: the file ships to other machines" : system is null ? $"no {soname} found" : $"{system} lacks it";
        stdout.WriteLine($"elfpatch: {lib}: {Describe(outcome, options.Version)} ({reason}; symbols on it: {string.Join(", ", users)})");
        return Exit.Ok;
    }

    private static string Describe(PatchOutcome outcome, string version) => outcome switch
    {
        PatchOutcome.NotNeeded => $"does not need {version}; nothing to do",
        PatchOutcome.AlreadyWeak => $"the need for {version} is already weak",
        _ => $"marked the need for {version} weak",
    };

    private sealed class UsageException(string message) : Exception(message);

    private sealed class Options
    {
        public List<string> Positional { get; } = [];
        public string Version { get; private set; } = DefaultVersion;
        public string? LibStdCxx { get; private set; }
        public List<string> AllowedSymbols { get; } = [];
        public bool Force { get; private set; }
        public bool Unconditional { get; private set; }

        public string Single(string what) =>
            Positional.Count == 1 ? Positional[0] : throw new UsageException($"expected exactly one {what}, got {Positional.Count}");

        public static Options Parse(string[] args)
        {
            var o = new Options();
            for (var i = 0; i < args.Length; i++)
            {
                string Value() => i + 1 < args.Length ? args[++i] : throw new UsageException($"{args[i]} needs a value");
                switch (args[i])
                {
                    case "--version": o.Version = Value(); break;
                    case "--libstdcxx": o.LibStdCxx = Value(); break;
                    case "--allow-symbol": o.AllowedSymbols.Add(Value()); break;
                    case "--force": o.Force = true; break;
                    case "--unconditional": o.Unconditional = true; break;
                    case var a when a.StartsWith("--", StringComparison.Ordinal): throw new UsageException($"unknown option '{a}'");
                    default: o.Positional.Add(args[i]); break;
                }
            }
            return o;
        }
    }
}

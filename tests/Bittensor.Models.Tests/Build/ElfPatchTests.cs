using System.Text;
using Bittensor.Build.ElfPatch;
using FsCheck;
using FsCheck.Fluent;

namespace Bittensor.Models.Tests.Build;

[System.Runtime.Versioning.UnsupportedOSPlatform("windows")]
public sealed class ElfPatchTests : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("elfpatch-").FullName;

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    private string Write(byte[] bytes, string name = "lib.so")
    {
        var path = Path.Combine(_dir, name);
        File.WriteAllBytes(path, bytes);
        return path;
    }

    private static VersionNeed Need(string path, string version) =>
        ElfVersions.ReadNeeds(ElfImage.Read(path)).Single(n => n.Version == version);

    [Fact]
    public void Patching_sets_the_weak_flag_on_the_named_version_and_nothing_else()
    {
        var original = SyntheticElf.Build(["GLIBCXX_3.4.30", "GLIBCXX_3.4.32"]);
        var path = Write(original);

        Assert.Equal(PatchOutcome.Patched, ElfPatcher.MarkNeedWeak(path, "GLIBCXX_3.4.32"));

        Assert.True(Need(path, "GLIBCXX_3.4.32").IsWeak);
        Assert.False(Need(path, "GLIBCXX_3.4.30").IsWeak);
        var patched = File.ReadAllBytes(path);
        var changed = Enumerable.Range(0, original.Length).Where(i => original[i] != patched[i]).ToList();
        Assert.Single(changed);
        Assert.Equal(ElfVersions.VerFlagWeak, patched[changed[0]]);
    }

    [Fact]
    public void Patching_twice_leaves_the_file_as_the_first_patch_left_it()
    {
        var path = Write(SyntheticElf.Build(["GLIBCXX_3.4.32"]));
        ElfPatcher.MarkNeedWeak(path, "GLIBCXX_3.4.32");
        var once = File.ReadAllBytes(path);

        Assert.Equal(PatchOutcome.AlreadyWeak, ElfPatcher.MarkNeedWeak(path, "GLIBCXX_3.4.32"));
        Assert.Equal(once, File.ReadAllBytes(path));
    }

    [Fact]
    public void Patching_keeps_the_file_mode_and_modification_time_and_leaves_no_temp_file()
    {
        var path = Write(SyntheticElf.Build(["GLIBCXX_3.4.32"]));
        File.SetUnixFileMode(path, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute | UnixFileMode.GroupRead);
        var stamp = new DateTime(2024, 5, 7, 10, 3, 28, DateTimeKind.Utc);
        File.SetLastWriteTimeUtc(path, stamp);

        ElfPatcher.MarkNeedWeak(path, "GLIBCXX_3.4.32");

        Assert.Equal(UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute | UnixFileMode.GroupRead, File.GetUnixFileMode(path));
        Assert.Equal(stamp, File.GetLastWriteTimeUtc(path));
        Assert.Equal([path], Directory.GetFiles(_dir));
    }

    [Fact]
    public void A_library_that_does_not_need_the_version_is_not_rewritten()
    {
        var path = Write(SyntheticElf.Build(["GLIBCXX_3.4.30"]));
        var before = File.GetLastWriteTimeUtc(path);
        File.SetLastWriteTimeUtc(path, before.AddHours(-1));

        Assert.Equal(PatchOutcome.NotNeeded, ElfPatcher.MarkNeedWeak(path, "GLIBCXX_3.4.32"));
        Assert.Equal(before.AddHours(-1), File.GetLastWriteTimeUtc(path));
    }

    [Fact]
    public void Version_definitions_are_read_without_the_base_entry()
    {
        var elf = ElfImage.Parse(SyntheticElf.Build(["GLIBC_2.2.5"], ["GLIBCXX_3.4", "GLIBCXX_3.4.30"]));
        Assert.Equal(["GLIBCXX_3.4", "GLIBCXX_3.4.30"], ElfVersions.ReadDefinitions(elf));
    }

    [Fact]
    public void Patch_if_needed_leaves_the_library_alone_when_the_system_libstdcxx_defines_the_version()
    {
        var lib = Write(SyntheticElf.Build(["GLIBCXX_3.4.32"]));
        var system = Write(SyntheticElf.Build(["GLIBC_2.2.5"], ["GLIBCXX_3.4.31", "GLIBCXX_3.4.32"]), "libstdc++.so.6");

        Assert.Equal(Program.Exit.Ok, Run("patch-if-needed", lib, "--libstdcxx", system));
        Assert.False(Need(lib, "GLIBCXX_3.4.32").IsWeak);
    }

    [Fact]
    public void Patch_if_needed_patches_when_the_system_libstdcxx_lacks_the_version()
    {
        var lib = Write(SyntheticElf.Build(["GLIBCXX_3.4.30", "GLIBCXX_3.4.32"]));
        var system = Write(SyntheticElf.Build(["GLIBC_2.2.5"], ["GLIBCXX_3.4.29", "GLIBCXX_3.4.30"]), "libstdc++.so.6");

        Assert.Equal(Program.Exit.Ok, Run("patch-if-needed", lib, "--libstdcxx", system));
        Assert.True(Need(lib, "GLIBCXX_3.4.32").IsWeak);
    }

    [Fact]
    public void Unconditional_patching_weakens_the_need_even_where_the_build_machine_defines_the_version()
    {
        // A publish folder or tool package built on a new distribution still has to load on Debian 12.
        var lib = Write(SyntheticElf.Build(["GLIBCXX_3.4.32"]));
        var system = Write(SyntheticElf.Build(["GLIBC_2.2.5"], ["GLIBCXX_3.4.31", "GLIBCXX_3.4.32"]), "libstdc++.so.6");

        Assert.Equal(Program.Exit.Ok, Run("patch-if-needed", lib, "--libstdcxx", system, "--unconditional"));
        Assert.True(Need(lib, "GLIBCXX_3.4.32").IsWeak);
    }

    [Fact]
    public void Unconditional_patching_still_refuses_when_a_real_symbol_uses_the_version()
    {
        var lib = Write(SyntheticElf.Build(["GLIBCXX_3.4.32"], markerSymbol: "_ZNSt6chrono3_V212system_clock3nowEv"));

        Assert.Equal(Program.Exit.Refused, Run("patch-if-needed", lib, "--unconditional"));
        Assert.False(Need(lib, "GLIBCXX_3.4.32").IsWeak);
    }

    [Fact]
    public void Patch_if_needed_refuses_when_a_real_symbol_uses_the_version()
    {
        var lib = Write(SyntheticElf.Build(["GLIBCXX_3.4.32"], markerSymbol: "_ZNSt6chrono3_V212system_clock3nowEv"));
        var system = Write(SyntheticElf.Build(["GLIBC_2.2.5"], ["GLIBCXX_3.4.30"]), "libstdc++.so.6");

        Assert.Equal(Program.Exit.Refused, Run("patch-if-needed", lib, "--libstdcxx", system));
        Assert.False(Need(lib, "GLIBCXX_3.4.32").IsWeak);
    }

    [Fact]
    public void A_file_that_is_not_elf_gives_exit_code_2_and_stays_untouched()
    {
        var bytes = Encoding.ASCII.GetBytes("#!/bin/sh\necho not a library\n");
        var path = Write(bytes);

        Assert.Equal(Program.Exit.BadElf, Run("patch-if-needed", path));
        Assert.Equal(bytes, File.ReadAllBytes(path));
    }

    [Fact]
    public void A_missing_file_gives_exit_code_3_and_unknown_commands_give_exit_code_1()
    {
        Assert.Equal(Program.Exit.Io, Run("show", Path.Combine(_dir, "absent.so")));
        Assert.Equal(Program.Exit.Usage, Run("frobnicate"));
        Assert.Equal(Program.Exit.Usage, Run("patch-if-needed"));
    }

    [Fact]
    public void Every_truncation_of_a_valid_file_is_rejected_with_a_format_error()
    {
        var valid = SyntheticElf.Build(["GLIBCXX_3.4.30", "GLIBCXX_3.4.32"], ["GLIBCXX_3.4"]);
        for (var length = 0; length < valid.Length; length++)
        {
            var cut = valid[..length];
            var error = Record.Exception(() =>
            {
                var elf = ElfImage.Parse(cut);
                ElfVersions.ReadNeeds(elf);
                ElfVersions.ReadDefinitions(elf);
            });
            Assert.IsType<ElfFormatException>(error);
        }
    }

    [Fact]
    public void Corrupted_bytes_give_a_format_error_or_a_parse_never_another_exception()
    {
        var valid = SyntheticElf.Build(["GLIBCXX_3.4.30", "GLIBCXX_3.4.32"], ["GLIBCXX_3.4"]);
        Prop.ForAll(Gen.Choose(0, valid.Length - 1).ArrayOf().Zip(Gen.Choose(0, 255).ArrayOf()).ToArbitrary(), edits =>
        {
            var bytes = (byte[])valid.Clone();
            for (var i = 0; i < Math.Min(edits.Item1.Length, edits.Item2.Length); i++) bytes[edits.Item1[i]] = (byte)edits.Item2[i];
            try
            {
                var elf = ElfImage.Parse(bytes);
                foreach (var need in ElfVersions.ReadNeeds(elf)) ElfVersions.SymbolsWithVersion(elf, need.Index);
                ElfVersions.ReadDefinitions(elf);
            }
            catch (ElfFormatException)
            {
                // The expected outcome for most corruptions.
            }
        }).QuickCheckThrowOnFailure();
    }

    [Fact]
    public void The_ld_so_cache_parser_finds_libstdcxx_and_ignores_garbage()
    {
        Assert.Empty(LibraryLocator.ParseLdSoCache(Encoding.ASCII.GetBytes("glibc-ld.so.cache1.1 too short"), "libstdc++.so.6"));
        Assert.Empty(LibraryLocator.ParseLdSoCache(new byte[4096], "libstdc++.so.6"));
        var cache = "/etc/ld.so.cache";
        Assert.True(File.Exists(cache), "Debian always has /etc/ld.so.cache");
        var found = LibraryLocator.ReadLdSoCache(cache, "libstdc++.so.6");
        Assert.Contains(found, p => p.EndsWith("/libstdc++.so.6", StringComparison.Ordinal) && File.Exists(p));
    }

    [Fact]
    public void The_real_libtorchsharp_needs_glibcxx_3_4_32_only_for_the_link_marker_and_patches_in_one_byte()
    {
        var packages = Environment.GetEnvironmentVariable("NUGET_PACKAGES")
            ?? Path.Combine(Environment.GetFolderPath(Environment.SpecialFolder.UserProfile), ".nuget", "packages");
        var source = Path.Combine(packages, "torchsharp", "0.107.0", "runtimes", "linux-x64", "native", "libLibTorchSharp.so");
        Assert.True(File.Exists(source), $"restore puts TorchSharp 0.107.0 in the NuGet cache: {source}");
        var original = File.ReadAllBytes(source);
        var path = Write(original, "libLibTorchSharp.so");

        var elf = ElfImage.Read(path);
        var need = ElfVersions.ReadNeeds(elf).Single(n => n.Version == "GLIBCXX_3.4.32");
        Assert.Equal("libstdc++.so.6", need.File);
        Assert.Equal(["_ZSt21ios_base_library_initv"], ElfVersions.SymbolsWithVersion(elf, need.Index));

        Assert.Equal(PatchOutcome.Patched, ElfPatcher.MarkNeedWeak(path, "GLIBCXX_3.4.32"));
        var patched = File.ReadAllBytes(path);
        Assert.Equal(1, Enumerable.Range(0, original.Length).Count(i => original[i] != patched[i]));
        Assert.All(ElfVersions.ReadNeeds(ElfImage.Read(path)), n => Assert.Equal(n.Version == "GLIBCXX_3.4.32", n.IsWeak));
    }

    private static Program.Exit Run(params string[] args) => Program.Run(args, TextWriter.Null, TextWriter.Null);
}

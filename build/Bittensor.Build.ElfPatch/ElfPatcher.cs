namespace Bittensor.Build.ElfPatch;

/// <summary>What <see cref="ElfPatcher.MarkNeedWeak"/> did.</summary>
internal enum PatchOutcome
{
    /// <summary>The file does not need the version at all.</summary>
    NotNeeded,
    /// <summary>The need was already weak; the file was not rewritten.</summary>
    AlreadyWeak,
    /// <summary>The weak bit was set and the file replaced atomically.</summary>
    Patched,
}

/// <summary>Sets VER_FLG_WEAK on a version need and writes the file back atomically.</summary>
internal static class ElfPatcher
{
    /// <summary>
    /// Sets vna_flags |= VER_FLG_WEAK on every Vernaux naming <paramref name="version"/>. The file is replaced
    /// by a temp file in the same folder renamed over it, keeping its mode and modification time (so MSBuild's
    /// copy-if-changed step sees it as up to date and does not copy the unpatched original back).
    /// </summary>
    public static PatchOutcome MarkNeedWeak(string path, string version)
    {
        var elf = ElfImage.Read(path);
        var needs = ElfVersions.ReadNeeds(elf).Where(n => string.Equals(n.Version, version, StringComparison.Ordinal)).ToList();
        if (needs.Count == 0) return PatchOutcome.NotNeeded;
        if (needs.All(n => n.IsWeak)) return PatchOutcome.AlreadyWeak;

        var data = (byte[])elf.Data.Clone();
        foreach (var need in needs)
        {
            var flags = (ushort)(need.Flags | ElfVersions.VerFlagWeak);
            data[need.FlagsOffset] = (byte)flags;
            data[need.FlagsOffset + 1] = (byte)(flags >> 8);
        }
        WriteAtomically(path, data);
        return PatchOutcome.Patched;
    }

    internal static void WriteAtomically(string path, byte[] data)
    {
        var full = Path.GetFullPath(path);
        var dir = Path.GetDirectoryName(full) ?? ".";
        var lastWrite = File.GetLastWriteTimeUtc(full);
        var temp = Path.Combine(dir, $".{Path.GetFileName(full)}.{Guid.NewGuid():N}.tmp");
        try
        {
            using (var stream = new FileStream(temp, FileMode.CreateNew, FileAccess.Write, FileShare.None))
            {
                stream.Write(data);
                stream.Flush(flushToDisk: true);
            }
            if (!OperatingSystem.IsWindows()) File.SetUnixFileMode(temp, File.GetUnixFileMode(full));
            File.SetLastWriteTimeUtc(temp, lastWrite);
            File.Move(temp, full, overwrite: true);
        }
        finally
        {
            if (File.Exists(temp)) File.Delete(temp);
        }
    }
}

using System.Buffers.Binary;
using System.Text;

namespace Bittensor.Build.ElfPatch;

/// <summary>
/// Finds the shared library the dynamic loader would pick for a soname: LD_LIBRARY_PATH first, then the
/// entries of /etc/ld.so.cache (glibc's "glibc-ld.so.cache1.1" format), then the usual multiarch folders.
/// Only ELF files for the same machine as the object being patched count.
/// </summary>
internal static class LibraryLocator
{
    private static readonly byte[] NewCacheMagic = Encoding.ASCII.GetBytes("glibc-ld.so.cache1.1");
    private const int NewHeaderSize = 48;
    private const int NewEntrySize = 24;
    private const long MaxCacheBytes = 64L << 20;

    private static readonly string[] FallbackFolders =
    [
        "/usr/lib/x86_64-linux-gnu", "/lib/x86_64-linux-gnu", "/usr/lib/aarch64-linux-gnu", "/lib/aarch64-linux-gnu",
        "/usr/lib64", "/lib64", "/usr/lib", "/lib",
    ];

    /// <summary>Candidate paths for <paramref name="soname"/> in the loader's search order, existing files only.</summary>
    public static IReadOnlyList<string> Candidates(string soname, string ldSoCache = "/etc/ld.so.cache")
    {
        var seen = new List<string>();
        void Add(string path)
        {
            if (File.Exists(path) && !seen.Contains(path, StringComparer.Ordinal)) seen.Add(path);
        }
        var ldPath = Environment.GetEnvironmentVariable("LD_LIBRARY_PATH");
        if (!string.IsNullOrEmpty(ldPath))
            foreach (var dir in ldPath.Split(':', StringSplitOptions.RemoveEmptyEntries))
                Add(Path.Combine(dir, soname));
        foreach (var path in ReadLdSoCache(ldSoCache, soname)) Add(path);
        foreach (var dir in FallbackFolders) Add(Path.Combine(dir, soname));
        return seen;
    }

    /// <summary>The first candidate that is an ELF64 file for <paramref name="machine"/>, or null.</summary>
    public static string? Find(string soname, ushort machine, string ldSoCache = "/etc/ld.so.cache")
    {
        foreach (var path in Candidates(soname, ldSoCache))
        {
            try
            {
                if (ElfImage.Read(path).Machine == machine) return path;
            }
            catch (Exception e) when (e is ElfFormatException or IOException or UnauthorizedAccessException)
            {
                // Not a usable candidate; the loader would skip it too.
            }
        }
        return null;
    }

    /// <summary>Paths that /etc/ld.so.cache maps <paramref name="soname"/> to; empty when the file is absent or not understood.</summary>
    public static IReadOnlyList<string> ReadLdSoCache(string cachePath, string soname)
    {
        var result = new List<string>();
        byte[] data;
        try
        {
            var info = new FileInfo(cachePath);
            if (!info.Exists || info.Length > MaxCacheBytes) return result;
            data = File.ReadAllBytes(cachePath);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            return result;
        }
        return ParseLdSoCache(data, soname);
    }

    /// <summary>Parses the new-format part of an ld.so.cache image (bounds-checked; unknown formats give an empty list).</summary>
    public static IReadOnlyList<string> ParseLdSoCache(byte[] data, string soname)
    {
        var result = new List<string>();
        var start = data.AsSpan().IndexOf(NewCacheMagic);
        if (start < 0 || data.Length - start < NewHeaderSize) return result;
        var header = data.AsSpan(start);
        var nlibs = BinaryPrimitives.ReadUInt32LittleEndian(header[20..]);
        if (nlibs > (uint)((header.Length - NewHeaderSize) / NewEntrySize)) return result;
        for (var i = 0; i < (int)nlibs; i++)
        {
            var entry = header.Slice(NewHeaderSize + i * NewEntrySize, NewEntrySize);
            var key = ReadCString(header, BinaryPrimitives.ReadUInt32LittleEndian(entry[4..]));
            if (key is null || !string.Equals(key, soname, StringComparison.Ordinal)) continue;
            var value = ReadCString(header, BinaryPrimitives.ReadUInt32LittleEndian(entry[8..]));
            if (value is not null && value.StartsWith('/')) result.Add(value);
        }
        return result;
    }

    private static string? ReadCString(ReadOnlySpan<byte> table, uint offset)
    {
        if (offset >= (uint)table.Length) return null;
        var rest = table[(int)offset..];
        var end = rest.IndexOf((byte)0);
        return end < 0 ? null : Encoding.UTF8.GetString(rest[..end]);
    }
}

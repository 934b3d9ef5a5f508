using System.Buffers.Binary;

namespace Bittensor.Build.ElfPatch;

/// <summary>One Vernaux entry of .gnu.version_r: a version this object needs from a library.</summary>
/// <param name="File">The library the version is needed from (Verneed vn_file), e.g. libstdc++.so.6.</param>
/// <param name="Version">The version name (vna_name), e.g. GLIBCXX_3.4.32.</param>
/// <param name="Flags">vna_flags; bit 0x2 (VER_FLG_WEAK) makes the loader accept its absence.</param>
/// <param name="Index">vna_other: the version index symbols use in .gnu.version.</param>
/// <param name="FlagsOffset">File offset of vna_flags, where the patch writes.</param>
internal sealed record VersionNeed(string File, string Version, ushort Flags, ushort Index, int FlagsOffset)
{
    public bool IsWeak => (Flags & ElfVersions.VerFlagWeak) != 0;
}

/// <summary>Reads symbol versioning (.gnu.version_r, .gnu.version_d, .gnu.version) with every link bounds-checked.</summary>
internal static class ElfVersions
{
    public const ushort VerFlagWeak = 0x2;
    private const int VerneedSize = 16;
    private const int VernauxSize = 16;
    private const int VerdefSize = 20;
    private const int VerdauxSize = 8;
    private const int SymSize = 24;

    /// <summary>Every Vernaux entry in the file, in chain order; empty when there is no .gnu.version_r.</summary>
    public static IReadOnlyList<VersionNeed> ReadNeeds(ElfImage elf)
    {
        var result = new List<VersionNeed>();
        if (elf.FindSection(ElfImage.ShtGnuVerneed) is not { } section) return result;
        var body = elf.Contents(section, ".gnu.version_r");
        var strtab = elf.SectionAt(section.Link, ".gnu.version_r");
        // A chain can never have more entries than fit in the section; this also stops cycles.
        var budget = body.Length / VernauxSize;
        ulong offset = 0;
        var entries = body.Length / VerneedSize;
        for (uint n = 0; n < section.Info; n++)
        {
            if (--entries < 0) throw new ElfFormatException(".gnu.version_r: more Verneed entries than fit in the section (a cycle?)");
            if (offset > (ulong)body.Length - VerneedSize || body.Length < VerneedSize)
                throw new ElfFormatException($".gnu.version_r: Verneed {n} at offset {offset} lies outside the section");
            var vn = body[(int)offset..];
            var cnt = BinaryPrimitives.ReadUInt16LittleEndian(vn[2..]);
            var file = elf.ReadString(strtab, BinaryPrimitives.ReadUInt32LittleEndian(vn[4..]), $".gnu.version_r Verneed {n}");
            var aux = BinaryPrimitives.ReadUInt32LittleEndian(vn[8..]);
            var next = BinaryPrimitives.ReadUInt32LittleEndian(vn[12..]);
            var auxOffset = offset + aux;
            for (var a = 0; a < cnt; a++)
            {
                if (--budget < 0) throw new ElfFormatException(".gnu.version_r: more entries than fit in the section (a cycle?)");
                if (auxOffset > (ulong)body.Length - VernauxSize || body.Length < VernauxSize)
                    throw new ElfFormatException($".gnu.version_r: Vernaux {a} of {file} at offset {auxOffset} lies outside the section");
                var vna = body[(int)auxOffset..];
                var flags = BinaryPrimitives.ReadUInt16LittleEndian(vna[4..]);
                var other = BinaryPrimitives.ReadUInt16LittleEndian(vna[6..]);
                var name = elf.ReadString(strtab, BinaryPrimitives.ReadUInt32LittleEndian(vna[8..]), $".gnu.version_r Vernaux of {file}");
                result.Add(new VersionNeed(file, name, flags, other, checked((int)(section.Offset + auxOffset + 4))));
                var vnaNext = BinaryPrimitives.ReadUInt32LittleEndian(vna[12..]);
                if (vnaNext == 0) break;
                auxOffset += vnaNext;
            }
            if (next == 0) break;
            offset += next;
        }
        return result;
    }

    /// <summary>Every version name this object defines (.gnu.version_d), excluding the base (file) entry.</summary>
    public static IReadOnlyList<string> ReadDefinitions(ElfImage elf)
    {
        var result = new List<string>();
        if (elf.FindSection(ElfImage.ShtGnuVerdef) is not { } section) return result;
        var body = elf.Contents(section, ".gnu.version_d");
        var strtab = elf.SectionAt(section.Link, ".gnu.version_d");
        var budget = body.Length / VerdauxSize;
        ulong offset = 0;
        var entries = body.Length / VerdefSize;
        for (uint n = 0; n < section.Info; n++)
        {
            if (--entries < 0) throw new ElfFormatException(".gnu.version_d: more Verdef entries than fit in the section (a cycle?)");
            if (offset > (ulong)body.Length - VerdefSize || body.Length < VerdefSize)
                throw new ElfFormatException($".gnu.version_d: Verdef {n} at offset {offset} lies outside the section");
            var vd = body[(int)offset..];
            var flags = BinaryPrimitives.ReadUInt16LittleEndian(vd[2..]);
            var cnt = BinaryPrimitives.ReadUInt16LittleEndian(vd[6..]);
            var aux = BinaryPrimitives.ReadUInt32LittleEndian(vd[12..]);
            var next = BinaryPrimitives.ReadUInt32LittleEndian(vd[16..]);
            // Only the first Verdaux names the version; the others name its parents.
            if (cnt > 0)
            {
                if (--budget < 0) throw new ElfFormatException(".gnu.version_d: more entries than fit in the section (a cycle?)");
                var auxOffset = offset + aux;
                if (auxOffset > (ulong)body.Length - VerdauxSize)
                    throw new ElfFormatException($".gnu.version_d: Verdaux of Verdef {n} at offset {auxOffset} lies outside the section");
                var name = elf.ReadString(strtab, BinaryPrimitives.ReadUInt32LittleEndian(body[(int)auxOffset..]), $".gnu.version_d Verdef {n}");
                const ushort verFlagBase = 0x1;
                if ((flags & verFlagBase) == 0) result.Add(name);
            }
            if (next == 0) break;
            offset += next;
        }
        return result;
    }

    /// <summary>Names of the dynamic symbols whose .gnu.version entry is <paramref name="index"/>.</summary>
    public static IReadOnlyList<string> SymbolsWithVersion(ElfImage elf, ushort index)
    {
        var result = new List<string>();
        if (elf.FindSection(ElfImage.ShtGnuVersym) is not { } versym || elf.FindSection(ElfImage.ShtDynsym) is not { } dynsym)
            return result;
        var versions = elf.Contents(versym, ".gnu.version");
        var symbols = elf.Contents(dynsym, ".dynsym");
        var strtab = elf.SectionAt(dynsym.Link, ".dynsym");
        var count = Math.Min(versions.Length / 2, symbols.Length / SymSize);
        for (var i = 0; i < count; i++)
        {
            var v = (ushort)(BinaryPrimitives.ReadUInt16LittleEndian(versions[(i * 2)..]) & 0x7fff);
            if (v != index) continue;
            result.Add(elf.ReadString(strtab, BinaryPrimitives.ReadUInt32LittleEndian(symbols[(i * SymSize)..]), $".dynsym entry {i}"));
        }
        return result;
    }
}

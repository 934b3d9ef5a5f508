using System.Buffers.Binary;
using System.Text;

namespace Bittensor.Build.ElfPatch;

/// <summary>The file is not an ELF64 little-endian object, or one of its structures lies outside the file.</summary>
internal sealed class ElfFormatException(string message) : Exception(message);

/// <summary>One section header of an ELF64 file (only the fields this tool reads).</summary>
internal readonly record struct ElfSection(uint Type, ulong Offset, ulong Size, uint Link, uint Info, ulong EntrySize);

/// <summary>
/// A bounds-checked, read-only view of an ELF64 little-endian file held in memory. Every offset read from the
/// file is checked against the file length before use, so a hostile or truncated file gives an
/// <see cref="ElfFormatException"/>, never an out-of-range access.
/// </summary>
internal sealed class ElfImage
{
    public const uint ShtStrtab = 3;
    public const uint ShtDynsym = 11;
    public const uint ShtGnuVerdef = 0x6ffffffd;
    public const uint ShtGnuVerneed = 0x6ffffffe;
    public const uint ShtGnuVersym = 0x6fffffff;

    /// <summary>Largest file this tool reads; shared libraries are far smaller.</summary>
    public const long MaxFileBytes = 1L << 30;

    private const int HeaderSize = 64;
    private const int SectionHeaderSize = 64;
    private const int MaxSections = 1 << 16;

    private ElfImage(byte[] data, ushort machine, IReadOnlyList<ElfSection> sections)
    {
        Data = data;
        Machine = machine;
        Sections = sections;
    }

    /// <summary>The whole file.</summary>
    public byte[] Data { get; }

    /// <summary>e_machine (62 = x86-64, 183 = AArch64).</summary>
    public ushort Machine { get; }

    /// <summary>Section headers in file order.</summary>
    public IReadOnlyList<ElfSection> Sections { get; }

    public static ElfImage Read(string path)
    {
        var info = new FileInfo(path);
        if (!info.Exists) throw new FileNotFoundException($"{path}: no such file", path);
        if (info.Length > MaxFileBytes) throw new ElfFormatException($"{path}: {info.Length} bytes is larger than the {MaxFileBytes} byte limit");
        return Parse(File.ReadAllBytes(path));
    }

    public static ElfImage Parse(byte[] data)
    {
        ArgumentNullException.ThrowIfNull(data);
        if (data.Length < 4 || data[0] != 0x7f || data[1] != (byte)'E' || data[2] != (byte)'L' || data[3] != (byte)'F')
            throw new ElfFormatException("not an ELF file (bad magic)");
        if (data.Length < HeaderSize) throw new ElfFormatException($"truncated ELF header ({data.Length} of {HeaderSize} bytes)");
        if (data[4] != 2) throw new ElfFormatException($"not a 64-bit ELF file (EI_CLASS={data[4]})");
        if (data[5] != 1) throw new ElfFormatException($"not a little-endian ELF file (EI_DATA={data[5]})");

        var span = data.AsSpan();
        var machine = BinaryPrimitives.ReadUInt16LittleEndian(span[0x12..]);
        var shoff = BinaryPrimitives.ReadUInt64LittleEndian(span[0x28..]);
        var shentsize = BinaryPrimitives.ReadUInt16LittleEndian(span[0x3A..]);
        var shnum = BinaryPrimitives.ReadUInt16LittleEndian(span[0x3C..]);
        if (shoff == 0 || shnum == 0) throw new ElfFormatException("the file has no section headers");
        if (shentsize < SectionHeaderSize) throw new ElfFormatException($"section header size {shentsize} is smaller than {SectionHeaderSize}");
        CheckRange(data, shoff, (ulong)shentsize * shnum, "section header table");

        var sections = new List<ElfSection>(Math.Min((int)shnum, MaxSections));
        for (var i = 0; i < shnum; i++)
        {
            var sh = span.Slice((int)(shoff + (ulong)i * shentsize), SectionHeaderSize);
            sections.Add(new ElfSection(
                Type: BinaryPrimitives.ReadUInt32LittleEndian(sh[4..]),
                Offset: BinaryPrimitives.ReadUInt64LittleEndian(sh[24..]),
                Size: BinaryPrimitives.ReadUInt64LittleEndian(sh[32..]),
                Link: BinaryPrimitives.ReadUInt32LittleEndian(sh[40..]),
                Info: BinaryPrimitives.ReadUInt32LittleEndian(sh[44..]),
                EntrySize: BinaryPrimitives.ReadUInt64LittleEndian(sh[56..])));
        }
        return new ElfImage(data, machine, sections);
    }

    /// <summary>The first section of <paramref name="type"/>, or null.</summary>
    public ElfSection? FindSection(uint type)
    {
        foreach (var s in Sections)
            if (s.Type == type) return s;
        return null;
    }

    /// <summary>The section at <paramref name="index"/>, checked against the table length.</summary>
    public ElfSection SectionAt(uint index, string what) =>
        index < Sections.Count ? Sections[(int)index] : throw new ElfFormatException($"{what} links to section {index}, but there are only {Sections.Count}");

    /// <summary>The bytes of <paramref name="section"/>, checked against the file length.</summary>
    public ReadOnlySpan<byte> Contents(ElfSection section, string what)
    {
        CheckRange(Data, section.Offset, section.Size, what);
        return Data.AsSpan((int)section.Offset, (int)section.Size);
    }

    /// <summary>A NUL-terminated string at <paramref name="offset"/> inside string table <paramref name="strtab"/>.</summary>
    public string ReadString(ElfSection strtab, ulong offset, string what)
    {
        var table = Contents(strtab, "string table");
        if (offset >= (ulong)table.Length) throw new ElfFormatException($"{what}: string offset {offset} is outside the string table ({table.Length} bytes)");
        var rest = table[(int)offset..];
        var end = rest.IndexOf((byte)0);
        if (end < 0) throw new ElfFormatException($"{what}: string at offset {offset} is not NUL-terminated");
        return Encoding.UTF8.GetString(rest[..end]);
    }

    internal static void CheckRange(byte[] data, ulong offset, ulong size, string what)
    {
        if (offset > (ulong)data.Length || size > (ulong)data.Length - offset)
            throw new ElfFormatException($"{what} (offset {offset}, size {size}) lies outside the file ({data.Length} bytes); the file is truncated or corrupt");
    }
}

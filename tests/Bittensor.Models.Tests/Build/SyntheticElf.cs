using System.Buffers.Binary;
using System.Text;

namespace Bittensor.Models.Tests.Build;

/// <summary>
/// Writes the smallest ELF64 little-endian shared object the patch tool understands: .dynstr, .gnu.version_r
/// (one Verneed for libstdc++.so.6 with two Vernaux), .dynsym and .gnu.version (one symbol per version), and
/// optionally a .gnu.version_d defining versions.
/// </summary>
internal static class SyntheticElf
{
    public const int MarkerIndex = 3;

    public static byte[] Build(string[] neededVersions, string[]? definedVersions = null, string markerSymbol = "_ZSt21ios_base_library_initv")
    {
        var strings = new MemoryStream();
        strings.WriteByte(0);
        int Str(string s)
        {
            var at = (int)strings.Position;
            strings.Write(Encoding.ASCII.GetBytes(s));
            strings.WriteByte(0);
            return at;
        }
        var fileName = Str("libstdc++.so.6");
        var versionNames = neededVersions.Select(Str).ToArray();
        var symbolNames = neededVersions.Select((_, i) => Str(i == neededVersions.Length - 1 ? markerSymbol : $"sym{i}")).ToArray();
        var defNames = (definedVersions ?? []).Select(Str).ToArray();
        var baseName = Str("libsynthetic.so");
        var dynstr = strings.ToArray();

        // .gnu.version_r: one Verneed then its Vernaux chain; version indexes start at 2.
        var verneed = new byte[16 + 16 * neededVersions.Length];
        var s = verneed.AsSpan();
        BinaryPrimitives.WriteUInt16LittleEndian(s, 1);
        BinaryPrimitives.WriteUInt16LittleEndian(s[2..], (ushort)neededVersions.Length);
        BinaryPrimitives.WriteUInt32LittleEndian(s[4..], (uint)fileName);
        BinaryPrimitives.WriteUInt32LittleEndian(s[8..], 16);
        for (var i = 0; i < neededVersions.Length; i++)
        {
            var a = s[(16 + 16 * i)..];
            BinaryPrimitives.WriteUInt16LittleEndian(a[6..], (ushort)(2 + i));
            BinaryPrimitives.WriteUInt32LittleEndian(a[8..], (uint)versionNames[i]);
            BinaryPrimitives.WriteUInt32LittleEndian(a[12..], i == neededVersions.Length - 1 ? 0u : 16u);
        }

        // .dynsym: the null symbol, then one symbol per needed version; .gnu.version maps them.
        var dynsym = new byte[24 * (1 + neededVersions.Length)];
        var versym = new byte[2 * (1 + neededVersions.Length)];
        for (var i = 0; i < neededVersions.Length; i++)
        {
            BinaryPrimitives.WriteUInt32LittleEndian(dynsym.AsSpan(24 * (i + 1)), (uint)symbolNames[i]);
            BinaryPrimitives.WriteUInt16LittleEndian(versym.AsSpan(2 * (i + 1)), (ushort)(2 + i));
        }

        // .gnu.version_d: the base entry (VER_FLG_BASE) then one per defined version.
        var defs = definedVersions ?? [];
        var verdef = new byte[definedVersions is null ? 0 : 28 * (1 + defs.Length)];
        for (var i = 0; i <= defs.Length && definedVersions is not null; i++)
        {
            var d = verdef.AsSpan(28 * i);
            BinaryPrimitives.WriteUInt16LittleEndian(d, 1);
            BinaryPrimitives.WriteUInt16LittleEndian(d[2..], (ushort)(i == 0 ? 1 : 0));
            BinaryPrimitives.WriteUInt16LittleEndian(d[4..], (ushort)(i + 1));
            BinaryPrimitives.WriteUInt16LittleEndian(d[6..], 1);
            BinaryPrimitives.WriteUInt32LittleEndian(d[12..], 20);
            BinaryPrimitives.WriteUInt32LittleEndian(d[16..], i == defs.Length ? 0u : 28u);
            BinaryPrimitives.WriteUInt32LittleEndian(d[20..], (uint)(i == 0 ? baseName : defNames[i - 1]));
        }

        var bodies = new List<(uint Type, byte[] Body, uint Link, uint Info)>
        {
            (3, dynstr, 0, 0),
            (0x6ffffffe, verneed, 1, 1),
            (11, dynsym, 1, 1),
            (0x6fffffff, versym, 3, 0),
        };
        if (definedVersions is not null) bodies.Add((0x6ffffffd, verdef, 1, (uint)(1 + defs.Length)));

        var image = new MemoryStream();
        image.Write(new byte[64]);
        var offsets = new List<long>();
        foreach (var b in bodies)
        {
            while (image.Position % 8 != 0) image.WriteByte(0);
            offsets.Add(image.Position);
            image.Write(b.Body);
        }
        while (image.Position % 8 != 0) image.WriteByte(0);
        var shoff = image.Position;
        image.Write(new byte[64]); // SHT_NULL
        for (var i = 0; i < bodies.Count; i++)
        {
            var sh = new byte[64];
            BinaryPrimitives.WriteUInt32LittleEndian(sh.AsSpan(4), bodies[i].Type);
            BinaryPrimitives.WriteUInt64LittleEndian(sh.AsSpan(24), (ulong)offsets[i]);
            BinaryPrimitives.WriteUInt64LittleEndian(sh.AsSpan(32), (ulong)bodies[i].Body.Length);
            BinaryPrimitives.WriteUInt32LittleEndian(sh.AsSpan(40), bodies[i].Link);
            BinaryPrimitives.WriteUInt32LittleEndian(sh.AsSpan(44), bodies[i].Info);
            image.Write(sh);
        }
        var bytes = image.ToArray();
        var h = bytes.AsSpan();
        h[0] = 0x7f; h[1] = (byte)'E'; h[2] = (byte)'L'; h[3] = (byte)'F'; h[4] = 2; h[5] = 1; h[6] = 1;
        BinaryPrimitives.WriteUInt16LittleEndian(h[0x10..], 3); // ET_DYN
        BinaryPrimitives.WriteUInt16LittleEndian(h[0x12..], 62); // x86-64
        BinaryPrimitives.WriteUInt64LittleEndian(h[0x28..], (ulong)shoff);
        BinaryPrimitives.WriteUInt16LittleEndian(h[0x34..], 64);
        BinaryPrimitives.WriteUInt16LittleEndian(h[0x3A..], 64);
        BinaryPrimitives.WriteUInt16LittleEndian(h[0x3C..], (ushort)(bodies.Count + 1));
        return bytes;
    }
}

using System.Buffers.Binary;
using System.Globalization;
using System.Net;
using System.Net.Sockets;
using Bittensor.Core.Scale;

namespace Bittensor.Core.Domain;

/// <summary>
/// Where a neuron serves, as subtensor's <c>Axons</c> storage holds it: the block it was last served at, the
/// client version (major·10^6 + minor·10^3 + patch), the IP as an integer (IPv4 a·2^24+…, IPv6 128-bit), port,
/// ip_type (4 or 6), protocol and two placeholders. SCALE layout is fixed-width:
/// u64, u32, u128, u16, u8, u8, u8, u8 (36 bytes).
/// </summary>
public sealed record AxonInfo(
    ulong Block,
    uint Version,
    UInt128 Ip,
    ushort Port,
    byte IpType,
    byte Protocol,
    byte Placeholder1 = 0,
    byte Placeholder2 = 0)
{
    /// <summary>Encoded size in bytes.</summary>
    public const int EncodedSize = 8 + 4 + 16 + 2 + 4;

    /// <summary>The never-served axon (all zero), what the chain returns for a neuron that has not served.</summary>
    public static readonly AxonInfo Empty = new(0, 0, 0, 0, 0, 0);

    /// <summary>True once the neuron has served an address.</summary>
    public bool IsServing => Ip != 0;

    /// <summary>The address as text: <c>1.2.3.4</c> or an IPv6 literal; <c>0.0.0.0</c> when not serving.</summary>
    public string IpText => FormatIp(Ip, IpType);

    /// <summary><c>ip:port</c> (<c>[v6]:port</c> for IPv6).</summary>
    public string Endpoint => IpType == 6 && IsServing
        ? string.Create(CultureInfo.InvariantCulture, $"[{IpText}]:{Port}")
        : string.Create(CultureInfo.InvariantCulture, $"{IpText}:{Port}");

    /// <inheritdoc />
    public override string ToString() => Endpoint;

    /// <summary>Converts an IP integer to text for ip_type 4 or 6.</summary>
    public static string FormatIp(UInt128 ip, byte ipType)
    {
        if (ipType == 6)
        {
            Span<byte> b = stackalloc byte[16];
            BinaryPrimitives.WriteUInt64BigEndian(b, (ulong)(ip >> 64));
            BinaryPrimitives.WriteUInt64BigEndian(b[8..], (ulong)ip);
            return new IPAddress(b).ToString();
        }
        if (ip > uint.MaxValue) return "invalid";
        var v = (uint)ip;
        return string.Create(CultureInfo.InvariantCulture, $"{v >> 24}.{(v >> 16) & 0xff}.{(v >> 8) & 0xff}.{v & 0xff}");
    }

    /// <summary>
    /// Parses an IPv4 or IPv6 literal into the chain's integer form and ip_type; throws <see cref="FormatException"/>.
    /// </summary>
    public static (UInt128 Ip, byte IpType) ParseIp(string text)
    {
        ArgumentNullException.ThrowIfNull(text);
        if (!IPAddress.TryParse(text.Trim().Trim('[', ']'), out var addr))
            throw new FormatException($"'{text}' is not an IPv4 or IPv6 address");
        var bytes = addr.GetAddressBytes();
        if (addr.AddressFamily == AddressFamily.InterNetwork)
            return (BinaryPrimitives.ReadUInt32BigEndian(bytes), 4);
        return (new UInt128(BinaryPrimitives.ReadUInt64BigEndian(bytes), BinaryPrimitives.ReadUInt64BigEndian(bytes.AsSpan(8))), 6);
    }

    /// <summary>Writes the fixed-width SCALE form.</summary>
    public void Encode(ScaleWriter writer)
    {
        ArgumentNullException.ThrowIfNull(writer);
        writer.U64(Block).U32(Version).U128(Ip).U16(Port).U8(IpType).U8(Protocol).U8(Placeholder1).U8(Placeholder2);
    }

    /// <summary>Reads the fixed-width SCALE form.</summary>
    public static AxonInfo Decode(ref ScaleReader reader) =>
        new(reader.U64(), reader.U32(), reader.U128(), reader.U16(), reader.U8(), reader.U8(), reader.U8(), reader.U8());
}

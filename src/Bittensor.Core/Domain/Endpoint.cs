using System.Globalization;

namespace Bittensor.Core.Domain;

/// <summary>
/// Where a neuron serves: its chain <c>AxonInfo</c> joined with its uid and keys (Python's <c>bittensor.Endpoint</c>).
/// A neuron that never called <c>serve_axon</c> has <see cref="Ip"/> 0 and <see cref="Port"/> 0.
/// </summary>
/// <param name="Uid">The neuron's uid on its subnet.</param>
/// <param name="Hotkey">The neuron's hotkey.</param>
/// <param name="Coldkey">The coldkey owning the hotkey.</param>
/// <param name="Version">Client version as major·10^6 + minor·10^3 + patch.</param>
/// <param name="Ip">IPv4 (in the low 32 bits) or IPv6 address as the chain's u128.</param>
/// <param name="IpType">4 or 6 (0 when not serving).</param>
/// <param name="Port">TCP port (0 when not serving).</param>
/// <param name="Protocol">Protocol tag the SDK writes (4).</param>
/// <param name="Block">Block of the last <c>serve_axon</c>.</param>
public sealed record Endpoint(ushort Uid, AccountId Hotkey, AccountId Coldkey, uint Version, UInt128 Ip, byte IpType,
    ushort Port, byte Protocol, ulong Block)
{
    /// <summary>True when the neuron has announced an address.</summary>
    public bool IsServing => Ip != UInt128.Zero && Port != 0;

    /// <summary>The address as text (<c>1.2.3.4</c>, <c>2001:db8::1</c>), or <c>0.0.0.0</c> when not serving.</summary>
    public string IpAddress => FormatIp(Ip, IpType);

    /// <summary><c>ip:port</c> (IPv6 in brackets), or <c>none</c> when not serving.</summary>
    public override string ToString() => !IsServing ? "none"
        : IpType == 6 ? string.Create(CultureInfo.InvariantCulture, $"[{IpAddress}]:{Port}")
        : string.Create(CultureInfo.InvariantCulture, $"{IpAddress}:{Port}");

    /// <summary>Formats the chain's u128 address of the given type.</summary>
    public static string FormatIp(UInt128 ip, byte ipType) => AxonInfo.FormatIp(ip, ipType);
}

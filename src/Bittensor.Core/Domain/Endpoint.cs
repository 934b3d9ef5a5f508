namespace Bittensor.Core.Domain;

/// <summary>
/// One neuron of a metagraph with where it serves: its uid and keys joined with its chain <see cref="AxonInfo"/>
/// (Python's <c>bittensor.Endpoint</c>). The address lives in <see cref="Axon"/> only; the properties below read it.
/// A neuron that never called <c>serve_axon</c> has <see cref="AxonInfo.Empty"/>. What a dendrite dials is
/// <see cref="ToEndpointInfo"/>.
/// </summary>
/// <param name="Uid">The neuron's uid on its subnet.</param>
/// <param name="Hotkey">The neuron's hotkey.</param>
/// <param name="Coldkey">The coldkey owning the hotkey.</param>
/// <param name="Axon">The chain's record of where it serves.</param>
public sealed record Endpoint(ushort Uid, AccountId Hotkey, AccountId Coldkey, AxonInfo Axon)
{
    /// <summary>True when the neuron has announced an address (an IP and a port).</summary>
    public bool IsServing => Axon.IsServing && Axon.Port != 0;

    /// <summary>The address as text (<c>1.2.3.4</c>, <c>2001:db8::1</c>), or <c>0.0.0.0</c> when not serving.</summary>
    public string IpAddress => Axon.IpText;

    /// <summary>TCP port (0 when not serving).</summary>
    public ushort Port => Axon.Port;

    /// <summary>Client version as major·10^6 + minor·10^3 + patch.</summary>
    public uint Version => Axon.Version;

    /// <summary>Block of the last <c>serve_axon</c>.</summary>
    public ulong Block => Axon.Block;

    /// <summary>The address a dendrite dials: hotkey SS58, IP, port and this uid.</summary>
    public EndpointInfo ToEndpointInfo() => new(Hotkey.ToSs58(), IpAddress, Port, Uid);

    /// <summary><c>ip:port</c> (IPv6 in brackets), or <c>none</c> when not serving.</summary>
    public override string ToString() => !IsServing ? "none" : Axon.Endpoint;
}

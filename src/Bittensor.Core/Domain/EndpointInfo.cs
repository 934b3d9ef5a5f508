namespace Bittensor.Core.Domain;

/// <summary>
/// A remote axon as a dendrite dials it: its hotkey (the key of its endpoint actor), address and, when it came from a
/// metagraph, its uid. The one peer-address record of the runtime; the chain's form is <see cref="AxonInfo"/> and a
/// metagraph row's is <see cref="Endpoint"/> (which makes one of these with <see cref="Endpoint.ToEndpointInfo"/>).
/// </summary>
/// <param name="Hotkey">The axon's hotkey SS58 (or any stable name for an address given by hand).</param>
/// <param name="Ip">IPv4 or IPv6 address or host name.</param>
/// <param name="Port">TCP port.</param>
/// <param name="Uid">The neuron's uid on its subnet, when known.</param>
public sealed record EndpointInfo(string Hotkey, string Ip, int Port, ushort? Uid = null)
{
    /// <summary>The gRPC address, <c>http://ip:port</c> (IPv6 in brackets).</summary>
    public string Address => Ip.Contains(':', StringComparison.Ordinal) && !Ip.StartsWith('[') ? $"http://[{Ip}]:{Port}" : $"http://{Ip}:{Port}";
}

using System.Net;
using System.Net.Sockets;
using System.Text;

namespace Bittensor.Protocol.Lean;

/// <summary>
/// A TCP socket's congestion control (Linux <c>TCP_CONGESTION</c>), for the server transports' connections from loopback
/// peers (<see cref="ServerTransportOptions.LoopbackCongestionControl"/>: the lean server and Kestrel's). Why: with BBR, the kernel paces each
/// connection itself unless an fq qdisc does it, and the loopback device has none, so a burst of answers (a read of 16
/// calls answers with 1 MiB) is spread out by an hrtimer per few segments; session 14 counted 0.16 timer interrupts per
/// call at 128 callers against 0.01 at 16 and 2–3 µs more system time per call, all of the 128-caller deficit. A
/// loopback connection has no bottleneck link or queue for pacing to spare, so there it costs only the timers.
/// </summary>
public static class TcpCongestion
{
    private const int IpProtoTcp = 6; // IPPROTO_TCP
    private const int TcpCongestionOption = 13; // TCP_CONGESTION, <netinet/tcp.h> (Linux)

    /// <summary>The longest name the kernel takes (TCP_CA_NAME_MAX 16, with its terminating zero).</summary>
    public const int MaxName = 15;

    /// <summary>True for a name the option could take: 1–15 of a–z, 0–9, '_' (the kernel's names: reno, cubic, bbr, …).</summary>
    public static bool ValidName(string name) =>
        name.Length is > 0 and <= MaxName && name.All(c => c is (>= 'a' and <= 'z') or (>= '0' and <= '9') or '_');

    /// <summary>True when <paramref name="peer"/> is 127.0.0.0/8 or ::1 (also mapped into IPv6).</summary>
    public static bool IsLoopback(IPAddress? peer) =>
        peer is not null && IPAddress.IsLoopback(peer.IsIPv4MappedToIPv6 ? peer.MapToIPv4() : peer);

    /// <summary>
    /// Sets <paramref name="name"/> on <paramref name="socket"/>; false where it cannot be set (not Linux, a name this
    /// kernel does not have, or one it does not allow this process: net.ipv4.tcp_allowed_congestion_control).
    /// </summary>
    public static bool TrySet(Socket socket, string name)
    {
        if (!OperatingSystem.IsLinux() || !ValidName(name)) return false;
        try
        {
            socket.SetRawSocketOption(IpProtoTcp, TcpCongestionOption, Encoding.ASCII.GetBytes(name));
            return true;
        }
        catch (Exception e) when (e is SocketException or ObjectDisposedException)
        {
            return false;
        }
    }

    /// <summary>
    /// Sets <paramref name="name"/> (when not empty) on a socket accepted from <paramref name="peer"/> if that peer is
    /// loopback: null when nothing was tried (no name, not loopback), else whether the kernel took it.
    /// </summary>
    public static bool? ApplyToLoopback(Socket socket, IPAddress? peer, string? name) =>
        name is { Length: > 0 } && IsLoopback(peer) ? TrySet(socket, name) : null;

    /// <summary>What the operator is told, once per server, when the kernel refuses <paramref name="name"/>.</summary>
    public static string RefusedWarning(string name)
    {
        string system;
        try
        {
            system = File.ReadAllText("/proc/sys/net/ipv4/tcp_congestion_control").Trim();
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            system = "unknown";
        }
        return $"the kernel refused TCP congestion control '{name}' for loopback connections (not available, or not in " +
               $"net.ipv4.tcp_allowed_congestion_control): they keep the system's ({system}); bittensor.axon.loopback_congestion_control = \"\" stops trying";
    }

    /// <summary>The socket's congestion control, or null where it cannot be read (tests).</summary>
    public static string? Get(Socket? socket)
    {
        if (socket is null || !OperatingSystem.IsLinux()) return null;
        Span<byte> name = stackalloc byte[MaxName + 1];
        try
        {
            var n = socket.GetRawSocketOption(IpProtoTcp, TcpCongestionOption, name);
            var end = name[..n].IndexOf((byte)0);
            return Encoding.ASCII.GetString(end >= 0 ? name[..end] : name[..n]);
        }
        catch (Exception e) when (e is SocketException or ObjectDisposedException)
        {
            return null;
        }
    }
}

using System.Net;
using System.Net.Sockets;
using Bittensor.Protocol.Lean;

namespace Bittensor.Protocol.Tests.Lean;

/// <summary>
/// The tests' wait for bytes in a socket (<see cref="SocketBytes.WaitFor"/>) over a real loopback connection: it wakes on
/// each arrival of data, never reads, and gives up when the peer closes with too few bytes sent.
/// </summary>
public sealed class SocketBytesTests
{
    private static readonly TimeSpan Wait = TimeSpan.FromSeconds(30);

    private static async Task<(Socket Client, Socket Server)> Pair()
    {
        using var listener = new Socket(SocketType.Stream, ProtocolType.Tcp);
        listener.Bind(new IPEndPoint(IPAddress.Loopback, 0));
        listener.Listen(1);
        var client = new Socket(SocketType.Stream, ProtocolType.Tcp) { NoDelay = true };
        await client.ConnectAsync(listener.LocalEndPoint!);
        return (client, await listener.AcceptAsync());
    }

    [Fact]
    public async Task Bytes_sent_in_parts_are_waited_for_until_all_are_there_and_stay_unread()
    {
        var (client, server) = await Pair();
        using var _ = client;
        using var __ = server;
        await client.SendAsync(new byte[100], SocketFlags.None);
        var waiting = Task.Run(() => (SocketBytes.WaitFor(server, 300, Wait, out var wakeUps), wakeUps));
        await client.SendAsync(new byte[100], SocketFlags.None);
        await client.SendAsync(new byte[100], SocketFlags.None);

        var (whole, wakeUps) = await waiting.WaitAsync(Wait);
        Assert.True(whole);
        Assert.InRange(wakeUps, 0, 3); // the bytes there when it began, then at most one per send
        Assert.Equal(300, server.Available);
        Assert.True(SocketBytes.WaitFor(server, 300, Wait, out var again)); // there already: no wait at all
        Assert.Equal(0, again);
    }

    [Fact]
    public async Task A_peer_that_closes_before_sending_enough_ends_the_wait_with_false()
    {
        var (client, server) = await Pair();
        using var serverSocket = server;
        await client.SendAsync(new byte[10], SocketFlags.None);
        // A wait far longer than the test's own: only the peer's close can end it in time.
        var waiting = Task.Run(() => SocketBytes.WaitFor(server, 20, TimeSpan.FromHours(1), out _));
        client.Shutdown(SocketShutdown.Send);
        client.Dispose();

        Assert.False(await waiting.WaitAsync(Wait));
        Assert.Equal(10, server.Available);
    }
}

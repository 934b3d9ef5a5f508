using System.Net.Sockets;

namespace Bittensor.Protocol.Lean;

/// <summary>
/// The client connection without a socket (the <c>h2client</c> fuzz target and tests): <see cref="ForFeed"/> makes a
/// connection whose sends are dropped, calls open on it as on a real one (<see cref="CallAsync{T}"/>: streams 1, 3, 5, …),
/// and <see cref="Feed"/> runs the real read loop over given bytes as the server's side of the connection, delivered in
/// reads of the sizes given (a DATA frame or a length prefix split anywhere), then the end of the stream. The read loop
/// is the socket path's own code: only where bytes come from (<see cref="ReceiveAsync"/>) differs.
/// </summary>
internal sealed partial class H2ClientConnection
{
    /// <summary>What the read loop's last-resort handler caught (a bug of this side: the fuzz target reports it).</summary>
    internal Exception? Bug { get; private set; }

    /// <summary>A connection without a socket: what it sends is dropped; <see cref="Feed"/> gives it the peer's bytes.</summary>
    internal static H2ClientConnection ForFeed(BittensorChannelOptions options) => new(null, 1, "127.0.0.1:1", options);

    /// <summary>
    /// Runs the read loop over <paramref name="peer"/> (the server's bytes after the client preface), handing them over
    /// in reads of <paramref name="readSize"/>(i) bytes for the i-th read (at least 1), then the end of the stream. The
    /// returned task is complete when the loop ran to the end synchronously (nothing but the input is awaited); every
    /// call open on the connection has then been answered or failed.
    /// </summary>
    internal Task Feed(byte[] peer, Func<int, int> readSize)
    {
        if (_socket is not null || _feed is not null) throw new InvalidOperationException("Feed runs once, on a connection made by ForFeed");
        _feed = new FeedInput(peer, readSize);
        return ReadLoopAsync();
    }

    /// <summary>Bytes of the input the read loop has taken so far (tests: act at a given point of the peer's bytes).</summary>
    internal int FedBytes => _feed?.At ?? 0;

    private ValueTask<int> ReceiveAsync(Memory<byte> into) =>
        _feed is not null ? ValueTask.FromResult(_feed.Read(into.Span))
        : _io is not null ? _io.ReceiveAsync(into)
        : _socket!.ReceiveAsync(into, SocketFlags.None);

    private sealed class FeedInput(byte[] bytes, Func<int, int> readSize)
    {
        private int _at;
        private int _reads;

        public int At => _at;

        public int Read(Span<byte> into) => ReadVectored(into, [], []);

        public int ReadVectored(Span<byte> first, Span<byte> second) => ReadVectored(first, second, []);

        /// <summary>One read of the next size, into <paramref name="first"/>, <paramref name="second"/> and then <paramref name="third"/> (recvmsg's iovecs).</summary>
        public int ReadVectored(Span<byte> first, Span<byte> second, Span<byte> third)
        {
            var n = (int)Math.Min(Math.Min((long)first.Length + second.Length + third.Length, bytes.Length - _at), Math.Max(1, readSize(_reads++)));
            var a = Math.Min(n, first.Length);
            var b = Math.Min(n - a, second.Length);
            bytes.AsSpan(_at, a).CopyTo(first);
            bytes.AsSpan(_at + a, b).CopyTo(second);
            bytes.AsSpan(_at + a + b, n - a - b).CopyTo(third);
            _at += n;
            return n;
        }

        /// <summary>One read of the next size into <paramref name="pieces"/> in order, each in the buffer or the landing (recvmsg's iovecs).</summary>
        public int ReadPieces(Span<byte> buffer, Span<byte> landing, ReadOnlySpan<Piece> pieces)
        {
            long room = 0;
            foreach (var p in pieces) room += p.Length;
            var n = (int)Math.Min(Math.Min(room, bytes.Length - _at), Math.Max(1, readSize(_reads++)));
            var left = n;
            foreach (var p in pieces)
            {
                var k = Math.Min(left, p.Length);
                bytes.AsSpan(_at + (n - left), k).CopyTo((p.InLanding ? landing : buffer).Slice(p.At, k));
                left -= k;
                if (left == 0) break;
            }
            _at += n;
            return n;
        }
    }
}

using System.Net;
using System.Net.Sockets;
using System.Text;

namespace Bittensor.Protocol.Tests;

/// <summary>A loopback TCP proxy that records what the client sends, to see the HTTP/2 frames as they are on the wire.</summary>
internal sealed class RecordingProxy : IAsyncDisposable
{
    private readonly TcpListener _listener = new(IPAddress.Loopback, 0);
    private readonly int _targetPort;
    private readonly MemoryStream _clientBytes = new();
    private readonly CancellationTokenSource _stop = new();
    private readonly List<Task> _tasks = [];

    public RecordingProxy(int targetPort)
    {
        _targetPort = targetPort;
        _listener.Start();
        _tasks.Add(AcceptLoop());
    }

    public int Port => ((IPEndPoint)_listener.LocalEndpoint).Port;

    public byte[] ClientBytes()
    {
        lock (_clientBytes) return _clientBytes.ToArray();
    }

    private async Task AcceptLoop()
    {
        try
        {
            while (!_stop.IsCancellationRequested)
            {
                var client = await _listener.AcceptTcpClientAsync(_stop.Token);
                var server = new TcpClient();
                await server.ConnectAsync(IPAddress.Loopback, _targetPort, _stop.Token);
                lock (_tasks)
                {
                    _tasks.Add(Pump(client.GetStream(), server.GetStream(), record: true));
                    _tasks.Add(Pump(server.GetStream(), client.GetStream(), record: false));
                }
            }
        }
        catch (OperationCanceledException)
        {
        }
    }

    private async Task Pump(NetworkStream from, NetworkStream to, bool record)
    {
        var buffer = new byte[16384];
        try
        {
            int n;
            while ((n = await from.ReadAsync(buffer, _stop.Token)) > 0)
            {
                if (record)
                    lock (_clientBytes) _clientBytes.Write(buffer, 0, n);
                await to.WriteAsync(buffer.AsMemory(0, n), _stop.Token);
            }
        }
        catch (Exception e) when (e is OperationCanceledException or IOException or ObjectDisposedException)
        {
        }
        finally
        {
            to.Close();
        }
    }

    public async ValueTask DisposeAsync()
    {
        await _stop.CancelAsync();
        _listener.Stop();
        Task[] tasks;
        lock (_tasks) tasks = [.. _tasks];
        try { await Task.WhenAll(tasks).WaitAsync(TimeSpan.FromSeconds(10)); } catch (SocketException) { }
        _stop.Dispose();
    }
}

/// <summary>
/// Reads the client side of an HTTP/2 connection: preface, frames, and HPACK header blocks (static and
/// dynamic table, literal strings). Huffman-coded strings are reported, not decoded (HttpClient sends none).
/// </summary>
internal static class Http2Headers
{
    private static readonly (string Name, string Value)[] Static =
    [
        (":authority", ""), (":method", "GET"), (":method", "POST"), (":path", "/"), (":path", "/index.html"),
        (":scheme", "http"), (":scheme", "https"), (":status", "200"), (":status", "204"), (":status", "206"),
        (":status", "304"), (":status", "400"), (":status", "404"), (":status", "500"), ("accept-charset", ""),
        ("accept-encoding", "gzip, deflate"), ("accept-language", ""), ("accept-ranges", ""), ("accept", ""),
        ("access-control-allow-origin", ""), ("age", ""), ("allow", ""), ("authorization", ""), ("cache-control", ""),
        ("content-disposition", ""), ("content-encoding", ""), ("content-language", ""), ("content-length", ""),
        ("content-location", ""), ("content-range", ""), ("content-type", ""), ("cookie", ""), ("date", ""),
        ("etag", ""), ("expect", ""), ("expires", ""), ("from", ""), ("host", ""), ("if-match", ""),
        ("if-modified-since", ""), ("if-none-match", ""), ("if-range", ""), ("if-unmodified-since", ""),
        ("last-modified", ""), ("link", ""), ("location", ""), ("max-forwards", ""), ("proxy-authenticate", ""),
        ("proxy-authorization", ""), ("range", ""), ("referer", ""), ("refresh", ""), ("retry-after", ""),
        ("server", ""), ("set-cookie", ""), ("strict-transport-security", ""), ("transfer-encoding", ""),
        ("user-agent", ""), ("vary", ""), ("via", ""), ("www-authenticate", ""),
    ];

    /// <summary>The parameters of the client's first SETTINGS frame (not an ACK), in wire order.</summary>
    public static List<(int Id, uint Value)> ClientSettings(byte[] wire)
    {
        var preface = "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"u8;
        if (!wire.AsSpan().StartsWith(preface)) throw new InvalidDataException("no HTTP/2 client preface");
        var pos = preface.Length;
        while (pos + 9 <= wire.Length)
        {
            var length = (wire[pos] << 16) | (wire[pos + 1] << 8) | wire[pos + 2];
            var type = wire[pos + 3];
            var flags = wire[pos + 4];
            if (pos + 9 + length > wire.Length) break;
            if (type == 4 && (flags & 0x1) == 0)
            {
                var result = new List<(int, uint)>();
                for (var i = pos + 9; i + 6 <= pos + 9 + length; i += 6)
                    result.Add(((wire[i] << 8) | wire[i + 1], System.Buffers.Binary.BinaryPrimitives.ReadUInt32BigEndian(wire.AsSpan(i + 2, 4))));
                return result;
            }
            pos += 9 + length;
        }
        throw new InvalidDataException("no client SETTINGS frame");
    }

    /// <summary>The header lists of every request (HEADERS frame on a client stream), in wire order.</summary>
    public static List<List<(string Name, string Value)>> Requests(byte[] wire)
    {
        var preface = "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"u8;
        if (!wire.AsSpan().StartsWith(preface)) throw new InvalidDataException("no HTTP/2 client preface");
        var pos = preface.Length;
        var dynamicTable = new List<(string, string)>();
        var result = new List<List<(string, string)>>();
        var block = new List<byte>();
        while (pos + 9 <= wire.Length)
        {
            var length = (wire[pos] << 16) | (wire[pos + 1] << 8) | wire[pos + 2];
            var type = wire[pos + 3];
            var flags = wire[pos + 4];
            if (pos + 9 + length > wire.Length) break;
            var payload = wire.AsSpan(pos + 9, length);
            pos += 9 + length;
            if (type == 1)
            {
                var start = 0;
                var pad = 0;
                if ((flags & 0x8) != 0) { pad = payload[0]; start = 1; }
                if ((flags & 0x20) != 0) start += 5;
                block.Clear();
                block.AddRange(payload[start..(payload.Length - pad)].ToArray());
            }
            else if (type == 9)
            {
                block.AddRange(payload.ToArray());
            }
            else
            {
                continue;
            }
            if ((flags & 0x4) != 0) result.Add(Decode([.. block], dynamicTable));
        }
        return result;
    }

    private static List<(string, string)> Decode(byte[] b, List<(string Name, string Value)> dyn)
    {
        var list = new List<(string, string)>();
        var p = 0;
        (string Name, string Value) Entry(int index) => index <= Static.Length ? Static[index - 1] : dyn[index - Static.Length - 1];
        while (p < b.Length)
        {
            var first = b[p];
            if ((first & 0x80) != 0)
            {
                list.Add(Entry(Int(b, ref p, 7)));
            }
            else if ((first & 0xe0) == 0x20)
            {
                Int(b, ref p, 5);
            }
            else
            {
                var incremental = (first & 0xc0) == 0x40;
                var index = Int(b, ref p, incremental ? 6 : 4);
                var name = index == 0 ? Str(b, ref p) : Entry(index).Name;
                var value = Str(b, ref p);
                list.Add((name, value));
                if (incremental) dyn.Insert(0, (name, value));
            }
        }
        return list;
    }

    private static int Int(byte[] b, ref int p, int prefixBits)
    {
        var mask = (1 << prefixBits) - 1;
        var value = b[p++] & mask;
        if (value < mask) return value;
        var shift = 0;
        while (true)
        {
            var next = b[p++];
            value += (next & 0x7f) << shift;
            shift += 7;
            if ((next & 0x80) == 0) return value;
        }
    }

    private static string Str(byte[] b, ref int p)
    {
        var huffman = (b[p] & 0x80) != 0;
        var length = Int(b, ref p, 7);
        var s = huffman ? "<huffman>" : Encoding.Latin1.GetString(b, p, length);
        p += length;
        return s;
    }
}

using System.Buffers.Binary;
using System.Collections.Concurrent;
using System.Globalization;
using System.Net;
using System.Net.Sockets;
using Bittensor.Protocol;
using Bittensor.Protocol.Wire;
using Google.Protobuf;

namespace Bittensor.Benchmarks.Axon;

/// <summary>
/// The floor of the race (issue 11): <c>floor-server [--ip 127.0.0.1] [--port 0] [--network_dim 1024]</c>, a minimal
/// h2c gRPC responder for <c>Forward</c> that does as little as any server on this machine can do per call, so
/// <c>benchmarks/race.sh</c> (<c>MODES=floor</c>) can show how much of a server's CPU per call is the kernel's and
/// the loopback's share that no server design removes. Not a server to use: no HPACK decoding (every stream is
/// taken as a Forward; request headers are skipped), no signature or nonce check, no admission, no limits beyond
/// the frame size, no flow control beyond what the answers need. Per connection one thread with blocking I/O
/// reads what the peer sent, parses each request message (a real protobuf parse of the <c>TensorMessage</c> and a
/// check of its first tensor's shape), and answers with HEADERS + DATA + trailers; every answer a read produced goes
/// out in one write. The answer to a shape is encoded once (the echo model's values for the first request of that
/// shape) and reused: the floor measures the transport, not the model. Prints <c>serving on IP:PORT</c> on stderr.
/// </summary>
internal static class FloorServer
{
    public static int Run(string[] args)
    {
        var opts = Args.Parse(args);
        var ip = IPAddress.Parse(opts.Get("ip", "127.0.0.1"));
        var port = int.Parse(opts.Get("port", "0"), CultureInfo.InvariantCulture);
        var dim = int.Parse(opts.Get("network_dim", "1024"), CultureInfo.InvariantCulture);
        using var listener = new Socket(SocketType.Stream, ProtocolType.Tcp);
        listener.Bind(new IPEndPoint(ip, port));
        listener.Listen(512);
        Console.Error.WriteLine($"floor-server: serving on {ip}:{((IPEndPoint)listener.LocalEndPoint!).Port}");
        var answers = new ConcurrentDictionary<(long, long), byte[]>();
        using var stop = new CancellationTokenSource();
        Console.CancelKeyPress += (_, e) => { e.Cancel = true; stop.Cancel(); };
        AppDomain.CurrentDomain.ProcessExit += (_, _) => stop.Cancel();
        while (!stop.IsCancellationRequested)
        {
            Socket s;
            try
            {
                s = listener.Accept();
            }
            catch (SocketException)
            {
                break;
            }
            s.NoDelay = true;
            new Thread(() => new Connection(s, dim, answers).Run()) { IsBackground = true, Name = "floor-connection" }.Start();
        }
        return 0;
    }

    private sealed class Connection(Socket socket, int dim, ConcurrentDictionary<(long, long), byte[]> answers)
    {
        private static readonly byte[] Preface = "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"u8.ToArray();
        // :status 200 (static index 8); content-type (static name 31) "application/grpc", literal without indexing.
        private static readonly byte[] ResponseHeaders = [0x88, 0x0F, 0x10, 16, .. "application/grpc"u8];
        // grpc-status: 0, literal without indexing, new name.
        private static readonly byte[] Trailers = [0x00, 11, .. "grpc-status"u8, 1, (byte)'0'];
        private readonly Dictionary<int, MemoryStream> _bodies = [];
        private readonly Queue<(int Stream, byte[] Answer)> _waiting = new(); // answers over the peer's window
        private byte[] _in = new byte[1 << 20];
        private byte[] _out = new byte[1 << 20];
        private int _outLength;
        private long _sendWindow = 65535; // the connection's window for our DATA
        private long _initialStreamWindow = 65535; // the peer's SETTINGS_INITIAL_WINDOW_SIZE
        private int _maxFrame = 16384; // the peer's SETTINGS_MAX_FRAME_SIZE
        private long _received; // request DATA bytes since our last connection WINDOW_UPDATE

        public void Run()
        {
            try
            {
                var filled = 0;
                while (filled < Preface.Length)
                {
                    var n = socket.Receive(_in, filled, _in.Length - filled, SocketFlags.None);
                    if (n == 0) return;
                    filled += n;
                }
                if (!_in.AsSpan(0, Preface.Length).SequenceEqual(Preface)) return;
                _in.AsSpan(Preface.Length, filled - Preface.Length).CopyTo(_in);
                filled -= Preface.Length;
                AppendFrame(4, 0, 0, []); // our SETTINGS: the defaults
                AppendFrame(8, 0, 0, BigEndian((1 << 30) - 65535)); // a large connection window for the requests
                while (true)
                {
                    var used = Parse(_in.AsSpan(0, filled));
                    if (used > 0)
                    {
                        _in.AsSpan(used, filled - used).CopyTo(_in);
                        filled -= used;
                    }
                    if (_outLength > 0)
                    {
                        var sent = 0;
                        while (sent < _outLength) sent += socket.Send(_out, sent, _outLength - sent, SocketFlags.None);
                        _outLength = 0;
                    }
                    if (filled == _in.Length) Array.Resize(ref _in, _in.Length * 2);
                    var r = socket.Receive(_in, filled, _in.Length - filled, SocketFlags.None);
                    if (r == 0) return;
                    filled += r;
                }
            }
            catch (SocketException)
            {
            }
            catch (ObjectDisposedException)
            {
            }
            finally
            {
                socket.Dispose();
            }
        }

        private int Parse(ReadOnlySpan<byte> data)
        {
            var pos = 0;
            while (data.Length - pos >= 9)
            {
                var length = (data[pos] << 16) | (data[pos + 1] << 8) | data[pos + 2];
                if (data.Length - pos - 9 < length) break;
                var type = data[pos + 3];
                var flags = data[pos + 4];
                var id = BinaryPrimitives.ReadInt32BigEndian(data[(pos + 5)..]) & 0x7FFFFFFF;
                var payload = data.Slice(pos + 9, length);
                pos += 9 + length;
                switch (type)
                {
                    case 0: // DATA: the request message, usually in one frame
                        if (!_bodies.TryGetValue(id, out var body)) _bodies[id] = body = new MemoryStream();
                        body.Write(payload);
                        _received += length;
                        if (_received > 1 << 20)
                        {
                            AppendFrame(8, 0, 0, BigEndian((int)_received));
                            _received = 0;
                        }
                        if ((flags & 0x1) != 0)
                        {
                            _bodies.Remove(id);
                            Answer(id, body.GetBuffer().AsSpan(0, (int)body.Length));
                        }
                        break;
                    case 3: // RST_STREAM
                        _bodies.Remove(id);
                        break;
                    case 4: // SETTINGS
                        if ((flags & 0x1) == 0)
                        {
                            for (var i = 0; i + 6 <= payload.Length; i += 6)
                            {
                                var key = BinaryPrimitives.ReadUInt16BigEndian(payload[i..]);
                                var value = BinaryPrimitives.ReadUInt32BigEndian(payload[(i + 2)..]);
                                if (key == 4) _initialStreamWindow = value;
                                if (key == 5) _maxFrame = (int)value;
                            }
                            AppendFrame(4, 0x1, 0, []);
                        }
                        break;
                    case 6: // PING
                        if ((flags & 0x1) == 0) AppendFrame(6, 0x1, 0, payload);
                        break;
                    case 7: // GOAWAY
                        throw new ObjectDisposedException("GOAWAY");
                    case 8: // WINDOW_UPDATE (stream windows are not tracked: one answer never exceeds the initial one)
                        if (id == 0)
                        {
                            _sendWindow += BinaryPrimitives.ReadInt32BigEndian(payload) & 0x7FFFFFFF;
                            while (_waiting.Count > 0 && _waiting.Peek().Answer.Length <= _sendWindow)
                            {
                                var (stream, answer) = _waiting.Dequeue();
                                Write(stream, answer);
                            }
                        }
                        break;
                }
            }
            return pos;
        }

        private void Answer(int stream, ReadOnlySpan<byte> body)
        {
            // The gRPC frame: 1 compressed flag + 4 length bytes, then the TensorMessage.
            if (body.Length < 5 || body[0] != 0 || BinaryPrimitives.ReadUInt32BigEndian(body[1..]) != body.Length - 5)
            {
                AppendFrame(3, 0, stream, BigEndian(1)); // RST_STREAM PROTOCOL_ERROR
                return;
            }
            var request = TensorMessage.Parser.ParseFrom(body[5..]);
            if (request.Tensors.Count == 0 || request.Tensors[0].Shape.Count != 2)
            {
                AppendFrame(3, 0, stream, BigEndian(1));
                return;
            }
            var key = (request.Tensors[0].Shape[0], request.Tensors[0].Shape[1]);
            var answer = answers.GetOrAdd(key, k => Encode(k.Item1, k.Item2, dim));
            if (answer.Length > _initialStreamWindow)
            {
                AppendFrame(3, 0, stream, BigEndian(3)); // FLOW_CONTROL_ERROR: this floor does not track stream windows
                return;
            }
            if (_waiting.Count > 0 || answer.Length > _sendWindow) _waiting.Enqueue((stream, answer));
            else Write(stream, answer);
        }

        private void Write(int stream, byte[] answer)
        {
            _sendWindow -= answer.Length;
            AppendFrame(1, 0x4, stream, ResponseHeaders); // HEADERS, END_HEADERS
            for (var at = 0; at < answer.Length; at += _maxFrame)
            {
                AppendFrame(0, 0, stream, answer.AsSpan(at, Math.Min(_maxFrame, answer.Length - at)));
            }
            AppendFrame(1, 0x5, stream, Trailers); // HEADERS, END_STREAM | END_HEADERS
        }

        // The echo model's answer (token * 1e-3 + d * 1e-6 per element, as `btcli axon serve --model echo`) to a request
        // whose tokens are 0, 1, 2, … (as axon-load-raw sends), as a gRPC frame.
        private static byte[] Encode(long batch, long sequence, int dim)
        {
            var values = new float[batch * sequence * dim];
            for (var i = 0; i < values.Length; i++) values[i] = ((i / dim) % 50000 * 1e-3f) + (i % dim * 1e-6f);
            var response = new TensorMessage { Version = ProtocolVersion.Current, ReturnCode = ReturnCode.Success };
            response.Tensors.Add(TensorCodec.ToTensor(values, [batch, sequence, dim], Modality.Tensor));
            var size = response.CalculateSize();
            var frame = new byte[5 + size];
            BinaryPrimitives.WriteUInt32BigEndian(frame.AsSpan(1), (uint)size);
            response.WriteTo(frame.AsSpan(5));
            return frame;
        }

        private void AppendFrame(byte type, byte flags, int stream, ReadOnlySpan<byte> payload)
        {
            var need = _outLength + 9 + payload.Length;
            if (need > _out.Length) Array.Resize(ref _out, Math.Max(_out.Length * 2, need));
            var o = _out.AsSpan(_outLength);
            o[0] = (byte)(payload.Length >> 16);
            o[1] = (byte)(payload.Length >> 8);
            o[2] = (byte)payload.Length;
            o[3] = type;
            o[4] = flags;
            BinaryPrimitives.WriteInt32BigEndian(o[5..], stream);
            payload.CopyTo(o[9..]);
            _outLength = need;
        }

        private static byte[] BigEndian(int value)
        {
            var b = new byte[4];
            BinaryPrimitives.WriteInt32BigEndian(b, value);
            return b;
        }
    }
}

using System.Buffers.Binary;
using System.Net;
using System.Net.Sockets;
using System.Threading.Channels;
using Bittensor.Actors.Cluster;
using Bittensor.Protocol;
using Bittensor.Protocol.Wire;

namespace Bittensor.Actors.Tests.Cluster;

/// <summary>
/// The data plane's connection on real loopback sockets (port 0): a worker's listener and a front's connection, or a
/// raw socket playing a broken front. Bad frames close the connection with a reason; nothing waits on time.
/// </summary>
public sealed class DataPlaneTests : IDisposable
{
    private const string WorkerName = "akka.tcp://bittensor@127.0.0.1:1";
    private const string FrontName = "akka.tcp://bittensor@127.0.0.1:2";
    private static readonly TimeSpan Wait = TimeSpan.FromSeconds(60);

    private readonly List<IDisposable> _owned = [];
    private readonly Channel<string> _log = Channel.CreateUnbounded<string>();
    private readonly Channel<(byte Kind, byte[] Payload)> _frames = Channel.CreateUnbounded<(byte, byte[])>();
    private readonly TaskCompletionSource<string> _closed = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private readonly TaskCompletionSource<DataPlaneConnection> _opened = new(TaskCreationOptions.RunContinuationsAsynchronously);

    public void Dispose()
    {
        foreach (var d in _owned) d.Dispose();
    }

    // A worker's listener whose connections record every frame (and answer a call with an echo reply).
    private DataPlaneListener Listen(int maxQueued = 16)
    {
        var listener = DataPlaneListener.Bind("127.0.0.1", 0, WorkerName, maxQueued, m => _log.Writer.TryWrite(m));
        _owned.Add(listener);
        listener.Start(connection =>
        {
            connection.Start((c, kind, payload) =>
            {
                _frames.Writer.TryWrite((kind, payload.ToArray()));
                if (kind == DataPlaneFrames.Call)
                {
                    var call = ClusterTensorSerializer.ReadCall(payload);
                    c.Send(DataPlaneFrames.Reply, new WorkerReply(call.RequestId, ReturnCode.Success, "", call.Inputs));
                }
            }, (c, reason) =>
            {
                listener.Closed(c);
                _closed.TrySetResult(reason);
            });
            _opened.TrySetResult(connection);
        });
        return listener;
    }

    private async Task<Socket> RawHandshaken(int port)
    {
        var socket = await Raw(port);
        await DataPlaneConnection.SendHandshakeAsync(socket, DataPlaneFrames.Hello, FrontName, CancellationToken.None);
        Assert.Equal(WorkerName, await DataPlaneConnection.ReadHandshakeAsync(socket, DataPlaneFrames.HelloAck, CancellationToken.None).WaitAsync(Wait));
        return socket;
    }

    private async Task<Socket> Raw(int port)
    {
        var socket = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
        _owned.Add(socket);
        await socket.ConnectAsync(IPAddress.Loopback, port);
        return socket;
    }

    private static byte[] Header(uint length, byte kind)
    {
        var header = new byte[DataPlaneFrames.HeaderBytes];
        BinaryPrimitives.WriteUInt32LittleEndian(header, length);
        header[4] = kind;
        return header;
    }

    // Reads until the peer closes (0 bytes): the worker dropped this connection.
    private static async Task AssertClosedByPeer(Socket socket)
    {
        var buffer = new byte[64 * 1024];
        while (true)
        {
            int n;
            try
            {
                n = await socket.ReceiveAsync(buffer, SocketFlags.None).WaitAsync(Wait);
            }
            catch (SocketException e) when (e.SocketErrorCode == SocketError.ConnectionReset)
            {
                return;
            }
            if (n == 0) return;
        }
    }

    private static WorkerCall Call(long id, bool backward = false) => new(id, backward, "5GrwvaEF5zXb26Fz9rcQpDWS57CtERHpNehXCPcNoHGKutQY", 12.5,
        Modality.Text, DenseTensor.Int64([1, 3], [1, 2, 3]), backward ? DenseTensor.Float32([1, 3, 2], [1, 2, 3, 4, 5, 6]) : null, 3,
        new DateTime(2030, 1, 2, 3, 4, 5, DateTimeKind.Utc));

    [Fact]
    public async Task A_call_crosses_to_the_worker_decoded_and_its_reply_comes_back_on_the_same_connection()
    {
        var listener = Listen();
        var front = await DataPlaneConnection.ConnectAsync("127.0.0.1", listener.Port, FrontName, Wait, 16, CancellationToken.None);
        _owned.Add(front);
        Assert.Equal(WorkerName, front.Peer);
        var replies = Channel.CreateUnbounded<WorkerReply>();
        front.Start((c, kind, payload) =>
        {
            Assert.Equal(DataPlaneFrames.Reply, kind);
            replies.Writer.TryWrite(ClusterTensorSerializer.ReadReply(payload));
        }, (c, reason) => replies.Writer.TryComplete());
        Assert.Equal(FrontName, (await _opened.Task.WaitAsync(Wait)).Peer);

        for (var id = 1; id <= 3; id++) Assert.Equal(DataPlaneSend.Sent, front.Send(DataPlaneFrames.Call, Call(id, backward: id == 2)));
        for (var id = 1; id <= 3; id++)
        {
            var (kind, payload) = await _frames.Reader.ReadAsync().AsTask().WaitAsync(Wait);
            Assert.Equal(DataPlaneFrames.Call, kind);
            var call = ClusterTensorSerializer.ReadCall(payload);
            var sent = Call(id, backward: id == 2);
            Assert.Equal((sent.RequestId, sent.IsBackward, sent.CallerHotkey, sent.CallerStake, sent.Priority, sent.DeadlineUtc),
                (call.RequestId, call.IsBackward, call.CallerHotkey, call.CallerStake, call.Priority, call.DeadlineUtc));
            Assert.Equal(sent.Inputs.Longs, call.Inputs.Longs);
            Assert.Equal(sent.Grads?.Floats, call.Grads?.Floats);
            var reply = await replies.Reader.ReadAsync().AsTask().WaitAsync(Wait);
            Assert.Equal((long)id, reply.RequestId);
            Assert.Equal(ReturnCode.Success, reply.Code);
            Assert.Equal([1L, 2, 3], reply.Outputs!.Longs!);
        }

        // A drain acknowledgement and a chunk of averaged parameters keep their place among the calls.
        Assert.Equal(DataPlaneSend.Sent, front.Send(DataPlaneFrames.Averaged, new AveragedParameters(4, true, 2, 0, 3, new float[] { 1, 2, 3 })));
        Assert.Equal(DataPlaneSend.Sent, front.Send(DataPlaneFrames.DrainAck, null));
        var averaged = await _frames.Reader.ReadAsync().AsTask().WaitAsync(Wait);
        Assert.Equal(DataPlaneFrames.Averaged, averaged.Kind);
        var a = ClusterTensorSerializer.ReadAveraged(averaged.Payload);
        Assert.Equal((4L, true, 2, 0, 3), (a.Round, a.Exact, a.Replicas, a.Offset, a.Total));
        Assert.Equal([1f, 2, 3], a.Values.ToArray());
        var drainAck = await _frames.Reader.ReadAsync().AsTask().WaitAsync(Wait);
        Assert.Equal(DataPlaneFrames.DrainAck, drainAck.Kind);
        Assert.Empty(drainAck.Payload);

        front.Dispose();
        Assert.Equal("the peer closed the connection", await _closed.Task.WaitAsync(Wait));
        Assert.Equal(DataPlaneSend.Closed, front.Send(DataPlaneFrames.Call, Call(9)));
    }

    [Theory]
    [InlineData("oversized", "an oversized frame")]
    [InlineData("huge", "an oversized frame")]
    [InlineData("unknown kind", "frame kind 99")]
    [InlineData("bad payload", "a malformed frame (cluster tensor message: unknown version)")]
    [InlineData("truncated payload", "a malformed frame (cluster tensor message: elements truncated)")]
    [InlineData("cut off", "the peer closed the connection in the middle of a frame")]
    public async Task A_bad_frame_from_the_front_closes_its_connection_with_the_reason(string what, string reason)
    {
        var listener = new DataPlaneListenerWithKinds(this);
        var socket = await RawHandshaken(listener.Port);
        var valid = new byte[ClusterTensorSerializer.SizeOf(Call(1))];
        ClusterTensorSerializer.Write(Call(1), valid);
        byte[] bytes = what switch
        {
            "oversized" => Header(DataPlaneFrames.MaxFrameBytes + 1, DataPlaneFrames.Call),
            "huge" => Header(uint.MaxValue, DataPlaneFrames.Call),
            "unknown kind" => [.. Header(0, 99)],
            "bad payload" => [.. Header(3, DataPlaneFrames.Call), 9, 9, 9],
            "truncated payload" => [.. Header((uint)(valid.Length - 7), DataPlaneFrames.Call), .. valid.AsSpan(0, valid.Length - 7)],
            "cut off" => [.. Header(100, DataPlaneFrames.Call), 1, 2, 3],
            _ => throw new ArgumentOutOfRangeException(nameof(what)),
        };
        await socket.SendAsync(bytes, SocketFlags.None);
        if (what == "cut off") socket.Shutdown(SocketShutdown.Send);
        Assert.Contains(reason, await _closed.Task.WaitAsync(Wait));
        await AssertClosedByPeer(socket);
        Assert.Empty(ReadAll(_frames.Reader));
        Assert.Equal(0, listener.Inner.OpenConnections);
    }

    // The listener of this class, refusing frames that are not calls as the worker's handler does.
    private sealed class DataPlaneListenerWithKinds
    {
        public DataPlaneListenerWithKinds(DataPlaneTests t)
        {
            Inner = DataPlaneListener.Bind("127.0.0.1", 0, WorkerName, 16, m => t._log.Writer.TryWrite(m));
            t._owned.Add(Inner);
            var inner = Inner;
            Inner.Start(connection => connection.Start((c, kind, payload) =>
            {
                if (kind != DataPlaneFrames.Call) throw new DataPlaneException($"data plane: the front sent frame kind {kind}");
                var call = ClusterTensorSerializer.ReadCall(payload);
                t._frames.Writer.TryWrite((kind, payload.ToArray()));
                _ = call;
            }, (c, reason) =>
            {
                inner.Closed(c);
                t._closed.TrySetResult(reason);
            }));
        }

        public DataPlaneListener Inner { get; }

        public int Port => Inner.Port;
    }

    private static List<T> ReadAll<T>(ChannelReader<T> reader)
    {
        var all = new List<T>();
        while (reader.TryRead(out var item)) all.Add(item);
        return all;
    }

    [Theory]
    [InlineData("bad magic", "bad magic")]
    [InlineData("wrong version", "the peer speaks version 7")]
    [InlineData("oversized hello", "a handshake frame of 5000 bytes")]
    [InlineData("not a hello", "expected handshake frame kind 1, got 3")]
    [InlineData("name length", "the handshake's name length does not match its frame")]
    public async Task A_connection_whose_hello_is_wrong_is_refused_with_the_reason(string what, string reason)
    {
        var listener = Listen();
        var socket = await Raw(listener.Port);
        byte[] payload = [.. "BTDP"u8, DataPlaneFrames.Version, 1, 0, 0, 0, (byte)'x'];
        byte[] bytes = what switch
        {
            "bad magic" => [.. Header((uint)payload.Length, DataPlaneFrames.Hello), .. "HTTP"u8, .. payload.AsSpan(4)],
            "wrong version" => [.. Header((uint)payload.Length, DataPlaneFrames.Hello), .. payload.AsSpan(0, 4), 7, .. payload.AsSpan(5)],
            "oversized hello" => Header(5000, DataPlaneFrames.Hello),
            "not a hello" => [.. Header((uint)payload.Length, DataPlaneFrames.Call), .. payload],
            "name length" => [.. Header((uint)payload.Length, DataPlaneFrames.Hello), .. payload.AsSpan(0, 5), 9, 0, 0, 0, (byte)'x'],
            _ => throw new ArgumentOutOfRangeException(nameof(what)),
        };
        await socket.SendAsync(bytes, SocketFlags.None);
        await AssertClosedByPeer(socket);
        var line = await _log.Reader.ReadAsync().AsTask().WaitAsync(Wait);
        Assert.Contains("refused", line);
        Assert.Contains(reason, line);
        Assert.False(_opened.Task.IsCompleted);
    }

    [Fact]
    public async Task A_front_connecting_to_something_that_is_not_a_worker_gets_a_clear_error()
    {
        // A plain listener that answers the hello with an HTTP/1.1 response, as a wrong port would.
        using var other = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
        other.Bind(new IPEndPoint(IPAddress.Loopback, 0));
        other.Listen(1);
        var serve = Task.Run(async () =>
        {
            using var s = await other.AcceptAsync();
            await s.SendAsync("HTTP/1.1 400 Bad Request\r\n\r\n"u8.ToArray(), SocketFlags.None);
            s.Shutdown(SocketShutdown.Both);
        });
        var e = await Assert.ThrowsAsync<DataPlaneException>(() =>
            DataPlaneConnection.ConnectAsync("127.0.0.1", ((IPEndPoint)other.LocalEndPoint!).Port, FrontName, Wait, 16, CancellationToken.None));
        Assert.Contains("expected handshake frame kind 2", e.Message);
        await serve.WaitAsync(Wait);

        // Nothing listening: refused, named.
        var closedPort = ((IPEndPoint)other.LocalEndPoint!).Port;
        other.Close();
        var refused = await Assert.ThrowsAsync<DataPlaneException>(() =>
            DataPlaneConnection.ConnectAsync("127.0.0.1", closedPort, FrontName, Wait, 16, CancellationToken.None));
        Assert.Contains($"cannot connect to 127.0.0.1:{closedPort}", refused.Message);
    }

    [Fact]
    public async Task Connections_above_the_limit_are_closed_at_once()
    {
        var listener = Listen();
        for (var i = 0; i < DataPlaneListener.MaxConnections; i++) await RawHandshaken(listener.Port);
        var extra = await Raw(listener.Port);
        await AssertClosedByPeer(extra);
        Assert.Contains($"({DataPlaneListener.MaxConnections} open already)", await _log.Reader.ReadAsync().AsTask().WaitAsync(Wait));
    }

    [Fact]
    public async Task Sending_to_a_peer_that_does_not_read_is_bounded_and_answers_Backlogged()
    {
        var listener = Listen(maxQueued: 4);
        var socket = await RawHandshaken(listener.Port); // this "front" never reads what the worker sends
        var worker = await _opened.Task.WaitAsync(Wait);
        var big = new WorkerReply(1, ReturnCode.Success, "", DenseTensor.Float32([1, 16, 1024], new float[16 * 1024]));
        var sent = 0;
        DataPlaneSend result;
        // The kernel's buffers take some frames; then at most 4 wait in the queue; the next is refused.
        while ((result = worker.Send(DataPlaneFrames.Reply, big)) == DataPlaneSend.Sent)
        {
            sent++;
            Assert.True(sent < 100_000, "a peer that never reads never made the sender refuse");
        }
        Assert.Equal(DataPlaneSend.Backlogged, result);
        worker.Close("test over");
        _ = socket;
    }

    [Fact]
    public async Task A_message_that_cannot_be_written_is_refused_before_anything_is_sent()
    {
        // Rank 9 is beyond what the serializer carries.
        var reply = new WorkerReply(1, ReturnCode.Success, "", DenseTensor.Float32([1, 1, 1, 1, 1, 1, 1, 1, 1], [1f]));
        var listener = Listen();
        using var front = await DataPlaneConnection.ConnectAsync("127.0.0.1", listener.Port, FrontName, Wait, 16, CancellationToken.None);
        Assert.Throws<System.Runtime.Serialization.SerializationException>(() => front.Send(DataPlaneFrames.Reply, reply));
        Assert.Throws<System.Runtime.Serialization.SerializationException>(() => front.Send(DataPlaneFrames.Call, reply));
        Assert.False(front.IsClosed);
    }

    [Fact]
    public void A_data_port_in_use_is_a_clear_error()
    {
        var first = DataPlaneListener.Bind("127.0.0.1", 0, WorkerName, 16, _ => { });
        _owned.Add(first);
        var e = Assert.Throws<DataPlaneException>(() => DataPlaneListener.Bind("127.0.0.1", first.Port, WorkerName, 16, _ => { }));
        Assert.Contains($"bittensor.cluster.worker.data_port: cannot listen on 127.0.0.1:{first.Port} (AddressAlreadyInUse)", e.Message);
    }
}

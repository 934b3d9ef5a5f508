using System.Net;
using System.Net.Sockets;
using Bittensor.Protocol.Lean;
using Bittensor.Protocol.Wire;
using Google.Protobuf;
using Grpc.Core;

namespace Bittensor.Protocol.Tests.Lean;

// The batched send path (bittensor.dendrite.io = batch, SendBatch): these run on every path (sockets, loop, batch: a batch
// is ignored off the batched path, and every call must be answered the same), and check what the batch adds where it
// is on (requests held in their connections' outboxes until the batch's last call, then sent by the loop's thread).
public partial class LeanClientTests
{
    private bool Batched => IoLoop && IoBatch && ClientIoLoop.Supported;

    // A connection that has answered one call: connected, the server's SETTINGS (a 64 MiB stream window, 64 MiB more for
    // the connection) read, so the next calls' requests are written synchronously by the caller.
    private async Task<IPeerConnection> Warm(ScriptedServer server)
    {
        var c = Connect(server, maxSend: 64 << 20);
        var warm = Call(c);
        await server.ReadRequest();
        var hello = new TensorMessage { Message = "hello" };
        await server.Send(Concat(Frame(H2.Settings, 0, 0, [0, 4, 0x04, 0, 0, 0]), Frame(H2.WindowUpdate, 0, 0, [0x04, 0, 0, 0]),
            Frame(H2.Headers, H2.EndHeaders, 1, Ok), Frame(H2.Data, 0, 1, Grpc(hello.ToByteArray())), Trailers(1)));
        Assert.Equal(hello, await warm.WaitAsync(Wait));
        // The client's SETTINGS ACK is out: nothing of its own is left queued on the connection.
        await server.ReadRequest(f => f.Type == H2.Settings && (f.Flags & 1) != 0);
        return c;
    }

    private static Task Answer3(ScriptedServer server, TensorMessage reply, int stream = 3) =>
        server.Send(Concat(Frame(H2.Headers, H2.EndHeaders, stream, Ok), Frame(H2.Data, 0, stream, Grpc(reply.ToByteArray())), Trailers(stream)));

    [Fact]
    public async Task A_batchs_requests_wait_in_their_outboxes_until_its_last_call_and_then_all_go_out_and_are_answered()
    {
        var fallback = ClientIoLoop.BatchFallback;
        ClientIoLoop.BatchFallback = TimeSpan.FromMinutes(10); // only the batch's last call may flush it here
        try
        {
            var servers = new[] { new ScriptedServer(), new ScriptedServer(), new ScriptedServer() };
            var conns = new IPeerConnection[servers.Length];
            for (var i = 0; i < servers.Length; i++) conns[i] = await Warm(servers[i]);
            var batch = new SendBatch(servers.Length);
            var calls = new Task<TensorMessage>[servers.Length];
            // As the round's endpoint actors do: each enters the batch, makes its call, leaves.
            for (var i = 0; i < servers.Length; i++)
            {
                using (batch.Enter()) calls[i] = Call(conns[i]);
                if (i < servers.Length - 1 && Batched)
                {
                    // Not sent yet: the request sits in its connection's outbox until the batch's last call arrives.
                    Assert.True(Current(conns[i]).IoRegistration!.Queued > 0, $"call {i}'s request left before the batch's last call");
                }
            }
            Assert.Equal(0, batch.Remaining);
            Assert.Equal(Batched ? servers.Length : 0, batch.Queued); // each request waited for the batch
            for (var i = 0; i < servers.Length; i++)
            {
                await servers[i].ReadRequest(f => f.Type == H2.Data && f.Stream == 3 && (f.Flags & H2.EndStream) != 0);
                var reply = new TensorMessage { Message = $"answer {i}" };
                await Answer3(servers[i], reply);
                Assert.Equal(reply, await calls[i].WaitAsync(Wait));
            }
            if (Batched) Assert.All(conns, c => Assert.Equal(0, Current(c).IoRegistration!.Queued));
            foreach (var c in conns) c.Dispose();
            foreach (var s in servers) await s.DisposeAsync();
        }
        finally
        {
            ClientIoLoop.BatchFallback = fallback;
        }
    }

    [Fact]
    public async Task A_connection_that_dies_in_the_middle_of_a_batch_fails_its_call_Unavailable_and_the_batchs_other_request_goes_out()
    {
        var fallback = ClientIoLoop.BatchFallback;
        ClientIoLoop.BatchFallback = TimeSpan.FromMinutes(10);
        try
        {
            await using var a = new ScriptedServer();
            await using var b = new ScriptedServer();
            using var ca = await Warm(a);
            using var cb = await Warm(b);
            var batch = new SendBatch(2);
            Task<TensorMessage> callA, callB;
            using (batch.Enter()) callA = Call(ca);
            a.Abort(); // a TCP reset while A's request waits for the batch
            using (batch.Enter()) callB = Call(cb);

            var lost = await Assert.ThrowsAsync<RpcException>(() => callA.WaitAsync(Wait));
            Assert.Equal(StatusCode.Unavailable, lost.StatusCode);
            await b.ReadRequest(f => f.Type == H2.Data && f.Stream == 3 && (f.Flags & H2.EndStream) != 0);
            var reply = new TensorMessage { Message = "b" };
            await Answer3(b, reply);
            Assert.Equal(reply, await callB.WaitAsync(Wait));
            // B's connection goes on.
            var next = Call(cb);
            await b.ReadRequest(f => f.Type == H2.Data && f.Stream == 5 && (f.Flags & H2.EndStream) != 0);
            await Answer3(b, reply, 5);
            Assert.Equal(reply, await next.WaitAsync(Wait));
            if (Batched) Assert.Equal(0, Current(cb).IoRegistration!.Queued);
        }
        finally
        {
            ClientIoLoop.BatchFallback = fallback;
        }
    }

    [Fact]
    public async Task A_batch_larger_than_the_sockets_buffers_goes_out_whole_and_in_order_once_the_server_reads()
    {
        await using var server = new ScriptedServer(receiveBuffer: 8 * 1024);
        using var c = await Warm(server);
        // 256 requests of ~60 KB (under the outbox's largest write): ~16 MB, more than the sockets hold while the server
        // does not read (its receive buffer is small), and more than the outbox holds (a call that finds it full waits
        // for it to empty and sends itself). Batched, the client's send buffer is small too (no autotuning: it grew to
        // 4 MB), so the loop's first flush (the outbox's ~240 KB, before any call sends itself) meets a full socket
        // while the server has not read.
        if (Batched) Current(c).IoRegistration!.SocketForTests.SendBufferSize = 8 * 1024;
        var request = Answer(15 * 1024);
        const int Calls = 256;
        var batch = new SendBatch(Calls);
        var calls = new Task<TensorMessage>[Calls];
        for (var i = 0; i < Calls; i++)
        {
            using (batch.Enter()) calls[i] = Call(c, BittensorMethod.Backward, request);
        }
        // The server reads only once the loop has met a full socket. Until session 22 it read at once, and when its reads
        // kept up with the loop's flushes the loop never met one (FullWaits 0: a rare failure, 1 in 26 runs of the project).
        if (Batched) await Current(c).IoRegistration!.FullWaitAsync().WaitAsync(Wait);
        var bodies = new Dictionary<int, List<byte>>();
        var ended = 0;
        await server.ReadRequest(f =>
        {
            if (f.Type == H2.Data)
            {
                if (!bodies.TryGetValue(f.Stream, out var body)) bodies[f.Stream] = body = [];
                body.AddRange(f.Payload);
                if ((f.Flags & H2.EndStream) != 0) ended++;
            }
            return ended == Calls;
        });
        var expected = Grpc(request.ToByteArray());
        Assert.Equal(Enumerable.Range(0, Calls).Select(i => 3 + (2 * i)), bodies.Keys.Order());
        Assert.All(bodies.Values, body => Assert.Equal(expected, body.ToArray()));
        for (var i = 0; i < Calls; i++)
        {
            var reply = new TensorMessage { Message = $"got {i}" };
            await Answer3(server, reply, 3 + (2 * i));
            Assert.Equal(reply, await calls[i].WaitAsync(Wait));
        }
        if (Batched) Assert.Equal(0, Current(c).IoRegistration!.Queued);
    }

    [Fact]
    public async Task A_call_of_a_batch_that_is_never_answered_ends_at_its_deadline_with_a_reset_and_the_batchs_other_call_is_answered()
    {
        await using var a = new ScriptedServer();
        await using var b = new ScriptedServer();
        using var ca = await Warm(a);
        using var cb = await Warm(b);
        var reply = new TensorMessage { Message = "b" };
        var next = 3; // b's next stream
        // Made again with a longer deadline when the silent call's deadline passed before its request went out (UnansweredCall).
        var (error, written, stream) = await UnansweredCall(a, async deadline =>
        {
            var batch = new SendBatch(2);
            Task<TensorMessage> silent, answered;
            using (batch.Enter())
                silent = ca.CallAsync(BittensorMethod.Forward, new TensorMessage(), Headers(), DateTime.UtcNow.Add(deadline), CancellationToken.None);
            using (batch.Enter()) answered = Call(cb);

            var id = next;
            next += 2;
            await b.ReadRequest(f => f.Type == H2.Data && f.Stream == id && (f.Flags & H2.EndStream) != 0);
            await Answer3(b, reply, id);
            Assert.Equal(reply, await answered.WaitAsync(Wait));
            return silent;
        });
        Assert.Equal(StatusCode.DeadlineExceeded, error.StatusCode);
        Assert.Contains(written, f => f.Type == H2.Data && f.Stream == stream && (f.Flags & H2.EndStream) != 0);
        // The reset, written outside any batch, goes out on its own.
        Assert.Equal(stream, Assert.Single(written, f => f.Type == H2.RstStream).Stream);
    }

    [Fact]
    public async Task A_batch_whose_last_call_never_arrives_is_sent_by_the_loops_fallback_and_answered()
    {
        await using var server = new ScriptedServer();
        using var c = await Warm(server);
        var batch = new SendBatch(2); // the second call's message is lost (an actor that stopped): it never enters
        Task<TensorMessage> call;
        using (batch.Enter()) call = Call(c);
        Assert.Equal(1, batch.Remaining);

        await server.ReadRequest(f => f.Type == H2.Data && f.Stream == 3 && (f.Flags & H2.EndStream) != 0);
        var reply = new TensorMessage { Message = "late batch" };
        await Answer3(server, reply);
        Assert.Equal(reply, await call.WaitAsync(Wait));
    }
}

/// <summary>
/// Every test of <see cref="LeanClientTests"/> again with the connections on the client's own I/O loop and their writes
/// queued in outboxes that the loop's thread sends (<c>bittensor.dendrite.io = batch</c>, <see cref="SendBatch"/>).
/// </summary>
[Collection(AnswerPoolCollection.Name)]
public sealed class LeanClientBatchTests(Xunit.Abstractions.ITestOutputHelper output) : LeanClientTests(output)
{
    protected override bool IoLoop => true;

    protected override bool IoBatch => true;
}

/// <summary>The loop's outbox where no connection reads first: a flush that finds the peer gone reports it.</summary>
public sealed class ClientIoLoopOutboxTests
{
    private static readonly TimeSpan Wait = TimeSpan.FromSeconds(30);

    [Fact]
    public async Task A_flush_that_finds_the_connection_reset_reports_the_error_and_the_next_write_throws_it()
    {
        if (!ClientIoLoop.Supported)
        {
            // Elsewhere no connection is ever put on the loop (the setting falls back to .NET's sockets).
            Assert.False(OperatingSystem.IsLinux() && System.Runtime.InteropServices.RuntimeInformation.ProcessArchitecture == System.Runtime.InteropServices.Architecture.X64);
            return;
        }
        using var listener = new Socket(SocketType.Stream, ProtocolType.Tcp);
        listener.Bind(new IPEndPoint(IPAddress.Loopback, 0));
        listener.Listen(1);
        using var client = new Socket(SocketType.Stream, ProtocolType.Tcp);
        await client.ConnectAsync(listener.LocalEndPoint!);
        using var peer = await listener.AcceptAsync().WaitAsync(Wait);
        var io = ClientIoLoop.Shared.Register(client);
        try
        {
            var failed = new TaskCompletionSource<SocketError>(TaskCreationOptions.RunContinuationsAsynchronously);
            io.SendFailed = e => failed.TrySetResult(e);
            peer.LingerState = new LingerOption(true, 0);
            peer.Close(); // a TCP reset
            Assert.True(client.Poll((int)Wait.TotalMicroseconds, SelectMode.SelectRead), "the reset never reached the client");

            Assert.True(io.TryQueue(new byte[100]));
            var error = await failed.Task.WaitAsync(Wait);
            Assert.Contains(error, new[] { SocketError.ConnectionReset, SocketError.Shutdown, SocketError.ConnectionAborted });
            await io.DrainedAsync().WaitAsync(Wait); // the unsent bytes are dropped, a waiter is not left hanging
            Assert.Equal(0, io.Queued);
            var next = Assert.Throws<SocketException>(() => io.TryQueue(new byte[10]));
            Assert.Equal(error, next.SocketErrorCode);
        }
        finally
        {
            io.Close();
        }
    }
}

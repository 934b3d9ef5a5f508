using System.Buffers.Binary;
using Bittensor.Protocol.Lean;
using Bittensor.Protocol.Wire;
using Google.Protobuf;
using Grpc.Core;

namespace Bittensor.Protocol.Tests.Lean;

/// <summary>
/// A call's deadline (its <c>grpc-timeout</c>) on the lean server, over a real loopback socket: before the answer starts
/// it is answered DEADLINE_EXCEEDED (trailers only); once the answer's HEADERS went, the stream is reset CANCEL — never a
/// second HEADERS block with <c>:status</c> in it (malformed trailers, RFC 9113 §8.1).
/// </summary>
public sealed class LeanDeadlineTests
{
    /// <summary>Answers asynchronously (the handler's task is not complete when it returns), with a 100 KB tensor.</summary>
    private sealed class LateBig : IBittensorService
    {
        public async Task<TensorMessage> HandleAsync(BittensorMethod method, TensorMessage request, InboundCall call)
        {
            await Task.Yield();
            var m = new TensorMessage { Version = 150, Message = $"{method}:{request.Hotkey}" };
            m.Tensors.Add(new Tensor { Buffer = ByteString.CopyFrom(new byte[100_000]) });
            return m;
        }

        public ValueTask<HeaderDecision> CheckHeadersAsync(BittensorMethod method, Metadata headers, CancellationToken cancellationToken) =>
            ValueTask.FromResult(HeaderDecision.Proceed(null));
    }

    private static byte[] Message(string hotkey) => RawH2.Message(new TensorMessage { Hotkey = hotkey });

    [Fact]
    public async Task A_deadline_that_passes_while_the_answer_waits_for_the_window_resets_the_stream_CANCEL_not_a_second_HEADERS()
    {
        await using var binding = await new LeanServerTransport().BindAsync(
            new ServerTransportOptions("127.0.0.1", 0, 1024 * 1024, 1024 * 1024, 8, 64 * 1024, ServerLimits.None), new LateBig(), CancellationToken.None);
        // Stream windows of 0: the answer's HEADERS go, its DATA waits in the server for a window that never opens.
        await using var h2 = await RawH2.Connect(binding.Endpoint.Port, initialWindow: 0);
        // A deadline far beyond the handler's one hop, so the answer has started when it passes.
        var request = RawH2.Block([(":method", "POST"), (":scheme", "http"), (":path", "/Bittensor/Forward"), (":authority", "localhost"),
            ("content-type", "application/grpc"), ("te", "trailers"), ("grpc-timeout", "2S")]);
        await h2.Frame(H2.Headers, H2.EndHeaders, 1, request, flush: false);
        await h2.Frame(H2.Data, H2.EndStream, 1, Message("late"));

        var headers = await h2.Until(f => f.Stream == 1 && f.Type is H2.Headers or H2.RstStream);
        Assert.Equal(H2.Headers, headers.Type);
        Assert.True((headers.Flags & H2.EndStream) == 0, "the answer's HEADERS open the answer (it had not started when the deadline passed)");

        // The deadline passes (the server's own timer: the event this waits for is the frame it sends).
        var end = await h2.Until(f => f.Stream == 1 && f.Type is H2.Headers or H2.RstStream or H2.Data);
        Assert.Equal(H2.RstStream, end.Type);
        Assert.Equal(H2.Cancel, BinaryPrimitives.ReadUInt32BigEndian(end.Payload));

        // The connection goes on: a ping is answered, and no frame of stream 1 comes after its reset.
        await h2.Frame(H2.Ping, 0, 0, "after001"u8.ToArray());
        var rest = new List<RawH2.Frame_>();
        while (true)
        {
            var f = await h2.Read() ?? throw new InvalidOperationException("the server closed the connection");
            if (f.Type == H2.Ping && (f.Flags & H2.Ack) != 0) break;
            rest.Add(f);
        }
        Assert.DoesNotContain(rest, f => f.Stream == 1);
    }
}

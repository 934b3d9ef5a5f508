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
        // A deadline far beyond the handler's one hop, so the answer has started when it passes. On a starved machine
        // even 2 s can pass between the request's read (the deadline's start) and the handler's answer: the call is then
        // answered DEADLINE_EXCEEDED before its answer started (trailers only, as it should), and made again on the next
        // stream with twice the deadline, until one's answer started first.
        var stream = 1;
        for (var seconds = 2; ; seconds *= 2, stream += 2)
        {
            var request = RawH2.Block([(":method", "POST"), (":scheme", "http"), (":path", "/Bittensor/Forward"), (":authority", "localhost"),
                ("content-type", "application/grpc"), ("te", "trailers"), ("grpc-timeout", $"{seconds}S")]);
            await h2.Frame(H2.Headers, H2.EndHeaders, stream, request, flush: false);
            await h2.Frame(H2.Data, H2.EndStream, stream, Message("late"));

            var headers = await h2.Until(f => f.Stream == stream && f.Type is H2.Headers or H2.RstStream);
            Assert.Equal(H2.Headers, headers.Type);
            if ((headers.Flags & H2.EndStream) == 0) break; // the answer's HEADERS open the answer: it had not started when the deadline passed
            Assert.True(seconds < 30, $"no answer started within a deadline of {seconds} s");
        }

        // The deadline passes (the server's own timer: the event this waits for is the frame it sends).
        var end = await h2.Until(f => f.Stream == stream && f.Type is H2.Headers or H2.RstStream or H2.Data);
        Assert.Equal(H2.RstStream, end.Type);
        Assert.Equal(H2.Cancel, BinaryPrimitives.ReadUInt32BigEndian(end.Payload));

        // The connection goes on: a ping is answered, and no frame of the call's stream comes after its reset.
        await h2.Frame(H2.Ping, 0, 0, "after001"u8.ToArray());
        var rest = new List<RawH2.Frame_>();
        while (true)
        {
            var f = await h2.Read() ?? throw new InvalidOperationException("the server closed the connection");
            if (f.Type == H2.Ping && (f.Flags & H2.Ack) != 0) break;
            rest.Add(f);
        }
        Assert.DoesNotContain(rest, f => f.Stream == stream);
    }
}

using System.Collections.Concurrent;
using Bittensor.Protocol.Lean;
using Bittensor.Protocol.Wire;
using Grpc.Core;

namespace Bittensor.Protocol.Tests.Lean;

/// <summary>
/// A call's metadata reaches the service only for its check, made from the connection's reused
/// <see cref="PendingHeaders"/> (issue 11, gen-0 GCs: a shed call never makes its metadata): each call sees exactly its own
/// headers — long values (kept as octets until the check) included — whether the store it used came back after a check or
/// from a call shed before one (over real loopback sockets, port 0).
/// </summary>
public sealed class PendingHeadersTests
{
    private static readonly TimeSpan Wait = TimeSpan.FromSeconds(30);

    /// <summary>Records every checked call's metadata by its <c>x-call</c>; holds a call whose hotkey is "hold" in its handler.</summary>
    private sealed class RecordingService : IBittensorService
    {
        private readonly TaskCompletionSource _gate = new(TaskCreationOptions.RunContinuationsAsynchronously);

        public ConcurrentDictionary<string, List<(string Key, string Value)>> Seen { get; } = new();

        public TaskCompletionSource Entered { get; } = new(TaskCreationOptions.RunContinuationsAsynchronously);

        public void Release() => _gate.TrySetResult();

        public ValueTask<HeaderDecision> CheckHeadersAsync(BittensorMethod method, Metadata headers, CancellationToken cancellationToken)
        {
            Seen[headers.GetValue("x-call") ?? "?"] = [.. headers.Select(e => (e.Key, e.Value))];
            return ValueTask.FromResult(HeaderDecision.Proceed(null));
        }

        public async Task<TensorMessage> HandleAsync(BittensorMethod method, TensorMessage request, InboundCall call)
        {
            if (request.Hotkey == "hold")
            {
                Entered.TrySetResult();
                await _gate.Task.WaitAsync(Wait).ConfigureAwait(false);
            }
            return new TensorMessage { Version = 150, Message = $"{method}:{request.Hotkey}" };
        }
    }

    private static byte[] Request(params (string Name, string Value)[] metadata) =>
        RawH2.Block([(":method", "POST"), (":scheme", "http"), (":path", "/Bittensor/Forward"), (":authority", "localhost"),
            ("content-type", "application/grpc"), ("te", "trailers"), .. metadata]);

    private static async Task Call(RawH2 h2, int stream, string hotkey, params (string Name, string Value)[] metadata)
    {
        await h2.Frame(H2.Headers, H2.EndHeaders, stream, Request(metadata), flush: false);
        await h2.Frame(H2.Data, H2.EndStream, stream, RawH2.Message(new TensorMessage { Hotkey = hotkey }));
    }

    [Fact]
    public async Task Each_call_sees_only_its_own_metadata_when_its_connection_reuses_the_store_of_a_checked_or_a_shed_call()
    {
        var service = new RecordingService();
        // One call in flight at most: the second call comes while the first is held, and is shed before its check.
        await using var binding = await new LeanServerTransport().BindAsync(new ServerTransportOptions("127.0.0.1", 0, 1024 * 1024, 1024 * 1024, 8,
            64 * 1024, new ServerLimits(16 * 1024, 0, 0, 0, 0, TimeSpan.FromSeconds(1), ExemptLoopback: true)) { MaxCallsInFlight = 1 },
            service, CancellationToken.None);
        await using var h2 = await RawH2.Connect(binding.Endpoint.Port);
        var longA = new string('a', 300);
        var longB = new string('b', 300);
        var longC = "c" + new string('x', 98) + "c";

        // 1: checked (its store goes back to the pool at its check), then held in its handler.
        await Call(h2, 1, "hold", ("x-call", "one"), ("x-long", longA), ("x-first", "1"));
        await service.Entered.Task.WaitAsync(Wait);
        // 2: reuses that store and is shed over the calls in flight, unchecked (its store goes back when it closes).
        await Call(h2, 3, "shed", ("x-call", "two"), ("x-long", longB), ("x-second", "2"), ("x-more", longB));
        var shed = await h2.TrailersOnly(3);
        Assert.Contains(("grpc-status", ((int)StatusCode.ResourceExhausted).ToString(System.Globalization.CultureInfo.InvariantCulture)), shed);
        service.Release();
        var (_, data1, trailers1) = await h2.Response(1);
        Assert.Equal("Forward:hold", TensorMessage.Parser.ParseFrom(data1.AsSpan(5)).Message);
        Assert.Equal([("grpc-status", "0")], trailers1);
        // 3: reuses the shed call's store; 4: the store its check returned, with no metadata of its own but x-call.
        await Call(h2, 5, "three", ("x-call", "three"), ("x-third", longC));
        var (_, data3, _) = await h2.Response(5);
        Assert.Equal("Forward:three", TensorMessage.Parser.ParseFrom(data3.AsSpan(5)).Message);
        await Call(h2, 7, "four", ("x-call", "four"));
        var (_, data4, _) = await h2.Response(7);
        Assert.Equal("Forward:four", TensorMessage.Parser.ParseFrom(data4.AsSpan(5)).Message);

        Assert.Equal([("x-call", "one"), ("x-long", longA), ("x-first", "1")], service.Seen["one"]);
        Assert.False(service.Seen.ContainsKey("two"));
        Assert.Equal([("x-call", "three"), ("x-third", longC)], service.Seen["three"]);
        Assert.Equal([("x-call", "four")], service.Seen["four"]);
    }
}

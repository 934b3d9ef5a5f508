using Bittensor.Core.Domain;
using Akka.Actor;
using Bittensor.Actors.Axon;
using Bittensor.Actors.Dendrite;
using Bittensor.Core.Crypto;
using Bittensor.Protocol;
using Bittensor.Protocol.Wire;
using Google.Protobuf;
using Grpc.Core;
using Xunit.Abstractions;

namespace Bittensor.Actors.Tests.Transport;

/// <summary>
/// One conformance suite for the peer transports: every test runs against the 2021 gRPC pair (Kestrel server, grpc-dotnet
/// client over loopback port 0) and against the in-memory twin, with the same axon behind both (same checks, same codes).
/// A transport that plugs in later (e.g. the HTTP synapse protocol) gets a subclass here.
/// </summary>
public abstract class TransportConformance : Akka.TestKit.Xunit2.TestKit
{
    private const int Dim = 8;
    private static readonly TimeSpan Wait = TimeSpan.FromSeconds(30);
    private static readonly Sr25519KeyPair Alice = SecretUri.ToSr25519("//Alice");
    private static readonly Sr25519KeyPair Bob = SecretUri.ToSr25519("//Bob");
    private readonly List<IDisposable> _connections = [];
    private readonly Dictionary<string, RequestAuth> _auth = new(StringComparer.Ordinal);

    protected TransportConformance(ITestOutputHelper output) : base("akka.loglevel = WARNING", output)
    {
    }

    /// <summary>The client side under test.</summary>
    protected abstract IClientTransport ClientTransport { get; }

    /// <summary>The server side under test.</summary>
    protected abstract IServerTransport ServerTransport { get; }

    [Fact]
    public async Task A_forward_round_trip_answers_the_models_representation()
    {
        var port = await Serve();
        var response = await Call(Connect(port), Alice, Tokens(Alice, 2, 3));

        Assert.Equal(ReturnCode.Success, response.ReturnCode);
        var outputs = TensorCodec.Decode(Assert.Single(response.Tensors));
        Assert.True(outputs.IsSuccess, outputs.Message);
        Assert.Equal([2L, 3L, Dim], outputs.Tensor.ShapeToArray());
        var values = outputs.Tensor.ToFloat32Array();
        Assert.Equal(EchoForward(DenseTensor.Int64([2, 3], [1, 2, 3, 4, 5, 6]), Dim).Floats, values);
    }

    [Fact]
    public async Task A_backward_round_trip_answers_a_gradient_shaped_like_the_inputs()
    {
        var port = await Serve();
        var request = Tokens(Alice, 1, 2);
        request.Tensors.Add(TensorCodec.ToTensor(Enumerable.Repeat(1f, 2 * Dim).ToArray(), [1, 2, Dim], Modality.Tensor));

        var response = await Call(Connect(port), Alice, request, BittensorMethod.Backward);

        Assert.Equal(ReturnCode.Success, response.ReturnCode);
        var grads = TensorCodec.Decode(Assert.Single(response.Tensors));
        Assert.Equal([1L, 2L], grads.Tensor.ShapeToArray());
    }

    [Fact]
    public async Task A_bad_signature_missing_headers_and_a_replay_are_Unauthenticated_and_the_server_keeps_serving()
    {
        var port = await Serve();
        var connection = Connect(port);
        var signed = await Signed(Alice);
        var tampered = new Metadata();
        foreach (var e in signed) tampered.Add(e.Key, e.Key == AuthHeaders.SignatureName ? e.Value[..^4] + "0000" : e.Value);

        var bad = await Assert.ThrowsAsync<RpcException>(() => Call(connection, tampered, Tokens(Alice)));
        var none = await Assert.ThrowsAsync<RpcException>(() => Call(connection, new Metadata(), Tokens(Alice)));
        Assert.Equal(ReturnCode.Success, (await Call(connection, signed, Tokens(Alice))).ReturnCode);
        var replay = await Assert.ThrowsAsync<RpcException>(() => Call(connection, signed, Tokens(Alice)));

        Assert.Equal(StatusCode.Unauthenticated, bad.StatusCode);
        Assert.Equal(StatusCode.Unauthenticated, none.StatusCode);
        Assert.Equal(StatusCode.Unauthenticated, replay.StatusCode);
        Assert.Equal(ReturnCode.Success, (await Call(connection, Alice, Tokens(Alice))).ReturnCode);
    }

    [Fact]
    public async Task Request_errors_answer_their_return_codes()
    {
        var port = await Serve();
        var c = Connect(port);
        var garbage = new TensorMessage { Version = 150, Hotkey = Alice.ToSs58() };
        garbage.Tensors.Add(new Tensor { Version = 150, Buffer = ByteString.CopyFrom(0xc1, 0xff, 0x00, 0x85, 0x13), Shape = { 2, 3 }, Dtype = DataType.Int64, Modality = Modality.Text });
        var old = await new RequestAuth(new KeyPairRequestSigner(Bob), version: 100).CreateHeadersAsync();

        Assert.Equal(ReturnCode.EmptyRequest, (await Call(c, Alice, new TensorMessage { Version = 150, Hotkey = Alice.ToSs58() })).ReturnCode);
        Assert.Equal(ReturnCode.InvalidRequest, (await Call(c, Alice, Tokens(Alice, 1, 2), BittensorMethod.Backward)).ReturnCode);
        Assert.Equal(ReturnCode.RequestShapeException, (await Call(c, Alice, TextRequest(Alice, [1, 2, 2], [1, 2, 3, 4]))).ReturnCode);
        Assert.Equal(ReturnCode.RequestDeserializationException, (await Call(c, Alice, garbage)).ReturnCode);
        Assert.Equal(ReturnCode.RequestIncompatibleVersion, (await Call(c, old, Tokens(Bob))).ReturnCode);
    }

    [Fact]
    public async Task Model_and_policy_outcomes_answer_their_return_codes()
    {
        var forwardOnly = new AxonHandlers((_, _) => throw new InvalidOperationException("model broke"));
        var port = await Serve(Settings() with { BlacklistMinStake = 1 }, forwardOnly);
        var axon = _axons[^1];
        axon.Tell(new AxonActor.UpdateStakes(new Dictionary<string, double> { [Alice.ToSs58()] = 5 }));
        await axon.Ask<AxonStatsSnapshot>(AxonActor.GetStats.Instance, Wait);
        var c = Connect(port);
        var backward = Tokens(Alice, 1, 2);
        backward.Tensors.Add(TensorCodec.ToTensor(new float[2 * Dim], [1, 2, Dim], Modality.Tensor));

        Assert.Equal(ReturnCode.SenderUnknown, (await Call(c, Bob, Tokens(Bob))).ReturnCode);
        Assert.Equal(ReturnCode.UnknownException, (await Call(c, Alice, Tokens(Alice))).ReturnCode);
        Assert.Equal(ReturnCode.NotImplemented, (await Call(c, Alice, backward, BittensorMethod.Backward)).ReturnCode);
    }

    [Fact]
    public async Task A_full_queue_answers_NucleusFull()
    {
        var (handlers, entered, gate) = Stuck();
        var port = await Serve(Settings() with { MaxWorkers = 1, QueueCapacity = 0 }, handlers);
        var c = Connect(port);
        try
        {
            var running = Call(c, Alice, Tokens(Alice));
            await entered.Task.WaitAsync(Wait);

            Assert.Equal(ReturnCode.NucleusFull, (await Call(c, Bob, Tokens(Bob))).ReturnCode);
            gate.TrySetResult();
            Assert.Equal(ReturnCode.Success, (await running).ReturnCode);
        }
        finally
        {
            gate.TrySetResult();
        }
    }

    [Fact]
    public async Task A_model_that_never_answers_within_the_axons_call_timeout_answers_NucleusTimeout()
    {
        var (handlers, _, gate) = Stuck();
        var port = await Serve(Settings() with { CallTimeout = TimeSpan.FromMilliseconds(200) }, handlers);

        Assert.Equal(ReturnCode.NucleusTimeout, (await Call(Connect(port), Alice, Tokens(Alice))).ReturnCode);
        gate.TrySetResult();
    }

    [Fact]
    public async Task The_callers_deadline_reaches_the_server()
    {
        var service = new BlockingService(answerAtOnce: true);
        await using var binding = await ServerTransport.BindAsync(Options(), service, CancellationToken.None);
        var before = DateTime.UtcNow;

        await Connect(binding.Endpoint.Port).CallAsync(BittensorMethod.Forward, Tokens(Alice), new Metadata(), before.Add(Wait), CancellationToken.None);

        var seen = await service.Entered.WaitAsync(Wait);
        Assert.NotEqual(DateTime.MaxValue, seen.Deadline);
        // The wire carries the deadline as a relative grpc-timeout, so the server's copy is later by the transit time:
        // check it is the caller's (not the default none, not some other value), not how fast it travelled.
        Assert.True(seen.Deadline > before && seen.Deadline < before.Add(Wait * 2), $"server deadline {seen.Deadline:O}, sent {before.Add(Wait):O}");
    }

    [Fact]
    public async Task A_call_past_its_deadline_ends_with_DeadlineExceeded()
    {
        var service = new BlockingService();
        await using var binding = await ServerTransport.BindAsync(Options(), service, CancellationToken.None);

        var error = await Assert.ThrowsAsync<RpcException>(() => Connect(binding.Endpoint.Port)
            .CallAsync(BittensorMethod.Forward, Tokens(Alice), new Metadata(), DateTime.UtcNow.AddMilliseconds(300), CancellationToken.None));

        Assert.Equal(StatusCode.DeadlineExceeded, error.StatusCode);
    }

    [Fact]
    public async Task A_cancelled_call_ends_with_Cancelled_and_the_server_sees_it()
    {
        var service = new BlockingService();
        await using var binding = await ServerTransport.BindAsync(Options(), service, CancellationToken.None);
        var c = Connect(binding.Endpoint.Port);
        using var cts = new CancellationTokenSource();

        var call = c.CallAsync(BittensorMethod.Forward, Tokens(Alice), new Metadata(), DateTime.UtcNow.Add(Wait), cts.Token);
        await service.Entered.WaitAsync(Wait);
        await cts.CancelAsync();
        var error = await Assert.ThrowsAsync<RpcException>(() => call);

        Assert.Equal(StatusCode.Cancelled, error.StatusCode);
        await service.SawCancellation.WaitAsync(Wait);
    }

    [Fact]
    public async Task Messages_over_the_size_limits_are_ResourceExhausted_and_the_server_keeps_serving()
    {
        var port = await Serve(Settings() with { MaxMessageSize = 64 * 1024, NetworkDim = 1024 });
        var c = Connect(port);
        var small = Connect(port, maxSend: 1024);
        var shortReads = Connect(port, maxReceive: 1024);

        var tooBigForServer = await Assert.ThrowsAsync<RpcException>(() => Call(c, Alice, Tokens(Alice, 1, 16 * 1024)));
        var tooBigToSend = await Assert.ThrowsAsync<RpcException>(() => Call(small, Alice, Tokens(Alice, 1, 1024)));
        var tooBigToReceive = await Assert.ThrowsAsync<RpcException>(() => Call(shortReads, Alice, Tokens(Alice, 1, 4)));

        Assert.Equal(StatusCode.ResourceExhausted, tooBigForServer.StatusCode);
        Assert.Equal(StatusCode.ResourceExhausted, tooBigToSend.StatusCode);
        Assert.Equal(StatusCode.ResourceExhausted, tooBigToReceive.StatusCode);
        Assert.Equal(ReturnCode.Success, (await Call(c, Alice, Tokens(Alice))).ReturnCode);
    }

    [Fact]
    public async Task Concurrent_calls_on_one_connection_each_get_their_own_answer()
    {
        // Admission by waiting off (the lean server): 24 calls on one connection can arrive in one read, and an engaged rule
        // admits limits.admit_per_read (12) of a read and sheds the rest NucleusFull. It engages on the process's CPU time,
        // which in a test host is every parallel test's (AxonServiceSpec's 32 concurrent calls were shed so in a one-core run).
        var port = await Serve(Settings() with { MaxWorkers = 4, QueueCapacity = 64, TargetWait = TimeSpan.Zero });
        var c = Connect(port);
        var callers = Enumerable.Range(0, 24).Select(i => SecretUri.ToSr25519($"//Conformance{i}")).ToArray();

        var answers = await Task.WhenAll(callers.Select((key, i) => Call(c, key, TextRequest(key, [1, 2], [i + 1, i + 100]))));

        for (var i = 0; i < callers.Length; i++)
        {
            Assert.True(answers[i].ReturnCode == ReturnCode.Success, $"call {i}: {answers[i].ReturnCode} {answers[i].Message}");
            var first = TensorCodec.Decode(answers[i].Tensors[0]).Tensor.ToFloat32Array()[0];
            Assert.Equal(EchoForward(DenseTensor.Int64([1, 2], [i + 1, i + 100]), Dim).Floats![0], first);
        }
        foreach (var k in callers) k.Dispose();
    }

    [Fact]
    public async Task A_stopped_server_is_Unavailable()
    {
        var port = await Serve();
        var c = Connect(port);
        Assert.Equal(ReturnCode.Success, (await Call(c, Alice, Tokens(Alice))).ReturnCode);
        await _axons[^1].Ask<Akka.Done>(AxonActor.Unbind.Instance, Wait);

        var error = await Assert.ThrowsAsync<RpcException>(() => Call(Connect(port), Alice, Tokens(Alice)));

        Assert.Equal(StatusCode.Unavailable, error.StatusCode);
    }

    [Fact]
    public async Task A_dendrite_and_an_axon_talk_through_the_transport()
    {
        var port = await Serve();
        var dendrite = new Bittensor.Actors.Dendrite.Dendrite(Sys, new KeyPairRequestSigner(Alice), DendriteSettings.Default with { NetworkDim = Dim, Timeout = Wait },
            new DendriteOptions { Transport = ClientTransport });
        var up = new EndpointInfo("up", "127.0.0.1", port);

        var answered = await dendrite.ForwardText([up], new long[1, 3] { { 7, 8, 9 } });
        await _axons[^1].Ask<Akka.Done>(AxonActor.Unbind.Instance, Wait);
        var down = await dendrite.ForwardText([up with { Hotkey = "down" }], new long[1, 3] { { 7, 8, 9 } });

        Assert.Equal(ReturnCode.Success, answered[0].Code);
        Assert.Equal(EchoForward(DenseTensor.Int64([1, 3], [7, 8, 9]), Dim).Floats, answered[0].Tensor.Floats);
        Assert.Equal(ReturnCode.Unavailable, down[0].Code);
    }

    private readonly List<IActorRef> _axons = [];

    private static AxonSettings Settings() => AxonSettings.Default with
    {
        Ip = "127.0.0.1",
        Port = 0,
        MaxWorkers = 2,
        QueueCapacity = 16,
        CallTimeout = Wait,
        NetworkDim = Dim,
        MaxMessageSize = 1024 * 1024,
    };

    /// <summary>The suite's own model: out[b,s,d] = token·1e-3 + d·1e-6; backward answers zeros shaped like the inputs.</summary>
    private static AxonHandlers Echo(int dim) => new(
        (r, _) => Task.FromResult(ModelResponse.Ok(EchoForward(r.Inputs, dim))),
        (r, _) => Task.FromResult(ModelResponse.Ok(DenseTensor.Float32([.. r.Inputs.Shape], new float[r.Inputs.Shape.Aggregate(1L, (a, b) => a * b)]))));

    private static DenseTensor EchoForward(DenseTensor inputs, int dim)
    {
        var (batch, seq) = (inputs.Shape[0], inputs.Shape[1]);
        var values = new float[batch * seq * dim];
        for (var i = 0; i < batch * seq; i++)
            for (var d = 0; d < dim; d++)
                values[(i * dim) + d] = (inputs.Longs![i] * 1e-3f) + (d * 1e-6f);
        return DenseTensor.Float32([batch, seq, dim], values);
    }

    private static ServerTransportOptions Options() => new("127.0.0.1", 0, 1024 * 1024, 1024 * 1024, 100);

    private async Task<int> Serve(AxonSettings? settings = null, AxonHandlers? handlers = null)
    {
        var s = settings ?? Settings();
        var axon = Sys.ActorOf(AxonActor.Props(s, handlers ?? Echo(s.NetworkDim), new AxonOptions { Transport = ServerTransport }));
        _axons.Add(axon);
        return (await axon.Ask<AxonActor.Bound>(AxonActor.GetBinding.Instance, Wait)).Endpoint.Port;
    }

    private IPeerConnection Connect(int port, int? maxSend = null, int? maxReceive = null)
    {
        var connection = ClientTransport.Connect("127.0.0.1", port,
            TestChannel.Options with { MaxSendMessageSize = maxSend, MaxReceiveMessageSize = maxReceive });
        _connections.Add(connection);
        return connection;
    }

    private async Task<Metadata> Signed(Sr25519KeyPair key)
    {
        var ss58 = key.ToSs58();
        if (!_auth.TryGetValue(ss58, out var auth)) _auth[ss58] = auth = new RequestAuth(new KeyPairRequestSigner(key));
        return await auth.CreateHeadersAsync();
    }

    private async Task<TensorMessage> Call(IPeerConnection c, Sr25519KeyPair caller, TensorMessage request, BittensorMethod method = BittensorMethod.Forward) =>
        await Call(c, await Signed(caller), request, method);

    private static Task<TensorMessage> Call(IPeerConnection c, Metadata headers, TensorMessage request, BittensorMethod method = BittensorMethod.Forward) =>
        c.CallAsync(method, request, headers, DateTime.UtcNow.Add(Wait), CancellationToken.None);

    private static TensorMessage TextRequest(Sr25519KeyPair caller, long[] shape, long[] tokens)
    {
        var m = new TensorMessage { Version = ProtocolVersion.Current, Hotkey = caller.ToSs58() };
        m.Tensors.Add(TensorCodec.ToTensor(tokens, shape, Modality.Text));
        return m;
    }

    private static TensorMessage Tokens(Sr25519KeyPair caller, int batch = 2, int seq = 3) =>
        TextRequest(caller, [batch, seq], Enumerable.Range(1, batch * seq).Select(i => (long)i).ToArray());

    private static (AxonHandlers Handlers, TaskCompletionSource Entered, TaskCompletionSource Gate) Stuck()
    {
        var gate = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var entered = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var handlers = new AxonHandlers(async (r, ct) =>
        {
            entered.TrySetResult();
            await gate.Task.WaitAsync(ct);
            return ModelResponse.Ok(EchoForward(r.Inputs, Dim));
        });
        return (handlers, entered, gate);
    }

    /// <summary>A service that reports the call it got and then answers at once, or waits for the call's token.</summary>
    private sealed class BlockingService(bool answerAtOnce = false) : IBittensorService
    {
        private readonly TaskCompletionSource<InboundCall> _entered = new(TaskCreationOptions.RunContinuationsAsynchronously);
        private readonly TaskCompletionSource _cancelled = new(TaskCreationOptions.RunContinuationsAsynchronously);

        public Task<InboundCall> Entered => _entered.Task;

        public Task SawCancellation => _cancelled.Task;

        public async Task<TensorMessage> HandleAsync(BittensorMethod method, TensorMessage request, InboundCall call)
        {
            _entered.TrySetResult(call);
            if (answerAtOnce) return new TensorMessage { ReturnCode = ReturnCode.Success };
            try
            {
                await Task.Delay(Timeout.Infinite, call.CancellationToken);
            }
            finally
            {
                _cancelled.TrySetResult();
            }
            return new TensorMessage();
        }
    }

    protected override void AfterAll()
    {
        foreach (var c in _connections) c.Dispose();
        base.AfterAll();
    }
}

/// <summary>The suite over the 2021 gRPC transports: Kestrel (h2c) and grpc-dotnet over loopback.</summary>
public sealed class GrpcTransportConformance(ITestOutputHelper output) : TransportConformance(output)
{
    protected override IClientTransport ClientTransport => GrpcClientTransport.Instance;

    protected override IServerTransport ServerTransport { get; } = new KestrelServerTransport();
}

/// <summary>The suite over the lean HTTP/2 server (LeanServerTransport) and grpc-dotnet over loopback.</summary>
public sealed class LeanTransportConformance(ITestOutputHelper output) : TransportConformance(output)
{
    protected override IClientTransport ClientTransport => GrpcClientTransport.Instance;

    protected override IServerTransport ServerTransport { get; } = new LeanServerTransport();
}

/// <summary>The suite over the lean HTTP/2 client (LeanClientTransport) and Kestrel (h2c) over loopback.</summary>
public sealed class LeanClientKestrelConformance(ITestOutputHelper output) : TransportConformance(output)
{
    protected override IClientTransport ClientTransport => LeanClientTransport.Instance;

    protected override IServerTransport ServerTransport { get; } = new KestrelServerTransport();
}

/// <summary>The suite over the lean HTTP/2 client and the lean HTTP/2 server over loopback.</summary>
public sealed class LeanClientLeanServerConformance(ITestOutputHelper output) : TransportConformance(output)
{
    protected override IClientTransport ClientTransport => LeanClientTransport.Instance;

    protected override IServerTransport ServerTransport { get; } = new LeanServerTransport();
}

/// <summary>
/// The lean client with its connections on its own I/O loop (<c>bittensor.dendrite.io = loop</c>): the options every
/// connection is made with carry <see cref="BittensorChannelOptions.ClientIoLoop"/>.
/// </summary>
internal sealed class LoopClientTransport : IClientTransport
{
    public static readonly LoopClientTransport Instance = new();

    public IPeerConnection Connect(string host, int port, BittensorChannelOptions options) =>
        LeanClientTransport.Instance.Connect(host, port, options with { ClientIoLoop = true });
}

/// <summary>The suite over the lean HTTP/2 client on its own I/O loop and Kestrel (h2c) over loopback.</summary>
public sealed class LeanClientLoopKestrelConformance(ITestOutputHelper output) : TransportConformance(output)
{
    protected override IClientTransport ClientTransport => LoopClientTransport.Instance;

    protected override IServerTransport ServerTransport { get; } = new KestrelServerTransport();
}

/// <summary>The suite over the lean HTTP/2 client on its own I/O loop and the lean HTTP/2 server over loopback.</summary>
public sealed class LeanClientLoopLeanServerConformance(ITestOutputHelper output) : TransportConformance(output)
{
    protected override IClientTransport ClientTransport => LoopClientTransport.Instance;

    protected override IServerTransport ServerTransport { get; } = new LeanServerTransport();
}

/// <summary>
/// The lean client on its own I/O loop with its writes queued in outboxes the loop's thread sends
/// (<c>bittensor.dendrite.io = batch</c>): <see cref="BittensorChannelOptions.ClientIoBatch"/> on every connection.
/// </summary>
internal sealed class BatchClientTransport : IClientTransport
{
    public static readonly BatchClientTransport Instance = new();

    public IPeerConnection Connect(string host, int port, BittensorChannelOptions options) =>
        LeanClientTransport.Instance.Connect(host, port, options with { ClientIoLoop = true, ClientIoBatch = true });
}

/// <summary>The suite over the lean HTTP/2 client with batched sends and Kestrel (h2c) over loopback.</summary>
public sealed class LeanClientBatchKestrelConformance(ITestOutputHelper output) : TransportConformance(output)
{
    protected override IClientTransport ClientTransport => BatchClientTransport.Instance;

    protected override IServerTransport ServerTransport { get; } = new KestrelServerTransport();
}

/// <summary>The suite over the lean HTTP/2 client with batched sends and the lean HTTP/2 server over loopback.</summary>
public sealed class LeanClientBatchLeanServerConformance(ITestOutputHelper output) : TransportConformance(output)
{
    protected override IClientTransport ClientTransport => BatchClientTransport.Instance;

    protected override IServerTransport ServerTransport { get; } = new LeanServerTransport();
}

/// <summary>The suite over the in-memory twin.</summary>
public sealed class InMemoryTransportConformance(ITestOutputHelper output) : TransportConformance(output)
{
    private readonly InMemoryTransport _network = new();

    protected override IClientTransport ClientTransport => _network;

    protected override IServerTransport ServerTransport => _network;
}

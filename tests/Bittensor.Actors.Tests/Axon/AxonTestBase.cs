using Akka.Actor;
using Bittensor.Actors.Axon;
using Bittensor.Core.Crypto;
using Bittensor.Protocol;
using Bittensor.Protocol.Wire;
using Grpc.Core;
using Grpc.Net.Client;
using WireClient = Bittensor.Protocol.Wire.Bittensor.BittensorClient;
using Bittensor.Core.Domain;
using Bittensor.Neurons.Demo;

namespace Bittensor.Actors.Tests.Axon;

/// <summary>Real axons on loopback port 0 with real sr25519 signatures; raw gRPC clients for hand-made requests.</summary>
public abstract class AxonTestBase : Akka.TestKit.Xunit2.TestKit
{
    protected static readonly Sr25519KeyPair Alice = SecretUri.ToSr25519("//Alice");
    protected static readonly Sr25519KeyPair Bob = SecretUri.ToSr25519("//Bob");
    protected static readonly Sr25519KeyPair Charlie = SecretUri.ToSr25519("//Charlie");
    protected static readonly Sr25519KeyPair Dave = SecretUri.ToSr25519("//Dave");
    protected static readonly Sr25519KeyPair Eve = SecretUri.ToSr25519("//Eve");
    protected static readonly TimeSpan Wait = TimeSpan.FromSeconds(20);

    private readonly List<GrpcChannel> _channels = [];
    private readonly Dictionary<string, RequestAuth> _auth = new(StringComparer.Ordinal);

    protected AxonTestBase(Xunit.Abstractions.ITestOutputHelper output) : base("akka.loglevel = WARNING\n" + TestKitWaits.Hocon, output)
    {
    }

    protected static AxonSettings Loopback(int workers = 4, int queue = 64, TimeSpan? callTimeout = null, int networkDim = 1024) =>
        AxonSettings.Default with
        {
            Ip = "127.0.0.1",
            Port = 0,
            MaxWorkers = workers,
            QueueCapacity = queue,
            CallTimeout = callTimeout ?? TimeSpan.FromSeconds(20),
            NetworkDim = networkDim,
            MaxMessageSize = 8 * 1024 * 1024,
            // Admission by waiting stays as shipped (on, 2 ms, since session 18): it counts only the process's own CPU
            // time as waiting, so other processes' time slices do not engage it, but in a test host that CPU is every
            // parallel test's: a test that sends more than limits.admit_per_read (12) calls at once on one connection
            // turns it off (TargetWait = 0), or an engaged rule sheds the rest of the read. The tests of the rule drive
            // it on a clock of their own (LeanCheapChecksSpec, Protocol's WaitAdmissionTests).
        };

    protected Task<(IActorRef Axon, int Port)> StartAxon(AxonSettings settings, AxonHandlers handlers, AxonOptions? options = null) =>
        StartAxon(AxonActor.Props(settings, handlers, options));

    protected async Task<(IActorRef Axon, int Port)> StartAxon(Props props)
    {
        var errors = CreateTestProbe();
        Sys.EventStream.Subscribe(errors, typeof(Akka.Event.Error));
        var axon = Sys.ActorOf(props);
        AxonActor.Bound bound;
        try
        {
            // A bound, not a timing: Kestrel's start took over 5 s in a full suite run at load 47.
            bound = await axon.Ask<AxonActor.Bound>(AxonActor.GetBinding.Instance, TimeSpan.FromSeconds(60));
        }
        catch (AskTimeoutException)
        {
            var e = errors.ReceiveOne(TimeSpan.FromSeconds(1)) as Akka.Event.Error;
            throw new InvalidOperationException($"axon did not bind: {e?.Cause}");
        }
        return (axon, bound.Endpoint.Port);
    }

    protected WireClient RawClient(int port)
    {
        var channel = GrpcChannel.ForAddress($"http://127.0.0.1:{port}", new GrpcChannelOptions { MaxSendMessageSize = null, MaxReceiveMessageSize = null });
        _channels.Add(channel);
        return new WireClient(channel);
    }

    /// <summary>
    /// A client whose connections come from <paramref name="local"/> (e.g. 127.0.0.2: Linux routes all of 127/8 to
    /// loopback), to the axon on 127.0.0.1:<paramref name="port"/>: a second caller address on one machine.
    /// </summary>
    protected WireClient RawClientFrom(int port, System.Net.IPAddress local)
    {
        var handler = new SocketsHttpHandler
        {
            ConnectCallback = async (context, ct) =>
            {
                var socket = new System.Net.Sockets.Socket(local.AddressFamily, System.Net.Sockets.SocketType.Stream, System.Net.Sockets.ProtocolType.Tcp)
                {
                    NoDelay = true,
                };
                try
                {
                    socket.Bind(new System.Net.IPEndPoint(local, 0));
                    await socket.ConnectAsync(context.DnsEndPoint, ct);
                    return new System.Net.Sockets.NetworkStream(socket, ownsSocket: true);
                }
                catch
                {
                    socket.Dispose();
                    throw;
                }
            },
        };
        var channel = GrpcChannel.ForAddress($"http://127.0.0.1:{port}",
            new GrpcChannelOptions { HttpHandler = handler, DisposeHttpClient = true, MaxSendMessageSize = null, MaxReceiveMessageSize = null });
        _channels.Add(channel);
        return new WireClient(channel);
    }

    /// <summary>Fresh, correctly signed headers; one RequestAuth per key so nonces keep rising by 1 ms.</summary>
    protected async Task<Metadata> Signed(Sr25519KeyPair key)
    {
        var ss58 = key.ToSs58();
        if (!_auth.TryGetValue(ss58, out var auth)) _auth[ss58] = auth = new RequestAuth(new KeyPairRequestSigner(key));
        return await auth.CreateHeadersAsync();
    }

    protected static TensorMessage TextRequest(Sr25519KeyPair caller, long[] shape, long[] tokens)
    {
        var m = new TensorMessage { Version = ProtocolVersion.Current, Hotkey = caller.ToSs58() };
        m.Tensors.Add(TensorCodec.ToTensor(tokens, shape, Modality.Text));
        return m;
    }

    protected static TensorMessage Tokens(Sr25519KeyPair caller, int batch = 2, int seq = 3) =>
        TextRequest(caller, [batch, seq], Enumerable.Range(1, batch * seq).Select(i => (long)i).ToArray());

    /// <summary>The model host of an axon built from handlers (its child <c>model</c>).</summary>
    protected async Task<IActorRef> ModelHostOf(IActorRef axon) => await Sys.ActorSelection(axon.Path / "model").ResolveOne(Wait);

    /// <summary>Waits until the model host holds <paramref name="waiting"/> requests in its queue.</summary>
    protected async Task AwaitQueued(IActorRef host, int waiting) =>
        await AwaitAssertAsync(async () => Assert.Equal(waiting, (await host.Ask<Bittensor.Actors.ModelHost.QueueStatus>(Bittensor.Actors.ModelHost.GetQueueStatus.Instance, Wait)).Waiting));

    protected async Task<TensorMessage> Forward(WireClient client, Sr25519KeyPair caller, TensorMessage request) =>
        await client.ForwardAsync(request, await Signed(caller), DateTime.UtcNow.AddSeconds(20));

    protected async Task AssertAnswersGoodCall(WireClient client, Sr25519KeyPair caller)
    {
        var ok = await Forward(client, caller, Tokens(caller));
        Assert.Equal(ReturnCode.Success, ok.ReturnCode);
    }

    /// <summary>A forward model that waits on a gate the test opens, recording the order callers were served in.</summary>
    protected sealed class GatedModel
    {
        private readonly TaskCompletionSource _gate = new(TaskCreationOptions.RunContinuationsAsynchronously);
        private readonly TaskCompletionSource _firstEntered = new(TaskCreationOptions.RunContinuationsAsynchronously);
        private readonly List<string> _served = [];

        public Task FirstEntered => _firstEntered.Task;

        public IReadOnlyList<string> Served
        {
            get { lock (_served) return [.. _served]; }
        }

        public void Open() => _gate.TrySetResult();

        public AxonHandlers Handlers(int networkDim) => new(async (r, ct) =>
        {
            lock (_served) _served.Add(r.CallerHotkey);
            _firstEntered.TrySetResult();
            await _gate.Task.WaitAsync(ct);
            return ModelResponse.Ok(DemoModels.EchoForward(r.Inputs, networkDim));
        });
    }

    protected override void AfterAll()
    {
        foreach (var c in _channels) c.Dispose();
        base.AfterAll();
    }
}

using System.Diagnostics;
using System.Runtime.InteropServices;
using Akka.Actor;
using Bittensor.Actors.Metagraph;
using Bittensor.Actors.ModelHost;
using Bittensor.Core.Domain;
using Bittensor.Protocol;
using Bittensor.Protocol.Wire;
using Grpc.Core;

namespace Bittensor.Actors.Axon;

/// <summary>
/// The stakes the axon knows (TAO per hotkey SS58) and whether any snapshot arrived yet; swapped atomically on each
/// snapshot (written by the AxonActor, read lock-free on gRPC threads).
/// </summary>
internal sealed class StakeBook
{
    private volatile Book _book = new(new Dictionary<string, double>(StringComparer.Ordinal), Known: false, Block: 0);

    /// <summary>Replaces the stakes with a metagraph snapshot: every registered hotkey with its stake.</summary>
    public void Update(MetagraphSnapshot snapshot)
    {
        var hotkeys = snapshot.Hotkeys;
        var stakes = new Dictionary<string, double>(hotkeys.Length, StringComparer.Ordinal);
        for (var i = 0; i < hotkeys.Length; i++) stakes[hotkeys[i]] = snapshot.S[i];
        _book = new Book(stakes, Known: true, snapshot.Block);
    }

    /// <summary>Replaces the stakes with a hand-made table (e.g. <c>btcli axon serve --axon.stakes</c>); listed hotkeys count as registered.</summary>
    public void Update(IReadOnlyDictionary<string, double> stakes) =>
        _book = new Book(new Dictionary<string, double>(stakes, StringComparer.Ordinal), Known: true, _book.Block);

    /// <summary>True once a snapshot arrived.</summary>
    public bool Known => _book.Known;

    /// <summary>Block of the latest metagraph snapshot (0 before the first or for hand-made tables).</summary>
    public ulong Block => _book.Block;

    /// <summary>How many hotkeys the latest snapshot holds.</summary>
    public int Count => _book.Stakes.Count;

    /// <summary>The caller's stake (0 when unknown) and whether it is registered in the latest snapshot.</summary>
    public (double Stake, bool Registered) Lookup(string hotkey) =>
        _book.Stakes.TryGetValue(hotkey, out var s) ? (s, true) : (0.0, false);

    private sealed record Book(Dictionary<string, double> Stakes, bool Known, ulong Block);
}

/// <summary>
/// The axon's <c>Bittensor</c> service, independent of the transport that delivers the calls (Kestrel gRPC or its
/// in-memory twin): cheap checks, authentication, version and decoding happen here on the transport's
/// thread; the model work goes straight to the model host (one Tell; its queue is the axon's only queue). Never throws except the deliberate UNAUTHENTICATED
/// status for bad signatures, replays and blacklisted shapes.
/// </summary>
internal sealed class AxonService : IBittensorService
{
    private readonly AxonSettings _settings;
    private readonly IRequestAuthenticator _auth;
    private readonly ITensorWireCodec _codec;
    private readonly IActorRef _host;
    private readonly AxonReplySink _sink;
    private readonly StakeBook _stakes;
    private readonly AxonStats _stats;
    private readonly Action<AxonCallRecord>? _observer;
    private readonly Func<string, bool> _preVerifyBlacklist;
    private readonly string _ownHotkey;
    private readonly TimeProvider _time;
    private readonly AxonHandlers? _inline;
    private readonly int _inlineLimit;
    private int _inlineRunning;
    private volatile string? _warmUpCaller;
    private int _warmUpAnswered;

    /// <summary>
    /// The throwaway hotkey of the axon's own warm-up call (<see cref="AxonWarmUp"/>): its calls skip the stake rules, are
    /// answered with zeros without reaching the model, and are not recorded (stats, metrics, the per-call callback).
    /// Set once, before the call; a key only this process holds, so no other caller can be taken for it.
    /// </summary>
    internal void ExpectWarmUp(string hotkey) => _warmUpCaller = hotkey;

    /// <summary>How many warm-up calls were answered past the model step (tests: the warm-up went the whole serving path).</summary>
    internal int WarmUpAnswered => Volatile.Read(ref _warmUpAnswered);

    /// <summary>How many of the warm-up's calls were shed as a rehearsal of the shed path (tests).</summary>
    internal int WarmUpShed => Volatile.Read(ref _warmUpShed);

    private int _warmUpShed;

    private bool IsWarmUp(string caller) => _warmUpCaller is { } w && string.Equals(caller, w, StringComparison.Ordinal);

    /// <summary>
    /// A service over <paramref name="host"/>; <paramref name="inline"/> is the axon's own
    /// <see cref="AxonHandlers.Inline"/> delegates (null otherwise): while fewer than max_workers of them
    /// run, a call runs them itself, on its own thread, instead of through the model host's mailbox (which would run
    /// them at once on its thread too: such calls never wait in the host's queue). No hop, no reply task per call.
    /// Beyond max_workers at once, calls go to the host as before.
    /// </summary>
    public AxonService(AxonSettings settings, IRequestAuthenticator auth, ITensorWireCodec codec, IActorRef host, AxonReplySink sink,
        StakeBook stakes, AxonStats stats, AxonOptions options, AxonHandlers? inline = null)
    {
        _inline = inline is { Inline: true } ? inline : null;
        _inlineLimit = settings.MaxWorkers;
        _settings = settings;
        _auth = auth;
        _codec = codec;
        _host = host;
        _sink = sink;
        _stakes = stakes;
        _stats = stats;
        _observer = options.OnCall;
        _preVerifyBlacklist = options.PreVerifyBlacklist ?? LooksLikeSs58;
        _ownHotkey = options.Hotkey;
        _time = options.Time ?? TimeProvider.System;
    }

    public Task<TensorMessage> HandleAsync(BittensorMethod method, TensorMessage request, InboundCall call) =>
        Handle(method == BittensorMethod.Backward, request, call);

    /// <summary>
    /// Steps 1–3 from the headers alone (the transports run this before reading the body): SS58 shape, auth header,
    /// version, nonce window, signature, nonce (recorded, durable), then the stake/registration blacklist. A refusal
    /// or an early answer is recorded here (0 bytes in: the body was not read).
    /// </summary>
    public ValueTask<HeaderDecision> CheckHeadersAsync(BittensorMethod method, Metadata headers, CancellationToken cancellationToken) =>
        CheckHeadersAsync(method, headers, null, cancellationToken);

    /// <summary>As <see cref="CheckHeadersAsync(BittensorMethod, Metadata, CancellationToken)"/> for a call from <paramref name="peer"/>
    /// (a failed signature holds its hotkey for calls from that address only: auth.failed_signature_hold).</summary>
    public async ValueTask<HeaderDecision> CheckHeadersAsync(BittensorMethod method, Metadata headers, System.Net.IPAddress? peer, CancellationToken cancellationToken)
    {
        var started = Stopwatch.GetTimestamp();
        var name = method == BittensorMethod.Backward ? "Backward" : "Forward";
        Gate gate;
        try
        {
            gate = await Admit(headers, peer).ConfigureAwait(false);
        }
        catch (Exception e)
        {
            gate = new Gate(null, "", null, Answer(ReturnCode.UnknownException, $"axon internal error ({e.GetType().Name})"), false);
        }
        if (gate.Refusal is { } reason)
        {
            Record(name, gate.Caller, Answer(ReturnCode.Unauthenticated, reason), 0, started, null, verified: false);
            return HeaderDecision.Refuse(new Grpc.Core.Status(StatusCode.Unauthenticated, reason));
        }
        if (gate.Response is { } answer)
        {
            Record(name, gate.Caller, answer, 0, started, null, gate.Verified);
            return HeaderDecision.Reply(answer);
        }
        return HeaderDecision.Proceed(gate.Admitted);
    }

    /// <summary>
    /// A call that came while the transport held <c>limits.calls_in_flight</c> others: answered NucleusFull (a normal gRPC
    /// answer with the 2021 return code, which 2021 clients count as NucleusFull; a gRPC status would reach them as
    /// UnknownException) from its headers, unchecked, its body unread. Counted as a call (caller "unverified": its
    /// signature was not checked) and in <c>bittensor.axon.shed</c>.
    /// </summary>
    public HeaderDecision Overloaded(BittensorMethod method, int limit) => Overloaded(method, limit, rehearsal: false);

    /// <summary>
    /// As <see cref="Overloaded(BittensorMethod, int)"/>; a <paramref name="rehearsal"/> (the warm-up's own shed call,
    /// <see cref="AxonWarmUp"/>) is answered the same and counted nowhere (<see cref="WarmUpShed"/> only).
    /// </summary>
    public HeaderDecision Overloaded(BittensorMethod method, int limit, bool rehearsal)
    {
        var started = Stopwatch.GetTimestamp();
        var answer = Answer(ReturnCode.NucleusFull, _shedMessage ??= $"this axon holds its limit of {limit} calls in flight (limits.calls_in_flight); try again later");
        if (rehearsal) Interlocked.Increment(ref _warmUpShed);
        else
        {
            Record(method == BittensorMethod.Backward ? "Backward" : "Forward", AxonStats.Unverified, answer, 0, started, null, verified: false,
                shed: AxonStats.ShedCallsInFlight);
        }
        return HeaderDecision.Reply(answer);
    }

    private string? _shedMessage;

    /// <summary>
    /// A call shed by admission by waiting (the lean transport: calls waited over <c>limits.target_wait</c> before the
    /// axon read them, for <c>limits.target_wait_interval</c>): answered NucleusFull from its headers, unchecked, its body
    /// unread, as <see cref="Overloaded(BittensorMethod, int)"/>; counted in <c>bittensor.axon.shed</c> with reason <c>target_wait</c>.
    /// </summary>
    public HeaderDecision Delayed(BittensorMethod method, TimeSpan target) => Delayed(method, target, rehearsal: false);

    /// <summary>As <see cref="Delayed(BittensorMethod, TimeSpan)"/>; a <paramref name="rehearsal"/> as in <see cref="Overloaded(BittensorMethod, int, bool)"/>.</summary>
    public HeaderDecision Delayed(BittensorMethod method, TimeSpan target, bool rehearsal)
    {
        var started = Stopwatch.GetTimestamp();
        var answer = Answer(ReturnCode.NucleusFull, _delayedMessage ??=
            $"calls wait longer than this axon's target of {target.TotalMilliseconds:0.###} ms (limits.target_wait); try again later");
        if (rehearsal) Interlocked.Increment(ref _warmUpShed);
        else
        {
            Record(method == BittensorMethod.Backward ? "Backward" : "Forward", AxonStats.Unverified, answer, 0, started, null, verified: false,
                shed: AxonStats.ShedTargetWait);
        }
        return HeaderDecision.Reply(answer);
    }

    private string? _delayedMessage;

    /// <summary>A refusal of the transport's own (rate, size, connection caps, Kestrel limits): counted in the axon's metrics.</summary>
    public void OnRefused(TransportRefusal refusal) => _stats.RecordRefused(refusal);

    /// <summary>The caller as the header checks admitted it (handed from <see cref="CheckHeadersAsync(BittensorMethod, Metadata, System.Net.IPAddress, CancellationToken)"/> to the body stage).</summary>
    internal sealed record Admitted(string Hotkey, double Stake);

    /// <summary>Outcome of steps 1–3: admitted, refused (UNAUTHENTICATED with a reason) or answered with a code.</summary>
    private readonly record struct Gate(Admitted? Admitted, string Caller, string? Refusal, TensorMessage? Response, bool Verified);

    /// <summary>The default pre-verify check: the claimed hotkey has the shape of an SS58 address (no decoding).</summary>
    internal static bool LooksLikeSs58(string hotkey)
    {
        if (hotkey.Length is < 46 or > 48) return false;
        foreach (var c in hotkey)
        {
            // Base58 alphabet: no 0, O, I, l.
            var ok = c is (>= '1' and <= '9') or (>= 'A' and <= 'H') or (>= 'J' and <= 'N') or (>= 'P' and <= 'Z')
                or (>= 'a' and <= 'k') or (>= 'm' and <= 'z');
            if (!ok) return false;
        }
        return true;
    }

    /// <summary>The hotkey claimed in <c>bittensor-signature</c> (middle part of nonce<c>bitxx</c>ss58<c>bitxx</c>sig), or null.</summary>
    internal static string? ClaimedHotkey(Metadata headers, AxonStats? known = null)
    {
        var value = headers.GetValue("bittensor-signature");
        if (value is null) return null;
        var first = value.IndexOf("bitxx", StringComparison.Ordinal);
        if (first < 0) return null;
        var second = value.IndexOf("bitxx", first + 5, StringComparison.Ordinal);
        if (second < 0) return null;
        var claimed = value.AsSpan()[(first + 5)..second];
        // A caller seen before: the string its calls are recorded under, not a new one per call.
        return known?.KnownCaller(claimed) ?? claimed.ToString();
    }

    private async ValueTask<Gate> Admit(Metadata headers, System.Net.IPAddress? peer)
    {
        // 1. Cheap pre-verify blacklist: refuse malformed claims before spending a signature check on them.
        var claimed = ClaimedHotkey(headers, _stats);
        if (claimed is null || !_preVerifyBlacklist(claimed))
            return new Gate(null, claimed ?? "", "missing or malformed bittensor-signature header", null, false);

        // 2. Signature, nonce (recorded only after the signature verified) and header version.
        var auth = await _auth.AuthenticateAsync(headers, peer).ConfigureAwait(false);
        if (!auth.Ok && auth.Code == ReturnCode.Unauthenticated) return new Gate(null, claimed, auth.Reason, null, false);
        if (!auth.Ok) return new Gate(null, claimed, null, Answer(auth.Code, auth.Reason), false);
        if (!CompatibleVersion(auth.Version))
            return new Gate(null, claimed, null, Answer(ReturnCode.RequestIncompatibleVersion,
                $"caller version {auth.Version} is too old for this axon (version {_settings.ProtocolVersion})"), false);

        // 3. Post-verify blacklist: registration and stake rules, against the latest snapshot (the warm-up's key is not subject to them).
        var (stake, registered) = _stakes.Lookup(auth.Hotkey);
        if (IsWarmUp(auth.Hotkey)) return new Gate(new Admitted(auth.Hotkey, 0), auth.Hotkey, null, null, true);
        if (_settings.BlacklistRegisteredOnly && !registered)
            return new Gate(null, auth.Hotkey, null, Answer(ReturnCode.SenderUnknown, _stakes.Known
                ? "caller is not registered on this axon's subnet"
                : "caller is not registered on this axon's subnet (this axon has no metagraph snapshot yet)"), true);
        if (stake < _settings.BlacklistMinStake)
            return new Gate(null, auth.Hotkey, null, Answer(ReturnCode.SenderUnknown, $"caller stake is below this axon's minimum of {_settings.BlacklistMinStake} TAO"), true);
        return new Gate(new Admitted(auth.Hotkey, stake), auth.Hotkey, null, null, true);
    }

    private async Task<TensorMessage> Handle(bool backward, TensorMessage request, InboundCall context)
    {
        var started = Stopwatch.GetTimestamp();
        var method = backward ? "Backward" : "Forward";
        long bytesIn = request.CalculateSize();
        var caller = request.Hotkey;
        IReadOnlyList<long>? inputShape = null;
        var verified = false;
        TensorMessage response;
        try
        {
            // Steps 1-3 ran before the body was read when the transport called CheckHeadersAsync; else run them now.
            var admitted = context.Admission as Admitted;
            if (admitted is null)
            {
                var gate = await Admit(context.Headers, null).ConfigureAwait(false);
                caller = gate.Caller;
                if (gate.Refusal is { } reason) throw Refuse(method, caller, bytesIn, started, reason);
                if (gate.Response is { } early)
                {
                    Record(method, caller, early, bytesIn, started, null, gate.Verified);
                    return early;
                }
                admitted = gate.Admitted!;
            }
            caller = admitted.Hotkey;

            // 4. What only the body can tell: the message's own hotkey and version.
            if (request.Hotkey.Length > 0 && !string.Equals(request.Hotkey, admitted.Hotkey, StringComparison.Ordinal))
            {
                throw Refuse(method, caller, bytesIn, started, "message hotkey differs from the signed hotkey");
            }
            else if (request.Version != 0 && !CompatibleVersion(request.Version))
            {
                response = Answer(ReturnCode.RequestIncompatibleVersion,
                    $"caller version {request.Version} is too old for this axon (version {_settings.ProtocolVersion})");
            }
            else
            {
                verified = true;
                var decoded = TryDecodeRequest(backward, request, out var inputs, out var grads, out var refusal);
                inputShape = inputs?.Shape;
                response = decoded ? await Serve(backward, request, context, admitted.Hotkey, admitted.Stake, inputs!, grads) : refusal!;
            }
        }
        catch (RpcException)
        {
            throw;
        }
        catch (Exception e)
        {
            response = Answer(ReturnCode.UnknownException, $"axon internal error ({e.GetType().Name})");
        }
        Record(method, caller, response, bytesIn, started, inputShape, verified);
        return response;
    }

    private bool CompatibleVersion(int callerVersion) => Bittensor.Protocol.ProtocolVersion.IsCallerCompatible(_settings.ProtocolVersion, callerVersion);

    /// <summary>
    /// 5. Decode: the request's inputs (and a backward's grads), checked; false with the answer that refuses them.
    /// <paramref name="inputs"/> is set once they decoded, also when a later check refuses them (the call's recorded shape).
    /// </summary>
    private bool TryDecodeRequest(bool backward, TensorMessage request, out DenseTensor? inputs, out DenseTensor? grads, out TensorMessage? refusal)
    {
        inputs = grads = null;
        refusal = null;
        if (request.Tensors.Count == 0)
        {
            refusal = Answer(ReturnCode.EmptyRequest, "request carries no tensors");
            return false;
        }
        if (backward && request.Tensors.Count != 2)
        {
            refusal = Answer(ReturnCode.InvalidRequest, $"backward takes exactly 2 tensors [inputs, grads], got {request.Tensors.Count}");
            return false;
        }
        var wireInputs = request.Tensors[0];
        if (!_codec.TryDecode(wireInputs, false, out inputs, out var code, out var error))
        {
            inputs = null;
            refusal = Answer(code, $"inputs: {error}");
            return false;
        }
        var shapeError = CheckInputs(wireInputs.Modality, inputs!);
        if (shapeError is not null)
        {
            refusal = Answer(ReturnCode.RequestShapeException, shapeError);
            return false;
        }
        if (backward)
        {
            if (!_codec.TryDecode(request.Tensors[1], false, out grads, out code, out error))
            {
                refusal = Answer(code, $"grads: {error}");
                return false;
            }
            if (grads!.DataType != DataType.Float32 || grads.Rank != 3 || grads.Shape[0] != inputs!.Shape[0] || grads.Shape[1] != inputs.Shape[1])
            {
                refusal = Answer(ReturnCode.RequestShapeException, $"grads must be float32 rank 3 matching inputs on dims 0 and 1; got {grads}, inputs {inputs}");
                return false;
            }
        }
        return true;
    }

    private async Task<TensorMessage> Serve(bool backward, TensorMessage request, InboundCall context, string hotkey, double stake, DenseTensor inputs, DenseTensor? grads)
    {
        var wireInputs = request.Tensors[0];

        // 6. Straight to the model host (Tell, no Ask): its queue is the one stake-ordered queue; full → NucleusFull at once.
        var now = _time.GetUtcNow().UtcDateTime;
        var budget = _settings.CallTimeout;
        if (context.Deadline != DateTime.MaxValue)
        {
            var client = context.Deadline - DateTime.UtcNow;
            if (client < budget) budget = client;
        }
        ModelResponse result;
        if (budget <= TimeSpan.Zero)
        {
            result = new ModelResponse(null, ReturnCode.NucleusTimeout, "deadline already passed");
        }
        else
        {
            // The call's one deadline: the caller's gRPC deadline capped by call_timeout. The host answers at the
            // latest then (NucleusTimeout), so no timer of our own is stacked on it.
            var deadline = now + budget;
            var priority = _settings.PriorityByStake ? StakePriority.From(stake) : StakePriority.Lowest;
            if (IsWarmUp(hotkey))
            {
                // The axon's own warm-up: zeros of the answer's shape, written as a real answer is, without the model.
                Interlocked.Increment(ref _warmUpAnswered);
                var forward = new ForwardRequest(hotkey, stake, wireInputs.Modality, inputs) { Priority = priority, DeadlineUtc = deadline };
                if (!backward && context.RegisterForDispose is { } toDispose && BitConverter.IsLittleEndian
                    && ServeInto(static (_, zeros) => { zeros.Clear(); return null; }, forward, toDispose).Written is { } written)
                    return written;
                result = new ModelResponse(backward ? DenseTensor.Zeros([.. inputs.Shape]) : DenseTensor.Zeros(inputs.Shape[0], inputs.Shape[1], _settings.NetworkDim));
            }
            else if (_inline is { } inline && TryEnterInline())
            {
                try
                {
                    var forward = backward ? null : new ForwardRequest(hotkey, stake, wireInputs.Modality, inputs) { Priority = priority, DeadlineUtc = deadline };
                    ModelResponse? done = null;
                    if (forward is not null && inline.ForwardInto is { } into && context.RegisterForDispose is { } toDispose && BitConverter.IsLittleEndian)
                    {
                        var (written, refused) = ServeInto(into, forward, toDispose);
                        if (written is not null) return written;
                        done = refused;
                    }
                    if (done is null)
                    {
                        var call = new AxonModelCall(0, forward,
                            backward ? new BackwardRequest(hotkey, stake, wireInputs.Modality, inputs, grads!) { Priority = priority, DeadlineUtc = deadline } : null);
                        var task = ModelHostActor.StartHandler(inline, call, deadline, _time);
                        done = task.IsCompleted ? task.Result : await task.ConfigureAwait(false);
                    }
                    result = done;
                }
                finally
                {
                    Interlocked.Decrement(ref _inlineRunning);
                }
            }
            else
            {
            var (id, pending) = _sink.Register();
            var call = backward
                ? new AxonModelCall(id, null, new BackwardRequest(hotkey, stake, wireInputs.Modality, inputs, grads!) { Priority = priority, DeadlineUtc = deadline })
                : new AxonModelCall(id, new ForwardRequest(hotkey, stake, wireInputs.Modality, inputs) { Priority = priority, DeadlineUtc = deadline }, null);
            _host.Tell(call, _sink);
            using (context.CancellationToken.CanBeCanceled
                ? context.CancellationToken.Register(static s => ((Cancel)s!).Run(), new Cancel(_sink, id))
                : default)
            {
                result = await pending.ConfigureAwait(false);
            }
            }
        }

        if (result.Code != ReturnCode.Success) return Answer(result.Code, result.Message);
        var outputs = result.Outputs;
        if (backward)
        {
            outputs ??= DenseTensor.Zeros([.. inputs.Shape]);
            if (outputs.DataType != DataType.Float32 || !outputs.Shape.SequenceEqual(inputs.Shape))
                return Answer(ReturnCode.UnknownException, $"model answered backward {outputs}, expected Float32[{string.Join(", ", inputs.Shape)}]");
        }
        else if (outputs is null || outputs.DataType != DataType.Float32 || !outputs.HasShape(inputs.Shape[0], inputs.Shape[1], _settings.NetworkDim))
        {
            return Answer(ReturnCode.UnknownException,
                $"model answered {outputs?.ToString() ?? "nothing"}, expected Float32[{inputs.Shape[0]}, {inputs.Shape[1]}, {_settings.NetworkDim}]");
        }
        var answer = Answer(ReturnCode.Success, "");
        // Through Kestrel the answer's bytes go into a pooled buffer returned once the message is on the wire; the
        // in-memory transport hands the message itself to the caller, so it gets its own array.
        answer.Tensors.Add(context.RegisterForDispose is { } register
            ? _codec.EncodeResponse(outputs, Modality.Tensor, register)
            : _codec.Encode(outputs, Modality.Tensor));
        return answer;
    }

    private bool TryEnterInline()
    {
        // A stopped host answers NotServingNucleus: such calls take the host's path, which says so.
        if (_sink.Stopped) return false;
        if (Interlocked.Increment(ref _inlineRunning) <= _inlineLimit) return true;
        Interlocked.Decrement(ref _inlineRunning);
        return false;
    }

    // The inline forward written straight into the answer's pooled wire buffer: the buffer goes back to its pool once
    // the transport has serialized the message (or at once when the model refused or failed).
    private (TensorMessage? Written, ModelResponse? Result) ServeInto(ForwardIntoHandler into, ForwardRequest forward, Action<IDisposable> register)
    {
        var inputs = forward.Inputs;
        Span<long> shape = [inputs.Shape[0], inputs.Shape[1], _settings.NetworkDim];
        var pooled = _codec.RentResponseFloat32(shape, Modality.Tensor);
        if (pooled is null) return (null, null);
        ModelResponse? refused;
        try
        {
            refused = into(forward, MemoryMarshal.Cast<byte, float>(pooled.Elements.Span));
        }
        catch (Exception e)
        {
            pooled.Dispose();
            return (null, new ModelResponse(null, ReturnCode.UnknownException, $"model failed: {e.GetType().Name}"));
        }
        if (refused is not null)
        {
            pooled.Dispose();
            return (null, refused);
        }
        register(pooled);
        var answer = Answer(ReturnCode.Success, "");
        answer.Tensors.Add(pooled.Tensor);
        return (answer, null);
    }

    private sealed class Cancel(AxonReplySink sink, long id)
    {
        public void Run() => sink.Complete(id, new ModelResponse(null, ReturnCode.Timeout, "caller cancelled"));
    }

    private static string? CheckInputs(Modality modality, DenseTensor t)
    {
        for (var i = 0; i < t.Rank; i++)
            if (t.Shape[i] < 1) return $"every dimension must be at least 1, got {t}";
        return modality switch
        {
            Modality.Text when t.Rank != 2 || t.DataType != DataType.Int64 => $"TEXT inputs must be int64 [batch, seq], got {t}",
            Modality.Tensor when t.Rank != 3 || t.DataType != DataType.Float32 => $"TENSOR inputs must be float32 rank 3, got {t}",
            Modality.Image when t.Rank != 5 || t.DataType != DataType.Float32 => $"IMAGE inputs must be float32 rank 5, got {t}",
            Modality.Text or Modality.Tensor or Modality.Image => null,
            _ => $"unknown modality {(int)modality}",
        };
    }

    private TensorMessage Answer(ReturnCode code, string message) => new()
    {
        Version = _settings.ProtocolVersion,
        Hotkey = _ownHotkey,
        ReturnCode = code,
        Message = message,
    };

    private RpcException Refuse(string method, string caller, long bytesIn, long started, string reason)
    {
        Record(method, caller, Answer(ReturnCode.Unauthenticated, reason), bytesIn, started, null, verified: false);
        return new RpcException(new Grpc.Core.Status(StatusCode.Unauthenticated, reason));
    }

    private void Record(string method, string caller, TensorMessage response, long bytesIn, long started, IReadOnlyList<long>? inputShape, bool verified = true,
        string? shed = null)
    {
        if (IsWarmUp(caller)) return;
        var record = new AxonCallRecord(method, caller, response.ReturnCode, response.Message, bytesIn, response.CalculateSize(),
            Stopwatch.GetElapsedTime(started), inputShape) { ShedReason = shed };
        // Claims that failed verification are attacker-chosen strings: count them in one bucket so they cannot
        // crowd real callers out of the bounded per-caller table or blow up metric tag cardinality.
        _stats.Record(verified ? record : record with { Caller = AxonStats.Unverified });
        try
        {
            _observer?.Invoke(record);
        }
        catch (Exception)
        {
            // An observer's failure (e.g. a closed console) must not fail the call it observes.
        }
    }
}

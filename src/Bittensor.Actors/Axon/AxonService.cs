using System.Diagnostics;
using Akka.Actor;
using Bittensor.Protocol.Wire;
using Grpc.Core;
using WireService = Bittensor.Protocol.Wire.Bittensor;
using Bittensor.Protocol;

namespace Bittensor.Actors.Axon;

/// <summary>The latest stakes the axon knows (TAO per hotkey SS58); swapped atomically on each snapshot.</summary>
internal sealed class StakeBook
{
    private volatile IReadOnlyDictionary<string, double> _stakes = new Dictionary<string, double>(StringComparer.Ordinal);
    private readonly Func<string, double>? _override;

    public StakeBook(Func<string, double>? priorityFunction) => _override = priorityFunction;

    public void Update(IReadOnlyDictionary<string, double> stakes) => _stakes = stakes;

    public double StakeOf(string hotkey)
    {
        if (_override is not null) return _override(hotkey);
        return _stakes.TryGetValue(hotkey, out var s) ? s : 0.0;
    }
}

/// <summary>
/// The gRPC <c>Bittensor</c> service: cheap checks, authentication, version, decoding and admission happen here on
/// the gRPC thread; the model work goes through the priority router. Never throws except the deliberate
/// UNAUTHENTICATED status for bad signatures, replays and blacklisted shapes.
/// </summary>
internal sealed class AxonService : WireService.BittensorBase
{
    private readonly AxonSettings _settings;
    private readonly IRequestAuthenticator _auth;
    private readonly ITensorWireCodec _codec;
    private readonly AxonAdmission _admission;
    private readonly IActorRef _router;
    private readonly StakeBook _stakes;
    private readonly AxonStats _stats;
    private readonly Action<AxonCallRecord>? _observer;
    private readonly Func<string, bool> _preVerifyBlacklist;
    private readonly string _ownHotkey;
    private readonly TimeProvider _time;

    public AxonService(AxonSettings settings, IRequestAuthenticator auth, ITensorWireCodec codec, AxonAdmission admission,
        IActorRef router, StakeBook stakes, AxonStats stats, AxonOptions options)
    {
        _settings = settings;
        _auth = auth;
        _codec = codec;
        _admission = admission;
        _router = router;
        _stakes = stakes;
        _stats = stats;
        _observer = options.OnCall;
        _preVerifyBlacklist = options.PreVerifyBlacklist ?? LooksLikeSs58;
        _ownHotkey = options.Hotkey;
        _time = options.Time ?? TimeProvider.System;
    }

    public override Task<TensorMessage> Forward(TensorMessage request, ServerCallContext context) => Handle(false, request, context);

    public override Task<TensorMessage> Backward(TensorMessage request, ServerCallContext context) => Handle(true, request, context);

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
    internal static string? ClaimedHotkey(Metadata headers)
    {
        var value = headers.GetValue("bittensor-signature");
        if (value is null) return null;
        var first = value.IndexOf("bitxx", StringComparison.Ordinal);
        if (first < 0) return null;
        var second = value.IndexOf("bitxx", first + 5, StringComparison.Ordinal);
        return second < 0 ? null : value[(first + 5)..second];
    }

    private async Task<TensorMessage> Handle(bool backward, TensorMessage request, ServerCallContext context)
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
            // 1. Cheap pre-verify blacklist: refuse malformed claims before spending a signature check on them.
            var claimed = ClaimedHotkey(context.RequestHeaders);
            if (claimed is null || !_preVerifyBlacklist(claimed))
                throw Refuse(method, caller, bytesIn, started, "missing or malformed bittensor-signature header");
            caller = claimed;

            // 2. Signature, nonce (recorded only after the signature verified) and header version.
            var auth = await _auth.AuthenticateAsync(context.RequestHeaders).ConfigureAwait(false);
            if (!auth.Ok && auth.Code == ReturnCode.Unauthenticated)
                throw Refuse(method, caller, bytesIn, started, auth.Reason);
            if (!auth.Ok)
            {
                response = Answer(auth.Code, auth.Reason);
            }
            else if (request.Hotkey.Length > 0 && !string.Equals(request.Hotkey, auth.Hotkey, StringComparison.Ordinal))
            {
                throw Refuse(method, caller, bytesIn, started, "message hotkey differs from the signed hotkey");
            }
            else if (!CompatibleVersion(auth.Version) || (request.Version != 0 && !CompatibleVersion(request.Version)))
            {
                response = Answer(ReturnCode.RequestIncompatibleVersion,
                    $"caller version {Math.Min(auth.Version, request.Version == 0 ? auth.Version : request.Version)} is too old for this axon (version {_settings.ProtocolVersion})");
            }
            else
            {
                verified = true;
                var stake = _stakes.StakeOf(auth.Hotkey);
                // 3. Post-verify blacklist: stake rule.
                if (stake < _settings.BlacklistMinStake)
                    response = Answer(ReturnCode.SenderUnknown, $"caller stake is below this axon's minimum of {_settings.BlacklistMinStake} TAO");
                else
                    response = await Serve(backward, request, context, auth.Hotkey, stake, s => inputShape = s);
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

    private async Task<TensorMessage> Serve(bool backward, TensorMessage request, ServerCallContext context, string hotkey, double stake, Action<IReadOnlyList<long>> onShape)
    {
        // 4. Decode.
        if (request.Tensors.Count == 0) return Answer(ReturnCode.EmptyRequest, "request carries no tensors");
        if (backward && request.Tensors.Count != 2)
            return Answer(ReturnCode.InvalidRequest, $"backward takes exactly 2 tensors [inputs, grads], got {request.Tensors.Count}");
        var wireInputs = request.Tensors[0];
        if (!_codec.TryDecode(wireInputs, false, out var inputs, out var code, out var error)) return Answer(code, $"inputs: {error}");
        onShape(inputs!.Shape);
        var shapeError = CheckInputs(wireInputs.Modality, inputs);
        if (shapeError is not null) return Answer(ReturnCode.RequestShapeException, shapeError);
        DenseTensor? grads = null;
        if (backward)
        {
            if (!_codec.TryDecode(request.Tensors[1], false, out grads, out code, out error)) return Answer(code, $"grads: {error}");
            if (grads!.DataType != DataType.Float32 || grads.Rank != 3 || grads.Shape[0] != inputs.Shape[0] || grads.Shape[1] != inputs.Shape[1])
                return Answer(ReturnCode.RequestShapeException, $"grads must be float32 rank 3 matching inputs on dims 0 and 1; got {grads}, inputs {inputs}");
        }

        // 5. Admission: a bounded number of calls may wait or run; beyond that answer at once.
        if (!_admission.TryEnter()) return Answer(ReturnCode.NucleusFull, "axon queue is full, try later");

        var now = _time.GetUtcNow().UtcDateTime;
        var budget = _settings.CallTimeout;
        if (context.Deadline != DateTime.MaxValue)
        {
            var client = context.Deadline - DateTime.UtcNow;
            if (client < budget) budget = client;
        }
        var completion = new TaskCompletionSource<ModelResponse>(TaskCreationOptions.RunContinuationsAsynchronously);
        var priority = _settings.PriorityByStake ? StakePriority.From(stake) : StakePriority.Lowest;
        var call = backward
            ? new AxonCall(true, null, new BackwardRequest(hotkey, stake, wireInputs.Modality, inputs, grads!), priority, now + budget, completion)
            : new AxonCall(false, new ForwardRequest(hotkey, stake, wireInputs.Modality, inputs), null, priority, now + budget, completion);
        _router.Tell(call);

        ModelResponse result;
        try
        {
            result = budget <= TimeSpan.Zero
                ? new ModelResponse(null, ReturnCode.NucleusTimeout, "deadline already passed")
                : await completion.Task.WaitAsync(budget, _time, context.CancellationToken).ConfigureAwait(false);
        }
        catch (TimeoutException)
        {
            result = new ModelResponse(null, ReturnCode.NucleusTimeout, $"model did not answer within {budget.TotalMilliseconds:F0} ms");
        }
        catch (OperationCanceledException)
        {
            result = new ModelResponse(null, ReturnCode.Timeout, "caller cancelled");
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
        answer.Tensors.Add(_codec.Encode(outputs, Modality.Tensor));
        return answer;
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

    private void Record(string method, string caller, TensorMessage response, long bytesIn, long started, IReadOnlyList<long>? inputShape, bool verified = true)
    {
        var record = new AxonCallRecord(method, caller, response.ReturnCode, response.Message, bytesIn, response.CalculateSize(),
            Stopwatch.GetElapsedTime(started), inputShape);
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

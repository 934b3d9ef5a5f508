using System.Numerics;
using System.Runtime.InteropServices;
using System.Runtime.Intrinsics;
using Akka.Actor;
using Bittensor.Actors.Axon;
using Bittensor.Protocol;
using Bittensor.Protocol.Wire;
using WireTensor = Bittensor.Protocol.Wire.Tensor;
using Bittensor.Core.Domain;

namespace Bittensor.Actors.Dendrite;

/// <summary>The result of one endpoint in a fan-out: always a tensor (zeros of the expected shape on failure).</summary>
/// <param name="Endpoint">The endpoint queried.</param>
/// <param name="Tensor">float32 answer, every value finite; zeros when <paramref name="Code"/> is not Success.</param>
/// <param name="Code">Return code.</param>
/// <param name="Message">Peer's message or local reason.</param>
/// <param name="Latency">Round trip of the call (zero when nothing was sent).</param>
/// <remarks>
/// A Success answer's floats may live in an array rented from the dendrite's <see cref="AnswerBufferPool"/>
/// (<see cref="IsPooled"/>). A caller done with the answer gives the array back with <see cref="Release"/> (or
/// <see cref="Dendrite.Release"/> for a round's results), so the next rounds land in it instead of allocating; after
/// that, <see cref="Tensor"/> throws <see cref="ObjectDisposedException"/>, and any reference to the floats taken
/// before must not be used (the array is the next answer's). A caller that never releases loses nothing but the reuse:
/// the array is then the GC's, as before.
/// </remarks>
public sealed record EndpointResult(EndpointInfo Endpoint, DenseTensor Tensor, ReturnCode Code, string Message, TimeSpan Latency)
{
    /// <summary>The answer (zeros on failure).</summary>
    /// <exception cref="ObjectDisposedException">The answer's array was given back (<see cref="Release"/>).</exception>
    public DenseTensor Tensor
    {
        get => Lease is { IsReleased: true }
            ? throw new ObjectDisposedException(nameof(EndpointResult), $"the answer of {Endpoint.Hotkey} was released: its array belongs to the next answer")
            : field;
        init;
    } = Tensor;

    /// <summary>The lease of the answer's array, when it was rented from the dendrite's pool.</summary>
    internal AnswerLease? Lease { get; init; }

    /// <summary>True when the answer's floats live in a pooled array that <see cref="Release"/> gives back.</summary>
    public bool IsPooled => Lease is not null;

    /// <summary>True once the answer's array was given back.</summary>
    public bool IsReleased => Lease is { IsReleased: true };

    /// <summary>
    /// Gives the answer's pooled array back (once: true the first time, false after, and for an answer with no pooled
    /// array). Afterwards <see cref="Tensor"/> throws; floats read before must not be used any more.
    /// </summary>
    public bool Release() => Lease?.Release() ?? false;

    // ToString must not throw for a released answer (logs print results).
    private bool PrintMembers(System.Text.StringBuilder builder)
    {
        builder.Append("Endpoint = ").Append(Endpoint).Append(", Tensor = ").Append(IsReleased ? "(released)" : Tensor.ToString())
            .Append(", Code = ").Append(Code).Append(", Message = ").Append(Message).Append(", Latency = ").Append(Latency);
        return true;
    }
}

/// <summary>
/// Early return for a fan-out (hivemind's k_min): once <paramref name="KMin"/> endpoints answered Success, the
/// others get <paramref name="TimeoutAfterKMin"/> more, then the round returns and the rest count as Timeout.
/// </summary>
public sealed record FanOutOptions(int KMin, TimeSpan TimeoutAfterKMin);

/// <summary>
/// Host-code API of the dendrite: fans a request out to many endpoints through their endpoint actors (at most
/// <see cref="DendriteSettings.Parallelism"/> calls out at once) and returns one <see cref="EndpointResult"/> per endpoint
/// in the order given. Each endpoint's answer is decoded into the round's result on the transport's thread as it
/// arrives (<see cref="FanOutRound"/>); the endpoint actors keep their mailbox, queue, deadline, backoff and breaker.
/// </summary>
public sealed class Dendrite
{
    private readonly IActorRef _actor;
    private readonly DendriteSettings _settings;
    private readonly ITensorWireCodec _codec;
    private readonly Func<string, long[]>? _tokenizer;
    private readonly TimeProvider _time;

    /// <summary>Creates a dendrite actor in <paramref name="system"/> signing with <paramref name="signer"/>.</summary>
    /// <param name="system">Actor system hosting the dendrite.</param>
    /// <param name="signer">Signs every request (the wallet's hotkey).</param>
    /// <param name="settings">Settings; defaults from the reference configuration.</param>
    /// <param name="options">Clock and random source.</param>
    /// <param name="tokenizer">Text to token ids for <see cref="ForwardText(IReadOnlyList{EndpointInfo}, IReadOnlyList{string}, TimeSpan?, FanOutOptions?)"/> (e.g. the 2021 GPT-2 tokenizer of Bittensor.Models); without one, only token-id calls work.</param>
    public Dendrite(ActorSystem system, IRequestSigner signer, DendriteSettings? settings = null, DendriteOptions? options = null,
        Func<string, long[]>? tokenizer = null)
        : this(system, settings ?? DendriteSettings.Default, AxonSeams.CreateCodec(null), signer, options, tokenizer)
    {
    }

    /// <summary>
    /// A facade over an existing <see cref="DendriteActor"/> (e.g. the <c>dendrite</c> child of a neuron), created with
    /// <see cref="DendriteActor.Props"/> and the same <paramref name="settings"/>.
    /// </summary>
    public Dendrite(ActorSystem system, IActorRef dendriteActor, DendriteSettings settings, DendriteOptions? options = null,
        Func<string, long[]>? tokenizer = null)
    {
        ArgumentNullException.ThrowIfNull(system);
        ArgumentNullException.ThrowIfNull(dendriteActor);
        ArgumentNullException.ThrowIfNull(settings);
        _settings = settings;
        _codec = AxonSeams.CreateCodec(null);
        _tokenizer = tokenizer;
        _time = options?.Time ?? TimeProvider.System;
        _actor = dendriteActor;
    }

    internal Dendrite(ActorSystem system, DendriteSettings settings, ITensorWireCodec codec, IRequestSigner signer,
        DendriteOptions? options, Func<string, long[]>? tokenizer)
    {
        ArgumentNullException.ThrowIfNull(system);
        _settings = settings;
        _codec = codec;
        _tokenizer = tokenizer;
        _time = options?.Time ?? TimeProvider.System;
        if (DendriteDispatcher.OnLoop(settings, options?.Transport)) DendriteDispatcher.Ensure(system);
        _actor = system.ActorOf(DendriteActor.Props(settings, signer, options), $"dendrite-{Guid.NewGuid():N}");
    }

    /// <summary>The <see cref="DendriteActor"/> behind this facade (for stats queries).</summary>
    public IActorRef Actor => _actor;

    private readonly System.Collections.Concurrent.ConcurrentDictionary<int, AnswerBufferPool> _answers = new();

    /// <summary>Answer lengths this dendrite keeps a pool for at most (a validator's forward and backward answers are two).</summary>
    internal const int MaxAnswerPools = 4;

    /// <summary>The pools of answer arrays, one per answer length its rounds landed (stats and tests).</summary>
    public IReadOnlyCollection<AnswerBufferPool> AnswerPools => [.. _answers.Values];

    // One pool per answer length (forward and backward rounds have different ones); bounded: a caller cycling through
    // more lengths starts over (the arrays released to a dropped pool go to the GC with it).
    internal AnswerBufferPool PoolFor(int elementCount)
    {
        if (_answers.TryGetValue(elementCount, out var pool)) return pool;
        if (_answers.Count >= MaxAnswerPools) _answers.Clear();
        return _answers.GetOrAdd(elementCount, static n => new AnswerBufferPool(n));
    }

    /// <summary>
    /// Gives back the pooled arrays of <paramref name="results"/> (a round's answers the caller is done with): each at
    /// most once, whatever is called twice. Returns how many went back. Afterwards those results' <see cref="EndpointResult.Tensor"/> throws.
    /// </summary>
    public static int Release(IEnumerable<EndpointResult> results)
    {
        ArgumentNullException.ThrowIfNull(results);
        var released = 0;
        foreach (var r in results)
            if (r is not null && r.Release()) released++;
        return released;
    }

    /// <summary>Tokenises each text (padding with id 0 to the longest) and forwards the int64 <c>[texts, seq]</c> tokens.</summary>
    /// <exception cref="InvalidOperationException">This dendrite was built without a tokenizer.</exception>
    public Task<IReadOnlyList<EndpointResult>> ForwardText(IReadOnlyList<EndpointInfo> endpoints, IReadOnlyList<string> texts,
        TimeSpan? timeout = null, FanOutOptions? fanOut = null)
    {
        ArgumentNullException.ThrowIfNull(texts);
        if (texts.Count == 0) throw new ArgumentException("at least one text is needed", nameof(texts));
        if (_tokenizer is null) throw new InvalidOperationException("this dendrite has no tokenizer: pass one to its constructor, or send token ids");
        var ids = texts.Select(_tokenizer).ToArray();
        var seq = Math.Max(1, ids.Max(t => t.Length));
        var tokens = new long[texts.Count, seq];
        for (var b = 0; b < ids.Length; b++)
            for (var s = 0; s < ids[b].Length; s++)
                tokens[b, s] = ids[b][s];
        return ForwardText(endpoints, tokens, timeout, fanOut);
    }

    /// <summary>Forwards pre-tokenised int64 <c>[batch, seq]</c> token ids (modality TEXT).</summary>
    public Task<IReadOnlyList<EndpointResult>> ForwardText(IReadOnlyList<EndpointInfo> endpoints, long[,] tokens,
        TimeSpan? timeout = null, FanOutOptions? fanOut = null)
    {
        ArgumentNullException.ThrowIfNull(tokens);
        if (tokens.Length == 0) throw new ArgumentException("tokens must be at least [1, 1]", nameof(tokens));
        return Forward(endpoints, DenseTensor.FromTokens(tokens), Modality.Text, timeout, fanOut);
    }

    /// <summary>Forwards a float32 rank-3 tensor (modality TENSOR).</summary>
    public Task<IReadOnlyList<EndpointResult>> ForwardTensor(IReadOnlyList<EndpointInfo> endpoints, DenseTensor inputs,
        TimeSpan? timeout = null, FanOutOptions? fanOut = null)
    {
        ArgumentNullException.ThrowIfNull(inputs);
        if (inputs.Rank != 3 || inputs.DataType != DataType.Float32) throw new ArgumentException("TENSOR inputs must be float32 rank 3", nameof(inputs));
        return Forward(endpoints, inputs, Modality.Tensor, timeout, fanOut);
    }

    /// <summary>
    /// Sends gradients back: <paramref name="grads"/> holds one float32 <c>[batch, seq, dim]</c> tensor per endpoint
    /// (or a single one for all). Each result is a float32 tensor shaped like the inputs.
    /// </summary>
    public Task<IReadOnlyList<EndpointResult>> Backward(IReadOnlyList<EndpointInfo> endpoints, DenseTensor inputs, IReadOnlyList<DenseTensor> grads,
        TimeSpan? timeout = null, FanOutOptions? fanOut = null)
    {
        ArgumentNullException.ThrowIfNull(endpoints);
        ArgumentNullException.ThrowIfNull(inputs);
        ArgumentNullException.ThrowIfNull(grads);
        if (grads.Count != 1 && grads.Count != endpoints.Count)
            throw new ArgumentException("give one gradient per endpoint or a single one for all", nameof(grads));
        var modality = inputs.DataType == DataType.Int64 ? Modality.Text : Modality.Tensor;
        var wireInputs = _codec.Encode(inputs, modality);
        var wireGrads = grads.Select(g => _codec.Encode(g, Modality.Tensor, requiresGrad: false)).ToArray();
        long[] expected = [.. inputs.Shape];
        return FanOut(endpoints, i => new EndpointCall(true, [wireInputs, wireGrads[grads.Count == 1 ? 0 : i]], timeout ?? _settings.Timeout),
            expected, timeout ?? _settings.Timeout, fanOut);
    }

    private Task<IReadOnlyList<EndpointResult>> Forward(IReadOnlyList<EndpointInfo> endpoints, DenseTensor inputs, Modality modality,
        TimeSpan? timeout, FanOutOptions? fanOut)
    {
        ArgumentNullException.ThrowIfNull(endpoints);
        var wire = _codec.Encode(inputs, modality);
        var call = new EndpointCall(false, [wire], timeout ?? _settings.Timeout);
        return FanOut(endpoints, _ => call, [inputs.Shape[0], inputs.Shape[1], _settings.NetworkDim], timeout ?? _settings.Timeout, fanOut);
    }

    // One round: the endpoint actors' transports fill its slots directly (FanOutRound); the round completes with the last.
    private Task<IReadOnlyList<EndpointResult>> FanOut(IReadOnlyList<EndpointInfo> endpoints, Func<int, EndpointCall> callFor,
        long[] expectedShape, TimeSpan timeout, FanOutOptions? fanOut) =>
        new FanOutRound(endpoints, callFor, expectedShape, _codec, _actor, _settings.Parallelism, timeout, fanOut, _time, PoolFor).Start();

    /// <summary>
    /// NaN and ±Inf values in <paramref name="values"/>: x − x is +0 exactly for finite x (NaN otherwise), so the bits of
    /// every x − x ORed together are 0 when all are finite: one OR per vector and one test at the end (a compare and a
    /// branch per vector cost ~3 % of the fan-out client's CPU); only an answer that has one is counted value by value.
    /// 512-bit vectors where the CPU runs them natively (AVX-512: half the instructions of the 256-bit
    /// <see cref="Vector{T}"/> loop, which stays the path elsewhere); results/axon.md "Session 20, h2-fanwork".
    /// </summary>
    internal static int CountNonFinite(ReadOnlySpan<float> values) =>
        Vector512.IsHardwareAccelerated ? CountNonFinite512(values) : CountNonFiniteVector(values);

    /// <summary>The 512-bit pass (<see cref="CountNonFinite"/>); callable where 512-bit vectors are not native too (software).</summary>
    internal static int CountNonFinite512(ReadOnlySpan<float> values)
    {
        var i = 0;
        var width = Vector512<float>.Count;
        if (values.Length >= width)
        {
            ref var start = ref MemoryMarshal.GetReference(values);
            Vector512<float> a = default, b = default;
            var end = values.Length - width;
            for (; i <= end - width; i += 2 * width)
            {
                var x = Vector512.LoadUnsafe(ref start, (nuint)i);
                var y = Vector512.LoadUnsafe(ref start, (nuint)(i + width));
                a |= x - x;
                b |= y - y;
            }
            if (i <= end)
            {
                var x = Vector512.LoadUnsafe(ref start, (nuint)i);
                a |= x - x;
                i += width;
            }
            if ((a | b).AsInt32() != Vector512<int>.Zero) i = 0; // one at least: count them all one by one
        }
        var count = 0;
        for (; i < values.Length; i++)
            if (!float.IsFinite(values[i])) count++;
        return count;
    }

    /// <summary>The <see cref="Vector{T}"/> pass (<see cref="CountNonFinite"/> where 512-bit vectors are not native).</summary>
    internal static int CountNonFiniteVector(ReadOnlySpan<float> values)
    {
        var i = 0;
        if (Vector.IsHardwareAccelerated && values.Length >= Vector<float>.Count)
        {
            var vectors = MemoryMarshal.Cast<float, Vector<float>>(values);
            Vector<int> a = default, b = default;
            var k = 0;
            for (; k + 1 < vectors.Length; k += 2)
            {
                a |= Vector.AsVectorInt32(vectors[k] - vectors[k]);
                b |= Vector.AsVectorInt32(vectors[k + 1] - vectors[k + 1]);
            }
            if (k < vectors.Length) a |= Vector.AsVectorInt32(vectors[k] - vectors[k]);
            if ((a | b) == Vector<int>.Zero) i = vectors.Length * Vector<float>.Count;
        }
        var count = 0;
        for (; i < values.Length; i++)
            if (!float.IsFinite(values[i])) count++;
        return count;
    }
}

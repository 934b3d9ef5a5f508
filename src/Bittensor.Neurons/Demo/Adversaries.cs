using Bittensor.Actors.Axon;
using Bittensor.Protocol.Wire;
using Bittensor.Protocol;

namespace Bittensor.Neurons.Demo;

/// <summary>
/// The demo's adversary zoo: servers that answer every forward call with something useless or hostile and ignore the
/// gradients they receive (backward answers zeros). Selected with <c>btcli demo --bad_kind</c>; docs/validator.md says
/// how the validator treats each.
/// </summary>
public static class Adversaries
{
    /// <summary>Every kind, in the order docs/validator.md lists them.</summary>
    public static IReadOnlyList<string> Kinds { get; } = ["uniform", "gauss", "constant", "zeros", "nan", "inf", "huge", "wrong_shape", "slow"];

    /// <summary>
    /// Handlers for <paramref name="kind"/>: <c>uniform</c> fresh noise in [0, 1) (non-zero mean); <c>gauss</c> fresh
    /// N(0, 1) noise; <c>constant</c> one fixed non-zero vector at every position; <c>zeros</c>; <c>nan</c>; <c>inf</c>
    /// (±Inf); <c>huge</c> (±1e30); <c>wrong_shape</c> (<c>[batch, seq, dim/2]</c>); <c>slow</c> (never answers before
    /// the caller's deadline). Deterministic for a given <paramref name="seed"/> and call order.
    /// </summary>
    public static AxonHandlers Create(string kind, int networkDim, int seed)
    {
        var values = Values(kind, networkDim, seed);
        var dim = kind == "wrong_shape" ? Math.Max(1, networkDim / 2) : networkDim;
        return new AxonHandlers(
            async (r, ct) =>
            {
                var b = (int)r.Inputs.Shape[0];
                var q = (int)r.Inputs.Shape[1];
                // Always past the deadline: the call's token fires at the caller's deadline and ends the wait.
                if (values(b, q) is not { } data)
                {
                    await Task.Delay(Timeout.InfiniteTimeSpan, ct);
                    throw new OperationCanceledException(ct);
                }
                return ModelResponse.Ok(DenseTensor.Float32([b, q, dim], data));
            },
            (r, _) => Task.FromResult(ModelResponse.Ok(DenseTensor.Zeros([.. r.Inputs.Shape]))));
    }

    /// <summary>
    /// What <paramref name="kind"/> answers to a forward call over <c>[batch, seq]</c> tokens, row-major (length
    /// <c>batch · seq · dim</c>, or <c>dim/2</c> per position for <c>wrong_shape</c>); null for <c>slow</c>, which never
    /// answers. Thread-safe; deterministic for a given <paramref name="seed"/> and call order.
    /// </summary>
    public static Func<int, int, float[]?> Values(string kind, int networkDim, int seed)
    {
        ArgumentNullException.ThrowIfNull(kind);
        var random = new Random(seed);
        var gate = new object();
        var constant = new float[networkDim];
        for (var d = 0; d < networkDim; d++) constant[d] = (float)(0.5 + random.NextDouble());
        Func<int, int, float> value = kind switch
        {
            "uniform" => (_, _) => (float)random.NextDouble(),
            "gauss" => (_, _) => (float)(Math.Sqrt(-2 * Math.Log(1 - random.NextDouble())) * Math.Cos(2 * Math.PI * random.NextDouble())),
            "constant" => (_, d) => constant[d],
            "zeros" => (_, _) => 0f,
            "nan" => (_, _) => float.NaN,
            "inf" => (i, _) => i % 2 == 0 ? float.PositiveInfinity : float.NegativeInfinity,
            "huge" => (i, _) => i % 2 == 0 ? 1e30f : -1e30f,
            "wrong_shape" => (_, _) => 0.5f,
            "slow" => (_, _) => 0f,
            _ => throw new ArgumentException($"unknown adversary kind '{kind}' (one of {string.Join(", ", Kinds)})"),
        };
        var dim = kind == "wrong_shape" ? Math.Max(1, networkDim / 2) : networkDim;
        return (b, q) =>
        {
            if (kind == "slow") return null;
            var data = new float[checked(b * q * dim)];
            lock (gate)
                for (var i = 0; i < data.Length; i++) data[i] = value(i, i % dim);
            return data;
        };
    }

    /// <summary>
    /// Parses a comma-separated list of kinds (<c>--bad_kind</c>); throws <see cref="ArgumentException"/> naming an unknown one.
    /// </summary>
    public static IReadOnlyList<string> Parse(string list)
    {
        ArgumentNullException.ThrowIfNull(list);
        var kinds = list.Split(',', StringSplitOptions.TrimEntries | StringSplitOptions.RemoveEmptyEntries);
        if (kinds.Length == 0) throw new ArgumentException($"--bad_kind needs at least one of {string.Join(", ", Kinds)}");
        foreach (var k in kinds)
            if (!Kinds.Contains(k)) throw new ArgumentException($"--bad_kind: unknown kind '{k}' (one of {string.Join(", ", Kinds)})");
        return kinds;
    }
}

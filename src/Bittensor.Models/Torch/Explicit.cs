using TorchSharp;
using static TorchSharp.torch;

namespace Bittensor.Models.Torch;

/// <summary>
/// Tensor arithmetic without temporary Scalars. TorchSharp 0.107's <see cref="Scalar"/> has a finalizer and is not
/// tracked by dispose scopes; one made implicitly (<c>a + b</c> passes an implicit alpha of 1, <c>x * 0.5</c>,
/// <c>full(…, -inf)</c>) is unreachable once its handle is read, so a GC on another thread can free it while native
/// code still reads it ("Unknown scalar type", segfaults in libtorch_cpu.so under load). Here every Scalar is either a
/// static field (never collected) or held by the caller's <c>using</c>. <c>TemporaryScalarTests</c> reads the IL of
/// this assembly and fails on any call that makes a temporary one.
/// </summary>
public static class Explicit
{
    /// <summary>1 (the alpha of a plain sum or difference).</summary>
    public static readonly Scalar One = 1.0.ToScalar();

    /// <summary>−∞ (masked attention logits).</summary>
    public static readonly Scalar NegativeInfinity = float.NegativeInfinity.ToScalar();

    /// <summary><paramref name="a"/> + <paramref name="b"/>.</summary>
    public static Tensor Plus(this Tensor a, Tensor b) => a.add(b, One);
}

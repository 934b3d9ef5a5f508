using System.Numerics;
using System.Runtime.InteropServices;
using System.Runtime.Intrinsics;
using Bittensor.Actors.Axon;
using Bittensor.Protocol;
using Bittensor.Protocol.Wire;

namespace Bittensor.Neurons.Demo;

/// <summary>
/// Tiny models for serving without a neural network (CLI <c>--model echo|random</c>, tests, benchmarks).
/// </summary>
public static partial class DemoModels
{
    /// <summary>
    /// A deterministic function of the inputs, so scripts and tests can check values:
    /// forward of TEXT tokens: <c>out[b, s, d] = token[b, s] · 1e-3 + d · 1e-6</c> (float32);
    /// forward of a TENSOR/IMAGE input: the same with <c>x[b, s, 0, ...]</c> in place of the token;
    /// backward: <c>out[b, s, ...] = Σ_d grads[b, s, d]</c> for every element of inputs position (b, s).
    /// </summary>
    public static AxonHandlers Echo(int networkDim = 1024) => new(
        (r, _) => Task.FromResult(ModelResponse.Ok(EchoForward(r.Inputs, networkDim))),
        (r, _) => Task.FromResult(ModelResponse.Ok(EchoBackward(r.Inputs, r.Grads))))
    {
        // Microseconds of arithmetic and a completed task: the axon runs it on the call's own thread.
        Inline = true,
        // Over gRPC the values go straight into the answer's pooled wire buffer (no float[] per call).
        ForwardInto = (r, outputs) =>
        {
            EchoForwardInto(r.Inputs, networkDim, outputs);
            return null;
        },
    };

    /// <summary>Uniform random representations in [-1, 1) of the right shape; backward answers zeros.</summary>
    public static AxonHandlers Random(int networkDim = 1024, int? seed = null)
    {
        var random = seed is { } s ? new System.Random(s) : System.Random.Shared;
        var gate = new object();
        return new(
            (r, _) =>
            {
                var b = r.Inputs.Shape[0];
                var q = r.Inputs.Shape[1];
                var data = new float[checked((int)(b * q * networkDim))];
                lock (gate)
                    for (var i = 0; i < data.Length; i++) data[i] = (float)((random.NextDouble() * 2) - 1);
                return Task.FromResult(ModelResponse.Ok(DenseTensor.Float32([b, q, networkDim], data)));
            },
            (r, _) => Task.FromResult(ModelResponse.Ok(DenseTensor.Zeros([.. r.Inputs.Shape]))))
        {
            Inline = true,
        };
    }

    /// <summary>
    /// <paramref name="inner"/> with a fixed cost per call: each call waits <paramref name="delay"/> (without using a
    /// core, as a GPU-bound model leaves the CPU free) before computing. For cluster tests and benchmarks
    /// (<c>--model.delay_ms</c>). Not inline: the model host runs up to max_workers of them at once.
    /// </summary>
    public static AxonHandlers Delayed(AxonHandlers inner, TimeSpan delay)
    {
        ArgumentNullException.ThrowIfNull(inner);
        if (delay <= TimeSpan.Zero) return inner;
        var backward = inner.Backward;
        return new(
            async (r, ct) =>
            {
                await Task.Delay(delay, ct).ConfigureAwait(false);
                return await inner.Forward(r, ct).ConfigureAwait(false);
            },
            backward is null ? null : async (r, ct) =>
            {
                await Task.Delay(delay, ct).ConfigureAwait(false);
                return await backward(r, ct).ConfigureAwait(false);
            });
    }

    /// <summary>
    /// <paramref name="inner"/> with a fixed CPU cost per call: each call keeps its thread busy for
    /// <paramref name="cpu"/> of that thread's own CPU time (measured by the kernel, so a preempted call still burns the
    /// whole amount) before computing — a stand-in for a model that computes on the CPU, for benchmarks
    /// (<c>--model.cpu_ms</c>). Not inline: the model host runs up to max_workers of them at once, each on a pool thread.
    /// </summary>
    public static AxonHandlers Burning(AxonHandlers inner, TimeSpan cpu)
    {
        ArgumentNullException.ThrowIfNull(inner);
        if (cpu <= TimeSpan.Zero) return inner;
        var backward = inner.Backward;
        return new(
            (r, ct) =>
            {
                Burn(cpu);
                return inner.Forward(r, ct);
            },
            backward is null ? null : (r, ct) =>
            {
                Burn(cpu);
                return backward(r, ct);
            });
    }

    /// <summary>Spins until the calling thread has used <paramref name="cpu"/> of CPU time (wall time where the thread's clock is not available).</summary>
    public static void Burn(TimeSpan cpu)
    {
        var start = ThreadCpu();
        if (start < 0)
        {
            var wall = System.Diagnostics.Stopwatch.StartNew();
            while (wall.Elapsed < cpu) Spin();
            return;
        }
        var until = start + cpu.Ticks * 100; // ns
        while (ThreadCpu() < until) Spin();
    }

    private static double _sink;

    private static void Spin()
    {
        var x = _sink;
        for (var i = 0; i < 2000; i++) x = (x * 1.0000001) + 1e-9;
        _sink = x;
    }

    // CLOCK_THREAD_CPUTIME_ID through clock_gettime (Linux); -1 elsewhere.
    private static long ThreadCpu()
    {
        if (!OperatingSystem.IsLinux()) return -1;
        return ClockGetTime(3, out var ts) == 0 ? (ts.Seconds * 1_000_000_000L) + ts.Nanoseconds : -1;
    }

    [System.Runtime.InteropServices.StructLayout(System.Runtime.InteropServices.LayoutKind.Sequential)]
    private struct TimeSpec
    {
        public long Seconds;
        public long Nanoseconds;
    }

    [System.Runtime.InteropServices.LibraryImport("libc", EntryPoint = "clock_gettime")]
    private static partial int ClockGetTime(int clock, out TimeSpec time);

    /// <summary>The echo forward: <c>out[b, s, d] = v[b, s] · 1e-3 + d · 1e-6</c> with v the token or first feature.</summary>
    public static DenseTensor EchoForward(DenseTensor inputs, int networkDim)
    {
        ArgumentNullException.ThrowIfNull(inputs);
        var b = (int)inputs.Shape[0];
        var s = (int)inputs.Shape[1];
        var data = GC.AllocateUninitializedArray<float>(checked(b * s * networkDim));
        EchoForwardInto(inputs, networkDim, data);
        return DenseTensor.Float32([b, s, networkDim], data);
    }

    /// <summary>
    /// <see cref="EchoForward"/> written into <paramref name="data"/> (batch · seq · <paramref name="networkDim"/>
    /// values, C order), e.g. the answer's wire buffer.
    /// </summary>
    /// <exception cref="ArgumentException"><paramref name="data"/> has another length.</exception>
    public static void EchoForwardInto(DenseTensor inputs, int networkDim, Span<float> data) =>
        EchoForwardInto(inputs, networkDim, data, Vector512.IsHardwareAccelerated);

    /// <summary>Tests: <see cref="EchoForwardInto(DenseTensor, int, Span{float})"/> with the 512-bit pass on or off.</summary>
    internal static void EchoForwardInto(DenseTensor inputs, int networkDim, Span<float> data, bool wide)
    {
        ArgumentNullException.ThrowIfNull(inputs);
        var b = (int)inputs.Shape[0];
        var s = (int)inputs.Shape[1];
        var stride = (int)(inputs.ElementCount / ((long)b * s));
        if (data.Length != checked(b * s * networkDim))
            throw new ArgumentException($"outputs hold {data.Length} values, [{b}, {s}, {networkDim}] needs {b * s * networkDim}", nameof(data));
        var dTerms = DTerms(networkDim);
        var width = Vector<double>.Count;
        for (var i = 0; i < b * s; i++)
        {
            var v = inputs.DataType == DataType.Int64 ? inputs.Longs![i * stride] : (double)inputs.Floats![i * stride];
            var row = data.Slice(i * networkDim, networkDim);
            var baseValue = v * 1e-3;
            var d = 0;
            if (wide && Vector512.IsHardwareAccelerated && networkDim >= 16)
            {
                // 512-bit vectors where the CPU runs them natively (AVX-512): half the instructions of the Vector<T>
                // (256-bit) pass below, the same double sums and the same narrowing (session 21: the echo was ~5 % of the
                // axon farm's CPU per call).
                var vb = Vector512.Create(baseValue);
                ref var terms = ref MemoryMarshal.GetArrayDataReference(dTerms);
                for (; d <= networkDim - 16; d += 16)
                {
                    var lo = vb + Vector512.LoadUnsafe(ref terms, (nuint)d);
                    var hi = vb + Vector512.LoadUnsafe(ref terms, (nuint)(d + 8));
                    Vector512.Narrow(lo, hi).CopyTo(row[d..]);
                }
            }
            else if (Vector.IsHardwareAccelerated)
            {
                // The same double sum and the same round-to-nearest narrowing as the scalar loop, two vectors at a time.
                var vb = new Vector<double>(baseValue);
                for (; d <= networkDim - (2 * width); d += 2 * width)
                {
                    var lo = vb + new Vector<double>(dTerms, d);
                    var hi = vb + new Vector<double>(dTerms, d + width);
                    Vector.Narrow(lo, hi).CopyTo(row[d..]);
                }
            }
            for (; d < networkDim; d++) row[d] = (float)(baseValue + dTerms[d]);
        }
    }

    private static double[] _dTerms = [];

    // d · 1e-6 for d in [0, networkDim), computed once per width (the same doubles the formula gives).
    private static double[] DTerms(int networkDim)
    {
        var terms = Volatile.Read(ref _dTerms);
        if (terms.Length == networkDim) return terms;
        terms = new double[networkDim];
        for (var d = 0; d < networkDim; d++) terms[d] = d * 1e-6;
        Volatile.Write(ref _dTerms, terms);
        return terms;
    }

    /// <summary>The echo backward: every element at input position (b, s) becomes Σ_d grads[b, s, d].</summary>
    public static DenseTensor EchoBackward(DenseTensor inputs, DenseTensor grads)
    {
        ArgumentNullException.ThrowIfNull(inputs);
        ArgumentNullException.ThrowIfNull(grads);
        var positions = (int)(inputs.Shape[0] * inputs.Shape[1]);
        var dim = (int)grads.Shape[2];
        var per = (int)(inputs.ElementCount / positions);
        var data = new float[inputs.ElementCount];
        for (var p = 0; p < positions; p++)
        {
            var sum = 0f;
            for (var d = 0; d < dim; d++) sum += grads.Floats![(p * dim) + d];
            for (var k = 0; k < per; k++) data[(p * per) + k] = sum;
        }
        return DenseTensor.Float32([.. inputs.Shape], data);
    }
}

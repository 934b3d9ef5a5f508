using System.Diagnostics;
using System.Globalization;
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using System.Runtime.Intrinsics;
using Bittensor.Core.Crypto;
using Bittensor.Core.Crypto.Curve25519;

namespace Bittensor.Benchmarks.Crypto;

/// <summary>
/// <c>verify-cpu [rounds] [seen]</c>: thread CPU time per sr25519 verification (libsodium constant-time path, the
/// managed variable-time path, batch of 16) and per field/curve primitive, median of rounds. CPU time, not wall
/// time, so the figures stay meaningful on a shared, overloaded machine (cache interference still inflates them).
/// With <c>seen</c> only the first two lines (a cold process's first second, and the key-seen-before line).
/// <para>Two guards (session 17, results/axon.md "Session 17, h4-verify"): the first line is the verification in the
/// process's first second, before any warm-up — code left to tier-0 JIT (80–100 µs instead of 11–14 until tiering
/// caught up, 2–3 s into a one-CPU process) shows there; and the key-seen-before and scalar lines run at
/// <see cref="StackOffsets"/> (the stack shifted by a <c>stackalloc</c> before each) and print the <b>worst</b> median,
/// so a verify whose speed depends on where its stack lands shows up too.</para>
/// </summary>
public static partial class VerifyCpuHarness
{
    [StructLayout(LayoutKind.Sequential)]
    private struct TimeSpec
    {
        public long Sec;
        public long Nsec;
    }

    [LibraryImport("libc", EntryPoint = "clock_gettime")]
    private static partial int ClockGetTime(int clock, out TimeSpec ts);

    private const int ClockThreadCpuTime = 3;

    private static double ThreadCpuNs()
    {
        ClockGetTime(ClockThreadCpuTime, out var ts);
        return ts.Sec * 1e9 + ts.Nsec;
    }

    /// <summary>Runs the table; prints one line per operation.</summary>
    public static int Run(string[] args)
    {
        var rounds = args.Length > 0 ? int.Parse(args[0], CultureInfo.InvariantCulture) : 7;
        var mini = Convert.FromHexString("9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60");
        var message = new byte[128];
        for (var i = 0; i < message.Length; i++) message[i] = (byte)i;
        using var pair = Sr25519KeyPair.FromMiniSecret(mini);
        var pub = pair.PublicKey.ToArray();
        var sig = pair.Sign(message);
        const int batch = 16;
        var keys = new ReadOnlyMemory<byte>[batch];
        var msgs = new ReadOnlyMemory<byte>[batch];
        var sigs = new ReadOnlyMemory<byte>[batch];
        for (var i = 0; i < batch; i++)
        {
            var m = (byte[])mini.Clone();
            m[0] ^= (byte)(i + 1);
            using var p = Sr25519KeyPair.FromMiniSecret(m);
            var msg = (byte[])message.Clone();
            msg[0] = (byte)i;
            keys[i] = p.PublicKey.ToArray();
            msgs[i] = msg;
            sigs[i] = p.Sign(msg);
        }
        var fe = FieldElement.FromBytes(pub);
        var fe2 = FieldElement.FromBytes(sig.AsSpan(0, 32));
        RistrettoVartime.TryDecode(pub, out var point);
        var s = sig[32..];
        s[31] &= 0x7f;
        var onlySeen = args.Length > 1 && args[1] == "seen";
        Console.WriteLine($"# verify-cpu: thread CPU time per op, median of {rounds} rounds; {Environment.ProcessorCount} cpus; {DateTime.UtcNow:u}");
        // The first verifications of the process, before anything else ran the verify path: no warm-up.
        MeasureCold("sr25519 verify, key seen before, 1st second", 200, () => Sr25519.Verify(pub, message, sig));
        if (!onlySeen) Measure("sr25519 verify, libsodium constant-time", 1, 2_000, rounds, () => Sr25519.VerifyWithLibsodium(pub, message, sig));
        MeasureAtOffsets("sr25519 verify, key seen before (cached)", 2_000, rounds, () => Sr25519.Verify(pub, message, sig));
        if (onlySeen) return 0;
        if (VectorArithmetic.Enabled)
        {
            // The same verification on the scalar (radix 2^51) arithmetic, side by side in this process (session 12).
            VectorArithmetic.Enabled = false;
            MeasureAtOffsets("  the same on the scalar path (AVX2 off)", 2_000, rounds, () => Sr25519.Verify(pub, message, sig));
            VectorArithmetic.Enabled = true;
        }
        Console.WriteLine($"# arithmetic: {(VectorArithmetic.Enabled ? "4-way AVX2 (FieldElement4)" : "scalar radix 2^51")} for prepared keys");
        Measure("sr25519 verify, key never seen (no tables)", 1, 500, rounds, () =>
        {
            VerifyingKey.ClearCache();
            return Sr25519.Verify(pub, message, sig);
        });
        Measure("a key's prepared tables built (2nd sighting)", 1, 500, rounds, () =>
        {
            VerifyingKey.ClearCache();
            return VerifyingKey.Get(pub) is not null;
        });
        VerifyingKey.Get(pub);
        foreach (var rotation in new[] { 512, 2048 })
        {
            // Callers in rotation, each signing its own message: within the prepared-key cache (1,024) and twice over it.
            var rk = new byte[rotation][];
            var rm = new byte[rotation][];
            var rs = new byte[rotation][];
            for (var i = 0; i < rotation; i++)
            {
                var m = (byte[])mini.Clone();
                m[3] ^= (byte)i;
                m[4] ^= (byte)(i >> 8);
                m[5] ^= 0x5a;
                using var p = Sr25519KeyPair.FromMiniSecret(m);
                rk[i] = p.PublicKey.ToArray();
                rm[i] = BitConverter.GetBytes(i);
                rs[i] = p.Sign(rm[i]);
            }
            VerifyingKey.ClearCache();
            var next = 0;
            Measure($"sr25519 verify, {rotation} keys in rotation", 1, 4 * rotation, rounds, () =>
            {
                var j = next++ % rotation;
                return Sr25519.Verify(rk[j], rm[j], rs[j]);
            });
        }
        VerifyingKey.ClearCache();
        VerifyingKey.Get(pub);
        Measure("sr25519 verify batch of 16, 16 keys, per signature", batch, 200, rounds, () => Sr25519.VerifyBatch(keys, msgs, sigs));
        var oneKey = Enumerable.Repeat((ReadOnlyMemory<byte>)pub, batch).ToArray();
        var oneKeySigs = msgs.Select(m => (ReadOnlyMemory<byte>)pair.Sign(m.Span)).ToArray();
        Measure("sr25519 verify batch of 16, 1 key, per signature", batch, 200, rounds, () => Sr25519.VerifyBatch(oneKey, msgs, oneKeySigs));
        foreach (var size in new[] { 1, 4, 16, 64 })
        {
            var items = new Sr25519BatchItem[size];
            var valid = new bool[size];
            for (var i = 0; i < size; i++)
            {
                var m = (byte[])mini.Clone();
                m[1] ^= (byte)(i + 1);
                using var p = Sr25519KeyPair.FromMiniSecret(m);
                var msg = (byte[])message.Clone();
                msg[0] = (byte)i;
                items[i] = new Sr25519BatchItem(p.PublicKey.ToArray(), msg, p.Sign(msg));
            }
            Measure($"VerifyEach batch of {size}, {size} keys, per signature", size, Math.Max(50, 2_000 / size), rounds, () => Sr25519.VerifyEach(items, valid));
        }
        foreach (var size in new[] { 4, 16, 64 })
        {
            // The multiscalar multiplication alone (prepared keys, decoded points, random scalars), per signature.
            var vks = new VerifyingKey[size];
            var pts = new ExtendedPoint[size];
            var ks = new byte[32 * size];
            var zs = new byte[32 * size];
            var rng = new Random(size);
            for (var i = 0; i < size; i++)
            {
                var m = (byte[])mini.Clone();
                m[2] ^= (byte)(i + 1);
                using var p = Sr25519KeyPair.FromMiniSecret(m);
                vks[i] = VerifyingKey.Get(p.PublicKey.Span)!;
                RistrettoVartime.TryDecode(p.Sign(message).AsSpan(0, 32), out pts[i]);
                rng.NextBytes(ks.AsSpan(32 * i, 31));
                rng.NextBytes(zs.AsSpan(32 * i, 16));
            }
            var baseS = s.ToArray();
            Measure($"batch multiscalar mult alone, {size} keys, per signature", size, Math.Max(50, 2_000 / size), rounds,
                () => RistrettoVartime.BatchCombination(ks, vks, zs, pts, baseS).X.L0 != 0);
        }
        {
            var vk = VerifyingKey.Get(pub)!;
            var k = s.ToArray();
            k[0] ^= 0x55;
            Measure("single verify combination alone (prepared key)", 1, 2_000, rounds, () => RistrettoVartime.VerifyCombination(k, vk, s).X.L0 != 0);
            if (VectorArithmetic.Enabled)
            {
                VectorArithmetic.Enabled = false;
                Measure("  the same on the scalar path (AVX2 off)", 1, 2_000, rounds, () => RistrettoVartime.VerifyCombination(k, vk, s).X.L0 != 0);
                VectorArithmetic.Enabled = true;
            }
        }
        Measure("ristretto decode", 1, 5_000, rounds, () => RistrettoVartime.TryDecode(pub, out _));
        Measure("double-scalar mult (w5 + w8 base)", 1, 2_000, rounds, () => RistrettoVartime.DoubleScalarMulBase(s, point, s).X.L0 != 0);
        Measure("field mul", 1, 1_000_000, rounds, () => FieldElement.Mul(fe, fe2).L0 != 0);
        Measure("field square", 1, 1_000_000, rounds, () => FieldElement.Square(fe).L0 != 0);
        if (VectorArithmetic.IsSupported)
        {
            var f4 = FieldElement4.Pack(fe, fe2, fe, fe2);
            var g4 = FieldElement4.Pack(fe2, fe, fe2, fe);
            Measure("4-way field mul (per product, 4 per call)", 4, 1_000_000, rounds, () => FieldElement4.Mul(f4, g4).A0.GetElement(0) != 0);
            Measure("4-way field square (per square, 4 per call)", 4, 1_000_000, rounds, () => FieldElement4.Square(f4).A0.GetElement(0) != 0);
            var p4 = ExtendedPoint4.From(point);
            var table = new CachedTable4(1);
            table.Set(0, point.ToAffineCached());
            Measure("4-way point + table point", 1, 200_000, rounds, () => p4.AddCached(table.Get(0), negate: false).V.A0.GetElement(0) != 0);
            Measure("4-way point doubling", 1, 200_000, rounds, () => p4.Double().V.A0.GetElement(0) != 0);
        }
        var affinePoint = point.ToAffineCached();
        Measure("scalar point + affine table point (+ to extended)", 1, 200_000, rounds, () => point.Add(affinePoint).ToExtended().X.L0 != 0);
        var projective = point.ToProjective();
        Measure("scalar point doubling (to extended)", 1, 200_000, rounds, () => projective.Double().ToExtended().X.L0 != 0);
        return 0;
    }

    /// <summary>
    /// <c>verify-loop [seconds]</c>: verifies one signature under a prepared key over and over for the given time (default 10),
    /// for a profiler (<c>perf record -e cpu-clock</c> with <c>DOTNET_PerfMapEnabled=1</c>); prints the count.
    /// </summary>
    public static int Loop(string[] args)
    {
        var seconds = args.Length > 0 ? double.Parse(args[0], CultureInfo.InvariantCulture) : 10;
        var mini = Convert.FromHexString("9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60");
        var message = new byte[128];
        using var pair = Sr25519KeyPair.FromMiniSecret(mini);
        var pub = pair.PublicKey.ToArray();
        var sig = pair.Sign(message);
        VerifyingKey.Get(pub);
        var until = Stopwatch.GetTimestamp() + (long)(seconds * Stopwatch.Frequency);
        long n = 0, ok = 0;
        while (Stopwatch.GetTimestamp() < until)
        {
            for (var i = 0; i < 1000; i++) if (Sr25519.Verify(pub, message, sig)) ok++;
            n += 1000;
        }
        Console.WriteLine($"verify-loop: {n} verifications ({ok} true), {(VectorArithmetic.Enabled ? "4-way AVX2" : "scalar")} arithmetic");
        return ok == n ? 0 : 1;
    }

    /// <summary>
    /// Stack offsets (bytes) at which <see cref="MeasureAtOffsets"/> runs a line: every 16-byte phase of a 64-byte cache
    /// line twice, spread over a 4 KiB page (528 = 512 + 16), so an alignment or 4K-aliasing effect on the stack shows.
    /// </summary>
    internal static readonly int[] StackOffsets = [0, 528, 1056, 1584, 2112, 2640, 3168, 3696];

    /// <summary>The verify path's first second in this process (no warm-up): median CPU per call of rounds of <paramref name="calls"/>.</summary>
    private static void MeasureCold(string name, int calls, Func<bool> op)
    {
        var until = Stopwatch.GetTimestamp() + Stopwatch.Frequency;
        var samples = new List<double>();
        var sink = 0;
        do
        {
            var t0 = ThreadCpuNs();
            for (var i = 0; i < calls; i++) if (op()) sink++;
            samples.Add((ThreadCpuNs() - t0) / calls);
        }
        while (Stopwatch.GetTimestamp() < until);
        samples.Sort();
        var median = samples[samples.Count / 2];
        Console.WriteLine($"{name,-45} {median / 1000,9:F2} µs  (min {samples[0] / 1000:F2}, max {samples[^1] / 1000:F2}, {samples.Count} rounds of {calls}, sink {sink})");
    }

    /// <summary>
    /// <see cref="Measure"/> (one warm-up) at each of <see cref="StackOffsets"/>; prints the worst median, the best and
    /// the offset of the worst.
    /// </summary>
    private static void MeasureAtOffsets(string name, int calls, int rounds, Func<bool> op)
    {
        WarmUp(calls, op);
        double worst = 0, best = double.MaxValue;
        var worstAt = 0;
        var sink = 0;
        foreach (var offset in StackOffsets)
        {
            var median = AtStackOffset(offset, calls, rounds, op, ref sink);
            if (median > worst) (worst, worstAt) = (median, offset);
            best = Math.Min(best, median);
        }
        Console.WriteLine($"{name,-45} {worst / 1000,9:F2} µs  (worst of {StackOffsets.Length} stack offsets, at +{worstAt} B; best {best / 1000:F2}; sink {sink})");
    }

    /// <summary>The median of <paramref name="rounds"/> rounds run with the stack <paramref name="offset"/> bytes deeper.</summary>
    [MethodImpl(MethodImplOptions.NoInlining)]
    internal static unsafe double AtStackOffset(int offset, int calls, int rounds, Func<bool> op, ref int sink)
    {
        var pad = stackalloc byte[offset + 16];
        pad[0] = 1;
        return Rounds(calls, rounds, op, (nint)pad, ref sink);
    }

    [MethodImpl(MethodImplOptions.NoInlining)]
    private static double Rounds(int calls, int rounds, Func<bool> op, nint stackMark, ref int sink)
    {
        _ = stackMark;
        var samples = new double[rounds];
        for (var r = 0; r < rounds; r++)
        {
            var t0 = ThreadCpuNs();
            for (var i = 0; i < calls; i++) if (op()) sink++;
            samples[r] = (ThreadCpuNs() - t0) / calls;
        }
        Array.Sort(samples);
        return samples[rounds / 2];
    }

    private static void WarmUp(int calls, Func<bool> op)
    {
        // Warm-up for at least a second: with the process pinned to one core, tiered compilation's background
        // promotion can take several rounds, and a median over tier-0 rounds is 4× too high (session 11 saw 137 µs
        // for a 33 µs verify; with DOTNET_TieredCompilation=0 the median and min agreed). The verify path itself is
        // compiled fully optimised at once since session 17 (JitOptions.Hot); the other lines' code is not.
        var until = Stopwatch.GetTimestamp() + Stopwatch.Frequency;
        do
        {
            for (var i = 0; i < calls; i++) op();
        }
        while (Stopwatch.GetTimestamp() < until);
    }

    /// <summary>
    /// <c>verify-layout from to step [calls] [rounds] [warm-up seconds] [scalar]</c>: the key-seen-before verification at every
    /// stack offset from..to (bytes, step), after a warm-up (default 5 s); one line per offset with the address of a local
    /// (mod 4096) and the median, then the best and worst medians. The sweep behind results/axon.md "Session 17, h4-verify".
    /// </summary>
    public static unsafe int Layout(string[] args)
    {
        if (args.Length < 3)
        {
            Console.Error.WriteLine("usage: verify-layout from to step [calls=200] [rounds=3] [warm-up-seconds=5] [scalar]");
            return 2;
        }
        var from = int.Parse(args[0], CultureInfo.InvariantCulture);
        var to = int.Parse(args[1], CultureInfo.InvariantCulture);
        var step = int.Parse(args[2], CultureInfo.InvariantCulture);
        var calls = args.Length > 3 ? int.Parse(args[3], CultureInfo.InvariantCulture) : 200;
        var rounds = args.Length > 4 ? int.Parse(args[4], CultureInfo.InvariantCulture) : 3;
        var warm = args.Length > 5 ? double.Parse(args[5], CultureInfo.InvariantCulture) : 5;
        if (from < 0 || to < from || step < 1 || calls < 1 || rounds < 1 || to > 1 << 20)
        {
            Console.Error.WriteLine("verify-layout: need 0 <= from <= to <= 1048576, step >= 1, calls >= 1, rounds >= 1");
            return 2;
        }
        if (args.Length > 6 && args[6] == "scalar") VectorArithmetic.Enabled = false;
        var (pub, message, sig) = OneSignature();
        var until = Stopwatch.GetTimestamp() + (long)(warm * Stopwatch.Frequency);
        do
        {
            for (var i = 0; i < 1000; i++) Sr25519.Verify(pub, message, sig);
        }
        while (Stopwatch.GetTimestamp() < until);
        var local = 0;
        Console.WriteLine($"# verify-layout: {(VectorArithmetic.Enabled ? "4-way AVX2" : "scalar")}; {Environment.ProcessorCount} cpus; &local 0x{(ulong)&local:x} (mod 4096 = {(ulong)&local % 4096}); {DateTime.UtcNow:u}");
        double worst = 0, best = double.MaxValue;
        var sink = 0;
        Func<bool> op = () => Sr25519.Verify(pub, message, sig);
        for (var offset = from; offset <= to; offset += step)
        {
            var median = AtStackOffset(offset, calls, rounds, op, ref sink);
            Console.WriteLine($"offset {offset,6} median {median / 1000:F2} us");
            worst = Math.Max(worst, median);
            best = Math.Min(best, median);
        }
        Console.WriteLine($"# medians: best {best / 1000:F2} us, worst {worst / 1000:F2} us (sink {sink})");
        return 0;
    }

    /// <summary>
    /// <c>verify-cold [seconds]</c>: from the process's first verification, rounds of 100 key-seen-before verifications for
    /// the given time (default 3); prints when the rounds settled under 30 µs (seconds after the process started) and the
    /// median of the first 100 rounds. Shows how long the verify path runs slow code after start (tier-0 JIT).
    /// </summary>
    public static int Cold(string[] args)
    {
        var seconds = args.Length > 0 ? double.Parse(args[0], CultureInfo.InvariantCulture) : 3;
        var (pub, message, sig) = OneSignature();
        var start = Process.GetCurrentProcess().StartTime.ToUniversalTime();
        var settled = -1.0;
        var slow = 0;
        var all = new List<double>();
        var until = Stopwatch.GetTimestamp() + (long)(seconds * Stopwatch.Frequency);
        while (Stopwatch.GetTimestamp() < until)
        {
            var t0 = ThreadCpuNs();
            for (var i = 0; i < 100; i++) Sr25519.Verify(pub, message, sig);
            var us = (ThreadCpuNs() - t0) / 100 / 1000;
            var at = (DateTime.UtcNow - start).TotalSeconds;
            if (us < 30 && settled < 0) settled = at;
            if (us >= 30)
            {
                settled = -1;
                slow++;
            }
            all.Add(us);
        }
        var firstHundred = all.Take(100).Order().ToArray();
        var allocated = GC.GetAllocatedBytesForCurrentThread();
        for (var i = 0; i < 1000; i++) Sr25519.Verify(pub, message, sig);
        allocated = GC.GetAllocatedBytesForCurrentThread() - allocated;
        Console.WriteLine($"verify-cold: {Environment.ProcessorCount} cpus; settled under 30 us at {settled:F2} s after start; {slow} of {all.Count} rounds over 30 us; first 100 rounds' median {firstHundred[firstHundred.Length / 2]:F2} us; then {allocated / 1000.0:F0} B allocated per verify");
        return 0;
    }

    private static (byte[] Pub, byte[] Message, byte[] Sig) OneSignature()
    {
        var mini = Convert.FromHexString("9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60");
        var message = new byte[128];
        for (var i = 0; i < message.Length; i++) message[i] = (byte)i;
        using var pair = Sr25519KeyPair.FromMiniSecret(mini);
        return (pair.PublicKey.ToArray(), message, pair.Sign(message));
    }

    private static void Measure(string name, int opsPerCall, int calls, int rounds, Func<bool> op)
    {
        WarmUp(calls, op);
        var samples = new double[rounds];
        var sink = 0;
        for (var r = 0; r < rounds; r++)
        {
            var t0 = ThreadCpuNs();
            for (var i = 0; i < calls; i++) if (op()) sink++;
            samples[r] = (ThreadCpuNs() - t0) / calls / opsPerCall;
        }
        Array.Sort(samples);
        var median = samples[rounds / 2];
        var unit = median >= 1000 ? $"{median / 1000:F2} µs" : $"{median:F1} ns";
        Console.WriteLine($"{name,-45} {unit,12}  (min {samples[0] / (median >= 1000 ? 1000 : 1):F2}, sink {sink})");
    }
}

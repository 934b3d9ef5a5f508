using System.Runtime.Intrinsics;
using System.Diagnostics;
using System.Globalization;
using System.Runtime.InteropServices;
using Bittensor.Core.Crypto;
using Bittensor.Core.Crypto.Curve25519;

namespace Bittensor.Benchmarks.Crypto;

/// <summary>
/// <c>verify-cpu [rounds]</c>: thread CPU time per sr25519 verification (libsodium constant-time path, the
/// managed variable-time path, batch of 16) and per field/curve primitive, median of rounds. CPU time, not wall
/// time, so the figures stay meaningful on a shared, overloaded machine (cache interference still inflates them).
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
        Console.WriteLine($"# verify-cpu: thread CPU time per op, median of {rounds} rounds; {Environment.ProcessorCount} cpus; {DateTime.UtcNow:u}");
        Measure("sr25519 verify, libsodium constant-time", 1, 2_000, rounds, () => Sr25519.VerifyWithLibsodium(pub, message, sig));
        Measure("sr25519 verify, key seen before (cached)", 1, 2_000, rounds, () => Sr25519.Verify(pub, message, sig));
        if (VectorArithmetic.Enabled)
        {
            // The same verification on the scalar (radix 2^51) arithmetic, side by side in this process (session 12).
            VectorArithmetic.Enabled = false;
            Measure("  the same on the scalar path (AVX2 off)", 1, 2_000, rounds, () => Sr25519.Verify(pub, message, sig));
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

    private static void Measure(string name, int opsPerCall, int calls, int rounds, Func<bool> op)
    {
        // Warm-up for at least a second: with the process pinned to one core, tiered compilation's background
        // promotion can take several rounds, and a median over tier-0 rounds is 4× too high (session 11 saw 137 µs
        // for a 33 µs verify; with DOTNET_TieredCompilation=0 the median and min agreed).
        var until = Stopwatch.GetTimestamp() + Stopwatch.Frequency;
        do
        {
            for (var i = 0; i < calls; i++) op();
        }
        while (Stopwatch.GetTimestamp() < until);
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

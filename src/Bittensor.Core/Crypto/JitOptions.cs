using System.Runtime.CompilerServices;

namespace Bittensor.Core.Crypto;

/// <summary>
/// How the signature code asks the JIT to compile it. <see cref="Hot"/> (<see cref="MethodImplOptions.AggressiveOptimization"/>)
/// marks every method on the sr25519 verification path that does real arithmetic (field and point operations, the
/// Straus/NAF loops, the Merlin/Keccak challenge, the batch equation): such a method is compiled fully optimised on its
/// first call and never runs as tier-0 code.
/// <para>Why (session 17, benchmarks/results/axon.md "Session 17, h4-verify"): under tiered compilation a method first
/// runs as tier-0 code (no inlining, every <see cref="System.Runtime.Intrinsics.Vector256{T}"/> through memory), and the
/// runtime moves hot methods to tier 1 only after a quiet period with no new tier-0 compilation — 100 ms, times ten when
/// the process may use a single CPU (<c>taskset -c 1</c>, a one-CPU container), and restarted by every method compiled
/// meanwhile. The 4-way AVX2 verify ran 80–100 µs instead of 11–14 µs for the first 2–3 s of a one-CPU process (longer in
/// a process that keeps compiling new code), which is what <c>verify-cpu</c>'s "key seen before" line caught and what
/// looked like a stack-layout effect: an axon's verifier or a validator's first verifications paid it too. The price:
/// these methods get no dynamic PGO (measured: no slower at steady state), and a marked method is seldom inlined, so
/// small helpers whose inlining matters stay unmarked: <see cref="Strobe128"/>'s operations, inlined into the marked
/// <c>Sr25519.Challenge</c> (marked, they were called instead and the challenge's transcript object escaped to the heap:
/// 288 instead of 264 bytes allocated per verification).</para>
/// </summary>
internal static class JitOptions
{
    /// <summary>Compile fully optimised at once (no tier 0, no tiering).</summary>
    internal const MethodImplOptions Hot = MethodImplOptions.AggressiveOptimization;
}

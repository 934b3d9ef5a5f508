using System.Collections.Concurrent;
using System.Diagnostics.Tracing;
using System.Reflection;
using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics.X86;
using System.Runtime.Loader;
using Bittensor.Core.Crypto;
using Bittensor.Core.Crypto.Curve25519;

namespace Bittensor.Core.Tests.Crypto;

/// <summary>
/// The sr25519 verification path is compiled fully optimised on first use (<see cref="JitOptions.Hot"/>), never as
/// tier-0 code: under tiered compilation tier-0 code ran the 4-way AVX2 verify at 80–100 µs instead of 11–14 µs for the
/// first seconds of a one-CPU process (session 17, benchmarks/results/axon.md "Session 17, h4-verify"). No timing here:
/// the runtime's own JIT events say at which tier each method was compiled.
/// </summary>
public sealed class VerifyJitTests
{
    // The methods a single verification and a VerifyEach batch spend their time in (the 4-way ones only where AVX2 runs them).
    private static readonly string[] HotAlways =
    [
        "Sr25519.Verify", "Sr25519.Challenge", "Keccak.PermuteLanes", "RistrettoVartime.TryDecode",
        "RistrettoVartime.VerifyCombination", "RistrettoVartime.NonAdjacentForm", "FieldElement.Mul", "FieldElement.Square",
    ];

    private static readonly string[] HotVector =
    [
        "RistrettoVartime.VerifyCombination4", "ExtendedPoint4.AddCached", "ExtendedPoint4.Double", "FieldElement4.Mul", "FieldElement4.Square",
    ];

    private delegate bool VerifyFn(ReadOnlySpan<byte> publicKey, ReadOnlySpan<byte> message, ReadOnlySpan<byte> signature);

    /// <summary>
    /// Loads a second copy of Bittensor.Core (its own load context, so every method is compiled afresh), verifies with it
    /// while listening to the runtime's method-load events, and requires each hot method's compilation to be fully
    /// optimised. Without the attribute these come out as tier-0 ("quick JIT") code.
    /// </summary>
    [Fact]
    public void A_fresh_copy_of_the_verify_path_is_compiled_optimised_on_first_use_not_as_tier_0()
    {
        var expected = Avx2.IsSupported && Environment.GetEnvironmentVariable("BITTENSOR_CRYPTO_SCALAR") != "1"
            ? [.. HotAlways, .. HotVector]
            : HotAlways;
        using var pair = Sr25519KeyPair.FromMiniSecret(Convert.FromHexString("9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60"));
        var message = new byte[] { 1, 2, 3 };
        var pub = pair.PublicKey.ToArray();
        var sig = pair.Sign(message);

        // Not collectible: code in a collectible context is never tiered (always compiled optimised), which would hide tier 0.
        var context = new AssemblyLoadContext("verify-jit-test", isCollectible: false);
        {
            using var listener = new JitListener();
            var core = context.LoadFromAssemblyPath(typeof(Sr25519).Assembly.Location);
            Assert.NotSame(typeof(Sr25519).Assembly, core);
            var verify = core.GetType(typeof(Sr25519).FullName!, throwOnError: true)!
                .GetMethod(nameof(Sr25519.Verify), [typeof(ReadOnlySpan<byte>), typeof(ReadOnlySpan<byte>), typeof(ReadOnlySpan<byte>)])!
                .CreateDelegate<VerifyFn>();
            // Twice: the first sighting of a key is verified without tables, the second prepares them (VerifyCombination).
            for (var i = 0; i < 3; i++) Assert.True(verify(pub, message, sig));
            Assert.False(verify(pub, [9], sig));
            RunBatch(core, pub, message, sig);

            // The events arrive on the runtime's dispatch thread; a sentinel compiled last marks that the ones before it came.
            listener.WaitForSentinel();
            var missing = expected.Where(m => !listener.Tiers.ContainsKey(m)).ToArray();
            Assert.True(missing.Length == 0, $"no method-load event for {string.Join(", ", missing)} (events seen: {listener.Tiers.Count})");
            var tier0 = expected.Where(m => listener.Tiers[m].Any(t => t is Tier.QuickJitted or Tier.QuickJittedInstrumented)).ToArray();
            Assert.True(tier0.Length == 0, $"compiled as tier-0 code: {string.Join(", ", tier0.Select(m => $"{m} [{string.Join(",", listener.Tiers[m])}]"))}");
        }
    }

    // VerifyEach over two items through reflection (ReadOnlySpan parameters: a small array-taking shim is built from the fresh copy's types).
    private static void RunBatch(Assembly core, byte[] pub, byte[] message, byte[] sig)
    {
        var itemType = core.GetType(typeof(Sr25519BatchItem).FullName!, throwOnError: true)!;
        var items = Array.CreateInstance(itemType, 2);
        for (var i = 0; i < 2; i++)
            items.SetValue(Activator.CreateInstance(itemType, (ReadOnlyMemory<byte>)pub, (ReadOnlyMemory<byte>)message, (ReadOnlyMemory<byte>)sig), i);
        var shim = typeof(VerifyJitTests).GetMethod(nameof(VerifyEachShim), BindingFlags.NonPublic | BindingFlags.Static)!.MakeGenericMethod(itemType);
        var each = core.GetType(typeof(Sr25519).FullName!, throwOnError: true)!.GetMethod(nameof(Sr25519.VerifyEach))!;
        Assert.True((bool)shim.Invoke(null, [each, items])!);
    }

    private delegate bool VerifyEachFn<T>(ReadOnlySpan<T> items, Span<bool> valid);

    private static bool VerifyEachShim<T>(MethodInfo each, T[] items)
    {
        var valid = new bool[items.Length];
        return each.CreateDelegate<VerifyEachFn<T>>()(items, valid) && valid.All(v => v);
    }

    /// <summary>The rule behind the test above, for every method of the hot types: real arithmetic is marked, or always inlined into marked code.</summary>
    [Fact]
    public void Every_arithmetic_method_of_the_verify_path_is_marked_hot_or_inlined()
    {
        Type[] types = [typeof(FieldElement), typeof(FieldElement4), typeof(ExtendedPoint4), typeof(CachedTable4), typeof(RistrettoVartime), typeof(ExtendedPoint), typeof(ProjectivePoint)];
        const BindingFlags all = BindingFlags.Public | BindingFlags.NonPublic | BindingFlags.Static | BindingFlags.Instance | BindingFlags.DeclaredOnly;
        var unmarked = types
            .SelectMany(t => t.GetMethods(all).Cast<MethodBase>())
            .Where(m => m.GetMethodBody() is { } body && body.GetILAsByteArray()!.Length > 64)
            .Where(m => (m.MethodImplementationFlags & (MethodImplAttributes.AggressiveOptimization | MethodImplAttributes.AggressiveInlining)) == 0)
            .Where(m => m.Name is not ("BuildBaseChunkTables" or "BuildBaseTable4" or "OddMultiplesAffine" or "DecodeOrThrow")) // once, in the type initialiser
            .Where(m => m.Name != nameof(FieldElement4.Limb)) // tests only
            .Select(m => $"{m.DeclaringType!.Name}.{m.Name}")
            .ToArray();
        Assert.True(unmarked.Length == 0, $"methods over 64 IL bytes without [MethodImpl(JitOptions.Hot)] or AggressiveInlining: {string.Join(", ", unmarked)}");
    }

    // ETW MethodFlags bits 7..9 (the runtime's ETW::MethodLog optimization tier).
    internal enum Tier
    {
        Unknown = 0,
        MinOptJitted = 1,
        Optimized = 2,
        QuickJitted = 3,
        OptimizedTier1 = 4,
        OptimizedTier1Osr = 5,
        QuickJittedInstrumented = 6,
        OptimizedTier1Instrumented = 7,
    }

    private sealed class JitListener : EventListener
    {
        private const string Sentinel = nameof(JitListener) + "Sentinel";
        private readonly ManualResetEventSlim _sentinel = new();
        private volatile bool _ready;

        internal ConcurrentDictionary<string, ConcurrentBag<Tier>> Tiers { get; } = new();

        internal JitListener() => _ready = true;

        protected override void OnEventSourceCreated(EventSource source)
        {
            if (source.Name == "Microsoft-Windows-DotNETRuntime") EnableEvents(source, EventLevel.Verbose, (EventKeywords)0x10); // JIT keyword
        }

        protected override void OnEventWritten(EventWrittenEventArgs e)
        {
            if (!_ready || e.EventName is null || !e.EventName.StartsWith("MethodLoadVerbose", StringComparison.Ordinal) || e.PayloadNames is null) return;
            var ns = Payload(e, "MethodNamespace") as string ?? "";
            var name = Payload(e, "MethodName") as string ?? "";
            if (name == Sentinel)
            {
                _sentinel.Set();
                return;
            }
            if (!ns.StartsWith("Bittensor.Core.Crypto", StringComparison.Ordinal)) return;
            var flags = Convert.ToUInt32(Payload(e, "MethodFlags"), System.Globalization.CultureInfo.InvariantCulture);
            var type = ns[(ns.LastIndexOf('.') + 1)..];
            Tiers.GetOrAdd($"{type}.{name}", _ => []).Add((Tier)((flags >> 7) & 0x7));
        }

        private static object? Payload(EventWrittenEventArgs e, string name)
        {
            var i = e.PayloadNames!.IndexOf(name);
            return i < 0 ? null : e.Payload![i];
        }

        // Compiles a method nothing else has (a new dynamic method), then waits, bounded and generously (a busy machine), for its load event.
        internal void WaitForSentinel()
        {
            var sentinel = new System.Reflection.Emit.DynamicMethod(Sentinel, typeof(int), Type.EmptyTypes);
            var il = sentinel.GetILGenerator();
            il.Emit(System.Reflection.Emit.OpCodes.Ldc_I4, 42);
            il.Emit(System.Reflection.Emit.OpCodes.Ret);
            Assert.Equal(42, sentinel.CreateDelegate<Func<int>>()());
            Assert.True(_sentinel.Wait(TimeSpan.FromSeconds(120)), "the runtime's method-load event for a sentinel method did not arrive within 120 s");
        }

        public override void Dispose()
        {
            _sentinel.Dispose();
            base.Dispose();
        }
    }
}

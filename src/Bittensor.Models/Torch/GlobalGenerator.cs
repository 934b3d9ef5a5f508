using static TorchSharp.torch;

namespace Bittensor.Models.Torch;

/// <summary>
/// torch's global CPU generator is shared by every model in the process, and some layers (TorchSharp's dropout inside
/// <c>TransformerEncoderLayer</c>, the initial draws of module constructors) draw only from it. Every such draw in this
/// project happens under <see cref="Gate"/>; a model that needs its draws to be repeatable runs them with its own
/// generator state swapped in (<see cref="Run{T}"/>), so neighbours on other threads neither move its stream nor see it.
/// </summary>
public static class GlobalGenerator
{
    /// <summary>Held around every draw from torch's global generator.</summary>
    public static readonly Lock Gate = new();

    /// <summary>
    /// Runs <paramref name="body"/> with <paramref name="state"/> (a generator state from <see cref="StateOf"/> or a
    /// previous run) as the global generator's state, then stores the advanced state back and restores the global one.
    /// </summary>
    public static T Run<T>(ref Tensor state, Func<T> body)
    {
        ArgumentNullException.ThrowIfNull(body);
        lock (Gate)
        {
            using var saved = random.get_rng_state();
            random.set_rng_state(state);
            try
            {
                return body();
            }
            finally
            {
                var advanced = random.get_rng_state().DetachFromDisposeScope();
                state.Dispose();
                state = advanced;
                random.set_rng_state(saved);
            }
        }
    }

    /// <summary>The initial state of a generator seeded with <paramref name="seed"/>.</summary>
    public static Tensor StateOf(ulong seed)
    {
        using var generator = new Generator(seed);
        return generator.get_state().DetachFromDisposeScope();
    }
}

using System.Buffers.Binary;
using System.Security.Cryptography;

namespace Bittensor.Core.Crypto;

/// <summary>
/// A Merlin transcript (dalek-cryptography/merlin 3.x) over <see cref="Strobe128"/>: labelled messages in,
/// labelled challenges out, plus the witness-bound RNG schnorrkel uses for nonces.
/// </summary>
internal sealed class MerlinTranscript
{
    private readonly Strobe128 strobe;

    private MerlinTranscript(Strobe128 strobe) => this.strobe = strobe;

    /// <summary>A new transcript: STROBE with "Merlin v1.0", then append("dom-sep", label).</summary>
    internal MerlinTranscript(ReadOnlySpan<byte> label)
    {
        strobe = new Strobe128("Merlin v1.0"u8);
        AppendMessage("dom-sep"u8, label);
    }

    /// <summary>An independent copy of this transcript.</summary>
    internal MerlinTranscript Clone() => new(strobe.Clone());

    /// <summary>Makes this transcript a copy of <paramref name="other"/> (a reused scratch transcript, no allocation).</summary>
    internal void CopyFrom(MerlinTranscript other) => strobe.CopyFrom(other.strobe);

    internal void AppendMessage(ReadOnlySpan<byte> label, ReadOnlySpan<byte> message)
    {
        Span<byte> len = stackalloc byte[4];
        BinaryPrimitives.WriteUInt32LittleEndian(len, checked((uint)message.Length));
        strobe.MetaAd(label, false);
        strobe.MetaAd(len, true);
        strobe.Ad(message, false);
    }

    internal void ChallengeBytes(ReadOnlySpan<byte> label, Span<byte> output)
    {
        Span<byte> len = stackalloc byte[4];
        BinaryPrimitives.WriteUInt32LittleEndian(len, checked((uint)output.Length));
        strobe.MetaAd(label, false);
        strobe.MetaAd(len, true);
        strobe.Prf(output, false);
    }

    /// <summary>
    /// Starts a witness RNG on a clone of the transcript (the transcript itself is unchanged): each
    /// witness is keyed in with its label, then <paramref name="random32"/> is keyed with label "rng".
    /// </summary>
    internal TranscriptRng BuildRng(ReadOnlySpan<byte> witnessLabel, ReadOnlySpan<byte> witness, ReadOnlySpan<byte> random32) =>
        BuildRng(witnessLabel, witness, ReadOnlySpan<byte>.Empty, false, random32);

    /// <summary>Like the single-witness overload, with a second witness under the same label.</summary>
    internal TranscriptRng BuildRng(ReadOnlySpan<byte> witnessLabel, ReadOnlySpan<byte> witness1, ReadOnlySpan<byte> witness2,
        bool hasSecond, ReadOnlySpan<byte> random32)
    {
        var s = strobe.Clone();
        RekeyWithWitness(s, witnessLabel, witness1);
        if (hasSecond) RekeyWithWitness(s, witnessLabel, witness2);
        s.MetaAd("rng"u8, false);
        s.Key(random32, false);
        return new TranscriptRng(s);
    }

    private static void RekeyWithWitness(Strobe128 s, ReadOnlySpan<byte> label, ReadOnlySpan<byte> witness)
    {
        Span<byte> len = stackalloc byte[4];
        BinaryPrimitives.WriteUInt32LittleEndian(len, checked((uint)witness.Length));
        s.MetaAd(label, false);
        s.MetaAd(len, true);
        s.Key(witness, false);
    }

    /// <summary>Wipes the STROBE state (the transcript may have absorbed secrets).</summary>
    internal void Clear() => strobe.Clear();
}

/// <summary>Merlin's <c>TranscriptRng</c>: fill(n) = meta_AD(LE32(n)); PRF(n). Secret-bearing; call <see cref="Dispose"/>.</summary>
internal sealed class TranscriptRng : IDisposable
{
    private readonly Strobe128 strobe;

    internal TranscriptRng(Strobe128 strobe) => this.strobe = strobe;

    internal void FillBytes(Span<byte> output)
    {
        Span<byte> len = stackalloc byte[4];
        BinaryPrimitives.WriteUInt32LittleEndian(len, checked((uint)output.Length));
        strobe.MetaAd(len, false);
        strobe.Prf(output, false);
    }

    public void Dispose() => strobe.Clear();
}

/// <summary>Fresh 32-byte randomness for witness RNGs, from the OS CSPRNG.</summary>
internal static class WitnessRandom
{
    internal static void Fill(Span<byte> random32) => RandomNumberGenerator.Fill(random32);
}

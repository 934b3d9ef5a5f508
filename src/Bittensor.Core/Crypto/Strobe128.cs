using System.Security.Cryptography;

namespace Bittensor.Core.Crypto;

/// <summary>
/// The subset of STROBE-128 (v1.0.2) that Merlin uses: meta-AD, AD, PRF and KEY, with the "more" continuation
/// flag. Mirrors dalek-cryptography/merlin src/strobe.rs byte for byte. Not thread-safe.
/// </summary>
internal sealed class Strobe128
{
    private const int Rate = 166; // 200 - 2*(128/8) - 2
    private const byte FlagI = 1, FlagA = 2, FlagC = 4, FlagT = 8, FlagM = 16, FlagK = 32;

    // 8-byte aligned because Keccak reinterprets it as 25 ulongs.
    private readonly ulong[] lanes = new ulong[25];
    private int pos;
    private int posBegin;
    private byte curFlags;

    private Span<byte> State => System.Runtime.InteropServices.MemoryMarshal.AsBytes(lanes.AsSpan());

    private Strobe128()
    {
    }

    /// <summary>Initialises STROBE-128 with <paramref name="protocolLabel"/>.</summary>
    internal Strobe128(ReadOnlySpan<byte> protocolLabel)
    {
        var st = State;
        ReadOnlySpan<byte> head = [0x01, Rate + 2, 0x01, 0x00, 0x01, 0x60];
        head.CopyTo(st);
        "STROBEv1.0.2"u8.CopyTo(st[6..]);
        Keccak.Permute(st);
        MetaAd(protocolLabel, false);
    }

    /// <summary>An independent copy of the state (used by Merlin's witness RNG).</summary>
    internal Strobe128 Clone()
    {
        var c = new Strobe128 { pos = pos, posBegin = posBegin, curFlags = curFlags };
        lanes.CopyTo(c.lanes, 0);
        return c;
    }

    /// <summary>Makes this state a copy of <paramref name="other"/>'s (a reused scratch transcript, no allocation).</summary>
    internal void CopyFrom(Strobe128 other)
    {
        other.lanes.CopyTo(lanes, 0);
        pos = other.pos;
        posBegin = other.posBegin;
        curFlags = other.curFlags;
    }

    /// <summary>Overwrites the sponge state with zeros.</summary>
    internal void Clear()
    {
        CryptographicOperations.ZeroMemory(State);
        pos = posBegin = curFlags = 0;
    }

    internal void MetaAd(ReadOnlySpan<byte> data, bool more)
    {
        BeginOp(FlagM | FlagA, more);
        Absorb(data);
    }

    internal void Ad(ReadOnlySpan<byte> data, bool more)
    {
        BeginOp(FlagA, more);
        Absorb(data);
    }

    internal void Prf(Span<byte> output, bool more)
    {
        BeginOp(FlagI | FlagA | FlagC, more);
        Squeeze(output);
    }

    internal void Key(ReadOnlySpan<byte> data, bool more)
    {
        BeginOp(FlagA | FlagC, more);
        Overwrite(data);
    }

    private void RunF()
    {
        var st = State;
        st[pos] ^= (byte)posBegin;
        st[pos + 1] ^= 0x04;
        st[Rate + 1] ^= 0x80;
        Keccak.PermuteLanes(lanes);
        pos = 0;
        posBegin = 0;
    }

    private void Absorb(ReadOnlySpan<byte> data)
    {
        var st = State;
        foreach (var b in data)
        {
            st[pos++] ^= b;
            if (pos == Rate) RunF();
        }
    }

    private void Overwrite(ReadOnlySpan<byte> data)
    {
        var st = State;
        foreach (var b in data)
        {
            st[pos++] = b;
            if (pos == Rate) RunF();
        }
    }

    private void Squeeze(Span<byte> output)
    {
        var st = State;
        for (var i = 0; i < output.Length; i++)
        {
            output[i] = st[pos];
            st[pos] = 0;
            pos++;
            if (pos == Rate) RunF();
        }
    }

    private void BeginOp(byte flags, bool more)
    {
        if (more)
        {
            if (flags != curFlags) throw new InvalidOperationException("STROBE: continued operation with different flags");
            return;
        }
        if ((flags & FlagT) != 0) throw new NotSupportedException("STROBE: transport operations are not supported");
        var oldBegin = (byte)posBegin;
        posBegin = pos + 1;
        curFlags = flags;
        Absorb([oldBegin, flags]);
        var forceF = (flags & (FlagC | FlagK)) != 0;
        if (forceF && pos != 0) RunF();
    }
}

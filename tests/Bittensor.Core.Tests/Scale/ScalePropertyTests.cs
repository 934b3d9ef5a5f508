using Bittensor.Core.Scale;
using FsCheck;
using FsCheck.Fluent;
using FsCheck.Xunit;

namespace Bittensor.Core.Tests.Scale;

public sealed class ScalePropertyTests
{
    [Property(MaxTest = 500)]
    public bool Any_u64_compact_round_trips(ulong value)
    {
        var bytes = new ScaleWriter().Compact(value).ToArray();
        var r = new ScaleReader(bytes);
        var back = r.CompactU64();
        r.EnsureEnd();
        return back == value;
    }

    [Property(MaxTest = 300)]
    public bool Any_u128_compact_round_trips(ulong hi, ulong lo)
    {
        var value = new UInt128(hi, lo);
        var bytes = new ScaleWriter().Compact(value).ToArray();
        var r = new ScaleReader(bytes);
        return r.CompactU128() == value && r.Remaining == 0;
    }

    [Property(MaxTest = 300)]
    public bool A_record_of_mixed_fields_round_trips(ushort a, ulong b, ushort[] vec, string? s, bool flag)
    {
        var text = s ?? "";
        var bytes = new ScaleWriter().U16(a).U64(b).VecU16(vec).String(text).Bool(flag).ToArray();
        var r = new ScaleReader(bytes);
        var ok = r.U16() == a && r.U64() == b && r.VecU16().AsSpan().SequenceEqual(vec);
        // Lone surrogates are replaced by UTF-8 encoding; compare with what the encoder would produce.
        var expected = System.Text.Encoding.UTF8.GetString(System.Text.Encoding.UTF8.GetBytes(text));
        return ok && r.String() == expected && r.Bool() == flag && r.Remaining == 0;
    }

    [Property(MaxTest = 300)]
    public Property Every_strict_prefix_of_a_record_fails_with_ScaleException_only(ushort a, ushort[] vec, ulong c)
    {
        var bytes = new ScaleWriter().U16(a).VecU16(vec).Compact(c).U64(c).ToArray();
        return Prop.ForAll(Gen.Choose(0, bytes.Length - 1).ToArbitrary(), cut =>
        {
            try
            {
                var r = new ScaleReader(bytes.AsSpan(0, cut));
                r.U16();
                r.VecU16();
                r.CompactU64();
                r.U64();
                return false;
            }
            catch (ScaleException e)
            {
                return e.Position >= 0 && e.Position <= cut;
            }
        });
    }

    [Property(MaxTest = 500)]
    public bool Random_bytes_never_throw_anything_but_ScaleException(byte[] junk)
    {
        try
        {
            var r = new ScaleReader(junk);
            r.VecU16();
            r.Bytes();
            r.String();
            r.CompactBig();
            r.Vec((ref ScaleReader x) => x.U128(), 16);
            return true;
        }
        catch (ScaleException)
        {
            return true;
        }
    }
}

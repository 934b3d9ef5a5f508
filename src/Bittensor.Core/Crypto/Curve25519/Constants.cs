using System.Globalization;
using System.Numerics;

namespace Bittensor.Core.Crypto.Curve25519;

/// <summary>Curve25519 / ristretto255 constants (RFC 7748, RFC 9496 §4.1), derived once from their integer values.</summary>
internal static class Constants
{
    internal static readonly BigInteger P = BigInteger.Pow(2, 255) - 19;

    /// <summary>d = −121665 / 121666 mod p (twisted Edwards a = −1).</summary>
    internal static readonly BigInteger DValue = Mod(-121665 * BigInteger.ModPow(121666, P - 2, P));

    internal static readonly FieldElement D = FromInteger(DValue);

    internal static readonly FieldElement D2 = FromInteger(Mod(2 * DValue));

    /// <summary>SQRT_M1, the non-negative square root of −1 (RFC 9496).</summary>
    internal static readonly FieldElement SqrtM1 =
        FromInteger(Parse("19681161376707505956807079304988542015446066515923890162744021073123829784752"));

    /// <summary>INVSQRT_A_MINUS_D = 1/sqrt(a − d), non-negative (RFC 9496).</summary>
    internal static readonly FieldElement InvSqrtAMinusD =
        FromInteger(Parse("54469307008909316920995813868745141605393597292927456921205312896311721017578"));

    internal static BigInteger Mod(BigInteger x)
    {
        var r = x % P;
        return r.Sign < 0 ? r + P : r;
    }

    internal static FieldElement FromInteger(BigInteger x)
    {
        Span<byte> b = stackalloc byte[32];
        b.Clear();
        Mod(x).TryWriteBytes(b, out _, isUnsigned: true, isBigEndian: false);
        return FieldElement.FromBytes(b);
    }

    internal static BigInteger ToInteger(in FieldElement x)
    {
        Span<byte> b = stackalloc byte[32];
        x.ToBytes(b);
        return new BigInteger(b, isUnsigned: true, isBigEndian: false);
    }

    private static BigInteger Parse(string s) => BigInteger.Parse(s, NumberStyles.None, CultureInfo.InvariantCulture);
}

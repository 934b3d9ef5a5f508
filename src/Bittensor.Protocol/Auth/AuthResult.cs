using Bittensor.Protocol.Wire;

namespace Bittensor.Protocol;

/// <summary>
/// The outcome of checking a request's headers. A rejection carries a one-line reason (safe to return to
/// the caller) and the 2021 code: <see cref="ReturnCode.Unauthenticated"/> or
/// <see cref="ReturnCode.RequestIncompatibleVersion"/>. The axon answers every rejection with gRPC
/// UNAUTHENTICATED and the reason as status detail.
/// </summary>
public readonly record struct AuthResult
{
    private AuthResult(bool accepted, ReturnCode code, string reason, string? hotkey)
    {
        IsAccepted = accepted;
        Code = code;
        Reason = reason;
        Hotkey = hotkey;
    }

    /// <summary>True when the caller is authenticated and its nonce was recorded.</summary>
    public bool IsAccepted { get; }

    /// <summary>Success, Unauthenticated or RequestIncompatibleVersion.</summary>
    public ReturnCode Code { get; }

    /// <summary>Why the request was rejected; empty when accepted.</summary>
    public string Reason { get; }

    /// <summary>The authenticated caller's SS58 address (also set on some rejections when it could be parsed).</summary>
    public string? Hotkey { get; }

    /// <summary>An accepted caller.</summary>
    public static AuthResult Accepted(string hotkey) => new(true, ReturnCode.Success, string.Empty, hotkey);

    /// <summary>A rejection with a code and reason.</summary>
    public static AuthResult Rejected(ReturnCode code, string reason, string? hotkey = null) => new(false, code, reason, hotkey);
}

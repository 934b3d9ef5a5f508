namespace Bittensor.Protocol;

/// <summary>The three request metadata headers of the 2021 protocol, in the order a 2021 axon reads them.</summary>
public static class AuthHeaders
{
    /// <summary>First header: <c>rpc-auth-header</c>.</summary>
    public const string AuthName = "rpc-auth-header";

    /// <summary>The only value of <see cref="AuthName"/>: <c>Bittensor</c>.</summary>
    public const string AuthValue = "Bittensor";

    /// <summary>Second header: <c>bittensor-signature</c> = <c>&lt;nonce&gt;bitxx&lt;ss58&gt;bitxx0x&lt;128 hex&gt;</c>.</summary>
    public const string SignatureName = "bittensor-signature";

    /// <summary>Third header: <c>bittensor-version</c>, the decimal protocol version.</summary>
    public const string VersionName = "bittensor-version";

    /// <summary>The separator between nonce, ss58 address and signature.</summary>
    public const string Separator = "bitxx";

    /// <summary>The three header names in wire order.</summary>
    public static IReadOnlyList<string> InOrder { get; } = [AuthName, SignatureName, VersionName];
}

namespace Bittensor.Protocol;

/// <summary>
/// The 2021 peer protocol version integer (100·major + 10·minor + patch) and its compatibility rule.
/// </summary>
public static class ProtocolVersion
{
    /// <summary>bittensor 1.5.0 → 150: sent in <c>TensorMessage.version</c>, every <c>Tensor.version</c> and the <c>bittensor-version</c> header.</summary>
    public const int Current = 150;

    /// <summary>
    /// The 2021 axon's rule: a caller is accepted when <c>own_version &lt;= header_version + 10</c>
    /// (callers at most one minor version behind, any newer caller).
    /// </summary>
    public static bool IsCallerCompatible(int ownVersion, int callerVersion)
        => (long)ownVersion <= (long)callerVersion + 10;
}

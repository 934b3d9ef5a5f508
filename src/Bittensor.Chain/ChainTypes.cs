namespace Bittensor.Chain;

/// <summary>A produced block.</summary>
/// <param name="Number">Block number (genesis = 0).</param>
/// <param name="Hash">32-byte block hash.</param>
/// <param name="Timestamp">When the block was produced (UTC).</param>
public sealed record BlockInfo(ulong Number, ReadOnlyMemory<byte> Hash, DateTimeOffset Timestamp);

/// <summary>What identifies a chain to a signer: a signature over one chain's payload is invalid on another.</summary>
/// <param name="Name">Human-readable chain name, e.g. "localnet:default".</param>
/// <param name="GenesisHash">32-byte genesis block hash.</param>
/// <param name="SpecVersion">Runtime spec version (the localnet follows spec 148, May 2024).</param>
/// <param name="TransactionVersion">Transaction encoding version.</param>
public sealed record ChainIdentity(string Name, ReadOnlyMemory<byte> GenesisHash, uint SpecVersion, uint TransactionVersion);

/// <summary>The outcome of a submitted call.</summary>
public abstract record CallResult
{
    private CallResult()
    {
    }

    /// <summary>True when the call was included and succeeded.</summary>
    public abstract bool IsSuccess { get; }

    /// <summary>Included in block <paramref name="Block"/> at position <paramref name="ExtrinsicIndex"/> and executed successfully.</summary>
    public sealed record InBlock(ulong Block, int ExtrinsicIndex) : CallResult
    {
        /// <inheritdoc />
        public override bool IsSuccess => true;

        /// <inheritdoc />
        public override string ToString() => $"in block {Block}";
    }

    /// <summary>
    /// Refused. <paramref name="Error"/> is the runtime error name (subtensor's, e.g. <c>NotRegistered</c>) or a
    /// pool reason (<c>Stale</c>, <c>Future</c>, <c>BadSignature</c>, <c>BadCall</c>, <c>BadSigner</c>);
    /// <paramref name="Block"/> is set when the call was included and failed when applied.
    /// </summary>
    public sealed record Failed(string Error, string Message, ulong? Block = null) : CallResult
    {
        /// <inheritdoc />
        public override bool IsSuccess => false;

        /// <inheritdoc />
        public override string ToString() => $"{Error}: {Message}";
    }
}

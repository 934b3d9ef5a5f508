using Bittensor.Core.Crypto;
using Bittensor.Core.Scale;

namespace Bittensor.Chain.Local;

/// <summary>
/// A localnet block as a Substrate node shows it: its SCALE header (<c>parentHash ‖ Compact(number) ‖ stateRoot ‖
/// extrinsicsRoot ‖ digest</c>, empty digest) whose BLAKE2b-256 is the block hash, its extrinsics and its
/// <c>System.Events</c> bytes. The state root is a BLAKE2b-256 commitment to the block's contents, not a trie
/// root; the extrinsics root is BLAKE2b-256 of the SCALE <c>Vec</c> of extrinsics. Bodies and events of the most
/// recent blocks are persisted with the state (bounded: <see cref="LocalnetState.MaxBodies"/> blocks, 4 MiB); older
/// blocks have a header but no body.
/// </summary>
/// <param name="Number">Block number.</param>
/// <param name="Hash">BLAKE2b-256 of <see cref="Header"/>.</param>
/// <param name="ParentHash">The parent's hash.</param>
/// <param name="StateRoot">State root field.</param>
/// <param name="ExtrinsicsRoot">Extrinsics root field.</param>
/// <param name="Header">SCALE header.</param>
/// <param name="Timestamp">Block time when known.</param>
/// <param name="Extrinsics">The extrinsics, or null when the body is not kept.</param>
/// <param name="Events">SCALE <c>Vec&lt;EventRecord&gt;</c>, or null when not kept.</param>
public sealed record LocalnetBlock(
    ulong Number,
    ReadOnlyMemory<byte> Hash,
    ReadOnlyMemory<byte> ParentHash,
    ReadOnlyMemory<byte> StateRoot,
    ReadOnlyMemory<byte> ExtrinsicsRoot,
    ReadOnlyMemory<byte> Header,
    DateTimeOffset? Timestamp = null,
    IReadOnlyList<byte[]>? Extrinsics = null,
    byte[]? Events = null)
{
    /// <summary>Encodes a header with an empty digest.</summary>
    public static byte[] EncodeHeader(ReadOnlySpan<byte> parentHash, ulong number, ReadOnlySpan<byte> stateRoot, ReadOnlySpan<byte> extrinsicsRoot)
    {
        var w = new ScaleWriter(104);
        w.Raw(parentHash).Compact(number).Raw(stateRoot).Raw(extrinsicsRoot).Compact(0UL);
        return w.ToArray();
    }

    /// <summary>Decodes a header written by <see cref="EncodeHeader"/> (the digest must be empty).</summary>
    public static LocalnetBlock FromHeader(byte[] header)
    {
        ArgumentNullException.ThrowIfNull(header);
        var r = new ScaleReader(header);
        var parent = r.Raw(32).ToArray();
        var number = r.CompactU64();
        var state = r.Raw(32).ToArray();
        var extrinsics = r.Raw(32).ToArray();
        if (r.Length(1) != 0) throw new ScaleException("localnet headers carry no digest items", r.Position);
        r.EnsureEnd();
        return new LocalnetBlock(number, Blake2b.Hash256(header), parent, state, extrinsics, header);
    }
}

/// <summary>The answer to <see cref="Localnet.Submit"/>.</summary>
/// <param name="Hash">BLAKE2b-256 of the extrinsic.</param>
/// <param name="Rejected">Why the pool refused it (nothing was queued), or null.</param>
/// <param name="Included">Completes with the call's result when a block includes it; null when rejected.</param>
/// <param name="Future">True when its nonce is ahead of the account's next one: it waits for the gap to fill.</param>
public sealed record LocalnetSubmission(byte[] Hash, CallResult.Failed? Rejected, Task<CallResult>? Included, bool Future = false);

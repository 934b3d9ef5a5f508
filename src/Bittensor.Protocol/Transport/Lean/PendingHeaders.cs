using System.Text;
using Grpc.Core;

namespace Bittensor.Protocol.Lean;

/// <summary>
/// A request's metadata as its HEADERS brought it, kept until the call's header check needs it as <see cref="Metadata"/>
/// (<see cref="ToMetadata"/>): a call shed before its check (most of an overloaded axon's sheds) never makes the
/// Metadata, its entries or the strings of its long values (the 440-octet <c>bittensor-signature</c>). Its connection
/// reuses it for later calls (under the connection's lock); <see cref="Clear"/> forgets everything of the call before.
/// </summary>
internal sealed class PendingHeaders
{
    /// <summary>Raw octets a pooled instance may keep between calls (a larger one is dropped, not pooled).</summary>
    public const int PooledRawLimit = 4096;

    private readonly List<(string Name, string? Value, int Offset, int Length)> _fields = [];
    private byte[] _raw = [];
    private int _rawLength;

    /// <summary>Fields held.</summary>
    public int Count => _fields.Count;

    /// <summary>The size of the buffer for values held as octets.</summary>
    public int RawCapacity => _raw.Length;

    /// <summary>A field with its value as a string.</summary>
    public void Add(string name, string value) => _fields.Add((name, value, 0, 0));

    /// <summary>A field with its value as octets (Latin-1), copied: the decoder's buffer is reused by the next block.</summary>
    public void Add(string name, ReadOnlySpan<byte> value)
    {
        if (_rawLength + value.Length > _raw.Length) Array.Resize(ref _raw, Math.Max(_rawLength + value.Length, Math.Max(512, _raw.Length * 2)));
        value.CopyTo(_raw.AsSpan(_rawLength));
        _fields.Add((name, null, _rawLength, value.Length));
        _rawLength += value.Length;
    }

    /// <summary>The fields as gRPC metadata, in order (a field that is not valid metadata is dropped, as grpc-dotnet drops it).</summary>
    public Metadata ToMetadata()
    {
        var headers = new Metadata();
        foreach (var (name, value, offset, length) in _fields)
            H2Connection.AddMetadata(headers, name, value ?? Encoding.Latin1.GetString(_raw, offset, length));
        return headers;
    }

    /// <summary>Forgets the fields (and wipes the octets held), ready for another call.</summary>
    public void Clear()
    {
        _fields.Clear();
        _raw.AsSpan(0, _rawLength).Clear();
        _rawLength = 0;
    }
}

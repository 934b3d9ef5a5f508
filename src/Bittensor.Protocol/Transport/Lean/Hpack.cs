using System.Text;

namespace Bittensor.Protocol.Lean;

/// <summary>
/// A decoded header field: its name, and its value as a string, or (<see cref="Value"/> null) as the
/// <see cref="RawLength"/> octets at <see cref="RawOffset"/> of the decoder's raw values for the same block
/// (<see cref="HpackDecoder.RawValue"/>).
/// </summary>
internal readonly record struct HpackField(string Name, string? Value, int RawOffset, int RawLength);

/// <summary>A header block the peer's HPACK encoder made that cannot be decoded (RFC 7541): a connection error, COMPRESSION_ERROR.</summary>
internal sealed class HpackException(string message) : Exception(message);

/// <summary>
/// The HPACK decoder of one HTTP/2 connection (RFC 7541): static table, dynamic table with size updates, Huffman-coded
/// strings (Appendix B). Bounded: the dynamic table never exceeds the size this side announced (4096, the default), an
/// integer never exceeds 2^24, a string never exceeds its block, and the decoded header list stops growing past the
/// caller's limit (the block is still decoded to the end so the dynamic table stays in step with the peer's encoder).
/// Values are octets (Latin-1: one char per byte), as HTTP/2 field values are.
/// </summary>
internal sealed class HpackDecoder
{
    /// <summary>The SETTINGS_HEADER_TABLE_SIZE this side announces (the protocol's default, so it is never sent).</summary>
    public const int DefaultTableSize = 4096;

    /// <summary>The RFC's per-entry overhead, counted in table and header-list sizes.</summary>
    public const int EntryOverhead = 32;

    /// <summary>Strings of at most this many octets are looked up among those made before (and the well-known ones).</summary>
    internal const int StringsUpTo = 64;

    private const int StringSlots = 64;

    private readonly int _maxAllowed;
    private int _max;
    private int _size;
    // Ring of dynamic entries: _head is the newest; index 62 is the newest, 62 + count - 1 the oldest.
    private (string Name, string Value)[] _ring = new (string, string)[16];
    private int _head;
    private int _count;
    private List<HpackField>? _scratch; // the string overload's
    // Values kept raw in the current block (Decode with deferOver).
    private byte[] _raw = [];
    private int _rawLength;
    // Strings this decoder made before, by the hash of their octets (StringSlots slots; StringsUpTo octets at most): a
    // header name or a value a peer sends on every call (its :authority, user-agent, grpc-timeout) is the string made
    // the first time, not a new one per call. A slot holds the newest string that hashed to it; a miss only allocates.
    private readonly string?[] _strings = new string?[StringSlots];

    /// <summary>A decoder whose dynamic table may grow to <paramref name="maxTableSize"/> octets (what this side announced).</summary>
    public HpackDecoder(int maxTableSize = DefaultTableSize)
    {
        _maxAllowed = maxTableSize;
        _max = maxTableSize;
    }

    /// <summary>Octets the dynamic table holds (entries' name + value + 32).</summary>
    public int TableSize => _size;

    /// <summary>The dynamic table's current maximum (after size updates).</summary>
    public int TableMaxSize => _max;

    /// <summary>Entries in the dynamic table.</summary>
    public int TableCount => _count;

    /// <summary>
    /// Decodes one complete header block into <paramref name="headers"/> (cleared first). Returns false when the decoded
    /// list's size (RFC 9113 §6.5.2: name + value + 32 per field) went over <paramref name="maxListSize"/>: the fields
    /// past the limit are dropped but the block is decoded to its end.
    /// </summary>
    /// <exception cref="HpackException">The block is not valid HPACK (a connection error, COMPRESSION_ERROR).</exception>
    public bool Decode(ReadOnlySpan<byte> block, List<(string Name, string Value)> headers, int maxListSize)
    {
        _scratch ??= [];
        var withinLimit = Decode(block, _scratch, maxListSize, int.MaxValue);
        headers.Clear();
        foreach (var f in _scratch) headers.Add((f.Name, f.Value!));
        _scratch.Clear();
        return withinLimit;
    }

    /// <summary>
    /// Decodes one complete header block into <paramref name="headers"/> (cleared first), as the other overload does,
    /// except that the value of a field the peer did not index (§6.2.2, §6.2.3) whose octets are more than
    /// <paramref name="deferOver"/> is not made into a string: its octets (Huffman-decoded) are kept in
    /// the decoder (<see cref="RawValue"/>) until the next block is decoded, and the field's <see cref="HpackField.Value"/> is null (a
    /// caller that may never need the value, such as a call shed from its read, makes its string only when it does).
    /// </summary>
    /// <exception cref="HpackException">The block is not valid HPACK (a connection error, COMPRESSION_ERROR).</exception>
    public bool Decode(ReadOnlySpan<byte> block, List<HpackField> headers, int maxListSize, int deferOver)
    {
        headers.Clear();
        _rawLength = 0;
        var listSize = 0L;
        var withinLimit = true;
        var pos = 0;
        var fieldSeen = false;
        while (pos < block.Length)
        {
            var b = block[pos];
            string name;
            string? value;
            int rawOffset = 0, rawLength = 0;
            if ((b & 0x80) != 0)
            {
                // §6.1 indexed field.
                var index = ReadInt(block, ref pos, 7);
                if (index == 0) throw new HpackException("indexed header field with index 0");
                (name, value) = Lookup(index);
            }
            else if ((b & 0x40) != 0)
            {
                // §6.2.1 literal with incremental indexing.
                var index = ReadInt(block, ref pos, 6);
                name = index == 0 ? ReadString(block, ref pos) : Lookup(index).Name;
                value = ReadString(block, ref pos);
                Add(name, value);
            }
            else if ((b & 0x20) != 0)
            {
                // §6.3 dynamic table size update: only at the start of a block (§4.2).
                if (fieldSeen) throw new HpackException("dynamic table size update after a header field");
                var size = ReadInt(block, ref pos, 5);
                if (size > _maxAllowed) throw new HpackException($"dynamic table size update to {size} exceeds the announced {_maxAllowed}");
                _max = size;
                Evict(0);
                continue;
            }
            else
            {
                // §6.2.2 without indexing, §6.2.3 never indexed: 4-bit prefix.
                var index = ReadInt(block, ref pos, 4);
                name = index == 0 ? ReadString(block, ref pos) : Lookup(index).Name;
                value = ReadValue(block, ref pos, deferOver, out rawOffset, out rawLength);
            }
            fieldSeen = true;
            listSize += name.Length + (value?.Length ?? rawLength) + EntryOverhead;
            if (listSize > maxListSize) withinLimit = false;
            if (withinLimit) headers.Add(new HpackField(name, value, rawOffset, rawLength));
        }
        return withinLimit;
    }

    /// <summary>The octets of a field whose value the last <see cref="Decode(ReadOnlySpan{byte}, List{HpackField}, int, int)"/> kept raw.</summary>
    public ReadOnlySpan<byte> RawValue(in HpackField field) => _raw.AsSpan(field.RawOffset, field.RawLength);

    /// <summary>A field's value as a string (made from its octets when the decoder kept it raw).</summary>
    public string Value(in HpackField field) => field.Value ?? Encoding.Latin1.GetString(RawValue(field));

    private (string Name, string Value) Lookup(int index)
    {
        if (index <= StaticTable.Length) return StaticTable[index - 1];
        var d = index - StaticTable.Length - 1;
        if (d >= _count) throw new HpackException($"header index {index} is beyond the tables ({StaticTable.Length} static, {_count} dynamic)");
        return _ring[(_head - d + _ring.Length) % _ring.Length];
    }

    private void Add(string name, string value)
    {
        var entry = name.Length + value.Length + EntryOverhead;
        if (entry > _max)
        {
            // §4.4: an entry larger than the table empties it and is not added.
            Evict(int.MaxValue);
            return;
        }
        Evict(entry);
        if (_count == _ring.Length)
        {
            var bigger = new (string, string)[_ring.Length * 2];
            for (var i = 0; i < _count; i++) bigger[_count - 1 - i] = _ring[(_head - i + _ring.Length) % _ring.Length];
            _ring = bigger;
            _head = _count - 1;
        }
        _head = (_head + 1) % _ring.Length;
        _ring[_head] = (name, value);
        _count++;
        _size += entry;
    }

    // Evicts the oldest entries until `incoming` more octets fit under the maximum (int.MaxValue: everything).
    private void Evict(int incoming)
    {
        while (_count > 0 && (incoming == int.MaxValue || _size + incoming > _max))
        {
            var oldest = (_head - (_count - 1) + _ring.Length) % _ring.Length;
            var (n, v) = _ring[oldest];
            _ring[oldest] = default;
            _size -= n.Length + v.Length + EntryOverhead;
            _count--;
        }
    }

    /// <summary>§5.1 integer with an N-bit prefix; values over 2^24 are refused (nothing in a bounded block needs more).</summary>
    internal static int ReadInt(ReadOnlySpan<byte> block, ref int pos, int prefixBits)
    {
        var mask = (1 << prefixBits) - 1;
        var value = block[pos++] & mask;
        if (value < mask) return value;
        var shift = 0;
        while (true)
        {
            if (pos >= block.Length) throw new HpackException("truncated integer");
            var b = block[pos++];
            value += (b & 0x7F) << shift;
            if (value > 1 << 24) throw new HpackException("integer over 2^24");
            if ((b & 0x80) == 0) return value;
            shift += 7;
            if (shift > 21) throw new HpackException("integer over 2^24");
        }
    }

    /// <summary>§5.2 string literal: H bit, length, then raw or Huffman-coded octets.</summary>
    private string ReadString(ReadOnlySpan<byte> block, ref int pos)
    {
        var raw = ReadLiteral(block, ref pos, out var huffman);
        if (!huffman) return MakeString(raw);
        var max = Huffman.MaxDecodedLength(raw.Length);
        var rented = max <= 512 ? null : System.Buffers.ArrayPool<byte>.Shared.Rent(max);
        Span<byte> output = rented is null ? stackalloc byte[512] : rented;
        try
        {
            return MakeString(output[..Huffman.DecodeTo(raw, output)]);
        }
        finally
        {
            if (rented is not null) System.Buffers.ArrayPool<byte>.Shared.Return(rented);
        }
    }

    /// <summary>
    /// A value of a field that is not indexed: a string, or (null) its octets appended to <see cref="_raw"/> when they are
    /// more than <paramref name="deferOver"/> (Huffman-coded: once decoded).
    /// </summary>
    private string? ReadValue(ReadOnlySpan<byte> block, ref int pos, int deferOver, out int rawOffset, out int rawLength)
    {
        rawOffset = rawLength = 0;
        var start = pos;
        var raw = ReadLiteral(block, ref pos, out var huffman);
        if (raw.Length <= deferOver && !(huffman && Huffman.MaxDecodedLength(raw.Length) > deferOver))
        {
            pos = start;
            return ReadString(block, ref pos);
        }
        var max = huffman ? Huffman.MaxDecodedLength(raw.Length) : raw.Length;
        if (_rawLength + max > _raw.Length) Array.Resize(ref _raw, Math.Max(_rawLength + max, Math.Max(256, _raw.Length * 2)));
        var length = huffman ? Huffman.DecodeTo(raw, _raw.AsSpan(_rawLength)) : raw.Length;
        if (!huffman) raw.CopyTo(_raw.AsSpan(_rawLength));
        // Huffman-coded and short once decoded: a string after all (its octets are not kept).
        if (length <= deferOver) return MakeString(_raw.AsSpan(_rawLength, length));
        rawOffset = _rawLength;
        rawLength = length;
        _rawLength += length;
        return null;
    }

    private static ReadOnlySpan<byte> ReadLiteral(ReadOnlySpan<byte> block, ref int pos, out bool huffman)
    {
        if (pos >= block.Length) throw new HpackException("truncated string");
        huffman = (block[pos] & 0x80) != 0;
        var length = ReadInt(block, ref pos, 7);
        if (length > block.Length - pos) throw new HpackException("string overruns the header block");
        var raw = block.Slice(pos, length);
        pos += length;
        return raw;
    }

    /// <summary>
    /// The string of <paramref name="octets"/> (Latin-1): a well-known one or one this decoder made before when it is
    /// short and was seen, else a new one (remembered in its slot).
    /// </summary>
    private string MakeString(ReadOnlySpan<byte> octets)
    {
        if (octets.Length == 0) return "";
        if (octets.Length > StringsUpTo) return Encoding.Latin1.GetString(octets);
        var hash = Hash(octets);
        var known = WellKnown[hash & (WellKnown.Length - 1)];
        if (known is not null && Ascii.Equals(octets, known)) return known;
        ref var slot = ref _strings[hash & (StringSlots - 1)];
        if (slot is not null && slot.Length == octets.Length && Latin1Equals(octets, slot)) return slot;
        return slot = Encoding.Latin1.GetString(octets);
    }

    private static bool Latin1Equals(ReadOnlySpan<byte> octets, string s)
    {
        if (Ascii.Equals(octets, s)) return true;
        if (Ascii.IsValid(octets)) return false;
        for (var i = 0; i < octets.Length; i++)
            if (s[i] != octets[i]) return false;
        return true;
    }

    // Length, and the first and last 8 octets (fewer for a short string): enough to tell apart the names and the
    // per-peer values that repeat; two strings in one slot only cost the newer one's allocation.
    private static int Hash(ReadOnlySpan<byte> octets)
    {
        ulong head = 0, tail = 0;
        var n = Math.Min(8, octets.Length);
        for (var i = 0; i < n; i++)
        {
            head = (head << 8) | octets[i];
            tail = (tail << 8) | octets[octets.Length - 1 - i];
        }
        var h = (head * 0x9E3779B97F4A7C15UL) ^ (tail * 0xC2B2AE3D27D4EB4FUL) ^ ((ulong)octets.Length * 0x165667B19E3779F9UL);
        return (int)(h >> 40);
    }

    private static string?[] BuildWellKnown()
    {
        var table = new string?[256];
        IEnumerable<string> strings =
        [
            .. StaticTable.Select(e => e.Name), .. StaticTable.Select(e => e.Value),
            "te", "trailers", "content-type", "application/grpc", "application/grpc+proto", "grpc-timeout", "grpc-encoding",
            "grpc-accept-encoding", "identity", "identity,deflate,gzip", "deflate,gzip", "user-agent", "/Bittensor/Forward",
            "/Bittensor/Backward", "rpc-auth-header", "Bittensor", "bittensor-signature", "bittensor-version", "grpc-status",
            "grpc-message", "http", "POST",
        ];
        foreach (var s in strings)
        {
            if (s.Length == 0) continue;
            var octets = Encoding.Latin1.GetBytes(s);
            ref var slot = ref table[Hash(octets) & (table.Length - 1)];
            slot ??= s;
        }
        return table;
    }

    /// <summary>RFC 7541 Appendix A.</summary>
    internal static readonly (string Name, string Value)[] StaticTable =
    [
        (":authority", ""), (":method", "GET"), (":method", "POST"), (":path", "/"), (":path", "/index.html"), (":scheme", "http"),
        (":scheme", "https"), (":status", "200"), (":status", "204"), (":status", "206"), (":status", "304"), (":status", "400"),
        (":status", "404"), (":status", "500"), ("accept-charset", ""), ("accept-encoding", "gzip, deflate"), ("accept-language", ""),
        ("accept-ranges", ""), ("accept", ""), ("access-control-allow-origin", ""), ("age", ""), ("allow", ""), ("authorization", ""),
        ("cache-control", ""), ("content-disposition", ""), ("content-encoding", ""), ("content-language", ""), ("content-length", ""),
        ("content-location", ""), ("content-range", ""), ("content-type", ""), ("cookie", ""), ("date", ""), ("etag", ""), ("expect", ""),
        ("expires", ""), ("from", ""), ("host", ""), ("if-match", ""), ("if-modified-since", ""), ("if-none-match", ""), ("if-range", ""),
        ("if-unmodified-since", ""), ("last-modified", ""), ("link", ""), ("location", ""), ("max-forwards", ""), ("proxy-authenticate", ""),
        ("proxy-authorization", ""), ("range", ""), ("referer", ""), ("refresh", ""), ("retry-after", ""), ("server", ""), ("set-cookie", ""),
        ("strict-transport-security", ""), ("transfer-encoding", ""), ("user-agent", ""), ("vary", ""), ("via", ""), ("www-authenticate", ""),
    ];

    // The names and values this server reads on every gRPC call, by their hash's slot (a collision keeps the first: the
    // other is made once and remembered in the decoder's own slots). After StaticTable: built from it.
    private static readonly string?[] WellKnown = BuildWellKnown();
}

/// <summary>
/// The HPACK Huffman code (RFC 7541 Appendix B): a decoder over a binary tree built once from the code table, and an
/// encoder (tests only: the server sends literals without Huffman).
/// </summary>
internal static class Huffman
{
    // Appendix B: code (right-aligned) and length in bits of symbols 0..255, then EOS (256).
    private static readonly uint[] Codes =
    [
        0x1ff8, 0x7fffd8, 0xfffffe2, 0xfffffe3, 0xfffffe4, 0xfffffe5, 0xfffffe6, 0xfffffe7, 0xfffffe8, 0xffffea, 0x3ffffffc, 0xfffffe9, 0xfffffea,
        0x3ffffffd, 0xfffffeb, 0xfffffec, 0xfffffed, 0xfffffee, 0xfffffef, 0xffffff0, 0xffffff1, 0xffffff2, 0x3ffffffe, 0xffffff3, 0xffffff4,
        0xffffff5, 0xffffff6, 0xffffff7, 0xffffff8, 0xffffff9, 0xffffffa, 0xffffffb, 0x14, 0x3f8, 0x3f9, 0xffa, 0x1ff9, 0x15, 0xf8, 0x7fa, 0x3fa,
        0x3fb, 0xf9, 0x7fb, 0xfa, 0x16, 0x17, 0x18, 0x0, 0x1, 0x2, 0x19, 0x1a, 0x1b, 0x1c, 0x1d, 0x1e, 0x1f, 0x5c, 0xfb, 0x7ffc, 0x20, 0xffb,
        0x3fc, 0x1ffa, 0x21, 0x5d, 0x5e, 0x5f, 0x60, 0x61, 0x62, 0x63, 0x64, 0x65, 0x66, 0x67, 0x68, 0x69, 0x6a, 0x6b, 0x6c, 0x6d, 0x6e, 0x6f,
        0x70, 0x71, 0x72, 0xfc, 0x73, 0xfd, 0x1ffb, 0x7fff0, 0x1ffc, 0x3ffc, 0x22, 0x7ffd, 0x3, 0x23, 0x4, 0x24, 0x5, 0x25, 0x26, 0x27, 0x6,
        0x74, 0x75, 0x28, 0x29, 0x2a, 0x7, 0x2b, 0x76, 0x2c, 0x8, 0x9, 0x2d, 0x77, 0x78, 0x79, 0x7a, 0x7b, 0x7ffe, 0x7fc, 0x3ffd, 0x1ffd,
        0xffffffc, 0xfffe6, 0x3fffd2, 0xfffe7, 0xfffe8, 0x3fffd3, 0x3fffd4, 0x3fffd5, 0x7fffd9, 0x3fffd6, 0x7fffda, 0x7fffdb, 0x7fffdc,
        0x7fffdd, 0x7fffde, 0xffffeb, 0x7fffdf, 0xffffec, 0xffffed, 0x3fffd7, 0x7fffe0, 0xffffee, 0x7fffe1, 0x7fffe2, 0x7fffe3, 0x7fffe4,
        0x1fffdc, 0x3fffd8, 0x7fffe5, 0x3fffd9, 0x7fffe6, 0x7fffe7, 0xffffef, 0x3fffda, 0x1fffdd, 0xfffe9, 0x3fffdb, 0x3fffdc, 0x7fffe8,
        0x7fffe9, 0x1fffde, 0x7fffea, 0x3fffdd, 0x3fffde, 0xfffff0, 0x1fffdf, 0x3fffdf, 0x7fffeb, 0x7fffec, 0x1fffe0, 0x1fffe1, 0x3fffe0,
        0x1fffe2, 0x7fffed, 0x3fffe1, 0x7fffee, 0x7fffef, 0xfffea, 0x3fffe2, 0x3fffe3, 0x3fffe4, 0x7ffff0, 0x3fffe5, 0x3fffe6, 0x7ffff1,
        0x3ffffe0, 0x3ffffe1, 0xfffeb, 0x7fff1, 0x3fffe7, 0x7ffff2, 0x3fffe8, 0x1ffffec, 0x3ffffe2, 0x3ffffe3, 0x3ffffe4, 0x7ffffde,
        0x7ffffdf, 0x3ffffe5, 0xfffff1, 0x1ffffed, 0x7fff2, 0x1fffe3, 0x3ffffe6, 0x7ffffe0, 0x7ffffe1, 0x3ffffe7, 0x7ffffe2, 0xfffff2,
        0x1fffe4, 0x1fffe5, 0x3ffffe8, 0x3ffffe9, 0xffffffd, 0x7ffffe3, 0x7ffffe4, 0x7ffffe5, 0xfffec, 0xfffff3, 0xfffed, 0x1fffe6, 0x3fffe9,
        0x1fffe7, 0x1fffe8, 0x7ffff3, 0x3fffea, 0x3fffeb, 0x1ffffee, 0x1ffffef, 0xfffff4, 0xfffff5, 0x3ffffea, 0x7ffff4, 0x3ffffeb,
        0x7ffffe6, 0x3ffffec, 0x3ffffed, 0x7ffffe7, 0x7ffffe8, 0x7ffffe9, 0x7ffffea, 0x7ffffeb, 0xffffffe, 0x7ffffec, 0x7ffffed, 0x7ffffee,
        0x7ffffef, 0x7fffff0, 0x3ffffee, 0x3fffffff,
    ];

    private static readonly byte[] Lengths =
    [
        13, 23, 28, 28, 28, 28, 28, 28, 28, 24, 30, 28, 28, 30, 28, 28, 28, 28, 28, 28, 28, 28, 30, 28, 28, 28, 28, 28, 28, 28, 28, 28,
        6, 10, 10, 12, 13, 6, 8, 11, 10, 10, 8, 11, 8, 6, 6, 6, 5, 5, 5, 6, 6, 6, 6, 6, 6, 6, 7, 8, 15, 6, 12, 10,
        13, 6, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 8, 7, 8, 13, 19, 13, 14, 6,
        15, 5, 6, 5, 6, 5, 6, 6, 6, 5, 7, 7, 6, 6, 6, 5, 6, 7, 6, 5, 5, 6, 7, 7, 7, 7, 7, 15, 11, 14, 13, 28,
        20, 22, 20, 20, 22, 22, 22, 23, 22, 23, 23, 23, 23, 23, 24, 23, 24, 24, 22, 23, 24, 23, 23, 23, 23, 21, 22, 23, 22, 23, 23, 24,
        22, 21, 20, 22, 22, 23, 23, 21, 23, 22, 22, 24, 21, 22, 23, 23, 21, 21, 22, 21, 23, 22, 23, 23, 20, 22, 22, 22, 23, 22, 22, 23,
        26, 26, 20, 19, 22, 23, 22, 25, 26, 26, 26, 27, 27, 26, 24, 25, 19, 21, 26, 27, 27, 26, 27, 24, 21, 21, 26, 26, 28, 27, 27, 27,
        20, 24, 20, 21, 22, 21, 21, 23, 22, 22, 25, 25, 24, 24, 26, 23, 26, 27, 26, 26, 27, 27, 27, 27, 27, 28, 27, 27, 27, 27, 27, 26,
        30,
    ];

    private const int Eos = 256;
    private const int Missing = int.MinValue;

    // Tree nodes: child index (> 0), a leaf -(symbol + 1), or Missing. Node 0 is the root.
    private static readonly int[] Zero;
    private static readonly int[] One;

    static Huffman()
    {
        Zero = new int[512];
        One = new int[512];
        Array.Fill(Zero, Missing);
        Array.Fill(One, Missing);
        var nodes = 1;
        for (var sym = 0; sym <= Eos; sym++)
        {
            var node = 0;
            for (var bit = Lengths[sym] - 1; bit >= 0; bit--)
            {
                var children = ((Codes[sym] >> bit) & 1) == 0 ? Zero : One;
                if (bit == 0)
                {
                    if (children[node] != Missing) throw new InvalidOperationException($"HPACK Huffman table: code of {sym} is not prefix-free");
                    children[node] = -(sym + 1);
                }
                else
                {
                    if (children[node] == Missing) children[node] = nodes++;
                    else if (children[node] < 0) throw new InvalidOperationException($"HPACK Huffman table: code of {sym} extends another code");
                    node = children[node];
                }
            }
        }
    }

    /// <summary>The most octets <paramref name="encodedLength"/> Huffman-coded octets decode to (the shortest code is 5 bits).</summary>
    public static int MaxDecodedLength(int encodedLength) => (encodedLength * 8 / 5) + 1;

    /// <summary>Decodes a Huffman-coded string (§5.2) into a string; see <see cref="DecodeTo"/>.</summary>
    /// <exception cref="HpackException">Invalid code, EOS in the string, or bad padding.</exception>
    public static string Decode(ReadOnlySpan<byte> encoded)
    {
        var max = MaxDecodedLength(encoded.Length);
        var rented = max <= 512 ? null : System.Buffers.ArrayPool<byte>.Shared.Rent(max);
        Span<byte> output = rented is null ? stackalloc byte[512] : rented;
        try
        {
            return Encoding.Latin1.GetString(output[..DecodeTo(encoded, output)]);
        }
        finally
        {
            if (rented is not null) System.Buffers.ArrayPool<byte>.Shared.Return(rented);
        }
    }

    /// <summary>
    /// Decodes a Huffman-coded string (§5.2) into <paramref name="output"/> (at least <see cref="MaxDecodedLength"/>
    /// octets) and returns the octets written: the padding must be fewer than 8 bits, all ones (a prefix of EOS), and
    /// EOS itself must not appear.
    /// </summary>
    /// <exception cref="HpackException">Invalid code, EOS in the string, or bad padding.</exception>
    public static int DecodeTo(ReadOnlySpan<byte> encoded, Span<byte> output)
    {
        var written = 0;
        var node = 0;
        var pending = 0;
        var allOnes = true;
        foreach (var octet in encoded)
        {
            for (var bit = 7; bit >= 0; bit--)
            {
                var one = ((octet >> bit) & 1) != 0;
                var next = one ? One[node] : Zero[node];
                if (next == Missing) throw new HpackException("invalid Huffman code");
                if (next < 0)
                {
                    var sym = -next - 1;
                    if (sym == Eos) throw new HpackException("EOS in a Huffman-coded string");
                    output[written++] = (byte)sym;
                    node = 0;
                    pending = 0;
                    allOnes = true;
                }
                else
                {
                    node = next;
                    pending++;
                    allOnes &= one;
                }
            }
        }
        if (pending > 7) throw new HpackException("Huffman padding longer than 7 bits");
        if (!allOnes) throw new HpackException("Huffman padding is not a prefix of EOS");
        return written;
    }

    /// <summary>Huffman-codes <paramref name="octets"/>, padded with ones (tests and the fuzz seeds).</summary>
    public static byte[] Encode(ReadOnlySpan<byte> octets)
    {
        var output = new List<byte>(octets.Length);
        ulong acc = 0;
        var bits = 0;
        foreach (var b in octets)
        {
            acc = (acc << Lengths[b]) | Codes[b];
            bits += Lengths[b];
            while (bits >= 8)
            {
                bits -= 8;
                output.Add((byte)(acc >> bits));
            }
        }
        if (bits > 0) output.Add((byte)((acc << (8 - bits)) | ((1UL << (8 - bits)) - 1)));
        return [.. output];
    }
}

using Bittensor.Protocol.Lean;

namespace Bittensor.Protocol.Tests.Lean;

/// <summary>The lean server's HPACK decoder against RFC 7541 Appendix C and hostile blocks.</summary>
public sealed class HpackDecoderTests
{
    private static byte[] Hex(string hex) => Convert.FromHexString(hex.Replace(" ", "", StringComparison.Ordinal));

    private static List<(string Name, string Value)> Decode(HpackDecoder decoder, string hex, int maxList = 64 * 1024)
    {
        var fields = new List<(string, string)>();
        Assert.True(decoder.Decode(Hex(hex), fields, maxList));
        return fields;
    }

    [Fact]
    public void C2_1_a_literal_with_indexing_enters_the_dynamic_table()
    {
        var d = new HpackDecoder();
        var fields = Decode(d, "400a 6375 7374 6f6d 2d6b 6579 0d63 7573 746f 6d2d 6865 6164 6572");

        Assert.Equal([("custom-key", "custom-header")], fields);
        Assert.Equal(55, d.TableSize);
        // Index 62 is now that entry.
        Assert.Equal([("custom-key", "custom-header")], Decode(d, "be"));
    }

    [Fact]
    public void C2_2_and_C2_3_literals_without_and_never_indexed_leave_the_table_empty()
    {
        var d = new HpackDecoder();
        Assert.Equal([(":path", "/sample/path")], Decode(d, "040c 2f73 616d 706c 652f 7061 7468"));
        Assert.Equal([("password", "secret")], Decode(d, "1008 7061 7373 776f 7264 0673 6563 7265 74"));
        Assert.Equal(0, d.TableSize);
    }

    [Fact]
    public void C3_requests_without_Huffman_share_one_dynamic_table()
    {
        var d = new HpackDecoder();
        Assert.Equal([(":method", "GET"), (":scheme", "http"), (":path", "/"), (":authority", "www.example.com")],
            Decode(d, "8286 8441 0f77 7777 2e65 7861 6d70 6c65 2e63 6f6d"));
        Assert.Equal(57, d.TableSize);
        Assert.Equal([(":method", "GET"), (":scheme", "http"), (":path", "/"), (":authority", "www.example.com"), ("cache-control", "no-cache")],
            Decode(d, "8286 84be 5808 6e6f 2d63 6163 6865"));
        Assert.Equal(110, d.TableSize);
        Assert.Equal([(":method", "GET"), (":scheme", "https"), (":path", "/index.html"), (":authority", "www.example.com"), ("custom-key", "custom-value")],
            Decode(d, "8287 85bf 400a 6375 7374 6f6d 2d6b 6579 0c63 7573 746f 6d2d 7661 6c75 65"));
        Assert.Equal(164, d.TableSize);
        Assert.Equal(3, d.TableCount);
    }

    [Fact]
    public void C4_requests_with_Huffman_decode_to_the_same_fields()
    {
        var d = new HpackDecoder();
        Assert.Equal([(":method", "GET"), (":scheme", "http"), (":path", "/"), (":authority", "www.example.com")],
            Decode(d, "8286 8441 8cf1 e3c2 e5f2 3a6b a0ab 90f4 ff"));
        Assert.Equal([(":method", "GET"), (":scheme", "http"), (":path", "/"), (":authority", "www.example.com"), ("cache-control", "no-cache")],
            Decode(d, "8286 84be 5886 a8eb 1064 9cbf"));
        Assert.Equal([(":method", "GET"), (":scheme", "https"), (":path", "/index.html"), (":authority", "www.example.com"), ("custom-key", "custom-value")],
            Decode(d, "8287 85bf 4088 25a8 49e9 5ba9 7d7f 8925 a849 e95b b8e8 b4bf"));
        Assert.Equal(164, d.TableSize);
    }

    [Fact]
    public void A_size_update_evicts_the_oldest_entries_and_an_entry_larger_than_the_table_empties_it()
    {
        var d = new HpackDecoder();
        Decode(d, "8286 8441 0f77 7777 2e65 7861 6d70 6c65 2e63 6f6d");
        Decode(d, "8286 84be 5808 6e6f 2d63 6163 6865");
        // Size update to 60 (3f 1d = 31 + 29): only the newest entry (cache-control no-cache, 53) fits.
        Assert.Empty(Decode(d, "3f1d"));
        Assert.Equal(1, d.TableCount);
        Assert.Equal(53, d.TableSize);
        Assert.Equal([("cache-control", "no-cache")], Decode(d, "be"));
        // custom-key: custom-value is 54 + ... = 32 + 10 + 12 = 54 <= 60: it evicts the older one.
        Decode(d, "400a 6375 7374 6f6d 2d6b 6579 0c63 7573 746f 6d2d 7661 6c75 65");
        Assert.Equal(1, d.TableCount);
        Assert.Equal(54, d.TableSize);
        // A 40-octet value makes an entry of 73 > 60: the table empties, the field is still emitted.
        var fields = Decode(d, "4001 78" + "28" + Convert.ToHexString(new byte[40].Select(_ => (byte)'v').ToArray()));
        Assert.Equal("x", Assert.Single(fields).Name);
        Assert.Equal(0, d.TableCount);
        Assert.Equal(0, d.TableSize);
    }

    [Theory]
    [InlineData("3fe21f", "exceeds the announced")] // size update to 4097 > 4096
    [InlineData("82 3f1d", "after a header field")] // size update after a field
    [InlineData("80", "index 0")]
    [InlineData("be", "beyond the tables")] // 62 with an empty dynamic table
    [InlineData("ff80808080 01", "2^24")] // an integer too long
    [InlineData("ff", "truncated")]
    [InlineData("400a 6375", "overruns")] // a string longer than its block
    [InlineData("4084 ffffffff 01 61", "EOS")] // name: a Huffman string holding EOS (30 ones)
    [InlineData("4081 00 01 61", "padding")] // name: "0" (00000) then padding 000 that is not all ones
    [InlineData("4082 1fff 01 61", "longer than 7 bits")] // "a" (00011) then 11 ones of padding
    public void Hostile_blocks_are_compression_errors(string hex, string reason)
    {
        var e = Assert.Throws<HpackException>(() => new HpackDecoder().Decode(Hex(hex), [], 64 * 1024));
        Assert.Contains(reason, e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void A_list_over_the_limit_is_reported_and_the_table_still_follows_the_encoder()
    {
        var d = new HpackDecoder();
        var fields = new List<(string, string)>();

        // custom-key: custom-header (55 octets) with a limit of 40: over, but indexed anyway.
        Assert.False(d.Decode(Hex("400a 6375 7374 6f6d 2d6b 6579 0d63 7573 746f 6d2d 6865 6164 6572"), fields, 40));

        Assert.Empty(fields);
        Assert.Equal(55, d.TableSize);
        Assert.Equal([("custom-key", "custom-header")], Decode(d, "be"));
    }

    [Fact]
    public void Huffman_round_trips_every_octet()
    {
        var all = Enumerable.Range(0, 256).Select(i => (byte)i).ToArray();
        var random = new Random(7);
        for (var i = 0; i < 200; i++)
        {
            var s = new byte[random.Next(0, 300)];
            random.NextBytes(s);
            Assert.Equal(System.Text.Encoding.Latin1.GetString(s), Huffman.Decode(Huffman.Encode(s)));
        }
        Assert.Equal(System.Text.Encoding.Latin1.GetString(all), Huffman.Decode(Huffman.Encode(all)));
        // www.example.com, as in C.4.1.
        Assert.Equal(Hex("f1e3 c2e5 f23a 6ba0 ab90 f4ff"), Huffman.Encode("www.example.com"u8));
    }

    // A literal without indexing, new name (§6.2.2), raw or Huffman-coded strings.
    private static byte[] Literal(string name, string value, bool huffman = false)
    {
        var b = new List<byte> { 0x00 };
        String(b, System.Text.Encoding.Latin1.GetBytes(name), huffman);
        String(b, System.Text.Encoding.Latin1.GetBytes(value), huffman);
        return [.. b];
    }

    private static void String(List<byte> b, byte[] octets, bool huffman)
    {
        var coded = huffman ? Huffman.Encode(octets) : octets;
        H2Blocks.Int(b, coded.Length, 7, huffman ? (byte)0x80 : (byte)0x00);
        b.AddRange(coded);
    }

    [Fact]
    public void Names_and_short_values_seen_before_are_the_same_strings_and_a_different_literal_never_is()
    {
        var d = new HpackDecoder();
        var fields = new List<(string Name, string Value)>();
        // Same length, same first and last 8 octets: the same slot of the decoder's strings, different values.
        string[] values = ["aaaaaaaaQaaaaaaaa", "aaaaaaaaRaaaaaaaa", "aaaaaaaaQaaaaaaaa", "caf\u00e9-x", "caf\u00e8-x", "caf\u00e9-x", "bittensor-signature"];
        string? firstName = null;
        foreach (var value in values)
        {
            string? made = null;
            foreach (var huffman in (bool[])[false, true])
            {
                Assert.True(d.Decode(Literal("x-custom-name", value, huffman), fields, 1 << 16));
                Assert.Equal([("x-custom-name", value)], fields);
                Assert.Same(firstName ??= fields[0].Name, fields[0].Name);
                // Seen just before (raw, then Huffman-coded): the same string.
                Assert.Same(made ??= fields[0].Value, fields[0].Value);
            }
        }
        // The well-known names are the same strings in every decoder.
        Assert.True(new HpackDecoder().Decode(Literal("bittensor-signature", "1"), fields, 1 << 16));
        var other = new List<(string Name, string Value)>();
        Assert.True(new HpackDecoder().Decode(Literal("bittensor-signature", "2"), other, 1 << 16));
        Assert.Same(fields[0].Name, other[0].Name);
    }

    [Fact]
    public void A_long_value_not_indexed_is_kept_as_octets_until_asked_for_and_counts_the_same_against_the_limit()
    {
        var d = new HpackDecoder();
        var fields = new List<HpackField>();
        var longValue = string.Concat(Enumerable.Range(0, 40).Select(i => (char)('a' + (i % 26)))) + "\u00ff" + new string('z', 30);
        byte[] block =
        [
            .. Literal("x-short", "short"), .. Literal("x-long", longValue), .. Literal("x-huff", longValue, huffman: true),
            // The same long value with incremental indexing (§6.2.1): it enters the table, so it is a string.
            0x40, .. Literal("x-indexed", longValue)[1..],
        ];

        Assert.True(d.Decode(block, fields, 1 << 16, deferOver: 64));

        Assert.Equal(["x-short", "x-long", "x-huff", "x-indexed"], fields.Select(f => f.Name));
        Assert.Equal("short", fields[0].Value);
        Assert.Null(fields[1].Value);
        Assert.Null(fields[2].Value);
        Assert.Equal(System.Text.Encoding.Latin1.GetBytes(longValue), d.RawValue(fields[1]).ToArray());
        Assert.Equal(System.Text.Encoding.Latin1.GetBytes(longValue), d.RawValue(fields[2]).ToArray());
        Assert.Equal(longValue, d.Value(fields[1]));
        Assert.Equal(longValue, d.Value(fields[2]));
        Assert.Equal(longValue, fields[3].Value);
        Assert.Equal(1, d.TableCount);

        // The list's size is the same as with strings: exactly at the limit passes, one octet under it does not.
        var size = fields.Sum(f => f.Name.Length + d.Value(f).Length + HpackDecoder.EntryOverhead);
        var strings = new List<(string Name, string Value)>();
        Assert.True(new HpackDecoder().Decode(block, strings, size));
        Assert.True(new HpackDecoder().Decode(block, fields, size, deferOver: 64));
        Assert.False(new HpackDecoder().Decode(block, fields, size - 1, deferOver: 64));
        Assert.Equal(3, fields.Count);
        // Decoding the next block forgets the raw octets of the last one.
        Assert.True(d.Decode(Literal("x-next", longValue[..70]), fields, 1 << 16, deferOver: 64));
        Assert.Equal(longValue[..70], d.Value(fields[0]));
        Assert.Equal(0, fields[0].RawOffset);
    }
}

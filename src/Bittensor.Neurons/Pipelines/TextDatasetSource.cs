using Akka;
using Akka.Streams.Dsl;
using Bittensor.Models.Data;
using Bittensor.Models.Tokenization;

namespace Bittensor.Neurons.Pipelines;

/// <summary>
/// <see cref="TextDataset"/> (file reading and tokenizing, in Bittensor.Models) as Akka.Streams sources for the
/// pipelines. Nothing is read until the source is materialized, and each materialization reads afresh.
/// </summary>
public static class TextDatasetSource
{
    /// <summary>Batches of shuffled token blocks; see <see cref="TextDataset.Batches"/>. A missing path throws here, at once.</summary>
    public static Source<TokenBatch, NotUsed> Batches(IEnumerable<string> paths, BittensorTokenizer tokenizer, int blockSize, int batchSize, int seed, long maxTokens = 4_000_000) =>
        Source.From(TextDataset.Batches(paths, tokenizer, blockSize, batchSize, seed, maxTokens));

    /// <summary>Shuffled token blocks; see <see cref="TextDataset.Blocks"/>. A missing path throws here, at once.</summary>
    public static Source<long[], NotUsed> Blocks(IEnumerable<string> paths, BittensorTokenizer tokenizer, int blockSize, int seed, long maxTokens = 4_000_000) =>
        Source.From(TextDataset.Blocks(paths, tokenizer, blockSize, seed, maxTokens));
}

using System.Text.Json;
using Akka.Configuration;
using Bittensor.Actors;
using Bittensor.Chain;
using Bittensor.Chain.Local;
using Bittensor.Core;
using Bittensor.Core.Crypto;
using Bittensor.Core.Domain;
using Bittensor.Neurons.Demo;
using Bittensor.Neurons.Roles;

namespace Bittensor.Neurons.Tests;

/// <summary>
/// The validator's weights must land in a block before the epoch's: <c>weights_lead_blocks</c> below 2 is refused at
/// settings load (the validator and the demo), and the demo as processes releases the block it holds for the weights only
/// when the validator's <c>set_weights</c> is in the node's pool, not when any call is.
/// </summary>
public sealed class DemoWeightsLeadTests : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("bt-weights-lead-").FullName;

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    private static Config WithLead(int lead) =>
        ConfigurationFactory.ParseString($"bittensor.validator.weights_lead_blocks = {lead}").WithFallback(BittensorRuntime.ReferenceConfig);

    [Theory]
    [InlineData(0)]
    [InlineData(1)]
    public void A_lead_below_2_is_refused_by_the_validator_and_the_demo_naming_the_key(int lead)
    {
        var validator = Assert.Throws<ConfigurationException>(() => ValidatorOptions.Create(WithLead(lead).GetConfig(ValidatorOptions.SectionPath)));
        Assert.StartsWith($"bittensor.validator.weights_lead_blocks = {lead}: must be at least 2", validator.Message, StringComparison.Ordinal);
        var demo = Assert.Throws<ConfigurationException>(() => DemoOptions.Create(WithLead(lead)));
        Assert.StartsWith($"bittensor.validator.weights_lead_blocks = {lead}: must be at least 2", demo.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void A_lead_of_2_or_more_is_taken()
    {
        Assert.Equal(2, ValidatorOptions.Create(WithLead(2).GetConfig(ValidatorOptions.SectionPath)).WeightsLeadBlocks);
        Assert.Equal(5, ValidatorOptions.Create(WithLead(5).GetConfig(ValidatorOptions.SectionPath)).WeightsLeadBlocks);
        _ = DemoOptions.Create(WithLead(3));
    }

    /// <summary>
    /// Real pool contents (a localnet's pending extrinsics, as a node's <c>author_pendingExtrinsics</c> answers them): a
    /// server's <c>set_weights</c>, the validator's other call, garbage — none releases the hold; the validator's
    /// <c>set_weights</c> does. (Before, any pooled call released it.)
    /// </summary>
    [Fact]
    public async Task Only_the_validators_set_weights_in_the_pool_releases_the_held_block()
    {
        await using var localnet = Localnet.Open(new LocalnetOptions { Name = "lead", Path = Path.Combine(_dir, "chain") });
        var chain = await localnet.GetIdentityAsync();
        var validator = SecretUri.ToSr25519("//Alice");
        var server = SecretUri.ToSr25519("//Bob");
        var validatorId = new AccountId(validator.PublicKey.Span);
        JsonElement Pool(params string[] extra) =>
            JsonSerializer.SerializeToElement(localnet.PendingExtrinsics().Select(x => Hex.Encode(x)).Concat(extra).ToArray());

        // Each stays in the pool: no block is made here.
        _ = localnet.SubmitAsync(CallSigner.Sign(new SetWeights(1, [0], [65535], 0), server, 0, chain));
        _ = localnet.SubmitAsync(CallSigner.Sign(new Transfer(new AccountId(server.PublicKey.Span), Balance.FromTao(1)), validator, 0, chain));
        Assert.Equal(2, localnet.PendingCount);
        Assert.False(ProcessNetwork.PoolHoldsWeightsOf(Pool("0x1234", "not hex"), validatorId));
        Assert.False(ProcessNetwork.PoolHoldsWeightsOf(JsonSerializer.SerializeToElement(new object[] { 7, new { a = 1 } }), validatorId));
        Assert.False(ProcessNetwork.PoolHoldsWeightsOf(JsonSerializer.SerializeToElement(new { pool = 1 }), validatorId));

        _ = localnet.SubmitAsync(CallSigner.Sign(new SetWeights(1, [0], [65535], 0), validator, 1, chain));
        Assert.Equal(3, localnet.PendingCount);
        Assert.True(ProcessNetwork.PoolHoldsWeightsOf(Pool(), validatorId));
    }
}

using Bittensor.Chain.Yuma;

namespace Bittensor.Chain.Tests.Yuma;

/// <summary>The <c>btcli localnet epoch</c> case format: round trips and one clear error per kind of bad input.</summary>
public sealed class EpochJsonTests
{
    private const string Valid = """
        {
          "block": 10, "tempo": 360, "emission_rao": 1000000000,
          "hyperparams": {"kappa": 32767, "bonds_moving_average": 900000, "activity_cutoff": 5000,
                          "max_allowed_validators": 1, "immunity_period": 4096, "min_allowed_weights": 1, "max_weights_limit": 65535},
          "neurons": [
            {"uid": 0, "stake_rao": 1000, "last_update": 10, "block_at_registration": 0, "weights": [[1, 65535], [2, 21845]], "bonds": []},
            {"uid": 2, "stake_rao": 0, "last_update": 10, "block_at_registration": 0},
            {"uid": 1, "stake_rao": 0, "last_update": 10, "block_at_registration": 0, "weights": [], "bonds": []}
          ]
        }
        """;

    [Fact]
    public void A_valid_case_parses_and_runs_to_the_hand_worked_result()
    {
        var input = EpochJson.ReadInput(Valid);
        Assert.Equal(3, input.Neurons.Count);
        Assert.Null(input.PrevValidatorPermit);
        var o = YumaEpoch.Run(input);
        Assert.Equal(new ushort[] { 0, 49151, 16383 }, o.Incentive);
        Assert.Equal(new ulong[] { 500_000_000, 375_000_000, 125_000_000 }, o.EmissionRao);
    }

    [Fact]
    public void Input_written_and_read_back_gives_the_same_epoch_result()
    {
        for (int seed = 0; seed < 20; seed++)
        {
            var input = EpochCases.Random(seed);
            var again = EpochJson.ReadInput(EpochJson.WriteInput(input));
            Assert.Equal(EpochJson.WriteOutput(YumaEpoch.Run(input)), EpochJson.WriteOutput(YumaEpoch.Run(again)));
        }
    }

    [Fact]
    public void Output_written_and_read_back_is_identical()
    {
        var o = YumaEpoch.Run(EpochCases.Random(7));
        var text = EpochJson.WriteOutput(o);
        Assert.Equal(text, EpochJson.WriteOutput(EpochJson.ReadOutput(text)));
        Assert.Contains("\"validator_trust\": [", text, StringComparison.Ordinal);
        Assert.Contains("\"bonds\": [", text, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("""{"block": 1}""", "tempo: missing")]
    [InlineData("not json", "not valid JSON")]
    [InlineData("[]", "$: expected an object")]
    [InlineData("""{"block": -1, "tempo": 1, "emission_rao": 0, "hyperparams": {}, "neurons": []}""", "block: expected an integer")]
    [InlineData("""{"block": 1, "tempo": 1, "emission_rao": 0, "hyperparams": {"kappa": 70000}, "neurons": []}""", "hyperparams.kappa: expected a u16")]
    [InlineData("""{"block": 1, "tempo": 1, "emission_rao": 0, "hyperparams": {"kapa": 1}, "neurons": []}""", "unknown key \"kapa\"")]
    public void Malformed_documents_are_rejected_with_the_field_named(string json, string expected)
    {
        var e = Assert.Throws<EpochInputException>(() => EpochJson.ReadInput(json));
        Assert.Contains(expected, e.Message, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("\"uid\": 2, \"stake_rao\": 0", "\"uid\": 5, \"stake_rao\": 0", "uid: 5 out of range")]
    [InlineData("\"uid\": 2, \"stake_rao\": 0", "\"uid\": 0, \"stake_rao\": 0", "duplicate uid 0")]
    [InlineData("[[1, 65535], [2, 21845]]", "[[1, 65535], [1, 21845]]", "duplicate target uid 1")]
    [InlineData("[[1, 65535], [2, 21845]]", "[[1, 65536]]", "expected a u16")]
    [InlineData("[[1, 65535], [2, 21845]]", "[[9, 1]]", "target uid 9 out of range")]
    [InlineData("[[1, 65535], [2, 21845]]", "[[1, 2, 3]]", "expected a pair [uid, u16]")]
    [InlineData("\"stake_rao\": 1000", "\"stake_rao\": 18446744073709551615", "exceeds 2^63-1")]
    [InlineData("\"uid\": 2, \"stake_rao\": 0, \"last_update\": 10, ", "\"uid\": 2, \"stake_rao\": 0, ", "neurons[1].last_update: missing")]
    public void Inconsistent_neurons_are_rejected_before_the_epoch_runs(string find, string replace, string expected)
    {
        var json = Valid.Replace(find, replace, StringComparison.Ordinal);
        Assert.NotEqual(Valid, json);
        var e = Assert.Throws<EpochInputException>(() => EpochJson.ReadInput(json));
        Assert.Contains(expected, e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void A_permit_vector_of_the_wrong_length_is_rejected()
    {
        var json = Valid.TrimEnd().TrimEnd('}') + ", \"prev_validator_permit\": [true]}";
        var e = Assert.Throws<EpochInputException>(() => EpochJson.ReadInput(json));
        Assert.Contains("prev_validator_permit: 1 entries, expected one per neuron (3)", e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void The_api_rejects_the_same_mistakes_without_json()
    {
        var hp = EpochCases.Hyper(maxValidators: 1);
        var dup = EpochCases.Input(1, hp, [EpochCases.Neuron(0, 1), EpochCases.Neuron(0, 1)]);
        Assert.Throws<EpochInputException>(() => YumaEpoch.Run(dup));
        var empty = YumaEpoch.Run(EpochCases.Input(1, hp, []));
        Assert.Empty(empty.Incentive);
    }
}

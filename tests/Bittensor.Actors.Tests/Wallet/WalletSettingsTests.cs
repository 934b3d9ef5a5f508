using Akka.Configuration;
using Bittensor.Actors.Wallet;

namespace Bittensor.Actors.Tests.Wallet;

public sealed class WalletSettingsTests
{
    [Fact]
    public void The_reference_configuration_names_btcli_defaults_unless_the_environment_overrides_them()
    {
        var settings = WalletSettings.Default;
        Assert.Equal(Environment.GetEnvironmentVariable("BT_WALLET_NAME") ?? "default", settings.Name);
        Assert.Equal(Environment.GetEnvironmentVariable("BT_WALLET_HOTKEY") ?? "default", settings.Hotkey);
        Assert.Equal(Environment.GetEnvironmentVariable("BT_WALLET_PATH") ?? "~/.bittensor/wallets/", settings.Path);
    }

    [Fact]
    public void A_user_section_is_read_over_the_reference_one()
    {
        var config = ConfigurationFactory.ParseString("bittensor.wallet { name = miner, hotkey = h2, path = \"/srv/wallets\" }")
            .WithFallback(BittensorRuntime.ReferenceConfig);
        Assert.Equal(new WalletSettings("miner", "h2", "/srv/wallets"), WalletSettings.Create(config.GetConfig(WalletSettings.SectionPath)));
    }

    [Fact]
    public void Command_line_values_override_the_configuration()
    {
        var settings = new WalletSettings("a", "b", "/p").WithOverrides("cli", null, "");
        Assert.Equal(new WalletSettings("cli", "b", "/p"), settings);
    }

    [Theory]
    [InlineData("bittensor.wallet { name = \"../x\" }")]
    [InlineData("bittensor.wallet { hotkey = \"a/b\" }")]
    [InlineData("bittensor.wallet { path = \"\" }")]
    public void A_value_that_cannot_name_a_wallet_file_is_a_configuration_error(string hocon)
    {
        var config = ConfigurationFactory.ParseString(hocon).WithFallback(BittensorRuntime.ReferenceConfig);
        Assert.Throws<ConfigurationException>(() => WalletSettings.Create(config.GetConfig(WalletSettings.SectionPath)));
    }

    [Fact]
    public void A_missing_section_is_a_configuration_error()
    {
        Assert.Throws<ConfigurationException>(() => WalletSettings.Create(ConfigurationFactory.ParseString("bittensor { }").GetConfig(WalletSettings.SectionPath)));
    }
}

using Akka.Configuration;
using Bittensor.Actors.ModelHost;

namespace Bittensor.Actors.Tests.ModelHost;

public sealed class ModelSettingsTests
{
    [Fact]
    public void The_reference_hocon_gives_the_default_settings()
    {
        Assert.Equal(ModelSettings.Default, ModelSettings.Create(BittensorRuntime.ReferenceConfig.GetConfig(ModelSettings.SectionPath)));
    }

    [Fact]
    public void A_bad_setting_is_rejected_with_its_key()
    {
        var config = ConfigurationFactory.ParseString("bittensor.model { d_model = 130, heads = 4 }");
        var error = Assert.Throws<ConfigurationException>(() => ModelSettings.Create(BittensorRuntime.Section(config, ModelSettings.SectionPath)));
        Assert.Contains("bittensor.model.heads", error.Message, StringComparison.Ordinal);
    }
}

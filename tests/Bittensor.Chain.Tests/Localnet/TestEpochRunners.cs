using Bittensor.Chain.Local;

namespace Bittensor.Chain.Tests.Localnet;

internal static class TestEpochRunners
{
    /// <summary>The real epoch.</summary>
    public static IEpochRunner Default => YumaEpochRunner.Instance;

    /// <summary>An epoch that fails, to test that a failed block commits nothing.</summary>
    public sealed class Throwing : IEpochRunner
    {
        public EpochResult Run(EpochRequest request) => throw new InvalidOperationException("epoch exploded");
    }
}

namespace Bittensor.Protocol.Tests.Lean;

/// <summary>
/// The test classes whose lean-client reader calls rent and return the process-wide pool of answer arrays
/// (<c>H2ClientConnection.AnswerPool</c>): run one at a time, so a test that shows an array going back to the pool
/// and being reused by its next answer does not find it taken by another class's call running at the same moment.
/// </summary>
[CollectionDefinition(Name)]
public sealed class AnswerPoolCollection
{
    /// <summary>The collection's name.</summary>
    public const string Name = "lean answer pool";
}

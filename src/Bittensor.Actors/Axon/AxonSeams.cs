namespace Bittensor.Actors.Axon;

/// <summary>Builds the Protocol-layer implementations behind the axon's seams.</summary>
internal static class AxonSeams
{
    public static IRequestAuthenticator CreateAuthenticator(AxonSettings settings, TimeProvider time) =>
        throw new NotSupportedException("request verification comes with the Protocol layer (not merged yet)");

    public static ITensorWireCodec CreateCodec(AxonSettings? settings) =>
        throw new NotSupportedException("the tensor codec comes with the Protocol layer (not merged yet)");
}

using System.Globalization;
using Bittensor.Protocol.Wire;
using Grpc.Core;

namespace Bittensor.Actors.Axon;

/// <summary>
/// Used only when <c>bittensor.axon.auth.disable_signature_verification = on</c>: takes the caller's hotkey and
/// version from the headers without checking the signature or the nonce. Anyone can impersonate anyone.
/// </summary>
internal sealed class UnverifiedAuthenticator : IRequestAuthenticator
{
    public ValueTask<AuthOutcome> AuthenticateAsync(Metadata headers, System.Net.IPAddress? peer = null) => ValueTask.FromResult(Authenticate(headers));

    private static AuthOutcome Authenticate(Metadata headers)
    {
        var hotkey = AxonService.ClaimedHotkey(headers);
        if (hotkey is null) return AuthOutcome.Refuse(ReturnCode.Unauthenticated, "missing or malformed bittensor-signature header");
        var versionText = headers.GetValue("bittensor-version");
        if (versionText is null || !int.TryParse(versionText, NumberStyles.None, CultureInfo.InvariantCulture, out var version))
            return AuthOutcome.Refuse(ReturnCode.Unauthenticated, "missing or malformed bittensor-version header", hotkey);
        return AuthOutcome.Accept(hotkey, version);
    }
}

namespace Bittensor.Protocol;

/// <summary>
/// Puts the three bittensor headers first among the request headers. grpc-dotnet adds <c>user-agent</c>,
/// <c>te</c> and <c>grpc-accept-encoding</c> ahead of the call's metadata, and a 2021 Python axon reads the
/// metadata by position (<c>meta[0]</c> must be <c>rpc-auth-header</c>); its gRPC core drops <c>te</c> and
/// <c>grpc-accept-encoding</c> before the application sees them but surfaces <c>user-agent</c> where it came.
/// HTTP/2 puts no order on regular headers, so moving them is harmless to any other server.
/// Requests without an <c>rpc-auth-header</c> pass untouched.
/// </summary>
public sealed class AuthHeadersFirstHandler : DelegatingHandler
{
    private readonly bool _dropUserAgent;

    /// <summary>Wraps <paramref name="inner"/>; with <paramref name="dropUserAgent"/> the <c>user-agent</c> header is removed instead of moved.</summary>
    public AuthHeadersFirstHandler(HttpMessageHandler inner, bool dropUserAgent = false)
        : base(inner)
    {
        _dropUserAgent = dropUserAgent;
    }

    /// <inheritdoc />
    protected override Task<HttpResponseMessage> SendAsync(HttpRequestMessage request, CancellationToken cancellationToken)
    {
        Reorder(request.Headers, _dropUserAgent);
        return base.SendAsync(request, cancellationToken);
    }

    /// <summary>Rewrites <paramref name="headers"/> so the bittensor headers come first, the rest after in their old order.</summary>
    internal static void Reorder(System.Net.Http.Headers.HttpRequestHeaders headers, bool dropUserAgent)
    {
        if (!headers.NonValidated.Contains(AuthHeaders.AuthName)) return;
        var all = new List<(string Name, string[] Values)>(headers.NonValidated.Count);
        foreach (var (name, values) in headers.NonValidated)
        {
            var copy = new string[values.Count];
            var i = 0;
            foreach (var v in values) copy[i++] = v;
            all.Add((name, copy));
        }
        headers.Clear();
        foreach (var first in AuthHeaders.InOrder)
        {
            foreach (var (name, values) in all)
                if (string.Equals(name, first, StringComparison.OrdinalIgnoreCase)) headers.TryAddWithoutValidation(name, values);
        }
        foreach (var (name, values) in all)
        {
            if (IsAuthHeader(name)) continue;
            if (dropUserAgent && string.Equals(name, "User-Agent", StringComparison.OrdinalIgnoreCase)) continue;
            headers.TryAddWithoutValidation(name, values);
        }
    }

    private static bool IsAuthHeader(string name)
    {
        foreach (var h in AuthHeaders.InOrder)
            if (string.Equals(name, h, StringComparison.OrdinalIgnoreCase)) return true;
        return false;
    }
}

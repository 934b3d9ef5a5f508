using Microsoft.Extensions.Logging;

namespace Bittensor.Actors.Logging;

/// <summary>
/// Hands a web host's loggers (Kestrel, gRPC) to the process's <see cref="ILoggerFactory"/>, so its levels and console
/// apply to them under their own categories (<c>Microsoft.AspNetCore.*</c>, <c>Grpc.*</c>). The factory belongs to the
/// caller: disposing the provider leaves it alone.
/// </summary>
internal sealed class ForwardingLoggerProvider(ILoggerFactory factory) : ILoggerProvider
{
    public ILogger CreateLogger(string categoryName) => factory.CreateLogger(categoryName);

    public void Dispose()
    {
    }
}

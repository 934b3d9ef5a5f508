using Akka.Event;
using Microsoft.Extensions.Logging;
using LogLevel = Microsoft.Extensions.Logging.LogLevel;

namespace Bittensor.Actors.Axon;

/// <summary>Routes Kestrel and gRPC server logs (warnings and above) into the owning actor's Akka log.</summary>
internal sealed class AkkaLoggerProvider(ILoggingAdapter log, LogLevel minimum) : ILoggerProvider
{
    public ILogger CreateLogger(string categoryName) => new Logger(log, minimum, categoryName);

    public void Dispose()
    {
    }

    private sealed class Logger(ILoggingAdapter log, LogLevel minimum, string category) : ILogger
    {
        public IDisposable? BeginScope<TState>(TState state) where TState : notnull => null;

        public bool IsEnabled(LogLevel logLevel) => logLevel >= minimum && logLevel != LogLevel.None;

        public void Log<TState>(LogLevel logLevel, EventId eventId, TState state, Exception? exception, Func<TState, Exception?, string> formatter)
        {
            if (!IsEnabled(logLevel)) return;
            var text = $"[{category}] {formatter(state, exception)}" + (exception is null || logLevel >= LogLevel.Error ? "" : $" ({exception.GetType().Name}: {exception.Message})");
            switch (logLevel)
            {
                case LogLevel.Error or LogLevel.Critical:
                    log.Error(exception, text);
                    break;
                case LogLevel.Warning:
                    log.Warning(text);
                    break;
                default:
                    log.Info(text);
                    break;
            }
        }
    }
}

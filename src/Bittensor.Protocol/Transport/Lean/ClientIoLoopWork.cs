using Bittensor.Protocol.Lean;

namespace Bittensor.Protocol;

/// <summary>
/// Work run on the lean client's I/O loop thread (<c>bittensor.dendrite.io = loop | batch</c>): the thread that reads the
/// answers of the connections on the loop. The dendrite's actors run their mailboxes there with
/// <c>bittensor.dendrite.dispatcher = loop</c> (an Akka dispatcher whose executor posts here). Linux x86-64 only.
/// </summary>
public static class ClientIoLoopWork
{
    /// <summary>Whether this process can run the loop (Linux, x86-64); elsewhere <see cref="Post"/> throws.</summary>
    public static bool Supported => ClientIoLoop.Supported;

    /// <summary>
    /// Runs <paramref name="work"/> on the loop thread after the socket events of its current turn, in order of posting, at
    /// most 64 per turn before the loop looks at its sockets again; from another thread one eventfd write wakes it. The
    /// work must be short and never block: every connection's reads wait meanwhile. Exceptions are not caught.
    /// </summary>
    public static void Post(Action<object?> work, object? state)
    {
        ArgumentNullException.ThrowIfNull(work);
        if (!ClientIoLoop.Supported) throw new PlatformNotSupportedException("the client I/O loop runs on Linux x86-64 only");
        ClientIoLoop.Shared.Post(work, state);
    }

    /// <summary>True on the loop's own thread (false where the loop does not run).</summary>
    public static bool IsLoopThread => ClientIoLoop.Supported && ClientIoLoop.Shared.IsLoopThread;
}

using System.Runtime.InteropServices;
using Bittensor.Protocol;
using Bittensor.Protocol.Lean;
using Bittensor.Protocol.Wire;
using Grpc.Core;

namespace Bittensor.Fuzz.Tests;

/// <summary>
/// <c>h2client</c>: the lean h2c client's read side (frames, HPACK, flow control, call state, the answer's message and
/// the dendrite-style reader of its tensors) without a socket (<see cref="H2ClientConnection.Feed"/>). Byte 0 picks the
/// calls open before the server speaks (1–3 on streams 1, 3, 5; bits 2–4: which read the answer on the read loop as the
/// dendrite's fan-out does) and bits 5–7 how the bytes are cut into reads; byte 1 seeds the random cut and, with bit 7
/// set, cancels call (bits 5–6) when the read numbered by bits 0–4 is taken (the caller giving up while the read loop
/// works: a reset, then frames for a stream gone); with bit 7 clear and bit 6 set, the calls that read on the read loop
/// also land their answer's floats in their own array (<see cref="AnswerLanding"/>) and must end as the same input
/// without landings ends; the rest is what the server sends after the client's preface. Oracle: the read loop runs to the end of the input without
/// waiting for anything else, no exception reaches its last-resort handler, every call is answered (a result, or an
/// <see cref="RpcException"/> with a status), no stream stays open, and the bytes allocated stay bounded by the input
/// (a hostile length prefix must not buy an array of its announced size).
/// </summary>
internal static class H2ClientTarget
{
    /// <summary>Receive limit of the target's connections: far over the allocation bound, so an early allocation of an announced length shows.</summary>
    private const int MaxReceive = 64 << 20;

    private static readonly BittensorChannelOptions Options = BittensorChannelOptions.Default with { MaxReceiveMessageSize = MaxReceive };

    private static readonly TensorMessage Request = new() { Version = 150, Hotkey = "5GrwvaEF5zXb26Fz9rcQpDWS57CtERHpNehXCPcNoHGKutQY" };

    /// <summary>Reads of this many bytes, by bits 5–7 of byte 0 (7: random 1–300 from byte 1; 0: as much as fits).</summary>
    internal static Func<int, int> ReadSizes(byte config, byte seed)
    {
        switch (config >> 5)
        {
            case 0: return _ => int.MaxValue;
            case 1: return _ => 1;
            case 2: return _ => 5;
            case 3: return _ => 9;
            case 4: return _ => 13;
            case 5: return _ => 4096;
            case 6: return i => i % 2 == 0 ? 9 : 16_384;
            default:
                var random = new Random(seed);
                return _ => random.Next(1, 301);
        }
    }

    /// <summary>The answer shape of the seeds (a forward's [1, 2, 16] float32): what a landing call expects.</summary>
    private static readonly Float32AnswerShape Expected = new([1, 2, 16]);

    /// <summary>
    /// What the dendrite's fan-out does on the read loop: decode every tensor and keep copies; with a landing, the first
    /// tensor's values from the landing's array when <see cref="AnswerLanding.TryTake"/> says they are there, else
    /// decoded from the (then whole) buffer.
    /// </summary>
    private static List<float[]> Read(TensorMessage answer, AnswerLanding? landing)
    {
        var copies = new List<float[]>();
        for (var i = 0; i < answer.Tensors.Count; i++)
        {
            var t = answer.Tensors[i];
            if (i == 0 && landing is not null && landing.TryTake(t))
            {
                copies.Add((float[])landing.Values.Clone());
                continue;
            }
            var decoded = TensorCodec.Decode(t);
            if (!decoded.IsSuccess || decoded.Tensor.DataType != DataType.Float32) continue;
            var values = new float[decoded.Tensor.ElementCount];
            decoded.Tensor.CopyTo(values);
            copies.Add(values);
        }
        return copies;
    }

    /// <summary>
    /// Runs the input. Byte 1 with bit 6 set and bit 7 clear (no cancellation): every call that reads on the read loop
    /// also gives the transport a landing for the seeds' answer shape (<see cref="AnswerLanding"/>, as the dendrite's
    /// fan-out does), and the same input is run again without landings: each call must end the same way (the same
    /// status, or the same floats read), whatever the transport received into the caller's array.
    /// </summary>
    public static void Run(byte[] input)
    {
        if (input.Length < 2) return;
        if ((input[1] & 0xC0) != 0x40)
        {
            Execute(input, landings: false);
            return;
        }
        var landed = Execute(input, landings: true);
        var plain = Execute(input, landings: false);
        for (var i = 0; i < landed.Length; i++)
        {
            if (!Same(landed[i], plain[i]))
                throw new FuzzFinding($"call {i} ended {Describe(landed[i])} with a landing and {Describe(plain[i])} without one");
        }
    }

    private static bool Same(object? a, object? b) => (a, b) switch
    {
        (StatusCode x, StatusCode y) => x == y,
        (List<float[]> x, List<float[]> y) => x.Count == y.Count && x.Zip(y).All(p =>
            MemoryMarshal.AsBytes(p.First.AsSpan()).SequenceEqual(MemoryMarshal.AsBytes(p.Second.AsSpan()))),
        (TensorMessage x, TensorMessage y) => x.Equals(y),
        _ => false,
    };

    private static string Describe(object? outcome) => outcome switch
    {
        StatusCode code => $"with status {code}",
        List<float[]> floats => $"read, {floats.Count} float tensors ({string.Join(", ", floats.Select(f => f.Length))} floats)",
        TensorMessage => "with an answer",
        _ => "unanswered",
    };

    /// <summary>One run of the input on a fresh connection; each call's outcome: its status code, or what it read/returned.</summary>
    private static object?[] Execute(byte[] input, bool landings)
    {
        var config = input[0];
        var count = 1 + (config & 3) % 3;
        var peer = input[2..];
        var conn = H2ClientConnection.ForFeed(Options);
        var headers = new Metadata { { "bittensor-auth", "fuzz" } };
        var control = input[1];
        using var cancel = new CancellationTokenSource();
        var cancelled = (control & 0x80) != 0 ? ((control >> 5) & 3) % count : -1;
        var cancelAt = control & 0x1f;
        var calls = new Task[count];
        for (var i = 0; i < count; i++)
        {
            var method = i == 1 ? BittensorMethod.Backward : BittensorMethod.Forward;
            var token = i == cancelled ? cancel.Token : CancellationToken.None;
            var landing = landings ? new AnswerLanding(Expected) : null;
            calls[i] = (config & (4 << i)) != 0
                ? conn.CallAsync<object>(method, Request, headers, DateTime.MaxValue, token, answer => Read(answer, landing), landing)
                : conn.CallAsync(method, Request, headers, DateTime.MaxValue, token);
        }
        if (conn.OpenStreams != count) throw new FuzzFinding($"{conn.OpenStreams} streams open after starting {count} calls");

        var before = GC.GetAllocatedBytesForCurrentThread();
        var sizes = ReadSizes(config, control);
        var loop = conn.Feed(peer, cancelled < 0 ? sizes : read =>
        {
            if (read == cancelAt) cancel.Cancel(); // the call's cancellation runs here, inside the read loop's receive
            return sizes(read);
        });
        var allocated = GC.GetAllocatedBytesForCurrentThread() - before;

        if (!loop.IsCompleted) throw new FuzzFinding("the read loop waited for something other than the peer's bytes");
        if (conn.Bug is { } bug) throw new FuzzFinding($"the read loop's last-resort handler caught {bug}");
        if (loop.IsFaulted) throw new FuzzFinding($"the read loop threw {loop.Exception}");
        // Per open stream at most one message array (1 MiB ahead of its bytes, then the bytes), plus what the input decodes to.
        var bound = ((count + 1) << 20) + (64L * peer.Length) + (512 << 10);
        if (allocated > bound) throw new FuzzFinding($"{allocated:N0} bytes allocated for {peer.Length:N0} bytes of input (bound {bound:N0})");
        if (conn.OpenStreams != 0) throw new FuzzFinding($"{conn.OpenStreams} streams still open after the peer's end");
        if (conn.IsUsable) throw new FuzzFinding("the connection is still usable after the peer's end");
        // Every call is answered by now (completions run on the read loop); the guard only catches one that never is.
        try
        {
            if (!Task.WhenAll(calls).Wait(TimeSpan.FromSeconds(30))) throw new FuzzFinding("a call was never answered");
        }
        catch (AggregateException)
        {
            // failed calls: looked at one by one below
        }
        var outcomes = new object?[count];
        for (var i = 0; i < count; i++)
        {
            var call = calls[i];
            if (call.IsCompletedSuccessfully)
            {
                outcomes[i] = call switch { Task<object> read => read.Result, Task<TensorMessage> plain => plain.Result, _ => null };
                continue;
            }
            var e = call.Exception?.InnerException;
            if (e is not RpcException rpc) throw new FuzzFinding($"a call failed with {e?.GetType().Name ?? "cancellation"}, not an RpcException: {e}");
            if (rpc.StatusCode == StatusCode.OK) throw new FuzzFinding("a call failed with status OK");
            outcomes[i] = rpc.StatusCode;
        }
        return outcomes;
    }
}

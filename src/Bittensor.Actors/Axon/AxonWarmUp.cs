using System.Net;
using System.Security.Cryptography;
using Bittensor.Core.Crypto;
using Bittensor.Protocol;
using Bittensor.Protocol.Wire;
using Grpc.Core;

namespace Bittensor.Actors.Axon;

/// <summary>
/// The axon's warm-up (<c>bittensor.axon.warm_up</c>, docs/axon.md "Warm-up"): two signed Forwards from this process to
/// its own listener over loopback, made after the transport is bound and before the axon reports itself bound, so the
/// first real caller does not pay the serving path's first use (JIT of the transport, HPACK, the header check, the
/// sr25519 check, the nonce store's first write; 184–251 ms of CPU measured for a fresh axon in session 17). The key is a
/// throwaway pair made in memory for this call; the service answers it with zeros without the model and records nothing
/// for it (<see cref="AxonService.ExpectWarmUp"/>).
/// </summary>
internal static class AxonWarmUp
{
    private readonly struct ForgetKey(ReadOnlyMemory<byte> publicKey) : IDisposable
    {
        public void Dispose() => Sr25519.ForgetVerifyingKey(publicKey.Span);
    }

    /// <summary>The outcome: null when the call came back Success, else why not (one line for the log). Never throws.</summary>
    public static async Task<string?> RunAsync(IServerBinding binding, AxonService service, AxonSettings settings, CancellationToken cancellationToken = default)
    {
        using var timeout = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        timeout.CancelAfter(settings.WarmUpTimeout);
        try
        {
            using var key = Sr25519KeyPair.FromMiniSecret(RandomNumberGenerator.GetBytes(32));
            // Its place in the prepared-key cache is freed at the end: the key never calls again, and held for the cache's
            // idle time (10 s) it made exactly capacity (1,024) callers one too many (a sweep once a second for nothing).
            using var forget = new ForgetKey(key.PublicKey);
            var auth = new RequestAuth(new KeyPairRequestSigner(key), version: settings.ProtocolVersion);
            service.ExpectWarmUp(auth.Hotkey);
            var bound = binding.Endpoint;
            var address = bound.Address.Equals(IPAddress.Any) ? IPAddress.Loopback
                : bound.Address.Equals(IPAddress.IPv6Any) ? IPAddress.IPv6Loopback : bound.Address;
            var request = new TensorMessage { Version = settings.ProtocolVersion, Hotkey = auth.Hotkey };
            // One row of 8 token ids: the shape of a validator's smallest query; the answer is [1, 8, network_dim].
            request.Tensors.Add(TensorCodec.ToTensor(new long[] { 0, 1, 2, 3, 4, 5, 6, 7 }, [1, 8], Modality.Text));
            using var connection = LeanClientTransport.Instance.Connect(address.ToString(), bound.Port,
                BittensorChannelOptions.Default with { MaxReceiveMessageSize = settings.MaxMessageSize });
            // Two calls: a caller's first (a key never seen: the single check, the new-caller budget, a nonce reservation)
            // and its second (a key seen before: its prepared table, the 4-way vector check, a remembered nonce), which is
            // what every later call runs. Measured: without the second, a real caller's second call still compiled the
            // vector check (~25 ms of CPU; benchmarks/results/axon.md "Session 18, h3-warm").
            var deadline = DateTime.UtcNow + settings.WarmUpTimeout;
            for (var i = 0; i < 2; i++)
            {
                var headers = await auth.CreateHeadersAsync(timeout.Token).ConfigureAwait(false);
                var answer = await connection.CallAsync(BittensorMethod.Forward, request, headers, deadline, timeout.Token)
                    .WaitAsync(timeout.Token).ConfigureAwait(false);
                if (answer.ReturnCode != ReturnCode.Success) return $"answered {answer.ReturnCode}: {answer.Message}";
            }
            // Two more, shed (the lean transport): the shed path a real overload takes — the at-read budget's answer, then
            // calls_in_flight's: NucleusFull from the headers, the service's answer, the shed's frames and send — is
            // compiled here, not inside a turn at the axon's first overload (16–32 ms of JIT then, all of it optimised:
            // btcli has no quick JIT; benchmarks/results/axon.md "Session 23, h1-firstsec"). Counted nowhere.
            if (LeanClientTransport.LocalEndPoint(connection) is { } local && binding.RehearseShed(local, 2))
            {
                for (var i = 0; i < 2; i++)
                {
                    var headers = await auth.CreateHeadersAsync(timeout.Token).ConfigureAwait(false);
                    var shed = await connection.CallAsync(BittensorMethod.Forward, request, headers, deadline, timeout.Token)
                        .WaitAsync(timeout.Token).ConfigureAwait(false);
                    if (shed.ReturnCode != ReturnCode.NucleusFull) return $"the rehearsed shed answered {shed.ReturnCode}: {shed.Message}";
                }
            }
            return null;
        }
        catch (OperationCanceledException) when (!cancellationToken.IsCancellationRequested)
        {
            return $"no answer within {settings.WarmUpTimeout.TotalSeconds:0.###} s (bittensor.axon.warm_up_timeout)";
        }
        catch (RpcException e) when (e.StatusCode == StatusCode.DeadlineExceeded)
        {
            return $"no answer within {settings.WarmUpTimeout.TotalSeconds:0.###} s (bittensor.axon.warm_up_timeout)";
        }
        catch (Exception e) when (e is not OutOfMemoryException)
        {
            // Whatever went wrong, the axon serves anyway: the warm-up only saves the first caller some time.
            return $"{e.GetType().Name}: {e.Message}";
        }
    }
}

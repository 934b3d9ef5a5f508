using Akka.Actor;
using Bittensor.Actors.Axon;
using Bittensor.Protocol;
using Bittensor.Protocol.Wire;
using Google.Protobuf;
using Grpc.Core;
using Bittensor.Neurons.Demo;

namespace Bittensor.Actors.Tests.Axon;

public sealed class AxonServiceSpec(Xunit.Abstractions.ITestOutputHelper output) : AxonTestBase(output)
{
    private const int Dim = 16;

    private Task<(IActorRef Axon, int Port)> EchoAxon(AxonSettings? settings = null, AxonOptions? options = null) =>
        StartAxon(settings ?? Loopback(networkDim: Dim), DemoModels.Echo(Dim), options);

    [Fact]
    public async Task Forward_answers_the_echo_representation_of_every_token()
    {
        var (_, port) = await EchoAxon();
        var response = await Forward(RawClient(port), Alice, TextRequest(Alice, [2, 3], [5, 6, 7, 100, 200, 300]));

        Assert.Equal(ReturnCode.Success, response.ReturnCode);
        Assert.Equal(ProtocolVersion.Current, response.Version);
        var decoded = TensorCodec.Decode(response.Tensors[0]);
        Assert.True(decoded.IsSuccess, decoded.Message);
        Assert.Equal([2L, 3, Dim], decoded.Tensor.ShapeToArray());
        Assert.Equal(Modality.Tensor, response.Tensors[0].Modality);
        var values = decoded.Tensor.ToFloat32Array();
        long[] tokens = [5, 6, 7, 100, 200, 300];
        for (var p = 0; p < 6; p++)
            for (var d = 0; d < Dim; d++)
                Assert.Equal((float)((tokens[p] * 1e-3) + (d * 1e-6)), values[(p * Dim) + d]);
    }

    [Fact]
    public async Task Concurrent_full_width_answers_each_carry_their_own_values_while_response_buffers_are_reused()
    {
        // Through Kestrel the answer's bytes live in a pooled buffer that goes back to the pool once the message is
        // serialized: a buffer returned too early would show up as another call's values in this answer.
        const int width = 1024;
        const int callers = 32;
        // Admission by waiting off: 32 calls on one connection arrive in one read, and once the rule is engaged a read admits
        // limits.admit_per_read (12) and sheds the rest NucleusFull. It engages when the loop's waits stay over 2 ms of the
        // process's own CPU time for 100 ms, and in a test host that CPU is every parallel test's: a one-core run shed
        // round 2's calls (NucleusFull). The rule is not what this test is about (LeanCheapChecksSpec and Protocol's
        // WaitAdmissionTests drive it on a clock of their own).
        var (_, port) = await StartAxon(Loopback(workers: 8, queue: 256, networkDim: width) with { TargetWait = TimeSpan.Zero }, DemoModels.Echo(width));
        var client = RawClient(port);
        var keys = Enumerable.Range(0, callers).Select(i => Bittensor.Core.Crypto.SecretUri.ToSr25519($"//pooled/{i}")).ToArray();
        for (var round = 0; round < 3; round++)
        {
            var calls = new List<(long Token, Task<TensorMessage> Answer)>();
            for (var i = 0; i < callers; i++)
            {
                long token = (round * 1000) + i + 1;
                var headers = await Signed(keys[i]);
                calls.Add((token, client.ForwardAsync(TextRequest(keys[i], [1, 2], [token, token]), headers, DateTime.UtcNow.AddSeconds(20)).ResponseAsync));
            }
            foreach (var (token, answer) in calls)
            {
                var response = await answer;
                Assert.True(response.ReturnCode == ReturnCode.Success, $"round {round}, token {token}: {response.ReturnCode} {response.Message}");
                var decoded = TensorCodec.Decode(response.Tensors[0]);
                Assert.True(decoded.IsSuccess, decoded.Message);
                Assert.Equal([1L, 2, width], decoded.Tensor.ShapeToArray());
                var values = decoded.Tensor.ToFloat32Array();
                for (var d = 0; d < 2 * width; d++)
                    Assert.Equal((float)((token * 1e-3) + (d % width * 1e-6)), values[d]);
            }
        }
    }

    [Fact]
    public async Task Backward_answers_the_gradient_sums_shaped_like_the_inputs()
    {
        var (_, port) = await EchoAxon();
        var request = TextRequest(Alice, [1, 2], [9, 10]);
        var grads = new float[2 * Dim];
        for (var i = 0; i < grads.Length; i++) grads[i] = i < Dim ? 1f : 0.5f;
        request.Tensors.Add(TensorCodec.ToTensor(grads, [1, 2, Dim], Modality.Tensor));

        var response = await RawClient(port).BackwardAsync(request, await Signed(Alice), DateTime.UtcNow.AddSeconds(20));

        Assert.Equal(ReturnCode.Success, response.ReturnCode);
        var decoded = TensorCodec.Decode(response.Tensors[0]).Tensor;
        Assert.Equal([1L, 2], decoded.ShapeToArray());
        Assert.Equal([Dim * 1f, Dim * 0.5f], decoded.ToFloat32Array());
    }

    [Fact]
    public async Task A_bad_signature_is_refused_as_unauthenticated_and_the_next_good_call_is_served()
    {
        var (_, port) = await EchoAxon();
        var client = RawClient(port);
        var headers = await Signed(Alice);
        var signature = headers.Get(AuthHeaders.SignatureName)!.Value;
        var tampered = signature[..^1] + (signature[^1] == '0' ? '1' : '0');
        var bad = new Metadata { { AuthHeaders.AuthName, AuthHeaders.AuthValue }, { AuthHeaders.SignatureName, tampered }, { AuthHeaders.VersionName, "150" } };

        var error = await Assert.ThrowsAsync<RpcException>(() => client.ForwardAsync(Tokens(Alice), bad).ResponseAsync);

        Assert.Equal(StatusCode.Unauthenticated, error.StatusCode);
        Assert.Contains("signature", error.Status.Detail, StringComparison.Ordinal);
        await AssertAnswersGoodCall(client, Alice);
    }

    [Fact]
    public async Task A_replayed_request_is_refused_as_unauthenticated()
    {
        var (_, port) = await EchoAxon();
        var client = RawClient(port);
        var headers = await Signed(Alice);
        var first = await client.ForwardAsync(Tokens(Alice), headers);
        Assert.Equal(ReturnCode.Success, first.ReturnCode);

        var error = await Assert.ThrowsAsync<RpcException>(() => client.ForwardAsync(Tokens(Alice), headers).ResponseAsync);

        Assert.Equal(StatusCode.Unauthenticated, error.StatusCode);
        Assert.Contains("replay", error.Status.Detail, StringComparison.Ordinal);
        await AssertAnswersGoodCall(client, Alice);
    }

    [Fact]
    public async Task Two_calls_signed_in_one_order_and_checked_in_the_other_are_both_served_and_neither_replays()
    {
        // A caller with several calls in flight (the dendrite's endpoint actors) signs them in one order; HTTP/2 streams
        // reach the checks in any order. The reference settings' reorder window serves the older one too.
        var (_, port) = await EchoAxon();
        var client = RawClient(port);
        var older = await Signed(Alice);
        var newer = await Signed(Alice);

        Assert.Equal(ReturnCode.Success, (await client.ForwardAsync(Tokens(Alice), newer)).ReturnCode);
        Assert.Equal(ReturnCode.Success, (await client.ForwardAsync(Tokens(Alice), older)).ReturnCode);

        Assert.True(AxonSettings.Default.NonceReorderWindow > TimeSpan.Zero);
        foreach (var replay in new[] { older, newer })
        {
            var error = await Assert.ThrowsAsync<RpcException>(() => client.ForwardAsync(Tokens(Alice), replay).ResponseAsync);
            Assert.Equal(StatusCode.Unauthenticated, error.StatusCode);
            Assert.Contains("replay", error.Status.Detail, StringComparison.Ordinal);
        }
    }

    [Fact]
    public async Task With_no_reorder_window_the_older_of_two_reordered_calls_is_refused_as_in_2021()
    {
        var (_, port) = await EchoAxon(Loopback(networkDim: Dim) with { NonceReorderWindow = TimeSpan.Zero });
        var client = RawClient(port);
        var older = await Signed(Alice);
        var newer = await Signed(Alice);

        Assert.Equal(ReturnCode.Success, (await client.ForwardAsync(Tokens(Alice), newer)).ReturnCode);
        var error = await Assert.ThrowsAsync<RpcException>(() => client.ForwardAsync(Tokens(Alice), older).ResponseAsync);

        Assert.Equal(StatusCode.Unauthenticated, error.StatusCode);
        Assert.Contains("1 ms newer", error.Status.Detail, StringComparison.Ordinal);
    }

    [Fact]
    public async Task A_far_future_nonce_from_an_unsigned_caller_does_not_lock_out_the_real_caller()
    {
        var (_, port) = await EchoAxon();
        var client = RawClient(port);
        var alice = Alice.ToSs58();
        var forged = RequestNonce.Format(DateTime.Now.AddSeconds(20)) + AuthHeaders.Separator + alice + AuthHeaders.Separator + "0x" + new string('0', 128);
        var headers = new Metadata { { AuthHeaders.AuthName, AuthHeaders.AuthValue }, { AuthHeaders.SignatureName, forged }, { AuthHeaders.VersionName, "150" } };

        var error = await Assert.ThrowsAsync<RpcException>(() => client.ForwardAsync(Tokens(Alice), headers).ResponseAsync);

        Assert.Equal(StatusCode.Unauthenticated, error.StatusCode);
        await AssertAnswersGoodCall(client, Alice);
    }

    [Fact]
    public async Task A_malformed_signature_header_is_refused_before_verification()
    {
        var (_, port) = await EchoAxon();
        var client = RawClient(port);
        var headers = new Metadata { { AuthHeaders.AuthName, AuthHeaders.AuthValue }, { AuthHeaders.SignatureName, "nonsense" }, { AuthHeaders.VersionName, "150" } };

        var error = await Assert.ThrowsAsync<RpcException>(() => client.ForwardAsync(Tokens(Alice), headers).ResponseAsync);

        Assert.Equal(StatusCode.Unauthenticated, error.StatusCode);
        await AssertAnswersGoodCall(client, Alice);
    }

    [Fact]
    public async Task An_old_protocol_version_answers_RequestIncompatibleVersion()
    {
        var (_, port) = await EchoAxon();
        var client = RawClient(port);
        var old = await new RequestAuth(new KeyPairRequestSigner(Bob), version: 100).CreateHeadersAsync();

        var response = await client.ForwardAsync(Tokens(Bob), old);

        Assert.Equal(ReturnCode.RequestIncompatibleVersion, response.ReturnCode);
        await AssertAnswersGoodCall(client, Alice);
    }

    [Fact]
    public async Task A_garbage_buffer_answers_RequestDeserializationException()
    {
        var (_, port) = await EchoAxon();
        var client = RawClient(port);
        var request = new TensorMessage { Version = 150, Hotkey = Alice.ToSs58() };
        request.Tensors.Add(new Tensor { Version = 150, Buffer = ByteString.CopyFrom(0xc1, 0xff, 0x00, 0x85, 0x13), Shape = { 2, 3 }, Dtype = DataType.Int64, Modality = Modality.Text });

        var response = await Forward(client, Alice, request);

        Assert.Equal(ReturnCode.RequestDeserializationException, response.ReturnCode);
        await AssertAnswersGoodCall(client, Alice);
    }

    [Fact]
    public async Task Text_tokens_of_the_wrong_rank_answer_RequestShapeException()
    {
        var (_, port) = await EchoAxon();
        var client = RawClient(port);

        var response = await Forward(client, Alice, TextRequest(Alice, [1, 2, 2], [1, 2, 3, 4]));

        Assert.Equal(ReturnCode.RequestShapeException, response.ReturnCode);
        await AssertAnswersGoodCall(client, Alice);
    }

    [Fact]
    public async Task A_proto_shape_that_disagrees_with_the_buffer_answers_RequestShapeException()
    {
        var (_, port) = await EchoAxon();
        var client = RawClient(port);
        var request = Tokens(Alice, 2, 3);
        request.Tensors[0].Shape[1] = 4;

        var response = await Forward(client, Alice, request);

        Assert.Equal(ReturnCode.RequestShapeException, response.ReturnCode);
        await AssertAnswersGoodCall(client, Alice);
    }

    [Fact]
    public async Task A_request_without_tensors_answers_EmptyRequest()
    {
        var (_, port) = await EchoAxon();
        var client = RawClient(port);

        var response = await Forward(client, Alice, new TensorMessage { Version = 150, Hotkey = Alice.ToSs58() });

        Assert.Equal(ReturnCode.EmptyRequest, response.ReturnCode);
        await AssertAnswersGoodCall(client, Alice);
    }

    [Fact]
    public async Task A_message_over_the_size_limit_is_refused_and_the_axon_keeps_serving()
    {
        var (_, port) = await EchoAxon(Loopback(networkDim: Dim) with { MaxMessageSize = 64 * 1024 });
        var client = RawClient(port);
        var big = Tokens(Alice, 1, 16 * 1024); // 128 KiB of int64 tokens

        var error = await Assert.ThrowsAsync<RpcException>(async () => await Forward(client, Alice, big));

        Assert.Equal(StatusCode.ResourceExhausted, error.StatusCode);
        await AssertAnswersGoodCall(client, Alice);
    }

    [Fact]
    public async Task A_backward_needs_exactly_inputs_and_grads_of_matching_shape()
    {
        var (_, port) = await EchoAxon();
        var client = RawClient(port);

        var single = await client.BackwardAsync(Tokens(Alice, 1, 2), await Signed(Alice));
        var wrongGrads = Tokens(Alice, 1, 2);
        wrongGrads.Tensors.Add(TensorCodec.ToTensor(new float[3 * Dim], [1, 3, Dim], Modality.Tensor));
        var mismatched = await client.BackwardAsync(wrongGrads, await Signed(Alice));

        Assert.Equal(ReturnCode.InvalidRequest, single.ReturnCode);
        Assert.Equal(ReturnCode.RequestShapeException, mismatched.ReturnCode);
        await AssertAnswersGoodCall(client, Alice);
    }

    [Fact]
    public async Task A_caller_below_the_minimum_stake_answers_SenderUnknown()
    {
        var (axon, port) = await EchoAxon(Loopback(networkDim: Dim) with { BlacklistMinStake = 1 });
        axon.Tell(new AxonActor.UpdateStakes(new Dictionary<string, double> { [Bob.ToSs58()] = 5 }));
        await axon.Ask<AxonStatsSnapshot>(AxonActor.GetStats.Instance, Wait); // UpdateStakes processed before this answer
        var client = RawClient(port);

        var alice = await Forward(client, Alice, Tokens(Alice));
        var bob = await Forward(client, Bob, Tokens(Bob));

        Assert.Equal(ReturnCode.SenderUnknown, alice.ReturnCode);
        Assert.Equal(ReturnCode.Success, bob.ReturnCode);
    }

    [Fact]
    public async Task With_registered_only_a_caller_missing_from_the_stake_table_answers_SenderUnknown()
    {
        var (axon, port) = await EchoAxon(Loopback(networkDim: Dim) with { BlacklistRegisteredOnly = true });
        var client = RawClient(port);

        var beforeAnySnapshot = await Forward(client, Bob, Tokens(Bob));
        axon.Tell(new AxonActor.UpdateStakes(new Dictionary<string, double> { [Bob.ToSs58()] = 0 }));
        var stats = await axon.Ask<AxonStatsSnapshot>(AxonActor.GetStats.Instance, Wait); // UpdateStakes processed before this answer
        var alice = await Forward(client, Alice, Tokens(Alice));
        var bob = await Forward(client, Bob, Tokens(Bob));

        Assert.Equal(ReturnCode.SenderUnknown, beforeAnySnapshot.ReturnCode);
        Assert.Contains("no metagraph snapshot yet", beforeAnySnapshot.Message, StringComparison.Ordinal);
        Assert.True(stats.StakesKnown);
        Assert.Equal(1, stats.RegisteredHotkeys);
        Assert.Equal(ReturnCode.SenderUnknown, alice.ReturnCode);
        Assert.Equal(ReturnCode.Success, bob.ReturnCode);
    }

    [Fact]
    public async Task A_model_slower_than_the_call_timeout_answers_NucleusTimeout()
    {
        var model = new GatedModel();
        var (_, port) = await StartAxon(Loopback(callTimeout: TimeSpan.FromMilliseconds(300), networkDim: Dim), model.Handlers(Dim));

        var response = await Forward(RawClient(port), Alice, Tokens(Alice));

        Assert.Equal(ReturnCode.NucleusTimeout, response.ReturnCode);
        model.Open();
    }

    [Fact]
    public async Task A_saturated_axon_answers_NucleusFull_without_waiting_for_the_model()
    {
        var model = new GatedModel();
        var (axon, port) = await StartAxon(Loopback(workers: 1, queue: 1, networkDim: Dim), model.Handlers(Dim));
        var client = RawClient(port);
        var running = Forward(client, Alice, Tokens(Alice));
        await model.FirstEntered.WaitAsync(Wait);
        var waiting = Forward(client, Bob, Tokens(Bob));
        await AwaitQueued(await ModelHostOf(axon), 1);
        Assert.Equal(2, (await axon.Ask<AxonStatsSnapshot>(AxonActor.GetStats.Instance, Wait)).Waiting);

        var refused = await Forward(client, Charlie, Tokens(Charlie));

        Assert.Equal(ReturnCode.NucleusFull, refused.ReturnCode);
        Assert.False(running.IsCompleted);
        model.Open();
        Assert.Equal(ReturnCode.Success, (await running).ReturnCode);
        Assert.Equal(ReturnCode.Success, (await waiting).ReturnCode);
    }

    [Fact]
    public async Task Waiting_callers_are_served_highest_stake_first() =>
        Assert.Equal([Alice.ToSs58(), Charlie.ToSs58(), Dave.ToSs58(), Bob.ToSs58(), Eve.ToSs58()], await ServedOrder(byStake: true));

    [Fact]
    public async Task With_stake_priority_off_waiting_callers_are_served_in_arrival_order() =>
        Assert.Equal([Alice.ToSs58(), Eve.ToSs58(), Bob.ToSs58(), Dave.ToSs58(), Charlie.ToSs58()], await ServedOrder(byStake: false));

    private async Task<IReadOnlyList<string>> ServedOrder(bool byStake)
    {
        var model = new GatedModel();
        var (axon, port) = await StartAxon(Loopback(workers: 1, queue: 8, networkDim: Dim) with { PriorityByStake = byStake }, model.Handlers(Dim));
        axon.Tell(new AxonActor.UpdateStakes(new Dictionary<string, double>
        {
            [Bob.ToSs58()] = 10, [Charlie.ToSs58()] = 1000, [Dave.ToSs58()] = 100.5,
        }));
        var client = RawClient(port);
        var host = await ModelHostOf(axon);
        var blocker = Forward(client, Alice, Tokens(Alice));
        await model.FirstEntered.WaitAsync(Wait);

        // Eve is unknown (lowest); she and Bob arrive before the richer callers. They wait in the model host's queue.
        var calls = new List<Task<TensorMessage>>();
        foreach (var key in new[] { Eve, Bob, Dave, Charlie })
        {
            calls.Add(Forward(client, key, Tokens(key)));
            await AwaitQueued(host, calls.Count);
        }
        model.Open();
        await blocker;
        foreach (var c in calls) Assert.Equal(ReturnCode.Success, (await c).ReturnCode);
        return model.Served;
    }

    [Fact]
    public async Task Per_caller_stats_count_calls_and_codes()
    {
        var (axon, port) = await EchoAxon();
        var client = RawClient(port);
        await AssertAnswersGoodCall(client, Alice);
        await AssertAnswersGoodCall(client, Alice);
        await Forward(client, Alice, new TensorMessage { Version = 150, Hotkey = Alice.ToSs58() });

        var stats = await axon.Ask<AxonStatsSnapshot>(AxonActor.GetStats.Instance, Wait);

        var alice = stats.PerCaller[Alice.ToSs58()];
        Assert.Equal(3, alice.Calls);
        Assert.Equal(2, alice.Codes[ReturnCode.Success]);
        Assert.Equal(1, alice.Codes[ReturnCode.EmptyRequest]);
        Assert.True(alice.BytesOut > alice.BytesIn);
    }

    [Fact]
    public async Task With_verification_explicitly_disabled_an_unsigned_caller_is_served()
    {
        var config = Akka.Configuration.ConfigurationFactory.ParseString("bittensor.axon.auth.disable_signature_verification = on")
            .WithFallback(BittensorRuntime.ReferenceConfig);
        var settings = AxonSettings.Create(BittensorRuntime.Section(config, AxonSettings.SectionPath)) with { Ip = "127.0.0.1", Port = 0, NetworkDim = Dim };
        var (_, port) = await EchoAxon(settings);
        var unsigned = RequestNonce.Format(DateTime.Now) + AuthHeaders.Separator + Alice.ToSs58() + AuthHeaders.Separator + "0x" + new string('0', 128);
        var headers = new Metadata { { AuthHeaders.AuthName, AuthHeaders.AuthValue }, { AuthHeaders.SignatureName, unsigned }, { AuthHeaders.VersionName, "150" } };

        var response = await RawClient(port).ForwardAsync(Tokens(Alice), headers);

        Assert.False(AxonSettings.Default.DisableSignatureVerification);
        Assert.Equal(ReturnCode.Success, response.ReturnCode);
    }

    [Fact]
    public async Task A_restarted_axon_still_refuses_a_request_replayed_from_before_the_restart()
    {
        var dir = Path.Combine(Path.GetTempPath(), "bt-axon-nonces-" + Guid.NewGuid().ToString("N"));
        Directory.CreateDirectory(dir);
        try
        {
            var settings = Loopback(networkDim: Dim) with { NonceStorePath = Path.Combine(dir, "nonces") };
            var (first, port) = await EchoAxon(settings);
            var headers = await Signed(Alice);
            Assert.Equal(ReturnCode.Success, (await RawClient(port).ForwardAsync(Tokens(Alice), headers)).ReturnCode);
            Watch(first);
            first.Tell(PoisonPill.Instance);
            await ExpectTerminatedAsync(first);

            var (_, port2) = await EchoAxon(settings);
            var error = await Assert.ThrowsAsync<RpcException>(() => RawClient(port2).ForwardAsync(Tokens(Alice), headers).ResponseAsync);

            Assert.Equal(StatusCode.Unauthenticated, error.StatusCode);
            Assert.Contains("replay", error.Status.Detail, StringComparison.Ordinal);
        }
        finally
        {
            Directory.Delete(dir, recursive: true);
        }
    }

    [Fact]
    public async Task An_inline_forward_written_into_the_wire_buffer_can_refuse_or_fail_and_the_caller_gets_the_code()
    {
        // ForwardInto runs on the call's own thread (no host hop); a refusal or an exception still becomes one answer
        // with a code, and the rented buffer goes back (the next call through it answers its own values).
        var mode = 0;
        var echo = DemoModels.Echo(Dim);
        var handlers = echo with
        {
            ForwardInto = (r, outputs) => Volatile.Read(ref mode) switch
            {
                1 => new ModelResponse(null, ReturnCode.NotServingNucleus, "resting"),
                2 => throw new InvalidOperationException("boom"),
                _ => echo.ForwardInto!(r, outputs),
            },
        };
        var (_, port) = await StartAxon(Loopback(networkDim: Dim), handlers);
        var client = RawClient(port);

        Volatile.Write(ref mode, 1);
        var refused = await Forward(client, Alice, TextRequest(Alice, [1, 2], [5, 6]));
        Assert.Equal(ReturnCode.NotServingNucleus, refused.ReturnCode);
        Assert.Equal("resting", refused.Message);
        Assert.Empty(refused.Tensors);

        Volatile.Write(ref mode, 2);
        var failed = await Forward(client, Alice, TextRequest(Alice, [1, 2], [5, 6]));
        Assert.Equal(ReturnCode.UnknownException, failed.ReturnCode);
        Assert.Contains("InvalidOperationException", failed.Message, StringComparison.Ordinal);
        Assert.DoesNotContain("boom", failed.Message, StringComparison.Ordinal);

        Volatile.Write(ref mode, 0);
        var ok = await Forward(client, Alice, TextRequest(Alice, [1, 2], [5, 6]));
        Assert.Equal(ReturnCode.Success, ok.ReturnCode);
        var values = TensorCodec.Decode(ok.Tensors[0]).Tensor.ToFloat32Array();
        Assert.Equal(DemoModels.EchoForward(Bittensor.Protocol.DenseTensor.Int64([1, 2], [5, 6]), Dim).Floats!.ToArray(), values);
    }
}

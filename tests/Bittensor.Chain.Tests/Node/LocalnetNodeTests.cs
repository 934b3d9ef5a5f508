using System.Globalization;
using System.Text.Json;
using Bittensor.Chain.Local;
using Bittensor.Chain.Node;
using Bittensor.Chain.Substrate;
using Bittensor.Chain.Tests.Localnet;
using Bittensor.Core;
using Bittensor.Core.Domain;

namespace Bittensor.Chain.Tests.Node;

/// <summary>The localnet node over real loopback WebSocket and HTTP (port 0), read with the metadata it serves.</summary>
public sealed class LocalnetNodeTests : IAsyncLifetime
{
    private TestChain _t = null!;
    private LocalnetNode _node = null!;
    private readonly HttpClient _http = new();

    public async Task InitializeAsync()
    {
        _t = TestChain.Create();
        _node = await LocalnetNode.StartAsync(_t.Chain, new LocalnetNodeOptions { Port = 0, MaxRequestBytes = 64 * 1024, MaxBatch = 8 });
    }

    public async Task DisposeAsync()
    {
        await _node.DisposeAsync();
        await _t.DisposeAsync();
        _http.Dispose();
    }

    private static ulong Number(JsonElement header) => ulong.Parse(header.GetProperty("number").GetString()![2..], NumberStyles.HexNumber, CultureInfo.InvariantCulture);

    [Fact]
    public async Task Http_serves_chain_info_metadata_storage_and_answers_bad_requests_with_json_rpc_errors()
    {
        var url = _node.HttpEndpoint;
        var (status, body) = await RpcClient.Post(_http, url, """{"jsonrpc":"2.0","id":1,"method":"system_chain","params":[]}""");
        Assert.Equal((200, _t.Chain.Identity.Name), (status, body!["result"]!.GetValue<string>()));
        (_, body) = await RpcClient.Post(_http, url, """{"jsonrpc":"2.0","id":2,"method":"rpc_methods"}""");
        var methods = body!["result"]!["methods"]!.AsArray().Select(m => m!.GetValue<string>()).ToHashSet();
        foreach (var m in new[] { "system_accountNextIndex", "chain_getBlockHash", "chain_subscribeNewHeads", "chain_subscribeNewHead", "state_getMetadata", "state_call", "state_getKeysPaged", "state_subscribeStorage", "author_submitAndWatchExtrinsic", "dev_newBlock" })
            Assert.Contains(m, methods);

        // Metadata over RPC decodes with our own decoder: V14 from state_getMetadata, V15 through state_call.
        (_, body) = await RpcClient.Post(_http, url, """{"jsonrpc":"2.0","id":3,"method":"state_getMetadata","params":[]}""");
        var v14 = RuntimeMetadata.Decode(Hex.Decode(body!["result"]!.GetValue<string>()));
        Assert.Equal(7, v14.Pallet("SubtensorModule").Index);
        (_, body) = await RpcClient.Post(_http, url, """{"jsonrpc":"2.0","id":4,"method":"state_call","params":["Metadata_metadata_at_version","0x0f000000"]}""");
        Assert.Equal(15, RuntimeMetadata.Decode(Hex.Decode(body!["result"]!.GetValue<string>())).Version);
        (_, body) = await RpcClient.Post(_http, url, """{"jsonrpc":"2.0","id":5,"method":"state_call","params":["Metadata_metadata_at_version","0x63000000"]}""");
        Assert.Equal("0x00", body!["result"]!.GetValue<string>());

        // System.Account of Alice, through getStorage and queryStorageAt; nonce through the runtime API and the pool RPC.
        var key = Hex.Encode(StorageKeys.Key(v14, "System", "Account", ScaleValue.Account(DevAccounts.Alice)));
        (_, body) = await RpcClient.Post(_http, url, $$"""{"jsonrpc":"2.0","id":6,"method":"state_getStorage","params":["{{key}}"]}""");
        var account = ChainRecords.ToAccountInfo(StorageKeys.DecodeValue(v14, "System", "Account", Hex.Decode(body!["result"]!.GetValue<string>()))!);
        Assert.Equal((await _t.Chain.GetBalanceAsync(DevAccounts.Alice)).Rao, account.Free.Rao);
        (_, body) = await RpcClient.Post(_http, url, $$"""{"jsonrpc":"2.0","id":7,"method":"state_queryStorageAt","params":[["{{key}}", "0x00"]]}""");
        var changes = body!["result"]![0]!["changes"]!.AsArray();
        Assert.Equal(2, changes.Count);
        Assert.Null(changes[1]![1]);
        (_, body) = await RpcClient.Post(_http, url, $$"""{"jsonrpc":"2.0","id":8,"method":"state_call","params":["AccountNonceApi_account_nonce","{{Hex.Encode(DevAccounts.Alice.ToArray())}}"]}""");
        Assert.Equal("0x00000000", body!["result"]!.GetValue<string>());
        // subtensor runtime APIs: no subnet 1 yet, so an empty Vec inside the Vec<u8> (04 00); an unknown API is a client error.
        (_, body) = await RpcClient.Post(_http, url, """{"jsonrpc":"2.0","id":8,"method":"state_call","params":["NeuronInfoRuntimeApi_get_neurons_lite","0x0100"]}""");
        Assert.Equal("0x0400", body!["result"]!.GetValue<string>());
        (_, body) = await RpcClient.Post(_http, url, """{"jsonrpc":"2.0","id":8,"method":"state_call","params":["NeuronInfoRuntimeApi_get_neurons_lite","0x01"]}""");
        Assert.Equal(RpcErrors.ClientError, body!["error"]!["code"]!.GetValue<int>());
        (_, body) = await RpcClient.Post(_http, url, """{"jsonrpc":"2.0","id":8,"method":"state_call","params":["NoSuchApi_nothing","0x"]}""");
        Assert.Equal(RpcErrors.ClientError, body!["error"]!["code"]!.GetValue<int>());
        (_, body) = await RpcClient.Post(_http, url, $$"""{"jsonrpc":"2.0","id":9,"method":"system_accountNextIndex","params":["{{DevAccounts.Alice}}"]}""");
        Assert.Equal(0, body!["result"]!.GetValue<int>());
        (_, body) = await RpcClient.Post(_http, url, $$"""{"jsonrpc":"2.0","id":10,"method":"state_getKeysPaged","params":["{{Hex.Encode(StorageKeys.Prefix("System", "Account"))}}", 3]}""");
        Assert.Equal(3, body!["result"]!.AsArray().Count);

        // Errors: malformed JSON, unknown method, bad params, not a request, oversize, batch limits.
        (status, body) = await RpcClient.Post(_http, url, """{"jsonrpc":"2.0","id":1,"method":""");
        Assert.Equal((200, RpcErrors.ParseError), (status, body!["error"]!["code"]!.GetValue<int>()));
        (_, body) = await RpcClient.Post(_http, url, """{"jsonrpc":"2.0","id":"x","method":"no_such_method","params":[]}""");
        Assert.Equal((RpcErrors.MethodNotFound, "x"), (body!["error"]!["code"]!.GetValue<int>(), body["id"]!.GetValue<string>()));
        (_, body) = await RpcClient.Post(_http, url, """{"jsonrpc":"2.0","id":1,"method":"state_getStorage","params":["zz"]}""");
        Assert.Equal(RpcErrors.InvalidParams, body!["error"]!["code"]!.GetValue<int>());
        (_, body) = await RpcClient.Post(_http, url, """[1]""");
        Assert.Equal(RpcErrors.InvalidRequest, body![0]!["error"]!["code"]!.GetValue<int>());
        (_, body) = await RpcClient.Post(_http, url, """[{"jsonrpc":"2.0","id":1,"method":"system_name"},{"jsonrpc":"2.0","id":2,"method":"nope"}]""");
        Assert.Equal(2, body!.AsArray().Count);
        (_, body) = await RpcClient.Post(_http, url, "[" + string.Join(",", Enumerable.Repeat("""{"jsonrpc":"2.0","id":1,"method":"system_name"}""", 9)) + "]");
        Assert.Equal(RpcErrors.InvalidRequest, body!["error"]!["code"]!.GetValue<int>());
        (status, _) = await RpcClient.Post(_http, url, $$"""{"jsonrpc":"2.0","id":1,"method":"system_name","params":["{{new string('a', 70_000)}}"]}""");
        Assert.Equal(413, status);
        (_, body) = await RpcClient.Post(_http, url, """{"jsonrpc":"2.0","id":1,"method":"chain_subscribeNewHeads"}""");
        Assert.Equal(RpcErrors.MethodNotFound, body!["error"]!["code"]!.GetValue<int>());
        (_, body) = await RpcClient.Post(_http, url, $$"""{"jsonrpc":"2.0","id":1,"method":"state_getStorage","params":["{{key}}","0x{{new string('1', 64)}}"]}""");
        Assert.Equal(RpcErrors.ClientError, body!["error"]!["code"]!.GetValue<int>());
    }

    [Fact]
    public async Task A_block_made_between_a_head_subscription_and_its_answer_is_notified_after_the_answer_not_before()
    {
        // A block the dispatcher delivers after the subscription exists but before its id went out: the client cannot
        // match a notification to an id it has not seen, so the node must hold it until the answer is sent.
        var dispatched = new TaskCompletionSource<ulong>(TaskCreationOptions.RunContinuationsAsynchronously);
        _node.BlockDispatchedForTests += b => dispatched.TrySetResult(b.Number);
        _node.Methods.SubscribedForTests = () =>
        {
            _node.Methods.SubscribedForTests = null;
            _t.Chain.ProduceBlockAsync().GetAwaiter().GetResult();
            dispatched.Task.Wait(TimeSpan.FromMinutes(2)); // hang guard only: the dispatcher has run once it is set
        };
        var before = _t.Chain.BlockNumber;
        using var ws = new System.Net.WebSockets.ClientWebSocket();
        await ws.ConnectAsync(_node.Endpoint, CancellationToken.None);
        await ws.SendAsync("""{"jsonrpc":"2.0","id":7,"method":"chain_subscribeNewHeads","params":[]}"""u8.ToArray(),
            System.Net.WebSockets.WebSocketMessageType.Text, true, CancellationToken.None);
        Assert.Equal(before + 1, await dispatched.Task.WaitAsync(TimeSpan.FromMinutes(2)));

        var messages = new List<JsonElement>();
        var buffer = new byte[1 << 16];
        using var guard = new CancellationTokenSource(TimeSpan.FromMinutes(2));
        while (messages.Count < 3)
        {
            var r = await ws.ReceiveAsync(buffer, guard.Token);
            Assert.True(r.EndOfMessage);
            messages.Add(JsonDocument.Parse(buffer.AsMemory(0, r.Count)).RootElement.Clone());
        }
        Assert.True(messages[0].TryGetProperty("id", out var answered), $"the first message is not the answer: {messages[0]}");
        Assert.Equal(7, answered.GetInt32()); // the answer first
        var id = messages[0].GetProperty("result").GetString();
        var numbers = messages.Skip(1).Select(m =>
        {
            Assert.Equal(id, m.GetProperty("params").GetProperty("subscription").GetString());
            return Number(m.GetProperty("params").GetProperty("result"));
        }).ToArray();
        Assert.Equal([before, before + 1], numbers); // the head at the subscribe, then the block made meanwhile
    }

    [Fact]
    public async Task A_transfer_signed_from_the_served_metadata_is_ready_in_block_and_finalized_and_its_events_decode()
    {
        await using var c = await RpcClient.ConnectAsync(_node.Endpoint);
        var md = RuntimeMetadata.Decode(Hex.Decode((await c.Call("state_getMetadata")).GetString()!));
        var heads = await c.Subscribe("chain_subscribeNewHeads");
        var first = await c.Next(heads); // the current best head comes first
        Assert.Equal(_t.Chain.BlockNumber, Number(first));
        Assert.Equal(Hex.Encode((await c.Call("dev_newBlock", new { count = 3 })).GetString() is { } h ? Hex.Decode(h) : []),
            Hex.Encode(_t.Chain.BlockHashOf(_t.Chain.BlockNumber)!));
        for (var i = 1; i <= 3; i++) Assert.Equal(Number(first) + (ulong)i, Number(await c.Next(heads)));

        // Build the extrinsic as a client does: nonce from the pool RPC, era from the best header, genesis from block 0.
        var version = await c.Call("state_getRuntimeVersion");
        var genesis = Hex.Decode((await c.Call("chain_getBlockHash", 0)).GetString()!);
        var header = await c.Call("chain_getHeader");
        var current = Number(header);
        var era = Era.Mortal(64, current);
        var birth = Hex.Decode((await c.Call("chain_getBlockHash", era.BirthBlock(current))).GetString()!);
        var nonce = (uint)(await c.Call("system_accountNextIndex", DevAccounts.Alice.ToString())).GetInt32();
        var call = MetadataCalls.Encode(md, "Balances", "transfer_keep_alive",
            ("dest", ScaleValue.Enum("Id", ScaleValue.Account(DevAccounts.Bob))), ("value", ScaleValue.Int(123_456_789)));
        var p = new TransactionParams((uint)version.GetProperty("specVersion").GetInt32(), (uint)version.GetProperty("transactionVersion").GetInt32(), genesis, nonce, era, birth);
        var builder = new ExtrinsicBuilder(md);
        var xt = builder.Sign(call, TestChain.Key("//Alice"), p);

        var bad = await c.CallRaw("author_submitAndWatchExtrinsic", Hex.Encode(builder.Sign(call, TestChain.Key("//Bob"), p) is var b ? Tamper(b) : []));
        Assert.Equal(RpcErrors.InvalidTransaction, bad.GetProperty("error").GetProperty("code").GetInt32());
        Assert.Equal("Transaction has a bad signature", bad.GetProperty("error").GetProperty("data").GetString());

        var watch = await c.Subscribe("author_submitAndWatchExtrinsic", Hex.Encode(xt));
        Assert.Equal("ready", (await c.Next(watch)).GetString());
        var pending = await c.Call("author_pendingExtrinsics");
        Assert.Equal(Hex.Encode(xt), pending[0].GetString());
        var again = await c.CallRaw("author_submitExtrinsic", Hex.Encode(xt));
        Assert.Equal(RpcErrors.AlreadyImported, again.GetProperty("error").GetProperty("code").GetInt32());
        await c.Call("dev_newBlock", new { count = 1 });
        var inBlock = (await c.Next(watch)).GetProperty("inBlock").GetString()!;
        Assert.Equal(inBlock, (await c.Next(watch)).GetProperty("finalized").GetString());

        var block = await c.Call("chain_getBlock", inBlock);
        Assert.Equal(Hex.Encode(xt), block.GetProperty("block").GetProperty("extrinsics")[0].GetString());
        var eventsRaw = (await c.Call("state_getStorage", Hex.Encode(StorageKeys.Prefix("System", "Events")), inBlock)).GetString()!;
        var events = MetadataEvents.DecodeEvents(md, Hex.Decode(eventsRaw));
        var transfer = events.Single(e => e.Name == "Transfer");
        Assert.Equal((0u, "Balances", 123_456_789UL), (transfer.ExtrinsicIndex!.Value, transfer.Pallet, transfer.Fields.Field("amount").AsU64()));
        Assert.Contains(events, e => e.Name == "ExtrinsicSuccess" && e.ExtrinsicIndex == 0);
        // The header's hash is the block hash (what polkadot-js computes), and the parent chain holds.
        var hdr = await c.Call("chain_getHeader", inBlock);
        Assert.Equal(inBlock, Hex.Encode(_t.Chain.FindBlock(Number(hdr))!.Hash.Span));
        var stale = await c.CallRaw("author_submitExtrinsic", Hex.Encode(xt));
        Assert.Equal("Transaction is outdated", stale.GetProperty("error").GetProperty("data").GetString());
        Assert.Equal(1, (await c.Call("system_accountNextIndex", DevAccounts.Alice.ToString())).GetInt32());
    }

    private static byte[] Tamper(byte[] xt)
    {
        var copy = (byte[])xt.Clone();
        copy[^1] ^= 1; // the value: signed by Bob for another amount, and Bob is not who the address says anyway
        return copy;
    }

    [Fact]
    public async Task Storage_and_runtime_version_subscriptions_notify_first_then_on_change_and_unsubscribe()
    {
        await using var c = await RpcClient.ConnectAsync(_node.Endpoint);
        var md = _t.Chain.Metadata.Metadata;
        var bobKey = Hex.Encode(StorageKeys.Key(md, "System", "Account", ScaleValue.Account(DevAccounts.Bob)));
        var numberKey = Hex.Encode(StorageKeys.Prefix("System", "Number"));
        var sub = await c.Subscribe("state_subscribeStorage", (object)new[] { bobKey });
        var initial = await c.Next(sub);
        Assert.Equal(bobKey, initial.GetProperty("changes")[0][0].GetString());
        var rv = await c.Subscribe("state_subscribeRuntimeVersion");
        Assert.Equal(148, (await c.Next(rv)).GetProperty("specVersion").GetInt32());
        var numbers = await c.Subscribe("state_subscribeStorage", (object)new[] { numberKey });
        await c.Next(numbers);
        await _t.Submit("//Alice", new Transfer(DevAccounts.Bob, Balance.FromTao(1)));
        var change = await c.Next(sub);
        var account = ChainRecords.ToAccountInfo(StorageKeys.DecodeValue(md, "System", "Account", Hex.Decode(change.GetProperty("changes")[0][1].GetString()!))!);
        Assert.Equal((await _t.Chain.GetBalanceAsync(DevAccounts.Bob)).Rao, account.Free.Rao);
        Assert.Equal(_t.Chain.BlockNumber, (ulong)BitConverter.ToUInt32(Hex.Decode((await c.Next(numbers)).GetProperty("changes")[0][1].GetString()!)));
        Assert.True((await c.Call("state_unsubscribeStorage", numbers)).GetBoolean());
        Assert.False((await c.Call("state_unsubscribeStorage", numbers)).GetBoolean());
        await c.Call("dev_newBlock", new { count = 2 });
        // Bob's account did not change again, and nothing more arrives for the cancelled subscription.
        await c.Call("system_name"); // a round trip: notifications of those blocks were queued before this answer
        Assert.False(c.TryNext(sub, out _));
        Assert.False(c.TryNext(numbers, out _));
    }

    [Fact]
    public async Task The_pool_subscription_sends_the_ready_count_first_and_then_on_every_change()
    {
        await using var c = await RpcClient.ConnectAsync(_node.Endpoint);
        var pool = await c.Subscribe("dev_subscribePendingExtrinsics");
        Assert.Equal(0, (await c.Next(pool)).GetInt32());
        var first = _t.Chain.SubmitAsync(await _t.Sign("//Alice", new Transfer(DevAccounts.Bob, Balance.FromTao(1))));
        Assert.Equal(1, (await c.Next(pool)).GetInt32());
        var second = _t.Chain.SubmitAsync(await _t.Sign("//Bob", new Transfer(DevAccounts.Alice, Balance.FromTao(1))));
        Assert.Equal(2, (await c.Next(pool)).GetInt32());
        Assert.Equal(2, (await c.Call("author_pendingExtrinsics")).GetArrayLength());
        await c.Call("dev_newBlock", new { count = 1 });
        Assert.Equal(0, (await c.Next(pool)).GetInt32()); // the block took both
        Assert.IsType<CallResult.InBlock>(await first);
        Assert.IsType<CallResult.InBlock>(await second);
        // A second subscriber on another connection starts from the current size.
        await using var late = await RpcClient.ConnectAsync(_node.Endpoint);
        Assert.Equal(0, (await late.Next(await late.Subscribe("dev_subscribePendingExtrinsics"))).GetInt32());

        Assert.True((await c.Call("dev_unsubscribePendingExtrinsics", pool)).GetBoolean());
        await _t.Submit("//Alice", new Transfer(DevAccounts.Bob, Balance.FromTao(1)));
        await c.Call("system_name"); // a round trip: a notification of that change was queued before this answer
        Assert.False(c.TryNext(pool, out _));
        var overHttp = await RpcClient.Post(_http, _node.HttpEndpoint, """{"jsonrpc":"2.0","id":1,"method":"dev_subscribePendingExtrinsics","params":[]}""");
        Assert.Equal(RpcErrors.MethodNotFound, overHttp.Body!["error"]!["code"]!.GetValue<int>()); // a subscription: WebSocket only
    }

    [Fact]
    public async Task A_subscriber_that_does_not_read_is_dropped_while_blocks_and_other_subscribers_go_on()
    {
        await using var node = await LocalnetNode.StartAsync(_t.Chain, new LocalnetNodeOptions { Port = 0, MaxQueuedMessagesPerConnection = 16 });
        await using var good = await RpcClient.ConnectAsync(node.Endpoint);
        var heads = await good.Subscribe("chain_subscribeNewHeads");
        await good.Next(heads);
        // The slow client subscribes 200 times and then never reads its socket.
        using var slow = new System.Net.WebSockets.ClientWebSocket();
        await slow.ConnectAsync(node.Endpoint, CancellationToken.None);
        var subscribe = System.Text.Encoding.UTF8.GetBytes("""{"jsonrpc":"2.0","id":1,"method":"chain_subscribeNewHeads","params":[]}""");
        try
        {
            for (var i = 0; i < 200; i++) await slow.SendAsync(subscribe, System.Net.WebSockets.WebSocketMessageType.Text, true, CancellationToken.None);
        }
        catch (System.Net.WebSockets.WebSocketException)
        {
            // Dropped already: the answers to its own subscriptions filled its queue.
        }
        var start = _t.Chain.BlockNumber;
        ulong produced = 0;
        while (node.DroppedConnections == 0)
        {
            Assert.True(produced < 100_000, "the slow subscriber was never dropped");
            await _t.Chain.ProduceBlockAsync();
            produced++;
            Assert.Equal(start + produced, Number(await good.Next(heads)));
        }
        Assert.Equal(1, node.DroppedConnections);
        await _t.Chain.ProduceBlockAsync();
        Assert.Equal(start + produced + 1, Number(await good.Next(heads)));
    }

    [Fact]
    public async Task An_oversized_websocket_message_closes_with_an_error_and_other_clients_are_unaffected()
    {
        await using var other = await RpcClient.ConnectAsync(_node.Endpoint);
        using var ws = new System.Net.WebSockets.ClientWebSocket();
        await ws.ConnectAsync(_node.Endpoint, CancellationToken.None);
        var big = System.Text.Encoding.UTF8.GetBytes($$"""{"jsonrpc":"2.0","id":1,"method":"system_name","params":["{{new string('a', 70_000)}}"]}""");
        await ws.SendAsync(big, System.Net.WebSockets.WebSocketMessageType.Text, true, CancellationToken.None);
        var buffer = new byte[4096];
        var r = await ws.ReceiveAsync(buffer, CancellationToken.None).WaitAsync(TimeSpan.FromMinutes(2));
        var error = JsonDocument.Parse(buffer.AsMemory(0, r.Count)).RootElement;
        Assert.Equal(RpcErrors.InvalidRequest, error.GetProperty("error").GetProperty("code").GetInt32());
        r = await ws.ReceiveAsync(buffer, CancellationToken.None).WaitAsync(TimeSpan.FromMinutes(2));
        Assert.Equal(System.Net.WebSockets.WebSocketMessageType.Close, r.MessageType);
        Assert.Equal(System.Net.WebSockets.WebSocketCloseStatus.MessageTooBig, ws.CloseStatus);
        Assert.Equal("bittensor-actors-localnet", (await other.Call("system_name")).GetString());
        var garbage = await other.CallRaw("no_such_method");
        Assert.Equal(RpcErrors.MethodNotFound, garbage.GetProperty("error").GetProperty("code").GetInt32());
    }
}

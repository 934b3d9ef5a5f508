using System.Text;
using Bittensor.Chain.Local;
using Bittensor.Core.Scale;
using Bittensor.Protocol;
using Bittensor.Protocol.Wire;
using Google.Protobuf;

namespace Bittensor.Fuzz.Tests;

/// <summary>
/// Writes the seed corpus (<c>dotnet Bittensor.Fuzz.Tests.dll seeds Corpus</c>): valid inputs made by our own encoders,
/// so that mutations start from the shapes each decoder accepts. The keyfile seeds are copies of the wallet test
/// fixtures (tests/Bittensor.Wallet.Tests/Fixtures/keyfiles), added by hand.
/// </summary>
internal static class SeedCorpus
{
    public static void Write(string root)
    {
        void Put(string target, string name, byte[] data)
        {
            var dir = Path.Combine(root, target);
            Directory.CreateDirectory(dir);
            File.WriteAllBytes(Path.Combine(dir, name), data);
        }
        void PutText(string target, string name, string text) => Put(target, name, Encoding.UTF8.GetBytes(text));

        var f32 = TensorCodec.EncodeToArray(new float[] { 1.5f, -2, 0, float.NaN, 3, 4 }, [1, 2, 3]);
        var f64 = TensorCodec.EncodeToArray(new double[] { 1, 2 }, [2]);
        var i32 = TensorCodec.EncodeToArray(new int[] { 7, 8, 9, 10 }, [2, 2]);
        var i64 = TensorCodec.EncodeToArray(new long[] { 104, 105 }, [1, 2]);
        Put("tensor", "f32", f32);
        Put("tensor", "f64", f64);
        Put("tensor", "i32", i32);
        Put("tensor", "i64", i64);
        Put("tensor", "proto-i64", TensorCodec.ToTensor(new long[] { 104, 105 }, [1, 2], Modality.Text).ToByteArray());
        Put("tensor", "proto-f32", TensorCodec.ToTensor(new float[] { 1, 2, 3, 4 }, [1, 2, 2], Modality.Tensor, requiresGrad: true).ToByteArray());

        Put("msgpack", "f32", [32, .. f32]);
        Put("msgpack", "i64", [32, .. i64]);

        var forward = new TensorMessage { Version = ProtocolVersion.Current, Hotkey = "5GrwvaEF5zXb26Fz9rcQpDWS57CtERHpNehXCPcNoHGKutQY" };
        forward.Tensors.Add(TensorCodec.ToTensor(new long[] { 104, 105 }, [1, 2], Modality.Text));
        Put("axon", "forward", [0, .. forward.ToByteArray()]);
        var backward = forward.Clone();
        backward.Tensors.Add(TensorCodec.ToTensor(new float[2 * 1024], [1, 2, 1024], Modality.Tensor));
        Put("axon", "backward", [1, .. backward.ToByteArray()]);
        var image = forward.Clone();
        image.Tensors[0] = TensorCodec.ToTensor(new float[] { 1, 2, 3, 4 }, [1, 2, 2], Modality.Image);
        Put("axon", "image", [0, .. image.ToByteArray()]);

        // h2: frames after the handshake (FuzzTargets.H2Handshake). Header blocks: literals, Huffman strings, indexing.
        static byte[] Frame(byte type, byte flags, int stream, byte[] payload) =>
            [(byte)(payload.Length >> 16), (byte)(payload.Length >> 8), (byte)payload.Length, type, flags, 0, 0, (byte)(stream >> 8), (byte)stream, .. payload];
        static byte[] Lit(string name, string value, byte kind = 0x00) =>
            [kind, (byte)name.Length, .. Encoding.ASCII.GetBytes(name), (byte)value.Length, .. Encoding.ASCII.GetBytes(value)];
        static byte[] Huff(string name, string value)
        {
            var n = Protocol.Lean.Huffman.Encode(Encoding.ASCII.GetBytes(name));
            var v = Protocol.Lean.Huffman.Encode(Encoding.ASCII.GetBytes(value));
            return [0x40, (byte)(0x80 | n.Length), .. n, (byte)(0x80 | v.Length), .. v];
        }
        byte[] request = [0x83, 0x86, .. Lit(":path", "/Bittensor/Forward"), .. Lit("content-type", "application/grpc"), .. Lit("te", "trailers")];
        var body = forward.ToByteArray();
        byte[] message = [0, (byte)(body.Length >> 24), (byte)(body.Length >> 16), (byte)(body.Length >> 8), (byte)body.Length, .. body];
        Put("h2", "forward", [.. Frame(1, 4, 1, request), .. Frame(0, 1, 1, message)]);
        Put("h2", "huffman-continuation", [.. Frame(1, 0, 1, [0x83, 0x86, .. Huff(":path", "/Bittensor/Backward")]),
            .. Frame(9, 4, 1, [.. Huff("content-type", "application/grpc"), .. Huff("grpc-timeout", "100m"), 0xbe]), .. Frame(0, 1, 1, message)]);
        Put("h2", "control", [.. Frame(4, 0, 0, [0, 4, 0, 0, 0x10, 0, 0, 5, 0, 0, 0x40, 0]), .. Frame(8, 0, 0, [0, 1, 0, 0]), .. Frame(6, 0, 0, new byte[8]),
            .. Frame(1, 4, 3, request), .. Frame(3, 0, 3, [0, 0, 0, 8]), .. Frame(7, 0, 0, new byte[8])]);
        Put("h2", "refused", [.. Frame(1, 4, 1, [.. request, .. Lit("x-refuse", "no")]), .. Frame(1, 5, 3, [.. request, .. Lit("x-refuse", "answer")]),
            .. Frame(1, 0x2c, 5, [2, 0, 0, 0, 0, 16, .. request, 0, 0])]);

        // h2client: [config, read seed, the server's bytes]; config bits 0-1: calls (1 + n % 3, streams 1, 3, 5), bits 2-4:
        // which calls read on the read loop, bits 5-7: read sizes (H2ClientTarget.ReadSizes). Headers by the lean
        // server's own encoder (H2Blocks), answers by protobuf and TensorCodec.
        var answer = new TensorMessage { Version = ProtocolVersion.Current, Hotkey = forward.Hotkey, ReturnCode = ReturnCode.Success, Message = "ok" };
        answer.Tensors.Add(TensorCodec.ToTensor(new float[2 * 16], [1, 2, 16], Modality.Tensor));
        var answerBody = answer.ToByteArray();
        byte[] answerMessage = [0, (byte)(answerBody.Length >> 24), (byte)(answerBody.Length >> 16), (byte)(answerBody.Length >> 8), (byte)answerBody.Length, .. answerBody];
        byte[] serverSettings = [.. Frame(4, 0, 0, [0, 3, 0, 0, 0, 100, 0, 4, 0, 0x10, 0, 0, 0, 5, 0, 0x10, 0, 0]), .. Frame(4, 1, 0, [])];
        byte[] Ok(int stream) => [.. Frame(1, 4, stream, Protocol.Lean.H2Blocks.ResponseHeaders), .. Frame(0, 0, stream, answerMessage),
            .. Frame(1, 5, stream, Protocol.Lean.H2Blocks.OkTrailers)];
        Put("h2client", "answer-read-in-place", [0b000_001_00, 0, .. serverSettings, .. Ok(1)]);
        Put("h2client", "answer-returned", [0, 0, .. serverSettings, .. Ok(1)]);
        // Three calls answered interleaved, the message split over DATA frames of 1, 4, rest bytes; cut into 9-byte reads.
        byte[] Split(int stream) => [.. Frame(0, 0, stream, answerMessage[..1]), .. Frame(0, 0, stream, answerMessage[1..5]), .. Frame(0, 0, stream, answerMessage[5..])];
        byte[] threeSplit = [.. serverSettings, .. Frame(1, 4, 1, Protocol.Lean.H2Blocks.ResponseHeaders),
            .. Frame(1, 4, 3, Protocol.Lean.H2Blocks.ResponseHeaders), .. Split(3), .. Split(1), .. Frame(1, 5, 3, Protocol.Lean.H2Blocks.OkTrailers),
            .. Frame(1, 5, 1, Protocol.Lean.H2Blocks.OkTrailers), .. Frame(1, 4, 5, Protocol.Lean.H2Blocks.ResponseHeaders), .. Split(5),
            .. Frame(1, 5, 5, Protocol.Lean.H2Blocks.OkTrailers)];
        Put("h2client", "three-split", [0b011_101_10, 0, .. threeSplit]);
        // Huffman literals with indexing across HEADERS + CONTINUATION, padded DATA, trailers from the dynamic table; random reads.
        Put("h2client", "huffman-continuation-padded", [0b111_001_00, 42, .. serverSettings,
            .. Frame(1, 0, 1, [0x88, .. Huff("content-type", "application/grpc")]), .. Frame(9, 4, 1, Huff("x-axon", "lean")),
            .. Frame(0, 8, 1, [3, .. answerMessage, 0, 0, 0]), .. Frame(1, 0x2d, 1, [2, 0, 0, 0, 0, 16, .. Huff("grpc-status", "0"), 0, 0])]);
        // The caller of stream 3 gives up at the 4th read (byte 1: 0x80 | call 1 << 5 | read 3), 9-byte reads: its answer
        // comes for a stream already reset, the others are answered.
        Put("h2client", "cancel-mid-answer", [0b011_000_10, 0b1_01_00011, .. serverSettings, .. Ok(1), .. Ok(3), .. Ok(5)]);
        // Failures: a status with a percent-encoded message, RST_STREAM, a trailers-only 503, then GOAWAY.
        Put("h2client", "failures", [0b010_110_10, 0, .. serverSettings,
            .. Frame(1, 5, 1, Protocol.Lean.H2Blocks.Build(200, Grpc.Core.StatusCode.Unavailable, "axon busy: 100 % full")),
            .. Frame(3, 0, 3, [0, 0, 0, 7]), .. Frame(1, 5, 5, Protocol.Lean.H2Blocks.Build(503, null, null)), .. Frame(7, 0, 0, [0, 0, 0, 5, 0, 0, 0, 0])]);
        // Control frames around an answer: PING, WINDOW_UPDATE, PRIORITY, an unknown type, GOAWAY too_many_pings after it.
        Put("h2client", "control", [0b000_001_00, 0, .. serverSettings, .. Frame(6, 0, 0, "12345678"u8.ToArray()), .. Frame(8, 0, 0, [0, 1, 0, 0]),
            .. Frame(2, 0, 1, [0, 0, 0, 0, 16]), .. Frame(0xbb, 0, 0, [1, 2, 3]), .. Ok(1), .. Frame(6, 1, 0, new byte[8]),
            .. Frame(7, 0, 0, [0, 0, 0, 1, 0, 0, 0, 0x0b, .. "too_many_pings"u8.ToArray()])]);
        // Hostile answers: a tensor whose proto shape disagrees with its buffer, a length prefix of 60 MB, a compressed flag.
        var hostile = answer.Clone();
        hostile.Tensors[0].Shape[2] = 1_000_000;
        var hostileBody = hostile.ToByteArray();
        byte[] hostileAnswers = [.. serverSettings, .. Frame(1, 4, 1, Protocol.Lean.H2Blocks.ResponseHeaders),
            .. Frame(0, 0, 1, [0, (byte)(hostileBody.Length >> 24), (byte)(hostileBody.Length >> 16), (byte)(hostileBody.Length >> 8), (byte)hostileBody.Length, .. hostileBody]),
            .. Frame(1, 5, 1, Protocol.Lean.H2Blocks.OkTrailers), .. Frame(1, 4, 3, Protocol.Lean.H2Blocks.ResponseHeaders), .. Frame(0, 0, 3, [0, 3, 0x93, 0x87, 0, 1, 2, 3]),
            .. Frame(1, 4, 5, Protocol.Lean.H2Blocks.ResponseHeaders), .. Frame(0, 1, 5, [1, 0, 0, 0, 1, 0])];
        Put("h2client", "hostile", [0b101_101_10, 0, .. hostileAnswers]);
        // Landings (byte 1: bit 6 set, bit 7 clear): the calls that read on the read loop also land their answer's floats
        // in their own arrays, as the dendrite's fan-out does ([1, 2, 16] expected, the answer above); the target runs
        // the input again without landings and wants the same ends. Whole in one read (straight from the socket), split
        // and interleaved in 9-byte reads, and hostile (a shape that is not the expected one: the buffer stays whole).
        Put("h2client", "answer-landed", [0b000_001_00, 0x40, .. serverSettings, .. Ok(1)]);
        Put("h2client", "three-split-landed", [0b011_111_10, 0x40, .. threeSplit]);
        Put("h2client", "hostile-landed", [0b101_111_10, 0x40, .. hostileAnswers]);

        var w = new ScaleWriter();
        w.Compact((ulong)0);
        w.Compact((ulong)63);
        w.Compact((ulong)16_383);
        w.Compact((ulong)1_073_741_823);
        w.Compact((ulong)ulong.MaxValue);
        w.Bytes("hello"u8);
        w.String("bittensor");
        w.U8(1);
        w.U32(0xdeadbeef);
        Put("scale", "primitives", [9, 3, .. w.ToArray()]);
        Put("scale", "strings", [8, 7, .. w.ToArray()]);
        Put("scale", "compacts", [16, 3, .. w.ToArray()]);

        var metadata = LocalnetMetadata.For(new LocalnetOptions());
        Put("metadata", "node-v14", metadata.V14);
        Put("metadata", "node-v15", metadata.V15);

        PutText("jsonrpc", "blockhash", """{"jsonrpc":"2.0","id":1,"method":"chain_getBlockHash","params":[0]}""");
        PutText("jsonrpc", "header", """{"jsonrpc":"2.0","id":"a","method":"chain_getHeader","params":[]}""");
        PutText("jsonrpc", "storage", """{"jsonrpc":"2.0","id":2,"method":"state_getStorage","params":["0x26aa394eea5630e07c48ae0c9558cef7b99d880ec681799c0cf30e8886371da9de1e86a9a8c739864cf3cc5ec2bea59fd43593c715fdd31c61141abd04a99fd6822c8558854ccde39a5684e7a56da27d"]}""");
        PutText("jsonrpc", "keys", """{"jsonrpc":"2.0","id":3,"method":"state_getKeysPaged","params":["0x658faa385070e074c85bf6b568cf0555",10,null]}""");
        PutText("jsonrpc", "call", """{"jsonrpc":"2.0","id":4,"method":"state_call","params":["NeuronInfoRuntimeApi_get_neurons_lite","0x0100"]}""");
        PutText("jsonrpc", "nonce", """{"jsonrpc":"2.0","id":5,"method":"system_accountNextIndex","params":["5GrwvaEF5zXb26Fz9rcQpDWS57CtERHpNehXCPcNoHGKutQY"]}""");
        PutText("jsonrpc", "submit", """{"jsonrpc":"2.0","id":6,"method":"author_submitExtrinsic","params":["0x280403000b00a0724e1801"]}""");
        PutText("jsonrpc", "batch", """[{"jsonrpc":"2.0","id":7,"method":"system_chain","params":[]},{"jsonrpc":"2.0","method":"rpc_methods"},{"jsonrpc":"2.0","id":8,"method":"state_getRuntimeVersion"}]""");
        PutText("jsonrpc", "subscribe", """{"jsonrpc":"2.0","id":9,"method":"chain_subscribeNewHeads","params":[]}""");
        PutText("jsonrpc", "block", """{"jsonrpc":"2.0","id":10,"method":"chain_getBlock","params":[null]}""");

        PutText("hocon", "axon", "bittensor.axon { port = 0\n ip = \"127.0.0.1\"\n max_message_size = 1048576\n call_timeout = 5s }\n");
        PutText("hocon", "model", "bittensor.model { max_queue = 16, max_batch = 4, max_delay = 2ms, start_attempts = 2 }\nbittensor.metrics.port = 0\n");
        PutText("hocon", "wallet", "bittensor { wallet { name = w, hotkey = h, path = \"/tmp/x\" }, subtensor.network = local, metagraph.sync_every_blocks = 3 }\n");
        PutText("hocon", "demo", "bittensor.demo { servers = 2, bad_kinds = \"nan,inf\", epochs = 2, block_time = 0s, tempo = 5 }\n");
        PutText("hocon", "substitution", "x = 5\nbittensor.dendrite.timeout = ${x}s\nbittensor.validator.pipeline.batch_size = ${x}\n");

        PutText("cli", "axon-serve", "axon\nserve\n--uri\n//Bob\n--axon.port\n0\n--metrics.port\n0");
        PutText("cli", "query", "query\n--endpoint\n127.0.0.1:8091\n--text\nhello world\n--json");
        PutText("cli", "run", "run\nvalidator\n--netuid\n1\n--config\n/tmp/x.conf\n--subtensor.chain_endpoint\nws://127.0.0.1:9944");
        PutText("cli", "wallet", "new_coldkey\n--wallet.name\nw\n--n_words\n12\n--no_password");
        PutText("cli", "demo", "demo\n--servers\n2\n--bad_kind\nnan,inf\n--epochs\n2\n--block_time\n0.1");
        PutText("cli", "quotes", "metagraph\n--netuid\n1\na \"quoted\" ${value} with \\ backslash");
    }
}

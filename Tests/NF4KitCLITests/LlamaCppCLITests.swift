import Foundation
import NF4KitTestSupport
import Testing

/// `nf4kit convert` and `merge` writing llama.cpp's GGUF layout, checked through the built binary against the golden
/// files llama.cpp's converters wrote (Fixtures/files/llama-g, from shared/golden/gguf-llama/llama-g) with
/// Tests/Interop/gguf_compare.py: gguf-py reads our file, and every tensor (name, type, shape, bytes) and metadata key
/// (type, value) equals llama.cpp's, the cosmetic general.name/basename/size_label aside.
@Suite struct LlamaCppCLITests {
    /// Runs gguf_compare.py on `ours` against `reference` and expects equality.
    func expectEqual(_ ours: String, _ reference: String, sourceLocation: SourceLocation = #_sourceLocation) throws {
        let result = try PythonInterop.run(script: "Tests/Interop/gguf_compare.py", arguments: [ours, reference])
        #expect(result.status == 0, "\(result.stdout)\(result.stderr)", sourceLocation: sourceLocation)
        #expect(result.stdout.hasPrefix("OK:"), "\(result.stdout)", sourceLocation: sourceLocation)
    }

    @Test(arguments: [("f16", "F16"), ("BF16", "BF16"), ("q8_0", "Q8_0")])
    func `convert hf -o x.gguf --to T equals convert_hf_to_gguf.py`(to: String, golden: String) throws {
        let dir = TemporaryDirectory("cli-llama")
        defer { dir.cleanup() }
        let out = dir.file("\(golden).gguf")
        let result = try NF4KitCLI.run(["convert", Fixture.path("llama-g/hf"), "-o", out, "--to", to])
        #expect(result.status == 0, "\(result.stderr)")
        #expect(result.stdout.isEmpty)
        #expect(result.stderr.contains("21 tensors written in llama.cpp's layout"), "\(result.stderr)")
        try expectEqual(out, Fixture.path("llama-g/gguf/\(golden).gguf"))
    }

    @Test func `a GGUF with Hugging Face names converts back to a folder equal to the original`() throws {
        let dir = TemporaryDirectory("cli-llama")
        defer { dir.cleanup() }
        let gguf = dir.file("nf4.gguf")
        let folder = dir.file("nf4")
        #expect(
            try NF4KitCLI.run(["convert", Fixture.path("llama-g/hf"), "-o", gguf, "--to", "nf4", "-q"]).status == 0)
        #expect(
            try NF4KitCLI.run(["convert", Fixture.path("llama-g/hf"), "-o", folder, "--to", "nf4", "-q"]).status == 0)
        let back = dir.file("back")
        let result = try NF4KitCLI.run(["convert", gguf, "-o", back, "--to", "f16"])
        #expect(result.status == 0, "\(result.stderr)")
        let expected = dir.file("expected")
        #expect(try NF4KitCLI.run(["convert", folder, "-o", expected, "--to", "f16", "-q"]).status == 0)
        let ours = try [UInt8](contentsOf: back + "/model.safetensors")
        #expect(ours == (try [UInt8](contentsOf: expected + "/model.safetensors")))
    }

    @Test func `merge -o x.gguf refuses a base without tokenizer.model before merging, naming the base`() throws {
        let dir = TemporaryDirectory("cli-llama")
        defer { dir.cleanup() }
        let out = dir.file("merged.gguf")
        let base = Fixture.path("llama-tiny/fp16")
        let result = try NF4KitCLI.run(["merge", base, Fixture.path("llama-tiny/lora"), "-o", out])
        #expect(result.status == 65, "\(result.stderr)")
        #expect(result.stderr.contains("llama-tiny/fp16: the folder has no tokenizer.model"), "\(result.stderr)")
        #expect(try FileManager.default.contentsOfDirectory(atPath: dir.path).isEmpty)
    }

    @Test func `merge names the problem when the base or the adapter is a llama.cpp GGUF`() throws {
        let dir = TemporaryDirectory("cli-llama")
        defer { dir.cleanup() }
        let ggufBase = try NF4KitCLI.run([
            "merge", Fixture.path("llama-g/gguf/F16.gguf"), Fixture.path("llama-g/lora"), "-o", dir.file("m"),
        ])
        #expect(ggufBase.status == 65, "\(ggufBase.stderr)")
        #expect(ggufBase.stderr.contains("F16.gguf: the base is a GGUF in llama.cpp's layout"), "\(ggufBase.stderr)")
        #expect(ggufBase.stderr.contains("nf4kit convert"), "\(ggufBase.stderr)")
        let ggufAdapter = try NF4KitCLI.run([
            "merge", Fixture.path("llama-g/hf"), Fixture.path("llama-g/gguf/lora-F16.gguf"), "-o", dir.file("m"),
        ])
        #expect(ggufAdapter.status == 65, "\(ggufAdapter.stderr)")
        #expect(ggufAdapter.stderr.contains("lora-F16.gguf: this is a llama.cpp LoRA GGUF"), "\(ggufAdapter.stderr)")
        #expect(try FileManager.default.contentsOfDirectory(atPath: dir.path).isEmpty)
    }

    @Test func `default --to of an f16 folder is f16, as the converter's auto`() throws {
        let dir = TemporaryDirectory("cli-llama")
        defer { dir.cleanup() }
        let out = dir.file("model.gguf")
        let result = try NF4KitCLI.run(["convert", Fixture.path("llama-g/hf"), "-o", out, "--quiet"])
        #expect(result.status == 0, "\(result.stderr)")
        #expect(result.stderr.isEmpty)
        try expectEqual(out, Fixture.path("llama-g/gguf/F16.gguf"))
    }

    @Test func `--format gguf writes the llama layout under a name that says no format`() throws {
        let dir = TemporaryDirectory("cli-llama")
        defer { dir.cleanup() }
        let out = dir.file("model")
        let result = try NF4KitCLI.run(["convert", Fixture.path("llama-g/hf"), "-o", out, "--format", "gguf", "-q"])
        #expect(result.status == 0, "\(result.stderr)")
        try expectEqual(out, Fixture.path("llama-g/gguf/F16.gguf"))
    }

    @Test func `adapter folder -o lora.gguf equals convert_lora_to_gguf.py`() throws {
        let dir = TemporaryDirectory("cli-llama")
        defer { dir.cleanup() }
        let out = dir.file("lora.gguf")
        let result = try NF4KitCLI.run([
            "convert", Fixture.path("llama-g/lora"), "-o", out, "--to", "f16", "--base", Fixture.path("llama-g/hf"),
        ])
        #expect(result.status == 0, "\(result.stderr)")
        try expectEqual(out, Fixture.path("llama-g/gguf/lora-F16.gguf"))
    }

    @Test func `merge -o merged.gguf equals converting PEFT's merge`() throws {
        // Golden merged/ is PEFT's merge_and_unload saved (its tokenizer files copied beside it, as save_pretrained
        // does); converting it with the CLI gives what convert_hf_to_gguf.py gives (the tests above).
        let dir = TemporaryDirectory("cli-llama")
        defer { dir.cleanup() }
        let reference = dir.file("peft-merged.gguf")
        let converted = try NF4KitCLI.run(["convert", Fixture.path("llama-g/merged"), "-o", reference, "-q"])
        #expect(converted.status == 0, "\(converted.stderr)")
        let out = dir.file("merged.gguf")
        // --fused-arithmetic: PEFT's bit-exact CPU rounding (the default once the merge pipeline makes it so).
        let result = try NF4KitCLI.run([
            "merge", Fixture.path("llama-g/hf"), Fixture.path("llama-g/lora"), "-o", out, "--fused-arithmetic",
        ])
        #expect(result.status == 0, "\(result.stderr)")
        #expect(result.stderr.contains("llama.cpp's layout (f16)"), "\(result.stderr)")
        try expectEqual(out, reference)
        let leftovers = try FileManager.default.contentsOfDirectory(atPath: dir.path).sorted()
        #expect(leftovers == ["merged.gguf", "peft-merged.gguf"])
    }

    @Test func `merge from a 4-bit base: dequantize, merge, export in one command`() throws {
        let dir = TemporaryDirectory("cli-llama")
        defer { dir.cleanup() }
        let nf4 = dir.file("nf4")
        var run = try NF4KitCLI.run(["convert", Fixture.path("llama-g/hf"), "-o", nf4, "--to", "nf4", "-q"])
        #expect(run.status == 0, "\(run.stderr)")
        // The same steps one by one: dequantize to f32, merge, convert to GGUF (f16).
        run = try NF4KitCLI.run(["convert", nf4, "-o", dir.file("f32"), "--to", "f32", "-q"])
        #expect(run.status == 0, "\(run.stderr)")
        run = try NF4KitCLI.run(["merge", dir.file("f32"), Fixture.path("llama-g/lora"), "-o", dir.file("m"), "-q"])
        #expect(run.status == 0, "\(run.stderr)")
        run = try NF4KitCLI.run(["convert", dir.file("m"), "-o", dir.file("steps.gguf"), "--to", "f16", "-q"])
        #expect(run.status == 0, "\(run.stderr)")
        run = try NF4KitCLI.run([
            "merge", nf4, Fixture.path("llama-g/lora"), "-o", dir.file("one.gguf"), "--to", "f16", "-q",
        ])
        #expect(run.status == 0, "\(run.stderr)")
        try expectEqual(dir.file("one.gguf"), dir.file("steps.gguf"))
    }

    @Test func `4-bit folder -o x.gguf --to q8_0 dequantizes first`() throws {
        let dir = TemporaryDirectory("cli-llama")
        defer { dir.cleanup() }
        let nf4 = dir.file("nf4")
        var run = try NF4KitCLI.run(["convert", Fixture.path("llama-g/hf"), "-o", nf4, "--to", "nf4", "-q"])
        #expect(run.status == 0, "\(run.stderr)")
        run = try NF4KitCLI.run(["convert", nf4, "-o", dir.file("f16"), "--to", "f16", "-q"])
        #expect(run.status == 0, "\(run.stderr)")
        run = try NF4KitCLI.run(["convert", dir.file("f16"), "-o", dir.file("steps.gguf"), "--to", "q8_0", "-q"])
        #expect(run.status == 0, "\(run.stderr)")
        run = try NF4KitCLI.run(["convert", nf4, "-o", dir.file("one.gguf"), "--to", "q8_0"])
        #expect(run.status == 0, "\(run.stderr)")
        #expect(run.stderr.contains("4-bit weights dequantized"), "\(run.stderr)")
        try expectEqual(dir.file("one.gguf"), dir.file("steps.gguf"))
    }

    @Test func `inspect a Q8_0 GGUF: architecture, hyperparameters, stored bytes and comparisons`() throws {
        // Golden Q8_0.gguf: 16 Q8_0 matrices (2,084,864 weights, 34 bytes per 32) + 5 F32 norms (1,280 weights);
        // 2,086,144 parameters (convert_hf_to_gguf.py's size_label says 2.1M); as F16 the same tensors take 4,172,288
        // bytes, so the file's 2,220,288 tensor bytes are 46.8% smaller (not larger, as reported before).
        let result = try NF4KitCLI.run(["inspect", Fixture.path("llama-g/gguf/Q8_0.gguf")])
        #expect(result.status == 0, "\(result.stderr)")
        let out = result.stdout
        #expect(out.contains("kind          model (llama)"), "\(out)")
        #expect(
            out.contains(
                "architecture llama: block_count 2, embedding_length 256, feed_forward_length 768, "
                    + "attention.head_count 8, attention.head_count_kv 4, context_length 512, vocab_size 1,000"),
            "\(out)")
        #expect(out.contains("parameters from the llama.* keys: 2,086,144"), "\(out)")
        #expect(out.contains("parameters    2,086,144"), "\(out)")
        #expect(out.contains("tensor bytes  2,220,288"), "\(out)")
        #expect(out.contains("ggml Q8_0 (16 tensors)       2,215,168"), "\(out)")
        #expect(out.contains("46.8% smaller than FP16"), "\(out)")
        #expect(!out.contains("larger than FP16\n") || out.contains("FP32"), "\(out)")
        #expect(out.contains("FP16/BF16           ████████████████                   3.98 MiB"), "\(out)")
    }

    @Test func `convert a llama.cpp GGUF --to nf4 keeps token_embd and output unquantized`() throws {
        let dir = TemporaryDirectory("cli-llama")
        defer { dir.cleanup() }
        let out = dir.file("nf4")
        let run = try NF4KitCLI.run(["convert", Fixture.path("llama-g/gguf/F16.gguf"), "-o", out, "--to", "nf4"])
        #expect(run.status == 0, "\(run.stderr)")
        // 14 Linear weights (2 layers x 7); the embedding, the head and the 5 norms kept. The GGUF is read back as
        // its Hugging Face model (names back, rows un-permuted) before quantizing.
        #expect(run.stderr.contains("14 tensors quantized, 7 kept"), "\(run.stderr)")
        let inspect = try NF4KitCLI.run(["inspect", out, "--tensors"])
        let rows = inspect.stdout.split(separator: "\n").filter {
            $0.hasPrefix("  model.embed_tokens.weight ") || $0.hasPrefix("  lm_head.weight ")
        }
        #expect(rows.count == 2)
        #expect(rows.allSatisfy { !$0.contains("nf4") }, "\(rows)")
    }

    @Test func `--to nf4 -o model.gguf writes the NF4 companion convention, and back`() throws {
        let dir = TemporaryDirectory("cli-llama")
        defer { dir.cleanup() }
        let gguf = dir.file("nf4.gguf")
        var run = try NF4KitCLI.run(["convert", Fixture.path("llama-g/hf"), "-o", gguf, "--to", "nf4", "-q"])
        #expect(run.status == 0, "\(run.stderr)")
        run = try NF4KitCLI.run(["convert", Fixture.path("llama-g/hf"), "-o", dir.file("nf4"), "--to", "nf4", "-q"])
        #expect(run.status == 0, "\(run.stderr)")
        // The GGUF holds the same bitsandbytes tensors as the folder: every tensor identical.
        run = try NF4KitCLI.run(["diff", dir.file("nf4"), gguf])
        #expect(run.status == 0, "\(run.stderr)")
        #expect(run.stdout.contains("21 tensors in both, 21 identical"), "\(run.stdout)")
        // (gguf-py reading the companion layout: GGUFInteropTests.)
        // Back to floats: the same bytes as from the folder.
        run = try NF4KitCLI.run(["convert", gguf, "-o", dir.file("a.safetensors"), "--to", "f16", "-q"])
        #expect(run.status == 0, "\(run.stderr)")
        run = try NF4KitCLI.run(["convert", dir.file("nf4"), "-o", dir.file("b.safetensors"), "--to", "f16", "-q"])
        #expect(run.status == 0, "\(run.stderr)")
        #expect(
            try Data(contentsOf: URL(fileURLWithPath: dir.file("a.safetensors")))
                == Data(contentsOf: URL(fileURLWithPath: dir.file("b.safetensors"))))
        let names = try FileManager.default.contentsOfDirectory(atPath: dir.path).sorted()
        #expect(names == ["a.safetensors", "b.safetensors", "nf4", "nf4.gguf"])
    }

    @Test func `--layout hf --to q8_0 keeps Hugging Face names with llama.cpp's Q8_0 bytes`() throws {
        // The golden Q8_0.gguf (convert_hf_to_gguf.py) holds the same Q8_0 rows under llama.cpp's names; attn_q/attn_k
        // are compared after undoing llama.cpp's row order, as whole 34-byte blocks (a row is 8 blocks).
        let dir = TemporaryDirectory("cli-llama")
        defer { dir.cleanup() }
        let out = dir.file("hf-q8.gguf")
        let run = try NF4KitCLI.run([
            "convert", Fixture.path("llama-g/hf"), "-o", out, "--layout", "hf", "--to", "Q8_0", "-q",
        ])
        #expect(run.status == 0, "\(run.stderr)")
        let script = dir.file("compare.py")
        try """
        import sys
        import numpy as np
        from gguf import GGUFReader
        ours = {t.name: t for t in GGUFReader(sys.argv[1]).tensors}
        ref = {t.name: t for t in GGUFReader(sys.argv[2]).tensors}
        names = {"token_embd": "model.embed_tokens", "output_norm": "model.norm", "output": "lm_head",
                 "attn_norm": "input_layernorm", "ffn_norm": "post_attention_layernorm",
                 "attn_q": "self_attn.q_proj", "attn_k": "self_attn.k_proj", "attn_v": "self_attn.v_proj",
                 "attn_output": "self_attn.o_proj", "ffn_gate": "mlp.gate_proj", "ffn_up": "mlp.up_proj",
                 "ffn_down": "mlp.down_proj"}
        heads = {"attn_q": 8, "attn_k": 4}
        bad = 0
        for name, r in ref.items():
            parts = name.split(".")
            hf = (names[parts[0]] if len(parts) == 2 else "model.layers.%s.%s" % (parts[1], names[parts[2]])) + ".weight"
            o = ours[hf]
            a, b = np.array(o.data).reshape(-1), np.array(r.data).reshape(-1)
            module = parts[2] if len(parts) == 4 else ""
            if module in heads:
                rows = int(r.shape[1]); n = heads[module]; per = rows // n; half = per // 2
                a = a.reshape(rows, -1)
                order = [h * per + p * half + i for h in range(n) for i in range(half) for p in range(2)]
                a = a[order].reshape(-1)
            if o.tensor_type != r.tensor_type or a.tobytes() != b.tobytes():
                bad += 1; print("differs", name, hf, o.tensor_type, r.tensor_type)
        print("ok" if bad == 0 and len(ours) == len(ref) else "FAIL", len(ref))
        sys.exit(1 if bad else 0)
        """.write(toFile: script, atomically: true, encoding: .utf8)
        let python = try PythonInterop.run(script: script, arguments: [out, Fixture.path("llama-g/gguf/Q8_0.gguf")])
        #expect(python.status == 0, "\(python.stdout)\(python.stderr)")
        #expect(python.stdout.contains("ok 21"), "\(python.stdout)")
    }

    // MARK: - Refusals

    /// A copy of the golden hf/ folder with `config.json` edited by `edit`.
    func folder(_ dir: TemporaryDirectory, editConfig edit: (inout [String: Any]) -> Void = { _ in }) throws -> String {
        let folder = dir.file("model")
        try FileManager.default.copyItem(atPath: Fixture.path("llama-g/hf"), toPath: folder)
        let path = folder + "/config.json"
        var json =
            try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: path))) as! [String: Any]
        edit(&json)
        try FileManager.default.removeItem(atPath: path)
        try JSONSerialization.data(withJSONObject: json).write(to: URL(fileURLWithPath: path))
        return folder
    }

    /// Runs `arguments`, expects exit 65 with `reasons` in the message, and nothing but `keep` left in `dir`.
    func expectRefused(
        _ arguments: [String], _ dir: TemporaryDirectory, mentioning reasons: [String], keep: Set<String>,
        sourceLocation: SourceLocation = #_sourceLocation
    ) throws {
        let result = try NF4KitCLI.run(arguments)
        #expect(result.status == 65, "\(result.stderr)", sourceLocation: sourceLocation)
        #expect(result.stdout.isEmpty, sourceLocation: sourceLocation)
        for reason in reasons {
            #expect(result.stderr.contains(reason), "\(result.stderr)", sourceLocation: sourceLocation)
        }
        let left = Set(try FileManager.default.contentsOfDirectory(atPath: dir.path))
        #expect(left == keep, "left behind: \(left.subtracting(keep))", sourceLocation: sourceLocation)
    }

    @Test func `config.json contradicting the tensors exits 65 naming the file`() throws {
        let dir = TemporaryDirectory("cli-llama-bad")
        defer { dir.cleanup() }
        let input = try folder(dir) { $0["hidden_size"] = 512 }
        try expectRefused(
            ["convert", input, "-o", dir.file("out.gguf")], dir, mentioning: ["config.json", "hidden_size 512"],
            keep: ["model"])
    }

    @Test func `config.json without hidden_size exits 65`() throws {
        let dir = TemporaryDirectory("cli-llama-bad")
        defer { dir.cleanup() }
        let input = try folder(dir) { $0["hidden_size"] = nil }
        try expectRefused(
            ["convert", input, "-o", dir.file("out.gguf")], dir, mentioning: ["config.json", "hidden_size"],
            keep: ["model"])
    }

    @Test func `head counts that do not divide the rows exit 65`() throws {
        let dir = TemporaryDirectory("cli-llama-bad")
        defer { dir.cleanup() }
        let input = try folder(dir) {
            $0["num_attention_heads"] = 3
            $0["num_key_value_heads"] = 3
            $0["head_dim"] = nil
        }
        try expectRefused(
            ["convert", input, "-o", dir.file("out.gguf")], dir, mentioning: ["config.json", "num_attention_heads 3"],
            keep: ["model"])
    }

    @Test func `tokenizer.model that is not a protobuf exits 65 with the byte offset`() throws {
        let dir = TemporaryDirectory("cli-llama-bad")
        defer { dir.cleanup() }
        let input = try folder(dir)
        let path = input + "/tokenizer.model"
        try FileManager.default.removeItem(atPath: path)
        try Data("this is not a SentencePiece model\n".utf8).write(to: URL(fileURLWithPath: path))
        try expectRefused(
            ["convert", input, "-o", dir.file("out.gguf")], dir,
            mentioning: ["tokenizer.model, byte ", "SentencePiece"],
            keep: ["model"])
    }

    @Test func `adapter targets the base lacks exit 65`() throws {
        let dir = TemporaryDirectory("cli-llama-bad")
        defer { dir.cleanup() }
        let base = try folder(dir) { $0["num_hidden_layers"] = 1 }
        try expectRefused(
            ["convert", Fixture.path("llama-g/lora"), "-o", dir.file("lora.gguf"), "--base", base], dir,
            mentioning: ["llama-g/lora", "model.layers.1."], keep: ["model"])
    }

    @Test func `merge whose adapter targets the base lacks exit 65 and leaves no scratch folder`() throws {
        let dir = TemporaryDirectory("cli-llama-bad")
        defer { dir.cleanup() }
        let base = dir.file("model")
        try FileManager.default.createDirectory(atPath: base, withIntermediateDirectories: true)
        // The base without layer 1's q_proj: the adapter targets it.
        let python = """
            import sys, json, struct
            src, dst = sys.argv[1], sys.argv[2]
            data = open(src, 'rb').read()
            n = struct.unpack('<Q', data[:8])[0]
            header = json.loads(data[8:8+n])
            body = data[8+n:]
            del header['model.layers.1.self_attn.q_proj.weight']
            out, parts, offset = {}, [], 0
            for name, info in sorted(header.items()):
                if name == '__metadata__': out[name] = info; continue
                a, b = info['data_offsets']
                parts.append(body[a:b]); info['data_offsets'] = [offset, offset + b - a]; offset += b - a
                out[name] = info
            h = json.dumps(out).encode(); h += b' ' * (-len(h) % 8)
            open(dst, 'wb').write(struct.pack('<Q', len(h)) + h + b''.join(parts))
            """
        let script = dir.file("drop.py")
        try python.write(toFile: script, atomically: true, encoding: .utf8)
        let made = try PythonInterop.run(
            script: script, arguments: [Fixture.path("llama-g/hf/model.safetensors"), base + "/model.safetensors"])
        #expect(made.status == 0, "\(made.stderr)")
        try FileManager.default.removeItem(atPath: script)
        for file in ["config.json", "tokenizer.model", "tokenizer_config.json", "special_tokens_map.json"] {
            try FileManager.default.copyItem(atPath: Fixture.path("llama-g/hf/\(file)"), toPath: base + "/" + file)
        }
        try expectRefused(
            ["merge", base, Fixture.path("llama-g/lora"), "-o", dir.file("merged.gguf")], dir,
            mentioning: ["model.layers.1.self_attn.q_proj"], keep: ["model"])
    }

    @Test func `unsupported architecture names --layout hf, which writes Hugging Face names`() throws {
        let dir = TemporaryDirectory("cli-llama-bad")
        defer { dir.cleanup() }
        let input = try folder(dir) { $0["architectures"] = ["Qwen2ForCausalLM"] }
        let result = try NF4KitCLI.run(["convert", input, "-o", dir.file("out.gguf")])
        #expect(result.status == 65, "\(result.stderr)")
        #expect(result.stderr.contains("--layout hf"), "\(result.stderr)")
        #expect(!FileManager.default.fileExists(atPath: dir.file("out.gguf")))
        let hf = try NF4KitCLI.run([
            "convert", input, "-o", dir.file("out.gguf"), "--layout", "hf", "--to", "f16", "-q",
        ])
        #expect(hf.status == 0, "\(hf.stderr)")
        #expect(FileManager.default.fileExists(atPath: dir.file("out.gguf")))
    }

    @Test func `--layout and q8_0 need a GGUF output`() throws {
        let dir = TemporaryDirectory("cli-llama-bad")
        defer { dir.cleanup() }
        var result = try NF4KitCLI.run([
            "convert", Fixture.path("llama-g/hf"), "-o", dir.file("x"), "--layout", "llama",
        ])
        #expect(result.status == 64, "\(result.stderr)")
        result = try NF4KitCLI.run(["convert", Fixture.path("llama-g/hf"), "-o", dir.file("x"), "--to", "q8_0"])
        #expect(result.status == 64, "\(result.stderr)")
        result = try NF4KitCLI.run([
            "convert", Fixture.path("llama-g/hf"), "-o", dir.file("x.gguf"), "--to", "nf4", "--layout", "llama",
        ])
        #expect(result.status == 64, "\(result.stderr)")
        #expect(result.stderr.contains("--layout hf"), "\(result.stderr)")
        #expect(try FileManager.default.contentsOfDirectory(atPath: dir.path).isEmpty)
    }
}

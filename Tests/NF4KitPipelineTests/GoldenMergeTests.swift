import Foundation
import NF4Kit
import NF4KitTestSupport
import Testing

/// Merges the golden llama-tiny adapter and compares with what PEFT 0.21.2 wrote (Fixtures/files/llama-tiny).
@Suite struct GoldenMergeTests {
    private func run(
        base: String, to target: MergeOptions.Target = .same
    )
        throws -> (Checkpoint, TemporaryDirectory, MergeSummary)
    {
        let directory = TemporaryDirectory("nf4kit-merge")
        var options = MergeOptions()
        options.target = target
        let output = directory.file("out")
        let summary = try MergePipeline.run(
            base: Fixture.path("llama-tiny/\(base)"), adapters: [Fixture.path("llama-tiny/lora")], output: output,
            options: options)
        return (try SafetensorsReader.read(path: output + "/model.safetensors"), directory, summary)
    }

    private func halfBits(_ tensor: Tensor) -> [UInt16] { tensor.bytes.elements(as: UInt16.self) }

    /// Distance in fp16 units in the last place (ordered bit patterns).
    private func ulps(_ a: UInt16, _ b: UInt16) -> Int {
        func ordered(_ x: UInt16) -> Int { x & 0x8000 != 0 ? -Int(x & 0x7FFF) : Int(x) }
        return abs(ordered(a) - ordered(b))
    }

    @Test func `merging into fp16 matches PEFT within one fp16 ulp, nearly all bit-exact`() throws {
        let (output, directory, summary) = try run(base: "fp16")
        defer { directory.cleanup() }
        let golden = try SafetensorsReader.read(path: Fixture.path("llama-tiny/merged-fp16/model.safetensors"))
            .tensorsByName
        #expect(summary.modulesMerged == 14)
        #expect(summary.tensorsMerged == 14)
        #expect(summary.tensorsCopied == 7)
        #expect(output.tensors.count == golden.count)
        var total = 0
        var exact = 0
        var worst = 0
        for tensor in output.tensors {
            let expected = try #require(golden[tensor.name])
            #expect(tensor.dtype == .f16 && tensor.shape == expected.shape)
            for (a, b) in zip(halfBits(tensor), halfBits(expected)) {
                total += 1
                if a == b { exact += 1 }
                worst = max(worst, ulps(a, b))
            }
        }
        #expect(worst <= 1)
        // With the separate multiply-add of 0.1, 34 of 1,963,264 values differed by one ulp; fused: none.
        #expect(Double(exact) / Double(total) >= 0.9999)
        #expect(
            try [UInt8](contentsOf: directory.file("out/config.json"))
                == [UInt8](contentsOf: Fixture.path("llama-tiny/merged-fp16/config.json")))
    }

    @Test func `the default (fused) arithmetic reproduces PEFT's merged fp16 file byte for byte`() throws {
        let (_, directory, _) = try run(base: "fp16")
        defer { directory.cleanup() }
        let ours = try [UInt8](contentsOf: directory.file("out/model.safetensors"))
        let golden = try [UInt8](contentsOf: Fixture.path("llama-tiny/merged-fp16/model.safetensors"))
        #expect(ours == golden)
    }

    private func codes(_ tensor: Tensor) -> [UInt8] {
        tensor.bytes.array.flatMap { [$0 >> 4, $0 & 15] }
    }

    @Test func `merging into nf4-dq re-quantizes like PEFT, recording float32 as PEFT does`() throws {
        let (output, directory, summary) = try run(base: "nf4-dq")
        defer { directory.cleanup() }
        #expect(summary.warnings.contains { $0.message.contains("4-bit") })
        let golden = try SafetensorsReader.read(path: Fixture.path("llama-tiny/merged-nf4-dq/model.safetensors"))
            .tensorsByName
        let ours = output.tensorsByName
        #expect(Set(ours.keys) == Set(golden.keys))
        var total = 0
        var same = 0
        var regularTotal = 0
        var regularSame = 0
        for (name, tensor) in golden where tensor.dtype == .u8 && name.hasSuffix(".weight") {
            let mine = try #require(ours[name])
            let pairs = zip(codes(mine), codes(tensor))
            let equal = pairs.filter { $0 == $1 }.count
            total += codes(tensor).count
            same += equal
            let state = try #require(ours[name + ".quant_state.bitsandbytes__nf4"])
            #expect(String(decoding: state.bytes.array, as: UTF8.self).contains("\"dtype\": \"float32\""))
            if !name.contains("down_proj") {
                // Weights whose rows are whole 64-value blocks: every byte of every member is PEFT's.
                regularTotal += codes(tensor).count
                regularSame += equal
                for suffix in [
                    "", ".absmax", ".quant_map", ".nested_absmax", ".nested_quant_map",
                    ".quant_state.bitsandbytes__nf4",
                ] {
                    #expect(ours[name + suffix]?.bytes.array == golden[name + suffix]?.bytes.array, "\(name + suffix)")
                }
            }
        }
        #expect(regularSame == regularTotal)
        #expect(
            try [UInt8](contentsOf: directory.file("out/config.json"))
                == [UInt8](contentsOf: Fixture.path("llama-tiny/merged-nf4-dq/config.json")))
        // down_proj (in_features 688): PEFT dequantized it with bitsandbytes' row-indexed AVX-512 CPU kernel, which
        // scales rows after the first with the wrong absmax (BnbCPUDequantizeTests reproduces the golden codes
        // exactly that way). nf4kit dequantizes correctly, so 86 % of those codes and 96.6 % of all codes agree.
        #expect(Double(same) / Double(total) >= 0.96)
    }

    @Test func `a 4-bit base merged to f16 is a plain checkpoint without quantization_config`() throws {
        let (output, directory, _) = try run(base: "nf4-dq", to: .f16)
        defer { directory.cleanup() }
        #expect(output.tensors.count == 21)
        #expect(output.tensors.allSatisfy { $0.dtype == .f16 })
        let config = try ModelSource.readJSONObject(directory.file("out/config.json"))
        #expect(config["quantization_config"] == nil)
        #expect(config["dtype"]?.stringValue == "float16")
        // Within one NF4 step of the 16-bit merge: dequantization error of the base only.
        let reference = try SafetensorsReader.read(path: Fixture.path("llama-tiny/merged-fp16/model.safetensors"))
            .tensorsByName
        let q = try #require(output.tensorsByName["model.layers.0.self_attn.q_proj.weight"])
        let r = try #require(reference["model.layers.0.self_attn.q_proj.weight"])
        let difference =
            zip(halfBits(q), halfBits(r)).map { abs(Float(Float16(bitPattern: $0)) - Float(Float16(bitPattern: $1))) }
            .max() ?? 0
        #expect(difference < 0.02)
    }

    @Test func `fp16 merged to nf4 quantizes the linear weights only and writes a quantization_config`() throws {
        let (output, directory, _) = try run(base: "fp16", to: .nf4)
        defer { directory.cleanup() }
        let names = Set(output.tensors.map(\.name))
        #expect(names.contains("model.layers.0.mlp.down_proj.weight.quant_state.bitsandbytes__nf4"))
        #expect(output.tensorsByName["lm_head.weight"]?.dtype == .f16)
        #expect(output.tensorsByName["model.embed_tokens.weight"]?.dtype == .f16)
        let state = try #require(
            output.tensorsByName["model.layers.0.self_attn.q_proj.weight.quant_state.bitsandbytes__nf4"])
        #expect(String(decoding: state.bytes.array, as: UTF8.self).contains("\"dtype\": \"float16\""))
        let config = try ModelSource.readJSONObject(directory.file("out/config.json"))
        #expect(config["quantization_config"]?["bnb_4bit_quant_type"]?.stringValue == "nf4")
        #expect(config["quantization_config"]?["bnb_4bit_use_double_quant"]?.boolValue == true)
    }

    @Test func `--to bf16 rounds the merged f32 values once to bf16`() throws {
        let (bf16, directory, _) = try run(base: "fp16", to: .bf16)
        defer { directory.cleanup() }
        let (f32, other, _) = try run(base: "fp16", to: .f32)
        defer { other.cleanup() }
        let config = try ModelSource.readJSONObject(directory.file("out/config.json"))
        #expect(config["dtype"]?.stringValue == "bfloat16")
        let exact = f32.tensorsByName
        for tensor in bf16.tensors {
            #expect(tensor.dtype == .bf16)
            let wide = try #require(exact[tensor.name]).bytes.elements(as: UInt32.self)
            let expected = wide.map { FloatConversion.bfloat16Bits(fromFloatBits: $0) }
            #expect(tensor.bytes.elements(as: UInt16.self) == expected, "\(tensor.name)")
        }
    }

    @Test func `the NF4 copy of the base the adapter names gives no base warning`() throws {
        // The adapter names /tmp/gs/llama-tiny/fp16; llama-tiny/nf4-dq is its NF4 copy (issue 16 item 5). The
        // warning for another base is tested through the CLI (BaseModelWarningCLITests).
        let (_, directory, summary) = try run(base: "nf4-dq", to: .f32)
        defer { directory.cleanup() }
        #expect(!summary.warnings.contains { $0.message.contains("the adapter was made for base") })
    }

    @Test func `a single-file base gives a single-file output with the same values`() throws {
        let directory = TemporaryDirectory("nf4kit-merge")
        defer { directory.cleanup() }
        let options = MergeOptions()
        let output = directory.file("merged.safetensors")
        _ = try MergePipeline.run(
            base: Fixture.path("llama-tiny/fp16/model.safetensors"), adapters: [Fixture.path("llama-tiny/lora")],
            output: output,
            options: options)
        #expect(
            try [UInt8](contentsOf: output)
                == [UInt8](contentsOf: Fixture.path("llama-tiny/merged-fp16/model.safetensors")))
    }

    @Test func `a sharded base gives a sharded output with an index`() throws {
        let directory = TemporaryDirectory("nf4kit-merge")
        defer { directory.cleanup() }
        let base = directory.file("base")
        try FileManager.default.createDirectory(atPath: base, withIntermediateDirectories: true)
        let tensors = try SafetensorsReader.read(path: Fixture.path("llama-tiny/fp16/model.safetensors")).tensors
        let halves = [Array(tensors.prefix(11)), Array(tensors.dropFirst(11))]
        var map: [(name: String, file: String)] = []
        for (i, part) in halves.enumerated() {
            let file = "model-0000\(i + 1)-of-00002.safetensors"
            try SafetensorsWriter.write(part, metadata: [("format", "pt")], to: base + "/" + file, overwrite: false)
            map += part.map { ($0.name, file) }
        }
        try SafetensorsIndex(weightMap: map, totalSize: nil, totalParameters: nil).jsonBytes().write(
            to: base + "/model.safetensors.index.json")
        try [UInt8](contentsOf: Fixture.path("llama-tiny/fp16/config.json")).write(to: base + "/config.json")
        let options = MergeOptions()
        _ = try MergePipeline.run(
            base: base, adapters: [Fixture.path("llama-tiny/lora")], output: directory.file("out"), options: options)
        #expect(FileManager.default.fileExists(atPath: directory.file("out/model.safetensors.index.json")))
        let merged = try SafetensorsIndex.readCheckpoint(indexPath: directory.file("out/model.safetensors.index.json"))
            .tensorsByName
        let golden = try SafetensorsReader.read(path: Fixture.path("llama-tiny/merged-fp16/model.safetensors")).tensors
        for tensor in golden { #expect(merged[tensor.name]?.bytes.array == tensor.bytes.array, "\(tensor.name)") }
    }

    @Test func `LoRA on the head of a tied model writes a separate lm_head and unties`() throws {
        let directory = TemporaryDirectory("nf4kit-merge")
        defer { directory.cleanup() }
        // A tied base: the fp16 fixture without lm_head.weight, tie_word_embeddings true.
        let base = directory.file("base")
        try FileManager.default.createDirectory(atPath: base, withIntermediateDirectories: true)
        let tensors = try SafetensorsReader.read(path: Fixture.path("llama-tiny/fp16/model.safetensors")).tensors
        try SafetensorsWriter.write(
            tensors.filter { $0.name != "lm_head.weight" }, metadata: [("format", "pt")],
            to: base + "/model.safetensors",
            overwrite: false)
        let config = String(
            decoding: try [UInt8](contentsOf: Fixture.path("llama-tiny/fp16/config.json")), as: UTF8.self)
        try Array(
            config.replacingOccurrences(of: "\"tie_word_embeddings\": false", with: "\"tie_word_embeddings\": true")
                .utf8
        )
        .write(to: base + "/config.json")
        // An adapter with LoRA on lm_head only ([1000, 256], r = 2, alpha = 2, so s = 1).
        let adapter = directory.file("adapter")
        try FileManager.default.createDirectory(atPath: adapter, withIntermediateDirectories: true)
        try Array("{\"peft_type\": \"LORA\", \"r\": 2, \"lora_alpha\": 2}".utf8).write(
            to: adapter + "/adapter_config.json")
        let a = (0..<512).map { Float($0 % 7) / 64 }
        let b = (0..<2000).map { Float($0 % 5) / 32 }
        try SafetensorsWriter.write(
            [
                makeTensor("base_model.model.lm_head.lora_A.weight", [2, 256], a),
                makeTensor("base_model.model.lm_head.lora_B.weight", [1000, 2], b),
            ], metadata: [("format", "pt")], to: adapter + "/adapter_model.safetensors", overwrite: false)
        let summary = try MergePipeline.run(
            base: base, adapters: [adapter], output: directory.file("out"), options: MergeOptions())
        #expect(summary.warnings.contains { $0.message.contains("tie_word_embeddings") })
        let output = try SafetensorsReader.read(path: directory.file("out/model.safetensors")).tensorsByName
        let embedding = try #require(tensors.first { $0.name == "model.embed_tokens.weight" })
        #expect(output["model.embed_tokens.weight"]?.bytes.array == embedding.bytes.array)
        let head = try #require(output["lm_head.weight"])
        let e = embedding.bytes.elements(as: UInt16.self).map { Float(Float16(bitPattern: $0)) }
        let h = head.bytes.elements(as: UInt16.self).map { Float(Float16(bitPattern: $0)) }
        for (o, i) in [(0, 0), (3, 17), (999, 255)] {
            let delta = b[o * 2] * a[i] + b[o * 2 + 1] * a[256 + i]
            #expect(h[o * 256 + i] == Float(Float16(e[o * 256 + i] + delta)))
        }
        let merged = try ModelSource.readJSONObject(directory.file("out/config.json"))
        #expect(merged["tie_word_embeddings"]?.boolValue == false)
    }

    @Test func `a non-finite merged value is an error naming the tensor`() throws {
        let directory = TemporaryDirectory("nf4kit-merge")
        defer { directory.cleanup() }
        let adapter = directory.file("adapter")
        try FileManager.default.createDirectory(atPath: adapter, withIntermediateDirectories: true)
        try Array("{\"peft_type\": \"LORA\", \"r\": 1, \"lora_alpha\": 1}".utf8).write(
            to: adapter + "/adapter_config.json")
        let a = [Float](repeating: 1, count: 256).enumerated().map { $0.offset == 3 ? Float.infinity : $0.element }
        try SafetensorsWriter.write(
            [
                makeFileTensor("base_model.model.model.layers.0.self_attn.q_proj.lora_A.weight", [1, 256], a),
                makeFileTensor(
                    "base_model.model.model.layers.0.self_attn.q_proj.lora_B.weight", [256, 1],
                    [Float](repeating: 1, count: 256)),
            ], metadata: [("format", "pt")], to: adapter + "/adapter_model.safetensors", overwrite: false)
        var options = MergeOptions()
        options.target = .same
        #expect {
            try MergePipeline.run(
                base: Fixture.path("llama-tiny/fp16"), adapters: [adapter], output: directory.file("out"),
                options: options)
        } throws: { error in
            (error as? CheckpointError)?.code == .nonFinite
                && (error as? CheckpointError)?.tensor == "model.layers.0.self_attn.q_proj.weight"
        }
        #expect(!FileManager.default.fileExists(atPath: directory.file("out")))
        options.allowNonFinite = true
        _ = try MergePipeline.run(
            base: Fixture.path("llama-tiny/fp16"), adapters: [adapter], output: directory.file("out"), options: options)
        #expect(FileManager.default.fileExists(atPath: directory.file("out/model.safetensors")))
    }
}

func makeFileTensor(_ name: String, _ shape: [Int], _ values: [Float]) -> Tensor { makeTensor(name, shape, values) }

import NF4Kit
import NF4KitTestSupport
import Testing

/// `QuantizePipeline` (what `nf4kit convert` runs) against the golden llama-tiny folders, byte for byte.
@Suite struct ConvertPipelineTests {
    struct Variant: CustomTestStringConvertible, Sendable {
        let folder: String
        let target: QuantizePipeline.Target
        let doubleQuantization: Bool
        var testDescription: String { folder }
    }

    static let variants = [
        Variant(folder: "nf4", target: .nf4, doubleQuantization: false),
        Variant(folder: "nf4-dq", target: .nf4, doubleQuantization: true),
        Variant(folder: "fp4-dq", target: .fp4, doubleQuantization: true),
    ]

    static func bytes(_ path: String) throws -> [UInt8] { try FileAccess.readSmallFile(path, limit: 1 << 30) }

    @Test(arguments: variants, [1, 2])
    func `converting golden fp16 reproduces the golden folder byte for byte`(variant: Variant, threads: Int) throws {
        let temp = TemporaryDirectory("convert")
        defer { temp.cleanup() }
        var options = QuantizePipeline.Options()
        options.target = variant.target
        options.doubleQuantization = variant.doubleQuantization
        options.threads = threads
        let output = temp.file("out")
        let summary = try QuantizePipeline.run(input: Fixture.path("llama-tiny/fp16"), output: output, options: options)
        let golden = Fixture.path("llama-tiny/\(variant.folder)")
        #expect(try Self.bytes(output + "/model.safetensors") == Self.bytes(golden + "/model.safetensors"))
        #expect(try Self.bytes(output + "/config.json") == Self.bytes(golden + "/config.json"))
        #expect(try FileAccess.list(output).sorted() == ["config.json", "model.safetensors"])
        #expect(summary.tensorsQuantized == 14)
        #expect(summary.tensorsKept == 7)
        #expect(summary.nonFinite.isEmpty)
    }

    @Test func `dequantizing golden nf4 to f16 and quantizing again gives golden nf4 back`() throws {
        let temp = TemporaryDirectory("roundtrip")
        defer { temp.cleanup() }
        var toF16 = QuantizePipeline.Options()
        toF16.target = .f16
        let summary = try QuantizePipeline.run(
            input: Fixture.path("llama-tiny/nf4"), output: temp.file("f16"), options: toF16)
        #expect(summary.tensorsDequantized == 14)
        let config = String(decoding: try Self.bytes(temp.file("f16") + "/config.json"), as: UTF8.self)
        #expect(!config.contains("quantization_config"))
        var toNF4 = QuantizePipeline.Options()
        toNF4.doubleQuantization = false
        _ = try QuantizePipeline.run(input: temp.file("f16"), output: temp.file("nf4"), options: toNF4)
        let golden = Fixture.path("llama-tiny/nf4")
        #expect(try Self.bytes(temp.file("nf4") + "/model.safetensors") == Self.bytes(golden + "/model.safetensors"))
        #expect(try Self.bytes(temp.file("nf4") + "/config.json") == Self.bytes(golden + "/config.json"))
    }

    @Test func `quantizing an already quantized folder is refused`() throws {
        let temp = TemporaryDirectory("refuse")
        defer { temp.cleanup() }
        let error = #expect(throws: CheckpointError.self) {
            try QuantizePipeline.run(
                input: Fixture.path("llama-tiny/nf4-dq"), output: temp.file("out"), options: .init())
        }
        #expect(error?.code == .refused)  // the input is refused (exit 65), not the usage
        #expect(!FileAccess.exists(temp.file("out")))
        #expect(!FileAccess.exists(temp.file("out.partial")))
    }

    @Test func `a skip list keeps those layers in fp16 and names them with lm_head in the config`() throws {
        let temp = TemporaryDirectory("skip")
        defer { temp.cleanup() }
        var options = QuantizePipeline.Options()
        options.plan = BnbQuantizationPlan(skip: ["model.layers.1.mlp.*"])
        let summary = try QuantizePipeline.run(
            input: Fixture.path("llama-tiny/fp16"), output: temp.file("out"), options: options)
        #expect(summary.tensorsQuantized == 11)
        let config = String(decoding: try Self.bytes(temp.file("out") + "/config.json"), as: UTF8.self)
        #expect(
            config.contains(
                """
                    "llm_int8_skip_modules": [
                      "lm_head",
                      "model.layers.1.mlp.down_proj",
                      "model.layers.1.mlp.gate_proj",
                      "model.layers.1.mlp.up_proj"
                    ],
                """))
    }

    @Test func `a single file converts to a single file`() throws {
        let temp = TemporaryDirectory("file")
        defer { temp.cleanup() }
        let output = temp.file("model-nf4.safetensors")
        _ = try QuantizePipeline.run(
            input: Fixture.path("llama-tiny/fp16/model.safetensors"), output: output, options: .init())
        #expect(try Self.bytes(output) == Self.bytes(Fixture.path("llama-tiny/nf4-dq/model.safetensors")))
    }
}

@Suite struct ConvertPipelineEdgeTests {
    static func f32Tensor(_ name: String, _ values: [Float], shape: Shape) -> Tensor {
        let bytes = TensorBytes(copyingElementsOf: values.map(\.bitPattern.littleEndian))
        return Tensor(
            descriptor: TensorDescriptor(
                name: name, dtype: .f32, shape: shape, file: "memory", fileOffset: 0, byteCount: bytes.count),
            bytes: bytes)
    }

    @Test func `include quantizes 1-D tensors of a plain file and non-finite values are counted`() throws {
        let temp = TemporaryDirectory("include")
        defer { temp.cleanup() }
        var values = (0..<100).map { Float($0) / 100 - 0.5 }
        values[7] = .nan
        values[90] = -.infinity
        let input = temp.file("vectors.safetensors")
        try SafetensorsWriter.write(
            [Self.f32Tensor("a", values, shape: [100]), Self.f32Tensor("b", [1, 2, 3], shape: [3])],
            metadata: [("format", "pt")], to: input, overwrite: false)
        var options = QuantizePipeline.Options()
        options.plan = BnbQuantizationPlan(include: ["a"])
        options.doubleQuantization = false
        let output = temp.file("out.safetensors")
        let summary = try QuantizePipeline.run(input: input, output: output, options: options)
        #expect(summary.tensorsQuantized == 1 && summary.tensorsKept == 1)
        #expect(
            summary.nonFinite.count == 1 && summary.nonFinite.first?.tensor == "a"
                && summary.nonFinite.first?.count == 2)
        let written = try SafetensorsReader.read(path: output)
        #expect(
            written.tensors.map(\.name).sorted() == [
                "a", "a.absmax", "a.quant_map", "a.quant_state.bitsandbytes__nf4", "b",
            ])
        let group = try #require(try BnbQuantizedWeight.groups(in: written.tensors).first)
        #expect(group.tensor.shape == [100])
        // CPU rules: the first block holds a NaN -> absmax NaN, every code 15; the partial second block holds -inf.
        let absmax = group.tensor.absmaxValues()
        #expect(absmax[0].isNaN && absmax[1] == .infinity)
        #expect(group.tensor.packed.array[0..<32].allSatisfy { $0 == 0xFF })
    }
}

@Suite struct ConvertSplitTests {
    @Test(arguments: [true, false])
    func `one tensor split across threads gives the single-thread bytes`(doubleQuantization: Bool) throws {
        let temp = TemporaryDirectory("split")
        defer { temp.cleanup() }
        var generator = SeededGenerator(seed: 9)
        let values = (0..<(64 * 1000 + 7)).map { _ in Float(generator.nextNormal()) }
        let input = temp.file("one.safetensors")
        try SafetensorsWriter.write(
            [ConvertPipelineEdgeTests.f32Tensor("m.weight", values, shape: [1, values.count])], metadata: nil,
            to: input,
            overwrite: false)
        var options = QuantizePipeline.Options()
        options.doubleQuantization = doubleQuantization
        options.splitThresholdElements = 1
        options.threads = 1
        _ = try QuantizePipeline.run(input: input, output: temp.file("one-thread.safetensors"), options: options)
        options.threads = 3
        _ = try QuantizePipeline.run(input: input, output: temp.file("three-threads.safetensors"), options: options)
        #expect(
            try FileAccess.readSmallFile(temp.file("one-thread.safetensors"))
                == FileAccess.readSmallFile(temp.file("three-threads.safetensors")))
    }
}

@Suite struct ConvertFromOtherContainersTests {
    @Test func `the PyTorch copy of golden fp16 converts to golden nf4-dq byte for byte`() throws {
        let temp = TemporaryDirectory("torch")
        defer { temp.cleanup() }
        let output = temp.file("nf4-dq.safetensors")
        _ = try QuantizePipeline.run(
            input: Fixture.path("torch/llama-tiny/pytorch_model.bin"), output: output, options: .init())
        #expect(
            try FileAccess.readSmallFile(output, limit: 1 << 30)
                == FileAccess.readSmallFile(Fixture.path("llama-tiny/nf4-dq/model.safetensors"), limit: 1 << 30))
    }
}

/// Dequantize and cast jobs stream a tensor to the file in pieces of 1 Mi elements; pieces must add up to the
/// whole-tensor conversion, including a last piece that ends in a partial block.
@Suite struct ConvertStreamingTests {
    @Test func `tensors larger than one piece dequantize and cast to the whole-tensor bytes`() throws {
        let temp = TemporaryDirectory("stream")
        defer { temp.cleanup() }
        var generator = SeededGenerator(seed: 21)
        let count = (1 << 20) * 2 + 100  // two full pieces and a partial block
        let values = (0..<count).map { _ in Float(generator.nextNormal() * 0.02) }
        let input = temp.file("big.safetensors")
        try SafetensorsWriter.write(
            [ConvertPipelineEdgeTests.f32Tensor("w", values, shape: [count])], metadata: [("format", "pt")], to: input,
            overwrite: false)
        var toNF4 = QuantizePipeline.Options()
        toNF4.plan = BnbQuantizationPlan(include: ["w"])
        _ = try QuantizePipeline.run(input: input, output: temp.file("q.safetensors"), options: toNF4)
        var toF16 = QuantizePipeline.Options()
        toF16.target = .f16
        _ = try QuantizePipeline.run(
            input: temp.file("q.safetensors"), output: temp.file("d.safetensors"), options: toF16)
        let quantized = try SafetensorsReader.read(path: temp.file("q.safetensors"))
        let group = try #require(try BnbQuantizedWeight.groups(in: quantized.tensors).first)
        let dequantized = try SafetensorsReader.read(path: temp.file("d.safetensors")).tensorsByName
        #expect(try #require(dequantized["w"]).bytes.array == group.tensor.dequantized(as: .f16).array)

        // Cast f32 -> bf16 through the same pieces.
        var toBF16 = QuantizePipeline.Options()
        toBF16.target = .bf16
        _ = try QuantizePipeline.run(input: input, output: temp.file("c.safetensors"), options: toBF16)
        let cast = try SafetensorsReader.read(path: temp.file("c.safetensors")).tensorsByName
        let whole = values.withUnsafeBytes { FloatConversion.convert($0, from: .f32, to: .bf16, count: count) }
        #expect(try #require(cast["w"]).bytes.array == whole)
    }
}

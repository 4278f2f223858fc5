import NF4Kit
import NF4KitCore
import NF4KitFormats
import NF4KitInspect
import NF4KitTestSupport
import Testing

/// A hand-checked configuration. Model (F16):
///   q_proj  [64, 32]   2,048 elements (below bitsandbytes' 4,096-element 8-bit threshold)
///   up_proj [128, 64]  8,192 elements (8-bit states: 4 blocks of 2,048)
///   embed_tokens [100, 32] 3,200;  norm [32] 32.      P = 13,472 floating-point parameters.
@Suite struct TrainingMemoryTests {
    static func model(_ directory: TemporaryDirectory) throws -> ModelSource {
        let path = try SyntheticCheckpoint.write(
            [
                SyntheticCheckpoint.zeros("model.layers.0.self_attn.q_proj.weight", .f16, [64, 32]),
                SyntheticCheckpoint.zeros("model.layers.0.mlp.up_proj.weight", .f16, [128, 64]),
                SyntheticCheckpoint.zeros("model.embed_tokens.weight", .f16, [100, 32]),
                SyntheticCheckpoint.zeros("model.norm.weight", .f16, [32]),
            ], in: directory)
        return try ModelSource.open(path)
    }

    @Test func `full fine-tuning rows follow 4+4+8 and 2+4+2+8 bytes per parameter`() throws {
        let directory = TemporaryDirectory()
        defer { directory.cleanup() }
        let report = try InspectionReport.inspect(try Self.model(directory), training: TrainingMemoryOptions(rank: 4))
        let training = try #require(report.training)
        #expect(training.fullParameterCount == 13_472)

        let fp32 = try #require(training.row(.fullFP32))
        #expect(fp32.weightByteCount == 53_888)  // 4 x 13,472
        #expect(fp32.trainableByteCount == 0)
        #expect(fp32.gradientByteCount == 53_888)
        #expect(fp32.optimizerStateByteCount == 107_776)  // 8 x 13,472
        #expect(fp32.totalByteCount == 215_552)
        // 8-bit AdamW: q 2,048 < 4,096 -> 8 x 2,048 = 16,384; up 2 x 8,192 + 2 x 4 x 4 blocks = 16,416;
        // embed 3,200 < 4,096 -> 25,600; norm 32 -> 256.  Sum 58,656.
        #expect(fp32.optimizerState8BitByteCount == 58_656)
        #expect(fp32.total8BitByteCount == 166_432)

        let mixed = try #require(training.row(.fullMixedFP16))
        #expect(mixed.weightByteCount == 26_944)  // FP16 weights
        #expect(mixed.trainableByteCount == 53_888)  // FP32 master weights
        #expect(mixed.gradientByteCount == 26_944)
        #expect(mixed.totalByteCount == 215_552)  // the classic 16 bytes per parameter
        #expect(mixed.total8BitByteCount == 166_432)
    }

    @Test func `LoRA and QLoRA rows count r times (in + out) per target`() throws {
        let directory = TemporaryDirectory()
        defer { directory.cleanup() }
        let report = try InspectionReport.inspect(try Self.model(directory), training: TrainingMemoryOptions(rank: 4))
        let training = try #require(report.training)
        // Default targets: the Linear layers. q: 4 x (32 + 64) = 384; up: 4 x (64 + 128) = 768.
        #expect(
            Set(training.targets.map(\.name)) == [
                "model.layers.0.self_attn.q_proj.weight", "model.layers.0.mlp.up_proj.weight",
            ])
        #expect(training.loraParameterCount == 1_152)

        let lora = try #require(training.row(.loraFP16Base))
        #expect(lora.trainableParameterCount == 1_152)
        #expect(lora.weightByteCount == 26_944)  // frozen FP16 base
        #expect(lora.trainableByteCount == 4_608)  // F32 adapter
        #expect(lora.gradientByteCount == 4_608)
        #expect(lora.optimizerStateByteCount == 9_216)
        #expect(lora.optimizerState8BitByteCount == 9_216)  // every A/B matrix is below 4,096 elements
        #expect(lora.totalByteCount == 45_376)

        // 4-bit base (NF4 + DQ): q n=2,048: 1,024 codes + 32 absmax + 4 nested + 1,088 maps = 2,148;
        // up n=8,192: 4,096 + 128 + 4 + 1,088 = 5,316; embed + norm stay 16-bit: 6,464.  Base 13,928.
        let qlora = try #require(training.row(.qlora))
        #expect(qlora.weightByteCount == 13_928)
        #expect(qlora.totalByteCount == 13_928 + 4_608 + 4_608 + 9_216)
    }

    @Test func `explicit targets and a BF16 adapter change only the LoRA rows`() throws {
        let directory = TemporaryDirectory()
        defer { directory.cleanup() }
        let options = TrainingMemoryOptions(rank: 64, targets: ["up_proj"], adapterDType: .bf16)
        let report = try InspectionReport.inspect(try Self.model(directory), training: options)
        let training = try #require(report.training)
        // up only: 64 x (64 + 128) = 12,288 parameters; A is 64 x 64 = 4,096 (8-bit: 8,192 + 2 x 4 x 2 = 8,208),
        // B is 128 x 64 = 8,192 (8-bit: 16,384 + 2 x 4 x 4 = 16,416).
        let qlora = try #require(training.row(.qlora))
        #expect(qlora.trainableParameterCount == 12_288)
        #expect(qlora.trainableByteCount == 24_576)
        #expect(qlora.gradientByteCount == 24_576)
        #expect(qlora.optimizerStateByteCount == 98_304)
        #expect(qlora.optimizerState8BitByteCount == 24_624)
        #expect(training.row(.fullFP32)?.totalByteCount == 215_552)
    }

    @Test func `a target that matches nothing is refused`() throws {
        let directory = TemporaryDirectory()
        defer { directory.cleanup() }
        let source = try Self.model(directory)
        let error = #expect(throws: CheckpointError.self) {
            try InspectionReport.inspect(source, training: TrainingMemoryOptions(rank: 8, targets: ["w_proj"]))
        }
        #expect(error?.code == .invalidArgument)
        #expect(error?.message.contains("w_proj") == true)
    }

    @Test func `training memory is not estimated for an adapter`() throws {
        let source = try ModelSource.open(Fixture.path("llama-tiny/lora"))
        let error = #expect(throws: CheckpointError.self) {
            try InspectionReport.inspect(source, training: TrainingMemoryOptions(rank: 8))
        }
        #expect(error?.code == .invalidArgument)
    }

    @Test func `QLoRA on a 4-bit checkpoint uses the checkpoint's own bytes`() throws {
        let source = try ModelSource.open(Fixture.path("llama-tiny/nf4"))
        let report = try InspectionReport.inspect(source, training: TrainingMemoryOptions(rank: 8))
        #expect(
            report.training?.row(.qlora)?.weightByteCount == source.checkpoint.tensors.reduce(0) { $0 + $1.bytes.count }
        )
        // the golden lora adapter (r = 8 on all seven projections) has the same trainable parameter count
        let adapter = try InspectionReport.inspect(try ModelSource.open(Fixture.path("llama-tiny/lora")))
        #expect(report.training?.loraParameterCount == adapter.adapter?.loraParameterCount)
    }
}

@Suite struct TrainingMemoryLimitTests {
    @Test func `an empty weight with huge dimensions is refused, not overflowed`() throws {
        let directory = TemporaryDirectory()
        defer { directory.cleanup() }
        // [2^62, 0] has no elements, so the file is tiny, but r * (in + out) would overflow.
        let path = try SyntheticCheckpoint.write(
            [SyntheticCheckpoint.zeros("model.layers.0.mlp.up_proj.weight", .f16, [1 << 62, 0])], in: directory)
        let source = try ModelSource.open(path)
        let error = #expect(throws: CheckpointError.self) {
            try InspectionReport.inspect(source, training: TrainingMemoryOptions(rank: 8))
        }
        #expect(error?.code == .limitExceeded)
        #expect(error?.tensor == "model.layers.0.mlp.up_proj.weight")
    }
}

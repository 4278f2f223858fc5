import Foundation
import NF4KitCore
import NF4KitInspect
import NF4KitQuant
import NF4KitTestSupport
import Testing

/// Independent reference computations: plain loops over Float arrays, written from the definitions in
/// docs/sensitivity.md and the published codebooks, sharing no code with the library.
enum Reference {
    /// bitsandbytes' NF4 values as published (functional.py `get_4bit_type("nf4")`).
    static let nf4: [Float] = [
        -1.0, -0.6961928009986877, -0.5250730514526367, -0.39491748809814453, -0.28444138169288635,
        -0.18477343022823334, -0.09105003625154495, 0.0, 0.07958029955625534, 0.16093020141124725,
        0.24611230194568634, 0.33791524171829224, 0.44070982933044434, 0.5626170039176941, 0.7229568362236023, 1.0,
    ]

    struct Errors {
        var rmse: Double
        var maxAbs: Double
        var snrDB: Double
        var relativeFrobenius: Double
    }

    static func errors(_ x: [Float], _ y: [Float]) -> Errors {
        var se = 0.0, sx = 0.0, peak = 0.0
        for i in x.indices {
            let e = Double(y[i]) - Double(x[i])
            se += e * e
            sx += Double(x[i]) * Double(x[i])
            peak = max(peak, abs(e))
        }
        return Errors(
            rmse: (se / Double(x.count)).squareRoot(), maxAbs: peak, snrDB: 10 * log10(sx / se),
            relativeFrobenius: (se / sx).squareRoot())
    }

    /// Nearest NF4 value times the block absmax, blocks of `blocksize`.
    static func nf4RoundTrip(_ x: [Float], blocksize: Int) -> [Float] {
        var out = x
        for start in stride(from: 0, to: x.count, by: blocksize) {
            let block = start..<min(start + blocksize, x.count)
            let absmax = block.map { abs(x[$0]) }.max()!
            for i in block {
                let t = x[i] / absmax
                let nearest = nf4.min { abs($0 - t) < abs($1 - t) }!
                out[i] = nearest * absmax
            }
        }
        return out
    }

    /// The INT4 definition: q = clamp(rint(x · 7/absmax), -8, 7), x' = q · absmax/7.
    static func int4RoundTrip(_ x: [Float], blocksize: Int) -> [Float] {
        var out = x
        for start in stride(from: 0, to: x.count, by: blocksize) {
            let block = start..<min(start + blocksize, x.count)
            let absmax = block.map { abs(x[$0]) }.max()!
            for i in block {
                let q = absmax == 0 ? 0 : min(7, max(-8, (x[i] * (7 / absmax)).rounded(.toNearestOrEven)))
                out[i] = q * (absmax / 7)
            }
        }
        return out
    }

    /// ggml Q8_0: d = amax/127, q = round half away(x/d), x' = q · f16(d).
    static func q8RoundTrip(_ x: [Float]) -> [Float] {
        var out = x
        for start in stride(from: 0, to: x.count, by: 32) {
            let amax = (start..<(start + 32)).map { abs(x[$0]) }.max()!
            let d = amax / 127
            let stored = Float(Float16(d))
            for i in start..<(start + 32) {
                let q = d == 0 ? 0 : (x[i] * (1 / d)).rounded(.toNearestOrAwayFromZero)
                out[i] = q * stored
            }
        }
        return out
    }

    /// Round to bfloat16, nearest even, by bit manipulation.
    static func bf16RoundTrip(_ x: [Float]) -> [Float] {
        x.map { v in
            let bits = v.bitPattern
            let rounded = (bits &+ 0x7FFF &+ ((bits >> 16) & 1)) & 0xFFFF_0000
            return Float(bitPattern: rounded)
        }
    }

    static func normal(count: Int, seed: UInt64, scale: Double = 0.02) -> [Float] {
        var generator = SeededGenerator(seed: seed)
        return (0..<count).map { _ in Float(generator.nextNormal() * scale) }
    }

    static func tensor(_ name: String, _ shape: Shape, _ values: [Float]) -> Tensor {
        Tensor(
            descriptor: TensorDescriptor(
                name: name, dtype: .f32, shape: shape, file: "", fileOffset: 0, byteCount: 4 * values.count),
            bytes: TensorBytes(copyingElementsOf: values))
    }
}

func close(_ a: Double, _ b: Double, relative: Double) -> Bool { abs(a - b) <= relative * max(abs(a), abs(b)) }

@Suite struct SensitivityTests {
    @Test func `error statistics match plain loops`() {
        let x: [Float] = [1, -2, 0.5, 3, 0]
        let y: [Float] = [1.125, -2, 0.25, 2.5, -0.0625]
        let stats = x.withUnsafeBufferPointer { a in
            y.withUnsafeBufferPointer { b in ErrorStatistics.measure(reference: a, decoded: b) }
        }
        // Σe² = 0.015625 + 0.0625 + 0.25 + 0.00390625 = 0.33203125; Σx² = 1 + 4 + 0.25 + 9 = 14.25
        #expect(stats.sumSquaredError == 0.33203125)
        #expect(stats.sumSquaredReference == 14.25)
        #expect(stats.maxAbsoluteError == 0.5)
        let expected = Reference.errors(x, y)
        #expect(close(stats.rootMeanSquaredError, expected.rmse, relative: 1e-15))
        #expect(close(stats.signalToNoiseDecibels, expected.snrDB, relative: 1e-13))
        #expect(close(stats.relativeFrobeniusError, expected.relativeFrobenius, relative: 1e-15))
    }

    @Test func `a tensor without error has infinite SNR and zero relative error`() {
        let x: [Float] = [0.5, -1]
        let stats = x.withUnsafeBufferPointer { ErrorStatistics.measure(reference: $0, decoded: $0) }
        #expect(stats.signalToNoiseDecibels == .infinity)
        #expect(stats.relativeFrobeniusError == 0)
        #expect(stats.rootMeanSquaredError == 0)
    }

    @Test func `INT4 rounds x times 7 over absmax half to even and decodes with absmax over 7`() {
        // absmax 7 -> scale 1: -3.5 rounds to -4, 2.5 to 2; second block absmax 0 -> zeros.
        let x: [Float] = [7, -3.5, 2.5, 0.4, 0, 0, 0, 0]
        var packed = [UInt8](repeating: 0, count: 4)
        var absmax = [Float](repeating: 0, count: 2)
        var decoded = [Float](repeating: 0, count: 8)
        x.withUnsafeBufferPointer { source in
            packed.withUnsafeMutableBytes { p in
                absmax.withUnsafeMutableBufferPointer { a in
                    UniformInt4.quantize(source, blocksize: 4, packedInto: p, absmaxInto: a)
                    decoded.withUnsafeMutableBufferPointer {
                        UniformInt4.dequantize(
                            packed: UnsafeRawBufferPointer(p), absmax: UnsafeBufferPointer(a), blocksize: 4, into: $0)
                    }
                }
            }
        }
        #expect(absmax == [7, 0])
        #expect(packed == [0x7C, 0x20, 0x00, 0x00])  // 7 | -4 (0xC), 2 | 0
        #expect(decoded == [7, -4, 2, 0, 0, 0, 0, 0])
    }

    @Test(arguments: [64, 128])
    func `INT4 matches the definition on seeded data`(blocksize: Int) {
        let x = Reference.normal(count: 1000, seed: 7)
        var packed = [UInt8](repeating: 0, count: 500)
        var absmax = [Float](repeating: 0, count: (1000 + blocksize - 1) / blocksize)
        var decoded = [Float](repeating: 0, count: 1000)
        x.withUnsafeBufferPointer { source in
            packed.withUnsafeMutableBytes { p in
                absmax.withUnsafeMutableBufferPointer { a in
                    UniformInt4.quantize(source, blocksize: blocksize, packedInto: p, absmaxInto: a)
                    decoded.withUnsafeMutableBufferPointer {
                        UniformInt4.dequantize(
                            packed: UnsafeRawBufferPointer(p), absmax: UnsafeBufferPointer(a), blocksize: blocksize,
                            into: $0)
                    }
                }
            }
        }
        #expect(decoded == Reference.int4RoundTrip(x, blocksize: blocksize))
    }

    @Test func `per-tensor errors match an independent round trip of each scheme`() throws {
        let x = Reference.normal(count: 4 * 256, seed: 42)
        let checkpoint = Checkpoint(
            format: .safetensors, files: [],
            tensors: [Reference.tensor("model.layers.0.self_attn.q_proj.weight", [4, 256], x)])
        let report = try SensitivityReport.analyze(
            checkpoint, options: SensitivityOptions(schemes: [.nf4, .int4, .q8_0, .bf16], blocksize: 64))
        let tensor = try #require(report.tensors.first)
        #expect(tensor.schemes.map(\.scheme) == [.nf4, .int4, .q8_0, .bf16])
        let references: [(QuantizationScheme, [Float], Double)] = [
            (.nf4, Reference.nf4RoundTrip(x, blocksize: 64), 1e-3),  // a value at a code midpoint may round differently
            (.int4, Reference.int4RoundTrip(x, blocksize: 64), 1e-12),
            (.q8_0, Reference.q8RoundTrip(x), 1e-3),
            (.bf16, Reference.bf16RoundTrip(x), 1e-12),
        ]
        for (scheme, decoded, tolerance) in references {
            let result = try #require(tensor.schemes.first { $0.scheme == scheme })
            let expected = Reference.errors(x, decoded)
            #expect(close(result.error.rootMeanSquaredError, expected.rmse, relative: tolerance), "\(scheme)")
            #expect(close(result.error.maxAbsoluteError, expected.maxAbs, relative: 10 * tolerance), "\(scheme)")
            #expect(close(result.error.signalToNoiseDecibels, expected.snrDB, relative: tolerance), "\(scheme)")
            #expect(
                close(result.error.relativeFrobeniusError, expected.relativeFrobenius, relative: tolerance), "\(scheme)"
            )
        }
    }

    @Test(arguments: [1, 2, 3] as [UInt64])
    func `NF4 has a lower RMSE than INT4 on normally distributed weights`(seed: UInt64) throws {
        let x = Reference.normal(count: 256 * 256, seed: seed)
        let checkpoint = Checkpoint(
            format: .safetensors, files: [],
            tensors: [Reference.tensor("model.layers.0.mlp.up_proj.weight", [256, 256], x)])
        let report = try SensitivityReport.analyze(checkpoint, options: SensitivityOptions(schemes: [.nf4, .int4]))
        let nf4 = try #require(report.model.result(.nf4))
        let int4 = try #require(report.model.result(.int4))
        #expect(nf4.error.rootMeanSquaredError < int4.error.rootMeanSquaredError)
        #expect(nf4.byteCount == int4.byteCount)
    }

    static func smallModel() -> Checkpoint {
        var tensors: [Tensor] = [
            Reference.tensor("model.embed_tokens.weight", [16, 64], Reference.normal(count: 1024, seed: 1))
        ]
        var seed: UInt64 = 10
        for layer in 0..<2 {
            for (module, shape) in [
                ("self_attn.q_proj", [64, 64]), ("self_attn.k_proj", [32, 64]), ("mlp.up_proj", [96, 64]),
                ("mlp.down_proj", [64, 96]),
            ] {
                seed += 1
                let n = shape[0] * shape[1]
                tensors.append(
                    Reference.tensor(
                        "model.layers.\(layer).\(module).weight", Shape(shape), Reference.normal(count: n, seed: seed)))
            }
            tensors.append(
                Reference.tensor("model.layers.\(layer).input_layernorm.weight", [64], [Float](repeating: 1, count: 64))
            )
        }
        tensors.append(Reference.tensor("lm_head.weight", [16, 64], Reference.normal(count: 1024, seed: 2)))
        return Checkpoint(format: .safetensors, files: [], tensors: tensors)
    }

    @Test func `only the weights convert quantizes are analysed, grouped by layer type and component`() throws {
        let report = try SensitivityReport.analyze(Self.smallModel(), options: SensitivityOptions(schemes: [.nf4]))
        #expect(report.tensors.count == 8)
        #expect(
            !report.tensors.contains {
                $0.name.contains("embed") || $0.name.contains("lm_head") || $0.name.contains("norm")
            })
        #expect(report.byLayerType.map(\.label) == ["q", "k", "up", "down"])
        #expect(report.byLayerType.map(\.tensorCount) == [2, 2, 2, 2])
        #expect(report.byComponent.map(\.label) == ["attention", "mlp"])
        #expect(report.byComponent.map(\.parameterCount) == [2 * (4096 + 2048), 2 * (6144 + 6144)])
        #expect(report.model.parameterCount == 36_864)
        // The whole-model sums are the sums of the per-tensor sums.
        let perTensor = report.tensors.map { $0.schemes[0].error.sumSquaredError }.reduce(0, +)
        #expect(close(try #require(report.model.result(.nf4)).error.sumSquaredError, perTensor, relative: 1e-15))
    }

    @Test func `the report does not depend on the thread count`() throws {
        let one = try SensitivityReport.analyze(Self.smallModel(), options: SensitivityOptions(threads: 1))
        let four = try SensitivityReport.analyze(Self.smallModel(), options: SensitivityOptions(threads: 4))
        #expect(one == four)
        // A budget smaller than one tensor's buffers still runs (one worker) and gives the same report.
        let budgeted = try SensitivityReport.analyze(
            Self.smallModel(), options: SensitivityOptions(threads: 4, memoryBudgetByteCount: 1))
        #expect(budgeted == one)
        // Rows of 64: every scheme but those with 256-value super-blocks (Q4_K, Q5_K, Q6_K, IQ4_XS) covers a tensor.
        #expect(one.model.schemes.map(\.scheme) == QuantizationScheme.allCases.filter { $0.ggmlType?.blockSize != 256 })
        #expect(one.model.schemes.count == QuantizationScheme.allCases.count - 4)
    }

    @Test func `ggml schemes skip tensors whose rows are not a multiple of 32 and count only what they cover`() throws {
        let tensors = [
            Reference.tensor("model.layers.0.mlp.down_proj.weight", [8, 40], Reference.normal(count: 320, seed: 5)),
            Reference.tensor("model.layers.0.mlp.up_proj.weight", [8, 64], Reference.normal(count: 512, seed: 6)),
        ]
        let report = try SensitivityReport.analyze(
            Checkpoint(format: .safetensors, files: [], tensors: tensors),
            options: SensitivityOptions(schemes: [.nf4, .q4_0]))
        let q4 = try #require(report.model.result(.q4_0))
        #expect(q4.tensorCount == 1)
        #expect(q4.parameterCount == 512)
        #expect(try #require(report.model.result(.nf4)).tensorCount == 2)
    }

    @Test func `byte counts follow the storage formulas`() {
        let n = 65_536  // 1,024 blocks of 64, 4 nested blocks of 256
        #expect(QuantizationScheme.nf4.byteCount(elementCount: n, blocksize: 64) == 32_768 + 4_096)
        #expect(QuantizationScheme.nf4DoubleQuant.byteCount(elementCount: n, blocksize: 64) == 32_768 + 1_024 + 16)
        #expect(QuantizationScheme.int4.byteCount(elementCount: n, blocksize: 64) == 36_864)
        #expect(QuantizationScheme.q4_0.byteCount(elementCount: n, blocksize: 64) == 2_048 * 18)
        #expect(QuantizationScheme.q8_0.byteCount(elementCount: n, blocksize: 64) == 2_048 * 34)
        #expect(QuantizationScheme.bf16.byteCount(elementCount: n, blocksize: 64) == 131_072)
    }

    @Test func `scheme lists expand nf4 and fp4 to both variants and reject unknown names`() throws {
        #expect(try QuantizationScheme.parseList("q8_0, nf4") == [.nf4, .nf4DoubleQuant, .q8_0])
        #expect(try QuantizationScheme.parseList("fp4-dq") == [.fp4DoubleQuant])
        let error = #expect(throws: CheckpointError.self) { try QuantizationScheme.parseList("nf4,q3_k") }
        #expect(error?.code == .invalidArgument)
        #expect(error?.message.contains("q3_k") == true)
    }

    @Test func `layer types follow module names`() {
        #expect(SensitivityReport.layerType(of: "model.layers.3.self_attn.o_proj.weight") == "o")
        #expect(SensitivityReport.layerType(of: "model.layers.3.mlp.gate_proj.weight") == "gate")
        #expect(SensitivityReport.layerType(of: "transformer.h.0.attn.c_proj.weight") == "o")
        #expect(SensitivityReport.layerType(of: "transformer.h.0.mlp.c_proj.weight") == "down")
        #expect(SensitivityReport.component(of: "transformer.h.0.attn.c_attn.weight") == .attention)
        #expect(SensitivityReport.component(of: "model.layers.0.mlp.down_proj.weight") == .mlp)
        #expect(SensitivityReport.component(of: "pooler.dense.weight") == .other)
        #expect(SensitivityReport.layerType(of: "blk.0.attn_output.weight") == "o")
        #expect(SensitivityReport.layerType(of: "blk.0.ffn_gate.weight") == "gate")
        #expect(SensitivityReport.component(of: "blk.0.ffn_down.weight") == .mlp)
    }
}

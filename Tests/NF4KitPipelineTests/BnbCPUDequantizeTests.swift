import Foundation
import NF4Kit
import NF4KitTestSupport
import Testing

/// Why golden `merged-nf4-dq` differs from us on `down_proj`: PEFT dequantized that weight through bitsandbytes
/// 0.50.2's AVX-512 CPU kernel, which finds a row's absmax at `row * (cols / blocksize) + col / blocksize`. That
/// is the flat block index only when `cols` is a multiple of the blocksize; `down_proj` has 688 columns (10.75
/// blocks of 64), so every row after the first is scaled by the wrong blocks' absmax before the delta is added.
///
/// The test rebuilds PEFT's merge of one `down_proj` from the golden inputs, with its own dequantizer written out
/// here (correct, and with that row indexing), its own rank-8 delta, and nf4kit's quantizer, then counts the codes
/// that agree with the golden file. nf4kit itself keeps the correct dequantization (docs/merge.md).
@Suite struct BnbCPUDequantizeTests {
    private static let weights = ["model.layers.0.mlp.down_proj.weight", "model.layers.1.mlp.down_proj.weight"]

    private func merged(_ weight: String, rowIndexed: Bool) throws -> (ours: [UInt8], golden: [UInt8]) {
        let base = try SafetensorsReader.read(path: Fixture.path("llama-tiny/nf4-dq/model.safetensors"))
        let group = try #require(try BnbQuantizedWeight.groups(in: base.tensors).first { $0.weightName == weight })
        let tensor = group.tensor
        #expect(tensor.dtype == .f16 && tensor.blocksize == 64)
        let rows = tensor.shape.dimensions[0]
        let cols = tensor.shape.dimensions[1]
        #expect(rows == 256 && cols == 688)
        let absmax = tensor.absmaxValues()
        let packed = tensor.packed.array
        let codebook = tensor.codebook

        // dequantize_4bit to the recorded dtype (float16): code value times absmax in f32, rounded to f16.
        var w = [Float](repeating: 0, count: rows * cols)
        for r in 0..<rows {
            for c in 0..<cols {
                let i = r * cols + c
                let byte = packed[i / 2]
                let code = Int(i % 2 == 0 ? byte >> 4 : byte & 15)
                let block = rowIndexed ? r * (cols / tensor.blocksize) + c / tensor.blocksize : i / tensor.blocksize
                w[i] = Float(Float16(codebook[code] * absmax[block]))
            }
        }

        // PEFT's delta: (B @ A) * lora_alpha / r, in f32.
        let adapter = try SafetensorsReader.read(path: Fixture.path("llama-tiny/lora/adapter_model.safetensors"))
            .tensorsByName
        let prefix = "base_model.model." + weight.dropLast(".weight".count)
        let a = try #require(adapter[prefix + ".lora_A.weight"]).bytes.elements(as: UInt32.self).map(
            Float.init(bitPattern:))
        let b = try #require(adapter[prefix + ".lora_B.weight"]).bytes.elements(as: UInt32.self).map(
            Float.init(bitPattern:))
        let rank = 8
        let scaling: Float = 16 / 8
        for r in 0..<rows {
            for c in 0..<cols {
                var sum: Float = 0
                for k in 0..<rank { sum += b[r * rank + k] * a[k * cols + c] }
                w[r * cols + c] += sum * scaling
            }
        }

        let quantizer = try BlockQuantizer(quantType: .nf4, blocksize: 64)
        let requantized = try w.withUnsafeBytes {
            try quantizer.quantize($0, dtype: .f32, shape: tensor.shape, doubleQuantization: true)
        }
        let golden = try SafetensorsReader.read(path: Fixture.path("llama-tiny/merged-nf4-dq/model.safetensors"))
            .tensorsByName
        return (requantized.packed.array, try #require(golden[weight]).bytes.array)
    }

    private func shareOfEqualCodes(_ x: [UInt8], _ y: [UInt8]) -> Double {
        let pairs = zip(x.flatMap { [$0 >> 4, $0 & 15] }, y.flatMap { [$0 >> 4, $0 & 15] })
        return Double(pairs.filter { $0 == $1 }.count) / Double(x.count * 2)
    }

    @Test(arguments: weights)
    func `PEFT's down_proj is reproduced by bitsandbytes' row-indexed CPU dequantization`(weight: String) throws {
        let (emulated, golden) = try merged(weight, rowIndexed: true)
        let (correct, _) = try merged(weight, rowIndexed: false)
        // The row-indexed dequantization explains PEFT's file code for code; the flat (correct) one does not
        // (measured: 86 % of codes equal).
        #expect(emulated == golden)
        #expect(shareOfEqualCodes(correct, golden) < 0.95)
        // nf4kit's merge is the flat computation.
        let directory = TemporaryDirectory("nf4kit-merge-bnb-cpu")
        defer { directory.cleanup() }
        let options = MergeOptions()
        _ = try MergePipeline.run(
            base: Fixture.path("llama-tiny/nf4-dq"), adapters: [Fixture.path("llama-tiny/lora")],
            output: directory.file("out"), options: options)
        let ours = try SafetensorsReader.read(path: directory.file("out/model.safetensors")).tensorsByName
        #expect(shareOfEqualCodes(try #require(ours[weight]).bytes.array, correct) >= 0.999)
    }
}

import Foundation
import NF4Kit
import NF4KitTestSupport
import Testing

@Suite struct CheckpointDiffTests {
    /// Writes a safetensors file of F32/F16/I32 tensors given as Float/Int arrays.
    private func write(_ path: String, _ tensors: [(String, DType, Shape, [Double])]) throws {
        let converted: [Tensor] = tensors.map { name, dtype, shape, values in
            var bytes: [UInt8] = []
            for v in values {
                switch dtype {
                case .f32: withUnsafeBytes(of: Float(v).bitPattern.littleEndian) { bytes += $0 }
                case .f16: withUnsafeBytes(of: Float16(Float(v)).bitPattern.littleEndian) { bytes += $0 }
                case .i32: withUnsafeBytes(of: Int32(v).littleEndian) { bytes += $0 }
                default: Issue.record("unsupported dtype in test")
                }
            }
            return Tensor(
                descriptor: TensorDescriptor(
                    name: name, dtype: dtype, shape: shape, file: path, fileOffset: 0, byteCount: bytes.count),
                bytes: TensorBytes(copyingElementsOf: bytes))
        }
        try SafetensorsWriter.write(converted, metadata: [("format", "pt")], to: path, overwrite: true)
    }

    @Test func `figures match a plain recomputation, with mismatches and one-sided tensors listed`() throws {
        let dir = TemporaryDirectory()
        defer { dir.cleanup() }
        let a: [Double] = [1, -2, 0.5, 4, 0, 3]
        let b: [Double] = [1, -2.25, 0.5, 3.5, 0.125, 3]  // exactly representable in f16
        try write(
            dir.file("a.safetensors"),
            [
                ("w", .f32, [2, 3], a), ("ids", .i32, [3], [1, 2, 3]), ("norm", .f32, [2], [1, 1]),
                ("gone", .f32, [1], [7]),
            ])
        try write(
            dir.file("b.safetensors"),
            [
                ("w", .f16, [2, 3], b), ("ids", .i32, [3], [1, 5, 3]), ("norm", .f32, [1, 2], [1, 1]),
                ("new", .f32, [1], [7]),
            ])
        let diff = try CheckpointDiff.compare(
            SafetensorsReader.read(path: dir.file("a.safetensors")),
            SafetensorsReader.read(path: dir.file("b.safetensors")))
        #expect(diff.onlyInA == ["gone"])
        #expect(diff.onlyInB == ["new"])
        let rows = Dictionary(uniqueKeysWithValues: diff.rows.map { ($0.name, $0) })

        let w = try #require(rows["w"])
        #expect(w.status == .compared)
        #expect(w.dtypeA == "F32" && w.dtypeB == "F16")
        var squaredError = 0.0, squaredReference = 0.0, peak = 0.0, equal = 0
        for (x, y) in zip(a, b) {
            squaredError += (y - x) * (y - x)
            squaredReference += x * x
            peak = max(peak, abs(y - x))
            if x == y { equal += 1 }
        }
        let s = try #require(w.statistics)
        #expect(s.maxAbsoluteError == peak)  // 0.5
        #expect(abs(s.rootMeanSquaredError - (squaredError / 6).squareRoot()) < 1e-15)
        #expect(abs(s.relativeFrobeniusError - (squaredError / squaredReference).squareRoot()) < 1e-15)
        #expect(abs(s.signalToNoiseDecibels - 10 * log10(squaredReference / squaredError)) < 1e-12)
        #expect(w.equalCount == equal)  // 4 of 6

        let ids = try #require(rows["ids"])
        #expect(ids.status == .comparedBytes)
        #expect(ids.equalCount == 2 && ids.elementCount == 3)
        #expect(rows["norm"]?.status == .shapeMismatch)
    }

    @Test func `a 4-bit checkpoint is compared by its dequantized weights`() throws {
        let fp16 = try SafetensorsReader.read(path: Fixture.path("llama-tiny/fp16/model.safetensors"))
        let nf4 = try SafetensorsReader.read(path: Fixture.path("llama-tiny/nf4-dq/model.safetensors"))
        let diff = try CheckpointDiff.compare(fp16, nf4, threads: 2)
        // 91 stored tensors fold into the 21 logical ones of the fp16 model.
        #expect(diff.rows.count == 21)
        #expect(diff.onlyInA.isEmpty && diff.onlyInB.isEmpty)
        for row in diff.rows {
            if row.dtypeB == "NF4" {
                // NF4 with 16 levels per block: errors are real but bounded (relative error around 0.09 on normal data).
                let s = try #require(row.statistics)
                #expect(s.relativeFrobeniusError > 0.05 && s.relativeFrobeniusError < 0.15, "\(row.name)")
            } else {
                #expect(row.isIdentical, "\(row.name) should be stored unchanged")
            }
        }
        #expect(diff.rows.filter { $0.dtypeB == "NF4" }.count == 14)
        let single = try CheckpointDiff.compare(fp16, nf4, threads: 1)
        #expect(single.rows == diff.rows)
    }
}

import Foundation
import NF4KitCore
import NF4KitFormats
import NF4KitTestSupport
import Testing

/// Interoperability with Python's `safetensors` (run through `NF4KIT_PYTHON`, see ``PythonInterop``).
@Suite struct SafetensorsInteropTests {
    /// A set of tensors to write, with the metadata to give them.
    struct Sample: Sendable, CustomTestStringConvertible {
        var label: String
        var tensors: [(name: String, dtype: DType, shape: Shape)]
        /// At most one key, so that the reference writer's hash-map order cannot differ from ours.
        var metadata: [(String, String)]?
        var testDescription: String { label }
    }

    static let samples: [Sample] = [
        Sample(
            label: "every numpy dtype, scalars and empty tensors",
            tensors: [
                ("w.f64", .f64, [3, 2]), ("w.f32", .f32, [4, 5]), ("w.f16", .f16, [7]), ("w.i64", .i64, [2, 2]),
                ("w.u64", .u64, [3]), ("w.i32", .i32, [1, 3]), ("w.u32", .u32, [2]), ("w.i16", .i16, [5]),
                ("w.u16", .u16, [2, 3]), ("w.i8", .i8, [9]), ("w.u8", .u8, [4, 4]), ("w.bool", .bool, [6]),
                ("w.c64", .c64, [2]), ("scalar.f32", .f32, []), ("scalar.i64", .i64, []), ("empty.f16", .f16, [0, 5]),
                ("empty.u8", .u8, [0]),
            ],
            metadata: [("format", "pt")]),
        Sample(
            label: "BF16, F8 variants and F4",
            tensors: [
                ("model.bf16", .bf16, [4, 8]), ("model.bf16.scalar", .bf16, []), ("f8.e4m3", .f8e4m3, [16]),
                ("f8.e5m2", .f8e5m2, [2, 8]), ("f8.e8m0", .f8e8m0, [5]), ("f8.e4m3fnuz", .f8e4m3fnuz, [3]),
                ("f8.e5m2fnuz", .f8e5m2fnuz, [3]), ("f4", .f4, [2, 6]), ("f32", .f32, [3]),
            ],
            metadata: [("format", "pt")]),
        Sample(label: "no metadata", tensors: [("a", .f32, [2]), ("b", .f16, [3]), ("c", .u8, [1])], metadata: nil),
        Sample(
            label: "non-ASCII names and metadata",
            tensors: [
                ("é.weight", .f16, [2, 2]), ("日本.bias", .f32, [2]), ("quote\"back\\slash", .u8, [3]), ("", .i8, [1]),
            ],
            metadata: [("note", "héllo — ✓ \"quoted\"")]),
        Sample(
            label: "same dtype, names ordered byte-wise, control characters escaped",
            tensors: ["b", "a", "é", "z", "Z", "日本", "ａ", "😀", "", "a.b", "a\u{1}\u{7F}\n\t", "a/b", "__metadata"].map {
                ($0, DType.f32, Shape([2]))
            }
                + [("zero.a", .f32, [0]), ("zero.b", .f32, [3, 0])],
            metadata: [("format", "pt")]),
    ]

    private static func hex(_ bytes: [UInt8]) -> String {
        let digits = Array("0123456789abcdef")
        var text = ""
        text.reserveCapacity(bytes.count * 2)
        for byte in bytes {
            text.append(digits[Int(byte >> 4)])
            text.append(digits[Int(byte & 15)])
        }
        return text
    }

    private static func bytes(fromHex text: String) -> [UInt8] {
        var result: [UInt8] = []
        var iterator = text.utf8.makeIterator()
        func nibble(_ c: UInt8) -> UInt8 { c <= 0x39 ? c - 0x30 : (c | 0x20) - 0x61 + 10 }
        while let high = iterator.next(), let low = iterator.next() { result.append(nibble(high) << 4 | nibble(low)) }
        return result
    }

    @Test(arguments: samples)
    func `Python reads our files with identical values and writes identical bytes`(_ sample: Sample) throws {
        let dir = TemporaryDirectory()
        defer { dir.cleanup() }
        var rng = SeededGenerator(seed: 2026)
        var tensors: [Tensor] = []
        var manifestTensors: [String: Any] = [:]
        for (name, dtype, shape) in sample.tensors {
            let count = try #require(dtype.byteCount(elementCount: shape.elementCount))
            let data = (0..<count).map { _ in
                dtype == .bool ? UInt8.random(in: 0...1, using: &rng) : UInt8.random(in: 0...255, using: &rng)
            }
            tensors.append(
                Tensor(
                    descriptor: TensorDescriptor(
                        name: name, dtype: dtype, shape: shape, file: "memory", fileOffset: 0, byteCount: count),
                    bytes: TensorBytes(copyingElementsOf: data)))
            manifestTensors[name] = ["dtype": dtype.safetensorsName, "shape": shape.dimensions, "hex": Self.hex(data)]
        }
        let ours = dir.file("ours.safetensors")
        try SafetensorsWriter.write(tensors, metadata: sample.metadata, to: ours, overwrite: false)
        let metadata: Any = sample.metadata.map { Dictionary(uniqueKeysWithValues: $0) } ?? NSNull()
        let manifest = try JSONSerialization.data(withJSONObject: ["metadata": metadata, "tensors": manifestTensors])
        try manifest.write(to: URL(fileURLWithPath: dir.file("manifest.json")))

        let python = dir.file("python.safetensors")
        let result = try PythonInterop.run(
            script: "Tests/Interop/safetensors_python_reads.py", arguments: [ours, dir.file("manifest.json"), python])
        #expect(result.status == 0, "\(result.stderr)")
        let report = try #require(try JSONSerialization.jsonObject(with: Data(result.stdout.utf8)) as? [String: Any])
        #expect(report["checked"] as? [String] == sample.tensors.map(\.name).sorted())
        let numpyDTypes: Set<DType> = [.f64, .f32, .f16, .i64, .u64, .i32, .u32, .i16, .u16, .i8, .u8, .bool, .c64]
        #expect(
            report["numpy_checked"] as? [String]
                == sample.tensors.filter { numpyDTypes.contains($0.dtype) }.map(\.name).sorted())
        #expect(try [UInt8](contentsOf: python) == [UInt8](contentsOf: ours), "Python's writer gave other bytes")
    }

    @Test func `we read what Python's writer writes, byte for byte`() throws {
        let dir = TemporaryDirectory()
        defer { dir.cleanup() }
        let result = try PythonInterop.run(script: "Tests/Interop/safetensors_python_writes.py", arguments: [dir.path])
        try #require(result.status == 0, "\(result.stderr)")
        let manifestData = try Data(contentsOf: URL(fileURLWithPath: dir.file("manifest.json")))
        let manifest = try #require(try JSONSerialization.jsonObject(with: manifestData) as? [String: [String: Any]])
        #expect(Set(manifest.keys) == ["numpy.safetensors", "all_dtypes.safetensors"])
        var dtypesSeen = Set<DType>()
        for (file, content) in manifest {
            let checkpoint = try SafetensorsReader.read(path: dir.file(file))
            let metadata = try #require(content["metadata"] as? [String: String])
            #expect(checkpoint.metadata == metadata, "\(file)")
            let expected = try #require(content["tensors"] as? [String: [String: Any]])
            #expect(Set(checkpoint.tensors.map(\.name)) == Set(expected.keys), "\(file)")
            for tensor in checkpoint.tensors {
                let want = try #require(expected[tensor.name])
                #expect(tensor.dtype.safetensorsName == want["dtype"] as? String, "\(tensor.name)")
                #expect(tensor.shape.dimensions == want["shape"] as? [Int], "\(tensor.name)")
                #expect(
                    tensor.bytes.array == Self.bytes(fromHex: try #require(want["hex"] as? String)), "\(tensor.name)")
                dtypesSeen.insert(tensor.dtype)
            }
        }
        // Every safetensors dtype except the two F6 formats, which Python's writer cannot produce.
        #expect(Set(DType.allCases).subtracting(dtypesSeen) == [.f6e2m3, .f6e3m2])
    }

    @Test func `Python reads our sharded folder and its index`() throws {
        let dir = TemporaryDirectory()
        defer { dir.cleanup() }
        let folder = dir.file("out")
        try ShardedSample.writeFolder(at: folder)
        let result = try PythonInterop.run(script: "Tests/Interop/safetensors_read_folder.py", arguments: [folder])
        #expect(result.status == 0, "\(result.stderr)")
        let report = try #require(try JSONSerialization.jsonObject(with: Data(result.stdout.utf8)) as? [String: Any])
        #expect(report["files"] as? [String] == (1...4).map { "model-0000\($0)-of-00004.safetensors" })
        #expect(report["total_size"] as? Int == 308)
        #expect(report["total_parameters"] as? Int == 185)
        let read = try #require(report["tensors"] as? [String: String])
        let expected = ShardedSample.tensors()
        #expect(Set(read.keys) == Set(expected.map(\.name)))
        for tensor in expected { #expect(read[tensor.name] == Self.hex(tensor.bytes.array), "\(tensor.name)") }
    }
}

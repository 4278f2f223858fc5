import Foundation
import NF4Kit
import NF4KitCore
import NF4KitFormats
import NF4KitQuant
import NF4KitTestSupport
import Testing

/// gguf-py (PyPI `gguf`) reads every kind of GGUF file we write, and we read what gguf-py writes.
/// Runs Tests/Interop/gguf_check.py with the interpreter named by NF4KIT_PYTHON (numpy, safetensors, gguf).
@Suite struct GGUFInteropTests {
    static let script = "Tests/Interop/gguf_check.py"

    /// Runs the script through the shared interop runner (fails in CI without NF4KIT_PYTHON, never passes silently).
    private func runPython(_ arguments: [String]) throws -> (status: Int32, output: String) {
        let result = try PythonInterop.run(script: Self.script, arguments: arguments)
        return (result.status, result.stdout + result.stderr)
    }

    private func json(_ value: GGUFValue) -> Any {
        switch value {
        case .uint8(let v): Int(v)
        case .int8(let v): Int(v)
        case .uint16(let v): Int(v)
        case .int16(let v): Int(v)
        case .uint32(let v): Int(v)
        case .int32(let v): Int(v)
        case .uint64(let v): Int(v)
        case .int64(let v): Int(v)
        case .float32(let v): Double(v)
        case .float64(let v): v
        case .bool(let v): v
        case .string(let v): v
        case .array(_, let elements): elements.map(json)
        }
    }

    private func write(_ bytes: [UInt8], to path: String) throws {
        try Data(bytes).write(to: URL(fileURLWithPath: path))
    }

    private func floatBytes(_ values: [Float]) -> [UInt8] { values.withUnsafeBytes { Array($0) } }

    /// Writes one GGUF file and returns its manifest entry.
    private func writeFile(
        _ name: String, in dir: TemporaryDirectory, metadata: [GGUFMetadataEntry],
        tensors: [(GGUFTensorPlan, TensorBytes)], sources: [String: [Float]] = [:], bnbSource: String? = nil
    ) throws -> [String: Any] {
        let path = dir.file(name)
        let layout = try GGUFWriter.write(path: path, metadata: metadata, tensors: tensors, overwrite: false)
        var tensorEntries: [[String: Any]] = []
        for (plan, bytes) in tensors {
            let dataPath = dir.file("\(name).\(plan.name).bin")
            try write(bytes.array, to: dataPath)
            var entry: [String: Any] = [
                "name": plan.name, "type": plan.type.name, "ne": plan.dimensions, "data": dataPath,
            ]
            if plan.type.isQuantized {
                let format = plan.type
                var values = [Float](repeating: 0, count: bytes.count / format.typeSize * format.blockSize)
                bytes.withUnsafeBytes { raw in
                    values.withUnsafeMutableBufferPointer { GGMLBlockCodec.dequantize(raw, as: format, into: $0) }
                }
                try write(floatBytes(values), to: dir.file("\(name).\(plan.name).dequant.f32"))
                entry["dequantF32"] = dir.file("\(name).\(plan.name).dequant.f32")
            }
            if let source = sources[plan.name] {
                try write(floatBytes(source), to: dir.file("\(name).\(plan.name).source.f32"))
                entry["sourceF32"] = dir.file("\(name).\(plan.name).source.f32")
            }
            tensorEntries.append(entry)
        }
        var result: [String: Any] = [
            "path": path, "dataStart": Int(layout.dataStart), "tensors": tensorEntries,
            "metadata": metadata.map { entry -> [String: Any] in
                var item: [String: Any] = [
                    "key": entry.key, "type": entry.value.type.description, "value": json(entry.value),
                ]
                if case .array(let elementType, _) = entry.value { item["elementType"] = elementType.description }
                return item
            },
        ]
        if let bnbSource { result["bnbSource"] = bnbSource }
        return result
    }

    private func f32Tensor(_ name: String, _ shape: Shape, _ values: [Float]) -> Tensor {
        Tensor(
            descriptor: TensorDescriptor(
                name: name, dtype: .f32, shape: shape, file: "memory", fileOffset: 0, byteCount: values.count * 4),
            bytes: TensorBytes(copyingElementsOf: values.map(\.bitPattern)))
    }

    /// Random values with a few hard blocks: all zero, a ramp, Q8_0 rounding ties where half-even and half-away
    /// differ (0.5, -2.5, 62.5 with d = 1), and a largest magnitude that appears with both signs.
    private func values(rows: Int, seed: UInt64) -> [Float] {
        var rng = SeededGenerator(seed: seed)
        var values = (0..<(rows * 64)).map { _ in Float(rng.nextNormal() * 2) }
        for j in 0..<32 { values[j] = 0 }
        for j in 32..<64 { values[j] = Float(j - 48) }
        for (index, value) in [(64, 127), (65, 0.5), (66, -2.5), (67, 62.5), (68, -127)] as [(Int, Float)] {
            values[index] = value
        }
        return values
    }

    @Test func `gguf-py reads our plain, Q8_0, Q4_0 and NF4 companion files and agrees on every value`() throws {
        let dir = TemporaryDirectory()
        defer { dir.cleanup() }
        var files: [[String: Any]] = []
        let metadata: [GGUFMetadataEntry] = [
            .init(key: "general.architecture", value: .string("llama")),
            .init(key: "general.name", value: .string("nf4kit interop")),
            .init(key: "t.u8", value: .uint8(200)), .init(key: "t.i8", value: .int8(-100)),
            .init(key: "t.u16", value: .uint16(60000)), .init(key: "t.i16", value: .int16(-30000)),
            .init(key: "t.u32", value: .uint32(4_000_000_000)), .init(key: "t.i32", value: .int32(-7)),
            .init(key: "t.u64", value: .uint64(1 << 40)), .init(key: "t.i64", value: .int64(-(1 << 40))),
            .init(key: "t.f32", value: .float32(0.1)), .init(key: "t.f64", value: .float64(-3.25)),
            .init(key: "t.bool", value: .bool(true)), .init(key: "t.str", value: .string("héllo ✓")),
            .init(key: "t.arr_i32", value: .array(.int32, [.int32(1), .int32(-2)])),
            .init(key: "t.arr_str", value: .stringArray(["a", "", "bc"])),
            .init(key: "t.arr_f32", value: .float32Array([0.25, -1.5])),
            .init(key: "t.arr_u64", value: .uint64Array([1, 1 << 40])),
            .init(key: "t.arr_bool", value: .array(.bool, [.bool(false), .bool(true)])),
        ]
        let plainValues = values(rows: 3, seed: 1)
        let plainSource = f32Tensor("p.f32", [3, 64], plainValues)
        let plain = try [GGMLType.f32, .f16, .bf16].map { type in
            var (plan, bytes) = try GGUFBridge.encode(plainSource, as: type)
            plan.name = "p.\(type.name.lowercased())"
            return (plan, bytes)
        }
        files.append(try writeFile("plain.gguf", in: dir, metadata: metadata, tensors: plain))

        for (type, seed) in [(GGMLType.q8_0, UInt64(8)), (.q4_0, 4)] {
            let source = values(rows: 6, seed: seed)
            let encoded = try GGUFBridge.encode(f32Tensor("w", [6, 64], source), as: type)
            let norm = try GGUFBridge.encode(f32Tensor("norm", [64], Array(source.prefix(64))), as: .f32)
            files.append(
                try writeFile(
                    "\(type.name.lowercased()).gguf", in: dir,
                    metadata: [
                        .init(key: "general.architecture", value: .string("llama")),
                        .init(key: "general.quantization_version", value: .uint32(2)),
                    ],
                    tensors: [encoded, norm], sources: ["w": source]))
        }

        for variant in ["nf4-dq", "nf4"] {
            let sourcePath = Fixture.path("gguf/bnb-\(variant)-q_proj.safetensors")
            let source = try GGUFTestSafetensors.load(sourcePath).map(\.tensor)
            let encoded = try GGUFBridge.encodeCompanion(
                source, metadata: [.init(key: "general.architecture", value: .string("llama"))])
            files.append(
                try writeFile(
                    "\(variant).gguf", in: dir, metadata: encoded.metadata, tensors: encoded.tensors,
                    bnbSource: sourcePath))
        }

        let manifest = dir.file("manifest.json")
        try JSONSerialization.data(withJSONObject: ["files": files]).write(to: URL(fileURLWithPath: manifest))
        let (status, output) = try runPython(["check", manifest])
        #expect(status == 0, "\(output)")
        #expect(output.contains("checked 5 files, 0 failures"), "\(output)")
    }

    @Test func `we dequantize gguf-py's Q4_1 file to exactly gguf-py's values`() throws {
        let dir = TemporaryDirectory()
        defer { dir.cleanup() }
        let (status, output) = try runPython(["make-q41", dir.path])
        try #require(status == 0, "\(output)")
        let checkpoint = try GGUFBridge.readCheckpoint(path: dir.file("q4_1.gguf"))
        let tensor = try #require(checkpoint.tensor(named: "t.q4_1"))
        #expect(tensor.dtype == .f32)
        #expect(tensor.shape == [4, 64])
        let expected = try Data(contentsOf: URL(fileURLWithPath: dir.file("q4_1.dequant.f32")))
        #expect(tensor.bytes.array == [UInt8](expected))
    }
}

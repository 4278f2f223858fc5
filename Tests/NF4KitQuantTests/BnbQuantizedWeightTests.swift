import NF4KitCore
import NF4KitQuant
import NF4KitTestSupport
import Testing

@Suite struct BnbQuantizedWeightTests {
    static let weight = "model.layers.0.self_attn.q_proj.weight"

    static func golden(_ folder: String = "nf4-dq") throws -> [String: Tensor] {
        try TestSafetensors(path: Fixture.path("llama-tiny/\(folder)/model.safetensors")).byName
    }

    /// `tensor` with a new name, dtype, shape and bytes (a view of the same file, so the location stays real).
    static func replacing(_ tensor: Tensor, dtype: DType? = nil, shape: Shape, bytes: TensorBytes? = nil) -> Tensor {
        var descriptor = tensor.descriptor
        descriptor.dtype = dtype ?? tensor.dtype
        descriptor.shape = shape
        let view = bytes ?? tensor.bytes
        descriptor.byteCount = view.count
        return Tensor(descriptor: descriptor, bytes: view)
    }

    @Test func `a missing nested_absmax is reported by name`() throws {
        var tensors = try Self.golden()
        tensors[Self.weight + ".nested_absmax"] = nil
        let error = #expect(throws: CheckpointError.self) { try BnbQuantizedWeight.groups(in: tensors) }
        #expect(error?.code == .malformedHeader)
        // The error points at the blob (file, offset and name of a tensor that exists) and names the missing one.
        #expect(error?.tensor == Self.weight + ".quant_state.bitsandbytes__nf4")
        #expect(error?.message.contains("'\(Self.weight).nested_absmax'") == true)
        #expect(error?.file?.hasSuffix("nf4-dq/model.safetensors") == true)
    }

    @Test func `an absmax shorter than the blob's shape needs is a shape mismatch at that tensor`() throws {
        var tensors = try Self.golden()
        let absmax = try #require(tensors[Self.weight + ".absmax"])
        tensors[absmax.name] = Self.replacing(absmax, shape: [1000], bytes: absmax.bytes.slice(0..<1000))
        let error = #expect(throws: CheckpointError.self) { try BnbQuantizedWeight.groups(in: tensors) }
        #expect(error?.code == .shapeMismatch)
        #expect(error?.tensor == absmax.name)
        #expect(error?.byteOffset == absmax.descriptor.fileOffset)
        #expect(error?.message.contains("1024") == true)
    }

    @Test func `a packed weight of the wrong size is rejected`() throws {
        var tensors = try Self.golden()
        let packed = try #require(tensors[Self.weight])
        tensors[packed.name] = Self.replacing(packed, shape: [32767, 1], bytes: packed.bytes.slice(0..<32767))
        let error = #expect(throws: CheckpointError.self) { try BnbQuantizedWeight.groups(in: tensors) }
        #expect(error?.code == .shapeMismatch)
        #expect(error?.tensor == Self.weight)
    }

    @Test func `plain F32 absmax under a double-quantized blob is rejected`() throws {
        var tensors = try Self.golden()
        let absmax = try #require(tensors[Self.weight + ".absmax"])
        tensors[absmax.name] = Self.replacing(absmax, dtype: .f32, shape: [256])
        let error = #expect(throws: CheckpointError.self) { try BnbQuantizedWeight.groups(in: tensors) }
        #expect(error?.code == .shapeMismatch)
        #expect(error?.tensor == absmax.name)
    }

    @Test func `an included non-float tensor is an error naming it`() throws {
        let source = try TestSafetensors(path: Fixture.path("llama-tiny/nf4/model.safetensors"))
        let plan = BnbQuantizationPlan(include: ["*.absmax_codes_do_not_exist", "model.layers.0.self_attn.q_proj"])
        // q_proj.weight in the nf4 file is the packed U8 weight.
        let error = #expect(throws: CheckpointError.self) { try plan.selectedNames(in: source.tensors) }
        #expect(error?.code == .invalidArgument)
        #expect(error?.tensor == "model.layers.0.self_attn.q_proj.weight")
    }

    @Test func `a blob that is not JSON is malformed and names the blob`() throws {
        var tensors = try Self.golden()
        let name = Self.weight + ".quant_state.bitsandbytes__nf4"
        let blob = try #require(tensors[name])
        let garbage = TensorBytes(copyingElementsOf: Array("{\"quant_type\": \"nf4\", \"blocksize\": ".utf8))
        tensors[name] = Self.replacing(blob, shape: [garbage.count], bytes: garbage)
        let error = #expect(throws: CheckpointError.self) { try BnbQuantizedWeight.groups(in: tensors) }
        #expect(error?.code == .malformedHeader)
        #expect(error?.tensor == name)
    }

    static let badBlobs = [
        #"{"quant_type": "nf4", "blocksize": 48, "dtype": "float16", "shape": [256, 256]}"#,
        #"{"quant_type": "nf4", "blocksize": 64, "dtype": "float16", "shape": [-256, 256]}"#,
        #"{"quant_type": "nf4", "blocksize": 64, "dtype": "int8", "shape": [256, 256]}"#,
        #"{"quant_type": "fp4", "blocksize": 64, "dtype": "float16", "shape": [256, 256]}"#,
        #"{"quant_type": "nf4", "blocksize": 64, "dtype": "float16", "shape": [256, 256], "nested_blocksize": 256, "nested_dtype": "float16", "nested_offset": 0.5}"#,
        #"{"quant_type": "nf4", "blocksize": 64, "dtype": "float16", "shape": [256, 256]} x"#,
        #"{"quant_type": "nf4", "quant_type": "nf4", "blocksize": 64, "dtype": "float16", "shape": [256, 256]}"#,
        #"[1, 2, 3]"#,
    ]

    @Test(arguments: badBlobs)
    func `a malformed quant state blob is reported at the blob`(text: String) throws {
        var tensors = try Self.golden("nf4")
        let name = Self.weight + ".quant_state.bitsandbytes__nf4"
        let blob = try #require(tensors[name])
        let bytes = TensorBytes(copyingElementsOf: Array(text.utf8))
        tensors[name] = Self.replacing(blob, shape: [bytes.count], bytes: bytes)
        let error = #expect(throws: CheckpointError.self) { try BnbQuantizedWeight.groups(in: tensors) }
        #expect(error?.code == .malformedHeader)
        #expect(error?.tensor == name)
        #expect(error?.file?.hasSuffix("nf4/model.safetensors") == true)
    }

    @Test func `statistics without a quant state blob are rejected`() throws {
        var tensors = try Self.golden("nf4")
        tensors[Self.weight + ".quant_state.bitsandbytes__nf4"] = nil
        let error = #expect(throws: CheckpointError.self) { try BnbQuantizedWeight.groups(in: tensors) }
        #expect(error?.code == .malformedHeader)
        #expect(error?.tensor == Self.weight + ".quant_map")
    }

    @Test func `groups keep the checkpoint order and views of the file`() throws {
        let file = try TestSafetensors(path: Fixture.path("llama-tiny/nf4/model.safetensors"))
        let groups = try BnbQuantizedWeight.groups(in: file.tensors)
        let orderInFile = file.tensors.map(\.name).filter { name in groups.contains { $0.weightName == name } }
        #expect(groups.map(\.weightName) == orderInFile)
        let first = try #require(groups.first)
        #expect(first.tensor.packed.region === file[first.weightName]?.bytes.region)
        #expect(first.modulePrefix + ".weight" == first.weightName)
    }

    @Test func `the quant state prints offsets like Python repr`() {
        let cases: [(UInt32, String)] = [
            (0x3F70_0000, "0.9375"), (0x4000_0000, "2.0"), (0x5A0E_1BCA, "1.0000000272564224e+16"),
            (0x3580_0000, "9.5367431640625e-07"), (0x0000_0000, "0.0"), (0x38D1_B717, "9.999999747378752e-05"),
            (0x3851_B717, "4.999999873689376e-05"), (0x3D55_FAAB, "0.0522410087287426"),
            (0x47F1_2065, "123456.7890625"),
        ]
        for (bits, text) in cases {
            let state = BnbQuantState(
                quantType: .fp4, blocksize: 64, dtype: .f16, shape: [36, 36],
                nested: .init(offset: Float(bitPattern: bits)))
            #expect(
                state.jsonText
                    == "{\"quant_type\": \"fp4\", \"blocksize\": 64, \"dtype\": \"float16\", \"shape\": [36, 36], \"nested_blocksize\": 256, \"nested_dtype\": \"float32\", \"nested_offset\": \(text)}"
            )
            let parsed = try? BnbQuantState(parsing: state.jsonBytes)
            #expect(parsed == state)
        }
    }

    @Test func `the quant state parser accepts any key order and rejects partial nested fields`() throws {
        let reordered = #"{"shape": [3], "dtype": "float32", "blocksize": 128, "quant_type": "nf4"}"#
        let state = try BnbQuantState(parsing: Array(reordered.utf8))
        #expect(state == BnbQuantState(quantType: .nf4, blocksize: 128, dtype: .f32, shape: [3], nested: nil))
        let partial = #"{"quant_type": "nf4", "blocksize": 64, "dtype": "float16", "shape": [3], "nested_offset": 0.5}"#
        #expect(throws: CheckpointError.self) { try BnbQuantState(parsing: Array(partial.utf8)) }
        let badType = #"{"quant_type": "int8", "blocksize": 64, "dtype": "float16", "shape": [3]}"#
        #expect(throws: CheckpointError.self) { try BnbQuantState(parsing: Array(badType.utf8)) }
    }

    @Test func `the plan quantizes 2-D linear weights and honours include and skip globs`() {
        let plan = BnbQuantizationPlan()
        #expect(plan.shouldQuantize(name: "model.layers.3.mlp.down_proj.weight", dtype: .bf16, shape: [256, 688]))
        #expect(!plan.shouldQuantize(name: "lm_head.weight", dtype: .bf16, shape: [1000, 256]))
        #expect(!plan.shouldQuantize(name: "model.embed_tokens.weight", dtype: .bf16, shape: [1000, 256]))
        #expect(!plan.shouldQuantize(name: "model.norm.weight", dtype: .bf16, shape: [256]))
        #expect(!plan.shouldQuantize(name: "model.layers.0.mlp.down_proj.bias", dtype: .bf16, shape: [256, 1]))
        #expect(!plan.shouldQuantize(name: "model.layers.0.mlp.down_proj.weight", dtype: .i32, shape: [256, 688]))
        let custom = BnbQuantizationPlan(include: ["extra.*", "*.norm"], skip: ["*.layers.1.*", "*.q_proj"])
        #expect(custom.shouldQuantize(name: "model.layers.0.self_attn.k_proj.weight", dtype: .f16, shape: [8, 8]))
        #expect(!custom.shouldQuantize(name: "model.layers.1.self_attn.k_proj.weight", dtype: .f16, shape: [8, 8]))
        #expect(!custom.shouldQuantize(name: "model.layers.0.self_attn.q_proj.weight", dtype: .f16, shape: [8, 8]))
        #expect(custom.isSkippedLinear(name: "model.layers.0.self_attn.q_proj.weight", dtype: .f16, shape: [8, 8]))
        #expect(!custom.isSkippedLinear(name: "lm_head.weight", dtype: .f16, shape: [8, 8]))
        #expect(custom.shouldQuantize(name: "extra.bias_vector", dtype: .f32, shape: [100]))
        #expect(custom.shouldQuantize(name: "model.norm.weight", dtype: .f16, shape: [256]))
        #expect(BnbQuantizationPlan.glob("model.?.x", matches: "model.1.x"))
        #expect(!BnbQuantizationPlan.glob("model.?.x", matches: "model.12.x"))
    }
}

@Suite struct BnbQuantStateLimitTests {
    @Test(arguments: [
        #"{"quant_type": "nf4", "blocksize": 64, "dtype": "float16", "shape": [9223372036854775807, 2]}"#,
        #"{"quant_type": "nf4", "blocksize": 9223372036854775807, "dtype": "float16", "shape": [4]}"#,
        #"{"quant_type": "nf4", "blocksize": 64, "dtype": "float16", "shape": [4], "nested_blocksize": 9223372036854775807, "nested_dtype": "float32", "nested_offset": 1}"#,
        #"{"quant_type": "nf4", "blocksize": 64, "dtype": "float16", "shape": [4], "nested_blocksize": 256, "nested_dtype": "float32", "nested_offset": 1e300}"#,
    ])
    func `fields that would overflow are malformed`(_ json: String) {
        let error = #expect(throws: CheckpointError.self) { try BnbQuantState(parsing: Array(json.utf8), tensor: "w") }
        #expect(error?.code == .malformedHeader)
        #expect(error?.tensor == "w")
    }

    @Test func `the layout of a state whose shape is Int.max is computed without overflow`() throws {
        let json =
            #"{"quant_type": "nf4", "blocksize": 32, "dtype": "float16", "shape": [9223372036854775807], "nested_blocksize": 256, "nested_dtype": "float32", "nested_offset": 1}"#
        let state = try BnbQuantState(parsing: Array(json.utf8))
        let layout = state.storedTensors
        #expect(
            layout.map(\.suffix) == [
                "", ".absmax", ".quant_map", ".nested_absmax", ".nested_quant_map", ".quant_state.bitsandbytes__nf4",
            ])
        #expect(layout[0].byteCount == Int.max / 2 + 1)
        #expect(layout[1].byteCount == Int.max / 32 + 1)
    }

    @Test func `planning double quantization of a weight with an infinite value is refused`() throws {
        var values = [Float](repeating: 0.5, count: 64)
        values[3] = .infinity
        let bytes = values.flatMap { withUnsafeBytes(of: $0.bitPattern.littleEndian) { Array($0) } }
        let quantizer = try BlockQuantizer()
        let error = #expect(throws: CheckpointError.self) {
            try bytes.withUnsafeBytes { raw in
                try quantizer.plannedQuantState(raw, dtype: .f32, shape: [64], doubleQuantization: true, name: "w")
            }
        }
        #expect(error?.code == .refused)
        #expect(error?.tensor == "w")
        let q = try bytes.withUnsafeBytes {
            try quantizer.quantize($0, dtype: .f32, shape: [64], doubleQuantization: true)
        }
        #expect(throws: CheckpointError.self) { try q.bnbTensors(weightName: "w") }
    }
}

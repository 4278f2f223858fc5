import NF4Kit
import NF4KitCore
import NF4KitFormats
import NF4KitInspect
import NF4KitTestSupport
import Testing

@Suite struct FourBitGroupTests {
    static let weight = "model.layers.0.mlp.up_proj.weight"

    static func inspect(_ tensors: [Tensor]) throws -> (report: InspectionReport, checkpoint: Checkpoint) {
        let directory = TemporaryDirectory()
        defer { directory.cleanup() }
        let path = try SyntheticCheckpoint.write(tensors, in: directory)
        let source = try ModelSource.open(path)
        return (try InspectionReport.inspect(source), source.checkpoint)
    }

    static func failure(_ tensors: [Tensor]) throws -> (error: CheckpointError?, checkpoint: Checkpoint) {
        let directory = TemporaryDirectory()
        defer { directory.cleanup() }
        let path = try SyntheticCheckpoint.write(tensors, in: directory)
        let source = try ModelSource.open(path)
        let error = #expect(throws: CheckpointError.self) { try InspectionReport.inspect(source) }
        return (error, source.checkpoint)
    }

    @Test func `a well-formed NF4 weight is one row of its logical shape`() throws {
        let (report, _) = try Self.inspect(SyntheticCheckpoint.nf4Group(Self.weight))
        #expect(report.summary.tensorCount == 1)
        #expect(report.summary.storedTensorCount == 4)
        #expect(report.summary.parameterCount == 128)
        #expect(report.tensors.first?.shape == [2, 64])
        #expect(report.tensors.first?.fourBit?.quantType == "nf4")
        #expect(report.tensors.first?.fourBit?.isDoubleQuantized == false)
        // 64 code bytes + 8 absmax bytes = 72 bytes for 128 parameters
        #expect(report.memory.bitsPerQuantizedParameter == 4.5)
    }

    @Test func `a missing quant_map names the weight`() throws {
        let tensors = SyntheticCheckpoint.nf4Group(Self.weight).filter { !$0.name.hasSuffix(".quant_map") }
        let (error, _) = try Self.failure(tensors)
        #expect(error?.code == .malformedHeader)
        #expect(error?.tensor == Self.weight + ".quant_state.bitsandbytes__nf4")
        #expect(error?.message.contains(Self.weight + ".quant_map") == true)
        #expect(error?.file?.hasSuffix("model.safetensors") == true)
        #expect(error?.byteOffset != nil)
    }

    @Test func `a missing codes tensor is an error`() throws {
        let tensors = SyntheticCheckpoint.nf4Group(Self.weight).filter { $0.name != Self.weight }
        let (error, _) = try Self.failure(tensors)
        #expect(error?.code == .malformedHeader)
        #expect(error?.message.contains("no '\(Self.weight)' tensor") == true)
    }

    @Test func `a quant state that is not JSON gives the byte offset of the bad character`() throws {
        let (error, checkpoint) = try Self.failure(
            SyntheticCheckpoint.nf4Group(Self.weight, blob: #"{"quant_type": nf4}"#))
        let blob = try #require(checkpoint.tensor(named: Self.weight + ".quant_state.bitsandbytes__nf4"))
        #expect(error?.code == .malformedHeader)
        #expect(error?.tensor == blob.name)
        // the 'n' of nf4 is byte 15 of the blob
        #expect(error?.byteOffset == blob.descriptor.fileOffset + 15)
    }

    @Test func `an absmax of the wrong length is an error naming it`() throws {
        var tensors = SyntheticCheckpoint.nf4Group(Self.weight)
        tensors[1] = SyntheticCheckpoint.zeros(Self.weight + ".absmax", .f32, [3])
        let (error, checkpoint) = try Self.failure(tensors)
        #expect(error?.tensor == Self.weight + ".absmax")
        #expect(error?.byteOffset == checkpoint.tensor(named: Self.weight + ".absmax")?.descriptor.fileOffset)
        #expect(error?.message.contains("2 elements") == true)
    }

    @Test func `packed codes that disagree with the blob's shape are an error`() throws {
        let blob = #"{"quant_type": "nf4", "blocksize": 64, "dtype": "bfloat16", "shape": [4, 64]}"#
        let (error, _) = try Self.failure(SyntheticCheckpoint.nf4Group(Self.weight, blob: blob))
        #expect(error?.tensor == Self.weight)
        #expect(error?.message.contains("needs 128 bytes") == true)
    }

    @Test func `a blob whose quant_type disagrees with its key is an error`() throws {
        let blob = #"{"quant_type": "fp4", "blocksize": 64, "dtype": "bfloat16", "shape": [2, 64]}"#
        let (error, _) = try Self.failure(SyntheticCheckpoint.nf4Group(Self.weight, blob: blob))
        #expect(error?.code == .malformedHeader)
        #expect(error?.message.contains("fp4") == true)
    }

    @Test func `a double-quantized blob without nested tensors is an error`() throws {
        let blob =
            #"{"quant_type": "nf4", "blocksize": 64, "dtype": "bfloat16", "shape": [2, 64], "nested_blocksize": 256, "nested_dtype": "float32", "nested_offset": 0.5}"#
        var tensors = SyntheticCheckpoint.nf4Group(Self.weight, blob: blob)
        tensors[1] = SyntheticCheckpoint.zeros(Self.weight + ".absmax", .u8, [2])
        let (error, _) = try Self.failure(tensors)
        #expect(error?.message.contains(".nested_absmax") == true)
    }

    @Test func `a code map without a quant state is an error`() throws {
        let tensors = SyntheticCheckpoint.nf4Group(Self.weight).filter { !$0.name.contains("quant_state") }
        let (error, _) = try Self.failure(tensors)
        #expect(error?.tensor == Self.weight + ".quant_map")
    }
}

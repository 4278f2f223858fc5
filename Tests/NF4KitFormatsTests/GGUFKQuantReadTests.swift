import Foundation
import NF4Kit
import NF4KitCore
import NF4KitFormats
import NF4KitTestSupport
import Testing

/// Reading k-quant GGUF files (golden Q4_K_M.gguf from llama-quantize) and refusing bad ones with file, offset, tensor.
@Suite struct GGUFKQuantReadTests {
    static let gguf = Fixture.path("gguf-llama/gguf/Q4_K_M.gguf")

    @Test func `a Q4_K_M file reads with every tensor dequantized to f32 in PyTorch shape`() throws {
        let checkpoint = try GGUFBridge.readCheckpoint(path: Self.gguf)
        #expect(checkpoint.tensors.count == 21)
        #expect(checkpoint.tensors.allSatisfy { $0.dtype == .f32 && $0.bytes.count == $0.shape.elementCount * 4 })
        #expect(checkpoint.tensor(named: "blk.0.ffn_down.weight")?.shape == [256, 768])
    }

    @Test func `a Q4_K_M file cut inside its last tensor is truncated at that tensor's offset field`() throws {
        let dir = TemporaryDirectory("nf4kit-kquant-cut")
        defer { dir.cleanup() }
        let bytes = try Data(contentsOf: URL(fileURLWithPath: Self.gguf))
        let cut = dir.file("cut.gguf")
        // blk.1.ffn_up.weight (Q4_K, 110592 bytes) starts at absolute 1215328 + 22912; keep half of its blocks.
        try bytes.prefix(22912 + 1_215_328 + 55296 + 7).write(to: URL(fileURLWithPath: cut))
        let error = #expect(throws: CheckpointError.self) { try GGUFBridge.readCheckpoint(path: cut) }
        #expect(error?.code == .truncated)
        #expect(error?.tensor == "blk.1.ffn_up.weight" && error?.file == cut)
        #expect(error?.byteOffset != nil && error?.code.isDataError == true)
    }

    @Test func `block bytes of the wrong size for the type and shape are refused, not trapped on`() throws {
        let file = try GGUFFile.read(path: Self.gguf)
        let info = try #require(file.tensor(named: "blk.0.attn_q.weight"))
        let short = file.bytes(of: info).slice(0..<(info.byteCount - 144))
        let error = #expect(throws: CheckpointError.self) {
            try GGUFBridge.dequantize(info, bytes: short, file: file.path)
        }
        #expect(error?.code == .truncated && error?.tensor == "blk.0.attn_q.weight")
        #expect(error?.byteOffset == info.fileOffset)
    }

    @Test func `the header-only reader describes block tensors as stored without decoding them`() throws {
        let checkpoint = try GGUFBridge.readStoredCheckpoint(path: Self.gguf)
        let file = try GGUFFile.read(path: Self.gguf)
        #expect(checkpoint.tensors.map(\.name) == file.tensors.map(\.name))
        let q = try #require(checkpoint.tensor(named: "blk.0.attn_q.weight"))
        // 256 x 256 Q4_K: 256 blocks of 144 bytes.
        #expect(q.dtype == .u8 && q.shape == [256, 256] && q.descriptor.byteCount == 256 * 144)
        let norm = try #require(checkpoint.tensor(named: "output_norm.weight"))
        #expect(norm.dtype == .f32 && norm.shape == [256])
        // An unknown type id is listed, not refused.
        let unknown = try GGUFBridge.readStoredCheckpoint(path: Fixture.path("gguf/malformed/unknown_tensor_type.gguf"))
        #expect(unknown.tensor(named: "b")?.dtype == .u8)
    }
}

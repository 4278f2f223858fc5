import Foundation
@testable import NF4Kit
import NF4KitTestSupport
import Testing

/// The merge as a tensor source, which `merge BASE ADAPTER -o x.gguf` streams into the GGUF export: its tensors are
/// PEFT's merge (golden llama-g/merged), computed when they are read.
@Suite struct MergeTensorSourceTests {
    static let base = Fixture.path("llama-g/hf")
    static let adapter = Fixture.path("llama-g/lora")

    @Test func `its tensors are PEFT's merged weights, unchanged ones read from the base file`() throws {
        let source = try MergePipeline.tensorSource(base: Self.base, adapters: [Self.adapter], options: MergeOptions())
            .source
        let golden = try SafetensorsReader.read(path: Fixture.path("llama-g/merged/model.safetensors")).tensorsByName
        #expect(source.checkpoint.tensors.map(\.name).sorted() == golden.keys.sorted())
        var computed = 0
        for tensor in source.checkpoint.tensors {
            let expected = try #require(golden[tensor.name])
            #expect(tensor.dtype == expected.dtype && tensor.shape == expected.shape, "\(tensor.name)")
            try tensor.bytes.materialize()
            #expect(tensor.bytes.array == expected.bytes.array, "\(tensor.name)")
            tensor.bytes.releasePages()
            if tensor.bytes.region.path != Self.base + "/model.safetensors" { computed += 1 }
        }
        // Only the adapter's targets are computed (q/k/v/o and MLP projections of both layers, golden lora/).
        let targets = try ModelSource.open(Self.adapter).checkpoint.tensors.filter {
            $0.name.hasSuffix("lora_A.weight")
        }
        #expect(computed == targets.count && computed > 0)
    }

    @Test func `a merge's error comes out of materialize, before any byte is read`() throws {
        var options = MergeOptions()
        options.weights = [1e30]  // finite in f32, far above the f16 maximum of the output
        let source = try MergePipeline.tensorSource(base: Self.base, adapters: [Self.adapter], options: options).source
        let merged = try #require(
            source.checkpoint.tensors.first { $0.name.hasSuffix("layers.0.self_attn.q_proj.weight") })
        let error = #expect(throws: CheckpointError.self) { try merged.bytes.materialize() }
        #expect(error?.code == .nonFinite)
        #expect(error?.tensor == merged.name)

        options.weights = nil
        options.cancellation = CancellationToken()
        options.cancellation.cancel()
        let cancelled = try MergePipeline.tensorSource(base: Self.base, adapters: [Self.adapter], options: options)
            .source
        let other = try #require(cancelled.checkpoint.tensors.first { $0.name == merged.name })
        #expect(throws: CancellationError.self) { try other.bytes.materialize() }
    }

    @Test func `a cancelled merge to GGUF stops and leaves nothing`() throws {
        let dir = TemporaryDirectory("merge-source")
        defer { dir.cleanup() }
        var options = MergeOptions()
        options.cancellation = CancellationToken()
        options.cancellation.cancel()
        #expect(throws: CancellationError.self) {
            try GGUFExport.mergeAndExport(
                base: Self.base, adapters: [Self.adapter], output: dir.file("m.gguf"), mergeOptions: options)
        }
        #expect(try FileManager.default.contentsOfDirectory(atPath: dir.path).isEmpty)
    }
}

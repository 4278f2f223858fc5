import NF4Kit
import NF4KitTestSupport
import Testing

/// The library example of README.md, run on the fixtures so that it keeps compiling and working.
@Suite struct ReadmeExampleTests {
    @Test func `the README's library example runs`() throws {
        let dir = TemporaryDirectory()
        defer { dir.cleanup() }
        let (input, output) = (Fixture.path("llama-tiny/fp16"), dir.file("llama-nf4"))
        // --- README example begins ---
        // Quantize a Hugging Face folder to NF4 + double quantization, exactly as transformers + bitsandbytes save it.
        var options = QuantizePipeline.Options()
        options.target = .nf4
        let summary = try QuantizePipeline.run(input: input, output: output, options: options)
        print("\(summary.tensorsQuantized) weights at \(summary.bitsPerQuantizedParameter ?? 0) bits each")

        // Open any checkpoint (safetensors, sharded folder, GGUF, PyTorch .bin) and list its 4-bit weights.
        let source = try ModelSource.open(output)
        for weight in try BnbQuantizedWeight.groups(in: source.checkpoint.tensors) {
            print(weight.weightName, weight.tensor.quantType, weight.tensor.shape)
        }
        // --- README example ends ---
        #expect(summary.tensorsQuantized == 14)
    }
}

import Foundation
import NF4Kit
import NF4KitTestSupport
import Testing

/// gguf-py (PyPI `gguf`) reads every llama.cpp-layout GGUF we write, and Tests/Interop/gguf_compare.py (the acceptance
/// comparison, copied from shared/tools) finds it equal to the golden file written by llama.cpp's converters.
@Suite struct LlamaCppInteropTests {
    @Test(arguments: [
        ("hf", "F16", GGUFExport.OutType.f16), ("hf", "BF16", .bf16), ("hf", "Q8_0", .q8_0), ("lora", "lora-F16", .f16),
    ])
    func `gguf_compare.py finds our file equal to llama.cpp's`(
        input: String, golden: String, outType: GGUFExport.OutType
    )
        throws
    {
        let dir = TemporaryDirectory("llama-g-interop")
        defer { dir.cleanup() }
        let out = dir.file("\(golden).gguf")
        _ = try GGUFExport.convert(
            input: Fixture.path("llama-g/\(input)"), output: out,
            options: .init(outType: outType, base: Fixture.path("llama-g/hf")))
        let result = try PythonInterop.run(
            script: "Tests/Interop/gguf_compare.py", arguments: [out, Fixture.path("llama-g/gguf/\(golden).gguf")])
        #expect(result.status == 0, "\(result.stdout)\(result.stderr)")
        #expect(result.stdout.hasPrefix("OK:"), "\(result.stdout)")
    }
}

import NF4KitCore
import NF4KitFormats
import NF4KitTestSupport
import Testing

/// The one place that decides an output's form from its name and `--format` (issue 16 item 2).
@Suite struct CheckpointOutputFormTests {
    @Test(arguments: [
        ("y.safetensors", nil, CheckpointOutput.Form.safetensorsFile),
        ("dir/Y.SAFETENSORS", nil, .safetensorsFile),
        ("llama-f16.gguf", nil, .gguf),
        ("llama-f16.gguf", OutputFormat.gguf, .gguf),
        ("out", nil, .folder),
        ("out", .safetensors, .folder),
        ("out", .gguf, .gguf),
        ("ydir/", nil, .folder),
        ("model.safetensors/", nil, .folder),
        ("y.safetensors", .safetensors, .safetensorsFile),
    ])
    func `the name says the form, --format fills in for a name that says nothing`(
        name: String, format: OutputFormat?, form: CheckpointOutput.Form
    ) throws {
        #expect(try CheckpointOutput.Form.choose(for: name, format: format) == form)
    }

    @Test(arguments: [
        ("x.gguf", OutputFormat?.some(.safetensors)), ("x.safetensors", .gguf), ("x/", .gguf), ("x.bin", nil),
        ("x.pt", nil), ("", nil),
    ])
    func `a name never holds another format, and names nf4kit cannot write are refused`(
        name: String, format: OutputFormat?
    ) {
        let error = #expect(throws: CheckpointError.self) {
            try CheckpointOutput.Form.choose(for: name, format: format)
        }
        #expect(error?.code == .invalidArgument)
    }
}

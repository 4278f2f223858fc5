import Foundation

/// The llama3 rope fixture (Fixtures/files/llama3-rope): a 1-layer Llama whose config.json has Llama 3.2's
/// `rope_scaling` block (`rope_type: "llama3"`, head_dim 128), and the GGUF files llama.cpp's tools wrote of it. Only
/// config.json and the weights are stored; the SentencePiece tokenizer files are llama-g's, copied in here.
public enum Llama3RopeFixture {
    /// Assembles the model folder at `dir/name` and returns its path.
    public static func folder(in dir: TemporaryDirectory, name: String = "llama3-rope") throws -> String {
        let folder = dir.file(name)
        try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
        for (source, file) in [
            ("llama3-rope/hf", "config.json"), ("llama3-rope/hf", "model.safetensors"),
            ("llama-g/hf", "tokenizer.model"), ("llama-g/hf", "tokenizer_config.json"),
            ("llama-g/hf", "special_tokens_map.json"),
        ] {
            try FileManager.default.copyItem(atPath: Fixture.path(source + "/" + file), toPath: folder + "/" + file)
        }
        return folder
    }

    /// The path of a reference GGUF: `BF16.gguf` (convert_hf_to_gguf.py --outtype bf16) or `Q4_K_M.gguf`
    /// (--outtype f16, then llama-quantize).
    public static func reference(_ name: String) -> String { Fixture.path("llama3-rope/gguf/" + name) }
}

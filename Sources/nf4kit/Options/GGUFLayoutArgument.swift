import ArgumentParser

/// `--layout`: how a GGUF output names and stores its tensors.
///
/// `llama` (the default for a `.gguf` output of a supported architecture) is the layout llama.cpp's converters write
/// (llama.cpp, Ollama and LM Studio run it); `hf` keeps Hugging Face tensor names in nf4kit's container (docs/gguf.md),
/// for any architecture and any `--to`, which llama.cpp does not load.
enum GGUFLayoutArgument: String, ExpressibleByArgument, CaseIterable, Sendable {
    case llama, hf

    init?(argument: String) {
        self.init(rawValue: argument.lowercased())
    }
}

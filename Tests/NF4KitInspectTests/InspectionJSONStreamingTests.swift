import NF4Kit
import NF4KitInspect
import NF4KitTestSupport
import Testing

/// `inspect --json` streams the document (``InspectionReport/writeJSON(flushingEvery:to:)``); the library's
/// ``InspectionReport/jsonText`` builds it as one tree. Both must be the same bytes for every kind of input.
@Suite struct InspectionJSONStreamingTests {
    static let inputs = [
        "llama-tiny/fp16",
        "llama-tiny/nf4-dq",
        "llama-tiny/fp4-dq",
        "llama-tiny/lora",
        "gguf-llama/gguf/Q4_K_M.gguf",
        "torch/llama-tiny",
    ]

    @Test(arguments: inputs) func `the streamed document is the tree-built one, byte for byte`(input: String) throws {
        let source = try ModelSource.open(Fixture.path(input), gguf: .stored)
        let training = source.isAdapter ? nil : TrainingMemoryOptions(rank: 8)
        let report = try InspectionReport.inspect(source, training: training)
        let whole = report.jsonText
        // A threshold far below one row's text cuts the document after every row.
        var pieces: [String] = []
        report.writeJSON(flushingEvery: 64) { pieces.append($0) }
        #expect(pieces.count > report.tensors.count)
        #expect(pieces.joined() == whole)
        // The default threshold: one piece for a small document, plus the final newline.
        var defaultPieces: [String] = []
        report.writeJSON { defaultPieces.append($0) }
        #expect(defaultPieces == [String(whole.dropLast()), "\n"])
    }
}

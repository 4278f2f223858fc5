package import NF4KitCore

/// The rotary row permutation llama.cpp's converter applies to q_proj and k_proj (spec gguf-llama.md §2).
///
/// With `n` heads and `rows` rows, a head holds `rows / n` rows in two halves of `half = rows / n / 2`. The GGUF
/// order interleaves the halves: output row `h * (rows / n) + 2 * i + p` is Hugging Face row
/// `h * (rows / n) + p * half + i` (head `h`, index `i < half`, half `p` in 0...1). The inverse maps back. Rows move
/// as whole byte strings, so the permutation works for any element type whose rows do not share blocks.
package struct LlamaRowPermutation: Sendable, Hashable {
    /// The number of rows of the matrix.
    package let rows: Int
    /// The number of heads the rows are grouped by (`num_attention_heads` for q, `num_key_value_heads` for k).
    package let heads: Int

    /// Checks that `rows` splits into `heads` heads of two equal halves.
    ///
    /// - Throws: ``CheckpointError`` `.shapeMismatch` naming the tensor and the numbers.
    package init(rows: Int, heads: Int, tensor: String? = nil, file: String? = nil) throws(CheckpointError) {
        guard heads > 0, rows > 0, rows % heads == 0, (rows / heads) % 2 == 0 else {
            throw CheckpointError(
                .shapeMismatch,
                "tensor '\(tensor ?? "?")' has \(rows) rows, which \(heads) heads cannot split into equal halves "
                    + "(rows must be a multiple of 2 x heads); config.json's head counts contradict the weights",
                file: file, tensor: tensor)
        }
        self.rows = rows
        self.heads = heads
    }

    /// The Hugging Face row that GGUF row `row` holds.
    package func hfRow(ofGGUFRow row: Int) -> Int {
        let perHead = rows / heads
        let half = perHead / 2
        let head = row / perHead
        let within = row % perHead
        return head * perHead + (within % 2) * half + within / 2
    }

    /// The GGUF row that Hugging Face row `row` goes to.
    package func ggufRow(ofHFRow row: Int) -> Int {
        let perHead = rows / heads
        let half = perHead / 2
        let head = row / perHead
        let within = row % perHead
        return head * perHead + 2 * (within % half) + within / half
    }
}

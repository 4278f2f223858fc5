import NF4KitCore

/// Llama 3.1's rope scaling (`rope_type: "llama3"`, also Llama 3.2, 3.3 and DeepSeek-R1-Distill-Llama), which
/// convert_hf_to_gguf.py writes as an extra F32 tensor `rope_freqs.weight` of one factor per rotary pair (the first
/// tensor of the file) and no `llama.rope.scaling.*` keys; llama.cpp divides each pair's frequency by its factor.
///
/// The factors are computed with the converter's float32 arithmetic, so they are bit for bit what it writes.
package struct Llama3RopeScaling: Sendable, Hashable {
    /// The GGUF name of the tensor.
    package static let tensorName = "rope_freqs.weight"

    /// `rope_theta` (the converter's default 10000).
    package var theta: Double
    /// The rotary dimension: `head_dim`, or `hidden_size / num_attention_heads`.
    package var dimension: Int
    /// `factor` (default 8).
    package var factor: Double
    /// `low_freq_factor` (default 1).
    package var lowFrequencyFactor: Double
    /// `high_freq_factor` (default 4).
    package var highFrequencyFactor: Double
    /// `original_max_position_embeddings` (default 8192).
    package var originalContextLength: Double

    /// Creates the scaling from its parameters.
    package init(
        theta: Double, dimension: Int, factor: Double = 8, lowFrequencyFactor: Double = 1,
        highFrequencyFactor: Double = 4, originalContextLength: Double = 8192
    ) {
        self.theta = theta
        self.dimension = dimension
        self.factor = factor
        self.lowFrequencyFactor = lowFrequencyFactor
        self.highFrequencyFactor = highFrequencyFactor
        self.originalContextLength = originalContextLength
    }

    /// The number of factors: one per rotary pair, `(dimension + 1) / 2` (`torch.arange(0, dim, 2)`).
    package var count: Int { (dimension + 1) / 2 }

    /// The values of `rope_freqs.weight`, as convert_hf_to_gguf.py's `LlamaModel.generate_extra_tensors` computes them.
    ///
    /// Every step is the float32 operation torch performs: `base ** (arange / dim)` is a float32 power (computed here
    /// in double and rounded once, the correctly rounded result), `1.0 / t` and `2 * math.pi / t` are a float32
    /// reciprocal times the float32-rounded scalar (torch's `__rtruediv__`), and a Python float mixed with a tensor is
    /// rounded to float32 first (comparisons too). The wavelength bounds and `high - low` are Python doubles.
    package func factors() -> [Float] {
        let lowWavelength = Float(originalContextLength / lowFrequencyFactor)
        let highWavelength = Float(originalContextLength / highFrequencyFactor)
        let twoPi = Float(2 * Double.pi)
        let context = Float(originalContextLength)
        let low = Float(lowFrequencyFactor)
        let span = Float(highFrequencyFactor - lowFrequencyFactor)
        let scale = Float(factor)
        let dim = Float(dimension)
        let base = Double(Float(theta))
        return stride(from: 0, to: dimension, by: 2).map { index in
            let exponent = Float(index) / dim
            let power = Float(PlatformMath.pow(base, Double(exponent)))
            let frequency = 1 / power
            let wavelength = (1 / frequency) * twoPi
            if wavelength < highWavelength { return 1 }
            if wavelength > lowWavelength { return scale }
            let smooth = ((1 / wavelength) * context - low) / span
            return 1 / ((1 - smooth) / scale + smooth)
        }
    }
}

// The error measurement over two f32 buffers of one tensor.
extension ErrorStatistics {
    /// Compares `decoded` with `reference` element by element (sequentially, in Double).
    ///
    /// - Precondition: both buffers have the same count.
    /// - Complexity: O(n).
    public static func measure(
        reference: UnsafeBufferPointer<Float>, decoded: UnsafeBufferPointer<Float>
    ) -> ErrorStatistics {
        precondition(reference.count == decoded.count, "ErrorStatistics.measure: buffers differ in length")
        var squaredError = 0.0, squaredReference = 0.0, peak = 0.0
        for i in 0..<reference.count {
            let x = Double(reference[i])
            let e = Double(decoded[i]) - x
            squaredError += e * e
            squaredReference += x * x
            let magnitude = abs(e)
            if magnitude > peak || magnitude.isNaN { peak = magnitude }
        }
        return ErrorStatistics(
            elementCount: reference.count, sumSquaredError: squaredError, sumSquaredReference: squaredReference,
            maxAbsoluteError: peak)
    }
}

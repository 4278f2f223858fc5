import RealModule

/// Sums of squared error and squared reference, in Double, from which RMSE, SNR and relative error follow.
///
/// Kept as sums so that statistics of several tensors merge exactly into the statistics of their union
/// (``merge(_:)``); the report merges in checkpoint order, so aggregates do not depend on the thread count.
public struct ErrorStatistics: Sendable, Hashable {
    /// Number of values compared.
    public var elementCount: Int
    /// `Σ (decoded − reference)²`.
    public var sumSquaredError: Double
    /// `Σ reference²`.
    public var sumSquaredReference: Double
    /// `max |decoded − reference|`.
    public var maxAbsoluteError: Double

    /// Creates statistics from their sums.
    public init(
        elementCount: Int = 0, sumSquaredError: Double = 0, sumSquaredReference: Double = 0,
        maxAbsoluteError: Double = 0
    ) {
        self.elementCount = elementCount
        self.sumSquaredError = sumSquaredError
        self.sumSquaredReference = sumSquaredReference
        self.maxAbsoluteError = maxAbsoluteError
    }

    /// Root mean squared error, `sqrt(Σe² / n)`; 0 for no values.
    public var rootMeanSquaredError: Double {
        elementCount > 0 ? (sumSquaredError / Double(elementCount)).squareRoot() : 0
    }

    /// Signal-to-noise ratio in decibels, `10 · log10(Σx² / Σe²)`; `+∞` when there is no error.
    public var signalToNoiseDecibels: Double {
        if sumSquaredError == 0 { return .infinity }
        return 10 * Double.log10(sumSquaredReference / sumSquaredError)
    }

    /// Relative Frobenius error, `sqrt(Σe² / Σx²)` = `‖decoded − reference‖_F / ‖reference‖_F`; 0 when both are 0.
    public var relativeFrobeniusError: Double {
        if sumSquaredReference == 0 { return sumSquaredError == 0 ? 0 : .infinity }
        return (sumSquaredError / sumSquaredReference).squareRoot()
    }

    /// Adds another set of values to these statistics.
    public mutating func merge(_ other: ErrorStatistics) {
        elementCount += other.elementCount
        sumSquaredError += other.sumSquaredError
        sumSquaredReference += other.sumSquaredReference
        // NaN wins, as in measure(): a NaN error must not print as a zero maximum.
        if other.maxAbsoluteError > maxAbsoluteError || other.maxAbsoluteError.isNaN {
            maxAbsoluteError = other.maxAbsoluteError
        }
    }
}

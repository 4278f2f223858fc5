/// The dimensions of a tensor, outermost first (row-major, as PyTorch and safetensors store them).
public struct Shape: Hashable, Sendable, Codable, ExpressibleByArrayLiteral {
    /// The dimension sizes; empty for a scalar.
    public var dimensions: [Int]

    public init(_ dimensions: [Int]) { self.dimensions = dimensions }
    public init(arrayLiteral elements: Int...) { self.dimensions = elements }

    /// Number of dimensions (0 for a scalar).
    public var rank: Int { dimensions.count }

    /// The number of elements, computed left to right with overflow checks; `nil` on overflow.
    ///
    /// The check order matches the safetensors reference reader: `[2^32, 2^32, 0]` overflows before reaching
    /// the zero, while `[UInt64.max, 0]`-style shapes that never overflow give 0.
    public var checkedElementCount: Int? {
        var product = 1
        for dimension in dimensions {
            guard dimension >= 0 else { return nil }
            let (next, overflow) = product.multipliedReportingOverflow(by: dimension)
            if overflow { return nil }
            product = next
        }
        return product
    }

    /// The number of elements. Precondition: the shape was validated (see ``checkedElementCount``).
    public var elementCount: Int {
        guard let count = checkedElementCount else { preconditionFailure("Shape element count overflows: \(self)") }
        return count
    }

    subscript(index: Int) -> Int { dimensions[index] }
}

extension Shape: CustomStringConvertible {
    /// `[4096, 4096]`, `[]` for a scalar.
    public var description: String { "[" + dimensions.map(String.init).joined(separator: ", ") + "]" }
}

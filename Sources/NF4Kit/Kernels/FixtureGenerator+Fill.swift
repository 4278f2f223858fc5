public import NF4KitCore

// The fixture values written into caller buffers: the tensor fills and their f32 -> dtype narrowing.
extension FixtureGenerator {
    /// Writes the values of tensor `name` (of `shape`) as `dtype` into `destination`.
    ///
    /// Norm weights are 1. Other weights are normal-like with standard deviation ``initializerRange``: each value is
    /// the centred sum of eight 16-bit uniforms (Irwin-Hall, excess kurtosis -0.15), which needs no transcendental
    /// functions and so no platform math library.
    public func fill(name: String, elementCount: Int, as dtype: DType, into destination: UnsafeMutableRawBufferPointer)
    {
        precondition(destination.count == elementCount * dtype.bitWidth / 8, "fill: wrong buffer size for \(name)")
        if name.hasSuffix("norm.weight") {
            fillConstant(1, count: elementCount, as: dtype, into: destination)
            return
        }
        fillNormal(
            stream: FixtureGenerator.streamSeed(seed, name), standardDeviation: initializerRange, count: elementCount,
            as: dtype, into: destination)
    }

    /// Fills an adapter tensor: A uniform in ±1/sqrt(in) (PEFT's Kaiming-uniform bound), B normal with std 0.02
    /// (non-zero, so that merging changes the weights).
    public func fillAdapter(name: String, shape: Shape, into destination: UnsafeMutableRawBufferPointer) {
        let count = shape.elementCount
        let stream = FixtureGenerator.streamSeed(seed ^ 0x10AA, name)
        if name.hasSuffix("lora_A.weight") {
            let bound = 1 / Double(shape.dimensions[1]).squareRoot()
            var state = stream
            for i in 0..<count {
                let unit = Double(FixtureGenerator.splitMix(&state) >> 11) / Double(1 << 53)  // [0, 1)
                destination.storeBytes(
                    of: Float((unit * 2 - 1) * bound).bitPattern.littleEndian, toByteOffset: i * 4, as: UInt32.self)
            }
        } else {
            fillNormal(stream: stream, standardDeviation: 0.02, count: count, as: .f32, into: destination)
        }
    }

    private func fillConstant(
        _ value: Float, count: Int, as dtype: DType, into destination: UnsafeMutableRawBufferPointer
    ) {
        withUnsafeTemporaryAllocation(of: Float.self, capacity: 1) { one in
            one[0] = value
            let width = dtype.bitWidth / 8
            for i in 0..<count {
                FloatConversion.narrow(
                    UnsafeBufferPointer(one), to: dtype,
                    into: UnsafeMutableRawBufferPointer(rebasing: destination[(i * width)..<((i + 1) * width)]))
            }
        }
    }

    private func fillNormal(
        stream: UInt64, standardDeviation: Double, count: Int, as dtype: DType,
        into destination: UnsafeMutableRawBufferPointer
    ) {
        // Sum of 8 uniforms on 0...65535: mean 8 * 32767.5, variance 8 * (65536^2 - 1) / 12.
        let mean = 8 * 32767.5
        let scale = standardDeviation / (8 * (65536.0 * 65536.0 - 1) / 12).squareRoot()
        var state = stream
        let chunk = 4096
        withUnsafeTemporaryAllocation(of: Float.self, capacity: chunk) { buffer in
            var start = 0
            while start < count {
                let n = min(chunk, count - start)
                for i in 0..<n {
                    let a = FixtureGenerator.splitMix(&state)
                    let b = FixtureGenerator.splitMix(&state)
                    var sum: UInt64 = 0
                    for shift in stride(from: 0, to: 64, by: 16) {
                        sum &+= (a >> UInt64(shift)) & 0xFFFF
                        sum &+= (b >> UInt64(shift)) & 0xFFFF
                    }
                    buffer[i] = Float((Double(sum) - mean) * scale)
                }
                let width = dtype.bitWidth / 8
                FloatConversion.narrow(
                    UnsafeBufferPointer(rebasing: buffer[0..<n]), to: dtype,
                    into: UnsafeMutableRawBufferPointer(rebasing: destination[(start * width)..<((start + n) * width)]))
                start += n
            }
        }
    }
}

import NF4KitCore
import Synchronization
import Testing

@Suite struct ParallelRunnerTests {
    @Test(arguments: [1, 3])
    func `results come back in index order for any thread count`(threads: Int) throws {
        let results = try ParallelRunner.map(count: 100, threads: threads, cancellation: CancellationToken()) {
            $0 * $0
        }
        #expect(results == (0..<100).map { $0 * $0 })
        #expect(ParallelRunner.map(count: 5, threads: threads) { $0 + 1 } == [1, 2, 3, 4, 5])
    }

    @Test(arguments: [1, 2])
    func `a cancelled token stops the jobs between items and throws CancellationError`(threads: Int) {
        let token = CancellationToken()
        let started = Atomic<Int>(0)
        #expect(throws: CancellationError.self) {
            try ParallelRunner.map(count: 1_000, threads: threads, cancellation: token) { index in
                if started.wrappingAdd(1, ordering: .relaxed).newValue == 10 { token.cancel() }
            }
        }
        // Each worker finishes at most the job it is in when the token trips.
        #expect(started.load(ordering: .relaxed) <= 10 + threads)
    }

    @Test func `the first job error is rethrown and no new job starts after it`() {
        struct Stop: Error {}
        let ran = Atomic<Int>(0)
        #expect(throws: Stop.self) {
            try ParallelRunner.map(count: 1_000, threads: 1, cancellation: nil) { index in
                ran.wrappingAdd(1, ordering: .relaxed)
                if index == 3 { throw Stop() }
            }
        }
        #expect(ran.load(ordering: .relaxed) == 4)
    }
}

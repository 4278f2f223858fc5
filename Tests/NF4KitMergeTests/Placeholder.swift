import Testing

@Suite struct MergePlaceholderTests {
    @Test func `module builds`() {}
}

import Testing

@Suite struct InspectPlaceholderTests {
    @Test func `module builds`() {}
}

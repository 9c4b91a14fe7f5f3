import ConvoyCore

/// Runs `body` over `items` with at most `width` at once, stopping at the first error or when `stop` is set. With
/// `pause`, waits that long before each item for which `pauses` is true (tests throttle hydration with it), one at
/// a time.
func forEachBounded<Item: Sendable>(_ items: [Item], width: Int, pause: Duration, stop: StopFlag,
                                    pauses: (Item) -> Bool = { _ in true },
                                    _ body: @escaping @Sendable (Item) async throws(ConvoyError) -> Void)
    async throws(ConvoyError) {
    let width = pause > .zero ? 1 : width
    let failure: ConvoyError? = await withTaskGroup(of: ConvoyError?.self) { group in
        var next = 0
        var running = 0
        while next < items.count || running > 0 {
            while running < width && next < items.count {
                let item = items[next]
                next += 1
                if pause > .zero && pauses(item) { try? await Task.sleep(for: pause) }
                if stop.stopped { return ConvoyError(.unavailable, "hydration stopped") }
                running += 1
                group.addTask {
                    do throws(ConvoyError) {
                        try await body(item)
                        return nil
                    } catch {
                        return error
                    }
                }
            }
            guard let result = await group.next() else { break }
            running -= 1
            if let result {
                group.cancelAll()
                return result
            }
        }
        return nil
    }
    if let failure { throw failure }
}

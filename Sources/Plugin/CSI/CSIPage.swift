import GRPCCore

/// One page of a CSI list (volumes, snapshots): the token is the index of the next entry, as a string.
enum CSIPage {
    static func of<Entry>(_ all: [Entry], startingToken: String,
                          maxEntries: Int32) throws(RPCError) -> (entries: ArraySlice<Entry>, nextToken: String) {
        guard maxEntries >= 0 else { throw CSIErrors.invalid("max_entries must not be negative") }
        var start = 0
        if !startingToken.isEmpty {
            guard let index = Int(startingToken), (0...all.count).contains(index) else {
                throw RPCError(code: .aborted, message: "starting_token '\(startingToken)' is not one this plugin "
                    + "gave (the list may have changed); list again from the start")
            }
            start = index
        }
        let end = maxEntries == 0 ? all.count : min(all.count, start + Int(maxEntries))
        return (all[start..<end], end < all.count ? String(end) : "")
    }
}

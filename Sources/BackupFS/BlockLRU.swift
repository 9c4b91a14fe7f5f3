import Backupstore

/// Decompressed blocks by hash, bounded by their total size: the least recently used leave first. A doubly linked
/// list threaded through an array of slots keeps every operation O(1) however small the blocks are.
struct BlockLRU {
    private struct Slot {
        var hash: String
        var block: PlainBlock?
        var newer: Int
        var older: Int
    }

    let capacity: Int
    private var slots: [Slot] = []
    private var freeSlots: [Int] = []
    private var slotByHash: [String: Int] = [:]
    private var newest = -1
    private var oldest = -1
    /// Bytes held now, and the most ever held (what tests check against `capacity`).
    private(set) var bytes = 0
    private(set) var peakBytes = 0

    init(capacity: Int) {
        self.capacity = max(0, capacity)
    }

    func contains(_ hash: String) -> Bool {
        slotByHash[hash] != nil
    }

    /// The block, marked most recently used.
    mutating func get(_ hash: String) -> PlainBlock? {
        guard let slot = slotByHash[hash] else { return nil }
        unlink(slot)
        pushNewest(slot)
        return slots[slot].block
    }

    /// Adds a block, evicting the least recently used until it fits; a block larger than the whole cache is
    /// not kept.
    mutating func insert(_ hash: String, _ block: PlainBlock) {
        guard slotByHash[hash] == nil, block.count <= capacity else { return }
        while bytes + block.count > capacity, oldest >= 0 { evict(oldest) }
        let slot: Int
        if let reused = freeSlots.popLast() {
            slot = reused
            slots[slot] = Slot(hash: hash, block: block, newer: -1, older: -1)
        } else {
            slot = slots.count
            slots.append(Slot(hash: hash, block: block, newer: -1, older: -1))
        }
        slotByHash[hash] = slot
        pushNewest(slot)
        bytes += block.count
        peakBytes = max(peakBytes, bytes)
    }

    private mutating func evict(_ slot: Int) {
        unlink(slot)
        slotByHash[slots[slot].hash] = nil
        bytes -= slots[slot].block?.count ?? 0
        slots[slot].block = nil
        slots[slot].hash = ""
        freeSlots.append(slot)
    }

    private mutating func unlink(_ slot: Int) {
        let (newer, older) = (slots[slot].newer, slots[slot].older)
        if newer >= 0 { slots[newer].older = older } else { newest = older }
        if older >= 0 { slots[older].newer = newer } else { oldest = newer }
        slots[slot].newer = -1
        slots[slot].older = -1
    }

    private mutating func pushNewest(_ slot: Int) {
        slots[slot].older = newest
        if newest >= 0 { slots[newest].newer = slot }
        newest = slot
        if oldest < 0 { oldest = slot }
    }
}

public enum ConvoyVersion {
    public static let current = "0.1.0"
}

//! remote (being written).

//! Audit log.
pub fn verify_command(_file: &std::path::Path) -> u8 {
    1
}

//! The inventory's host algebra: folded host sets (`web[1-4]`) and host patterns
//! (`web:&prod:!db`) selecting aliases of the loaded inventory.
//!
//! Owns: parsing, folding and selecting. Never loads files (`config`), never judges a
//! command (`policy`), never connects.

pub mod hostset;
pub mod select;
